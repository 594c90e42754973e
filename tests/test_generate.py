"""Generation modes end to end with a tiny trained bundle: real MP4s written and read back.

The tiny model is far too small to draw the prompt; these tests check the mechanics that do
not depend on quality: durations, sizes, frame rates, clean known frames, seams, memory,
reproducibility, metadata, resumable batches and one-line errors.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import audio_samples
from sora_cli.video_io import probe, read_video

FAST = ["--steps", "2", "--no-credentials"]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.fixture
def env1():
    return {"OMP_NUM_THREADS": "1"}


def test_generate_writes_the_requested_video_with_its_settings(sora, tiny_bundle, tmp_path, env1):
    out = tmp_path / "ball.mp4"
    r = sora("generate", "a red ball bouncing on a beach", "-o", out, "--model", tiny_bundle,
             "--duration", "2", "--seed", "3", "--json", *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    info = probe(out)
    assert (info.frames, info.fps, info.width, info.height) == (16, 8.0, 64, 64)
    assert res["output"] == str(out) and res["frames"] == 16
    s = info.sora
    assert s["prompt"] == "a red ball bouncing on a beach" and s["seed"] == 3
    assert s["mode"] == "generate" and s["steps"] == 2 and s["model"] == "tiny"
    assert len(s["model_hash"]) >= 8 and s["tool"].startswith("sora-cli")


def test_same_seed_same_frames_and_other_seed_differs(tiny_bundle, tmp_path):
    from sora_cli.generation import GenerateOptions, generate, load_pipeline

    opts = GenerateOptions(duration=1.0, steps=2, credentials=False, model=str(tiny_bundle),
                           device="cpu", seed=11)
    pipe = load_pipeline(opts)
    generate("a blue car driving left", tmp_path / "a.mp4", opts, pipe=pipe)
    generate("a blue car driving left", tmp_path / "b.mp4", opts, pipe=pipe)
    opts.seed = 12
    generate("a blue car driving left", tmp_path / "c.mp4", opts, pipe=pipe)
    a, b, c = (read_video(tmp_path / f"{n}.mp4").frames for n in "abc")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_the_pipeline_announces_its_windows_before_the_first_step(tiny_bundle):
    # generate's progress bar sizes itself from the (0, total) call: windows x steps
    from sora_cli.generation import GenerateOptions, load_pipeline, use_settings

    opts = GenerateOptions(steps=2, model=str(tiny_bundle), device="cpu")
    pipe = load_pipeline(opts)
    use_settings(pipe, opts)
    calls = []
    frames = list(pipe.generate("a red ball bouncing on a beach", 4.0, seed=0,
                                on_window=lambda d, t: calls.append(("window", d, t)),
                                on_step=lambda: calls.append(("step",))))
    total = calls[0][2]
    assert total >= 2 and calls[0] == ("window", 0, total)
    windows = [c for c in calls if c[0] == "window"]
    assert windows == [("window", k, total) for k in range(total + 1)]
    assert len(calls) - len(windows) == total * 2
    assert sum(len(f) for f in frames) == 32


def test_fps_aspect_and_variations(sora, tiny_bundle, tmp_path, env1):
    out = tmp_path / "wide.mp4"
    r = sora("generate", "a green bird flying right", "-o", out, "--model", tiny_bundle,
             "--duration", "1", "--fps", "16", "--aspect", "16:9", "--num", "2", "--seed", "5",
             *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    for name in ("wide-1.mp4", "wide-2.mp4"):
        info = probe(tmp_path / name)
        assert info.fps == 16.0 and info.frames == 16            # interpolated from 8 fps
        assert info.width > info.height and info.width % 32 == 0
    assert probe(tmp_path / "wide-2.mp4").sora["seed"] == 6
    assert not out.exists()


def test_size_is_the_files_and_the_model_draws_at_its_own(sora, tiny_bundle, tmp_path, env1):
    """--size sets the file's frames; the model draws at its own pixel count in that shape
    (drawn at 160x160 it only learned to fill 64x64), and the frames are scaled to --size."""
    r = sora("generate", "a green bird flying right", "-o", tmp_path / "big.mp4", "--model",
             tiny_bundle, "--duration", "0.5", "--size", "160x96", "--fps", "16", *FAST,
             env=env1)
    assert r.returncode == 0, r.stderr
    info = probe(tmp_path / "big.mp4")
    assert (info.width, info.height, info.fps) == (160, 96, 16.0)
    assert (info.sora["width"], info.sora["height"]) == (96, 64)     # 64x64 pixels, 5:3
    assert info.sora["scaled_to"] == "160x96"
    assert "drawing at 96x64 (the model's size in that shape), scaled to 160x96" in r.stderr
    from sora_cli.watermark import detect_watermark_file

    # the mark is embedded in the drawn frames and survives the scaling (96x64 frames are
    # too small to carry it at all, so a square file is read)
    r = sora("generate", "a green bird flying right", "-o", tmp_path / "sq.mp4", "--model",
             tiny_bundle, "--duration", "0.5", "--size", "160x160", "-q", *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    mark = detect_watermark_file(tmp_path / "sq.mp4")
    assert mark.found and f"{mark.payload:012x}" == probe(tmp_path / "sq.mp4").sora["watermark"]
    r = sora("generate", "a green bird flying right", "-o", tmp_path / "same.mp4", "--model",
             tiny_bundle, "--duration", "0.5", "--size", "64x64", "-q", *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    same = probe(tmp_path / "same.mp4")
    assert (same.width, same.height) == (64, 64) and "scaled_to" not in same.sora


def test_default_output_name_from_prompt_and_seed(sora, tiny_bundle, tmp_path, env1):
    r = sora("generate", "A Yellow Star, falling!", "--model", tiny_bundle, "--duration", "1",
             "--seed", "42", *FAST, cwd=tmp_path, env=env1)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a-yellow-star-falling-s42.mp4").is_file()
    assert r.stdout.strip().startswith("a-yellow-star-falling-s42.mp4")


def test_a_size_too_small_to_read_the_watermark_back_says_so(sora, tiny_bundle, tmp_path, env1):
    from sora_cli.watermark import detect_watermark_file

    out = tmp_path / "small.mp4"
    r = sora("generate", "a red ball", "-o", out, "--size", "48x48", "--model", tiny_bundle,
             "--duration", "1", *FAST, env=env1)
    assert r.returncode == 0 and probe(out).width == 48, r.stderr
    assert "48x48 is too small for the invisible watermark to be read back" in \
        " ".join(r.stderr.split())
    assert not detect_watermark_file(out).found     # what the warning is about
    r = sora("generate", "a red ball", "-o", tmp_path / "ok.mp4", "--size", "64x64", "--model",
             tiny_bundle, "--duration", "1", *FAST, env=env1)
    assert r.returncode == 0 and "too small" not in r.stderr


def test_a_length_under_one_frame_makes_one_and_says_so(sora, tiny_bundle, tmp_path, env1):
    r = sora("generate", "a red ball", "-d", "0.01", "-o", tmp_path / "x.mp4", "--model",
             tiny_bundle, "-q", *FAST, env=env1)
    assert r.returncode == 0 and probe(tmp_path / "x.mp4").frames == 1, r.stderr
    assert "--duration 0.01 is shorter than one frame at the model's 8 fps: making one " \
        "frame (0.125 s)" in " ".join(r.stderr.split())
    assert "(0.125 s, 64x64" in r.stdout   # the result line does not round it to 0.12
    r = sora("generate", "a red ball", "-d", "0.5", "-o", tmp_path / "y.mp4", "--model",
             tiny_bundle, "-q", *FAST, env=env1)
    assert r.returncode == 0 and "shorter than one frame" not in r.stderr


def test_images_are_read_as_shown_and_videos_are_refused(tmp_path, make_clip):
    import imageio.v3 as iio
    from PIL import Image

    from sora_cli.errors import SoraError
    from sora_cli.generation import read_image

    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :20] = 255                     # white on the left
    photo = Image.fromarray(wide)
    exif = photo.getexif()
    exif[0x0112] = 6                       # a phone's "turn 90 degrees clockwise to show"
    photo.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    shown = read_image(tmp_path / "phone.jpg")
    assert shown.shape == (40, 20, 3)
    assert shown[:18].mean() > 200 and shown[22:].mean() < 50   # white now on top
    # 16-bit images by their full range (1000 of 65535 is dark), 1-bit ones as white
    Image.fromarray(np.full((8, 8), 1000, np.uint16)).save(tmp_path / "deep.png")
    assert read_image(tmp_path / "deep.png").max() == 4
    Image.fromarray(np.ones((8, 8), bool)).save(tmp_path / "bits.png")
    assert read_image(tmp_path / "bits.png").min() == 255
    anim = np.zeros((3, 16, 16, 3), np.uint8)
    anim[1:] = 200
    iio.imwrite(tmp_path / "anim.gif", anim)
    assert read_image(tmp_path / "anim.gif").max() < 20       # its first frame
    with pytest.raises(SoraError, match="is a video, not an image: `sora extend"):
        read_image(make_clip("clip.mp4", seconds=1))


def test_animate_holds_the_image_as_the_first_frame(tiny_bundle, tmp_path):
    import imageio.v3 as iio
    import torch

    from sora_cli.generation import GenerateOptions, animate, load_pipeline
    from sora_cli.pipeline import to_model_size
    from sora_cli.world.parse import parse_prompt
    from sora_cli.world.render import render_scene

    image = render_scene(parse_prompt("a large red ball on a grass field"), (96, 128), 1)[0]
    iio.imwrite(tmp_path / "photo.png", image)
    opts = GenerateOptions(duration=2.0, steps=2, credentials=False, model=str(tiny_bundle),
                           device="cpu", seed=1)
    pipe = load_pipeline(opts)
    res = animate(tmp_path / "photo.png", "the ball rolls right", tmp_path / "anim.mp4", opts,
                  pipe=pipe)
    video = read_video(tmp_path / "anim.mp4")
    assert len(video.frames) == 16 and res["frames"] == 16
    # The first frame is the image held clean: exactly what the VAE makes of the image alone.
    fitted = to_model_size(image[None], 64, 64)
    with torch.no_grad():
        alone = next(pipe.decode_latents(pipe.encode_frames(fitted)))[0]
    assert psnr(video.frames[0], alone) > 28  # H.264 at CRF 18 on a 64 px frame
    later = [psnr(f, alone) for f in video.frames[4:]]
    assert psnr(video.frames[0], alone) > max(later)


def test_extend_keeps_the_clip_and_continues_at_its_seam(sora, tiny_bundle, tmp_path, make_clip,
                                                         env1):
    src = make_clip("src.mp4", seconds=2, size="96x64", fps=8, source="testsrc2")
    out = tmp_path / "longer.mp4"
    r = sora("extend", src, "-p", "more of the same", "--seconds", "1.5", "-o", out,
             "--model", tiny_bundle, "--seed", "2", *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    original = read_video(src).frames
    video = read_video(out)
    assert len(video.frames) == 16 + 12 and video.fps == 8
    from sora_cli.pipeline import to_model_size

    kept = to_model_size(original, 64, 64)
    # (testsrc2's pure colour bars at 64 px are the hardest case for 4:2:0 chroma: ~29 dB)
    assert min(psnr(a, b) for a, b in zip(video.frames[:16], kept)) > 28
    assert probe(out).sora["mode"] == "extend"
    only = tmp_path / "only.mp4"
    # the prompt may also come as the argument after the clip, as people type it first
    r = sora("extend", src, "it goes on", "--seconds", "1", "--only-new", "-o", only,
             "--model", tiny_bundle, *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    assert probe(only).frames == 8 and probe(only).sora["prompt"] == "it goes on"
    r = sora("extend", src, "it goes on", "-p", "it stops", "--model", tiny_bundle, *FAST,
             env=env1, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: give the prompt once"), r.stderr


def test_extending_an_extension_leaves_one_mark_and_keeps_the_picture(sora, tiny_bundle,
                                                                      tmp_path, env1):
    """Each pass marks the whole file with its own payload: the source's mark comes out first,
    or the kept part carries one mark more each pass (and grows darker each re-encode)."""
    from sora_cli.watermark import detect_watermark_file, mark_share

    clips = [tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "c.mp4"]
    r = sora("generate", "a red ball bouncing on a beach", "-o", clips[0], "--model",
             tiny_bundle, "--duration", "2", "--seed", "1", *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    for k, (src, out) in enumerate(zip(clips, clips[1:])):
        r = sora("extend", src, "--seconds", "1", "-o", out, "--model", tiny_bundle,
                 "--seed", str(k + 2), *FAST, env=env1)
        assert r.returncode == 0, r.stderr
    first, last = (read_video(c).frames[:16] for c in (clips[0], clips[-1]))
    payloads = [int(probe(c).sora["watermark"], 16) for c in clips]
    assert mark_share(last, payloads[2]) > 0.6
    assert all(abs(mark_share(last, p)) < 0.3 for p in payloads[:2])
    found = detect_watermark_file(clips[-1])
    assert found.payload == payloads[2] and found.frames[0] == 0   # read on the whole clip
    assert abs(last.astype(float).mean() - first.astype(float).mean()) < 0.5
    assert psnr(last, first) > 33


def test_extending_a_video_made_with_size_takes_its_mark_out_too(sora, tiny_bundle, tmp_path,
                                                                 env1):
    """A --size video's mark was drawn at the model's size and scaled with the picture: read
    back at the model's size it lines up again, and comes out."""
    from sora_cli.watermark import mark_share

    src, out = tmp_path / "big.mp4", tmp_path / "more.mp4"
    r = sora("generate", "a red ball", "-o", src, "--size", "96x96", "--model", tiny_bundle,
             "--duration", "2", "--seed", "1", *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    r = sora("extend", src, "--seconds", "1", "-o", out, "--model", tiny_bundle, "--seed", "2",
             *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    kept = read_video(out).frames[:16]
    old, new = (int(probe(p).sora["watermark"], 16) for p in (src, out))
    assert kept.shape[1:3] == (64, 64)
    assert abs(mark_share(kept, old)) < 0.3 and mark_share(kept, new) > 0.6


def test_extending_at_size_keeps_the_clips_own_frames_at_that_size(sora, tiny_bundle,
                                                                    tmp_path, make_clip, env1):
    """--size scales the model's frames; the clip's own go to the file scaled once, not
    drawn down to the model's size and scaled back up (which lost all detail the model's
    64 px cannot hold, and re-cropped the clip wherever --size's shape and the model's
    rounded one differ: 640x360 against 352x192 kept 22 dB of a clip after three passes)."""
    src = make_clip("src.mp4", seconds=2, size="128x128", fps=8, source="testsrc2")
    out = tmp_path / "more.mp4"
    r = sora("extend", src, "--seconds", "1", "--size", "128x128", "-o", out, "--model",
             tiny_bundle, "--seed", "2", *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    first, kept = read_video(src).frames, read_video(out).frames[:16]
    assert kept.shape == (16, 128, 128, 3)
    assert psnr(kept, first) > 30   # through 64 px and back: 26 dB


def test_storyboard_and_long_video_run_segment_by_segment(sora, tiny_bundle, tmp_path, env1):
    board = tmp_path / "board.txt"
    board.write_text("# a tiny film\n2s: a red ball bouncing on a beach\n"
                     "1.5: a red ball resting on a beach\n")
    r = sora("story", board, "--model", tiny_bundle, "--seed", "1", "--json", *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    info = probe(tmp_path / "board.mp4")
    assert info.frames == 28 and res["segments"] == 2
    assert info.sora["segments"][1]["prompt"] == "a red ball resting on a beach"


def _peak_rss_kb(call: str, bundle: Path) -> int:
    """Peak memory of a fresh process that makes one video with `call` (generate(...) or
    extend(...) of sora_cli.generation, OPTS standing for the tiny bundle's options)."""
    code = ("import resource\n"
            "from sora_cli.generation import GenerateOptions, extend, generate\n"
            f"OPTS = GenerateOptions(steps=1, credentials=False, model={str(bundle)!r}, "
            "device='cpu', seed=0)\n"
            f"{call}\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip().splitlines()[-1])


def _generate_peak_rss_kb(bundle: Path, seconds: float, out: Path) -> int:
    return _peak_rss_kb(f"from dataclasses import replace\n"
                        f"generate('a white fish swimming left underwater', {str(out)!r}, "
                        f"replace(OPTS, duration={seconds}))", bundle)


def _extend_peak_rss_kb(bundle: Path, source: Path) -> int:
    return _peak_rss_kb(f"extend({str(source)!r}, '', 0.5, "
                        f"{str(source.with_suffix('.out.mp4'))!r}, OPTS)", bundle)


def test_extending_a_long_clip_takes_no_more_memory_than_a_short_one(tiny_bundle, tmp_path,
                                                                      make_clip):
    """The source is streamed into the output, not held: 20 minutes at 64x64 held whole
    would be 113 MB (twice that while it was put together)."""
    short = make_clip("short.mp4", seconds=10, size="64x64", fps=8, source="testsrc2")
    long = make_clip("long.mp4", seconds=1200, size="64x64", fps=8, source="testsrc2")
    a, b = _extend_peak_rss_kb(tiny_bundle, short), _extend_peak_rss_kb(tiny_bundle, long)
    assert probe(long.with_suffix(".out.mp4")).frames == 9600 + 4
    assert b <= a + 40 * 1024, (a, b)


def test_sixty_seconds_take_no_more_memory_than_ten(tiny_bundle, tmp_path):
    ten = _generate_peak_rss_kb(tiny_bundle, 10, tmp_path / "ten.mp4")
    sixty = _generate_peak_rss_kb(tiny_bundle, 60, tmp_path / "sixty.mp4")
    assert probe(tmp_path / "sixty.mp4").frames == 480
    assert sixty <= 1.2 * ten, (ten, sixty)


def test_bridge_fills_the_gap_between_two_clips(sora, tiny_bundle, tmp_path, make_clip, env1):
    a = make_clip("a.mp4", seconds=1, size="64x64", fps=8, source="testsrc")
    b = make_clip("b.mp4", seconds=1, size="64x64", fps=8, source="smptebars", audio=True)
    out = tmp_path / "bridged.mp4"
    r = sora("stitch", a, b, "-o", out, "--transition", "bridge", "--overlap", "1",
             "--model", tiny_bundle, *FAST, env=env1)
    assert r.returncode == 0 and "not kept" not in r.stderr, r.stderr
    video = read_video(out)
    assert len(video.frames) == 8 + 8 + 8
    assert psnr(video.frames[0], read_video(a).frames[0]) > 25
    assert psnr(video.frames[-1], read_video(b).frames[-1]) > 25
    # b's sound plays with b's frames; the silent a and the generated second stay silent
    assert probe(out).audio_codec == "aac"
    sound = audio_samples(out)
    assert len(sound) / 8000 == pytest.approx(3.0, abs=0.05)
    rms = [np.sqrt(np.mean(sound[k * 8000 + 400:(k + 1) * 8000 - 400] ** 2)) for k in range(3)]
    assert rms[0] < 1e-3 and rms[1] < 1e-3 and rms[2] > 0.05, rms


def test_batch_resumes_after_a_kill_and_lists_every_item_once(tiny_bundle, tmp_path):
    jobs = tmp_path / "jobs.txt"
    prompts = ["a red ball bouncing on a beach", "a blue car driving left",
               '{"prompt": "a pink fish swimming right underwater", "seed": 9, "duration": 1}',
               "a green triangle spinning in outer space"]
    jobs.write_text("# four jobs\n\n" + "\n".join(prompts) + "\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sora_cli", "batch", str(jobs), "-o", str(out), "--model",
           str(tiny_bundle), "--duration", "1", *FAST]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # a single process keeps manifest.jsonl current as items finish, not only at the end
    manifest = out / "manifest.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and not (manifest.exists() and manifest.read_text().strip()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert manifest.exists(), "the first item never finished"
    first_done = {json.loads(x)["id"] for x in manifest.read_text().splitlines() if x}
    r = subprocess.run(cmd + ["--json"], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["skipped"] >= len(first_done)
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert [row["index"] for row in rows] == [0, 1, 2, 3]
    assert all(row["status"] == "done" for row in rows)
    assert rows[2]["seed"] == 9 and probe(out / rows[2]["output"]).frames == 8
    assert sorted(p.name for p in out.glob("*.mp4")) == sorted(row["output"] for row in rows)
    assert not list(out.glob("manifest.rank*"))


def test_batch_marks_refused_and_failed_items_and_goes_on(sora, tiny_bundle, tmp_path, env1):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"prompt": "a red ball bouncing on a beach", "duration": 1, "steps": 1, '
                    '"guidance": 2.5, "sampler": "heun", "output": "sub/first.mp4"}\n'
                    '{"prompt": "a graphic beheading with gore", "duration": 1}\n'
                    '{"prompt": "a cyan star", "duration": 1, "colour": "x"}\n')
    r = sora("batch", jobs, "-o", tmp_path / "o", "--model", tiny_bundle, *FAST, env=env1)
    assert r.returncode == 1  # an item failed
    rows = [json.loads(x) for x in (tmp_path / "o" / "manifest.jsonl").read_text().splitlines()]
    assert [row["status"] for row in rows] == ["done", "refused", "failed"]
    assert "violence" in rows[1]["error"] and "colour" in rows[2]["error"]
    # a row's own sampler settings win over the batch's (--steps 2) on the shared pipeline
    assert rows[0]["output"] == "sub/first.mp4"  # a row's subfolder is made in the batch's
    made = probe(tmp_path / "o" / "sub" / "first.mp4").sora
    assert (made["steps"], made["guidance"], made["sampler"]) == (1, 2.5, "heun")


def test_batch_rows_name_their_own_files_inside_the_batch_folder():
    from sora_cli.batch import parse_jobs

    rows = ['{"prompt": "a red ball", "output": "ball.mp4"}',
            '{"prompt": "a blue ball", "output": "ball.mp4"}',        # would overwrite line 1
            '{"prompt": "a green ball", "output": "../ball.mp4"}',    # outside the folder
            '{"prompt": "a green ball", "output": "/tmp/ball.mp4"}',
            '{"prompt": "a pink ball", "output": "ball"}',
            '{"prompt": "a pink ball", "output": 3}',
            '{"prompt": "a pink ball", "output": "balls/pink.mp4"}']
    items = parse_jobs("\n".join(rows))
    assert items[0].error is None and items[6].error is None
    assert "also the output of line 1" in items[1].error
    assert all("inside the batch folder" in items[i].error for i in (2, 3))
    assert "ending in .mp4" in items[4].error and "must be a file name" in items[5].error


@pytest.mark.parametrize("args, needle", [
    (["generate", "   "], "prompt is empty"),
    (["generate", "a red ball", "--duration", "0"], "--duration"),
    (["generate", "a red ball", "--duration", "99999"], "--duration"),
    (["generate", "a red ball", "--size", "0x10"], "--size"),
    (["generate", "a red ball", "--model", "no-such-model"], "no-such-model"),
    (["generate", "a bloody gory decapitation"], "refused"),
    (["animate", "missing.png"], "no such image"),
    (["animate", "notimage.png"], "cannot read"),
    (["generate", "a red ball", "--num", "0"], "--num"),
    (["generate", "a red ball", "--steps", "0"], "--steps"),
    (["animate", "notimage.png", "--fit", "stretch"], "--fit"),
    # a value that does not parse is Click's usage error
    (["generate", "a red ball", "--duration", "abc"], "--duration"),
    (["extend", "clip.mp4", "--seconds", "0"], "--seconds"),
    (["extend", "still.png"], "sora animate still.png"),
    (["stitch", "clip.mp4", "still.png", "--transition", "bridge", "-o", "x.mp4"],
     "still image"),
    (["generate", "a red ball", "--device", "tpu"], "--device"),
    (["generate", "a red ball", "--crf", "70"], "--crf"),
    (["batch", "long.txt", "-o", "clip.mp4"], "not a folder"),
    (["batch", "long.txt", "-o", "clip.mp4/videos"], "cannot make the folder clip.mp4/videos"),
    (["story", "-"], "needs -o"),
    (["generate", "a red ball", "-o", "videos/.mp4"], "no name before .mp4"),
    (["generate", "a red ball", "--seed", str(2**64 - 1)], "--seed must be an integer from 0"),
    (["story", "board.yaml"], "board.yaml:1: this looks like YAML"),
    (["story", "long.txt"], "add up to 4200 s"),
])
def test_bad_input_is_one_line_and_writes_nothing(sora, tmp_path, args, needle, make_clip):
    import imageio.v3 as iio

    (tmp_path / "notimage.png").write_text("not a picture")
    (tmp_path / "board.yaml").write_text("segments:\n  - prompt: a red ball on a beach\n")
    (tmp_path / "long.txt").write_text("600: a red ball bouncing on a beach\n" * 7)
    make_clip(tmp_path / "clip.mp4", seconds=1, size="64x64", fps=8)
    iio.imwrite(tmp_path / "still.png", np.full((48, 64, 3), 200, np.uint8))
    before = set(tmp_path.iterdir())
    r = sora(*args, cwd=tmp_path)
    # exit 2 for the command line itself (a flag value out of range or not parsing, an
    # empty prompt), 1 for what it names (a missing model or file, a refused prompt)
    usage = {"--duration", "--size", "--num", "--steps", "--fit", "--seconds", "--device",
             "--crf", "prompt is empty", "needs -o", "no name before .mp4",
             "--seed must be an integer from 0"}
    assert r.returncode == (2 if needle in usage else 1), r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0], r.stderr
    assert set(tmp_path.iterdir()) == before


def test_clip_shorter_than_the_context_is_refused(sora, tiny_bundle, tmp_path, make_clip):
    short = make_clip("short.mp4", seconds=0.25, size="64x64", fps=8)
    r = sora("extend", short, "--model", tiny_bundle, "-o", tmp_path / "x.mp4", *FAST)
    assert r.returncode == 1 and "at least" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.mp4").exists()


def test_a_bundle_can_turn_on_skip_layer_guidance(sora, tiny_bundle, tmp_path, env1):
    import shutil

    from sora_cli.bundle import describe_bundle
    from sora_cli.generation import GenerateOptions, generate, load_pipeline

    def variant(name, **flow):
        folder = shutil.copytree(tiny_bundle, tmp_path / name)
        cfg = json.loads((folder / "config.json").read_text())
        cfg["flow"].update(flow)
        (folder / "config.json").write_text(json.dumps(cfg))
        return folder

    on = variant("on", skip_guidance=1.5, skip_layers=[1], skip_max_t=0.9)
    assert describe_bundle(on)["sampler"]["skip_layers"] == [1]
    frames = {}
    for model in (tiny_bundle, on):
        opts = GenerateOptions(duration=1.0, steps=3, credentials=False, model=str(model),
                               device="cpu", seed=5)
        out = tmp_path / f"{Path(model).name}.mp4"
        generate("a blue car driving left", out, opts, pipe=load_pipeline(opts))
        frames[model] = read_video(out).frames
    assert frames[on].shape == frames[tiny_bundle].shape
    assert not np.array_equal(frames[on], frames[tiny_bundle])
    # a block the DiT does not have: one line, exit 1, no file
    bad = variant("bad", skip_guidance=1.0, skip_layers=[7])
    r = sora("generate", "a red ball", "--model", bad, "-o", tmp_path / "x.mp4", *FAST, env=env1)
    assert r.returncode == 1 and "flow.skip_layers" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("fps, seconds", [(30, 2.3), (40, 0.3), (5, 3), (8, 2)])
def test_a_clip_is_read_at_the_model_rate_and_size_as_a_stream(make_clip, fps, seconds):
    """extend/bridge read their clips frame by frame, twice (ends, then all for the output);
    the frames must be those decoding the whole clip, then change_fps and to_model_size pick
    (40 fps x 0.3 s: 12 frames to 2). --fit pad resizes as to_model_size does; a crop is made
    by ffmpeg, so its pixels differ a little, but never which frame each one is."""
    from types import SimpleNamespace

    from sora_cli.edit import change_fps
    from sora_cli.generation import GenerateOptions, _Source
    from sora_cli.pipeline import to_model_size

    clip = make_clip(f"c{fps}.mp4", seconds=seconds, size="160x96", fps=fps)
    whole = read_video(clip)
    pipe = SimpleNamespace(fps=8.0, context=1, temporal=4)
    for fit in ("crop", "pad"):
        want = to_model_size(change_fps(whole.frames, whole.fps, 8.0), 64, 48, fit=fit)
        source = _Source(clip, probe(clip), pipe, (64, 48), fit, GenerateOptions())
        got = np.concatenate(list(source.frames()))
        assert got.shape == want.shape and source.count == len(want), (fit, got.shape)
        assert np.array_equal(source.head, got[:48]) and np.array_equal(source.tail, got[-48:])
        if fit == "pad":
            assert np.array_equal(got, want)
        else:
            d = np.abs(got[:, None].astype(int) - want[None].astype(int)).mean((2, 3, 4))
            # (each frame nearest its own counterpart: a repeated frame is as near to its twin)
            assert (d.diagonal() <= d.min(1) + 1e-9).all() and d.diagonal().max() < 8, d


def test_a_source_copied_over_while_it_is_read_is_refused(make_clip):
    """Two passes over one clip must read one clip: the same frame count is not enough."""
    import shutil
    from types import SimpleNamespace

    from sora_cli.errors import SoraError
    from sora_cli.generation import GenerateOptions, _Source

    clip = make_clip("a.mp4", seconds=1, size="64x64", fps=8)
    other = make_clip("b.mp4", seconds=1, size="64x64", fps=8, source="testsrc2")
    source = _Source(clip, probe(clip), SimpleNamespace(fps=8.0, context=1, temporal=4),
                     (64, 64), "crop", GenerateOptions())
    shutil.copyfile(other, clip)
    with pytest.raises(SoraError, match="a.mp4 changed while it was being read"):
        list(source.frames())


def test_bridge_checks_every_clip_before_drawing_the_first_bridge(sora, tiny_bundle, tmp_path,
                                                                  make_clip, env1):
    a = make_clip("a.mp4", seconds=1, size="64x64", fps=8)
    one = make_clip("one.mp4", seconds=0.125, size="64x64", fps=8)
    out = tmp_path / "out.mp4"
    r = sora("stitch", a, a, one, "-t", "bridge", "-o", out, "--model", tiny_bundle, *FAST,
             env=env1)
    assert r.returncode == 1 and not out.exists(), r.stderr
    assert r.stderr.strip() == ("error: one.mp4 has 1 frame at the model's 8 fps; a bridge "
                                "needs 5 of each clip it joins")


@pytest.mark.parametrize("fit", ["crop", "pad"])
def test_at_size_the_model_sees_the_clip_as_the_file_shows_it(make_clip, fit):
    """With --size the kept frames are the clip fitted to the file's frame, and the new ones
    the model's frames stretched onto it: the model must see the clip fitted the same way
    (then stretched to its own rounded shape), or the picture jumps at the seam (640x360
    against 352x192: a 3% zoom, 23 dB between the two views of one frame; padded, 17)."""
    from types import SimpleNamespace

    from sora_cli.generation import GenerateOptions, _Source
    from sora_cli.pipeline import to_model_size

    clip = make_clip("wide.mp4", seconds=1, size="640x360", fps=8, source="testsrc2")
    pipe = SimpleNamespace(fps=8.0, context=1, temporal=4)
    for frame in [(360, 640), (300, 300)]:
        source = _Source(clip, probe(clip), pipe, (192, 352) if frame[0] == 360 else (256, 256),
                         fit, GenerateOptions(), frame=frame)
        kept = np.concatenate(list(source.frames(frame)))[-1]
        seen = to_model_size(source.tail[-1:], *frame, fit="stretch", mode="bicubic")[0]
        assert psnr(seen, kept) > 27, (frame, psnr(seen, kept))   # crop view: 22.9 dB


@pytest.mark.parametrize("fps, new_fps", [(8, 6), (8, 5), (24, 10), (8, 7.5), (30, 12)])
def test_a_lower_output_rate_picks_the_frames_change_fps_picks(fps, new_fps):
    """`--fps` below the model's drops frames as a stream; it must pick what change_fps
    does (a time exactly between two frames goes to the later one in both, and the clip's
    end gives as many frames)."""
    from sora_cli.edit import change_fps
    from sora_cli.edit import change_fps_stream

    for count in (1, 2, 16, 37):
        frames = np.arange(count, dtype=np.uint8)[:, None, None, None]
        streamed = np.stack(list(change_fps_stream(iter(frames), fps, new_fps)))
        assert np.array_equal(streamed, change_fps(frames, fps, new_fps)), streamed.ravel()


def test_extending_a_clip_with_sound_keeps_it_and_only_new_says_it_is_dropped(
        sora, tiny_bundle, tmp_path, make_clip, env1):
    loud = make_clip("loud.mp4", seconds=1, size="64x64", fps=8, audio=True)
    for fps in ("8", "16"):  # as drawn, and through frame interpolation
        out = tmp_path / f"x{fps}.mp4"
        r = sora("extend", loud, "--seconds", "0.5", "-o", out, "--model", tiny_bundle,
                 "--fps", fps, "-q", *FAST, env=env1)
        assert r.returncode == 0 and "not kept" not in r.stderr, r.stderr
        info = probe(out)
        assert info.has_audio and info.audio_codec == "aac" and info.duration == 1.5, info
    r = sora("extend", loud, "--seconds", "0.5", "--only-new", "-o", tmp_path / "new.mp4",
             "--model", tiny_bundle, "-q", *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    assert "the sound of loud.mp4 is not kept" in " ".join(r.stderr.split())
    assert not probe(tmp_path / "new.mp4").has_audio


def _bundle_copy(tiny_bundle, folder, weights=None, **config):
    """A copy of the tiny bundle with some weights set ({file: {tensor: value}}) and some
    config.json fields replaced."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    path = folder / "tiny"
    shutil.copytree(tiny_bundle, path)
    for fname, tensors in (weights or {}).items():
        state = load_file(str(path / fname))
        for name, value in tensors.items():
            state[name] = torch.full_like(state[name], value)
        save_file(state, str(path / fname))
    cfg = json.loads((path / "config.json").read_text())
    cfg.update(config)
    (path / "config.json").write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize("weights, what", [
    # finite weights (the bundle checks "ok") large enough to overflow float32 on the way
    ({"dit.safetensors": {"final.weight": 3e38}}, "latents"),
    # the decoder clamps infinities to the colour range, but the infinities of its last
    # block are NaN once normalised (inf - inf)
    ({"vae.safetensors": {"decoder.spatial.4.c2.weight": 3e38}}, "decoded frames"),
])
def test_nonfinite_generation_writes_nothing(sora, tiny_bundle, tmp_path, env1, weights, what):
    bundle = _bundle_copy(tiny_bundle, tmp_path, weights)
    assert sora("models", bundle, env=env1).returncode == 0
    out = tmp_path / "videos" / "ball.mp4"
    out.parent.mkdir()
    r = sora("generate", "a red ball bouncing on a beach", "-m", bundle, "-o", out,
             "--duration", "1", *FAST, env=env1)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1] == (f"error: the {what} came out NaN or infinite, so no video was written: "
                         "the model's weights or sampler settings are broken "
                         f"(`sora models {bundle}` checks the weights)"), r.stderr
    assert list(out.parent.iterdir()) == []   # no video, no temporary file


@pytest.mark.parametrize("config, message", [
    ({"fps": -8}, "config.json: fps must be a positive number (got -8)"),
    ({"flow": "bogus"}, "config.json: flow must be a JSON object (got a string)"),
    # a size config.json allows, but too small for the watermark every video carries
    ({"frame_size": [32, 32]}, "the model draws 32x32 frames, too small for the invisible "
                               "watermark (64 pixels a side at least)"),
])
def test_a_bad_bundle_config_fails_generate_in_one_line(sora, tiny_bundle, tmp_path, env1,
                                                        config, message):
    bundle = _bundle_copy(tiny_bundle, tmp_path, **config)
    r = sora("generate", "a red ball bouncing on a beach", "-m", bundle, "-o",
             tmp_path / "x.mp4", "--duration", "1", *FAST, env=env1)
    assert r.returncode == 1 and not (tmp_path / "x.mp4").exists(), r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr


def test_generate_warns_once_of_a_setting_the_world_leaves_out(sora, tiny_bundle, tmp_path, env1):
    prompt = "a red ball on a beach at sunset"
    r = sora("generate", prompt, "-m", tiny_bundle, "-o", tmp_path / "x.mp4", "--num", "2",
             "--duration", "0.5", *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    flat = " ".join(r.stderr.split())   # rich may wrap a long warning
    want = (f"warning: {prompt!r} names 2 settings ('beach' (ocean) and 'sunset'); a scene of "
            "the built-in world has one and this prompt is read with 'sunset'")
    assert flat.count(want) == 1, r.stderr
    r = sora("generate", prompt, "-m", tiny_bundle, "-o", tmp_path / "y.mp4", "--literal",
             "--duration", "0.5", *FAST, env=env1)
    assert r.returncode == 0 and "names 2 settings" not in r.stderr   # read as written


def test_negative_prompt_sampler_and_guidance_flags_steer_the_video_and_are_recorded(
        sora, tiny_bundle, tmp_path, env1):
    base = ["a red ball bouncing on a beach", "--model", tiny_bundle, "--duration", "1",
            "--seed", "5", *FAST]
    runs = {"plain": [], "negative": ["-n", "snow"], "heun": ["--sampler", "heun"],
            "guidance": ["-g", "1.5"]}
    frames = {}
    for name, extra in runs.items():
        out = tmp_path / f"{name}.mp4"
        r = sora("generate", *base, *extra, "-o", out, env=env1)
        assert r.returncode == 0, r.stderr
        frames[name] = read_video(out).frames
        s = probe(out).sora
        assert (s["negative"], s["sampler"]) == (
            "snow" if name == "negative" else "", "heun" if name == "heun" else "euler")
        assert (s["guidance"] == 1.5) == (name == "guidance"), s   # the bundle's is not 1.5
    for name in ("negative", "heun", "guidance"):
        assert psnr(frames[name], frames["plain"]) < 60, name    # each one changes the video
    # a negative prompt is a prompt: the policy and the vocabulary check read it too
    r = sora("generate", *base, "-n", "blood and gore", "-o", tmp_path / "x.mp4", env=env1)
    assert r.returncode == 1 and "the negative prompt" in r.stderr
    assert not (tmp_path / "x.mp4").exists()
    r = sora("generate", *base, "-n", "quantum flux capacitor", "-o", tmp_path / "y.mp4", env=env1)
    assert r.returncode == 0 and "negative prompt" in r.stderr, r.stderr
    r = sora("generate", *base, "--sampler", "rk4", "-o", tmp_path / "z.mp4", env=env1)
    assert r.returncode == 2 and "euler" in r.stderr and "Traceback" not in r.stderr


def test_extend_goes_on_in_the_clips_shape_and_its_sound_ends_with_its_picture(
        sora, tiny_bundle, tmp_path, env1):
    import imageio_ffmpeg

    # 1 s of 16:9 picture with 3 s of sound, as a phone or an editor may leave it
    src = tmp_path / "wide.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=320x180:rate=30:duration=1", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(src)], check=True)
    assert probe(src).duration == 3.0
    # a model of 128x128 frames draws 16:9 at its pixel count as 160x96
    big = _bundle_copy(tiny_bundle, tmp_path, frame_size=[128, 128])
    out = tmp_path / "wider.mp4"
    r = sora("extend", src, "more", "--seconds", "0.5", "-o", out, "--model", big, "--json",
             *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    info = probe(out)
    assert (info.width, info.height) == (160, 96) and info.frames == 8 + 4   # the model's 16:9
    assert json.loads(r.stdout)["duration"] == info.duration == 1.5
    sound = audio_samples(out)
    assert abs(len(sound) / 8000 - 1.0) < 0.05   # the clip's 1 s of picture, not its 3 s
    assert np.abs(sound).mean() > 0.05             # the sine (amplitude 1/8) is there


def test_a_storyboard_is_as_long_as_its_segments_and_warns_of_one_too_short_to_draw(
        sora, tiny_bundle, tmp_path, env1):
    # 0.3 s is 2 frames at 8 fps, under the 4 frames between prompts; rounded alone, the
    # segments made 6 + 6 + 2 + 6 = 20 frames (2.5 s) for 2.37 s asked: 19 on the film's clock
    board = tmp_path / "board.txt"
    board.write_text("0.69s: a red ball\n0.69s: a blue ball\n0.3s: a green ball\n"
                     "0.69s: a white ball\n")
    out = tmp_path / "film.mp4"
    r = sora("story", board, "-o", out, "--model", tiny_bundle, "--seed", "1", *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    assert probe(out).frames == round(2.37 * 8)
    assert "segment 3 lasts 0.3 s, 2 frame(s), shorter than the model's step" in \
        " ".join(r.stderr.split())


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_kill_or_a_hangup_cleans_up_like_ctrl_c(tiny_bundle, tmp_path, signame):
    # SIGHUP is what a closed terminal or ssh session sends: its hidden temporary was left
    cmd = [sys.executable, "-m", "sora_cli", "generate", "a red ball bouncing on a beach",
           "-o", str(tmp_path / "k.mp4"), "--model", str(tiny_bundle), "-d", "600", *FAST]
    proc = subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob(".k.*")):
        time.sleep(0.05)
    assert list(tmp_path.glob(".k.*")), "the video never started"
    number = getattr(signal, signame)
    proc.send_signal(number)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + number
    assert err.splitlines() == [f"error: stopped by {signame}"]
    assert not list(tmp_path.iterdir())


def test_a_warning_that_cannot_be_shown_does_not_stop_the_video(tiny_bundle, tmp_path):
    r = subprocess.run(["bash", "-c", f'{sys.executable} -m sora_cli generate "a purple elephant '
                                      f'on a beach" -o e.mp4 --model {tiny_bundle} -d 1 '
                                      f'{" ".join(FAST)} 2>/dev/full'],
                       cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0
    assert r.stdout.startswith("e.mp4  (1.00 s") and probe(tmp_path / "e.mp4").frames == 8


def test_the_pipeline_checks_what_it_is_asked_from_python(tiny_bundle, tmp_path):
    # Used without sora_cli.generation, it drew a refused prompt, a 0 s or -1 s clip (one
    # frame) and a negative seed without a word
    from sora_cli.errors import SoraUsageError
    from sora_cli.generation import GenerateOptions, batch, load_pipeline
    from sora_cli.guard import PromptRefused, check_prompt

    pipe = load_pipeline(GenerateOptions(model=str(tiny_bundle), device="cpu", steps=2))
    with pytest.raises(PromptRefused, match="violence"):
        pipe.generate("a graphic beheading with gore", 1, seed=1)
    with pytest.raises(PromptRefused, match="the negative prompt"):
        pipe.generate("a red ball", 1, seed=1, negative="a graphic beheading with gore")
    for seconds in (0, -1, float("nan"), "2", 1e9):    # 1e9 s: killed for its memory
        with pytest.raises(SoraUsageError, match="above 0 and at most 3600"):
            pipe.generate("a red ball", seconds)
    with pytest.raises(SoraUsageError, match="at least one span"):
        pipe.story([])
    for seed in (-1, 2**63, 1.5, True):
        with pytest.raises(SoraUsageError, match="seed must be an integer"):
            pipe.generate("a red ball", 1, seed=seed)
    with pytest.raises(SoraUsageError, match="must be text"):
        pipe.generate(None, 1)
    with pytest.raises(SoraUsageError, match="must be text"):
        check_prompt(None)
    for size in ((0, 0), (-16, 64), (100000, 100000), "256x256", (64, float("nan"))):
        with pytest.raises(SoraUsageError, match="size must be"):
            pipe.generate("a red ball", 1, size=size)
    frames = pipe.generate("a red ball", np.float32(0.5), seed=np.int64(3))
    assert next(iter(frames)).shape[1:] == (64, 64, 3)
    # a list of rows is a job file
    summary = batch(["a red ball", {"prompt": "a blue car", "seed": 4, "duration": 0.5}],
                    tmp_path / "b", GenerateOptions(model=str(tiny_bundle), device="cpu",
                                                    steps=2, duration=0.5, credentials=False))
    assert summary.done == 2
    assert probe(tmp_path / "b" / "0002-a-blue-car-s4.mp4").frames == 4


def test_options_of_the_wrong_type_are_named_from_python(tmp_path):
    from sora_cli.errors import SoraUsageError
    from sora_cli.generation import GenerateOptions, bridge, generate
    from sora_cli.guard import check_prompts

    for bad, words in ((dict(steps="2"), "--steps must be a whole number"),
                       (dict(steps=2.5), "--steps must be a whole number"),
                       (dict(seed=True), "--seed must be a whole number"),
                       (dict(guidance="3"), "--guidance must be a number"),
                       (dict(size=(256, 256)), '--size must be text such as "256x256"'),
                       (dict(negative=None), "the negative prompt must be text")):
        with pytest.raises(SoraUsageError, match=words):
            GenerateOptions(**bad).validate()
    GenerateOptions(duration=np.float32(1), steps=np.int64(2)).validate()
    with pytest.raises(SoraUsageError, match="the prompt must be text"):
        generate(123, tmp_path / "x.mp4")
    with pytest.raises(SoraUsageError, match="the prompt is '-'"):
        generate("-", tmp_path / "x.mp4")
    with pytest.raises(SoraUsageError, match="bridge takes a list of clips"):
        bridge("a.mp4", tmp_path / "x.mp4")
    with pytest.raises(SoraUsageError, match="--overlap must be a number"):
        bridge(["a.mp4", "b.mp4"], tmp_path / "x.mp4", overlap="0.5")
    # one string's letters were screened one by one: "a naked person" passed
    with pytest.raises(SoraUsageError, match="use check_prompt for one"):
        check_prompts("a naked person")
    assert list(tmp_path.iterdir()) == []
