"""Storyboards: a film described as consecutive segments, each a prompt and a duration.

Two formats, so a storyboard can be written by hand or by a program:

text, one segment a line (`#` comments and blank lines skipped)::

    4s: a red ball bouncing on a beach
    3.5: the red ball rolling right on a beach
    a blue car driving left in the city | 2  (the duration may also end the line after |)
    a red ball resting on a beach            (duration: the default)

JSON: ``{"segments": [{"prompt": "...", "duration": 4}, ...], "seed": 7}`` or a bare list.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from sora_cli.errors import SoraError
from sora_cli.textfile import text_lines

DEFAULT_SEGMENT_SECONDS = 4.0
MAX_SEGMENT_SECONDS = 600.0

# A YAML or JSON-like key at a line's start: such a file read as text would turn every key
# into a prompt ("segments:", "- prompt: a red ball") and make a film of them.
_KEY_LINE = re.compile(r"^\s*-?\s*[\"']?(segments|prompt|duration|negative|seed)[\"']?\s*:",
                       re.IGNORECASE)
_LINE = re.compile(r"^\s*(?:(?P<dur>\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds)?\s*[:|]\s*)?(?P<prompt>.*\S)\s*$",
                   re.IGNORECASE)
_TRAILING = re.compile(r"^(?P<prompt>.*\S)\s*\|\s*(?P<dur>\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds)?\s*$",
                       re.IGNORECASE)
# What starts like a duration but is none ("-1s:", "1m:", "1,5s:", "1e0s:", "nan s:", "1s:"
# with no prompt): read as a prompt, it would become a default-length segment of the wrong
# scene
_DURATION_LIKE = re.compile(r"^\s*(?:[-+]?\d[\w.,+-]*\s*[a-z]{0,7}|[-+]?(?:nan|inf(?:inity)?)"
                            r"\s*(?:s|sec|secs|seconds)?)\s*[:|]\s*(?P<rest>.*)$", re.IGNORECASE)
SEGMENT_KEYS = ("prompt", "duration", "negative")


@dataclass
class Segment:
    prompt: str
    duration: float
    negative: str = ""


@dataclass
class Storyboard:
    segments: list[Segment]
    seed: int | None = None

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)


def _segment(prompt: object, duration: object, where: str, negative: object = "") -> Segment:
    if not isinstance(prompt, str) or not prompt.strip():
        raise SoraError(f"{where}: a segment needs a non-empty prompt")
    if isinstance(duration, bool):  # JSON true is no number of seconds, though float() takes it
        raise SoraError(f"{where}: duration must be a number of seconds, got {duration!r}")
    try:
        seconds = float(duration)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SoraError(f"{where}: duration must be a number of seconds, got {duration!r}")
    if not 0 < seconds <= MAX_SEGMENT_SECONDS:
        raise SoraError(f"{where}: duration must be more than 0 and at most "
                        f"{MAX_SEGMENT_SECONDS:g} s, got {seconds:g}")
    return Segment(prompt.strip(), seconds, str(negative or ""))


def parse_storyboard(text: str, source: str = "storyboard",
                     default_duration: float = DEFAULT_SEGMENT_SECONDS) -> Storyboard:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")) or source.lower().endswith(".json"):
        return _parse_json(text, source, default_duration)
    segments = []
    for number, line in enumerate(text_lines(text), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if _KEY_LINE.match(line):
            raise SoraError(f"{source}:{number}: this looks like YAML, which storyboards are not "
                            "written in; write one 'SECONDS: prompt' a line, or JSON "
                            "({\"segments\": [{\"prompt\": ..., \"duration\": ...}]})")
        m = _LINE.match(line)
        if m is None:  # pragma: no cover - the pattern accepts any non-blank line
            raise SoraError(f"{source}:{number}: cannot read this line")
        prompt, duration = m.group("prompt"), m.group("dur")
        odd = _DURATION_LIKE.match(line) if duration is None else None
        if odd is not None and not odd.group("rest"):
            raise SoraError(f"{source}:{number}: no prompt after the duration in "
                            f"{line.strip()!r}; write 'SECONDS: prompt'")
        if odd is not None:
            raise SoraError(f"{source}:{number}: cannot read the duration in {line.strip()!r}; "
                            "write it as seconds, e.g. '4s: prompt' or '3.5: prompt'")
        end = _TRAILING.match(prompt) if duration is None else None
        if end is not None:  # "a red ball bouncing on a beach | 4"
            prompt, duration = end.group("prompt"), end.group("dur")
        if "|" in prompt:  # a duration that is no number, or two of them: not a prompt's word
            raise SoraError(f"{source}:{number}: cannot read the duration in {line.strip()!r}; "
                            "write 'SECONDS: prompt' (or 'prompt | SECONDS')")
        segments.append(_segment(prompt, default_duration if duration is None else duration,
                                 f"{source}:{number}"))
    if not segments:
        raise SoraError(f"{source}: no segments (write one 'SECONDS: prompt' per line)")
    return Storyboard(segments)


def _parse_json(text: str, source: str, default_duration: float) -> Storyboard:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = ("; a .json storyboard is read as JSON: name a text one .txt"
                if not text.lstrip().startswith(("{", "[")) else "")
        raise SoraError(f"{source}: invalid JSON at line {exc.lineno}: {exc.msg}{hint}")
    seed = None
    if isinstance(data, dict):
        unknown = sorted(set(data) - {"segments", "seed"})
        if unknown:
            raise SoraError(f"{source}: unknown key(s) {', '.join(unknown)}; a storyboard has "
                            "\"segments\" and may have \"seed\"")
        seed = data.get("seed")
        data = data.get("segments")
    if isinstance(data, list) and not data:
        raise SoraError(f"{source}: no segments (give at least one "
                        "{\"prompt\": ..., \"duration\": ...})")
    if not isinstance(data, list):
        raise SoraError(f"{source}: expected a list of segments or {{\"segments\": [...]}}")
    segments = []
    for i, row in enumerate(data, 1):
        where = f"{source}: segment {i}"
        if isinstance(row, str):
            segments.append(_segment(row, default_duration, where))
        elif isinstance(row, dict):
            unknown = sorted(set(row) - set(SEGMENT_KEYS))
            if unknown:  # a misspelt "duration" would silently become the default
                raise SoraError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: "
                                f"{', '.join(SEGMENT_KEYS)}")
            duration = row.get("duration", default_duration)
            if isinstance(duration, bool) or not isinstance(duration, (int, float)):
                # "4" would read as a number, but so would "nan"; true would read as 1
                raise SoraError(f"{where}: duration must be a number of seconds, got "
                                f"{json.dumps(duration)}")
            segments.append(_segment(row.get("prompt"), duration, where, row.get("negative", "")))
        else:
            raise SoraError(f"{where}: expected a prompt string or an object")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)
                             or not 0 <= seed < 2**63):
        raise SoraError(f"{source}: seed must be an integer from 0 to 2**63 - 1, got {seed!r}")
    return Storyboard(segments, seed)


def load_storyboard(path: str | Path, default_duration: float = DEFAULT_SEGMENT_SECONDS) -> Storyboard:
    from sora_cli.textfile import read_text_arg

    text, name = read_text_arg(path, "storyboard file", "a storyboard is text or JSON")
    return parse_storyboard(text, name, default_duration)
