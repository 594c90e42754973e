"""VAE latents at equal training compute: which latent holds the world's detail better?

Trains one VAE per architecture variant (latent width, level count) from scratch, side by
side (one process each, same seed, same clips, same steps), then measures each on the same
held-out clips:
- reconstruction PSNR at 256x256, 17 frames;
- the `sora eval` checker on the first N eval prompts' reference renders sent through that
  VAE and back ("autoencoded": what a DiT reproducing its latents exactly would score);
- wall time, and the ratios of every figure to the first variant's, from this run.

    python benchmarks/vae_latents.py                        # 16 vs 64 channels, 1000 steps
    python benchmarks/vae_latents.py --arch '{}' '{"channels": [32, 64]}'   # 16x vs 8x
    python benchmarks/vae_latents.py --arch '{"z_channels": 32}' '{"z_channels": 64}' \
        --steps 4000 --device cuda
    python benchmarks/vae_latents.py --init models/default --lr 1e-4    # go on vs widen

Each variant is a VAEConfig override (as `sora train vae --arch` takes); `--channels 16 64`
is short for `--arch '{"z_channels": 16}' '{"z_channels": 64}'`.

On the CPU the steps train on 128x128 crops of 256x256 clips (the VAE is convolutional, so
crops teach it the full-size world at a quarter of the cost) with one thread per process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("setting", "color", "shape", "motion", "weather", "all_checks", "fully_right")


def train_and_measure(arch: dict, steps: int, batch: int, crop: int, lr: float, prompts: int,
                      device: str, seed: int = 0, init: str | None = None) -> dict:
    import numpy as np
    import torch

    from sora_cli.checker import score_clip
    from sora_cli.evaluate import eval_prompts, expected_scenes, summarize
    from sora_cli.nn.vae import VAEConfig, VideoVAE
    from sora_cli.train import data
    from sora_cli.train.vae import evaluate_vae, reconstruct
    from sora_cli.world.render import render_scene

    torch.manual_seed(seed)
    if init:   # as `sora train vae --init BUNDLE --arch ...` starts: widened where it can be
        from sora_cli.train.loop import load_fitting
        from sora_cli.train.runs import warm_start
        from sora_cli.train.widen import widen_vae

        conf, state = warm_start("vae", init)
        new = {**conf, **arch, "latent_mean": [], "latent_std": []}
        vae = VideoVAE(VAEConfig(**new))
        load_fitting(vae, widen_vae(conf, new, state))
        vae = vae.to(device)
    else:
        vae = VideoVAE(VAEConfig(**arch)).to(device)
    f = vae.cfg.spatial_factor
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0)
    clips = data.WorldRenders(256, 9, 8, seed=seed)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for step in range(steps):
        for g in opt.param_groups:   # linear warmup over 100 steps, then constant
            g["lr"] = lr * min(1.0, (step + 1) / 100)
        batch_clips = []
        for k in range(batch):
            v = clips[step * batch + k]["video"]
            y, x = (rng.integers(0, 256 - crop + 1, 2) // f * f).tolist()
            batch_clips.append(v[:, y:y + crop, x:x + crop])
        loss, _ = vae.loss(data.to_model(torch.stack(batch_clips), device))
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    vae.eval()
    held = evaluate_vae(vae, 256, 17, 8, count=8, seed=seed, device=device)

    texts = eval_prompts(prompts, 0)
    results = []
    for i, scene in enumerate(expected_scenes(texts)):
        scene.seed = i
        ref = render_scene(scene, (256, 256), 17, 8.0)
        rec = reconstruct(vae, data.to_model(torch.from_numpy(ref)[None], device))
        results.append(score_clip(data.to_frames(rec[0])[:16], 8.0, scene))
    s = summarize(results)
    return {"arch": arch, "z_channels": vae.cfg.z_channels, "factor": f,
            "params": sum(p.numel() for p in vae.parameters()),
            "steps": steps, "train_seconds": round(seconds, 1), "psnr": held["psnr"],
            **{k: s[k] for k in FIGURES}}


def parse_variant(text: str) -> dict:
    """One --arch value: a JSON object of VAEConfig fields, checked before any training."""
    from sora_cli.nn.vae import VAEConfig

    try:
        arch = json.loads(text)
        if not isinstance(arch, dict):
            raise ValueError("not a JSON object")
        VAEConfig(**arch)
    except (ValueError, TypeError) as exc:
        sys.exit(f"error: --arch {text!r}: {exc}")
    return arch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", nargs="+", metavar="JSON",
                    help="VAEConfig overrides, one JSON object per variant")
    ap.add_argument("--channels", type=int, nargs="+", default=[16, 64],
                    help="latent widths to compare (when --arch is not given)")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--crop", type=int, default=128, help="training crop (multiple of 16)")
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--init", help="start every variant from this bundle's or run's VAE, "
                                   "its latent split to a wider one where --arch asks "
                                   "(sora_cli/train/widen.py); 0 --steps measures the start")
    ap.add_argument("--prompts", type=int, default=50, help="eval prompts for the checker")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # a worker process: this variant
    a = ap.parse_args()
    if a.crop % 16 or not 16 <= a.crop <= 256:
        sys.exit(f"error: --crop must be a multiple of 16 up to 256, got {a.crop}")
    if a.one is not None:
        import torch

        if a.device == "cpu":
            torch.set_num_threads(1)
        print(json.dumps(train_and_measure(json.loads(a.one), a.steps, a.batch, a.crop, a.lr,
                                           a.prompts, a.device, init=a.init)))
        return
    variants = [parse_variant(v) for v in a.arch] if a.arch else [{"z_channels": z} for z in a.channels]

    args = [sys.executable, __file__, "--steps", str(a.steps), "--batch", str(a.batch),
            "--crop", str(a.crop), "--lr", str(a.lr), "--prompts", str(a.prompts),
            "--device", a.device] + (["--init", a.init] if a.init else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    # side by side: one process per width, so each gets the same share of the machine
    procs = [subprocess.Popen(args + ["--one", json.dumps(v)], stdout=subprocess.PIPE,
                              text=True, env=env) for v in variants]
    rows = []
    for v, p in zip(variants, procs):
        out, _ = p.communicate()
        if p.returncode != 0:
            sys.exit(f"error: the run of {json.dumps(v)} failed (exit {p.returncode})")
        rows.append(json.loads(out.strip().splitlines()[-1]))
    base = rows[0]
    for r in rows:
        r["psnr_gain_db"] = round(r["psnr"] - base["psnr"], 2)
        r["all_checks_ratio"] = (round(r["all_checks"] / base["all_checks"], 3)
                                 if base["all_checks"] else None)
    if a.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"VAE latents, {a.steps} steps x {a.batch} clips ({a.crop}px crops, 9 frames), "
          f"{a.device}, {'from ' + a.init if a.init else 'from scratch'}; checker on "
          f"{a.prompts} eval prompts, autoencoded")
    head = ["z", "factor", "params", "train s", "PSNR dB", "vs first", *FIGURES, "all vs first"]
    print("  ".join(f"{h:>11}" for h in head))
    for r in rows:
        cells = [r["z_channels"], f"{r['factor']}x", r["params"], r["train_seconds"], r["psnr"], r["psnr_gain_db"],
                 *(r[k] for k in FIGURES), r["all_checks_ratio"]]
        print("  ".join(f"{'-' if c is None else c:>11}" for c in cells) + "  " + json.dumps(r["arch"]))


if __name__ == "__main__":
    main()
