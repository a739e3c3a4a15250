"""A message as Discord's client lays it out, as HTML: the payload the bot sends (`Embed.to_dict()`, a view's
`to_components()`, its uploads) drawn in Discord's dark theme. The CSS lives in `discord.html`."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

from docs.pictures.markdown import Names, blocks, inline

TEMPLATE = Path(__file__).with_name("discord.html")

#: Discord's button styles (component type 2), by the `style` number of the payload.
BUTTON_STYLES = {1: "primary", 2: "secondary", 3: "success", 4: "danger", 5: "link", 6: "premium"}
#: Discord combines the images of up to four embeds that share a URL into the first one's grid.
GALLERY_MAX = 4


@dataclass(frozen=True)
class Author:
    """Who posts (the bot) or who ran the command (a member): a name and an avatar file."""

    name: str
    avatar: Path
    bot: bool = False


@dataclass(frozen=True)
class Message:
    """One message as Discord receives it, plus what the reader's client shows around it."""

    author: Author
    embeds: Sequence[Mapping[str, Any]] = ()
    components: Sequence[Mapping[str, Any]] = ()
    content: str = ""
    #: Uploaded files by name; embeds show one with `attachment://name`, the others are shown above the embeds.
    files: Mapping[str, Path] = field(default_factory=dict)
    #: The slash command this message answers, with the member who ran it ("Alice used /imagine").
    command: tuple[Author, str] | None = None
    #: Only the member who ran the command sees it ("Only you can see this").
    ephemeral: bool = False


def _colour(embed: Mapping[str, Any]) -> str:
    value = embed.get("color")
    return "#1e1f22" if value is None else f"#{int(value):06x}"


def galleries(embeds: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], list[str]]]:
    """The embeds Discord shows, each with its images: embeds sharing a URL give their images to the first one."""
    shown: list[tuple[Mapping[str, Any], list[str]]] = []
    heads: dict[str, list[str]] = {}
    for embed in embeds:
        image = (embed.get("image") or {}).get("url")
        url = embed.get("url")
        if url and url in heads and image and len(heads[url]) < GALLERY_MAX:
            heads[url].append(image)
            continue
        images = [image] if image else []
        if url:
            heads.setdefault(url, images)
        shown.append((embed, images))
    return shown


def field_rows(fields: Sequence[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """Fields in Discord's rows: up to three inline fields side by side, a field that is not inline on its own."""
    rows: list[list[Mapping[str, Any]]] = []
    for item in fields:
        if item.get("inline") and rows and len(rows[-1]) < 3 and rows[-1][0].get("inline"):
            rows[-1].append(item)
        else:
            rows.append([item])
    return rows


class Renderer:
    """Draws messages; `names` resolves mentions and dates, `images` maps each image URL to a local file."""

    def __init__(self, names: Names, images: Mapping[str, Path]) -> None:
        self.names = names
        self.images = images

    def _src(self, url: str, files: Mapping[str, Path]) -> str:
        if url.startswith("attachment://"):
            local = files.get(url.removeprefix("attachment://"))
        else:
            local = self.images.get(url)
        if local is None:  # the pictures never fetch anything: every image must be one of the samples
            raise ValueError(f"no sample image for {url}; add it to the scene's images")
        return html.escape(local.resolve().as_uri(), quote=True)

    def gallery(self, urls: Sequence[str], files: Mapping[str, Path], *, spoiler: Sequence[bool] = ()) -> str:
        """Images in Discord's mosaic: one alone, two side by side, three as one tall and two, four as two by two."""
        tiles = []
        for n, url in enumerate(urls):
            hidden = n < len(spoiler) and spoiler[n]
            badge = '<span class="spoiler-badge">SPOILER</span>' if hidden else ""
            kind = "tile hidden" if hidden else "tile"
            tiles.append(f'<div class="{kind}"><img src="{self._src(url, files)}" alt="">{badge}</div>')
        return f'<div class="gallery n{len(urls)}">{"".join(tiles)}</div>'

    def embed(self, embed: Mapping[str, Any], images: Sequence[str], files: Mapping[str, Path]) -> str:
        """One embed: colour bar, author, title, description, fields, images, footer."""
        parts = []
        if author := embed.get("author"):
            parts.append(f'<div class="embed-author">{html.escape(author["name"])}</div>')
        if title := embed.get("title"):
            text = inline(title, self.names)
            if url := embed.get("url"):
                text = f'<a class="link" href="{html.escape(url, quote=True)}">{text}</a>'
            parts.append(f'<div class="embed-title">{text}</div>')
        if description := embed.get("description"):
            parts.append(f'<div class="embed-description">{blocks(description, self.names)}</div>')
        if fields := embed.get("fields"):
            parts.append(self._fields(fields))
        if images:
            parts.append(f'<div class="embed-media">{self.gallery(images, files)}</div>')
        footer_text = (embed.get("footer") or {}).get("text")
        moment = embed.get("timestamp")
        if footer_text or moment:
            bits = [html.escape(footer_text)] if footer_text else []
            if moment:
                bits.append(html.escape(self.when(datetime.fromisoformat(moment).timestamp())))
            joined = ' <span class="dot">•</span> '.join(bits)
            parts.append(f'<div class="embed-footer">{joined}</div>')
        return f'<article class="embed" style="border-left-color:{_colour(embed)}">{"".join(parts)}</article>'

    def _fields(self, fields: Sequence[Mapping[str, Any]]) -> str:
        cells = []
        for row in field_rows(fields):
            span = 12 // len(row)
            for n, item in enumerate(row):
                column = f"{1 + n * span} / {1 + (n + 1) * span}"
                cells.append(
                    f'<div class="embed-field" style="grid-column:{column}">'
                    f'<div class="embed-field-name">{inline(item["name"], self.names)}</div>'
                    f'<div class="embed-field-value">{blocks(item["value"], self.names)}</div></div>'
                )
        return f'<div class="embed-fields">{"".join(cells)}</div>'

    def components(self, rows: Sequence[Mapping[str, Any]]) -> str:
        """Action rows of buttons, in Discord's button styles."""
        out = []
        for row in rows:
            if row.get("type") != 1:
                raise ValueError(f"component type {row.get('type')} at the top level is not drawn; add it here")
            buttons = []
            for item in row["components"]:
                if item.get("type") != 2:
                    raise ValueError(f"component type {item.get('type')} is not drawn yet; add it to layout.py")
                style = BUTTON_STYLES[item["style"]]
                emoji = (item.get("emoji") or {}).get("name")
                label = item.get("label") or ""
                inner = (f'<span class="emoji">{html.escape(emoji)}</span>' if emoji else "") + html.escape(label)
                if style == "link":
                    inner += '<span class="external">↗</span>'
                disabled = " disabled" if item.get("disabled") else ""
                buttons.append(f'<button class="button {style}"{disabled}>{inner}</button>')
            out.append(f'<div class="action-row">{"".join(buttons)}</div>')
        return f'<div class="components">{"".join(out)}</div>' if out else ""

    def when(self, moment: float) -> str:
        """A message time as Discord writes it next to the name: `Today at 12:04 PM`."""
        day = datetime.fromtimestamp(moment, UTC)
        today = datetime.fromtimestamp(self.names.now, UTC)
        clock = f"{day.hour % 12 or 12}:{day.minute:02d} {'AM' if day.hour < 12 else 'PM'}"
        if day.date() == today.date():
            return f"Today at {clock}"
        return f"{day.month:02d}/{day.day:02d}/{day.year} {clock}"

    def message(self, message: Message) -> str:
        """The whole message: who used which command, the author line, content, uploads, embeds, buttons."""
        parts = []
        if message.command:
            member, command = message.command
            parts.append(
                f'<div class="interaction"><img class="mini-avatar" src="{member.avatar.resolve().as_uri()}" alt="">'
                f'<span class="mini-name">{html.escape(member.name)}</span> used '
                f'<span class="command">{html.escape(command)}</span></div>'
            )
        author = message.author
        tag = '<span class="bot-tag">APP</span>' if author.bot else ""
        parts.append(f'<img class="avatar" src="{author.avatar.resolve().as_uri()}" alt="">')
        parts.append(
            f'<h3 class="header"><span class="username">{html.escape(author.name)}</span>{tag}'
            f"<time>{html.escape(self.when(self.names.now))}</time></h3>"
        )
        if message.content:
            parts.append(f'<div class="content">{blocks(message.content, self.names)}</div>')
        shown = galleries(message.embeds)
        in_embeds = {url.removeprefix("attachment://") for _, urls in shown for url in urls}
        uploads = [name for name in message.files if name not in in_embeds]
        if uploads:
            spoilers = [name.startswith("SPOILER_") for name in uploads]
            urls = [f"attachment://{name}" for name in uploads]
            parts.append(f'<div class="attachments">{self.gallery(urls, message.files, spoiler=spoilers)}</div>')
        if shown:
            embeds = "".join(self.embed(embed, urls, message.files) for embed, urls in shown)
            parts.append(f'<div class="embeds">{embeds}</div>')
        parts.append(self.components(message.components))
        if message.ephemeral:
            parts.append(
                '<div class="ephemeral"><span class="eye">👁</span>Only you can see this · '
                '<a class="link">Dismiss message</a></div>'
            )
        kind = " with-interaction" if message.command else ""
        return f'<div class="message{kind}">{"".join(parts)}</div>'

    def page(self, message: Message, *, title: str) -> str:
        """A whole HTML page holding the message, ready to screenshot (the `#shot` element is the picture)."""
        return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
            title=html.escape(title), message=self.message(message)
        )
