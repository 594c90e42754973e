"""Batch jobs: many generations from one job file, resumable, shareable across processes.

A job file holds one prompt a line (`#` comments and blank lines skipped) or JSON rows
(`{"prompt": ..., "seed": 3, "duration": 2, ...}`) carrying any `sora generate` option. Each
finished item is appended at once to a per-rank manifest, so a killed batch loses at most the
item in flight; re-running the same command skips what is done. Under `torchrun` rank r takes
items r, r+W, r+2W, ... and rank 0 merges the per-rank manifests into `manifest.jsonl`, one row
per item in job-file order.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from sora_cli.errors import SoraError

MANIFEST = "manifest.jsonl"
# Options a JSON row may carry; anything else is reported for that item, not silently dropped.
ROW_OPTIONS = {"prompt", "negative", "duration", "seconds", "size", "aspect", "fps", "seed",
               "steps", "guidance", "output", "sampler", "literal"}
FINISHED = ("done", "refused")


@dataclass
class BatchItem:
    index: int          # position in the job file, from 0
    line: int           # line number in the job file, for messages
    prompt: str
    options: dict = field(default_factory=dict)
    error: str | None = None   # a problem found while reading the row

    @property
    def id(self) -> str:
        """Stable across re-runs of the same job file: position plus a hash of the row."""
        row = json.dumps({"prompt": self.prompt, **self.options}, sort_keys=True)
        return f"{self.index:05d}-{hashlib.sha1(row.encode()).hexdigest()[:8]}"


def slugify(text: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (slug[:limit].rstrip("-") or "video")


def parse_jobs(text: str) -> list[BatchItem]:
    items: list[BatchItem] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        index = len(items)
        if not line.startswith("{"):
            items.append(BatchItem(index, number, line))
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            items.append(BatchItem(index, number, line, error=f"line {number}: invalid JSON "
                                                               f"({exc.msg})"))
            continue
        prompt = row.pop("prompt", None) if isinstance(row, dict) else None
        if not isinstance(prompt, str) or not prompt.strip():
            items.append(BatchItem(index, number, line, error=f"line {number}: a JSON row "
                                                               "needs a \"prompt\" string"))
            continue
        unknown = sorted(set(row) - ROW_OPTIONS)
        error = (f"line {number}: unknown option(s) {', '.join(unknown)}; allowed: "
                 f"{', '.join(sorted(ROW_OPTIONS - {'prompt'}))}" if unknown else None)
        if error is None and "output" in row:
            error = _output_problem(row["output"], number)
        items.append(BatchItem(index, number, prompt.strip(), row, error))
    # Two rows naming one file: the second would overwrite the first's video.
    first: dict[str, int] = {}
    for item in items:
        name = item.options.get("output") if item.error is None else None
        if name is not None:
            key = PurePosixPath(name).as_posix()
            if key in first:
                item.error = (f"line {item.line}: output {name} is also the output of line "
                              f"{first[key]}; give each row its own file name")
            else:
                first[key] = item.line
    return items


def _output_problem(name, number: int) -> str | None:
    """Why a row's "output" cannot be used: it must name an .mp4 inside the batch folder."""
    if not isinstance(name, str) or not name.strip():
        return f"line {number}: \"output\" must be a file name such as \"ball.mp4\""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        return (f"line {number}: output {name} must stay inside the batch folder (a name such "
                "as ball.mp4, or sub/ball.mp4)")
    if path.suffix.lower() != ".mp4" or path.name.lower() == ".mp4":
        return f"line {number}: output {name} must be a file name ending in .mp4"
    return None


def read_jobs(path: str | os.PathLike) -> list[BatchItem]:
    from sora_cli.textfile import read_text_arg

    text, _name = read_text_arg(path, "job file", "one prompt or JSON row a line")
    items = parse_jobs(text)
    if not items:
        raise SoraError(f"{path}: no prompts (one prompt or JSON row a line)")
    return items


def item_seed(item: BatchItem, base_seed: int) -> int:
    seed = item.options.get("seed")
    return int(seed) if seed is not None else base_seed + item.index


def item_output(item: BatchItem, out_dir: Path, seed: int) -> Path:
    name = item.options.get("output") or f"{item.index + 1:04d}-{slugify(item.prompt)}-s{seed}.mp4"
    return out_dir / name


def _read_rows(path: Path) -> list[dict]:
    rows = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # the last line of a killed run may be cut short
    return rows


def _manifests(out_dir: Path) -> list[Path]:
    return [out_dir / MANIFEST, *sorted(out_dir.glob("manifest.rank*.jsonl"))]


def finished_rows(out_dir: Path) -> dict[str, dict]:
    """The latest finished row per item id, over the merged and the per-rank manifests."""
    latest: dict[str, dict] = {}
    for path in _manifests(out_dir):
        for row in _read_rows(path):
            if row.get("status") not in FINISHED:
                continue
            if row["status"] == "done" and not (out_dir / row.get("output", "")).is_file():
                continue  # the video was deleted since: make it again
            if row.get("finished_at", 0) >= latest.get(row["id"], {}).get("finished_at", 0):
                latest[row["id"]] = row
    return latest


def merge_manifests(out_dir: Path, items: list[BatchItem]) -> Path:
    """One row per item, in job-file order, the latest attempt winning; written atomically."""
    latest: dict[str, dict] = {}
    for path in _manifests(out_dir):
        for row in _read_rows(path):
            if row.get("finished_at", 0) >= latest.get(row.get("id"), {}).get("finished_at", 0):
                latest[row["id"]] = row
    order = [item.id for item in items]
    target = out_dir / MANIFEST
    tmp = out_dir / f".{MANIFEST}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for item_id in order:
            if item_id in latest:
                f.write(json.dumps(latest[item_id]) + "\n")
    os.replace(tmp, target)
    for path in out_dir.glob("manifest.rank*.jsonl"):
        path.unlink()
    return target


@dataclass
class BatchSummary:
    out_dir: str
    manifest: str
    total: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    refused: int = 0
    seconds: float = 0.0


def run_batch(items: list[BatchItem], out_dir: str | os.PathLike,
              run_item: Callable[[BatchItem, int, Path], dict], *, base_seed: int = 0,
              rank: int = 0, world_size: int = 1, barrier: Callable[[], None] | None = None,
              on_item: Callable[[BatchItem, dict], None] | None = None) -> BatchSummary:
    """Run `run_item(item, seed, output_path) -> {"duration": ...}` for this rank's items.

    A `PromptRefused` error marks the item `refused`, any other error `failed`; the batch goes
    on either way. Finished items found in the manifests are skipped.
    """
    from sora_cli.guard import PromptRefused

    from sora_cli.folders import make_folder

    out = make_folder(out_dir)
    started, started_at = time.perf_counter(), time.time()
    done_before = finished_rows(out)
    summary = BatchSummary(str(out), str(out / MANIFEST), total=len(items))
    rank_manifest = out / f"manifest.rank{rank}.jsonl"
    mine: Iterable[BatchItem] = items[rank::world_size]
    for item in mine:
        if item.id in done_before:
            summary.skipped += 1
            continue
        seed = item_seed(item, base_seed) if item.error is None else base_seed + item.index
        output = item_output(item, out, seed)
        row = {"id": item.id, "index": item.index, "prompt": item.prompt, "options": item.options,
               "seed": seed, "output": output.relative_to(out).as_posix(), "duration": None,
               "seconds": None, "status": "failed", "error": item.error, "rank": rank}
        t0 = time.perf_counter()
        if item.error is None:
            try:
                make_folder(output.parent)   # a row's "sub/name.mp4"
                info = run_item(item, seed, output)
                row.update(status="done", duration=info.get("duration"), error=None)
            except PromptRefused as exc:
                row.update(status="refused", error=str(exc), output=None)
            except SoraError as exc:
                row.update(error=str(exc))
            except Exception as exc:  # one broken item must not end a long batch
                row.update(error=f"{type(exc).__name__}: {exc}")
        row["seconds"] = round(time.perf_counter() - t0, 3)
        row["finished_at"] = time.time()
        with open(rank_manifest, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())
        setattr(summary, row["status"], getattr(summary, row["status"]) + 1)
        if on_item is not None:
            on_item(item, row)
    if barrier is not None:
        barrier()
    if rank == 0:
        merged = merge_manifests(out, items)
        if world_size > 1:  # report the whole batch, not only rank 0's share
            rows = _read_rows(merged)
            fresh = [r for r in rows if r.get("finished_at", 0) >= started_at]
            for status in ("done", "failed", "refused"):
                setattr(summary, status, sum(r["status"] == status for r in fresh))
            summary.skipped = len(rows) - len(fresh)
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary
