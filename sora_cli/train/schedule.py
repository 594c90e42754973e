"""Learning-rate schedule (linear warmup, then cosine to a floor) and the EMA of the weights."""

from __future__ import annotations

import math


def lr_at(step: int, base_lr: float, warmup: int, total: int, min_ratio: float = 0.1) -> float:
    """LR for optimizer step `step` (0-based): linear warmup to base_lr, cosine down to
    min_ratio*base_lr at `total`. A floor above zero keeps a run extended past `total` useful."""
    if warmup > 0 and step < warmup:
        return base_lr * (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


class EMA:
    """Exponential moving average of a model's floating-point parameters and buffers (fp32).

    The decay ramps up as min(decay, (1+n)/(10+n)) so early weights do not dominate a short run.
    """

    def __init__(self, model, decay: float = 0.999):
        import torch

        self.decay = decay
        self.updates = 0
        with torch.no_grad():
            self.shadow = {k: v.detach().clone().float()
                           for k, v in model.state_dict().items() if v.dtype.is_floating_point}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    def update(self, model) -> None:
        import torch

        d = self.current_decay()
        with torch.no_grad():
            state = model.state_dict()
            keys = list(self.shadow)
            shadow = [self.shadow[k] for k in keys]
            current = [state[k].detach().float() for k in keys]
            torch._foreach_lerp_(shadow, current, 1.0 - d)
        self.updates += 1

    def state_dict(self) -> dict:
        return dict(self.shadow)

    def load_state_dict(self, tensors: dict, updates: int) -> None:
        missing = set(self.shadow) - set(tensors)
        if missing:
            raise KeyError(f"EMA state lacks {sorted(missing)[:3]}")
        for k in self.shadow:
            self.shadow[k].copy_(tensors[k])
        self.updates = updates

    def copy_to(self, model) -> None:
        """Write the averaged weights into `model` (same architecture)."""
        import torch

        with torch.no_grad():
            state = model.state_dict()
            for k, v in self.shadow.items():
                state[k].copy_(v.to(state[k].dtype))
