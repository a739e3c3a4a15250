"""Screenshots of local HTML pages in headless Chromium (Debian's `chromium` package), clipped to one element.

Chromium is driven over its DevTools protocol (the websocket client is aiohttp's, already a dependency), so one
browser takes every picture and each is cut exactly to the `#shot` element, at twice the CSS pixel density.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

#: The flags the pictures are taken with: no GPU, no network of Chromium's own, a throwaway profile.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=800,600",
    "--remote-debugging-port=0",
)
INSTALL_HINT = "Install Debian's chromium package (apt-get install -y chromium) and run again."
#: Waits until the page's fonts and images are ready, then measures the element to keep.
_MEASURE = """
(async () => {
  await document.fonts.ready;
  await Promise.all([...document.images].map(i => i.decode().catch(() => null)));
  const r = document.querySelector(%s).getBoundingClientRect();
  return {x: r.x, y: r.y, width: Math.ceil(r.width), height: Math.ceil(r.height)};
})()
"""


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or refused a command; the message says which."""


def find_chromium() -> str:
    """The Chromium executable, or BrowserError saying how to install it."""
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    raise BrowserError(f"Chromium is not installed. {INSTALL_HINT}")


class Page:
    """One tab, spoken to over a DevTools session."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse, session_id: str) -> None:
        self._socket = socket
        self._session = session_id
        self._next_id = 1000

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command to the tab and return its result (BrowserError if it fails, TimeoutError after 30 s)."""
        return await _call(self._socket, method, params, session=self._session, number=self._number())

    def _number(self) -> int:
        self._next_id += 1
        return self._next_id

    async def screenshot(self, url: str, *, selector: str = "#shot", width: int = 800, scale: float = 2.0) -> bytes:
        """Load `url` and return a PNG of the element `selector`, its whole height, at `scale` device pixels."""
        await self.call("Emulation.setDeviceMetricsOverride", width=width, height=600, deviceScaleFactor=scale,
                        mobile=False)  # fmt: skip
        await self.call("Page.navigate", url=url)
        loaded = f"document.readyState === 'complete' && location.href === {json.dumps(url)}"
        for _ in range(200):  # a local page loads quickly; wait for it (not the page before), not a fixed time
            state = await self.call("Runtime.evaluate", expression=loaded, returnByValue=True)
            if state["result"].get("value") is True:
                break
            await asyncio.sleep(0.05)
        else:
            raise BrowserError(f"{url} did not finish loading within 10 s.")
        measured = await self.call("Runtime.evaluate", expression=_MEASURE % json.dumps(selector), awaitPromise=True,
                                   returnByValue=True)  # fmt: skip
        if "exceptionDetails" in measured:
            raise BrowserError(f"could not measure {selector} in {url}: {measured['exceptionDetails']}")
        box = measured["result"]["value"]
        clip = {"x": box["x"], "y": box["y"], "width": box["width"], "height": box["height"], "scale": 1}
        shot = await self.call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
        return base64.b64decode(shot["data"])


async def _call(
    socket: aiohttp.ClientWebSocketResponse,
    method: str,
    params: dict[str, Any],
    *,
    session: str | None = None,
    number: int,
    within: float = 30.0,
) -> dict[str, Any]:
    message: dict[str, Any] = {"id": number, "method": method, "params": params}
    if session:
        message["sessionId"] = session
    await socket.send_json(message)
    async with asyncio.timeout(within):
        while True:
            answer = await socket.receive_json()
            if answer.get("id") != number:
                continue  # an event, or another command's answer
            if "error" in answer:
                raise BrowserError(f"Chromium refused {method}: {answer['error'].get('message')}")
            result: dict[str, Any] = answer.get("result", {})
            return result


async def _devtools_url(executable: str, profile: Path, process: asyncio.subprocess.Process, within: float) -> str:
    # Chromium writes the port it chose (and the browser's path) to this file in the profile once it listens.
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise BrowserError(
                f"Chromium exited at start (status {process.returncode}); run `{executable} --headless --no-sandbox "
                "--dump-dom about:blank` to see why."
            )
        lines = marker.read_text().split("\n") if marker.exists() else []
        if len(lines) >= 2 and lines[1].strip():
            return f"ws://127.0.0.1:{lines[0].strip()}{lines[1].strip()}"
        await asyncio.sleep(0.05)
    raise BrowserError(f"Chromium did not open its DevTools port within {within:.0f} s.")


@contextlib.asynccontextmanager
async def chromium(executable: str | None = None, *, start_timeout: float = 30.0) -> AsyncIterator[Page]:
    """A headless Chromium with one tab, closed (with its temporary profile) on exit."""
    executable = executable or find_chromium()
    # Chromium's helper processes may still write to the profile a moment after the browser exits: its removal
    # is retried rather than failing the picture that was already taken.
    with tempfile.TemporaryDirectory(prefix="fluxbot-pictures-", ignore_cleanup_errors=True) as profile:
        command = [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"]
        quiet = asyncio.subprocess.DEVNULL
        process = await asyncio.create_subprocess_exec(*command, stdout=quiet, stderr=quiet)
        try:
            url = await _devtools_url(executable, Path(profile), process, start_timeout)
            async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0) as socket:
                target = await _call(socket, "Target.createTarget", {"url": "about:blank"}, number=1)
                attached = await _call(socket, "Target.attachToTarget", {"targetId": target["targetId"],
                                       "flatten": True}, number=2)  # fmt: skip
                yield Page(socket, attached["sessionId"])
                with contextlib.suppress(BrowserError, TimeoutError, aiohttp.ClientError):
                    await _call(socket, "Browser.close", {}, number=3, within=5)
        finally:
            if process.returncode is None:
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
            await _remove_profile(Path(profile))


async def _remove_profile(profile: Path, *, tries: int = 20) -> None:
    """Remove the browser's temporary profile, waiting for its last helper processes to let go of it."""
    for _ in range(tries):
        try:
            shutil.rmtree(profile)
            return
        except FileNotFoundError:
            return
        except OSError:
            await asyncio.sleep(0.1)
