"""Sample images for the pictures, drawn here (no downloads): small PNGs of a lighthouse at dusk, and avatars."""

from __future__ import annotations

import math
import struct
import zlib

RGB = tuple[int, int, int]


def encode_png(width: int, height: int, rows: list[bytes]) -> bytes:
    """A truecolour PNG from `height` rows of `width` RGB pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    t = min(1.0, max(0.0, t))
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


#: One palette per sample image: sky top, horizon, sun, sea.
PALETTES: tuple[tuple[RGB, RGB, RGB, RGB], ...] = (
    ((40, 36, 92), (247, 148, 84), (255, 226, 150), (32, 58, 96)),
    ((22, 30, 70), (220, 92, 110), (255, 200, 160), (28, 40, 80)),
    ((60, 90, 150), (250, 190, 120), (255, 245, 200), (40, 80, 120)),
    ((16, 20, 48), (150, 70, 140), (250, 170, 200), (20, 30, 64)),
)


def painting(variant: int, size: int = 320) -> bytes:
    """A lighthouse on a cliff at dusk, in one of four palettes (a stand-in for a Flux result)."""
    sky, horizon, sun_colour, sea = PALETTES[variant % len(PALETTES)]
    horizon_y = int(size * 0.62)
    sun_x, sun_y, sun_r = size * (0.28 + 0.12 * variant), size * 0.52, size * 0.09
    tower_x, tower_w, tower_top = int(size * 0.74), int(size * 0.05), int(size * 0.30)
    cliff = (24, 20, 30)
    rows = []
    for y in range(size):
        row = bytearray()
        for x in range(size):
            if y < horizon_y:
                colour = _mix(sky, horizon, (y / horizon_y) ** 1.6)
                glow = math.hypot(x - sun_x, y - sun_y)
                if glow < sun_r:
                    colour = sun_colour
                elif glow < sun_r * 2.2:
                    colour = _mix(sun_colour, colour, (glow - sun_r) / (sun_r * 1.2))
            else:
                depth = (y - horizon_y) / (size - horizon_y)
                colour = _mix(_mix(sea, horizon, 0.35), sea, depth)
                if abs(x - sun_x) < sun_r * (1.2 - depth) and (y // 3) % 2 == 0:  # the sun's path on the water
                    colour = _mix(colour, sun_colour, 0.55)
            cliff_top = horizon_y - int(size * 0.10) + int(8 * math.sin(x / 17)) + max(0, (tower_x - x) // 3)
            if x > size * 0.55 and y > cliff_top:
                colour = cliff
            in_tower = tower_top < y <= cliff_top + 2 and abs(x - tower_x) < tower_w * (0.7 + 0.3 * y / size)
            if in_tower:
                colour = (236, 232, 226) if ((y - tower_top) // 12) % 2 else (196, 60, 60)
            if tower_top - 14 < y <= tower_top and abs(x - tower_x) < tower_w * 0.6:
                colour = (255, 236, 150)  # the lamp
            row += bytes(colour)
        rows.append(bytes(row))
    return encode_png(size, size, rows)


def avatar(colour: RGB, accent: RGB, size: int = 80) -> bytes:
    """A round-able avatar: a diagonal gradient with a light disc (Discord crops it to a circle)."""
    rows = []
    for y in range(size):
        row = bytearray()
        for x in range(size):
            colour_here = _mix(colour, accent, (x + y) / (2 * size))
            if math.hypot(x - size * 0.62, y - size * 0.38) < size * 0.16:
                colour_here = _mix(colour_here, (255, 255, 255), 0.8)
            row += bytes(colour_here)
        rows.append(bytes(row))
    return encode_png(size, size, rows)
