"""The networks at tiny sizes: VAE (shapes, causality, chunked decode, training), DiT (any
shape, per-frame timesteps), text encoder (open_clip tokens, frozen tower, contrastive loss)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from sora_cli.nn.dit import DiT, DiTConfig
from sora_cli.nn.text import TextEncoder, build_clip, clip_loss, clip_score, tiny_text_config
from sora_cli.nn.vae import VAEConfig, VideoVAE, latent_stats, tensor_to_video, video_to_tensor

pytestmark = pytest.mark.usefixtures("one_thread")


TINY_VAE = VAEConfig(z_channels=4, channels=(8, 16, 16), temporal_channels=16, temporal_blocks=1)
TINY_DIT = DiTConfig(in_channels=4, patch_size=2, width=32, depth=2, heads=2, text_dim=24, pooled_dim=16)


def flat_world_clip(frames: int = 9, size: int = 32, seed: int = 0) -> np.ndarray:
    """Flat sky/ground with a moving coloured square: the kind of frame the world renders."""
    rng = np.random.default_rng(seed)
    out = np.zeros((frames, size, size, 3), np.uint8)
    sky, ground, subj = rng.integers(0, 256, (3, 3))
    x0, y0 = rng.integers(0, size // 2, 2)
    for t in range(frames):
        out[t, : size * 2 // 3] = sky
        out[t, size * 2 // 3:] = ground
        x = (x0 + 2 * t) % (size - 8)
        out[t, y0:y0 + 8, x:x + 8] = subj
    return out


def tiny_vae(seed=0):
    torch.manual_seed(seed)
    return VideoVAE(TINY_VAE).eval()


def test_vae_shapes_image_and_video():
    vae = tiny_vae()
    with torch.no_grad():
        z, mean, logvar = vae.encode(torch.rand(2, 3, 9, 32, 48) * 2 - 1)
        assert z.shape == mean.shape == logvar.shape == (2, 4, 3, 2, 3)
        assert vae.decode(z).shape == (2, 3, 9, 32, 48)
        zi, _, _ = vae.encode(torch.rand(1, 3, 1, 32, 32) * 2 - 1)
        assert zi.shape == (1, 4, 1, 2, 2)
        assert vae.decode(zi).shape == (1, 3, 1, 32, 32)
    assert vae.latent_shape(17, 256, 256) == (4, 5, 16, 16)
    with pytest.raises(ValueError, match="4k\\+1"):
        vae.encode(torch.zeros(1, 3, 8, 32, 32))
    with pytest.raises(ValueError, match="multiple of 16"):
        vae.encode(torch.zeros(1, 3, 5, 30, 32))


@pytest.mark.parametrize("channels, factor", [((8,), 4), ((8, 16), 8), ((8, 16, 16), 16)])
def test_vae_levels_set_the_spatial_factor(channels, factor):
    torch.manual_seed(0)
    vae = VideoVAE(VAEConfig(z_channels=4, channels=channels, temporal_channels=16,
                             temporal_blocks=1)).eval()
    assert vae.cfg.spatial_factor == factor
    with torch.no_grad():
        z = vae.encode(torch.rand(1, 3, 5, 32, 64) * 2 - 1)[0]
        assert z.shape == (1, 4, 2, 32 // factor, 64 // factor)
        assert vae.decode(z).shape == (1, 3, 5, 32, 64)
    assert vae.latent_shape(17, 256, 256) == (4, 5, 256 // factor, 256 // factor)
    if factor > 4:
        with pytest.raises(ValueError, match=f"multiple of {factor}"):
            vae.latent_shape(5, 32 + factor // 2, 32)
    with pytest.raises(ValueError, match="1 to 4 level widths"):
        VAEConfig(channels=())


def test_vae_is_causal_and_first_frame_alone():
    vae = tiny_vae()
    video = torch.rand(1, 3, 13, 32, 32) * 2 - 1
    later = video.clone()
    later[:, :, 5:] = torch.rand_like(later[:, :, 5:])  # change frames 5.. (latent frames 2, 3)
    with torch.no_grad():
        z = vae.encode(video)[1]
        z2 = vae.encode(later)[1]
        zimg = vae.encode(video[:, :, :1])[1]
    assert torch.equal(z[:, :, :2], z2[:, :, :2])        # latents 0,1 see frames <= 4 only
    assert not torch.allclose(z[:, :, 2:], z2[:, :, 2:])
    torch.testing.assert_close(zimg[:, :, 0], z[:, :, 0], atol=1e-5, rtol=1e-5)
    # and the decoder: changing later latents leaves the earlier frames alone
    with torch.no_grad():
        d1 = vae.decode(z)
        d2 = vae.decode(torch.cat([z[:, :, :2], torch.randn_like(z[:, :, 2:])], 2))
    assert torch.equal(d1[:, :, :5], d2[:, :, :5])


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_chunked_decode_equals_full(chunk):
    vae = tiny_vae()
    z = torch.randn(2, 4, 5, 2, 3)
    with torch.no_grad():
        full = vae.decode(z)
        part = vae.decode(z, chunk=chunk)
        pieces = list(vae.decode_iter(z, chunk=chunk))
    assert full.shape == (2, 3, 17, 32, 48)
    torch.testing.assert_close(part, full, atol=1e-5, rtol=1e-5)
    assert len(pieces) == -(-5 // chunk)


def test_vae_training_lowers_loss_and_psnr_rises():
    torch.manual_seed(0)
    vae = VideoVAE(TINY_VAE)
    clips = np.stack([flat_world_clip(5, 32, s) for s in range(4)])
    video = video_to_tensor(clips)
    assert video.shape == (4, 3, 5, 32, 32) and video.min() >= -1 and video.max() <= 1
    opt = torch.optim.AdamW(vae.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    first = None
    for _ in range(40):
        loss, logs = vae.loss(video, generator=gen)
        first = first or logs
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert set(first) >= {"loss", "l1", "mse", "kl", "psnr"}
    assert logs["loss"] < 0.6 * first["loss"]
    assert logs["psnr"] > first["psnr"] + 3
    vae.eval()
    with torch.no_grad():
        z = vae.encode(video)[0]
    mean, std = latent_stats(z)
    vae.set_latent_stats(mean, std)
    zn = vae.normalize_latents(z)
    assert abs(float(zn.mean())) < 1e-3 and abs(float(zn.std()) - 1) < 0.05
    torch.testing.assert_close(vae.denormalize_latents(zn), z, atol=1e-5, rtol=1e-5)
    frames = tensor_to_video(vae.decode(z))
    assert frames.shape == (4, 5, 32, 32, 3) and frames.dtype == np.uint8


def test_decoder_loss_trains_the_decoder_alone_and_noises_in_dit_units():
    vae = tiny_vae()
    video = video_to_tensor(np.stack([flat_world_clip(5, 32, s) for s in range(2)]))
    with torch.no_grad():
        z = vae.encode(video)[0]
    vae.set_latent_stats(*latent_stats(z))
    # no noise: the reconstruction terms of the full loss at the latent means (eval mode)
    loss, logs = vae.decoder_loss(video)
    _, full = vae.loss(video)
    for k in ("l1", "mse", "grad", "psnr"):
        assert logs[k] == pytest.approx(full[k], rel=1e-6)
    assert logs["kl"] == 0.0
    vae.zero_grad()
    loss.backward()
    assert all(p.grad is None for p in vae.encoder.parameters())
    assert any(float(p.grad.abs().sum()) > 0 for p in vae.decoder.parameters())
    # noise: reproducible by seed, and it costs reconstruction
    noisy = [vae.decoder_loss(video, 0.8, torch.Generator().manual_seed(3))[1] for _ in range(2)]
    assert noisy[0] == noisy[1] and noisy[0]["mse"] != logs["mse"]
    other = vae.decoder_loss(video, 0.8, torch.Generator().manual_seed(4))[1]
    assert other["mse"] != noisy[0]["mse"]


def tiny_dit(seed=0, cfg=TINY_DIT):
    torch.manual_seed(seed)
    dit = DiT(cfg)
    # adaLN-zero starts as the identity; randomise so outputs depend on every input
    with torch.no_grad():
        for p in dit.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return dit.eval()


def text_inputs(B, L=5, cfg=TINY_DIT):
    g = torch.Generator().manual_seed(1)
    mask = torch.ones(B, L, dtype=torch.bool)
    mask[:, 3:] = False
    return torch.randn(B, L, cfg.text_dim, generator=g), mask, torch.randn(B, cfg.pooled_dim, generator=g)


@pytest.mark.parametrize("T,h,w", [(1, 4, 4), (3, 2, 8), (5, 6, 4), (2, 10, 2)])
def test_dit_any_length_and_aspect(T, h, w):
    dit = tiny_dit()
    x = torch.randn(2, 4, T, h, w)
    with torch.no_grad():
        v = dit(x, torch.rand(2, T), *text_inputs(2))
    assert v.shape == x.shape and torch.isfinite(v).all()


def test_dit_rejects_odd_latent_size():
    with pytest.raises(ValueError, match="patch size"):
        tiny_dit()(torch.randn(1, 4, 1, 3, 4), torch.rand(1, 1), *text_inputs(1))


def test_dit_per_frame_timestep():
    dit = tiny_dit()
    x = torch.randn(1, 4, 3, 4, 4)
    cond = text_inputs(1)
    with torch.no_grad():
        scalar = dit(x, torch.tensor([0.7]), *cond)
        per_frame = dit(x, torch.full((1, 3), 0.7), *cond)
        known0 = dit(x, torch.tensor([[0.0, 0.7, 0.7]]), *cond)
    torch.testing.assert_close(scalar, per_frame)
    # frame 0 given clean changes the prediction (its own tokens see t=0) ...
    assert not torch.allclose(known0[:, :, 0], per_frame[:, :, 0], atol=1e-4)
    # ... and, through attention, the other frames too
    assert not torch.allclose(known0[:, :, 1:], per_frame[:, :, 1:], atol=1e-6)


def test_dit_text_mask_and_empty_prompt():
    dit = tiny_dit()
    x = torch.randn(1, 4, 2, 4, 4)
    tokens, mask, pooled = text_inputs(1)
    t = torch.rand(1, 2)
    with torch.no_grad():
        a = dit(x, t, tokens, mask, pooled)
        junk = tokens.clone()
        junk[:, 3:] = 100.0  # padded positions must not matter
        b = dit(x, t, junk, mask, pooled)
        none = dit(x, t, tokens, torch.zeros_like(mask), pooled)
    torch.testing.assert_close(a, b)
    assert torch.isfinite(none).all()


def test_dit_under_bf16_autocast_is_silent_and_close_to_fp32():
    # On a bf16 CPU `sora generate` runs the DiT under autocast; the text projection's norm
    # once got a bf16 input beside a float32 weight and torch warned on every generation.
    dit = tiny_dit()
    x, t, cond = torch.randn(1, 4, 2, 4, 4), torch.rand(1, 2), text_inputs(1)
    with torch.no_grad():
        ref = dit(x, t, *cond)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with torch.autocast("cpu", dtype=torch.bfloat16):
                low = dit(x, t, *cond)
    torch.testing.assert_close(low.float(), ref, atol=0.1, rtol=0.1)


def test_dit_zero_init_outputs_zero():
    torch.manual_seed(0)
    dit = DiT(TINY_DIT)
    with torch.no_grad():
        v = dit(torch.randn(1, 4, 2, 4, 4), torch.rand(1, 2), *text_inputs(1))
    assert torch.count_nonzero(v) == 0  # adaLN-zero: the untrained model predicts zero velocity


# --- text encoder --------------------------------------------------------------------------------

TINY_TEXT = tiny_text_config(width=32, layers=1, heads=2, embed_dim=16, image_size=32,
                             vision_width=32, vision_layers=1, context_length=16)


def test_text_encoder_tokens_mask_pooled():
    torch.manual_seed(0)
    enc = TextEncoder(build_clip(TINY_TEXT))
    tokens, mask, pooled = enc(["a red ball bouncing on a beach", ""])
    assert tokens.shape == (2, 16, 32) and pooled.shape == (2, 16)
    assert mask.dtype == torch.bool
    # SOT + 7 words + EOT for the caption; SOT + EOT for the empty prompt
    assert mask.sum(1).tolist() == [9, 2]
    assert enc.dim == 32 and enc.pooled_dim == 16
    assert not any(p.requires_grad for p in enc.parameters())
    enc.train()
    assert not enc.clip.training
    t2, _, p2 = enc(["a red ball bouncing on a beach"])
    torch.testing.assert_close(t2[0], tokens[0])
    torch.testing.assert_close(p2[0], pooled[0])
    # the DiT consumes them directly
    dit = tiny_dit(cfg=DiTConfig(in_channels=4, width=32, depth=1, heads=2, text_dim=32, pooled_dim=16))
    with torch.no_grad():
        assert dit(torch.randn(2, 4, 1, 2, 2), torch.rand(2, 1), tokens, mask, pooled).shape == (2, 4, 1, 2, 2)


def test_text_inputs_start_as_the_dit_they_grow_from_and_then_tell_words_apart():
    import dataclasses

    torch.manual_seed(0)
    enc = TextEncoder(build_clip(TINY_TEXT))
    prompts = ["a red ball moving left on a beach", "a red ball moving right on a beach"]
    out, mask, pooled = enc(prompts)
    enc.with_inputs = True
    both, _, _ = enc(prompts)
    assert enc.dim == 64 and both.shape == (2, 16, 64)
    torch.testing.assert_close(both[..., :32], out)   # outputs first, as before
    tower = enc.clip
    ids = tower.tokenizer(prompts)
    torch.testing.assert_close(both[..., 32:],
                               tower.token_embedding(ids) + tower.positional_embedding[:16])

    base_cfg = DiTConfig(in_channels=4, width=32, depth=1, heads=2, text_dim=32, pooled_dim=16)
    base = tiny_dit(cfg=base_cfg)
    grown = DiT(dataclasses.replace(base_cfg, text_inputs=True)).eval()
    missing, unexpected = grown.load_state_dict(base.state_dict(), strict=False)
    assert sorted(missing) == ["text_in.0.weight", "text_in.1.bias", "text_in.1.weight"]
    assert not unexpected
    assert all(k.startswith(DiT.GROWN) for k in missing)
    x, t = torch.randn(2, 4, 2, 2, 2), torch.rand(2, 2)
    with torch.no_grad():
        torch.testing.assert_close(grown(x, t, both, mask, pooled), base(x, t, out, mask, pooled))
        # once its weights move, the inputs reach the velocity
        grown.text_in[1].weight.normal_(std=0.1)
        moved = grown(x, t, both, mask, pooled)
        other = both.clone()
        other[..., 32:] = torch.randn_like(other[..., 32:])
        assert not torch.allclose(moved, grown(x, t, other, mask, pooled))
        assert not torch.allclose(moved, base(x, t, out, mask, pooled))


def test_token_cache_gives_the_tokenizers_ids():
    from sora_cli.nn.text import TextEncoderConfig, get_tokenizer, tokenize

    tok = get_tokenizer(TextEncoderConfig())
    prompts = ["a red ball", "a blue star in the desert", "a red ball", ""]
    first = tokenize(tok, prompts)
    assert torch.equal(first, tok(prompts))
    assert torch.equal(tokenize(tok, prompts[::-1]), tok(prompts[::-1]))  # from the cache


def test_clip_training_lowers_contrastive_loss():
    torch.manual_seed(0)
    clip = build_clip(TINY_TEXT)
    colours = {"red": (1, -1, -1), "green": (-1, 1, -1), "blue": (-1, -1, 1), "white": (1, 1, 1)}
    images = torch.stack([torch.tensor(c, dtype=torch.float32).view(3, 1, 1).expand(3, 48, 64)
                          for c in colours.values()])
    captions = [f"a {name} ball" for name in colours]
    opt = torch.optim.AdamW(clip.parameters(), lr=2e-3)
    first = None
    for _ in range(25):
        loss, logs = clip_loss(clip, images, captions)
        first = first or logs
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert logs["loss"] < 0.5 * first["loss"]
    assert logs["acc"] == 1.0
    clip.eval()
    s = clip_score(clip, images[:, :, None].expand(4, 3, 3, 48, 64), captions)
    wrong = clip_score(clip, images, captions[1:] + captions[:1])
    assert s.shape == (4,) and (s > wrong).all()


def test_frame_grid_tiles_evenly_spaced_frames_row_by_row():
    from sora_cli.nn.text import TextEncoderConfig, clip_views, frame_grid

    # frame t of clip b is filled with 10*b + t, so every tile says which frame it is
    video = (torch.arange(2)[:, None] * 10 + torch.arange(5)).float().view(2, 1, 5, 1, 1)
    video = video.expand(2, 3, 5, 4, 6)
    grid = frame_grid(video, 4)
    assert grid.shape == (2, 3, 8, 12)
    # frames 0, 1, 3, 4 of the five (evenly spaced, first and last included), row by row
    assert grid[1, 0, ::4, ::6].tolist() == [[10, 11], [13, 14]]
    assert torch.equal(frame_grid(video, 1), video[:, :, :1, :, :].reshape(2, 3, 4, 6))
    # a frame CLIP scores every frame; a clip CLIP one grid per clip
    assert clip_views(TextEncoderConfig(), video).shape == (10, 3, 4, 6)
    assert clip_views(TextEncoderConfig(vision_frames=4), video).shape == (2, 3, 8, 12)
    with pytest.raises(ValueError, match="square number"):
        TextEncoderConfig(vision_frames=3)
