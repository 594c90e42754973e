"""Choosing, among a few starting noises, the one whose early layout shows the prompt's subjects.

The default DiT leaves a small or low-contrast subject out of about one clip in six (a
missing subject fails its colour, shape and motion at once), and whether it draws one is
settled by the starting noise in the first few steps (EXPERIMENTS.md, "Choosing the layout").
So the sampler runs a few noises as one batch through those steps
(sampling.sample's candidates), decodes each one's prediction of its clean clip, and goes on
with the one in which the subjects the world's parser reads from the prompt show most, in
their colours and at least about their size. Best-of-N with a verifier, in the spirit of
noise selection for diffusion models; the verifier is the world's own colour reading
(sora_cli/checker.py), so it serves only built-in world bundles.

The bundle's CLIP was tried as the verifier first: it raised the CLIP score and lowered the
checks (the card), since it reads the setting and the colours of whole frames, not whether a
subject is there.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def subject_presence(frames: np.ndarray, scene) -> float:
    """How fully the scene's subjects show in (T,H,W,3) uint8 frames, 0 to 1: per subject and
    frame, its largest blob of its colour (and the parts beside it) over half the smallest
    area its size allows, capped at 1; averaged over frames, then subjects. 0 with none."""
    from sora_cli import checker
    from sora_cli.world.scene import SIZE_EXTENT

    if not scene.subjects:
        return 0.0
    T, H, W, _ = frames.shape
    labels, names = checker.label_frames(frames, scene.setting)
    min_px = max(4, int(H * W * 0.0002))
    shares = []
    for s in scene.subjects:
        need = 0.5 * (SIZE_EXTENT[s.size][0] * W) ** 2
        masks = checker.opening(checker.color_mask(labels, names, s.color))
        shares.append(np.mean([min(1.0, checker.subject_mask(m, min_px).sum() / need)
                               for m in masks]))
    return float(np.mean(shares))


# Latent frames of each candidate that are decoded and judged: the first three are a 2 s
# window's first 9 frames, where its subjects should show from the start. Decoding the whole
# window for four candidates cost a third of a 4 s clip's generation time.
JUDGED_LATENTS = 3


def layout_chooser(decode: Callable, scene) -> Callable:
    """sampling.sample's `choose`: decode(z (1,C,T,h,w)) -> (T,H,W,3) uint8 frames of the
    first JUDGED_LATENTS latent frames of each candidate's predicted clean latents; the index
    of the one whose subjects show most (the first of equals)."""
    def choose(x0) -> int:
        scores = [subject_presence(decode(x0[k:k + 1, :, :JUDGED_LATENTS]), scene)
                  for k in range(x0.shape[0])]
        return int(np.argmax(scores))
    return choose
