"""The one training loop every component uses (VAE, CLIP, DiT): AdamW, warmup + cosine,
gradient clipping, EMA, bf16 autocast, DDP, time-based atomic checkpoints and bit-exact resume.

A component is a `Task`: a model, a loss on a batch, and a way to get the batch of any step.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from sora_cli import console
from sora_cli.errors import SoraError, SoraUsageError
from sora_cli.folders import make_folder
from sora_cli.nn.precision import autocast, native_bf16  # noqa: F401 (public API)
from sora_cli.train.config import RESULT_FIELDS
from sora_cli.train.config import Task, TrainConfig, parse_arch  # noqa: F401 (public API)
from sora_cli.train.stopping import StopRequests


class LossModule(torch.nn.Module):
    """A task's loss as a module's forward, so DDP's gradient hooks see the call even when the
    loss goes through model methods other than forward (e.g. `vae.loss`)."""

    def __init__(self, model, fn):
        super().__init__()
        self.model = model
        self.fn = fn

    def forward(self, batch):
        return self.fn(self.model, batch)


def _param_groups(model, weight_decay: float) -> list[dict]:
    # no decay on biases, norms, scalars (logit scale): decaying them only hurts
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def ema_model(model, ema):
    """A copy of `model` holding the EMA weights, in eval mode."""
    m = copy.deepcopy(model)
    ema.copy_to(m)
    return m.eval()


def _trim_log(path: Path, upto: int) -> None:
    # after a resume the steps past the checkpoint are replayed: drop their old lines
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines()
            if ln.strip() and json.loads(ln).get("step", 0) <= upto]
    path.write_text("".join(ln + "\n" for ln in keep))


def run_config_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / "model.json"


def read_run_config(run_dir: str | Path) -> dict | None:
    """The run's model.json ({"task", "config", ...}) or None when the run has none yet."""
    p = run_config_path(run_dir)
    return json.loads(p.read_text()) if p.exists() else None


def check_resumed_alike(run_dir: str | Path, resume: bool, **flags: tuple) -> None:
    """Refuse to resume a run with other training-mode flags than it was started with (a run
    half trained one way and half another is neither). `flags`: name=(value now, default), as
    the run's model.json records them by name."""
    saved = read_run_config(run_dir) if resume else None
    if not saved:
        return
    then = {k: saved.get(k, default) for k, (_, default) in flags.items()}
    if then == {k: now for k, (now, _) in flags.items()}:
        return
    named = [f"--{k.replace('_', '-')}" + ("" if v is True else f" {v:g}")
             for k, v in then.items() if v != flags[k][1]]
    was = ("with " + " ".join(named) if named
           else "without " + " or ".join(f"--{k.replace('_', '-')}" for k in flags))
    raise SoraUsageError(f"{run_dir} was started {was}; resume it the same way")


def check_resumed_arch(run_dir: str | Path, resume: bool, arch: dict | None) -> None:
    """A resumed run keeps its own architecture: refuse an --arch that would change it rather
    than drop it without a word (the same --arch again, as a repeated command has, is fine)."""
    saved = read_run_config(run_dir) if resume and arch else None
    if not saved:
        return
    then = saved.get("config", {})
    other = {k: then.get(k) for k, v in arch.items() if _differs(then.get(k), v)}
    if other:
        raise SoraUsageError(f"{run_dir} was started with {json.dumps(other)}; --resume keeps "
                             f"its architecture: drop --arch or start a new run")


@dataclass
class Identity:
    """A resumed run's setting that is compared by what it names, not by how it was spelled:
    the VAE or text tower a DiT trains on (a fingerprint), shown as it was given."""
    shown: str
    same: Callable[[dict], bool]   # the run's model.json -> whether `shown` is what it used


_UNRECORDED = object()


def check_resumed(run_dir: str | Path, resume: bool, cfg: TrainConfig, main: bool = True,
                  **settings: Any) -> None:
    """Refuse to resume a run with settings that change what it computes: its RESULT_FIELDS
    (in train.json) and `settings` (flag name=value now, or an Identity), compared with the
    value of that name in its model.json (top level, else its architecture). A setting the run
    did not record (a run from before it was kept) is not compared; leave out one not given,
    so the run keeps its own. Half a run trained one way and half another matches neither,
    and its record would name only the second half's settings.

    --steps may change: going on past the planned end is how a run is extended. As that moves
    the end of the learning-rate schedule, the change is said (with the LR before and after)."""
    from sora_cli.train.checkpoint import latest_checkpoint

    run = Path(run_dir)
    latest = latest_checkpoint(run) if resume else None
    if latest is None:  # nothing to continue: the run starts over with the settings given
        return
    train_p = run / "train.json"
    train = json.loads(train_p.read_text()) if train_p.exists() else {}
    model = read_run_config(run) or {}
    then, now = [], []
    for name in RESULT_FIELDS:
        if name in train and _differs(train[name], getattr(cfg, name)):
            then.append(_flag(name, train[name]))
            now.append(_flag(name, getattr(cfg, name)))
    for name, value in settings.items():
        if isinstance(value, Identity):
            if model and not value.same(model):
                was = model.get(name)
                then.append(_flag(name, was))
                # the same path to something else: the folder was trained or replaced since
                now.append(_flag(name, value.shown) + (", changed since"
                                                       if same_setting(was, value.shown) else ""))
            continue
        was = model.get(name, model.get("config", {}).get(name, _UNRECORDED))
        if was is not _UNRECORDED and not same_setting(was, value):
            then.append(_flag(name, was))
            now.append(_flag(name, value))
    if then:
        raise SoraUsageError(f"{run_dir} was started with {' '.join(then)}; resume it with the "
                             f"same flags (got {' '.join(now)})")
    planned = train.get("steps")
    if planned is None or planned == cfg.steps:
        return
    from sora_cli.train.schedule import lr_at

    reached = int(json.loads((latest / "state.json").read_text())["step"])
    if cfg.steps < reached:
        raise SoraUsageError(f"{run_dir} is at step {reached} already (it was started with "
                             f"--steps {planned}); give --steps {reached} or more")
    if main:
        before = lr_at(reached, cfg.lr, cfg.warmup, planned)
        after = lr_at(reached, cfg.lr, cfg.warmup, cfg.steps)
        console.warn(f"{run_dir} was started with --steps {planned}; going on to --steps "
                     f"{cfg.steps} moves the end of its learning-rate schedule (LR at step "
                     f"{reached}: {before:.3g} -> {after:.3g})")


def _flag(name: str, value: Any) -> str:
    """A setting as the command line gives it: --warmup 2, --text-inputs, no --latents."""
    flag = "--" + name.replace("_", "-")
    if value is True:
        return flag
    if value is None or value is False or (name == "data" and value == "world"):
        return f"no {flag}"   # the built-in world is what a run without --data trains on
    if isinstance(value, float):
        return f"{flag} {value:g}"
    if isinstance(value, (list, dict)):
        return f"{flag} '{json.dumps(value)}'"
    return f"{flag} {value}"


def same_setting(a, b) -> bool:
    """Equal values, or two spellings of one existing path (runs/x and ./runs/x)."""
    if not _differs(a, b):
        return True
    if isinstance(a, str) and isinstance(b, str) and os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return False


def _warn_changed_data(run: Path, extra: dict) -> None:
    """A user's folder that changed under a run goes on as it is now (a folder grows while
    one trains), but not without a word: the data order changes with it."""
    saved = run_config_path(run)
    was = json.loads(saved.read_text()).get("data_id") if saved.exists() else None
    now = extra.get("data_id")
    if was and now and was != now:
        console.warn(f"{extra.get('data')} changed since this run started (its captions or "
                     "clips): the run goes on with the folder as it is now, in a new order")


def fit(task: Task, cfg: TrainConfig, dist, resume: bool = False) -> dict:
    """Train `task` for cfg.steps (or cfg.max_minutes); return a summary dict (on every rank)."""
    from sora_cli.train import checkpoint as ck
    from sora_cli.train import distributed
    from sora_cli.train.schedule import EMA, lr_at

    cfg.check()
    run = Path(cfg.out)
    device = dist.device
    main = dist.is_main
    if main:
        make_folder(run, "--out")
    distributed.barrier(dist)
    latest = ck.refuse_existing(run, resume)

    model = task.model.to(device)
    ema = EMA(model, cfg.ema_decay)
    opt = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr,
                            betas=(0.9, 0.99), eps=1e-8)
    step, elapsed_before = 0, 0.0
    if latest is not None:
        state = ck.load_checkpoint(latest, model=model, ema=ema, optimizer=opt, dist=dist,
                                   device=device)
        step, elapsed_before = state["step"], state.get("elapsed_s", 0.0)
        if main:
            console.log(f"resuming {run} at step {step}")
            _warn_changed_data(run, task.extra)
    else:
        # a distinct random stream per rank (noise, timesteps, masks); weights come from rank 0
        _seed_everything(cfg.seed * 1000 + 17 + dist.rank)
    if main:
        ck.write_json_atomic(run / "train.json", asdict(cfg))
        if latest is None or not run_config_path(run).exists():
            ck.write_json_atomic(run_config_path(run),
                                 {"task": task.name, "config": task.config, **task.extra})
        _trim_log(run / "log.jsonl", step)

    net = distributed.wrap_ddp(LossModule(model, task.loss), dist)
    params = [p for p in model.parameters() if p.requires_grad]
    batches = task.batches(step)
    start_step = step
    t_start = time.monotonic()
    last_ckpt = t_start
    deadline = t_start + cfg.max_minutes * 60 if cfg.max_minutes else None
    samples_global = cfg.batch_size * dist.world_size
    recent: list[float] = []
    log_file = (run / "log.jsonl").open("a") if main else None
    rate = 0.0
    saved_at = step if latest is not None else -1  # a finished run resumed: nothing new to save
    timed_out = False

    def save() -> None:
        nonlocal last_ckpt, saved_at
        ck.save_checkpoint(run, step, model=model, ema=ema, optimizer=opt, dist=dist,
                           state={"elapsed_s": elapsed_before + time.monotonic() - t_start,
                                  "data": {"step": step, "seed": cfg.seed,
                                           "batch_size": cfg.batch_size}})
        last_ckpt, saved_at = time.monotonic(), step

    bar_ctx = _progress(task.name, cfg.steps, start_step, enabled=main and not console.is_quiet())
    requests = StopRequests()
    interrupted = False
    try:
        with bar_ctx as bar, requests:
            model.train()
            end = min(cfg.steps, cfg.stop_at) if cfg.stop_at else cfg.steps
            while step < end:
                t0 = time.monotonic()
                try:
                    batch = next(batches)
                except Exception:
                    if not requests.asked:
                        raise
                    interrupted = True  # a worker that took the Ctrl-C itself: stop here
                    break
                lr = lr_at(step, cfg.lr, cfg.warmup, cfg.steps)
                for g in opt.param_groups:
                    g["lr"] = lr
                with autocast(device, cfg.bf16):
                    loss, metrics = net(batch)
                loss.backward()
                gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                opt.zero_grad(set_to_none=True)
                ema.update(model)
                step += 1
                value = distributed.mean_across(dist, float(loss.detach()))
                if not math.isfinite(value):
                    raise SoraError(f"the {task.name} loss became {value} at step {step}; "
                                    "try a lower --lr")
                dt = time.monotonic() - t0
                rate = samples_global / dt if step == start_step + 1 else \
                    0.9 * rate + 0.1 * samples_global / dt
                recent = (recent + [value])[-50:]
                if main:
                    bar(step, value, rate)
                    if step % cfg.log_every == 0 or step == cfg.steps:
                        row = {**{k: float(v) for k, v in metrics.items()},
                               "step": step, "loss": value, "lr": lr, "grad_norm": float(gnorm),
                               "samples_per_s": rate}
                        log_file.write(json.dumps(row) + "\n")
                        log_file.flush()
                if cfg.sample_every > 0 and step % cfg.sample_every == 0 and task.sample and main:
                    task.sample(ema_model(model, ema), run / "samples" / f"step-{step:08d}.mp4")
                now = time.monotonic()
                stop, due, interrupted = distributed.broadcast_flags(
                    dist, deadline is not None and now >= deadline,
                    now - last_ckpt >= cfg.checkpoint_every_minutes * 60, requests.asked)
                if interrupted:
                    break
                if stop or due:
                    save()
                if stop:
                    timed_out = True
                    if main:
                        console.log(f"--max-minutes reached at step {step}; continue with "
                                    "--resume")
                    break
            if saved_at != step:
                save()
            if interrupted:
                if main:
                    console.log(f"interrupted at step {step}, checkpoint saved; continue with "
                                "--resume")
                raise KeyboardInterrupt
            if main and step < cfg.steps and not timed_out:
                console.log(f"stopped at step {step} (--stop-at); continue with --resume")
    finally:
        if log_file is not None:
            log_file.close()
        del batches  # shuts down data-loader workers

    seconds = time.monotonic() - t_start
    done = step - start_step
    params_hash = ck.state_hash(model.state_dict())
    if dist.enabled:  # every rank records its weights: DDP must keep them identical
        ck.write_json_atomic(run / f"rank-{dist.rank}.json",
                             {"rank": dist.rank, "step": step, "params_sha256": params_hash})
    summary = {"task": task.name, "run": str(run), "step": step, "steps_this_run": done,
               "loss": sum(recent) / len(recent) if recent else None,
               "seconds": round(seconds, 2),
               "samples_per_s": round(done * samples_global / seconds, 3) if seconds else None,
               "world_size": dist.world_size, "device": device, "params_sha256": params_hash,
               "checkpoint": str(ck.latest_checkpoint(run) or "")}
    if task.tokens_per_sample and summary["samples_per_s"]:
        summary["tokens_per_s"] = round(summary["samples_per_s"] * task.tokens_per_sample, 1)
    if main and step >= cfg.steps:  # the end of training, not a pause
        final = ema_model(model, ema)
        if task.sample and cfg.sample_every >= 0:
            clip = task.sample(final, run / "samples" / f"step-{step:08d}.mp4")
            if clip:
                summary["sample"] = str(clip)
        if task.finish:
            figures = task.finish(final)
            update = figures.pop("config_update", None)
            if update:  # e.g. the VAE's latent statistics, measured once training is over
                saved = read_run_config(run) or {"task": task.name, "config": task.config}
                saved["config"].update(update)
                ck.write_json_atomic(run_config_path(run), saved)
            summary.update(figures)
        ck.write_json_atomic(run / "summary.json", summary)
    distributed.barrier(dist)
    return summary


class _progress:
    """Rich progress with loss and samples/s on stderr (rank 0 only); a no-op otherwise."""

    def __init__(self, name: str, total: int, start: int, enabled: bool):
        self.name, self.total, self.start, self.enabled = name, total, start, enabled

    def __enter__(self):
        if not self.enabled:
            return lambda *a: None
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.bar = Progress(TextColumn(f"train {self.name}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                            TimeRemainingColumn(), console=console.err, transient=False)
        self.bar.__enter__()
        self.task = self.bar.add_task(self.name, total=self.total, completed=self.start,
                                      info="")

        def update(step: int, loss: float, rate: float) -> None:
            self.bar.update(self.task, completed=step,
                            info=f"loss {loss:.4f} · {rate:.1f} samples/s")
        return update

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.__exit__(*exc)
        return False


# --- helpers the task modules share ---

def make_config(cls, overrides: dict):
    """A config dataclass from its defaults plus overrides; unknown fields are a usage error."""
    from dataclasses import fields

    names = {f.name for f in fields(cls)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise SoraUsageError(f"unknown {cls.__name__} field(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(names))}")
    return cls(**overrides)


def run_model_config(run_dir: str | Path, task: str, resume: bool, fresh: dict) -> dict:
    """The architecture to build: the run's own when resuming, else `fresh`."""
    saved = read_run_config(run_dir)
    if resume and saved is not None:
        if saved.get("task") != task:
            raise SoraError(f"{run_dir} is a {saved.get('task')} run, not a {task} run")
        return saved["config"]
    return fresh


def build_model(cfg: "TrainConfig", task: str, init: str | None, resume: bool, fresh,
                config_cls, build, grow: dict | None = None, resize: dict | None = None,
                adapt=None):
    """The task's model and its architecture: the run's own when resuming, else `init`'s (a
    run or bundle, weights included) or `fresh()`'s, built after seeding so that every rank
    and every run of a seed starts alike. `grow` sets architecture fields of a new run on top
    of init's or fresh's; from init, only the parameters the model class lists in GROWN may
    be missing (they start at zero, so the model starts as init computed). `resize` sets
    fields of a new run from init that may change tensor shapes (a wider latent, say): init's
    tensors that still fit are loaded and the others start fresh, so what init learned
    elsewhere in the model is kept; `adapt(init's conf, new conf, init's weights)` may first
    reshape some of them (sora_cli/train/widen.py).
    -> (model, config, conf dict, started from init)."""
    from sora_cli.train.runs import warm_start

    if init and not resume and resize:
        make_config(config_cls, resize)   # unknown fields are a usage error before loading
    start = warm_start(task, init) if init and not resume else None
    base = start[0] if start else fresh()
    changed = {}
    if start and resize:
        changed = {k: v for k, v in resize.items() if _differs(base.get(k), v)}
        base = {**base, **resize}
    if grow:   # a resumed run keeps its own architecture (run_model_config)
        base = {**base, **grow}
    conf = run_model_config(cfg.out, task, resume, base)
    model_cfg = config_cls(**conf)
    seed_for_init(cfg.seed)
    model = build(model_cfg)
    if start and changed:
        fits = load_fitting(model, adapt(start[0], conf, start[1]) if adapt else start[1])
        if not fits:
            raise SoraError(f"--init {init}: none of its {task} weights fit the architecture "
                            f"{json.dumps(changed)}; train from scratch instead")
        widened = sum(start[1][k].shape != shape for k, shape in fits.items())
        total = len(model.state_dict())
        console.log(f"--init {init}: {len(fits)} of {total} {task} tensors kept "
                    f"({widened} widened), {total - len(fits)} start fresh, for "
                    f"{json.dumps(changed)}")
    elif start:
        missing, unexpected = model.load_state_dict(start[1], strict=False)
        new = tuple(getattr(model, "GROWN", ()))
        wrong = list(unexpected) + [k for k in missing if not k.startswith(new)]
        if wrong:
            raise SoraError(f"--init {init}: its {task} does not fit this architecture "
                            f"({len(wrong)} tensors, first: {wrong[0]})")
    return model, model_cfg, conf, start is not None


def load_fitting(model, state: dict) -> dict:
    """Load the tensors of `state` whose name and shape fit `model`; the rest of the model
    stays as built. -> {name: shape} of those loaded."""
    own = model.state_dict()
    fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(fits, strict=False)
    return {k: v.shape for k, v in fits.items()}


def _differs(a, b) -> bool:
    # a config read back from JSON holds lists where a dataclass holds tuples
    norm = (lambda v: list(v) if isinstance(v, (list, tuple)) else v)
    return norm(a) != norm(b)


def seed_for_init(seed: int) -> None:
    """Same initial weights on every rank and every run of the same seed."""
    _seed_everything(seed)
