"""Reading a text file the user names on the command line, or standard input for `-`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sora_cli.errors import SoraError

# Notepad and PowerShell start UTF-8 files with it; read as text it would make the first JSON
# row or storyboard line a prompt
BOM = "\ufeff"


def read_text_arg(path: str | os.PathLike, what: str, hint: str) -> tuple[str, str]:
    """(text, display name) of `path`; `what` and `hint` word the error ("job file",
    "one prompt or JSON row a line")."""
    if str(path) == "-":
        return sys.stdin.read().removeprefix(BOM), "<stdin>"
    p = Path(path)
    if p.is_dir():
        raise SoraError(f"{what} {p} is a folder: give the file in it")
    if not p.exists():  # a pipe such as bash's <(...) is no regular file, but reads as one
        raise SoraError(f"no such {what}: {p}")
    try:
        return p.read_text(encoding="utf-8-sig"), p.name
    except UnicodeDecodeError:
        raise SoraError(f"{p} is not a text file ({hint})") from None
    except OSError as exc:  # unreadable: permissions, a device, a vanished file
        raise SoraError(f"cannot read {what} {p}: {exc.strerror or exc}") from None


def text_lines(text: str) -> list[str]:
    """The lines of a job file or storyboard as an editor and the shell number them: ended by
    a line break only. str.splitlines also breaks at U+2028, form feeds and the like, which
    would cut a prompt in two and shift every line number after it."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def is_stream(path: str | os.PathLike) -> bool:
    """stdin (`-`), a pipe or a device (/dev/stdin, bash's <(...)): read once, and no folder
    to put an output beside."""
    p = Path(str(path))
    return str(path) == "-" or (p.exists() and not p.is_file() and not p.is_dir())
