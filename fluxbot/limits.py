"""Who may use the bot where, and how much: per-server settings over the operator's defaults.

Every refusal is a `Refused` whose message is polite, says why, and says when or where the member can try again.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

from fluxbot import catalog
from fluxbot.budgets import Budget
from fluxbot.errors import MemberError, Message, Number, OptionName
from fluxbot.i18n import N_
from fluxbot.moderation import NO_RULES, Blocklist, Rule

if TYPE_CHECKING:  # annotations only: the providers package imports the settings, which import this module
    from fluxbot.providers.base import JobRequest

#: When a server's results are spoilers: never, in every channel, or outside age-restricted (NSFW) channels.
SPOILER_MODES = ("never", "always", "outside_age_restricted")

#: Kie's content-filter option, and the value it uses when a job does not say (kie-api.md: default 2).
SAFETY_OPTION = "safety_tolerance"
KIE_DEFAULT_SAFETY = 2

log = logging.getLogger(__name__)


class Refused(MemberError):
    """A member may not run this now; the message says why and what to do."""


class PromptBlocked(Refused):
    """The prompt breaks a blocklist rule (`rule`, for the moderation log; never shown to the member)."""

    def __init__(self, rule: Rule, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Limits:
    """How much one member may do, and the server budget their jobs count against. Zero turns the cooldown or
    the daily quota off."""

    member_jobs: int = 2
    cooldown_seconds: int = 0
    daily_images: int = 0
    #: The server whose budget a job counts against (and the budget); None: no server's (operator tools, tests).
    budget: Budget | None = None


@dataclass(frozen=True)
class Style:
    """A server's named look: text added to the prompt, optionally a model and a size (rules: `styles.py`).

    It is defined here, beside the settings that keep it: `styles.py` uses the job rules (`jobs/requests.py`),
    whose imports lead back to this module.
    """

    name: str
    text: str
    model: str | None = None
    size: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Style:
        """A style as stored; unknown keys (from a newer version) are ignored."""
        model, size = data.get("model"), data.get("size")
        return cls(
            str(data["name"]),
            str(data["text"]),
            model if isinstance(model, str) else None,
            size if isinstance(size, str) else None,
        )


@dataclass(frozen=True)
class GuildSettings:
    """One server's choices, stored in SQLite; None (or empty) means "the operator's default"."""

    default_model: str | None = None
    allowed_models: tuple[str, ...] = ()
    allowed_channels: tuple[int, ...] = ()
    required_role: int | None = None
    member_jobs: int | None = None
    cooldown_seconds: int | None = None
    daily_images: int | None = None
    dms: bool = True  # whether this server's members may use the bot in direct messages
    #: Blocked words, phrases and `re:` patterns (moderation.py matches prompts against them).
    blocklist: tuple[str, ...] = ()
    #: The channel that gets one message per refused prompt (None: no moderation log).
    modlog_channel: int | None = None
    #: Refused prompts within `strike_window_minutes` that pause a member for `pause_minutes` (0: never).
    strikes: int = 0
    strike_window_minutes: int = 60
    pause_minutes: int = 60
    #: The most permissive `safety_tolerance` a Kie job may ask for here (None: the provider's own range).
    safety_ceiling: int | None = None
    #: When results are shown as spoilers: one of SPOILER_MODES.
    spoilers: str = "never"
    #: Images the whole server may make per UTC day and per UTC calendar month, on top of member quotas (0: off).
    budget_daily_images: int = 0
    budget_monthly_images: int = 0
    #: The server's style presets, in the order they were added (`/fluxadmin style`).
    styles: tuple[Style, ...] = ()
    #: The language of what everyone here sees, as Discord names it ("de", "pt-BR"); None: Discord's server language.
    locale: str | None = None

    def to_json(self) -> str:
        """The settings as stored."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GuildSettings:
        """Settings as stored; unknown keys (from a newer version) are ignored."""
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("allowed_models", "allowed_channels", "blocklist"):
            known[key] = tuple(known.get(key) or ())
        known["styles"] = tuple(Style.from_dict(style) for style in known.get("styles") or ())
        known["locale"] = known.get("locale") if isinstance(known.get("locale"), str) and known.get("locale") else None
        return cls(**known)

    def limits(self, operator: Limits) -> Limits:
        """These overrides applied to the operator's limits, which they can only make stricter."""
        jobs = operator.member_jobs if self.member_jobs is None else min(self.member_jobs, operator.member_jobs)
        cooldown = max(self.cooldown_seconds or 0, operator.cooldown_seconds)
        quota = operator.daily_images
        if self.daily_images:  # 0 = "no quota of our own": the operator's, if any, still applies
            quota = min(self.daily_images, quota) if quota else self.daily_images
        return Limits(member_jobs=jobs, cooldown_seconds=cooldown, daily_images=quota)

    def budget(self, guild_id: int, server_name: str | None = None) -> Budget:
        """This server's budget, which the jobs counting against server `guild_id` draw from."""
        return Budget(guild_id, self.budget_daily_images, self.budget_monthly_images, server_name)

    def capped(self, operator: Limits) -> list[Message]:
        """Overrides looser than the operator's limits (which win), each said in words (a moderator's language)."""
        notes = []
        if self.member_jobs is not None and self.member_jobs > operator.member_jobs:
            note = N_("jobs at once: {value} is capped at the operator's {limit}")
            notes.append(Message(note, value=Number(self.member_jobs), limit=Number(operator.member_jobs)))
        if self.cooldown_seconds is not None and self.cooldown_seconds < operator.cooldown_seconds:
            note = N_("cooldown: {value} s is raised to the operator's {limit} s")
            notes.append(Message(note, value=Number(self.cooldown_seconds), limit=Number(operator.cooldown_seconds)))
        if self.daily_images and operator.daily_images and self.daily_images > operator.daily_images:
            note = N_("images per day: {value} is capped at the operator's {limit}")
            notes.append(Message(note, value=Number(self.daily_images), limit=Number(operator.daily_images)))
        return notes


@dataclass(frozen=True)
class Policy:
    """What applies to one command here: the models and the limits."""

    default_model: str
    allowed_models: tuple[str, ...]
    limits: Limits
    #: The model edits use here: the usual Kontext model unless the server allows only others.
    edit_model: str = catalog.DEFAULT_EDIT_MODEL
    #: What prompts may not contain here: the operator's list and the server's.
    blocklist: Blocklist = NO_RULES
    #: The server's ceiling for Kie's content filter (`safety_tolerance`), or None.
    safety_ceiling: int | None = None
    #: The style presets members may pick here (in a DM: those of the server whose rules apply).
    styles: tuple[Style, ...] = ()

    @property
    def budget_guild(self) -> int | None:
        """The server whose rules apply (in a DM, the shared server chosen): its budget counts the job."""
        return self.limits.budget.guild_id if self.limits.budget is not None else None

    def apply_safety(self, request: JobRequest, provider: catalog.ProviderInfo) -> JobRequest:
        """The request within the server's safety ceiling: a looser value asked for is refused, and the
        provider's default, when looser, is lowered to the ceiling."""
        ceiling = self.safety_ceiling
        if ceiling is None or not any(o.name == SAFETY_OPTION for o in provider.options):
            return request
        asked = request.options.get(SAFETY_OPTION)
        if isinstance(asked, int) and not isinstance(asked, bool) and asked > ceiling:
            raise Refused(
                N_("On this server `{option}` is at most {ceiling} (0 is the strictest). "
                   "Please ask for {ceiling} or less, or leave it out."),
                option=OptionName(SAFETY_OPTION),
                ceiling=ceiling,
            )  # fmt: skip
        if asked is None and ceiling < KIE_DEFAULT_SAFETY:
            return replace(request, options={**request.options, SAFETY_OPTION: ceiling})
        return request

    def check_prompt(self, prompt: str) -> None:
        """Refuse a prompt that breaks a rule, without repeating what matched."""
        rule = self.blocklist.match(prompt)
        if rule is not None:
            raise PromptBlocked(rule, BLOCKED_BY_OPERATOR if rule.source == "operator" else BLOCKED_HERE)

    def check_model(self, model: str) -> None:
        """Refuse a model this server does not allow."""
        if self.allowed_models and model not in self.allowed_models:
            allowed = ", ".join(f"`{m}`" for m in self.allowed_models)
            raise Refused(
                N_("`{model}` is not enabled on this server. Models you can use here: {allowed}."),
                model=model,
                allowed=allowed,
            )


def _edit_model(provider: catalog.ProviderInfo, allowed_models: tuple[str, ...]) -> str:
    editors = [m.name for m in catalog.edit_models(provider)]
    allowed = [m for m in editors if not allowed_models or m in allowed_models]
    return catalog.DEFAULT_EDIT_MODEL if catalog.DEFAULT_EDIT_MODEL in allowed else (allowed or editors)[0]


NO_DMS = N_("I don't take commands in direct messages. Please use me in a server we share.")
NO_SHARED_SERVER = N_(
    "In direct messages I follow the rules of a server we share, and we share none. Please use me in a channel "
    "of a server I'm in, or ask its moderators to add me."
)
BLOCKED_BY_OPERATOR = N_(
    "I can't send this prompt: it contains something the bot's operator does not allow. "
    "Please reword it. Nothing was made or charged."
)
BLOCKED_HERE = N_(
    "I can't send this prompt: it contains something this server's moderators do not allow. "
    "Please reword it. Nothing was made or charged."
)


def policy_for(
    guild: GuildSettings,
    *,
    provider: catalog.ProviderInfo,
    defaults: Limits,
    default_model: str,
    channel_ids: Sequence[int],
    role_ids: Sequence[int],
    guild_id: int | None = None,
    server_name: str | None = None,
) -> Policy:
    """The policy for a command on a server, or Refused when the member may not use the bot here.

    `channel_ids` are the channel and, for a thread, its parent. With `guild_id` the jobs count against that
    server's budget (`server_name` names it in the messages of a DM).
    """
    if guild.allowed_channels and not set(channel_ids) & set(guild.allowed_channels):
        places = ", ".join(f"<#{c}>" for c in guild.allowed_channels)
        raise Refused(N_("I can't be used in this channel. On this server you can use me in {places}."), places=places)
    if guild.required_role is not None and guild.required_role not in role_ids:
        raise Refused(
            N_("On this server you need the {role} role to use me. Ask a moderator."), role=f"<@&{guild.required_role}>"
        )
    # Settings chosen under another provider may name models this one lacks: those names are ignored (a list
    # naming none of them allows every model, as if unset) until a moderator chooses again.
    names = catalog.model_names(provider)
    allowed = tuple(m for m in guild.allowed_models if m in names)
    model = guild.default_model if guild.default_model in names else default_model
    if allowed and model not in allowed:
        model = allowed[0]
    limits = guild.limits(defaults)
    if guild_id is not None:
        limits = replace(limits, budget=guild.budget(guild_id, server_name))
    return Policy(
        model,
        allowed,
        limits,
        _edit_model(provider, allowed),
        safety_ceiling=guild.safety_ceiling,
        styles=guild.styles,
    )


@dataclass(frozen=True)
class SharedServer:
    """A server that the member writing to the bot in a DM shares with it, and the member's roles there."""

    name: str
    settings: GuildSettings
    role_ids: tuple[int, ...]
    required_role_name: str = ""  # the name of `settings.required_role`, as the DM cannot mention it
    guild_id: int | None = None  # the server's id: a DM under its rules counts against its budget


def dm_policy(
    servers: Sequence[SharedServer], *, provider: catalog.ProviderInfo, defaults: Limits, default_model: str
) -> Policy:
    """The policy for a command in a DM: the rules of the first shared server that lets the member use DMs.

    Only asked when the operator serves DMs (SERVE_DMS). A member who shares no server with the bot is refused:
    with the operator's defaults, leaving a server would lift its stricter rules. A server's channel list does not
    apply in DMs; its role, models and limits do.
    """
    if not servers:
        raise Refused(NO_SHARED_SERVER)
    for server in servers:
        rules = server.settings
        if rules.dms and (rules.required_role is None or rules.required_role in server.role_ids):
            return policy_for(
                with_changes(rules, allowed_channels=()),
                provider=provider,
                defaults=defaults,
                default_model=default_model,
                channel_ids=[],
                role_ids=server.role_ids,
                guild_id=server.guild_id,
                server_name=server.name,
            )
    open_to_dms = [server for server in servers if server.settings.dms]
    if not open_to_dms:
        names = ", ".join(f"**{server.name}**" for server in servers)
        raise Refused(
            N_(
                "The moderators of {servers} have turned off fluxbot in direct messages. "
                "Please use me in a channel there."
            ),
            servers=names,
        )
    # Translators: the end of "To use me in direct messages you need …" (the second: a role whose name is unknown).
    named, unnamed = N_("the **{role}** role on **{server}**"), N_("the **required** role on **{server}**")
    needs = [Message(named if server.required_role_name else unnamed, role=server.required_role_name,
                     server=server.name) for server in open_to_dms]  # fmt: skip
    # Translators: joins the roles a member may have: "the **Artist** role on **Cats**; or the **…** role on **…**".
    joined = N_("{roles}; or {role}")
    roles = functools.reduce(lambda roles, role: Message(joined, roles=roles, role=role), needs)
    raise Refused(
        N_("To use me in direct messages you need {roles}. Ask a moderator, or use me in a channel there."), roles=roles
    )


def shows_spoilers(mode: str, *, age_restricted: bool) -> bool:
    """Whether a result is a spoiler under the server's `mode`, in a channel that is age-restricted or not."""
    return mode == "always" or (mode == "outside_age_restricted" and not age_restricted)


def with_changes(settings: GuildSettings, **changes: object) -> GuildSettings:
    """`settings` with some fields changed (a typed wrapper around dataclasses.replace)."""
    return replace(settings, **changes)  # type: ignore[arg-type]
