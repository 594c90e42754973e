"""Do long videos keep their setting and subjects? The checker on a video's first and last 2 s.

    python benchmarks/long_videos.py                            # 100 prompts of 16 s
    python benchmarks/long_videos.py --prompts 25 --duration 60

A video longer than one window is made window by window, each continuing from the last
latent of the one before (as `sora generate -d 60` and `sora extend` do), so a setting or a
subject could drift away over a minute. For the first N prompts of `sora eval`'s built-in set
(seed 0, prompt i generated with seed i, the default sampler), this generates each at the
given length, then scores its first and its last 2 s with `sora eval`'s checker against the
prompt, beside the world's reference render of the same prompt and length scored the same
way. The reference's last seconds are the yardstick, not 1.0: in the world, subjects that
move keep going and leave the frame, and camera moves change the view.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

ATTRIBUTES = ("setting", "color", "shape", "motion", "weather")
END_SECONDS = 2.0   # scored at each end


def measure(model: str = "default", prompts: int = 100, duration: float = 16.0,
            device: str = "cpu") -> dict:
    """{"generated, first 2 s": {attribute: share of checks passed, ..., "all": ...}, ...,
    "reference, last 2 s": {...}} for the first `prompts` prompts of the seed-0 set."""
    from sora_cli.checker import score_clip
    from sora_cli.evaluate import eval_prompts, expected_scenes
    from sora_cli.pipeline import VideoPipeline
    from sora_cli.world.render import render_scene

    pipe = VideoPipeline.load(model, device)
    part = max(1, int(round(END_SECONDS * pipe.fps)))
    texts = eval_prompts(100, 0)[:prompts]
    checks: dict[str, dict[str, list[float]]] = {}
    for i, (prompt, scene) in enumerate(zip(texts, expected_scenes(texts))):
        scene.seed = i
        frames = np.concatenate(list(pipe.generate(prompt, duration, seed=i)))
        ref = render_scene(scene, frames.shape[1:3], len(frames), pipe.fps)
        for name, video in (("generated", frames), ("reference", ref)):
            for end, piece in (("first", video[:part]), ("last", video[-part:])):
                got = score_clip(piece, pipe.fps, scene)["checks"]
                row = checks.setdefault(f"{name}, {end} {END_SECONDS:g} s",
                                        {a: [] for a in ATTRIBUTES})
                for a in ATTRIBUTES:
                    row[a] += [float(v) for v in got.get(a, []) if v is not None]
    return {key: {**{a: round(float(np.mean(v)), 4) if v else None for a, v in row.items()},
                  "all": round(float(np.mean([v for a in ATTRIBUTES for v in row[a]])), 4)}
            for key, row in checks.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--prompts", type=int, default=100, help="First N prompts of the set.")
    ap.add_argument("--duration", type=float, default=16.0, help="Seconds per video.")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    t0 = time.time()
    lines = measure(args.model, args.prompts, args.duration, args.device)
    print(f"{args.prompts} prompts, {args.duration:g} s each, {time.time() - t0:.0f} s")
    for key, figures in lines.items():
        print(f"{key:22}", "  ".join(f"{a} {v:.3f}" for a, v in figures.items()
                                     if v is not None))


if __name__ == "__main__":
    main()
