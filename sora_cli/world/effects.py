"""Things that move in the background: ocean waves, underwater bubbles, rain and snow.

Particles are drawn as small precomputed stamps placed with one vectorised scatter per frame,
so a hundred raindrops cost about as much as one.
"""

from __future__ import annotations

import math

import numpy as np

from sora_cli.world.motion import HORIZON, Camera

F32 = np.float32
RAIN = (180, 190, 220)
SNOW = (245, 245, 245)
WAVE = (80, 130, 195)
BUBBLE = (170, 215, 235)


def _disc_stamp(r: float, ring: bool = False):
    R = int(math.ceil(r + 1))
    dy, dx = np.mgrid[-R:R + 1, -R:R + 1]
    d = np.sqrt(dx ** 2 + dy ** 2)
    if ring:
        a = np.clip(1.0 - np.abs(d - r) / 0.9, 0, 1) * 0.9 + (d < r) * 0.2
    else:
        a = np.clip(r - d + 0.5, 0, 1)
    keep = a > 0.02
    return dy[keep], dx[keep], a[keep].astype(F32)


def _scatter(frame, ys, xs, stamp, color):
    """Blend the stamp (dy, dx, alpha) at integer positions (ys, xs) into frame."""
    h, w = frame.shape[:2]
    sdy, sdx, sa = stamp
    Y = (ys[:, None] + sdy[None, :]).ravel()
    X = (xs[:, None] + sdx[None, :]).ravel()
    A = np.broadcast_to(sa[None, :], (len(ys), len(sa))).ravel()
    keep = (Y >= 0) & (Y < h) & (X >= 0) & (X < w)
    Y, X, A = Y[keep], X[keep], A[keep]
    pix = frame[Y, X].astype(F32)
    frame[Y, X] = (pix + (np.asarray(color, F32) - pix) * A[:, None] + 0.5).astype(np.uint8)


class Waves:
    """Lighter dashed wave lines on the water that drift and bob (ocean)."""

    def __init__(self, height, width, rng):
        self.h, self.w = height, width
        self.unit = min(height, width) / 256
        hz = HORIZON * height
        k = np.arange(7)
        self.rows = hz + (height - hz) * ((k + 0.6) / 7.2) ** 1.3
        self.phase = rng.uniform(0, 2 * np.pi, (7, 2)).astype(F32)
        self.lam = (width * rng.uniform(0.08, 0.14, 7) * (1 + k / 4)).astype(F32)

    def draw(self, frame, t, cam: Camera):
        z, p = cam.zoom(t), cam.pan(t)
        xs = np.arange(self.w, dtype=F32) + 0.5
        xw = cam.cx + (xs - cam.cx) / z + p        # world x of each frame column
        half = max(1.0, 0.9 * self.unit * z)
        for i, row in enumerate(self.rows):
            yf = cam.cy + z * (row - cam.cy)
            lam = self.lam[i]
            dash = np.clip(np.sin(2 * np.pi * (xw / (2.6 * lam)) + self.phase[i, 1] - 1.6 * t)
                           * 3 - 1.2, 0, 1)
            yline = yf + 1.2 * self.unit * z * np.sin(2 * np.pi * xw / lam + self.phase[i, 0] + 2.5 * t)
            r0, r1 = int(max(yf - 4 * half - 2, 0)), int(min(yf + 4 * half + 3, self.h))
            if r1 <= r0:
                continue
            ys = np.arange(r0, r1, dtype=F32)[:, None] + 0.5
            a = np.clip(half + 0.5 - np.abs(ys - yline[None, :]), 0, 1) * dash[None, :] * 0.85
            region = frame[r0:r1].astype(F32)
            region += (np.asarray(WAVE, F32) - region) * a[..., None]
            frame[r0:r1] = (region + 0.5).astype(np.uint8)


class Particles:
    """Rain streaks, snow flakes or bubbles moving through the frame.

    Background particles may wrap around (a new drop enters as one leaves); subjects never do.
    """

    def __init__(self, kind, height, width, rng):
        self.kind, self.h, self.w = kind, height, width
        unit = min(height, width) / 256
        area = height * width
        if kind == "rain":
            n = int(area / 700)
            length = max(4, round(11 * unit))
            j = np.arange(length)
            slant = 0.18
            a = np.ones(length, F32)
            a[0] = a[-1] = 0.55
            thick = max(1, round(1.5 * unit))      # 2 px at 256: survives H.264's chroma
            dx = np.round(-j * slant).astype(int)
            self.stamp = (np.tile(j, thick), np.concatenate([dx + k for k in range(thick)]),
                          np.tile(a, thick))
            self.speed = rng.uniform(1.3, 1.7, n) * height       # px per second, down
            self.drift = -slant * self.speed
            self.sway = np.zeros(n)
            self.margin = length + 2
            self.color = RAIN
        elif kind == "snow":
            n = int(area / 450)
            self.stamp = _disc_stamp(max(1.2, 1.5 * unit))
            self.speed = rng.uniform(0.15, 0.3, n) * height
            self.drift = rng.uniform(-0.03, 0.03, n) * width
            self.sway = rng.uniform(1.5, 4.0, n) * unit
            self.margin = 4
            self.color = SNOW
        elif kind == "bubbles":
            n = int(area / 4000)
            self.stamp = _disc_stamp(max(1.5, 3.0 * unit), ring=True)
            self.speed = -rng.uniform(0.12, 0.28, n) * height    # rising
            self.drift = np.zeros(n)
            self.sway = rng.uniform(1.0, 3.0, n) * unit
            self.margin = 6
            self.color = BUBBLE
        else:
            raise ValueError(kind)
        self.x0 = rng.uniform(0, width, n)
        self.y0 = rng.uniform(0, height + self.margin, n)
        self.freq = rng.uniform(0.5, 1.2, n)
        self.ph = rng.uniform(0, 2 * np.pi, n)

    def draw(self, frame, t):
        span = self.h + self.margin
        y = np.mod(self.y0 + self.speed * t, span) - self.margin / 2
        x = np.mod(self.x0 + self.drift * t + self.sway * np.sin(2 * np.pi * self.freq * t + self.ph),
                   self.w)
        _scatter(frame, np.round(y).astype(int), np.round(x).astype(int), self.stamp, self.color)
