"""Try the bot by hand: the tests' fake Discord and fake Flux API, and a real bot.py connected to them.

    python -m tests.playground [--seconds 3] [--logs]

Type commands as in Discord's message box; every message the bot sends or edits is printed as text, with its
buttons. Nothing leaves 127.0.0.1, and the database is a temporary file removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import re
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.e2e import World, running_bot
from tests.fakes.discord_api import FakeDiscord, SentInteraction
from tests.fakes.flux_api import FakeFlux
from tests.fakes.png import make_png

HELP = """\
Type a command, as in Discord (options as name:value):
  /imagine prompt:a red fox in the snow count:2
  /edit image:photo.png prompt:make it blue       (image: any file name; the fake uploads a PNG)
  /jobs   /job number:1   /flux   /fluxadmin show   /fluxadmin limits cooldown_seconds:30
  click Re-roll                                   a button of the newest message that has one (label or number)
  form prompt:make it blue image:1                answer the form the bot opened (the Edit button's)
  help, quit (or Ctrl-D)
"""
SUBCOMMAND_TYPES = (1, 2)
SETTLE_SECONDS = 2.0


class UsageError(Exception):
    """A line the playground cannot turn into an interaction; the message says what to type."""


class Playground:
    """Turns typed lines into interactions and prints what the bot shows."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.discord = world.discord
        self._seen: dict[int, str] = {}
        self._buttons: list[tuple[int, str, str]] = []  # (message id, label, custom id) of the newest buttons
        self._form: tuple[str, int | None, list[str]] | None = None  # (custom id, message id, inputs) of the open form
        self._printed_log = 0
        self.logs = False

    async def run(self, line: str) -> None:
        """Act on one typed line."""
        word, _, rest = line.strip().partition(" ")
        if not word:
            return
        if word == "help":
            print(HELP)
        elif word == "click":
            self._after(await self._click(rest.strip()))
        elif word == "form":
            self._after(await self._submit_form(rest))
        elif word.startswith("/"):
            name, options, attachments = self._command(word[1:], rest)
            self._after(await self.discord.send_slash_command(name, options, attachments=attachments))
        else:
            raise UsageError(f"{word!r} is not a command: start with / (type help for examples)")

    def _command(self, name: str, rest: str) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
        """The options Discord would send for `/name rest`, typed by the command's synced definition."""
        synced = self.discord.commands.get(str(self.discord.guild_id), [])
        found = [c for c in synced if c["name"] == name and c.get("type", 1) == 1]
        if not found:
            names = ", ".join(sorted("/" + c["name"] for c in synced if c.get("type", 1) == 1))
            raise UsageError(f"no command /{name}; the bot has {names}")
        specs: list[dict[str, Any]] = found[0].get("options", [])
        options: list[dict[str, Any]] = []
        target, words = options, rest.split()
        while words and (sub := next((s for s in specs if s["name"] == words[0]), None)):
            if sub["type"] not in SUBCOMMAND_TYPES:
                break
            node: dict[str, Any] = {"name": sub["name"], "type": sub["type"], "options": []}
            target.append(node)
            target, specs, words = node["options"], sub.get("options", []), words[1:]
        attachments: list[dict[str, Any]] = []
        for key, value in pairs(" ".join(words), [s["name"] for s in specs if s["type"] not in SUBCOMMAND_TYPES]):
            spec = next(s for s in specs if s["name"] == key)
            if spec["type"] == 11:
                png = make_png(1024, 1024)
                attachment = self.discord.make_attachment(
                    value, "image/png", len(png), width=1024, height=1024, data=png
                )
                attachments.append(attachment)
                target.append({"name": key, "type": 11, "value": attachment["id"]})
            else:
                target.append({"name": key, "type": spec["type"], "value": convert(value, spec["type"], key)})
        return name, options, attachments

    async def _click(self, which: str) -> SentInteraction:
        if not self._buttons:
            raise UsageError("no message with buttons yet")
        labels = [label for _, label, _ in self._buttons]
        chosen = [b for i, b in enumerate(self._buttons, 1) if which == str(i) or which.lower() in b[1].lower()]
        if not which or not chosen:
            raise UsageError(f"click one of: {', '.join(labels)}")
        message_id, _, custom_id = chosen[0]
        return await self.discord.send_component(message_id, custom_id)

    async def _submit_form(self, rest: str) -> SentInteraction:
        if self._form is None:
            raise UsageError("no form is open: the Edit button opens one")
        custom_id, message_id, inputs = self._form
        fields = dict(pairs(rest, inputs))
        self._form = None
        return await self.discord.send_modal_submit(custom_id, fields, message_id=message_id)

    def _after(self, sent: SentInteraction) -> None:
        """Note a form the bot answered `sent` with (a form is no message, so `show_changes` never sees it)."""
        for callback in self.discord.callbacks_for(sent):
            body = callback.json if isinstance(callback.json, dict) else {}
            if body.get("type") == 9:
                data = body["data"]
                inputs = [c for row in data.get("components", []) for c in row.get("components", [row])]
                inputs = [c for c in inputs if "custom_id" in c]
                names = "  ".join(f"{c['custom_id']}:… ({c.get('label', '')})" for c in inputs)
                print(f"── a form opened: {data.get('title', '')}; answer with: form {names}")
                message = sent.payload.get("message")
                message_id = int(message["id"]) if message else None
                self._form = (str(data["custom_id"]), message_id, [str(c["custom_id"]) for c in inputs])

    def show_changes(self) -> bool:
        """Print every message the bot created or edited since the last call (and new log lines); True if any."""
        changed = False
        for message_id, message in list(self.discord.messages.items()):
            text = json.dumps(message, sort_keys=True)
            if self._seen.get(message_id) == text:
                continue
            print(render(message, edited=message_id in self._seen))
            self._seen[message_id] = text
            changed = True
            buttons = [
                (message_id, button_label(c), str(c["custom_id"]))
                for row in message.get("components", [])
                for c in row.get("components", [])
                if c.get("type") == 2 and "custom_id" in c and not c.get("disabled")
            ]
            if buttons:
                self._buttons = buttons
        output = self.world.bot.output
        if self.logs and len(output) > self._printed_log:
            print("".join(f"  log  {line}\n" for line in output[self._printed_log :].splitlines()), end="")
        self._printed_log = len(output)
        return changed


def pairs(text: str, names: list[str]) -> list[tuple[str, str]]:
    """`name:value` pairs of `text` for the known `names` (a value runs up to the next known name)."""
    if not text.strip():
        return []
    if not names:
        raise UsageError(f"this command takes no options, got {text.strip()!r}")
    parts = re.split(rf"(?:^|\s)({'|'.join(map(re.escape, names))}):", text)
    if parts[0].strip():
        raise UsageError(f"expected name:value before {parts[0].strip()!r}; the options are {', '.join(names)}")
    return [(key, value.strip()) for key, value in zip(parts[1::2], parts[2::2], strict=True)]


def convert(value: str, kind: int, name: str) -> Any:
    """A typed option value as Discord sends it: integer (4), boolean (5), number (10), else the text."""
    try:
        if kind == 4:
            return int(value)
        if kind == 10:
            return float(value)
    except ValueError:
        raise UsageError(f"{name}: expects a number, got {value!r}") from None
    if kind == 5:
        if value.lower() not in ("true", "false"):
            raise UsageError(f"{name}: expects true or false, got {value!r}")
        return value.lower() == "true"
    return value


def button_label(component: dict[str, Any]) -> str:
    """A button as Discord shows it: its emoji and label."""
    emoji = (component.get("emoji") or {}).get("name", "")
    return f"{emoji} {component.get('label', '')}".strip()


def render(message: dict[str, Any], *, edited: bool) -> str:
    """One message as text: who sees it, its content, embeds, attachments and buttons."""
    seen_by = "only you see it" if int(message.get("flags", 0)) & 64 else "everyone sees it"
    loading = " (thinking…)" if int(message.get("flags", 0)) & 128 else ""
    lines = [f"── message {message['id']} {'edited' if edited else 'new'}, {seen_by}{loading}"]
    if message.get("content"):
        lines.append(message["content"])
    for embed in message.get("embeds", []):
        lines += [textwrap.indent(embed[key], "  ") for key in ("title", "description") if embed.get(key)]
        lines += [f"  {field['name']}: {field['value']}" for field in embed.get("fields", [])]
        if embed.get("image"):
            lines.append(f"  image: {embed['image'].get('url')}")
        if embed.get("footer"):
            lines.append(f"  ({embed['footer'].get('text')})")
    lines += [f"  file: {a['url']}" for a in message.get("attachments", [])]
    rows = message.get("components", [])
    for row in rows:
        shown = [c for c in row.get("components", []) if c.get("type") == 2]
        if shown:
            lines.append("  " + "  ".join(f"[{button_label(c)}]" for c in shown))
    return "\n".join(lines)


async def typed_lines() -> AsyncIterator[str]:
    """Lines from standard input until end of file (read in a thread, so the bot's replies print meanwhile)."""
    while line := await asyncio.to_thread(sys.stdin.readline):
        yield line


async def watch(playground: Playground) -> None:
    """Print the bot's messages as they change, until cancelled."""
    while True:
        playground.show_changes()
        await asyncio.sleep(0.2)


async def settle(playground: Playground, timeout: float = 60) -> None:
    """Wait until nothing has changed for SETTLE_SECONDS (so piped commands see their results)."""
    loop = asyncio.get_running_loop()
    quiet_since, deadline = loop.time(), loop.time() + timeout
    while loop.time() - quiet_since < SETTLE_SECONDS and loop.time() < deadline:
        await asyncio.sleep(0.2)
        if playground.show_changes():
            quiet_since = loop.time()


async def play(seconds: float, logs: bool) -> None:
    """Start the fakes and the bot, act on every typed line, stop everything at the end."""
    discord, flux = FakeDiscord(), FakeFlux()
    await discord.start()
    await flux.start()
    flux.image_bytes = make_png(512, 512, (235, 120, 60))
    if seconds > 0:  # jobs run `seconds` at the fake provider, so the queued and running cards show
        flux.hold, flux.task_seconds = True, lambda task: seconds
    try:
        with tempfile.TemporaryDirectory(prefix="fluxbot-playground-") as folder:
            async with running_bot(discord, flux, Path(folder), LOG_LEVEL="INFO") as world:
                playground = Playground(world)
                playground.logs = logs
                print(f"fluxbot is running against a fake Discord at {discord.base_url}")
                print(f"and a fake Flux API at {flux.base_url}; its database: {world.bot.env['DATABASE_PATH']}")
                print(HELP)
                playground.show_changes()
                watcher = asyncio.create_task(watch(playground))
                async for line in typed_lines():
                    if line.strip() in ("quit", "exit"):
                        break
                    try:
                        await playground.run(line)
                    except UsageError as exc:
                        print(f"?? {exc}")
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
                await settle(playground)
                print("stopping the bot")
    finally:
        await flux.close()
        await discord.close()


def main() -> None:
    """Parse the options and play."""
    parser = argparse.ArgumentParser(prog="python -m tests.playground", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3, help="how long each job runs at the fake provider")
    parser.add_argument("--logs", action="store_true", help="print the bot's log lines too")
    args = parser.parse_args()
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # each message shows at once, also through a pipe
    asyncio.run(play(args.seconds, args.logs))


if __name__ == "__main__":
    main()
