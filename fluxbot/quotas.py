"""What a member has going on (`Usage`), and why their limits refuse a new job now: jobs at once, the cooldown,
images per day and the server's budget."""

from __future__ import annotations

from dataclasses import dataclass, field

from fluxbot.budgets import BudgetUse, budget_refusal, next_utc_midnight
from fluxbot.errors import Message, Number
from fluxbot.i18n import N_, discord_time
from fluxbot.limits import Limits


@dataclass(frozen=True)
class Usage:
    """What a member has going on right now, and (when asked for a budget) their server's images so far."""

    in_flight: int
    last_command_at: float | None
    images_today: int
    server: BudgetUse = field(default_factory=BudgetUse)


def refusal(usage: Usage, limits: Limits, *, images: int, now: float) -> Message | None:
    """Why `limits` refuse a new job of `images` images, or None when they allow it."""
    if usage.in_flight >= limits.member_jobs:
        return Message.counted(
            "You already have {n} job running or waiting, and the limit here is {limit}. "
            "Please wait for it to finish, then try again (`/jobs` shows it).",
            "You already have {n} jobs running or waiting, and the limit here is {limit}. "
            "Please wait for one to finish, then try again (`/jobs` shows them).",
            usage.in_flight,
            limit=Number(limits.member_jobs),
        )
    if (waiting := cooldown_refusal(usage, limits, now=now)) is not None:
        return waiting
    if limits.daily_images:
        left = limits.daily_images - usage.images_today
        reset = int(next_utc_midnight(now))
        if left <= 0:
            # The English reads the same for any number; a translation may need forms (plural):
            return Message.counted(
                "You have used all {limit} of your images for today. Your quota resets {reset} (midnight UTC).",
                "You have used all {limit} of your images for today. Your quota resets {reset} (midnight UTC).",
                limits.daily_images,
                limit=Number(limits.daily_images),
                reset=discord_time(reset),
            )
        if images > left:
            return Message.counted(
                "That would make {images} images, but you have {left} left today. Ask for {left} or fewer.",
                "That would make {images} images, but you have {left} left today. Ask for {left} or fewer.",
                left,
                images=images,
                left=left,
            )
    if limits.budget is not None:
        return budget_refusal(limits.budget, usage.server, images=images, now=now)
    return None


def cooldown_refusal(usage: Usage, limits: Limits, *, now: float) -> Message | None:
    """Why the cooldown refuses a command now, or None."""
    if limits.cooldown_seconds and usage.last_command_at is not None:
        ready = usage.last_command_at + limits.cooldown_seconds
        if now < ready:
            return Message(
                N_("Please wait a little between commands here: you can try again {when}."),
                when=discord_time(int(ready) + 1),
            )
    return None
