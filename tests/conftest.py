"""Shared test helpers: real clips made by the bundled ffmpeg, and the real `sora` CLI in a
subprocess (exit codes, stdout/stderr split and tracebacks are part of the interface)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
