"""The moderation log: one message per refused prompt, in the channel a server's moderators chose."""

from __future__ import annotations

import logging
import time

import discord

from fluxbot.moderation import Rule

log = logging.getLogger(__name__)

#: Discord's limit for an embed field's value, less the spoiler marks.
_PROMPT_SHOWN = 1000


def refusal_card(user_id: int, channel_id: int | None, prompt: str, rule: Rule, *, now: float) -> discord.Embed:
    """What the moderators read: who, where, when, which rule; the prompt behind a spoiler."""
    embed = discord.Embed(title="Prompt refused", colour=discord.Colour.orange())
    embed.add_field(name="Member", value=f"<@{user_id}>", inline=True)
    embed.add_field(name="Where", value=f"<#{channel_id}>" if channel_id else "a direct message", inline=True)
    embed.add_field(name="When", value=f"<t:{int(now)}:f>", inline=True)
    shown = prompt if len(prompt) <= _PROMPT_SHOWN else prompt[: _PROMPT_SHOWN - 1] + "…"
    embed.add_field(name="Prompt", value=f"||{discord.utils.escape_markdown(shown)}||", inline=False)
    whose = "the bot operator's list" if rule.source == "operator" else "this server's blocklist"
    embed.add_field(name="Rule", value=f"`{rule.text}` ({whose})", inline=False)
    return embed


async def report_refusal(
    client: discord.Client, modlog_channel: int, *, user_id: int, channel_id: int | None, prompt: str, rule: Rule
) -> None:
    """Post the refusal to the moderation log; a channel the bot cannot post in is logged, never raised."""
    card = refusal_card(user_id, channel_id, prompt, rule, now=time.time())
    try:
        await client.get_partial_messageable(modlog_channel).send(
            embed=card, allowed_mentions=discord.AllowedMentions.none()
        )
    except discord.HTTPException as exc:
        log.warning("could not post to the moderation log channel %s: %s %s", modlog_channel, exc.status, exc.text)
