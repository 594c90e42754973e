"""Output folders (a batch's videos, a training run, a latent cache, rendered clips): made on
demand, and a path that cannot be one is named in one line instead of an OSError."""

from __future__ import annotations

import os
from pathlib import Path

from sora_cli.errors import SoraError


def make_folder(path: str | os.PathLike, flag: str | None = "-o") -> Path:
    """`path` as a writable folder, made with its parents when missing. `flag` is the option
    that named it, for the message when it is a file (None: no option named it, as for the
    folder of a batch row's "sub/name.mp4")."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        hint = f": give {flag} a folder" if flag else ""
        raise SoraError(f"{folder} is a file, not a folder{hint}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent that is a file, no permission, a full disk
        raise SoraError(f"cannot make the folder {folder}: {exc.strerror or exc}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SoraError(f"output folder is not writable: {folder}")
    return folder
