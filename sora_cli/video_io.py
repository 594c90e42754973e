"""Reading and writing video files safely, through the ffmpeg that imageio-ffmpeg bundles.

Every write goes to a hidden temporary `.mp4` in the target's folder, is re-opened and its
frame count checked, optionally finalised (signing), and only then renamed over the target:
a killed process never leaves a truncated file under the name the user asked for.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import math
import errno
import os
import re
import shlex
import subprocess
import tempfile
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np

from sora_cli.errors import SoraError, SoraUsageError
from sora_cli.textfile import is_stream

# The key under which sora-cli keeps its generation settings (compact JSON) in the MP4.
SORA_TAG = "sora"
# swscale's default RGB <-> YUV conversion truncates where it should round and takes chroma
# from neighbouring pixels: every encode and decode darkened a picture by about 1.1 levels,
# and each further pass (extend, a re-encoding stitch) again (five passes: 32 dB against the
# first picture). Rounding exactly and interpolating chroma in full makes passes converge.
EXACT = "accurate_rnd+full_chroma_int"
SWS_ARGS = ["-sws_flags", f"bicubic+{EXACT}"]


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_path(path: str | os.PathLike) -> str:
    """`path` spelled so that ffmpeg opens that local file. ffmpeg reads a name's text before
    a ':' as a protocol (`pipe:x.mp4` is its standard output, `ab:cd.mp4` an unknown
    protocol) and a lone '-' as stdin/stdout; a './' in front leaves the file the same and
    leaves ffmpeg nothing to misread. Only for ffmpeg's arguments: messages show the path as
    the user gave it."""
    text = os.fspath(path)
    # an absolute path starts with '/' (or, on Windows, a drive, which ffmpeg knows there)
    if os.path.isabs(text) or os.path.splitdrive(text)[0]:
        return text
    return os.path.join(os.curdir, text) if ":" in text or text == "-" else text


def find_ffmpeg_early() -> None:
    """Start imageio-ffmpeg's once-per-process check of its binary (it runs `ffmpeg -version`,
    0.13 s here) on a thread, so it overlaps loading a model instead of delaying the first
    video's write. A failure is left for the write to report."""
    import threading

    def find():
        try:
            ffmpeg_exe()
        except Exception:  # noqa: BLE001 - the writer raises it again, with its own message
            pass

    threading.Thread(target=find, name="find-ffmpeg", daemon=True).start()


def run_ffmpeg(args: list[str], what: str) -> subprocess.CompletedProcess:
    """Run the bundled ffmpeg; a failure becomes one line naming `what` and ffmpeg's reason."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *args],
                          capture_output=True)
    if proc.returncode < 0 and not proc.stderr.strip():  # e.g. over a file size limit
        import signal

        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        raise SoraError(f"{what} failed: ffmpeg was stopped by {name}")
    if proc.returncode != 0:
        raise SoraError(f"{what} failed: {ffmpeg_reason(proc.stderr)}")
    return proc


# ffmpeg's own words for common problems, most specific first, and what they mean to a user.
_REASONS = [
    ("moov atom not found", "truncated or unfinished MP4 (moov atom not found)"),
    ("partial file", "truncated file (the video data ends early)"),
    ("No space left on device", "no space left on device"),
    ("Permission denied", "permission denied"),
    ("Invalid data found when processing input", "invalid data found when processing input"),
    ("does not contain any stream", "the file holds no audio or video stream"),
]


def ffmpeg_reason(stderr: bytes | str) -> str:
    """The most telling line of an ffmpeg error log ("Conversion failed!" says nothing)."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    for needle, meaning in _REASONS:
        if needle in text:
            return meaning
    boring = ("Conversion failed", "Error opening input file", "Error opening output file",
              "Error opening input files", "Error opening output files", "frame=", "size=",
              "video:", "[out#")
    # ffmpeg's threads each report the first failure again on their way out
    echoes = ("Conversion failed", "Terminating thread with return code", "Task finished with "
              "error code", "Error sending frames to consumers", "Error while opening encoder",
              "Could not open encoder before EOF", "Nothing was written into output file")
    # an FFREPORT log starts with the command line, which is no reason
    text = re.sub(r"(?m)^Command line:\n.*\n?", "", text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(boring) and not any(e in ln for e in echoes)]
    line = (useful or lines or ["ffmpeg gave no reason"])[-1]
    return re.sub(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*", "", line)


@dataclass
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float
    frames: int
    duration: float
    codec: str
    pix_fmt: str
    bitrate_kbps: float | None
    has_audio: bool
    audio_codec: str | None = None
    metadata: dict = field(default_factory=dict)
    audio_rate: int | None = None
    audio_channels: int | None = None
    still: bool = False            # a still image (PNG, JPEG, ...), which ffmpeg reads as 1 frame
    # Degrees a player turns the picture (a display matrix: phones store portrait clips
    # landscape). width and height are the picture as shown, which is how ffmpeg decodes it.
    rotation: float = 0.0
    # The shape of one stored pixel, width:height. A player widens the picture by it (DVD,
    # HDV and some phone clips store 2:1 or 64:45 pixels), so width is the stored width times
    # it: a clip is fitted and scaled as shown (`display_filter`), never squeezed.
    sar: Fraction = Fraction(1)
    stored_size: tuple[int, int] | None = None  # (width, height) when not the shown size
    # Frames shown for unequal times (screen and phone recordings, GIFs with uneven delays):
    # `fps` is then their average, and only timestamps tell where each frame belongs.
    vfr: bool = False

    @property
    def sora(self) -> dict | None:
        """The generation settings sora-cli embedded, or None for other files."""
        raw = self.metadata.get(SORA_TAG)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return None

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("path", "width", "height", "fps", "frames",
                                           "duration", "codec", "pix_fmt", "bitrate_kbps",
                                           "has_audio", "audio_codec", "audio_rate",
                                           "audio_channels", "rotation", "vfr")}
        d["sar"] = f"{self.sar.numerator}:{self.sar.denominator}"
        d["stored_size"] = list(self.stored_size) if self.stored_size else None
        d["metadata"] = {k: v for k, v in self.metadata.items() if k != SORA_TAG}
        d["sora"] = self.sora
        return d


@dataclass
class Video:
    """Decoded frames (T, H, W, 3) uint8 RGB and their frame rate."""

    frames: np.ndarray
    fps: float

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps


def require_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    pipe = "save the video to a file first and give its name (a video is read more than once)"
    if str(path) == "-":
        raise SoraError(f"videos are not read from stdin (-): {pipe}")
    if not p.exists():
        raise SoraError(f"no such file: {p}")
    if p.is_dir():
        raise SoraError(f"{p} is a folder, not a video file")
    if is_stream(p):
        raise SoraError(f"{p} is a pipe or a device, not a file: {pipe}")
    if not os.access(p, os.R_OK):
        raise SoraError(f"cannot read {p}: permission denied")
    if p.stat().st_size == 0:
        raise SoraError(f"{p} is empty (0 bytes), not a video")
    return p


_INPUT_FORMAT = re.compile(r"Input #0, ([^\s]+?),? from ")
_STREAM_VIDEO = re.compile(r"Stream #\S+.*?: Video: (\w+)[^,]*,\s*([^,(\s]+)")
_SIZE = re.compile(r",\s*(\d{1,5})x(\d{1,5})")
_FPS = re.compile(r"([\d.]+)\s*fps")
_TBR = re.compile(r"([\d.]+k?)\s*tbr")
_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):([\d.]+)")
_BITRATE = re.compile(r"bitrate:\s*([\d.]+)\s*kb/s")
_STREAM_AUDIO = re.compile(r"Stream #\S+.*?: Audio: (\w+)[^,]*(?:,\s*(\d+) Hz)?(?:,\s*([^,]+))?")
_FRAME = re.compile(r"frame=\s*(\d+)")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees")
_SAR = re.compile(r"SAR (\d+):(\d+) DAR")


def quarter_turn(rotation: float) -> bool:
    """A picture shown turned by 90 degrees either way: its shown width is its stored height."""
    return abs(abs(rotation) - 90) < 1
# ffmpeg turns a clip with a display matrix upright; imageio-ffmpeg then logs that the size
# differs from the stored one, which is expected, not the user's concern
logging.getLogger("imageio_ffmpeg").setLevel(logging.ERROR)
_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.0": 5, "5.1": 6, "7.1": 8}


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe a video file: size, fps, frame count, codec, audio and metadata.

    One ffmpeg run reads the headers and the container tags. An MP4/MOV's frame count comes
    from its sample table (exact and instant, `sora_cli.mp4`); other files' from counting
    packets without decoding them. Truncated files are named as such.
    """
    from sora_cli.mp4 import Mp4Truncated, looks_like_mp4, read_mp4

    p = require_file(path)
    try:
        table = read_mp4(p)
    except Mp4Truncated as exc:
        raise SoraError(f"cannot read {p}: truncated MP4 ({exc})")
    track = table.first("video") if table is not None and not table.fragmented else None
    # The sample table counts the frames of an MP4 exactly; elsewhere ffmpeg counts packets.
    known = track.samples if track is not None and track.samples and track.whole_edit else None
    count = [] if known else ["-map", "0:v:0", "-c", "copy", "-f", "null", "-"]
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", ffmpeg_path(p), *count,
                           "-f", "ffmetadata", "pipe:1"], capture_output=True)
    text = proc.stderr.decode("utf-8", "replace")
    vmatch = _STREAM_VIDEO.search(text)
    if proc.returncode != 0 or vmatch is None:
        if proc.returncode == 0 or "matches no streams" in text:
            raise SoraError(f"{p} has no video stream")
        reason = ffmpeg_reason(text)
        if looks_like_mp4(p):
            if not reason.startswith("truncated"):
                reason = f"damaged or truncated MP4 ({reason})"
        elif "moov atom not found" in text or "Invalid data found" in text:
            reason = "not a video file (ffmpeg found no audio or video in it)"
        else:  # e.g. text saved as .png: ffmpeg names the format by the extension, then fails
            reason = f"not a video or image ffmpeg can decode ({reason})"
        raise SoraError(f"cannot read {p}: {reason}")
    if "partial file" in text:
        raise SoraError(f"cannot read {p}: {ffmpeg_reason('partial file')}")
    vline = text[vmatch.start():].splitlines()[0]
    vpart = text[vmatch.start():].split("Stream #", 2)[1]  # this stream's lines, side data too
    turn = _ROTATION.search(vpart)
    rotation = float(turn.group(1)) + 0.0 if turn else 0.0
    size = _SIZE.search(vline)
    fps_m = _FPS.search(vline) or _TBR.search(vline)
    if size is None or fps_m is None:
        raise SoraError(f"cannot read {p}: no frame size or frame rate in its video stream")
    fps = _rate_value(fps_m.group(1))
    tbr_m = _TBR.search(vline)
    counted = _FRAME.findall(text)
    frames = known or (int(counted[-1]) if counted else 0)
    if frames <= 0:
        raise SoraError(f"cannot read {p}: no video frames in it (damaged or truncated)")
    # ffmpeg outputs frames at the nominal rate (tbr) by their timestamps: when the frames'
    # average rate differs, they do not last equal times
    vfr = (frames > 1 and tbr_m is not None
           and abs(_rate_value(tbr_m.group(1)) - fps) > 1e-3 * fps)
    dur = _DURATION.search(text)
    duration = (int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3))
                if dur else frames / fps)
    if table is not None and table.duration:  # exact, where ffmpeg prints 2 decimals
        duration = table.duration
    bitrate = _BITRATE.search(text)
    audio = _STREAM_AUDIO.search(text)
    layout = (audio.group(3) or "").strip() if audio else ""
    channels = _CHANNELS.get(layout.split("(")[0].strip())
    if channels is None and audio and re.match(r"(\d+) channels", layout):
        channels = int(layout.split()[0])
    stored = int(size.group(1)), int(size.group(2))
    sar_m = _SAR.search(vline)
    sar = (Fraction(int(sar_m.group(1)), int(sar_m.group(2)))
           if sar_m and int(sar_m.group(1)) and int(sar_m.group(2)) else Fraction(1))
    width, height = shown_size(stored, sar, rotation)
    return VideoInfo(
        path=str(p), width=width, height=height, fps=fps, rotation=rotation, sar=sar,
        stored_size=stored if stored != (width, height) else None, vfr=vfr,
        frames=frames, duration=round(duration, 3), codec=vmatch.group(1),
        pix_fmt=vmatch.group(2), bitrate_kbps=float(bitrate.group(1)) if bitrate else None,
        has_audio=audio is not None, audio_codec=audio.group(1) if audio else None,
        metadata=parse_ffmetadata(proc.stdout.decode("utf-8", "replace")),
        audio_rate=int(audio.group(2)) if audio and audio.group(2) else None,
        audio_channels=channels, still=_is_still(text),
    )


def _rate_value(text: str) -> float:
    """ffmpeg's printed rate ("29.97", "90k") as a number."""
    return float(text[:-1]) * 1000 if text.endswith("k") else float(text)


def shown_size(stored: tuple[int, int], sar: Fraction, rotation: float) -> tuple[int, int]:
    """The picture's (width, height) as a player shows it: widened by the pixel shape, then
    turned (ffmpeg decodes a turned clip upright, its pixel shape turned with it)."""
    width, height = max(1, round(stored[0] * sar)), stored[1]
    return (height, width) if quarter_turn(rotation) else (width, height)


def display_filter(info: VideoInfo) -> str:
    """ffmpeg filters (with a trailing comma) that make decoded frames square-pixelled at the
    shown size; "" when they already are."""
    if info.sar == 1:
        return ""
    return f"scale={info.width}:{info.height}:flags=bicubic+{EXACT},setsar=1,"


def fit_filter(width: int, height: int, size: tuple[int, int]) -> str:
    """ffmpeg filters (with a trailing comma) that centre-crop width x height frames to the
    shape of `size` (height, width) and scale them to it."""
    h, w = size
    # exact: ffmpeg otherwise moves a crop of 4:2:0 frames onto even rows and columns
    if height * w > width * h:          # too tall: crop rows
        crop = f"crop={width}:{max(1, round(width * h / w))}:exact=1,"
    elif height * w < width * h:        # too wide: crop columns
        crop = f"crop={max(1, round(height * w / h))}:{height}:exact=1,"
    else:
        crop = ""
    # area averages every source pixel when shrinking (no aliasing); it cannot enlarge
    flags = "area" if min(width, height) > min(w, h) else "bicubic"
    return f"{crop}scale={w}:{h}:flags={flags}+{EXACT},"


def shown_seconds(info: VideoInfo) -> float:
    """How long the clip's frames are shown, first to last. A variable-frame-rate clip's
    frame count says nothing about it, so its packets' timestamps are read (no decoding)."""
    if not info.vfr:
        return info.frames / info.fps
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error",
                           "-i", ffmpeg_path(info.path), "-map", "0:v:0", "-c", "copy",
                           "-f", "framecrc", "-"], capture_output=True, text=True)
    base = re.search(r"^#tb 0: (\d+)/(\d+)", proc.stdout, re.M)
    times = [(int(f[2]), int(f[3])) for f in (ln.split(",") for ln in proc.stdout.splitlines()
                                              if ln[:1].isdigit()) if len(f) >= 4]
    if proc.returncode != 0 or base is None or not times:
        return info.duration or info.frames / info.fps
    tick = Fraction(int(base.group(1)), int(base.group(2)))
    usual = 1 / (tick * Fraction(info.fps).limit_denominator(1001))  # where a length is unknown
    start = min(pts for pts, _ in times)
    end = max(pts + (length if length > 0 else usual) for pts, length in times)
    return float((end - start) * tick)


def _is_still(ffmpeg_log: str) -> bool:
    """ffmpeg reads one image through an image demuxer (png_pipe, jpeg_pipe, image2, ...);
    an animated GIF or WebP goes through its own (gif, webp), so it stays a video."""
    m = _INPUT_FORMAT.search(ffmpeg_log)
    return bool(m) and (m.group(1).endswith("_pipe") or m.group(1) == "image2")


def require_clip(info: VideoInfo, what: str) -> VideoInfo:
    """`info` unless it is a still image, which `what` (a command's name) cannot use."""
    if info.still:
        raise SoraError(f"{Path(info.path).name} is a still image, not a video clip; "
                        f"{what} needs a video (bring the image to life first: "
                        f"sora animate {info.path})")
    return info


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """Container-level tags (title, comment, sora, ...) via ffmpeg's ffmetadata format."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i",
                           ffmpeg_path(path), "-f", "ffmetadata", "-"], capture_output=True)
    if proc.returncode != 0:
        return {}
    return parse_ffmetadata(proc.stdout.decode("utf-8", "replace"))


def parse_ffmetadata(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    # Join escaped newlines first, then split on the first unescaped '='.
    logical: list[str] = []
    buf = ""
    for line in text.split("\n"):
        if line.endswith("\\") and not line.endswith("\\\\"):
            buf += line[:-1] + "\n"
            continue
        logical.append(buf + line)
        buf = ""
    for line in logical:
        if not line or line.startswith(";") or line.startswith("#") or line.startswith("["):
            if line.startswith("["):
                break  # stream/chapter sections follow; the global tags come first
            continue
        key, value, escaped = [], [], False
        target = key
        for ch in line:
            if escaped:
                target.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == "=" and target is key:
                target = value
            else:
                target.append(ch)
        if target is value:
            tags["".join(key)] = "".join(value)
    return tags


def iter_video(path: str | os.PathLike, rate: float | None = None, start: float = 0.0,
               info: VideoInfo | None = None, fit: tuple[int, int] | None = None
               ) -> tuple[float, Iterator[np.ndarray]]:
    """(fps, frames): a video's RGB frames (H, W, 3) uint8 one at a time, decoded as they are
    taken, so memory holds one frame whatever the clip's length and size.

    Frames come as the clip is shown (`probe`'s width x height) and last 1/fps each, so
    frames / fps is the clip's length: a variable-frame-rate clip is resampled by its
    timestamps to its average rate (ffmpeg would output it at its nominal one). `rate`
    resamples any clip to that rate instead, each frame the one a player shows at its time,
    and `start` (seconds) begins there; `fit` (height, width) centre-crops the frames to that
    shape and scales them to it inside ffmpeg (a 4K clip never reaches Python at full size);
    `info` is the clip's `probe`, when the caller has it.
    """
    import imageio_ffmpeg

    p = require_file(path)
    info = info or probe(p)
    seek, skip, graph = 0.0, 0, f"fps={info.fps!r}," if info.vfr else ""
    if rate is not None:
        if start > 0:
            # An input seek drops every frame that begins before it, so also the one still on
            # screen at `start`: seek at least one source frame early, drop the extra here
            skip = min(round(start * rate), math.ceil(rate / info.fps) + 1)
            seek = max(0.0, start - skip / rate)
        # fps keeps the last frame of those it rounds to one output time: rounding up, that
        # is the frame on screen at that time (the default, nearest, takes one half a frame
        # on); start_time=0 starts the count at the seek even when no frame begins there
        graph = f"fps={rate!r}:round=up:start_time=0,"
    graph += display_filter(info) + (fit_filter(info.width, info.height, fit) if fit else "")
    reader = imageio_ffmpeg.read_frames(
        ffmpeg_path(p), pix_fmt="rgb24", input_params=["-ss", f"{seek:.6f}"] if seek > 0 else [],
        output_params=[*SWS_ARGS, *(["-vf", graph.rstrip(",")] if graph else [])])
    try:
        meta = next(reader)
        w, h = meta["size"]
        fps = rate or info.fps   # a variable-rate clip comes at its average rate
    except (OSError, RuntimeError, StopIteration, KeyError) as exc:
        reader.close()
        _unreadable(p, exc)

    def frames() -> Iterator[np.ndarray]:
        try:
            for n, raw in enumerate(reader):
                if n >= skip:
                    yield np.frombuffer(raw, np.uint8).reshape(h, w, 3)
        except (OSError, RuntimeError) as exc:
            _unreadable(p, exc)
        finally:
            reader.close()

    return fps, frames()


def _unreadable(p: Path, exc: Exception):
    probe(p)  # names the problem (not a video, truncated, no video stream) when it can
    raise SoraError(f"cannot read {p}: {ffmpeg_reason(str(exc)) if str(exc) else 'no video'}")


def read_video(path: str | os.PathLike, max_frames: int | None = None,
               last_frames: int | None = None, rate: float | None = None, start: float = 0.0,
               info: VideoInfo | None = None, fit: tuple[int, int] | None = None) -> Video:
    """Decode a video (any format ffmpeg reads: MP4, MOV, WebM, GIF, ...) to RGB frames.

    `max_frames` keeps the first frames, `last_frames` the last ones (decoding streams through
    the file, so only that many frames are held in memory); `rate`, `start`, `info` and
    `fit` as `iter_video` takes them.
    """
    fps, stream = iter_video(path, rate, start, info, fit)
    frames: deque[np.ndarray] = deque(maxlen=last_frames)
    for frame in stream:
        frames.append(frame)
        if max_frames is not None and len(frames) >= max_frames:
            stream.close()
            break
    if not frames:
        raise SoraError(f"cannot read {path}: no video frames in it (damaged or truncated)")
    return Video(np.stack(frames), fps)


def check_output_path(path: str | os.PathLike, overwrite: bool = False,
                      suffixes: tuple[str, ...] = (".mp4",)) -> Path:
    """Validate an output path before any expensive work: folder writable, no clobbering."""
    p = Path(path)
    folder = p.parent if str(p.parent) else Path(".")
    longest = name_max(folder)  # checked first: the file system refuses even to look it up
    if len(os.fsencode(p.name)) > longest:
        raise SoraUsageError(f"output name {p.name[:24]}... is {len(os.fsencode(p.name))} bytes "
                             f"long; the folder {folder} allows {longest}: use a shorter name")
    if p.is_dir():
        example = p / f"clip{suffixes[0] if suffixes else '.mp4'}"
        raise SoraUsageError(f"output {p} is a folder: name a file in it, e.g. {example}")
    if suffixes and p.name.lower() in suffixes:  # ".mp4" is a hidden file with no suffix
        raise SoraUsageError(f"output {p} has no name before {p.name}: e.g. clip{p.name}")
    if suffixes and p.suffix.lower() not in suffixes:
        raise SoraUsageError(f"output {p} must end in {' or '.join(suffixes)}")
    if not folder.exists():
        raise SoraError(f"output folder does not exist: {folder} (create it first, e.g. "
                        f"mkdir -p {shlex.quote(str(folder))})")
    if not folder.is_dir():
        raise SoraError(f"output folder {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SoraError(f"output folder is not writable: {folder}")
    _can_create_in(folder)
    if p.exists() and not overwrite:
        raise SoraError(f"{p} already exists (use --overwrite / -y to replace it)")
    return p


def _can_create_in(folder: Path) -> None:
    """A file can really be made in `folder`: where the permission bits say yes, a read-only
    mount, /proc or /dev/fd still refuse, and would fail only once the video was drawn."""
    import tempfile

    try:
        try:   # a file with no name (Linux): nothing is left even where nothing can be deleted
            os.close(os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o600))
            return
        except (AttributeError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR,
                                                              errno.EINVAL):
                raise
        fd, name = tempfile.mkstemp(prefix=".sora-", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise SoraError(f"cannot write files in {folder} ({exc.strerror or exc}); give -o "
                        "a path in a folder of yours") from None


@contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False,
                  finalize: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success finalise it and rename it into place.

    The temporary name is hidden and keeps the target's suffix (ffmpeg picks the format from
    it): `.NAME.PID.tmp.SUFFIX` (a hash of the name for NAME when that would not fit in the
    folder's limit on a name). On any error the temporary file is removed; after a hard kill
    it stays hidden (and the next write to the same name removes it), and the target keeps its
    previous content or stays absent.
    """
    target = check_output_path(path, overwrite, suffixes=())
    _remove_stale_temps(target)
    stem, suffix = _temp_parts(target)
    tmp = target.with_name(f".{stem}.{os.getpid()}.tmp{suffix}")
    try:
        yield tmp
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise SoraError(f"writing {target} produced no data")
        if finalize is not None:
            finalize(tmp)
        os.replace(tmp, target)
    except OSError as exc:  # disk full, folder removed meanwhile, ...
        raise SoraError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:   # a folder that takes new files but lets none go (chattr +a)
            pass


def name_max(folder: Path) -> int:
    """The longest file name, in bytes, that `folder` takes (255 on most file systems)."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _temp_parts(target: Path) -> tuple[str, str]:
    """The NAME and SUFFIX of `target`'s temporaries. A name near the folder's limit gets a
    hash instead (the same one every time, so stale temporaries are still found)."""
    room = name_max(target.parent) - len(f"..{'9' * 10}.tmp")  # 10 digits: the longest pid
    if len(os.fsencode(target.stem + target.suffix)) <= room:
        return target.stem, target.suffix
    digest = hashlib.sha256(os.fsencode(target.name)).hexdigest()[:16]
    suffix = target.suffix if len(os.fsencode(target.suffix)) <= 16 else ""
    return f"sora-{digest}", suffix


def _remove_stale_temps(target: Path) -> None:
    """Delete temporaries of `target` left by writers that were killed (their pid is gone)."""
    stem, suffix = _temp_parts(target)
    pattern = f".{glob.escape(stem)}.*.tmp{glob.escape(suffix)}"
    for old in target.parent.glob(pattern):
        pid = old.name[len(stem) + 2:len(old.name) - len(f".tmp{suffix}")]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            try:
                old.unlink(missing_ok=True)
            except OSError:
                pass  # not ours to delete in this folder: it stays hidden
        except OSError:
            pass  # alive under another user: not ours to touch


def even_frame(frame: np.ndarray) -> np.ndarray:
    """H.264 in yuv420p needs even sizes: pad an odd edge by repeating its last row/column."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def metadata_args(metadata: Mapping[str, str] | None) -> list[str]:
    args: list[str] = []
    for key, value in (metadata or {}).items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", key):
            raise SoraError(f"metadata key {key!r} may use only letters, digits, '_', '.', '-'")
        args += ["-metadata", f"{key}={value}"]
    return args


def sora_metadata(settings: Mapping) -> dict[str, str]:
    """Metadata tags for a video made by sora-cli: its settings as compact JSON."""
    from sora_cli import __version__

    return {SORA_TAG: json.dumps(dict(settings), separators=(",", ":"), default=str),
            "comment": "AI-generated video made by sora-cli " + __version__,
            "encoder_tool": f"sora-cli {__version__}"}


def write_video(path: str | os.PathLike, frames: np.ndarray | Iterable[np.ndarray], fps: float,
                *, crf: int = 18, metadata: Mapping[str, str] | None = None,
                overwrite: bool = False, finalize: Callable[[Path], None] | None = None,
                preset: str = "medium", scale: tuple[int, int] | None = None,
                audio: str | os.PathLike | None = None) -> VideoInfo:
    """Encode RGB uint8 frames (T,H,W,3 array or an iterable of H,W,3) as H.264 MP4, atomically.
    `scale` (width, height) has ffmpeg resize them on the way (Lanczos); `audio` is a file
    whose first sound track goes with them from the start (as AAC).

    `finalize(tmp_path)` runs after the file is checked and before it is renamed into place
    (content credentials are signed there, as the very last change to the bytes).
    """
    import imageio_ffmpeg

    if not 0 <= crf <= 51:
        raise SoraUsageError(f"--crf must be between 0 and 51, got {crf}")
    if not fps or fps <= 0:
        raise SoraUsageError(f"frame rate must be positive, got {fps}")
    target = check_output_path(path, overwrite)
    count = 0
    with tempfile.TemporaryDirectory(prefix="sora-ffmpeg-") as logs, \
            atomic_output(target, overwrite, finalize) as tmp:
        log = Path(logs) / "ffmpeg.log"
        writer = None
        try:
            for frame in frames:
                frame = np.asarray(frame)
                if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                    raise SoraError(f"frames must be H×W×3 uint8, got {frame.dtype} {frame.shape}")
                frame = even_frame(frame)
                if writer is None:
                    h, w = frame.shape[:2]
                    writer = imageio_ffmpeg.write_frames(
                        ffmpeg_path(tmp), (w, h), fps=fps, codec="libx264", pix_fmt_in="rgb24",
                        pix_fmt_out="yuv420p", quality=None, macro_block_size=1,
                        ffmpeg_log_level="quiet", audio_codec="aac" if audio else None,
                        audio_path=ffmpeg_path(audio) if audio else None,
                        output_params=["-crf", str(crf), "-preset", preset, *SWS_ARGS,
                                       "-movflags", "+faststart+use_metadata_tags",
                                       *(["-vf", f"scale={scale[0]}:{scale[1]}"
                                                 f":flags=lanczos+{EXACT}"]
                                         if scale and scale != (w, h) else []),
                                       *metadata_args(metadata)])
                    with _ffmpeg_report(log):  # ffmpeg starts here
                        writer.send(None)
                elif frame.shape[:2] != (h, w):
                    raise SoraError("all frames of a video must have the same size")
                writer.send(np.ascontiguousarray(frame))
                count += 1
            if writer is not None:
                writer, done = None, writer
                done.close()   # ffmpeg finishes the file here
            if count == 0:
                raise SoraError("no frames to write")
            info = probe(tmp)
        except (SoraError, OSError, RuntimeError) as exc:
            # ffmpeg's own account (a full disk, a failed encoder) beats what it left behind
            said = log.read_text("utf-8", "replace") if log.exists() else ""
            if any(line.startswith("[") for line in said.splitlines()):
                raise SoraError(f"writing {target} failed: {ffmpeg_reason(said)}") from exc
            raise
        finally:
            if writer is not None:
                writer.close()
        if info.frames != count:
            raise SoraError(f"encoder wrote {info.frames} of {count} frames to {target}")
    info.path = str(target)
    return info


@contextmanager
def _ffmpeg_report(log: Path):
    """ffmpeg started in this block writes its errors to `log` (FFREPORT), not to the user's
    terminal, so a failure can be told in one line."""
    before = os.environ.get("FFREPORT")
    where = str(log).replace("\\", "\\\\").replace(":", "\\:")
    os.environ["FFREPORT"] = f"file={where}:level=16"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("FFREPORT", None)
        else:
            os.environ["FFREPORT"] = before
