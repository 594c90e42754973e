"""Trained components from run folders (`sora train ... --out RUN`): rebuild the model from the
run's model.json and load its EMA weights. A bundle folder works wherever a VAE or CLIP run
does, so a DiT can be trained on the frozen parts of an existing bundle.
"""

from __future__ import annotations

from pathlib import Path

from sora_cli.errors import SoraError


def _run(run_dir: str | Path, task: str, device: str):
    from sora_cli.train.checkpoint import load_weights
    from sora_cli.train.loop import read_run_config

    saved = read_run_config(run_dir)
    if saved is None:
        bundle = _bundle_named(run_dir)
        if bundle is not None:  # `--vae default`: the folder is wanted, not the name
            raise SoraError(f"{run_dir} is not a folder here; for the bundle named "
                            f"{str(run_dir)!r} give its folder: {bundle}")
        wanted = (f"a run folder of `sora train {task} --out RUN` or a bundle folder such "
                  "as models/default")
        if not Path(run_dir).exists():
            raise SoraError(f"no such folder: {run_dir}; give {wanted}")
        raise SoraError(f"{run_dir} is not a training run folder (no model.json); give {wanted}")
    if saved.get("task") != task:
        raise SoraError(f"{run_dir} is a {saved.get('task')} run, where a {task} run is needed")
    weights, state = load_weights(run_dir, ema=True, device=device)
    return saved, weights, state


def _load_into(model, weights: dict, where) -> None:
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise SoraError(f"the weights in {where} do not fit their model.json: "
                        f"{str(exc).splitlines()[0]}") from exc


def _bundle_named(name: str | Path) -> Path | None:
    """The folder of the bundle called `name` (as --model finds it), when `name` is no folder."""
    from sora_cli.bundle import find_bundle

    if Path(name).exists():
        return None
    try:
        return find_bundle(str(name))
    except SoraError:
        return None


def is_bundle(path: str | Path) -> bool:
    p = Path(path)
    return (p / "config.json").exists() and (p / "dit.safetensors").exists()


def frozen(model):
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_vae_run(run_dir: str | Path, device: str = "cpu"):
    """(VideoVAE with EMA weights, eval mode, VAEConfig, saved model.json)."""
    from sora_cli.nn.vae import VAEConfig, VideoVAE

    if is_bundle(run_dir):
        from sora_cli.bundle import load_bundle

        b = load_bundle(run_dir, device=device)
        return b.vae.eval(), b.vae.cfg, {"task": "vae", "config": vars(b.vae.cfg)}
    saved, weights, _ = _run(run_dir, "vae", device)
    cfg = VAEConfig(**saved["config"])
    if not cfg.latent_mean:
        raise SoraError(f"{run_dir} has no latent statistics yet: let `sora train vae` finish "
                        "(they are measured at the end of training)")
    vae = VideoVAE(cfg)
    _load_into(vae, weights, run_dir)
    return vae.to(device).eval(), cfg, saved


def load_clip_run(run_dir: str | Path, device: str = "cpu"):
    """(open_clip CLIP model with EMA weights, eval mode, TextEncoderConfig) of a CLIP run, or
    a bundle's CLIP (its text.safetensors holds the vision tower too)."""
    from sora_cli.nn.text import TextEncoderConfig, build_clip

    if is_bundle(run_dir):
        from sora_cli.bundle import load_bundle

        b = load_bundle(run_dir, device=device)
        return b.text.clip.eval(), b.text.cfg
    saved, weights, _ = _run(run_dir, "clip", device)
    cfg = TextEncoderConfig(**saved["config"])
    model = build_clip(cfg)
    _load_into(model, weights, run_dir)
    return model.to(device).eval(), cfg


def load_text_run(source: str | Path, device: str = "cpu"):
    """(TextEncoder, TextEncoderConfig) from a CLIP run folder or a bundle."""
    from sora_cli.nn.text import TextEncoder

    if is_bundle(source):
        from sora_cli.bundle import load_bundle

        b = load_bundle(source, device=device)
        return b.text.eval(), b.text.cfg
    model, cfg = load_clip_run(source, device)
    return TextEncoder(model, cfg).to(device).eval(), cfg


def load_dit_run(run_dir: str | Path, device: str = "cpu"):
    """(DiT with EMA weights, DiTConfig, saved model.json)."""
    from sora_cli.nn.dit import DiT, DiTConfig

    saved, weights, _ = _run(run_dir, "dit", device)
    cfg = DiTConfig(**saved["config"])
    dit = DiT(cfg)
    _load_into(dit, weights, run_dir)
    return dit.to(device).eval(), cfg, saved


def warm_start(task: str, source: str | Path, device: str = "cpu") -> tuple[dict, dict]:
    """(architecture config, weights) of a trained component, to start a new run from: a run
    folder of the same task or a bundle. The optimizer starts fresh; this is how training goes
    on from a shipped bundle when its run folder is gone."""
    from dataclasses import asdict

    if is_bundle(source):
        from sora_cli.bundle import load_bundle

        b = load_bundle(source, device=device)
        module, cfg = {"vae": (b.vae, b.vae.cfg), "clip": (b.text.clip, b.text.cfg),
                       "dit": (b.dit, b.dit.cfg)}[task]
    elif task == "vae":
        module, cfg, _ = load_vae_run(source, device)
    elif task == "clip":
        module, cfg = load_clip_run(source, device)
    else:
        module, cfg, _ = load_dit_run(source, device)
    return asdict(cfg), {k: v.detach().clone() for k, v in module.state_dict().items()}
