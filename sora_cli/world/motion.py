"""How subjects and the camera move over time, and where subjects start.

Amounts are per 2 seconds of clip time at normal speed, so a scene moves the same at any fps
or length. They are set well above WORLD.md's thresholds (left/right >= 1/3 width, up/down >=
1/4 height, spin >= half a turn, grow >= 1.5x area, shrink <= 2/3) so the thresholds still
hold when a camera pan works against the subject.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sora_cli.world.scene import OUTDOOR, SIZE_EXTENT, Scene, Subject

SPEED_FACTOR = {"slow": 0.5, "normal": 1.0, "fast": 2.0}
TRAVEL_X = 0.60          # of frame width per 2 s (left/right)
TRAVEL_Y = 0.45          # of frame height per 2 s (up/down)
BOUNCE_X = 0.30          # sideways drift of a bounce, of frame width per 2 s
BOUNCE_HEIGHT = 0.30     # of frame height
BOUNCE_PERIOD = 1.0      # seconds per bounce at normal speed (touches the ground each period)
SPIN_TURNS = 1.0         # turns per 2 s
GROW_SCALE = 1.5         # linear scale per 2 s (area x2.25); shrink is the inverse
PAN_X = 0.20             # camera pan, of frame width per 2 s
ZOOM_SCALE = 1.3         # camera zoom per 2 s

HORIZON = 0.62           # of frame height, for settings with a sky and a ground
GROUND_SHAPES = ("car", "person", "boat")
SKY_SHAPES = ("bird", "airplane", "balloon", "star")

# Each shape's bounding box in its own units (extent 1 = larger side), facing right, y down.
SHAPE_BOUNDS = {
    "ball": (-0.5, 0.5, -0.5, 0.5), "square": (-0.5, 0.5, -0.5, 0.5),
    "triangle": (-0.5, 0.5, -0.433, 0.433), "star": (-0.5, 0.5, -0.476, 0.476),
    "car": (-0.5, 0.5, -0.26, 0.27), "person": (-0.23, 0.23, -0.5, 0.5),
    "bird": (-0.5, 0.5, -0.46, 0.48), "fish": (-0.5, 0.48, -0.28, 0.28),
    "boat": (-0.5, 0.5, -0.52, 0.25), "balloon": (-0.36, 0.36, -0.5, 0.5),
    "airplane": (-0.5, 0.48, -0.3, 0.34),
}


@dataclass
class Pose:
    x: float          # centre, pixels
    y: float
    extent: float     # pixels
    angle: float      # radians, clockwise on screen
    facing: int       # +1 right, -1 left
    t: float          # seconds (for walking legs, flapping wings)
    pace: float       # speed factor (animation rate)
    moving: bool      # walking/swimming animation on


def subject_pose(s: Subject, t: float, height: int, width: int) -> Pose:
    """Where subject `s` (laid out) is at time t, in frame pixels before the camera."""
    m = SPEED_FACTOR[s.speed]
    k = t / 2.0 * m
    x, y = s.x * width, s.y * height
    ext = s.extent * width
    angle = 0.0
    if s.motion in ("left", "right"):
        x += (1 if s.motion == "right" else -1) * TRAVEL_X * width * k
    elif s.motion == "up":
        y -= TRAVEL_Y * height * k
    elif s.motion == "down":
        y += TRAVEL_Y * height * k
    elif s.motion == "bounce":
        x += s.heading * BOUNCE_X * width * k
        y -= BOUNCE_HEIGHT * height * abs(math.sin(math.pi * t * m / BOUNCE_PERIOD))
    elif s.motion == "spin":
        angle = s.heading * 2 * math.pi * SPIN_TURNS * k
    elif s.motion == "grow":
        ext *= GROW_SCALE ** k
    elif s.motion == "shrink":
        ext *= GROW_SCALE ** -k
    moving = s.motion in ("left", "right", "up", "down", "bounce")
    return Pose(x, y, ext, angle, s.heading or 1, t, m, moving)


class Camera:
    """Maps world pixels (= frame pixels at t=0) to frame pixels at time t."""

    def __init__(self, kind: str, height: int, width: int):
        self.kind, self.h, self.w = kind, height, width
        self.cx, self.cy = width / 2.0, height / 2.0

    def pan(self, t: float) -> float:
        """Horizontal offset of the view in world pixels (whole pixels keep the sky exact)."""
        if self.kind not in ("pan_left", "pan_right"):
            return 0.0
        sign = -1.0 if self.kind == "pan_left" else 1.0
        return float(round(sign * PAN_X * self.w * t / 2.0))

    def zoom(self, t: float) -> float:
        if self.kind == "zoom_in":
            return ZOOM_SCALE ** (t / 2.0)
        if self.kind == "zoom_out":
            return ZOOM_SCALE ** (-t / 2.0)
        return 1.0

    def to_frame(self, x: float, y: float, t: float) -> tuple[float, float, float]:
        """Frame position of world point (x, y) and the scale factor at t."""
        z = self.zoom(t)
        return self.cx + z * (x - self.cx - self.pan(t)), self.cy + z * (y - self.cy), z

    def world_rect(self, times: np.ndarray) -> tuple[int, int, int, int]:
        """The world region (x0, y0, w, h) seen by any frame, with a margin."""
        xs0, xs1, ys0, ys1 = [], [], [], []
        for t in times:
            z, p = self.zoom(t), self.pan(t)
            xs0.append(self.cx - self.cx / z + p)
            xs1.append(self.cx + self.cx / z + p)
            ys0.append(self.cy - self.cy / z)
            ys1.append(self.cy + self.cy / z)
        x0, y0 = math.floor(min(xs0)) - 2, math.floor(min(ys0)) - 2
        return x0, y0, math.ceil(max(xs1)) + 2 - x0, math.ceil(max(ys1)) + 2 - y0


# --- layout: where subjects start -------------------------------------------------------

def _half_extents(s: Subject, aspect: float) -> tuple[float, float, float, float]:
    """Bounding box offsets (left, right, top, bottom) of s in frame fractions."""
    u0, u1, v0, v1 = SHAPE_BOUNDS[s.shape]
    if s.heading < 0:
        u0, u1 = -u1, -u0
    e = s.extent
    return u0 * e, u1 * e, v0 * e * aspect, v1 * e * aspect


def start_box(s: Subject, aspect: float) -> tuple[float, float, float, float]:
    l, r, t, b = _half_extents(s, aspect)
    return s.x + l, s.x + r, s.y + t, s.y + b


def _draw_start(s: Subject, setting: str, aspect: float, rng: np.random.Generator,
                relax: int = 0) -> Subject:
    """A start position fitting the motion (so it stays in view); `relax` 1 frees x, 2 frees
    x and y (used only when two subjects cannot otherwise start apart)."""
    m = SPEED_FACTOR[s.speed]
    l, r, top, bot = _half_extents(s, aspect)
    has_ground = setting in OUTDOOR
    floor_lo, floor_hi = (0.72, 0.88) if (s.shape == "boat" and setting == "ocean") else (0.80, 0.94)

    def on_floor():
        return rng.uniform(floor_lo, floor_hi) - bot

    def free_y():
        if has_ground and s.shape in GROUND_SHAPES:
            return on_floor()
        if has_ground and s.shape in SKY_SHAPES:
            return rng.uniform(0.15, 0.42)
        return rng.uniform(0.25, 0.78)

    if s.motion in ("left", "right"):
        d = 1 if s.motion == "right" else -1
        dist = min(TRAVEL_X * m, 0.7)
        x = 0.5 - d * dist / 2 + rng.uniform(-0.06, 0.06)
        y = free_y()
    elif s.motion in ("up", "down"):
        d = -1 if s.motion == "up" else 1
        dist = min(TRAVEL_Y * m, 0.6)
        x = rng.uniform(0.15, 0.85)
        y = 0.5 - d * dist / 2 + rng.uniform(-0.05, 0.05)
    elif s.motion == "bounce":
        dist = min(BOUNCE_X * m, 0.6)
        x = 0.5 - s.heading * dist / 2 + rng.uniform(-0.08, 0.08)
        y = rng.uniform(0.84, 0.93) - bot
    elif s.motion == "grow":
        x = rng.uniform(0.3, 0.7)
        y = free_y() if s.shape in GROUND_SHAPES and has_ground else rng.uniform(0.35, 0.65)
    else:
        x = rng.uniform(0.18, 0.82)
        y = free_y()
    if relax >= 1:
        x = rng.uniform(0.0, 1.0)
    if relax >= 2 and s.motion != "bounce":
        y = rng.uniform(0.1, 0.9)
    # The whole subject is inside the frame at the start.
    x = min(max(x, -l + 0.01), 1 - r - 0.01)
    y = min(max(y, -top + 0.01), 1 - bot - 0.01)
    return replace(s, x=float(x), y=float(y))


def _overlap(a: tuple, b: tuple, margin: float = 0.02) -> float:
    w = min(a[1], b[1]) - max(a[0], b[0]) + margin
    h = min(a[3], b[3]) - max(a[2], b[2]) + margin
    return max(w, 0.0) * max(h, 0.0)


def layout(scene: Scene, height: int = 256, width: int = 256) -> Scene:
    """Fill in start positions, extents and headings left open, from the scene's seed.

    Two subjects never start overlapping (their boxes are apart at t=0) and both start inside
    the frame. Positions are fractions, so the layout is the same at every frame size.
    """
    rng = np.random.default_rng([int(scene.seed) & 0xFFFFFFFF, 1])
    aspect = width / height
    subjects = []
    for s in scene.subjects:
        heading = s.heading or (1 if s.motion == "right" else -1 if s.motion == "left"
                                else int(rng.choice([-1, 1])))
        lo, hi = SIZE_EXTENT[s.size]
        subjects.append(replace(s, heading=heading,
                                extent=s.extent if s.extent is not None else float(rng.uniform(lo, hi))))
    placed: list[Subject] = []
    for s in subjects:
        if s.x is not None and s.y is not None:
            placed.append(s)
            continue
        best, best_cost = None, None
        for attempt in range(90):
            cand = _draw_start(s, scene.setting, aspect, rng, relax=attempt // 30)
            box = start_box(cand, aspect)
            cost = sum(_overlap(box, start_box(p, aspect)) for p in placed)
            if best_cost is None or cost < best_cost:
                best, best_cost = cand, cost
            if cost == 0:
                break
        placed.append(best)
    return replace(scene, subjects=placed)


def starts_apart(scene: Scene, height: int = 256, width: int = 256) -> bool:
    """True when the laid-out subjects' start boxes do not overlap."""
    sc = layout(scene, height, width)
    boxes = [start_box(s, width / height) for s in sc.subjects]
    return all(_overlap(a, b, 0.0) == 0 for i, a in enumerate(boxes) for b in boxes[i + 1:])
