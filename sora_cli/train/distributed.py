"""Plain torch.distributed under `torchrun`: one process per device, gradients all-reduced by DDP.

`torchrun` sets RANK / WORLD_SIZE / LOCAL_RANK (and MASTER_ADDR / MASTER_PORT); without them the
run is a single process and nothing here touches torch.distributed. gloo on CPU, nccl on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sora_cli.errors import SoraError, SoraUsageError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(device: str, local_rank: int = 0) -> str:
    """`auto` -> cuda when present, else cpu; `cuda` -> this process's GPU under torchrun."""
    import torch

    device = (device or "auto").lower()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SoraError("--device cuda was asked but no CUDA GPU is available "
                            "(use --device cpu or auto)")
        if device == "cuda":
            device = f"cuda:{local_rank % torch.cuda.device_count()}"
        torch.cuda.set_device(torch.device(device))
        return device
    if device != "cpu":
        raise SoraUsageError(f"--device must be cpu, cuda or auto, got {device!r}")
    return device


def setup(device: str = "auto") -> Dist:
    """Join the process group when launched by torchrun; return this process's place in it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local)
    if rank != 0:  # one progress bar and one log for the whole job: rank 0's
        from sora_cli import console

        console.set_quiet(True)
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if dev.startswith("cuda") else "gloo"
            dist.init_process_group(backend=backend)
    return Dist(rank=rank, world_size=world, local_rank=local, device=dev)


def teardown(d: Dist) -> None:
    if d.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def barrier(d: Dist) -> None:
    if d.enabled:
        import torch.distributed as dist

        dist.barrier()


def broadcast_flags(d: Dist, *flags: bool) -> tuple[bool, ...]:
    """Rank 0's decisions (stop now, checkpoint now) for every rank, so they never diverge."""
    if not d.enabled:
        return tuple(bool(f) for f in flags)
    import torch
    import torch.distributed as dist

    t = torch.tensor([1 if f else 0 for f in flags], dtype=torch.int32, device=d.device)
    dist.broadcast(t, src=0)
    return tuple(bool(v) for v in t.tolist())


def mean_across(d: Dist, value: float) -> float:
    """Average of a float over ranks (for logging the loss of the whole global batch)."""
    if not d.enabled:
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=d.device)
    dist.all_reduce(t)
    return float(t.item()) / d.world_size


def wrap_ddp(model, d: Dist):
    """DDP when distributed (it broadcasts rank 0's weights at construction), else the model."""
    if not d.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [int(d.device.split(":")[1])] if d.device.startswith("cuda") else None
    return DDP(model, device_ids=ids, find_unused_parameters=False)
