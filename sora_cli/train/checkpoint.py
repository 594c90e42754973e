"""Training checkpoints: safetensors for tensors, JSON for everything else (no pickle).

A run folder holds `ckpt-<step>/` folders and `latest.json` naming the newest complete one.
A checkpoint is written into a hidden temporary folder, then renamed, and only then is
`latest.json` replaced (also by rename), so a killed run always leaves the previous checkpoint
usable. Each rank writes its own RNG state, so a DDP run resumes bit-exactly too.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

from sora_cli.errors import SoraError

FORMAT = 1
LATEST = "latest.json"


def _save_tensors(path: Path, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    # clone: safetensors refuses tensors that share storage (tied weights, views)
    flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    save_file(flat, str(path), metadata=metadata)


def _load_tensors(path: Path, device: str = "cpu") -> dict:
    from safetensors.torch import load_file

    if not path.exists():
        raise SoraError(f"checkpoint file missing: {path}")
    return load_file(str(path), device=device)


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str) + "\n")
    os.replace(tmp, path)


# --- optimizer state <-> flat tensors + JSON ---

def optimizer_to_flat(opt) -> tuple[dict, dict]:
    """AdamW state as {"<param idx>.<name>": tensor} plus its param groups as JSON."""
    import torch

    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{name}"] = value
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(opt, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, value in list(tensors.items()) + list(meta.get("scalars", {}).items()):
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


# --- RNG state of this process ---

def rng_state() -> tuple[dict, dict]:
    import numpy as np
    import torch

    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda{i}"] = s
    py = random.getstate()
    npst = np.random.get_state()
    meta = {"python": [py[0], list(py[1]), py[2]],
            "numpy": [npst[0], npst[1].tolist(), int(npst[2]), int(npst[3]), float(npst[4])]}
    return tensors, meta


def set_rng_state(tensors: dict, meta: dict) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(tensors["torch_cpu"].cpu())
    cuda = [tensors[k].cpu() for k in sorted(k for k in tensors if k.startswith("torch_cuda"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[:torch.cuda.device_count()])
    v, st, g = meta["python"]
    random.setstate((v, tuple(st), g))
    n = meta["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))


# --- whole checkpoints ---

def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    run = Path(run_dir)
    pointer = run / LATEST
    if not pointer.exists():
        return None
    try:
        name = json.loads(pointer.read_text())["checkpoint"]
    except (ValueError, KeyError) as exc:
        raise SoraError(f"{pointer} is damaged ({exc}); delete it to start over") from exc
    path = run / name
    if not (path / "state.json").exists():
        raise SoraError(f"{pointer} names {name}, which is incomplete or missing")
    return path


def refuse_existing(run_dir: str | os.PathLike, resume: bool) -> Path | None:
    """The run's latest checkpoint; without `resume` an existing run is an error, never
    silently trained over."""
    latest = latest_checkpoint(run_dir)
    if latest is not None and not resume:
        raise SoraError(f"{run_dir} already holds a training run (at {latest.name}); pass "
                        "--resume to continue it or choose another --out")
    return latest


def save_checkpoint(run_dir: str | os.PathLike, step: int, *, model, ema, optimizer,
                    state: dict, dist, keep: int = 2) -> Path:
    """Write checkpoint `step` of a run. Every rank calls this (each saves its RNG state)."""
    from sora_cli.train import distributed

    run = Path(run_dir)
    name = f"ckpt-{step:08d}"
    tmp = run / f".tmp-{name}"
    if dist.is_main:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    distributed.barrier(dist)
    rng_t, rng_m = rng_state()
    _save_tensors(tmp / f"rng-{dist.rank}.safetensors", rng_t,
                  {"state": json.dumps(rng_m)})
    if dist.is_main:
        _save_tensors(tmp / "model.safetensors", model.state_dict())
        _save_tensors(tmp / "ema.safetensors", ema.state_dict())
        opt_t, opt_m = optimizer_to_flat(optimizer)
        _save_tensors(tmp / "optimizer.safetensors", opt_t)
        full = {"format": FORMAT, "step": step, "world_size": dist.world_size,
                "ema_updates": ema.updates, "optimizer": opt_m, **state}
    distributed.barrier(dist)
    final = run / name
    if dist.is_main:
        # state.json last: its presence marks the folder complete
        write_json_atomic(tmp / "state.json", full)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        write_json_atomic(run / LATEST, {"checkpoint": name, "step": step})
        old = sorted(p for p in run.glob("ckpt-*") if p.is_dir() and p.name != name)
        for p in old[:max(0, len(old) - (keep - 1))]:
            shutil.rmtree(p, ignore_errors=True)
    distributed.barrier(dist)
    return final


def load_checkpoint(path: Path, *, model, ema, optimizer, dist, device: str) -> dict:
    """Restore model, EMA, optimizer and this rank's RNG; return the JSON state."""
    from sora_cli.console import warn

    state = json.loads((path / "state.json").read_text())
    if state.get("format") != FORMAT:
        raise SoraError(f"{path} has checkpoint format {state.get('format')}, "
                        f"this version reads {FORMAT}")
    try:
        model.load_state_dict(_load_tensors(path / "model.safetensors", device))
    except RuntimeError as exc:
        raise SoraError(f"{path} does not fit this model (different settings?): "
                        f"{str(exc).splitlines()[0]}") from exc
    ema.load_state_dict(_load_tensors(path / "ema.safetensors", device), state["ema_updates"])
    optimizer_from_flat(optimizer, _load_tensors(path / "optimizer.safetensors", device),
                        state["optimizer"])
    rng_file = path / f"rng-{dist.rank}.safetensors"
    if rng_file.exists() and state.get("world_size") == dist.world_size:
        from safetensors import safe_open

        with safe_open(str(rng_file), framework="pt") as f:
            meta = json.loads(f.metadata()["state"])
        set_rng_state(_load_tensors(rng_file), meta)
    elif dist.is_main:
        warn(f"resuming with {dist.world_size} processes from a run with "
             f"{state.get('world_size')}: random streams restart, not bit-exact")
    return state


def load_weights(run_or_ckpt: str | os.PathLike, ema: bool = True,
                 device: str = "cpu") -> tuple[dict, dict]:
    """(weights, state.json) of a finished or running run folder, EMA weights by default.

    Accepts a run folder (its latest checkpoint) or a checkpoint folder.
    """
    p = Path(run_or_ckpt)
    if not p.exists():
        raise SoraError(f"no such run folder: {p}")
    ckpt = p if (p / "state.json").exists() else latest_checkpoint(p)
    if ckpt is None:
        raise SoraError(f"{p} holds no checkpoint (train it first with `sora train ...`)")
    state = json.loads((ckpt / "state.json").read_text())
    weights = _load_tensors(ckpt / "model.safetensors", device)
    if ema:  # the EMA holds the floating-point tensors; integer buffers come from the model
        weights.update(_load_tensors(ckpt / "ema.safetensors", device))
    return weights, state


def state_hash(state: dict) -> str:
    """SHA-256 of a state dict's names and exact bytes (DDP ranks must agree on it)."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for k in sorted(state):
        v = state[k].detach().to("cpu").contiguous()
        h.update(k.encode())
        h.update(str(v.dtype).encode())
        h.update(v.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
