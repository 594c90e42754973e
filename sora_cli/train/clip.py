"""`sora train clip`: a small open_clip CLIP trained contrastively on world frames (or, with
vision_frames > 1, on grids of a clip's frames) and their captions, and its zero-shot test:
colour, setting, shape and motion of held-out clips, classified by prompts built from the
world's vocabulary.
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from sora_cli import console
from sora_cli.errors import SoraUsageError
from sora_cli.nn.text import TextEncoderConfig, tokenize
from sora_cli.train import data, distributed
from sora_cli.train.config import at_least, positive
from sora_cli.train.loop import (Task, TrainConfig, autocast, build_model, check_resumed, fit,
                                 make_config)

def class_prompts() -> dict[str, dict[str, list[str]]]:
    """Prompt ensembles per class, in the world's words: each attribute's word is averaged over
    the other words, so "red" is "a red ball", "a red car", ..., and "desert" is "a ball in
    the desert", "a car in the desert", ..."""
    from sora_cli.world.scene import COLORS, MOTIONS, SETTINGS, SHAPES
    from sora_cli.world.words import MOTION_PHRASES, SETTING_PP

    def moving(m: str) -> str:
        return f"moving {m}" if m in ("left", "right") else MOTION_PHRASES[m]["ing"][0]

    return {
        "color": {c: [f"a {c} {s}" for s in SHAPES] for c in COLORS},
        "shape": {s: [f"a {c} {s}" for c in COLORS] for s in SHAPES},
        "setting": {k: [f"a {s} {SETTING_PP[k][0]}" for s in SHAPES] for k in SETTINGS},
        "motion": {m: [f"a {s} {moving(m)}" for s in SHAPES] for m in MOTIONS},
    }


def _single_subject(scene) -> bool:
    return len(scene.subjects) == 1


@torch.no_grad()
def encode_texts(model, prompts: list[str]) -> torch.Tensor:
    """Unit-norm text embeddings of a CLIP from build_clip."""
    ids = tokenize(model.tokenizer, prompts).to(next(model.parameters()).device)
    return torch.nn.functional.normalize(model.encode_text(ids).float(), dim=-1)


@torch.no_grad()
def encode_images(model, images: torch.Tensor) -> torch.Tensor:
    """Unit-norm image embeddings of frames (B, 3, H, W) in [-1, 1]."""
    from sora_cli.nn.text import prepare_images

    x = prepare_images(images, model.sora_text_cfg.image_size)
    return torch.nn.functional.normalize(model.encode_image(x).float(), dim=-1)


@torch.no_grad()
def _text_classes(model, prompts: dict[str, list[str]], device: str, bf16: bool | None):
    names = list(prompts)
    rows = []
    for name in names:
        with autocast(device, bf16):
            f = encode_texts(model, prompts[name])
        rows.append(torch.nn.functional.normalize(f.mean(0), dim=0))
    return names, torch.stack(rows)


@torch.no_grad()
def evaluate_clip(model, image_size: int, count: int = 270, seed: int = 0, device: str = "cpu",
                  bf16: bool | None = None, frames: int = 5, fps: float = 2) -> dict:
    """Zero-shot accuracy on colour, setting, shape and motion of `count` held-out
    single-subject clips of `frames` frames at `fps`. A frame CLIP sees each clip's first
    frame (where the subject is always in view), so its motion figure is about chance; a
    clip CLIP (vision_frames > 1) sees the clip's frame grid."""
    from sora_cli.nn.text import frame_grid

    model = model.to(device).eval()
    n = model.sora_text_cfg.vision_frames
    # a clip's first frame is the same whatever its length: a frame CLIP renders only that
    ds = data.WorldRenders(image_size, frames if n > 1 else 1, fps, seed=seed, heldout=True,
                           scene_filter=_single_subject)
    truth = {"color": [], "shape": [], "setting": [], "motion": []}
    clips = []
    for i in range(count):
        item = ds[i]
        clips.append(item["video"])
        row = item["scene"]
        truth["setting"].append(row["setting"])
        for attr in ("color", "shape", "motion"):
            truth[attr].append(row["subjects"][0][attr])
    video = data.to_model(torch.stack(clips), device)                 # (N, 3, T, H, W)
    x = frame_grid(video, n) if n > 1 else video[:, :, 0]
    feats = []
    for chunk in x.split(64):
        with autocast(device, bf16):
            feats.append(encode_images(model, chunk))
    img = torch.cat(feats)
    out = {}
    for attr, prompts in class_prompts().items():
        names, cls = _text_classes(model, prompts, device, bf16)
        guess = (img @ cls.T).argmax(-1).tolist()
        hits = sum(names[g] == t for g, t in zip(guess, truth[attr]))
        out[attr] = round(hits / count, 4)
    out["chance"] = {a: round(1 / len(p), 4) for a, p in class_prompts().items()}
    out["frames"] = count
    return out


@torch.no_grad()
def evaluate_retrieval(model, folder: str, count: int, frames: int, fps: float,
                       device: str = "cpu", bf16: bool | None = None,
                       trained: bool = True) -> dict:
    """Caption-to-clip retrieval on clips of a user's folder, whose captions are free text
    (the world's zero-shot classes mean nothing there): for each caption, is the clip it
    scores highest one with that caption? Chance is the share of clips with each caption."""
    from sora_cli.nn.text import frame_grid

    model = model.to(device).eval()
    n = model.sora_text_cfg.vision_frames
    ds, count, where = data.eval_clips(folder, model.sora_text_cfg.image_size, frames, fps, 0,
                                       count, trained)
    items = [ds[i] for i in range(count)]
    video = data.to_model(torch.stack([it["video"] for it in items]), device)
    # as training sees a folder's clips: the middle frame, or the frame grid
    x = frame_grid(video, n) if n > 1 else video[:, :, video.shape[2] // 2]
    feats = []
    for chunk in x.split(64):
        with autocast(device, bf16):
            feats.append(encode_images(model, chunk))
    captions = [it["caption"] for it in items]
    with autocast(device, bf16):
        txt = torch.cat([encode_texts(model, captions[i:i + 64]) for i in range(0, count, 64)])
    best = (txt @ torch.cat(feats).T).argmax(-1).tolist()
    hits = sum(captions[b] == c for b, c in zip(best, captions))
    chance = sum(captions.count(c) for c in captions) / count ** 2
    return {"retrieval": round(hits / count, 4), "chance": round(chance, 4), "clips": count,
            "eval_on": where}


def format_eval(figures: dict) -> str:
    if "retrieval" in figures:
        return (f"CLIP caption-to-clip retrieval on {figures['eval_on']}: "
                f"{figures['retrieval']:.1%} (chance {figures['chance']:.1%})")
    # each figure beside its own chance level: the attributes have unequal numbers of classes
    names = {"color": "colour", "setting": "setting", "shape": "shape", "motion": "motion"}
    parts = [f"{shown} {figures[attr]:.1%} (chance {figures['chance'][attr]:.1%})"
             for attr, shown in names.items()]
    return f"CLIP zero-shot on {figures['frames']} held-out clips: " + ", ".join(parts)


def clip_config(arch: dict, size: int | None = None) -> dict:
    """The CLIP architecture: the built-in sora-clip-tiny, a full TextEncoderConfig
    ({"name", "model_cfg"}) or a custom size by the keywords of nn.text.tiny_text_config
    ({"width": 64, "layers": 2, "image_size": 32, ...}); `size` sets the vision input size."""
    import copy
    import inspect

    from sora_cli.nn.text import tiny_text_config

    tiny = set(inspect.signature(tiny_text_config).parameters)
    if arch and set(arch) <= tiny and not set(arch) <= {"name"}:
        conf = asdict(tiny_text_config(**arch))
    else:
        conf = asdict(make_config(TextEncoderConfig, arch))
    if size:
        conf = copy.deepcopy(conf)
        conf["model_cfg"]["vision_cfg"]["image_size"] = size
    return conf


def build_task(cfg: TrainConfig, dist, size: int | None = None, frames: int = 5, fps: float = 2,
               arch: dict | None = None, folder: str | None = None, resume: bool = False,
               eval_frames: int = 270, init: str | None = None,
               vision_frames: int | None = None) -> Task:
    from sora_cli.nn.text import build_clip, check_vision_frames, clip_loss, frame_grid
    from sora_cli.token_rows import reset_token_tables

    if vision_frames is not None:
        try:
            check_vision_frames(vision_frames)
        except ValueError as exc:
            raise SoraUsageError(f"--{str(exc).replace('_', '-')}") from None
    if init and arch and not resume:
        raise SoraUsageError("--arch cannot reshape a CLIP started from --init: its "
                             "architecture comes with its weights; drop one of the two")
    if size is not None:
        at_least("--size", size, 1)
    at_least("--frames", frames, 1)
    positive("--fps", fps)
    at_least("--eval-frames", eval_frames, 0, " (0: no zero-shot test)")
    # --size and --vision-frames left out keep the resumed run's own
    given = {"size": size, "vision_frames": vision_frames}
    check_resumed(cfg.out, resume, cfg, dist.is_main, frames=frames, fps=fps,
                  data=folder or "world", **{k: v for k, v in given.items() if v is not None})
    grow = {"vision_frames": vision_frames} if vision_frames else None
    # the token table starts from the seeded draw a bundle can regenerate (sora_cli/token_rows)
    model, tcfg, conf, started = build_model(
        cfg, "clip", init, resume, lambda: clip_config(arch or {}, size),
        TextEncoderConfig, lambda c: reset_token_tables(build_clip(c)), grow=grow)
    device = dist.device
    patch = tcfg.model_cfg["vision_cfg"].get("patch_size")
    if patch and tcfg.image_size < patch:
        raise SoraUsageError(f"--size must be at least the vision tower's patch size "
                             f"{patch}, got {tcfg.image_size}")
    n = tcfg.vision_frames   # given, or --init's, or the resumed run's
    if n > frames:
        raise SoraUsageError(f"a CLIP that sees {n} frames of a clip needs at least that many "
                             f"--frames per clip, got {frames}")
    workers = cfg.workers if cfg.workers >= 0 else data.auto_workers(dist.world_size)
    # a clip CLIP sees each clip beside its motion twin: with only random other captions in a
    # batch, colour, shape and setting tell nearly every pair apart, and the tower learns no
    # motion words (a first CPU run without twins: zero-shot motion at chance after 427 steps)
    ds, length = data.clip_source(folder, tcfg.image_size, frames, fps, cfg.seed,
                                  single_frame=n == 1, twins=n > 1)

    def batches(start: int):
        return data.loader(ds, start, dist, cfg.batch_size, cfg.seed, workers, length)

    def loss(m, batch):
        if "image" in batch:
            x = data.to_model(batch["image"][:, None], device)[:, :, 0]
        elif n > 1:
            x = frame_grid(data.to_model(batch["video"], device), n)
        else:  # a user folder gives clips: take their middle frame
            v = batch["video"]
            x = data.to_model(v[:, v.shape[1] // 2][:, None], device)[:, :, 0]
        out = clip_loss(m, x, list(batch["caption"]))
        return out if isinstance(out, tuple) else (out, {})

    def finish(m):
        if folder:
            figures = evaluate_retrieval(m, folder, eval_frames, frames, fps, device, cfg.bf16)
            console.log(format_eval(figures))
            return {"retrieval": figures}
        figures = evaluate_clip(m, tcfg.image_size, eval_frames, cfg.seed, device, cfg.bf16,
                                frames, fps)
        console.log(format_eval(figures))
        return {"zero_shot": figures}

    return Task("clip", model, loss, batches, conf, finish=finish if eval_frames else None,
                extra={"size": tcfg.image_size, "frames": frames, "fps": fps,
                       "data_id": data.folder_id(ds),
                       "data": folder or "world", "init": str(init) if started else None})


def train_clip(cfg: TrainConfig, size: int | None = None, frames: int = 5, fps: float = 2,
               arch: dict | None = None, folder: str | None = None, resume: bool = False,
               eval_frames: int = 270, init: str | None = None,
               vision_frames: int | None = None) -> dict:
    """Train (or continue) a CLIP run in cfg.out; returns the summary with zero-shot figures.
    `init` starts from the weights of another run or a bundle."""
    dist = distributed.setup(cfg.device)
    try:
        task = build_task(cfg, dist, size, frames, fps, arch, folder, resume, eval_frames, init,
                          vision_frames)
        return fit(task, cfg, dist, resume=resume)
    finally:
        distributed.teardown(dist)


def eval_clip_run(run_dir: str, count: int = 270, seed: int = 0, device: str = "auto",
                  bf16: bool | None = None, folder: str | None = None, frames: int = 5,
                  fps: float = 2) -> dict:
    """`sora train clip --eval-only`: zero-shot figures of a trained CLIP run (EMA weights)
    or of a bundle's CLIP; with `folder`, its caption-to-clip retrieval on that folder, cut
    into clips as the run was trained (its own --frames and --fps, where it kept them)."""
    import json

    from sora_cli.train.loop import run_config_path, same_setting
    from sora_cli.train.runs import load_clip_run

    at_least("--eval-frames", count, 1, ": the held-out clips to classify")
    dev = distributed.resolve_device(device)
    model, tcfg = load_clip_run(run_dir, dev)
    if folder:
        saved = run_config_path(run_dir)
        run = json.loads(saved.read_text()) if saved.is_file() else {}
        frames, fps = run.get("frames", frames), run.get("fps", fps)
        trained = same_setting(run.get("data"), folder)
        return evaluate_retrieval(model, folder, count, frames, fps, dev, bf16, trained)
    return evaluate_clip(model, tcfg.image_size, count, seed, dev, bf16)
