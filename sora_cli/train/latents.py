"""Latent caching (`sora data encode`): world clips (or a user's folder) through the frozen VAE
once, into safetensors shards, so DiT training does not run the VAE every step.

DIR/index.json describes the set (VAE identity, size, frames, fps, seed, latent shape);
DIR/shard-NNNNN.safetensors hold "latents" (n, C, T, h, w) float16 (the raw latent means; the
DiT normalises them with the VAE's stats) with captions and scenes as JSON in the metadata.
Shards appear atomically, so an interrupted encode resumes by skipping the finished ones; under
torchrun the shards are shared out across ranks.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from sora_cli import console
from sora_cli.errors import SoraError, SoraUsageError
from sora_cli.folders import make_folder
from sora_cli.train import data, distributed
from sora_cli.train.checkpoint import write_json_atomic
from sora_cli.train.config import check_workers, positive

FORMAT = 1


def _fingerprint(vae, prefix: str = "") -> str:
    h = hashlib.sha256()
    for k, v in sorted(vae.state_dict().items()):
        if k.startswith(prefix):
            h.update(k.encode())
            h.update(v.detach().float().cpu().numpy().tobytes())
    h.update(json.dumps([list(vae.cfg.latent_mean), list(vae.cfg.latent_std)]).encode())
    return h.hexdigest()[:16]


def vae_id(vae) -> str:
    """A short fingerprint of a VAE's weights and latent stats: cached latents name the VAE
    they came from."""
    return _fingerprint(vae)


def latent_space_id(vae) -> str:
    """A fingerprint of what a DiT learns on: the encoder's weights and the latent stats. A
    decoder trained further (`sora train vae --decoder-only`) keeps it, so the latents cached
    with the VAE and the DiTs trained on them still fit."""
    return _fingerprint(vae, "encoder.")


def same_latent_space(vae, latent_space: str | None, full_id: str | None) -> bool:
    """Whether `vae` makes the latents a record (a cache index, a DiT run) was made with. Records
    from before latent-space ids were kept name the whole VAE instead."""
    if latent_space:
        return latent_space == latent_space_id(vae)
    return not full_id or full_id == vae_id(vae)


def _shard_name(i: int) -> str:
    return f"shard-{i:05d}.safetensors"


def encode_latents(out: str | os.PathLike, vae_source: str, count: int, size: int = 256,
                   frames: int = 17, fps: float = 8, seed: int = 0, batch_size: int = 8,
                   shard_size: int = 256, device: str = "auto", folder: str | None = None,
                   bf16: bool | None = None, workers: int = -1) -> dict:
    """Encode `count` clips into `out`; returns a summary (also the content of index.json)."""
    from safetensors.torch import save_file

    from sora_cli.train.loop import autocast
    from sora_cli.train.runs import load_vae_run
    from sora_cli.train.vae import check_frames, check_size

    if count < 1:
        raise SoraUsageError(f"--count must be at least 1, got {count}")
    if batch_size < 1 or shard_size < 1:
        raise SoraUsageError("--batch-size and --shard-size must be at least 1")
    positive("--fps", fps)  # recorded in index.json, whence a DiT and its bundle take it
    check_workers(workers)
    dist = distributed.setup(device)
    if workers < 0:
        workers = data.auto_workers(dist.world_size)
    try:
        vae, vcfg, _ = load_vae_run(vae_source, dist.device)
        check_frames(frames, vcfg.temporal_factor)
        check_size(size, vcfg.spatial_factor)
        ds = data.FolderClips(folder, frames, size, fps) if folder else \
            data.WorldRenders(size, frames, fps, seed=seed)
        if folder:
            if dist.is_main:
                ds.report()
            folder_id = ds.inner.fingerprint()
            # fewer than the folder's windows: spread over it, not its first clip's windows
            ds = data.Spread(ds, count)
            count = len(ds)
        ident = vae_id(vae)
        outdir = Path(out)
        shards = [_shard_name(i) for i in range((count + shard_size - 1) // shard_size)]
        index = {"format": FORMAT, "count": count, "shard_size": shard_size, "size": size,
                 "frames": frames, "fps": fps, "seed": seed,
                 # absolute: a DiT trained from another folder measures on these clips
                 "source": str(Path(folder).resolve()) if folder else "world",
                 "vae": {"source": str(vae_source), "id": ident,
                         "latent_space": latent_space_id(vae)}, "shards": shards}
        if folder:
            index["folder_id"] = folder_id
        if dist.is_main:
            make_folder(outdir, "--out")
            old = outdir / "index.json"
            if old.exists():
                prev = json.loads(old.read_text())
                if folder and prev.get("source") == index["source"] \
                        and prev.get("folder_id", folder_id) != folder_id:
                    raise SoraError(f"{folder} changed (its captions or clips) since {outdir} "
                                    "was encoded from it; encode into another --out")
                keys = ("count", "shard_size", "size", "frames", "fps", "seed", "source")
                if any(prev.get(k) != index[k] for k in keys) or prev["vae"]["id"] != ident:
                    raise SoraError(f"{outdir} holds latents made with other settings or "
                                    "another VAE; choose another --out")
            write_json_atomic(outdir / "index.json", {**index, "complete": False})
        distributed.barrier(dist)
        mine = [i for i in range(len(shards)) if i % dist.world_size == dist.rank
                and not (outdir / shards[i]).exists()]
        todo = sum(min(shard_size, count - i * shard_size) for i in mine)
        shape = None
        # rendering is the slow part (the VAE is fast on a GPU): batches come from worker
        # processes, each batch inside one shard so a shard is written as soon as it is whole
        def shard_batches(i: int) -> list[list[int]]:
            lo, hi = i * shard_size, min(count, (i + 1) * shard_size)
            return [list(range(b, min(hi, b + batch_size))) for b in range(lo, hi, batch_size)]

        plan = [(i, ix) for i in mine for ix in shard_batches(i)]
        batches = _batches(ds, [ix for _, ix in plan], workers)
        with console.progress("encode latents", todo if dist.is_main else None) as advance:
            lat, caps, scenes = [], [], []
            for n, (i, _) in enumerate(plan):
                items = next(batches)
                x = data.to_model(items["video"], dist.device)
                with torch.no_grad(), autocast(dist.device, bf16):
                    _, mean, _ = vae.encode(x)
                lat.append(mean.float().cpu().to(torch.float16))
                caps += list(items["caption"])
                scenes += list(items.get("scene", [{}] * len(x)))
                if dist.is_main:
                    advance(len(x))
                if n + 1 < len(plan) and plan[n + 1][0] == i:
                    continue
                z = torch.cat(lat)
                shape = list(z.shape[1:])
                tmp = outdir / f".{shards[i]}.{os.getpid()}.tmp"
                save_file({"latents": z.contiguous()}, str(tmp),
                          metadata={"captions": json.dumps(caps), "scenes": json.dumps(scenes)})
                os.replace(tmp, outdir / shards[i])
                lat, caps, scenes = [], [], []
        distributed.barrier(dist)
        if dist.is_main:
            if shape is None:
                shape = LatentShards(outdir, check_complete=False).latents.shape[1:]
            index.update({"latent_shape": list(shape), "complete": True})
            write_json_atomic(outdir / "index.json", index)
        return {**index, "out": str(outdir), "encoded_now": todo}
    finally:
        distributed.teardown(dist)


def _batches(ds, batches: list[list[int]], workers: int):
    """Collated items of `ds` for each index list in turn, rendered by `workers` processes."""
    from torch.utils.data import DataLoader

    return iter(DataLoader(ds, batch_sampler=batches, num_workers=workers,
                           collate_fn=data.collate, prefetch_factor=4 if workers else None))


class LatentShards:
    """All shards of a latent cache in memory (~40 KB a 17-frame clip at 256 px, float16),
    as a finite map-style dataset of {"latents": (C, T, h, w) float32, "caption": str}."""

    def __init__(self, folder: str | os.PathLike, check_complete: bool = True):
        from safetensors import safe_open

        self.folder = Path(folder)
        p = self.folder / "index.json"
        if not p.exists():
            raise SoraError(f"{self.folder} is not a latent cache (no index.json); make one "
                            "with `sora data encode`")
        self.index = json.loads(p.read_text())
        if check_complete and not self.index.get("complete"):
            raise SoraError(f"{self.folder} is incomplete: run the same `sora data encode` "
                            "command again to finish it")
        lat, self.captions = [], []
        for name in self.index["shards"]:
            f = self.folder / name
            if not f.exists():
                if check_complete:
                    raise SoraError(f"latent shard missing: {f}")
                continue
            with safe_open(str(f), framework="pt") as st:
                lat.append(st.get_tensor("latents"))
                self.captions += json.loads(st.metadata()["captions"])
        if not lat:
            raise SoraError(f"{self.folder} holds no latent shards")
        self.latents = torch.cat(lat)

    def __len__(self) -> int:
        return len(self.latents)

    def __getitem__(self, i: int) -> dict:
        return {"latents": self.latents[i].float(), "caption": self.captions[i]}

    def __getitems__(self, indices: list[int]) -> dict:
        # a whole batch in one indexing op (the data loader's batched fetch), already collated
        return {"latents": self.latents[indices].float(),
                "caption": [self.captions[i] for i in indices]}
