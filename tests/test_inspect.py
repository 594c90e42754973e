"""`inspect`: the report, the contact sheet and the preview GIF, on real files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ffmpeg_clip
from sora_cli.errors import SoraError, SoraUsageError
from sora_cli.inspection import (contact_sheet, describe, draw_text, encode_png,
                                 format_timestamp, inspect_file, inspect_video, preview_gif)
from sora_cli.video_io import probe, read_video, sora_metadata, write_video


def ramp_clip(path, frames=20, fps=10, size=(48, 64)):
    """Frame i is a flat gray of level 10 * i: a tile's brightness tells which frame it is."""
    data = np.empty((frames, *size, 3), np.uint8)
    data[:] = (np.arange(frames) * 10).reshape(-1, 1, 1, 1)
    write_video(path, data, fps=fps, crf=5,
                metadata=sora_metadata({"prompt": "a gray ramp", "seed": 1}))
    return path


def read_png(path) -> np.ndarray:
    return read_video(path).frames[0]  # ffmpeg reads a PNG as a one-frame video


def test_inspect_report(tmp_path):
    clip = ffmpeg_clip(tmp_path / "a.mp4", seconds=1.5, size="80x60", fps=12, audio=True)
    report = inspect_video(clip)
    assert report["frames"] == 18 and report["fps"] == 12
    assert (report["width"], report["height"]) == (80, 60)
    assert report["duration"] == pytest.approx(1.5, abs=1 / 12)
    assert report["codec"] == "h264" and report["bitrate_kbps"] > 0
    assert report["audio"] == {"codec": "aac", "sample_rate": 44100, "channels": 1}
    assert report["sora"] is None
    json.dumps(report)  # all plain JSON types
    made = inspect_video(ramp_clip(tmp_path / "r.mp4"))
    assert made["sora"] == {"prompt": "a gray ramp", "seed": 1} and made["audio"] is None


def test_contact_sheet_grid_of_evenly_spaced_frames(tmp_path):
    clip = ramp_clip(tmp_path / "r.mp4", frames=23)
    out = contact_sheet(clip, tmp_path / "sheet.png", cols=4, rows=3)
    assert out == tmp_path / "sheet.png"
    sheet = read_png(out).astype(int)
    pad, tw, th, label = 4, 64, 48, 5 * 1 + 6  # tiles under 96 px get the 1x font
    assert sheet.shape == (pad + 3 * (th + label + pad), pad + 4 * (tw + pad), 3)
    levels = []
    for n in range(12):
        r, c = divmod(n, 4)
        y, x = pad + r * (th + label + pad), pad + c * (tw + pad)
        levels.append(sheet[y + 4:y + th - 4, x + 4:x + tw - 4].mean())
        assert sheet[y + th:y + th + label, x:x + tw].max() > 200  # a timestamp is drawn
    expected = np.round(np.linspace(0, 22, 12)) * 10  # first to last frame, evenly spaced
    assert np.abs(np.array(levels) - expected).max() < 6


def test_a_contact_sheet_of_more_than_a_hundred_tiles(tmp_path):
    # ffmpeg's frame picker takes at most 100 terms in a row: an 11x11 sheet failed, blaming
    # the file ("cannot read frames of ...")
    clip = ramp_clip(tmp_path / "r.mp4", frames=25)
    sheet = read_png(contact_sheet(clip, tmp_path / "s.png", cols=11, rows=11)).astype(int)
    assert sheet.shape == (4 + 3 * (48 + 11 + 4), 4 + 11 * (64 + 4), 3)   # 25 frames: 11x3
    long = write_video(tmp_path / "long.mp4", np.repeat(np.full((1, 48, 64, 3), 90, np.uint8),
                                                        130, axis=0), fps=10, crf=5).path
    sheet = read_png(contact_sheet(long, tmp_path / "l.png", cols=11, rows=11)).astype(int)
    assert sheet.shape == (4 + 11 * (48 + 11 + 4), 4 + 11 * (64 + 4), 3)
    tiles = [sheet[4 + r * 63 + 8:4 + r * 63 + 40, 4 + c * 68 + 8:4 + c * 68 + 56].mean()
             for r in range(11) for c in range(11)]
    assert np.abs(np.array(tiles) - 90).max() < 3   # every one of the 121 tiles drawn
    # 10,000 picks pass the kernel's limit on one argument ("Argument list too long")
    huge = ffmpeg_clip(tmp_path / "huge.mp4", seconds=100, size="16x16", fps=100,
                       source="color", extra=["-preset", "ultrafast"])
    sheet = read_png(contact_sheet(huge, tmp_path / "h.png", cols=100, rows=100))
    assert sheet.shape == (4 + 100 * (16 + 11 + 4), 4 + 100 * (16 + 4), 3)


def test_contact_sheet_of_a_short_clip_and_bad_requests(tmp_path):
    clip = ramp_clip(tmp_path / "r.mp4", frames=3)
    sheet = read_png(contact_sheet(clip, tmp_path / "s.png"))
    assert sheet.shape[1] == 4 + 3 * (64 + 4)  # three frames: one row of three
    with pytest.raises(SoraUsageError):
        contact_sheet(clip, tmp_path / "t.png", cols=0)
    for bad in (dict(cols=2.5), dict(rows="4"), dict(cols=True)):   # from Python: TypeErrors
        with pytest.raises(SoraUsageError, match="whole numbers"):
            contact_sheet(clip, tmp_path / "t.png", **bad)
    for fps in ("8", float("nan")):   # nan failed in ffmpeg ("Error reinitializing filters!")
        with pytest.raises(SoraUsageError, match="GIF frame rate"):
            preview_gif(clip, tmp_path / "t.gif", fps=fps)
    with pytest.raises(SoraUsageError, match=".png"):
        contact_sheet(clip, tmp_path / "t.jpg")
    with pytest.raises(SoraError, match="already exists"):
        contact_sheet(clip, tmp_path / "s.png")
    (tmp_path / "bad.mp4").write_text("nope")
    with pytest.raises(SoraError, match="not a video"):
        contact_sheet(tmp_path / "bad.mp4", tmp_path / "u.png")
    assert not (tmp_path / "t.png").exists() and not (tmp_path / "u.png").exists()


def test_preview_gif(tmp_path):
    clip = ffmpeg_clip(tmp_path / "a.mp4", seconds=2, size="320x240", fps=24)
    out = preview_gif(clip, tmp_path / "p.gif", width=128, fps=8)
    info = probe(out)
    assert info.codec == "gif" and (info.width, info.height) == (128, 96)
    assert abs(info.frames - 16) <= 1
    frames = read_video(out).frames
    assert frames.std() > 30  # real picture content, not a blank palette
    with pytest.raises(SoraUsageError):
        preview_gif(clip, tmp_path / "q.gif", width=0)
    assert not (tmp_path / "q.gif").exists()


def test_timestamps_and_font():
    assert format_timestamp(0) == "0:00.00"
    assert format_timestamp(61.25) == "1:01.25"
    assert format_timestamp(3725.5) == "1:02:05.50"
    one, seven = np.zeros((5, 3, 3), np.uint8), np.zeros((5, 3, 3), np.uint8)
    draw_text(one, "1", 0, 0, scale=1)
    draw_text(seven, "7", 0, 0, scale=1)
    assert one.any() and seven.any() and not np.array_equal(one, seven)
    draw_text(one, "0:00", -2, 3, scale=2)  # clipped at the edges, no error


def test_png_encoder_round_trip(tmp_path):
    image = (np.random.default_rng(0).random((7, 9, 3)) * 255).astype(np.uint8)
    (tmp_path / "x.png").write_bytes(encode_png(image))
    assert np.array_equal(read_png(tmp_path / "x.png"), image)


def test_several_files_are_described_and_a_bad_one_does_not_stop_the_others(tmp_path):
    from conftest import run_cli

    ramp_clip(tmp_path / "a.mp4")
    ffmpeg_clip(tmp_path / "b.mp4", seconds=1, fps=8, audio=True)
    r = run_cli("inspect", "a.mp4", "b.mp4", cwd=tmp_path)   # what `sora inspect *.mp4` gives
    assert r.returncode == 0 and r.stderr == "", r.stderr
    blocks = r.stdout.split("\n\n")
    assert [b.splitlines()[0].split()[-1] for b in blocks] == ["a.mp4", "b.mp4"]
    r = run_cli("inspect", "a.mp4", "gone.mp4", "b.mp4", "--json", cwd=tmp_path)
    assert r.returncode == 1
    obj = json.loads(r.stdout)
    assert [f["path"] for f in obj["files"]] == ["a.mp4", "b.mp4"]
    assert obj["failed"] == [{"path": "gone.mp4", "error": "no such file: gone.mp4"}]
    assert r.stderr.splitlines() == ["error: no such file: gone.mp4",
                                     "error: 1 of 3 files could not be read"]
    r = run_cli("inspect", "a.mp4", "b.mp4", "--sheet", "s.png", cwd=tmp_path)
    assert r.returncode == 2 and "--sheet draws one video" in r.stderr
    assert not (tmp_path / "s.png").exists()


def test_a_one_frame_clip_and_a_still_image_get_a_sheet_and_a_one_frame_gif(tmp_path):
    """One frame at 25 fps (0.04 s) rounded to no frame of an 8 fps GIF, which ffmpeg
    cannot end ('Error writing trailer'); the sheet was left written though it failed."""
    one = ffmpeg_clip(tmp_path / "one.mp4", seconds=0.04, size="80x60", fps=25)
    photo = tmp_path / "photo.png"
    photo.write_bytes(encode_png(np.full((60, 80, 3), 200, np.uint8)))
    for n, source in enumerate((one, photo)):
        report = inspect_file(source, sheet=tmp_path / f"s{n}.png", gif=tmp_path / f"p{n}.gif")
        gif = probe(report["gif"])
        assert gif.codec == "gif" and gif.frames == 1 and (gif.width, gif.height) == (80, 60)
        assert read_video(report["gif"]).frames[0].std() > (20 if n == 0 else -1)
        assert read_png(report["sheet"]).shape == (4 + 60 + 11 + 4, 4 + 80 + 4, 3)


def test_a_failed_gif_leaves_no_sheet_behind(tmp_path):
    """Both files are renamed into place only once both are made. Here the GIF (about
    190 kB) goes over a 60 kB limit on file size that the sheet (18 kB) stays under."""
    import resource
    import subprocess
    import sys

    ffmpeg_clip(tmp_path / "a.mp4", seconds=3, size="320x240", fps=24, source="testsrc2")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))

    r = subprocess.run([sys.executable, "-m", "sora_cli", "inspect", "a.mp4", "--sheet", "s.png",
                        "--gif", "p.gif", "--cols", "1", "--rows", "1"], cwd=tmp_path,
                       preexec_fn=limit, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]
    assert r.stderr == "error: writing p.gif failed: ffmpeg was stopped by SIGXFSZ\n"


def test_non_square_pixels_are_described_drawn_and_previewed_as_shown(tmp_path):
    clip = ffmpeg_clip(tmp_path / "wide.mp4", seconds=1, size="64x48", fps=8,
                       extra=["-vf", "setsar=2"])
    report = inspect_video(clip)
    assert (report["width"], report["height"], report["sar"]) == (128, 48, "2:1")
    assert report["stored_size"] == [64, 48]
    json.dumps(report)
    size = next(line for line in describe(report) if line.startswith("size"))
    assert size.split(None, 1)[1] == ("128x48 as shown (stored 64x48, 2:1 pixels, "
                                      "display aspect 8:3)")
    sheet = read_png(contact_sheet(clip, tmp_path / "s.png", cols=1, rows=1))
    assert sheet.shape == (4 + 48 + 16 + 4, 4 + 128 + 4, 3)   # a 48-row tile, not 96
    gif = probe(preview_gif(clip, tmp_path / "p.gif", width=96))
    assert (gif.width, gif.height) == (96, 36)


def test_a_variable_frame_rate_clip_says_its_rate_is_an_average(tmp_path):
    from test_video_io import vfr_ramp

    report = inspect_video(vfr_ramp(tmp_path / "v.mp4"))
    assert report["vfr"] and report["frames"] == 42
    line = next(line for line in describe(report) if line.startswith("duration"))
    assert line.endswith(f"(42 frames at {report['fps']:g} fps on average)")
