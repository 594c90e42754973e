"""A wider latent from a trained VAE and DiT, without starting over.

Each of the old latent's channels is split into r = new/old channels. The VAE's encoder
writes each old channel's mean (and log-variance) into all r of its new channels, and its
decoder reads their average where it read the old channel, so the widened VAE starts close to
the old one: only its parameter-free shortcuts (which pool and repeat channel groups whose
size the width sets) differ. Training then teaches the r copies to carry different detail.
The DiT reads the r channels through the old channel's input weights shared among them and
writes each of them with the old channel's output weights. It is a start, not the old DiT:
the copies differ by their shortcuts, and the sampler's noise is independent per channel,
which the old weights cannot tell apart; its trunk is what carries over (the default bundle's
EXPERIMENTS.md, "A wider latent from the shipped one").

Tensors a width does not shape are left to the caller (they load as they are); a new width
that is not a multiple of the old one leaves the shaped tensors fresh.
"""

from __future__ import annotations

import torch


def _ratio(old: int, new: int) -> int | None:
    return new // old if new > old and new % old == 0 else None


def _split_rows(w: torch.Tensor, old: int, r: int, groups: int = 1):
    """Rows of `groups` consecutive blocks of `old` channels (dim 0, each channel `rest` rows
    long) -> each channel repeated r times in place."""
    blocks = w.unflatten(0, (groups, old, -1))            # (groups, old, rest, ...)
    return blocks.repeat_interleave(r, dim=1).flatten(0, 2)


def widen_vae(old_conf: dict, new_conf: dict, state: dict) -> dict:
    """A VAE state dict of latent width `old` -> one of width `new` (see the module doc)."""
    old, new = old_conf["z_channels"], new_conf["z_channels"]
    r = _ratio(old, new)
    if r is None:
        return state
    out = dict(state)
    for name in ("encoder.conv_out.conv.weight", "encoder.conv_out.conv.bias"):
        if name in state:   # rows: the means, then the log-variances
            out[name] = _split_rows(state[name], old, r, groups=2)
    name = "decoder.conv_in.conv.weight"
    if name in state:       # (out, z, ...): each new input column shares the old one's weight
        w = state[name]
        out[name] = w.repeat_interleave(r, dim=1) / r
    return out


def widen_dit(old_conf: dict, new_conf: dict, state: dict) -> dict:
    """A DiT state dict whose latents have `old` channels -> `new` (see the module doc).
    Token features are ordered (channel, patch row, patch column)."""
    old, new = old_conf["in_channels"], new_conf["in_channels"]
    r = _ratio(old, new)
    if r is None:
        return state
    out = dict(state)
    w = state["x_embed.weight"]                              # (D, C·p·p)
    out["x_embed.weight"] = (w.unflatten(1, (old, -1)).repeat_interleave(r, dim=1) / r
                             ).flatten(1)
    out["final.weight"] = _split_rows(state["final.weight"], old, r)   # (C·p·p, D)
    out["final.bias"] = _split_rows(state["final.bias"], old, r)
    return out
