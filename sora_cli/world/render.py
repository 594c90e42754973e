"""Rasterise a Scene to RGB frames: background once per clip, then per frame the camera view,
moving background details, subjects and weather. Deterministic: the same scene (seed
included) gives the same frames bit for bit, at any size, fps and length."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from sora_cli.errors import SoraError
from sora_cli.world.backgrounds import build_background
from sora_cli.world.effects import Particles, Waves
from sora_cli.world.motion import Camera, layout, subject_pose
from sora_cli.world.scene import COLORS, OUTDOOR, Scene
from sora_cli.world.shapes import draw_subject

F32 = np.float32


def frame_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """(H, W) from an int (square) or an (H, W) pair."""
    if isinstance(size, (int, np.integer)):
        h = w = int(size)
    else:
        h, w = (int(v) for v in size)
    if h < 8 or w < 8:
        raise ValueError(f"frame size must be at least 8x8, got {h}x{w}")
    return h, w


def _rng(scene: Scene, stream: int) -> np.random.Generator:
    # One independent stream per part, so adding rain does not move the stars.
    return np.random.default_rng([int(scene.seed) & 0xFFFFFFFF, stream])


def _view(bg: np.ndarray, rect, cam: Camera, t: float, out: np.ndarray) -> None:
    """Fill `out` with the camera's view of the world background at time t."""
    h, w = out.shape[:2]
    x0, y0 = rect[0], rect[1]
    z, p = cam.zoom(t), cam.pan(t)
    if z == 1.0:
        ox, oy = int(p) - x0, -y0      # whole-pixel pans: an exact copy keeps colours exact
        out[:] = bg[oy:oy + h, ox:ox + w]
        return
    # Zoom: nearest-neighbour lookup about the frame centre (flat colours stay exact; the
    # subjects, drawn afterwards at the zoomed scale, stay anti-aliased).
    xs = cam.cx + (np.arange(w) + 0.5 - cam.cx) / z + p - x0
    ys = cam.cy + (np.arange(h) + 0.5 - cam.cy) / z - y0
    ix = np.clip(np.floor(xs).astype(np.intp), 0, bg.shape[1] - 1)
    iy = np.clip(np.floor(ys).astype(np.intp), 0, bg.shape[0] - 1)
    np.take(bg[iy], ix, axis=1, out=out)


# The most world pixels (the background every frame's view is cut from) a clip may need: a
# camera that pans or zooms out for long sees ever more of it, and a zoom-out's grows
# exponentially (60 s would need ~4e11 pixels). 2**25 is ~400 MB as float32 RGB.
MAX_WORLD_PIXELS = 2 ** 25


def render_scene(scene: Scene, size: int | tuple[int, int] = 256, num_frames: int = 17,
                 fps: float = 8.0) -> np.ndarray:
    """Render `scene` to a (T, H, W, 3) uint8 array; frame i shows time i / fps seconds."""
    paint, (h, w), times = _painter(scene, size, num_frames, fps)
    out = np.empty((num_frames, h, w, 3), np.uint8)
    for i, t in enumerate(times):
        paint(out[i], t)
    return out


def render_frames(scene: Scene, size: int | tuple[int, int] = 256, num_frames: int = 17,
                  fps: float = 8.0) -> Iterator[np.ndarray]:
    """render_scene's frames one (H, W, 3) array at a time, the same bit for bit, so a long
    clip streams to its file instead of being held whole. The scene is laid out, and any
    error raised, at the call; frames are drawn as they are taken."""
    paint, (h, w), times = _painter(scene, size, num_frames, fps)

    def frames() -> Iterator[np.ndarray]:
        for t in times:
            frame = np.empty((h, w, 3), np.uint8)
            paint(frame, t)
            yield frame
    return frames()


def _painter(scene: Scene, size, num_frames: int, fps: float):
    """(paint(frame, t) drawing the scene at time t into an (H, W, 3) uint8 frame, (H, W),
    the frame times): the per-clip work, done once."""
    scene.validate()
    h, w = frame_size(size)
    if num_frames < 1 or fps <= 0:
        raise ValueError("num_frames must be >= 1 and fps > 0")
    scene = layout(scene, h, w)
    times = np.arange(num_frames) / float(fps)
    cam = Camera(scene.camera, h, w)
    rect = cam.world_rect(times)
    if rect[2] * rect[3] > MAX_WORLD_PIXELS:
        raise SoraError(f"with the camera's {scene.camera.replace('_', ' ')}, a "
                        f"{times[-1]:g} s clip at {w}x{h} sees {rect[2]}x{rect[3]} pixels of "
                        "the world, more than the renderer holds: make it shorter or smaller")
    bg = build_background(scene.setting, rect, h, w, _rng(scene, 2))
    waves = Waves(h, w, _rng(scene, 3)) if scene.setting == "ocean" else None
    bubbles = Particles("bubbles", h, w, _rng(scene, 4)) if scene.setting == "underwater" else None
    weather = (Particles(scene.weather, h, w, _rng(scene, 5))
               if scene.weather != "none" and scene.setting in OUTDOOR else None)

    def paint(frame: np.ndarray, t: float) -> None:
        _view(bg, rect, cam, t, frame)
        if waves is not None:
            waves.draw(frame, t, cam)
        if bubbles is not None:
            bubbles.draw(frame, t)
        for s in scene.subjects:
            pose = subject_pose(s, t, h, w)
            x, y, z = cam.to_frame(pose.x, pose.y, t)
            draw_subject(frame, s.shape, COLORS[s.color], pose, x, y, pose.extent * z)
        if weather is not None:
            weather.draw(frame, t)
    return paint, (h, w), times
