"""`stitch`: real clips (ffmpeg's test sources and our writer), joined and read back."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from conftest import audio_samples, ffmpeg_clip
from sora_cli.edit import TRANSITIONS, change_fps, parse_size, stitch
from sora_cli.errors import SoraError, SoraUsageError
from sora_cli.video_io import ffmpeg_exe, read_video, sora_metadata, write_video


def solid(path, rgb, frames=10, size=(48, 64), fps=10, **kw):
    """A clip of one flat colour (its seam with another colour shows any blending)."""
    data = np.empty((frames, *size, 3), np.uint8)
    data[:] = rgb
    write_video(path, data, fps=fps, **kw)
    return path


def packet_hashes(path) -> list[str]:
    """MD5 of every video packet, without decoding: equal lists mean copied bitstreams."""
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0",
                          "-c", "copy", "-f", "framemd5", "-"], capture_output=True, text=True,
                         check=True).stdout
    return [ln.rsplit(",", 1)[1].strip() for ln in out.splitlines()
            if ln and not ln.startswith("#")]


def test_cut_of_matching_clips_is_a_stream_copy(tmp_path):
    a = ffmpeg_clip(tmp_path / "a.mp4", seconds=1, fps=10, audio=True)
    b = ffmpeg_clip(tmp_path / "b.mp4", seconds=1.5, fps=10, audio=True, source="testsrc2")
    info = stitch([a, b, a], tmp_path / "out.mp4")
    assert info.frames == 10 + 15 + 10 and info.fps == 10
    assert info.duration == pytest.approx(3.5, abs=0.1 + 1e-9)
    assert info.has_audio
    # Bit-for-bit the inputs' packets, in order: nothing was re-encoded.
    assert packet_hashes(tmp_path / "out.mp4") == (packet_hashes(a) + packet_hashes(b)
                                                   + packet_hashes(a))
    data = (tmp_path / "out.mp4").read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # still +faststart
    assert info.sora["mode"] == "stitch" and [s["file"] for s in info.sora["sources"]] == \
        ["a.mp4", "b.mp4", "a.mp4"]
    frames = read_video(tmp_path / "out.mp4").frames
    assert len(frames) == 35


def test_a_name_with_a_line_break_is_joined_all_the_same(tmp_path):
    """ffmpeg's concat listing cannot hold one, so such clips are re-encoded, not copied."""
    a = ffmpeg_clip(tmp_path / "a\nb.mp4", seconds=1, fps=10)
    b = ffmpeg_clip(tmp_path / "c.mp4", seconds=1, fps=10)
    info = stitch([a, b], tmp_path / "out.mp4")
    assert info.frames == 20 and len(read_video(tmp_path / "out.mp4").frames) == 20
    assert info.sora["sources"][0]["file"] == "a\nb.mp4"


def test_cut_normalises_mixed_sizes_fps_and_formats(tmp_path):
    a = ffmpeg_clip(tmp_path / "a.mp4", seconds=1, size="64x48", fps=10)
    b = ffmpeg_clip(tmp_path / "b.mp4", seconds=1.5, size="40x40", fps=8, pix_fmt="yuv444p",
                    source="testsrc2")
    c = ffmpeg_clip(tmp_path / "c.webm", seconds=1, size="48x64", fps=20, codec="libvpx-vp9",
                    extra=["-deadline", "realtime", "-cpu-used", "8"])
    info = stitch([a, b, c], tmp_path / "out.mp4")
    assert (info.width, info.height, info.fps, info.pix_fmt) == (64, 48, 10.0, "yuv420p")
    assert info.frames == 10 + 15 + 10
    assert info.duration == pytest.approx(1 + 1.5 + 1, abs=0.1 + 1e-9)
    frames = read_video(tmp_path / "out.mp4").frames.astype(int)
    square = frames[12]   # from b: 40x40 scaled to 48x48, pillarboxed in 64x48
    assert square[:, :6].max() < 30 and square[:, -6:].max() < 30
    assert square[:, 10:54].std() > 40
    tall = frames[30]     # from c: portrait 48x64 fitted to height 48 -> 36 wide
    assert tall[:, :12].max() < 30 and tall[:, -12:].max() < 30
    assert tall[:, 16:48].std() > 40


def test_size_and_fps_options(tmp_path):
    a = ffmpeg_clip(tmp_path / "a.mp4", seconds=1, fps=10)
    b = ffmpeg_clip(tmp_path / "b.mp4", seconds=1, fps=10)
    info = stitch([a, b], tmp_path / "o.mp4", size="96x96", fps=5)
    assert (info.width, info.height, info.fps, info.frames) == (96, 96, 5.0, 10)
    with pytest.raises(SoraUsageError):
        stitch([a, b], tmp_path / "x.mp4", size="0x48")
    with pytest.raises(SoraUsageError):
        stitch([a, b], tmp_path / "x.mp4", size=(-2, 48))
    with pytest.raises(SoraUsageError):
        stitch([a, b], tmp_path / "x.mp4", fps=0)
    with pytest.raises(SoraUsageError):
        stitch([a, b], tmp_path / "x.mp4", fps=-5)
    with pytest.raises(SoraUsageError, match="even"):
        parse_size("65x48")
    assert not (tmp_path / "x.mp4").exists()


def test_crossfade_length_and_blended_seam(tmp_path):
    red = solid(tmp_path / "red.mp4", (220, 20, 20))
    blue = solid(tmp_path / "blue.mp4", (20, 20, 220))
    info = stitch([red, blue], tmp_path / "x.mp4", transition="crossfade", overlap=0.5)
    assert info.frames == 10 + 10 - 5
    assert info.duration == pytest.approx(1.5, abs=0.1 + 1e-9)
    frames = read_video(tmp_path / "x.mp4").frames.astype(float)
    r, b = frames[..., 0].mean(axis=(1, 2)), frames[..., 2].mean(axis=(1, 2))
    assert np.all(r[:5] > 200) and np.all(b[:5] < 40)          # red before the seam
    assert np.all(b[10:] > 200) and np.all(r[10:] < 40)        # blue after it
    # xfade's progress runs 0, 1/5, ... 4/5 over the five overlapping frames.
    assert np.all((r[6:10] > 40) & (r[6:10] < 200) & (b[6:10] > 40) & (b[6:10] < 200))
    assert np.all(np.diff(r[5:11]) < -20) and np.all(np.diff(b[5:11]) > 20)  # a real blend
    mid = frames[7]
    assert 60 < mid[..., 0].mean() < 180 and 60 < mid[..., 2].mean() < 180


def test_crossfade_three_clips_with_audio(tmp_path):
    a = ffmpeg_clip(tmp_path / "a.mp4", seconds=1, fps=10, audio=True)
    b = ffmpeg_clip(tmp_path / "b.mp4", seconds=2, fps=10, audio=True, source="testsrc2")
    c = ffmpeg_clip(tmp_path / "c.mp4", seconds=1, fps=10, audio=True)
    info = stitch([a, b, c], tmp_path / "x.mp4", transition="crossfade", overlap=0.3)
    assert info.frames == 10 + 20 + 10 - 2 * 3
    assert info.has_audio
    sound = audio_samples(tmp_path / "x.mp4")
    assert len(sound) / 8000 == pytest.approx(info.duration, abs=0.1)


def test_silent_clip_gets_silence_when_others_have_audio(tmp_path):
    loud = ffmpeg_clip(tmp_path / "loud.mp4", seconds=1, fps=10, audio=True)
    quiet = ffmpeg_clip(tmp_path / "quiet.mp4", seconds=1, fps=10)
    info = stitch([loud, quiet], tmp_path / "x.mp4")
    assert info.has_audio and info.frames == 20
    sound = audio_samples(tmp_path / "x.mp4")
    assert len(sound) / 8000 == pytest.approx(2.0, abs=0.1)
    rms_first = np.sqrt(np.mean(sound[400:7600] ** 2))
    rms_second = np.sqrt(np.mean(sound[8400:15600] ** 2))
    assert rms_first > 0.05 and rms_second < 1e-3
    # No clip has audio: neither has the result.
    assert not stitch([quiet, quiet], tmp_path / "y.mp4").has_audio


def test_overlap_longer_than_a_clip(tmp_path):
    a = ffmpeg_clip(tmp_path / "a.mp4", seconds=1, fps=10)
    b = ffmpeg_clip(tmp_path / "b.mp4", seconds=1, fps=10)
    with pytest.raises(SoraError, match="overlap"):
        stitch([a, b], tmp_path / "x.mp4", transition="crossfade", overlap=1.5)
    # as long as the clip: no frame of it would be left whole
    with pytest.raises(SoraError, match=r"--overlap 1s is as long as or longer than a.mp4 \(1s\)"):
        stitch([a, b], tmp_path / "x.mp4", transition="crossfade", overlap=1)
    with pytest.raises(SoraError, match="overlap"):  # a middle clip fades at both ends
        stitch([a, b, a], tmp_path / "x.mp4", transition="crossfade", overlap=0.6)
    with pytest.raises(SoraUsageError):
        stitch([a, b], tmp_path / "x.mp4", transition="crossfade", overlap=0)
    with pytest.raises(SoraUsageError, match="at least two"):
        stitch([a], tmp_path / "x.mp4")
    with pytest.raises(SoraUsageError, match="transition"):
        stitch([a, b], tmp_path / "x.mp4", transition="wipe")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]


def test_bad_input_clip_writes_nothing(tmp_path):
    a = ffmpeg_clip(tmp_path / "a.mp4", seconds=1, fps=10)
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(SoraError, match="not a video"):
        stitch([a, tmp_path / "notes.mp4"], tmp_path / "x.mp4")
    with pytest.raises(SoraError, match="no such file"):
        stitch([a, tmp_path / "gone.mp4"], tmp_path / "x.mp4")
    # one name where a list belongs: its letters were taken for clips ("no such file: a")
    with pytest.raises(SoraError, match="takes a list of clips, got one"):
        stitch(str(a), tmp_path / "x.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "notes.mp4"]


def test_finalize_runs_on_the_temporary_file_before_the_rename(tmp_path):
    seen = []

    def finalize(tmp):
        assert tmp.parent == tmp_path and tmp.suffix == ".mp4" and tmp.stat().st_size > 0
        assert not (tmp_path / "x.mp4").exists()
        seen.append(tmp)

    a = solid(tmp_path / "a.mp4", (200, 200, 0), metadata=sora_metadata({"prompt": "sun"}))
    info = stitch([a, a], tmp_path / "x.mp4", finalize=finalize)
    assert len(seen) == 1 and not seen[0].exists() and (tmp_path / "x.mp4").exists()
    # Sources made by sora-cli are named with their settings in the stitched file.
    assert info.sora["sources"][0]["sora"] == {"prompt": "sun"}
    assert "AI-generated" in info.metadata["comment"]


def test_transitions_are_a_registry_of_small_functions():
    assert set(TRANSITIONS) >= {"cut", "crossfade"}
    assert TRANSITIONS["crossfade"].overlaps and not TRANSITIONS["cut"].overlaps


def test_change_fps_keeps_duration_and_order():
    frames = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    up = change_fps(frames, 10, 20)
    assert len(up) == 20 and np.all(np.diff(up.ravel().astype(int)) >= 0)
    assert set(up.ravel()) == set(range(10))
    down = change_fps(frames, 10, 5)
    assert down.ravel().tolist() == [0, 2, 4, 6, 8]
    with pytest.raises(SoraUsageError):
        change_fps(frames, 10, 0)


def test_a_phone_clip_stored_turned_is_described_read_and_joined_as_shown(tmp_path, capfd):
    """A portrait phone clip is stored landscape with a display matrix; ffmpeg decodes it
    upright, so its size, its frames, a stitch's default size and a stream copy follow that."""
    from sora_cli.inspection import contact_sheet
    from sora_cli.mp4 import read_mp4
    from sora_cli.video_io import probe

    plain = ffmpeg_clip(tmp_path / "plain.mp4", seconds=1, size="64x48", fps=8)
    for turn in (90, -90, 180):
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-display_rotation", str(turn),
                        "-i", str(plain), "-c", "copy", str(tmp_path / f"r{turn}.mp4")],
                       check=True)
    portrait = tmp_path / "r90.mp4"
    for turn, shown in ((90, (48, 64)), (-90, (48, 64)), (180, (64, 48))):
        info = probe(tmp_path / f"r{turn}.mp4")
        table = read_mp4(tmp_path / f"r{turn}.mp4").video_info(tmp_path / f"r{turn}.mp4")
        assert (info.width, info.height) == shown == (table.width, table.height)
        assert abs(abs(info.rotation) - abs(turn)) < 1 and abs(table.rotation - info.rotation) \
            % 360 < 1
    capfd.readouterr()
    frames = read_video(portrait).frames
    assert frames.shape == (8, 64, 48, 3)
    assert capfd.readouterr().err == ""           # no library chatter about the turned size
    sheet = contact_sheet(portrait, tmp_path / "s.png", cols=2, rows=1)
    assert probe(sheet).width < probe(sheet).height * 2   # portrait cells, not squeezed
    # a stitch starting with it is portrait; a turned clip and a plain one are re-encoded,
    # since a stream copy would show both turned the same way
    mixed = stitch([portrait, plain], tmp_path / "mixed.mp4")
    assert (mixed.width, mixed.height) == (48, 64) and mixed.rotation == 0
    assert packet_hashes(tmp_path / "mixed.mp4")[:8] != packet_hashes(portrait)
    both = stitch([portrait, portrait], tmp_path / "both.mp4")
    assert packet_hashes(tmp_path / "both.mp4") == packet_hashes(portrait) * 2
    assert (both.width, both.height) == (48, 64) and both.rotation == 90


def test_a_variable_frame_rate_clip_keeps_its_whole_length(tmp_path):
    """42 frames averaging 16.15 fps last 3 s, not 42 / 16.15 = 2.6 s: its end was cut."""
    from test_video_io import vfr_ramp

    start = solid(tmp_path / "s.mp4", (0, 0, 0), frames=8, fps=8)
    clip = vfr_ramp(tmp_path / "v.mp4")
    info = stitch([start, clip], tmp_path / "x.mp4")
    assert info.frames == 8 + 24 and info.fps == 8
    level = read_video(tmp_path / "x.mp4").frames[8:].mean(axis=(1, 2, 3))
    assert np.abs(level - 80 * np.arange(24) / 8).max() < 30
    faded = stitch([clip, start], tmp_path / "f.mp4", fps=8, transition="crossfade",
                   overlap=0.5)
    assert faded.frames == 24 + 8 - 4


def test_a_one_frame_clip_at_another_rate_still_gives_a_frame(tmp_path):
    """One frame at 25 fps lasts 0.04 s, under half a frame at 8 fps: it used to vanish."""
    blue = solid(tmp_path / "blue.mp4", (20, 20, 220), frames=8, fps=8)
    red = solid(tmp_path / "red.mp4", (220, 20, 20), frames=1, fps=25)
    info = stitch([blue, red], tmp_path / "x.mp4")
    assert info.frames == 9
    last = read_video(tmp_path / "x.mp4").frames[-1].astype(int)
    assert last[..., 0].mean() > 180 and last[..., 2].mean() < 60
    assert stitch([red, blue], tmp_path / "y.mp4").frames == 1 + 25


def test_an_anamorphic_clip_is_joined_as_shown_never_squeezed(tmp_path):
    """64x48 stored with 2:1 pixels is shown 128x48: first, it sets the size; second, it is
    letterboxed as 8:3 (20-row bands in a 64x64 frame), not as 4:3."""
    wide = ffmpeg_clip(tmp_path / "wide.mp4", seconds=1, size="64x48", fps=8,
                       extra=["-vf", "setsar=2"])
    square = solid(tmp_path / "sq.mp4", (20, 200, 20), frames=8, size=(64, 64), fps=8)
    first = stitch([wide, square], tmp_path / "a.mp4")
    assert (first.width, first.height, first.sar) == (128, 48, 1)
    second = stitch([square, wide], tmp_path / "b.mp4")
    frame = read_video(tmp_path / "b.mp4").frames[12].astype(int)
    assert frame[:18].max() < 30 and frame[-18:].max() < 30 and frame[24:40].std() > 40
    assert (second.width, second.height) == (64, 64)
    # a stream copy keeps the stored pixels and their shape; a size asked re-encodes them
    copied = stitch([wide, wide], tmp_path / "c.mp4")
    assert packet_hashes(tmp_path / "c.mp4") == packet_hashes(wide) * 2
    assert (copied.width, copied.height, copied.sar) == (128, 48, 2)
    sized = stitch([wide, wide], tmp_path / "d.mp4", size="128x48")
    assert (sized.width, sized.height, sized.sar, sized.stored_size) == (128, 48, 1, None)


def test_an_unknown_transition_names_every_transition(tmp_path):
    from conftest import run_cli

    a = ffmpeg_clip(tmp_path / "a.mp4", seconds=1, fps=10)
    with pytest.raises(SoraUsageError, match=r"'wipe' \(choose from cut, crossfade, bridge\)"):
        stitch([a, a], tmp_path / "x.mp4", transition="wipe")
    with pytest.raises(SoraUsageError, match="generation.bridge"):
        stitch([a, a], tmp_path / "x.mp4", transition="bridge")
    r = run_cli("stitch", "a.mp4", "a.mp4", "-t", "wipe", "-o", "x.mp4", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == "error: unknown transition 'wipe' (choose from cut, crossfade, bridge)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def test_extend_and_bridge_keep_a_variable_frame_rate_clip_at_its_length(tiny_bundle, tmp_path):
    """The model's input is the clip at the model's rate (8 fps): 3 s are 24 frames."""
    from test_video_io import vfr_ramp

    from sora_cli.generation import GenerateOptions, bridge, extend

    clip = vfr_ramp(tmp_path / "v.mp4")
    opts = GenerateOptions(steps=2, credentials=False, model=str(tiny_bundle), device="cpu",
                           seed=1)
    grown = extend(clip, "a red ball bouncing on a beach", 0.5, tmp_path / "e.mp4", opts)
    assert grown["frames"] == 24 + 4
    start = solid(tmp_path / "s.mp4", (0, 0, 0), frames=8, size=(64, 64), fps=8)
    joined = bridge([start, clip], tmp_path / "b.mp4", 0.5, "a red ball", opts)
    assert joined["frames"] == 8 + 4 + 24
