"""`sora train vae`: the causal video VAE on world clips (or a user's video folder).

At the end it measures reconstruction PSNR on held-out clips and the per-channel latent
mean/std that the DiT normalises with; both go into the run's model.json.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import torch

from sora_cli import console
from sora_cli.errors import SoraUsageError
from sora_cli.train import data, distributed
from sora_cli.train.config import at_least, positive
from sora_cli.train.loop import (Task, TrainConfig, autocast, build_model, fit, check_resumed,
                                 check_resumed_alike, check_resumed_arch, make_config)


def check_frames(frames: int, temporal: int = 4) -> None:
    if frames < 1 or (frames - 1) % temporal:
        raise SoraUsageError(f"--frames must be {temporal}k+1 (1, 5, 9, 17, 33, ...), "
                             f"got {frames}")


def check_size(size: int, factor: int) -> None:
    if size < factor or size % factor:
        raise SoraUsageError(f"--size must be a multiple of {factor} (the VAE's spatial "
                             f"factor), got {size}")


VIEWS = (1, 2, 4)


def check_views(views: int) -> None:
    if views not in VIEWS:
        raise SoraUsageError(f"--views must be 1, 2 or 4, got {views}")


def check_decoder_only(decoder_only: bool, latent_noise: float, init: str | None,
                       resume: bool, arch: dict | None = None) -> None:
    if not math.isfinite(latent_noise) or latent_noise < 0:
        raise SoraUsageError(f"--latent-noise must be 0 or more, got {latent_noise}")
    if latent_noise and not decoder_only:
        raise SoraUsageError("--latent-noise needs --decoder-only: the noise is measured in "
                             "the latent statistics that only a decoder-only run keeps")
    if decoder_only and not init and not resume:
        raise SoraUsageError("--decoder-only needs --init: the VAE (a run or a bundle such as "
                             "models/default) whose encoder and latent space stay as they are")
    if decoder_only and arch:
        raise SoraUsageError("--decoder-only keeps --init's VAE as it is: drop --arch")


def views_of(video: torch.Tensor, views: int) -> torch.Tensor:
    """(B, 3, T, H, W) -> (views·B, ...): the clips as they are, mirrored left to right, then
    reversed in time and both. Every view is a clip the world could have rendered, so a VAE
    learns from each at no rendering cost; on a GPU, rendering is what limits VAE training."""
    check_views(views)
    out = [video]
    if views >= 2:
        out.append(video.flip(-1))
    if views >= 4:
        out += [video.flip(2), video.flip(2).flip(-1)]
    return torch.cat(out)


@torch.no_grad()
def reconstruct(vae, video: torch.Tensor) -> torch.Tensor:
    """Encode to the latent mean and decode: (B, 3, T, H, W) -> same shape."""
    _, mean, _ = vae.encode(video)
    return vae.decode(mean)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two videos in [-1, 1], measured on 8-bit values as a viewer sees them."""
    a8 = ((a.float().clamp(-1, 1) + 1) * 127.5).round()
    b8 = ((b.float().clamp(-1, 1) + 1) * 127.5).round()
    mse = float(((a8 - b8) ** 2).mean())
    return 99.0 if mse == 0 else 10 * torch.log10(torch.tensor(255.0 ** 2 / mse)).item()


@torch.no_grad()
def evaluate_vae(vae, size: int, frames: int, fps: float, count: int = 16, seed: int = 0,
                 device: str = "cpu", bf16: bool | None = None,
                 latent_noise: float = 0.0, folder: str | None = None) -> dict:
    """Held-out reconstruction PSNR and the latent statistics (per channel, of the mean), on
    the world's held-out clips or on clips of the user's `folder` (`data.eval_clips`).
    With `latent_noise`, the PSNR is of latents with that much Gaussian noise (std in the
    DiT's normalised units, the same noise for every VAE measured with the same seed)."""
    ds, count, where = data.eval_clips(folder, size, frames, fps, seed, count)
    vae = vae.to(device).eval()
    scores, latents = [], []
    noise = torch.Generator().manual_seed(seed)
    for i in range(count):
        x = data.to_model(ds[i]["video"][None], device)
        with autocast(device, bf16):
            _, mean, _ = vae.encode(x)
            z = mean
            if latent_noise:
                eps = torch.randn(mean.shape, generator=noise).to(mean.device)
                z = vae.denormalize_latents(vae.normalize_latents(mean) + latent_noise * eps)
            y = vae.decode(z)
        scores.append(psnr(x, y))
        latents.append(mean.float().transpose(0, 1).reshape(mean.shape[1], -1))
    z = torch.cat(latents, dim=1)
    return {"psnr": round(sum(scores) / len(scores), 2), "eval_clips": count,
            "eval_on": where,
            "latent_mean": [round(float(v), 5) for v in z.mean(1)],
            "latent_std": [round(float(v), 5) for v in z.std(1).clamp_min(1e-3)]}


def build_task(cfg: TrainConfig, dist, size: int = 256, frames: int = 17, fps: float = 8,
               arch: dict | None = None, folder: str | None = None, resume: bool = False,
               eval_clips: int = 16, init: str | None = None, views: int = 1,
               decoder_only: bool = False, latent_noise: float = 0.0) -> Task:
    from sora_cli.nn.vae import VAEConfig, VideoVAE
    from sora_cli.train.widen import widen_vae
    check_views(views)
    check_decoder_only(decoder_only, latent_noise, init, resume, arch)
    positive("--fps", fps)
    at_least("--eval-clips", eval_clips, 1, ": the held-out clips also measure the latent "
             "statistics that a DiT normalises with")
    check_resumed_alike(cfg.out, resume, decoder_only=(decoder_only, False),
                        latent_noise=(latent_noise, 0.0))
    check_resumed_arch(cfg.out, resume, arch)
    check_resumed(cfg.out, resume, cfg, dist.is_main, size=size, frames=frames, fps=fps,
                  views=views, data=folder or "world")
    vae, vcfg, conf, started = build_model(
        cfg, "vae", init, resume, lambda: asdict(make_config(VAEConfig, arch or {})),
        VAEConfig, VideoVAE, resize=arch if init else None, adapt=widen_vae)
    if len(vcfg.latent_mean) not in (0, vcfg.z_channels):
        # init's statistics were of a narrower latent; finish() measures this one's
        vae.set_latent_stats([], [])
        conf.update(latent_mean=[], latent_std=[])
    if decoder_only:  # (an --init run without latent statistics was refused by its loader)
        for p in vae.encoder.parameters():
            p.requires_grad_(False)
    check_frames(frames, vcfg.temporal_factor)
    check_size(size, vcfg.spatial_factor)
    device = dist.device
    workers = cfg.workers if cfg.workers >= 0 else data.auto_workers(dist.world_size)
    ds, length = data.clip_source(folder, size, frames, fps, cfg.seed)

    def batches(start: int):
        return data.loader(ds, start, dist, cfg.batch_size, cfg.seed, workers, length)

    def loss(model, batch):
        video = views_of(data.to_model(batch["video"], device), views)
        out = model.decoder_loss(video, latent_noise) if decoder_only else model.loss(video)
        return out if isinstance(out, tuple) else (out, {})

    # the sample shows a clip of the data the run learns: the world's, or the user's
    probe, _, _ = data.eval_clips(folder, size, frames, fps, cfg.seed, 1)

    def sample(model, path: Path):
        from sora_cli.video_io import write_video

        x = data.to_model(probe[0]["video"][None], device)
        with autocast(device, cfg.bf16):
            y = reconstruct(model, x)
        # original | reconstruction, side by side
        both = torch.cat([x[0], y[0].float()], dim=-1)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, data.to_frames(both), fps, overwrite=True)
        return path

    def finish(model):
        figures = evaluate_vae(model, size, frames, fps, count=eval_clips, seed=cfg.seed,
                               device=device, bf16=cfg.bf16, folder=folder)
        console.log(f"VAE reconstruction: {figures['psnr']:.2f} dB PSNR "
                    f"over {figures['eval_on']} at {size}px")
        if decoder_only:
            # The encoder did not move, so the latent statistics a DiT was trained with stay.
            out = {"psnr": figures["psnr"]}
            if latent_noise:
                noisy = evaluate_vae(model, size, frames, fps, count=eval_clips, seed=cfg.seed,
                                     device=device, bf16=cfg.bf16, latent_noise=latent_noise,
                                     folder=folder)
                console.log(f"with latent noise {latent_noise:g}: {noisy['psnr']:.2f} dB PSNR")
                out["psnr_latent_noise"] = noisy["psnr"]
            return out
        return {"psnr": figures["psnr"], "eval_on": figures["eval_on"],
                "config_update": {"latent_mean": figures["latent_mean"],
                                  "latent_std": figures["latent_std"]}}

    extra = {"size": size, "frames": frames, "fps": fps, "views": views,
             "data": folder or "world", "data_id": data.folder_id(ds),
             "init": str(init) if started else None}
    if decoder_only:
        extra.update(decoder_only=True, latent_noise=latent_noise)
    return Task("vae", vae, loss, batches, conf, sample=sample, finish=finish, extra=extra)


def train_vae(cfg: TrainConfig, size: int = 256, frames: int = 17, fps: float = 8,
              arch: dict | None = None, folder: str | None = None, resume: bool = False,
              eval_clips: int = 16, init: str | None = None, views: int = 1,
              decoder_only: bool = False, latent_noise: float = 0.0) -> dict:
    """Train (or continue) a video VAE run in cfg.out; returns the run summary. `init` starts
    from the weights of another run or a bundle; `views` trains on each clip that many ways
    (see views_of), so a step sees views x batch-size clips. `decoder_only` trains the decoder
    of `init` and keeps its encoder and latent statistics, so a DiT trained on that VAE still
    fits it; `latent_noise` then trains it on noisy latents (see VideoVAE.decoder_loss)."""
    dist = distributed.setup(cfg.device)
    try:
        task = build_task(cfg, dist, size, frames, fps, arch, folder, resume, eval_clips, init,
                          views, decoder_only, latent_noise)
        return fit(task, cfg, dist, resume=resume)
    finally:
        distributed.teardown(dist)
