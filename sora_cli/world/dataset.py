"""Datasets for training: world clips rendered on the fly, and a user's folder of videos.

`WorldClips` renders clip i from seed (seed, i), so every data-loader worker and DDP rank
takes its own indices (rank-major, then worker) and the stream is the same however it is
split: deterministic given the seed, no disk needed.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from sora_cli.errors import SoraError
from sora_cli.world.render import frame_size, render_scene
from sora_cli.world.sampler import clip_caption, clip_scene, motion_twin


def _shard() -> tuple[int, int]:
    """(this consumer's number, how many consumers) over DDP ranks x data-loader workers."""
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    info = get_worker_info()
    wid, nw = (info.id, info.num_workers) if info is not None else (0, 1)
    return rank * nw + wid, world * nw


class WorldClips(IterableDataset):
    """Random clips of the built-in world, rendered on the fly.

    Yields {"video": uint8 tensor (T, H, W, 3), "caption": str, "scene": dict (captions.jsonl
    fields), "index": int}. `length=None` streams forever; `start` skips the first indices
    (to resume a run at its data position).
    """

    def __init__(self, size: int | tuple[int, int] = 256, num_frames: int = 17, fps: float = 8.0,
                 seed: int = 0, length: int | None = None, start: int = 0):
        super().__init__()
        self.size, self.num_frames, self.fps = frame_size(size), int(num_frames), float(fps)
        self.seed, self.length, self.start = int(seed), length, int(start)

    def scene(self, index: int, twin: bool = False):
        """The Scene of clip `index`; with `twin`, its motion twin (sampler.motion_twin): the
        same scene and caption draw with every subject moving otherwise."""
        scene = clip_scene(self.seed, index)
        if twin:
            scene = motion_twin(scene, np.random.default_rng([self.seed & 0xFFFFFFFF, index, 3]))
        return scene

    def caption(self, index: int, twin: bool = False) -> str:
        """Clip `index`'s caption (or its twin's) without rendering the clip."""
        return clip_caption(self.seed, index, self.scene(index, twin))

    def item(self, index: int, twin: bool = False) -> dict:
        """Clip `index` (or its motion twin, see `scene`)."""
        scene = self.scene(index, twin)
        frames = render_scene(scene, self.size, self.num_frames, self.fps)
        return {"video": torch.from_numpy(frames), "caption": clip_caption(self.seed, index, scene),
                "scene": scene.canonical(), "index": index}

    def __iter__(self):
        me, n = _shard()
        i = self.start + me
        while self.length is None or i < self.start + self.length:
            yield self.item(i)
            i += n


@functools.lru_cache(maxsize=None)
def _probe(path: str, mtime_ns: int, size: int):
    # a run opens its folder for training, its sample and its figures: probe each file once
    from sora_cli.video_io import probe

    return probe(path)


class VideoFolder(Dataset):
    """A folder of videos with `captions.jsonl` (rows with "id" and "caption"; other fields are
    kept in "scene" when they are the world's, otherwise ignored): `<id>.mp4` per row.

    Each clip is resampled by its timestamps to `fps` (its own rate when None), so a 30 fps
    phone clip and a 10 fps GIF both move at the speed a model trained at `fps` will play
    them, and cut into consecutive windows of `num_frames` frames: item i is one window, so a
    long clip gives many. A clip shorter than one window repeats its last frame. Frames are
    centre-cropped and resized to `size`. Every clip is probed here, so an unreadable one is
    named (FILE:LINE) before any training starts.
    """

    def __init__(self, folder: str | Path, num_frames: int = 17, size: int | tuple[int, int] = 256,
                 fps: float | None = None):
        from sora_cli.edit import frames_at
        from sora_cli.video_io import require_clip

        self.folder = Path(folder)
        self.num_frames, self.size, self.fps = int(num_frames), frame_size(size), fps
        index = self.folder / "captions.jsonl"
        if not self.folder.is_dir():
            raise SoraError(f"no such folder: {self.folder}" if not self.folder.exists() else
                            f"{self.folder} is a file: give the folder that holds your videos "
                            "and their captions.jsonl")
        if not index.is_file():
            raise SoraError(f"no captions.jsonl in {self.folder}: write one line per video, "
                            '{"id": "clip1", "caption": "what it shows"}, beside clip1.mp4')
        try:
            text = index.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SoraError(f"{index} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                            f"offset {exc.start}): save it as UTF-8") from None
        names = {p.name.lower(): p.name for p in self.folder.iterdir()}
        self.rows, self.items = [], []
        self.short = self.slow = 0    # clips shorter than a window, slower than fps
        self.again: list[tuple[int, int, str]] = []   # (line, first line, name): a clip twice
        first_line: dict[Path, int] = {}
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            where = f"{index}:{n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise SoraError(f"{where} is not valid JSON")
            if not isinstance(row, dict) or "id" not in row or "caption" not in row:
                raise SoraError(f"{where} needs an \"id\" and a \"caption\"")
            if not isinstance(row["caption"], str):
                raise SoraError(f"{where}: the caption must be text, got {row['caption']!r}")
            if not row["caption"].strip():
                raise SoraError(f"{where}: the caption is empty; say what the clip shows (the "
                                "model learns uncaptioned clips by itself, from caption dropout)")
            path = self._path(row, names, where)
            if path.resolve() in first_line:
                self.again.append((n, first_line[path.resolve()], path.name))
            first_line.setdefault(path.resolve(), n)
            try:
                st = path.stat()
                info = require_clip(_probe(str(path), st.st_mtime_ns, st.st_size), "training")
            except SoraError as exc:
                raise SoraError(f"{where}: {exc}") from None
            total = frames_at(info, fps) if fps else info.frames
            self.short += total < self.num_frames
            self.slow += bool(fps) and info.fps < fps - 1e-3
            for k in range(max(1, total // self.num_frames)):
                # where window k starts, in seconds of the clip as shown
                self.items.append((len(self.rows), k * self.num_frames / (fps or info.fps)))
            self.rows.append((row, path, info))
        if not self.rows:
            raise SoraError(f"{index} lists no videos")

    EXTENSIONS = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".gif", ".avi")

    def _path(self, row: dict, names: dict[str, str], where: str) -> Path:
        """The row's clip: its "file", or the id itself, or the id with a video extension in
        any case (IMG_0042.MOV)."""
        if "file" in row:
            name = row["file"]
            if not isinstance(name, str) or not name.strip():
                raise SoraError(f"{where}: \"file\" must be a file name, got {name!r}")
            p = self.folder / name
            if not p.is_file():
                raise SoraError(f"{where}: no such clip {p}" if not p.exists() else
                                f"{where}: {p} is a folder, not a clip")
            return p
        rid = str(row["id"])
        for name in [rid, *(rid + ext for ext in self.EXTENSIONS)]:
            for found in (name, names.get(name.lower())):    # as written first
                if found is not None and (self.folder / found).is_file():
                    return self.folder / found
        raise SoraError(f"{where}: no clip for id {rid!r} in {self.folder} (looked for "
                        f"{rid}.mp4, .mov, .webm, ... in any case); name its file with "
                        '"file": "NAME"')

    def fingerprint(self) -> str:
        """Changes when captions.jsonl or any of its clips does (contents, or size and time)."""
        h = hashlib.sha256((self.folder / "captions.jsonl").read_bytes())
        for _, path, _ in self.rows:
            st = path.stat()
            h.update(f"\0{path.name}\0{st.st_size}\0{st.st_mtime_ns}".encode())
        return h.hexdigest()[:16]

    def describe(self) -> list[str]:
        """What training will see of the folder, and what quietly degrades it, for the log."""
        fps = f" at {self.fps:g} fps" if self.fps else ""
        lines = [f"{self.folder}: {len(self.rows)} clips, {len(self.items)} windows of "
                 f"{self.num_frames} frames{fps}"]
        if self.short:
            lines.append(f"{self.short} of {len(self.rows)} clips are shorter than one window "
                         f"({self.num_frames} frames{fps}): their last frame repeats to fill "
                         "it; fewer --frames would keep them moving")
        if self.again:
            line, first, name = self.again[0]
            more = f" (and {len(self.again) - 1} more)" if len(self.again) > 1 else ""
            lines.append(f"captions.jsonl:{line} names {name} again (first on line {first})"
                         f"{more}: such a clip is trained on once per caption, more often "
                         "than the others")
        if self.slow:
            lines.append(f"{self.slow} of {len(self.rows)} clips run at fewer than {self.fps:g} "
                         "fps: their frames repeat to make up the rate; a lower --fps suits them")
        return lines

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        from sora_cli.video_io import read_video

        clip, start = self.items[i]
        row, path, info = self.rows[clip]
        frames = read_video(path, max_frames=self.num_frames, rate=self.fps, start=start,
                            info=info, fit=self.size).frames
        if len(frames) < self.num_frames:
            pad = np.repeat(frames[-1:], self.num_frames - len(frames), axis=0)
            frames = np.concatenate([frames, pad])
        scene = {k: row[k] for k in ("setting", "subjects", "weather", "camera") if k in row}
        # fit= made them the size already, in ffmpeg
        return {"video": torch.from_numpy(np.ascontiguousarray(frames)),
                "caption": row["caption"],
                "scene": scene, "index": i}
