"""What a clip of the built-in world shows: the canonical vocabulary and the Scene dataclasses.

The canonical values are exactly those of `captions.jsonl` and of docs/WORLD.md; every other
part of the world (renderer, caption grammar, parser, datasets) speaks in these words.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

SETTINGS = ("field", "ocean", "desert", "snow", "sunset", "night", "city", "underwater", "space")
SHAPES = ("ball", "square", "triangle", "star", "car", "person", "bird", "fish", "boat",
          "balloon", "airplane")
SIZES = ("small", "medium", "large")
MOTIONS = ("left", "right", "up", "down", "bounce", "spin", "grow", "shrink", "still")
SPEEDS = ("slow", "normal", "fast")
WEATHERS = ("none", "rain", "snow")
CAMERAS = ("none", "pan_left", "pan_right", "zoom_in", "zoom_out")

# Subject colours, sRGB, exactly as WORLD.md.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40), "orange": (245, 140, 30), "yellow": (245, 220, 40),
    "green": (40, 180, 60), "blue": (40, 80, 230), "purple": (140, 60, 200),
    "pink": (245, 120, 180), "white": (245, 245, 245), "black": (20, 20, 20),
    "brown": (130, 80, 40), "cyan": (40, 210, 220), "gray": (128, 128, 128),
}

# Settings with a sky and a ground; weather happens only there.
OUTDOOR = ("field", "ocean", "desert", "snow", "sunset", "night", "city")

# Defaults for what a prompt leaves unsaid.
DEFAULT_SETTING = "field"
DEFAULT_COLOR = "red"

# A subject's extent (its larger bounding-box side) as a fraction of the frame width.
SIZE_EXTENT = {"small": (0.10, 0.13), "medium": (0.18, 0.22), "large": (0.28, 0.32)}


@dataclass
class Subject:
    """One thing in the clip. `x`, `y` (start centre, fractions of width/height), `extent`
    (fraction of width) and `heading` (+1 right, -1 left) are chosen by the layout from the
    scene's seed when left as None/0."""

    color: str
    shape: str
    size: str = "medium"
    motion: str = "still"
    speed: str = "normal"
    x: float | None = None
    y: float | None = None
    extent: float | None = None
    heading: int = 0

    def canonical(self) -> dict:
        return {"color": self.color, "shape": self.shape, "size": self.size,
                "motion": self.motion, "speed": self.speed}


@dataclass
class Scene:
    """A clip: a setting, 0-2 subjects, weather, camera, and the seed of its visual details."""

    setting: str = DEFAULT_SETTING
    subjects: list[Subject] = field(default_factory=list)
    weather: str = "none"
    camera: str = "none"
    seed: int = 0

    def canonical(self) -> dict:
        """The captions.jsonl fields (without id and caption)."""
        return {"setting": self.setting, "subjects": [s.canonical() for s in self.subjects],
                "weather": self.weather, "camera": self.camera}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Scene":
        """Build from a captions.jsonl row or `to_dict()` output; unknown keys are ignored."""
        keys = Subject.__dataclass_fields__.keys()
        subjects = [Subject(**{k: v for k, v in s.items() if k in keys})
                    for s in d.get("subjects", [])]
        scene = cls(setting=d.get("setting", DEFAULT_SETTING), subjects=subjects,
                    weather=d.get("weather", "none"), camera=d.get("camera", "none"),
                    seed=int(d.get("seed", 0)))
        scene.validate()
        return scene

    def validate(self) -> "Scene":
        def check(value, allowed, what):
            if value not in allowed:
                raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")
        check(self.setting, SETTINGS, "setting")
        check(self.weather, WEATHERS, "weather")
        check(self.camera, CAMERAS, "camera")
        if len(self.subjects) > 2:
            raise ValueError("a scene has at most two subjects")
        for s in self.subjects:
            check(s.color, tuple(COLORS), "color")
            check(s.shape, SHAPES, "shape")
            check(s.size, SIZES, "size")
            check(s.motion, MOTIONS, "motion")
            check(s.speed, SPEEDS, "speed")
        return self
