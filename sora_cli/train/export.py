"""From finished runs to a model bundle: the EMA weights of the vae, clip and dit runs go through
`bundle.export_bundle`, with a model card that records how each part was trained."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

from sora_cli.errors import SoraError, SoraUsageError


def _read(run: str, name: str) -> dict:
    p = Path(run) / name
    return json.loads(p.read_text()) if p.exists() else {}


def _command(run: str, task: str) -> str:
    """The `sora train` command line that reproduces a run (from its train.json/model.json)."""
    t, m = _read(run, "train.json"), _read(run, "model.json")
    if not t:
        return f"(not recorded for {run})"
    q = shlex.quote   # folders with spaces stay one argument when the line is pasted
    parts = [f"sora train {task} --out {q(t['out'])} --steps {t['steps']}",
             f"--batch-size {t['batch_size']} --lr {t['lr']} --warmup {t['warmup']}",
             f"--seed {t['seed']}"]
    # a CLIP's size is its vision tower's, which --arch gives; its frames and fps are the clips'
    for key in ("frames", "fps") if task == "clip" else ("size", "frames", "fps"):
        if m.get(key) is not None:
            parts.append(f"--{key} {m[key]}")
    if task == "dit":
        parts.append(f"--vae {q(str(m.get('vae')))} --clip {q(str(m.get('clip')))}")
        if m.get("latents"):
            parts.append(f"--latents {q(m['latents'])}")
        if m.get("window"):
            parts.append(f"--window {m['window']}")
        if m.get("time_shift", 1) != 1:
            parts.append(f"--time-shift {m['time_shift']}")
        if m.get("min_t"):
            parts.append(f"--min-t {m['min_t']}")
        if m.get("text_path_only"):
            parts.append("--text-path-only")
    if m.get("data") not in (None, "world") and not m.get("latents"):
        parts.append(f"--data {q(m['data'])}")
    if m.get("views", 1) != 1:
        parts.append(f"--views {m['views']}")
    if m.get("decoder_only"):
        parts.append(f"--decoder-only --latent-noise {m.get('latent_noise', 0.0):g}")
    if m.get("init"):
        parts.append(f"--init {q(m['init'])}")
    # latent statistics are measured by the run, not chosen
    arch = {k: v for k, v in m.get("config", {}).items()
            if k not in ("latent_mean", "latent_std")}
    parts.append(f"--arch '{json.dumps(arch)}'")
    line = " ".join(parts)
    ix = _read(m["latents"], "index.json") if task == "dit" and m.get("latents") else {}
    if ix:
        source = ix.get("source", "world")
        line = (f"sora data encode --vae {q(ix['vae']['source'])} --count {ix['count']} "
                f"--size {ix['size']} --frames {ix['frames']} --fps {ix['fps']} "
                + (f"--seed {ix['seed']}" if source == "world" else f"--data {q(source)}")
                + f" --out {q(m['latents'])}\n" + line)
    return line


def model_card(name: str, vae: str, clip: str, dit: str, data: str | None = None) -> str:
    """The bundle's MODEL_CARD.md; `data` is the folder of videos the DiT learned (None: the
    built-in world)."""
    rows = []
    for task, run in (("vae", vae), ("clip", clip), ("dit", dit)):
        record = _training_record(run, task)
        s = record.get("summary") or {}
        figures = []
        if "psnr" in s:
            figures.append(f"PSNR {s['psnr']} dB on {s.get('eval_on', 'held-out clips')}")
        if "heldout_loss" in s:
            figures.append(f"flow loss {s['heldout_loss']} on "
                           f"{s.get('eval_on', str(s.get('eval_clips')) + ' held-out clips')}")
        if "retrieval" in s:
            r = s["retrieval"]
            figures.append(f"caption-to-clip retrieval {r['retrieval']:.1%} (chance "
                           f"{r['chance']:.1%}) on {r['eval_on']}")
        if "zero_shot" in s:
            z = s["zero_shot"]
            figures.append(f"zero-shot colour {z['color']:.1%}, setting {z['setting']:.1%}, "
                           f"shape {z['shape']:.1%}"
                           + (f", motion {z['motion']:.1%}" if "motion" in z else ""))
        if s.get("loss") is not None:
            figures.append(f"final loss {s['loss']:.4f} after {s.get('step')} steps, "
                           f"{s.get('seconds')} s of the last session on {s.get('device')} "
                           f"x{s.get('world_size')}")
        rows.append(f"### {task}\n\n```bash\n{record.get('command', '')}\n```\n\n"
                    + "".join(f"- {f}\n" for f in figures))
    learned = ("on the procedural world of sora-cli's docs/WORLD.md (simple shapes, vehicles, "
               "people and animals in a dozen settings). It knows only that world's vocabulary."
               if data is None else
               f"on the videos in {data} and their captions (captions.jsonl). It knows only "
               "what those videos show, in the words of their captions.")
    return (f"# {name}\n\nA sora-cli model bundle: causal video VAE, open_clip text tower and "
            f"DiT trained with rectified flow {learned}\n\n## How it was trained\n\n"
            + "\n".join(rows))


def _training_record(source: str, task: str) -> dict:
    """How a part was trained: from its run folder, or, for a part taken over from a bundle
    (say a DiT trained further on a shipped VAE), the record that bundle kept."""
    from sora_cli.train.runs import is_bundle

    if is_bundle(source):
        kept = _read(source, "config.json").get("training", {}).get(task)
        if kept:
            return kept
    # an expert is a DiT run (`sora train dit --min-t`)
    return {"command": _command(source, "dit" if task == "dit_high" else task),
            "summary": _read(source, "summary.json")}


def _keep_sampler(config, init: str | None, frames: int) -> None:
    """A DiT that went on from a bundle (`--init`) keeps that bundle's sampler settings and
    window context, which `sora eval` tuned for its lineage: the recipe's bundle can then
    replace the one it started from as it is. A DiT trained from scratch, or on windows of
    another length, gets the defaults."""
    from sora_cli import console
    from sora_cli.bundle import read_config
    from sora_cli.train.runs import is_bundle

    if not init or not is_bundle(init):
        return
    base = read_config(Path(init))
    if base.clip_frames != frames or base.window_latents:
        return
    config.flow = base.flow
    config.context_latents = base.context_latents
    console.log(f"sampler settings and window context from {init}")


def _run_dit(dit: str, vae: str, vae_model, name: str, training: dict):
    """The DiT of a run and the bundle settings its run recorded (sampler settings kept from
    the bundle it went on from, see _keep_sampler)."""
    from sora_cli.bundle import VIDEOS_IN, BundleConfig
    from sora_cli.train.latents import same_latent_space
    from sora_cli.train.runs import load_dit_run

    vcfg = vae_model.cfg
    dit_model, dcfg, dsaved = load_dit_run(dit)
    if dcfg.in_channels != vcfg.z_channels:
        raise SoraError(f"the DiT in {dit} takes {dcfg.in_channels} latent channels, the VAE in "
                        f"{vae} makes {vcfg.z_channels}: they were not trained together")
    if not same_latent_space(vae_model, dsaved.get("latent_space"), dsaved.get("vae_id")):
        raise SoraError(f"the DiT in {dit} was trained on another VAE ({dsaved.get('vae')}) "
                        f"than {vae}; export it with that one")
    size = int(dsaved.get("size") or 256)
    frames = int(dsaved.get("frames") or 17)
    if dsaved.get("window"):  # it generates windows as long as those it trained on
        from sora_cli.pipeline import frames_of

        frames = frames_of(int(dsaved["window"]), int(vcfg.temporal_factor))
    data = dsaved.get("data")   # None: a run from before runs recorded it
    world = data == "world"
    config = BundleConfig(name=name, fps=float(dsaved.get("fps") or 8),
                          frame_size=(size, size), clip_frames=frames,
                          vocabulary="world" if world else "",
                          description="Trained by sora-cli on the built-in procedural world."
                                      if world or data is None else f"{VIDEOS_IN}{data}.",
                          training=training)
    _keep_sampler(config, dsaved.get("init"), frames)
    return dit_model, config


def _bundle_dit(dit: str, vae: str, vae_model):
    """A bundle's DiT with all of that bundle's settings, for a VAE whose decoder was trained
    further (`sora train vae --decoder-only`): it must make the latents the DiT learned on."""
    from sora_cli.bundle import load_bundle
    from sora_cli.train.latents import latent_space_id

    b = load_bundle(dit)
    if latent_space_id(b.vae) != latent_space_id(vae_model):
        raise SoraError(f"the DiT in {dit} was trained on the latents of its own VAE, and the "
                        f"VAE in {vae} has another encoder or latent statistics; export a DiT "
                        "trained on that VAE")
    return b.dit, b.config, b.dit_high


def _expert(dit_high: str, vae: str, vae_model, dit_model):
    """A high-noise expert (`sora train dit --min-t`): a DiT run, or a bundle's expert, on the
    latents of this VAE and of the main DiT's architecture."""
    from sora_cli.train.latents import latent_space_id, same_latent_space
    from sora_cli.train.runs import is_bundle, load_dit_run

    if is_bundle(dit_high):
        from sora_cli.bundle import load_bundle

        b = load_bundle(dit_high)
        if b.dit_high is None:
            raise SoraUsageError(f"{dit_high} is a bundle without a high-noise expert; give "
                                 "the run folder of `sora train dit --min-t`")
        model, same = b.dit_high, latent_space_id(b.vae) == latent_space_id(vae_model)
    else:
        model, _, saved = load_dit_run(dit_high)
        same = same_latent_space(vae_model, saved.get("latent_space"), saved.get("vae_id"))
    if not same:
        raise SoraError(f"the expert in {dit_high} was trained on another VAE's latents than "
                        f"{vae}; export it with that one")
    if model.cfg != dit_model.cfg:
        raise SoraError(f"the expert in {dit_high} has another architecture than the DiT; train "
                        "it with --init from that DiT")
    return model


def export_runs(folder: str | Path, vae: str, clip: str, dit: str, overwrite: bool = False,
                name: str | None = None, dit_high: str | None = None,
                expert_t: float | None = None) -> Path:
    """Write bundle `folder` from the three runs (EMA weights); returns its path. Each part
    may also come from a bundle; a bundle's DiT brings that bundle's settings (and its
    high-noise expert) along. `dit_high` adds a high-noise expert (`sora train dit --min-t`)
    that runs the sampler's steps from `expert_t` up."""
    from sora_cli.bundle import export_bundle
    from sora_cli.train.runs import is_bundle, load_text_run, load_vae_run

    if name is not None and (not name.strip() or not name.isprintable()):
        raise SoraUsageError(f"--name must be a printable, non-empty name, got {name!r}")
    if (dit_high is None) != (expert_t is None):
        raise SoraUsageError("--dit-high and --expert-t go together: the expert and the noise "
                             "level it takes over from")
    if expert_t is not None and not (0 < expert_t <= 1):
        raise SoraUsageError(f"--expert-t must be in (0, 1], got {expert_t}")
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()) and not overwrite:
        raise SoraError(f"{folder} already exists (use --overwrite / -y to replace it)")
    vae_model, _, _ = load_vae_run(vae)
    text, _ = load_text_run(clip)
    training = {task: _training_record(run, task)
                for task, run in (("vae", vae), ("clip", clip), ("dit", dit))}
    high = None
    if is_bundle(dit):
        dit_model, config, high = _bundle_dit(dit, vae, vae_model)
        config = dataclasses.replace(config, name=name or folder.name, training=training)
    else:
        dit_model, config = _run_dit(dit, vae, vae_model, name or folder.name, training)
    if dit_high is not None:
        high = _expert(dit_high, vae, vae_model, dit_model)
        config.training["dit_high"] = _training_record(dit_high, "dit_high")
    config.flow = dataclasses.replace(
        config.flow, expert_t=0.0 if high is None else (expert_t or config.flow.expert_t))
    from sora_cli.generation import WATERMARK_MIN_SIDE

    if min(config.frame_size) < WATERMARK_MIN_SIDE:
        from sora_cli import console

        h, w = config.frame_size
        console.warn(f"this bundle draws {w}x{h} frames, too small for the invisible watermark "
                     f"that sora generate embeds ({WATERMARK_MIN_SIDE} pixels a side at "
                     "least): it loads and trains, but to generate with it, train at "
                     f"--size {WATERMARK_MIN_SIDE} or more")
    export_bundle(folder, vae_model, text, dit_model, config, dit_high=high,
                  card_text=model_card(config.name, vae, clip, dit, config.videos_folder()))
    return folder
