"""Shared test helpers: real clips made by the bundled ffmpeg, and the real `sora` CLI in a
subprocess (exit codes, stdout/stderr split and tracebacks are part of the interface)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def ffmpeg_clip(path: Path, seconds: float = 1.0, size: str = "64x48", fps: float = 10,
                audio: bool = False, source: str = "testsrc", codec: str = "libx264",
                pix_fmt: str = "yuv420p", extra: list[str] | None = None) -> Path:
    """Write a clip with ffmpeg's own test sources (a file made by another tool than ours)."""
    import imageio_ffmpeg

    args = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error",
            "-f", "lavfi", "-i", f"{source}=size={size}:rate={fps}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}", "-shortest",
                 "-c:a", "aac"]
    args += ["-c:v", codec, "-pix_fmt", pix_fmt, *(extra or []), str(path)]
    subprocess.run(args, check=True)
    return path


def audio_samples(path, rate=8000) -> np.ndarray:
    """A file's sound track as mono float samples at `rate` Hz."""
    import imageio_ffmpeg

    out = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path),
                          "-map", "0:a:0", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, np.float32)


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from a second thread, and on a busy machine OpenMP's waits for
    it make each small op ~10x slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def make_clip(tmp_path):
    def make(name: str = "clip.mp4", **kw) -> Path:
        return ffmpeg_clip(tmp_path / name, **kw)
    return make


def run_cli(*args: str, cwd: str | os.PathLike | None = None, env: dict | None = None,
            input: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `sora ARGS` in a fresh interpreter, as a user's shell would."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("SORA_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "sora_cli", *map(str, args)], cwd=cwd,
                          env=full_env, input=input, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def sora():
    return run_cli


# A tiny bundle, really trained for a few steps on world clips (vae -> clip -> dit -> export),
# shared by the generation tests: it exercises every component the default model has.
TINY_VAE = {"z_channels": 4, "channels": [8, 16, 16], "temporal_channels": 16,
            "temporal_blocks": 1}
TINY_CLIP = {"width": 32, "layers": 1, "heads": 2, "embed_dim": 32, "image_size": 32,
             "vision_width": 32, "vision_layers": 1, "patch_size": 8}
TINY_DIT = {"width": 32, "depth": 2, "heads": 2, "mlp_ratio": 2.0}


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory) -> Path:
    import torch

    from sora_cli.train.clip import train_clip
    from sora_cli.train.dit import train_dit
    from sora_cli.train.export import export_runs
    from sora_cli.train.loop import TrainConfig
    from sora_cli.train.vae import train_vae

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny-bundle")

    def cfg(name, steps, batch, lr):
        return TrainConfig(steps=steps, batch_size=batch, lr=lr, warmup=3, out=str(root / name),
                           log_every=5, device="cpu", workers=0, checkpoint_every_minutes=60)

    try:
        train_vae(cfg("vae", 30, 2, 3e-3), size=64, frames=9, fps=8, arch=TINY_VAE,
                  eval_clips=1)
        train_clip(cfg("clip", 20, 16, 2e-3), arch=TINY_CLIP, eval_frames=20)
        train_dit(cfg("dit", 20, 2, 3e-3), str(root / "vae"), str(root / "clip"), size=64,
                  frames=9, fps=8, arch=TINY_DIT)
        bundle = export_runs(root / "models" / "tiny", vae=str(root / "vae"),
                             clip=str(root / "clip"), dit=str(root / "dit"))
    finally:
        torch.set_num_threads(threads)
    return Path(bundle)


def bundle_with_flow(tiny_bundle: Path, folder: Path, **flow) -> Path:
    """A copy of the tiny bundle in `folder` whose config.json `flow` has these settings."""
    import json
    import shutil

    path = folder / "tiny"
    shutil.copytree(tiny_bundle, path)
    config = json.loads((path / "config.json").read_text())
    config["flow"].update(flow)
    (path / "config.json").write_text(json.dumps(config, indent=2))
    return path
