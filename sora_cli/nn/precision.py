"""Which precision to compute in: bf16 autocast only where the hardware does bf16 natively.

On CUDA GPUs and CPUs with AVX512-BF16 or AMX, bf16 matrix work is about twice as fast as
fp32. On AVX2-only CPUs (such as this project's 2-core build machine) PyTorch emulates it,
and a bf16 matmul runs ~40x slower than fp32, so there we stay in fp32.
"""

from __future__ import annotations

import torch


def native_bf16(device: str) -> bool:
    """Whether bf16 matmuls are fast on `device`."""
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((ln for ln in f if ln.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast(device: str, enabled: bool | None = None):
    """bf16 autocast on CPU or CUDA; enabled=None turns it on only where it is native."""
    if enabled is None:
        enabled = native_bf16(device)
    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu",
                          dtype=torch.bfloat16, enabled=enabled)
