"""The checker: does a clip show the scene its prompt asks for?

Each clip is measured on its frames against the scene the world's parser reads from the
prompt (docs/WORLD.md is the spec):

- setting: median colours of the top and bottom bands (robust to subjects and weather),
  nearest of the nine settings' sky-top/ground pairs;
- colour: pixels labelled by the nearest colour of a palette made of the twelve subject
  colours plus this setting's own colours (and the world's dark details and spin marks),
  cleaned by a 3x3 opening; the subject is there when its colour covers enough of the frame;
- shape: rotation- and scale-invariant blob features (normalised complex moments, solidity),
  nearest neighbour in a library made from the world renderer's own renders of each shape;
- motion: the subject's centroid, area and orientation over time, normalised per 2 s of clip
  time, against WORLD.md's amounts scaled by the speed word (slowly x0.5, quickly x2);
- weather: rain-coloured or white specks that come and go against the still background (the
  per-pixel median) in the sky band, away from the subjects; outdoor settings only.

A check that cannot be measured (two subjects of one colour, a subject colour that the
setting itself uses, motion or weather under a camera move, a black ball's invisible spin
mark) is None and left out of the accuracy. The evaluation prompts have no camera moves for
that reason. Calibrated at the model's size (256 px) and 8-24 fps; at 128 px and below, small
subjects lose their thin parts to the cleanup, as the reference line then shows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

ATTRIBUTES = ("setting", "color", "shape", "motion", "weather")
SPEED = {"slow": 0.5, "normal": 1.0, "fast": 2.0}
SHADE = 0.62                   # the world draws spin marks at this share of the body colour
PER = 2.0                      # seconds: WORLD.md's motion amounts are per 2 s of clip time


@dataclass
class CheckerConfig:
    """Thresholds of the checker; WORLD.md's amounts are per 2 s at normal speed."""

    label_tol: float = 64.0        # a pixel takes the nearest palette colour within this distance
    conflict: float = 36.0         # subject colour this close to a setting colour: not measurable
    band: float = 0.06             # top/bottom band height (of H) for the setting
    setting_tol: float = 70.0      # largest band distance to the expected setting's colours
    sky_band: float = 0.5          # weather is measured above this (of H)
    min_area: float = 0.25         # colour present: this share of the expected smallest area
    travel_x: float = 1 / 3        # left/right: of the width
    travel_y: float = 1 / 4        # up/down: of the height
    bounce_rise: float = 0.10      # bounce: of the height, up and back down
    bounce_floor: float = 0.70     # bounce: the subject's bottom reaches below this (of H)
    spin_deg: float = 180.0        # spin: half a turn
    grow: float = 1.5              # area ratio
    shrink: float = 2 / 3
    still: float = 0.05            # still: centre moves less than this (of the width)
    still_turn: float = 60.0       # still: turns less than this (degrees per 2 s)
    weather_frac: float = 0.004    # arriving rain/snow pixels, share of the sky band
    weather_step: float = 20.0     # a pixel must move this much (RGB) toward rain or white
    snow_share: float = 0.05       # snow: white specks at least this share of rain-coloured


CFG = CheckerConfig()


# --- the palette: what colour is each pixel? ------------------------------------------------

def _world_colors():
    from sora_cli.world import backgrounds as bg
    from sora_cli.world import effects, shapes
    from sora_cli.world.scene import COLORS

    return bg, effects, shapes, COLORS


def setting_palette(setting: str) -> list[tuple[int, int, int]]:
    """The colours a setting itself shows over a large area (sky gradient, ground, extras)."""
    bg, effects, shapes, _ = _world_colors()
    top, low, ground = bg.SETTING_COLORS[setting]
    out = [tuple(int(round(a + (b - a) * f)) for a, b in zip(top, low))
           for f in np.linspace(0, 1, 12)]
    if ground is not None:
        out.append(tuple(ground))
    extra = {"field": [bg.SUN], "desert": [bg.SUN], "sunset": [bg.SUNSET_SUN],
             "city": [bg.SKYLINE, bg.WINDOW], "ocean": [effects.WAVE],
             "underwater": [effects.BUBBLE]}
    out += [tuple(c) for c in extra.get(setting, [])]
    return out


def color_conflicts(color: str, setting: str, limit: float = CFG.conflict) -> bool:
    """True when `color` is too close to one of the setting's own colours to be told apart."""
    _, _, _, COLORS = _world_colors()
    c = np.asarray(COLORS[color], float)
    return any(np.linalg.norm(c - np.asarray(p, float)) < limit for p in setting_palette(setting))


def mark_visible(color: str) -> bool:
    """Whether the world's darker spin mark stands out on a body of `color` (not on black)."""
    c = np.asarray(_world_colors()[3][color], float)
    return float(np.linalg.norm(c - c * SHADE)) >= 30


def _palette(setting: str) -> tuple[np.ndarray, list[int], dict]:
    """The colours a pixel can be told as in `setting`: (P, 3) RGB, each one's label, and the
    label of each name (world colours, then rain, background, detail and shade)."""
    _, effects, shapes, COLORS = _world_colors()
    names = list(COLORS)
    entries = [np.asarray(COLORS[c], np.float32) for c in names]
    labels = list(range(len(names)))
    special = {"rain": len(names), "background": len(names) + 1, "detail": len(names) + 2,
               "shade": len(names) + 3}
    entries += [np.asarray(effects.RAIN, np.float32), np.asarray(shapes.DETAIL, np.float32)]
    labels += [special["rain"], special["detail"]]
    for c in names:       # the darker spin marks, where they differ enough from every colour
        mark = np.asarray(COLORS[c], np.float32) * SHADE
        if min(np.linalg.norm(mark - e) for e in entries) >= 30:
            entries.append(mark)
            labels.append(special["shade"])
    for p in setting_palette(setting):
        entries.append(np.asarray(p, np.float32))
        labels.append(special["background"])
    return np.stack(entries), labels, {**{c: i for i, c in enumerate(names)}, **special}


def nearest_label_lut(pal: np.ndarray, labels: list[int], tol: float) -> np.ndarray:
    """A 64^3 lookup table: RGB quantised to 6 bits a channel -> the label of the nearest
    palette colour to the cell's centre, 255 where none is within `tol`."""
    q = np.arange(64, dtype=np.float32) * 4 + 1.5
    # squared distance per channel, summed by broadcasting: about 8x faster than one (64^3, 3) x
    # (3, P) product, and every generation's layout choice builds this table first
    per = [(q[:, None] - pal[None, :, k]) ** 2 for k in range(3)]          # 3 x (64, P)
    d = (per[0][:, None, None] + per[1][None, :, None] + per[2][None, None]).reshape(-1, len(pal))
    near = d.argmin(1)
    best = np.take_along_axis(d, near[:, None], 1)[:, 0]
    lab = np.asarray(labels, np.uint8)[near]
    lab[best > tol * tol] = 255
    return lab


@lru_cache(maxsize=16)
def _label_lut(setting: str, tol: float) -> tuple[np.ndarray, dict]:
    pal, labels, names = _palette(setting)
    return nearest_label_lut(pal, labels, tol), names


def label_frames(frames: np.ndarray, setting: str, tol: float = CFG.label_tol):
    """(T,H,W) uint8 palette labels of frames, and the label of each name."""
    lut, names = _label_lut(setting, float(tol))
    f = frames >> 2
    idx = (f[..., 0].astype(np.int32) << 12) | (f[..., 1].astype(np.int32) << 6) | f[..., 2]
    return lut[idx], names


# --- masks ----------------------------------------------------------------------------------

def color_mask(labels: np.ndarray, names: dict, color: str) -> np.ndarray:
    """Pixels of `color`, with the dark details drawn on it (wheels, eyes, a mast): a black
    car's wheels cannot be told from its body, so every subject's silhouette includes them."""
    m = labels == names[color]
    return m | ((labels == names["detail"]) & dilate(m, 3))


def _shift_all(m: np.ndarray, op) -> np.ndarray:
    """3x3 erosion (op=np.logical_and) or dilation (np.logical_or) of (..., H, W) masks."""
    p = np.pad(m, [(0, 0)] * (m.ndim - 2) + [(1, 1), (1, 1)], constant_values=op is np.logical_and)
    h, w = m.shape[-2:]
    out = p[..., 1:h + 1, 1:w + 1].copy()
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy != 1 or dx != 1:
                op(out, p[..., dy:dy + h, dx:dx + w], out=out)
    return out


def opening(m: np.ndarray) -> np.ndarray:
    return _shift_all(_shift_all(m, np.logical_and), np.logical_or)


def dilate(m: np.ndarray, times: int = 1) -> np.ndarray:
    for _ in range(times):
        m = _shift_all(m, np.logical_or)
    return m


def components(mask: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """8-connected components of a 2D mask: (label image, 0 = none; areas by label - 1)."""
    h, w = mask.shape
    p = np.zeros((h, w + 2), np.int8)
    p[:, 1:-1] = mask
    d = np.diff(p, axis=1)
    starts, ends = np.nonzero(d == 1), np.nonzero(d == -1)
    rows, s, e = starts[0], starts[1], ends[1]            # run [s, e) on row
    n = len(rows)
    parent = list(range(n))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    row_start = np.searchsorted(rows, np.arange(h + 1))
    for r in range(1, h):
        i, i1 = row_start[r], row_start[r + 1]
        j, j1 = row_start[r - 1], row_start[r]
        while i < i1 and j < j1:
            if s[i] <= e[j] and s[j] <= e[i]:            # touching, diagonals included
                a, b = find(i), find(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            if e[i] < e[j]:
                i += 1
            else:
                j += 1
    roots = {}
    lab = np.zeros((h, w), np.int32)
    areas: list[int] = []
    for k in range(n):
        root = find(k)
        if root not in roots:
            roots[root] = len(roots) + 1
            areas.append(0)
        c = roots[root]
        lab[rows[k], s[k]:e[k]] = c
        areas[c - 1] += int(e[k] - s[k])
    return lab, areas


def crop(mask: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The mask cut to its bounding box, with the box's top-left corner (y, x)."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return mask[:0, :0], 0, 0
    y0, x0 = rows[0], cols[0]
    return mask[y0:rows[-1] + 1, x0:cols[-1] + 1], int(y0), int(x0)


def big_parts(mask: np.ndarray, min_area: int) -> np.ndarray:
    """The mask without its parts smaller than `min_area` (snow flakes beside a white subject)."""
    c, y0, x0 = crop(mask)
    out = np.zeros_like(mask)
    if c.size:
        lab, areas = components(c)
        keep = [k for k, a in enumerate(areas, 1) if a >= min_area]
        out[y0:y0 + c.shape[0], x0:x0 + c.shape[1]] = np.isin(lab, keep)
    return out


def subject_mask(mask: np.ndarray, min_px: int) -> np.ndarray:
    """The subject in a cleaned colour mask (cropped): its largest part plus the parts of a
    similar size near it (a boat's hull and sails), without stray specks elsewhere."""
    if mask.sum() < min_px:
        return np.zeros_like(mask)
    lab, areas = components(mask)
    if len(areas) == 1:
        return mask
    big = int(np.argmax(areas)) + 1
    keep = [big]
    box = crop(lab == big)
    h, w = box[0].shape
    y0, x0 = box[1], box[2]
    pad = max(h, w) * 0.6 + 2
    for k, a in enumerate(areas, 1):
        if k == big or a < max(min_px / 4, 0.04 * areas[big - 1]):
            continue
        part, py, px = crop(lab == k)
        if (py >= y0 - pad and py + part.shape[0] <= y0 + h + pad and px >= x0 - pad
                and px + part.shape[1] <= x0 + w + pad):
            keep.append(k)
    return np.isin(lab, keep)


# --- blob features ------------------------------------------------------------------------

def _hull_area(mask: np.ndarray) -> float:
    """Area of the convex hull of the mask's pixel squares (monotone chain on row ends)."""
    rows = np.flatnonzero(mask.any(1))
    m = mask[rows]
    left = m.argmax(1)
    right = m.shape[1] - m[:, ::-1].argmax(1)
    pts = []
    for y, l, r in zip(rows.tolist(), left.tolist(), right.tolist()):
        pts += [(l, y), (r, y), (l, y + 1), (r, y + 1)]
    pts = sorted(set(pts))
    if len(pts) < 3:
        return float(mask.sum())

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    x = np.array([p[0] for p in hull], float)
    y = np.array([p[1] for p in hull], float)
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def holes(mask: np.ndarray) -> tuple[np.ndarray, list[int], int]:
    """Components of the mask's complement, padded by one pixel: (labels, areas, the label of
    the outside); every other label is a hole."""
    pad = np.ones((mask.shape[0] + 2, mask.shape[1] + 2), bool)
    pad[1:-1, 1:-1] = ~mask
    lab, areas = components(pad)
    return lab, areas, int(lab[0, 0])


def fill_holes(mask: np.ndarray) -> np.ndarray:
    lab, areas, outside = holes(mask)
    return lab[1:-1, 1:-1] != outside


def blob_features(mask: np.ndarray) -> np.ndarray:
    """Rotation-, mirror- and scale-invariant features of a blob's silhouette (holes filled:
    spin marks vary with the colour): normalised complex moments (spread, elongation, 3-, 4-
    and 5-fold symmetry), solidity and the share of its largest part."""
    mask = fill_holes(mask)
    ys, xs = np.nonzero(mask)
    a = float(len(xs))
    z = (xs - xs.mean()) + 1j * (ys - ys.mean())
    zc = np.conj(z)

    def c(p, q):
        return np.sum(z ** p * zc ** q) / a ** ((p + q) / 2 + 1)

    c11 = c(1, 1).real
    hull = _hull_area(mask)
    lab, areas = components(mask)
    return np.array([
        math.log(c11),
        abs(c(2, 0)) / c11,
        abs(c(3, 0)) / c11 ** 1.5, abs(c(2, 1)) / c11 ** 1.5,
        abs(c(4, 0)) / c11 ** 2, abs(c(3, 1)) / c11 ** 2, c(2, 2).real / c11 ** 2,
        abs(c(5, 0)) / c11 ** 2.5,
        a / max(hull, a),
        max(areas) / a,
    ])


# Typical size of each orientation harmonic on symmetric blobs (pixel noise), so that a
# harmonic counts only when it stands well above it.
HARMONIC_NOISE = {1: 0.03, 2: 0.03, 3: 0.02, 4: 0.05, 5: 0.04}


def orientation(mask: np.ndarray) -> dict:
    """Angles of a blob (degrees, image axes) seen by its k-fold moment harmonics, each with
    a reliability, plus the direction of its largest hole (the ball's spin mark)."""
    ys, xs = np.nonzero(mask)
    a = float(len(xs))
    z = (xs - xs.mean()) + 1j * (ys - ys.mean())
    zc = np.conj(z)
    c11 = float(np.sum(z * zc).real) / a ** 2
    out = {}
    for k, (p, q) in {1: (2, 1), 2: (2, 0), 3: (3, 0), 4: (4, 0), 5: (5, 0)}.items():
        c = np.sum(z ** p * zc ** q) / a ** ((p + q) / 2 + 1)
        strength = abs(c) / c11 ** ((p + q) / 2)
        out[k] = (math.degrees(np.angle(c)) / k, strength / HARMONIC_NOISE[k] / k)
    # Holes: parts of the complement not connected to the outside.
    lab, areas, outside = holes(mask)
    out["hole"] = None
    if len(areas) > 1:
        sizes = [(ar, i) for i, ar in enumerate(areas, 1) if i != outside]
        ar, i = max(sizes)
        if ar >= 0.025 * (a + ar):
            hy, hx = np.nonzero(lab == i)
            filled_x = (xs.sum() + hx.sum() - hx.size) / (a + ar)   # pad offset of 1
            filled_y = (ys.sum() + hy.sum() - hy.size) / (a + ar)
            out["hole"] = math.degrees(math.atan2(hy.mean() - 1 - filled_y, hx.mean() - 1 - filled_x))
    return out


def _wrap(d: float, period: float) -> float:
    return (d + period / 2) % period - period / 2


def turning(orients: list, pairs: list[tuple[int, int]]) -> float:
    """Signed degrees turned over consecutive frame `pairs`, read from the one cue that is
    reliable over the whole track: the lowest clear moment harmonic, else the hole."""
    if not pairs:
        return 0.0
    used = sorted({i for p in pairs for i in p})
    score = {k: float(np.median([orients[i][k][1] for i in used])) for k in range(1, 6)}
    k = max(score, key=score.get)
    if score[k] >= 2.0:
        period = 360.0 / k
        steps = [_wrap(orients[j][k][0] - orients[i][k][0], period) for i, j in pairs]
        if np.median(np.abs(steps)) > 0.35 * period:
            # Turning near half the symmetry period a frame (a quick square at 8 fps): the
            # direction is ambiguous frame to frame, the amount is not.
            return float(np.sum(np.abs(steps)))
        return float(sum(steps))
    holes = [(i, j) for i, j in pairs if orients[i]["hole"] is not None and orients[j]["hole"] is not None]
    if len(holes) >= 0.6 * len(pairs):
        return float(sum(_wrap(orients[j]["hole"] - orients[i]["hole"], 360.0) for i, j in holes)
                     * len(pairs) / len(holes))
    return 0.0


# --- the shape library ---------------------------------------------------------------------

@lru_cache(maxsize=4)
def shape_library(height: int, width: int) -> dict:
    """Blob features of every shape, from the world renderer's own frames at this size:
    several sizes, turns and animation phases (legs, wings, tails). Cached per size."""
    from sora_cli.world.render import render_scene
    from sora_cli.world.scene import SHAPES, Scene, Subject

    feats, names, fills = [], [], {}
    for shape in SHAPES:
        shape_fill = []
        for extent in (0.1, 0.13, 0.2, 0.3):
            for motion, x in (("spin", 0.5), ("left", 0.75)):
                s = Subject(color="red", shape=shape, size="medium", motion=motion,
                            speed="normal", x=x, y=0.5, extent=extent, heading=1 if motion == "spin" else -1)
                frames = render_scene(Scene("space", [s], seed=1), (height, width), 6, 6.5)
                labels, lab = label_frames(frames, "space")
                masks = opening(color_mask(labels, lab, "red"))
                for m in masks:
                    m = crop(subject_mask(crop(m)[0], 6))[0]
                    if m.sum() < 12:
                        continue
                    feats.append(blob_features(m))
                    names.append(shape)
                    shape_fill.append(m.sum() / (extent * width) ** 2)
        fills[shape] = float(np.median(shape_fill))
    feats = np.stack(feats)
    scale = feats.std(0) + 1e-6
    return {"features": feats / scale, "scale": scale, "names": np.array(names),
            "fill": fills}


def classify_shape(mask: np.ndarray, lib: dict) -> tuple[str, float]:
    f = blob_features(mask) / lib["scale"]
    d = np.sqrt(((lib["features"] - f) ** 2).sum(1))
    i = int(np.argmin(d))
    return str(lib["names"][i]), float(d[i])


# --- measuring one subject -----------------------------------------------------------------

def _slope(t: np.ndarray, v: np.ndarray) -> float:
    if len(t) < 2 or np.ptp(t) <= 0:
        return 0.0
    return float(np.polyfit(t, v, 1)[0])


def track_subject(masks: np.ndarray, fps: float, min_px: int) -> dict:
    """Per-frame area, centre, box and turning of one subject's cleaned colour masks (T,H,W).
    `full` holds the subject's own pixels per frame; `crops` the same cut to its box."""
    T, H, W = masks.shape
    area = np.zeros(T)
    cx, cy, bottom = np.full(T, np.nan), np.full(T, np.nan), np.full(T, np.nan)
    edge = np.zeros(T, bool)
    full = np.zeros_like(masks)
    crops: list = [None] * T
    orients: list = [None] * T
    for i in range(T):
        c, y0, x0 = crop(masks[i])
        m = subject_mask(c, min_px)
        a = int(m.sum())
        if a < min_px:
            continue
        m, dy, dx = crop(m)
        y0, x0 = y0 + dy, x0 + dx
        h, w = m.shape
        full[i, y0:y0 + h, x0:x0 + w] = m
        ys, xs = np.nonzero(m)
        area[i] = a
        cx[i], cy[i] = xs.mean() + 0.5 + x0, ys.mean() + 0.5 + y0
        bottom[i] = y0 + h
        edge[i] = x0 == 0 or y0 == 0 or x0 + w == W or y0 + h == H
        crops[i] = m
        orients[i] = orientation(m)
    return {"full": full, "crops": crops, "area": area, "cx": cx, "cy": cy, "bottom": bottom,
            "edge": edge, "occluded": np.zeros(T, bool), "orients": orients,
            "t": np.arange(T) / fps, "fps": fps, "H": H, "W": W}


def measure_motion(tr: dict, expected: str, speed: str, cfg: CheckerConfig = CFG) -> tuple[bool, dict]:
    """Whether the track shows `expected` motion at `speed`, with the figures measured."""
    H, W, t = tr["H"], tr["W"], tr["t"]
    area = tr["area"]
    seen = area > 0
    if seen.sum() < 2:
        return False, {"visible_frames": int(seen.sum())}
    clear = seen & ~tr["occluded"]
    if clear.sum() >= 2:
        seen = clear
    full = seen & ~tr["edge"] & (area >= 0.25 * np.median(area[seen]))
    if full.sum() < 2:
        full = seen
    k = SPEED[speed]
    tt = t[full]
    dx = _slope(tt, tr["cx"][full]) * PER / W
    dy = _slope(tt, tr["cy"][full]) * PER / H
    ratio = math.exp(_slope(t[seen], np.log(area[seen])) * PER)
    # Turning between consecutive whole, unoccluded views: signed, so that jitter cancels out.
    pairs = [(i - 1, i) for i in range(1, len(t))
             if full[i] and full[i - 1] and 0.8 < area[i] / area[i - 1] < 1.25]
    turn = turning(tr["orients"], pairs)
    span = len(pairs) / tr["fps"]
    turn_per2 = abs(turn) * PER / span if span > 0 else 0.0
    xs, ys = tr["cx"][full], tr["cy"][full]
    # How far the centre strays (10th to 90th percentile: rain cutting a thin subject for a
    # frame shifts its centre for that frame only).
    wander = float(max(np.subtract(*np.percentile(v, [90, 10])) / W for v in (xs, ys))) \
        if len(xs) else 0.0
    m = {"dx": round(dx, 3), "dy": round(dy, 3), "area_ratio": round(ratio, 3),
         "turn_deg": round(float(turn_per2), 1), "wander": round(wander, 3)}
    if expected == "left":
        ok = dx <= -cfg.travel_x * k
    elif expected == "right":
        ok = dx >= cfg.travel_x * k
    elif expected == "up":
        ok = dy <= -cfg.travel_y * k
    elif expected == "down":
        ok = dy >= cfg.travel_y * k
    elif expected == "grow":
        ok = ratio >= cfg.grow ** k
    elif expected == "shrink":
        ok = ratio <= cfg.shrink ** k
    elif expected == "spin":
        # At 8 fps a quick square turns 45 degrees a frame, where its symmetry makes the
        # direction ambiguous: ask quick spins for the normal amount only.
        ok = turn_per2 >= cfg.spin_deg * min(k, 1.0)
    elif expected == "still":
        ok = (wander < cfg.still and cfg.shrink < ratio < cfg.grow
              and turn_per2 < cfg.still_turn)
    elif expected == "bounce":
        ok, b = _bounce(tr, area > 0, cfg)    # occlusion moves a centre less than a bounce
        m.update(b)
    else:
        raise ValueError(expected)
    return bool(ok), m


def _bounce(tr: dict, seen: np.ndarray, cfg: CheckerConfig) -> tuple[bool, dict]:
    """Up and back down (or down to the ground and up again), low in the frame."""
    H = tr["H"]
    y = tr["cy"][seen] / H
    floor = float(np.nanmax(tr["bottom"][seen])) / H
    h = y.max() - y                                    # height above the lowest point
    rise = cfg.bounce_rise
    up_down = any(h[j] - h[:j].min() >= rise and h[j] - h[j + 1:].min() >= rise
                  for j in range(1, len(h) - 1))
    down_up = any(h[:j].max() - h[j] >= rise and h[j + 1:].max() - h[j] >= rise
                  for j in range(1, len(h) - 1))
    return (up_down or down_up) and floor >= cfg.bounce_floor, {
        "bounce_height": round(float(h.max()), 3), "floor": round(floor, 3)}


# --- weather and setting -------------------------------------------------------------------

def measure_weather(frames: np.ndarray, subject_masks: list[np.ndarray], setting: str,
                    cfg: CheckerConfig = CFG) -> dict:
    """Shares of the sky band (away from the subjects) where a pixel is, for a moment, much
    nearer the rain colour or white than the still background there (the per-pixel median
    over time) and nearer that colour than the other: falling streaks and flakes count;
    stars and the sun do not."""
    _, effects, _, COLORS = _world_colors()
    T, H, W, _ = frames.shape
    rows = max(1, int(H * cfg.sky_band))
    if T < 3:
        return {"rain": 0.0, "snow": 0.0}
    # Away from everywhere a subject went: where one stood, the median is the subject.
    away = np.ones((rows, W), bool)
    for m in subject_masks:
        away &= ~dilate(m[:, :rows].any(0), 3)
    away = np.broadcast_to(away, (T, rows, W))
    sky = frames[:, :rows].astype(np.float32)
    still = np.median(sky, axis=0)
    colors = {"rain": np.asarray(effects.RAIN, np.float32),
              "snow": np.asarray(COLORS["white"], np.float32)}
    dist = {k: np.sqrt(((sky - c) ** 2).sum(-1)) for k, c in colors.items()}
    sky_colors = np.asarray(setting_palette(setting)[:12], np.float32)
    out = {}
    for kind, other in (("rain", "snow"), ("snow", "rain")):
        base = np.sqrt(((still - colors[kind]) ** 2).sum(-1))
        # Rain on the pale snowy sky is a small change: ask for half the contrast there is.
        step = min(cfg.weather_step,
                   0.5 * float(np.sqrt(((sky_colors - colors[kind]) ** 2).sum(1)).min()))
        hit = (dist[kind] < base[None] - step) & (dist[kind] < dist[other]) & away
        out[kind] = float(hit.sum() / max(1, int(away.sum())))
    return out


def weather_seen(wx: dict, cfg: CheckerConfig = CFG) -> str:
    """none, rain or snow from measure_weather's shares. Flakes have white cores and edges
    that blend toward the rain colour; streaks have no white at all: white decides snow."""
    if wx["rain"] + wx["snow"] < cfg.weather_frac:
        return "none"
    return "snow" if wx["snow"] >= cfg.snow_share * wx["rain"] else "rain"


def setting_references() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each setting's expected top-band and bottom-band colour."""
    bg = _world_colors()[0]
    out = {}
    for s, (top, low, ground) in bg.SETTING_COLORS.items():
        top_a, low_a = np.asarray(top, float), np.asarray(low, float)
        bottom = np.asarray(ground, float) if ground is not None else top_a + (low_a - top_a) * 0.97
        out[s] = (top_a, bottom)
    return out


def measure_setting(frames: np.ndarray, exclude: np.ndarray, cfg: CheckerConfig = CFG) -> dict:
    """Median colours of the top and bottom bands (subject pixels left out), and the nearest
    setting with its distance."""
    T, H, W, _ = frames.shape
    b = max(1, int(round(H * cfg.band)))
    out = {}
    for name, sl in (("top", slice(0, b)), ("bottom", slice(H - b, H))):
        px = frames[:, sl].reshape(-1, 3)
        keep = ~exclude[:, sl].reshape(-1)
        px = px[keep] if keep.sum() > 10 else px
        out[name] = np.median(px, axis=0)
    dists = {s: (float(np.linalg.norm(out["top"] - t)), float(np.linalg.norm(out["bottom"] - g)))
             for s, (t, g) in setting_references().items()}
    best = min(dists, key=lambda s: sum(dists[s]))
    return {"top": [int(v) for v in out["top"]], "bottom": [int(v) for v in out["bottom"]],
            "nearest": best, "distances": dists}


# --- one clip --------------------------------------------------------------------------------

def score_clip(frames: np.ndarray, fps: float, expected, cfg: CheckerConfig = CFG) -> dict:
    """Measure (T,H,W,3) uint8 `frames` at `fps` against the expected Scene.

    Returns {"setting", "weather": bool|None, "subjects": [{"color", "shape", "motion":
    bool|None, ...}], "measured": {...}, "checks": {attr: [bool|None, ...]}, "score"}; None
    marks a check that cannot be measured on this scene.
    """
    from sora_cli.world.scene import OUTDOOR, SIZE_EXTENT

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T,H,W,3) uint8, got {frames.shape} {frames.dtype}")
    T, H, W, _ = frames.shape
    labels, names = label_frames(frames, expected.setting, cfg.label_tol)
    lib = shape_library(H, W)
    min_px = max(4, int(H * W * 0.0002))
    camera = getattr(expected, "camera", "none") != "none"

    colors = [s.color for s in expected.subjects]
    cleaned = [opening(color_mask(labels, names, c)) for c in colors]
    exclude = np.zeros((T, H, W), bool)
    for c in set(colors):
        exclude |= labels == names[c]
    subjects, subject_masks = [], []
    for j, s in enumerate(expected.subjects):
        res: dict = {"color": None, "shape": None, "motion": None}
        subjects.append(res)
        if color_conflicts(s.color, expected.setting, cfg.conflict):
            res["why"] = f"{s.color} is a colour of the {expected.setting} setting"
            subject_masks.append(np.zeros_like(cleaned[j]))
            continue
        tr = track_subject(cleaned[j], fps, min_px)
        # Weather is measured away from the subjects: every sizeable blob of their colours
        # (both of two same-coloured subjects), plus the pixels of that colour right beside
        # (thin tips the cleanup removed).
        blobs = np.stack([big_parts(m, 3 * min_px) for m in cleaned[j]])
        subject_masks.append(blobs | ((labels == names[s.color]) & dilate(blobs, 4)))
        lo = SIZE_EXTENT[s.size][0]
        need = cfg.min_area * lib["fill"][s.shape] * (lo * W) ** 2
        early = tr["area"][: max(1, (T + 1) // 2)]
        res["color"] = bool(early.max() >= need)
        res["area"] = int(early.max())
        if colors.count(s.color) > 1:
            res["why"] = f"two subjects are {s.color}"
            continue
        if not res["color"]:
            res["shape"] = res["motion"] = False
            continue
        # Frames where another subject touches this one: its blob is cut there.
        others = [cleaned[k] for k, c in enumerate(colors) if c != s.color]
        if others:
            near = dilate(tr["full"], 2) & np.logical_or.reduce(others)
            tr["occluded"] = near.reshape(T, -1).any(1)
        res["shape_seen"] = _shape_vote(tr, lib)
        res["shape"] = res["shape_seen"] == s.shape
        if camera:
            res["why"] = "the camera moves"
        elif s.motion == "spin" and s.shape == "ball" and not mark_visible(s.color):
            res["why"] = f"a {s.color} ball's spin mark does not show"
        else:
            res["motion"], res["motion_measured"] = measure_motion(tr, s.motion, s.speed, cfg)

    st = measure_setting(frames, exclude, cfg)
    d_top, d_bottom = st["distances"][expected.setting]
    setting_ok = st["nearest"] == expected.setting and max(d_top, d_bottom) <= cfg.setting_tol

    # Weather happens only outdoors (WORLD.md); underwater bubbles would read as rain.
    weather_ok, wx = None, {}
    if not camera and expected.setting in OUTDOOR:
        wx = measure_weather(frames, subject_masks, expected.setting, cfg)
        wx["seen"] = weather_seen(wx, cfg)
        weather_ok = wx["seen"] == expected.weather

    checks = {"setting": [setting_ok], "weather": [weather_ok],
              "color": [r["color"] for r in subjects], "shape": [r["shape"] for r in subjects],
              "motion": [r["motion"] for r in subjects]}
    done = [v for vs in checks.values() for v in vs if v is not None]
    return {"setting": setting_ok, "weather": weather_ok, "subjects": subjects,
            "checks": checks, "measured": {"setting": st, "weather": wx},
            "score": (sum(done) / len(done)) if done else None,
            "fully_right": all(done) if done else None}


def _shape_vote(tr: dict, lib: dict, frames: int = 5) -> str:
    """The shape seen most often over a few frames where the whole subject is in view."""
    area = tr["area"]
    seen = area > 0
    if (seen & ~tr["occluded"]).any():
        seen &= ~tr["occluded"]
    ok = seen & ~tr["edge"] & (area >= 0.5 * area[seen].max())
    idx = np.flatnonzero(ok)
    if not len(idx):
        idx = np.flatnonzero(seen)
    pick = idx[np.linspace(0, len(idx) - 1, min(frames, len(idx))).round().astype(int)]
    votes: dict[str, float] = {}
    for i in pick:
        name, d = classify_shape(tr["crops"][i], lib)
        votes[name] = votes.get(name, 0) + 1 + 1e-3 / (1 + d)
    return max(votes, key=votes.get)
