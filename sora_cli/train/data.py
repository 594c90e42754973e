"""Index-addressed training data: the batch of step s on rank r is a pure function of
(seed, s, r), so resuming at step s needs no replay of the stream and DDP ranks never overlap.

Procedural world data has no end: sample i is the world's clip (seed, i). Finite sources
(cached latents, a user's video folder) are walked in a fresh seeded permutation per epoch.
"""

from __future__ import annotations

import os
from typing import Callable, Iterator

import numpy as np

from sora_cli import console

HELDOUT = 7_919_993  # mixed into the seed of held-out samples so they never equal training ones


def step_indices(step: int, rank: int, world: int, batch_size: int,
                 length: int | None = None, seed: int = 0) -> list[int]:
    """Dataset indices of one rank's batch at a step."""
    first = (step * world + rank) * batch_size
    positions = range(first, first + batch_size)
    if length is None:
        return list(positions)
    out = []
    perms: dict[int, np.ndarray] = {}
    for pos in positions:
        epoch = pos // length
        if epoch not in perms:
            perms[epoch] = np.random.default_rng([seed, epoch]).permutation(length)
        out.append(int(perms[epoch][pos % length]))
    return out


class StepBatches:
    """Batch sampler for a DataLoader: one list of indices per step, from `start` on, forever."""

    def __init__(self, start: int, rank: int, world: int, batch_size: int,
                 length: int | None, seed: int):
        self.start, self.rank, self.world = start, rank, world
        self.batch_size, self.length, self.seed = batch_size, length, seed

    def __iter__(self):
        step = self.start
        while True:
            yield step_indices(step, self.rank, self.world, self.batch_size, self.length,
                               self.seed)
            step += 1


def collate(samples: list[dict] | dict) -> dict:
    """Stack tensors, keep everything else (captions, scene dicts) as lists."""
    import torch

    if isinstance(samples, dict):  # a dataset's __getitems__ gave the batch ready-made
        return samples
    out = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        out[key] = torch.stack(values) if torch.is_tensor(values[0]) else values
    return out


def auto_workers(world_size: int = 1) -> int:
    # keep one core for the training process itself
    return max(0, min(4, (os.cpu_count() or 1) // max(1, world_size) - 1))


def loader(dataset, start_step: int, dist, batch_size: int, seed: int, workers: int,
           length: int | None = None) -> Iterator[dict]:
    """An endless iterator of collated batches for this rank, starting at `start_step`."""
    import torch
    from torch.utils.data import DataLoader

    sampler = StepBatches(start_step, dist.rank, dist.world_size, batch_size, length, seed)
    # its own generator: creating the iterator must not draw from the global RNG, or a resumed
    # run's random stream would be one draw off the uninterrupted one
    gen = torch.Generator().manual_seed(seed * 7919 + start_step)
    from sora_cli.train.stopping import ignore_interrupts

    dl = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
                    persistent_workers=False, prefetch_factor=4 if workers else None,
                    generator=gen, worker_init_fn=ignore_interrupts if workers else None)
    return iter(dl)


class WorldRenders:
    """Map-style view of the built-in world's clip stream: item i is `WorldClips.item(i)`, the
    very clip `WorldClips` and `sora data render` give for (seed, i). Held-out items come from
    another seed; `scene_filter` keeps only the clips whose scene passes it (for evaluation).

    Yields {"video": uint8 (T, H, W, 3), "caption", "scene", "index"}; with `single_frame` it
    keeps one random frame of the clip as "image" (H, W, 3) instead. With `twins`, items 2k and
    2k + 1 are clip k and its motion twin, so a batch of consecutive items (data.loader's, on
    the world's endless stream) holds both: clips that only their motion tells apart.
    """

    def __init__(self, size: int, num_frames: int, fps: float, seed: int = 0,
                 heldout: bool = False, single_frame: bool = False,
                 scene_filter: Callable | None = None, twins: bool = False):
        from sora_cli.world.dataset import WorldClips

        self.seed = (seed + HELDOUT) if heldout else seed
        self.clips = WorldClips(size=size, num_frames=num_frames, fps=fps, seed=self.seed)
        self.single_frame, self.scene_filter, self.twins = single_frame, scene_filter, twins
        self._kept: list[int] = []

    def _index(self, i: int) -> int:
        if self.scene_filter is None:
            return i
        from sora_cli.world.sampler import clip_scene

        j = self._kept[-1] + 1 if self._kept else 0
        while len(self._kept) <= i:
            if self.scene_filter(clip_scene(self.seed, j)):
                self._kept.append(j)
            j += 1
        return self._kept[i]

    def __getitem__(self, i: int) -> dict:
        i, twin = divmod(i, 2) if self.twins else (i, 0)
        item = self.clips.item(self._index(i), twin=twin == 1)
        if self.single_frame:
            video = item.pop("video")
            pick = np.random.default_rng([self.seed & 0xFFFFFFFF, item["index"], 2])
            item["image"] = video[int(pick.integers(len(video)))].contiguous()
        return item


class FolderClips:
    """A user's `VideoFolder` (captions.jsonl + <id>.mp4) as a finite map-style dataset: the
    clips resampled to `fps` and cut into windows of `num_frames`."""

    def __init__(self, folder: str, num_frames: int, size: int, fps: float):
        from sora_cli.world.dataset import VideoFolder

        self.inner = VideoFolder(folder, num_frames=num_frames, size=size, fps=fps)

    def __len__(self) -> int:
        return len(self.inner)

    @property
    def captions(self) -> list[str]:
        """Each item's caption without decoding it, as LatentShards.captions."""
        return [self.inner.rows[clip][0]["caption"] for clip, _ in self.inner.items]

    def report(self) -> None:
        """Say what training will see of the folder, and warn of settings that degrade it."""
        first, *warnings = self.inner.describe()
        console.log(first)
        for line in warnings:
            console.warn(line)

    def __getitem__(self, index: int) -> dict:
        item = self.inner[index]
        return {k: item[k] for k in ("video", "caption", "scene") if k in item}


def clip_source(folder: str | None, size: int, frames: int, fps: float, seed: int,
                single_frame: bool = False, twins: bool = False):
    """(dataset, length) a part trains on: the user's folder (finite) or the world (endless,
    length None; `twins`: WorldRenders's motion twins)."""
    if folder:
        ds = FolderClips(folder, frames, size, fps)
        ds.report()
        return ds, len(ds)
    return WorldRenders(size, frames, fps, seed=seed, single_frame=single_frame,
                        twins=twins), None


def folder_id(dataset) -> str | None:
    """The fingerprint of the user's folder a dataset reads (VideoFolder.fingerprint), directly
    or through latents encoded from it; None for the world, which does not change."""
    if isinstance(dataset, FolderClips):
        return dataset.inner.fingerprint()
    index = getattr(dataset, "index", None)
    return index.get("folder_id") if isinstance(index, dict) else None


class Spread:
    """`count` items of a finite dataset, evenly spaced over it (all of them when it is
    smaller): the figures a run on a user's folder reports come from its own clips."""

    def __init__(self, dataset, count: int):
        n = len(dataset)
        self.dataset = dataset
        self.picks = sorted({i * n // count for i in range(count)}) if count < n else range(n)

    def __len__(self) -> int:
        return len(self.picks)

    def __getitem__(self, i: int) -> dict:
        return self.dataset[self.picks[i]]


def eval_clips(folder: str | None, size: int, frames: int, fps: float, seed: int, count: int,
               trained: bool = True):
    """(clips, how many, where): the clips a run's end-of-training figures are measured on,
    and how to name them. The world's are held out (another seed than training's); a user's
    folder has no split of its own, so its figures come from clips spread over the training
    set, at most `count` (fewer when the folder holds fewer); `trained`: the model learned
    that folder (else it is named without "(trained on)")."""
    if folder:
        ds = Spread(FolderClips(folder, frames, size, fps), count)
        return ds, len(ds), f"{len(ds)} clips of {folder}" + (" (trained on)" if trained else "")
    return (WorldRenders(size, frames, fps, seed=seed, heldout=True), count,
            f"{count} held-out clips")


def to_model(video, device: str):
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1] on `device`."""
    x = video.to(device, non_blocking=True).permute(0, 4, 1, 2, 3).float()
    return x / 127.5 - 1.0


def to_frames(x) -> np.ndarray:
    """float (3, T, H, W) in [-1, 1] -> uint8 (T, H, W, 3) for write_video."""
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to("cpu")
    return x.permute(1, 2, 3, 0).numpy().astype(np.uint8)
