"""Where output goes: results on stdout, logs and progress on stderr (a Rich console)."""

from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from typing import Any, Iterator

_quiet = False
_err = None


def _console():
    """The Rich console on stderr, made on first use: importing rich costs ~0.1 s, which
    `sora --help` should not pay. Rich writes to stderr so that stdout carries only results
    (paths, JSON) for scripts; soft_wrap keeps an error on one line in any terminal width.
    emoji=False: a name like ":fire: clips" must be shown as the user typed it."""
    global _err
    if _err is None:
        from rich.console import Console

        _err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
    return _err


def __getattr__(name: str):  # `console.err` keeps working for every caller
    if name == "err":
        return _console()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def debug_enabled() -> bool:
    return os.environ.get("SORA_DEBUG", "") not in ("", "0", "false", "no")


def _say(*parts) -> None:
    """Print on stderr, where a failure to print is no failure of the command: a full disk
    (`2>/dev/full`) or a terminal gone with its ssh session must not stop a generation whose
    warning it was."""
    try:
        _console().print(*parts, markup=False)
    except (OSError, ValueError):
        pass


def log(message: str) -> None:
    """A progress or status line for a person; silenced by --quiet. Plain text, not markup:
    messages carry paths and prompts, in which "[bold]" is part of the name."""
    if not _quiet:
        _say(message)


def error(message: str) -> None:
    """The one `error:` line of a failed command."""
    _say(f"error: {message}")


_warned: set[str] = set()


def warn(message: str) -> None:
    """Warnings are shown even with --quiet: they describe something the user should know.
    Each is said once a process: `--num 5` or a batch would otherwise repeat it per video."""
    if message in _warned:
        return
    _warned.add(message)
    from rich.text import Text

    # only the label is styled: the message is plain text, like log's
    _say(Text("warning:", style="yellow"), message)


def result(text: str) -> None:
    """A result line on stdout (a path, a figure): plain text, never styled."""
    _out(text + "\n")


def result_json(obj: Any) -> None:
    """Exactly one JSON object on stdout, for --json."""
    _out(json.dumps(obj, default=str) + "\n")


def _out(text: str) -> None:
    """Results are what a script reads: one it cannot get is an error (exit 1), said in a
    line, except a pipe closed by its reader (`| head -1`), which main ends quietly."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise ReaderGone from None
    except OSError as exc:
        from sora_cli.errors import SoraError

        raise SoraError(f"cannot write the result to standard output: "
                        f"{exc.strerror or exc}") from None


class ReaderGone(Exception):
    """Standard output is a pipe whose reader has closed it."""


def standard_streams() -> None:
    """A script may start `sora` with stdin, stdout or stderr closed (`>&-`). The files the
    command opens would then take those numbers, and ffmpeg children write their output to
    them: /dev/null takes them first, so what would have gone there is dropped instead."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            new = os.open(os.devnull, os.O_RDWR)
            if new != fd:
                os.dup2(new, fd)
                os.close(new)
    for name, mode in (("stdin", "r"), ("stdout", "w"), ("stderr", "w")):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, mode, encoding="utf-8"))


def drop_stdout() -> None:
    """After a reader closed the pipe: what Python flushes at exit goes nowhere, instead of
    a second BrokenPipeError on the way out."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


@contextmanager
def status(message: str) -> Iterator[None]:
    """A transient spinner line on stderr while something without steps runs (loading a
    model: seconds of imports a person would otherwise watch a blank terminal through).
    Only in a terminal and without --quiet, like the progress bars."""
    if _quiet or not _console().is_terminal:
        yield
        return
    from rich.text import Text

    with _console().status(Text(message)):  # a model's path is not markup either
        yield


@contextmanager
def progress(description: str, total: float | None) -> Iterator:
    """A Rich progress bar on stderr; yields `advance(n=1)`. Silent under --quiet."""
    if _quiet or not _console().is_terminal:  # a bar redrawn into a log file or pipe is only noise
        yield lambda n=1: None
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=_console(), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
