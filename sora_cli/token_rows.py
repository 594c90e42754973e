"""Token tables stored as the rows that training changed.

open_clip's token table has a row for each of its 49,408 BPE tokens, but the built-in world
speaks a few hundred of them: in the default bundle it is 12.6M of the text tower's 15.9M
parameters and 25 MB of the bundle. Rows of tokens that never occur in training never get a
gradient; AdamW's decoupled weight decay only scales them, all by the same factor. So the
trainer starts every token table from one seeded draw (`base_table`), and a bundle stores a
table as

    NAME.rows        int64 (n,)      the ids of the rows training changed
    NAME.values      (n, width)      those rows
    NAME.base_seed   int64 (1,)      the seed of the draw the other rows come from
    NAME.base_scale  float32 (1,)    the decay factor they share

The loader regenerates the draw, scales it and writes the stored rows over it. A row counts
as unchanged when every value is within one bf16 step of the regenerated one, so the table
that loads equals the one exported to within that step on rows no caption ever used, and
exactly on the rest.
"""

from __future__ import annotations

import torch

SUFFIX = "token_embedding.weight"
PARTS = ("rows", "values", "base_seed", "base_scale")
BASE_SEED = 0
BASE_STD = 0.02            # open_clip's own initialisation of token embeddings
MIN_SHARE = 0.5            # store compactly only when at least this share of rows is unchanged


def base_table(shape, seed: int = BASE_SEED, scale: float = 1.0) -> torch.Tensor:
    """The seeded draw (fp32) every token table starts from, times `scale`. Its own CPU
    generator, so neither the global random state nor open_clip's order of initialisation
    moves it."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(tuple(shape), generator=g) * (BASE_STD * float(scale))


def reset_token_tables(module: torch.nn.Module, seed: int = BASE_SEED) -> torch.nn.Module:
    """Start every token table of `module` (an open_clip CLIP) from `base_table(seed)`, so
    that its bundle can later be stored compactly."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith(SUFFIX) and p.dim() == 2:
                p.copy_(base_table(p.shape, seed))
    return module


def _unchanged(table: torch.Tensor, regen: torch.Tensor) -> torch.Tensor:
    # bf16 keeps 8 significant bits: one step is at most 2^-7 of the value
    return ((regen.float() - table.float()).abs() <= table.float().abs() * 2.0 ** -7 + 1e-12).all(1)


def compact(table: torch.Tensor, seed: int = BASE_SEED) -> dict[str, torch.Tensor] | None:
    """The four tensors of a compactly stored `table` (V, D), or None when most rows are not
    the seeded draw (e.g. a table from pretrained weights): then store it whole."""
    base = base_table(table.shape, seed)
    t = table.float()
    # A first guess from the median row (robust to the trained ones), then least squares over
    # every value of the rows that guess calls unchanged.
    scale = ((t * base).sum(1) / (base * base).sum(1).clamp(min=1e-30)).median()
    same = _unchanged(table, (base * scale).to(table.dtype))
    if bool(same.any()):
        scale = (t[same] * base[same]).sum() / (base[same] * base[same]).sum()
    scale = scale.to(torch.float32)
    regen = base_table(table.shape, seed, float(scale)).to(table.dtype)
    same = _unchanged(table, regen)
    if float(same.float().mean()) < MIN_SHARE:
        return None
    rows = (~same).nonzero().flatten().to(torch.int64)
    return {"rows": rows, "values": table[rows].contiguous().clone(),
            "base_seed": torch.tensor([int(seed)], dtype=torch.int64),
            "base_scale": scale.reshape(1)}


def expand(parts: dict[str, torch.Tensor], shape, dtype) -> torch.Tensor:
    """The full (V, D) table from its four stored tensors. ValueError when they disagree."""
    rows, values = parts["rows"], parts["values"]
    V, D = shape
    if rows.dim() != 1 or values.shape != (rows.numel(), D):
        raise ValueError(f"{rows.numel()} rows but values of shape {list(values.shape)}")
    if rows.numel() and (int(rows.min()) < 0 or int(rows.max()) >= V):
        raise ValueError(f"row ids outside 0..{V - 1}")
    table = base_table(shape, int(parts["base_seed"][0]), float(parts["base_scale"][0])).to(dtype)
    table[rows] = values.to(dtype)
    return table


def compact_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` with each token table that pays off replaced by its four tensors."""
    out = {}
    for name, t in state.items():
        parts = compact(t) if name.endswith(SUFFIX) and t.dim() == 2 else None
        if parts is None:
            out[name] = t
        else:
            out.update({f"{name}.{k}": v for k, v in parts.items()})
    return out


def expand_state(stored: dict[str, torch.Tensor], shapes: dict[str, tuple]) -> dict[str, torch.Tensor]:
    """The module state from stored tensors: compact groups become the tables named in
    `shapes` (name -> expected shape). ValueError for a group with a part missing."""
    out = dict(stored)
    for name in [n[: -len(".rows")] for n in stored if n.endswith(".rows")]:
        keys = [f"{name}.{k}" for k in PARTS]
        missing = [k for k in keys if k not in stored]
        if missing:
            raise ValueError(f"compact table {name!r} lacks {missing[0]!r}")
        if name not in shapes:
            continue  # left for the caller's unknown-tensor check
        parts = {k: out.pop(f"{name}.{k}") for k in PARTS}
        out[name] = expand(parts, shapes[name], parts["values"].dtype)
    return out


def stored_rows(stored: dict[str, torch.Tensor]) -> frozenset[int] | None:
    """The ids of the trained rows of the compact token table among a file's `stored`
    tensors, or None when it holds no compact table."""
    names = [n for n in stored if n.endswith(f"{SUFFIX}.rows")]
    return frozenset(stored[names[0]].tolist()) if names else None
