"""Make the README's pictures of what members see, from the bot's real cards.

Run from the repository root, after changing a card:

    .venv/bin/python -m docs.pictures.make            # every picture into docs/pictures/
    .venv/bin/python -m docs.pictures.make jobs usage # only these
    .venv/bin/python -m docs.pictures.make --html /tmp/pages   # also keep the HTML pages to look at

It draws the sample images, lays each card out as Discord does (layout.py, discord.html) and screenshots it in
headless Chromium (browser.py; Debian's `chromium` package).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from docs.pictures.browser import BrowserError, chromium
from docs.pictures.layout import Renderer
from docs.pictures.scenes import NAMES, Samples, Scene, scenes

HERE = Path(__file__).resolve().parent
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")


class UnknownPicture(ValueError):
    """A picture name that is not one of the scenes; the message lists the names there are."""


def write_pages(folder: Path, only: Sequence[str] = ()) -> list[tuple[Scene, Path]]:
    """Draw the samples into `folder` and write one HTML page per picture there (all, or those named `only`)."""
    samples = Samples(folder / "samples")
    every = scenes(samples)
    unknown = sorted(set(only) - {scene.name for scene in every})
    if unknown:
        known = ", ".join(scene.name for scene in every)
        raise UnknownPicture(f"No picture called {', '.join(unknown)}. Pick from: {known}.")
    samples.draw()
    renderer = Renderer(NAMES, samples.images())
    pages = []
    for scene in every:
        if only and scene.name not in only:
            continue
        page = folder / f"{scene.name}.html"
        page.write_text(renderer.page(scene.message, title=scene.about), encoding="utf-8")
        pages.append((scene, page))
    return pages


async def screenshot(pages: Sequence[tuple[Scene, Path]], *, executable: str | None = None) -> list[bytes]:
    """A PNG of each page; one browser takes them all."""
    async with chromium(executable) as tab:
        return [await tab.screenshot(page.as_uri()) for _, page in pages]


def take(pages: Sequence[tuple[Scene, Path]], out: Path, *, executable: str | None = None) -> list[Path]:
    """Screenshot each page into `out`, named after its scene (`result-gallery.png`, ...)."""
    shots = asyncio.run(screenshot(pages, executable=executable))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for (scene, _), data in zip(pages, shots, strict=True):
        target = out / f"{scene.name}.png"
        target.write_bytes(data)
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: which pictures, where to, and whether to keep the HTML."""
    parser = argparse.ArgumentParser(prog="python -m docs.pictures.make", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="pictures to make (default: all), e.g. result-gallery jobs")
    parser.add_argument("--out", type=Path, default=HERE, help="where the PNGs go (default: docs/pictures)")
    parser.add_argument("--html", type=Path, help="keep the HTML pages and sample images in this folder")
    parser.add_argument("--chromium", help="the Chromium executable (default: chromium on PATH)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fluxbot-pages-") as scratch:
        folder = args.html or Path(scratch)
        try:
            pages = write_pages(folder, args.names)
        except UnknownPicture as exc:
            print(exc, file=sys.stderr)
            return 2
        if not EMOJI_FONT.exists():
            print("Note: without the fonts-noto-color-emoji package the emoji show as boxes.", file=sys.stderr)
        try:
            written = take(pages, args.out, executable=args.chromium)
        except BrowserError as exc:
            print(exc, file=sys.stderr)
            return 1
    for path in written:
        print(f"{path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
