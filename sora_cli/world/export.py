"""Writing world clips to files: `sora world show` (the reference clip of one prompt) and
`sora data render` (a folder of clips plus captions.jsonl, resumable)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Callable

from sora_cli.errors import SoraError, SoraUsageError
from sora_cli.world.parse import parse_prompt, prompt_notes, unknown_words
from sora_cli.world.scene import Scene

CAPTION_FIELDS = ("id", "caption", "setting", "subjects", "weather", "camera")


# Longest clip and highest frame rate rendered, those `sora generate` makes: frames stream to
# the file, but a clip's world (render.MAX_WORLD_PIXELS) and its time to render grow with them.
MAX_SECONDS = 3600.0
MAX_FPS = 120.0


def check_seconds(seconds: float, flag: str = "--seconds") -> float:
    """`seconds` when it is a clip length the world renders (more than 0, at most
    MAX_SECONDS); a usage error naming `flag` otherwise. nan passes a `<= 0` test and inf
    makes no clip, so both are refused by name."""
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds)
            and 0 < seconds <= MAX_SECONDS):
        raise SoraUsageError(f"{flag} must be more than 0 and at most {MAX_SECONDS:g} seconds, "
                             f"got {_shown(seconds)}")
    return float(seconds)


def check_fps(fps: float, flag: str = "--fps") -> float:
    """`fps` when it is a frame rate the world renders (more than 0, at most MAX_FPS); a
    usage error naming `flag` otherwise (nan and inf included)."""
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise SoraUsageError(f"{flag} must be more than 0 and at most {MAX_FPS:g}, "
                             f"got {_shown(fps)}")
    return float(fps)


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else repr(value)


def num_frames_for(seconds: float, fps: float) -> int:
    """Frames of a clip of `seconds` at `fps`, both ends included: 2 s at 8 fps = 17 (4k+1)."""
    return int(round(check_seconds(seconds) * check_fps(fps))) + 1


def parse_size(size: str | int) -> tuple[int, int]:
    """'256' or '320x192' (W x H) -> (H, W), even and at least 16."""
    text = str(size).lower().strip()
    try:
        if "x" in text:
            w, h = (int(v) for v in text.split("x", 1))
        else:
            w = h = int(text)
    except ValueError:
        raise SoraUsageError(f"--size must be N or WxH, got {size!r}")
    if w < 16 or h < 16 or w > 4096 or h > 4096 or w % 2 or h % 2:
        raise SoraUsageError(f"--size must be even and between 16 and 4096, got {size!r}")
    return h, w


def show_prompt(prompt: str, output: str | os.PathLike, seconds: float = 2.0,
                size: str | int = 256, fps: float = 8.0, seed: int = 0,
                overwrite: bool = False) -> dict:
    """Render the ground-truth clip of `prompt` to `output` (MP4); returns what was made."""
    from sora_cli.video_io import check_output_path, sora_metadata, write_video
    from sora_cli.world.render import render_frames

    if not prompt.strip():
        raise SoraUsageError('the prompt is empty: describe a scene of the world, e.g. '
                             'sora world show "a red ball bouncing on a beach" -o ball.mp4')
    hw = parse_size(size)
    frames_n = num_frames_for(seconds, fps)
    check_output_path(output, overwrite)
    scene = parse_prompt(prompt)
    scene.seed = int(seed)
    frames = render_frames(scene, hw, frames_n, fps)   # streamed: an hour is 28,801 frames
    meta = sora_metadata({"mode": "world", "prompt": prompt, "seed": seed,
                          "scene": scene.canonical()})
    info = write_video(output, frames, fps, crf=12, metadata=meta, overwrite=overwrite)
    return {"path": str(output), "prompt": prompt, "scene": scene.canonical(), "seed": seed,
            "frames": info.frames, "fps": fps, "seconds": round((frames_n - 1) / fps, 4),
            "width": info.width, "height": info.height,
            "ignored_words": unknown_words(prompt), "notes": prompt_notes(prompt)}


def _read_rows(path: Path) -> dict[str, dict]:
    """Complete rows of an existing captions.jsonl (a torn last line from a kill is dropped)."""
    rows: dict[str, dict] = {}
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "id" in row:
            rows[str(row["id"])] = row
    return rows


def caption_row(clip_id: str, caption: str, scene: Scene) -> dict:
    """A captions.jsonl row: exactly the fields of issue 4, values canonical."""
    return {"id": clip_id, "caption": caption, **scene.canonical()}


def clip_is_whole(path: Path, frames: int, hw: tuple[int, int]) -> bool:
    """Whether a rendered clip is there in full: its boxes end inside the file and its video
    track has the frames and size it was rendered with. A clip cut short by a full disk or a
    copy fails that; reading only the track table costs well under a millisecond a clip where
    decoding one costs tens."""
    from sora_cli.mp4 import Mp4Truncated, read_mp4

    try:
        mp4 = read_mp4(path)
    except (Mp4Truncated, OSError):
        return False
    track = mp4.first("video") if mp4 else None
    return track is not None and (track.samples, track.height, track.width) == (frames, *hw)


def render_dataset(out: str | os.PathLike, count: int, seed: int = 0, size: str | int = 256,
                   fps: float = 8.0, seconds: float = 2.0,
                   progress: Callable[[int], None] | None = None) -> dict:
    """Write clips 0..count-1 of stream `seed` as `out/<id>.mp4` plus `out/captions.jsonl`.

    Resumable: clips whose MP4 and row exist are skipped; a clip written but not yet listed
    gets its row (captions are deterministic); a torn last line is rewritten; a clip that is
    there but not whole (clip_is_whole) is rendered again. The folder keeps its settings in
    `render.json`, and a resume with other settings is refused.
    """
    from sora_cli.video_io import write_video
    from sora_cli.world.sampler import clip_caption, clip_scene
    from sora_cli.world.render import render_scene

    if count < 1:
        raise SoraUsageError(f"--count must be at least 1, got {count}")
    hw = parse_size(size)
    frames_n = num_frames_for(seconds, fps)
    from sora_cli.folders import make_folder

    folder = make_folder(out, "--out")

    settings = {"seed": int(seed), "width": hw[1], "height": hw[0], "fps": float(fps),
                "frames": frames_n}
    settings_path = folder / "render.json"
    if settings_path.exists():
        try:
            old = json.loads(settings_path.read_text())
        except json.JSONDecodeError:
            old = None
        if old is not None and old != settings:
            raise SoraError(f"{folder} holds clips rendered with other settings ({old}); "
                            "use a new --out folder")
    else:
        settings_path.write_text(json.dumps(settings) + "\n")

    for junk in folder.glob(".*.tmp.mp4"):   # left by a writer killed mid-clip
        junk.unlink(missing_ok=True)
    width = max(6, len(str(count - 1)))
    broken = set()
    for i in range(count):
        mp4 = folder / f"{i:0{width}d}.mp4"
        if mp4.exists() and not clip_is_whole(mp4, frames_n, hw):
            mp4.unlink()
            broken.add(mp4.stem)
    index = folder / "captions.jsonl"
    rows = _read_rows(index)
    # Rewrite the index without torn or orphaned lines before appending to it.
    kept = {k: r for k, r in rows.items() if (folder / f"{k}.mp4").exists()}
    tmp = index.with_name(".captions.jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in kept.values()), encoding="utf-8")
    os.replace(tmp, index)

    written = skipped = 0
    with open(index, "a", encoding="utf-8") as fh:
        for i in range(count):
            clip_id = f"{i:0{width}d}"
            mp4 = folder / f"{clip_id}.mp4"
            if clip_id in kept and mp4.exists():
                skipped += 1
            else:
                scene = clip_scene(seed, i)
                if not mp4.exists():
                    frames = render_scene(scene, hw, frames_n, fps)
                    write_video(mp4, frames, fps, crf=15, preset="fast")
                    written += 1
                else:
                    skipped += 1
                fh.write(json.dumps(caption_row(clip_id, clip_caption(seed, i, scene), scene)) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            if progress is not None:
                progress(1)
    return {"out": str(folder), "count": count, "written": written, "skipped": skipped,
            "rerendered": len(broken), "captions": str(index), **settings}
