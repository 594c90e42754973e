"""The diffusion transformer: predicts the flow velocity of a noisy latent video given text.

Shaped like facebookresearch/DiT with the video changes of the large systems: latents are
patchified 1x2x2 into tokens, positions are 3D rotary embeddings (so any length, width,
height and aspect work without retraining tables), every block is conditioned through
adaLN-zero and cross-attends to the text tokens, and queries/keys are RMS-normalised
(QK-norm) so attention logits stay tame in bf16.

The timestep is per latent frame, not per sample: clean known frames (t=0) sit next to
noisy ones, so one model does text-to-video, image-to-video, extension and bridging.
The adaLN modulation is therefore computed per (sample, frame) and broadcast to that
frame's tokens, which costs nothing extra.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DiTConfig:
    in_channels: int = 16       # latent channels of the VAE
    patch_size: int = 2         # spatial patch (time patch is 1)
    # Sized for the CPU budget: ~6.2M params, ~140 ms per batch-2 forward on 9x64 tokens (fp32,
    # 2 cores; bf16 is emulated and far slower on this AVX2-only CPU).
    width: int = 192
    depth: int = 8
    heads: int = 3
    mlp_ratio: float = 3.0
    text_dim: int = 256         # per-token text features (TextEncoder.dim)
    pooled_dim: int = 256       # pooled text feature (TextEncoder.pooled_dim)
    rope_theta: float = 100.0   # positions are small integers (frames, 8..32 tokens a side)
    # Also read the text tower's input per token (token + position embedding), not only its
    # output. A CLIP trained on single frames learns to ignore motion words, which no frame
    # shows: the shipped tower's outputs for "moving left" and "moving right" have a cosine
    # of 0.993, the word embeddings 0.22. The text tokens then carry both, text_dim each.
    text_inputs: bool = False

    @property
    def head_dim(self) -> int:
        return self.width // self.heads


def _rope_split(head_dim: int) -> tuple[int, int, int]:
    # Time gets a quarter of the rotary dims, height and width share the rest; all even.
    dt = (head_dim // 4) // 2 * 2
    dh = ((head_dim - dt) // 2) // 2 * 2
    dw = head_dim - dt - dh
    return dt, dh, dw


def _axis_angles(n: int, dim: int, theta: float, device) -> torch.Tensor:
    freqs = 1.0 / theta ** (torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    return torch.outer(torch.arange(n, device=device, dtype=torch.float32), freqs)  # (n, dim/2)


def rope_3d(T: int, h: int, w: int, head_dim: int, theta: float, device) -> torch.Tensor:
    """Unit complex rotations (T*h*w, head_dim/2) for tokens ordered (t, y, x)."""
    dt, dh, dw = _rope_split(head_dim)
    at = _axis_angles(T, dt, theta, device)[:, None, None, :].expand(T, h, w, dt // 2)
    ah = _axis_angles(h, dh, theta, device)[None, :, None, :].expand(T, h, w, dh // 2)
    aw = _axis_angles(w, dw, theta, device)[None, None, :, :].expand(T, h, w, dw // 2)
    ang = torch.cat([at, ah, aw], dim=-1).reshape(T * h * w, head_dim // 2)
    return torch.polar(torch.ones_like(ang), ang)


def apply_rope(x: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    # x (B, heads, N, head_dim): consecutive pairs as complex numbers (one fused multiply; the
    # cos/sin form costs ~5x more elementwise time on this CPU).
    xc = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))
    return torch.view_as_real(xc * rot).flatten(-2).to(x.dtype)


class QKNorm(nn.Module):
    """RMS norm over the head dim with a learned scale (vector_norm is ~5x faster than
    nn.RMSNorm's pow/mean path on CPU)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps
        self.scale = dim ** 0.5

    def forward(self, x):
        n = torch.linalg.vector_norm(x.float(), dim=-1, keepdim=True)
        return (x.float() * (self.scale / (n + self.eps))).to(x.dtype) * self.weight.to(x.dtype)


class RMSNorm(nn.RMSNorm):
    """nn.RMSNorm whose weight takes the input's dtype. Under bf16 autocast the Linear before it
    gives bf16, and a float32 weight beside that input makes torch leave its fused kernel for a
    slower path and print a warning into every `sora generate` on a bf16 CPU."""

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight.to(x.dtype), self.eps)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of t in [0, 1] (scaled by 1000 as in DiT), any leading shape."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (t.float() * 1000.0)[..., None] * freqs
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.q_norm = QKNorm(dim // heads)
        self.k_norm = QKNorm(dim // heads)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, rot):
        B, N, D = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        q = apply_rope(self.q_norm(q), rot)
        k = apply_rope(self.k_norm(k), rot)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.q_norm = QKNorm(dim // heads)
        self.k_norm = QKNorm(dim // heads)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, ctx, ctx_mask):
        B, N, D = x.shape
        L = ctx.shape[1]
        hd = D // self.heads
        q = self.q_norm(self.q(x).view(B, N, self.heads, hd).transpose(1, 2))
        k, v = self.kv(ctx).view(B, L, 2, self.heads, hd).permute(2, 0, 3, 1, 4)
        k = self.k_norm(k)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=ctx_mask[:, None, None, :])
        return self.proj(out.transpose(1, 2).reshape(B, N, D))


def _modulate(x, shift, scale):
    # x (B, T, n, D); shift/scale (B, T, 1, D): each frame's tokens get that frame's timestep.
    return x * (1 + scale) + shift


class DiTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(dim, heads)
        self.norm_x = nn.LayerNorm(dim, eps=1e-6)
        self.cross = CrossAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        # erf GELU: the tanh form is ~6x slower on this CPU
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.ada = nn.Linear(dim, 6 * dim)  # zero-initialised: each block starts as identity

    def forward(self, x, c, T, rot, ctx, ctx_mask):
        B, N, D = x.shape
        mods = self.ada(F.silu(c))[:, :, None, :].chunk(6, dim=-1)  # each (B, T, 1, D)
        sh1, sc1, g1, sh2, sc2, g2 = mods
        h = _modulate(self.norm1(x).view(B, T, -1, D), sh1, sc1).view(B, N, D)
        x = x + (g1 * self.attn(h, rot).view(B, T, -1, D)).view(B, N, D)
        x = x + self.cross(self.norm_x(x), ctx, ctx_mask)
        h = _modulate(self.norm2(x).view(B, T, -1, D), sh2, sc2).view(B, N, D)
        x = x + (g2 * self.mlp(h).view(B, T, -1, D)).view(B, N, D)
        return x


class DiT(nn.Module):
    # Parameters a DiT may add to a checkpoint it goes on from (zero-initialised, so the
    # model starts out computing what the checkpoint did).
    GROWN = ("text_in.",)
    # Its text path: what maps the text tower's features into the DiT (token and pooled
    # projections, every block's cross-attention). Training only these adapts a trained DiT to
    # a new text tower without touching how it draws.
    TEXT_PATH = ("text_proj.", "text_in.", "pooled_embed.", ".cross.")

    def text_path_only(self) -> "DiT":
        """Freeze every parameter outside the text path (TEXT_PATH); returns self."""
        for name, p in self.named_parameters():
            p.requires_grad_(any(key in f".{name}" for key in self.TEXT_PATH))
        return self

    def __init__(self, cfg: DiTConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or DiTConfig()
        D, p, C = cfg.width, cfg.patch_size, cfg.in_channels
        if D % cfg.heads or (D // cfg.heads) % 2:
            raise ValueError("width must split into heads of even size")
        self.x_embed = nn.Linear(C * p * p, D)
        self.t_embed = nn.Sequential(nn.Linear(D, D), nn.SiLU(), nn.Linear(D, D))
        self.pooled_embed = nn.Sequential(nn.Linear(cfg.pooled_dim, D), nn.SiLU(), nn.Linear(D, D))
        self.text_proj = nn.Sequential(nn.Linear(cfg.text_dim, D), RMSNorm(D))
        if cfg.text_inputs:
            # normalised first: the embeddings' RMS is about 0.03 against the outputs' 1 (the
            # default bundle), so unnormalised they would take a 30x larger weight to be heard
            self.text_in = nn.Sequential(RMSNorm(cfg.text_dim), nn.Linear(cfg.text_dim, D))
        self.blocks = nn.ModuleList(DiTBlock(D, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.final_norm = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Linear(D, 2 * D)
        self.final = nn.Linear(D, C * p * p)
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.t_embed[0].weight, std=0.02)
        nn.init.normal_(self.t_embed[2].weight, std=0.02)
        for blk in self.blocks:
            nn.init.zeros_(blk.ada.weight)
            nn.init.zeros_(blk.ada.bias)
        for m in (self.final_ada, self.final):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
        if self.cfg.text_inputs:
            # zero: a DiT that goes on from one without text inputs starts as it was
            nn.init.zeros_(self.text_in[1].weight)
            nn.init.zeros_(self.text_in[1].bias)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor, t: torch.Tensor, text_tokens: torch.Tensor,
                text_mask: torch.Tensor, pooled: torch.Tensor,
                skip_layers: tuple[int, ...] = ()) -> torch.Tensor:
        """x (B,C,T,h,w) noisy latents; t (B,T) per-frame time in [0,1] (or (B,)); text_tokens
        (B,L,text_dim) (2 x text_dim with cfg.text_inputs: outputs, then inputs), text_mask
        (B,L) bool (True = real token), pooled (B,pooled_dim).
        Returns the velocity (B,C,T,h,w). h and w must be multiples of the patch size.
        skip_layers: blocks to leave out, a weaker model for skip-layer guidance (sampling)."""
        cfg = self.cfg
        B, C, T, h, w = x.shape
        p = cfg.patch_size
        if h % p or w % p:
            raise ValueError(f"latent size {h}x{w} is not a multiple of the patch size {p}")
        gh, gw = h // p, w // p
        if t.dim() == 1:
            t = t[:, None].expand(B, T)
        # (B,C,T,h,w) -> (B, T*gh*gw, C*p*p), tokens ordered (t, y, x)
        tok = x.reshape(B, C, T, gh, p, gw, p).permute(0, 2, 3, 5, 1, 4, 6).reshape(B, T * gh * gw, C * p * p)
        tok = self.x_embed(tok)
        c = self.t_embed(timestep_embedding(t, cfg.width).to(tok.dtype)) + self.pooled_embed(pooled)[:, None, :]
        if cfg.text_inputs:
            out, inp = text_tokens.split(cfg.text_dim, dim=-1)
            ctx = self.text_proj[1](self.text_proj[0](out) + self.text_in(inp))
        else:
            ctx = self.text_proj(text_tokens)
        mask = text_mask.bool()
        # A row with no real token would give NaN attention; let it see the first slot instead.
        mask = mask | ~mask.any(dim=1, keepdim=True) & (torch.arange(mask.shape[1], device=mask.device) == 0)
        rot = rope_3d(T, gh, gw, cfg.head_dim, cfg.rope_theta, x.device)
        for i, blk in enumerate(self.blocks):
            if i not in skip_layers:
                tok = blk(tok, c, T, rot, ctx, mask)
        shift, scale = self.final_ada(F.silu(c))[:, :, None, :].chunk(2, dim=-1)
        tok = _modulate(self.final_norm(tok).view(B, T, gh * gw, -1), shift, scale)
        out = self.final(tok)  # (B, T, gh*gw, C*p*p)
        out = out.view(B, T, gh, gw, C, p, p).permute(0, 4, 1, 2, 5, 3, 6).reshape(B, C, T, h, w)
        return out
