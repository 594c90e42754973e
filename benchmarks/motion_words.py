"""Does a bundle's DiT read motion words? Its flow loss on held-out world clips with their own
caption against their motion twin's caption (the same words, the opposite motion), measured.

    python benchmarks/motion_words.py                              # models/default
    python benchmarks/motion_words.py models/default runs/cand     # two bundles, same clips

For each bundle it prints the loss under the clip's own caption, under the twin's, the gap
(twin - own) overall, by noise level and by motion. Near 0: the DiT draws motion from its noise,
not from the prompt, whatever its text tower tells apart (`benchmarks/text_motion.py`). Clips,
noise and times are fixed by --seed, so bundles on the same VAE compare figure for figure.
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*", default=["default"], help="bundles (names or folders)")
    ap.add_argument("--clips", type=int, default=32, help="held-out clips (default 32)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="one JSON object per bundle")
    args = ap.parse_args(argv)

    import torch

    from sora_cli.bundle import load_bundle
    from sora_cli.train.dit import motion_word_gap

    torch.set_grad_enabled(False)
    for name in args.models:
        b = load_bundle(name)
        size, frames = b.config.frame_size[0], int(b.config.clip_frames)
        t0 = time.perf_counter()
        r = motion_word_gap(b.dit, b.vae, b.text, size, frames, float(b.config.fps),
                            count=args.clips, seed=args.seed)
        r["model"], r["seconds"] = name, round(time.perf_counter() - t0, 1)
        if args.json:
            print(json.dumps(r))
            continue
        print(f"{name}: flow loss, own caption {r['own_caption_loss']:.4f}, twin's caption "
              f"{r['twin_caption_loss']:.4f}, gap {r['gap']:+.4f} ({r['clips']} clips, "
              f"{r['seconds']:.0f} s)")
        print("  gap by t: " + ", ".join(f"{t} {v:+.4f}" for t, v in r["gap_by_t"].items()))
        print("  gap by motion: " + ", ".join(f"{m} {v:+.4f}"
                                               for m, v in r["gap_by_motion"].items()))


if __name__ == "__main__":
    main()
