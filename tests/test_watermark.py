"""The invisible watermark: payload round trip, invisibility, and survival of the
transformations a video meets (re-encode, resize, crop, stitching); unmarked reads unmarked."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from sora_cli.video_io import ffmpeg_exe, read_video, write_video
from sora_cli.watermark import (PAYLOAD_BITS, _conv_encode, _crc16, _int_bits, _viterbi,
                                detect_watermark, detect_watermark_file, embed_watermark,
                                mark_share, payload_for, unmark)

from conftest import ffmpeg_clip

PAYLOAD = 0x5EED_CAFE_F00D


def scene(seed: int, h: int = 256, w: int = 256, frames: int = 17) -> np.ndarray:
    """A world-like clip: sky gradient, flat ground, a moving disc and a square, some flakes."""
    rng = np.random.default_rng(seed)
    horizon = int(h * rng.uniform(0.55, 0.75))
    sky_top, sky_low = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    grad = np.linspace(0, 1, horizon)[:, None, None]
    bg = np.empty((h, w, 3), np.float32)
    bg[:horizon] = sky_top + (sky_low - sky_top) * grad
    bg[horizon:] = rng.uniform(0, 255, 3)
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.empty((frames, h, w, 3), np.uint8)
    disc, box = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    r = 0.1 * w
    flakes = rng.uniform(0, 1, (60, 2)) * (h, w)
    for i in range(frames):
        f = bg.copy()
        f[np.hypot(xx - (0.3 * w + 3 * i), yy - 0.4 * h) < r] = disc
        f[(abs(xx - 0.7 * w) < r) & (abs(yy - (0.6 * h - 2 * i)) < r)] = box
        fy = ((flakes[:, 0] + 5 * i) % h).astype(int)
        f[fy, flakes[:, 1].astype(int)] = 245
        out[i] = f.astype(np.uint8)
    return out


def ff(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error", *args],
                   check=True)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(255 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


@pytest.fixture(scope="module")
def marked_mp4(tmp_path_factory):
    """A marked 256x256 clip written the way generate writes it (H.264, CRF 18)."""
    path = tmp_path_factory.mktemp("wm") / "marked.mp4"
    write_video(path, embed_watermark(scene(1), PAYLOAD), 8)
    return path


def test_round_trip_and_invisible():
    clip = scene(0)
    marked = embed_watermark(clip, PAYLOAD)
    assert marked.shape == clip.shape and marked.dtype == np.uint8
    assert psnr(clip, marked) >= 40.0
    # Only luma changes: R, G and B move together (except where a channel saturates).
    d = marked.astype(int) - clip
    assert np.mean(d[..., 0] == d[..., 1]) > 0.95
    r = detect_watermark(marked)
    assert r.found and r.payload == PAYLOAD and r.confidence > 0.8
    assert not detect_watermark(clip).found
    # plain bools both ways: --json wrote a found mark's numpy bool as the string "True"
    assert json.loads(json.dumps(r.to_dict(), default=str))["found"] is True
    assert json.loads(json.dumps(detect_watermark(clip).to_dict(), default=str))["found"] is False


def test_payload_forms_and_bounds():
    clip = scene(2, 64, 96, frames=9)  # the smallest frames it supports
    r = detect_watermark(embed_watermark(clip, b"\x01\x02\x03\x04"))
    assert r.found and r.payload == 0x01020304
    other = payload_for("manifest urn:1")
    assert other != payload_for("manifest urn:2") and 0 <= other < (1 << PAYLOAD_BITS)
    with pytest.raises(ValueError):
        embed_watermark(clip, 1 << PAYLOAD_BITS)
    with pytest.raises(ValueError):
        embed_watermark(clip[:, :40], 1)
    with pytest.raises(ValueError):
        embed_watermark(clip.astype(np.float32), 1)


def test_error_correction_fixes_bit_errors():
    msg = _int_bits(PAYLOAD, PAYLOAD_BITS)
    word = np.concatenate([msg, _crc16(msg)])
    code = _conv_encode(word)
    soft = (2.0 * code - 1) * np.random.default_rng(0).uniform(0.2, 1.0, len(code))
    flip = np.random.default_rng(1).choice(len(code), 10, replace=False)  # 7% wrong bits
    soft[flip] *= -1
    assert np.array_equal(_viterbi(soft, len(word)), word)
    bad = msg.copy()
    bad[5] ^= 1
    assert not np.array_equal(_crc16(bad), _crc16(msg))


def test_survives_crf28_reencode(marked_mp4, tmp_path):
    out = tmp_path / "crf28.mp4"
    ff("-i", str(marked_mp4), "-c:v", "libx264", "-crf", "28", str(out))
    r = detect_watermark(read_video(out).frames)
    assert r.found and r.payload == PAYLOAD


def test_survives_half_size(marked_mp4, tmp_path):
    out = tmp_path / "half.mp4"
    ff("-i", str(marked_mp4), "-vf", "scale=iw/2:ih/2", "-c:v", "libx264", str(out))
    frames = read_video(out).frames
    assert frames.shape[1:3] == (128, 128)
    r = detect_watermark(frames)
    assert r.found and r.payload == PAYLOAD


def test_survives_10_percent_crop(marked_mp4, tmp_path):
    out = tmp_path / "crop.mp4"
    ff("-i", str(marked_mp4), "-vf", "crop=230:230:19:7", "-c:v", "libx264", str(out))
    r = detect_watermark_file(out)
    assert r.found and r.payload == PAYLOAD


def test_survives_stitching(marked_mp4, tmp_path):
    from sora_cli.edit import stitch

    before = ffmpeg_clip(tmp_path / "a.mp4", seconds=3, size="320x240", fps=24,
                         source="testsrc2")
    after = tmp_path / "b.mp4"
    write_video(after, scene(7), 8)
    out = tmp_path / "joined.mp4"
    stitch([before, marked_mp4, after], out)  # re-encoded: 320x240, 24 fps, letterboxed
    r = detect_watermark_file(out)
    assert r.found and r.payload == PAYLOAD
    # Found in a window over the marked part (it starts after 3 s = 72 frames).
    assert r.frames is not None and r.frames[1] > 72


def test_unmarked_clips_read_unmarked(tmp_path):
    for i, (source, size) in enumerate([("testsrc", "256x256"), ("smptebars", "320x240"),
                                        ("testsrc2", "128x96"), ("rgbtestsrc", "256x144")]):
        clip = ffmpeg_clip(tmp_path / f"u{i}.mp4", seconds=2, size=size, fps=8, source=source)
        assert not detect_watermark_file(clip).found, source
    for seed in range(10, 16):
        r = detect_watermark(scene(seed))
        assert not r.found and r.payload is None


def test_a_mark_is_taken_out_only_where_it_lines_up(marked_mp4):
    frames = read_video(marked_mp4).frames
    clean = scene(1)
    share = mark_share(frames, PAYLOAD)
    assert 0.6 < share < 1.2, share            # H.264 at CRF 18 keeps most of it
    assert abs(mark_share(clean, PAYLOAD)) < 0.15
    # another payload shares only the sync pilot; a shifted or cropped clip no mark at all
    assert mark_share(frames, payload_for("another video")) < 0.4
    assert abs(mark_share(frames[:, 8:, 8:], PAYLOAD)) < 0.2
    out, taken = unmark(frames, PAYLOAD)
    assert taken == pytest.approx(share)
    assert abs(mark_share(out, PAYLOAD)) < 0.1
    assert not detect_watermark(out).found
    assert psnr(out, clean) > psnr(frames, clean) + 0.3   # nearer the picture before marking
    same, none = unmark(frames[:, 8:, 8:], PAYLOAD)
    assert none == 0 and np.array_equal(same, frames[:, 8:, 8:])


def test_taking_a_mark_out_gives_back_the_frames_it_went_into_white_included():
    """Where the mark pointed past white (or black) the frame kept its end, so taking it out
    must leave that end: otherwise each extend of a clip darkens its white parts."""
    rng = np.random.default_rng(0)
    frames = np.full((4, 128, 128, 3), 255, np.uint8)
    frames[:, :, 64:] = rng.integers(40, 200, (4, 128, 64, 3))
    frames[:, :32, 64:] = 0
    back, share = unmark(embed_watermark(frames, PAYLOAD), PAYLOAD, share=1.0)
    assert share == 1.0 and np.array_equal(back, frames)
