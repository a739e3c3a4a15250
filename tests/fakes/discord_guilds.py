"""The fake Discord's servers (guilds) and Discord's shard formula: which gateway connection gets which guild."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

DISCORD_EPOCH_MS = 1420070400000
EVERYONE_PERMISSIONS = 2248473465835073
ALL_PERMISSIONS = 8866461766385663
ALL_BUT_ADMIN = ALL_PERMISSIONS & ~8
#: Guild ids made by `guild_id_on_shard` are created from here on (April 2023), some minutes apart.
_MADE_FROM_MS = 1_682_000_000_000 - DISCORD_EPOCH_MS
_made = itertools.count()


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard Discord sends a guild's events and interactions to: `(guild_id >> 22) % shard_count`."""
    return (guild_id >> 22) % shard_count


def guild_id_on_shard(shard: int, shard_count: int) -> int:
    """A new real-looking guild id (a snowflake from 2023) that Discord's formula puts on `shard` of `shard_count`."""
    if not 0 <= shard < shard_count:
        raise ValueError(f"shard {shard} is not one of 0..{shard_count - 1}")
    made = next(_made)
    ms = _MADE_FROM_MS + made * 1_000_003
    ms += (shard - ms) % shard_count  # the timestamp's remainder is the shard
    return (ms << 22) | (1 << 17) | (made & 0xFFF)


@dataclass
class FakeGuild:
    """One server the bot is in: its text channel, the bot's managed role, other roles, and each member's roles."""

    id: int
    channel_id: int
    bot_role_id: int
    name: str = "Fluxbot Test Guild"
    #: Roles besides @everyone and the bot's, by id.
    roles: dict[int, str] = field(default_factory=dict)
    #: Members and their role ids (besides @everyone).
    members: dict[int, list[int]] = field(default_factory=dict)

    def on_shard(self, shard_id: int, shard_count: int) -> bool:
        """Whether a gateway connection of shard `shard_id` of `shard_count` gets this guild."""
        return shard_of(self.id, shard_count) == shard_id

    def text_channel_json(self, channel_id: int | None = None, name: str = "general") -> dict[str, Any]:
        """A text channel of this guild (by default its main one)."""
        return {
            "id": str(channel_id or self.channel_id),
            "type": 0,
            "guild_id": str(self.id),
            "name": name,
            "position": 0,
            "permission_overwrites": [],
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
            "icon_emoji": None,
            "theme_color": None,
        }

    def roles_json(self, bot_user_id: int) -> list[dict[str, Any]]:
        """The guild's roles: @everyone, the bot's managed role, then the others."""

        def role(role_id: int, name: str, permissions: int, position: int, **extra: Any) -> dict[str, Any]:
            return {
                "id": str(role_id),
                "name": name,
                "description": None,
                "permissions": str(permissions),
                "position": position,
                "color": 0,
                "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                "hoist": False,
                "icon": None,
                "unicode_emoji": None,
                "managed": False,
                "mentionable": False,
                "flags": 0,
                **extra,
            }

        return [
            role(self.id, "@everyone", EVERYONE_PERMISSIONS, 0),
            role(self.bot_role_id, "fluxbot", ALL_BUT_ADMIN, 1, managed=True, tags={"bot_id": str(bot_user_id)}),
            *(role(r, name, 0, 2 + n) for n, (r, name) in enumerate(self.roles.items())),
        ]

    def guild_json(self, *, owner_id: int, bot_user_id: int) -> dict[str, Any]:
        """The guild object as REST returns it."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "icon_hash": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "roles": self.roles_json(bot_user_id),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_presences": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw_level": 0,
            "nsfw": False,
            "premium_progress_bar_enabled": False,
            "incidents_data": None,
        }
