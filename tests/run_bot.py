"""Runs the real `bot.py` with discord.py pointed at the fake Discord given in FAKE_DISCORD_URL.

discord.py reads its REST base and gateway address from two class attributes; setting them before
bot.py starts is the only difference from a production run.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

import discord
import yarl

BOT = Path(__file__).resolve().parent.parent / "bot.py"


def main() -> None:
    """Point discord.py at the fake and run bot.py as __main__."""
    base = os.environ["FAKE_DISCORD_URL"].rstrip("/")
    discord.http.Route.BASE = f"{base}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(base.replace("http://", "ws://", 1) + "/gateway")
    sys.argv = [str(BOT)]
    runpy.run_path(str(BOT), run_name="__main__")


if __name__ == "__main__":
    main()
