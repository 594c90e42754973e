"""Training: every component learns on rendered world clips, resume is bit-exact, a bundle
exported from tiny runs loads and samples in a fresh process, and a real 2-process torchrun
keeps DDP ranks identical. Tiny models at 32-64 px so the file runs in a minute or two."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from conftest import run_cli as _run_cli  # noqa: E402

# Tiny models run fastest on one thread, and this machine is shared: no thread oversubscription.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def run_cli(*args, **kw):
    return _run_cli(*args, env=ONE_THREAD, **kw)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

TINY_VAE = {"z_channels": 4, "channels": [8, 16, 16], "temporal_channels": 16,
            "temporal_blocks": 1}
TINY_CLIP = {"width": 32, "layers": 1, "heads": 2, "embed_dim": 32, "image_size": 32,
             "vision_width": 32, "vision_layers": 1, "patch_size": 8}
TINY_DIT = {"width": 32, "depth": 2, "heads": 2, "mlp_ratio": 2.0}
SIZE, FRAMES, FPS = 64, 5, 4


def losses(run: Path) -> list[float]:
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]
    return [r["loss"] for r in rows]


def falls(values: list[float], k: int = 5) -> bool:
    head, tail = values[:k], values[-k:]
    return sum(tail) / len(tail) < 0.8 * sum(head) / len(head)


def cfg(out: Path, steps: int, batch: int, lr: float, **kw):
    from sora_cli.train.loop import TrainConfig

    return TrainConfig(steps=steps, batch_size=batch, lr=lr, warmup=3, out=str(out), log_every=1,
                       device="cpu", workers=0, checkpoint_every_minutes=60, **kw)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    from sora_cli.train.vae import train_vae

    out = tmp_path_factory.mktemp("runs") / "vae"
    summary = train_vae(cfg(out, 40, 2, 3e-3), size=SIZE, frames=FRAMES, fps=FPS,
                        arch=TINY_VAE, eval_clips=2)
    return out, summary


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    from sora_cli.train.clip import train_clip

    out = tmp_path_factory.mktemp("runs") / "clip"
    summary = train_clip(cfg(out, 40, 32, 2e-3), arch=TINY_CLIP, eval_frames=40)
    return out, summary


@pytest.fixture(scope="module")
def latents(vae_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "latents"
    r = run_cli("data", "encode", "--vae", vae_run[0], "--count", 24, "--size", SIZE,
                "--frames", FRAMES, "--fps", FPS, "--shard-size", 10, "--device", "cpu",
                "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout)


def test_vae_loss_falls_and_stats_are_recorded(vae_run):
    out, summary = vae_run
    assert falls(losses(out)), losses(out)
    assert summary["step"] == 40 and summary["psnr"] > 10
    saved = json.loads((out / "model.json").read_text())
    assert len(saved["config"]["latent_mean"]) == TINY_VAE["z_channels"]
    assert all(s > 0 for s in saved["config"]["latent_std"])
    # the periodic/final sample: original | reconstruction side by side, a real MP4
    from sora_cli.video_io import probe

    info = probe(summary["sample"])
    assert (info.width, info.height, info.frames) == (2 * SIZE, SIZE, FRAMES)


def test_init_starts_a_new_run_from_trained_weights(vae_run, tmp_path):
    from sora_cli.train.runs import warm_start
    from sora_cli.train.vae import train_vae

    # the architecture comes with the weights
    # sample_every=-1: no sample clip (a GPU box without ffmpeg), the figures still come
    # views=4: the one step trains on the clip four ways (views_of is tested on its own)
    more = train_vae(cfg(tmp_path / "more", 1, 1, 1e-9, sample_every=-1), size=SIZE,
                     frames=FRAMES, fps=FPS, eval_clips=1, init=str(vae_run[0]), views=4)
    assert json.loads((tmp_path / "more" / "model.json").read_text())["views"] == 4
    assert "sample" not in more and not (tmp_path / "more" / "samples").exists()
    assert more["psnr"] > 10
    arch0, w0 = warm_start("vae", vae_run[0])
    arch1, w1 = warm_start("vae", tmp_path / "more")
    assert arch1["z_channels"] == arch0["z_channels"] == TINY_VAE["z_channels"]
    assert max(float((w1[k] - w0[k]).abs().max()) for k in w0) < 1e-5


def test_a_wider_latent_from_a_bundle_keeps_what_fits_and_generates(tiny_bundle, tmp_path):
    # the way to a wider latent in a short GPU lease: the VAE and then the DiT go on from the
    # shipped ones, and only the tensors the latent width shapes start fresh
    from sora_cli.bundle import load_bundle
    from sora_cli.generation import GenerateOptions, generate
    from sora_cli.train.dit import train_dit
    from sora_cli.train.export import export_runs
    from sora_cli.train.runs import warm_start
    from sora_cli.train.vae import train_vae
    from sora_cli.video_io import read_video

    tb = tiny_bundle
    wide = TINY_VAE["z_channels"] * 2
    _, w0 = warm_start("vae", tb)
    s = train_vae(cfg(tmp_path / "vae", 1, 1, 1e-9, sample_every=-1), size=64, frames=9, fps=8,
                  arch={"z_channels": wide}, eval_clips=1, init=str(tb))
    conf, w1 = warm_start("vae", tmp_path / "vae")
    assert conf["z_channels"] == wide and len(conf["latent_std"]) == wide
    assert s["psnr"] > 5
    widened = sorted(k for k in w1 if w1[k].shape != w0[k].shape)
    assert widened and all(k.startswith(("encoder.conv_out", "decoder.conv_in")) for k in widened)
    same = [k for k in w0 if k not in widened]
    assert max(float((w1[k] - w0[k]).abs().max()) for k in same) < 1e-5
    # the DiT keeps its trunk on the wider latent
    _, d0 = warm_start("dit", tb)
    train_dit(cfg(tmp_path / "dit", 1, 2, 1e-9, sample_every=-1), str(tmp_path / "vae"),
              str(tb), size=64, frames=9, fps=8, init=str(tb), eval_clips=0)
    dconf, d1 = warm_start("dit", tmp_path / "dit")
    assert dconf["in_channels"] == wide
    resized = {k for k in d1 if d1[k].shape != d0[k].shape}
    assert resized and len(resized) < len(d1) // 4
    kept = [k for k in d0 if k not in resized]
    assert max(float((d1[k] - d0[k]).abs().max()) for k in kept) < 1e-5
    bundle = export_runs(tmp_path / "models" / "wide", vae=str(tmp_path / "vae"), clip=str(tb),
                         dit=str(tmp_path / "dit"))
    assert load_bundle(bundle).vae.cfg.z_channels == wide
    out = tmp_path / "wide.mp4"
    generate("a red ball bouncing on a beach", out, GenerateOptions(
        duration=1, steps=2, credentials=False, model=str(bundle), device="cpu", seed=1))
    frames = read_video(out).frames
    assert len(frames) > 1 and frames[0].shape == (64, 64, 3)


def test_a_changed_architecture_from_init_is_checked(tiny_bundle, tmp_path):
    tb = tiny_bundle
    r = run_cli("train", "vae", "--init", tb, "--decoder-only", "--arch", '{"z_channels": 8}',
                "--out", tmp_path / "v", "--steps", 1, "--device", "cpu")
    assert r.returncode == 2 and "drop --arch" in r.stderr and "Traceback" not in r.stderr
    for part, extra in (("vae", ()), ("dit", ("--vae", tb, "--clip", tb))):
        r = run_cli("train", part, *extra, "--init", tb, "--arch", '{"no_such_field": 1}',
                    "--out", tmp_path / part, "--steps", 1, "--device", "cpu")
        assert r.returncode == 2 and "no_such_field" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and not (tmp_path / part).exists()
    r = run_cli("train", "clip", "--init", tb, "--arch", '{"width": 64}', "--out", tmp_path / "c",
                "--steps", 1, "--device", "cpu")
    assert r.returncode == 2 and "drop one of the two" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "c").exists()
    # a wider DiT keeps little of init: the run says how little instead of hiding it
    r = run_cli("train", "dit", "--vae", tb, "--clip", tb, "--init", tb, "--out", tmp_path / "d",
                "--arch", '{"width": 48, "heads": 3}', "--steps", 1, "--device", "cpu",
                "--size", 64, "--frames", 9, "--fps", 8, "--workers", 0, "--sample-every", -1,
                "--eval-clips", 1)
    assert r.returncode == 0, r.stderr
    assert re.search(r"\b\d+ of \d+ dit tensors kept \(0 widened\), \d+ start fresh", r.stderr)


def test_vae_views_are_the_clip_mirrored_and_reversed():
    from sora_cli.train.vae import views_of

    x = torch.arange(2 * 3 * 5 * 4 * 6, dtype=torch.float32).view(2, 3, 5, 4, 6)
    assert torch.equal(views_of(x, 1), x)
    v = views_of(x, 4)
    assert v.shape == (8, 3, 5, 4, 6)
    assert torch.equal(v[:2], x)
    assert torch.equal(v[2:4, :, :, :, 0], x[:, :, :, :, -1])    # mirrored left to right
    assert torch.equal(v[4:6, :, 0], x[:, :, -1])                 # reversed in time
    assert torch.equal(v[6:8, :, 0, :, 0], x[:, :, -1, :, -1])    # both
    assert len({tuple(c.flatten().tolist()) for c in v}) == 8     # all different clips


def test_clip_loss_falls_and_zero_shot_is_reported(clip_run, tmp_path):
    out, summary = clip_run
    assert falls(losses(out)), losses(out)
    zs = summary["zero_shot"]
    assert zs["frames"] == 40
    for attr in ("color", "setting", "shape"):
        assert 0.0 <= zs[attr] <= 1.0
    # settings are whole-frame colours: even 40 tiny steps beat chance (1/9) clearly
    assert zs["setting"] > 2 * zs["chance"]["setting"]
    r = run_cli("train", "clip", "--eval-only", "--out", out, "--eval-frames", 40,
                "--device", "cpu", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == zs  # same held-out frames, same EMA weights


def test_clip_on_frame_grids_records_its_view_and_scores_a_video_by_its_grid(tiny_bundle,
                                                                            tmp_path):
    import torch.nn.functional as F

    from sora_cli.bundle import load_bundle
    from sora_cli.nn.text import clip_score, frame_grid, prepare_images, tokenize
    from sora_cli.train.clip import train_clip
    from sora_cli.train.runs import load_clip_run

    out = tmp_path / "grid"
    s = train_clip(cfg(out, 12, 16, 2e-3), eval_frames=20, init=str(tiny_bundle),
                   vision_frames=4)
    assert json.loads((out / "model.json").read_text())["config"]["vision_frames"] == 4
    assert 0.0 <= s["zero_shot"]["motion"] <= 1.0 and s["zero_shot"]["chance"]["motion"] == round(1 / 9, 4)
    model, tcfg = load_clip_run(out)
    assert tcfg.vision_frames == 4
    torch.manual_seed(0)
    video = torch.rand(2, 3, 9, 32, 32) * 2 - 1
    prompts = ["a red ball moving left"] * 2
    with torch.no_grad():
        img = model.encode_image(prepare_images(frame_grid(video, 4), tcfg.image_size))
        txt = model.encode_text(tokenize(model.tokenizer, prompts))
    want = (F.normalize(img, dim=-1) * F.normalize(txt, dim=-1)).sum(-1)
    assert torch.allclose(clip_score(model, video, prompts), want, atol=1e-5)
    # the frame CLIP it started from scores every frame instead
    frames_only = load_bundle(tiny_bundle).text
    assert frames_only.cfg.vision_frames == 1
    assert not torch.allclose(clip_score(frames_only, video, prompts), want)
    # a bundle carries the view: it loads with it and says so
    bundle = tmp_path / "models" / "grid"
    r = run_cli("train", "export", bundle, "--vae", tiny_bundle, "--clip", out, "--dit",
                tiny_bundle, "-q")
    assert r.returncode == 0, r.stderr
    b = load_bundle(bundle)
    assert b.config.text.vision_frames == 4
    assert torch.allclose(clip_score(b.text, video, prompts), want, atol=1e-2)   # bf16 weights
    r = run_cli("models", str(bundle))
    assert r.returncode == 0 and "CLIP trained on 4-frame grids" in r.stdout, r.stdout
    # benchmarks/text_motion.py reads both towers: a caption pair the same way through either
    # path, one tower against itself reads 1, the new one has moved
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "text_motion.py"
    spec = importlib.util.spec_from_file_location("text_motion", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    first, second = bench.captions()[0]
    tok, pooled = bench.pair_cosines(b.text, first, second)
    assert -1 <= tok <= 1 and -1 <= pooled <= 1
    assert bench.drift(frames_only, frames_only) == pytest.approx((1.0, 1.0), abs=1e-5)
    assert bench.drift(frames_only, b.text)[1] < 0.9999
    r = subprocess.run([sys.executable, str(path), str(tiny_bundle), str(out)],
                       capture_output=True, text=True, env={**os.environ, **ONE_THREAD})
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(" vs ") == 2 * len(bench.captions()) and "same captions" in r.stdout


def test_motion_word_gap_is_zero_for_a_dit_deaf_to_text_and_its_benchmark_prints_it(
        tiny_bundle):
    # the measure of whether a DiT reads motion words: the same clips and noise under their
    # own caption and their motion twin's; a DiT that ignores text must score both the same
    import copy

    import torch

    from sora_cli.bundle import load_bundle
    from sora_cli.train.dit import motion_word_gap
    from sora_cli.world.sampler import OPPOSITE

    b = load_bundle(tiny_bundle)
    r = motion_word_gap(b.dit, b.vae, b.text, 64, 9, 8, count=8, times=(0.5, 0.9))
    assert r["clips"] == 8 and set(r["gap_by_motion"]) <= set(OPPOSITE) and r["gap_by_motion"]
    assert r["gap"] == pytest.approx(r["twin_caption_loss"] - r["own_caption_loss"], abs=2e-5)
    assert r["gap"] != 0          # the twin's caption differs, and this DiT's text path reads it
    deaf = copy.deepcopy(b.dit)
    with torch.no_grad():
        for name, p in deaf.named_parameters():
            if any(key in f".{name}" for key in deaf.TEXT_PATH):
                p.zero_()
    r = motion_word_gap(deaf, b.vae, b.text, 64, 9, 8, count=8, times=(0.5, 0.9))
    assert r["gap"] == 0 and set(r["gap_by_t"].values()) == {0}
    assert r["own_caption_loss"] > 0
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "motion_words.py"
    out = subprocess.run([sys.executable, str(path), str(tiny_bundle), "--clips", "4"],
                         capture_output=True, text=True, env={**os.environ, **ONE_THREAD})
    assert out.returncode == 0, out.stderr
    assert "twin's caption" in out.stdout and "gap by motion" in out.stdout, out.stdout


@pytest.mark.parametrize("args, words", [
    (["--vision-frames", "3"], "square number"),
    (["--vision-frames", "9", "--frames", "5"], "at least that many --frames per clip, got 5"),
])
def test_bad_vision_frames_are_one_line_usage_errors(args, words, tmp_path):
    r = run_cli("train", "clip", "--out", tmp_path / "run", "--steps", 1, "--device", "cpu", *args)
    assert r.returncode == 2, r.stderr
    assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "run").exists()


def test_latent_cache_is_complete_and_resumable(latents, vae_run):
    out, s = latents
    assert s["count"] == 24 and s["complete"] and len(s["shards"]) == 3
    assert s["latent_shape"] == [TINY_VAE["z_channels"], 2, SIZE // 16, SIZE // 16]
    from sora_cli.train.latents import LatentShards

    ds = LatentShards(out)
    assert len(ds) == 24 and isinstance(ds[5]["caption"], str) and ds[5]["caption"]
    # an interrupted encode: a shard lost -> the same command redoes only that one
    (out / "shard-00001.safetensors").unlink()
    from sora_cli.train.latents import encode_latents

    # ... rendered by two worker processes this time: the same clips, in the same order
    again = encode_latents(out, str(vae_run[0]), 24, size=SIZE, frames=FRAMES, fps=FPS,
                           shard_size=10, device="cpu", workers=2)
    assert again["encoded_now"] == 10
    redone = LatentShards(out)
    assert torch.equal(redone.latents, ds.latents) and redone.captions == ds.captions
    # the batched fetch the DiT loader uses gives what item-by-item collation gives
    from sora_cli.train.data import collate

    whole = collate(ds.__getitems__([3, 17, 0]))
    single = collate([ds[3], ds[17], ds[0]])
    assert torch.equal(whole["latents"], single["latents"])
    assert whole["caption"] == single["caption"]


def dit_args(vae, clip, lat, out, steps, *extra):
    return ["train", "dit", "--vae", vae, "--clip", clip, "--latents", lat, "--out", out,
            "--steps", steps, "--batch-size", 4, "--lr", 3e-3, "--warmup", 3, "--device", "cpu",
            "--arch", json.dumps(TINY_DIT), "--workers", 0, "--log-every", 1, "--json", *extra]


def train_dit_here(vae, clip, lat, out, **kw):
    from sora_cli.train.dit import train_dit

    return train_dit(cfg(out, 40, 4, 3e-3, **kw), str(vae), str(clip), latents=str(lat),
                     arch=TINY_DIT)


def test_dit_loss_falls_resume_is_bit_exact_and_export_loads_in_a_fresh_process(
        vae_run, clip_run, latents, tmp_path):
    vae, clip, lat = vae_run[0], clip_run[0], latents[0]
    straight, paused = tmp_path / "straight", tmp_path / "paused"
    whole = train_dit_here(vae, clip, lat, straight)
    assert falls(losses(straight), k=8), losses(straight)  # flow-matching loss is noisy
    assert Path(whole["sample"]).exists()  # the end-of-run sample clip
    # the held-out flow loss: fixed clips, noise and times, so the same weights give the same
    # figure; the trained DiT beats an untrained one (zero output: loss = E|noise - x0|^2)
    from sora_cli.nn.dit import DiT
    from sora_cli.train.dit import evaluate_dit
    from sora_cli.train.runs import load_dit_run, load_text_run, load_vae_run

    assert set(whole["heldout_loss_by_t"]) == {"0.1", "0.3", "0.5", "0.7", "0.9"}
    v, text = load_vae_run(vae)[0], load_text_run(clip)[0]
    trained, dcfg, _ = load_dit_run(straight)
    again = evaluate_dit(trained, v, text, SIZE, FRAMES, FPS, count=whole["eval_clips"])
    assert again["heldout_loss"] == whole["heldout_loss"]
    untrained = evaluate_dit(DiT(dcfg), v, text, SIZE, FRAMES, FPS, count=whole["eval_clips"])
    assert 0 < whole["heldout_loss"] < untrained["heldout_loss"]

    half = train_dit_here(vae, clip, lat, paused, stop_at=20)
    assert half["step"] == 20 and "sample" not in half  # a pause, not the end
    # without --resume an existing run is refused (before any model loads), not overwritten
    r = run_cli(*dit_args(vae, clip, lat, paused, 40))
    assert r.returncode == 1 and "--resume" in r.stderr and "Traceback" not in r.stderr
    # --resume keeps the run's architecture: another --arch is refused, not dropped unsaid
    # (the same one again, as in the command below, is fine)
    args = dit_args(vae, clip, lat, paused, 40, "--resume")
    args[args.index("--arch") + 1] = json.dumps({**TINY_DIT, "depth": 3})
    r = run_cli(*args)
    assert r.returncode == 2 and '{"depth": 2}' in r.stderr and "drop --arch" in r.stderr
    assert "Traceback" not in r.stderr
    bundle = tmp_path / "models" / "tiny"
    r = run_cli(*dit_args(vae, clip, lat, paused, 40, "--resume", "--export", bundle))
    assert r.returncode == 0, r.stderr
    resumed = json.loads(r.stdout)
    assert resumed["steps_this_run"] == 20
    assert losses(paused) == losses(straight)  # every step's loss, bit for bit
    assert resumed["params_sha256"] == whole["params_sha256"]
    for name in ("model", "ema", "optimizer"):
        a = (straight / "ckpt-00000040" / f"{name}.safetensors").read_bytes()
        b = (paused / "ckpt-00000040" / f"{name}.safetensors").read_bytes()
        assert a == b, name

    # --export wrote a bundle; a fresh process loads it strictly, samples, writes an MP4
    assert resumed["bundle"] == str(bundle)
    for name in ("config.json", "vae.safetensors", "text.safetensors", "dit.safetensors",
                 "MODEL_CARD.md"):
        assert (bundle / name).exists(), name
    assert "sora train dit" in (bundle / "MODEL_CARD.md").read_text()
    assert "flow loss" in (bundle / "MODEL_CARD.md").read_text()
    assert "on 16 held-out clips" in (bundle / "MODEL_CARD.md").read_text()
    clip_out = tmp_path / "sample.mp4"
    code = f"""
import torch
from sora_cli.bundle import load_bundle
from sora_cli.sampling import sample
from sora_cli.video_io import write_video
from sora_cli.nn.vae import tensor_to_video
b = load_bundle({str(bundle)!r})
cond = b.text(["a red ball bouncing on a grass field"])
uncond = b.text([""])
C = b.vae.cfg.z_channels
z = sample(b.dit, (1, C, 2, {SIZE // 16}, {SIZE // 16}), cond, uncond, steps=3,
           generator=torch.Generator().manual_seed(0))
video = b.vae.decode(b.vae.denormalize_latents(z))
write_video({str(clip_out)!r}, tensor_to_video(video)[0], {FPS})
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300, env={**os.environ, **ONE_THREAD})
    assert p.returncode == 0, p.stderr
    from sora_cli.video_io import probe

    info = probe(clip_out)
    assert (info.width, info.height, info.frames) == (SIZE, SIZE, FRAMES)


def test_dit_trains_on_windows_of_longer_clips(vae_run, clip_run, tmp_path):
    # 9-frame clips are 3 latent frames; windows of 2 start at 0 or 1
    vae, clip = vae_run[0], clip_run[0]
    lat = tmp_path / "long"
    r = run_cli("data", "encode", "--vae", vae, "--count", 8, "--size", SIZE, "--frames", 9,
                "--fps", FPS, "--device", "cpu", "--out", lat, "-q")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "dit"
    r = run_cli(*dit_args(vae, clip, lat, out, 12, "--window", 2, "--eval-clips", 2,
                          "--time-shift", 2))
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["step"] == 12 and s["heldout_loss"] > 0
    saved = json.loads((out / "model.json").read_text())
    assert saved["window"] == 2 and saved["frames"] == 9 and saved["time_shift"] == 2
    rows = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines() if x.strip()]
    assert all(row["loss"] == row["loss"] for row in rows)  # no NaN from the cut windows
    # the held-out loss of continuation windows: each clip's last 2 latents, the first given
    from sora_cli.train.dit import evaluate_dit
    from sora_cli.train.runs import load_dit_run, load_text_run, load_vae_run

    v, text, dit = load_vae_run(vae)[0], load_text_run(clip)[0], load_dit_run(out)[0]
    ext = [evaluate_dit(dit, v, text, SIZE, 9, FPS, count=2, window=2, context=1)
           for _ in range(2)]
    assert ext[0] == ext[1] and ext[0]["heldout_loss"] > 0
    t2v = evaluate_dit(dit, v, text, SIZE, 9, FPS, count=2)
    assert t2v["heldout_loss"] != ext[0]["heldout_loss"]
    with pytest.raises(ValueError, match="context"):
        evaluate_dit(dit, v, text, SIZE, 9, FPS, count=2, window=2, context=2)
    # its bundle generates windows as long as those it trained on, not the 9-frame clips
    bundle = tmp_path / "bundle"
    r = run_cli("train", "export", bundle, "--vae", vae, "--clip", clip, "--dit", out, "-q")
    assert r.returncode == 0, r.stderr
    config = json.loads((bundle / "config.json").read_text())
    assert config["clip_frames"] == 5 and config["name"] == "bundle"   # the folder's name
    assert "--window 2 --time-shift 2.0" in config["training"]["dit"]["command"]
    named = tmp_path / "named"
    r = run_cli("train", "export", named, "--vae", vae, "--clip", clip, "--dit", out,
                "--name", "default", "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads((named / "config.json").read_text())["name"] == "default"
    r = run_cli("train", "export", tmp_path / "blank", "--vae", vae, "--clip", clip, "--dit", out,
                "--name", " ", "-q")
    assert r.returncode == 2 and "--name" in r.stderr and not (tmp_path / "blank").exists()
    for bad, why in (((1,), "at least 2"), ((4,), "longer than the clips"),
                     ((2, "--time-shift", 0), "--time-shift must be a positive")):
        r = run_cli(*dit_args(vae, clip, lat, tmp_path / f"bad{bad[0]}", 2, "--window", *bad))
        assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / f"bad{bad[0]}" / "model.json").exists()  # a retry needs no --resume


def test_ddp_two_processes_keep_identical_parameters(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **ONE_THREAD}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "sora_cli", "train", "vae", "--out", str(out), "--steps", "4",
           "--batch-size", "1", "--size", "32", "--frames", "5", "--fps", "4",
           "--device", "cpu", "--workers", "0", "--arch", json.dumps(TINY_VAE),
           "--eval-clips", "1", "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout.strip().splitlines()[-1])  # rank 0 alone prints
    assert summary["world_size"] == 2 and summary["step"] == 4
    ranks = [json.loads((out / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["params_sha256"] == ranks[1]["params_sha256"] == summary["params_sha256"]
    assert (out / "ckpt-00000004" / "rng-1.safetensors").exists()  # each rank's RNG is kept


def test_ddp_ranks_get_disjoint_batches():
    from sora_cli.train.data import step_indices

    seen = [set(step_indices(s, r, 2, 3)) for s in range(4) for r in range(2)]
    assert len(set().union(*seen)) == 24
    finite = [step_indices(s, r, 2, 3, length=12, seed=1) for s in range(2) for r in range(2)]
    assert sorted(i for b in finite for i in b) == list(range(12))  # one epoch, no repeats


def test_bad_training_requests_are_one_line_errors(tmp_path):
    r = run_cli("train", "vae", "--out", tmp_path / "v", "--frames", 6, "--steps", 1,
                "--device", "cpu")
    assert r.returncode == 2 and "4k+1" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("train", "vae", "--out", tmp_path / "v", "--views", 3, "--steps", 1,
                "--device", "cpu")
    assert r.returncode == 2 and "--views must be 1, 2 or 4" in r.stderr
    r = run_cli("train", "dit", "--vae", tmp_path / "nothing", "--clip", tmp_path / "none",
                "--out", tmp_path / "d", "--device", "cpu")
    assert r.returncode == 1 and f"no such folder: {tmp_path / 'nothing'}; give a run folder" \
        in " ".join(r.stderr.split())
    (tmp_path / "empty").mkdir()
    r = run_cli("train", "dit", "--vae", tmp_path / "empty", "--clip", tmp_path / "empty",
                "--out", tmp_path / "d", "--device", "cpu")
    assert r.returncode == 1 and "is not a training run folder (no model.json); give" in \
        " ".join(r.stderr.split()) and not (tmp_path / "d").exists()
    from sora_cli.errors import SoraUsageError
    from sora_cli.nn.vae import VAEConfig
    from sora_cli.train.loop import make_config, parse_arch

    with pytest.raises(SoraUsageError, match="no_such_field"):
        make_config(VAEConfig, parse_arch('{"no_such_field": 1}'))
    with pytest.raises(SoraUsageError, match="JSON"):
        parse_arch("{width: 1")
    r = run_cli("data", "encode", "--out", tmp_path / "lat")
    assert r.returncode == 2 and "--vae" in r.stderr
    for args, message in ((("--decoder-only",), "--decoder-only needs --init"),
                          (("--latent-noise", 0.3), "--latent-noise needs --decoder-only"),
                          (("--decoder-only", "--latent-noise", -1), "must be 0 or more")):
        r = run_cli("train", "vae", "--out", tmp_path / "dec", "--steps", 1, "--device", "cpu",
                    *args)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
        assert not (tmp_path / "dec").exists()


def test_a_dit_trained_on_a_bundles_vae_and_text_exports_with_them(tiny_bundle, tmp_path):
    # the way to spend a short GPU lease: train only the DiT further, on the shipped parts
    from sora_cli.bundle import load_bundle
    from sora_cli.train.dit import train_dit
    from sora_cli.train.export import export_runs

    train_dit(cfg(tmp_path / "dit", 2, 2, 1e-4, sample_every=-1), str(tiny_bundle),
              str(tiny_bundle), size=64, frames=9, fps=8, init=str(tiny_bundle))
    out = export_runs(tmp_path / "models" / "more", vae=str(tiny_bundle),
                      clip=str(tiny_bundle), dit=str(tmp_path / "dit"))
    before = json.loads((tiny_bundle / "config.json").read_text())["training"]
    after = json.loads((out / "config.json").read_text())["training"]
    # the parts taken over keep the record of how they were trained; the DiT gets its own
    assert after["vae"] == before["vae"] and after["clip"] == before["clip"]
    assert f"--init {tiny_bundle}" in after["dit"]["command"]
    assert after["dit"]["summary"]["step"] == 2
    assert f"--vae {tiny_bundle}" in after["dit"]["command"]
    assert load_bundle(out).config.dit == load_bundle(tiny_bundle).config.dit


def test_a_dit_grows_text_inputs_from_a_bundle_and_its_bundle_generates(tiny_bundle, tmp_path):
    # --text-inputs on a DiT that goes on from a bundle: the bundle's weights load, the new
    # ones start at zero, and the exported bundle feeds its DiT the wider text tokens
    from sora_cli.bundle import load_bundle
    from sora_cli.video_io import read_video

    tb, run = tiny_bundle, tmp_path / "dit"
    r = run_cli("train", "dit", "--vae", tb, "--clip", tb, "--init", tb, "--size", 64,
                "--frames", 9, "--fps", 8, "--out", run, "--steps", 2, "--batch-size", 2,
                "--lr", 1e-3, "--warmup", 1, "--device", "cpu", "--workers", 0,
                "--sample-every", -1, "--eval-clips", 1, "--text-inputs", "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "model.json").read_text())["config"]["text_inputs"] is True
    out = tmp_path / "models" / "wide"
    r = run_cli("train", "export", out, "--vae", tb, "--clip", tb, "--dit", run, "-q")
    assert r.returncode == 0, r.stderr
    b = load_bundle(out)
    assert b.config.dit.text_inputs and b.text.with_inputs
    assert b.text(["a red ball"])[0].shape[-1] == 2 * b.config.text.width
    assert b.dit.text_in[1].weight.abs().sum() > 0          # trained away from its zero start
    assert not load_bundle(tb).text.with_inputs         # a bundle without them is as it was
    r = run_cli("models", str(out))
    assert r.returncode == 0 and "reads the text tower's inputs too" in r.stdout, r.stdout
    mp4 = tmp_path / "wide.mp4"
    r = run_cli("generate", "a red ball moving left on a grass field", "--model", out, "-o", mp4,
                "--duration", 1, "--steps", 2, "--no-credentials")
    assert r.returncode == 0, r.stderr
    assert read_video(mp4).frames.shape[0] == 8


def test_text_path_only_trains_the_text_path_and_leaves_the_rest_of_the_dit(tiny_bundle, tmp_path):
    # adapting a trained DiT to a new text tower: only the projections of the text features and
    # the cross-attention move, so how the DiT draws stays what it was
    from sora_cli.bundle import load_bundle
    from sora_cli.nn.dit import DiT
    from sora_cli.train.runs import load_dit_run

    tb, run = tiny_bundle, tmp_path / "dit"
    args = ["train", "dit", "--vae", tb, "--clip", tb, "--size", 64, "--frames", 9, "--fps", 8,
            "--steps", 3, "--batch-size", 2, "--lr", 1e-2, "--warmup", 1, "--device", "cpu",
            "--workers", 0, "--sample-every", -1, "--eval-clips", 0, "-q"]
    r = run_cli(*args, "--out", run, "--init", tb, "--text-path-only")
    assert r.returncode == 0, r.stderr
    assert json.loads((run / "model.json").read_text())["text_path_only"] is True
    before = load_bundle(tb).dit.state_dict()
    after = load_dit_run(run)[0].state_dict()
    path = {k for k in after if any(key in f".{k}" for key in DiT.TEXT_PATH)}
    assert any(".cross." in k for k in path) and "text_proj.0.weight" in path
    assert len(path) < len(after) / 2
    for k, v in after.items():
        assert torch.equal(v, before[k].float()) == (k not in path), k
    r = run_cli(*args, "--out", tmp_path / "bare", "--text-path-only")
    assert r.returncode == 2 and "needs --init" in r.stderr, r.stderr
    r = run_cli(*args, "--out", run, "--init", tb, "--resume")
    assert r.returncode == 2 and "resume it the same way" in r.stderr, r.stderr


def test_a_run_resumes_only_with_the_training_mode_it_was_started_with(tmp_path):
    # half a run trained one way and half another is neither; the message names the old flags
    from sora_cli.errors import SoraUsageError
    from sora_cli.train.loop import check_resumed_alike, run_config_path

    run = tmp_path / "run"
    run.mkdir()
    check_resumed_alike(run, True, decoder_only=(True, False))      # no model.json yet
    run_config_path(run).write_text(json.dumps({"decoder_only": True, "latent_noise": 0.5}))
    check_resumed_alike(run, True, decoder_only=(True, False), latent_noise=(0.5, 0.0))
    check_resumed_alike(run, False, decoder_only=(False, False), latent_noise=(0.0, 0.0))
    with pytest.raises(SoraUsageError, match=r"started with --decoder-only --latent-noise 0\.5;"):
        check_resumed_alike(run, True, decoder_only=(True, False), latent_noise=(0.2, 0.0))
    run_config_path(run).write_text(json.dumps({"task": "dit"}))   # recorded before the flag
    check_resumed_alike(run, True, text_path_only=(False, False))
    with pytest.raises(SoraUsageError, match="started without --text-path-only;"):
        check_resumed_alike(run, True, text_path_only=(True, False))


def test_a_decoder_trained_alone_keeps_the_latent_space_and_ships_with_the_dit(
        tiny_bundle, vae_run, tmp_path):
    # the CPU's way to better clips: the DiT's latents stay what they were, only their decoding
    # gets better, so the bundle's DiT (and any DiT run on that VAE) goes with the new decoder
    from sora_cli.bundle import load_bundle
    from sora_cli.errors import SoraError, SoraUsageError
    from sora_cli.train.dit import train_dit
    from sora_cli.train.export import export_runs
    from sora_cli.train.latents import latent_space_id, vae_id
    from sora_cli.train.runs import load_vae_run
    from sora_cli.train.vae import train_vae

    dec = tmp_path / "dec"
    s = train_vae(cfg(dec, 8, 2, 3e-3, sample_every=-1), size=64, frames=9, fps=8,
                  init=str(tiny_bundle), decoder_only=True, latent_noise=0.5, eval_clips=1)
    assert s["psnr"] > 10 and 10 < s["psnr_latent_noise"] < 99
    new, new_cfg, _ = load_vae_run(dec)
    old = load_bundle(tiny_bundle)
    w0, w1 = old.vae.state_dict(), new.state_dict()
    assert all(torch.equal(w0[k], w1[k]) for k in w0 if k.startswith("encoder."))
    assert any(not torch.equal(w0[k], w1[k]) for k in w0 if k.startswith("decoder."))
    assert (new_cfg.latent_mean, new_cfg.latent_std) == (old.vae.cfg.latent_mean,
                                                         old.vae.cfg.latent_std)
    assert latent_space_id(new) == latent_space_id(old.vae) and vae_id(new) != vae_id(old.vae)
    with pytest.raises(SoraUsageError, match="resume it the same way"):
        train_vae(cfg(dec, 9, 2, 3e-3, sample_every=-1), size=64, frames=9, fps=8,
                  resume=True)

    # the bundle's DiT with all its settings; the VAE's record says how it was trained
    out = export_runs(tmp_path / "models" / "dec", vae=str(dec), clip=str(tiny_bundle),
                      dit=str(tiny_bundle))
    b = load_bundle(out)
    assert all(torch.equal(v, old.dit.state_dict()[k]) for k, v in b.dit.state_dict().items())
    assert all(torch.equal(v, w1[k].to(torch.bfloat16).float())
               for k, v in b.vae.state_dict().items())
    before, after = old.config, b.config
    assert (after.flow, after.context_latents, after.clip_frames, after.vocabulary) == \
        (before.flow, before.context_latents, before.clip_frames, before.vocabulary)
    assert after.name == "dec" and after.training["dit"] == before.training["dit"]
    assert "--decoder-only --latent-noise 0.5" in after.training["vae"]["command"]
    assert f"--init {tiny_bundle}" in after.training["vae"]["command"]
    # a DiT run on the bundle's VAE fits the new decoder too; a VAE with another encoder not
    train_dit(cfg(tmp_path / "dit", 1, 2, 1e-4, sample_every=-1), str(tiny_bundle),
              str(tiny_bundle), size=64, frames=9, fps=8, init=str(tiny_bundle), eval_clips=0)
    export_runs(tmp_path / "models" / "run", vae=str(dec), clip=str(tiny_bundle),
                dit=str(tmp_path / "dit"))
    for dit in (tiny_bundle, tmp_path / "dit"):
        with pytest.raises(SoraError, match="another"):
            export_runs(tmp_path / "models" / "bad", vae=str(vae_run[0]),
                        clip=str(tiny_bundle), dit=str(dit))
    assert not (tmp_path / "models" / "bad").exists()


def test_a_dit_that_went_on_from_a_bundle_keeps_its_sampler_settings(tiny_bundle, tmp_path):
    # the recipe's bundle must replace the one it started from without hand edits: the
    # sampler settings sora eval tuned for that bundle come along; a fresh DiT gets defaults
    import shutil

    from sora_cli.bundle import load_bundle
    from sora_cli.sampling import FlowConfig
    from sora_cli.train.dit import train_dit
    from sora_cli.train.export import export_runs

    tuned = tmp_path / "tuned"
    shutil.copytree(tiny_bundle, tuned)
    config = json.loads((tuned / "config.json").read_text())
    config["flow"].update(steps=7, guidance=5.0, guidance_min_t=0.3)
    config["context_latents"] = 1
    (tuned / "config.json").write_text(json.dumps(config))
    for init, run in ((tuned, "more"), (None, "fresh")):
        train_dit(cfg(tmp_path / run, 2, 2, 1e-4, sample_every=-1), str(tiny_bundle),
                  str(tiny_bundle), size=64, frames=9, fps=8, arch=None if init else TINY_DIT,
                  init=str(init) if init else None, eval_clips=0)
        export_runs(tmp_path / "models" / run, vae=str(tiny_bundle), clip=str(tiny_bundle),
                    dit=str(tmp_path / run))
    more = load_bundle(tmp_path / "models" / "more").config
    assert (more.flow.steps, more.flow.guidance, more.flow.guidance_min_t) == (7, 5.0, 0.3)
    assert more.context_latents == 1
    fresh = load_bundle(tmp_path / "models" / "fresh").config
    assert fresh.flow == FlowConfig() and fresh.context_latents == 2


def test_a_high_noise_expert_trains_on_its_levels_ships_beside_the_dit_and_generates(
        tiny_bundle, tmp_path):
    from sora_cli.bundle import bundle_hash, load_bundle
    from sora_cli.train.export import export_runs
    from sora_cli.video_io import read_video

    tb = tiny_bundle
    high = tmp_path / "high"
    r = run_cli("train", "dit", "--vae", tb, "--clip", tb, "--init", tb, "--size", 64,
                "--frames", 9, "--fps", 8, "--out", high, "--steps", 3, "--batch-size", 2,
                "--lr", 1e-3, "--warmup", 1, "--device", "cpu", "--workers", 0,
                "--sample-every", -1, "--eval-clips", 2, "--min-t", 0.6, "--json")
    assert r.returncode == 0, r.stderr
    # its held-out figure only at the noise levels it will take over
    assert set(json.loads(r.stdout)["heldout_loss_by_t"]) == {"0.7", "0.9"}
    assert json.loads((high / "model.json").read_text())["min_t"] == 0.6

    out = tmp_path / "models" / "expert"
    r = run_cli("train", "export", out, "--vae", tb, "--clip", tb, "--dit", tb,
                "--dit-high", high, "--expert-t", 0.7, "-q")
    assert r.returncode == 0, r.stderr
    b, base = load_bundle(out), load_bundle(tb)
    assert b.config.flow.expert_t == 0.7 and b.dit_high is not None
    for k, v in base.dit.state_dict().items():       # the main DiT is the bundle's, as it was
        assert torch.equal(v, b.dit.state_dict()[k]), k
    assert any(not torch.equal(v, b.dit_high.state_dict()[k])
               for k, v in base.dit.state_dict().items())
    assert "--min-t 0.6" in b.config.training["dit_high"]["command"]
    assert bundle_hash(out) != bundle_hash(tb)
    r = run_cli("models", str(out))
    assert r.returncode == 0 and "high-noise expert" in r.stdout and "t >= 0.7" in r.stdout

    # the expert draws the first steps: the same seed makes another video than without it
    videos = {}
    for name, model in (("with", out), ("without", tb)):
        mp4 = tmp_path / f"{name}.mp4"
        r = run_cli("generate", "a red ball bouncing on a grass field", "--model", model,
                    "-o", mp4, "--duration", 1, "--seed", 3, "--steps", 4, "--no-credentials")
        assert r.returncode == 0, r.stderr
        videos[name] = read_video(mp4).frames
    assert videos["with"].shape == videos["without"].shape
    assert (videos["with"] != videos["without"]).any()

    # a bundle given as --dit brings its expert along; a plain one drops expert_t
    again = export_runs(tmp_path / "models" / "again", vae=str(out), clip=str(out), dit=str(out))
    assert load_bundle(again).dit_high is not None
    assert load_bundle(again).config.flow.expert_t == 0.7

    for args, why in ((("--dit-high", high), "--expert-t"), (("--expert-t", 0.7), "--dit-high"),
                      (("--dit-high", high, "--expert-t", 0), "--expert-t must be"),
                      (("--dit-high", tb, "--expert-t", 0.7), "without a high-noise expert")):
        r = run_cli("train", "export", tmp_path / "bad", "--vae", tb, "--clip", tb, "--dit", tb,
                    *args, "-q")
        assert r.returncode == 2 and why in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "bad").exists()

    # strict loading: the file and flow.expert_t go together
    import shutil

    lost = tmp_path / "lost"
    shutil.copytree(out, lost)
    (lost / "dit_high.safetensors").unlink()
    with pytest.raises(Exception, match="dit_high.safetensors is missing"):
        load_bundle(lost)
    stray = tmp_path / "stray"
    shutil.copytree(out, stray)
    config = json.loads((stray / "config.json").read_text())
    config["flow"]["expert_t"] = 0.0
    (stray / "config.json").write_text(json.dumps(config))
    with pytest.raises(Exception, match="no flow.expert_t"):
        load_bundle(stray)


def test_run_folders_that_cannot_be_are_named_in_one_line(tmp_path):
    from sora_cli.bundle import find_bundle

    (tmp_path / "afile").write_text("not a folder")
    r = run_cli("train", "vae", "--out", tmp_path / "afile", "--steps", "1", "--size", "32",
                "--frames", "5", "--batch-size", "1", "--device", "cpu", "-q")
    assert r.returncode == 1 and r.stderr.startswith("error: "), r.stderr
    assert "is a file, not a folder: give --out a folder" in r.stderr
    # a bundle's name where a run folder is wanted: the message gives the folder to use
    r = run_cli("train", "dit", "--out", tmp_path / "dit", "--vae", "default", "--steps", "1",
                "--device", "cpu", "-q", cwd=tmp_path)
    assert r.returncode == 1 and "for the bundle named 'default' give its folder" in r.stderr
    assert r.stderr.strip().endswith(str(find_bundle("default"))), r.stderr


def test_a_resumed_run_refuses_changed_settings_and_may_only_go_on_longer(tmp_path, capsys):
    # a run half trained one way and half another matches neither: what changes the weights
    # must be as the run started; what only changes logging or speed may differ
    import dataclasses

    from sora_cli.errors import SoraUsageError
    from sora_cli.train.vae import train_vae

    kw = dict(size=32, frames=5, fps=4, arch=TINY_VAE, eval_clips=1)
    whole = train_vae(cfg(tmp_path / "whole", 6, 2, 3e-3, sample_every=-1), **kw)
    paused = tmp_path / "paused"
    train_vae(cfg(paused, 6, 2, 3e-3, sample_every=-1, stop_at=3), **kw)
    recorded = (paused / "train.json").read_text()
    # the review's slip: the resumed command forgets --warmup (its default is 200)
    r = run_cli("train", "vae", "--out", paused, "--steps", 6, "--batch-size", 2, "--lr", 3e-3,
                "--size", 32, "--frames", 5, "--fps", 4, "--eval-clips", 1, "--workers", 0,
                "--sample-every", -1, "--device", "cpu", "--arch", json.dumps(TINY_VAE),
                "--resume", "-q")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == (f"error: {paused} was started with --warmup 3; resume it with "
                                "the same flags (got --warmup 200)")
    for changed, kwargs, words in (
            (dict(lr=1e-3), {}, "--lr 0.003; resume it with the same flags (got --lr 0.001)"),
            (dict(batch=1), {}, "--batch-size 2; resume it with the same flags (got "
                                "--batch-size 1)"),
            ({}, dict(size=64, frames=9), "--size 32 --frames 5; resume it with the same flags "
                                          "(got --size 64 --frames 9)"),
            ({}, dict(fps=8), "--fps 4;"),
            (dict(steps=2), {}, "is at step 3 already (it was started with --steps 6); give "
                                "--steps 3 or more")):
        args = {"steps": 6, "batch": 2, "lr": 3e-3, **changed}
        with pytest.raises(SoraUsageError) as err:
            train_vae(cfg(paused, args["steps"], args["batch"], args["lr"], sample_every=-1),
                      resume=True, **{**kw, **kwargs})
        assert words in str(err.value), str(err.value)
    assert (paused / "train.json").read_text() == recorded   # refused before anything is written
    # other logging, checkpoint minutes and the same architecture again are free, and the run
    # ends where the uninterrupted one did, bit for bit
    free = dataclasses.replace(cfg(paused, 6, 2, 3e-3, sample_every=-1), log_every=2,
                               checkpoint_every_minutes=30)
    resumed = train_vae(free, resume=True, **kw)
    assert resumed["params_sha256"] == whole["params_sha256"]
    assert json.loads((paused / "train.json").read_text())["log_every"] == 2
    # --steps may grow, to extend a finished run; the moved schedule is said
    capsys.readouterr()
    longer = train_vae(cfg(tmp_path / "whole", 8, 2, 3e-3, sample_every=-1), resume=True, **kw)
    assert longer["step"] == 8 and longer["steps_this_run"] == 2
    said = " ".join(capsys.readouterr().err.split())
    assert "was started with --steps 6; going on to --steps 8 moves the end of its " \
           "learning-rate schedule (LR at step 6: 0.0003 -> " in said, said


def test_a_resumed_dit_refuses_another_vae_or_text_tower(tiny_bundle, tmp_path):
    import shutil

    from sora_cli.errors import SoraUsageError
    from sora_cli.train.clip import train_clip
    from sora_cli.train.dit import train_dit
    from sora_cli.train.vae import train_vae

    tb = str(tiny_bundle)
    other_vae, other_clip = tmp_path / "vae", tmp_path / "clip"
    train_vae(cfg(other_vae, 1, 1, 1e-3, sample_every=-1), size=32, frames=5, fps=4,
              arch=TINY_VAE, eval_clips=1)
    train_clip(cfg(other_clip, 1, 2, 1e-3), arch=TINY_CLIP, eval_frames=0)
    run = tmp_path / "dit"
    kw = dict(size=64, frames=9, fps=8, arch=TINY_DIT, eval_clips=0)

    def dit(vae, clip, **more):
        return train_dit(cfg(run, 2, 2, 1e-3, sample_every=-1), vae, clip, **{**kw, **more})

    train_dit(cfg(run, 2, 2, 1e-3, sample_every=-1, stop_at=1), tb, tb, **kw)
    for vae, clip, more, words in (
            (str(other_vae), tb, {}, f"started with --vae {tb}; resume it with the same flags "
                                     f"(got --vae {other_vae})"),
            (tb, str(other_clip), {}, f"(got --clip {other_clip})"),
            (tb, tb, dict(time_shift=2.0), "--time-shift 1;"),
            (tb, tb, dict(text_inputs=True), "started with no --text-inputs;")):
        with pytest.raises(SoraUsageError, match=re.escape(words)):
            dit(vae, clip, resume=True, **more)
    # the same parts under another name (a copied bundle) are the same parts
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle, copy)
    assert dit(str(copy), str(copy), resume=True)["step"] == 2


@pytest.mark.parametrize("args, words", [
    (["train", "vae", "--log-every", 0], "--log-every must be at least 1, got 0"),
    (["train", "vae", "--fps", 0], "--fps must be a positive number, got 0"),
    (["train", "vae", "--eval-clips", 0], "--eval-clips must be at least 1, got 0"),
    (["train", "clip", "--eval-only", "--eval-frames", 0], "--eval-frames must be at least 1"),
])
def test_bad_numbers_from_the_review_are_one_line_usage_errors(args, words, tmp_path):
    out = tmp_path / "run"
    r = run_cli(*args, "--out", out, "--steps", 1, "--size", 32, "--frames", 5,
                "--device", "cpu", "-q") if "--eval-only" not in args else \
        run_cli(*args, "--out", out)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: ") and words in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_every_numeric_training_flag_refuses_zero_negative_nan_and_inf(tmp_path):
    from sora_cli.errors import SoraUsageError
    from sora_cli.train.clip import eval_clip_run, train_clip
    from sora_cli.train.config import TrainConfig
    from sora_cli.train.dit import train_dit
    from sora_cli.train.latents import encode_latents
    from sora_cli.train.vae import train_vae

    nan, inf = float("nan"), float("inf")
    for field, value, flag in (
            ("steps", 0, "--steps"), ("batch_size", -1, "--batch-size"), ("lr", 0.0, "--lr"),
            ("lr", nan, "--lr"), ("lr", inf, "--lr"), ("warmup", -1, "--warmup"),
            ("log_every", 0, "--log-every"), ("log_every", -5, "--log-every"),
            ("max_minutes", nan, "--max-minutes"), ("max_minutes", inf, "--max-minutes"),
            ("stop_at", 0, "--stop-at"), ("checkpoint_every_minutes", 0.0, "--checkpoint-"),
            ("checkpoint_every_minutes", nan, "--checkpoint-"), ("seed", -1, "--seed"),
            ("workers", -2, "--workers"), ("sample_every", -2, "--sample-every")):
        with pytest.raises(SoraUsageError, match=flag):
            TrainConfig(**{field: value}).check()
    run = tmp_path / "run"
    for call, words in (
            (lambda: train_vae(cfg(run, 1, 1, 1e-3), fps=nan), "--fps"),
            (lambda: train_vae(cfg(run, 1, 1, 1e-3), fps=inf), "--fps"),
            (lambda: train_vae(cfg(run, 1, 1, 1e-3), eval_clips=-1), "--eval-clips"),
            (lambda: train_clip(cfg(run, 1, 1, 1e-3), eval_frames=-1), "--eval-frames"),
            (lambda: train_clip(cfg(run, 1, 1, 1e-3), frames=0), "--frames"),
            (lambda: train_clip(cfg(run, 1, 1, 1e-3), fps=0), "--fps"),
            (lambda: train_clip(cfg(run, 1, 1, 1e-3), size=-32), "--size"),
            (lambda: train_clip(cfg(run, 1, 1, 1e-3), arch=TINY_CLIP, size=4),
             "--size must be at least the vision tower's patch size 8, got 4"),
            (lambda: train_dit(cfg(run, 1, 1, 1e-3), "nothing", eval_clips=-1), "--eval-clips"),
            (lambda: train_dit(cfg(run, 1, 1, 1e-3), "nothing", fps=-8), "--fps"),
            (lambda: encode_latents(run, "nothing", 1, fps=0), "--fps"),
            (lambda: encode_latents(run, "nothing", 1, workers=-3), "--workers"),
            (lambda: eval_clip_run("nothing", count=0), "--eval-frames")):
        with pytest.raises(SoraUsageError, match=words):
            call()
        assert not run.exists()
    from sora_cli.world.export import num_frames_for

    for seconds, fps, flag in ((nan, 8, "--seconds"), (inf, 8, "--seconds"),
                               (-1, 8, "--seconds"), (2, nan, "--fps"), (2, inf, "--fps"),
                               (2, 0, "--fps")):
        with pytest.raises(SoraUsageError, match=flag):
            num_frames_for(seconds, fps)


def test_eval_only_scores_a_bundles_clip_with_each_figures_own_chance(tiny_bundle):
    from sora_cli.train.clip import class_prompts

    r = run_cli("train", "clip", "--eval-only", "--out", tiny_bundle, "--eval-frames", 6,
                "--device", "cpu")
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    chances = dict(re.findall(r"(\w+) [\d.]+% \(chance ([\d.]+)%\)", line))
    names = {"colour": "color", "setting": "setting", "shape": "shape", "motion": "motion"}
    assert set(chances) == set(names), line
    for shown, attr in names.items():
        assert float(chances[shown]) == round(100 / len(class_prompts()[attr]), 1), line
    assert len(set(chances.values())) > 1   # colour, shape and motion have other class counts


def test_help_names_what_each_flag_acts_on():
    def helped(*args):
        r = run_cli(*args, "--help")
        assert r.returncode == 0, r.stderr
        return " ".join(r.stdout.split())

    encode = helped("data", "encode")
    assert "Encode the clips of a folder of videos" in encode and "Train on" not in encode
    assert "Replace the bundle folder if it exists" in helped("train", "export")
    assert "Replace the --export bundle folder if it exists" in helped("train", "dit")
    # the README's list of common options says which commands write sample clips
    readme = " ".join((Path(__file__).parents[1] / "README.md").read_text().split())
    assert "`--sample-every N` (vae and dit; clip writes no samples)" in readme
    for part, has in (("vae", True), ("clip", False), ("dit", True)):
        assert ("--sample-every" in helped("train", part)) == has, part


def test_a_model_trained_on_your_own_videos_is_measured_on_them_and_generates(tmp_path):
    """The README's "Train on your own videos", through the CLI on clips other tools made:
    phone-like 30 fps, 25 fps portrait and a 10 fps GIF, each resampled to --fps 4."""
    from conftest import ffmpeg_clip

    from sora_cli.video_io import probe

    vids = (tmp_path / "my videos").resolve()
    vids.mkdir()
    ffmpeg_clip(vids / "street.mp4", seconds=3, size="64x48", fps=30)          # 12 frames at 4
    ffmpeg_clip(vids / "tower.mp4", seconds=1, size="48x64", fps=25, source="testsrc2")
    ffmpeg_clip(vids / "loop.gif", seconds=2, size="40x40", fps=10, source="rgbtestsrc",
                codec="gif", pix_fmt="rgb8")
    rows = [("street", "a busy street"), ("tower", "a tall tower"), ("loop", "colour bars")]
    (vids / "captions.jsonl").write_text("".join(
        json.dumps({"id": i, "caption": c}) + "\n" for i, c in rows))
    runs = tmp_path / "runs"
    common = ["--device", "cpu", "--json", "-q"]
    clips = ["--frames", 5, "--fps", 4]

    r = run_cli("train", "vae", "--data", vids, "--out", runs / "vae", "--steps", 4,
                "--batch-size", 2, "--size", 64, *clips, "--arch", json.dumps(TINY_VAE),
                "--eval-clips", 8, *common)
    assert r.returncode == 0, r.stderr
    vae = json.loads(r.stdout)
    # street is two windows of 5 frames at 4 fps, tower and loop one each: all four measured
    assert vae["eval_on"] == f"4 clips of {vids} (trained on)"
    r = run_cli("train", "clip", "--data", vids, "--out", runs / "clip", "--steps", 4,
                "--batch-size", 4, *clips, "--arch", json.dumps(TINY_CLIP), "--eval-frames", 8,
                *common)
    assert r.returncode == 0, r.stderr
    rt = json.loads(r.stdout)["retrieval"]
    assert "zero_shot" not in json.loads(r.stdout)      # the world's classes mean nothing here
    # captions of the four windows: street twice, tower, loop
    assert rt["clips"] == 4 and rt["chance"] == (4 + 1 + 1) / 16 and 0 <= rt["retrieval"] <= 1
    r = run_cli("train", "clip", "--eval-only", "--out", runs / "clip", "--data", vids, *clips,
                "--eval-frames", 8, *common)
    assert r.returncode == 0 and json.loads(r.stdout)["retrieval"] == rt["retrieval"], r.stderr
    r = run_cli("data", "encode", "--vae", runs / "vae", "--data", vids, "--size", 64, *clips,
                "--out", runs / "lat", *common)
    assert r.returncode == 0 and json.loads(r.stdout)["count"] == 4, r.stderr
    # what degrades the folder's clips is said, even with -q
    assert "1 of 3 clips are shorter than one window" in r.stderr     # tower: 1 s at 4 fps
    r = run_cli("train", "dit", "--vae", runs / "vae", "--clip", runs / "clip", "--latents",
                runs / "lat", "--data", vids, "--out", runs / "x", *common)
    assert r.returncode == 2 and "drop --data" in r.stderr
    r = run_cli("train", "dit", "--vae", runs / "vae", "--clip", runs / "clip", "--latents",
                runs / "lat", "--out", runs / "dit", "--steps", 4, "--batch-size", 2,
                "--arch", json.dumps(TINY_DIT), "--eval-clips", 2, "--sample-every", 4,
                "--export", tmp_path / "mine", *common)
    assert r.returncode == 0, r.stderr
    dit = json.loads(r.stdout)
    assert dit["eval_on"] == f"2 clips of {vids} (trained on)"
    assert probe(dit["sample"]).fps == 4             # a sample of the folder's own words

    card = (tmp_path / "mine" / "MODEL_CARD.md").read_text()
    assert f"on the videos in {vids} and their captions" in card and "WORLD.md" not in card
    # every recorded command trains on the folder again, not on the world, pasted as it is
    assert card.count(f"--data '{vids}'") == 3 and "retrieval" in card
    assert "sora train clip --out" in card and "--frames 5 --fps 4.0" in card
    config = json.loads((tmp_path / "mine" / "config.json").read_text())
    assert config["fps"] == 4 and config["vocabulary"] == ""

    out = tmp_path / "street.mp4"
    r = run_cli("generate", "a busy street", "--model", tmp_path / "mine", "-o", out,
                "--duration", 2, "--seed", 1)
    assert r.returncode == 0, r.stderr
    info = probe(out)
    assert (info.width, info.height) == (64, 64) and info.frames >= 8
    # an edited caption: latents encoded before it are not taken for the folder's now
    (vids / "captions.jsonl").write_text((vids / "captions.jsonl").read_text().replace(
        "a tall tower", "a tall white tower"))
    r = run_cli("data", "encode", "--vae", runs / "vae", "--data", vids, "--size", 64, *clips,
                "--out", runs / "lat", *common)
    assert r.returncode == 1 and f"{vids} changed (its captions or clips)" in r.stderr
    # a run resumed on the changed folder goes on with it, and says so
    r = run_cli("train", "vae", "--data", vids, "--out", runs / "vae", "--steps", 6,
                "--batch-size", 2, "--size", 64, *clips, "--arch", json.dumps(TINY_VAE),
                "--eval-clips", 8, "--resume", *common)
    assert r.returncode == 0 and "changed since this run started" in r.stderr, r.stderr
    # the world's measurement runs, but says it is not this bundle's world
    r = run_cli("eval", "--model", tmp_path / "mine", "--n", 1, "--json")
    assert r.returncode == 0 and f"was trained on the videos in {vids}" in r.stderr, r.stderr


@pytest.mark.parametrize("signame", ["SIGINT", "SIGHUP", "SIGTERM"])
def test_ctrl_c_lets_the_step_finish_saves_a_checkpoint_and_resume_goes_on(tmp_path, signame):
    # SIGHUP: the terminal or ssh session closed under a long run, its workers' too; SIGTERM
    # to the whole group, as a scheduler sends it: the workers died of it, and the checkpoint
    import signal
    import time

    out = tmp_path / "vae"
    args = ["train", "vae", "--out", str(out), "--steps", "100000", "--batch-size", "1",
            "--size", "32", "--frames", "5", "--fps", "4", "--device", "cpu", "--workers", "1",
            "--arch", json.dumps(TINY_VAE), "--log-every", "1", "--checkpoint-minutes", "60"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **ONE_THREAD}
    # its own process group, as a terminal's: the Ctrl-C reaches the data-loader worker too
    p = subprocess.Popen([sys.executable, "-m", "sora_cli", *args], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    log = out / "log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and p.poll() is None and \
            (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.1)
    number = getattr(signal, signame)
    os.killpg(p.pid, number)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + number, err
    step = int(re.search(r"interrupted at step (\d+), checkpoint saved", err).group(1))
    assert step >= 3 and (out / f"ckpt-{step:08d}").is_dir() and "Traceback" not in err
    r = run_cli(*args[:-2], "--resume", "--stop-at", step + 2, "--json", "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["step"] == step + 2
