"""What a training run is: its settings (TrainConfig) and the component it trains (Task).

Plain dataclasses with no heavy imports, so the CLI can check a command line before torch loads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from sora_cli.errors import SoraUsageError


@dataclass
class TrainConfig:
    steps: int = 1000
    max_minutes: float | None = None      # stop (with a checkpoint) after this much wall time
    stop_at: int | None = None            # stop (with a checkpoint) at this step; --resume later
    batch_size: int = 8                   # per process
    lr: float = 3e-4
    warmup: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    checkpoint_every_minutes: float = 5.0
    sample_every: int = 0                 # steps between sample clips; 0 = at the end, -1 = never
    log_every: int = 10                   # steps between lines in log.jsonl
    seed: int = 0
    device: str = "auto"
    bf16: bool | None = None              # bf16 autocast; None = where the hardware has it
    workers: int = -1                     # data-loader processes; -1 = automatic
    out: str = "runs/run"

    def check(self) -> None:
        at_least("--steps", self.steps, 1)
        at_least("--batch-size", self.batch_size, 1)
        positive("--lr", self.lr)
        at_least("--warmup", self.warmup, 0)
        if self.sample_every < -1:
            raise SoraUsageError(f"--sample-every must be -1 (never), 0 (at the end) or a "
                                 f"number of steps, got {self.sample_every}")
        at_least("--log-every", self.log_every, 1)
        if self.max_minutes is not None:
            positive("--max-minutes", self.max_minutes)
        if self.stop_at is not None:
            at_least("--stop-at", self.stop_at, 1)
        positive("--checkpoint-minutes", self.checkpoint_every_minutes)
        # the data order of a finite folder is seeded by numpy, which takes no negative seed
        at_least("--seed", self.seed, 0)
        check_workers(self.workers)


# The settings of a run that change what it computes: a resumed run must keep them
# (loop.check_resumed). The others only say where, how fast and how visibly it runs
# (device, precision, workers, minutes, logging, samples) and may change between chunks;
# --steps may too, to extend a run.
RESULT_FIELDS = ("batch_size", "lr", "warmup", "weight_decay", "grad_clip", "ema_decay", "seed")


def positive(flag: str, value: float) -> None:
    """A usage error unless `value` is a finite number above zero (nan and inf included)."""
    if not (math.isfinite(value) and value > 0):
        raise SoraUsageError(f"{flag} must be a positive number, got {value:g}")


def check_workers(workers: int) -> None:
    if workers < -1:
        raise SoraUsageError(f"--workers must be -1 (automatic) or 0 or more, got {workers}")


def at_least(flag: str, value: int, low: int, why: str = "") -> None:
    """A usage error unless `value` >= low; `why` ends the message (": ...")."""
    if value < low:
        raise SoraUsageError(f"{flag} must be at least {low}, got {value}{why}")


@dataclass
class Task:
    name: str                                              # vae | clip | dit
    model: Any                                             # the nn.Module being trained
    loss: Callable[[Any, dict], tuple[Any, dict]]          # (model, batch) -> (loss, metrics)
    batches: Callable[[int], Iterator[dict]]               # batches of this rank from a step on
    config: dict                                           # model architecture, saved with the run
    sample: Callable[[Any, Path], Path | None] | None = None  # writes a sample clip (EMA model)
    finish: Callable[[Any], dict] | None = None            # end-of-run figures (EMA model)
    tokens_per_sample: int = 0                             # for tokens/s in the summary
    extra: dict = field(default_factory=dict)              # anything else saved in model.json


def parse_arch(text: str | None) -> dict:
    """`--arch` value: inline JSON ('{"width": 128}') or the path of a .json file."""
    if not text:
        return {}
    src = Path(text).read_text() if text.strip().endswith(".json") else text
    try:
        obj = json.loads(src)
    except (ValueError, OSError) as exc:
        raise SoraUsageError(f"--arch must be a JSON object or a .json file: {exc}") from exc
    if not isinstance(obj, dict):
        raise SoraUsageError("--arch must be a JSON object, e.g. '{\"width\": 128}'")
    return obj
