#!/usr/bin/env python3
"""Draws Purser's app icon (PNG, no dependencies): a "P" with a coin on a teal-to-blue tile,
and the tray icons for each state of the app: idle (the tile), pending approvals (a red badge)
and spending paused (the tile greyed, with a pause badge).

Regenerate with `python3 icons/make_icons.py`; writes 32x32, 128x128, 128x128@2x and icon.png
(512), and tray-idle.png, tray-pending.png, tray-paused.png (64) next to this script. Shapes are
signed-distance functions, anti-aliased per pixel.
"""

import math
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

TOP_LEFT = (0x2F, 0x7D, 0x7A)  # calm teal
BOTTOM_RIGHT = (0x1D, 0x35, 0x57)  # deep blue
GLYPH = (0xF5, 0xF2, 0xEA)  # warm white
COIN = (0xE9, 0xB9, 0x5E)  # soft amber
BADGE_PENDING = (0xD6, 0x45, 0x3D)  # alert red
BADGE_PAUSED = (0x4A, 0x50, 0x5A)  # slate
BADGE_MARK = (0xFF, 0xFF, 0xFF)
BADGE = (0.76, 0.24, 0.2)  # centre x, y and radius of a tray badge


def rounded_box(px, py, cx, cy, hw, hh, r):
    """Signed distance to a box centred at (cx, cy) with half sizes hw, hh and corner radius r."""
    qx = abs(px - cx) - hw + r
    qy = abs(py - cy) - hh + r
    outside = math.hypot(max(qx, 0.0), max(qy, 0.0))
    return outside + min(max(qx, qy), 0.0) - r


def capsule(px, py, ax, ay, bx, by, r):
    """Signed distance to a segment (a, b) thickened to radius r."""
    pax, pay, bax, bay = px - ax, py - ay, bx - ax, by - ay
    h = max(0.0, min(1.0, (pax * bax + pay * bay) / (bax * bax + bay * bay)))
    return math.hypot(pax - bax * h, pay - bay * h) - r


def coverage(d, pixel):
    """Fraction of a pixel inside a shape whose signed distance at the pixel centre is d."""
    return max(0.0, min(1.0, 0.5 - d / pixel))


def over(dst, src, alpha):
    """Paints colour src with opacity alpha over the premultiplied RGBA pixel dst."""
    r, g, b, a = dst
    return (
        src[0] * alpha + r * (1 - alpha),
        src[1] * alpha + g * (1 - alpha),
        src[2] * alpha + b * (1 - alpha),
        alpha + a * (1 - alpha),
    )


def grey(colour):
    """The colour's luminance, as a grey (the paused tray icon is washed out)."""
    l = 0.3 * colour[0] + 0.59 * colour[1] + 0.11 * colour[2]
    return tuple(0.35 * c + 0.65 * l for c in colour)


def badge(px, x, y, pixel, state):
    """Paints a tray state's badge: a disc with a cut-out ring, and its mark."""
    bx, by, br = BADGE
    d = math.hypot(x - bx, y - by) - br
    cut = coverage(d - 0.045, pixel)  # clear a ring so the badge reads on any tile colour
    if cut > 0:
        r, g, b, a = px
        px = (r * (1 - cut), g * (1 - cut), b * (1 - cut), a * (1 - cut))
    disc = coverage(d, pixel)
    if disc > 0:
        px = over(px, BADGE_PENDING if state == "pending" else BADGE_PAUSED, disc)
        if state == "pending":  # "!"
            mark = min(capsule(x, y, bx, by - 0.1, bx, by + 0.02, 0.032), math.hypot(x - bx, y - (by + 0.1)) - 0.035)
        else:  # pause bars
            mark = min(capsule(x, y, bx - 0.055, by - 0.08, bx - 0.055, by + 0.08, 0.03), capsule(x, y, bx + 0.055, by - 0.08, bx + 0.055, by + 0.08, 0.03))
        m = coverage(mark, pixel)
        if m > 0:
            px = over(px, BADGE_MARK, m * disc)
    return px


def render(size, state=None):
    """The icon at `size` pixels; `state` (tray icons): None/"idle", "pending" or "paused"."""
    pixel = 1.0 / size
    rows = []
    for j in range(size):
        row = bytearray([0])  # PNG filter type: none
        y = (j + 0.5) * pixel
        for i in range(size):
            x = (i + 0.5) * pixel
            px = (0.0, 0.0, 0.0, 0.0)

            # Tile: rounded square with a diagonal gradient.
            tile = coverage(rounded_box(x, y, 0.5, 0.5, 0.45, 0.45, 0.11), pixel)
            if tile > 0:
                t = max(0.0, min(1.0, (x + y - 0.1) / 1.8))
                colour = tuple(a + (b - a) * t for a, b in zip(TOP_LEFT, BOTTOM_RIGHT))
                px = over(px, colour, tile)

            # "P": a stem and a stroked bowl.
            stem = capsule(x, y, 0.365, 0.285, 0.365, 0.735, 0.058)
            bowl = abs(rounded_box(x, y, 0.505, 0.41, 0.14, 0.125, 0.125)) - 0.056
            corner = rounded_box(x, y, 0.42, 0.2565, 0.055, 0.0275, 0.0)  # squares the top-left
            glyph = coverage(min(stem, bowl, corner), pixel)
            if glyph > 0:
                px = over(px, GLYPH, glyph * tile)

            # Coin: an amber disc with a thin ring cut into it.
            coin_d = math.hypot(x - 0.655, y - 0.675) - 0.085
            coin = coverage(coin_d, pixel)
            if coin > 0:
                px = over(px, COIN, coin * tile)
                ring = coverage(abs(coin_d + 0.028) - 0.007, pixel)
                if ring > 0 and size >= 64:
                    px = over(px, BOTTOM_RIGHT, 0.35 * ring * coin)

            if state == "paused":
                px = grey(px[:3]) + (px[3],)
            if state in ("pending", "paused"):
                px = badge(px, x, y, pixel, state)

            r, g, b, a = px
            if a > 0:  # un-premultiply
                r, g, b = r / a, g / a, b / a
            row += bytes(int(round(max(0.0, min(255.0, v)))) for v in (r, g, b, a * 255))
        rows.append(bytes(row))
    return rows


def write_png(path, size, rows):
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", header))
        f.write(chunk(b"IDAT", zlib.compress(b"".join(rows), 9)))
        f.write(chunk(b"IEND", b""))


if __name__ == "__main__":
    for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        write_png(os.path.join(HERE, name), size, render(size))
        print(f"wrote icons/{name} ({size}x{size})")
    for state in ("idle", "pending", "paused"):
        name = f"tray-{state}.png"
        write_png(os.path.join(HERE, name), 64, render(64, state))
        print(f"wrote icons/{name} (64x64)")
