"""Reading an MP4/MOV's track table directly (no ffmpeg run, no decoding).

Two things need it: an exact frame count of a long file in milliseconds (the sample table
holds it), and deciding whether clips can be joined by stream copy, which is safe only when
their codec configurations (H.264 SPS/PPS in `avcC`, AAC's AudioSpecificConfig, ...) are
byte-identical. A file whose top-level boxes run past its end is reported as truncated.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sora_cli.video_io import VideoInfo

# Boxes that only hold other boxes, on the way from `moov` to the sample tables.
_CONTAINERS = {b"trak", b"mdia", b"minf", b"stbl", b"edts", b"mvex"}
# Sample-entry children that describe the bitstream; others (btrt: bitrate) vary per file.
_IGNORED_CHILDREN = {b"btrt"}


@dataclass
class Track:
    kind: str                 # "video", "audio" or the handler type ("text", "tmcd", ...)
    fourcc: str               # sample-entry type: avc1, hvc1, mp4a, ...
    timescale: int
    media_duration: int       # in timescale units
    samples: int | None       # None when the file is fragmented (samples live in moofs)
    config: bytes = b""       # what must be identical for a stream-copy join
    width: int = 0
    height: int = 0
    channels: int = 0
    sample_rate: int = 0
    whole_edit: bool = True   # no edit list, or one that shows every sample
    sample_delta: int = 0     # the duration of every sample (0 when they vary)
    profile: int = 0          # H.264 profile_idc from avcC (66 baseline ... 100 high, 244 4:4:4)
    rotation: float = 0.0     # degrees the player turns the picture (tkhd matrix), as ffmpeg says
    sar: Fraction = Fraction(1)  # a stored pixel's width:height (`pasp`), as ffmpeg says

    @property
    def fps(self) -> float:
        return self.timescale / self.sample_delta if self.sample_delta else 0.0


@dataclass
class Mp4:
    tracks: list[Track] = field(default_factory=list)
    movie_timescale: int = 0
    movie_duration: int = 0
    fragmented: bool = False
    tags: dict[str, str] = field(default_factory=dict)  # moov/udta/meta 'mdta' tags

    def first(self, kind: str) -> Track | None:
        return next((t for t in self.tracks if t.kind == kind), None)


    @property
    def duration(self) -> float:
        return self.movie_duration / self.movie_timescale if self.movie_timescale else 0.0

    def plain_h264(self) -> bool:
        """H.264 in 8-bit 4:2:0 (the profiles that allow nothing else), every frame shown,
        optional AAC audio: the files `sora` writes, and what stream copy may join."""
        video, audio = self.first("video"), self.first("audio")
        kinds = [t.kind for t in self.tracks if t.kind in ("video", "audio")]
        return (not self.fragmented and video is not None and video.fourcc == "avc1"
                and video.profile in (66, 77, 88, 100) and bool(video.samples)
                and video.whole_edit and video.sample_delta > 0
                and kinds.count("video") == 1 and kinds.count("audio") <= 1
                and (audio is None or audio.fourcc == "mp4a"))

    def video_info(self, path: str | os.PathLike) -> "VideoInfo":
        """The same description `video_io.probe` gives, from the tables alone (no ffmpeg
        run); only for `plain_h264()` files."""
        from sora_cli.video_io import VideoInfo, shown_size

        video, audio = self.first("video"), self.first("audio")
        duration = self.duration or video.media_duration / video.timescale
        size = Path(path).stat().st_size
        stored = (video.width, video.height)
        width, height = shown_size(stored, video.sar, video.rotation)
        return VideoInfo(
            path=str(path), width=width, height=height, rotation=video.rotation, sar=video.sar,
            stored_size=stored if stored != (width, height) else None,
            fps=round(video.fps, 2), frames=video.samples, duration=round(duration, 3),
            codec="h264", pix_fmt="yuv420p",
            bitrate_kbps=float(round(size * 8 / duration / 1000)) if duration else None,
            has_audio=audio is not None, audio_codec="aac" if audio else None,
            metadata=dict(self.tags), audio_rate=audio.sample_rate if audio else None,
            audio_channels=audio.channels if audio else None)


class Mp4Truncated(Exception):
    """The file ends inside a box (a killed writer or a partial download)."""


def looks_like_mp4(path: str | os.PathLike) -> bool:
    with open(path, "rb") as f:
        head = f.read(12)
    return head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide")


def read_mp4(path: str | os.PathLike) -> Mp4 | None:
    """Parse the track table of an ISO media file; None when it is not one (or has no moov).

    Raises Mp4Truncated when a top-level box extends past the end of the file.
    """
    p = Path(path)
    size = p.stat().st_size
    if not looks_like_mp4(p):
        return None
    moov = None
    with open(p, "rb") as f:
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(16)
            box_size, kind = struct.unpack(">I4s", head[:8])
            header = 8
            if box_size == 1:
                box_size, header = struct.unpack(">Q", head[8:16])[0], 16
            elif box_size == 0:
                box_size = size - pos
            if box_size < header:
                raise Mp4Truncated(f"damaged box header at byte {pos}")
            if pos + box_size > size:
                what = "the video data ends early" if kind == b"mdat" else "a box ends early"
                raise Mp4Truncated(what)
            if kind == b"moov":
                f.seek(pos + header)
                moov = f.read(box_size - header)
            pos += box_size
    if moov is None:
        return None
    try:
        return _parse_moov(moov)
    except (struct.error, IndexError, ValueError):
        return None  # an unusual layout: callers fall back to ffmpeg


def _children(buf: bytes, start: int = 0, end: int | None = None):
    end = len(buf) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", buf, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", buf, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError("bad box")
        yield kind, pos + header, pos + size
        pos += size


def _find(buf: bytes, start: int, end: int, path: list[bytes]) -> tuple[int, int] | None:
    for kind, s, e in _children(buf, start, end):
        if kind == path[0]:
            return (s, e) if len(path) == 1 else _find(buf, s, e, path[1:])
    return None


def _parse_moov(moov: bytes) -> Mp4:
    out = Mp4()
    for kind, s, e in _children(moov):
        if kind == b"mvhd":
            if moov[s] == 1:
                out.movie_timescale, out.movie_duration = struct.unpack_from(">IQ", moov, s + 20)
            else:
                out.movie_timescale, out.movie_duration = struct.unpack_from(">II", moov, s + 12)
        elif kind == b"mvex":
            out.fragmented = True
        elif kind == b"udta":
            meta = _find(moov, s, e, [b"meta"])
            if meta is not None:
                out.tags = _mdta_tags(moov, meta[0] + 4, meta[1])  # skip version/flags
    for kind, s, e in _children(moov):
        if kind == b"trak":
            track = _parse_trak(moov, s, e, out.movie_timescale)
            if track is not None:
                out.tracks.append(track)
    return out


def _parse_trak(buf: bytes, s: int, e: int, movie_timescale: int) -> Track | None:
    hdlr = _find(buf, s, e, [b"mdia", b"hdlr"])
    mdhd = _find(buf, s, e, [b"mdia", b"mdhd"])
    stbl = _find(buf, s, e, [b"mdia", b"minf", b"stbl"])
    if hdlr is None or mdhd is None or stbl is None:
        return None
    handler = buf[hdlr[0] + 8:hdlr[0] + 12].decode("latin-1")
    kind = {"vide": "video", "soun": "audio"}.get(handler, handler)
    if buf[mdhd[0]] == 1:
        timescale, duration = struct.unpack_from(">IQ", buf, mdhd[0] + 20)
    else:
        timescale, duration = struct.unpack_from(">II", buf, mdhd[0] + 12)
    track = Track(kind=kind, fourcc="", timescale=timescale, media_duration=duration,
                  samples=None)
    tkhd = _find(buf, s, e, [b"tkhd"])
    if tkhd is not None:  # the display matrix: a phone's portrait clip is stored landscape
        at = tkhd[0] + (36 if buf[tkhd[0]] == 1 else 24) + 16
        a, b = struct.unpack_from(">ii", buf, at)
        track.rotation = round(math.degrees(math.atan2(-b, a)), 2) + 0.0
    first_shift = 0  # composition offset of the first sample (B-frame delay)
    for child, cs, ce in _children(buf, *stbl):
        if child == b"stsz":
            track.samples = struct.unpack_from(">I", buf, cs + 8)[0]
        elif child == b"stz2":
            track.samples = struct.unpack_from(">I", buf, cs + 8)[0]
        elif child == b"stsd":
            _parse_stsd(buf, cs, ce, track)
        elif child == b"stts":
            track.sample_delta = _constant_delta(buf, cs)
        elif child == b"ctts" and struct.unpack_from(">I", buf, cs + 4)[0]:
            first_shift = struct.unpack_from(">i", buf, cs + 12)[0]
    elst = _find(buf, s, e, [b"edts", b"elst"])
    if elst is not None:
        track.whole_edit = _edit_shows_all(buf, elst[0], track, movie_timescale, first_shift)
    return track


def _parse_stsd(buf: bytes, s: int, e: int, track: Track) -> None:
    entries = list(_children(buf, s + 8, e))
    if len(entries) != 1:
        track.fourcc = "multiple" if entries else ""
        return
    fourcc, es, ee = entries[0]
    track.fourcc = fourcc.decode("latin-1")
    if track.kind == "video":
        track.width, track.height = struct.unpack_from(">HH", buf, es + 24)
        children_at = es + 78
    elif track.kind == "audio":
        version = struct.unpack_from(">H", buf, es + 8)[0]
        track.channels = struct.unpack_from(">H", buf, es + 16)[0]
        track.sample_rate = struct.unpack_from(">I", buf, es + 24)[0] >> 16
        children_at = es + 28 + {0: 0, 1: 16, 2: 36}.get(version, 0)
        if version not in (0, 1):
            track.config = buf[es:ee]  # unusual layout: compare the whole entry
            return
    else:
        track.config = buf[es:ee]
        return
    parts = [struct.pack(">HHHI", track.width, track.height, track.channels, track.sample_rate)]
    for child, cs, ce in _children(buf, children_at, ee):
        if child in _IGNORED_CHILDREN:
            continue
        payload = _audio_specific_config(buf[cs:ce]) if child == b"esds" else buf[cs:ce]
        if child == b"avcC" and ce - cs > 1:
            track.profile = buf[cs + 1]
        if child == b"pasp" and ce - cs >= 8:
            h_spacing, v_spacing = struct.unpack_from(">II", buf, cs)
            if h_spacing and v_spacing:
                track.sar = Fraction(h_spacing, v_spacing)
        parts.append(child + payload)
    track.config = b"".join(parts)


def _audio_specific_config(esds: bytes) -> bytes:
    """From an `esds`, what decoding depends on: object type and DecoderSpecificInfo.

    The rest (average and maximum bitrate, buffer size) differs between files that can be
    joined by stream copy.
    """
    def descriptors(buf: bytes, pos: int, end: int):
        while pos + 2 <= end:
            tag, size, pos = buf[pos], 0, pos + 1
            for _ in range(4):
                byte = buf[pos]
                pos += 1
                size = (size << 7) | (byte & 0x7F)
                if not byte & 0x80:
                    break
            yield tag, pos, min(pos + size, end)
            pos += size

    found = b""
    for tag, s, e in descriptors(esds, 4, len(esds)):  # skip version/flags
        if tag != 0x03:
            continue
        flags = esds[s + 2]
        pos = s + 3 + (2 if flags & 0x80 else 0) + (2 if flags & 0x20 else 0)
        if flags & 0x40:
            pos += 1 + esds[pos]
        for tag2, s2, e2 in descriptors(esds, pos, e):
            if tag2 == 0x04:
                found += esds[s2:s2 + 2]  # objectTypeIndication, streamType
                for tag3, s3, e3 in descriptors(esds, s2 + 13, e2):
                    if tag3 == 0x05:
                        found += esds[s3:e3]
    return found or esds


def _edit_shows_all(buf: bytes, s: int, track: Track, movie_timescale: int,
                    first_shift: int) -> bool:
    """Whether an edit list keeps every sample: the usual single entry that only undoes the
    B-frame delay (starts at the first sample's composition time) and runs to the end."""
    version = buf[s]
    count = struct.unpack_from(">I", buf, s + 4)[0]
    entries = []
    pos = s + 8
    for _ in range(count):
        if version == 1:
            seg, media_time = struct.unpack_from(">Qq", buf, pos)
            pos += 20
        else:
            seg, media_time = struct.unpack_from(">Ii", buf, pos)
            pos += 12
        entries.append((seg, media_time))
    entries = [(seg, t) for seg, t in entries if t != -1]  # empty edits only delay the start
    if len(entries) != 1 or not movie_timescale or not track.timescale or not track.samples:
        return len(entries) == 0
    seg, media_time = entries[0]
    if media_time > max(first_shift, 0):
        return False  # the edit skips samples at the start
    shown = seg / movie_timescale
    total = track.media_duration / track.timescale
    one_sample = total / track.samples
    return shown >= total - media_time / track.timescale - 0.5 * one_sample


def _constant_delta(buf: bytes, s: int) -> int:
    """The common sample duration from `stts` (a different last sample is allowed)."""
    count = struct.unpack_from(">I", buf, s + 4)[0]
    deltas = [struct.unpack_from(">II", buf, s + 8 + 8 * i) for i in range(count)]
    if not deltas:
        return 0
    first = deltas[0][1]
    body = deltas[:-1] if len(deltas) > 1 and deltas[-1][0] == 1 else deltas
    return first if all(d == first for _, d in body) else 0


def _mdta_tags(buf: bytes, s: int, e: int) -> dict[str, str]:
    """Tags written with ffmpeg's `-movflags use_metadata_tags`: a `keys` list and an `ilst`
    whose items are numbered by key and hold a UTF-8 `data` box."""
    keys: list[str] = []
    items: dict[int, bytes] = {}
    for kind, cs, ce in _children(buf, s, e):
        if kind == b"keys":
            pos = cs + 8
            for _ in range(struct.unpack_from(">I", buf, cs + 4)[0]):
                size = struct.unpack_from(">I", buf, pos)[0]
                keys.append(buf[pos + 8:pos + size].decode("utf-8", "replace"))
                pos += size
        elif kind == b"ilst":
            for item, s2, e2 in _children(buf, cs, ce):
                data = _find(buf, s2, e2, [b"data"])
                if data is not None:
                    items[struct.unpack(">I", item)[0]] = buf[data[0] + 8:data[1]]
    return {keys[i - 1]: v.decode("utf-8", "replace") for i, v in items.items()
            if 0 < i <= len(keys)}
