"""Looking at a video without playing it: a description, a contact sheet, a preview GIF.

(Named `inspection`, not `inspect`, so that it never shadows the standard library module.)
"""

from __future__ import annotations

import numbers
import os
import struct
import subprocess
import tempfile
import zlib
from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path

import numpy as np

from sora_cli.errors import SoraError, SoraUsageError
from sora_cli.video_io import (EXACT, VideoInfo, atomic_output, check_output_path, display_filter,
                               ffmpeg_exe, ffmpeg_path, ffmpeg_reason, probe, quarter_turn,
                               run_ffmpeg)


def inspect_video(path: str | os.PathLike) -> dict:
    """Duration, frame rate, frame count, size, codec, bitrate, audio and sora metadata."""
    return _report(probe(path))


def _report(info: VideoInfo) -> dict:
    d = info.to_dict()
    audio = ({"codec": info.audio_codec, "sample_rate": info.audio_rate,
              "channels": info.audio_channels} if info.has_audio else None)
    return {"path": d["path"], "duration": d["duration"], "fps": d["fps"],
            "frames": d["frames"], "width": d["width"], "height": d["height"],
            "codec": d["codec"], "pix_fmt": d["pix_fmt"], "bitrate_kbps": d["bitrate_kbps"],
            "audio": audio, "metadata": d["metadata"], "sora": d["sora"], "still": info.still,
            "rotation": info.rotation, "sar": d["sar"], "stored_size": d["stored_size"],
            "vfr": info.vfr}


def inspect_file(path: str | os.PathLike, sheet: str | os.PathLike | None = None,
                 gif: str | os.PathLike | None = None, cols: int = 4, rows: int = 3,
                 verify: bool = False, trust_anchors=(), overwrite: bool = False) -> dict:
    """`inspect_video`'s report, plus "sheet" and "gif" (the paths written) when asked, and
    "verify" (`provenance.verify`: credentials and watermark). Both files are renamed into
    place only once both are made, so a failed --gif leaves no sheet behind either."""
    if sheet is not None:
        sheet = check_output_path(sheet, overwrite, suffixes=(".png",))
        _check_grid(cols, rows, 240)
    if gif is not None:
        gif = check_output_path(gif, overwrite, suffixes=(".gif",))
    info = probe(path)
    report = _report(info)
    with ExitStack() as outputs:
        if sheet is not None:
            _draw_sheet(info, outputs.enter_context(atomic_output(sheet, overwrite)), cols, rows)
            report["sheet"] = str(sheet)
        if gif is not None:
            _draw_gif(info, outputs.enter_context(atomic_output(gif, overwrite)), gif)
            report["gif"] = str(gif)
    if verify:
        from sora_cli import provenance

        report["verify"] = provenance.verify(path, trust_anchors=trust_anchors or ())
    return report


def format_timestamp(seconds: float) -> str:
    """0:01.25 style (H:MM:SS.ss past an hour)."""
    minutes, secs = divmod(max(0.0, seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:05.2f}"
    return f"{minutes}:{secs:05.2f}"


# --- contact sheet ----------------------------------------------------------------------

# A 3x5 pixel font for timestamps: no font files, no drawtext (not every ffmpeg build has it).
_GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001001001001", "8": "111101111101111",
    "9": "111101111001111", ":": "000010000010000", ".": "000000000000010",
    " ": "000000000000000",
}


def draw_text(image: np.ndarray, text: str, x: int, y: int, scale: int = 2,
              color: tuple[int, int, int] = (255, 255, 255)) -> None:
    """Draw digits, ':' and '.' into an (H, W, 3) uint8 image in place, clipped at its edges."""
    h, w = image.shape[:2]
    for ch in text:
        glyph = np.array([int(c) for c in _GLYPHS.get(ch, _GLYPHS[" "])], bool).reshape(5, 3)
        big = np.kron(glyph, np.ones((scale, scale), bool))
        y0, x0 = max(y, 0), max(x, 0)
        y1, x1 = min(y + big.shape[0], h), min(x + big.shape[1], w)
        if y1 > y0 and x1 > x0:
            image[y0:y1, x0:x1][big[y0 - y:y1 - y, x0 - x:x1 - x]] = color
        x += 4 * scale


def text_width(text: str, scale: int = 2) -> int:
    return max(0, len(text) * 4 * scale - scale)


def contact_sheet(path: str | os.PathLike, out_png: str | os.PathLike, cols: int = 4,
                  rows: int = 3, *, tile_width: int = 240, overwrite: bool = False) -> Path:
    """A PNG grid of evenly spaced frames (first to last), each with its timestamp."""
    _check_grid(cols, rows, tile_width)
    target = check_output_path(out_png, overwrite, suffixes=(".png",))
    info = probe(path)
    with atomic_output(target, overwrite) as tmp:
        _draw_sheet(info, tmp, cols, rows, tile_width)
    return target


def _whole(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_grid(cols: int, rows: int, tile_width: int) -> None:
    if not (_whole(cols) and _whole(rows)) or cols <= 0 or rows <= 0:
        raise SoraUsageError(f"contact sheet needs a positive grid of whole numbers, got "
                             f"{cols!r}x{rows!r}")
    if not _whole(tile_width) or tile_width <= 0:
        raise SoraUsageError(f"tile width must be a positive whole number, got {tile_width!r}")


def _draw_sheet(info: VideoInfo, out: Path, cols: int, rows: int, tile_width: int = 240) -> None:
    count = min(cols * rows, info.frames)
    picks = sorted({int(round(i)) for i in np.linspace(0, info.frames - 1, count)})
    tw = min(tile_width, info.width) // 2 * 2 or 2
    th = max(2, int(round(info.height * tw / info.width / 2)) * 2)
    frames = _frames_at(Path(info.path), picks, tw, th)
    if len(frames) < len(picks):  # a variable frame rate file can count frames differently
        picks = picks[:len(frames)]
    if not frames:
        raise SoraError(f"cannot read frames of {info.path}")
    cols = min(cols, len(frames))
    rows = -(-len(frames) // cols)
    scale = 2 if tw >= 96 else 1
    pad, label_h = 4, 5 * scale + 6
    sheet = np.full((pad + rows * (th + label_h + pad), pad + cols * (tw + pad), 3), 24, np.uint8)
    for n, (index, frame) in enumerate(zip(picks, frames)):
        r, c = divmod(n, cols)
        y, x = pad + r * (th + label_h + pad), pad + c * (tw + pad)
        sheet[y:y + th, x:x + tw] = frame
        draw_text(sheet, format_timestamp(index / info.fps), x + 2, y + th + 3, scale)
    out.write_bytes(encode_png(sheet))


def _frames_at(path: Path, indices: list[int], width: int, height: int) -> list[np.ndarray]:
    """Decode only the frames at `indices`, scaled: one pass, small memory."""
    pick = _any_of([f"eq(n\\,{i})" for i in indices])
    graph = f"select='{pick}',scale={width}:{height}:flags=area+{EXACT}"
    with tempfile.TemporaryDirectory(prefix="sora-sheet-") as folder:
        vf = ["-vf", graph]
        if len(graph) > 100_000:
            # thousands of picks (a 100x100 sheet of a long clip) pass the kernel's limit on
            # one argument (128 KiB): ffmpeg reads the graph from a file instead (-/vf, 7.0+)
            script = Path(folder) / "graph.txt"
            script.write_text(graph, encoding="utf-8")
            vf = ["-/vf", str(script)]
        proc = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i",
             ffmpeg_path(path), "-map", "0:v:0", *vf, "-fps_mode", "passthrough", "-f",
             "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
            capture_output=True)
    if proc.returncode != 0:
        raise SoraError(f"cannot read frames of {path}: {ffmpeg_reason(proc.stderr)}")
    size = width * height * 3
    data = proc.stdout
    return [np.frombuffer(data[i:i + size], np.uint8).reshape(height, width, 3)
            for i in range(0, len(data) - size + 1, size)]


def _any_of(terms: list[str]) -> str:
    """`terms` summed as a balanced tree: ffmpeg's expressions take at most 100 terms in a
    row (a 10x11 sheet failed with "Error initializing filters"), and nest far deeper."""
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"({_any_of(terms[:half])}+{_any_of(terms[half:])})"


def encode_png(image: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 RGB image as PNG bytes (zlib only, no imaging library)."""
    h, w = image.shape[:2]
    raw = np.concatenate([np.zeros((h, 1), np.uint8), image.reshape(h, w * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + chunk(b"IEND", b""))


# --- preview GIF ------------------------------------------------------------------------

def preview_gif(path: str | os.PathLike, out_gif: str | os.PathLike, width: int = 256,
                fps: float = 8, *, overwrite: bool = False) -> Path:
    """A small looping GIF of the whole clip (one palette per clip, ordered dithering)."""
    if not _whole(width) or width <= 0:
        raise SoraUsageError(f"GIF width must be a positive whole number, got {width!r}")
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not 0 < fps < float("inf"):
        # (nan passed as positive and failed in ffmpeg: "Error reinitializing filters!")
        raise SoraUsageError(f"GIF frame rate must be a number above 0, got {fps!r}")
    target = check_output_path(out_gif, overwrite, suffixes=(".gif",))
    info = probe(path)
    with atomic_output(target, overwrite) as tmp:
        _draw_gif(info, tmp, target, width, fps)
    return target


def _draw_gif(info: VideoInfo, out: Path, target: Path, width: int = 256,
              fps: float = 8) -> None:
    width = min(width, info.width)
    # A clip shorter than a GIF frame (one frame at 25 fps, a still image) can round to no
    # frame at all, and ffmpeg cannot end an empty GIF: its last frame is kept instead.
    keep = ":eof_action=pass" if info.frames / info.fps * fps < 1 else ""
    graph = (f"fps={fps:g}{keep},{display_filter(info)}scale={width}:-2:flags=lanczos,"
             "split[a][b];[a]palettegen=max_colors=128:stats_mode=diff[p];"
             "[b][p]paletteuse=dither=bayer:bayer_scale=4:diff_mode=rectangle")
    run_ffmpeg(["-loglevel", "error", "-y", "-i", ffmpeg_path(info.path), "-map", "0:v:0",
                "-vf", graph, "-loop", "0", "-f", "gif", ffmpeg_path(out)],
               f"writing {target}")


def _size_text(report: dict) -> str:
    w, h, turn = report["width"], report["height"], report.get("rotation") or 0
    sar = report.get("sar") or "1:1"
    if not turn and sar == "1:1":
        return f"{w}x{h}"
    stored = report.get("stored_size") or ((h, w) if quarter_turn(turn) else (w, h))
    how = [f"stored {stored[0]}x{stored[1]}"]
    if sar != "1:1":
        across, down = (int(v) for v in sar.split(":"))
        dar = Fraction(stored[0] * across, stored[1] * down)
        how.append(f"{sar} pixels, display aspect {dar.numerator}:{dar.denominator}")
    if turn:
        how.append(f"turned {turn:g} degrees on playback")
    return f"{w}x{h} as shown ({', '.join(how)})"


def describe(report: dict) -> list[str]:
    """`inspect_video`'s report (plus any extras such as "sheet") as aligned lines."""
    import json

    audio = report.get("audio")
    bitrate = report.get("bitrate_kbps")
    lines = [
        ("file", report["path"]),
        ("duration", "none: a still image" if report.get("still") else
                     f"{report['duration']:.3f} s ({report['frames']} frame"
                     f"{'' if report['frames'] == 1 else 's'} at "
                     f"{report['fps']:g} fps{' on average' if report.get('vfr') else ''})"),
        ("size", _size_text(report)),
        ("video", f"{report['codec']}, {report['pix_fmt']}"
                  + (f", {bitrate:g} kb/s" if bitrate else "")),
        ("audio", (f"{audio['codec']}, {audio['sample_rate']} Hz, {audio['channels']} ch"
                   if audio else "none")),
    ]
    tags = {k: v for k, v in report.get("metadata", {}).items()
            if k not in ("major_brand", "minor_version", "compatible_brands")}
    for key, value in tags.items():
        lines.append((key, str(value).replace("\n", " ")))
    if report.get("sora"):
        lines.append(("sora", json.dumps(report["sora"], ensure_ascii=False)))
    for key in ("sheet", "gif"):
        if report.get(key):
            lines.append((key, report[key]))
    width = max(len(k) for k, _ in lines)
    return [f"{k.ljust(width)}  {v}" for k, v in lines]
