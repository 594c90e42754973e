"""`sora eval`: does a generated video show what its prompt asked for?

A fixed, seeded set of world prompts is generated with the model and every clip is scored
against its prompt's scene by the checker (sora_cli/checker.py). `evaluate` also scores
`render_scene(parse_prompt(prompt))` references at the same size, fps and length: they must
score about 1.0, or the checker is wrong. With a model, the same references also go through
its VAE and back ("autoencoded"), which tells a weak VAE from a weak DiT.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sora_cli.checker import ATTRIBUTES, color_conflicts, score_clip
from sora_cli.errors import SoraError, SoraUsageError
from sora_cli.folders import make_folder

# --- the evaluation prompts ----------------------------------------------------------------

P_TWO = 0.3                   # share of prompts with two subjects
P_WEATHER = {"none": 0.5, "rain": 0.25, "snow": 0.25}   # outdoor settings
P_HAND = 0.3                  # share phrased by the hand-written templates below
# A person's phrasings, beside the caption grammar's: {s} subject(s) with motion, {pp} where,
# {np} the setting as a noun, {w} weather (with its leading space or comma).
HAND_TEMPLATES = (
    "{s} {pp}{w}", "{Pp}, {s}{w}", "show me {s} {pp}{w}", "a short clip of {s} {pp}{w}",
    "{Np}{w}: {s}", "I want to see {s} {pp}{w}", "{s}, {pp}{w}", "{s} {pp}{w}, please",
    "Make a video where {s} {pp}{w}.",
)
HAND_WEATHER = {"rain": [" while it rains", ", raining", " in the rain", " on a rainy day",
                         " as rain pours down", " during a rainstorm"],
                "snow": [" while it snows", ", snowing", " as snow falls", " in falling snow",
                         " during a snowfall", " with snowflakes falling"]}


def _block_pick(seed: int, what: str, values: tuple, index: int):
    """values in shuffled blocks: every value once per len(values) picks, order seeded."""
    block, pos = divmod(index, len(values))
    rng = np.random.default_rng([seed, block, sum(map(ord, what))])
    return values[int(rng.permutation(len(values))[pos])]


def _eval_scene(seed: int, i: int, counter: list[int]):
    """Prompt i's scene: settings, colours, shapes and motions balanced in shuffled blocks,
    sizes, speeds and weather drawn; no camera move; two subjects never share a colour."""
    from sora_cli.world.sampler import BOAT_MOTIONS
    from sora_cli.world.scene import COLORS, MOTIONS, OUTDOOR, SETTINGS, SHAPES, Scene, Subject

    rng = np.random.default_rng([seed, i, 101])
    setting = _block_pick(seed, "setting", SETTINGS, i)
    two = rng.random() < P_TWO
    subjects = []
    for _ in range(2 if two else 1):
        c = counter[0]
        counter[0] += 1
        colours = [x for x in COLORS if not color_conflicts(x, setting)
                   and x not in [s.color for s in subjects]]
        color = _block_pick(seed, "color", tuple(COLORS), c)
        if color not in colours:
            color = colours[int(rng.integers(len(colours)))]
        if setting == "ocean" and rng.random() < 0.3:
            shape = "boat"
        else:
            shape = _block_pick(seed, "shape", tuple(x for x in SHAPES if x != "boat"), c)
        motion = _block_pick(seed, "motion", MOTIONS, c)
        if shape == "boat" and motion not in BOAT_MOTIONS:
            motion = BOAT_MOTIONS[int(rng.integers(len(BOAT_MOTIONS)))]
        speed = "normal" if motion == "still" else str(rng.choice(["slow", "normal", "normal", "fast"]))
        size = str(rng.choice(["small", "medium", "medium", "large"]))
        subjects.append(Subject(color=color, shape=shape, size=size, motion=motion, speed=speed))
    weather = "none"
    if setting in OUTDOOR:
        weather = str(rng.choice(list(P_WEATHER), p=list(P_WEATHER.values())))
    return Scene(setting, subjects, weather, "none", seed=seed * 1_000_003 + i), rng


def _hand_prompt(scene, rng) -> str:
    """One of HAND_TEMPLATES filled in with the world's own words."""
    from sora_cli.world.words import (COLOR_WORDS, DIRECTION_PHRASES, MOTION_PHRASES, SETTING_NP,
                                      SETTING_PP, SHAPE_NOUNS, SIZE_WORDS, SPEED_WORDS,
                                      TRAVEL_FOR_SHAPE, TRAVEL_VERBS)

    pick = lambda xs: xs[int(rng.integers(len(xs)))]
    ing = {v[0]: v[2] for v in TRAVEL_VERBS}

    def one(s) -> str:
        words = [pick(SIZE_WORDS[s.size])] if s.size != "medium" else []
        noun = f"{' '.join(words + [pick(COLOR_WORDS[s.color]), pick(SHAPE_NOUNS[s.shape])[0]])}"
        head = f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
        if s.motion in ("left", "right"):
            verb = f"{ing[pick(TRAVEL_FOR_SHAPE[s.shape])]} {pick(DIRECTION_PHRASES[s.motion])}"
        else:
            verb = pick(MOTION_PHRASES[s.motion]["ing"])
        if s.speed != "normal":
            verb = f"{verb} {pick(SPEED_WORDS[s.speed])}"
        return f"{head} {verb}"

    subj = " and ".join(one(s) for s in scene.subjects)
    w = pick(HAND_WEATHER[scene.weather]) if scene.weather != "none" else ""
    pp, np_ = pick(SETTING_PP[scene.setting]), pick(SETTING_NP[scene.setting])
    text = pick(HAND_TEMPLATES).format(s=subj, pp=pp, Pp=pp[:1].upper() + pp[1:], w=w,
                                       Np=np_[:1].upper() + np_[1:])
    return " ".join(text.split())


def _check_seed(seed: int) -> None:
    if not 0 <= seed < 2**62:  # prompt i is generated with seed + i
        raise SoraUsageError(f"--seed must be a non-negative integer, got {seed}")


def eval_prompts(n: int = 100, seed: int = 0) -> list[str]:
    """The fixed evaluation set: `n` world prompts in free phrasings (the caption grammar and
    hand-written templates), one or two subjects, every setting, colour, shape, motion and
    speed, with rain and snow; no camera moves (they would confound the motion checks).
    Deterministic, and a prefix of any longer set with the same seed. Each prompt reads back
    (parse_prompt) as the scene it was made from."""
    from sora_cli.world.captions import make_caption
    from sora_cli.world.parse import PromptNotUnderstood, parse_prompt

    if n < 1:
        raise SoraUsageError(f"--n must be at least 1, got {n}")
    _check_seed(seed)
    out, counter = [], [0]
    for i in range(n):
        scene, rng = _eval_scene(seed, i, counter)
        want = scene.canonical()
        text = None
        for attempt in range(8):
            cand = _hand_prompt(scene, rng) if (attempt == 0 and rng.random() < P_HAND) \
                else make_caption(scene, rng)
            try:
                if parse_prompt(cand).canonical() == want:
                    text = cand
                    break
            except PromptNotUnderstood:
                continue
        out.append(text if text is not None else cand)
    return out


def read_prompts(path: str | os.PathLike) -> list[str]:
    """Prompts from a file ('-': stdin), one a line; blank lines and # comments skipped. A
    prompt that is not about the built-in world is named with its line number."""
    from sora_cli.guard import check_prompt
    from sora_cli.textfile import read_text_arg
    from sora_cli.world.parse import PromptNotUnderstood, parse_prompt

    text, name = read_text_arg(path, "prompts file", "one prompt a line")
    prompts = []
    for number, line in enumerate(text.splitlines(), 1):
        prompt = line.strip()
        if not prompt or prompt.startswith("#"):
            continue
        check_prompt(prompt, item=f"{name}:{number}")
        try:
            parse_prompt(prompt)
        except PromptNotUnderstood as exc:
            raise SoraError(f"{name}:{number}: {prompt!r} is not about the built-in world: {exc}")
        prompts.append(prompt)
    if not prompts:
        raise SoraError(f"no prompts in {name} (one prompt a line)")
    return prompts


# --- the evaluation --------------------------------------------------------------------------

def expected_scenes(prompts: list[str]) -> list:
    """What each prompt asks for, by the world's parser; one clear error for a prompt that
    is not about the built-in world."""
    from sora_cli.world.parse import PromptNotUnderstood, parse_prompt

    scenes = []
    for i, p in enumerate(prompts):
        try:
            scenes.append(parse_prompt(p))
        except PromptNotUnderstood as exc:
            raise SoraError(f"prompt {i + 1} ({p!r}) is not about the built-in world: {exc}")
    return scenes


def _fraction(values: list) -> float | None:
    done = [v for v in values if v is not None]
    return round(sum(done) / len(done), 4) if done else None


def summarize(results: list[dict]) -> dict:
    """Per-attribute accuracy, all checks together and the share of prompts fully right,
    overall and for one- and two-subject prompts; counts of checks not measurable."""
    def figures(rs: list[dict]) -> dict:
        out = {a: _fraction([v for r in rs for v in r["checks"][a]]) for a in ATTRIBUTES}
        out["all_checks"] = _fraction([v for r in rs for a in ATTRIBUTES for v in r["checks"][a]])
        out["fully_right"] = _fraction([r["fully_right"] for r in rs])
        out["prompts"] = len(rs)
        return out

    s = figures(results)
    s["one_subject"] = figures([r for r in results if len(r["subjects"]) <= 1])
    s["two_subjects"] = figures([r for r in results if len(r["subjects"]) == 2])
    s["measured"] = {a: sum(v is not None for r in results for v in r["checks"][a]) for a in ATTRIBUTES}
    s["not_measurable"] = {a: sum(v is None for r in results for v in r["checks"][a]) for a in ATTRIBUTES}
    return s


def _failed(result: dict) -> list[str]:
    out = [a for a in ("setting", "weather") if result[a] is False]
    for j, s in enumerate(result["subjects"], 1):
        out += [f"{a} {j}" for a in ("color", "shape", "motion") if s[a] is False]
    return out


def _thumbs(frames: np.ndarray, count: int = 4, width: int = 128) -> np.ndarray:
    """A few evenly spaced frames, shrunk by whole-pixel averaging for the contact sheet."""
    idx = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    f = frames[idx].astype(np.float32)
    k = max(1, frames.shape[2] // width)
    T, H, W, _ = f.shape
    f = f[:, :H // k * k, :W // k * k].reshape(T, H // k, k, W // k, k, 3).mean((2, 4))
    return (f + 0.5).astype(np.uint8)


def worst_sheet(path: str | os.PathLike, rows: list[tuple[int, float, np.ndarray]],
                overwrite: bool = True) -> Path:
    """A PNG with one row per clip: its prompt index and score, then its frames."""
    from sora_cli.inspection import draw_text, encode_png, text_width
    from sora_cli.video_io import atomic_output, check_output_path

    target = check_output_path(path, overwrite, suffixes=(".png",))
    if not rows:
        raise SoraError("no clips to put on the contact sheet")
    th, tw = rows[0][2].shape[1:3]
    cols = max(len(r[2]) for r in rows)
    scale, pad = 2, 4
    label_w = text_width("0000", scale) + 2 * pad
    sheet = np.full((pad + len(rows) * (th + pad), label_w + cols * (tw + pad) + pad, 3), 24, np.uint8)
    for r, (index, score, thumbs) in enumerate(rows):
        y = pad + r * (th + pad)
        draw_text(sheet, str(index), pad, y + 2, scale)
        draw_text(sheet, f"{score:.2f}", pad, y + 2 + 8 * scale, scale, color=(255, 120, 120))
        for c, t in enumerate(thumbs):
            x = label_w + c * (tw + pad)
            sheet[y:y + th, x:x + tw] = t[:th, :tw]
    with atomic_output(target, overwrite) as tmp:
        tmp.write_bytes(encode_png(sheet))
    return target


def _clip_scores(text_encoder, frames: np.ndarray, prompt: str, device: str) -> float:
    import torch

    from sora_cli.nn.text import clip_score

    idx = np.linspace(0, len(frames) - 1, min(4, len(frames))).round().astype(int)
    x = torch.from_numpy(np.ascontiguousarray(frames[idx])).to(device)
    x = x.permute(3, 0, 1, 2)[None].float() / 127.5 - 1.0
    return float(clip_score(text_encoder, x, [prompt])[0])


def evaluate(model: str = "default", n: int = 100, prompts: list[str] | None = None,
             seed: int = 0, duration: float = 2.0, out_dir: str | os.PathLike | None = None,
             device: str = "auto", *, reference_only: bool = False,
             sheet: str | os.PathLike | None = None, size: int | tuple[int, int] = 256,
             fps: float = 8.0, worst: int = 8, progress=None, literal: bool = False,
             overwrite: bool = False) -> dict:
    """Generate every prompt with `model` (seed + index), score the clips against their
    prompts, and score the world's reference renders of the same prompts at the same size,
    fps and length (the sanity line: about 1.0, or the checker is wrong). With a model, the
    same reference renders also go through its VAE and back ("autoencoded"): what a DiT that
    reproduced the VAE's own latents exactly would score, which tells a weak VAE from a weak DiT.

    `literal` conditions the model on every prompt as written (see sora_cli/prompt_reading).
    `reference_only` skips the model (size and fps then come from the arguments). `out_dir`
    keeps the generated clips as MP4 and the report as report.json; `sheet` writes a PNG of
    the `worst` clips; files of an earlier run there are replaced only with `overwrite`.
    Returns the report (see summarize for the figures).
    """
    from sora_cli.guard import check_prompts
    from sora_cli.world.render import frame_size, render_scene

    if duration <= 0 or duration > 60:
        raise SoraUsageError(f"--duration must be between 0 and 60 seconds, got {duration}")
    _check_seed(seed)
    prompts = list(prompts) if prompts is not None else eval_prompts(n, seed)
    if not prompts:
        raise SoraError("no prompts to evaluate")
    check_prompts(prompts)  # the policy holds for measurements too, before any model work
    scenes = expected_scenes(prompts)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        make_folder(out, "--out")
        if sheet is None:
            sheet = out / "worst.png"
        clips = [] if reference_only else [out / f"{i:04d}.mp4" for i in range(len(prompts))]
        earlier = [f for f in [out / "report.json", *clips] if f.exists()]
        if earlier and not overwrite:
            raise SoraError(f"{out} already holds an evaluation ({earlier[0].name}): use "
                            "--overwrite / -y to replace it, or another --out")
    if sheet is not None:  # a sheet that cannot be written fails now, not after every clip
        from sora_cli.video_io import check_output_path

        check_output_path(sheet, overwrite, suffixes=(".png",))

    pipe, clip_enc = None, None
    if not reference_only:
        from sora_cli.pipeline import VideoPipeline

        pipe = VideoPipeline.load(model, device)
        videos = pipe.bundle.config.videos_folder()
        if videos:
            from sora_cli import console

            console.warn(f"{model} was trained on the videos in {videos}, not on the built-in "
                         "world: these figures measure world prompts it has never seen")
        pipe.literal = literal
        fps = pipe.fps
        size = (pipe.height, pipe.width)
        enc = getattr(pipe.bundle, "text", None)
        clip_enc = enc if hasattr(enc, "clip") and hasattr(enc.clip, "encode_image") else None
    h, w = frame_size(size)
    frames_n = max(1, int(round(duration * fps)))

    gen_results, ref_results, ae_results, thumbs = [], [], [], {}
    clip_gen, clip_ref, jumps_gen, jumps_ref = [], [], [], []
    change_gen, change_ref = [], []
    for i, (prompt, scene) in enumerate(zip(prompts, scenes)):
        scene.seed = seed + i
        ref = render_scene(scene, (h, w), frames_n, fps)
        ref_results.append(score_clip(ref, fps, scene))
        if pipe is not None:
            frames = np.concatenate(list(pipe.generate(prompt, duration, seed=seed + i)))
            if frames.shape[0] != frames_n or frames.shape[1:3] != (h, w):
                ref = render_scene(scene, frames.shape[1:3], len(frames), fps)
                ref_results[-1] = score_clip(ref, fps, scene)
            gen_results.append(score_clip(frames, fps, scene))
            change_gen.append(frame_change(frames))
            change_ref.append(frame_change(ref))
            joins = window_joins(pipe, len(frames))
            if joins:
                jumps_gen.append(join_jump(frames, joins))
                jumps_ref.append(join_jump(ref, joins))
            ae_results.append(score_clip(_autoencode(pipe, scene, ref), fps, scene))
            thumbs[i] = _thumbs(frames)
            if clip_enc is not None:
                clip_gen.append(_clip_scores(clip_enc, frames, prompt, pipe.device))
                clip_ref.append(_clip_scores(clip_enc, ref, prompt, pipe.device))
            if out is not None:
                from sora_cli.video_io import write_video

                write_video(out / f"{i:04d}.mp4", frames, fps, overwrite=True)
        else:
            thumbs[i] = _thumbs(ref)
        if progress is not None:
            progress(1)

    main = gen_results if pipe is not None else ref_results
    order = sorted(range(len(main)), key=lambda i: (main[i]["score"] if main[i]["score"] is not None else 1.0, i))
    worst_rows = [{"index": i, "prompt": prompts[i], "score": round(main[i]["score"] or 0.0, 4),
                   "failed": _failed(main[i])} for i in order[:worst]]
    report = {
        "model": None if pipe is None else model,
        "prompts": len(prompts), "seed": seed, "duration": duration, "fps": fps,
        "width": w, "height": h, "frames": frames_n,
        "generated": summarize(gen_results) if pipe is not None else None,
        "reference": summarize(ref_results),
        "autoencoded": summarize(ae_results) if pipe is not None else None,
        "clip_score": ({"generated": round(float(np.mean(clip_gen)), 4),
                        "reference": round(float(np.mean(clip_ref)), 4)} if clip_gen else None),
        "window_joins": _pair_means(jumps_gen, jumps_ref),
        "frame_change": _pair_means(change_gen, change_ref),
        "worst": worst_rows,
        # prompts the model was conditioned on in other words (sora_cli/prompt_reading.py)
        "read_as": ({i: pipe.read(p).text for i, p in enumerate(prompts)
                     if pipe.read(p).rewritten} if pipe is not None else {}),
        "clips": [{"index": i, "prompt": p, **({"generated": _compact(g)} if g else {}),
                   "reference": _compact(r)}
                  for i, (p, g, r) in enumerate(zip(prompts, gen_results or [None] * len(prompts),
                                                    ref_results))],
        "sheet": None,
    }
    if sheet is not None:
        rows = [(r["index"], r["score"], thumbs[r["index"]]) for r in worst_rows]
        report["sheet"] = str(worst_sheet(sheet, rows))
    if out is not None:
        import json

        from sora_cli.video_io import atomic_output

        with atomic_output(out / "report.json", True) as tmp:
            tmp.write_text(json.dumps(report, indent=1, default=float) + "\n")
    return report


def window_joins(pipe, frames: int) -> list[int]:
    """Indices of the first frame of every window after the first, when `pipe` generates
    `frames` frames (the pipeline's own window plan)."""
    from sora_cli.pipeline import frames_of, latents_for

    windows = pipe._plan(0, [(None, latents_for(frames))], None)
    return [frames_of(start) for start, _, _ in windows[1:] if frames_of(start) < frames]


def frame_change(frames: np.ndarray) -> float | None:
    """Mean absolute change between consecutive frames, in 8-bit levels: flicker shows as a
    figure well above the reference renders' of the same scene. None for a single frame."""
    if len(frames) < 2:
        return None
    return float(np.abs(np.diff(frames.astype(np.float32), axis=0)).mean())


def join_jump(frames: np.ndarray, joins: list[int]) -> float | None:
    """How much more the picture changes across the window joins than between other frames:
    mean absolute frame difference at the joins over that at the rest (about 1 when the
    joins do not show), each plus one 8-bit level so that still scenes read 1, not 0/0.
    None without joins or without other frames to compare with."""
    d = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
    at = np.zeros(len(d), bool)
    at[[j - 1 for j in joins if 0 < j <= len(d)]] = True
    if not at.any() or at.all():
        return None
    return float((d[at].mean() + 1.0) / (d[~at].mean() + 1.0))


def _autoencode(pipe, scene, ref: np.ndarray) -> np.ndarray:
    """The reference clip through the model's VAE and back. The VAE takes 4k+1 frames, so a
    longer render is encoded and cut back to the reference's length."""
    from sora_cli.pipeline import frames_of, latents_for
    from sora_cli.world.render import render_scene

    n = len(ref)
    full = frames_of(latents_for(n))
    clip = ref if full == n else render_scene(scene, ref.shape[1:3], full, pipe.fps)
    z = pipe.encode_frames(clip)
    return np.concatenate(list(pipe.decode_latents(z, keep_frames=n)))


def _pair_means(gen: list, ref: list) -> dict | None:
    """Means of a per-clip figure over the clips where it was measured for both the generated
    clip and its reference (window joins, frame change)."""
    pairs = [(g, r) for g, r in zip(gen, ref) if g is not None and r is not None]
    if not pairs:
        return None
    return {"generated": round(float(np.mean([g for g, _ in pairs])), 3),
            "reference": round(float(np.mean([r for _, r in pairs])), 3), "clips": len(pairs)}


def _compact(result: dict) -> dict:
    """A clip's checks and main measurements, JSON-ready."""
    st = result["measured"]["setting"]
    return {"score": result["score"], "fully_right": result["fully_right"],
            "checks": result["checks"], "setting_seen": st["nearest"],
            "weather_seen": result["measured"]["weather"].get("seen"),
            "subjects": [{k: v for k, v in s.items() if k not in ("color", "shape", "motion")}
                         for s in result["subjects"]]}


def report_table(report: dict) -> list[str]:
    """The report's figures as a small plain-text table, one line per clip set."""
    names = ("setting", "colour", "shape", "motion", "weather", "all checks", "fully right")
    keys = ATTRIBUTES + ("all_checks", "fully_right")
    head = f"{'':<16}" + "".join(f"{n:>12}" for n in names) + f"{'prompts':>9}"
    lines = [head]

    def fmt(v):
        return f"{v:>12.3f}" if v is not None else f"{'-':>12}"

    def block(label: str, s: dict) -> None:
        for name, part in ((label, s), ("  one subject", s["one_subject"]),
                           ("  two subjects", s["two_subjects"])):
            lines.append(f"{name:<16}" + "".join(fmt(part[k]) for k in keys)
                         + f"{part['prompts']:>9}")

    if report["generated"] is not None:
        block(Path(str(report["model"])).name[:16], report["generated"])
    block("reference", report["reference"])
    if report.get("autoencoded") is not None:
        block("autoencoded", report["autoencoded"])
    main = report["generated"] or report["reference"]
    missing = {a: c for a, c in main["not_measurable"].items() if c}
    if missing:
        lines.append("not measurable (left out): " + ", ".join(f"{a} {c}" for a, c in missing.items()))
    if report["clip_score"]:
        cs = report["clip_score"]
        lines.append(f"CLIP score: model {cs['generated']:.3f}, reference {cs['reference']:.3f}")
    if report.get("read_as"):
        lines.append(f"read in the captions' words: {len(report['read_as'])} prompts (words the "
                     "model never learned; see read_as in --json)")
    wj = report.get("window_joins")
    if wj:
        lines.append(f"window joins: frames change x{wj['generated']:.2f} across a join against "
                     f"between other frames (reference renders x{wj['reference']:.2f})")
    fc = report.get("frame_change")
    if fc:
        lines.append(f"frame change: {fc['generated']:.2f} levels a frame against "
                     f"{fc['reference']:.2f} for reference renders (flicker when far above)")
    bad = [w for w in report["worst"] if w["score"] < 1]
    if bad:
        lines.append("worst: " + "; ".join(f"#{w['index']} {w['score']:.2f} ({', '.join(w['failed'])})"
                                           for w in bad[:5]))
    lines.append(f"{report['prompts']} prompts, {report['width']}x{report['height']} at "
                 f"{report['fps']:g} fps, {report['frames']} frames")
    if report["sheet"]:
        lines.append(f"sheet: {report['sheet']}")
    return lines
