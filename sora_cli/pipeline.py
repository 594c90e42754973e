"""The video pipeline: a loaded bundle turned into frames for every generation mode.

All modes are one loop over latent windows. A window holds up to `window` latent frames; some
are known (held clean: an encoded image, the tail of a clip, the previous window's tail) and the
rest are sampled. Long videos and storyboards slide the window forward, each window conditioned
on the last `context` latents of the one before, so memory does not grow with length: latents
are tiny (C x H/16 x W/16 per 4 frames) and decoding streams through the causal VAE.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from dataclasses import dataclass, fields
from typing import Callable, Iterator

import numpy as np

from sora_cli.errors import SoraError, SoraUsageError


# SamplerSettings fields the pipeline applies itself rather than passing to sampling.sample
PIPELINE_ONLY = ("motion_plan_t", "motion_plan_min_t", "drift_correction")


@dataclass
class SamplerSettings:
    """One call's sampler settings: the fields of FlowConfig that sampling.sample reads (a
    bundle's defaults, `from_flow`), plus the pipeline's own drift correction."""

    steps: int = 20
    guidance: float = 4.0
    shift: float = 2.0
    sampler: str = "euler"
    guidance_min_t: float = 0.0   # see FlowConfig: guidance only at steps with t >= this
    guidance_smoothing: float = 0.0   # see FlowConfig: the guidance term smoothed over time
    expert_t: float = 0.0   # see FlowConfig: the high-noise expert's steps (with one)
    skip_guidance: float = 0.0   # see FlowConfig: skip-layer guidance, its blocks and ceiling
    skip_layers: tuple[int, ...] = ()
    skip_max_t: float = 1.0
    motion_plan_t: float = 0.0   # see FlowConfig: the subject moved along the prompt's motion
    motion_plan_min_t: float = 0.0
    candidates: int = 1   # see FlowConfig: best-of-N starting noises, chosen at choose_t
    choose_t: float = 0.0
    # Pull each new window's per-channel latent mean/std this far toward its context: counters
    # the slow colour and brightness drift of window-by-window generation.
    drift_correction: float = 0.5

    @classmethod
    def from_flow(cls, flow) -> "SamplerSettings":
        """The sampling defaults a bundle's FlowConfig stores, each in its field's type (a
        config.json may say 4 for 4.0)."""
        return cls(**{f.name: type(f.default)(getattr(flow, f.name))
                      for f in fields(cls) if hasattr(flow, f.name)})

    def sample_args(self) -> dict:
        """The keyword arguments of sampling.sample these settings stand for."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in PIPELINE_ONLY}


@dataclass
class Span:
    """Consecutive output frames made from one prompt (a storyboard segment, or the whole video)."""

    prompt: str
    frames: int
    negative: str = ""


def _check_request(spans: list[Span], seed) -> None:
    """What every mode of the pipeline checks, for a Python caller who uses it without
    `sora_cli.generation` (which checks the same first, and the user's --policy too): prompts
    are text the built-in content policy allows, the seed one a video's metadata can hold."""
    import operator

    from sora_cli.guard import check_prompts

    try:
        whole = None if isinstance(seed, bool) else operator.index(seed)   # numpy's ints too
    except TypeError:
        whole = None
    if whole is None or not 0 <= whole < 2**63:
        raise SoraUsageError(f"the seed must be an integer from 0 to 2**63 - 1, got {seed!r}")
    if not spans:
        raise SoraUsageError("a video needs at least one span of frames")
    texts = {}
    for i, span in enumerate(spans, 1):
        where = "" if len(spans) == 1 else f" of segment {i}"
        if isinstance(span.frames, bool) or not isinstance(span.frames, int) or span.frames < 1:
            raise SoraUsageError(f"a span makes at least one frame, got {span.frames!r}{where}")
        for what, text in ((f"the prompt{where}", span.prompt),
                           (f"the negative prompt{where}", span.negative)):
            if not isinstance(text, str):
                raise SoraUsageError(f"{what} must be text, got {type(text).__name__}")
            texts[what] = text
    check_prompts(texts)


MAX_SECONDS = 3600.0   # what one video may last (`sora generate --duration` allows as much)


def check_seconds(seconds, what: str = "the duration") -> float:
    """A length in seconds that makes at least one frame and fits one video: above 0, at
    most an hour (a billion seconds was taken, and the process killed for its memory)."""
    import numbers

    if isinstance(seconds, bool) or not isinstance(seconds, numbers.Real) \
            or not math.isfinite(seconds) or not 0 < seconds <= MAX_SECONDS:
        raise SoraUsageError(f"{what} must be a number of seconds above 0 and at most "
                             f"{MAX_SECONDS:g}, got {seconds!r}")
    return float(seconds)


def frames_for(duration: float, fps: float) -> int:
    return max(1, round(duration * fps))


def latents_for(frames: int, temporal: int = 4) -> int:
    """Latent frames whose decoding covers `frames` frames (1 + temporal*(L-1) >= frames)."""
    return 1 + math.ceil(max(frames - 1, 0) / temporal)


def frames_of(latents: int, temporal: int = 4) -> int:
    return 1 + temporal * (latents - 1) if latents > 0 else 0


def to_model_size(frames: np.ndarray, height: int, width: int, fit: str = "crop",
                  mode: str = "bilinear") -> np.ndarray:
    """Resize (T,H,W,3) uint8 frames to the model size: centre-crop or letterbox-pad, no stretch
    (fit "stretch", not a user's --fit, maps a frame of --size onto the model's frame of the
    same shape as rounded, as generate's --size maps it back). `mode`: torch's interpolation
    (bicubic is the sharper for enlarging)."""
    import torch
    import torch.nn.functional as F

    if fit not in ("crop", "pad", "stretch"):
        raise SoraUsageError(f"--fit must be crop or pad, got {fit!r}")
    t, h, w, _ = frames.shape
    if (h, w) == (height, width):
        return frames
    scale = max(height / h, width / w) if fit == "crop" else min(height / h, width / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if fit == "stretch":
        nh, nw = height, width
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(nh, nw), mode=mode, antialias=True, align_corners=False)
    if fit == "crop":
        top, left = (nh - height) // 2, (nw - width) // 2
        x = x[:, :, top:top + height, left:left + width]
    elif fit == "pad":
        # Pad with the edge colour of the image rather than black: the model never saw black bars.
        pt, pl = (height - nh) // 2, (width - nw) // 2
        x = F.pad(x, (pl, width - nw - pl, pt, height - nh - pt), mode="replicate")
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


class VideoPipeline:
    """Load a bundle once, then generate, animate, extend, bridge and tell stories with it."""

    def __init__(self, bundle, device: str = "cpu", settings: SamplerSettings | None = None):
        import torch

        # Channels-last VAE weights: the 2D convolutions then run 15-30% faster on this CPU
        # (oneDNN), with the same results to float rounding.
        bundle.vae.to(memory_format=torch.channels_last)
        self.bundle = bundle
        self.device = device
        cfg = bundle.config
        self.fps = float(cfg.fps)
        self.height, self.width = (int(v) for v in cfg.frame_size)
        self.temporal = int(bundle.vae.cfg.temporal_factor)
        self.spatial = int(bundle.vae.cfg.spatial_factor)
        self.align = self.spatial * int(bundle.dit.cfg.patch_size)
        self.window = int(cfg.window_latents or latents_for(int(cfg.clip_frames)))
        self.context = max(1, min(int(cfg.context_latents), self.window - 1))
        self.defaults = SamplerSettings.from_flow(cfg.flow)
        self.settings = settings or self.defaults
        self.literal = False   # True: condition on prompts exactly as written
        self._text_cache: dict[str, tuple] = {}
        self._readings: dict[str, object] = {}

    @classmethod
    def load(cls, model: str = "default", device: str = "auto") -> "VideoPipeline":
        from sora_cli.bundle import load_bundle

        device = resolve_device(device)
        return cls(load_bundle(model, device=device), device)

    # -- sizes -------------------------------------------------------------------------------
    def frame_size(self, size: tuple[int, int] | None = None) -> tuple[int, int]:
        """(height, width) rounded to what the VAE and DiT patches can tile. A size from
        Python is checked first: (100000, 100000) took all the memory there was."""
        import numbers

        if size is not None:
            ok = isinstance(size, (tuple, list)) and len(size) == 2 and all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) and 1 <= v <= 4096
                for v in size)   # (working_size gives the model's shape in fractions)
            if not ok:
                raise SoraUsageError(f"size must be (height, width) in pixels, 1 to 4096 each, "
                                     f"got {size!r}")
        h, w = size if size else (self.height, self.width)
        a = self.align
        return max(a, round(h / a) * a), max(a, round(w / a) * a)

    # -- conditioning ------------------------------------------------------------------------
    def read(self, prompt: str):
        """The Reading of `prompt`: what the model is conditioned on (sora_cli/prompt_reading)."""
        from sora_cli.prompt_reading import Reading, read_prompt

        if self.literal:
            return Reading(prompt, prompt)
        if prompt not in self._readings:
            self._readings[prompt] = read_prompt(prompt, self.bundle.trained_tokens,
                                                 self.bundle.text.clip.tokenizer.encode)
        return self._readings[prompt]

    @property
    def prompt_tokens(self) -> int:
        """How many tokens of a prompt the text tower reads (0: its tokenizer does not say)."""
        return max(0, getattr(self.bundle.text.clip.tokenizer, "context_length", 0) - 2)

    def unread(self, prompt: str) -> str:
        """The end of the text the model is conditioned on for `prompt` that its text tower's
        context cannot hold ('' when it all fits)."""
        from sora_cli.prompt_reading import beyond_context

        encode = getattr(self.bundle.text.clip.tokenizer, "encode", None)
        if not self.prompt_tokens or encode is None:
            return ""
        return beyond_context(self.read(prompt).text, self.prompt_tokens + 2, encode)

    def _text(self, prompt: str):
        import torch

        text = self.read(prompt).text
        if text not in self._text_cache:
            with torch.no_grad(), self._autocast():
                tokens, mask, pooled = self.bundle.text([text])
            self._text_cache[text] = (tokens.float(), mask, pooled.float())
        return self._text_cache[text]

    def _autocast(self):
        # bf16 only where it is native (CUDA, AVX512-BF16/AMX CPUs): emulated bf16 on an
        # AVX2-only CPU is ~30x slower than fp32.
        from sora_cli.nn.precision import autocast

        return autocast(str(self.device))

    def encode_frames(self, frames: np.ndarray):
        """(T,H,W,3) uint8 at the working size, T = 4k+1 -> normalised latents (1,C,1+k,h,w)."""
        import torch

        video = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        video = video.permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0
        with torch.no_grad(), self._autocast():
            _z, mean, _logvar = self.bundle.vae.encode(video)
        return self.bundle.vae.normalize_latents(mean.float())

    def decode_latents(self, z, drop_frames: int = 0, keep_frames: int | None = None
                       ) -> Iterator[np.ndarray]:
        """Stream (t,H,W,3) uint8 chunks decoded from normalised latents (1,C,L,h,w)."""
        import torch

        raw = self.bundle.vae.denormalize_latents(z)
        seen = kept = 0
        with torch.no_grad(), self._autocast():
            for chunk in self.bundle.vae.decode_iter(raw, chunk=2):
                self._check_finite(chunk, "decoded frames")
                x = ((chunk[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
                x = x.permute(1, 2, 3, 0).cpu().numpy()
                lo = max(0, drop_frames - seen)
                seen += len(x)
                x = x[lo:]
                if keep_frames is not None:
                    x = x[:max(0, keep_frames - kept)]
                kept += len(x)
                if len(x):
                    yield x
                if keep_frames is not None and kept >= keep_frames:
                    return

    # -- the one loop ------------------------------------------------------------------------
    def sample_latents(self, spans: list[Span], size: tuple[int, int], seed: int,
                       known=None, known_end=None, on_window: Callable[[int, int], None] | None = None,
                       on_step: Callable[[], None] | None = None):
        """Latents (1,C,L,h,w) continuing `known` (1,C,k,h,w) through every span in turn.

        `known_end` (1,C,m,h,w) pins the last latents too (bridging); then a single window must
        hold everything. `on_window(done, total)` hears (0, total) before the first window and
        (k, total) after each; `on_step()` after each denoising step.
        """
        import torch

        from sora_cli.sampling import sample

        _check_request(spans, seed)
        h, w = size[0] // self.spatial, size[1] // self.spatial
        C = int(self.bundle.vae.cfg.z_channels)
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        pieces = [] if known is None else [known]
        have = 0 if known is None else known.shape[2]
        # latent boundaries where each span's prompt takes over
        targets, total_frames = [], frames_of(have, self.temporal) if have else 0
        for span in spans:
            total_frames += span.frames
            targets.append((span, latents_for(total_frames, self.temporal)))
        total = targets[-1][1] if targets else have
        windows = self._plan(have, targets, known_end)
        if on_window is not None:
            on_window(0, len(windows))
        done = 0
        for start, stop, span in windows:
            ctx_n = min(self.context if start > 0 else 0, start) if known_end is None else start
            ctx = torch.cat(pieces, dim=2)[:, :, start - ctx_n:start] if ctx_n else None
            n_new = stop - start
            end_n = known_end.shape[2] if known_end is not None else 0
            T = ctx_n + n_new + end_n
            x_known = torch.zeros(1, C, T, h, w)
            mask = torch.zeros(1, T, dtype=torch.bool)
            if ctx_n:
                x_known[:, :, :ctx_n] = ctx
                mask[:, :ctx_n] = True
            if end_n:
                x_known[:, :, T - end_n:] = known_end
                mask[:, T - end_n:] = True
            cond = self._text(span.prompt)
            uncond = self._text(span.negative)
            step = (lambda i, n: on_step()) if on_step is not None else None
            plan = self._motion_plan(span.prompt, start - ctx_n, T, size)
            # A window that goes on from latents has its subjects there already: only a
            # video's first window chooses among candidate layouts.
            choose = self._layout_choice(span.prompt) if not ctx_n else None
            with torch.no_grad(), self._autocast():
                out = sample(self.bundle.dit, (1, C, T, h, w), cond, uncond, known=x_known,
                             known_mask=mask, generator=gen, progress=step,
                             relayout=plan, relayout_t=self.settings.motion_plan_t,
                             relayout_min_t=self.settings.motion_plan_min_t,
                             choose=choose,
                             expert=self.bundle.dit_high, **self.settings.sample_args())
            new = out[:, :, ctx_n:ctx_n + n_new].float().cpu()
            self._check_finite(new, "latents")
            if ctx_n and self.settings.drift_correction > 0 and known_end is None:
                new = match_statistics(new, ctx, self.settings.drift_correction)
            pieces.append(new)
            done += 1
            if on_window is not None:
                on_window(done, len(windows))
        z = torch.cat(pieces, dim=2)
        assert z.shape[2] == total, (z.shape, total)
        return z

    def _check_finite(self, x, what: str) -> None:
        """Refuse NaN or infinite values: cast to pixels they become black frames, and a
        black video with exit 0 looks like a success. The writer then removes its partial
        file, so nothing is left."""
        import torch

        if not bool(torch.isfinite(x).all()):
            path = self.bundle.path
            # `sora models NAME` looks NAME up by name: a relative folder needs its ./
            arg = self.bundle.name if path is None else \
                shlex.quote(str(path) if path.is_absolute() else f"./{path}")
            raise SoraError(f"the {what} came out NaN or infinite, so no video was written: "
                            f"the model's weights or sampler settings are broken "
                            f"(`sora models {arg}` checks the weights)")

    def world_scene(self, prompt: str):
        """The built-in world's scene the sampler may steer `prompt` toward, or None: --literal,
        not a built-in world model, or the prompt not read as the world."""
        if self.literal or not self.bundle.trained_tokens:
            return None
        from sora_cli.world.parse import PromptNotUnderstood, parse_prompt

        try:
            return parse_prompt(prompt)
        except PromptNotUnderstood:
            return None

    def plans_motion(self, prompt: str):
        """The scene whose motion the sampler draws into the layout for `prompt`
        (sora_cli/motion_plan), or None: planning off, no world scene (see world_scene), or
        no motion to plan."""
        if self.settings.motion_plan_t <= 0:
            return None
        from sora_cli.motion_plan import scene_path

        scene = self.world_scene(prompt)
        if scene is None or scene_path(scene, [0.0], self.height, self.width) is None:
            return None
        return scene

    def chooses_layout(self, prompt: str):
        """The scene whose subjects the sampler looks for among its candidate layouts
        (sora_cli/layout_choice), or None: one candidate, no world scene, or no subjects."""
        if self.settings.candidates <= 1:
            return None
        scene = self.world_scene(prompt)
        return scene if scene is not None and scene.subjects else None

    def _layout_choice(self, prompt: str):
        """sampling.sample's `choose` for `prompt`, or None (see chooses_layout)."""
        scene = self.chooses_layout(prompt)
        if scene is None:
            return None
        from sora_cli.layout_choice import layout_chooser

        return layout_chooser(lambda z: np.concatenate(list(self.decode_latents(z.float()))),
                              scene)

    def _motion_plan(self, prompt: str, first: int, count: int, size: tuple[int, int]):
        """The relayout of latents first..first+count-1 that moves the subject as `prompt`
        asks, or None (see plans_motion)."""
        scene = self.plans_motion(prompt)
        if scene is None:
            return None
        from sora_cli.motion_plan import latent_times, moved_layout, scene_path

        path = scene_path(scene, latent_times(first, count, self.temporal, self.fps), *size)
        return lambda x0: moved_layout(x0, path, self.spatial)

    def _plan(self, have: int, targets, known_end) -> list[tuple[int, int, Span]]:
        """Windows (start, stop, span): latents [start, stop) sampled with span's prompt."""
        windows = []
        pos = have
        for span, stop_at in targets:
            while pos < stop_at:
                room = self.window - (min(self.context, pos) if pos else 0)
                if known_end is not None:
                    room = stop_at - pos  # a bridge is one window by construction
                stop = min(stop_at, pos + max(1, room))
                windows.append((pos, stop, span))
                pos = stop
        return windows

    # -- modes -------------------------------------------------------------------------------
    # The modes yield the model's frames as they are drawn: no watermark, metadata or content
    # credentials (those go on where sora_cli.generation writes a file; frames you write
    # yourself can be marked with sora_cli.watermark.embed_watermark). `size` is the model's working
    # (height, width), rounded to what its patches tile (frame_size).
    def generate(self, prompt: str, duration: float, size=None, seed: int = 0, negative: str = "",
                 **hooks) -> Iterator[np.ndarray]:
        check_seconds(duration)
        return self.story([Span(prompt, frames_for(duration, self.fps), negative)], size, seed,
                          **hooks)

    def story(self, spans: list[Span], size=None, seed: int = 0, **hooks) -> Iterator[np.ndarray]:
        hw = self.frame_size(size)
        z = self.sample_latents(spans, hw, seed, **hooks)
        return self.decode_latents(z, keep_frames=sum(s.frames for s in spans))

    def animate(self, image: np.ndarray, prompt: str, duration: float, size=None, seed: int = 0,
                negative: str = "", fit: str = "crop", **hooks) -> Iterator[np.ndarray]:
        check_seconds(duration)
        hw = self.frame_size(size)
        first = to_model_size(image[None], *hw, fit=fit)
        known = self.encode_frames(first)
        n = frames_for(duration, self.fps)
        z = self.sample_latents([Span(prompt, n - 1, negative)], hw, seed, known=known, **hooks)
        return self.decode_latents(z, keep_frames=n)

    def context_frames(self, frames: np.ndarray, size, fit: str = "crop") -> np.ndarray:
        """The clip's last 4k+1 frames (k + 1 = context latents) at the working size."""
        want = frames_of(self.context, self.temporal)
        if len(frames) < want:
            raise SoraError(f"the clip has {len(frames)} frames; extending needs at least {want}")
        return to_model_size(frames[-want:], *size, fit=fit)

    def extend(self, frames: np.ndarray, prompt: str, seconds: float, size=None, seed: int = 0,
               negative: str = "", fit: str = "crop", **hooks) -> Iterator[np.ndarray]:
        """Only the new frames that continue `frames` (resampled to the model fps beforehand)."""
        check_seconds(seconds, "seconds")
        hw = self.frame_size(size)
        ctx = self.context_frames(frames, hw, fit)
        known = self.encode_frames(ctx)
        n = frames_for(seconds, self.fps)
        z = self.sample_latents([Span(prompt, n, negative)], hw, seed, known=known, **hooks)
        return self.decode_latents(z, drop_frames=len(ctx), keep_frames=n)

    def bridge(self, before: np.ndarray, after: np.ndarray, prompt: str, seconds: float,
               size=None, seed: int = 0, negative: str = "", fit: str = "crop",
               **hooks) -> Iterator[np.ndarray]:
        """Frames that lead from the end of `before` to the start of `after`."""
        check_seconds(seconds, "seconds")
        hw = self.frame_size(size)
        head_n = frames_of(2, self.temporal)
        if len(after) < head_n:
            raise SoraError(f"the second clip has {len(after)} frames; bridging needs {head_n}")
        ctx = self.context_frames(before, hw, fit)
        known = self.encode_frames(ctx)
        known_end = self.encode_frames(to_model_size(after[:head_n], *hw, fit=fit))
        n = frames_for(seconds, self.fps)
        n_lat = latents_for(n + 1, self.temporal) - 1
        room = 2 * self.window - known.shape[2] - known_end.shape[2]
        if n_lat > room:
            raise SoraError(f"a bridge this long does not fit the model; use --overlap "
                            f"{room * self.temporal / self.fps:g} or less")
        z = self.sample_latents([Span(prompt, frames_of(n_lat + 1, self.temporal) - 1, negative)],
                                hw, seed, known=known, known_end=known_end, **hooks)
        return self.decode_latents(z, drop_frames=len(ctx), keep_frames=n)


def match_statistics(new, ctx, strength: float):
    """Move `new` latents' per-channel mean and std part of the way to those of `ctx`."""
    dims = (0, 2, 3, 4)
    m_new, s_new = new.mean(dims, keepdim=True), new.std(dims, keepdim=True) + 1e-5
    m_ctx, s_ctx = ctx.mean(dims, keepdim=True), ctx.std(dims, keepdim=True) + 1e-5
    matched = (new - m_new) / s_new * s_ctx + m_ctx
    return new + strength * (matched - new)


def check_device(device: str) -> str:
    """`device` when it names one --device accepts (auto, cpu, cuda, cuda:N): a usage error
    before anything loads, rather than torch's own words later."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device or ""):
        raise SoraUsageError(f"--device must be cpu, cuda, cuda:N or auto, got {device!r}")
    return device


def resolve_device(device: str) -> str:
    import torch

    check_device(device)

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SoraError("--device cuda asked, but no CUDA GPU is available (use --device cpu)")
    if device == "cuda" and "LOCAL_RANK" in os.environ:  # under torchrun: this rank's own GPU
        device = f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
    return device
