"""Where the DiT loses the prompt: by noise level.

`sora eval`'s autoencoded line tells a weak VAE from a weak DiT; this tells which part of the
DiT's schedule is weak. Each eval prompt's reference render is encoded by the bundle's VAE,
then:
- **finished from t**: the real latents noised to time t, then only the schedule's steps
  from t down, with the bundle's own sampler settings and prompt (SDEdit). t=1 is plain
  generation; the lower t, the more of the real clip is given. Where the checker figures
  climb towards the autoencoded line tells at which noise levels the DiT gets the prompt
  wrong: high t decides layout, colour and motion, low t detail.
- **given the first frame** (`--first`): `sora animate` of the render's first frame, through
  the pipeline's own path (the frame encoded alone and held clean, the rest generated with
  the same seed): how far the DiT gets once the first frame's layout is right.
- **decoded with latent noise**: the real latents plus Gaussian noise of std sigma (in the
  normalised units the DiT works in), decoded. How much the decoder's picture, and its
  flicker, suffer from latents a little off the encoder's.

Every line is scored by `sora eval`'s checker (2 s clips, eval seeds and prompts), with the
frame change (flicker, in 8-bit levels) and all checks as a ratio to the autoencoded line of
the same run. One noise draw per prompt is shared by every line.

    python benchmarks/dit_stages.py                      # models/default, 100 prompts
    python benchmarks/dit_stages.py --n 30 --starts 1 0.6 --sigmas 0.3 --json
    python benchmarks/dit_stages.py --starts 1 --sigmas --first
"""

from __future__ import annotations

import argparse
import json
import time

FIGURES = ("setting", "color", "shape", "motion", "weather", "all_checks", "fully_right")


def measure(model: str = "default", n: int = 100, starts=(1.0, 0.8, 0.6, 0.35),
            sigmas=(0.15, 0.3, 0.5), seed: int = 0, duration: float = 2.0,
            device: str = "auto", progress=None, first: bool = False) -> dict:
    """Checker figures of every line (see the module doc): {"lines": {name: figures}, ...}."""
    import numpy as np
    import torch

    from sora_cli.checker import score_clip
    from sora_cli.evaluate import eval_prompts, expected_scenes, frame_change, summarize
    from sora_cli.pipeline import Span, VideoPipeline, frames_of, latents_for
    from sora_cli.sampling import sample, schedule
    from sora_cli.world.render import render_scene

    pipe = VideoPipeline.load(model, device)
    st = pipe.settings
    frames_n = max(1, int(round(duration * pipe.fps)))
    latents = latents_for(frames_n, pipe.temporal)
    if latents > pipe.window:
        raise SystemExit(f"error: {duration} s is more than one generation window "
                         f"({frames_of(pipe.window, pipe.temporal)} frames); ask for less")
    ts = schedule(st.steps, st.shift).tolist()
    # each start rounded down to a time of the schedule, as sample() does; one line a time
    starts = list(dict.fromkeys(next(tv for tv in ts if tv <= t + 1e-6) for t in starts))
    sigmas = list(dict.fromkeys(sigmas))
    given = ["given the first frame"] if first else []
    names = ([f"finished from t={t:.3f}" for t in starts] + given + ["autoencoded (t=0)"]
             + [f"decoded, latent noise {s:g}" for s in sigmas])
    scored = {k: [] for k in names}
    change = {k: [] for k in names}
    prompts = eval_prompts(n, seed)
    scenes = expected_scenes(prompts)

    def decode(z):
        return np.concatenate(list(pipe.decode_latents(z, keep_frames=frames_n)))

    for i, (prompt, scene) in enumerate(zip(prompts, scenes)):
        scene.seed = seed + i
        ref = render_scene(scene, (pipe.height, pipe.width),
                           frames_of(latents, pipe.temporal), pipe.fps)
        z = pipe.encode_frames(ref)
        cond, uncond = pipe._text(prompt), pipe._text("")
        clips = {}
        for t, name in zip(starts, names):
            with torch.no_grad(), pipe._autocast():
                x = sample(pipe.bundle.dit, z.shape, cond, uncond,
                           generator=torch.Generator().manual_seed(seed + i), start=(t, z),
                           expert=pipe.bundle.dit_high, **st.sample_args())
            clips[name] = decode(x.float())
        if first:
            # animate's own path: the first frame encoded alone, held clean, and the rest
            # sampled (with the pipeline's drift correction) from the same seed
            x = pipe.sample_latents([Span(prompt, frames_n - 1)], (pipe.height, pipe.width),
                                    seed + i, known=pipe.encode_frames(ref[:1]))
            clips[given[0]] = decode(x.float())
        clips["autoencoded (t=0)"] = decode(z)
        eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(seed + i))
        for s, name in zip(sigmas, names[len(starts) + len(given) + 1:]):
            clips[name] = decode(z + s * eps)
        for name, frames in clips.items():
            scored[name].append(score_clip(frames, pipe.fps, scene))
            change[name].append(frame_change(frames))
        if progress is not None:
            progress(i + 1, n)
    lines = {}
    for name in names:
        s = summarize(scored[name])
        lines[name] = {**{k: s[k] for k in FIGURES},
                       "frame_change": float(np.mean([c for c in change[name] if c is not None]))}
    return {"model": model, "prompts": n, "seed": seed, "duration": duration,
            "sampler": {"steps": st.steps, "guidance": st.guidance, "shift": st.shift,
                        "guidance_min_t": st.guidance_min_t}, "lines": lines}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--n", type=int, default=100, help="eval prompts (default 100)")
    ap.add_argument("--starts", type=float, nargs="+", default=[1.0, 0.8, 0.6, 0.35],
                    help="noise levels to finish from (1 = plain generation)")
    ap.add_argument("--sigmas", type=float, nargs="*", default=[0.15, 0.3, 0.5],
                    help="latent noise std for the decoder lines")
    ap.add_argument("--first", action="store_true",
                    help="add the line given the first frame (as sora animate holds its image)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    if args.n < 1 or any(not 0 <= t <= 1 for t in args.starts) or any(s < 0 for s in args.sigmas):
        raise SystemExit("error: --n must be at least 1, --starts between 0 and 1, "
                         "--sigmas not negative")

    from sora_cli import console

    console.set_quiet(True)
    t0 = time.perf_counter()
    report = measure(args.model, args.n, tuple(args.starts), tuple(args.sigmas), args.seed,
                     device=args.device, first=args.first)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(report, indent=1))
        return
    lines = report["lines"]
    ae = lines["autoencoded (t=0)"]["all_checks"]
    print(f"model {args.model}: {args.n} eval prompts, 2 s, sampler {report['sampler']}; "
          f"{report['seconds']:.0f} s")
    print(f"{'':<30}" + "".join(f"{k:>12}" for k in FIGURES) + f"{'frame chg':>10}{'/ autoenc':>10}")
    for name, g in lines.items():
        print(f"{name:<30}" + "".join(f"{g[k]:>12.3f}" if g[k] is not None else f"{'-':>12}"
                                      for k in FIGURES)
              + f"{g['frame_change']:>10.2f}{g['all_checks'] / ae:>10.3f}")


if __name__ == "__main__":
    main()
