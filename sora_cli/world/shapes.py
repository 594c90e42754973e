"""Subjects drawn as signed-distance shapes, anti-aliased, only inside their bounding box.

Each shape is a few primitives in its own units (extent 1 = its larger side, facing right,
y down). The body is filled with the exact subject colour; details (wheels, eyes, a mast, a
string, the ball's spin mark) stay well under WORLD.md's 15% of the subject's area.
"""

from __future__ import annotations

import math

import numpy as np

from sora_cli.world.motion import SHAPE_BOUNDS, Pose

DETAIL = (35, 35, 35)     # wheels, eyes, mast, string
F32 = np.float32


def _circle(u, v, cx, cy, r):
    return np.sqrt((u - cx) ** 2 + (v - cy) ** 2) - r


def _ellipse(u, v, cx, cy, a, b):
    # Scaled-circle approximation: exact on the axes, good enough for one pixel of AA.
    return (np.sqrt(((u - cx) / a) ** 2 + ((v - cy) / b) ** 2) - 1.0) * min(a, b)


def _box(u, v, cx, cy, hw, hh, r=0.0):
    qx = np.abs(u - cx) - (hw - r)
    qy = np.abs(v - cy) - (hh - r)
    out = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
    return out + np.minimum(np.maximum(qx, qy), 0) - r


def _segment(u, v, x0, y0, x1, y1, r):
    ex, ey = x1 - x0, y1 - y0
    wx, wy = u - x0, v - y0
    h = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey + 1e-12), 0.0, 1.0)
    return np.sqrt((wx - ex * h) ** 2 + (wy - ey * h) ** 2) - r


def _polygon(u, v, pts):
    """Signed distance to a convex polygon as the largest signed distance to its edge lines:
    exact inside and along the edges, a little short of the truth just outside corners, which
    only rounds the anti-aliasing there. Three array operations per edge."""
    pts = [(float(x), float(y)) for x, y in pts]
    n = len(pts)
    cx = sum(p[0] for p in pts) / n
    cy = sum(p[1] for p in pts) / n
    d = None
    for i in range(n):
        (x0, y0), (x1, y1) = pts[i], pts[(i + 1) % n]
        nx, ny = y1 - y0, x0 - x1                 # edge normal
        norm = math.hypot(nx, ny)
        nx, ny = nx / norm, ny / norm
        c = -(nx * x0 + ny * y0)
        if nx * cx + ny * cy + c > 0:             # make the inside negative
            nx, ny, c = -nx, -ny, -c
        e = u * F32(nx) + (v * F32(ny) + F32(c))
        d = e if d is None else np.maximum(d, e)
    # The bounding box as four more edges keeps sharp or flat (edge-on wing) corners from
    # casting thin spikes of coverage far past their tips.
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    box = np.maximum(np.abs(u - F32((min(xs) + max(xs)) / 2)) - F32((max(xs) - min(xs)) / 2),
                     np.abs(v - F32((min(ys) + max(ys)) / 2)) - F32((max(ys) - min(ys)) / 2))
    return np.maximum(d, box)


def _polygon_exact(u, v, pts):
    """Exact signed distance to any simple polygon (the star is concave)."""
    pts = np.asarray(pts, dtype=F32)
    d = (u - pts[0, 0]) ** 2 + (v - pts[0, 1]) ** 2
    inside = np.zeros(u.shape, dtype=bool)
    for i in range(len(pts)):
        xi, yi = pts[i]
        xj, yj = pts[i - 1]
        ex, ey = xj - xi, yj - yi
        wx, wy = u - xi, v - yi
        h = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        d = np.minimum(d, (wx - ex * h) ** 2 + (wy - ey * h) ** 2)
        if yi != yj:   # even-odd crossing test along +u
            xc = xi + (v - yi) * ((xj - xi) / (yj - yi))
            inside ^= ((yi > v) != (yj > v)) & (u < xc)
    dist = np.sqrt(d)
    return np.where(inside, -dist, dist)


def _star_points(outer=0.5257, inner_ratio=0.45, cy=0.05):
    pts = []
    for k in range(10):
        a = -math.pi / 2 + k * math.pi / 5
        r = outer if k % 2 == 0 else outer * inner_ratio
        pts.append((r * math.cos(a), r * math.sin(a) + cy))
    return pts


_STAR = _star_points()


def _parts(shape: str, u, v, pose: Pose):
    """[(role, sdf)] in drawing order; role is 'body', 'detail' or 'shade'."""
    t, pace = pose.t, pose.pace
    if shape == "ball":
        return [("body", _circle(u, v, 0, 0, 0.5)), ("shade", _circle(u, v, 0.25, 0.0, 0.1))]
    # Symmetric shapes carry a small darker mark off their centre, so a turn shows (a square
    # turning 90 degrees per frame would otherwise look still).
    if shape == "square":
        return [("body", _box(u, v, 0, 0, 0.5, 0.5, 0.04)), ("shade", _circle(u, v, 0.25, -0.25, 0.09))]
    if shape == "triangle":
        return [("body", _polygon(u, v, [(-0.5, 0.433), (0.5, 0.433), (0.0, -0.433)])),
                ("shade", _circle(u, v, 0.22, 0.27, 0.07))]
    if shape == "star":
        return [("body", _polygon_exact(u, v, _STAR)), ("shade", _circle(u, v, 0.0, -0.2, 0.07))]
    if shape == "car":
        body = np.minimum(_box(u, v, 0, 0.07, 0.5, 0.13, 0.05),
                          _polygon(u, v, [(-0.3, -0.05), (0.24, -0.05), (0.12, -0.26), (-0.2, -0.26)]))
        wheels = np.minimum(_circle(u, v, -0.28, 0.19, 0.08), _circle(u, v, 0.28, 0.19, 0.08))
        return [("detail", wheels), ("body", body)]
    if shape == "person":
        if pose.moving:   # walking: legs and arms swing
            a = 0.45 * math.sin(2 * math.pi * 1.5 * pace * t)
        else:
            a = 0.2
        ls, lc = 0.33 * math.sin(a), 0.33 * math.cos(a)
        as_, ac = 0.27 * math.sin(a), 0.27 * math.cos(a)
        body = np.minimum.reduce([
            _circle(u, v, 0, -0.37, 0.13),
            _segment(u, v, 0, -0.19, 0, 0.08, 0.115),
            _segment(u, v, 0, 0.1, ls, 0.1 + lc, 0.07),
            _segment(u, v, 0, 0.1, -ls, 0.1 + lc, 0.07),
            _segment(u, v, 0, -0.17, -as_, -0.17 + ac, 0.06),
            _segment(u, v, 0, -0.17, as_, -0.17 + ac, 0.06),
        ])
        return [("body", body)]
    if shape == "bird":
        f = math.cos(2 * math.pi * 2.0 * math.sqrt(pace) * t)
        body = np.minimum.reduce([
            _ellipse(u, v, 0, 0.05, 0.3, 0.14),
            _circle(u, v, 0.27, -0.04, 0.12),
            _polygon(u, v, [(-0.22, 0.02), (-0.5, -0.08), (-0.48, 0.15)]),
            _polygon(u, v, [(-0.16, 0.03), (0.14, 0.03), (-0.1, 0.03 - 0.46 * f)]),
        ])
        beak = _polygon(u, v, [(0.36, -0.08), (0.5, -0.03), (0.36, 0.0)])
        return [("body", body), ("detail", np.minimum(beak, _circle(u, v, 0.3, -0.07, 0.03)))]
    if shape == "fish":
        wag = 0.06 * math.sin(2 * math.pi * 2.0 * pace * t)
        body = np.minimum(_ellipse(u, v, 0.08, 0, 0.4, 0.22),
                          _polygon(u, v, [(-0.24, 0), (-0.5, -0.22 + wag), (-0.5, 0.22 + wag)]))
        return [("body", body), ("detail", _circle(u, v, 0.3, -0.05, 0.035))]
    if shape == "boat":
        hull = _polygon(u, v, [(-0.5, 0.05), (0.5, 0.05), (0.36, 0.25), (-0.36, 0.25)])
        sails = np.minimum(_polygon(u, v, [(0.03, -0.47), (0.03, 0.0), (0.36, 0.0)]),
                           _polygon(u, v, [(-0.03, -0.38), (-0.03, 0.0), (-0.3, 0.0)]))
        mast = _segment(u, v, 0, 0.05, 0, -0.5, 0.018)
        return [("detail", mast), ("body", np.minimum(hull, sails))]
    if shape == "balloon":
        body = np.minimum(_ellipse(u, v, 0, -0.08, 0.36, 0.42),
                          _polygon(u, v, [(-0.05, 0.39), (0.05, 0.39), (0.0, 0.31)]))
        string = _segment(u, v, 0, 0.39, 0.03, 0.5, 0.012)
        return [("detail", string), ("body", body)]
    if shape == "airplane":
        body = np.minimum.reduce([
            _segment(u, v, -0.42, 0, 0.4, 0, 0.08),
            _polygon(u, v, [(0.1, 0.0), (-0.1, 0.0), (-0.24, 0.34), (-0.13, 0.34)]),
            _polygon(u, v, [(0.06, 0.0), (-0.08, 0.0), (-0.18, -0.24), (-0.11, -0.24)]),
            _polygon(u, v, [(-0.3, -0.04), (-0.46, -0.04), (-0.5, -0.3), (-0.42, -0.3)]),
        ])
        return [("body", body), ("detail", _ellipse(u, v, 0.33, -0.025, 0.05, 0.03))]
    raise ValueError(f"unknown shape {shape!r}")


def draw_subject(frame: np.ndarray, shape: str, color: tuple[int, int, int], pose: Pose,
                 x: float, y: float, extent: float) -> None:
    """Composite one subject into `frame` (H, W, 3 uint8) in place, centred at frame (x, y)."""
    h, w = frame.shape[:2]
    if extent < 0.5:
        return
    u0, u1, v0, v1 = SHAPE_BOUNDS[shape]
    if pose.angle == 0.0:     # upright: its own box (facing left mirrors it)
        if pose.facing < 0:
            u0, u1 = -u1, -u0
        bx0, bx1, by0, by1 = x + u0 * extent - 2, x + u1 * extent + 2, y + v0 * extent - 2, y + v1 * extent + 2
    else:                     # turning: the circle through its box's corners
        r = math.hypot(max(-u0, u1), max(-v0, v1)) * extent + 2
        bx0, bx1, by0, by1 = x - r, x + r, y - r, y + r
    if shape == "bird":       # flapping wings reach past the box's top edge a little
        by0 -= 0.05 * extent
    x0, x1 = max(int(math.floor(bx0)), 0), min(int(math.ceil(bx1)), w)
    y0, y1 = max(int(math.floor(by0)), 0), min(int(math.ceil(by1)), h)
    if x0 >= x1 or y0 >= y1:
        return  # gone: outside the frame
    px = (np.arange(x0, x1, dtype=F32) + F32(0.5) - F32(x))[None, :]
    py = (np.arange(y0, y1, dtype=F32) + F32(0.5) - F32(y))[:, None]
    c, s = math.cos(pose.angle), math.sin(pose.angle)
    inv = F32(1.0 / extent)
    u = (px * F32(c) + py * F32(s)) * inv * F32(pose.facing)
    v = (-px * F32(s) + py * F32(c)) * inv
    region = frame[y0:y1, x0:x1].astype(F32)
    body = np.asarray(color, dtype=F32)
    colors = {"body": body, "detail": np.asarray(DETAIL, F32), "shade": body * F32(0.62)}
    for role, sdf in _parts(shape, u, v, pose):
        a = np.clip(F32(0.5) - sdf * F32(extent), 0.0, 1.0)
        if not a.any():
            continue
        region += (colors[role] - region) * a[..., None]
    frame[y0:y1, x0:x1] = (region + F32(0.5)).astype(np.uint8)
