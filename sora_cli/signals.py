"""The signals that stop a command the way Ctrl-C does, and what the shell is told after one.

A plain `kill` (SIGTERM, a job scheduler's too) and the hangup of a closed terminal or ssh
session (SIGHUP) unwind like Ctrl-C: the `finally` blocks that delete temporary outputs and
stop ffmpeg children run, and training saves a checkpoint. The exit code is the shell's for
the signal (128 + N), so a script can tell a kill from an error.
"""

from __future__ import annotations

import signal

# Ctrl-C first: every place that takes these over also takes Ctrl-C
STOPPING = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                 if hasattr(signal, name))

_received: list[int] = []


def received(signum: int) -> None:
    """Note the signal that is stopping the command (the first one counts)."""
    _received.append(signum)


def received_any() -> bool:
    """Whether a stopping signal has come: a loop checks it between items, since a
    KeyboardInterrupt raised inside a library's cleanup (a __del__) is swallowed there."""
    return bool(_received)


def _unwind(signum, frame) -> None:
    received(signum)
    raise KeyboardInterrupt


def take_over(handler=_unwind, numbers=STOPPING[1:]) -> dict:
    """Set `handler` for the signals (by default SIGTERM and SIGHUP, which Python would
    otherwise die of on the spot); returns the handlers before. A signal the caller set to be
    ignored (`nohup`) stays ignored."""
    before = {}
    for number in numbers:
        current = signal.getsignal(number)
        if current is not signal.SIG_IGN:
            before[number] = current
            signal.signal(number, handler)
    return before


def stopped() -> tuple[str, int]:
    """(what to say, exit code) for a command that a signal or Ctrl-C stopped."""
    number = _received[0] if _received else signal.SIGINT
    if number == signal.SIGINT:
        return "interrupted", 130
    return f"stopped by {signal.Signals(number).name}", 128 + number
