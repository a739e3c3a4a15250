"""The moderators' cards and the moderation log's posts in another language: a settings card and a usage report in
the moderator's language (only they see them), a refusal and a budget notice in the server's (everyone in the log
sees them); the server's choice, its words and the member's prompt are values, never translated."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

import discord

from fluxbot.budgets import Budget, BudgetUse
from fluxbot.i18n import server_locale
from fluxbot.limits import GuildSettings, Limits
from fluxbot.moderation import parse_rule
from fluxbot.modlog import BudgetNotices, refusal_card
from fluxbot.policy import MemberPolicies
from fluxbot.settings_cards import settings_card
from fluxbot.storage import Store
from fluxbot.storage.base import DayUsage, GuildReport, MemberUsage
from fluxbot.usage_cards import usage_card

GUILD = 7
NOON = datetime(2026, 11, 21, 12, tzinfo=UTC).timestamp()
MIDNIGHT = int(datetime(2026, 11, 22, tzinfo=UTC).timestamp())


def guild(preferred_locale: str) -> discord.Guild:
    """What `server_locale` reads of a server: its language in Discord."""
    return cast("discord.Guild", SimpleNamespace(id=GUILD, preferred_locale=discord.Locale(preferred_locale)))


def fields(embed: discord.Embed) -> dict[str, str]:
    return {str(f.name): str(f.value) for f in embed.fields}


def test_the_servers_locale_is_its_choice_else_its_discord_language_else_english() -> None:
    assert server_locale("de", guild("ja")) == "de", "the moderators' choice wins"
    assert server_locale(None, guild("ja")) == "ja"
    assert server_locale(None, None) == "en-US", "a server not in this process's cache, with no choice: English"


# -- these wait for the catalogs (admin-translations.json) ------------------------------------------------------


def test_a_french_moderator_reads_the_settings_card_in_french_with_numbers_written_the_french_way() -> None:
    settings = GuildSettings(strikes=3, pause_minutes=30, blocklist=("gore",), modlog_channel=55,
                             budget_daily_images=1500, spoilers="always", styles=())  # fmt: skip
    card = settings_card(settings, Limits(member_jobs=2, cooldown_seconds=1), "flux-dev", serve_dms=True, locale="fr")
    assert card.title == "Paramètres de fluxbot pour ce serveur"
    shown = fields(card)
    assert shown["Modèle par défaut"] == "`flux-dev`", "a model's name as it is"
    assert shown["Délai entre commandes"] == "1 seconde"
    assert shown["Images par membre et par jour"] == "désactivé"
    assert shown["Budget du serveur"] == "1\u202f500 images par jour UTC"
    assert shown["Liste de blocage"] == "1 règle propre à ce serveur"
    assert shown["Avertissements"] == "3 prompts refusés en 60 min mettent un membre en pause pendant 30 min"
    assert shown["Résultats en spoiler"] == "toujours"
    assert shown["Langue de ce que tout le monde voit"] == "Langue du serveur dans Discord"


def test_a_german_moderator_reads_the_usage_report_with_german_dates_amounts_and_plurals() -> None:
    members = [MemberUsage(1, 6, 3, 0, {"flux-dev": 4, "flux-2-klein": 2}), MemberUsage(2, 1, 1, 1, {"flux-dev": 1})]
    days = [DayUsage(date(2026, 11, 21), 7, 4, 1, {"flux-dev": 5, "flux-2-klein": 2})]
    report = GuildReport(GUILD, members, 0, days, {"queued": 1})
    card = usage_card(report, locale="de", prices={"flux-dev": Decimal("0.012")}, budget=Budget(GUILD, daily=10),
                      used=BudgetUse(7, 7), now=NOON)  # fmt: skip
    assert card.title == "fluxbot-Nutzung, letzte 7 Tage (UTC)"
    assert card.description is not None
    assert card.description.splitlines() == [
        "**Pro Mitglied**",
        "<@1>: 6 Bilder in 3 Aufträgen, 0 fehlgeschlagen · ≈ 0,048 + 2 Bilder ohne Preis",
        "<@2>: 1 Bild in 1 Auftrag, 1 fehlgeschlagen · ≈ 0,012",
        "**Pro Tag**",
        "21.11.2026: 7 Bilder in 4 Aufträgen, 1 fehlgeschlagen · ≈ 0,06 + 2 Bilder ohne Preis",
        "**Pro Modell**",
        "`flux-dev`: 5 Bilder × 0,012 = 0,06",
        "`flux-2-klein`: 2 Bilder, kein Preis",
    ]
    shown = fields(card)
    assert shown["Serverbudget"] == (
        f"Heute (UTC): 7 von 10 Bildern verbraucht (70 %), 3 übrig; wird <t:{MIDNIGHT}:R> zurückgesetzt"
    ), "a Discord timestamp: Discord writes it in the reader's language"
    assert shown["Derzeit offene Aufträge"] == "1 wartend"


def test_a_refusal_is_posted_to_the_moderation_log_in_the_servers_chosen_language_with_the_prompt_as_typed() -> None:
    locale = server_locale("de", guild("ja"))
    card = refusal_card(42, None, "a gory scene", parse_rule("gore"), now=NOON, locale=locale)
    assert card.title == "Prompt abgelehnt"
    assert fields(card) == {
        "Mitglied": "<@42>",
        "Wo": "eine Direktnachricht",
        "Wann": f"<t:{int(NOON)}:f>",
        "Prompt": "||a gory scene||",
        "Regel": "`gore` (Sperrliste dieses Servers)",
    }


class Budgets:
    """The store's budget counts: the server has used all of its day."""

    async def used(self, guild_id: int, *, now: float) -> BudgetUse:
        return BudgetUse(1500, 1500)

    async def claim_notice(self, guild_id: int, key: str, percent: int, *, now: float) -> bool:
        return True


class Client:
    def __init__(self, guilds: dict[int, discord.Guild]) -> None:
        self.guilds = guilds
        self.posts: list[dict[str, Any]] = []

    def get_guild(self, guild_id: int) -> discord.Guild | None:
        return self.guilds.get(guild_id)

    def get_partial_messageable(self, channel_id: int) -> Client:
        return self

    async def send(self, **message: Any) -> None:
        self.posts.append(message["embed"].to_dict())


class Policies:
    async def guild_settings(self, guild_id: int) -> GuildSettings:
        return GuildSettings(budget_daily_images=1500, modlog_channel=55)  # no language of its own


async def test_a_budget_notice_is_posted_in_the_servers_discord_language_japanese_with_its_plural() -> None:
    client = Client({GUILD: guild("ja")})
    store, policies = cast("Store", SimpleNamespace(budgets=Budgets())), cast("MemberPolicies", Policies())
    notices = BudgetNotices(cast("discord.Client", client), store, policies, clock=lambda: NOON)
    await notices.check(Budget(GUILD, daily=1500))
    [post] = client.posts
    assert post["title"] == "今日のサーバー予算を使い切りました"
    assert post["description"] == (
        "このサーバーは今日（UTC）、1,500 枚中 1,500 枚を使いました。 "
        f"<t:{MIDNIGHT}:R>にリセットされるまで、新しいジョブは拒否されます。 "
        "`/fluxadmin 予算` で確認・変更でき、`/fluxadmin 使用状況` で誰が使ったかを確認できます。"
    )
