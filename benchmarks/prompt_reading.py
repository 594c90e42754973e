"""Prompt reading, measured: the same world scenes asked for in words the model's captions never
used, generated once as written (`--literal`) and once read in the captions' words (the
default), both scored by `sora eval`'s checker.

    python benchmarks/prompt_reading.py                  # models/default, 60 prompts
    python benchmarks/prompt_reading.py --n 20 --write prompts.txt

The prompts are eval scenes (seed 1000, a set no other figure uses) phrased with the parser's
extra words (EXTRA_* in sora_cli/world/words.py: "sphere", "jet", "swiftly", "twirls",
"snowfield", "blizzard", ...) and framings ("show me ...", "..., please"); each reads back as
its scene and has at least one word whose tokens the model never trained on. Every figure is
measured in this run.
"""

from __future__ import annotations

import argparse
import time

FRAMES = ["{s} {pp}{w}", "show me {s} {pp}{w}", "{s} {pp}{w}, please", "a video of {s} {pp}{w}",
          "I would like to see {s} {pp}{w}", "{s} {pp}{w}, cinematic", "{s} {pp}{w}"]


def _subject(s, rng) -> str:
    from sora_cli.world import words as W

    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    nouns = [n for n, _ in W.SHAPE_NOUNS[s.shape]] + [n for n, _ in W.EXTRA_SHAPE_NOUNS.get(s.shape, [])]
    sizes = {k: W.SIZE_WORDS[k] + W.EXTRA_SIZE_WORDS[k] for k in ("small", "large")}
    words = [pick(sizes[s.size])] if s.size != "medium" else []
    noun = " ".join(words + [pick(W.COLOR_WORDS[s.color]), pick(nouns)])
    head = f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
    if s.motion in ("left", "right"):
        travel = W.EXTRA_TRAVEL + [v[2] for v in W.TRAVEL_VERBS]
        verb = f"{pick(travel)} {pick(W.DIRECTION_PHRASES[s.motion])}"
    else:
        verb = pick(W.MOTION_PHRASES[s.motion]["ing"] + W.EXTRA_MOTION[s.motion])
    if s.speed != "normal":
        verb += " " + pick(W.SPEED_WORDS[s.speed] + W.EXTRA_SPEED_WORDS[s.speed])
    return f"{head} {verb}"


def unlearned_prompts(n: int, trained: frozenset[int], encode, seed: int = 1000) -> list[str]:
    """`n` prompts in words the model never learned, each reading back as its eval scene."""
    from sora_cli.evaluate import _eval_scene
    from sora_cli.prompt_reading import unseen_words
    from sora_cli.world import words as W
    from sora_cli.world.parse import PromptNotUnderstood, parse_prompt

    out, counter, i = [], [0], 0
    while len(out) < n and i < 50 * n:
        scene, rng = _eval_scene(seed, i, counter)
        i += 1
        want = scene.canonical()
        subj = " and ".join(_subject(s, rng) for s in scene.subjects)
        pp = ("in " + str(rng.choice(W.SETTING_KEYWORDS[scene.setting])) if rng.random() < 0.5
              else str(rng.choice(W.SETTING_PP[scene.setting])))
        w = ""
        if scene.weather != "none":
            single = [k for k in W.WEATHER_KEYWORDS[scene.weather] if " " not in k]
            w = " in the " + str(rng.choice(single))
        text = str(rng.choice(FRAMES)).format(s=subj, pp=pp, w=w)
        try:
            if parse_prompt(text).canonical() != want:
                continue
        except PromptNotUnderstood:
            continue
        if unseen_words(text, trained, encode):
            out.append(text)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--n", type=int, default=60)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--write", default=None, help="also write the prompts to this file")
    args = ap.parse_args()

    from sora_cli import console
    from sora_cli.bundle import load_bundle
    from sora_cli.evaluate import evaluate

    console.set_quiet(True)
    b = load_bundle(args.model)
    if not b.trained_tokens:
        raise SystemExit(f"error: {args.model} has no trained vocabulary (not a built-in world "
                         "bundle with a compact token table): nothing to read")
    prompts = unlearned_prompts(args.n, b.trained_tokens, b.text.clip.tokenizer.encode)
    if args.write:
        with open(args.write, "w", encoding="utf-8") as fh:
            fh.write("\n".join(prompts) + "\n")
    print(f"model {args.model}: {len(b.trained_tokens)} trained tokens; {len(prompts)} prompts "
          f"in words it never learned, e.g. {prompts[0]!r}")
    keys = ("setting", "color", "shape", "motion", "weather", "all_checks", "fully_right")
    print(f"{'':<10}" + "".join(f"{k:>12}" for k in keys) + f"{'read':>6}{'s':>7}")
    rows = {}
    for name, literal in (("literal", True), ("read", False)):
        t0 = time.perf_counter()
        r = evaluate(args.model, prompts=prompts, device=args.device, literal=literal)
        g = rows[name] = r["generated"]
        print(f"{name:<10}" + "".join(f"{g[k]:>12.3f}" for k in keys)
              + f"{len(r['read_as']):>6}{time.perf_counter() - t0:>7.0f}", flush=True)
    a, b_ = rows["literal"]["all_checks"], rows["read"]["all_checks"]
    print(f"all checks read / literal: {b_ / a:.3f} ({b_ - a:+.3f})")


if __name__ == "__main__":
    main()
