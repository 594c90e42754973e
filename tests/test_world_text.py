"""Caption grammar and prompt parser: every vocabulary word is named, captions parse back to
their scenes, free phrasings a person would type are understood, bad prompts are reported."""

from __future__ import annotations

import numpy as np
import pytest

from sora_cli.errors import SoraError
from sora_cli.world.captions import make_caption
from sora_cli.world.sampler import clip_caption, clip_scene
from sora_cli.world.parse import PromptNotUnderstood, parse_prompt, unknown_words
from sora_cli.world.render import render_scene
from sora_cli.world.sampler import sample_scene
from sora_cli.world.scene import (CAMERAS, COLORS, MOTIONS, SETTINGS, SHAPES, SIZES,
                                  WEATHERS, Scene, Subject)
from sora_cli.world.words import (COLOR_WORDS, SETTING_KEYWORDS, SHAPE_NOUNS,
                                  SIZE_WORDS, SPEED_WORDS, WEATHER_PHRASES)


def test_round_trip_on_thousands_of_sampled_scenes():
    n_two = n_cam = n_weather = 0
    for i in range(2500):
        scene = clip_scene(11, i)
        caption = clip_caption(11, i, scene)
        assert unknown_words(caption) == [], caption
        parsed = parse_prompt(caption, strict=True)
        assert parsed.canonical() == scene.canonical(), caption
        n_two += len(scene.subjects) == 2
        n_cam += scene.camera != "none"
        n_weather += scene.weather != "none"
    assert n_two > 400 and n_cam > 300 and n_weather > 300


def test_captions_vary_widely():
    scene = Scene("ocean", [Subject("red", "ball", motion="bounce")])
    captions = {make_caption(scene, seed) for seed in range(200)}
    assert len(captions) > 120
    assert all(parse_prompt(c).canonical() == scene.canonical() for c in captions)
    # free word order: the setting comes first in some, last in others
    assert any(c.lower().startswith(("on a beach", "at the beach", "by the sea", "over the", "on the"))
               for c in captions)
    assert any(c.rstrip(".").endswith(("beach", "ocean", "sea")) for c in captions)


def _caption_words(scene: Scene, n: int = 60) -> str:
    return " ".join(make_caption(scene, s).lower() for s in range(n))


def _has(text: str, word: str) -> bool:
    import re
    return re.search(r"\b" + re.escape(word.lower()) + r"\b", text) is not None


@pytest.mark.parametrize("setting", SETTINGS)
def test_every_setting_renders_and_is_named(setting):
    scene = Scene(setting, [Subject("orange", "ball")], seed=1)
    assert render_scene(scene, 32, 2).shape == (2, 32, 32, 3)
    text = _caption_words(scene)
    assert any(_has(text, w) for w in SETTING_KEYWORDS[setting]), setting


def test_every_colour_shape_size_speed_motion_renders_and_is_named():
    for color in COLORS:
        scene = Scene("field", [Subject(color, "ball")], seed=2)
        assert render_scene(scene, 32, 1).shape == (1, 32, 32, 3)
        captions = [make_caption(scene, s).lower() for s in range(20)]
        assert all(any(_has(c, w) for w in COLOR_WORDS[color]) for c in captions)
        text = " ".join(captions)
        if color == "gray":
            assert _has(text, "gray") and _has(text, "grey")
    for shape in SHAPES:
        scene = Scene("ocean", [Subject("blue", shape, motion="left")], seed=3)
        assert render_scene(scene, 32, 2).shape == (2, 32, 32, 3)
        text = _caption_words(scene)
        for singular, _ in SHAPE_NOUNS[shape]:   # every synonym turns up
            assert _has(text, singular), (shape, singular)
    for size in SIZES:
        text = _caption_words(Scene("field", [Subject("red", "ball", size=size)]))
        if size == "medium":
            continue
        assert all(any(_has(make_caption(Scene("field", [Subject("red", "ball", size=size)]), s), w)
                       for w in SIZE_WORDS[size]) for s in range(20))
        for w in SIZE_WORDS[size]:
            assert _has(text, w), (size, w)
    for speed in ("slow", "fast"):
        text = _caption_words(Scene("field", [Subject("red", "ball", motion="up", speed=speed)]))
        assert any(_has(text, w) for w in SPEED_WORDS[speed])
    for motion in MOTIONS:
        scene = Scene("field", [Subject("red", "bird", motion=motion)])
        assert render_scene(scene, 32, 3).shape == (3, 32, 32, 3)
        for s in range(30):
            assert parse_prompt(make_caption(scene, s)).subjects[0].motion == motion


@pytest.mark.parametrize("weather", [w for w in WEATHERS if w != "none"])
def test_weather_is_named(weather):
    scene = Scene("field", [Subject("red", "ball")], weather=weather)
    text = _caption_words(scene)
    assert sum(_has(text, p) for p in WEATHER_PHRASES[weather]) >= 3


@pytest.mark.parametrize("camera", [c for c in CAMERAS if c != "none"])
def test_camera_is_named(camera):
    text = _caption_words(Scene("field", [Subject("red", "ball")], camera=camera))
    assert _has(text, "pans" if camera.startswith("pan") else "zoom") or _has(text, "panning") \
        or _has(text, "zooming")
    assert _has(text, camera.split("_")[1])


def _canon(setting="field", subjects=(), weather="none", camera="none"):
    return {"setting": setting, "weather": weather, "camera": camera,
            "subjects": [dict(zip(("color", "shape", "size", "motion", "speed"), s))
                         for s in subjects]}


FREE = [
    ("A small yellow star falls through outer space.",
     _canon("space", [("yellow", "star", "small", "down", "normal")])),
    ("a red ball bouncing on a grass field",
     _canon("field", [("red", "ball", "medium", "bounce", "normal")])),
    ("a red ball bouncing on a beach", _canon("ocean", [("red", "ball", "medium", "bounce", "normal")])),
    ("a purple car drives left down a city street at night while it snows",
     _canon("city", [("purple", "car", "medium", "left", "normal")], weather="snow")),
    ("a white bird flying right and a green balloon rising over the ocean",
     _canon("ocean", [("white", "bird", "medium", "right", "normal"),
                      ("green", "balloon", "medium", "up", "normal")])),
    ("two red balls", _canon("field", [("red", "ball", "medium", "still", "normal")] * 2)),
    ("Two red balls bouncing on a sunny day.",
     _canon("field", [("red", "ball", "medium", "bounce", "normal")] * 2)),
    ("A BIG grey cube spinning quickly in the desert!!",
     _canon("desert", [("gray", "square", "large", "spin", "fast")])),
    ("a tiny pink fish swimming slowly to the left underwater",
     _canon("underwater", [("pink", "fish", "small", "left", "slow")])),
    ("the camera pans right over a snowy field while a black man walks left",
     _canon("snow", [("black", "person", "medium", "left", "normal")], camera="pan_right")),
    ("zooming in on an orange balloon floating up at sunset in the rain",
     _canon("sunset", [("orange", "balloon", "medium", "up", "normal")], weather="rain",
            camera="zoom_in")),
    ("a blue plane", _canon("field", [("blue", "airplane", "medium", "still", "normal")])),
    ("a woman standing still in a park", _canon("field", [("pink", "person", "medium", "still",
                                                           "normal")])),
    ("A brown boat sails from left to right on the sea",
     _canon("ocean", [("brown", "boat", "medium", "right", "normal")])),
    ("a cyan triangle is getting smaller at dusk",
     _canon("sunset", [("cyan", "triangle", "medium", "shrink", "normal")])),
    ("a large white square grows under the night sky as it snows",
     _canon("night", [("white", "square", "large", "grow", "normal")], weather="snow")),
    ("Outer space, with stars. A red star rotating.",
     _canon("space", [("red", "star", "medium", "spin", "normal")])),
    ("a green bird and a yellow bird, both flying left fast, over a meadow",
     _canon("field", [("green", "bird", "medium", "left", "fast"),
                      ("yellow", "bird", "medium", "left", "fast")])),
    ("in winter a red car is parked", _canon("snow", [("red", "car", "medium", "still", "normal")])),
    ("a black car driving on a city street at night",
     _canon("city", [("black", "car", "medium", "right", "normal")])),
    ("an empty beach while it rains", _canon("ocean", weather="rain")),
    ("a grey balloon sinking under the sea",
     _canon("underwater", [("gray", "balloon", "medium", "down", "normal")])),
    ("a small orange ball rolls right, and a large blue box falls down, in the desert",
     _canon("desert", [("orange", "ball", "small", "right", "normal"),
                       ("blue", "square", "large", "down", "normal")])),
    ("The camera slowly zooms out from a purple airplane flying left at night",
     _canon("night", [("purple", "airplane", "medium", "left", "normal")], camera="zoom_out")),
    # a setting adjective names the place only where no setting noun does
    ("a red ball bouncing on a sandy beach",
     _canon("ocean", [("red", "ball", "medium", "bounce", "normal")])),
    ("a white boat on a sunny lake", _canon("ocean", [("white", "boat", "medium", "still",
                                                       "normal")])),
    ("a red ball bouncing in the sandy desert",
     _canon("desert", [("red", "ball", "medium", "bounce", "normal")])),
    ("a red sandy ball bouncing on a beach",
     _canon("ocean", [("red", "ball", "medium", "bounce", "normal")])),
    ("a sandy green ball on the shore",
     _canon("ocean", [("green", "ball", "medium", "still", "normal")])),
    ("a blue car on a sunny day", _canon("field", [("blue", "car", "medium", "still",
                                                     "normal")])),
    ("a sandy yellow star", _canon("desert", [("yellow", "star", "medium", "still",
                                               "normal")])),
]
FREE[12][1]["subjects"][0]["color"] = "red"     # no colour given: the default colour


@pytest.mark.parametrize("prompt, want", FREE, ids=[p for p, _ in FREE])
def test_free_phrasings(prompt, want):
    assert parse_prompt(prompt).canonical() == want


def test_unknown_words_are_reported():
    with pytest.raises(PromptNotUnderstood) as exc:
        parse_prompt("a magenta ball bouncing on a beach")
    assert exc.value.unknown == ["magenta"]
    assert isinstance(exc.value, SoraError)
    with pytest.raises(PromptNotUnderstood) as exc:
        parse_prompt("quantum chromodynamics lecture")
    assert set(exc.value.unknown) == {"quantum", "chromodynamics", "lecture"}
    with pytest.raises(PromptNotUnderstood, match="at most two"):
        parse_prompt("three red balls on a beach")
    with pytest.raises(PromptNotUnderstood):
        parse_prompt("   ")
    # Ignored when harmless, refused in strict mode.
    assert parse_prompt("a red ball bouncing merrily on a beach").subjects[0].motion == "bounce"
    assert unknown_words("a red ball bouncing merrily on a beach") == ["merrily"]
    with pytest.raises(PromptNotUnderstood) as exc:
        parse_prompt("a red ball bouncing merrily on a beach", strict=True)
    assert exc.value.unknown == ["merrily"]


def test_parsed_scene_renders_with_defaults():
    scene = parse_prompt("a red ball")
    assert scene.setting == "field" and scene.weather == "none" and scene.camera == "none"
    s = scene.subjects[0]
    assert (s.size, s.motion, s.speed) == ("medium", "still", "normal")
    assert render_scene(scene, 32, 2).shape == (2, 32, 32, 3)
    assert parse_prompt("rain over a grass field").subjects == []


def test_sample_scene_accepts_a_generator_and_is_deterministic():
    a = sample_scene(np.random.default_rng(5))
    b = sample_scene(np.random.default_rng(5))
    assert a == b and sample_scene(7) == sample_scene(7)


@pytest.mark.parametrize("prompt, motion, weather", [
    ("a purple triangle ascending in a city at night as rain pours down", "up", "rain"),
    ("a blue bird flying left as snow drifts down", "left", "snow"),
    ("a red ball resting on a meadow while snowflakes fall", "still", "snow"),
])
def test_weather_verbs_do_not_move_the_subject(prompt, motion, weather):
    scene = parse_prompt(prompt)
    assert scene.subjects[0].motion == motion and scene.weather == weather


@pytest.mark.parametrize("prompt, scene, note", [
    ("a red ball on a beach at sunset", {"setting": "sunset", "weather": "none"},
     "'a red ball on a beach at sunset' names 2 settings ('beach' (ocean) and 'sunset'); a "
     "scene of the built-in world has one and this prompt is read with 'sunset'"),
    ("a red ball bouncing on the sand at the beach", {"setting": "desert", "weather": "none"},
     "'a red ball bouncing on the sand at the beach' names 2 settings ('beach' (ocean) and "
     "'sand' (desert)); a scene of the built-in world has one and this prompt is read with "
     "'sand' (desert)"),
    ("a red ball in the rain underwater", {"setting": "underwater", "weather": "none"},
     "'a red ball in the rain underwater' asks for 'rain', but the built-in world has no "
     "weather underwater: it is left out"),
    ("a yellow star in space while it snows", {"setting": "space", "weather": "none"},
     "'a yellow star in space while it snows' asks for 'it snows', but the built-in world has "
     "no weather in space: it is left out"),
    ("a red ball on a beach while it rains and snows", {"setting": "ocean", "weather": "rain"},
     "'a red ball on a beach while it rains and snows' names 2 kinds of weather ('snows' and "
     "'it rains'); a scene of the built-in world has one and this prompt is read with "
     "'it rains'"),
])
def test_what_a_scene_leaves_out_is_noted_and_the_parse_is_unchanged(prompt, scene, note):
    from sora_cli.world.parse import prompt_notes

    parsed = parse_prompt(prompt).canonical()
    assert {k: parsed[k] for k in scene} == scene      # the evaluation's reading, as before
    assert prompt_notes(prompt) == [note]


@pytest.mark.parametrize("prompt", [
    "a blue car driving left down a city street at night",   # a city is at night
    "a car on a road at night",
    "a fish swimming in the sea underwater",                 # underwater is in the sea
    "a red ball on a sandy beach",                           # "sandy" describes the beach
    "a red ball resting on a meadow while snowflakes fall",
    "a purple square spinning on a grass field at sunset",   # a field at sunset
    "rain over a grass field",
    "quantum chromodynamics lecture",                        # not read as a scene: no notes
])
def test_nothing_is_noted_when_nothing_is_left_out(prompt):
    from sora_cli.world.parse import prompt_notes

    assert prompt_notes(prompt) == []


def test_captions_never_name_what_their_scene_leaves_out():
    from sora_cli.world.parse import prompt_notes

    for i in range(600):
        scene = clip_scene(11, i)
        caption = clip_caption(11, i, scene)
        assert prompt_notes(caption) == [], caption


def test_world_show_warns_of_a_second_setting_once(sora, tmp_path):
    prompt = "a red ball on a beach at sunset"
    r = sora("world", "show", prompt, "-o", tmp_path / "x.mp4", "--size", "64", "--seconds",
             "0.5")
    assert r.returncode == 0, r.stderr
    flat = " ".join(r.stderr.split())   # rich may wrap a long warning
    assert flat.count(f"warning: {prompt!r} names 2 settings ('beach' (ocean) and 'sunset')") == 1
    assert "scene: sunset," in flat
