"""Video I/O: real MP4s written by our writer or by ffmpeg itself, read back and checked."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from conftest import ffmpeg_clip
from sora_cli.errors import SoraError, SoraUsageError
from sora_cli.mp4 import read_mp4
from sora_cli.video_io import (ffmpeg_exe, probe, read_video, sora_metadata, write_video)


def gradient_frames(t: int = 6, h: int = 24, w: int = 32) -> np.ndarray:
    """Smooth frames (H.264 keeps them almost exactly) that differ from frame to frame."""
    y, x = np.mgrid[0:h, 0:w]
    frames = [np.stack([x * 255 // (w - 1), y * 255 // (h - 1),
                        np.full_like(x, 30 * i)], -1) for i in range(t)]
    return np.asarray(frames, np.uint8)


def test_write_read_round_trip(tmp_path):
    frames = gradient_frames()
    info = write_video(tmp_path / "a.mp4", frames, fps=8, crf=10)
    assert (info.width, info.height, info.frames, info.fps) == (32, 24, 6, 8.0)
    assert info.codec == "h264" and info.pix_fmt == "yuv420p"
    assert info.duration == pytest.approx(6 / 8, abs=1 / 8)
    back = read_video(tmp_path / "a.mp4")
    assert back.frames.shape == frames.shape and back.fps == 8.0
    err = np.abs(back.frames.astype(int) - frames.astype(int)).mean()
    assert err < 4, err
    # Frame order is kept: the blue ramp rises frame by frame.
    assert np.all(np.diff(back.frames[..., 2].mean(axis=(1, 2))) > 20)
    assert read_video(tmp_path / "a.mp4", max_frames=2).frames.shape[0] == 2
    tail = read_video(tmp_path / "a.mp4", last_frames=2).frames
    assert np.abs(tail.astype(int) - back.frames[-2:].astype(int)).max() == 0


def test_round_trips_keep_the_levels_and_repeated_ones_settle(tmp_path):
    """ffmpeg's default RGB <-> YUV conversion truncated: each round trip darkened a picture by
    about 1.1 levels, and re-encoding passes (extend, stitch) went on darkening it."""
    t, h, w = 8, 96, 128
    y, x = np.mgrid[0:h, 0:w]
    first = cur = np.asarray([np.stack([x * 200 // (w - 1) + 20, y * 200 // (h - 1) + 20,
                                        np.full_like(x, 40 + 20 * i)], -1) for i in range(t)],
                             np.uint8)
    changes = []
    for k in range(3):
        write_video(tmp_path / f"p{k}.mp4", cur, fps=8, crf=0)
        back = read_video(tmp_path / f"p{k}.mp4").frames
        d = back.astype(float) - cur.astype(float)
        changes.append((abs(d.mean()), np.sqrt((d ** 2).mean())))
        cur = back
    assert all(shift < 0.2 for shift, _ in changes), changes
    assert changes[2][1] < 0.5 * changes[0][1], changes   # a pass changes less and less
    total = cur.astype(float) - first.astype(float)
    assert 10 * np.log10(255 ** 2 / np.mean(total ** 2)) > 40


def test_a_crop_made_by_ffmpeg_is_centred_to_the_pixel(tmp_path):
    """ffmpeg moves a crop of 4:2:0 frames onto even columns unless told to be exact: a
    322 px wide clip cropped to 320 starts at column 1, not 0."""
    src = ffmpeg_clip(tmp_path / "src.mp4", seconds=0.5, size="322x180", fps=8,
                      source="testsrc2")
    def luma(frames):   # (chroma, stored at half the columns, cannot move by one)
        return frames.astype(float) @ np.array([0.299, 0.587, 0.114])

    whole = luma(read_video(src).frames)
    fitted = luma(read_video(src, fit=(180, 320)).frames)
    err = [np.abs(fitted - whole[:, :, x:x + 320]).mean() for x in (0, 1, 2)]
    assert err[1] < 0.6 and err[1] < min(err[0], err[2]) / 4, err


def test_faststart_moov_before_mdat(tmp_path):
    write_video(tmp_path / "a.mp4", gradient_frames(), fps=8)
    data = (tmp_path / "a.mp4").read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")


def test_odd_sizes_are_padded_to_even(tmp_path):
    frames = gradient_frames(t=3, h=25, w=33)
    info = write_video(tmp_path / "odd.mp4", frames, fps=10)
    assert (info.width, info.height) == (34, 26)
    back = read_video(tmp_path / "odd.mp4").frames
    assert back.shape == (3, 26, 34, 3)
    # The padding repeats the edge, it does not add a black border.
    assert np.abs(back[:, :, -1].astype(int) - back[:, :, -2].astype(int)).mean() < 8
    assert back[:, -1].mean() > 60


def test_metadata_round_trip_with_sora_settings(tmp_path):
    settings = {"prompt": 'a "red" ball; = # \\ and\na new line', "seed": 7, "steps": 12,
                "guidance": 4.5, "mode": "generate"}
    meta = {**sora_metadata(settings), "title": "beach ball"}
    info = write_video(tmp_path / "m.mp4", gradient_frames(), fps=8, metadata=meta)
    again = probe(tmp_path / "m.mp4")
    assert again.sora == settings == info.sora
    assert again.metadata["title"] == "beach ball"
    assert "AI-generated" in again.metadata["comment"]
    assert probe(ffmpeg_clip(tmp_path / "plain.mp4")).sora is None


def test_bad_metadata_key_and_bad_frames_write_nothing(tmp_path):
    with pytest.raises(SoraError, match="metadata key"):
        write_video(tmp_path / "k.mp4", gradient_frames(), fps=8, metadata={"bad key": "x"})
    with pytest.raises(SoraError, match="uint8"):
        write_video(tmp_path / "f.mp4", gradient_frames().astype(np.float32), fps=8)
    with pytest.raises(SoraUsageError):
        write_video(tmp_path / "r.mp4", gradient_frames(), fps=0)
    with pytest.raises(SoraError, match="no frames"):
        write_video(tmp_path / "e.mp4", [], fps=8)
    assert list(tmp_path.iterdir()) == []


def test_an_encoder_failure_is_ffmpegs_own_reason_in_one_line(tmp_path, capfd):
    """ffmpeg's log goes to a report file, not the terminal; its first cause is the message
    (here libx264 refusing an odd width; a full disk reads 'no space left on device')."""
    with pytest.raises(SoraError) as err:
        write_video(tmp_path / "odd.mp4", gradient_frames(), 8, scale=(33, 33))
    assert str(err.value) == f"writing {tmp_path / 'odd.mp4'} failed: width not divisible by 2 (33x33)"
    assert capfd.readouterr().err == ""
    assert list(tmp_path.iterdir()) == []
    scaled = write_video(tmp_path / "big.mp4", gradient_frames(), 8, scale=(64, 48))
    assert (scaled.width, scaled.height, scaled.frames) == (64, 48, 6)


def test_overwrite_refused_unless_asked(tmp_path):
    target = tmp_path / "o.mp4"
    write_video(target, gradient_frames(t=2), fps=8)
    before = target.read_bytes()
    with pytest.raises(SoraError, match="already exists"):
        write_video(target, gradient_frames(t=4), fps=8)
    assert target.read_bytes() == before
    assert write_video(target, gradient_frames(t=4), fps=8, overwrite=True).frames == 4


def test_probe_counts_frames_of_files_made_by_ffmpeg(tmp_path):
    # libx264's defaults use B-frames (an edit list); VP9/WebM and GIF have no sample table.
    mp4 = ffmpeg_clip(tmp_path / "b.mp4", seconds=1.2, fps=10, audio=True)
    info = probe(mp4)
    assert (info.frames, info.fps, info.width, info.height) == (12, 10.0, 64, 48)
    assert info.has_audio and info.audio_codec == "aac" and info.audio_rate == 44100
    assert read_mp4(mp4).first("video").samples == 12
    webm = ffmpeg_clip(tmp_path / "c.webm", seconds=1, fps=10, codec="libvpx-vp9",
                       extra=["-deadline", "realtime", "-cpu-used", "8"])
    assert probe(webm).frames == 10 and probe(webm).codec == "vp9"
    gif = ffmpeg_clip(tmp_path / "d.gif", seconds=1, fps=10, codec="gif", pix_fmt="rgb8")
    assert probe(gif).frames == 10
    assert read_video(gif).frames.shape == (10, 48, 64, 3)


def test_bad_inputs_give_clear_errors(tmp_path):
    with pytest.raises(SoraError, match="no such file"):
        probe(tmp_path / "missing.mp4")
    (tmp_path / "text.mp4").write_text("hello, not a video\n")
    with pytest.raises(SoraError, match="not a video"):
        probe(tmp_path / "text.mp4")
    with pytest.raises(SoraError, match="not a video"):
        read_video(tmp_path / "text.mp4")
    clip = ffmpeg_clip(tmp_path / "full.mp4", seconds=2, size="128x96", extra=["-crf", "0"])
    data = clip.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(SoraError, match="truncated"):
        probe(tmp_path / "cut.mp4")
    with pytest.raises(SoraError, match="truncated"):
        read_video(tmp_path / "cut.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(SoraError, match="empty"):
        probe(tmp_path / "empty.mp4")


WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from sora_cli.video_io import write_video

    def frames():
        for i in range(10_000):
            if i == 3:
                print("writing", flush=True)
            time.sleep(0.01)
            yield np.full((32, 32, 3), i % 255, np.uint8)

    write_video(sys.argv[1], frames(), fps=8, overwrite=True)
""")


def _kill_mid_write(target, temps: str | None = None) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    deadline = time.time() + 10
    while not list(target.parent.glob(temps or f".{target.stem}.*.tmp.mp4")):
        assert time.time() < deadline, "the writer never created its temporary file"
        time.sleep(0.02)
    proc.kill()
    proc.wait()


def test_killed_writer_leaves_target_absent(tmp_path):
    target = tmp_path / "k.mp4"
    _kill_mid_write(target)
    assert not target.exists()
    assert list(tmp_path.glob(".k.*.tmp.mp4")), "expected the killed writer's hidden temp"
    # The next write to that name removes the dead writer's temporary file.
    write_video(target, gradient_frames(t=2), fps=8)
    assert [p.name for p in tmp_path.iterdir()] == ["k.mp4"]


def test_killed_writer_keeps_previous_content(tmp_path):
    target = tmp_path / "k.mp4"
    write_video(target, gradient_frames(t=3), fps=8)
    before = target.read_bytes()
    _kill_mid_write(target)
    assert target.read_bytes() == before
    assert probe(target).frames == 3


def test_find_ffmpeg_early_checks_the_binary_on_a_thread_before_any_write():
    # in a fresh process: the check is made once per process, and this one's tests made it
    code = ("import threading, imageio_ffmpeg._utils as u\n"
            "from sora_cli.video_io import find_ffmpeg_early\n"
            "assert u._get_ffmpeg_exe.cache_info().currsize == 0\n"
            "find_ffmpeg_early()\n"
            "[t.join() for t in threading.enumerate() if t.name == 'find-ffmpeg']\n"
            "print(u._get_ffmpeg_exe.cache_info().currsize)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"


def vfr_ramp(path, seconds: float = 3, every: int = 5):
    """A variable-frame-rate clip as screen recorders make them: 30 fps for its first second,
    then one frame in `every`. Its brightness grows 80 levels a second, so a frame's level
    tells when it is shown."""
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "nullsrc=size=64x48:rate=30,geq=lum='min(255,T*80)':cb=128:cr=128",
                    "-t", str(seconds), "-vf", f"select='lt(t,1)+not(mod(n,{every}))'",
                    "-fps_mode", "vfr", *(["-c:v", "libx264", "-pix_fmt", "yuv420p"]
                                          if str(path).endswith(".mp4") else []), str(path)],
                   check=True)
    return path


def test_a_variable_frame_rate_clip_is_read_at_its_real_length(tmp_path):
    """ffmpeg outputs such a clip at its nominal rate (30 fps here), not at the average rate
    it reports: read that way, a 3 s clip lasted 5.6 s and `extend` stretched it."""
    from sora_cli.edit import change_fps_stream
    from sora_cli.video_io import iter_video

    for name, seconds, every in (("v.mp4", 3, 5), ("v.gif", 2, 6)):
        clip = vfr_ramp(tmp_path / name, seconds, every)
        info = probe(clip)
        assert info.vfr and info.frames < 30 + (seconds - 1) * 30 / every + 1
        video = read_video(clip)
        assert video.fps == info.fps
        assert video.duration == pytest.approx(seconds, abs=0.2)
        level = video.frames.mean(axis=(1, 2, 3))
        shown_at = np.arange(len(level)) / video.fps
        assert np.abs(level - 80 * shown_at).max() < 30   # every frame where it belongs
        fps, frames = iter_video(clip)   # as `extend` and the bridge read a clip
        assert len(list(change_fps_stream(frames, fps, 8))) == pytest.approx(seconds * 8, abs=2)
    assert not probe(ffmpeg_clip(tmp_path / "cfr.mp4", seconds=1, fps=10)).vfr


def test_non_square_pixels_are_described_and_read_as_shown(tmp_path):
    """A clip stored 64x48 with 2:1 pixels is shown 128x48 (8:3); so are its frames."""
    from fractions import Fraction

    wide = ffmpeg_clip(tmp_path / "wide.mp4", seconds=1, size="64x48", fps=8,
                       extra=["-vf", "setsar=2"])
    info = probe(wide)
    assert (info.width, info.height, info.stored_size) == (128, 48, (64, 48))
    assert info.sar == Fraction(2) and info.to_dict()["sar"] == "2:1"
    table = read_mp4(wide).video_info(wide)   # from its `pasp` box, without ffmpeg
    assert (table.width, table.height, table.sar) == (128, 48, 2)
    frames = read_video(wide).frames
    assert frames.shape == (8, 48, 128, 3)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-display_rotation", "90", "-i",
                    str(wide), "-c", "copy", str(tmp_path / "turned.mp4")], check=True)
    turned = probe(tmp_path / "turned.mp4")   # turned upright, its pixels turn with it
    assert (turned.width, turned.height) == (48, 128)
    assert read_video(tmp_path / "turned.mp4").frames.shape == (8, 128, 48, 3)
    plain = probe(ffmpeg_clip(tmp_path / "plain.mp4"))
    assert plain.sar == 1 and plain.stored_size is None


def test_a_long_output_name_is_written_and_one_too_long_is_refused_first(tmp_path):
    """The hidden temporary name adds characters: near the limit on a name (255 bytes) it
    is a hash, still found and removed after a killed writer."""
    long = tmp_path / ("d" * 248 + ".mp4")
    assert write_video(long, gradient_frames(t=2), fps=8).frames == 2
    assert [p.name for p in tmp_path.iterdir()] == [long.name]
    with pytest.raises(SoraUsageError, match="256 bytes long.*use a shorter name"):
        write_video(tmp_path / ("d" * 252 + ".mp4"), gradient_frames(t=2), fps=8)
    target = tmp_path / ("e" * 250 + ".mp4")
    _kill_mid_write(target, temps=".sora-*.tmp.mp4")
    assert not target.exists() and len(list(tmp_path.glob(".sora-*.tmp.mp4"))) == 1
    write_video(target, gradient_frames(t=2), fps=8)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([long.name, target.name])


def test_relative_names_with_a_colon_are_read_and_written_as_files(tmp_path, monkeypatch):
    # ffmpeg takes "ab:" or "pipe:" for a protocol; these are names in the current folder
    from sora_cli.video_io import ffmpeg_path

    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    ffmpeg_clip(tmp_path / "pipe:x.mp4", seconds=1, fps=10)
    ffmpeg_clip(tmp_path / "sub" / "ab:cd.mp4", seconds=0.5, fps=10)
    assert read_video("pipe:x.mp4").frames.shape[0] == 10
    assert read_video("sub/ab:cd.mp4").frames.shape[0] == 5
    info = write_video("ab:cd.mp4", gradient_frames(), fps=8)
    assert info.path == "ab:cd.mp4" and info.frames == 6
    assert probe("ab:cd.mp4").frames == 6 and (tmp_path / "ab:cd.mp4").is_file()
    assert ffmpeg_path("plain.mp4") == "plain.mp4"
    assert ffmpeg_path(tmp_path / "ab:cd.mp4") == str(tmp_path / "ab:cd.mp4")


def test_a_folder_that_refuses_new_files_is_named_before_any_work(tmp_path):
    # the permission bits said yes (root, /proc), and the write failed after the drawing, its
    # error the whole ffmpeg command line
    from sora_cli.video_io import check_output_path, ffmpeg_reason

    with pytest.raises(SoraError, match=r"^cannot write files in /proc \(.*\); give -o"):
        check_output_path("/proc/clip.mp4")
    assert check_output_path(tmp_path / "clip.mp4") == tmp_path / "clip.mp4"
    assert list(tmp_path.iterdir()) == []
    report = ("ffmpeg started on 2026-12-05 at 12:00:00\nReport written to \"x.log\"\n"
              "Command line:\n/usr/bin/ffmpeg -y -f rawvideo -i - out.mp4\n")
    assert "-f rawvideo" not in ffmpeg_reason(report)
    assert ffmpeg_reason(report + "[libx264 @ 0x5f] broken encoder\n") == "broken encoder"
