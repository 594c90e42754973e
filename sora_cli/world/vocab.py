"""The vocabulary as data and as text, for `sora world vocab` and the docs."""

from __future__ import annotations

from sora_cli.world.backgrounds import SETTING_COLORS
from sora_cli.world.scene import (CAMERAS, COLORS, DEFAULT_COLOR, DEFAULT_SETTING, MOTIONS,
                                  SIZE_EXTENT, WEATHERS)
from sora_cli.world.words import (CAMERA_PHRASES, COLOR_WORDS, DIRECTION_PHRASES,
                                  MOTION_PHRASES, SETTING_KEYWORDS, SHAPE_NOUNS, SIZE_WORDS,
                                  SPEED_WORDS, TRAVEL_VERBS, WEATHER_PHRASES)


def vocabulary() -> dict:
    """Canonical values with the words that mean them (what `sora world vocab --json` prints)."""
    motions = {}
    for m in MOTIONS:
        if m in ("left", "right"):
            motions[m] = [f"{v[2]} {d}" for v in TRAVEL_VERBS[:7] for d in DIRECTION_PHRASES[m][:1]]
        else:
            motions[m] = MOTION_PHRASES[m]["ing"]
    return {
        "settings": {s: {"words": SETTING_KEYWORDS[s][:8], "colors": [c for c in SETTING_COLORS[s] if c]}
                     for s in SETTING_KEYWORDS},
        "colors": {c: {"words": COLOR_WORDS[c], "rgb": list(COLORS[c])} for c in COLORS},
        "shapes": {s: [n for n, _ in SHAPE_NOUNS[s]] for s in SHAPE_NOUNS},
        "sizes": {s: {"words": SIZE_WORDS[s], "width_fraction": list(SIZE_EXTENT[s])}
                  for s in SIZE_WORDS},
        "motions": motions,
        "speeds": {"slow": SPEED_WORDS["slow"], "normal": [], "fast": SPEED_WORDS["fast"]},
        "weather": {w: WEATHER_PHRASES.get(w, []) for w in WEATHERS},
        "camera": {c: CAMERA_PHRASES.get(c, [])[:3] for c in CAMERAS},
        "defaults": {"setting": DEFAULT_SETTING, "color": DEFAULT_COLOR, "size": "medium",
                     "motion": "still", "speed": "normal", "weather": "none", "camera": "none"},
        "limits": "one or two subjects; weather only in outdoor settings",
    }


def vocabulary_text() -> str:
    v = vocabulary()
    lines = ["Settings:"]
    for s, d in v["settings"].items():
        lines.append(f"  {s:<11} {', '.join(d['words'])}")
    lines.append("Colours:")
    lines.append("  " + ", ".join(f"{'/'.join(d['words'])} {tuple(d['rgb'])}"
                                  for d in v["colors"].values()))
    lines.append("Subjects:")
    lines.append("  " + "; ".join(f"{s} ({', '.join(w)})" for s, w in v["shapes"].items()))
    lines.append("Sizes:")
    for s, d in v["sizes"].items():
        lo, hi = d["width_fraction"]
        lines.append(f"  {s:<11} {', '.join(d['words'])}  ({lo:.0%}-{hi:.0%} of the width)")
    lines.append("Motions:")
    for m, words in v["motions"].items():
        lines.append(f"  {m:<11} {', '.join(words)}")
    lines.append("Speeds:      slowly/slow/gently (half), quickly/fast/rapidly (double)")
    lines.append("Weather:")
    for w, words in v["weather"].items():
        if words:
            lines.append(f"  {w:<11} {', '.join(words)}")
    lines.append("Camera:")
    for c, words in v["camera"].items():
        if words:
            lines.append(f"  {c:<11} {', '.join(words)}")
    d = v["defaults"]
    lines.append(f"Defaults:    setting {d['setting']} (a grass field on a sunny day), colour "
                 f"{d['color']}, size medium, no motion word = still, speed normal, "
                 "no weather, no camera move")
    lines.append("Limits:      " + v["limits"])
    return "\n".join(lines)
