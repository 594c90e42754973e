"""Random scenes for training data: seeded, balanced over the vocabulary, and only of scenes
whose captions the renderer can make true (enough colour contrast with the setting, camera
moves that do not cancel the subject's own motion)."""

from __future__ import annotations

import numpy as np

from sora_cli.world.backgrounds import SETTING_COLORS
from sora_cli.world.motion import starts_apart
from sora_cli.world.scene import (CAMERAS, COLORS, MOTIONS, OUTDOOR, SETTINGS, SHAPES, Scene,
                                  Subject)

P_SUBJECTS = (0.08, 0.67, 0.25)          # no subject, one, two
P_WEATHER = {"none": 0.64, "rain": 0.18, "snow": 0.18}   # outdoor settings only
P_CAMERA = 0.24                           # share of clips with a camera move
P_SIZE = {"small": 0.25, "medium": 0.5, "large": 0.25}
P_SPEED = {"slow": 0.25, "normal": 0.5, "fast": 0.25}
P_SAME = 0.2                              # two-subject clips of two identical subjects
BOAT_MOTIONS = ("left", "right", "still", "spin", "grow", "shrink")
MIN_CONTRAST = 36.0                       # RGB distance from every large setting colour


def _low_contrast(color: str, setting: str) -> bool:
    return color in _LOW_CONTRAST[setting]


def _too_close(color: str, setting: str) -> bool:
    c = np.asarray(COLORS[color], float)
    return any(np.linalg.norm(c - np.asarray(ref, float)) < MIN_CONTRAST
               for ref in SETTING_COLORS[setting] if ref is not None)


# Colours the sampler never puts in a setting (e.g. black at night, white on snow).
_LOW_CONTRAST = {st: {c for c in COLORS if _too_close(c, st)} for st in SETTINGS}


def _pick(rng: np.random.Generator, probs: dict) -> str:
    keys = list(probs)
    return keys[int(rng.choice(len(keys), p=np.asarray(list(probs.values())) / sum(probs.values())))]


def camera_fits(subject: Subject, camera: str) -> bool:
    """False for combinations where the camera would undo what the caption says."""
    if camera == "zoom_in" and subject.motion == "shrink":
        return False
    if camera == "zoom_out" and subject.motion == "grow":
        return False
    if camera.startswith("pan") and subject.motion in ("left", "right") and subject.speed == "slow":
        # The pan moves the scene the other way; only a slow subject could be cancelled out.
        scene_moves = "right" if camera == "pan_left" else "left"
        return subject.motion == scene_moves
    return True


def _subject(rng: np.random.Generator, setting: str) -> Subject:
    shapes = list(SHAPES) if setting == "ocean" else [s for s in SHAPES if s != "boat"]
    weights = np.array([4.0 if s == "boat" else 1.0 for s in shapes])
    shape = shapes[int(rng.choice(len(shapes), p=weights / weights.sum()))]
    colors = [c for c in COLORS if not _low_contrast(c, setting)]
    color = colors[int(rng.integers(len(colors)))]
    motions = BOAT_MOTIONS if shape == "boat" else MOTIONS
    motion = motions[int(rng.integers(len(motions)))]
    speed = "normal" if motion == "still" else _pick(rng, P_SPEED)
    return Subject(color=color, shape=shape, size=_pick(rng, P_SIZE), motion=motion, speed=speed)


def sample_scene(seed: int | np.random.Generator | list | tuple) -> Scene:
    """A random scene. The same seed gives the same scene (and so the same clip)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    for _ in range(100):
        setting = SETTINGS[int(rng.integers(len(SETTINGS)))]
        n = int(rng.choice(3, p=P_SUBJECTS))
        subjects = [_subject(rng, setting) for _ in range(n)]
        if n == 2 and rng.random() < P_SAME:
            subjects[1] = Subject(**subjects[0].canonical())
        weather = _pick(rng, P_WEATHER) if setting in OUTDOOR else "none"
        if weather == "snow" and any(s.color == "white" for s in subjects):
            weather = "rain"     # white flakes would blur a white subject's colour mask
        camera = "none"
        if rng.random() < P_CAMERA:
            camera = CAMERAS[1 + int(rng.integers(len(CAMERAS) - 1))]
        scene = Scene(setting, subjects, weather, camera, seed=int(rng.integers(2 ** 31)))
        if all(camera_fits(s, camera) for s in subjects) and (n < 2 or starts_apart(scene)):
            return scene
    return scene  # pragma: no cover - practically unreachable


def clip_scene(seed: int, index: int) -> Scene:
    """Scene of clip `index` of the stream `seed`: the same in WorldClips, `sora data render`
    and any other consumer, however the indices are shared out."""
    return sample_scene(np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index), 0]))


def clip_caption(seed: int, index: int, scene: Scene) -> str:
    from sora_cli.world.captions import make_caption

    return make_caption(scene, np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index), 1]))


# A motion's opposite, where it has one: the twin of a clip then differs from it the least.
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up", "grow": "shrink",
            "shrink": "grow"}


def motion_twin(scene: Scene, rng: np.random.Generator) -> Scene:
    """The same scene with each subject moving otherwise: the opposite way where there is one,
    else another motion its shape makes. Only the motion tells the twin's clip and caption
    from the scene's, so a CLIP that sees both in one batch must read motion words. A scene
    without subjects is its own twin."""
    from dataclasses import replace

    for attempt in range(100):
        subjects = []
        for s in scene.subjects:
            motions = [m for m in (BOAT_MOTIONS if s.shape == "boat" else MOTIONS)
                       if m != s.motion]
            motion = OPPOSITE.get(s.motion) if attempt == 0 else None
            if motion not in motions:
                motion = motions[int(rng.integers(len(motions)))]
            speed = "normal" if motion == "still" else s.speed
            subjects.append(replace(s, motion=motion, speed=speed, x=None, y=None, heading=0))
        twin = replace(scene, subjects=subjects)
        if all(camera_fits(s, scene.camera) for s in subjects) and (
                len(subjects) < 2 or starts_apart(twin)):
            return twin
    return scene  # pragma: no cover - practically unreachable

