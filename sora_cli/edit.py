"""Joining clips: `stitch` (cut or crossfade) and small frame operations.

Clips of different sizes, frame rates, pixel formats or audio layouts are brought to one
format first (by default the first clip's): scaled to fit and letterboxed (never stretched),
resampled to one frame rate, silence given to clips without audio when others have it. The
join itself is one ffmpeg filter graph: every input becomes a normalised *part*, and a
*transition* function folds two neighbouring parts into one. Adding a transition means
writing one such function and registering it in `TRANSITIONS`.

When the clips already share their codec configuration exactly and `cut` is asked, nothing is
re-encoded: ffmpeg's concat demuxer copies the streams, as fast as ffmpeg's own concat.
"""

from __future__ import annotations

import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from sora_cli import console
from sora_cli.errors import SoraError, SoraUsageError
from sora_cli.video_io import (SORA_TAG, VideoInfo, atomic_output, check_output_path,
                               display_filter, ffmpeg_exe, ffmpeg_path, ffmpeg_reason,
                               metadata_args, probe, require_clip, require_file, shown_seconds)


# --- frame operations ---------------------------------------------------------------------

def change_fps(frames: np.ndarray, fps: float, new_fps: float) -> np.ndarray:
    """Resample (T, H, W, C) frames to another frame rate by picking the nearest frame.

    Same timing rule as ffmpeg's `fps` filter: the clip keeps its duration (T / fps seconds),
    so the result has round(T * new_fps / fps) frames.
    """
    if fps <= 0 or new_fps <= 0:
        raise SoraUsageError(f"frame rates must be positive, got {fps} and {new_fps}")
    idx = nearest_source(np.arange(resampled_count(len(frames), fps, new_fps)), fps, new_fps)
    return frames[np.clip(idx, 0, len(frames) - 1)]


def change_fps_stream(frames: Iterable[np.ndarray], fps: float,
                      new_fps: float) -> Iterator[np.ndarray]:
    """`change_fps` on a stream of frames, so memory holds a frame or two at a time: the
    same frames, as many. A picked frame waits until the clip is known to be long enough to
    keep it (the count is rounded from the clip's length), and the end is padded with the
    last frame as `change_fps` pads it."""
    picked: list[np.ndarray] = []   # picked, not yet known to fall inside the count
    given = seen = 0
    last = None
    for last in frames:
        while nearest_source(given + len(picked), fps, new_fps) == seen:
            picked.append(last)
        seen += 1
        # the clip is at least `seen` frames long, so that many output frames are sure
        sure = min(resampled_count(seen, fps, new_fps) - given, len(picked))
        yield from picked[:sure]
        given += sure
        del picked[:sure]
    if last is not None:
        total = resampled_count(seen, fps, new_fps)
        yield from (picked + [last] * total)[:total - given]


def resampled_count(frames: int, fps: float, new_fps: float) -> int:
    """How many frames `frames` frames at `fps` become at `new_fps` (the duration is kept)."""
    return max(1, int(round(frames * new_fps / fps)))


def nearest_source(j, fps: float, new_fps: float):
    """The source frame (index, or array of them) that output frame `j` shows: the nearest
    in time, as ffmpeg's fps filter picks it. Past the last source frame when the clip ends."""
    return np.floor(np.asarray(j) * fps / new_fps + 0.5).astype(np.int64)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'WxH' -> (width, height); both positive and even (H.264 in yuv420p needs even sizes)."""
    if text is None:
        return None
    parts = text.lower().replace("×", "x").split("x")
    try:
        w, h = (int(v) for v in parts)
    except ValueError:
        raise SoraUsageError(f"--size must look like WIDTHxHEIGHT (e.g. 640x360), got {text!r}")
    if w <= 0 or h <= 0:
        raise SoraUsageError(f"--size must be positive, got {text}")
    if w % 2 or h % 2:
        raise SoraUsageError(f"--size must have an even width and height for H.264, got {text}"
                             f" (try {w + w % 2}x{h + h % 2})")
    if w > 8192 or h > 8192:
        raise SoraUsageError(f"--size {text} is larger than 8192 pixels on a side")
    return w, h


# Frame rates that ffmpeg prints rounded but that are really NTSC fractions.
_NTSC = {23.98: Fraction(24000, 1001), 29.97: Fraction(30000, 1001),
         47.95: Fraction(48000, 1001), 59.94: Fraction(60000, 1001),
         119.88: Fraction(120000, 1001)}


def _rate(fps: float) -> Fraction:
    return _NTSC.get(round(fps, 2), Fraction(fps).limit_denominator(1001))


# --- the filter graph -------------------------------------------------------------------

@dataclass
class Spec:
    """The common format every part is brought to."""

    width: int
    height: int
    rate: Fraction                # frames per second, exact
    audio_rate: int | None        # None: the output has no audio
    audio_layout: str = "stereo"

    @property
    def fps(self) -> float:
        return float(self.rate)

    def samples(self, frames: int) -> int:
        """Audio samples lasting exactly `frames` video frames."""
        return int(round(frames * self.audio_rate / self.rate)) if self.audio_rate else 0


@dataclass
class Part:
    """A normalised stretch of the output: filter-graph labels plus its exact length."""

    video: str                    # label such as "[v0]"
    audio: str | None             # label, or None when the output has no audio
    frames: int
    samples: int
    sources: list[Path] = field(default_factory=list)  # input clips it is made of, in order


class Graph:
    """An ffmpeg command under construction: inputs and a `-filter_complex` script."""

    def __init__(self, spec: Spec, workdir: Path):
        self.spec = spec
        self.workdir = workdir        # for files a transition makes (e.g. generated frames)
        self.inputs: list[str] = []
        self.filters: list[str] = []
        self._labels = 0

    def label(self, prefix: str) -> str:
        self._labels += 1
        return f"[{prefix}{self._labels}]"

    def add(self, text: str) -> None:
        self.filters.append(text)

    def input(self, path: Path) -> int:
        """Add `path` as an ffmpeg input; its index."""
        self.inputs.append(ffmpeg_path(path))
        return len(self.inputs) - 1

    def command(self) -> list[str]:
        """ffmpeg's inputs and the filter script (written to the work folder) as arguments."""
        script = self.workdir / "graph.txt"
        script.write_text(";\n".join(self.filters))
        # "-/opt FILE" reads the option's value from FILE
        return [*(a for path in self.inputs for a in ("-i", path)),
                "-/filter_complex", ffmpeg_path(script)]

    def add_input(self, path: Path, info: VideoInfo, frames: int | None = None) -> Part:
        """Add a clip and bring it to the spec: frame rate, letterboxed size, format, audio.
        It lasts `frames` frames (default: `frames_at`)."""
        s = self.spec
        index = self.input(path)
        frames = frames or frames_at(info, s.fps)
        rate = f"{s.rate.numerator}/{s.rate.denominator}"
        v = self.label("v")
        # tpad+trim make the length exact whatever the source's timestamps do; eof_action
        # keeps the last frame of a clip shorter than one output frame (a single frame at
        # 25 fps lasts 0.04 s, which rounds to no frame at 8 fps)
        self.add(f"[{index}:v:0]setpts=PTS-STARTPTS,fps={rate}:eof_action=pass,"
                 f"{display_filter(info)}"
                 f"scale={s.width}:{s.height}:force_original_aspect_ratio=decrease:"
                 f"force_divisible_by=2,pad={s.width}:{s.height}:(ow-iw)/2:(oh-ih)/2:black,"
                 f"setsar=1,format=yuv420p,tpad=stop_mode=clone:stop={frames},"
                 f"trim=end_frame={frames},setpts=PTS-STARTPTS{v}")
        a = self.sound(index if info.has_audio else None, frames) if s.audio_rate else None
        return Part(v, a, frames, s.samples(frames), [path])

    def sound(self, index: int | None, frames: int) -> str:
        """The sound of input `index` in the spec's format, exactly `frames` video frames long
        (cut or padded with silence); silence of that length for None."""
        s = self.spec
        a = self.label("a")
        fmt = f"aformat=sample_fmts=fltp:sample_rates={s.audio_rate}:channel_layouts={s.audio_layout}"
        if index is not None:
            self.add(f"[{index}:a:0]aresample={s.audio_rate},{fmt},asetpts=PTS-STARTPTS,"
                     f"apad,atrim=end_sample={s.samples(frames)}{a}")
        else:  # a silent clip among clips with sound gets silence of its own length
            self.add(f"anullsrc=r={s.audio_rate}:cl={s.audio_layout},{fmt},"
                     f"atrim=end_sample={s.samples(frames)}{a}")
        return a


def frames_at(info: VideoInfo, fps: float) -> int:
    """How many frames at `fps` the clip lasts; at least one. A variable-frame-rate clip's
    length comes from its timestamps, since its frame count / average rate falls short."""
    if info.vfr:
        return max(1, round(shown_seconds(info) * fps))
    if abs(info.fps - fps) < 1e-3:
        return info.frames
    return max(1, round(info.frames * fps / info.fps))


# --- transitions: (graph, left, right, overlap in frames) -> joined part ------------------

def cut(g: Graph, a: Part, b: Part, overlap: int) -> Part:
    v = g.label("v")
    if a.audio:
        out_a = g.label("a")
        g.add(f"{a.video}{a.audio}{b.video}{b.audio}concat=n=2:v=1:a=1{v}{out_a}")
    else:
        out_a = None
        g.add(f"{a.video}{b.video}concat=n=2:v=1:a=0{v}")
    return Part(v, out_a, a.frames + b.frames, a.samples + b.samples, a.sources + b.sources)


def crossfade(g: Graph, a: Part, b: Part, overlap: int) -> Part:
    """The last `overlap` frames of `a` blend into the first ones of `b` (and their sound)."""
    fps = g.spec.rate
    v = g.label("v")
    g.add(f"{a.video}{b.video}xfade=transition=fade:duration={float(overlap / fps):.6f}:"
          f"offset={float((a.frames - overlap) / fps):.6f}{v}")
    out_a, samples = None, 0
    if a.audio:
        out_a = g.label("a")
        ns = g.spec.samples(overlap)
        g.add(f"{a.audio}{b.audio}acrossfade=ns={ns}:c1=tri:c2=tri{out_a}")
        samples = a.samples + b.samples - ns
    return Part(v, out_a, a.frames + b.frames - overlap, samples, a.sources + b.sources)


@dataclass(frozen=True)
class Transition:
    join: Callable[[Graph, Part, Part, int], Part]
    overlaps: bool   # whether it eats `overlap` seconds of each neighbouring clip


TRANSITIONS: dict[str, Transition] = {
    "cut": Transition(cut, overlaps=False),
    "crossfade": Transition(crossfade, overlaps=True),
}
# Transitions whose frames the model makes: `sora_cli.generation.bridge` joins with them.
GENERATED_TRANSITIONS = ("bridge",)


# --- stitch ----------------------------------------------------------------------------

def stitch(inputs: Sequence[str | os.PathLike], output: str | os.PathLike, *,
           transition: str = "cut", overlap: float = 0.5,
           size: tuple[int, int] | str | None = None, fps: float | None = None, crf: int = 18,
           overwrite: bool = False,
           finalize: Callable[[Path], None] | None = None) -> VideoInfo:
    """Join clips in order into one MP4 and return the written file's description.

    `size` (width, height) and `fps` default to the first clip's. `overlap` (seconds) is the
    length of each crossfade. `finalize(tmp_path)` runs on the finished file just before it
    is renamed into place (content credentials are signed there).
    """
    if isinstance(inputs, (str, bytes, os.PathLike)):   # its letters would be the clips
        raise SoraUsageError(f"stitch takes a list of clips, got one: {inputs!r}")
    paths = [Path(p) for p in inputs]
    if len(paths) < 2:
        raise SoraUsageError("stitch needs at least two clips to join")
    if transition in GENERATED_TRANSITIONS:
        raise SoraUsageError(f"transition {transition!r} is generated by the model: "
                             "call sora_cli.generation.bridge")
    if transition not in TRANSITIONS:
        raise SoraUsageError(f"unknown transition {transition!r} (choose from "
                             f"{', '.join([*TRANSITIONS, *GENERATED_TRANSITIONS])})")
    kind = TRANSITIONS[transition]
    if isinstance(size, str):
        size = parse_size(size)
    elif size is not None:
        size = parse_size(f"{size[0]}x{size[1]}")
    if fps is not None and not 0 < fps <= 1000:
        raise SoraUsageError(f"--fps must be more than 0 and at most 1000, got {fps}")
    if not 0 <= crf <= 51:
        raise SoraUsageError(f"--crf must be between 0 and 51, got {crf}")
    if kind.overlaps and (isinstance(overlap, bool) or not isinstance(overlap, (int, float))
                          or not overlap > 0):
        raise SoraUsageError(f"--overlap must be more than 0 seconds, got {overlap!r}")
    for p in paths:
        require_file(p)
    target = check_output_path(output, overwrite)

    # Clips that can be joined untouched are described from their sample tables alone (no
    # ffmpeg run per clip), which keeps a stream-copy join as fast as ffmpeg's own concat.
    tables = _copy_tables(paths, size, fps) if transition == "cut" else None
    if tables is not None:
        infos = [t.video_info(p) for p, t in zip(paths, tables)]
    else:
        with ThreadPoolExecutor(max_workers=min(8, len(paths))) as pool:
            infos = list(pool.map(probe, paths))
        for info in infos:
            require_clip(info, "stitch")
    spec = _spec(infos, size, fps)
    lengths = [frames_at(info, spec.fps) for info in infos]
    overlap_frames = max(1, round(overlap * spec.fps)) if kind.overlaps else 0
    if kind.overlaps:
        _check_overlap(paths, infos, lengths, overlap, overlap_frames)

    settings = {"mode": "stitch", "transition": transition,
                "overlap": overlap if kind.overlaps else 0,
                "sources": [{"file": p.name, "sora": i.sora} for p, i in zip(paths, infos)]}
    metadata = _metadata(settings, any(i.sora for i in infos))

    with tempfile.TemporaryDirectory(prefix="sora-stitch-") as work:
        with atomic_output(target, overwrite, finalize) as tmp:
            if tables is not None:
                console.log(f"joining {len(paths)} clips by stream copy (no re-encode)")
                expected = sum(i.frames for i in infos)
                _concat_copy(paths, infos, tmp, Path(work), metadata)
                written = _read_back(tmp, fast=True)
            else:
                console.log(f"joining {len(paths)} clips ({transition}) at "
                            f"{spec.width}x{spec.height}, {spec.fps:g} fps")
                g = Graph(spec, Path(work))
                parts = [g.add_input(p, i, n) for p, i, n in zip(paths, infos, lengths)]
                joined = parts[0]
                for part in parts[1:]:
                    joined = kind.join(g, joined, part, overlap_frames)
                expected = joined.frames
                _encode(g, joined, tmp, crf, metadata)
                written = _read_back(tmp, fast=False)
            if written.frames != expected:
                raise SoraError(f"stitch wrote {written.frames} frames instead of {expected}")
    written.path = str(target)
    return written


def _read_back(path: Path, fast: bool) -> VideoInfo:
    """Re-open what was written. A stream copy of checked inputs only needs its sample table
    read back; a fresh encode is probed by ffmpeg."""
    from sora_cli.mp4 import read_mp4

    if fast:
        table = read_mp4(path)
        if table is not None and table.plain_h264():
            return table.video_info(path)
    return probe(path)


def _spec(infos: list[VideoInfo], size: tuple[int, int] | None, fps: float | None) -> Spec:
    first = infos[0]
    if size is None:  # the first clip's size, made even for yuv420p
        size = (first.width + first.width % 2, first.height + first.height % 2)
    with_audio = [i for i in infos if i.has_audio]
    rate = layout = None
    if with_audio:
        rate = with_audio[0].audio_rate or 48000
        layout = "mono" if all(i.audio_channels == 1 for i in with_audio) else "stereo"
    return Spec(size[0], size[1], _rate(fps or first.fps), rate, layout or "stereo")


def _check_overlap(paths, infos, lengths: list[int], overlap: float, frames: int) -> None:
    last = len(paths) - 1
    for n, (p, info, length) in enumerate(zip(paths, infos, lengths)):
        seams = 1 if n in (0, last) else 2  # a clip in the middle fades at both ends
        if seams * frames > length - (1 if seams == 1 else 0):
            what = "as long as or longer than" if seams == 1 else "too long for two fades in"
            raise SoraError(f"--overlap {overlap:g}s is {what} {p.name} ({info.duration:g}s); "
                            "use a shorter --overlap")


def _metadata(settings: dict, from_sora: bool) -> dict[str, str]:
    from sora_cli import __version__

    tags = {SORA_TAG: json.dumps(settings, separators=(",", ":"), default=str),
            "encoder_tool": f"sora-cli {__version__}"}
    tags["comment"] = ("AI-generated video made by sora-cli " + __version__ if from_sora
                       else "stitched by sora-cli " + __version__)
    return tags


def _copy_tables(paths: list[Path], size: tuple[int, int] | None,
                 fps: float | None) -> list | None:
    """The clips' sample tables when ffmpeg's concat demuxer can join them untouched, else
    None: plain H.264 (+AAC) MP4s with byte-identical codec configurations (one set of
    SPS/PPS decodes every part), one frame rate, and the size and rate asked for."""
    from sora_cli.mp4 import Mp4Truncated, read_mp4

    tables = []
    for p in paths:
        if any(c in str(p.resolve()) for c in "\r\n"):
            return None   # the concat demuxer's listing has no way to write a line break
        try:
            table = read_mp4(p)
        except Mp4Truncated:
            return None  # probe() will name the problem
        if table is None or not table.plain_h264():
            return None
        tables.append(table)

    def key(t):
        return [(k.kind, k.fourcc, k.config, k.timescale, k.sample_delta, k.rotation)
                for k in t.tracks if k.kind in ("video", "audio")]

    first = tables[0].first("video")
    # a copy keeps the stored frame, which is not the size asked when a player widens it
    if size is not None and ((first.width, first.height) != tuple(size) or first.sar != 1):
        return None
    if fps is not None and abs(first.fps - fps) > 1e-3:
        return None
    if first.width % 2 or first.height % 2:
        return None
    return tables if all(key(t) == key(tables[0]) for t in tables[1:]) else None


def _concat_copy(paths: list[Path], infos: list[VideoInfo], out: Path, work: Path,
                 metadata: dict[str, str]) -> None:
    listing = work / "inputs.txt"
    listing.write_text("".join("file '" + str(p.resolve()).replace("'", "'\\''") + "'\n"
                               for p in paths))
    audio = ["-map", "0:a:0"] if infos[0].has_audio else []
    # auto_convert 0: the configs are identical, so no in-band SPS/PPS need adding; the
    # packets are copied bit for bit.
    _run(["-f", "concat", "-safe", "0", "-auto_convert", "0", "-i", ffmpeg_path(listing),
          "-map", "0:v:0", *audio, "-c", "copy", "-map_metadata", "-1", *metadata_args(metadata),
          "-movflags", "+faststart+use_metadata_tags", ffmpeg_path(out)],
         sum(i.frames for i in infos), "stitch (stream copy)")


def joined_sound(paths: Sequence[Path], infos: Sequence[VideoInfo], frames: Sequence[int],
                 gap: int, fps: float, out: Path) -> Path | None:
    """The sound of clips joined with `gap` new, silent frames between neighbours (a
    generated bridge), clip i lasting `frames[i]` frames at `fps`: written to `out` (WAV),
    or None when no clip has sound."""
    spec = _spec(list(infos), (2, 2), fps)   # the size is unused: only sound is built
    if not spec.audio_rate:
        return None
    g = Graph(spec, out.parent)
    labels = []
    for i, (path, info, n) in enumerate(zip(paths, infos, frames)):
        index = g.input(path)
        labels.append(g.sound(index if info.has_audio else None, n))
        if i + 1 < len(paths) and gap:
            labels.append(g.sound(None, gap))
    a = g.label("a")
    g.add(f"{''.join(labels)}concat=n={len(labels)}:v=0:a=1{a}")
    _run([*g.command(), "-map", a, "-c:a", "pcm_f32le", ffmpeg_path(out)], 0, "sound")
    return out


def _encode(g: Graph, part: Part, out: Path, crf: int, metadata: dict[str, str]) -> None:
    args = [*g.command(), "-map", part.video]
    if part.audio:
        args += ["-map", part.audio, "-c:a", "aac", "-b:a", "160k"]
    args += ["-c:v", "libx264", "-preset", "medium", "-crf", str(crf), "-pix_fmt", "yuv420p",
             "-map_metadata", "-1", *metadata_args(metadata),
             "-movflags", "+faststart+use_metadata_tags", ffmpeg_path(out)]
    _run(args, part.frames, "stitch")


def _run(args: list[str], frames: int, what: str) -> None:
    """Run ffmpeg with a progress bar fed by its `-progress` reports."""
    import subprocess

    with tempfile.TemporaryFile() as errlog, console.progress(what, total=frames) as advance:
        proc = subprocess.Popen([ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats",
                                 "-loglevel", "error", "-progress", "pipe:1", "-y", *args],
                                stdout=subprocess.PIPE, stderr=errlog)
        done = 0
        try:
            for line in proc.stdout:
                if line.startswith(b"frame="):
                    now = int(line[6:].strip() or 0)
                    advance(max(0, now - done))
                    done = max(done, now)
            proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if proc.returncode != 0:
            errlog.seek(0)
            raise SoraError(f"{what} failed: {ffmpeg_reason(errlog.read())}")
