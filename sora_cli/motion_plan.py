"""Moving the drawn subject the way the prompt says, part way through sampling.

The default DiT takes a clip's motion mostly from its starting noise, not from its motion
words: its text tower maps "moving left" and "moving right" to nearly one point
(EXPERIMENTS.md, "Why motion fails"). But it draws the layout (where the subject is, its colour)
in the first few steps, and it keeps a layout it is given coherent from frame to frame. So at
each step that starts at a t between FlowConfig.motion_plan_min_t and motion_plan_t the sampler
splits its latents into the clean clip it predicts and the noise, and the clean clip is
rebuilt from its clearest latent frame: the subject's cells are moved, or scaled, along the
path the world's motion model gives the prompt (sora_cli/world/motion.py, the renderer's
own), over that frame's background. The later steps draw the detail on the moved layout. It is a plan drawn into the model's own
prediction, in the spirit of layout-planned video generation (LVD, Lian et al. 2023) and
cut-and-drag animation refined by a video model, with the world's parser as the planner.

In latent space a subject is the cells that stand out from their row: the world's settings
are horizontal bands (sky, horizon, ground).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

# Motions the plan draws; a bounce is left to the DiT, which draws it most of the time already
# and whose sideways drift is the renderer's coin toss; a spin is a turn inside the blob.
TRANSLATING = ("left", "right", "up", "down")
SCALING = ("grow", "shrink")


def latent_times(first: int, count: int, temporal: int, fps: float) -> list[float]:
    """Clip time (s) of latent frames first..first+count-1: the first latent is frame 0 alone,
    latent k >= 1 stands for frames temporal*k-(temporal-1)..temporal*k, taken at their middle."""
    return [0.0 if k == 0 else (temporal * k - (temporal - 1) / 2) / fps
            for k in range(first, first + count)]


def scene_path(scene, times: Sequence[float], height: int, width: int
               ) -> list[tuple[float, float, float]] | None:
    """(x, y, scale) of the scene's leading subject at `times`, in frame pixels and relative
    size: the first subject that moves across the frame, else the first that grows or shrinks,
    else, when every subject stands still, none moving. None: nothing to plan (no subjects,
    a bounce or a spin leads)."""
    from sora_cli.world.motion import Camera, subject_pose

    subjects = scene.subjects
    lead = next((s for s in subjects if s.motion in TRANSLATING), None) \
        or next((s for s in subjects if s.motion in SCALING), None) \
        or (subjects[0] if subjects and all(s.motion == "still" for s in subjects) else None)
    if lead is None:
        return None
    camera = Camera(scene.camera, height, width)
    s = replace(lead, x=0.5, y=0.5, extent=1.0, heading=0)
    path = []
    for t in times:
        pose = subject_pose(s, t, height, width)
        x, y, z = camera.to_frame(pose.x, pose.y, t)
        path.append((x, y, pose.extent / width * z))
    return path


def subject_cells(frame, spread: float = 2.0):
    """(h, w) bool: the cells of a latent frame (C,h,w) that stand out from their row's median
    by more than `spread` robust deviations; and how far each does, and the row medians (C,h)."""
    row = frame.median(dim=2).values
    dev = (frame - row[:, :, None]).norm(dim=0)
    med = dev.median()
    mad = (dev - med).abs().median()
    return dev > med + spread * 1.4826 * mad + 1e-6, dev, row


def moved_layout(x0, path: Sequence[tuple[float, float, float]], cell: int,
                 spread: float = 2.0, grow: int = 1):
    """x0 (B,C,T,h,w) rebuilt from its frame whose subject stands out most: every frame is that
    frame's background (subject cells filled with their row's median) with its subject cells
    placed where `path` ((x, y, scale) per frame, pixels; `cell` pixels a latent cell) puts
    them relative to that frame."""
    import torch
    import torch.nn.functional as F

    B, C, T, h, w = x0.shape
    if len(path) != T:
        raise ValueError(f"a path of {len(path)} points for {T} latent frames")
    out = x0.clone()
    ys = torch.arange(h, dtype=torch.float32)[:, None].expand(h, w)
    xs = torch.arange(w, dtype=torch.float32)[None, :].expand(h, w)
    for b in range(B):
        found = [subject_cells(x0[b, :, k], spread) for k in range(T)]
        src = max(range(T), key=lambda k: float((found[k][1] * found[k][0]).sum()))
        mask, _dev, row = found[src]
        if not mask.any():
            continue
        if grow:
            mask = F.max_pool2d(mask[None, None].float(), 2 * grow + 1, 1, grow)[0, 0] > 0
        f0 = x0[b, :, src]
        bg = torch.where(mask[None], row[:, :, None].expand_as(f0), f0)
        cy, cx = float(ys[mask].mean()), float(xs[mask].mean())
        px0, py0, s0 = path[src]
        for k in range(T):
            px, py, s = path[k]
            r = s / s0
            # each target cell takes the source cell it comes from (nearest)
            qy = torch.round(cy + (ys - cy - (py - py0) / cell) / r).long()
            qx = torch.round(cx + (xs - cx - (px - px0) / cell) / r).long()
            ok = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
            qy, qx = qy.clamp(0, h - 1), qx.clamp(0, w - 1)
            take = ok & mask[qy, qx]
            out[b, :, k] = torch.where(take[None], f0[:, qy, qx], bg)
    return out
