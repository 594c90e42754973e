"""The causal video VAE: 16x spatial (8x with two levels) and 4x temporal compression, first
frame on its own.

Layout, chosen for the CPU budget (decode 33 frames at 256² in well under a second):
- High resolutions are handled per frame by thin 2D convolutions, entered and left through a
  4x4 pixel (un)shuffle so nothing runs at full resolution (as LTX-Video does).
- Time is mixed only at the lowest resolution (1/16 by default): the frame sequence is
  padded in front with three copies of frame 0 and folded into groups of 4 frames (channels
  x4), then causal 3D convolutions run over the groups. Latent frame 0 therefore sees frame 0 alone (an image is
  a one-frame video) and latent k sees only frames <= 4k; clips have 4k+1 frames.
- Every resolution change also has a parameter-free shortcut (space-to-channel averaging on
  the way down, channel-to-space repetition on the way up, as DC-AE does), so the residual
  path carries the pixels from the first step.
- Normalisation is per frame (GroupNorm over space), never across time, so the model stays
  causal and decoding chunk by chunk with a cache of the last frames of every causal conv
  gives exactly the full decode, with memory flat in the clip length.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class VAEConfig:
    in_channels: int = 3
    z_channels: int = 16
    # 2D per-frame widths at 1/4, 1/8, 1/16 resolution (after the 4x4 pixel unshuffle); each
    # width is a level, so (32, 64) makes an 8x VAE: 4x more latent positions, each carrying
    # a quarter of the pixels (a DiT on it takes patch_size 4 for the same token count).
    channels: tuple = (32, 64, 128)
    temporal_channels: int = 128   # width of the causal 3D part at the lowest resolution
    temporal_blocks: int = 2
    res_blocks: int = 1            # 2D residual blocks per resolution
    kl_weight: float = 1e-5        # tiny: latents are normalised anyway; PSNR first
    grad_weight: float = 0.5       # L1 on image gradients: keeps thin streaks and edges sharp
    # Latent normalisation (per channel), measured on data after training; empty = identity.
    latent_mean: list = field(default_factory=list)
    latent_std: list = field(default_factory=list)

    temporal_factor = 4

    def __post_init__(self):
        self.channels = tuple(self.channels)
        if not 1 <= len(self.channels) <= 4:
            raise ValueError(f"channels must list 1 to 4 level widths, got {list(self.channels)}")

    @property
    def spatial_factor(self) -> int:
        return 4 * 2 ** (len(self.channels) - 1)


def _act(x):
    # erf GELU: SiLU/sigmoid is ~4x slower on this AVX2 CPU and the VAE is activation-heavy.
    return F.gelu(x)


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c // 4) or 1, c, eps=1e-6)


class ResBlock2d(nn.Module):
    def __init__(self, c_in: int, c_out: int | None = None):
        super().__init__()
        c_out = c_out or c_in
        self.n1, self.c1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.n2, self.c2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x):
        h = self.c1(_act(self.n1(x)))
        h = self.c2(_act(self.n2(h)))
        return self.skip(x) + h


class CausalConv3d(nn.Module):
    """3x3x3 conv that sees only the present and past, on frame-major tensors (B,T,C,h,w).

    The past is padded by repeating the first frame, or taken from `cache` (the previous
    chunk's last frames) when streaming. It runs as one 2D conv over the 3 stacked frames,
    because torch's CPU Conv3d falls back to a slow path (~4x slower here)."""

    def __init__(self, c_in: int, c_out: int, kt: int = 3):
        super().__init__()
        self.kt = kt
        self.conv = nn.Conv2d(kt * c_in, c_out, 3, padding=1)

    def forward(self, x, cache: dict | None = None):
        B, T, C, h, w = x.shape
        k = self.kt - 1
        if cache is not None and id(self) in cache:
            past = cache[id(self)]
        else:
            past = x[:, :1].expand(-1, k, -1, -1, -1)
        xp = torch.cat([past, x], dim=1)
        if cache is not None:
            cache[id(self)] = xp[:, -k:].detach()
        stacked = torch.cat([xp[:, i:i + T] for i in range(self.kt)], dim=2)
        return self.conv(stacked.reshape(B * T, self.kt * C, h, w)).view(B, T, -1, h, w)


def _frame_norm(norm: nn.GroupNorm, x: torch.Tensor) -> torch.Tensor:
    # GroupNorm per frame (never across time) on (B,T,C,h,w).
    return norm(x.flatten(0, 1)).view(x.shape)


class CausalResBlock3d(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.n1, self.c1 = _norm(c), CausalConv3d(c, c)
        self.n2, self.c2 = _norm(c), CausalConv3d(c, c)

    def forward(self, x, cache=None):
        h = self.c1(_act(_frame_norm(self.n1, x)), cache)
        h = self.c2(_act(_frame_norm(self.n2, h)), cache)
        return x + h


def _to_frames(x):   # (B,C,T,H,W) -> (B*T,C,H,W)
    B, C, T, H, W = x.shape
    return x.transpose(1, 2).reshape(B * T, C, H, W)


def _from_frames(x, B):  # (B*T,C,H,W) -> (B,C,T,H,W)
    BT, C, H, W = x.shape
    return x.reshape(B, BT // B, C, H, W).transpose(1, 2)


def _group_mean(x: torch.Tensor, c_out: int):
    """Average consecutive channel groups of (N, C, ...) down to c_out channels (0 when C is
    not a multiple of c_out: no shortcut for such widths)."""
    if x.shape[1] % c_out:
        return 0
    return x.unflatten(1, (c_out, -1)).mean(2)


def _repeat(x: torch.Tensor, c_out: int):
    """Repeat each channel of (N, C, ...) to reach c_out channels (0 when not a multiple)."""
    if c_out % x.shape[1]:
        return 0
    return x.repeat_interleave(c_out // x.shape[1], dim=1)


class Down(nn.Module):
    """Stride-2 conv plus a parameter-free space-to-channel shortcut (DC-AE): the residual path
    carries the pixels, so a high-compression autoencoder trains much faster."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=2, padding=1)
        self.c_out = c_out
        self.shortcut = (4 * c_in) % c_out == 0

    def forward(self, x):
        y = self.conv(x)
        return y + _group_mean(F.pixel_unshuffle(x, 2), self.c_out) if self.shortcut else y


class Up(nn.Module):
    """Nearest 2x upsample + conv, plus the channel-to-space shortcut mirroring Down."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.c_out = c_out
        self.shortcut = (4 * c_out) % c_in == 0

    def forward(self, x):
        y = self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return y + F.pixel_shuffle(_repeat(x, 4 * self.c_out), 2) if self.shortcut else y


def _levels(widths, change, res_blocks: int) -> nn.Sequential:
    """Residual blocks at each width, with a resolution `change` (Down or Up) between widths."""
    layers: list[nn.Module] = []
    for i, c in enumerate(widths):
        if i > 0:
            layers.append(change(widths[i - 1], c))
        layers += [ResBlock2d(c) for _ in range(res_blocks)]
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        c0, c2 = cfg.channels[0], cfg.channels[-1]
        ct = cfg.temporal_channels
        self.conv_in = nn.Conv2d(cfg.in_channels * 16, c0, 3, padding=1)
        self.spatial = _levels(cfg.channels, Down, cfg.res_blocks)
        self.fold = nn.Conv2d(4 * c2, ct, 1)
        self.temporal = nn.ModuleList(CausalResBlock3d(ct) for _ in range(cfg.temporal_blocks))
        self.norm_out = _norm(ct)
        self.conv_out = CausalConv3d(ct, 2 * cfg.z_channels)
        self.z = cfg.z_channels

    def forward(self, video):
        B, C, T, H, W = video.shape
        x = F.pixel_unshuffle(_to_frames(video), 4)
        x = self.spatial(self.conv_in(x))
        _, c, h, w = x.shape
        x = x.view(B, T, c, h, w)                               # frame-major
        x = torch.cat([x[:, :1].expand(-1, 3, -1, -1, -1), x], dim=1)
        Tl = x.shape[1] // 4
        x = x.reshape(B * Tl, 4 * c, h, w)
        x = (self.fold(x) + _group_mean(x, self.fold.out_channels)).view(B, Tl, -1, h, w)
        for blk in self.temporal:
            x = blk(x)
        out = self.conv_out(_act(_frame_norm(self.norm_out, x)))  # (B, Tl, 2z, h, w)
        # shortcut into the mean half only (DC-AE): the latent starts as pooled features
        short = _group_mean(x.flatten(0, 1), self.z)
        mean = out[:, :, :self.z] + (short.view(B, Tl, self.z, h, w) if torch.is_tensor(short) else 0)
        return torch.cat([mean, out[:, :, self.z:]], dim=2).transpose(1, 2)


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        c0, c2 = cfg.channels[0], cfg.channels[-1]
        ct = cfg.temporal_channels
        self.c2 = c2
        self.conv_in = CausalConv3d(cfg.z_channels, ct)
        self.temporal = nn.ModuleList(CausalResBlock3d(ct) for _ in range(cfg.temporal_blocks))
        self.unfold = nn.Conv2d(ct, 4 * c2, 1)
        self.spatial = _levels(cfg.channels[::-1], Up, cfg.res_blocks)
        self.norm_out = _norm(c0)
        self.conv_out = nn.Conv2d(c0, cfg.in_channels * 16, 3, padding=1)

    def temporal_part(self, z, cache=None, first: bool = True):
        """Latents (B,C,Tl,h,w) -> frame features (B, T, c2, h, w) at latent resolution: 4 frames
        per latent frame, 3 fewer for the very first latent frame of a clip."""
        zt = z.transpose(1, 2)
        B, Tl, C, h, w = zt.shape
        short = _repeat(zt.flatten(0, 1), self.conv_in.conv.out_channels)
        x = self.conv_in(zt, cache)
        if torch.is_tensor(short):
            x = x + short.view(x.shape)
        for blk in self.temporal:
            x = blk(x, cache)
        ct = x.shape[2]
        x = x.reshape(B * Tl, ct, h, w)
        x = (self.unfold(x) + _repeat(x, 4 * self.c2)).reshape(B, Tl * 4, self.c2, h, w)
        return x[:, 3:] if first else x

    def spatial_part(self, feats):
        """Frame features (B,T,c2,h,w) -> video (B,3,T,H,W)."""
        B = feats.shape[0]
        x = self.spatial(feats.flatten(0, 1))
        x = self.conv_out(_act(self.norm_out(x)))
        return _from_frames(F.pixel_shuffle(x, 4), B)


class VideoVAE(nn.Module):
    def __init__(self, cfg: VAEConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or VAEConfig()
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    # --- shapes -----------------------------------------------------------------------------
    @staticmethod
    def latent_frames(num_frames: int) -> int:
        if num_frames < 1 or (num_frames - 1) % 4:
            raise ValueError(f"a clip must have 4k+1 frames (1, 5, 9, 13, 17, ...), got {num_frames}")
        return 1 + (num_frames - 1) // 4

    @staticmethod
    def video_frames(latent_frames: int) -> int:
        return 1 + 4 * (latent_frames - 1)

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, T, h, w) of the latents of a clip; height and width must be multiples of the
        spatial factor."""
        f = self.cfg.spatial_factor
        if height % f or width % f:
            raise ValueError(f"frame size {width}x{height} must be a multiple of {f}")
        return self.cfg.z_channels, self.latent_frames(num_frames), height // f, width // f

    # --- encode / decode ----------------------------------------------------------------------
    def encode(self, video: torch.Tensor, sample: bool = False,
               generator: torch.Generator | None = None):
        """video (B,3,T,H,W) in [-1,1], T = 4k+1, H and W multiples of the spatial factor f ->
        (z, mean, logvar), each (B, z_channels, k+1, H/f, W/f). z is the mean unless `sample` (raw latents:
        call normalize_latents before the DiT)."""
        self.latent_shape(video.shape[2], video.shape[3], video.shape[4])
        moments = self.encoder(video)
        mean, logvar = moments.float().chunk(2, dim=1)
        logvar = logvar.clamp(-30.0, 20.0)
        if sample:
            eps = torch.randn(mean.shape, generator=generator).to(mean.device)
            z = mean + torch.exp(0.5 * logvar) * eps
        else:
            z = mean
        return z, mean, logvar

    def decode_iter(self, z: torch.Tensor, chunk: int = 2) -> Iterator[torch.Tensor]:
        """Decode raw latents (B,C,Tl,h,w) `chunk` latent frames at a time; yields (B,3,t,H,W)
        frames in [-1,1] (about 4·chunk frames each). Memory does not grow with Tl."""
        cache: dict = {}
        for i in range(0, z.shape[2], max(1, chunk)):
            feats = self.decoder.temporal_part(z[:, :, i:i + chunk], cache, first=(i == 0))
            yield self.decoder.spatial_part(feats).clamp(-1, 1)

    def decode(self, z: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """Raw latents (B,C,Tl,h,w) -> video (B,3,4(Tl-1)+1,fh,fw) in [-1,1] (f: the spatial factor). With `chunk`,
        decoding runs that many latent frames at a time (same result, bounded memory)."""
        return torch.cat(list(self.decode_iter(z, chunk or z.shape[2])), dim=2)

    def forward(self, video, generator=None):
        z, mean, logvar = self.encode(video, sample=self.training, generator=generator)
        return self._decode_train(z), mean, logvar

    def _decode_train(self, z):
        # Unclamped so the reconstruction loss keeps its gradient at the colour extremes.
        return self.decoder.spatial_part(self.decoder.temporal_part(z))

    # --- training -----------------------------------------------------------------------------
    def loss(self, video: torch.Tensor, generator: torch.Generator | None = None):
        """video (B,3,T,H,W) in [-1,1] -> (loss, logs). Loss = L1 + MSE + grad_weight·L1 of
        spatial gradients + kl_weight·KL; logs hold floats incl. PSNR (dB, on [0,255])."""
        rec, mean, logvar = self(video, generator=generator)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        return self._reconstruction_loss(rec, video, kl)

    def decoder_loss(self, video: torch.Tensor, latent_noise: float = 0.0,
                     generator: torch.Generator | None = None):
        """The reconstruction loss of the decoder alone, from the encoder's latent means (no
        gradient reaches the encoder, so the latent space a DiT learned stays as it is). With
        `latent_noise` each clip's latents get Gaussian noise of a std drawn uniformly from
        [0, latent_noise] in the DiT's normalised units: a DiT's latents are never exact, and
        a decoder that saw only exact ones turns every small error into flicker."""
        with torch.no_grad():
            _, mean, _ = self.encode(video)
            if latent_noise:
                _, std = self._stats(mean)
                sigma = torch.rand((mean.shape[0],) + (1,) * (mean.dim() - 1),
                                   generator=generator) * latent_noise
                eps = torch.randn(mean.shape, generator=generator)
                mean = mean + (sigma * eps).to(mean.device) * std
        return self._reconstruction_loss(self._decode_train(mean), video,
                                         torch.zeros((), device=video.device))

    def _reconstruction_loss(self, rec, video, kl):
        cfg = self.cfg
        rec = rec.float()
        target = video.float()
        l1 = (rec - target).abs().mean()
        mse = (rec - target).pow(2).mean()

        def grads(x):
            return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]
        (ry, rx), (ty, tx) = grads(rec), grads(target)
        grad = (ry - ty).abs().mean() + (rx - tx).abs().mean()
        loss = l1 + mse + cfg.grad_weight * grad + cfg.kl_weight * kl
        with torch.no_grad():
            mse01 = ((rec.clamp(-1, 1) - target) / 2).pow(2).mean()
            psnr = 10 * torch.log10(1.0 / mse01.clamp(min=1e-10))
        logs = {k: float(v.detach()) for k, v in
                (("loss", loss), ("l1", l1), ("mse", mse), ("grad", grad), ("kl", kl), ("psnr", psnr))}
        return loss, logs

    # --- latent normalisation ----------------------------------------------------------------
    def _stats(self, z):
        C = z.shape[1]
        mean = self.cfg.latent_mean or [0.0] * C
        std = self.cfg.latent_std or [1.0] * C
        shape = (1, C) + (1,) * (z.dim() - 2)
        return (torch.tensor(mean, dtype=z.dtype, device=z.device).view(shape),
                torch.tensor(std, dtype=z.dtype, device=z.device).view(shape))

    def normalize_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latents -> roughly zero-mean unit-variance per channel (what the DiT sees)."""
        mean, std = self._stats(z)
        return (z - mean) / std

    def denormalize_latents(self, z: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(z)
        return z * std + mean

    denormalize = denormalize_latents

    def set_latent_stats(self, mean, std) -> None:
        self.cfg.latent_mean = [float(v) for v in mean]
        self.cfg.latent_std = [float(v) for v in std]


def latent_stats(z: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of raw latents (B,C,T,h,w) for VideoVAE.set_latent_stats."""
    zc = z.float().transpose(0, 1).reshape(z.shape[1], -1)
    return zc.mean(1).tolist(), zc.std(1).clamp(min=1e-4).tolist()


def video_to_tensor(frames, device=None) -> torch.Tensor:
    """uint8 frames (T,H,W,3) numpy/torch, or a batch (B,T,H,W,3) -> float (B,3,T,H,W) in [-1,1]."""
    x = torch.as_tensor(frames)
    if x.dim() == 4:
        x = x[None]
    return (x.to(device).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0)


def tensor_to_video(x: torch.Tensor):
    """float (B,3,T,H,W) in [-1,1] -> uint8 numpy (B,T,H,W,3)."""
    y = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return y.permute(0, 2, 3, 4, 1).cpu().numpy()
