"""Rectified flow: the training objective, the conditioning masks, and the sampler.

x_t = (1 - t)·x0 + t·noise runs from data (t=0) to noise (t=1); the DiT predicts the velocity
noise - x0. Time is per latent frame: frames the user gives (an image to animate, the end of
a clip to extend, both ends of a bridge) are held clean at t=0 and excluded from the loss, the
others are noised. Training draws such masks at random so one model learns every mode.

Conditioning `cond` everywhere is the TextEncoder's output tuple (tokens, mask, pooled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch


@dataclass
class FlowConfig:
    # Training times t = sigmoid(N(mean, std)), SD3's logit-normal. A mean of ln(s) trains at
    # the times a sampler with shift s visits (`sora train dit --time-shift`).
    logit_mean: float = 0.0
    logit_std: float = 1.0
    # Above 0, training times are uniform on [min_t, 1] instead: a high-noise expert, which
    # takes over the sampler's steps from `expert_t` up, trains only where it will be used.
    min_t: float = 0.0
    caption_dropout: float = 0.1
    # Sampling defaults (stored in the bundle; the lead tunes them on `sora eval`).
    steps: int = 20
    guidance: float = 4.0
    shift: float = 2.0          # >1 spends more steps at high noise, where layout is decided
    sampler: str = "euler"
    # Guidance only at steps whose time is at least this (0: every step). Layout, colour and
    # motion are settled at high noise; the low-noise steps only refine detail, where the
    # unconditional branch (half of each guided forward) changes little.
    guidance_min_t: float = 0.0
    # Share of the guidance term each latent frame takes from each neighbour in time (0: none,
    # 1/3: a 3-frame box). Guidance amplifies what the two branches disagree on, frame by
    # frame, and part of that disagreement differs from frame to frame: the videos flicker.
    # On the default bundle smoothing it cut the flicker but also the colour and motion that
    # guidance steers (EXPERIMENTS.md), so it is off unless a bundle's config turns it on.
    guidance_smoothing: float = 0.0
    # With a high-noise expert in the bundle (`dit_high.safetensors`), steps that start at
    # t >= expert_t run it instead of the main DiT (0: no expert). Layout and motion are drawn
    # at those steps, where the main DiT, trained on all times, trained least.
    expert_t: float = 0.0
    # Skip-layer guidance: at the guided steps whose time is at most skip_max_t, also push away
    # from the conditional velocity of the same DiT with `skip_layers` left out, by this scale
    # (0: off). The weakened model's errors are the undertrained model's own, so steering away
    # from them might firm up subjects that plain guidance leaves faint. On the default
    # bundle it raised the colour checks but flickered 2.4 times as much and lost CLIP score, as
    # stronger guidance does (EXPERIMENTS.md), so it is off unless a bundle's config turns it on.
    skip_guidance: float = 0.0
    skip_layers: tuple[int, ...] = ()
    skip_max_t: float = 1.0
    # At the steps starting at a t in [motion_plan_min_t, motion_plan_t], move the predicted
    # clip's subject along the path the prompt's motion gives it (sora_cli/motion_plan.py; 0:
    # off). This DiT takes motion from its noise more than from its motion words, but keeps a
    # layout it is given.
    motion_plan_t: float = 0.0
    motion_plan_min_t: float = 0.0
    # Best-of-N starting noises: `candidates` run as one batch down to the first step that
    # starts at a t <= choose_t, where the one whose predicted clip shows the prompt's subjects
    # most goes on (sora_cli/layout_choice.py; 1: off). Whether this DiT draws a small subject
    # at all is settled by its noise in those steps.
    candidates: int = 1
    choose_t: float = 0.0

    def __post_init__(self):
        # config.json gives a list; one form, so configs read back compare equal to defaults
        self.skip_layers = tuple(self.skip_layers)


# Probabilities of the conditioning masks drawn in training: none (text to video), the first
# frame (animate), the first k frames (extend), the first and last frames (bridge).
MASK_PROBS = (("none", 0.4), ("first", 0.25), ("first_k", 0.2), ("first_last", 0.15))


def _rand(generator: torch.Generator | None, *shape) -> torch.Tensor:
    return torch.rand(shape, generator=generator)


def sample_conditioning_mask(B: int, T: int, rng: torch.Generator | None = None) -> torch.Tensor:
    """(B, T) bool, True where the latent frame is given clean. At least one frame per row stays
    unknown; T=1 (an image) always gets no known frame."""
    mask = torch.zeros(B, T, dtype=torch.bool)
    if T < 2:
        return mask
    cum = torch.tensor([p for _, p in MASK_PROBS]).cumsum(0)
    u = _rand(rng, B)
    kinds = torch.searchsorted(cum / cum[-1], u, right=True).clamp(max=len(MASK_PROBS) - 1)
    ks = (_rand(rng, B) * (T - 1)).long() + 1  # 1..T-1 known frames for first_k
    for i in range(B):
        kind = MASK_PROBS[int(kinds[i])][0]
        if kind == "first":
            mask[i, 0] = True
        elif kind == "first_k":
            mask[i, : int(ks[i])] = True
        elif kind == "first_last" and T >= 3:
            mask[i, 0] = mask[i, -1] = True
        elif kind == "first_last":
            mask[i, 0] = True
    return mask


# Training on clips longer than the generation window: this share of the windows starts at
# the clip's first frame (text to video, animate, bridge); the rest start later and continue
# known latent frames, as each window after the first does when sora generates a long video
# or extends a clip. Only there does a window's first latent stand for four frames mid-clip
# instead of a clip's single first frame, so only such windows teach the DiT to continue one.
START_SHARE = 0.5


def sample_training_windows(x0: torch.Tensor, window: int, rng: torch.Generator | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a `window`-latent piece of each clip in x0 (B,C,L,h,w) and draw its conditioning
    mask: (B,C,window,h,w) latents, (B,window) bool known. Windows at the start get the masks
    of sample_conditioning_mask; later ones know their first k latents (k=1, the pipeline's
    context, half the time, else 1..window-1 uniformly) and nothing else."""
    B, L = x0.shape[0], x0.shape[2]
    if window <= 0 or window >= L:
        return x0, sample_conditioning_mask(B, L, rng)
    if window < 2:
        raise ValueError(f"a training window needs at least 2 latent frames, got {window}")
    later = _rand(rng, B) >= START_SHARE
    offsets = torch.where(later, 1 + (_rand(rng, B) * (L - window)).long(), torch.zeros(B).long())
    ks = torch.where(_rand(rng, B) < 0.5, torch.ones(B).long(),
                     1 + (_rand(rng, B) * (window - 1)).long())
    known = sample_conditioning_mask(B, window, rng)
    pos = torch.arange(window)
    known = torch.where(later[:, None], pos[None] < ks[:, None], known)
    idx = (offsets[:, None] + pos[None]).to(x0.device)               # (B, window)
    idx = idx[:, None, :, None, None].expand(-1, x0.shape[1], -1, *x0.shape[3:])
    return x0.gather(2, idx), known


def drop_captions(prompts: Sequence[str], p: float = 0.1,
                  rng: torch.Generator | None = None) -> list[str]:
    """Replace each caption by "" with probability p (the unconditional branch of CFG)."""
    u = _rand(rng, len(prompts))
    return ["" if float(u[i]) < p else s for i, s in enumerate(prompts)]


def sample_timesteps(B: int, cfg: FlowConfig, generator: torch.Generator | None = None,
                     device=None) -> torch.Tensor:
    if cfg.min_t > 0:
        return (cfg.min_t + (1 - cfg.min_t) * torch.rand(B, generator=generator)).to(device)
    n = torch.randn(B, generator=generator) * cfg.logit_std + cfg.logit_mean
    return torch.sigmoid(n).to(device)


def flow_loss(dit, x0: torch.Tensor, cond, known_mask: torch.Tensor | None = None,
              generator: torch.Generator | None = None, cfg: FlowConfig | None = None) -> torch.Tensor:
    """Rectified-flow loss on normalised latents x0 (B,C,T,h,w). `known_mask` (B,T) bool marks
    frames given clean (t=0) and left out of the loss. Noise and t come from `generator` (CPU)
    so a resumed run draws the same numbers."""
    cfg = cfg or FlowConfig()
    B, C, T, h, w = x0.shape
    dev = x0.device
    known = (torch.zeros(B, T, dtype=torch.bool) if known_mask is None else known_mask.cpu().bool()).to(dev)
    t = sample_timesteps(B, cfg, generator, dev)[:, None].expand(B, T)
    t = torch.where(known, torch.zeros_like(t), t)
    if generator is None:  # the device's own stream: no CPU draw and copy per step on a GPU
        noise = torch.randn(x0.shape, device=dev, dtype=x0.dtype)
    else:
        noise = torch.randn(x0.shape, generator=generator).to(dev, x0.dtype)
    tt = t[:, None, :, None, None].to(x0.dtype)
    xt = (1 - tt) * x0 + tt * noise
    tokens, mask, pooled = cond
    v = dit(xt, t, tokens, mask, pooled)
    err = (v.float() - (noise - x0).float()).pow(2).mean(dim=(1, 3, 4))  # (B, T)
    weight = (~known).float()
    return (err * weight).sum() / weight.sum().clamp(min=1.0)


def schedule(steps: int, shift: float = 1.0) -> torch.Tensor:
    """steps+1 times from 1 to 0, warped by the SD3 shift t' = s·t / (1 + (s-1)·t)."""
    t = torch.linspace(1.0, 0.0, steps + 1)
    return shift * t / (1 + (shift - 1) * t)


def _pad_cat(a: torch.Tensor, b: torch.Tensor, value=0) -> torch.Tensor:
    # Concatenate along batch, padding dim 1 (text length) to the longer of the two.
    L = max(a.shape[1], b.shape[1])

    def pad(x):
        if x.shape[1] == L:
            return x
        shape = list(x.shape)
        shape[1] = L - x.shape[1]
        return torch.cat([x, torch.full(shape, value, dtype=x.dtype, device=x.device)], dim=1)
    return torch.cat([pad(a), pad(b)], dim=0)


def _expand(cond, B: int):
    tokens, mask, pooled = cond
    if tokens.shape[0] == B:
        return tokens, mask, pooled
    if tokens.shape[0] != 1:
        raise ValueError(f"conditioning batch {tokens.shape[0]} does not match the sample batch {B}")
    return tokens.expand(B, -1, -1), mask.expand(B, -1), pooled.expand(B, -1)


def smooth_over_time(d: torch.Tensor, share: float, known_mask: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """(B,C,T,h,w) averaged over each latent frame and its two neighbours in time, each
    neighbour weighted `share` (1/3: equal weights). Known frames (known_mask (B,T), True where
    given) and frames past either end lend nothing: the rest are renormalised."""
    if share <= 0 or d.shape[2] < 2:
        return d
    B, T = d.shape[0], d.shape[2]
    w = torch.ones(B, T, device=d.device, dtype=d.dtype)
    if known_mask is not None:
        w = w.masked_fill(known_mask.to(d.device).bool(), 0.0)
    w5 = w[:, None, :, None, None]
    dw = d * w5
    zero_d, zero_w = torch.zeros_like(dw[:, :, :1]), torch.zeros_like(w5[:, :, :1])
    num = (1 - 2 * share) * dw + share * (torch.cat([zero_d, dw[:, :, :-1]], 2)
                                          + torch.cat([dw[:, :, 1:], zero_d], 2))
    den = (1 - 2 * share) * w5 + share * (torch.cat([zero_w, w5[:, :, :-1]], 2)
                                          + torch.cat([w5[:, :, 1:], zero_w], 2))
    return torch.where(den > 0, num / den.clamp_min(1e-12), d)


def velocity(dit, x: torch.Tensor, t: torch.Tensor, cond, uncond=None, guidance: float = 1.0,
             smoothing: float = 0.0, known_mask: torch.Tensor | None = None,
             skip_guidance: float = 0.0, skip_layers: Sequence[int] = ()) -> torch.Tensor:
    """The guided velocity: cond and uncond run as one batch of 2B (one forward, not two).
    `smoothing` > 0 smooths the guidance term over time (see FlowConfig.guidance_smoothing).
    `skip_guidance` > 0 adds skip_guidance x (conditional - conditional without
    `skip_layers`): one more forward of batch B (FlowConfig.skip_guidance)."""
    B = x.shape[0]
    tokens, mask, pooled = _expand(cond, B)
    if uncond is None or guidance == 1.0:
        v = vc = dit(x, t, tokens, mask, pooled)
    else:
        ut, um, up = _expand(uncond, B)
        both = dit(torch.cat([x, x]), torch.cat([t, t]), _pad_cat(tokens, ut),
                   _pad_cat(mask, um, False), torch.cat([pooled, up]))
        vc, vu = both.chunk(2)
        if smoothing <= 0:
            v = vu + guidance * (vc - vu)
        else:  # the conditional velocity as it is, plus the part guidance adds on top, smoothed
            v = vc + (guidance - 1) * smooth_over_time(vc - vu, smoothing, known_mask)
    if skip_guidance > 0 and skip_layers:
        weak = dit(x, t, tokens, mask, pooled, skip_layers=tuple(skip_layers))
        v = v + skip_guidance * (vc - weak)
    return v


@torch.no_grad()
def sample(dit, shape: Sequence[int], cond, uncond=None, known: torch.Tensor | None = None,
           known_mask: torch.Tensor | None = None, steps: int = 20, guidance: float = 4.0,
           shift: float = 2.0, sampler: str = "euler", generator: torch.Generator | None = None,
           progress: Callable[[int, int], None] | None = None, device=None,
           guidance_min_t: float = 0.0, guidance_smoothing: float = 0.0,
           start: tuple[float, torch.Tensor] | None = None, expert=None,
           expert_t: float = 0.0, skip_guidance: float = 0.0, skip_layers: Sequence[int] = (),
           skip_max_t: float = 1.0, relayout: Callable[[torch.Tensor], torch.Tensor] | None = None,
           relayout_t: float = 0.0, relayout_min_t: float = 0.0, candidates: int = 1,
           choose: Callable[[torch.Tensor], int] | None = None,
           choose_t: float = 0.0) -> torch.Tensor:
    """Generate normalised latents of `shape` (B,C,T,h,w).

    cond / uncond: (tokens, mask, pooled) with batch B or 1; uncond is the empty prompt or the
    negative prompt (the CFG branch to steer away from). known (B,C,T,h,w) and known_mask (B,T)
    give frames held clean every step. The initial noise comes from `generator` on the CPU, so
    a seed gives the same latents on any device. progress(i, steps) is called after each step.
    Guidance runs at the steps starting at t >= guidance_min_t; the others take the
    conditional velocity alone (one forward of batch B instead of 2B). guidance_smoothing
    smooths the guidance term over the latent frames (FlowConfig.guidance_smoothing).

    start = (t, x0) begins from latents x0 (B,C,T,h,w) noised to time t, the noise from
    `generator` as above, and runs only the schedule's steps from t down (SDEdit): the
    lower t, the more of x0 survives. t is rounded down to a time of the schedule; 1 is the
    same as no start.

    expert: a high-noise expert DiT that runs the steps starting at t >= expert_t instead of
    `dit` (FlowConfig.expert_t); None: `dit` runs every step.

    skip_guidance, skip_layers, skip_max_t: skip-layer guidance at the guided steps starting
    at t <= skip_max_t (FlowConfig.skip_guidance).

    relayout: at each step starting at a t in [relayout_min_t, relayout_t], the step's
    prediction is split into clean latents x0 = x - t·v and noise x + (1 - t)·v, x0 is replaced
    by relayout(x0) (held frames as given) and the step goes on from the two put back together
    (sora_cli/motion_plan.py).

    candidates, choose, choose_t: with candidates N > 1 and a choose (without one: a single
    clip), N clips (B must be 1) start from their own noise, the first the one a single sample
    would draw, and run as one batch down to the first step that starts at a t <= choose_t;
    there each one's prediction of its clean latents (N,C,T,h,w) goes to choose, which returns
    the index of the one to finish. The layout is settled by then, so best-of-N at the first
    steps costs those steps N times, not the whole clip (sora_cli/layout_choice.py).
    """
    if sampler not in ("euler", "heun"):
        raise ValueError(f"unknown sampler {sampler!r} (euler or heun)")
    if not 0 <= guidance_smoothing <= 0.5:
        raise ValueError(f"guidance_smoothing must be between 0 and 0.5, got {guidance_smoothing}")
    if expert is not None and not 0 < expert_t <= 1:
        raise ValueError(f"a high-noise expert needs expert_t in (0, 1], got {expert_t}")
    if skip_guidance < 0:
        raise ValueError(f"skip_guidance must be 0 or more, got {skip_guidance}")
    if relayout is not None and not 0 <= relayout_min_t <= relayout_t <= 1:
        raise ValueError("relayout times must satisfy 0 <= relayout_min_t <= relayout_t <= 1, got "
                         f"{relayout_min_t} and {relayout_t}")
    if candidates < 1:
        raise ValueError(f"candidates must be 1 or more, got {candidates}")
    picking = candidates > 1 and choose is not None
    if picking and shape[0] != 1:
        raise ValueError(f"candidates need a batch of 1, got {shape[0]}")
    depth = len(getattr(dit, "blocks", ()))
    if skip_guidance > 0 and depth and not all(0 <= int(i) < depth for i in skip_layers):
        raise ValueError(f"skip_layers must name blocks 0 to {depth - 1}, got {list(skip_layers)}")
    device = device or next(dit.parameters()).device
    B, T = shape[0], shape[2]
    n = candidates if picking else 1
    x = torch.randn((B * n,) + tuple(shape[1:]), generator=generator).to(device)
    ts = schedule(steps, shift).tolist()
    first = 0
    if start is not None:
        t_start, x0 = start
        if not 0 <= t_start <= 1:
            raise ValueError(f"start time must be between 0 and 1, got {t_start}")
        # the first step whose time is not above t_start (1e-6: float rounding of the schedule)
        first = next(i for i, tv in enumerate(ts) if tv <= t_start + 1e-6)
        x = (1 - ts[first]) * x0.to(device, x.dtype) + ts[first] * x
    km = None
    if known_mask is not None and known_mask.any():
        km = known_mask.to(device).bool()
        known = known.to(device, x.dtype)
        sel = km[:, None, :, None, None]
        x = torch.where(sel, known, x)

    def hold(x):
        return torch.where(km[:, None, :, None, None], known, x) if km is not None else x

    def times(tv: float) -> torch.Tensor:
        t = torch.full((x.shape[0], T), float(tv), device=device)
        return t.masked_fill(km, 0.0) if km is not None else t

    for i in range(first, steps):
        t0, t1 = ts[i], ts[i + 1]
        un = uncond if t0 >= guidance_min_t else None
        model = expert if expert is not None and t0 >= expert_t else dit
        # skip-layer guidance goes with classifier-free guidance: the same steps, up to its own
        # ceiling, since at the highest noise levels it made the flicker worse
        sg = skip_guidance if un is not None and t0 <= skip_max_t + 1e-6 else 0.0
        v = velocity(model, x, times(t0), cond, un, guidance, guidance_smoothing, km,
                     sg, skip_layers).to(x.dtype)
        if x.shape[0] > 1 and picking and t0 <= choose_t + 1e-6:
            k = _chosen(choose, hold(x - t0 * v))
            x, v = x[k:k + 1], v[k:k + 1]
        if relayout is not None and relayout_min_t - 1e-6 <= t0 <= relayout_t + 1e-6:
            x0, eps = hold(x - t0 * v), x + (1 - t0) * v
            x0 = relayout(x0).to(x.dtype)
            x, v = hold((1 - t0) * x0 + t0 * eps), eps - x0
        x_next = x + (t1 - t0) * v
        if sampler == "heun" and t1 > 0:
            # the step's own model for its corrector too, so one step is one model's
            v2 = velocity(model, hold(x_next), times(t1), cond, un, guidance, guidance_smoothing,
                          km, sg, skip_layers).to(x.dtype)
            x_next = x + (t1 - t0) * 0.5 * (v + v2)
        x = hold(x_next)
        if progress is not None:
            progress(i + 1, steps)
    if x.shape[0] > B:  # choose_t below every step: choose among the finished clips
        k = _chosen(choose, x)
        x = x[k:k + 1]
    return x


def _chosen(choose, x0: torch.Tensor) -> int:
    k = int(choose(x0))
    if not 0 <= k < x0.shape[0]:
        raise ValueError(f"choose picked candidate {k} of {x0.shape[0]}")
    return k
