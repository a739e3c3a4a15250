"""Discord's markdown, the basics the bot's cards use, as HTML: bold, italics, underline, strike, code, links,
spoilers, block quotes, mentions and `<t:…>` timestamps (written out as Discord shows them, relative to `now`)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class Names:
    """Who and what the mentions in a card name, and the moment the pictures are taken."""

    now: float
    users: dict[int, str] = field(default_factory=dict)
    channels: dict[int, str] = field(default_factory=dict)
    roles: dict[int, str] = field(default_factory=dict)


_INLINE = re.compile(
    r"""
    \\(?P<escaped>[^\w\s])
    | `(?P<code>[^`]+)`
    | \|\|(?P<spoiler>.+?)\|\|
    | \*\*(?P<bold>.+?)\*\*
    | __(?P<underline>.+?)__
    | \*(?P<italic>[^*\s][^*]*?)\*
    | (?<!\w)_(?P<italic2>[^_\s][^_]*?)_(?!\w)
    | ~~(?P<strike>.+?)~~
    | \[(?P<link_text>[^\]]+)\]\((?P<link_url>[^)\s]+)\)
    | <@!?(?P<user>\d+)>
    | <@&(?P<role>\d+)>
    | <\#(?P<channel>\d+)>
    | <t:(?P<time>-?\d+)(?::(?P<style>[tTdDfFR]))?>
    | (?P<url>https?://[^\s<>()|]+)
    """,
    re.VERBOSE,
)


def _when(moment: datetime) -> str:
    return f"{moment:%B} {moment.day}, {moment.year}"


def _clock(moment: datetime, *, seconds: bool = False) -> str:
    hour = moment.hour % 12 or 12
    tail = f":{moment.second:02d}" if seconds else ""
    return f"{hour}:{moment.minute:02d}{tail} {'AM' if moment.hour < 12 else 'PM'}"


def relative(seconds: float) -> str:
    """`in 5 minutes`, `2 hours ago`: how Discord writes a `:R` timestamp."""
    ahead = seconds > 0
    seconds = abs(seconds)
    unit, size = next(
        ((u, s) for u, s in (("day", 86400), ("hour", 3600), ("minute", 60)) if seconds >= s), ("second", 1)
    )
    amount = round(seconds / size)
    words = f"{amount} {unit}{'' if amount == 1 else 's'}"
    return f"in {words}" if ahead else f"{words} ago"


def timestamp(value: int, style: str, now: float) -> str:
    """A `<t:value:style>` as Discord writes it (in UTC, US English, Discord's default)."""
    moment = datetime.fromtimestamp(value, UTC)
    if style == "R":
        return relative(value - now)
    formats = {
        "t": _clock(moment),
        "T": _clock(moment, seconds=True),
        "d": f"{moment.month:02d}/{moment.day:02d}/{moment.year}",
        "D": _when(moment),
        "f": f"{_when(moment)} {_clock(moment)}",
        "F": f"{moment:%A}, {_when(moment)} {_clock(moment)}",
    }
    return formats[style]


def inline(text: str, names: Names) -> str:
    """One line of Discord markdown as HTML."""
    out: list[str] = []
    done = 0
    for match in _INLINE.finditer(text):
        out.append(html.escape(text[done : match.start()]))
        done = match.end()
        out.append(_token(match, names))
    out.append(html.escape(text[done:]))
    return "".join(out)


def _token(match: re.Match[str], names: Names) -> str:
    part = match.groupdict()
    if part["escaped"] is not None:
        return html.escape(part["escaped"])
    if part["code"] is not None:
        return f'<code class="inline">{html.escape(part["code"])}</code>'
    wrappers = {"spoiler": "span class=spoiler", "bold": "strong", "underline": "u", "strike": "s"}
    for group, tag in wrappers.items():
        if part[group] is not None:
            return f"<{tag}>{inline(part[group], names)}</{tag.split()[0]}>"
    if part["italic"] is not None or part["italic2"] is not None:
        return f"<em>{inline(part['italic'] or part['italic2'], names)}</em>"
    if part["link_text"] is not None:
        url = html.escape(part["link_url"], quote=True)
        return f'<a class="link" href="{url}">{inline(part["link_text"], names)}</a>'
    if part["user"] is not None:
        return _mention("@" + names.users.get(int(part["user"]), "unknown-user"))
    if part["role"] is not None:
        return _mention("@" + names.roles.get(int(part["role"]), "deleted-role"))
    if part["channel"] is not None:
        return _mention("#" + names.channels.get(int(part["channel"]), "unknown"))
    if part["time"] is not None:
        written = timestamp(int(part["time"]), part["style"] or "f", names.now)
        return f'<span class="timestamp">{html.escape(written)}</span>'
    url = html.escape(part["url"], quote=True)
    return f'<a class="link" href="{url}">{url}</a>'


def _mention(text: str) -> str:
    return f'<span class="mention">{html.escape(text)}</span>'


def blocks(text: str, names: Names) -> str:
    """Several lines of Discord markdown as HTML: runs of `> ` lines become a block quote, the rest stay lines."""
    out: list[str] = []
    quote: list[str] = []
    plain: list[str] = []

    def flush_quote() -> None:
        if quote:
            out.append(
                '<div class="quote"><div class="bar"></div><blockquote>' + "<br>".join(quote) + "</blockquote></div>"
            )
            quote.clear()

    def flush_plain() -> None:
        if plain:
            out.append('<div class="lines">' + "<br>".join(plain) + "</div>")
            plain.clear()

    for line in text.split("\n"):
        if line.startswith("> ") or line == ">":
            flush_plain()
            quote.append(inline(line[2:], names))
        else:
            flush_quote()
            plain.append(inline(line, names))
    flush_quote()
    flush_plain()
    return "".join(out)
