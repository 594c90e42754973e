"""What `sora generate/animate/extend/story/batch` do, as functions a Python user can call.

Each one: checks every prompt against the content policy and the output path before any model
work, loads the pipeline (or takes one already loaded), streams frames out of it, watermarks
them, and writes one MP4 whose metadata carries the settings that reproduce it, signed with
content credentials as the last step before the file is renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
import tempfile
import time
from collections import deque
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from sora_cli import __version__, console
from sora_cli.errors import SoraError, SoraUsageError
from sora_cli.pipeline import MAX_SECONDS

ASPECTS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:3": (4, 3), "3:4": (3, 4)}
# x264 preset of generated videos: on a 4 s 256x256 clip at CRF 18 "veryfast" encodes in
# 0.16 s against medium's 0.25 s (the encode is on the critical path: ffmpeg flushes its
# lookahead only when the last frame is in), for 8% more bytes; the watermark reads back alike.
PRESET = "veryfast"
MAX_DURATION = MAX_SECONDS   # one video: generate, story and the raw pipeline alike
WATERMARK_MIN_SIDE = 64   # watermark.embed_watermark's smallest frame side


@dataclass
class GenerateOptions:
    """Options shared by every generation mode (the CLI flags of `sora generate`)."""

    duration: float = 4.0
    size: str | None = None          # "WxH"
    aspect: str | None = None        # "16:9", ...
    fps: float | None = None         # output fps; above the model's it is interpolated
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    negative: str = ""
    sampler: str | None = None
    model: str = "default"
    device: str = "auto"
    crf: int = 18
    overwrite: bool = False
    credentials: bool = True
    sign_cert: str | None = None
    sign_key: str | None = None
    policy: str | None = None
    watermark: bool = True
    literal: bool = False            # condition on prompts exactly as written

    def validate(self, duration_flag: str = "--duration") -> None:
        """Refuse bad flag values (exit 2) before any work; `duration_flag` is the flag that
        set `duration` in the command at hand (extend's --seconds, bridge's --overlap)."""
        self._check_types(duration_flag)
        if not math.isfinite(self.duration):
            raise SoraUsageError(f"{duration_flag} must be a number of seconds")
        if not 0 < self.duration <= MAX_DURATION:
            raise SoraUsageError(f"{duration_flag} must be more than 0 and at most "
                                 f"{MAX_DURATION:g} seconds, got {self.duration:g}")
        if self.fps is not None and not 0 < self.fps <= 120:
            raise SoraUsageError(f"--fps must be more than 0 and at most 120, got {self.fps:g}")
        if self.steps is not None and not 1 <= self.steps <= 1000:
            raise SoraUsageError(f"--steps must be between 1 and 1000, got {self.steps}")
        if self.guidance is not None and not 0 <= self.guidance <= 50:
            raise SoraUsageError(f"--guidance must be between 0 and 50, got {self.guidance:g}")
        if self.size and self.aspect:
            raise SoraUsageError("give --size or --aspect, not both")
        if self.aspect and self.aspect not in ASPECTS:
            raise SoraUsageError(f"--aspect must be one of {', '.join(ASPECTS)}, "
                                 f"got {self.aspect}")
        if self.sampler is not None and self.sampler not in ("euler", "heun"):
            raise SoraUsageError(f"--sampler must be euler or heun, got {self.sampler}")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise SoraUsageError(f"--seed must be an integer from 0 to 2**63 - 1, got {self.seed}")
        from sora_cli.pipeline import check_device

        check_device(self.device)
        if not 0 <= self.crf <= 51:
            raise SoraUsageError(f"--crf must be between 0 and 51, got {self.crf}")
        if self.size:
            parse_wh(self.size)

    def _check_types(self, duration_flag: str) -> None:
        """From Python, a value of the wrong type is named as the flag's, not a TypeError from
        deep inside ("2" steps, 2.5 steps, a (256, 256) size, True as a number)."""
        import numbers

        whole = {"steps": "--steps", "seed": "--seed", "crf": "--crf"}
        number = {"duration": duration_flag, "fps": "--fps", "guidance": "--guidance"}
        text = {"size": "--size", "aspect": "--aspect", "sampler": "--sampler"}
        for field, flag in {**whole, **number, **text}.items():
            value = getattr(self, field)
            if value is None and field not in ("duration", "crf"):
                continue
            if field in text:
                right = isinstance(value, str)
            elif isinstance(value, bool):
                right = False
            elif field in whole:
                right = isinstance(value, numbers.Integral)
            else:
                right = isinstance(value, numbers.Real)
            if not right:
                kind = ("a whole number" if field in whole else "a number" if field in number
                        else 'text such as "256x256"' if field == "size" else "text")
                raise SoraUsageError(f"{flag} must be {kind}, got {value!r}")
        if not isinstance(self.negative, str):
            raise SoraUsageError(f"the negative prompt must be text, got {self.negative!r}")


def parse_wh(text: str) -> tuple[int, int]:
    """'WxH' -> (height, width)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        w, h = (int(v) for v in parts)
    except ValueError:
        raise SoraUsageError(f"--size must look like WIDTHxHEIGHT (e.g. 256x256), got {text!r}")
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise SoraUsageError(f"--size must be between 16 and 4096 pixels a side, got {text}")
    return h, w


def working_size(pipe, opts: GenerateOptions,
                 shape: tuple[int, int] | None = None) -> tuple[int, int]:
    """(height, width) the model draws at: its own pixel count in the shape of --size or
    --aspect (it only learned to fill frames of that many pixels; write_generated scales the
    frames to --size), or of `shape` (width, height: a source clip's), else its size."""
    if opts.size:
        h, w = parse_wh(opts.size)
        shape = (w, h)
    elif opts.aspect:
        shape = ASPECTS[opts.aspect]
    if shape is None:
        return _room_for_watermark(pipe.frame_size((pipe.height, pipe.width)), opts)
    aw, ah = shape
    h = math.sqrt(pipe.height * pipe.width * ah / aw)
    out = _room_for_watermark(pipe.frame_size((h, h * aw / ah)), opts)
    want = output_size(opts)
    if want is not None and want != out:
        console.log(f"drawing at {out[1]}x{out[0]} (the model's size in that shape), "
                    f"scaled to {want[1]}x{want[0]}")
    return out


def _room_for_watermark(size: tuple[int, int], opts: GenerateOptions) -> tuple[int, int]:
    """`size` when the watermark fits frames of it; else a SoraError before any model work
    (the watermark is embedded in the frames the model draws, before any scaling)."""
    h, w = size
    if opts.watermark and min(h, w) < WATERMARK_MIN_SIDE:
        shape = " in that shape" if opts.size or opts.aspect else ""
        raise SoraError(f"the model draws {w}x{h} frames{shape}, too small for the invisible "
                        f"watermark ({WATERMARK_MIN_SIDE} pixels a side at least)"
                        + ("; try a squarer --size or --aspect" if shape else ""))
    return size


def output_size(opts: GenerateOptions) -> tuple[int, int] | None:
    """(height, width) of the file for --size, even as H.264 in yuv420p needs; None: the
    size the model draws at."""
    if not opts.size:
        return None
    h, w = parse_wh(opts.size)
    return h + h % 2, w + w % 2


def default_output(prompt: str, seed: int, folder: Path = Path("."), suffix: str = "") -> Path:
    from sora_cli.batch import slugify

    return folder / f"{slugify(prompt)}-s{seed}{suffix}.mp4"


def new_seed() -> int:
    return int.from_bytes(os.urandom(4), "big")


def load_pipeline(opts: GenerateOptions):
    from sora_cli.pipeline import VideoPipeline
    from sora_cli.video_io import find_ffmpeg_early

    find_ffmpeg_early()
    with console.status(f"loading model {opts.model}"):
        return VideoPipeline.load(opts.model, opts.device)


def use_settings(pipe, opts: GenerateOptions) -> None:
    """The bundle's sampler defaults with this call's --steps/--guidance/--sampler on top, so
    one loaded pipeline serves batch rows with settings of their own."""
    d = pipe.defaults
    pipe.settings = replace(d, steps=opts.steps or d.steps,
                            guidance=d.guidance if opts.guidance is None else opts.guidance,
                            sampler=opts.sampler or d.sampler)
    pipe.literal = opts.literal


def check_prompts(prompts: dict[str, str] | list[str], opts: GenerateOptions) -> None:
    """Refuse before any model work; `prompts` names each text ({"the prompt": ..., ...})."""
    from sora_cli.guard import check_prompts as guard_check, policy_from_option

    guard_check(prompts, policy_from_option(opts.policy))


def model_prompts(pipe, prompts: list[str]) -> dict:
    """{"model_prompt": ...} when the model is conditioned on other words than `prompts` (one
    string, segments joined by " | "), each such reading told on stderr; else {}. Words the
    model never learned, what of a prompt the built-in world leaves out (a second setting:
    world/parse.prompt_notes) and words beyond its text tower's reach are warned of too."""
    readings = [pipe.read(p) for p in prompts]
    for r in readings:
        unseen = ", ".join(dict.fromkeys(r.unseen))
        if r.rewritten:
            console.log(f"reading {r.prompt!r} as {r.text!r}: the model never learned "
                        f"{unseen} (--literal keeps the prompt as written)")
        elif r.unseen:  # used as written, so those words reach the model as untrained noise
            which, them = _the_words(r.unseen)
            console.warn(f"the model never learned {which} (in {r.prompt!r}) and "
                         f"cannot draw {them}; `sora world vocab` lists the words it knows")
        if pipe.world_scene(r.prompt) is not None:  # read as the world: its rules apply
            from sora_cli.world.parse import prompt_notes

            for note in prompt_notes(r.prompt):
                console.warn(note)
        cut = pipe.unread(r.prompt)
        if cut:
            shown = cut if len(cut) <= 60 else cut[:57] + "..."
            console.warn(f"the prompt is longer than the model reads "
                         f"({pipe.prompt_tokens} tokens); it never sees {shown!r}: "
                         "put what matters first")
    if not any(r.rewritten for r in readings):
        return {}
    return {"model_prompt": " | ".join(r.text for r in readings)}


def _the_words(words) -> tuple[str, str]:
    """("the word 'x'" or "the words 'x', 'y'", "it" or "them") for a warning."""
    words = list(dict.fromkeys(words))
    if len(words) == 1:
        return f"the word {words[0]!r}", "it"
    return "the words " + ", ".join(repr(w) for w in words), "them"


def warn_unseen_negative(pipe, negative: str) -> None:
    """A negative prompt in words the model never learned steers away from untrained noise,
    not from what the words say ("blurry, low quality" is a habit from other models)."""
    unseen = pipe.read(negative).unseen if negative.strip() else ()
    if unseen:
        which, them = _the_words(unseen)
        console.warn(f"the model never learned {which} of the negative prompt and "
                     f"cannot steer away from {them}; `sora world vocab` lists the words it "
                     "knows")


def _settings(mode: str, pipe, prompt: str, opts: GenerateOptions, seed: int,
              size: tuple[int, int], frames: int, extra: dict | None = None,
              prompts: list[str] | None = None) -> dict:
    said = prompts if prompts is not None else [prompt]
    warn_unseen_negative(pipe, opts.negative)
    scaled = output_size(opts)
    return {"tool": f"sora-cli {__version__}", "mode": mode, "prompt": prompt,
            **model_prompts(pipe, said),
            **({"motion_plan": True} if any(pipe.plans_motion(p) for p in said) else {}),
            # only a video's first window chooses its layout: one made from nothing
            **({"candidates": pipe.settings.candidates}
               if mode in ("generate", "story") and pipe.chooses_layout(said[0]) else {}),
            "negative": opts.negative, "seed": seed, "steps": pipe.settings.steps,
            "guidance": pipe.settings.guidance, "sampler": pipe.settings.sampler,
            "model": pipe.bundle.name, "model_hash": pipe.bundle.hash,
            "width": size[1], "height": size[0], "fps": pipe.fps, "frames": frames,
            "duration": round(frames / pipe.fps, 3), "device": str(pipe.device),
            # --fps resamples what the model drew at fps: the file's rate, to rebuild the command
            **({"output_fps": opts.fps} if opts.fps and abs(opts.fps - pipe.fps) > 1e-6 else {}),
            # the settings describe what the model drew; the file may be scaled from it
            **({"scaled_to": f"{scaled[1]}x{scaled[0]}"} if scaled not in (None, size) else {}),
            **(extra or {})}


def signing_identity(opts: GenerateOptions):
    """The C2PA signing identity, resolved up front so a bad --sign-cert fails before any
    model work; None with --no-credentials."""
    if not opts.credentials:
        return None
    from sora_cli.provenance import resolve_identity

    return resolve_identity(opts.sign_cert, opts.sign_key)


def write_generated(frames: Iterable[np.ndarray], output: Path, pipe, settings: dict,
                    opts: GenerateOptions, action: str = "c2pa.created",
                    ingredients: list[Path] = (), identity=None,
                    audio: Path | None = None) -> dict:
    """Watermark, encode (interpolating to --fps if higher), sign and rename into place.
    `audio`: a file whose sound track goes with the video from its start (AAC)."""
    from sora_cli.video_io import sora_metadata, write_video

    payload = None
    if opts.watermark:
        from sora_cli.watermark import embed_watermark, payload_for

        payload = payload_for(json.dumps(settings, sort_keys=True, default=str))
        settings = {**settings, "watermark": f"{payload:012x}"}
        frames = (embed_watermark(chunk, payload) for chunk in frames)
    metadata = sora_metadata(settings)
    finalize = None
    if opts.credentials:
        from sora_cli.provenance import make_finalizer

        finalize = make_finalizer(action, settings, list(ingredients),
                                  identity or signing_identity(opts))
    out_fps = opts.fps or pipe.fps
    flat = (frame for chunk in frames for frame in chunk)
    hw = output_size(opts)
    if payload is not None and hw is not None and min(hw) < WATERMARK_MIN_SIDE:
        console.warn(f"{hw[1]}x{hw[0]} is too small for the invisible watermark to be read "
                     f"back ({WATERMARK_MIN_SIDE} pixels a side at least): the video carries it, "
                     "but only its metadata and content credentials say it is machine-made")
    scale = None if hw is None else (hw[1], hw[0])
    if out_fps > pipe.fps + 1e-6:
        info = _write_interpolated(flat, output, pipe.fps, out_fps, opts, metadata, finalize,
                                   scale, audio)
    else:
        if out_fps < pipe.fps - 1e-6:
            from sora_cli.edit import change_fps_stream

            flat = change_fps_stream(flat, pipe.fps, out_fps)
        info = write_video(output, flat, out_fps, crf=opts.crf, metadata=metadata,
                           overwrite=opts.overwrite, finalize=finalize, preset=PRESET,
                           scale=scale, audio=audio)
    return {"output": str(output), "duration": info.duration, "frames": info.frames,
            "fps": info.fps, "width": info.width, "height": info.height,
            "seed": settings["seed"], "credentials": opts.credentials,
            "watermark": None if payload is None else f"{payload:012x}"}


def _write_interpolated(frames, output: Path, fps: float, out_fps: float, opts, metadata,
                        finalize, scale: tuple[int, int] | None = None,
                        audio: Path | None = None) -> object:
    """Motion-interpolate to a higher frame rate with ffmpeg's minterpolate (then scale to
    `scale`, width x height, when given: interpolating the smaller frames is cheaper)."""
    import tempfile

    from sora_cli.video_io import (atomic_output, check_output_path, ffmpeg_path, metadata_args,
                                   probe, run_ffmpeg, write_video)

    target = check_output_path(output, opts.overwrite)
    with tempfile.TemporaryDirectory(prefix="sora-fps-") as work:
        native = Path(work) / "native.mp4"
        src = write_video(native, frames, fps, crf=max(0, opts.crf - 4), preset=PRESET,
                          audio=audio)
        want = max(1, round(src.frames * out_fps / fps))
        with atomic_output(target, opts.overwrite, finalize) as tmp:
            run_ffmpeg(["-y", "-i", ffmpeg_path(native), "-vf",
                        # hold the last frame a little so the tail gets interpolated frames too
                        f"tpad=stop_mode=clone:stop=2,"
                        f"minterpolate=fps={out_fps:g}:mi_mode=mci:mc_mode=aobmc:vsbmc=1"
                        + (f",scale={scale[0]}:{scale[1]}:flags=lanczos" if scale else ""),
                        "-frames:v", str(want), "-c:v", "libx264", "-preset", PRESET,
                        *(["-map", "0:v:0", "-map", "0:a:0", "-c:a", "copy"] if audio else []),
                        "-pix_fmt", "yuv420p", "-crf", str(opts.crf),
                        "-movflags", "+faststart+use_metadata_tags",
                        *metadata_args(metadata), ffmpeg_path(tmp)], "frame interpolation")
        return probe(target)


class _Progress:
    """Denoising progress on stderr: one bar over all steps of all windows of one video, so a
    long video shows one bar with an honest time remaining instead of a bar per window."""

    def __init__(self, label: str, steps: int, runs: int = 1):
        # runs: sampling calls of the same window count under this one bar (bridge: one a gap)
        self.label, self.steps, self.runs = label, steps, runs
        self.ctx = None
        self.advance = None

    def __enter__(self):
        return self

    def on_window(self, done: int, total: int) -> None:
        # The pipeline announces the plan with (0, total) before the first window.
        if done == 0 and self.ctx is None:
            self.ctx = console.progress(f"{self.label} denoising",
                                        total * self.steps * self.runs)
            self.advance = self.ctx.__enter__()

    def on_step(self) -> None:
        if self.advance is not None:
            self.advance(1)

    def writing(self, frames: Iterable[np.ndarray], total: int) -> Iterator[np.ndarray]:
        """`frames` (chunks) passed on under a second bar, "writing", over `total` frames:
        decoding, marking and encoding them take about an eighth of the time after the
        last denoising step (a minute for a 10-minute video), which the full bar left silent."""
        self.__exit__(None, None, None)
        self.ctx = None
        with console.progress(f"{self.label} writing", total) as advance:
            for chunk in frames:
                yield chunk
                advance(len(chunk))

    def __exit__(self, *exc):
        if self.ctx is not None:
            self.ctx.__exit__(*exc)
        return False


def generate(prompt: str, output: str | os.PathLike | None = None,
             opts: GenerateOptions | None = None, num: int = 1, pipe=None) -> list[dict]:
    """Text to video. `num` > 1 makes variations with seeds seed, seed+1, ..."""
    opts = opts or GenerateOptions()
    _require_prompt(prompt)
    opts.validate()
    if not 1 <= num <= 1000:
        raise SoraUsageError(f"--num must be between 1 and 1000, got {num}")
    check_prompts({"the prompt": prompt, "the negative prompt": opts.negative}, opts)
    seed0 = opts.seed if opts.seed is not None else new_seed()
    outputs = _outputs(prompt, output, seed0, num)
    from sora_cli.video_io import check_output_path

    for out in outputs:
        check_output_path(out, opts.overwrite)
    identity = signing_identity(opts)
    pipe = pipe or load_pipeline(opts)
    use_settings(pipe, opts)
    size = working_size(pipe, opts)
    results = []
    for i, out in enumerate(outputs):
        seed = seed0 + i
        t0 = time.perf_counter()
        n = _frame_count(opts.duration, pipe, "--duration")
        settings = _settings("generate", pipe, prompt, opts, seed, size, n)
        with _Progress(out.name, pipe.settings.steps) as bar:
            frames = pipe.generate(prompt, opts.duration, size=size, seed=seed,
                                   negative=opts.negative, on_window=bar.on_window,
                                   on_step=bar.on_step)
            res = write_generated(bar.writing(frames, n), out, pipe, settings, opts,
                                  identity=identity)
        res["seconds"] = round(time.perf_counter() - t0, 3)
        results.append(res)
    return results


def _require_prompt(prompt: str | None) -> None:
    if prompt is not None and not isinstance(prompt, str):
        raise SoraUsageError(f"the prompt must be text, got {prompt!r}")
    if prompt is None or not prompt.strip():
        raise SoraUsageError("the prompt is empty: describe the video, e.g. "
                             "sora generate \"a red ball bouncing on a beach\"")
    if prompt.strip() == "-":   # as other tools read stdin: here it would be drawn as "-"
        raise SoraUsageError("the prompt is '-': prompts are not read from stdin here; give "
                             "it in quotes, or use sora batch - for prompts on stdin")


def _outputs(prompt: str, output, seed0: int, num: int) -> list[Path]:
    if output is None:
        return [default_output(prompt, seed0 + i) for i in range(num)]
    out = Path(output)
    if num == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i + 1}{out.suffix}") for i in range(num)]


def _beside(source, ending: str, what: str) -> Path:
    """The default output of a command that reads a file: its name with `ending` (".mp4",
    "-extended.mp4"), beside it. Input from stdin or a pipe or device (`-`, /dev/stdin, bash's
    <(...)) has no such place: the video would go into /dev, so -o must name it."""
    from sora_cli.textfile import is_stream

    path = Path(str(source))
    if is_stream(source) or path.absolute().parts[1:2] in (("dev",), ("proc",)):
        raise SoraUsageError(f"{what} read from stdin or a pipe ({source}) needs -o to name "
                             "the video")
    return path.with_name(path.stem + ending)


def _check_fit(fit: str) -> None:
    """A bad --fit is a usage error before any model work, for images and clips alike."""
    if fit not in ("crop", "pad"):
        raise SoraUsageError(f"--fit must be crop or pad, got {fit}")


def _max_image_pixels() -> int:
    from PIL import Image

    return int(Image.MAX_IMAGE_PIXELS or 0) * 2   # Pillow refuses twice its warning limit


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file's pixels (H, W, 3) uint8; an animated GIF gives its first frame."""
    import imageio.v3 as iio

    from sora_cli.video_io import probe

    p = Path(path)
    if p.is_dir():
        raise SoraError(f"{p} is a folder: give an image file in it")
    from sora_cli.textfile import is_stream

    if is_stream(path):
        raise SoraError(f"{p} is stdin, a pipe or a device: save the image to a file first "
                        "and give its name")
    if not p.is_file():
        raise SoraError(f"no such image: {p}")
    try:
        info = probe(p)
    except SoraError:
        info = None   # not something ffmpeg reads: imageio may still know it
    if info is not None and not info.still and info.codec != "gif":
        # imageio would decode every frame of it to take the first
        raise SoraError(f"{p} is a video, not an image: `sora extend {shlex.quote(str(p))}` "
                        "continues a clip; to start from one of its frames, save that frame "
                        "as a PNG")
    try:
        try:  # upright as shown: phone photos store their turn in EXIF
            img = np.asarray(iio.imread(p, index=0, rotate=True))
        except TypeError:  # a reader without `rotate`
            img = np.asarray(iio.imread(p, index=0))
    except Exception as exc:
        if type(exc).__name__ == "DecompressionBombError":  # Pillow's guard against huge images
            raise SoraError(f"{p} has more pixels than images are read with here (about "
                            f"{_max_image_pixels() / 1e6:.0f} megapixels): scale it down "
                            "first") from None
        raise SoraError(f"cannot read {p} as an image: it is damaged or not an image file "
                        "(PNG, JPEG, WebP, BMP, TIFF or GIF)") from None
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or min(img.shape[:2]) < 1:
        raise SoraError(f"{p} is not an RGB image (shape {img.shape})")
    if img.dtype != np.uint8:  # 16-bit, float or 1-bit images, by their type's full range
        top = np.iinfo(img.dtype).max if np.issubdtype(img.dtype, np.integer) else 1.0
        img = np.clip(img.astype(np.float64) / top * 255 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img[..., :3])


def animate(image: str | os.PathLike, prompt: str = "", output: str | os.PathLike | None = None,
            opts: GenerateOptions | None = None, fit: str = "crop", pipe=None) -> dict:
    """Image to video: the image is the first frame, the prompt says what happens next."""
    opts = opts or GenerateOptions()
    opts.validate()
    _check_fit(fit)
    check_prompts({"the prompt": prompt, "the negative prompt": opts.negative}, opts)
    img = read_image(image)
    seed = opts.seed if opts.seed is not None else new_seed()
    out = Path(output) if output else default_output(prompt or Path(image).stem, seed,
                                                     suffix="-animated")
    from sora_cli.video_io import check_output_path

    check_output_path(out, opts.overwrite)
    identity = signing_identity(opts)
    pipe = pipe or load_pipeline(opts)
    use_settings(pipe, opts)
    size = working_size(pipe, opts)
    n = _frame_count(opts.duration, pipe, "--duration")
    settings = _settings("animate", pipe, prompt, opts, seed, size, n,
                         {"source_hash": file_hash(image), "fit": fit})
    t0 = time.perf_counter()
    with _Progress(out.name, pipe.settings.steps) as bar:
        frames = pipe.animate(img, prompt, opts.duration, size=size, seed=seed,
                              negative=opts.negative, fit=fit, on_window=bar.on_window,
                              on_step=bar.on_step)
        res = write_generated(bar.writing(frames, n), out, pipe, settings, opts,
                              ingredients=[Path(image)], identity=identity)
    res["seconds"] = round(time.perf_counter() - t0, 3)
    return res


def file_hash(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _model_chunks(path, info, pipe, size: tuple[int, int], fit: str = "crop",
                  frame: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
    """The clip at the model's frame rate and `size` (height, width), in chunks of frames,
    decoded as a stream: a minute of 1080p decoded whole would be 11 GB. Frames are picked as
    `edit.change_fps` picks them (the nearest in time). A clip larger than `size` is cropped
    and shrunk inside ffmpeg, which then turns only model-size pictures into RGB (exact RGB
    of 1080p takes 2.8x as long); others are fitted as `pipeline.to_model_size` fits them.
    `frame`: the file's frame (--size), which the clip is fitted to first and which is then
    stretched onto `size` (the model's frame in that shape, as rounded), as the model's
    frames are stretched back onto it: a seam then joins one picture, not two crops."""
    from sora_cli.edit import change_fps_stream
    from sora_cli.pipeline import to_model_size
    from sora_cli.video_io import iter_video

    if frame and tuple(frame) != tuple(size):
        for chunk in _model_chunks(path, info, pipe, frame, fit):
            yield to_model_size(chunk, *size, fit="stretch")
        return
    shrink = fit == "crop" and info.width * info.height > size[0] * size[1]
    fps, stream = iter_video(path, info=info, fit=size if shrink else None)
    if abs(fps - pipe.fps) > 1e-3:
        stream = change_fps_stream(stream, fps, pipe.fps)
    chunk: list[np.ndarray] = []
    for frame in stream:
        chunk.append(frame)
        if len(chunk) * frame.nbytes >= 2**25:  # resized 32 MB at a time (x4 as floats)
            yield to_model_size(np.stack(chunk), *size, fit=fit)
            chunk = []
    if chunk:
        yield to_model_size(np.stack(chunk), *size, fit=fit)


class _Source:
    """A clip that extend or bridge go on from, at the model's rate and size, never held
    whole (a 10-minute source held at 256x256 took 2.9 GB): one pass counts its frames and
    keeps its ends, which the model sees; `frames()` is a second pass, for the output."""

    def __init__(self, path, info, pipe, size: tuple[int, int], fit: str,
                 opts: GenerateOptions, frame: tuple[int, int] | None = None):
        from sora_cli.pipeline import frames_of

        self.path, self.info, self.pipe, self.size, self.fit = path, info, pipe, size, fit
        self.opts, self.stamp, self.frame = opts, _stamp(path), frame
        keep = max(48, frames_of(pipe.context, pipe.temporal), frames_of(2, pipe.temporal))
        head: list[np.ndarray] = []
        tail: deque[np.ndarray] = deque(maxlen=keep)
        self.count = 0
        for chunk in _model_chunks(path, info, pipe, size, fit, frame):
            head.extend(chunk[:keep - len(head)])
            tail.extend(chunk[-keep:])
            self.count += len(chunk)
        if not self.count:
            raise SoraError(f"cannot read {path}: no video frames in it (damaged or truncated)")
        self.mark = _own_mark(np.stack(tail), info, opts)
        self.head, self.tail = (_unmarked(np.stack(f), *self.mark) for f in (head, tail))

    def frames(self, size: tuple[int, int] | None = None) -> Iterator[np.ndarray]:
        """The whole clip again, as the model sees it or at `size` (the file's, for --size:
        scaled once, not drawn down to the model's size and back up), its mark taken out."""
        frame = None if size else self.frame
        size = size or self.size
        self._same_file()
        done, mark = 0, self.mark
        for chunk in _model_chunks(self.path, self.info, self.pipe, size, self.fit, frame):
            if not done and size != self.size:   # a mark lines up at one size, if any
                mark = _own_mark(chunk[:48], self.info, self.opts)
            done += len(chunk)
            yield _unmarked(chunk, *mark)
        self._same_file(done)

    def _same_file(self, done: int | None = None) -> None:
        """The file both passes read is the one the first began on: a clip copied over it
        meanwhile would give one clip's frames and another's continuation, under the first
        one's hash."""
        if _stamp(self.path) != self.stamp or done not in (None, self.count):
            raise SoraError(f"{self.path} changed while it was being read: run again once "
                            "nothing writes to it")


def _unmarked(frames: np.ndarray, payload: int, share: float, drawn) -> np.ndarray:
    if not share:
        return frames
    from sora_cli.watermark import unmark

    return unmark(frames, payload, share, drawn=drawn)[0]


def _stamp(path) -> tuple:
    try:
        st = os.stat(path)
    except OSError:
        return ()
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev


def _own_mark(frames: np.ndarray, info, opts: GenerateOptions) -> tuple:
    """(payload, share, drawn) of a sora-cli source's watermark, to take out of its frames
    before the new file's mark goes on over them all (`watermark.unmark`: two marks wear the
    kept part down pass by pass); share 0 where there is none to take out: no new mark, no
    recorded one, or one that does not line up with these frames. A --size video's mark was
    laid at the size the model drew (its recorded width and height) and scaled with the
    picture: it is looked for both at the frames' size and scaled from that one."""
    settings = info.sora or {}
    recorded = settings.get("watermark")
    if not opts.watermark or not isinstance(recorded, str):
        return 0, 0.0, None
    try:
        payload = int(recorded, 16)
    except ValueError:
        return 0, 0.0, None
    if not 0 <= payload < 1 << 48:
        return 0, 0.0, None
    from sora_cli.watermark import UNMARK_LEAST, mark_share

    sizes = [None]
    drew = settings.get("height"), settings.get("width")
    if all(isinstance(v, int) and v >= WATERMARK_MIN_SIDE for v in drew) \
            and drew != frames.shape[1:3]:
        sizes.append(drew)
    share, drawn = max(((mark_share(frames, payload, drawn=d), d) for d in sizes),
                       key=lambda found: found[0])
    return (payload, share, drawn) if share >= UNMARK_LEAST else (0, 0.0, None)


def extend(clip: str | os.PathLike, prompt: str = "", seconds: float = 4.0,
           output: str | os.PathLike | None = None, opts: GenerateOptions | None = None,
           only_new: bool = False, fit: str = "crop", pipe=None) -> dict:
    """Continue a clip: its last frames are the clean context of the new ones."""
    opts = replace(opts or GenerateOptions(), duration=seconds)
    opts.validate(duration_flag="--seconds")
    _check_fit(fit)
    check_prompts({"the prompt": prompt, "the negative prompt": opts.negative}, opts)
    from sora_cli.edit import joined_sound
    from sora_cli.video_io import check_output_path, probe, require_clip

    info = require_clip(probe(clip), "extend")
    # the original part keeps its sound (the new seconds are silent); --only-new has none
    if only_new:
        _say_sound_is_dropped([info])
    seed = opts.seed if opts.seed is not None else new_seed()
    out = Path(output) if output else _beside(clip, "-extended.mp4", "a clip")
    check_output_path(out, opts.overwrite)
    identity = signing_identity(opts)
    pipe = pipe or load_pipeline(opts)
    use_settings(pipe, opts)
    size = _extension_size(pipe, opts, info)
    file_hw = output_size(opts)
    source = _Source(clip, info, pipe, size, fit, opts, frame=file_hw)
    n = _frame_count(seconds, pipe, "--seconds")
    settings = _settings("extend", pipe, prompt, opts, seed, size,
                         n if only_new else n + source.count,
                         {"source_hash": file_hash(clip), "source_frames": info.frames,
                          "only_new": only_new})
    t0 = time.perf_counter()
    with _Progress(out.name, pipe.settings.steps) as bar:
        new = pipe.extend(source.tail, prompt, seconds, size=size, seed=seed,
                          negative=opts.negative, fit=fit, on_window=bar.on_window,
                          on_step=bar.on_step)
        write_opts = opts
        if not only_new and file_hw and min(file_hw) >= WATERMARK_MIN_SIDE:
            # --size: the clip's own frames go to the file scaled once, straight from it;
            # drawn down to the model's size and scaled back up with the new ones, a clip
            # extended at 640x360 three times kept its start at 22 dB. The new ones are
            # stretched onto the file's frame as the model's view of the clip was taken
            from sora_cli.pipeline import to_model_size

            new = _chain(source.frames(file_hw),
                         (to_model_size(c, *file_hw, fit="stretch", mode="bicubic")
                          for c in new))
            write_opts = replace(opts, size=None)
        elif not only_new:
            new = _chain(source.frames(), new)
        with tempfile.TemporaryDirectory(prefix="sora-sound-") as work:
            # the clip's sound for its own part only: a track longer than its picture would
            # otherwise play on over the new seconds, and set the file's length
            sound = None if only_new or not info.has_audio else joined_sound(
                [Path(clip)], [info], [source.count], 0, pipe.fps, Path(work) / "sound.wav")
            res = write_generated(bar.writing(new, settings["frames"]), out, pipe, settings,
                                  write_opts, action="c2pa.edited",
                                  ingredients=[Path(clip)], identity=identity, audio=sound)
    res["seconds"] = round(time.perf_counter() - t0, 3)
    return res


def _extension_size(pipe, opts: GenerateOptions, info) -> tuple[int, int]:
    """What extend draws at: --size's shape, else the clip's own (a 16:9 phone clip goes on
    at 16:9, not cropped to the model's square), else, where the model's pixels in that
    shape leave a side too small for the watermark, the model's own frame (--fit says how)."""
    if opts.size:
        return working_size(pipe, opts)
    try:
        return working_size(pipe, opts, shape=(info.width, info.height))
    except SoraError:
        return working_size(pipe, opts)


def _frame_count(seconds: float, pipe, flag: str) -> int:
    """Frames of `seconds` at the model's rate; a length under one frame still makes one,
    and says so rather than writing a longer video than asked without a word."""
    from sora_cli.pipeline import frames_for

    if seconds * pipe.fps < 0.5:
        console.warn(f"{flag} {seconds:g} is shorter than one frame at the model's "
                     f"{pipe.fps:g} fps: making one frame ({1 / pipe.fps:g} s)")
    return frames_for(seconds, pipe.fps)


def _say_sound_is_dropped(infos) -> None:
    """The model makes pictures only: a source's sound would vanish without a word."""
    loud = [Path(i.path).name for i in infos if i.has_audio]
    if loud:
        console.warn(f"the sound of {', '.join(loud)} is not kept: the model makes pictures "
                     "only, so the video is silent")


def _chain(*parts: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    for part in parts:
        yield from part


def story(storyboard: str | os.PathLike, output: str | os.PathLike | None = None,
          opts: GenerateOptions | None = None, pipe=None) -> dict:
    """A film from a storyboard: each segment continues the one before with its own prompt."""
    from sora_cli.storyboard import load_storyboard

    if not output:   # checked before the storyboard is read: a pipe reads only once
        _beside(storyboard, ".mp4", "a storyboard")
    board = load_storyboard(storyboard)
    if board.duration > MAX_DURATION:  # a fault of the file, not of the command line
        raise SoraError(f"{storyboard}: the segments add up to {board.duration:g} s, more than "
                        f"the {MAX_DURATION:g} s one video can hold; split it into two "
                        "storyboards and join the films with sora stitch")
    opts = replace(opts or GenerateOptions(), duration=max(board.duration, 1e-3))
    opts.validate()
    named = {f"segment {i}": s.prompt for i, s in enumerate(board.segments, 1)}
    named.update({f"the negative prompt of segment {i}": s.negative
                  for i, s in enumerate(board.segments, 1)})
    check_prompts({**named, "the negative prompt": opts.negative}, opts)
    seed = opts.seed if opts.seed is not None else (board.seed if board.seed is not None
                                                    else new_seed())
    out = Path(output) if output else _beside(storyboard, ".mp4", "a storyboard")
    from sora_cli.video_io import check_output_path

    check_output_path(out, opts.overwrite)
    identity = signing_identity(opts)
    pipe = pipe or load_pipeline(opts)
    use_settings(pipe, opts)
    size = working_size(pipe, opts)
    spans = _segment_spans(board.segments, pipe, opts.negative)
    n = sum(s.frames for s in spans)
    settings = _settings("story", pipe, " | ".join(s.prompt for s in board.segments), opts, seed,
                         size, n, {"segments": [asdict(s) for s in board.segments]},
                         prompts=[s.prompt for s in board.segments])
    t0 = time.perf_counter()
    with _Progress(out.name, pipe.settings.steps) as bar:
        frames = pipe.story(spans, size=size, seed=seed, on_window=bar.on_window,
                            on_step=bar.on_step)
        res = write_generated(bar.writing(frames, n), out, pipe, settings, opts,
                              identity=identity)
    res["seconds"] = round(time.perf_counter() - t0, 3)
    res["segments"] = len(spans)
    return res


def _segment_spans(segments, pipe, negative: str) -> list:
    """The storyboard's segments as frame spans. Boundaries are rounded where they fall on
    the whole film's clock, so the film is as long as the segments add up to (rounding each
    segment alone drifted by up to half a frame per segment); a segment shorter than the
    model's step between prompts (one latent frame) may not be drawn at all, and says so."""
    from sora_cli.pipeline import Span

    spans, start, said = [], 0.0, 0
    for i, seg in enumerate(segments, 1):
        end = start + seg.duration
        frames = max(1, round(end * pipe.fps) - said)
        if frames < pipe.temporal:
            console.warn(f"segment {i} lasts {seg.duration:g} s, {frames} frame(s), shorter "
                         f"than the model's step between prompts ({pipe.temporal} frames, "
                         f"{pipe.temporal / pipe.fps:g} s): its prompt may not be drawn")
        spans.append(Span(seg.prompt, frames, seg.negative or negative))
        said += frames
        start = end
    return spans


def bridge(inputs: list[str | os.PathLike], output: str | os.PathLike, overlap: float = 1.0,
           prompt: str = "", opts: GenerateOptions | None = None, pipe=None) -> dict:
    """Join clips with `overlap` seconds of generated transition between each neighbouring pair:
    the model is given the end of one clip and the start of the next and fills the middle."""
    if isinstance(inputs, (str, bytes, os.PathLike)):   # its letters would be the clips
        raise SoraUsageError(f"bridge takes a list of clips, got one: {inputs!r}")
    if len(inputs) < 2:
        raise SoraUsageError("stitch needs at least two clips to join, got one")
    opts = replace(opts or GenerateOptions(), duration=overlap)
    opts.validate(duration_flag="--overlap")   # a number above 0 (and a type check first)
    check_prompts({"the prompt": prompt, "the negative prompt": opts.negative}, opts)
    from sora_cli.video_io import check_output_path, probe, require_clip

    infos = [require_clip(probe(path), "stitch") for path in inputs]
    seed = opts.seed if opts.seed is not None else new_seed()
    out = Path(output)
    check_output_path(out, opts.overwrite)
    identity = signing_identity(opts)
    pipe = pipe or load_pipeline(opts)
    use_settings(pipe, opts)
    size = working_size(pipe, opts)
    from sora_cli.edit import joined_sound
    from sora_cli.pipeline import frames_for

    clips = [_Source(path, info, pipe, size, "crop", opts) for path, info in zip(inputs, infos)]
    _long_enough_to_bridge(inputs, clips, pipe)
    n = frames_for(overlap, pipe.fps)
    settings = _settings("bridge", pipe, prompt, opts, seed, size,
                         sum(c.count for c in clips) + n * (len(clips) - 1),
                         {"source_hash": [file_hash(p) for p in inputs], "overlap": overlap})
    t0 = time.perf_counter()

    def frames(bar):
        for i, clip in enumerate(clips):
            yield from clip.frames()
            if i + 1 < len(clips):
                yield from pipe.bridge(clip.tail, clips[i + 1].head, prompt, overlap, size=size,
                                       seed=seed + i, negative=opts.negative,
                                       on_window=bar.on_window, on_step=bar.on_step)

    # each clip keeps its sound for its own part; the generated frames between are silent
    with tempfile.TemporaryDirectory(prefix="sora-sound-") as work, \
            _Progress(out.name, pipe.settings.steps, runs=len(clips) - 1) as bar:
        sound = joined_sound([Path(p) for p in inputs], infos, [c.count for c in clips], n,
                             pipe.fps, Path(work) / "sound.wav")
        res = write_generated(frames(bar), out, pipe, settings, opts, action="c2pa.edited",
                              ingredients=[Path(p) for p in inputs], identity=identity,
                              audio=sound)
    res["seconds"] = round(time.perf_counter() - t0, 3)
    return res


def _long_enough_to_bridge(inputs, clips: list[_Source], pipe) -> None:
    """Every clip checked before the first bridge is drawn (the third clip's length was
    found wanting only once the first bridge was made and written)."""
    from sora_cli.pipeline import frames_of

    ends = frames_of(pipe.context, pipe.temporal), frames_of(2, pipe.temporal)
    for i, (path, clip) in enumerate(zip(inputs, clips)):
        need = max(ends[0] if i + 1 < len(clips) else 0, ends[1] if i else 0)
        if clip.count < need:
            raise SoraError(f"{Path(path).name} has {clip.count} frame"
                            f"{'s' if clip.count != 1 else ''} at the model's "
                            f"{pipe.fps:g} fps; a bridge needs {need} of each clip it joins")


# What shapes a batch video besides its prompt: an item whose value of any of these changes
# between runs is a new item, remade, not skipped as done.
BATCH_SETTINGS = ("duration", "size", "aspect", "fps", "seed", "steps", "guidance", "negative",
                  "sampler", "model", "literal", "crf", "credentials", "watermark")


def batch_item_options(item, opts: GenerateOptions, seed: int) -> GenerateOptions:
    """A batch row's options over the command's; a bad value is the row's own SoraError,
    worded with the row's key and line instead of the command's flag."""
    row = {k: v for k, v in item.options.items() if k not in ("output", "seed")}
    if "seconds" in row:
        row["duration"] = row.pop("seconds")
    if "size" in row or "aspect" in row:  # the row's frame shape replaces the command's
        row = {"size": None, "aspect": None, **row}
    item_opts = replace(opts, seed=seed, **row)
    key = "seconds" if "seconds" in item.options else "duration"
    try:
        item_opts.validate(duration_flag=f'"{key}"' if key in item.options else "--duration")
    except SoraUsageError as exc:
        message = str(exc)
        for name in item.options:
            message = message.replace(f"--{name}", f'"{name}"')
        raise SoraError(f"line {item.line}: {message}") from None
    return item_opts


def _batch_settings(item, item_opts: GenerateOptions) -> dict:
    shaping = {k: getattr(item_opts, k) for k in BATCH_SETTINGS}
    for k in ("duration", "fps", "guidance"):  # a row's 1 and a flag's 1.0 are one setting
        if shaping[k] is not None:
            shaping[k] = float(shaping[k])
    return {**shaping, "output": item.options.get("output")}


def batch(jobs: str | os.PathLike, out_dir: str | os.PathLike, opts: GenerateOptions | None = None,
          on_item=None) -> "object":
    """Run a job file (prompts or JSON rows) into out_dir, resumably; shares out under torchrun.
    `opts.overwrite` lets items replace files the batch did not make."""
    from sora_cli.batch import item_seed, read_jobs, run_batch
    from sora_cli.guard import policy_from_option

    opts = opts or GenerateOptions()
    opts.validate()
    items = read_jobs(jobs)
    policy_from_option(opts.policy)  # a bad --policy file fails the batch at once
    base_seed = opts.seed if opts.seed is not None else 0
    # Every row is checked before any model work, and its id made from what it will draw.
    planned: dict[int, GenerateOptions] = {}
    for item in items:
        if item.error is None:
            try:
                planned[item.index] = batch_item_options(item, opts, item_seed(item, base_seed))
            except SoraError as exc:
                item.error = str(exc)
            else:
                item.settings = _batch_settings(item, planned[item.index])
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    barrier = agree = None
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo")
        barrier = dist.barrier

        def rank0_says(problem):   # rank 0's word on the folder's lock, for every rank
            said = [problem]
            dist.broadcast_object_list(said, src=0)
            return said[0]

        agree = rank0_says
    state: dict = {}

    def run_item(item, seed, output):
        if "pipe" not in state:  # load once, only if some item needs the model
            state["pipe"] = load_pipeline(opts)
        # run_batch has let through only an output this batch made, or -y
        item_opts = replace(planned[item.index], seed=seed, overwrite=True)
        return generate(item.prompt, output, item_opts, pipe=state["pipe"])[0]

    try:
        return run_batch(items, out_dir, run_item, base_seed=base_seed, rank=rank,
                         world_size=world, barrier=barrier, on_item=on_item,
                         overwrite=opts.overwrite, agree=agree)
    finally:
        if barrier is not None:
            import torch.distributed as dist

            dist.destroy_process_group()
