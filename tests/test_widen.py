"""A wider latent split from a trained one (sora_cli/train/widen.py): the widened VAE and DiT
compute what the old ones did wherever the new channels' copies agree."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from sora_cli.nn.dit import DiT, DiTConfig
from sora_cli.nn.vae import VAEConfig, VideoVAE
from sora_cli.train.widen import widen_dit, widen_vae

VAE = {"channels": [8, 16, 16], "temporal_channels": 16, "temporal_blocks": 1}


def _randomized(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    # trained weights are not zero where a fresh model's are (adaLN-zero, output layers)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model.eval()


def _widened(cls, cfg_cls, conf: dict, old_model, widen, **new):
    new_conf = {**conf, **new}
    model = cls(cfg_cls(**new_conf)).eval()
    model.load_state_dict(widen(conf, new_conf, old_model.state_dict()))
    return model


@pytest.mark.parametrize("old,new", [(4, 8), (4, 16)])
def test_a_widened_vae_encodes_and_decodes_as_the_old_one(old, new):
    torch.manual_seed(0)
    conf = asdict(VAEConfig(z_channels=old, **VAE))
    vae = _randomized(VideoVAE(VAEConfig(**conf)), 1)
    wide = _widened(VideoVAE, VAEConfig, conf, vae, widen_vae, z_channels=new)
    r = new // old
    x = torch.rand(2, 3, 9, 32, 32) * 2 - 1
    with torch.no_grad():
        _, mean, logvar = vae.encode(x)
        _, wmean, wlogvar = wide.encode(x)
        # each old channel's mean is the average of its r new ones; its log-variance is theirs
        assert torch.allclose(wmean.unflatten(1, (old, r)).mean(2), mean, atol=1e-5)
        assert torch.allclose(wlogvar, logvar.repeat_interleave(r, 1), atol=1e-5)
        # r equal copies of a latent decode to what the old VAE made of it
        z = torch.randn(2, old, 3, 2, 2)
        assert torch.allclose(wide.decode(z.repeat_interleave(r, 1)), vae.decode(z), atol=1e-5)
    # the copies differ (the shortcut pools finer groups): the new channels can carry detail
    assert (wmean.unflatten(1, (old, r)).std(2) > 1e-3).any()


def test_a_widened_dit_predicts_for_each_copy_what_the_old_one_did():
    torch.manual_seed(0)
    conf = asdict(DiTConfig(in_channels=4, width=32, depth=2, heads=2, text_dim=16,
                            pooled_dim=16))
    dit = _randomized(DiT(DiTConfig(**conf)), 2)
    wide = _widened(DiT, DiTConfig, conf, dit, widen_dit, in_channels=12)
    x = torch.randn(2, 4, 3, 4, 4)
    t = torch.rand(2)
    tokens, mask, pooled = torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool), torch.randn(2, 16)
    with torch.no_grad():
        v = dit(x, t, tokens, mask, pooled)
        w = wide(x.repeat_interleave(3, 1), t, tokens, mask, pooled)
    assert w.shape == (2, 12, 3, 4, 4)
    assert torch.allclose(w, v.repeat_interleave(3, 1), atol=1e-4)


def test_a_width_that_is_no_multiple_is_left_to_start_fresh():
    conf = asdict(VAEConfig(z_channels=4, **VAE))
    state = VideoVAE(VAEConfig(**conf)).state_dict()
    assert widen_vae(conf, {**conf, "z_channels": 6}, state) is state
    assert widen_vae(conf, {**conf, "z_channels": 2}, state) is state
