"""Batch jobs: many generations from one job file, resumable, shareable across processes.

A job file holds one prompt a line (`#` comments and blank lines skipped) or JSON rows
(`{"prompt": ..., "seed": 3, "duration": 2, ...}`) carrying any `sora generate` option. Each
item is logged to a per-rank manifest as it starts and as it ends, so a killed batch loses at
most the item in flight; re-running skips what is done with the same settings, wherever its
row has moved in the file. One batch at a time runs in a folder (a lock per rank). Under
`torchrun` rank r takes items r, r+W, r+2W, ... Every process rewrites `manifest.jsonl` from
all the per-rank manifests after each of its items (one row per item in job-file order, the
ranks taking turns), and rank 0 merges them for good at the end.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from sora_cli import signals
from sora_cli.errors import SoraError

MANIFEST = "manifest.jsonl"
LOCK = ".manifest.lock"     # ranks take turns rewriting manifest.jsonl (batch._merge_in_turn)
RUNNING = ".batch.lock"     # held by rank 0 while a batch runs: one at a time in a folder
# Options a JSON row may carry; anything else is reported for that item, not silently dropped.
ROW_OPTIONS = {"prompt", "negative", "duration", "seconds", "size", "aspect", "fps", "seed",
               "steps", "guidance", "output", "sampler", "literal"}
FINISHED = ("done", "refused")
# JSON types of the row options ("output" has its own check): a wrong one fails its row with a
# message naming the key, instead of a TypeError deep in generation.
WHOLE = {"seed", "steps"}
NUMBER = {"duration", "seconds", "fps", "guidance"}
TEXT = {"negative": "a string", "size": 'a string such as "256x256"',
        "aspect": 'a string such as "16:9"', "sampler": '"euler" or "heun"'}
FLAG = {"literal"}


@dataclass
class BatchItem:
    index: int          # position in the job file, from 0
    line: int           # line number in the job file, for messages
    prompt: str
    options: dict = field(default_factory=dict)
    error: str | None = None   # a problem found while reading the row
    # Everything that shapes the video once the command's flags fill in what the row leaves
    # out (set by the caller); a re-run with other flags then gets new ids and remakes items.
    settings: dict | None = None
    repeat: int = 1     # the n-th row of the file that makes this same video (number_repeats)

    @property
    def content(self) -> str:
        """A hash of the prompt and the settings (the row's own options when none are set,
        and then its position, where its default seed comes from, when it has no seed)."""
        shaping = self.settings
        if shaping is None:
            shaping = {"position": self.index, **self.options} \
                if "seed" not in self.options else self.options
        row = json.dumps({"prompt": self.prompt, **shaping}, sort_keys=True, default=str)
        return hashlib.sha1(row.encode()).hexdigest()[:12]

    @property
    def id(self) -> str:
        """Stable across re-runs with the same settings, wherever the row moved in the file: a
        row inserted above a done one does not make it again. (A prompt-list item's default
        seed is its position, so there a move is a new video.) Rows that make the same video
        are told apart by their order."""
        return self.content if self.repeat == 1 else f"{self.content}-{self.repeat}"


# an older sora-cli named an item by its place and 8 hex digits of the same hash
_LEGACY_ID = re.compile(r"(\d{5})-([0-9a-f]{8})")


def _keys(item: BatchItem) -> tuple[str, ...]:
    """The ids a manifest row of `item` may have: its own, and the form an older sora-cli
    wrote (`_read_rows` turns those into "~" + the hash + which row of that content it was),
    so a folder made before the upgrade is not made again."""
    return item.id, f"~{item.content[:8]}-{item.repeat}"


def _row_of(rows: dict[str, dict], item: BatchItem) -> dict | None:
    return next((rows[key] for key in _keys(item) if key in rows), None)


def number_repeats(items: list[BatchItem]) -> None:
    """Give each item its `repeat`: 1 for the first row of its content, 2 for the next, ..."""
    seen: dict[str, int] = {}
    for item in items:
        seen[item.content] = item.repeat = seen.get(item.content, 0) + 1


def slugify(text: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (slug[:limit].rstrip("-") or "video")


def parse_jobs(text: str) -> list[BatchItem]:
    items: list[BatchItem] = []
    from sora_cli.textfile import text_lines

    for number, raw in enumerate(text_lines(text), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        index = len(items)
        if not line.startswith("{"):
            items.append(_plain_row(index, number, line))
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
        broken = next((k for k, v in [("prompt", prompt), *row.items()]
                       if isinstance(v, str) and _LONE_SURROGATE.search(v)), None)
        if broken:   # "\ud800": half a character, which no file or metadata can hold
            items.append(BatchItem(index, number, line, error=f"line {number}: \"{broken}\" "
                                   "holds half of a UTF-16 pair, not a character"))
            continue
        unknown = sorted(set(row) - ROW_OPTIONS)
        error = (f"line {number}: unknown option(s) {', '.join(unknown)}; allowed: "
                 f"{', '.join(sorted(ROW_OPTIONS - {'prompt'}))}" if unknown else None)
        if error is None and "duration" in row and "seconds" in row:
            error = f"line {number}: give \"duration\" or \"seconds\", not both"
        for key in sorted(row):
            if error is None:
                row[key], error = _typed(key, row[key], number)
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


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _plain_row(index: int, number: int, line: str) -> BatchItem:
    """A line that is not a JSON object: a prompt as written, or in JSON quotes ("a red
    ball", as a script may write it), but not another JSON value such as ["a red ball"]."""
    if line[0] in '"[':
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            return BatchItem(index, number, line)     # "Stop!" said the ball: text
        if isinstance(value, str) and _LONE_SURROGATE.search(value):
            return BatchItem(index, number, line, error=f"line {number}: the prompt holds half "
                                                        "of a UTF-16 pair, not a character")
        if isinstance(value, str) and value.strip():
            return BatchItem(index, number, value.strip())
        return BatchItem(index, number, line, error=f"line {number}: a JSON row must be an "
                                                    'object such as {"prompt": "a red ball"}')
    return BatchItem(index, number, line)


def _typed(key: str, value, number: int):
    """(value, None), a whole float made an int; or (value, why it is the wrong type)."""
    got = f"(got {json.dumps(value)})"
    # JSON true/false are Python bools, which are ints too: never a number or a seed here
    if key in WHOLE:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value), None
        if isinstance(value, int) and not isinstance(value, bool):
            return value, None
        return value, f"line {number}: \"{key}\" must be a whole number {got}"
    if key in NUMBER:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value, None
        return value, f"line {number}: \"{key}\" must be a number {got}"
    if key in TEXT and not isinstance(value, str):
        return value, f"line {number}: \"{key}\" must be {TEXT[key]} {got}"
    if key in FLAG and not isinstance(value, bool):
        return value, f"line {number}: \"{key}\" must be true or false {got}"
    return value, None


def _output_problem(name, number: int) -> str | None:
    """Why a row's "output" cannot be used: it must name an .mp4 inside the batch folder."""
    if not isinstance(name, str) or not name.strip():
        return f"line {number}: \"output\" must be a file name such as \"ball.mp4\""
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        return f"line {number}: output {json.dumps(name)} holds a control character"
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        return (f"line {number}: output {name} must stay inside the batch folder (a name such "
                "as ball.mp4, or sub/ball.mp4)")
    if path.suffix.lower() != ".mp4" or path.name.lower() == ".mp4":
        return f"line {number}: output {name} must be a file name ending in .mp4"
    return None


def read_jobs(path: str | os.PathLike | list) -> list[BatchItem]:
    """The items of a job file, or of a list of rows from Python (prompts, or dicts as the
    JSON rows); `-` reads stdin."""
    from sora_cli.textfile import read_text_arg

    if isinstance(path, (list, tuple)):
        return _listed_jobs(path)
    text, name = read_text_arg(path, "job file", "one prompt or JSON row a line")
    if _looks_like_csv(path, text):
        shown = name if str(path) == "-" else path
        raise SoraError(f"{shown} looks like CSV, which batch does not read (its header line "
                        "would become a prompt); give one prompt a line, or JSON rows such as "
                        '{"prompt": "a red ball", "duration": 2}')
    items = parse_jobs(text)
    if not items:
        raise SoraError(f"{path}: no prompts (one prompt or JSON row a line)")
    return items


def _listed_jobs(rows: list | tuple) -> list[BatchItem]:
    """Items from a Python list: row k is line k + 1 of the job file it stands for."""
    lines = []
    for k, row in enumerate(rows, 1):
        if not isinstance(row, (str, dict)) or isinstance(row, str) and not row.strip():
            raise SoraError(f"job {k}: give a prompt or a dict such as "
                            f'{{"prompt": "a red ball", "seed": 3}}, got {row!r}')
        # as JSON: a prompt that starts with "#" or "{" is a prompt, not a comment or a row
        lines.append(json.dumps(row))
    return parse_jobs("\n".join(lines))


def _looks_like_csv(path, text: str) -> bool:
    """A .csv file, or a first line that is a header such as `prompt,duration,seed`."""
    if str(path).lower().endswith(".csv"):
        return True
    from sora_cli.textfile import text_lines

    first = next((line.strip() for line in text_lines(text)
                  if line.strip() and not line.lstrip().startswith("#")), "")
    cells = [c.strip().strip("\"'") for c in re.split(r"[,;\t]", first)]
    return (len(cells) > 1 and cells[0].lower() == "prompt"
            and all(re.fullmatch(r"[A-Za-z_]+", c) for c in cells))


def item_seed(item: BatchItem, base_seed: int) -> int:
    """The row's own seed; else the batch's --seed plus the row's position."""
    seed = item.options.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    return base_seed + item.index


def item_output(item: BatchItem, out_dir: Path, seed: int) -> Path:
    name = item.options.get("output") or f"{item.index + 1:04d}-{slugify(item.prompt)}-s{seed}.mp4"
    return out_dir / name


def _read_rows(path: Path) -> list[dict]:
    rows = []
    if path.exists():
        # rows are written with their text as it is: only "\n" ends one (a prompt may hold a
        # U+2028, which splitlines would break the row at)
        for line in path.read_text(encoding="utf-8").split("\n"):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of a killed run may be cut short
            if isinstance(row, dict):
                rows.append(row)
        _legacy_ids(rows)
    return rows


def _manifests(out_dir: Path) -> list[Path]:
    return [out_dir / MANIFEST, *sorted(out_dir.glob("manifest.rank*.jsonl"))]


def _legacy_ids(rows: list[dict]) -> None:
    """Rows an older sora-cli wrote ("00003-1a2b3c4d": place and hash) get "~1a2b3c4d-N",
    N counting the rows of that hash by their place: the ids `_keys` gives their items."""
    places: dict[str, set[str]] = {}
    for row in rows:
        old = _LEGACY_ID.fullmatch(str(row.get("id")))
        if old:
            places.setdefault(old.group(2), set()).add(old.group(1))
    for row in rows:
        old = _LEGACY_ID.fullmatch(str(row.get("id")))
        if old:
            n = sorted(places[old.group(2)]).index(old.group(1)) + 1
            row["id"] = f"~{old.group(2)}-{n}"


def finished_rows(out_dir: Path) -> dict[str, dict]:
    """The latest finished row per item id, over the merged and the per-rank manifests."""
    latest: dict[str, dict] = {}
    for path in _manifests(out_dir):
        for row in _read_rows(path):
            if row.get("status") not in FINISHED:
                continue
            if row["status"] == "done" and not (out_dir / (row.get("output") or "")).is_file():
                continue  # the video was deleted since: make it again
            if row.get("finished_at", 0) >= latest.get(row["id"], {}).get("finished_at", 0):
                latest[row["id"]] = row
    return latest


def made_outputs(out_dir: Path) -> set[str]:
    """The files (relative to out_dir) the manifests say this batch wrote: a re-run may replace
    them, never anything else. An item whose last row in its log is `started` was cut off, and
    its video may have landed just before the kill."""
    made: set[str] = set()
    for path in _manifests(out_dir):
        last: dict[str, dict] = {}
        for row in _read_rows(path):
            last[row.get("id")] = row
            if row.get("status") == "done" and row.get("output"):
                made.add(row["output"])
        made.update(row["output"] for row in last.values()
                    if row.get("status") == "started" and row.get("output"))
    return made


def merge_manifests(out_dir: Path, items: list[BatchItem], final: bool = True) -> Path:
    """One row per item, in job-file order, the latest attempt winning; written atomically.

    An item not yet run with its current settings keeps the row of the video an earlier run
    with other settings left at its place, so that file stays known as this batch's until it is
    remade. `final`: the per-rank logs are merged for good and removed."""
    latest: dict[str, dict] = {}
    earlier: dict[int, dict] = {}
    current = {key for item in items for key in _keys(item)}
    for path in _manifests(out_dir):
        for row in _read_rows(path):
            if row.get("status") == "started":
                continue
            if row.get("finished_at", 0) >= latest.get(row.get("id"), {}).get("finished_at", 0):
                latest[row["id"]] = row
            # (a row of a current item stands at that item's place, wherever it was made)
            if (row.get("status") == "done" and row.get("id") not in current
                    and (out_dir / (row.get("output") or "")).is_file()
                    and row.get("finished_at", 0)
                    >= earlier.get(row.get("index"), {}).get("finished_at", 0)):
                earlier[row["index"]] = row
    target = out_dir / MANIFEST
    tmp = out_dir / f".{MANIFEST}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for item in items:
            row = _row_of(latest, item)
            if row is not None:   # the row may have moved in the file since it was made
                row = {**row, "id": item.id, "index": item.index}
            else:
                row = earlier.get(item.index)
            if row is not None:
                f.write(_json(row) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    if final:
        for path in [*out_dir.glob("manifest.rank*.jsonl"), out_dir / LOCK]:
            path.unlink(missing_ok=True)
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
              on_item: Callable[[BatchItem, dict], None] | None = None,
              overwrite: bool = False,
              agree: Callable[[str | None], str | None] | None = None) -> BatchSummary:
    """Run `run_item(item, seed, output_path) -> {"duration": ...}` for this rank's items.

    A `PromptRefused` error marks the item `refused`, any other error `failed`; the batch goes
    on either way. Finished items found in the manifests are skipped. `run_item` may replace
    `output_path`: an existing file that the manifests do not say this batch made fails its
    item instead, unless `overwrite`. `agree(problem)` returns rank 0's problem (None: none)
    on every rank, for processes that share the batch.
    """
    from sora_cli.folders import make_folder

    out = make_folder(out_dir)
    with _running(out, rank, agree):
        return _run_batch(items, out, run_item, base_seed, rank, world_size, barrier, on_item,
                          overwrite)


def _run_batch(items, out: Path, run_item, base_seed, rank, world_size, barrier, on_item,
               overwrite) -> BatchSummary:
    from sora_cli.folders import make_folder
    from sora_cli.guard import PromptRefused

    started, started_at = time.perf_counter(), time.time()
    number_repeats(items)
    done_before = finished_rows(out)
    # Taken before this run rewrites manifest.jsonl: the files of earlier runs stay replaceable
    # even where this run's rows have not yet taken over from theirs.
    made = made_outputs(out)
    # the videos of items still in the job file: a new item never takes one's name (a row
    # inserted above a done one would otherwise get its position's default name)
    claimed: dict[str, int] = {}
    for item in items:
        row = _row_of(done_before, item)
        if row is not None and row["status"] == "done":
            claimed[row["output"]] = item.index
    if rank == 0:
        _say_unlisted(out, done_before, claimed)
    summary = BatchSummary(str(out), str(out / MANIFEST), total=len(items))
    rank_manifest = out / f"manifest.rank{rank}.jsonl"
    mine: Iterable[BatchItem] = items[rank::world_size]
    for item in mine:
        if signals.received_any():   # a stop that a library swallowed on its way up
            raise KeyboardInterrupt
        finished = _row_of(done_before, item)
        if finished is not None:
            if finished["status"] == "refused":
                summary.refused += 1   # still refused: counted as the manifest says
            else:
                summary.skipped += 1
            continue
        seed = item_seed(item, base_seed)
        # a row that failed to read may name a path outside the folder: nothing is written
        output = item_output(item, out, seed) if item.error is None else None
        name = None if output is None else output.relative_to(out).as_posix()
        if claimed.get(name, item.index) != item.index:
            if "output" in item.options:
                item.error = (f"line {item.line}: output {name} is the video of another row of "
                              "this job file, already made; give this row another name")
                output = name = None
            else:
                output, name = _unclaimed(output, out, claimed)
        row = {"id": item.id, "index": item.index, "prompt": item.prompt, "options": item.options,
               "seed": seed, "output": name, "duration": None,
               "seconds": None, "status": "failed", "error": item.error, "rank": rank}
        if output is not None and output.exists() and not overwrite and name not in made:
            row["error"] = f"{name} exists (use -y to replace it)"
        t0 = time.perf_counter()
        if row["error"] is None:
            _append(rank_manifest, {"id": item.id, "index": item.index, "output": name,
                                    "status": "started", "started_at": time.time(),
                                    "rank": rank})
            try:
                make_folder(output.parent, None)   # a row's "sub/name.mp4"
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
        _append(rank_manifest, row)
        _merge_in_turn(out, items)
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


def _say_unlisted(out: Path, done_before: dict, claimed: dict) -> None:
    """Warn of the videos that earlier runs made in the folder for other items: the manifest
    has one row per item of this job, so they leave it (a re-run of that other job then finds
    them unlisted and asks for -y)."""
    from sora_cli import console

    others = {row["output"] for row in done_before.values()
              if row["status"] == "done" and row["output"] not in claimed}
    if others:
        n = len(others)
        console.warn(f"{n} video{'s' if n > 1 else ''} in {out} that an earlier run made "
                     f"{'are' if n > 1 else 'is'} not an item of this job (another prompt, "
                     "row or flags): a video this job makes under the same name replaces it, "
                     "the others stay in the folder but leave manifest.jsonl; use another "
                     "--out-dir to keep batches apart")


def _unclaimed(output: Path, out: Path, claimed: dict) -> tuple[Path, str]:
    """`output` with -2, -3, ... added to its stem until no done item's video has the name."""
    for n in range(2, len(claimed) + 3):
        path = output.with_name(f"{output.stem}-{n}{output.suffix}")
        name = path.relative_to(out).as_posix()
        if name not in claimed:
            return path, name
    raise AssertionError("unreachable: more names tried than are claimed")


@contextmanager
def _running(out: Path, rank: int, agree: Callable[[str | None], str | None] | None):
    """Hold the folder's lock while the batch runs: a second batch started on the same folder
    (or the same command twice) would make the same videos at once, fail them as existing
    files and leave the manifest saying so. Rank 0 takes it for all ranks, and `agree`
    (under torchrun: rank 0's word sent to every rank) lets every rank stop when it cannot.
    Where the system has no such locks (Windows) nothing is held."""
    held, problem = _lock(out / RUNNING) if rank == 0 else (None, None)
    if agree is not None:
        problem = agree(problem)
    try:
        if problem:
            raise SoraError(problem.format(out=out))
        yield
    finally:
        if held is not None:
            (out / RUNNING).unlink(missing_ok=True)
            held.close()


def _lock(path: Path):
    """(the open lock file, None), or (None, why not): another process holds it."""
    try:
        import fcntl
    except ImportError:
        return None, None
    try:
        f = open(path, "a+", encoding="utf-8")
    except OSError as exc:   # a folder of /sys, or another user's lock in a shared folder
        return None, (f"cannot open the batch lock {path} ({exc.strerror or exc}): if another "
                      "user's batch runs in {out}, wait for it, or give another --out-dir")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        pid = f.read().strip()
        f.close()
        who = f" (process {pid})" if pid.isdigit() else ""
        return None, (f"another sora batch is running in {{out}}{who}: wait for it to end, "
                      "or give another --out-dir")
    f.seek(0)
    f.truncate()
    f.write(str(os.getpid()))
    f.flush()
    return f, None


def _merge_in_turn(out_dir: Path, items: list[BatchItem]) -> None:
    """`merge_manifests` while holding a lock on the folder, so that ranks finishing at once
    take turns: each merge then reads at least what the one before it read (the per-rank logs
    only grow), and none puts back an older manifest.jsonl. Where the system has no such locks
    (Windows), a merge may for a moment miss another rank's newest row; the next one, and the
    final merge after every rank is done, have it."""
    try:
        import fcntl
    except ImportError:
        fcntl = None
    with open(out_dir / LOCK, "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)   # released when the file closes
        merge_manifests(out_dir, items, final=False)


def _append(path: Path, row: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(_json(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _json(row: dict) -> str:
    """A manifest row: text as it is (a shell reading the file sees "café", not "caf\\u00e9"),
    but escaped where it holds what UTF-8 cannot (half a surrogate pair)."""
    text = json.dumps(row, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(row)
    return text
