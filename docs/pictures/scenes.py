"""The pictures' sample jobs and servers, and each picture as the message the bot's own code builds for them.

Every card here comes from fluxbot's render code (render.py, buttons.py, settings_cards.py, usage_cards.py,
modlog.py): change a card there and the next `python -m docs.pictures.make` shows the change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord

from docs.pictures import pngs
from docs.pictures.layout import Author, Message
from docs.pictures.markdown import Names
from fluxbot import render, render_details
from fluxbot.buttons import jobs_page_view, result_view
from fluxbot.jobs.durations import Estimate
from fluxbot.jobs.lifecycle import Job, JobStatus, Reply
from fluxbot.limits import GuildSettings, Limits
from fluxbot.moderation import parse_rule
from fluxbot.modlog import refusal_card
from fluxbot.providers.acedata import error_from_answer
from fluxbot.providers.base import Image
from fluxbot.settings_cards import settings_card
from fluxbot.storage import GuildReport
from fluxbot.storage.base import DayUsage, MemberUsage
from fluxbot.usage_cards import usage_card

#: The moment every picture is taken: relative times ("2 minutes ago") stay the same from run to run.
NOW = datetime(2025, 6, 14, 18, 30, tzinfo=UTC).timestamp()
GUILD, APP = 1_180_000_000_000_000_001, 1_180_000_000_000_000_002
ART, MODLOG, SHOWCASE = 1_180_000_000_000_000_010, 1_180_000_000_000_000_011, 1_180_000_000_000_000_012
ALICE, BOB, CHEN, DANA = (
    1_180_000_000_000_000_100,
    1_180_000_000_000_000_101,
    1_180_000_000_000_000_102,
    1_180_000_000_000_000_103,
)
ARTISTS = 1_180_000_000_000_000_200
ALICE_DMS = 1_180_000_000_000_000_300
NAMES = Names(
    now=NOW,
    users={ALICE: "Alice", BOB: "Bob", CHEN: "Chen", DANA: "Dana"},
    channels={ART: "art", MODLOG: "mod-log", SHOWCASE: "showcase"},
    roles={ARTISTS: "Artists"},
)
PROMPT = "a lighthouse on a cliff at dusk, oil painting, warm light on the water"


@dataclass(frozen=True)
class Scene:
    """One picture: its file name (without .png), what it shows, and the message."""

    name: str
    about: str
    message: Message


#: The sample avatars: name, then the two colours of its gradient.
AVATARS = {"fluxbot": ((88, 101, 242), (235, 69, 158)), "alice": ((250, 166, 26), (237, 66, 69)),
           "dana": ((35, 165, 90), (0, 168, 252))}  # fmt: skip


@dataclass(frozen=True)
class Samples:
    """The sample files in a work folder: four results and the avatars; `draw` writes them."""

    folder: Path

    @property
    def paintings(self) -> tuple[Path, ...]:
        """The four sample results."""
        return tuple(self.folder / f"painting-{n + 1}.png" for n in range(len(pngs.PALETTES)))

    @property
    def bot(self) -> Author:
        """The bot, as its messages show it."""
        return Author("fluxbot", self.folder / "fluxbot.png", bot=True)

    @property
    def alice(self) -> Author:
        """The member whose jobs the pictures show."""
        return Author("Alice", self.folder / "alice.png")

    @property
    def moderator(self) -> Author:
        """The moderator who runs /fluxadmin."""
        return Author("Dana", self.folder / "dana.png")

    def draw(self) -> None:
        """Write the sample PNGs into the folder."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for n, path in enumerate(self.paintings):
            path.write_bytes(pngs.painting(n))
        for name, (colour, accent) in AVATARS.items():
            (self.folder / f"{name}.png").write_bytes(pngs.avatar(colour, accent))

    def provider_url(self, job_id: int, n: int) -> str:
        """Where the provider would keep image `n` of a job (mapped to a sample file, never fetched)."""
        return f"https://cdn.provider.example/flux/{job_id}/{n}.png"

    def images(self) -> dict[str, Path]:
        """Every image URL a card may name, and the sample file shown for it."""
        return {
            self.provider_url(job_id, n + 1): path for job_id in (128, 129) for n, path in enumerate(self.paintings)
        }

    def uploads(self, job_id: int, *, spoiler: bool = False) -> dict[str, Path]:
        """The files the bot uploads with a result, named as delivery names them (`flux-<job>-<n>.png`)."""
        prefix = "SPOILER_" if spoiler else ""
        return {f"{prefix}flux-{job_id}-{n + 1}.png": path for n, path in enumerate(self.paintings)}


def reply(channel_id: int, job_id: int, *, guild: int | None = GUILD) -> Reply:
    """Where Alice's job `job_id` was answered (the message id is made up from the job's)."""
    token = ""  # a sample job's reply is never edited
    return Reply(ALICE, guild, channel_id, APP, interaction_token=token, message_id=1_180_000_000_000_001_000 + job_id)


def job(**changes: Any) -> Job:
    """A realistic job of Alice's in #art; `changes` override any of its values."""
    values: dict[str, Any] = {
        "id": 128,
        "status": JobStatus.SUBMITTED,
        "action": "generate",
        "provider": "acedata",
        "model": "flux-dev",
        "prompt": PROMPT,
        "size": "1024x1024",
        "count": 4,
        "image_url": None,
        "reply": reply(ART, 128),
        "task_id": "3f9c2a7e-1b44-4d0c-9a51-8e2f6d7c0b13",
        "created_at": NOW - 9,
        "submitted_at": NOW - 8,
    }
    values.update(changes)
    return Job(**values)


def finished(samples: Samples, job_id: int = 128) -> Job:
    """A job that made four images."""
    images = tuple(Image(samples.provider_url(job_id, n), seed=1_734_221 + 97 * n) for n in range(1, 5))
    return job(id=job_id, status=JobStatus.SUCCEEDED, images=images, created_at=NOW - 19, finished_at=NOW - 1,
               inference_seconds=11.8)  # fmt: skip


def _embeds(embeds: list[discord.Embed]) -> list[dict[str, Any]]:
    return [dict(embed.to_dict()) for embed in embeds]


def _buttons(view: discord.ui.View | None) -> list[dict[str, Any]]:
    return [dict(row) for row in view.to_components()] if view else []


def scenes(samples: Samples) -> list[Scene]:
    """Every picture, built from the bot's cards for the sample jobs."""
    imagine = (samples.alice, "/imagine")
    bot = samples.bot
    result = finished(samples)
    spoiled = finished(samples, 129)
    refused = error_from_answer(403, {"error": {"code": "forbidden", "message": "prompt flagged by the safety filter"}},
                                action="generate")  # fmt: skip
    failed = job(id=130, status=JobStatus.FAILED, error_message=refused.user_message, finished_at=NOW - 2)
    brazilian = replace(finished(samples, 132), reply=replace(reply(ART, 132), locale="pt-BR"))
    queued = job(id=131, status=JobStatus.QUEUED, task_id=None, submitted_at=None, created_at=NOW - 4)
    return [
        Scene("queued", "A job waiting in line for a free slot at the provider",
              Message(bot, _embeds(render.queued_card(queued, now=NOW, position=3)), command=imagine)),
        Scene("progress", "A job at the provider: elapsed time and how long this model's jobs usually take",
              Message(bot, _embeds(render.queued_card(job(), now=NOW, estimate=Estimate(8.0, 14.0, 40.0))),
                      command=imagine)),
        Scene("result-gallery", "A result: four images in one gallery, with the buttons under it",
              Message(bot, _embeds(render.result_card(result, attachments=list(samples.uploads(128)))),
                      _buttons(result_view(result)), files=samples.uploads(128), command=imagine)),
        Scene("result-spoiler", "A result on a server that shows results as spoilers",
              Message(bot, _embeds(render.result_card(spoiled, attachments=list(samples.uploads(129, spoiler=True)),
                                                      spoiler=True)),
                      _buttons(result_view(spoiled)), files=samples.uploads(129, spoiler=True), command=imagine)),
        Scene("result-pt-BR", "The same result in a server whose language is Brazilian Portuguese",
              Message(bot, _embeds(render.result_card(brazilian, attachments=list(samples.uploads(132)))),
                      _buttons(result_view(brazilian)), files=samples.uploads(132),
                      command=(samples.alice, "/imaginar"))),
        Scene("failure", "A job the provider refused: what happened, and what to do",
              Message(bot, _embeds(render.failure_card(failed)), _buttons(result_view(failed)), command=imagine)),
        Scene("details", "The Details button: everything about one job, for the member only",
              Message(bot, [render_details.details_card(result, locale=None).to_dict()], ephemeral=True)),
        Scene("jobs", "/jobs: a member's recent jobs with links to their results",
              Message(bot, [render_details.jobs_page(_recent(samples), total=23, page=0, pages=5, now=NOW,
                                                     locale=None).to_dict()],
                      _buttons(jobs_page_view(0, 5, locale=None)), command=(samples.alice, "/jobs"), ephemeral=True)),
        Scene("settings", "/fluxadmin show: a server's settings, as its moderators see them",
              Message(bot, [_settings().to_dict()], command=(samples.moderator, "/fluxadmin show"), ephemeral=True)),
        Scene("usage", "/fluxadmin usage: images per member and per day",
              Message(bot, [usage_card(_report(), locale=None).to_dict()],
                      command=(samples.moderator, "/fluxadmin usage"), ephemeral=True)),
        Scene("modlog", "The moderation log: one message per refused prompt, the prompt behind a spoiler",
              Message(bot, [refusal_card(BOB, ART, "a gory battle scene, lots of blood", parse_rule("gore"),
                                         now=NOW - 60, locale=None).to_dict()])),
    ]  # fmt: skip


def _recent(samples: Samples) -> list[Job]:
    return [
        job(id=131, status=JobStatus.QUEUED, task_id=None, created_at=NOW - 4, prompt="a red fox in fresh snow, "
            "watercolour", reply=reply(ART, 131)),
        finished(samples),
        job(id=127, status=JobStatus.SUCCEEDED, created_at=NOW - 3_000, model="flux-pro-1.1",
            prompt="isometric cosy library with a cat asleep on the stairs", deleted_at=NOW - 2_000),
        job(id=126, status=JobStatus.FAILED, created_at=NOW - 7_400, prompt="the same lighthouse, in a storm",
            reply=reply(SHOWCASE, 126)),
        job(id=125, status=JobStatus.SUCCEEDED, created_at=NOW - 90_000, model="flux-kontext-pro", action="edit",
            prompt="make it night, add stars",
            reply=reply(ALICE_DMS, 125, guild=None)),
    ]  # fmt: skip


def _settings() -> discord.Embed:
    settings = GuildSettings(
        default_model="flux-dev",
        allowed_models=("flux-dev", "flux-pro-1.1", "flux-kontext-pro"),
        allowed_channels=(ART, SHOWCASE),
        required_role=ARTISTS,
        member_jobs=2,
        cooldown_seconds=30,
        daily_images=40,
        blocklist=("gore", "re:\\bnsfw\\b"),
        modlog_channel=MODLOG,
        strikes=3,
        pause_minutes=30,
        spoilers="outside_age_restricted",
    )
    operator = Limits(member_jobs=3, cooldown_seconds=10, daily_images=100)
    return settings_card(settings, settings.limits(operator), "flux-dev", serve_dms=True, locale=None)


def _report() -> GuildReport:
    today = datetime.fromtimestamp(NOW, UTC).date()

    def day(back: int, images: int, jobs: int, failures: int) -> DayUsage:
        return DayUsage(today - timedelta(days=back), images, jobs, failures)

    members = [MemberUsage(ALICE, 38, 11, 1), MemberUsage(CHEN, 21, 7, 0), MemberUsage(BOB, 6, 3, 2)]
    per_day = [day(0, 17, 5, 1), day(1, 24, 8, 0), day(3, 12, 4, 2), day(6, 12, 4, 0)]
    return GuildReport(
        days=7, members=members, more_members=0, per_day=per_day, open_jobs={"queued": 1, "submitted": 2}
    )
