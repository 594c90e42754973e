"""Reading and writing video files safely, through the ffmpeg that imageio-ffmpeg bundles.

Every write goes to a hidden temporary `.mp4` in the target's folder, is re-opened and its
frame count checked, optionally finalised (signing), and only then renamed over the target:
a killed process never leaves a truncated file under the name the user asked for.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np

from sora_cli.errors import SoraError, SoraUsageError

# The key under which sora-cli keeps its generation settings (compact JSON) in the MP4.
SORA_TAG = "sora"


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str], what: str) -> subprocess.CompletedProcess:
    """Run the bundled ffmpeg; a failure becomes one line naming `what` and ffmpeg's last words."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *args],
                          capture_output=True)
    if proc.returncode != 0:
        raise SoraError(f"{what} failed: {_last_line(proc.stderr)}")
    return proc


def _last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "ffmpeg gave no reason"


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
                                           "has_audio", "audio_codec")}
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
    if not p.exists():
        raise SoraError(f"no such file: {p}")
    if p.is_dir():
        raise SoraError(f"{p} is a folder, not a video file")
    return p


_STREAM_VIDEO = re.compile(r"Stream #\S+.*?: Video: (\w+)[^,]*,\s*([^,(\s]+)")
_SIZE = re.compile(r",\s*(\d{2,5})x(\d{2,5})")
_FPS = re.compile(r"([\d.]+)\s*fps")
_TBR = re.compile(r"([\d.]+k?)\s*tbr")
_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):([\d.]+)")
_BITRATE = re.compile(r"bitrate:\s*([\d.]+)\s*kb/s")
_STREAM_AUDIO = re.compile(r"Stream #\S+.*?: Audio: (\w+)")


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe a video file: size, fps, exact frame count, codec, audio and metadata."""
    import imageio_ffmpeg

    p = require_file(path)
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(p)],
                          capture_output=True)
    text = proc.stderr.decode("utf-8", "replace")
    vmatch = _STREAM_VIDEO.search(text)
    if vmatch is None:
        reason = _last_line(proc.stderr)
        raise SoraError(f"not a readable video: {p} ({reason})")
    vline = text[vmatch.start():].splitlines()[0]
    size = _SIZE.search(vline)
    fps_m = _FPS.search(vline) or _TBR.search(vline)
    if size is None or fps_m is None:
        raise SoraError(f"not a readable video: {p} (no frame size or rate)")
    fps_s = fps_m.group(1)
    fps = float(fps_s[:-1]) * 1000 if fps_s.endswith("k") else float(fps_s)
    try:
        frames, _secs = imageio_ffmpeg.count_frames_and_secs(str(p))
    except Exception as exc:  # ffmpeg fails on truncated or damaged files
        raise SoraError(f"not a readable video: {p} (damaged or truncated: "
                        f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc})")
    if frames <= 0:
        raise SoraError(f"not a readable video: {p} (no frames decodable)")
    dur = _DURATION.search(text)
    duration = (int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3))
                if dur else frames / fps)
    bitrate = _BITRATE.search(text)
    audio = _STREAM_AUDIO.search(text)
    return VideoInfo(
        path=str(p), width=int(size.group(1)), height=int(size.group(2)), fps=fps,
        frames=int(frames), duration=round(duration, 3), codec=vmatch.group(1),
        pix_fmt=vmatch.group(2), bitrate_kbps=float(bitrate.group(1)) if bitrate else None,
        has_audio=audio is not None, audio_codec=audio.group(1) if audio else None,
        metadata=read_metadata(p),
    )


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """Container-level tags (title, comment, sora, ...) via ffmpeg's ffmetadata format."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i",
                           str(path), "-f", "ffmetadata", "-"], capture_output=True)
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


def read_video(path: str | os.PathLike, max_frames: int | None = None,
               last_frames: int | None = None) -> Video:
    """Decode a video (any format ffmpeg reads: MP4, MOV, WebM, GIF, ...) to RGB frames.

    `max_frames` keeps the first frames, `last_frames` the last ones (decoding streams through
    the file, so only that many frames are held in memory).
    """
    import imageio_ffmpeg

    p = require_file(path)
    frames: list[np.ndarray] = []
    try:
        reader = imageio_ffmpeg.read_frames(str(p), pix_fmt="rgb24")
        meta = next(reader)
        w, h = meta["size"]
        fps = float(meta.get("fps") or 0) or 25.0
        for raw in reader:
            frames.append(np.frombuffer(raw, np.uint8).reshape(h, w, 3))
            if max_frames is not None and len(frames) >= max_frames:
                reader.close()
                break
            if last_frames is not None and len(frames) > last_frames:
                frames.pop(0)
    except (OSError, RuntimeError, StopIteration, KeyError) as exc:
        msg = str(exc).strip().splitlines()
        raise SoraError(f"not a readable video: {p} ({msg[-1] if msg else type(exc).__name__})")
    if not frames:
        raise SoraError(f"not a readable video: {p} (no frames decodable)")
    return Video(np.stack(frames), fps)


def check_output_path(path: str | os.PathLike, overwrite: bool = False,
                      suffixes: tuple[str, ...] = (".mp4",)) -> Path:
    """Validate an output path before any expensive work: folder writable, no clobbering."""
    p = Path(path)
    if suffixes and p.suffix.lower() not in suffixes:
        raise SoraUsageError(f"output {p} must end in {' or '.join(suffixes)}")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.exists():
        raise SoraError(f"output folder does not exist: {folder}")
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise SoraError(f"output folder is not writable: {folder}")
    if p.is_dir():
        raise SoraError(f"output {p} is a folder")
    if p.exists() and not overwrite:
        raise SoraError(f"{p} already exists (use --overwrite / -y to replace it)")
    return p


@contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False,
                  finalize: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success finalise it and rename it into place.

    On any error (or a kill) the temporary file is removed or left hidden, and the target keeps
    its previous content or stays absent.
    """
    target = check_output_path(path, overwrite, suffixes=())
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp{target.suffix}")
    try:
        yield tmp
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise SoraError(f"writing {target} produced no data")
        if finalize is not None:
            finalize(tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


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
                preset: str = "medium") -> VideoInfo:
    """Encode RGB uint8 frames (T,H,W,3 array or an iterable of H,W,3) as H.264 MP4, atomically.

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
    with atomic_output(target, overwrite, finalize) as tmp:
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
                        str(tmp), (w, h), fps=fps, codec="libx264", pix_fmt_in="rgb24",
                        pix_fmt_out="yuv420p", quality=None, macro_block_size=1,
                        ffmpeg_log_level="error",
                        output_params=["-crf", str(crf), "-preset", preset,
                                       "-movflags", "+faststart+use_metadata_tags",
                                       *metadata_args(metadata)])
                    writer.send(None)
                elif frame.shape[:2] != (h, w):
                    raise SoraError("all frames of a video must have the same size")
                writer.send(np.ascontiguousarray(frame))
                count += 1
        finally:
            if writer is not None:
                writer.close()
        if count == 0:
            raise SoraError("no frames to write")
        written, _ = imageio_ffmpeg.count_frames_and_secs(str(tmp))
        if written != count:
            raise SoraError(f"encoder wrote {written} of {count} frames to {target}")
    return probe(target)
