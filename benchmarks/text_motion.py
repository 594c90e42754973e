"""How far apart a text tower puts captions that differ only in their motion, measured.

    python benchmarks/text_motion.py                          # models/default
    python benchmarks/text_motion.py models/default runs/vclip  # a bundle and a CLIP run

For each source (a bundle or a `sora train clip` run) and each pair of captions it prints the
cosine of the tower's token outputs over the real tokens (what the DiT cross-attends to) and
of the pooled output (what its adaLN reads): near 1 means the DiT cannot tell the pair apart.
A red/blue pair shows what a difference the tower does keep looks like. With two or more
sources it also prints how far each later tower moved from the first on the same captions.
"""

from __future__ import annotations

import argparse

PAIRS = [("moving left", "moving right"), ("rising", "falling"), ("rising", "resting"),
         ("bouncing", "spinning"), ("growing", "shrinking")]
TEMPLATE = "a {color} ball {motion} on a beach"


def captions() -> list[tuple[str, str]]:
    pairs = [(TEMPLATE.format(color="red", motion=a), TEMPLATE.format(color="red", motion=b))
             for a, b in PAIRS]
    return pairs + [(TEMPLATE.format(color="red", motion="moving left"),
                     TEMPLATE.format(color="blue", motion="moving left"))]


def pair_cosines(text, a: str, b: str) -> tuple[float, float]:
    """(token-output cosine over the real tokens, pooled cosine) of two captions."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        tok, mask, pooled = text([a, b])
    n = int(mask[0].sum())
    return (float(F.cosine_similarity(tok[0, :n].flatten(), tok[1, :n].flatten(), dim=0)),
            float(F.cosine_similarity(pooled[0], pooled[1], dim=0)))


def drift(first, other) -> tuple[float, float]:
    """Mean cosine between two towers' features of the same captions (tokens, pooled)."""
    import torch
    import torch.nn.functional as F

    caps = [c for pair in captions() for c in pair]
    with torch.no_grad():
        t0, m0, p0 = first(caps)
        t1, _, p1 = other(caps)
    return (float(F.cosine_similarity(t0, t1, dim=-1)[m0].mean()),
            float(F.cosine_similarity(p0, p1, dim=-1).mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="*", default=["models/default"],
                    help="bundles (name or folder) or CLIP run folders")
    args = ap.parse_args()
    from sora_cli.train.runs import load_text_run

    towers = [load_text_run(s)[0] for s in args.sources]
    for src, text in zip(args.sources, towers):
        print(f"{src}: token outputs / pooled output")
        for a, b in captions():
            tok, pooled = pair_cosines(text, a, b)
            print(f"  {a!r} vs {b!r}: {tok:.3f} / {pooled:.3f}")
    for src, text in zip(args.sources[1:], towers[1:]):
        tok, pooled = drift(towers[0], text)
        print(f"{src} against {args.sources[0]}, same captions: tokens {tok:.3f}, "
              f"pooled {pooled:.3f}")


if __name__ == "__main__":
    main()
