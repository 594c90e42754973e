"""Reading a text file the user names on the command line, or standard input for `-`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sora_cli.errors import SoraError


def read_text_arg(path: str | os.PathLike, what: str, hint: str) -> tuple[str, str]:
    """(text, display name) of `path`; `what` and `hint` word the error ("job file",
    "one prompt or JSON row a line")."""
    if str(path) == "-":
        return sys.stdin.read(), "<stdin>"
    p = Path(path)
    if not p.is_file():
        raise SoraError(f"no such {what}: {p}")
    try:
        return p.read_text(encoding="utf-8"), p.name
    except UnicodeDecodeError:
        raise SoraError(f"{p} is not a text file ({hint})") from None
    except OSError as exc:  # unreadable: permissions, a device, a vanished file
        raise SoraError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
