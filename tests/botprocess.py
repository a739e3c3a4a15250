"""Starts and stops the real bot process for end-to-end tests, keeping its log output."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_BOT = Path(__file__).resolve().parent / "run_bot.py"
#: Every setting `.env.example` documents: a test bot never inherits one from the developer's shell.
SETTINGS = frozenset(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))


def clean_environ() -> dict[str, str]:
    """This process's environment without any of the bot's settings."""
    return {k: v for k, v in os.environ.items() if k not in SETTINGS}


class BotProcess:
    """One `bot.py` process with its environment; start, kill and restart it."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.output = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the process (it keeps running until killed or stopped)."""
        env = clean_environ()
        env.update({k: v for k, v in self.env.items() if v})
        env["PYTHONPATH"] = str(ROOT)
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(RUN_BOT),
            cwd=self.cwd,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # One DEBUG line holds the commands' sync payload: with its translations, more than asyncio's 64 KiB.
            limit=4 * 1024 * 1024,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        async for line in self._proc.stdout:
            self.output += line.decode(errors="replace")

    @property
    def pid(self) -> int:
        """The process id (while it runs)."""
        assert self._proc is not None
        return self._proc.pid

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._proc is not None and self._proc.returncode is None

    async def kill(self) -> None:
        """SIGKILL: no cleanup at all, like a crash or a power cut."""
        await self._signal(signal.SIGKILL)

    async def stop(self, sig: int = signal.SIGTERM) -> int | None:
        """SIGTERM (or `sig`, e.g. SIGINT for Ctrl-C) and wait; returns the exit code."""
        return await self._signal(sig)

    async def _signal(self, sig: int) -> int | None:
        if self._proc is None:
            return None
        if self._proc.returncode is None:
            self._proc.send_signal(sig)
            try:
                await asyncio.wait_for(self._proc.wait(), 15)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._reader is not None:
            await self._reader
        code = self._proc.returncode
        self._proc = None
        return code
