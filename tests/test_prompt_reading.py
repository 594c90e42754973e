"""Prompt reading: a built-in world model conditions on its captions' words for prompts in
words it never learned, and only when the world's parser reads them in full."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sora_cli.prompt_reading import beyond_context, read_prompt, unseen_words
from sora_cli.video_io import probe
from sora_cli.world.parse import parse_prompt

from test_generate import FAST, env1  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def bpe():
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer().encode


@pytest.fixture(scope="module")
def world_tokens(bpe):
    """What a world model's token table has trained rows for: its captions' tokens."""
    from sora_cli.world.sampler import clip_caption, clip_scene

    ids = set()
    for i in range(3000):
        ids.update(bpe(clip_caption(0, i, clip_scene(0, i))))
    return frozenset(ids)


def test_prompt_in_caption_words_is_used_as_written(bpe, world_tokens):
    for prompt in ("a red ball bouncing on a beach", "A small yellow star falls through outer space.",
                   "a purple car drives left down a city street at night while it snows"):
        r = read_prompt(prompt, world_tokens, bpe)
        assert r.text == prompt and not r.rewritten and r.unseen == ()


def test_unlearned_words_are_read_in_caption_words(bpe, world_tokens):
    prompt = "show me a red circle drifting left on a beach, please"
    r = read_prompt(prompt, world_tokens, bpe)
    assert r.rewritten and set(r.unseen) == {"show", "me", "circle", "please"}
    assert unseen_words(r.text, world_tokens, bpe) == []
    assert parse_prompt(r.text).canonical() == parse_prompt(prompt).canonical()
    assert read_prompt(prompt, world_tokens, bpe) == r          # the same reading every time
    two = read_prompt("a giant cyan sphere twirling and a tiny brown jet rising in the desert",
                      world_tokens, bpe)
    assert two.rewritten and len(parse_prompt(two.text).subjects) == 2
    assert parse_prompt(two.text).canonical() == parse_prompt(two.prompt).canonical()


@pytest.mark.parametrize("prompt", [
    "a ball bouncing on a beach, please",        # no colour: a caption would have to invent one
    "show me a red ball bouncing",               # no setting
    "a cinematic shot of a dog",                 # not about the built-in world
    "a magenta circle on a beach",               # a colour the world does not have
])
def test_prompts_the_parser_cannot_read_in_full_are_kept(bpe, world_tokens, prompt):
    r = read_prompt(prompt, world_tokens, bpe)
    assert r.text == prompt and r.unseen                          # said, but kept


def test_no_trained_vocabulary_means_no_reading(bpe):
    r = read_prompt("show me a red circle drifting left on a beach", None, bpe)
    assert r.text == r.prompt and r.unseen == ()


def test_generate_records_the_reading_and_literal_keeps_the_prompt(sora, tiny_bundle, tmp_path,
                                                                   env1):  # noqa: F811
    config = json.loads((tiny_bundle / "config.json").read_text())
    assert config["vocabulary"] == "world"                 # exported from a world-trained run
    prompt = "show me a red ball bouncing on a beach, please"
    r = sora("generate", prompt, "-o", tmp_path / "read.mp4", "--model", tiny_bundle,
             "--duration", "1", "--seed", "1", *FAST, env=env1)
    assert r.returncode == 0, r.stderr
    s = probe(tmp_path / "read.mp4").sora
    assert s["prompt"] == prompt and s["model_prompt"] != prompt
    assert f"reading {prompt!r} as {s['model_prompt']!r}" in " ".join(r.stderr.split())
    assert parse_prompt(s["model_prompt"]).canonical() == parse_prompt(prompt).canonical()
    lit = sora("generate", prompt, "-o", tmp_path / "literal.mp4", "--model", tiny_bundle,
               "--duration", "1", "--seed", "1", "--literal", *FAST, env=env1)
    assert lit.returncode == 0, lit.stderr
    assert "model_prompt" not in probe(tmp_path / "literal.mp4").sora and "reading" not in lit.stderr
    from sora_cli.video_io import read_video

    a, b = (read_video(tmp_path / n).frames for n in ("read.mp4", "literal.mp4"))
    assert not np.array_equal(a, b)                        # conditioned on other words


def test_generate_warns_of_words_the_model_never_learned(sora, tiny_bundle, tmp_path,
                                                         env1):  # noqa: F811
    prompt = "a purple elephant juggling in a kitchen"    # the parser cannot read it: kept
    r = sora("generate", prompt, "-o", tmp_path / "e.mp4", "--model", tiny_bundle,
             "--duration", "1", "--seed", "1", "-q", *FAST, env=env1)
    assert r.returncode == 0 and (tmp_path / "e.mp4").exists(), r.stderr
    said = " ".join(r.stderr.split())                     # shown even with --quiet
    assert said.startswith("warning: the model never learned the words 'elephant', "
                           "'juggling', 'kitchen'")
    assert "cannot draw them" in said and "sora world vocab" in said and "model_prompt" not in probe(tmp_path / "e.mp4").sora
    long = "a red ball bouncing on a beach " + "and a blue ball spinning " * 8
    r = sora("generate", long, "-o", tmp_path / "l.mp4", "--model", tiny_bundle, "--literal",
             "--duration", "1", "-q", *FAST, env=env1)
    assert r.returncode == 0 and "the prompt is longer than the model reads" in r.stderr
    assert "put what matters first" in " ".join(r.stderr.split()), r.stderr
    r = sora("generate", "a blue cube in a forest", "-o", tmp_path / "f.mp4", "--model",
             tiny_bundle, "--duration", "1", "--num", "2", "-n", "blurry, low quality", "-q",
             *FAST, env=env1)
    said = " ".join(r.stderr.split())
    assert "never learned the word 'forest' (in" in said and "cannot draw it;" in said, said
    assert "never learned the words 'blurry', 'low', 'quality' of the negative prompt and " \
        "cannot steer away from them" in said, said
    assert said.count("'forest'") == 1 and said.count("'blurry'") == 1   # once, not per video
    known = sora("generate", "a red ball bouncing on a beach", "-o", tmp_path / "k.mp4",
                 "--model", tiny_bundle, "--duration", "1", "-q", *FAST, env=env1)
    assert known.returncode == 0 and "never learned" not in known.stderr, known.stderr


def test_the_end_a_text_tower_cannot_hold_is_found_word_by_word(bpe):
    short = "a red ball bouncing on a beach"
    assert beyond_context(short, 32, bpe) == ""
    long = short + " while " + " and ".join(["a tiny purple star spinning fast"] * 6)
    cut = beyond_context(long, 32, bpe)
    assert cut and long.endswith(cut)
    kept = long[: len(long) - len(cut)].strip()
    assert len(bpe(kept)) <= 30 < len(bpe(kept + " " + cut.split()[0]))


def test_eval_reports_which_prompts_it_read_in_other_words(tiny_bundle):
    from sora_cli.evaluate import evaluate

    prompts = ["a ball", "show me a red ball bouncing on a beach, please"]   # "a ball": no colour
    report = evaluate(str(tiny_bundle), prompts=prompts, duration=1.0, device="cpu")
    assert list(report["read_as"]) == [1]
    assert parse_prompt(report["read_as"][1]).canonical() == parse_prompt(prompts[1]).canonical()
