"""`sora train dit`: the diffusion transformer on frozen VAE latents and frozen text tokens.

Rectified-flow loss with per-token timesteps: each clip gets a conditioning mask (none, first
frame, first k frames, first and last) whose latent frames stay clean and carry no loss, and
10% of captions are dropped for classifier-free guidance. Latents come from a cache made by
`sora data encode` (fast) or from world clips encoded on the fly.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from statistics import fmean

import torch

from sora_cli import console
from sora_cli.errors import SoraError, SoraUsageError
from sora_cli.train import data, distributed
from sora_cli.train.config import at_least, positive
from sora_cli.train.loop import (Identity, Task, TrainConfig, autocast, build_model, fit,
                                 check_resumed, check_resumed_alike, check_resumed_arch,
                                 make_config)

SAMPLE_PROMPT = "a red ball bouncing on a grass field"


def load_text(clip: str | None, text_encoder: str | None, text_weights: str | None,
              device: str):
    """The frozen text tower: a CLIP run/bundle, or any open_clip config + local weights."""
    from sora_cli.train.runs import frozen, load_text_run

    if text_encoder:
        from sora_cli.nn.text import load_text_encoder

        enc = load_text_encoder(text_encoder, text_weights)
        return frozen(enc.to(device)), getattr(enc, "cfg", None)
    if not clip:
        raise SoraUsageError("give the text encoder: --clip RUN (a `sora train clip` run or a "
                             "bundle) or --text-encoder OPENCLIP_CONFIG [--text-weights FILE]")
    enc, tcfg = load_text_run(clip, device)
    return frozen(enc), tcfg


@torch.no_grad()
def encode_text(text, prompts: list[str], device: str, bf16: bool | None):
    with autocast(device, bf16):
        tokens, mask, pooled = text(list(prompts))
    return tokens.float(), mask, pooled.float()


def _flow_loss(dit, x0, cond, known, flow=None):
    from sora_cli.sampling import flow_loss

    out = flow_loss(dit, x0, cond, known, cfg=flow)
    return out if isinstance(out, tuple) else (out, {})


HELDOUT_TIMES = (0.1, 0.3, 0.5, 0.7, 0.9)


def _encoded(vae, items, device, bf16):
    x = data.to_model(torch.stack([it["video"] for it in items]), device)
    with autocast(device, bf16):
        _, mean, _ = vae.encode(x)
    return vae.normalize_latents(mean.float())


def _flow_errors(dit, x0, conds, known, times, gen, device, bf16) -> list[dict]:
    """Per clip, per time: the flow loss of latents x0 under each conditioning in `conds`
    (tokens, mask, pooled), with the same fixed noise for all of them. -> [{t: (B,)}]."""
    B, T = x0.shape[0], x0.shape[2]
    out = [{} for _ in conds]
    for t in times:
        noise = torch.randn(x0.shape, generator=gen).to(device)
        tt = torch.full((B, T), t, device=device).masked_fill(known, 0.0)
        xt = torch.where(known[:, None, None], x0, (1 - t) * x0 + t * noise)
        for row, (tokens, mask, pooled) in zip(out, conds):
            with autocast(device, bf16):
                v = dit(xt, tt, tokens, mask, pooled)
            row[t] = (v.float() - (noise - x0))[:, :, ~known].pow(2).flatten(1).mean(1)
    return out


@torch.no_grad()
def evaluate_dit(dit, vae, text, size: int, frames: int, fps: float, count: int = 16,
                 seed: int = 0, device: str = "cpu", bf16: bool | None = None,
                 times: tuple = HELDOUT_TIMES, window: int = 0, context: int = 1,
                 folder: str | None = None) -> dict:
    """Held-out flow loss: world clips no run trains on, encoded by the frozen VAE, noised to
    a fixed grid of times with fixed noise, text to video (no known frames). Unlike the
    training loss, which moves with each batch's random times and masks, it compares runs
    and checkpoints on the same VAE: lower is better.

    With `window`, each clip's last `window` latent frames are scored instead, their first
    `context` given clean: a window continuing a video, as the pipeline's later windows and
    extensions do (frames must then make more latents than the window).

    With `folder`, clips of that folder of the user's videos are scored instead (it has no
    held-out split: `data.eval_clips`), at most `count` of them."""
    ds, count, where = data.eval_clips(folder, size, frames, fps, seed, count)
    gen = torch.Generator().manual_seed(seed)
    dit.eval()
    total = {t: 0.0 for t in times}
    for start in range(0, count, 8):
        items = [ds[i] for i in range(start, min(count, start + 8))]
        x0 = _encoded(vae, items, device, bf16)
        if window:
            if not 0 < context < window < x0.shape[2]:
                raise ValueError(f"a continuation window needs 0 < context < window < "
                                 f"{x0.shape[2]} latent frames, got {context}, {window}")
            x0 = x0[:, :, -window:]
        known = torch.arange(x0.shape[2], device=device) < (context if window else 0)
        cond = encode_text(text, [it["caption"] for it in items], device, bf16)
        (err,) = _flow_errors(dit, x0, [cond], known, times, gen, device, bf16)
        for t in times:
            total[t] += float(err[t].sum())
    return {"heldout_loss": round(sum(total.values()) / count / len(times), 5),
            "heldout_loss_by_t": {f"{t:g}": round(v / count, 5) for t, v in total.items()},
            "eval_clips": count, "eval_on": where}


def _has_opposite_motion(scene) -> bool:
    from sora_cli.world.sampler import OPPOSITE

    return len(scene.subjects) == 1 and scene.subjects[0].motion in OPPOSITE


@torch.no_grad()
def motion_word_gap(dit, vae, text, size: int = 256, frames: int = 17, fps: float = 8,
                    count: int = 32, seed: int = 0, device: str = "cpu",
                    bf16: bool | None = None, times: tuple = HELDOUT_TIMES) -> dict:
    """Does the DiT read motion words? Held-out one-subject clips that move one way (left,
    right, up, down, growing, shrinking) are scored as in evaluate_dit, once with their own
    caption and once with their motion twin's: the same words but the opposite motion. A DiT
    that draws motion from the prompt predicts the clip worse under the wrong caption (a gap
    above 0); one that draws it from its noise alone scores both the same."""
    ds = data.WorldRenders(size, frames, fps, seed=seed, heldout=True,
                           scene_filter=_has_opposite_motion)
    gen = torch.Generator().manual_seed(seed)
    dit.eval()
    own = {t: [] for t in times}
    wrong = {t: [] for t in times}
    motions = []
    for start in range(0, count, 8):
        items = [ds[i] for i in range(start, min(count, start + 8))]
        twins = [ds.clips.caption(it["index"], twin=True) for it in items]
        x0 = _encoded(vae, items, device, bf16)
        known = torch.zeros(x0.shape[2], dtype=torch.bool, device=device)
        conds = [encode_text(text, caps, device, bf16)
                 for caps in ([it["caption"] for it in items], twins)]
        right, swapped = _flow_errors(dit, x0, conds, known, times, gen, device, bf16)
        for t in times:
            own[t] += right[t].tolist()
            wrong[t] += swapped[t].tolist()
        motions += [it["scene"]["subjects"][0]["motion"] for it in items]

    by_t = {f"{t:g}": round(fmean(wrong[t]) - fmean(own[t]), 5) for t in times}
    by_motion = {}
    for m in sorted(set(motions)):
        keep = [i for i, mm in enumerate(motions) if mm == m]
        by_motion[m] = round(fmean([wrong[t][i] - own[t][i] for t in times for i in keep]), 5)
    own_all = fmean([v for t in times for v in own[t]])
    wrong_all = fmean([v for t in times for v in wrong[t]])
    return {"own_caption_loss": round(own_all, 5), "twin_caption_loss": round(wrong_all, 5),
            "gap": round(wrong_all - own_all, 5), "gap_by_t": by_t, "gap_by_motion": by_motion,
            "clips": count}


def check_window(window: int, clip_latents: int) -> int:
    """The training window in latent frames (0: the whole clip)."""
    if window < 0 or window == 1:
        raise SoraUsageError(f"--window must be 0 (whole clips) or at least 2 latent frames, "
                             f"got {window}")
    if window > clip_latents:
        raise SoraUsageError(f"--window {window} is longer than the clips ({clip_latents} latent "
                             f"frames); encode longer clips (--frames) or shorten the window")
    return 0 if window == clip_latents else window


def flow_for(time_shift: float, min_t: float = 0.0):
    """The training FlowConfig whose timesteps are the logit-normal ones shifted as a sampler
    with shift `time_shift` shifts its schedule: shift(sigmoid(n)) = sigmoid(n + ln shift).
    With `min_t` > 0 they are uniform on [min_t, 1] instead: a high-noise expert."""
    from sora_cli.sampling import FlowConfig

    if not (math.isfinite(time_shift) and time_shift > 0):
        raise SoraUsageError(f"--time-shift must be a positive number, got {time_shift}")
    if not (math.isfinite(min_t) and 0 <= min_t < 1):
        raise SoraUsageError(f"--min-t must be in [0, 1), got {min_t}")
    if min_t > 0 and time_shift != 1:
        raise SoraUsageError("--min-t draws its noise levels uniformly from [MIN_T, 1]; "
                             "leave out --time-shift with it")
    return FlowConfig(logit_mean=math.log(time_shift), min_t=min_t)


def build_task(cfg: TrainConfig, dist, vae: str, clip: str | None = None,
               text_encoder: str | None = None, text_weights: str | None = None,
               latents: str | None = None, size: int = 256, frames: int = 17, fps: float = 8,
               arch: dict | None = None, folder: str | None = None, resume: bool = False,
               caption_dropout: float = 0.1, sample_prompt: str = SAMPLE_PROMPT,
               sample_steps: int = 20, init: str | None = None, eval_clips: int = 16,
               window: int = 0, time_shift: float = 1.0, min_t: float = 0.0,
               text_inputs: bool = False, text_path_only: bool = False) -> Task:
    from sora_cli.nn.dit import DiT, DiTConfig
    from sora_cli.pipeline import frames_of, latents_for
    from sora_cli.sampling import drop_captions, sample_training_windows
    from sora_cli.train.latents import (LatentShards, latent_space_id, same_latent_space,
                                        vae_id)
    from sora_cli.train.checkpoint import state_hash
    from sora_cli.train.loop import same_setting
    from sora_cli.train.runs import frozen, load_vae_run
    from sora_cli.train.vae import check_frames, check_size
    from sora_cli.train.widen import widen_dit

    flow = flow_for(time_shift, min_t)
    if text_path_only and not init and not resume:
        raise SoraUsageError("--text-path-only adapts a trained DiT to a text tower: it needs "
                             "--init RUN_OR_BUNDLE")
    at_least("--eval-clips", eval_clips, 0, " (0: no held-out loss)")
    if latents and folder:
        raise SoraUsageError("--latents and --data both name the clips to train on: the "
                             "latents already come from a folder (their index.json names it); "
                             "drop --data")
    positive("--fps", fps)
    check_resumed_alike(cfg.out, resume, text_path_only=(text_path_only, False))
    check_resumed_arch(cfg.out, resume, arch)
    device = dist.device
    vae_model, vcfg, _ = load_vae_run(vae, device)
    vae_model = frozen(vae_model)
    text, tcfg = load_text(clip, text_encoder, text_weights, device)
    # a bundle whose DiT reads the inputs loads its tower with them on; a fresh DiT's text_dim
    # is the outputs' width, and the DiT built below decides whether it reads the inputs
    text.with_inputs = False
    tokens, _, pooled = encode_text(text, [""], device, cfg.bf16)
    workers = cfg.workers if cfg.workers >= 0 else data.auto_workers(dist.world_size)
    if latents:
        ds = LatentShards(latents)
        ix = ds.index
        if not same_latent_space(vae_model, ix["vae"].get("latent_space"), ix["vae"]["id"]):
            raise SoraError(f"{latents} was encoded with another VAE ({ix['vae']['source']}) "
                            f"than --vae {vae}; encode again or pass that VAE")
        size, frames, fps = ix["size"], ix["frames"], ix["fps"]
        length = len(ds)
        workers = 0  # in memory already: workers would only copy it
    check_frames(frames, vcfg.temporal_factor)
    check_size(size, vcfg.spatial_factor)
    if not latents:
        ds, length = data.clip_source(folder, size, frames, fps, cfg.seed)
    lat_t = latents_for(frames, vcfg.temporal_factor)
    window = check_window(window, lat_t)
    lat_t = window or lat_t  # what the DiT sees of each clip
    text_id = state_hash(text.state_dict())
    data_source = str(folder or (ds.index.get("source") if latents else None) or "world")
    # a user's folder is measured on its own clips, and its samples show its own words
    eval_folder = None if data_source == "world" else data_source
    if eval_folder and sample_prompt == SAMPLE_PROMPT:
        sample_prompt = ds.captions[0]
    check_resumed(
        cfg.out, resume, cfg, dist.is_main, size=size, frames=frames, fps=fps, window=window,
        time_shift=time_shift, min_t=min_t, latents=str(latents) if latents else None,
        data=data_source,
        # a VAE whose decoder alone went on makes the same latents: it may replace the run's
        vae=Identity(str(vae), lambda m: same_latent_space(vae_model, m.get("latent_space"),
                                                           m.get("vae_id"))),
        clip=Identity(str(clip or text_encoder),
                      lambda m: m["text_id"] == text_id if "text_id" in m else
                      same_setting(m.get("clip"), str(clip or text_encoder))),
        **({"text_inputs": True} if text_inputs else {}))

    fresh = {"in_channels": vcfg.z_channels, "text_dim": tokens.shape[-1],
             "pooled_dim": pooled.shape[-1], **(arch or {})}
    dit, dcfg, conf, started = build_model(
        cfg, "dit", init, resume, lambda: asdict(make_config(DiTConfig, fresh)),
        DiTConfig, DiT, grow={"text_inputs": True} if text_inputs else None,
        # a DiT from init on a VAE of a wider latent keeps its trunk; the patch embedding and
        # the output layer, which the width shapes, are split (sora_cli/train/widen.py)
        resize={"in_channels": vcfg.z_channels, **(arch or {})} if init else None,
        adapt=widen_dit)
    text.with_inputs = dcfg.text_inputs
    if text_path_only:
        dit.text_path_only()
    lat_hw = size // vcfg.spatial_factor
    tokens_per_clip = lat_t * (lat_hw // dcfg.patch_size) ** 2

    def batches(start: int):
        return data.loader(ds, start, dist, cfg.batch_size, cfg.seed, workers, length)

    def loss(model, batch):
        if "latents" in batch:
            z = batch["latents"].to(device)
        else:
            x = data.to_model(batch["video"], device)
            with torch.no_grad():
                _, z, _ = vae_model.encode(x)
        x0 = vae_model.normalize_latents(z.float())
        prompts = drop_captions(list(batch["caption"]), p=caption_dropout)
        cond = encode_text(text, prompts, device, cfg.bf16)
        x0, known = sample_training_windows(x0, window)
        return _flow_loss(model, x0, cond, known.to(device), flow)

    def sample(model, path: Path):
        from sora_cli.sampling import sample as run_sampler
        from sora_cli.video_io import write_video

        # its own generator: a sample clip must not move the training random stream
        gen = torch.Generator().manual_seed(cfg.seed)  # the sampler draws noise on the CPU
        cond = encode_text(text, [sample_prompt], device, cfg.bf16)
        uncond = encode_text(text, [""], device, cfg.bf16)
        shape = (1, dcfg.in_channels, lat_t, lat_hw, lat_hw)
        with torch.no_grad(), autocast(device, cfg.bf16):
            z = run_sampler(model, shape, cond, uncond=uncond, steps=sample_steps,
                            generator=gen)
            video = vae_model.decode(vae_model.denormalize_latents(z.float()))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_video(path, data.to_frames(video[0]), fps, overwrite=True)
        return path

    def finish(model):
        # on clips of the window's length, so runs with and without windows compare
        # an expert only at the noise levels it takes over, so it compares with a main DiT's
        # figures at those times
        times = tuple(t for t in HELDOUT_TIMES if t >= min_t)
        if eval_folder and not Path(eval_folder).is_dir():
            console.warn(f"no flow loss at the end: {eval_folder}, whose clips the latents "
                         "were encoded from, is gone")
            return {}
        figures = evaluate_dit(model, vae_model, text, size,
                               frames_of(lat_t, vcfg.temporal_factor), fps, count=eval_clips,
                               seed=cfg.seed, device=device, bf16=cfg.bf16, times=times,
                               folder=eval_folder)
        console.log(f"DiT flow loss: {figures['heldout_loss']:.4f} "
                    f"({figures['eval_on']} x {len(times)} times)")
        return figures

    return Task("dit", dit, loss, batches, conf, sample=sample,
                finish=finish if eval_clips > 0 else None,
                tokens_per_sample=tokens_per_clip,
                extra={"size": size, "frames": frames, "fps": fps, "window": window,
                       "data_id": data.folder_id(ds),
                       "time_shift": time_shift, "min_t": min_t,
                       "text_path_only": text_path_only,
                       "vae": str(vae), "vae_id": vae_id(vae_model),
                       "latent_space": latent_space_id(vae_model),
                       "clip": str(clip or text_encoder), "text_id": text_id,
                       "latents": str(latents) if latents else None,
                       # where its clips came from: "world" (the built-in world) or a folder
                       "data": data_source,
                       "init": str(init) if started else None})


def train_dit(cfg: TrainConfig, vae: str, clip: str | None = None, **kw) -> dict:
    """Train (or continue) a DiT run in cfg.out on a frozen VAE and text tower."""
    dist = distributed.setup(cfg.device)
    try:
        task = build_task(cfg, dist, vae, clip, **kw)
        return fit(task, cfg, dist, resume=kw.get("resume", False))
    finally:
        distributed.teardown(dist)
