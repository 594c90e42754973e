"""The `sora` command line: parses arguments, calls library functions, prints results.

Nothing heavy is imported at module level (torch and open_clip load inside the commands that
need them), so `sora --help` stays instant. Errors are one `error: ...` line on stderr with
exit code 1 (2 for usage errors); `--debug` or SORA_DEBUG=1 shows the traceback.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from sora_cli import __version__
from sora_cli import console
from sora_cli.errors import SoraError, SoraUsageError

app = typer.Typer(
    name="sora",
    help="Make videos from text or images on your own machine, extend and stitch them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: Typer's Rich help pulls in rich.markdown and markdown_it (~0.13 s per call).
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Options shared by every command.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or logs on stderr.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", "-y",
                                            help="Replace the output file if it exists.")]


def _version(value: bool) -> None:
    if value:
        console.result(f"sora-cli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = None,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show full tracebacks on errors (or set SORA_DEBUG=1).")] = False,
) -> None:
    if debug:
        os.environ["SORA_DEBUG"] = "1"


def _setup(quiet: bool = False, json_out: bool = False) -> None:
    # --json keeps stdout clean for scripts; progress still goes to stderr unless --quiet.
    console.set_quiet(quiet)


# --- stitch / inspect (sora_cli/edit.py, sora_cli/inspection.py) ---

@app.command("stitch")
def stitch_cmd(
    inputs: Annotated[List[Path], typer.Argument(
        help="Clips to join, in order (two or more; any size, frame rate or format).",
        show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="The MP4 to write.",
                                         show_default=False)],
    transition: Annotated[str, typer.Option(
        "--transition", "-t", help="How clips meet: cut, crossfade, or bridge (the model "
                                   "generates the frames between them).")] = "cut",
    overlap: Annotated[float, typer.Option(
        help="Length of each crossfade or generated bridge, in seconds.")] = 0.5,
    prompt: Annotated[str, typer.Option(
        "--prompt", "-p", help="bridge: what happens in the generated transition.")] = "",
    model: Annotated[str, typer.Option(
        "--model", "-m", help="bridge: model bundle (name or folder).")] = "default",
    seed: Annotated[Optional[int], typer.Option("--seed", help="bridge: random seed.")] = None,
    steps: Annotated[Optional[int], typer.Option(
        "--steps", help="bridge: denoising steps (default: the model's).")] = None,
    device: Annotated[str, typer.Option("--device", help="bridge: cpu, cuda or auto.")] = "auto",
    size: Annotated[Optional[str], typer.Option(
        help="Output WIDTHxHEIGHT; other clips are scaled and letterboxed "
             "(default: the first clip's; bridge: the model's frame size).")] = None,
    fps: Annotated[Optional[float], typer.Option(
        help="Output frame rate (default: the first clip's; bridge: the model's).")] = None,
    crf: Annotated[int, typer.Option(
        help="H.264 quality when re-encoding: 0 lossless .. 51 worst.")] = 18,
    no_credentials: Annotated[bool, typer.Option(
        "--no-credentials", help="Do not sign C2PA content credentials into the file.")] = False,
    sign_cert: Annotated[Optional[str], typer.Option(
        "--sign-cert", help="PEM certificate chain to sign credentials with (default: a "
                            "local one under $SORA_HOME).")] = None,
    sign_key: Annotated[Optional[str], typer.Option(
        "--sign-key", help="PEM private key for --sign-cert.")] = None,
    overwrite: OverwriteOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Join clips into one MP4 (stream copy when they already match, no re-encode)."""
    _setup(quiet, json_out)
    if len(inputs) < 2:
        raise SoraUsageError("stitch needs at least two clips to join, got one")
    if transition == "bridge":
        from sora_cli.generation import bridge

        opts = _gen_options(locals(), duration=overlap)
        _report_videos([bridge(inputs, output, overlap, prompt, opts)], json_out)
        return
    from sora_cli.edit import stitch
    from sora_cli.provenance import output_finalizer

    # Signed as an edit, the inputs recorded as ingredients (with their own credentials).
    finalize = output_finalizer(
        "c2pa.edited", {"mode": "stitch", "transition": transition,
                        "inputs": [p.name for p in inputs]},
        ingredients=inputs, no_credentials=no_credentials, sign_cert=sign_cert,
        sign_key=sign_key)
    info = stitch(inputs, output, transition=transition, overlap=overlap, size=size, fps=fps,
                  crf=crf, overwrite=overwrite, finalize=finalize)
    if no_credentials:
        console.warn(f"{info.path}: written without content credentials (--no-credentials)")
    if json_out:
        console.result_json({"output": info.path, "duration": info.duration,
                             "frames": info.frames, "fps": info.fps, "width": info.width,
                             "height": info.height, "audio": info.has_audio,
                             "transition": transition, "inputs": [str(p) for p in inputs],
                             "credentials": not no_credentials})
    else:
        console.result(f"{info.path}  ({_seconds(info.duration)} s)")


@app.command("inspect")
def inspect_cmd(
    files: Annotated[List[Path], typer.Argument(
        help="Video files (MP4, MOV, WebM, GIF, ...); several are described one after another.",
        show_default=False)],
    sheet: Annotated[Optional[Path], typer.Option(
        help="Also write a contact sheet PNG: a grid of evenly spaced frames.")] = None,
    gif: Annotated[Optional[Path], typer.Option(
        help="Also write a small looping preview GIF.")] = None,
    cols: Annotated[int, typer.Option(help="Contact sheet columns.")] = 4,
    rows: Annotated[int, typer.Option(help="Contact sheet rows.")] = 3,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Check its C2PA content credentials and invisible watermark; "
                         "exit 1 when the credentials are invalid or it changed after "
                         "signing.")] = False,
    trust_anchor: Annotated[Optional[List[Path]], typer.Option(
        "--trust-anchor", metavar="PEM",
        help="PEM root certificate(s) you trust, for --verify (repeatable).")] = None,
    overwrite: OverwriteOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Describe a video: duration, fps, frames, size, codec, bitrate, audio, sora settings."""
    _setup(quiet, json_out)
    from sora_cli import inspection

    if len(files) > 1 and (sheet is not None or gif is not None):
        raise SoraUsageError(f"--{'sheet' if sheet is not None else 'gif'} draws one video; "
                             f"give one file, not {len(files)}")
    reports, failed, unverified = [], [], []
    for file in files:
        try:
            report = inspection.inspect_file(file, sheet, gif, cols, rows, verify,
                                              trust_anchor or (), overwrite)
        except SoraError as exc:
            if len(files) == 1:
                raise
            console.error(str(exc))   # the others still get described
            failed.append({"path": str(file), "error": str(exc)})
            continue
        reports.append(report)
        if verify and not report["verify"]["ok"]:
            unverified.append(report)
        if not json_out:
            _print_inspection(report, blank_before=len(reports) > 1)
    if json_out:
        console.result_json(reports[0] if len(files) == 1 else
                            {"files": reports, "failed": failed})
    if len(files) == 1 and unverified:
        raise SoraError("content credentials are invalid or the file changed after signing"
                        if unverified[0]["verify"]["credentials"]["present"]
                        else "verification failed")
    if failed or unverified:
        raise SoraError(", ".join(part for part in (
            f"{len(failed)} of {len(files)} files could not be read" if failed else "",
            f"{len(unverified)} of {len(files)} failed verification" if unverified else "")
            if part))


def _print_inspection(report: dict, blank_before: bool) -> None:
    from sora_cli import inspection

    if blank_before:
        console.result("")
    for line in inspection.describe(report):
        console.result(line)
    if "verify" in report:
        from sora_cli import provenance

        lines = provenance.describe(report["verify"])
        width = max(len(k) for k, _ in lines)
        for key, text in lines:
            console.result(f"{key.ljust(width)}  {text}")


# --- training (sora train vae|clip|dit|export, sora data encode) ---

train_app = typer.Typer(help="Train the model's parts: vae, then clip, then dit (and export a "
                             "bundle). Runs resume with --resume; DDP under torchrun.",
                        no_args_is_help=True)
app.add_typer(train_app, name="train")

TrainStepsOpt = Annotated[int, typer.Option(
    "--steps", help="Optimizer steps in all (the LR schedule ends here).")]
TrainMinutesOpt = Annotated[Optional[float], typer.Option(
    "--max-minutes", help="Stop with a checkpoint after this many minutes (continue with "
                          "--resume).")]
TrainStopAtOpt = Annotated[Optional[int], typer.Option(
    "--stop-at", help="Stop with a checkpoint at this step (continue with --resume).")]
TrainBatchOpt = Annotated[int, typer.Option("--batch-size", "-b",
                                            help="Clips per step per process.")]
TrainLrOpt = Annotated[float, typer.Option("--lr", help="Peak learning rate (AdamW).")]
TrainWarmupOpt = Annotated[int, typer.Option("--warmup", help="Linear warmup steps.")]
TrainOutOpt = Annotated[Path, typer.Option("--out", "-o", help="Run folder (checkpoints, log, "
                                                          "samples).")]
TrainResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its "
                                                          "last checkpoint.")]
TrainDeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")]
TrainSeedOpt = Annotated[int, typer.Option("--seed", help="Seed of weights, data and noise.")]
TrainArchOpt = Annotated[Optional[str], typer.Option(
    "--arch", help="Architecture overrides: JSON object or .json file, e.g. '{\"width\": "
                   "128}' (dit, clip) or '{\"z_channels\": 64}' (vae).")]
TrainDataOpt = Annotated[Optional[Path], typer.Option(
    "--data", help="Train on a folder of your videos with captions.jsonl instead of the "
                   "built-in world: each clip is resampled to --fps and cut into windows of "
                   "--frames.")]
TrainWorkersOpt = Annotated[int, typer.Option("--workers",
                                              help="Data-loader processes (-1: auto).")]
TrainCkptOpt = Annotated[float, typer.Option("--checkpoint-minutes",
                                        help="Minutes between checkpoints.")]
TrainLogEveryOpt = Annotated[int, typer.Option("--log-every",
                                          help="Steps between rows of RUN/log.jsonl.")]
TrainSampleOpt = Annotated[int, typer.Option("--sample-every",
                                        help="Steps between sample clips (0: only at the end, -1: never, "
                                             "e.g. where no ffmpeg is installed).")]
TrainInitOpt = Annotated[Optional[Path], typer.Option(
    "--init", help="Start from the weights (and architecture) of another run of this part or of "
                   "a bundle, e.g. models/default: go on training a shipped model. With --arch "
                   "(or a VAE of another latent width), the weights that still fit are kept "
                   "and the rest start fresh.")]
TrainPrecisionOpt = Annotated[str, typer.Option(
    "--precision", help="auto (bf16 autocast where the hardware has native bf16), bf16 or fp32.")]


def _train_config(steps, max_minutes, stop_at, batch_size, lr, warmup, out, device, seed,
                  workers, checkpoint_minutes, sample_every, precision, log_every,
                  resume=False, frames=None):
    """The run's settings, checked before torch loads: bad values and an existing run without
    --resume fail at once."""
    from sora_cli.train.checkpoint import refuse_existing
    from sora_cli.train.config import TrainConfig

    cfg = TrainConfig(steps=steps, max_minutes=max_minutes, stop_at=stop_at,
                      batch_size=batch_size, lr=lr, warmup=warmup, out=str(out), device=device,
                      seed=seed, workers=workers, checkpoint_every_minutes=checkpoint_minutes,
                      sample_every=sample_every, bf16=_precision(precision),
                      log_every=log_every)
    cfg.check()
    if frames is not None and (frames < 1 or (frames - 1) % 4):
        raise SoraUsageError(f"--frames must be 4k+1 (1, 5, 9, 17, 33, ...), got {frames}")
    refuse_existing(out, resume)
    return cfg


def _precision(value: str):
    choices = {"auto": None, "bf16": True, "fp32": False}
    if value not in choices:
        raise SoraUsageError(f"--precision must be auto, bf16 or fp32, got {value!r}")
    return choices[value]


def _train_report(summary: dict, json_out: bool, extra: str = "") -> None:
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return
    if json_out:
        console.result_json(summary)
        return
    loss = summary.get("loss")
    console.result(f"{summary['run']}: {summary['task']} step {summary['step']}, "
                   f"loss {loss:.4f}, {summary['samples_per_s']} samples/s{extra}"
                   if loss is not None else f"{summary['run']}: step {summary['step']}")


@train_app.command("vae")
def train_vae_cmd(
    out: TrainOutOpt = Path("runs/vae"), steps: TrainStepsOpt = 20000,
    max_minutes: TrainMinutesOpt = None,
    stop_at: TrainStopAtOpt = None, batch_size: TrainBatchOpt = 8, lr: TrainLrOpt = 3e-4,
    warmup: TrainWarmupOpt = 200,
    size: Annotated[int, typer.Option("--size", help="Frame size in pixels (square).")] = 256,
    frames: Annotated[int, typer.Option("--frames", help="Frames per clip (4k+1).")] = 17,
    fps: Annotated[float, typer.Option("--fps", help="Frame rate of the clips.")] = 8,
    resume: TrainResumeOpt = False, device: TrainDeviceOpt = "auto", seed: TrainSeedOpt = 0,
    arch: TrainArchOpt = None, data: TrainDataOpt = None, workers: TrainWorkersOpt = -1,
    checkpoint_minutes: TrainCkptOpt = 5.0, sample_every: TrainSampleOpt = 0,
    precision: TrainPrecisionOpt = "auto", log_every: TrainLogEveryOpt = 10,
    eval_clips: Annotated[int, typer.Option(
        "--eval-clips", help="Held-out clips (with --data, clips of that folder) for the "
                             "final PSNR and the latent statistics (at least 1).")] = 16,
    init: TrainInitOpt = None,
    views: Annotated[int, typer.Option(
        "--views", help="Train on each clip 1, 2 or 4 ways (as is, mirrored, reversed, both): "
                        "more clips per render where rendering limits the speed.")] = 1,
    decoder_only: Annotated[bool, typer.Option(
        "--decoder-only", help="Train only the decoder of --init; its encoder and latent "
                               "statistics stay, so a DiT trained on it still fits.")] = False,
    latent_noise: Annotated[float, typer.Option(
        "--latent-noise", help="With --decoder-only: decode latents with Gaussian noise of "
                               "std up to this (DiT units), as a DiT's latents are never "
                               "exact.")] = 0.0,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Train the causal video VAE on world clips (or --data); reports its PSNR at the end."""
    _setup(quiet, json_out)
    from sora_cli.train.config import parse_arch

    cfg = _train_config(steps, max_minutes, stop_at, batch_size, lr, warmup, out, device, seed,
                        workers, checkpoint_minutes, sample_every, precision, log_every,
                        resume, frames)
    from sora_cli.train.vae import train_vae

    s = train_vae(cfg, size=size, frames=frames, fps=fps, arch=parse_arch(arch),
                  folder=str(data) if data else None, resume=resume, eval_clips=eval_clips,
                  init=str(init) if init else None, views=views, decoder_only=decoder_only,
                  latent_noise=latent_noise)
    _train_report(s, json_out, f", PSNR {s['psnr']:.2f} dB" if "psnr" in s else "")


@train_app.command("clip")
def train_clip_cmd(
    out: TrainOutOpt = Path("runs/clip"), steps: TrainStepsOpt = 5000,
    max_minutes: TrainMinutesOpt = None,
    stop_at: TrainStopAtOpt = None, batch_size: TrainBatchOpt = 128, lr: TrainLrOpt = 5e-4,
    warmup: TrainWarmupOpt = 200,
    size: Annotated[Optional[int], typer.Option(
        "--size", help="Image size of the vision tower (default: its config's).")] = None,
    frames: Annotated[int, typer.Option(
        "--frames", help="Frames rendered per clip: one of them is used, or --vision-frames "
                         "of them.")] = 5,
    fps: Annotated[float, typer.Option("--fps", help="Frame rate of those frames.")] = 2,
    vision_frames: Annotated[Optional[int], typer.Option(
        "--vision-frames", help="Frames of each clip the vision tower sees at once, tiled in a "
                                "square grid (1, 4, 9): above 1 its text tower learns motion "
                                "words (default: 1, or --init's).")] = None,
    resume: TrainResumeOpt = False, device: TrainDeviceOpt = "auto", seed: TrainSeedOpt = 0,
    arch: TrainArchOpt = None, data: TrainDataOpt = None, workers: TrainWorkersOpt = -1,
    checkpoint_minutes: TrainCkptOpt = 5.0, precision: TrainPrecisionOpt = "auto",
    log_every: TrainLogEveryOpt = 10,
    eval_only: Annotated[bool, typer.Option(
        "--eval-only", help="Only measure the CLIP in --out (a run folder or a bundle "
                            "folder such as models/default): zero-shot accuracy, or with "
                            "--data its retrieval on that folder.")] = False,
    eval_frames: Annotated[int, typer.Option(
        "--eval-frames", help="Clips for the test at the end of training: held-out world "
                              "clips for zero-shot accuracy, or with --data, clips of that "
                              "folder for caption-to-clip retrieval (0: no test).")] = 270,
    init: TrainInitOpt = None,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Train a small open_clip CLIP on world frames (or frame grids) + captions; reports
    zero-shot accuracy (with --data, caption-to-clip retrieval on that folder)."""
    _setup(quiet, json_out)
    from sora_cli.train.config import parse_arch

    if eval_only:
        from sora_cli.train.clip import eval_clip_run, format_eval

        figures = eval_clip_run(str(out), count=eval_frames, seed=seed, device=device,
                                bf16=_precision(precision), folder=str(data) if data else None,
                                frames=frames, fps=fps)
        if json_out:
            console.result_json(figures)
        else:
            console.result(format_eval(figures))
        return
    cfg = _train_config(steps, max_minutes, stop_at, batch_size, lr, warmup, out, device, seed,
                        workers, checkpoint_minutes, 0, precision, log_every, resume)
    from sora_cli.train.clip import format_eval, train_clip

    s = train_clip(cfg, size=size, frames=frames, fps=fps, arch=parse_arch(arch),
                   folder=str(data) if data else None, resume=resume, eval_frames=eval_frames,
                   init=str(init) if init else None, vision_frames=vision_frames)
    zs, rt = s.get("zero_shot"), s.get("retrieval")
    _train_report(s, json_out, f"; zero-shot colour {zs['color']:.1%}, setting "
                               f"{zs['setting']:.1%}, shape {zs['shape']:.1%}, motion "
                               f"{zs['motion']:.1%}" if zs else
                               f"; retrieval {rt['retrieval']:.1%} (chance {rt['chance']:.1%})"
                               if rt else "")


@train_app.command("dit")
def train_dit_cmd(
    vae: Annotated[Path, typer.Option("--vae", help="VAE run folder (or a bundle).")],
    clip: Annotated[Optional[Path], typer.Option(
        "--clip", help="CLIP run folder (or a bundle) whose text tower conditions the DiT.")
    ] = None,
    text_encoder: Annotated[Optional[str], typer.Option(
        "--text-encoder", help="Any open_clip model config instead of --clip.")] = None,
    text_weights: Annotated[Optional[Path], typer.Option(
        "--text-weights", help="Local weights file for --text-encoder.")] = None,
    latents: Annotated[Optional[Path], typer.Option(
        "--latents", help="Latent cache from `sora data encode` (else clips are rendered and "
                          "encoded on the fly).")] = None,
    out: TrainOutOpt = Path("runs/dit"), steps: TrainStepsOpt = 50000,
    max_minutes: TrainMinutesOpt = None,
    stop_at: TrainStopAtOpt = None, batch_size: TrainBatchOpt = 16, lr: TrainLrOpt = 3e-4,
    warmup: TrainWarmupOpt = 500,
    size: Annotated[int, typer.Option("--size", help="Frame size (ignored with --latents).")]
    = 256,
    frames: Annotated[int, typer.Option("--frames", help="Frames per clip (4k+1).")] = 17,
    fps: Annotated[float, typer.Option("--fps", help="Frame rate of the clips.")] = 8,
    resume: TrainResumeOpt = False, device: TrainDeviceOpt = "auto", seed: TrainSeedOpt = 0,
    arch: TrainArchOpt = None, data: TrainDataOpt = None, workers: TrainWorkersOpt = -1,
    checkpoint_minutes: TrainCkptOpt = 5.0, sample_every: TrainSampleOpt = 0,
    precision: TrainPrecisionOpt = "auto", log_every: TrainLogEveryOpt = 10,
    export: Annotated[Optional[Path], typer.Option(
        "--export", help="When done, write a model bundle to this folder (e.g. models/NAME).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", "-y", help="Replace the --export bundle folder if it exists.")] = False,
    init: TrainInitOpt = None,
    eval_clips: Annotated[int, typer.Option(
        "--eval-clips", help="Held-out world clips (with --data or latents of a folder, "
                             "clips of that folder) for the final flow loss (0: none).")] = 16,
    window: Annotated[int, typer.Option(
        "--window", help="Train on windows of this many latent frames cut from longer clips "
                         "(e.g. 5 of 33-frame clips); later windows continue known frames, as "
                         "long videos and extensions do. 0: whole clips.")] = 0,
    time_shift: Annotated[float, typer.Option(
        "--time-shift", help="Shift the training noise levels as the sampler's shift does "
                             "(the default bundle samples with 2): more training at high "
                             "noise, where layout and motion are decided. 1: SD3's "
                             "logit-normal as it is.")] = 1.0,
    min_t: Annotated[float, typer.Option(
        "--min-t", help="Train a high-noise expert: noise levels uniform on [MIN_T, 1] "
                        "(e.g. 0.75), to be exported beside a main DiT with `sora train "
                        "export --dit-high`. 0: every noise level.")] = 0.0,
    text_inputs: Annotated[bool, typer.Option(
        "--text-inputs", help="Let the DiT read the text tower's input embeddings beside its "
                              "outputs (they tell motion words apart; a CLIP trained on "
                              "frames does not). With --init, the new weights start at zero.")
    ] = False,
    text_path_only: Annotated[bool, typer.Option(
        "--text-path-only", help="Train only the DiT's text path (text projections, pooled-text "
                                 "embedding, cross-attention) of an --init DiT, the rest "
                                 "frozen: adapts it to a new text tower (--clip).")] = False,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Train the diffusion transformer (rectified flow, all conditioning masks); reports the
    held-out flow loss at the end."""
    _setup(quiet, json_out)
    from sora_cli.train.config import parse_arch

    if export is not None and clip is None:
        raise SoraUsageError("--export needs --clip (the bundle's text encoder)")
    if export is not None and export.exists() and not overwrite:
        raise SoraError(f"{export} already exists (use --overwrite / -y to replace it)")
    cfg = _train_config(steps, max_minutes, stop_at, batch_size, lr, warmup, out, device, seed,
                        workers, checkpoint_minutes, sample_every, precision, log_every,
                        resume, None if latents else frames)
    from sora_cli.train.dit import train_dit

    s = train_dit(cfg, str(vae), str(clip) if clip else None, text_encoder=text_encoder,
                  text_weights=str(text_weights) if text_weights else None,
                  latents=str(latents) if latents else None, size=size, frames=frames, fps=fps,
                  arch=parse_arch(arch), folder=str(data) if data else None, resume=resume,
                  init=str(init) if init else None, eval_clips=eval_clips, window=window,
                  time_shift=time_shift, min_t=min_t, text_inputs=text_inputs,
                  text_path_only=text_path_only)
    # a folder's figure is of clips the run trained on, not held out
    held = "held-out " if "held-out" in s.get("eval_on", "held-out") else ""
    extra = f", {held}loss {s['heldout_loss']:.4f}" if "heldout_loss" in s else ""
    if export is not None and os.environ.get("RANK", "0") == "0" and s["step"] >= steps:
        from sora_cli.train.export import export_runs

        s["bundle"] = str(export_runs(export, vae=str(vae), clip=str(clip), dit=str(out),
                                      overwrite=overwrite))
        extra += f"; bundle {s['bundle']}"
    _train_report(s, json_out, extra)


@train_app.command("export")
def train_export_cmd(
    folder: Annotated[Path, typer.Argument(help="Bundle folder to write, e.g. models/NAME.")],
    vae: Annotated[Path, typer.Option("--vae", help="VAE run folder (or a bundle).")],
    clip: Annotated[Path, typer.Option("--clip", help="CLIP run folder (or a bundle).")],
    dit: Annotated[Path, typer.Option(
        "--dit", help="DiT run folder, or a bundle whose DiT and settings to keep (with a "
                      "VAE whose decoder was trained further).")],
    name: Annotated[Optional[str], typer.Option(
        "--name", help="Model name that videos' metadata records (default: the folder's name).",
        metavar="<str>")] = None,
    dit_high: Annotated[Optional[Path], typer.Option(
        "--dit-high", help="A high-noise expert: a `sora train dit --min-t` run (or a bundle "
                           "with one) that runs the sampler's steps from --expert-t up.")
    ] = None,
    expert_t: Annotated[Optional[float], typer.Option(
        "--expert-t", help="Noise level from which the expert takes over (with --dit-high), "
                           "e.g. 0.78.")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", "-y", help="Replace the bundle folder if it exists.")] = False,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Write a model bundle from finished vae, clip and dit runs (EMA weights, bf16); each
    part may also come from a bundle."""
    _setup(quiet, json_out)
    from sora_cli.train.export import export_runs

    path = export_runs(folder, vae=str(vae), clip=str(clip), dit=str(dit), overwrite=overwrite,
                       name=name, dit_high=str(dit_high) if dit_high else None,
                       expert_t=expert_t)
    if json_out:
        console.result_json({"bundle": str(path)})
    else:
        console.result(str(path))


def data_encode_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the latent shards.")],
    vae: Annotated[Optional[Path], typer.Option("--vae", help="VAE run folder.")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", help="Use this bundle's VAE (name or path) instead of --vae.")] = None,
    count: Annotated[int, typer.Option(
        "--count", "-n",
        help="Clips to encode (with --data, at most its windows, spread over it).")] = 10000,
    size: Annotated[int, typer.Option("--size", help="Frame size in pixels.")] = 256,
    frames: Annotated[int, typer.Option("--frames", help="Frames per clip (4k+1).")] = 17,
    fps: Annotated[float, typer.Option("--fps", help="Frame rate of the clips.")] = 8,
    seed: TrainSeedOpt = 0,
    data: Annotated[Optional[Path], typer.Option(
        "--data", help="Encode the clips of a folder of videos with captions.jsonl instead of "
                       "the built-in world: each resampled to --fps and cut into windows of "
                       "--frames, one latent clip per window.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b")] = 8,
    shard_size: Annotated[int, typer.Option("--shard-size", help="Clips per shard file.")] = 256,
    workers: TrainWorkersOpt = -1,
    device: TrainDeviceOpt = "auto", json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Encode world clips (or --data) with a frozen VAE into safetensors latent shards, so DiT
    training skips the VAE. Re-running the same command finishes an interrupted one."""
    _setup(quiet, json_out)
    if (vae is None) == (model is None):
        raise SoraUsageError("give exactly one of --vae RUN or --model BUNDLE")
    from sora_cli.train.latents import encode_latents

    source = str(vae) if vae is not None else model
    if model is not None:
        from sora_cli.bundle import find_bundle

        source = str(find_bundle(model))
    s = encode_latents(out, source, count, size=size, frames=frames, fps=fps, seed=seed,
                       batch_size=batch_size, shard_size=shard_size, device=device,
                       folder=str(data) if data else None, workers=workers)
    if os.environ.get("RANK", "0") != "0":
        return
    if json_out:
        console.result_json(s)
    else:
        console.result(f"{s['out']}: {s['count']} clips, latents {s['latent_shape']} "
                       f"({s['encoded_now']} encoded now)")


# --- generation (sora_cli/generation.py: generate, animate, extend, story, batch) ---

DurationOpt = Annotated[float, typer.Option("--duration", "-d",
                                            help="Length of the video in seconds.")]
SizeOpt = Annotated[Optional[str], typer.Option(
    "--size", help="Frame size of the file, WIDTHxHEIGHT; the model draws at its own pixel "
                   "count in that shape and the frames are scaled.")]
AspectOpt = Annotated[Optional[str], typer.Option(
    "--aspect", help="Aspect ratio 16:9, 9:16, 1:1, 4:3 or 3:4 at the model's pixel count.")]
FpsOpt = Annotated[Optional[float], typer.Option(
    "--fps", help="Output frame rate; above the model's native rate frames are interpolated.")]
GenSeedOpt = Annotated[Optional[int], typer.Option(
    "--seed", help="Random seed; the same seed and settings give the same video.")]
StepsOpt = Annotated[Optional[int], typer.Option(
    "--steps", help="Denoising steps (default: the model's).")]
GuidanceOpt = Annotated[Optional[float], typer.Option(
    "--guidance", "-g", help="Classifier-free guidance scale (default: the model's).")]
NegativeOpt = Annotated[str, typer.Option(
    "--negative", "-n", help="What the video should not show.")]
SamplerOpt = Annotated[Optional[str], typer.Option("--sampler", help="euler or heun.")]
ModelOpt = Annotated[str, typer.Option(
    "--model", "-m", help="Model bundle: a name (models/, $SORA_HOME/models) or a folder.")]
GenDeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")]
CrfOpt = Annotated[int, typer.Option("--crf", help="H.264 quality: 0 lossless .. 51 worst.")]
NoCredOpt = Annotated[bool, typer.Option(
    "--no-credentials", help="Do not sign C2PA content credentials into the file.")]
SignCertOpt = Annotated[Optional[str], typer.Option(
    "--sign-cert", help="PEM certificate chain to sign credentials with (default: a local "
                        "one under $SORA_HOME).")]
SignKeyOpt = Annotated[Optional[str], typer.Option(
    "--sign-key", help="PEM private key for --sign-cert.")]
PolicyOpt = Annotated[Optional[Path], typer.Option(
    "--policy", help="Extra content-policy file adding refused terms.")]
PromptOpt = Annotated[str, typer.Option("--prompt", "-p", help="What should happen.")]
# `sora animate photo.png "the ball rolls away"` is what people type first; -p stays for scripts
PromptArg = Annotated[Optional[str], typer.Argument(
    help="What should happen (or give it with --prompt).", show_default=False,
    metavar="prompt")]
LiteralOpt = Annotated[bool, typer.Option(
    "--literal", help="Use the prompt exactly as written (a built-in world model otherwise reads "
                      "words it never learned in its captions' words, keeps the first of a few "
                      "starting layouts that shows the prompt's subjects, and moves the subject "
                      "as the prompt says in the layout it draws).")]
OutOpt = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="The MP4 to write (default: a name made from the prompt and seed).")]
ExtendOutOpt = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="The MP4 to write (default: CLIP-extended.mp4 beside the clip).")]
StoryOutOpt = Annotated[Optional[Path], typer.Option(
    "--output", "-o", help="The MP4 to write (default: the storyboard's name with .mp4; "
                           "required for a storyboard read from stdin).")]


def _gen_options(params: dict, **override):
    """GenerateOptions from a command's parameters (the flags they share keep one meaning)."""
    from dataclasses import fields

    from sora_cli.generation import GenerateOptions

    given = {**params, **override}
    kw = {f.name: given[f.name] for f in fields(GenerateOptions) if f.name in given}
    kw["credentials"] = not given.get("no_credentials", False)
    if kw.get("policy") is not None:
        kw["policy"] = str(kw["policy"])
    return GenerateOptions(**kw)


def _one_prompt(arg: str | None, opt: str) -> str:
    if arg is not None and opt and arg != opt:
        raise SoraUsageError("give the prompt once: as the argument after the file or with "
                             "--prompt, not both")
    return arg if arg is not None else opt


def _seconds(d: float) -> str:
    """Two decimals, or three where two would round a length: 0.125 s (one frame at 8 fps)
    printed as 0.12 looked like a lost frame."""
    return f"{d:.2f}" if abs(round(d, 2) - d) < 1e-9 else f"{d:.3f}"


def _report_videos(results: list, json_out: bool) -> None:
    if json_out:
        console.result_json(results[0] if len(results) == 1 else {"videos": results})
        return
    for r in results:
        if not r.get("credentials", True):
            console.warn(f"{r['output']}: written without content credentials "
                         "(--no-credentials)")
        console.result(f"{r['output']}  ({_seconds(r['duration'])} s, {r['width']}x{r['height']}, "
                       f"{r['fps']:g} fps, seed {r['seed']}, made in {r['seconds']:.1f} s)")


@app.command("generate")
def generate_cmd(
    prompt: Annotated[str, typer.Argument(help="What the video shows.", show_default=False)],
    output: OutOpt = None, duration: DurationOpt = 4.0, size: SizeOpt = None,
    aspect: AspectOpt = None, fps: FpsOpt = None, seed: GenSeedOpt = None,
    steps: StepsOpt = None, guidance: GuidanceOpt = None, negative: NegativeOpt = "",
    sampler: SamplerOpt = None, model: ModelOpt = "default", device: GenDeviceOpt = "auto",
    num: Annotated[int, typer.Option("--num", help="How many variations (seeds seed, "
                                                   "seed+1, ...).")] = 1,
    crf: CrfOpt = 18, overwrite: OverwriteOpt = False, no_credentials: NoCredOpt = False,
    sign_cert: SignCertOpt = None, sign_key: SignKeyOpt = None, policy: PolicyOpt = None,
    literal: LiteralOpt = False,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Make a video from a text prompt, e.g. sora generate "a red ball bouncing on a beach"."""
    _setup(quiet, json_out)
    from sora_cli.generation import generate

    opts = _gen_options(locals())
    _report_videos(generate(prompt, output, opts, num=num), json_out)


@app.command("animate")
def animate_cmd(
    image: Annotated[Path, typer.Argument(help="The first frame (PNG, JPEG, ...).",
                                          show_default=False)],
    prompt_arg: PromptArg = None, prompt: PromptOpt = "", output: OutOpt = None,
    duration: DurationOpt = 4.0,
    fit: Annotated[str, typer.Option("--fit", help="Fit the image to the frame: crop (centre) "
                                                   "or pad.")] = "crop",
    size: SizeOpt = None, aspect: AspectOpt = None, fps: FpsOpt = None, seed: GenSeedOpt = None,
    steps: StepsOpt = None, guidance: GuidanceOpt = None, negative: NegativeOpt = "",
    sampler: SamplerOpt = None, model: ModelOpt = "default", device: GenDeviceOpt = "auto",
    crf: CrfOpt = 18, overwrite: OverwriteOpt = False, no_credentials: NoCredOpt = False,
    sign_cert: SignCertOpt = None, sign_key: SignKeyOpt = None, policy: PolicyOpt = None,
    literal: LiteralOpt = False,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Bring an image to life: it is the first frame, the prompt says what happens next."""
    _setup(quiet, json_out)
    from sora_cli.generation import animate

    prompt = _one_prompt(prompt_arg, prompt)
    opts = _gen_options(locals())
    _report_videos([animate(image, prompt, output, opts, fit=fit)], json_out)


@app.command("extend")
def extend_cmd(
    clip: Annotated[Path, typer.Argument(help="The clip to continue (any video file).",
                                         show_default=False)],
    prompt_arg: PromptArg = None, prompt: PromptOpt = "", output: ExtendOutOpt = None,
    seconds: Annotated[float, typer.Option("--seconds", "-s",
                                           help="How many seconds to add.")] = 4.0,
    only_new: Annotated[bool, typer.Option("--only-new", help="Write only the new part.")] = False,
    fit: Annotated[str, typer.Option("--fit", help="crop or pad the clip to the model "
                                                   "frame.")] = "crop",
    size: SizeOpt = None, fps: FpsOpt = None, seed: GenSeedOpt = None,
    steps: StepsOpt = None, guidance: GuidanceOpt = None, negative: NegativeOpt = "",
    sampler: SamplerOpt = None, model: ModelOpt = "default", device: GenDeviceOpt = "auto",
    crf: CrfOpt = 18, overwrite: OverwriteOpt = False, no_credentials: NoCredOpt = False,
    sign_cert: SignCertOpt = None, sign_key: SignKeyOpt = None, policy: PolicyOpt = None,
    literal: LiteralOpt = False,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Continue a clip: the output is the clip followed by its continuation."""
    _setup(quiet, json_out)
    from sora_cli.generation import extend

    prompt = _one_prompt(prompt_arg, prompt)
    opts = _gen_options(locals(), duration=seconds)
    _report_videos([extend(clip, prompt, seconds, output, opts, only_new=only_new, fit=fit)],
                   json_out)


@app.command("story")
def story_cmd(
    storyboard: Annotated[Path, typer.Argument(
        help="Storyboard: lines 'SECONDS: prompt', or JSON {\"segments\": [...]}.",
        show_default=False)],
    output: StoryOutOpt = None, size: SizeOpt = None, aspect: AspectOpt = None, fps: FpsOpt = None,
    seed: GenSeedOpt = None, steps: StepsOpt = None, guidance: GuidanceOpt = None,
    negative: NegativeOpt = "", sampler: SamplerOpt = None, model: ModelOpt = "default",
    device: GenDeviceOpt = "auto", crf: CrfOpt = 18, overwrite: OverwriteOpt = False,
    no_credentials: NoCredOpt = False, sign_cert: SignCertOpt = None,
    sign_key: SignKeyOpt = None, policy: PolicyOpt = None, literal: LiteralOpt = False,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Make one continuous video from a storyboard; each segment continues the one before."""
    _setup(quiet, json_out)
    from sora_cli.generation import story

    opts = _gen_options(locals())
    _report_videos([story(storyboard, output, opts)], json_out)


@app.command("batch")
def batch_cmd(
    jobs: Annotated[str, typer.Argument(
        help="Job file: one prompt a line, or JSON rows with generate options; - for stdin.",
        show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out-dir", "-o",
                                          help="Folder for the videos and manifest.jsonl.")]
    = Path("batch"),
    duration: DurationOpt = 4.0, size: SizeOpt = None, aspect: AspectOpt = None,
    fps: FpsOpt = None,
    seed: Annotated[Optional[int], typer.Option(
        "--seed", help="Base seed: item i uses seed+i unless its row sets one.")] = None,
    steps: StepsOpt = None, guidance: GuidanceOpt = None, negative: NegativeOpt = "",
    sampler: SamplerOpt = None, model: ModelOpt = "default", device: GenDeviceOpt = "auto",
    crf: CrfOpt = 18, no_credentials: NoCredOpt = False, sign_cert: SignCertOpt = None,
    sign_key: SignKeyOpt = None, policy: PolicyOpt = None, literal: LiteralOpt = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", "-y", help="Replace existing files the batch did not make (its own "
        "earlier videos are replaced when remade anyway).")] = False,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Generate many videos from a job file; re-run the same command to resume. Under
    torchrun the items are shared out across processes."""
    _setup(quiet, json_out)
    from dataclasses import asdict

    from sora_cli.generation import batch

    opts = _gen_options(locals())

    def on_item(item, row):
        mark = {"done": "ok", "refused": "refused", "failed": "FAILED"}[row["status"]]
        console.log(f"[{item.index + 1}] {mark}: {row['output'] or item.prompt}"
                    + (f" ({row['error']})" if row.get("error") else ""))

    summary = batch(jobs, out_dir, opts, on_item=on_item)
    if os.environ.get("RANK", "0") != "0":
        return
    if json_out:
        console.result_json(asdict(summary))
    else:
        console.result(f"{summary.manifest}: {summary.done} done, {summary.skipped} already "
                       f"done, {summary.refused} refused, {summary.failed} failed "
                       f"({summary.seconds:.1f} s)")
    if summary.failed:
        raise typer.Exit(1)


# --- models (sora_cli/bundle.py) ---

@app.command("models")
def models_cmd(
    model: Annotated[Optional[str], typer.Argument(
        help="A bundle name or folder to check and describe; none lists the bundles found.")] = None,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """List the model bundles found, or load one strictly and describe it."""
    _setup(quiet, json_out)
    from sora_cli import bundle

    if model is None:
        found = bundle.list_bundles()
        if json_out:
            console.result_json({"bundles": found, "searched": [str(d) for d in bundle.bundle_dirs()]})
        elif not found:
            console.result("no model bundles found in " + ", ".join(str(d) for d in bundle.bundle_dirs()))
        else:
            for b in found:
                console.result(f"{b['name']}\t{b['path']}")
        return
    info = bundle.describe_bundle(model)
    if json_out:
        console.result_json(info)
    else:
        p = info["params"]
        h, w = info["frame_size"]
        console.result(f"{info['name']} ({info['path']}): ok, hash {info['hash']}, {w}x{h} at "
                       f"{info['fps']:g} fps, params vae {p['vae'] / 1e6:.2f}M, text "
                       f"{p['text'] / 1e6:.2f}M, dit {p['dit'] / 1e6:.2f}M"
                       + (" (reads the text tower's inputs too)"
                          if info["dit_text"] != "outputs" else "")
                       + (f", CLIP trained on {info['vision_frames']}-frame grids"
                          if info["vision_frames"] > 1 else "")
                       + (f" + high-noise expert {p['dit_high'] / 1e6:.2f}M from t >= "
                          f"{info['sampler']['expert_t']:g}" if "dit_high" in p else ""))


# --- world (sora_cli/world/: sora world show|vocab, sora data render) ---

world_app = typer.Typer(help="The built-in world the default model knows: see a prompt's "
                             "ground-truth clip, list the vocabulary.", no_args_is_help=True)
app.add_typer(world_app, name="world")
data_app = typer.Typer(help="Training data: render world clips to a folder (and encode "
                            "latents).", no_args_is_help=True)
app.add_typer(data_app, name="data")


@world_app.command("show")
def world_show_cmd(
    prompt: Annotated[str, typer.Argument(help="A prompt in the world's words, e.g. "
                                               "\"a red ball bouncing on a beach\".")],
    output: Annotated[Path, typer.Option("--output", "-o", help="MP4 to write.")],
    seconds: Annotated[float, typer.Option("--seconds", help="Clip length.")] = 2.0,
    size: Annotated[str, typer.Option("--size", help="N (square) or WxH, even.")] = "256",
    fps: Annotated[float, typer.Option("--fps", help="Frames per second.")] = 8.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of start positions and "
                                                     "background details.")] = 0,
    overwrite: OverwriteOpt = False, json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Render the ground-truth clip of a prompt (the reference for evaluation)."""
    _setup(quiet, json_out)
    from sora_cli.world.export import show_prompt

    info = show_prompt(prompt, output, seconds=seconds, size=size, fps=fps, seed=seed,
                       overwrite=overwrite)
    if info["ignored_words"]:
        console.warn("ignored words not in the world's vocabulary: "
                     + ", ".join(info["ignored_words"]))
    for note in info["notes"]:
        console.warn(note)
    if json_out:
        console.result_json(info)
    else:
        sc = info["scene"]
        subs = "; ".join(f"{s['size']} {s['color']} {s['shape']} {s['motion']} ({s['speed']})"
                         for s in sc["subjects"]) or "no subject"
        console.log(f"scene: {sc['setting']}, {subs}, weather {sc['weather']}, "
                    f"camera {sc['camera']}")
        console.result(info["path"])


@world_app.command("vocab")
def world_vocab_cmd(json_out: JsonOpt = False, quiet: QuietOpt = False) -> None:
    """Print the world's vocabulary: canonical values and the words that mean them."""
    _setup(quiet, json_out)
    from sora_cli.world.vocab import vocabulary, vocabulary_text

    if json_out:
        console.result_json(vocabulary())
    else:
        console.result(vocabulary_text())


@data_app.command("render")
def data_render_cmd(
    count: Annotated[int, typer.Option("--count", "-n", help="Number of clips.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for <id>.mp4 and "
                                                          "captions.jsonl.")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the clip stream.")] = 0,
    size: Annotated[str, typer.Option("--size", help="N (square) or WxH, even.")] = "256",
    fps: Annotated[float, typer.Option("--fps", help="Frames per second.")] = 8.0,
    seconds: Annotated[float, typer.Option("--seconds", help="Clip length.")] = 2.0,
    json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Render random world clips with captions; re-running resumes where it stopped."""
    _setup(quiet, json_out)
    from sora_cli.world.export import render_dataset

    with console.progress("rendering clips", total=count) as advance:
        info = render_dataset(out, count, seed=seed, size=size, fps=fps, seconds=seconds,
                              progress=advance)
    if json_out:
        console.result_json(info)
    else:
        again = (f" ({info['rerendered']} of them again: they were there but cut short or "
                 "damaged)" if info["rerendered"] else "")
        console.log(f"{info['written']} clips written{again}, {info['skipped']} already there")
        console.result(info["captions"])


# --- content policy (sora_cli/guard.py: sora check) ---

@app.command("check")
def check_cmd(
    prompts: Annotated[Optional[List[str]], typer.Argument(
        help="Prompt(s) to check.", show_default=False)] = None,
    file: Annotated[Optional[Path], typer.Option(
        "--file", "-f", help="Check every prompt in FILE ('-': stdin): one per line, '#' comments "
        "and blank lines skipped, or JSONL rows with 'prompt' (and 'negative').",
        metavar="FILE")] = None,
    policy: Annotated[Optional[Path], typer.Option(
        "--policy", help="Extra content-policy file adding refused terms (JSON or "
        "'category: term' lines).", metavar="FILE")] = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Say whether the content policy allows a prompt (exit 1 when one is refused)."""
    _setup(quiet, json_out)
    from sora_cli import guard

    # `sora check make a pipe bomb` arrives as four one-word prompts, each allowed alone: a
    # screening answer must not depend on the shell's word splitting, so ask for quotes
    if len(prompts or []) > 1 and any(len(p.split()) == 1 for p in prompts):
        raise SoraUsageError("several words were given as separate prompts: put the prompt in quotes, "
                             f"e.g. sora check {_shell_word(' '.join(prompts))} (quote each of "
                             "several prompts, or list them in --file FILE)")
    if "-" in (prompts or []):
        # `echo PROMPT | sora check -` screened the text "-" and said "allowed"
        if file is not None or len(prompts) > 1:
            raise SoraUsageError("'-' reads the prompts from stdin; give it alone, or use "
                                 "--file FILE")
        prompts, file = [], Path("-")
    items = [("the prompt" if len(prompts or []) == 1 and file is None else f"prompt {i}", p)
             for i, p in enumerate(prompts or [], 1)]
    for item, text in items:
        if not text.strip():
            raise SoraUsageError(f"{item} is empty: give the words to check")
    if file is not None:
        items += guard.read_prompt_file(file)
    if not items:
        raise SoraUsageError("give a PROMPT to check, or --file FILE")
    pol = guard.policy_from_option(policy)
    results = [(item, text, guard.screen(text, pol)) for item, text in items]
    refused = [r for r in results if not r[2].allowed]

    if len(results) == 1 and file is None:
        item, text, verdict = results[0]
        if json_out:
            console.result_json({"prompt": text, **verdict.to_dict(),
                                 "message": None if verdict.allowed
                                 else guard.refusal_message(verdict)})
        elif verdict.allowed:
            console.result("allowed")
        else:
            guard.check_prompt(text, pol)  # raises: the one-line refusal, exit 1
    else:
        if json_out:
            console.result_json({"total": len(results), "allowed": len(results) - len(refused),
                                 "refused": len(refused),
                                 "results": [{"item": item, "prompt": text, **v.to_dict()}
                                             for item, text, v in results]})
        else:
            for item, text, verdict in results:
                status = "allowed" if verdict.allowed else f"refused ({verdict.category})"
                console.result(f"{status}\t{text}")
            console.log(f"{len(results)} prompt{'' if len(results) == 1 else 's'}: "
                        f"{len(results) - len(refused)} allowed, "
                        f"{len(refused)} refused")
    if refused:
        raise typer.Exit(1)


# --- training: `sora data encode` joins the world block's `data` group ---
data_app.command("encode")(data_encode_cmd)


# --- evaluation (sora_cli/evaluate.py: sora eval) ---

@app.command("eval")
def eval_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="Bundle name or folder.")] = "default",
    prompts: Annotated[Optional[Path], typer.Option(
        "--prompts", help="A file of prompts, one a line ('-': stdin; default: the built-in seeded set).",
        show_default=False)] = None,
    n: Annotated[int, typer.Option("--n", "-n", help="Prompts in the built-in set.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the prompt set, layouts and "
                                                     "generation (prompt i uses seed + i).")] = 0,
    duration: Annotated[float, typer.Option("--duration", "-d", help="Seconds per clip.")] = 2.0,
    sheet: Annotated[Optional[Path], typer.Option(
        "--sheet", help="Write a PNG contact sheet of the worst clips.", show_default=False)] = None,
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Keep the generated clips, report.json and worst.png here.",
        show_default=False)] = None,
    reference_only: Annotated[bool, typer.Option(
        "--reference-only", help="Score only the world's reference renders (checks the "
                                 "checker; no model needed).")] = False,
    size: Annotated[int, typer.Option("--size", help="Frame size of --reference-only "
                                                     "renders (a model uses its own).")] = 256,
    fps: Annotated[float, typer.Option("--fps", help="Frame rate of --reference-only "
                                                     "renders (a model uses its own).")] = 8.0,
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or auto.")] = "auto",
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", "-y", help="Replace an earlier run's clips, report.json and sheet.")] = False,
    literal: LiteralOpt = False, json_out: JsonOpt = False, quiet: QuietOpt = False,
) -> None:
    """Measure how well a model's videos show their prompts.

    Beside the model's line it scores the world's own renders of the same prompts (about 1.0,
    or the checker is wrong) and those renders through the model's VAE and back ("autoencoded":
    the practical ceiling of that VAE)."""
    _setup(quiet, json_out)
    from sora_cli import evaluate as ev

    if n < 1:
        raise SoraUsageError(f"--n must be at least 1, got {n}")
    if size < 16 or size % 2:
        raise SoraUsageError(f"--size must be even and at least 16, got {size}")
    if fps <= 0:
        raise SoraUsageError(f"--fps must be positive, got {fps}")
    if sheet is not None and sheet.suffix.lower() != ".png":
        raise SoraUsageError(f"--sheet must end in .png, got {sheet}")
    # read_prompts names a prompt outside the world before any work; the built-in set is all
    # in it
    texts = ev.read_prompts(prompts) if prompts is not None else ev.eval_prompts(n, seed)
    what = "references" if reference_only else f"{model} clips"
    console.log(f"evaluating {len(texts)} prompt{'' if len(texts) == 1 else 's'} ({what})")
    with console.progress("evaluating", total=len(texts)) as advance:
        report = ev.evaluate(model, len(texts), texts, seed=seed, duration=duration,
                             out_dir=out_dir, device=device, reference_only=reference_only,
                             sheet=sheet, size=size, fps=fps, progress=advance,
                             literal=literal, overwrite=overwrite)
    if json_out:
        console.result_json(report)
        return
    for line in ev.report_table(report):
        console.result(line)


def _interrupted() -> int:
    """Say why the command stopped; the shell's code for it (130 Ctrl-C, 128 + N signal N)."""
    from sora_cli.signals import stopped

    message, code = stopped()
    console.error(message)
    return code


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of the `sora` script: maps every failure to one line and an exit code."""
    try:  # Typer >= 0.20 carries its own copy of click
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover - older Typer on plain click
        from click import exceptions as cx
    import click

    from sora_cli.signals import take_over

    console.standard_streams()
    take_over()   # kill and hangup clean up like Ctrl-C (sora_cli/signals.py)
    args = sys.argv[1:] if argv is None else argv
    try:
        rv = app(args=args, prog_name="sora", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
        if code == 130:  # Typer turns Ctrl-C (and our signals) into a silent exit code 130
            code = _interrupted()
    except cx.NoArgsIsHelpError as exc:
        # `sora` or `sora world` alone: show that level's help, as a person expects.
        if exc.ctx is not None:
            print(exc.ctx.get_help())
        code = 0
    except (cx.UsageError, click.exceptions.UsageError) as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        unquoted = _unquoted_prompt(exc)
        console.error(unquoted or exc.format_message() + hint)
        code = 2
    except (typer.Abort, click.exceptions.Abort, KeyboardInterrupt):
        code = _interrupted()
    except (typer.Exit, click.exceptions.Exit) as exc:
        code = exc.exit_code
    except console.ReaderGone:
        # `sora ... | head -1`: the reader has what it wanted; as a tool killed by SIGPIPE
        console.drop_stdout()
        code = 141
    except SoraError as exc:
        if console.debug_enabled():
            console.err.print_exception()
        console.error(str(exc))
        code = exc.exit_code
    except Exception as exc:  # a bug or an environment problem: still one line by default
        if console.debug_enabled():
            console.err.print_exception()
        console.error(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
        code = 1
    sys.exit(code)


def _unquoted_prompt(exc) -> str | None:
    """For `sora generate a red ball`, where the shell split a prompt given without quotes,
    the command as it should have been typed (Click only says "unexpected extra arguments")."""
    import re

    ctx = exc.ctx
    extra = re.search(r"unexpected extra argument(?:s|\(s\))? \((.*)\)$", exc.format_message())
    # the commands whose prompt is a positional argument, and that argument's parameter
    param = {"generate": "prompt", "show": "prompt", "animate": "prompt_arg",
             "extend": "prompt_arg"}.get(ctx.command.name if ctx else "")
    first = ctx.params.get(param) if param else None
    if extra is None or not first:
        return None
    source = [ctx.params[k] for k in ("image", "clip") if ctx.params.get(k) is not None]
    words = [*map(_shell_word, map(str, source)), _shell_word(f"{first} {extra.group(1)}")]
    return (f"the prompt is one argument: put it in quotes, e.g. "
            f"{' '.join([ctx.command_path, *words])}")


def _shell_word(text: str) -> str:
    """`text` quoted for a POSIX shell, in double quotes where that reads better."""
    if "'" in text and not any(c in text for c in '"$`\\!'):
        return f'"{text}"'
    return shlex.quote(text)


def entry() -> None:
    """The `sora` script and `python -m sora_cli`: main(), then, where a command loaded torch,
    an exit without Python's teardown. Freeing torch's and open_clip's modules took 1.2 s of a
    7.3 s `sora generate` here, after every output had been written and renamed. The exit
    handlers still run and the streams are flushed; a non-daemon thread still running (none
    of ours) gets the ordinary exit, which waits for it."""
    code = 0
    try:
        main()
    except SystemExit as exc:  # main always ends here, with an int
        code = exc.code
    import threading

    others = [t for t in threading.enumerate()
              if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if "torch" not in sys.modules or others:
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()  # logging, temporary folders, multiprocessing's children
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing left to say there
            pass
    os._exit(code or 0)


if __name__ == "__main__":
    entry()
