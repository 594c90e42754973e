"""`sora eval`'s prompts scored from the MP4 files `sora generate` writes, not from the raw
frames `sora eval` scores: what watermarking and H.264 (yuv420p) cost the checker's figures.

    python benchmarks/eval_files.py                     # models/default, 100 prompts
    python benchmarks/eval_files.py --n 20 --preset medium

Each prompt i is generated with seed i, 2 s, as `sora eval` does (so the frames before
encoding are the eval's own), watermarked and encoded as `sora generate` does (content
credentials off: they do not touch the pixels), read back and scored against its scene. The
same prompts' raw-frame figures come from one `sora eval` run in this process.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

KEYS = ("setting", "color", "shape", "motion", "weather", "all_checks", "fully_right")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--preset", default=None, help="x264 preset (default: sora generate's)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    import sora_cli.generation as gen
    from sora_cli import console
    from sora_cli.checker import score_clip
    from sora_cli.evaluate import eval_prompts, evaluate, expected_scenes, summarize
    from sora_cli.video_io import read_video

    console.set_quiet(True)
    gen.PRESET = args.preset or gen.PRESET
    prompts = eval_prompts(args.n, 0)
    t0 = time.perf_counter()
    raw = evaluate(args.model, prompts=prompts, device=args.device)
    raw_s = time.perf_counter() - t0
    opts = gen.GenerateOptions(duration=2.0, model=args.model, device=args.device,
                               overwrite=True, credentials=False)
    pipe = gen.load_pipeline(opts)
    results, moved = [], 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sora-eval-files-") as tmp:
        out = Path(tmp) / "clip.mp4"
        for i, (prompt, scene) in enumerate(zip(prompts, expected_scenes(prompts))):
            scene.seed = i           # the reference layout sora eval uses for prompt i
            opts.seed = i
            gen.generate(prompt, out, opts, pipe=pipe)
            r = score_clip(read_video(out).frames, pipe.fps, scene)
            results.append(r)
            moved += (r["score"] or 0.0) != (raw["clips"][i]["generated"]["score"] or 0.0)
    files_s = time.perf_counter() - t0
    files = summarize(results)
    print(f"model {args.model}, {len(prompts)} prompts, x264 preset {gen.PRESET}, CRF {opts.crf}")
    print(f"{'':<14}" + "".join(f"{k:>12}" for k in KEYS) + f"{'s':>7}")
    for name, s, secs in (("raw frames", raw["generated"], raw_s), ("MP4 files", files, files_s)):
        print(f"{name:<14}" + "".join(f"{s[k]:>12.3f}" for k in KEYS) + f"{secs:>7.0f}")
    print(f"clips whose score moved: {moved} of {len(prompts)}; all checks files / raw: "
          f"{files['all_checks'] / raw['generated']['all_checks']:.3f}")


if __name__ == "__main__":
    main()
