"""Model bundles: one folder holding everything needed to generate, loaded strictly.

    models/<name>/config.json        format version, every architecture field, fps, sizes,
                                     latent statistics, text-encoder config, sampler defaults
                  vae.safetensors    the video VAE (encoder + decoder)
                  text.safetensors   the whole open_clip CLIP (text tower for the DiT, vision
                                     tower for CLIP scores); its token table holds only
                                     the rows training changed (sora_cli/token_rows.py)
                  dit.safetensors    the DiT's EMA weights
                  dit_high.safetensors   optional: a high-noise expert of the DiT's
                                     architecture that runs the sampler's steps from
                                     flow.expert_t up (config.json sets both or neither)
                  MODEL_CARD.md

Tensors are stored in bf16 and never pickled. Loading checks config.json's fields (types and
ranges), rebuilds each module from it and checks every tensor's name, shape, dtype and values
(no NaN or infinity) before copying, so a truncated, mismatched, damaged or hand-edited bundle
fails with one line naming the file and the field or tensor.

A bundle is named by a path, or by a name looked up in order in: the package's own
`sora_cli/models/` (ships inside a wheel, so a plain `pip install .` finds it), the
checkout's top-level `models/` (editable installs and training runs), then
`$SORA_HOME/models` (default ~/.sora/models).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sora_cli.errors import SoraError

# 2: token tables may be stored as their trained rows (sora_cli/token_rows.py); 1 still loads.
FORMAT_VERSION = 2
FILES = {"vae": "vae.safetensors", "text": "text.safetensors", "dit": "dit.safetensors"}
EXPERT_FILE = "dit_high.safetensors"
STORE_DTYPE = "bfloat16"


def _default(factory_path: str):
    def make():
        import importlib

        mod, name = factory_path.rsplit(".", 1)
        return getattr(importlib.import_module(mod), name)()
    return make


# how `sora train export` describes a bundle trained on a folder of the user's videos
VIDEOS_IN = "Trained by sora-cli on the videos in "


@dataclass
class BundleConfig:
    name: str = "default"
    format_version: int = FORMAT_VERSION
    fps: float = 8.0                         # native frame rate of the model
    frame_size: tuple = (256, 256)           # (height, width) it was trained at
    clip_frames: int = 17                    # training clip length (4k+1)
    # Generation window in latent frames (0: the training clip's) and how many latents of the
    # previous window each new one continues from; long videos slide this window forward.
    window_latents: int = 0
    context_latents: int = 2
    vae: Any = field(default_factory=_default("sora_cli.nn.vae.VAEConfig"))
    text: Any = field(default_factory=_default("sora_cli.nn.text.TextEncoderConfig"))
    dit: Any = field(default_factory=_default("sora_cli.nn.dit.DiTConfig"))
    flow: Any = field(default_factory=_default("sora_cli.sampling.FlowConfig"))
    dtype: str = STORE_DTYPE
    # "world": trained on the built-in world's captions, so prompts in words those captions
    # never use may be read in their words (sora_cli/prompt_reading.py); "": any other data.
    vocabulary: str = ""
    description: str = ""
    training: dict = field(default_factory=dict)   # free-form: commands, steps, data

    def videos_folder(self) -> str | None:
        """The folder of a user's videos the DiT learned, as `sora train export` wrote it
        into the description; None: the built-in world (or a bundle that does not say)."""
        text = self.description or ""
        return text[len(VIDEOS_IN):].removesuffix(".") if text.startswith(VIDEOS_IN) else None

    def to_dict(self) -> dict:
        d = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v
        d["frame_size"] = list(self.frame_size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BundleConfig":
        from sora_cli.nn.dit import DiTConfig
        from sora_cli.nn.text import TextEncoderConfig
        from sora_cli.nn.vae import VAEConfig
        from sora_cli.sampling import FlowConfig

        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown fields {unknown}")
        d = dict(d)
        for key, typ in (("vae", VAEConfig), ("text", TextEncoderConfig), ("dit", DiTConfig),
                         ("flow", FlowConfig)):
            if key in d:
                d[key] = typ(**d[key])
        if "frame_size" in d:
            d["frame_size"] = tuple(d["frame_size"])
        return cls(**d)


@dataclass
class Bundle:
    config: BundleConfig
    vae: Any      # VideoVAE
    text: Any     # TextEncoder (frozen; .clip is the whole CLIP)
    dit: Any      # DiT (EMA weights)
    path: Path | None = None
    trained_tokens: frozenset | None = None   # token ids its captions used (a world model's)
    dit_high: Any = None   # the high-noise expert DiT (EMA weights), or None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def hash(self) -> str:
        # Hashing reads every weight file: do it once per loaded bundle.
        if self.path and "_hash" not in self.__dict__:
            self.__dict__["_hash"] = bundle_hash(self.path)
        return self.__dict__.get("_hash", "")


# --- lookup -------------------------------------------------------------------------------------

def sora_home() -> Path:
    return Path(os.environ.get("SORA_HOME") or Path.home() / ".sora").expanduser()


def bundle_dirs() -> list[Path]:
    """Folders searched for bundles by name, in order."""
    pkg = Path(__file__).resolve().parent
    dirs = [pkg / "models"]
    repo_models = pkg.parent / "models"
    if (pkg.parent / "pyproject.toml").is_file() or repo_models.is_dir():
        dirs.append(repo_models)  # a source checkout (editable install)
    dirs.append(sora_home() / "models")
    return dirs


def _looks_like_path(s: str) -> bool:
    return os.sep in s or "/" in s or s.startswith((".", "~"))


def find_bundle(name_or_path: str | os.PathLike) -> Path:
    """The folder of a bundle given by path or by name; SoraError when there is none."""
    s = str(name_or_path)
    p = Path(s).expanduser()
    if p.is_dir() and (p / "config.json").is_file():
        return p
    if _looks_like_path(s):  # a bare name that happens to be a folder here is still a name
        if p.is_dir():
            raise SoraError(f"{p} is not a model bundle: config.json is missing")
        raise SoraError(f"no model bundle at {p}")
    for d in bundle_dirs():
        cand = d / s
        if (cand / "config.json").is_file():
            return cand
    where = ", ".join(str(d) for d in bundle_dirs())
    # only these folders are searched by name: a bundle exported anywhere else is found by
    # its path, so the hint names both ways
    home = shlex.quote(str(sora_home() / "models" / s))
    raise SoraError(f"model {s!r} not found (looked in {where}); give the bundle's folder as a "
                    f"path (e.g. ./{s}), or put it in one of those folders, e.g. "
                    f"`sora train ... --export {home}`")


def list_bundles() -> list[dict]:
    """Every bundle found by name, first match per name (as find_bundle resolves it)."""
    seen: dict[str, dict] = {}
    for d in bundle_dirs():
        if not d.is_dir():
            continue
        for sub in sorted(d.iterdir()):
            if sub.name in seen or not (sub / "config.json").is_file():
                continue
            try:
                cfg = json.loads((sub / "config.json").read_text())
            except (OSError, ValueError):
                cfg = {}
            if not isinstance(cfg, dict):  # listed all the same; loading it says what is wrong
                cfg = {}
            seen[sub.name] = {"name": sub.name, "path": str(sub), "fps": cfg.get("fps"),
                              "frame_size": cfg.get("frame_size"),
                              "format_version": cfg.get("format_version"),
                              "description": cfg.get("description", "")}
    return list(seen.values())


def bundle_hash(name_or_path: str | os.PathLike) -> str:
    """sha256 (first 16 hex digits) over config.json and the weight files, in a fixed order."""
    path = find_bundle(name_or_path)
    h = hashlib.sha256()
    expert = [EXPERT_FILE] if (path / EXPERT_FILE).is_file() else []
    for fname in ["config.json", *FILES.values(), *expert]:
        f = path / fname
        if not f.is_file():
            raise SoraError(f"bundle {path}: {fname} is missing")
        h.update(fname.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


# --- export -------------------------------------------------------------------------------------

def _state_for_export(module) -> dict:
    import torch

    from sora_cli.token_rows import compact_state

    dtype = getattr(torch, STORE_DTYPE)
    return compact_state({k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype)
                          .contiguous().clone() for k, v in module.state_dict().items()})


def default_card(config: BundleConfig, counts: dict[str, int]) -> str:
    lines = [f"# Model card: {config.name}", "",
             config.description or "A sora-cli text-to-video model bundle.", "",
             "## Architecture", ""]
    for comp, n in counts.items():
        lines.append(f"- {comp}: {n / 1e6:.2f}M parameters")
    h, w = config.frame_size
    lines += [f"- native {config.fps:g} fps, {w}x{h} frames, {config.clip_frames}-frame training clips",
              f"- text encoder: open_clip `{config.text.name}`", "",
              "See config.json for every architecture field."]
    if config.training:
        lines += ["", "## Training", "", "```json", json.dumps(config.training, indent=2), "```"]
    return "\n".join(lines) + "\n"


def export_bundle(folder: str | os.PathLike, vae, text, dit_ema, config: BundleConfig,
                  card_text: str | None = None, dit_high=None) -> Path:
    """Write a bundle folder atomically (built beside it, then renamed into place; an existing
    bundle there is replaced). `text` is a TextEncoder or the CLIP itself; `dit_ema` the DiT
    whose weights to ship (the EMA copy); `dit_high` a high-noise expert of the same
    architecture, used from config.flow.expert_t up. The modules' own configs go into
    config.json."""
    from safetensors.torch import save_file

    from sora_cli.nn.text import TextEncoder

    clip = text.clip if isinstance(text, TextEncoder) else text
    config = dataclasses.replace(config, vae=vae.cfg, dit=dit_ema.cfg,
                                 text=getattr(clip, "sora_text_cfg", config.text),
                                 dtype=STORE_DTYPE, format_version=FORMAT_VERSION)
    _check_compatible(config)
    if dit_high is not None and dit_high.cfg != dit_ema.cfg:
        raise SoraError("the high-noise expert must have the DiT's architecture "
                        f"({dit_high.cfg} against {dit_ema.cfg})")
    if (dit_high is not None) != (config.flow.expert_t > 0):
        raise SoraError("a high-noise expert and flow.expert_t > 0 go together: give both or "
                        "neither")
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        counts = {}
        meta = {"format": "sora-bundle", "format_version": str(FORMAT_VERSION)}
        parts = [("vae", vae, FILES["vae"]), ("text", clip, FILES["text"]),
                 ("dit", dit_ema, FILES["dit"])]
        if dit_high is not None:
            parts.append(("dit_high", dit_high, EXPERT_FILE))
        for comp, module, fname in parts:
            state = _state_for_export(module)
            counts[comp] = sum(p.numel() for p in module.parameters())
            save_file(state, str(tmp / fname), metadata={**meta, "component": comp})
        (tmp / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        (tmp / "MODEL_CARD.md").write_text(card_text if card_text is not None
                                           else default_card(config, counts))
        _share(tmp)
        old = folder.parent / f".{folder.name}.old-{os.getpid()}"
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _share(folder: Path) -> None:
    # safetensors may create its files owner-only (0600); a bundle is meant to be read by
    # everyone who may read the folder, as any other file the user's umask would allow
    mask = os.umask(0)
    os.umask(mask)
    for f in folder.iterdir():
        f.chmod(0o666 & ~mask)


def _check_compatible(config: BundleConfig) -> None:
    if config.dit.in_channels != config.vae.z_channels:
        raise SoraError(f"DiT in_channels {config.dit.in_channels} != VAE z_channels {config.vae.z_channels}")
    if config.dit.text_dim != config.text.width or config.dit.pooled_dim != config.text.embed_dim:
        raise SoraError(f"DiT text dims ({config.dit.text_dim}, {config.dit.pooled_dim}) do not match "
                        f"the text encoder ({config.text.width}, {config.text.embed_dim})")
    flow = config.flow
    if flow.skip_guidance < 0 or not all(
            isinstance(i, int) and 0 <= i < config.dit.depth for i in flow.skip_layers):
        raise SoraError(f"flow.skip_layers must name DiT blocks 0 to {config.dit.depth - 1} and "
                        f"flow.skip_guidance be 0 or more, got {list(flow.skip_layers)} and "
                        f"{flow.skip_guidance}")


# --- load ---------------------------------------------------------------------------------------

def read_config(path: Path) -> BundleConfig:
    f = path / "config.json"
    if not f.is_file():
        raise SoraError(f"bundle {path}: config.json is missing")
    try:
        raw = json.loads(f.read_text())
    except (OSError, ValueError) as exc:
        raise SoraError(f"bundle {path}: config.json is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise SoraError(f"bundle {path}: config.json must hold a JSON object, not a "
                        f"{_json_type(raw)}")
    version = raw.get("format_version")
    if not _is_int(version) or not 1 <= version <= FORMAT_VERSION:
        raise SoraError(f"bundle {path}: format version {version!r} is not supported "
                        f"(this sora-cli reads up to {FORMAT_VERSION}; upgrade sora-cli)")
    problem = config_problem(raw)
    if problem:
        raise SoraError(f"bundle {path}: config.json: {problem}")
    try:
        return BundleConfig.from_dict(raw)
    except (TypeError, ValueError) as exc:
        raise SoraError(f"bundle {path}: config.json does not match this sora-cli ({exc})") from None


# --- config.json checks -------------------------------------------------------------------------
# A hand-edited value is refused at load, naming the field, rather than failing deep inside a
# generation (or, worse, making a video from nonsense such as a negative frame rate).

def _json_type(v) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean",
            type(None): "null"}.get(type(v), "number")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)   # JSON true is not a count


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v))


def _check_number(where: str, v, lo: float | None = None, hi: float | None = None,
                  above: float | None = None, whole: bool = False) -> str | None:
    """What is wrong with value `v` of field `where`, or None. lo, hi: inclusive bounds;
    above: an exclusive lower bound (0: positive); whole: an integer."""
    number = "whole number" if whole else "number"
    if above is not None:
        want = f"a positive {number}" if above == 0 else f"a {number} above {above:g}"
    elif lo is not None:
        want = f"a {number} from {lo:g} to {hi:g}" if hi is not None else f"a {number}, {lo:g} or more"
    else:
        want = f"a {number}"
    if not (_is_int(v) if whole else _is_number(v)) or (above is not None and not v > above) \
            or (lo is not None and v < lo):
        return f"{where} must be {want} (got {json.dumps(v)})"
    if hi is not None and v > hi:
        return f"{where} must be at most {hi:g} (got {json.dumps(v)})"
    return None


# Numeric fields and their ranges, (lo, hi, above, whole) as _check_number takes them.
_TOP_NUMBERS = {"fps": (None, 120, 0, False), "clip_frames": (None, 1025, 0, True),
                "window_latents": (0, 1024, None, True), "context_latents": (0, 1024, None, True)}
_FLOW_NUMBERS = {
    "logit_mean": (None, None, None, False), "logit_std": (None, None, 0, False),
    "min_t": (0, 1, None, False), "caption_dropout": (0, 1, None, False),
    "steps": (1, 1000, None, True), "guidance": (0, 50, None, False),
    "shift": (None, 100, 0, False), "guidance_min_t": (0, 1, None, False),
    "guidance_smoothing": (0, 0.5, None, False), "expert_t": (0, 1, None, False),
    "skip_guidance": (0, None, None, False), "skip_max_t": (0, 1, None, False),
    "motion_plan_t": (0, 1, None, False), "motion_plan_min_t": (0, 1, None, False),
    "candidates": (1, 64, None, True), "choose_t": (0, 1, None, False)}
_DIT_NUMBERS = {"in_channels": (None, None, 0, True), "patch_size": (None, None, 0, True),
                "width": (None, None, 0, True), "depth": (None, None, 0, True),
                "heads": (None, None, 0, True), "mlp_ratio": (None, None, 0, False),
                "text_dim": (None, None, 0, True), "pooled_dim": (None, None, 0, True),
                "rope_theta": (None, None, 0, False)}
_VAE_NUMBERS = {"in_channels": (None, None, 0, True), "z_channels": (None, None, 0, True),
                "temporal_channels": (None, None, 0, True),
                "temporal_blocks": (0, None, None, True), "res_blocks": (0, None, None, True),
                "kl_weight": (0, None, None, False), "grad_weight": (0, None, None, False)}
_STRINGS = ("name", "dtype", "vocabulary", "description")


def config_problem(raw: dict) -> str | None:
    """The first thing wrong with the fields of a config.json this sora-cli reads (types and
    ranges), as "FIELD must be ... (got VALUE)"; None when they are all usable. Fields left
    out take their defaults; unknown ones are BundleConfig.from_dict's to refuse."""
    for key in _STRINGS:
        if key in raw and not isinstance(raw[key], str):
            return f"{key} must be a string (got {json.dumps(raw[key])})"
    if raw.get("vocabulary", "") not in ("", "world"):
        return f"vocabulary must be \"world\" or \"\" (got {json.dumps(raw['vocabulary'])})"
    for key in ("vae", "text", "dit", "flow", "training"):
        if key in raw and not isinstance(raw[key], dict):
            return f"{key} must be a JSON object (got a {_json_type(raw[key])})"
    if "frame_size" in raw:
        fs = raw["frame_size"]
        if not (isinstance(fs, list) and len(fs) == 2
                and all(_is_int(v) and 16 <= v <= 4096 for v in fs)):
            return ("frame_size must be [height, width], whole numbers from 16 to 4096 "
                    f"(got {json.dumps(fs)})")
    sections = [("", raw, _TOP_NUMBERS), ("flow.", raw.get("flow", {}), _FLOW_NUMBERS),
                ("dit.", raw.get("dit", {}), _DIT_NUMBERS), ("vae.", raw.get("vae", {}), _VAE_NUMBERS),
                ("text.", raw.get("text", {}), {"vision_frames": (None, None, 0, True)})]
    for prefix, section, numbers in sections:
        for key, (lo, hi, above, whole) in numbers.items():
            if key in section:
                problem = _check_number(prefix + key, section[key], lo, hi, above, whole)
                if problem:
                    return problem
    return _flow_problem(raw.get("flow", {})) or _vae_problem(raw.get("vae", {}))


def _flow_problem(flow: dict) -> str | None:
    if "sampler" in flow and flow["sampler"] not in ("euler", "heun"):
        return f"flow.sampler must be \"euler\" or \"heun\" (got {json.dumps(flow['sampler'])})"
    layers = flow.get("skip_layers", [])
    if not (isinstance(layers, list) and all(_is_int(i) and i >= 0 for i in layers)):
        return f"flow.skip_layers must be a list of DiT block numbers (got {json.dumps(layers)})"
    plan, plan_min = flow.get("motion_plan_t", 0.0), flow.get("motion_plan_min_t", 0.0)
    if plan > 0 and plan_min > plan:
        return (f"flow.motion_plan_min_t must be at most flow.motion_plan_t ({plan:g}) "
                f"(got {plan_min:g})")
    return None


def _vae_problem(vae: dict) -> str | None:
    channels = vae.get("channels", [1])
    if not (isinstance(channels, list) and channels and all(_is_int(c) and c > 0 for c in channels)):
        return f"vae.channels must be a list of positive whole numbers (got {json.dumps(channels)})"
    z = vae.get("z_channels")
    for key in ("latent_mean", "latent_std"):
        stats = vae.get(key, [])
        if not (isinstance(stats, list) and all(_is_number(v) for v in stats)):
            return f"vae.{key} must be a list of numbers (got {json.dumps(stats)})"
        if stats and z is not None and len(stats) != z:
            return f"vae.{key} must hold one number per latent channel ({z}), got {len(stats)}"
    for i, v in enumerate(vae.get("latent_std", [])):
        if not v > 0:  # latents are divided by it
            return f"vae.latent_std must be positive numbers (got {v:g} for channel {i})"
    return None


def _load_strict(module, file: Path, what: str, expected_dtype: str, device, dtype) -> dict:
    """Load `file` into `module`, every tensor checked; -> the tensors as stored."""
    from safetensors import safe_open

    from sora_cli.token_rows import expand_state

    if not file.is_file():
        raise SoraError(f"bundle {file.parent}: {file.name} is missing")
    want = module.state_dict()
    try:
        with safe_open(str(file), framework="pt", device="cpu") as fh:
            stored = {name: fh.get_tensor(name) for name in fh.keys()}
        state = expand_state(stored, {k: tuple(v.shape) for k, v in want.items()})
    except Exception as exc:  # truncated or foreign file, or a broken compact table
        raise SoraError(f"bundle {file.parent}: {file.name} is not a readable safetensors file "
                        f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    if missing:
        raise SoraError(f"bundle {file.parent}: {file.name} lacks {len(missing)} {what} tensors "
                        f"named by config.json (first: {missing[0]})")
    if extra:
        raise SoraError(f"bundle {file.parent}: {file.name} has {len(extra)} tensors config.json "
                        f"does not describe (first: {extra[0]})")
    for name in sorted(state):
        t, exp = state[name], want[name]
        if list(t.shape) != list(exp.shape):
            raise SoraError(f"bundle {file.parent}: {file.name}: tensor {name!r} has shape "
                            f"{list(t.shape)}, config.json gives {list(exp.shape)}")
        if exp.is_floating_point() and str(t.dtype).replace("torch.", "") != expected_dtype:
            raise SoraError(f"bundle {file.parent}: {file.name}: tensor {name!r} is "
                            f"{str(t.dtype).replace('torch.', '')}, config.json says {expected_dtype}")
    bad = _first_nonfinite(stored)
    if bad is not None:
        raise SoraError(f"bundle {file.parent}: {file.name}: tensor {bad!r} holds NaN or "
                        "infinite values (the file is damaged: export or copy the bundle again)")
    module.load_state_dict(state, strict=True)
    module.to(device=device, dtype=dtype)
    return stored


def _first_nonfinite(tensors: dict) -> str | None:
    """The name of the first floating tensor holding a NaN or an infinity, or None. A flipped
    block of bytes loads as NaNs, and a model with NaN weights draws black videos."""
    import numpy as np
    import torch

    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype == torch.bfloat16:
            # bf16 NaN and inf are exactly the values whose bits, sign aside, are 0x7F80 or
            # more. One numpy max over the bits checks the default bundle in ~5 ms, where
            # torch.isfinite takes ~45 ms and far more on a busy CPU: this runs in every
            # `sora generate`.
            bad = np.max(t.view(torch.int16).numpy() & 0x7FFF, initial=0) >= 0x7F80
        elif t.is_floating_point():
            bad = not bool(torch.isfinite(t).all())
        else:
            continue
        if bad:
            return name
    return None


def load_bundle(name_or_path: str | os.PathLike, device: str = "cpu", dtype=None) -> Bundle:
    """Load a bundle by name or path, strictly. Weights are cast to `dtype` (default float32:
    CPUs without native bf16 run float32 much faster) on `device`. -> Bundle(config, vae, text,
    dit, path), all in eval mode."""
    import torch

    from sora_cli.nn.dit import DiT
    from sora_cli.nn.text import TextEncoder, build_clip
    from sora_cli.nn.vae import VideoVAE

    path = find_bundle(name_or_path)
    config = read_config(path)
    dtype = dtype or torch.float32
    try:
        _check_compatible(config)
        vae, clip, dit = VideoVAE(config.vae), build_clip(config.text), DiT(config.dit)
    except SoraError:
        raise
    except Exception as exc:
        raise SoraError(f"bundle {path}: config.json describes a model this sora-cli cannot build ({exc})") from None
    stored = {comp: _load_strict(module, path / FILES[comp], comp, config.dtype, device, dtype)
              for comp, module in (("vae", vae), ("text", clip), ("dit", dit))}
    vae.eval()
    dit.eval()
    high = _load_expert(path, config, device, dtype)
    trained = None
    if config.vocabulary == "world":
        from sora_cli.token_rows import stored_rows

        trained = stored_rows(stored["text"])
    text = TextEncoder(clip, config.text)
    text.with_inputs = config.dit.text_inputs
    return Bundle(config=config, vae=vae, text=text, dit=dit, path=path,
                  trained_tokens=trained, dit_high=high)


def _load_expert(path: Path, config: BundleConfig, device, dtype):
    """The high-noise expert that config.json names with flow.expert_t, or None; a file
    config.json does not name is refused rather than silently left unused."""
    from sora_cli.nn.dit import DiT

    expert_t = config.flow.expert_t
    if not expert_t:
        if (path / EXPERT_FILE).is_file():
            raise SoraError(f"bundle {path}: {EXPERT_FILE} is there but config.json sets no "
                            "flow.expert_t to use it from")
        return None
    if not 0 < expert_t <= 1:
        raise SoraError(f"bundle {path}: flow.expert_t must be in (0, 1], got {expert_t}")
    high = DiT(config.dit)
    _load_strict(high, path / EXPERT_FILE, "dit_high", config.dtype, device, dtype)
    return high.eval()


def describe_bundle(name_or_path: str | os.PathLike) -> dict:
    """Load a bundle strictly (every tensor checked) and summarise it."""
    find_bundle(name_or_path)  # fail fast, before the heavy imports
    b = load_bundle(name_or_path)
    cfg = b.config
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    return {"name": cfg.name, "path": str(b.path), "hash": b.hash, "format_version": cfg.format_version,
            "fps": cfg.fps, "frame_size": list(cfg.frame_size), "clip_frames": cfg.clip_frames,
            "text_encoder": cfg.text.name,
            # frames of a clip its CLIP's vision tower sees at once (1: single frames)
            "vision_frames": cfg.text.vision_frames,
            # what the DiT reads of it: the tower's outputs, or (DiTConfig.text_inputs) also
            # its input embeddings
            "dit_text": "outputs and inputs" if cfg.dit.text_inputs else "outputs",
            "params": {"vae": count(b.vae), "text": count(b.text.clip), "dit": count(b.dit),
                       **({"dit_high": count(b.dit_high)} if b.dit_high is not None else {})},
            "sampler": {"steps": cfg.flow.steps, "guidance": cfg.flow.guidance,
                        "shift": cfg.flow.shift, "sampler": cfg.flow.sampler,
                        **({"expert_t": cfg.flow.expert_t} if b.dit_high is not None else {}),
                        **({"skip_guidance": cfg.flow.skip_guidance,
                            "skip_layers": list(cfg.flow.skip_layers),
                            "skip_max_t": cfg.flow.skip_max_t}
                           if cfg.flow.skip_guidance > 0 else {})}}
