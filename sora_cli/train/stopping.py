"""Ctrl-C, `kill` and a hangup during training: the first one lets the step in progress
finish and the run save a checkpoint that `--resume` continues from; a second one stops at
once.

Without this a Ctrl-C lost everything since the last timed checkpoint (up to
--checkpoint-minutes of work), and a job scheduler's SIGTERM lost the same.
"""

from __future__ import annotations

import signal
import threading

from sora_cli import console
from sora_cli.signals import STOPPING, received, take_over


class StopRequests:
    """A context in which SIGINT, SIGTERM and SIGHUP set `asked` instead of unwinding; the training
    loop polls it after each step. Outside the main thread (where handlers cannot be set) it
    does nothing and signals act as before."""

    def __init__(self) -> None:
        self.asked = False
        self._before: dict = {}

    def _handle(self, signum, frame) -> None:
        if self.asked:  # asked twice: stop now, as before
            raise KeyboardInterrupt
        self.asked = True
        received(signum)
        console.warn("stopping after this step with a checkpoint; press Ctrl-C again to stop "
                     "at once without one")

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            self._before = take_over(self._handle, STOPPING)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._before.items():
            signal.signal(s, handler)


def ignore_interrupts(worker_id: int) -> None:
    """Data-loader workers leave Ctrl-C, a kill and a hangup to the training process, which
    shuts them down once its checkpoint is saved: a terminal signals its whole process group,
    and so do schedulers such as Slurm, and a worker dead of it took the checkpoint with it
    ("DataLoader worker is killed by signal"). A worker whose training process is gone ends
    by itself (PyTorch's watchdog)."""
    for number in STOPPING:
        signal.signal(number, signal.SIG_IGN)
