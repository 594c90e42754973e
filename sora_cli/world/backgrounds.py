"""The settings of WORLD.md as static backgrounds, drawn once per clip over the world region
the camera will see (sky gradient, ground, sun, stars, hills, skyline and lit windows).

Colours are WORLD.md's exactly: the sky's top row and the ground are the spec's sRGB values.
"""

from __future__ import annotations

import numpy as np

from sora_cli.world.motion import HORIZON

F32 = np.float32
DAY_SKY = ((90, 150, 230), (170, 210, 250))
NIGHT_SKY = ((10, 15, 40), (25, 35, 70))
# setting -> (sky top, sky at horizon, ground); underwater/space: top, bottom, None.
SETTING_COLORS = {
    "field": (*DAY_SKY, (70, 150, 60)),
    "ocean": (*DAY_SKY, (20, 80, 160)),
    "desert": (*DAY_SKY, (220, 190, 120)),
    "snow": ((200, 210, 225), (200, 210, 225), (235, 240, 245)),
    "sunset": ((70, 40, 110), (250, 140, 60), (50, 30, 50)),
    "night": (*NIGHT_SKY, (15, 20, 25)),
    "city": (*NIGHT_SKY, (40, 40, 45)),
    "underwater": ((10, 60, 90), (30, 130, 150), None),
    "space": ((5, 5, 10), (5, 5, 10), None),
}
SUN = (255, 240, 170)
SUNSET_SUN = (255, 190, 100)   # light orange: well apart from the orange subject colour
SKYLINE = (30, 30, 40)
WINDOW = (250, 220, 120)


def _blend(img: np.ndarray, mask: np.ndarray, color) -> None:
    """img (float, h, w, 3) += (color - img) * mask, in place."""
    img += (np.asarray(color, F32) - img) * mask[..., None]


def _disc(xx, yy, cx, cy, r):
    return np.clip(r - np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) + 0.5, 0.0, 1.0)


def _stars(img, yy, xx, rng, density, y_max, unit):
    """Small white stars: one-pixel dots of varied brightness, a few with a faint cross."""
    h, w = img.shape[:2]
    rows = int(np.searchsorted(yy, y_max))
    if rows <= 0:
        return
    n = int(density * rows * w)
    ys = rng.integers(0, rows, n)
    xs = rng.integers(0, w, n)
    # Grey-white, below the white subject colour (245), so stars never read as a white subject.
    level = rng.uniform(185, 222, n).astype(F32)
    img[ys, xs] = level[:, None]
    big = rng.random(n) < 0.15 * unit
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        y2, x2 = np.clip(ys[big] + dy, 0, rows - 1), np.clip(xs[big] + dx, 0, w - 1)
        img[y2, x2] = (img[y2, x2] + level[big, None]) / 2


def build_background(setting: str, rect: tuple[int, int, int, int], height: int, width: int,
                     rng: np.random.Generator) -> np.ndarray:
    """The setting over world rect (x0, y0, w, h) in pixels, as (h, w, 3) uint8."""
    x0, y0, bw, bh = rect
    unit = min(height, width) / 256.0
    xx = (np.arange(bw, dtype=F32) + x0 + 0.5)[None, :]
    yy = (np.arange(bh, dtype=F32) + y0 + 0.5)[:, None]
    top, low, ground = (np.asarray(c, F32) if c is not None else None
                        for c in SETTING_COLORS[setting])
    hz = HORIZON * height

    if ground is None:  # underwater/space: a top-to-bottom gradient over the frame height
        f = np.clip((yy[:, 0] - 0.5) / max(height - 1, 1), 0, 1)[:, None]
        col = top + (low - top) * f
        img = np.broadcast_to(col[:, None, :], (bh, bw, 3)).astype(F32)
        if setting == "space":
            _stars(img, yy[:, 0], xx[0], rng, 1 / 350, np.inf, unit)
        return (img + 0.5).astype(np.uint8)

    f = np.clip((yy[:, 0] - 0.5) / max(hz - 1, 1), 0, 1)[:, None]
    sky = top + (low - top) * f
    img = np.broadcast_to(sky[:, None, :], (bh, bw, 3)).astype(F32)
    if setting in ("night", "city"):
        _stars(img, yy[:, 0], xx[0], rng, 1 / 500 if setting == "night" else 1 / 900, hz - 3, unit)
    if setting in ("field", "desert"):
        cx = width * rng.uniform(0.15, 0.85)
        cy = height * rng.uniform(0.11, 0.2)
        _blend(img, _disc(xx, yy, cx, cy, 0.065 * min(height, width)), SUN)
    if setting == "sunset":
        cx = width * rng.uniform(0.25, 0.75)
        _blend(img, _disc(xx, yy, cx, hz - 0.02 * height, 0.09 * min(height, width)), SUNSET_SUN)

    # Ground: a straight horizon, or dark rolling hills at sunset.
    line = np.full(xx.shape, hz, F32)
    if setting == "sunset":
        ph = rng.uniform(0, 2 * np.pi, 2)
        line = hz + height * (0.025 * np.sin(xx / width * 2 * np.pi * 1.3 + ph[0])
                              + 0.015 * np.sin(xx / width * 2 * np.pi * 3.1 + ph[1]))
    if setting == "city":
        _skyline(img, xx[0], yy[:, 0], hz, height, width, rng, unit)
    _blend(img, np.clip(yy - line + 0.5, 0, 1), ground)
    return (img + 0.5).astype(np.uint8)


def _skyline(img, xs, ys, hz, height, width, rng, unit):
    """Dark buildings standing on the horizon, with a grid of windows, some lit."""
    x = xs[0] - rng.uniform(0, 0.1) * width
    hz_row = int(np.searchsorted(ys, hz))
    win_w, win_h = max(1, round(2.5 * unit)), max(1, round(3.5 * unit))
    step_x, step_y = max(2, round(6 * unit)), max(2, round(8 * unit))
    while x < xs[-1]:
        bw = width * rng.uniform(0.06, 0.14)
        top = hz - height * rng.uniform(0.1, 0.34)
        c0, c1 = np.searchsorted(xs, x), np.searchsorted(xs, x + bw)
        r0 = int(np.searchsorted(ys, top))
        if c1 > c0 and hz_row > r0:
            img[r0:hz_row, c0:c1] = SKYLINE
            # Windows: a grid inset from the walls; roughly a third of them lit.
            for wy in range(r0 + step_y // 2, hz_row - win_h, step_y):
                for wx in range(c0 + 2, c1 - win_w - 1, step_x):
                    if rng.random() < 0.35:
                        img[wy:wy + win_h, wx:wx + win_w] = WINDOW
        x += bw + width * rng.uniform(0.0, 0.03)
