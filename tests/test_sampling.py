"""Rectified flow at tiny sizes: the loss (known frames clean and excluded), masks, caption
dropout, and the sampler (known frames exact, batched CFG, seeds, Heun)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sora_cli.nn.dit import DiT, DiTConfig
from sora_cli.sampling import (FlowConfig, drop_captions, flow_loss, sample,
                               sample_conditioning_mask, schedule, smooth_over_time, velocity)

pytestmark = pytest.mark.usefixtures("one_thread")


CFG = DiTConfig(in_channels=4, patch_size=2, width=32, depth=2, heads=2, text_dim=16, pooled_dim=16)


def tiny_dit(seed=0, randomise=True):
    torch.manual_seed(seed)
    dit = DiT(CFG)
    if randomise:  # past adaLN-zero's identity start, so every input matters
        with torch.no_grad():
            for p in dit.parameters():
                p.add_(torch.randn_like(p) * 0.05)
    return dit


def cond(B, seed=1, L=4):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, L, 16, generator=g), torch.ones(B, L, dtype=torch.bool),
            torch.randn(B, 16, generator=g))


class Recorder(nn.Module):
    """The real DiT, recording what it was given and optionally adding `bump` to frame 0."""

    def __init__(self, dit, bump=0.0):
        super().__init__()
        self.dit, self.bump, self.calls = dit, bump, []

    def forward(self, x, t, *text, **kw):
        self.calls.append((x.clone(), t.clone()))
        v = self.dit(x, t, *text, **kw)
        v[:, :, 0] += self.bump
        return v


class Exact(nn.Module):
    """The exact velocity field of a point mass at `target`: v = noise - x0 with x0 = target."""

    def __init__(self, target):
        super().__init__()
        self.target, self.p = target, nn.Parameter(torch.zeros(1))

    def forward(self, x, t, *text):
        return (x - self.target) / t[:, None, :, None, None].clamp(min=1e-6)


def test_known_frames_clean_and_out_of_the_loss():
    dit = tiny_dit()
    x0 = torch.randn(2, 4, 3, 4, 4)
    known = torch.tensor([[True, False, False], [True, False, True]])
    rec = Recorder(dit)
    base = flow_loss(rec, x0, cond(2), known, generator=torch.Generator().manual_seed(5))
    xt, t = rec.calls[0]
    assert torch.equal(t[known], torch.zeros(int(known.sum())))
    assert (t[~known] > 0).all() and (t[~known] < 1).all()
    assert torch.equal(xt[:, :, 0], x0[:, :, 0]) and torch.equal(xt[1, :, 2], x0[1, :, 2])
    assert not torch.allclose(xt[0, :, 1], x0[0, :, 1])
    # a wrong prediction on the known frame 0 costs nothing ...
    bumped = flow_loss(Recorder(dit, bump=10.0), x0, cond(2), known,
                       generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(bumped, base)
    # ... but does when frame 0 is to be generated
    unmasked = flow_loss(Recorder(dit, bump=10.0), x0, cond(2), torch.zeros(2, 3, dtype=torch.bool),
                         generator=torch.Generator().manual_seed(5))
    assert unmasked > base + 10


def test_flow_training_lowers_loss():
    dit = tiny_dit(randomise=False)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 4, 2, 4, 4, generator=g) * 0.5 + torch.linspace(-1, 1, 4).view(1, 4, 1, 1, 1)
    c = cond(4)
    known = torch.tensor([[False, False], [True, False], [False, False], [True, False]])

    def eval_loss():  # same t and noise every time: a fair before/after comparison
        with torch.no_grad():
            return float(sum(flow_loss(dit, x0, c, known, torch.Generator().manual_seed(s)) for s in range(4)))
    before = eval_loss()
    opt = torch.optim.AdamW(dit.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    for _ in range(40):
        loss = flow_loss(dit, x0, c, known, generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert eval_loss() < 0.7 * before


def test_flow_loss_deterministic_with_generator():
    dit = tiny_dit()
    x0 = torch.randn(2, 4, 2, 4, 4)
    a = flow_loss(dit, x0, cond(2), None, generator=torch.Generator().manual_seed(3))
    b = flow_loss(dit, x0, cond(2), None, generator=torch.Generator().manual_seed(3))
    c = flow_loss(dit, x0, cond(2), None, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_time_shift_trains_at_the_times_a_shifted_sampler_visits():
    from sora_cli.sampling import sample_timesteps
    from sora_cli.train.dit import flow_for

    plain = sample_timesteps(4096, FlowConfig(), torch.Generator().manual_seed(0))
    shifted = sample_timesteps(4096, flow_for(2.0), torch.Generator().manual_seed(0))
    # the same draws, moved as schedule() moves a sampler's times with shift 2
    torch.testing.assert_close(shifted, 2 * plain / (1 + plain))
    assert float((shifted > 0.8).float().mean()) > 2 * float((plain > 0.8).float().mean())
    assert flow_for(1.0).logit_mean == 0.0
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(Exception, match="--time-shift"):
            flow_for(bad)


def test_min_t_trains_an_expert_uniformly_on_its_noise_levels():
    from sora_cli.sampling import sample_timesteps
    from sora_cli.train.dit import flow_for

    t = sample_timesteps(8192, flow_for(1.0, 0.75), torch.Generator().manual_seed(0))
    assert float(t.min()) >= 0.75 and float(t.max()) <= 1.0
    # uniform: each quarter of [0.75, 1] gets about a quarter of the draws
    counts = torch.histc(t, bins=4, min=0.75, max=1.0) / len(t)
    assert torch.allclose(counts, torch.full((4,), 0.25), atol=0.02), counts
    # 0 is the plain logit-normal, draw for draw (runs from before --min-t resume the same)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(sample_timesteps(64, flow_for(1.0, 0.0), g()),
                       sample_timesteps(64, FlowConfig(), g()))
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(Exception, match="--min-t"):
            flow_for(1.0, bad)
    with pytest.raises(Exception, match="--time-shift"):
        flow_for(2.0, 0.75)


def test_the_expert_runs_the_steps_from_expert_t_up():
    main, high = Recorder(tiny_dit(0)), Recorder(tiny_dit(1))
    c, u = cond(1), cond(1, seed=2)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    z = sample(main, (1, 4, 2, 4, 4), c, u, steps=6, shift=2.0, generator=gen(),
               expert=high, expert_t=0.8)
    ts = schedule(6, 2.0).tolist()[:-1]
    high_t = sorted({round(float(t.max()), 6) for _, t in high.calls}, reverse=True)
    main_t = sorted({round(float(t.max()), 6) for _, t in main.calls}, reverse=True)
    assert high_t == [round(t, 6) for t in ts if t >= 0.8] and len(high_t) == 2
    assert main_t == [round(t, 6) for t in ts if t < 0.8]
    # no expert: the main DiT alone, the same as before experts existed
    alone = sample(main, (1, 4, 2, 4, 4), c, u, steps=6, shift=2.0, generator=gen())
    assert not torch.equal(z, alone)
    same = sample(main, (1, 4, 2, 4, 4), c, u, steps=6, shift=2.0, generator=gen(),
                  expert_t=0.8)
    assert torch.equal(same, alone)   # expert_t without an expert changes nothing
    with pytest.raises(ValueError, match="expert_t"):
        sample(main, (1, 4, 2, 4, 4), c, u, steps=2, expert=high, expert_t=0.0)


def test_conditioning_masks():
    g = torch.Generator().manual_seed(0)
    masks = sample_conditioning_mask(4000, 5, g)
    assert masks.shape == (4000, 5) and masks.dtype == torch.bool
    assert (~masks).any(1).all()                         # something is always generated
    kinds = {"none": ~masks.any(1),
             "first": masks[:, 0] & ~masks[:, 1:].any(1),
             "first_last": masks[:, 0] & masks[:, -1] & ~masks[:, 1:-1].any(1),
             "first_k": masks[:, :2].all(1) & ~masks[:, -1]}
    for name, sel in kinds.items():
        assert 0.05 < sel.float().mean() < 0.6, name
    # every mask is one of the four kinds
    prefix = torch.tensor([masks[i].equal(torch.arange(5) < masks[i].sum()) for i in range(4000)])
    assert (prefix | kinds["first_last"]).all()
    assert not sample_conditioning_mask(50, 1, g).any()   # an image: nothing known
    a = sample_conditioning_mask(64, 9, torch.Generator().manual_seed(7))
    assert torch.equal(a, sample_conditioning_mask(64, 9, torch.Generator().manual_seed(7)))


def test_training_windows_cut_longer_clips_and_later_ones_continue_known_frames():
    from sora_cli.sampling import START_SHARE, sample_training_windows

    B, C, L, W = 4000, 2, 9, 5
    # each latent frame holds its own index, so a window tells where it was cut
    x0 = torch.arange(L, dtype=torch.float32)[None, None, :, None, None].expand(B, C, L, 3, 3)
    g = torch.Generator().manual_seed(0)
    xw, known = sample_training_windows(x0, W, g)
    assert xw.shape == (B, C, W, 3, 3) and known.shape == (B, W) and known.dtype == torch.bool
    offsets = xw[:, 0, 0, 0, 0].long()
    assert torch.equal(xw, (offsets[:, None] + torch.arange(W))[:, None, :, None, None]
                       .float().expand_as(xw))                      # contiguous pieces
    assert set(offsets.tolist()) == set(range(L - W + 1))           # every offset is used
    start = offsets == 0
    assert abs(start.float().mean() - START_SHARE) < 0.05
    assert (~known).any(1).all()                                    # something to generate
    later = known[~start]
    k = later.sum(1)
    assert (k >= 1).all() and (k <= W - 1).all()                    # they continue known frames
    assert torch.equal(later, torch.arange(W)[None] < k[:, None])   # ... at their start only
    assert 0.4 < (k == 1).float().mean() < 0.75                     # mostly the pipeline's one
    assert (~known[start].any(1)).float().mean() > 0.3              # starts still do text to video
    again = sample_training_windows(x0, W, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], xw) and torch.equal(again[1], known)
    # a window as long as the clip (or 0) leaves the clips whole, with the plain masks
    whole, m = sample_training_windows(x0[:64], 0, torch.Generator().manual_seed(1))
    assert whole is x0[:64] or torch.equal(whole, x0[:64])
    assert torch.equal(m, sample_conditioning_mask(64, L, torch.Generator().manual_seed(1)))
    with pytest.raises(ValueError):
        sample_training_windows(x0[:4], 1)


def test_caption_dropout():
    prompts = [f"prompt {i}" for i in range(2000)]
    out = drop_captions(prompts, 0.1, torch.Generator().manual_seed(0))
    dropped = sum(o == "" for o in out)
    assert 140 < dropped < 260
    assert all(o in ("", p) for o, p in zip(out, prompts))
    assert out == drop_captions(prompts, 0.1, torch.Generator().manual_seed(0))
    assert FlowConfig().caption_dropout == 0.1


def test_shifted_schedule():
    plain, shifted = schedule(10, 1.0), schedule(10, 3.0)
    assert plain[0] == shifted[0] == 1 and plain[-1] == shifted[-1] == 0
    assert (shifted[1:] - shifted[:-1] < 0).all()
    assert (shifted[1:-1] > plain[1:-1]).all()   # more of the steps at high noise


def test_sampling_keeps_known_frames_exact():
    dit = tiny_dit().eval()
    known = torch.randn(2, 4, 4, 4, 4)
    mask = torch.tensor([[True, False, False, False], [True, True, False, True]])
    out = sample(dit, (2, 4, 4, 4, 4), cond(2), cond(1, seed=9), known=known, known_mask=mask,
                 steps=4, guidance=3.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[0, :, 0], known[0, :, 0])
    assert torch.equal(out[1][:, mask[1]], known[1][:, mask[1]])
    assert not torch.allclose(out[0, :, 1], known[0, :, 1])
    # the DiT is told t=0 for them at every step
    rec = Recorder(dit)
    sample(rec, (2, 4, 4, 4, 4), cond(2), None, known=known, known_mask=mask, steps=3, guidance=1.0,
           generator=torch.Generator().manual_seed(0), sampler="heun")
    assert len(rec.calls) == 5  # heun: 2 evaluations per step except the last
    for x, t in rec.calls:
        assert torch.equal(t[mask], torch.zeros(int(mask.sum())))
        assert torch.equal(x[0, :, 0], known[0, :, 0])


def test_batched_cfg_equals_separate():
    dit = tiny_dit().eval()
    x = torch.randn(2, 4, 2, 4, 4)
    t = torch.tensor([[0.0, 0.6], [0.3, 0.3]])
    c = cond(2)
    u = cond(1, seed=5, L=2)  # negative prompt of another length, batch 1
    with torch.no_grad():
        batched = velocity(dit, x, t, c, u, guidance=4.0)
        vc = dit(x, t, *c)
        vu = dit(x, t, u[0].expand(2, -1, -1), u[1].expand(2, -1), u[2].expand(2, -1))
    torch.testing.assert_close(batched, vu + 4.0 * (vc - vu), atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(velocity(dit, x, t, c, u, guidance=1.0), vc)


def test_smooth_over_time_averages_neighbours_and_skips_known_frames():
    d = torch.arange(5.0).repeat_interleave(4).reshape(1, 1, 5, 2, 2) ** 2   # 0 1 4 9 16
    frames = lambda y: y[0, 0, :, 0, 0].tolist()
    assert torch.equal(smooth_over_time(d, 0.0), d)
    # equal weights: each frame the mean of itself and its neighbours; the ends have one
    assert frames(smooth_over_time(d, 1 / 3)) == pytest.approx([0.5, 5 / 3, 14 / 3, 29 / 3, 12.5])
    # a quarter each side, renormalised at the ends
    assert frames(smooth_over_time(d, 0.25)) == pytest.approx([1 / 3, 1.5, 4.5, 9.5, 41 / 3])
    const = torch.full((2, 3, 4, 2, 2), 7.0)
    torch.testing.assert_close(smooth_over_time(const, 1 / 3), const)
    # a known frame (given clean) lends nothing to the frames beside it
    known = torch.tensor([[True, False, False, False, False]])
    assert frames(smooth_over_time(d, 1 / 3, known))[1] == pytest.approx(2.5)   # (1 + 4) / 2
    assert torch.equal(smooth_over_time(d[:, :, :1], 1 / 3), d[:, :, :1])      # one frame


def guidance_case():
    """A randomised tiny DiT at one noise level: (dit, x, t, cond, uncond, vc, vu)."""
    dit = tiny_dit().eval()
    x = torch.randn(1, 4, 3, 4, 4)
    t = torch.full((1, 3), 0.6)
    c, u = cond(1), cond(1, seed=5)
    with torch.no_grad():
        return dit, x, t, c, u, dit(x, t, *c), dit(x, t, *u)


def test_guidance_smoothing_smooths_only_what_guidance_adds():
    dit, x, t, c, u, vc, vu = guidance_case()
    with torch.no_grad():
        smoothed = velocity(dit, x, t, c, u, guidance=4.0, smoothing=1 / 3)
        torch.testing.assert_close(velocity(dit, x, t, c, u, guidance=4.0, smoothing=0.0),
                                   vu + 4.0 * (vc - vu), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(velocity(dit, x, t, c, u, guidance=1.0, smoothing=1 / 3), vc)
    torch.testing.assert_close(smoothed, vc + 3.0 * smooth_over_time(vc - vu, 1 / 3),
                               atol=1e-5, rtol=1e-4)
    kw = dict(steps=3, guidance=4.0, shift=1.0)
    run = lambda **k: sample(dit, (1, 4, 3, 4, 4), c, u, generator=torch.Generator().manual_seed(3),
                             **kw, **k)
    assert torch.equal(run(), run(guidance_smoothing=0.0))
    assert not torch.allclose(run(), run(guidance_smoothing=1 / 3))
    with pytest.raises(ValueError, match="guidance_smoothing"):
        run(guidance_smoothing=0.6)


def test_skip_layer_guidance_steers_away_from_the_dit_without_its_skipped_blocks():
    dit, x, t, c, u, vc, vu = guidance_case()
    with torch.no_grad():
        weak = dit(x, t, *c, skip_layers=(1,))
        assert torch.equal(dit(x, t, *c, skip_layers=()), vc) and not torch.allclose(weak, vc)
        torch.testing.assert_close(velocity(dit, x, t, c, u, 4.0, 0.0, None, 1.5, (1,)),
                                   vu + 4.0 * (vc - vu) + 1.5 * (vc - weak), atol=1e-5, rtol=1e-4)
        # without classifier-free guidance it still steers from the conditional velocity
        torch.testing.assert_close(velocity(dit, x, t, c, None, 1.0, 0.0, None, 2.0, (0,)),
                                   vc + 2.0 * (vc - dit(x, t, *c, skip_layers=(0,))))
    # in the sampler it runs at the guided steps up to skip_max_t (one more batch-1 forward)
    rec = Recorder(dit)
    kw = dict(steps=4, guidance=3.0, shift=1.0, guidance_min_t=0.5)   # guided: 1, 0.75, 0.5
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    z = sample(rec, (1, 4, 3, 4, 4), c, u, generator=gen(), skip_guidance=1.0, skip_layers=(1,),
               skip_max_t=0.8, **kw)
    assert [x.shape[0] for x, _ in rec.calls] == [2, 2, 1, 2, 1, 1]
    plain = sample(dit, (1, 4, 3, 4, 4), c, u, generator=gen(), **kw)
    assert not torch.allclose(z, plain)
    assert torch.equal(plain, sample(dit, (1, 4, 3, 4, 4), c, u, generator=gen(),
                                     skip_guidance=0.0, skip_layers=(1,), **kw))
    assert torch.equal(plain, sample(dit, (1, 4, 3, 4, 4), c, u, generator=gen(),
                                     skip_guidance=1.0, skip_layers=(1,), skip_max_t=0.4, **kw))
    for bad in (dict(skip_guidance=1.0, skip_layers=(2,)), dict(skip_guidance=-1.0)):
        with pytest.raises(ValueError, match="skip_"):
            sample(dit, (1, 4, 3, 4, 4), c, u, generator=gen(), **kw, **bad)


def test_sampler_determinism_and_options():
    dit = tiny_dit().eval()
    shape = (1, 4, 2, 4, 4)
    kw = dict(steps=4, guidance=2.0, shift=2.0)
    a = sample(dit, shape, cond(1), cond(1, seed=2), generator=torch.Generator().manual_seed(11), **kw)
    b = sample(dit, shape, cond(1), cond(1, seed=2), generator=torch.Generator().manual_seed(11), **kw)
    c = sample(dit, shape, cond(1), cond(1, seed=2), generator=torch.Generator().manual_seed(12), **kw)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    neg = sample(dit, shape, cond(1), cond(1, seed=3), generator=torch.Generator().manual_seed(11), **kw)
    assert not torch.allclose(a, neg)     # the negative prompt is the uncond branch
    heun = sample(dit, shape, cond(1), cond(1, seed=2), generator=torch.Generator().manual_seed(11),
                  sampler="heun", **kw)
    assert heun.shape == shape and not torch.allclose(a, heun)
    seen = []
    sample(dit, shape, cond(1), None, steps=3, generator=torch.Generator().manual_seed(0),
           progress=lambda i, n: seen.append((i, n)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_guidance_only_from_guidance_min_t_up():
    # The steps starting below guidance_min_t run the conditional branch alone (batch B), the
    # others the guided batch of 2B; 0 guides every step, above 1 none, as uncond=None does.
    dit = tiny_dit().eval()
    shape = (1, 4, 2, 4, 4)
    kw = dict(steps=4, guidance=3.0, shift=1.0)
    ts = schedule(4, 1.0).tolist()[:-1]             # 1, 0.75, 0.5, 0.25
    rec = Recorder(dit)
    part = sample(rec, shape, cond(1), cond(1, seed=2), generator=torch.Generator().manual_seed(5),
                  guidance_min_t=0.5, **kw)
    assert [x.shape[0] for x, _ in rec.calls] == [2, 2, 2, 1]
    assert [round(float(t.max()), 4) for _, t in rec.calls] == [round(t, 4) for t in ts]

    def run(min_t, uncond=cond(1, seed=2)):
        return sample(dit, shape, cond(1), uncond, generator=torch.Generator().manual_seed(5),
                      guidance_min_t=min_t, **kw)
    assert torch.equal(run(0.0), sample(dit, shape, cond(1), cond(1, seed=2),
                                        generator=torch.Generator().manual_seed(5), **kw))
    torch.testing.assert_close(run(1.01), run(0.0, uncond=None))
    assert not torch.allclose(part, run(0.0)) and not torch.allclose(part, run(1.01))


def test_sampler_solves_a_known_flow():
    """With the exact velocity field of a point mass at x* the Euler sampler lands on x*."""
    target = torch.randn(1, 4, 2, 4, 4)
    out = sample(Exact(target), target.shape, cond(1), None, steps=8, guidance=1.0,
                 generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, target, atol=1e-4, rtol=1e-4)


def test_start_from_noised_latents_runs_only_the_steps_below():
    # SDEdit: x0 noised to the schedule's time at or below t, then only the later steps run.
    dit = tiny_dit().eval()
    shape = (1, 4, 2, 4, 4)
    x0 = torch.randn(shape, generator=torch.Generator().manual_seed(8))
    kw = dict(steps=4, guidance=3.0, shift=1.0)

    def run(start=None, model=dit):
        return sample(model, shape, cond(1), cond(1, seed=2), start=start,
                      generator=torch.Generator().manual_seed(5), **kw)
    assert torch.equal(run((1.0, x0)), run())
    assert torch.equal(run((0.0, x0)), x0)
    rec = Recorder(dit)
    part = run((0.6, x0), rec)            # the schedule 1, .75, .5, .25: starts at 0.5
    assert [round(float(t.max()), 4) for _, t in rec.calls] == [0.5, 0.25]
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(rec.calls[0][0][0:1], 0.5 * x0 + 0.5 * noise)
    assert not torch.allclose(part, run())
    with pytest.raises(ValueError, match="start time"):
        run((1.5, x0))


def test_a_start_keeps_known_frames_and_lands_on_a_known_flow():
    target = torch.randn(1, 4, 3, 4, 4)
    known = torch.randn(1, 4, 3, 4, 4)
    mask = torch.tensor([[True, False, False]])
    out = sample(Exact(target), target.shape, cond(1), None, known=known, known_mask=mask, steps=8,
                 guidance=1.0, start=(0.5, torch.zeros_like(target)),
                 generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, :, 0], known[:, :, 0])
    torch.testing.assert_close(out[:, :, 1:], target[:, :, 1:], atol=1e-4, rtol=1e-4)


def test_a_bundles_sampler_defaults_reach_the_sampler_whole_and_typed():
    # one list of sampler settings: each is a FlowConfig field the bundle stores and a keyword
    # of sample(), so a new FlowConfig sampling field cannot be left out of generation unseen
    import inspect
    from dataclasses import fields

    from sora_cli.pipeline import SamplerSettings

    flow = FlowConfig(steps=7, guidance=3, skip_layers=[2], guidance_min_t=0.25)
    s = SamplerSettings.from_flow(flow)
    args = s.sample_args()
    assert set(args) <= {f.name for f in fields(FlowConfig)}
    assert set(args) <= set(inspect.signature(sample).parameters)
    assert {n for n in inspect.signature(sample).parameters if hasattr(flow, n)} == set(args)
    assert args["steps"] == 7 and args["guidance"] == 3.0 and type(args["guidance"]) is float
    assert args["skip_layers"] == (2,) and args["guidance_min_t"] == 0.25
    assert s.drift_correction == SamplerSettings().drift_correction
