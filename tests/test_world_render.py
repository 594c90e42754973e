"""The renderer against WORLD.md, measured on rendered frames: colours, horizon, effects,
motion amounts (centroids of colour masks), sizes, two-subject layouts, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sora_cli.world.motion import layout, start_box
from sora_cli.world.render import render_scene
from sora_cli.world.sampler import sample_scene
from sora_cli.world.scene import COLORS, OUTDOOR, SETTINGS, SHAPES, Scene, Subject

SPEC_SETTINGS = {  # WORLD.md: sky top, ground (None: no ground)
    "field": ((90, 150, 230), (70, 150, 60)), "ocean": ((90, 150, 230), (20, 80, 160)),
    "desert": ((90, 150, 230), (220, 190, 120)), "snow": ((200, 210, 225), (235, 240, 245)),
    "sunset": ((70, 40, 110), (50, 30, 50)), "night": ((10, 15, 40), (15, 20, 25)),
    "city": ((10, 15, 40), (40, 40, 45)), "underwater": ((10, 60, 90), None),
    "space": ((5, 5, 10), None),
}


def mask(frames: np.ndarray, rgb, tol: int = 6) -> np.ndarray:
    return np.all(np.abs(frames.astype(np.int16) - np.asarray(rgb, np.int16)) <= tol, axis=-1)


def centroid(m: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(m)
    return float(xs.mean()), float(ys.mean())


def one(shape="ball", color="yellow", motion="still", speed="normal", setting="space",
        size="medium", seed=3, **kw) -> Scene:
    return Scene(setting, [Subject(color, shape, size, motion, speed)], seed=seed, **kw)


def test_same_seed_same_clip_bit_for_bit():
    for i in range(5):
        a = render_scene(sample_scene(i), 64, 9, 8)
        b = render_scene(sample_scene(i), 64, 9, 8)
        assert a.dtype == np.uint8 and a.shape == (9, 64, 64, 3)
        assert np.array_equal(a, b)
    assert not np.array_equal(render_scene(sample_scene(1), 64, 3), render_scene(sample_scene(2), 64, 3))


def test_any_size_and_aspect():
    v = render_scene(one(motion="right"), (48, 80), 5, 8)
    assert v.shape == (5, 48, 80, 3)


@pytest.mark.parametrize("setting", SETTINGS)
def test_setting_colours_and_horizon(setting):
    v = render_scene(Scene(setting, seed=5), 128, 1)[0].astype(int)
    sky, ground = SPEC_SETTINGS[setting]
    top = np.median(v[0], axis=0)
    assert np.abs(top - sky).max() <= 2, (setting, top)
    if ground is None:
        return
    bottom = np.median(v[-1], axis=0)
    assert np.abs(bottom - ground).max() == 0, (setting, bottom)
    # The horizon: the first row (from the top) where most pixels are ground colour.
    rows = mask(v[None], ground, 0)[0].mean(axis=1)
    horizon = int(np.argmax(rows > 0.5)) / 128
    assert 0.55 <= horizon <= 0.75, (setting, horizon)


def test_setting_extras():
    field = render_scene(Scene("field", seed=1), 128, 1)[0]
    assert mask(field, (255, 240, 170), 3).sum() > 20                   # sun disc
    night = render_scene(Scene("night", seed=1), 128, 1)[0]
    assert (night[:70].min(axis=-1) >= 180).sum() > 10                   # white stars
    space = render_scene(Scene("space", seed=1), 128, 1)[0]
    assert (space.min(axis=-1) >= 180).sum() > 10
    city = render_scene(Scene("city", seed=1), 128, 1)[0]
    assert mask(city, (250, 220, 120), 0).sum() > 20                     # lit windows
    assert mask(city, (30, 30, 40), 0).sum() > 300                       # skyline
    sunset = render_scene(Scene("sunset", seed=1), 128, 1)[0]
    assert mask(sunset, (255, 190, 100), 3).sum() > 10                    # low orange sun
    ocean = render_scene(Scene("ocean", seed=1), 128, 9)
    water = ocean[:, 90:]
    assert mask(water, (80, 130, 195), 20).sum() > 50                    # lighter wave lines
    assert not np.array_equal(water[0], water[4])                        # ... that move
    under = render_scene(Scene("underwater", seed=1), 128, 9).astype(int)
    light = (under[..., 2] > 200)                                        # bubbles
    assert light[0].sum() > 5
    ys0 = np.nonzero(light[0])[0].mean()
    ys4 = np.nonzero(light[4])[0].mean()
    assert not np.array_equal(light[0], light[4]) and ys0 != ys4


@pytest.mark.parametrize("weather, rgb", [("rain", (180, 190, 220)), ("snow", (245, 245, 245))])
def test_weather(weather, rgb):
    v = render_scene(Scene("desert", weather=weather, seed=2), 128, 9)
    m = mask(v, rgb, 0)
    assert m[0].sum() > 25
    assert not np.array_equal(m[0], m[4])            # falling
    clear = render_scene(Scene("desert", seed=2), 128, 1)
    assert mask(clear, rgb, 0).sum() == 0
    # Only outdoors: the scene's weather is ignored under water.
    assert np.array_equal(render_scene(Scene("underwater", weather=weather, seed=2), 64, 3),
                          render_scene(Scene("underwater", seed=2), 64, 3))


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_in_every_colour_is_filled_with_the_spec_colour(shape):
    for color, rgb in COLORS.items():
        setting = {"green": "snow", "white": "night"}.get(color, "field")
        frame = render_scene(one(shape, color, setting=setting, size="large"), 256, 1)[0]
        exact = mask(frame, rgb, 0)
        assert exact.sum() > 500, (shape, color, exact.sum())
        # Inside the anti-aliased edge, the body is the exact colour; shading and details
        # (wheels, eyes, mast) stay under 15% of the subject.
        blob = _blob(frame, setting)
        inner = blob.copy()
        for axis in (0, 1):
            for shift in (1, -1):
                inner &= np.roll(blob, shift, axis=axis)
        assert exact[inner].sum() >= 0.85 * inner.sum(), (shape, color, exact[inner].sum(), inner.sum())


def _blob(frame, setting):
    """Pixels that differ from the empty setting (same seed), i.e. the subject and its edges."""
    empty = render_scene(Scene(setting, seed=3), frame.shape[:2], 1)[0]
    return np.any(frame != empty, axis=-1)


@pytest.mark.parametrize("size, lo, hi", [("small", 0.08, 0.15), ("medium", 0.15, 0.25),
                                          ("large", 0.25, 0.35)])
def test_sizes(size, lo, hi):
    for shape in ("ball", "square", "car", "airplane", "person"):
        frame = render_scene(one(shape, "red", size=size, setting="field"), 200, 1)[0]
        ys, xs = np.nonzero(mask(frame, COLORS["red"], 0))
        extent = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) / 200
        assert lo <= extent <= hi, (shape, size, extent)


def _track(scene, size=128, frames=17, fps=8.0, rgb=None):
    rgb = rgb or COLORS[scene.subjects[0].color]
    v = render_scene(scene, size, frames, fps)
    return v, mask(v, rgb, 0)


@pytest.mark.parametrize("shape", ["ball", "car", "bird", "fish", "person"])
@pytest.mark.parametrize("motion", ["left", "right"])
def test_left_right_travel_a_third_of_the_width(shape, motion):
    _, m = _track(one(shape, motion=motion, setting="field" if shape != "fish" else "space"))
    (x0, _), (x1, _) = centroid(m[0]), centroid(m[-1])
    dx = (x1 - x0) / 128
    assert (dx if motion == "right" else -dx) >= 1 / 3, dx


@pytest.mark.parametrize("motion", ["up", "down"])
def test_up_down_travel_a_quarter_of_the_height(motion):
    for shape in ("balloon", "star", "square"):
        _, m = _track(one(shape, motion=motion, setting="night"))
        dy = (centroid(m[-1])[1] - centroid(m[0])[1]) / 128
        assert (-dy if motion == "up" else dy) >= 0.25, (shape, dy)


def test_bounce_moves_along_and_touches_the_ground():
    for seed in range(3):
        scene = one("ball", "red", motion="bounce", setting="field", seed=seed)
        _, m = _track(scene)
        bottoms = np.array([np.nonzero(f)[0].max() for f in m]) / 128
        cx = np.array([centroid(f)[0] for f in m]) / 128
        assert (bottoms >= 0.62).sum() >= 2           # on the ground (below the horizon) ...
        assert bottoms.max() - bottoms.min() >= 0.15  # ... and up in the air in between
        assert abs(cx[-1] - cx[0]) >= 0.1             # moving along


@pytest.mark.parametrize("shape", ["ball", "square", "star", "triangle"])
@pytest.mark.parametrize("speed, turns", [("normal", 0.5), ("fast", 1.0)])
def test_spin_turns_at_least_half_a_turn(shape, speed, turns):
    """Tracked through the shape's off-centre mark, so even a square's turn is measurable
    (and does not alias into stillness at 8 fps when fast)."""
    scene = one(shape, "red", motion="spin", speed=speed, setting="field")
    v = render_scene(scene, 128, 17)
    shade = tuple(int(c * 0.62 + 0.5) for c in COLORS["red"])
    angles = []
    for f, body in zip(v, mask(v, COLORS["red"], 0)):
        cx, cy = centroid(body | mask(f, shade, 2))
        sx, sy = centroid(mask(f, shade, 2))
        angles.append(math.atan2(sy - cy, sx - cx))
    steps = np.diff(np.unwrap(angles))
    assert np.all(np.abs(steps) < 0.8 * math.pi)         # no aliasing between frames
    turn = abs(np.unwrap(angles)[-1] - angles[0])
    assert turn >= turns * 2 * math.pi * 0.95, turn


@pytest.mark.parametrize("motion, check", [("grow", lambda r: r >= 1.5),
                                           ("shrink", lambda r: r <= 2 / 3)])
def test_grow_shrink_area(motion, check):
    for shape in ("ball", "star", "bird"):
        _, m = _track(one(shape, "red", motion=motion, setting="field"))
        ratio = m[-1].sum() / m[0].sum()
        assert check(ratio), (shape, ratio)


def test_still_stays_within_five_percent():
    for shape in ("person", "bird", "car", "boat", "balloon"):
        _, m = _track(one(shape, "red", setting="ocean" if shape == "boat" else "field"))
        xs = [centroid(f)[0] for f in m]
        ys = [centroid(f)[1] for f in m]
        assert max(xs) - min(xs) < 0.05 * 128 and max(ys) - min(ys) < 0.05 * 128


def test_slowly_halves_and_quickly_doubles_the_speed():
    d = {}
    for speed in ("slow", "normal", "fast"):
        _, m = _track(one("ball", "red", motion="right", speed=speed, setting="field", seed=1),
                      frames=5)                                    # 0.5 s: all stay in view
        d[speed] = centroid(m[-1])[0] - centroid(m[0])[0]
    assert d["slow"] == pytest.approx(d["normal"] / 2, rel=0.1)
    assert d["fast"] == pytest.approx(d["normal"] * 2, rel=0.1)


def test_speed_does_not_depend_on_fps_or_size():
    scene = one("ball", "red", motion="right", setting="field")
    _, m8 = _track(scene, size=128, frames=17, fps=8)
    _, m16 = _track(scene, size=64, frames=33, fps=16)
    d8 = (centroid(m8[-1])[0] - centroid(m8[0])[0]) / 128
    d16 = (centroid(m16[-1])[0] - centroid(m16[0])[0]) / 64
    assert d8 == pytest.approx(d16, abs=0.02)


def test_subject_that_leaves_stays_gone():
    _, m = _track(one("ball", "red", motion="right", speed="fast", setting="field"), frames=41)
    visible = m.reshape(len(m), -1).any(axis=1)
    gone = int(np.argmin(visible))
    assert gone > 0 and not visible[gone:].any()


def test_walking_legs_and_flapping_wings_move():
    for shape in ("person", "bird"):
        v = render_scene(one(shape, "red", motion="right", setting="field"), 128, 9)
        m = mask(v, COLORS["red"], 0)
        # Shape changes frame to frame beyond a shift: compare the masks aligned on their boxes.
        crops = []
        for f in m:
            ys, xs = np.nonzero(f)
            crops.append(f[ys.min():ys.min() + 20, xs.min():xs.min() + 20])
        assert any(not np.array_equal(crops[0], c) for c in crops[1:]), shape


@pytest.mark.parametrize("camera", ["pan_left", "pan_right"])
def test_pan_moves_the_scene_the_other_way(camera):
    v = render_scene(Scene("field", camera=camera, seed=4), 128, 17)
    sun0, sun1 = centroid(mask(v[0], (255, 240, 170), 3)), centroid(mask(v[-1], (255, 240, 170), 3))
    dx = (sun1[0] - sun0[0]) / 128
    assert (dx > 0.1) if camera == "pan_left" else (dx < -0.1), dx


@pytest.mark.parametrize("camera", ["zoom_in", "zoom_out"])
def test_zoom_scales_about_the_centre(camera):
    scene = Scene("space", [Subject("red", "square", x=0.5, y=0.5)], camera=camera)
    _, m = _track(scene)
    ratio = m[-1].sum() / m[0].sum()
    assert (ratio > 1.4) if camera == "zoom_in" else (ratio < 0.7), ratio
    c0, c1 = centroid(m[0]), centroid(m[-1])
    assert abs(c0[0] - c1[0]) < 2 and abs(c0[1] - c1[1]) < 2


def test_two_subjects_start_apart_and_visible():
    n = 0
    for i in range(300):
        scene = sample_scene(i)
        if len(scene.subjects) != 2:
            continue
        n += 1
        laid = layout(scene, 128, 128)
        a, b = (start_box(s, 1.0) for s in laid.subjects)
        for box in (a, b):
            assert box[0] >= 0 and box[1] <= 1 and box[2] >= 0 and box[3] <= 1
        assert min(a[1], b[1]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[2], b[2])
        if n <= 8 and scene.subjects[0].color != scene.subjects[1].color:
            frame = render_scene(scene, 128, 1)[0]
            for s in scene.subjects:
                assert mask(frame, COLORS[s.color], 0).sum() > 20, (scene, s)
    assert n > 40


def test_parsed_two_subject_prompts_start_apart():
    from sora_cli.world.parse import parse_prompt
    for prompt in ("two big red cars driving left on a city street at night",
                   "two large blue balls bouncing on a beach",
                   "a white bird flying right and a green balloon rising over the ocean"):
        for seed in range(5):
            scene = parse_prompt(prompt)
            scene.seed = seed
            a, b = (start_box(s, 1.0) for s in layout(scene).subjects)
            assert min(a[1], b[1]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[2], b[2]), prompt
            frame = render_scene(scene, 128, 1)[0]
            total = sum(mask(frame, COLORS[s.color], 0).sum() for s in scene.subjects)
            alone = [render_scene(Scene(scene.setting, [s], seed=seed), 128, 1)[0]
                     for s in layout(scene).subjects]
            parts = sum(mask(f, COLORS[s.color], 0).sum() for f, s in zip(alone, scene.subjects))
            assert total >= 0.97 * parts, prompt   # nothing hidden behind the other subject


def test_sampler_balance():
    scenes = [sample_scene(i) for i in range(1500)]
    n_sub = np.bincount([len(s.subjects) for s in scenes], minlength=3) / len(scenes)
    assert 0.2 <= n_sub[2] <= 0.3 and 0.03 <= n_sub[0] <= 0.15
    subs = [x for s in scenes for x in s.subjects]
    for field_name, values in (("shape", SHAPES), ("color", COLORS),
                               ("motion", ("left", "right", "up", "down", "bounce", "spin",
                                           "grow", "shrink", "still"))):
        counts = {v: sum(getattr(x, field_name) == v for x in subs) for v in values}
        assert min(counts.values()) > 0.25 * len(subs) / len(values), (field_name, counts)
    settings = {v: sum(s.setting == v for s in scenes) for v in SETTINGS}
    assert min(settings.values()) > 0.5 * len(scenes) / len(SETTINGS)
    outdoor = [s for s in scenes if s.setting in OUTDOOR]
    assert 0.2 < np.mean([s.weather != "none" for s in outdoor]) < 0.5
    assert 0.15 < np.mean([s.camera != "none" for s in scenes]) < 0.35
    assert all(s.weather == "none" for s in scenes if s.setting not in OUTDOOR)


def test_streamed_frames_are_the_rendered_clip_bit_for_bit():
    from sora_cli.world.render import render_frames

    for i in range(8):
        scene = sample_scene(np.random.default_rng(40 + i))
        whole = render_scene(Scene(**scene.__dict__), (48, 80), 13, 8)
        streamed = list(render_frames(Scene(**scene.__dict__), (48, 80), 13, 8))
        assert len(streamed) == 13 and (np.stack(streamed) == whole).all()


def test_a_clip_whose_world_outgrows_memory_is_refused_before_a_frame():
    from sora_cli.errors import SoraError
    from sora_cli.world.render import render_frames

    # zooming out 1.3x every 2 s, a minute sees ~2,600x the frame's width of the world
    scene = one(camera="zoom_out")
    with pytest.raises(SoraError, match=r"camera's zoom out, a 60 s clip at 64x64 sees"):
        render_frames(scene, 64, 481, 8)
    assert len(list(render_frames(one(camera="zoom_out"), 64, 17, 8))) == 17


@pytest.mark.parametrize("args, message", [
    (["--seconds", "nan"], "--seconds must be more than 0 and at most 3600 seconds, got nan"),
    (["--seconds", "inf"], "--seconds must be more than 0 and at most 3600 seconds, got inf"),
    (["--seconds", "100000"], "--seconds must be more than 0 and at most 3600 seconds, got 100000"),
    (["--seconds", "0"], "--seconds must be more than 0 and at most 3600 seconds, got 0"),
    (["--fps", "nan"], "--fps must be more than 0 and at most 120, got nan"),
    (["--fps", "-8"], "--fps must be more than 0 and at most 120, got -8"),
])
@pytest.mark.parametrize("command", [["world", "show", "a red ball"], ["data", "render", "-n", "1"]])
def test_world_clip_lengths_and_rates_are_checked(sora, tmp_path, command, args, message):
    r = sora(*command, "-o", tmp_path / "out", *args)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"error: {message}"], r.stderr
    assert list(tmp_path.iterdir()) == []


def test_world_show_streams_a_long_clip_to_its_file(tmp_path):
    import tracemalloc

    from sora_cli.video_io import probe
    from sora_cli.world.export import show_prompt

    def peak(seconds: float) -> int:
        tracemalloc.start()
        try:
            show_prompt("a red ball bouncing on a beach", tmp_path / f"{seconds}.mp4",
                        seconds=seconds, size=64, fps=8)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(1)   # imports and first-use caches
    short, long = peak(5), peak(60)
    assert probe(tmp_path / "60.mp4").frames == 481
    # held whole, the 440 more frames of the minute would take 5.4 MB more
    assert long < short + 1_000_000, (short, long)
