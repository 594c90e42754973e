"""How a model reads a prompt: words it never learned, read back into words it did.

A bundle trained on the built-in world knows which tokens its captions used: the trained rows
of its token table (sora_cli/token_rows.py). Every other token reaches the DiT as an untrained
random vector, so "show me a red circle drifting left, please" conditions it partly on noise,
where "a red ball moves left" would not. When the world's parser reads such a prompt and the
prompt itself states what a caption states (the setting, each subject's colour), the model is
conditioned on the caption grammar's own sentence for that scene instead, the way large
text-to-video systems condition on prompts rewritten in their training captions' style.
A prompt in trained words, or one the parser cannot read in full, is used as written; so is
every prompt of a bundle not trained on the built-in world. The video's metadata records the
sentence used (`model_prompt`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

CANDIDATES = 10            # seeded caption phrasings tried for a scene
_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


@dataclass(frozen=True)
class Reading:
    prompt: str                    # as the user wrote it
    text: str                      # what the model is conditioned on
    unseen: tuple[str, ...] = ()   # the prompt's words with tokens the model never trained on

    @property
    def rewritten(self) -> bool:
        return self.text != self.prompt


def unseen_words(text: str, trained: frozenset[int], encode: Callable[[str], list[int]]) -> list[str]:
    """The words of `text` (lower case) whose BPE tokens include one outside `trained`."""
    return [w for w in _WORD.findall(text.lower()) if any(t not in trained for t in encode(w))]


def _count_unseen(text: str, trained: frozenset[int], encode) -> int:
    return sum(t not in trained for t in encode(text))


def world_caption(scene, trained: frozenset[int], encode) -> tuple[str, int] | None:
    """The caption grammar's sentence for `scene` with the fewest untrained tokens among
    CANDIDATES seeded phrasings that the parser reads back as `scene` (the first such, so a
    scene always reads the same way), and that count; None when no phrasing reads back."""
    import numpy as np

    from sora_cli.world.captions import make_caption
    from sora_cli.world.parse import PromptNotUnderstood, parse_prompt

    want = scene.canonical()
    best: tuple[str, int] | None = None
    for seed in range(CANDIDATES):
        text = make_caption(scene, np.random.default_rng(seed))
        try:
            if parse_prompt(text).canonical() != want:
                continue
        except PromptNotUnderstood:
            continue
        n = _count_unseen(text, trained, encode)
        if best is None or n < best[1]:
            best = (text, n)
        if n == 0:
            break
    return best


def read_prompt(prompt: str, trained: Iterable[int] | None,
                encode: Callable[[str], list[int]]) -> Reading:
    """What the model should be conditioned on for `prompt`. `trained`: the token ids the
    model's captions used (None: unknown, or not a built-in world model; the prompt is used
    as written). `encode`: the text tower's BPE (text -> token ids, no start/end tokens)."""
    from sora_cli.world.parse import PromptNotUnderstood, parse_stated

    if not trained or not prompt.strip():
        return Reading(prompt, prompt)
    trained = frozenset(trained)
    unseen = tuple(unseen_words(prompt, trained, encode))
    if not unseen:
        return Reading(prompt, prompt)
    try:
        scene, defaulted = parse_stated(prompt)
    except PromptNotUnderstood:
        return Reading(prompt, prompt, unseen)
    if defaulted:  # rewriting would add what the user left open ("a ball" -> "a red ball")
        return Reading(prompt, prompt, unseen)
    best = world_caption(scene, trained, encode)
    if best is None or best[1] >= _count_unseen(prompt, trained, encode):
        return Reading(prompt, prompt, unseen)
    return Reading(prompt, best[0], unseen)


def beyond_context(text: str, context_length: int, encode: Callable[[str], list[int]]) -> str:
    """The end of `text` the text tower never reads ('' when all of it fits): its context
    holds `context_length` tokens, two of them the start and end marks."""
    room = context_length - 2
    if len(encode(text)) <= room:
        return ""
    words = text.split()
    lo, hi = 0, len(words)  # the most leading words that fit: lo fits, hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if len(encode(" ".join(words[:mid]))) <= room else (lo, mid)
    return " ".join(words[lo:])
