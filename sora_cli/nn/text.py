"""The text encoder: an open_clip CLIP whose frozen text tower conditions the DiT.

The built-in model is `sora-clip-tiny` (clip_configs/sora-clip-tiny.json, registered with
open_clip): a 4-layer, 256-wide text transformer over 32 tokens of open_clip's own BPE
tokenizer and a small ViT on 64 px frames, trained contrastively on world frames and
captions. The DiT reads the text tower's per-token outputs (after ln_final, before the
projection) and the pooled, projected output; the same CLIP scores prompt adherence.

Any other open_clip config can stand in (`--text-encoder NAME` + a local weights file): the
config dict travels in the bundle's config.json, so loading a bundle never needs the
registry to know the name.
"""

from __future__ import annotations

import json
import tempfile
import weakref
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sora_cli.errors import SoraError

DEFAULT_CLIP = "sora-clip-tiny"
_CONFIG_DIR = Path(__file__).with_name("clip_configs")
# open_clip's image normalisation (OpenAI CLIP statistics), used by its preprocess too.
_MEAN = (0.48145466, 0.4578275, 0.40821073)
_STD = (0.26862954, 0.26130258, 0.27577711)


def _default_model_cfg() -> dict:
    return json.loads((_CONFIG_DIR / f"{DEFAULT_CLIP}.json").read_text())


@dataclass
class TextEncoderConfig:
    name: str = DEFAULT_CLIP                                   # open_clip model config name
    model_cfg: dict = field(default_factory=_default_model_cfg)  # its open_clip config dict
    # Frames of a clip the vision tower sees at once, tiled into a square grid (frame_grid).
    # 1 sees single frames, where no motion shows, so its text tower learns to ignore motion
    # words; 4 or 9 make the contrastive loss need them.
    vision_frames: int = 1

    def __post_init__(self):
        check_vision_frames(self.vision_frames)

    @property
    def context_length(self) -> int:
        return int(self.model_cfg["text_cfg"].get("context_length", 77))

    @property
    def width(self) -> int:        # per-token feature size fed to the DiT
        return int(self.model_cfg["text_cfg"].get("width", 512))

    @property
    def embed_dim(self) -> int:    # pooled feature size
        return int(self.model_cfg["embed_dim"])

    @property
    def image_size(self) -> int:
        size = self.model_cfg["vision_cfg"].get("image_size", 224)
        return int(size[0] if isinstance(size, (list, tuple)) else size)


def check_vision_frames(n: int) -> int:
    """`n` if it can tile a square grid (1, 4, 9, ...); ValueError otherwise."""
    if int(n) < 1 or round(int(n) ** 0.5) ** 2 != int(n):
        raise ValueError(f"vision_frames must be a square number (1, 4, 9, ...), got {n}")
    return int(n)


def tiny_text_config(width: int = 64, layers: int = 2, heads: int = 2, context_length: int = 32,
                     embed_dim: int = 64, image_size: int = 32, vision_width: int = 64,
                     vision_layers: int = 2, patch_size: int = 8, name: str = "sora-clip-test") -> TextEncoderConfig:
    """A custom-sized CLIP config (tests and experiments); registered with open_clip on build."""
    return TextEncoderConfig(name=name, model_cfg={
        "embed_dim": embed_dim,
        "vision_cfg": {"image_size": image_size, "layers": vision_layers, "width": vision_width,
                       "head_width": vision_width // 2, "patch_size": patch_size},
        "text_cfg": {"context_length": context_length, "vocab_size": 49408, "width": width,
                     "heads": heads, "layers": layers},
    })


_registered: dict[str, str] = {}


def register_config(name: str, model_cfg: dict) -> None:
    """Make `name` known to open_clip (create_model / get_tokenizer) with this config dict."""
    import open_clip

    key = json.dumps(model_cfg, sort_keys=True)
    if _registered.get(name) == key:
        return
    if name == DEFAULT_CLIP and model_cfg == _default_model_cfg():
        open_clip.add_model_config(_CONFIG_DIR / f"{DEFAULT_CLIP}.json")
    else:
        folder = Path(tempfile.mkdtemp(prefix="sora-clip-"))
        (folder / f"{name}.json").write_text(json.dumps(model_cfg))
        open_clip.add_model_config(folder / f"{name}.json")
    _registered[name] = key


def build_clip(cfg: TextEncoderConfig | None = None):
    """A freshly initialised open_clip CLIP for `cfg` (fp32, train mode), with its tokenizer
    attached as `.tokenizer` and the config as `.sora_text_cfg`."""
    import open_clip

    cfg = cfg or TextEncoderConfig()
    if "hf_model_name" in cfg.model_cfg.get("text_cfg", {}):
        raise SoraError(f"text encoder {cfg.name!r} uses a Hugging Face text tower; "
                        "only open_clip's own text transformer is supported")
    register_config(cfg.name, cfg.model_cfg)
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # open_clip warns "no pretrained weights": expected here
    try:
        model = open_clip.create_model(cfg.name, pretrained=None)
    finally:
        root.setLevel(level)
    model.tokenizer = get_tokenizer(cfg)
    model.sora_text_cfg = cfg
    return model


def get_tokenizer(cfg: TextEncoderConfig):
    register_config(cfg.name, cfg.model_cfg)
    return _tokenizer(cfg.name, cfg.context_length)


@lru_cache(maxsize=8)
def _tokenizer(name: str, context_length: int):
    import open_clip

    return open_clip.get_tokenizer(name, context_length=context_length)


_TOKEN_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> ids


def tokenize(tokenizer, prompts: Sequence[str]) -> torch.Tensor:
    """Token ids (B, L) of `prompts`, remembered per tokenizer: training sees the same captions
    epoch after epoch, and open_clip's BPE (ftfy and regex in Python) is a large share of a
    GPU training step."""
    try:
        cache = _TOKEN_CACHE.setdefault(tokenizer, {})
    except TypeError:  # a tokenizer that cannot be weakly referenced: no cache
        return tokenizer(list(prompts))
    missing = [p for p in dict.fromkeys(prompts) if p not in cache]
    if missing:
        if len(cache) + len(missing) > 200_000:
            cache.clear()
        for text, row in zip(missing, tokenizer(missing)):
            cache[text] = row
    return torch.stack([cache[p] for p in prompts])


def _unwrap(model):
    return getattr(model, "module", model)  # DDP


def prepare_images(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B,3,H,W) in [-1,1] -> CLIP input at `size`² (centre crop to square, resize, normalise)."""
    B, C, H, W = images.shape
    s = min(H, W)
    top, left = (H - s) // 2, (W - s) // 2
    x = images[:, :, top:top + s, left:left + s].float()
    if s != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    x = (x + 1) / 2
    mean = torch.tensor(_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def frame_grid(video: torch.Tensor, frames: int) -> torch.Tensor:
    """(B,3,T,H,W) -> (B,3,g*H,g*W), g = sqrt(frames): `frames` frames evenly spaced from the
    first to the last, tiled row by row. How a CLIP with vision_frames > 1 sees a clip: a
    subject's motion shows as its place changing from tile to tile."""
    B, C, T, H, W = video.shape
    g = round(frames ** 0.5)
    idx = torch.linspace(0, T - 1, frames).round().long().to(video.device)
    tiles = video.index_select(2, idx).view(B, C, g, g, H, W)
    return tiles.permute(0, 1, 2, 4, 3, 5).reshape(B, C, g * H, g * W)


def clip_views(cfg: TextEncoderConfig, video: torch.Tensor) -> torch.Tensor:
    """(B,3,T,H,W) -> the images (B*, 3, H', W') a CLIP of `cfg` scores a clip by: every frame
    for a frame CLIP (B*T of them, frame by frame), one frame grid per clip otherwise."""
    if cfg.vision_frames > 1:
        return frame_grid(video, cfg.vision_frames)
    B, C, T, H, W = video.shape
    return video.transpose(1, 2).reshape(B * T, C, H, W)


def clip_loss(model, images: torch.Tensor, captions: Sequence[str]):
    """Symmetric contrastive loss of a batch of frames (B,3,H,W) in [-1,1] and their captions.
    `model` is a CLIP from build_clip (or DDP around one). -> (loss, logs with 'acc')."""
    raw = _unwrap(model)
    cfg: TextEncoderConfig = raw.sora_text_cfg
    ids = tokenize(raw.tokenizer, captions).to(images.device)
    out = model(prepare_images(images, cfg.image_size), ids)
    if isinstance(out, dict):
        img, txt, scale = out["image_features"], out["text_features"], out["logit_scale"]
    else:
        img, txt, scale = out[0], out[1], out[2]
    logits = scale * img.float() @ txt.float().T
    labels = torch.arange(len(captions), device=logits.device)
    # Identical captions in a batch are true pairs too; soft targets keep them from fighting.
    same = torch.tensor([[a == b for b in captions] for a in captions], device=logits.device).float()
    targets = same / same.sum(1, keepdim=True)
    loss = 0.5 * (torch.sum(-targets * logits.log_softmax(1), 1).mean()
                  + torch.sum(-targets.T * logits.T.log_softmax(1), 1).mean())
    with torch.no_grad():
        acc = (same[labels, logits.argmax(1)] > 0).float().mean()
    return loss, {"loss": float(loss.detach()), "acc": float(acc), "logit_scale": float(scale.detach())}


@torch.no_grad()
def clip_score(model, frames: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:
    """Cosine similarity (B,) between each prompt and its video: averaged over the frames for
    a frame CLIP, of one frame grid over the whole video for a clip CLIP (vision_frames > 1).
    frames: (B,3,H,W) or (B,3,T,H,W) in [-1,1]; `model` a CLIP or TextEncoder."""
    clip = model.clip if isinstance(model, TextEncoder) else _unwrap(model)
    cfg: TextEncoderConfig = clip.sora_text_cfg
    if frames.dim() == 4:
        frames = frames[:, :, None]
    B = frames.shape[0]
    views = clip_views(cfg, frames)
    img = F.normalize(clip.encode_image(prepare_images(views, cfg.image_size)).float(), dim=-1)
    ids = tokenize(clip.tokenizer, prompts).to(frames.device)
    txt = F.normalize(clip.encode_text(ids).float(), dim=-1)
    return (img.view(B, -1, img.shape[-1]) * txt[:, None, :]).sum(-1).mean(1)


class TextEncoder(nn.Module):
    """The frozen text tower: prompts -> (tokens (B,L,dim), mask (B,L) bool, pooled (B,pooled_dim)).

    With `with_inputs` set (a DiT with DiTConfig.text_inputs reads them), each token's
    features are the tower's output followed by its input (token + position embedding)."""

    with_inputs: bool = False

    def __init__(self, clip_model, cfg: TextEncoderConfig | None = None):
        super().__init__()
        self.clip = clip_model
        self.cfg = cfg or clip_model.sora_text_cfg
        if not hasattr(clip_model, "tokenizer"):
            clip_model.tokenizer = get_tokenizer(self.cfg)
            clip_model.sora_text_cfg = self.cfg
        self.clip.eval()
        self.clip.requires_grad_(False)
        text = getattr(clip_model, "text", clip_model)  # CustomTextCLIP keeps the tower in .text
        self._ln_final = text.ln_final
        self._tower = text

    @property
    def dim(self) -> int:
        return self.cfg.width * (2 if self.with_inputs else 1)

    @property
    def pooled_dim(self) -> int:
        return self.cfg.embed_dim

    def train(self, mode: bool = True):
        return super().train(False)  # always frozen

    @torch.no_grad()
    def forward(self, prompts: Sequence[str]):
        if isinstance(prompts, str):
            prompts = [prompts]
        device = next(self.clip.parameters()).device
        ids = tokenize(self.clip.tokenizer, prompts).to(device)
        captured = {}
        hook = self._ln_final.register_forward_hook(lambda m, i, o: captured.__setitem__("x", o))
        try:
            pooled = self.clip.encode_text(ids)
        finally:
            hook.remove()
        tokens = captured["x"].float()
        if self.with_inputs:
            inputs = self._tower.token_embedding(ids) + self._tower.positional_embedding[:ids.shape[1]]
            tokens = torch.cat([tokens, inputs.float()], dim=-1)
        mask = ids != 0  # open_clip pads with 0; SOT and EOT count as real tokens
        return tokens, mask, pooled.float()


def load_text_encoder(config_name: str, weights_path: str | Path | None = None,
                      device: str = "cpu") -> TextEncoder:
    """An open_clip config by name (built-in, registered, or `sora-clip-tiny`) with weights
    from a local file (.safetensors preferred; open_clip's loader otherwise)."""
    import open_clip

    if config_name == DEFAULT_CLIP:
        register_config(DEFAULT_CLIP, _default_model_cfg())
    model_cfg = open_clip.get_model_config(config_name)
    if model_cfg is None:
        raise SoraError(f"unknown open_clip model config {config_name!r} "
                        "(see open_clip.list_models() for the names)")
    cfg = TextEncoderConfig(name=config_name, model_cfg=model_cfg)
    model = build_clip(cfg)
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise SoraError(f"text encoder weights not found: {path}")
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import load_file

                missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
                if missing:
                    raise SoraError(f"{path}: {len(missing)} tensors missing for {config_name} "
                                    f"(first: {missing[0]})")
            else:
                open_clip.load_checkpoint(model, str(path), strict=True, weights_only=True)
        except SoraError:
            raise
        except Exception as exc:
            raise SoraError(f"cannot load text encoder weights {path}: {str(exc).splitlines()[0]}") from None
    return TextEncoder(model.to(device), cfg)
