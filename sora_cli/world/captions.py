"""The caption grammar: many templates and synonyms, free word order, always true of the scene.

Every caption states the scene's setting and each subject's colour, shape and motion (a still
subject may be left without a verb), a size unless it is medium, a speed unless normal, and
the weather and camera unless none; so `parse_prompt(make_caption(s))` gives back `s`.
"""

from __future__ import annotations

import numpy as np

from sora_cli.world.scene import Scene, Subject
from sora_cli.world.words import (CAMERA_PHRASES, CAMERA_SENTENCES, COLOR_WORDS,
                                  DIRECTION_PHRASES, MOTION_PHRASES, SETTING_NP, SETTING_PP,
                                  SHAPE_NOUNS, SIZE_WORDS, SPEED_WORDS, TRAVEL_FOR_SHAPE,
                                  TRAVEL_VERBS, WEATHER_PHRASES, plural_verb)

_VERB_FORMS = {v[0]: v for v in TRAVEL_VERBS}
_MOTION_PREPS = ("through", "across", "along", "down")


class _Pick:
    def __init__(self, rng):
        self.rng = rng

    def __call__(self, options):
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _noun_phrase(s: Subject, pick: _Pick, count: int = 1, pre_motion: str | None = None) -> str:
    """'a small red ball', 'two big blue boxes', 'a spinning yellow star'."""
    singular, plural = pick(SHAPE_NOUNS[s.shape])
    words = []
    if s.speed != "normal" and pre_motion:
        words.append(pick(["slowly", "gently"] if s.speed == "slow" else ["quickly", "rapidly"]))
    if pre_motion:
        words.append(pre_motion)
    if s.size != "medium":
        words.append(pick(SIZE_WORDS[s.size]))
    words.append(pick(COLOR_WORDS[s.color]))
    words.append(singular if count == 1 else plural)
    head = " ".join(words)
    if count == 2:
        return pick(["two", "two", "a pair of"]) + " " + head
    return f"{_article(head)} {head}"


def _speed_around(s: Subject, verb: str, pick: _Pick) -> str:
    if s.speed == "normal":
        return verb
    adv = pick(SPEED_WORDS[s.speed])
    if adv in ("slow", "fast") or pick.chance(0.5):
        return f"{verb} {adv}"
    return f"{adv} {verb}"


def _verb_phrase(s: Subject, pick: _Pick, form: str, plural: bool = False) -> str:
    """The motion after the noun: 'bounces', 'is flying to the left', 'drifting slowly up'."""
    if s.motion in ("left", "right"):
        base, third, ing = _VERB_FORMS[pick(TRAVEL_FOR_SHAPE[s.shape])]
        verb = ing if form == "ing" else (base if plural else third)
        vp = _speed_around(s, verb, pick) + " " + pick(DIRECTION_PHRASES[s.motion])
    else:
        options = MOTION_PHRASES[s.motion]["ing" if form == "ing" else "finite"]
        verb = pick(options)
        if form != "ing" and plural:
            verb = plural_verb(verb)
        vp = verb if s.motion == "still" else _speed_around(s, verb, pick)
    return vp


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _finish(text: str, pick: _Pick) -> str:
    text = " ".join(text.split())
    if pick.chance(0.5):
        text = _cap(text)
    if pick.chance(0.4) and not text.endswith("."):
        text += "."
    return text


def _subject_clause(s: Subject, pick: _Pick, count: int = 1,
                    forms: tuple[str, ...] = ("bare", "pre", "ing", "finite", "is")) -> str:
    """A subject with its motion, in one of the allowed forms:
    bare 'a red ball' (still only), pre 'a bouncing red ball', ing 'a red ball bouncing',
    finite 'a red ball bounces', is 'a red ball is bouncing'."""
    if s.motion == "still" and "bare" in forms and pick.chance(0.35):
        return _noun_phrase(s, pick, count)
    pre = MOTION_PHRASES[s.motion]["pre"] if s.motion not in ("left", "right") else None
    if pre and count == 1 and "pre" in forms and pick.chance(0.2):
        return _noun_phrase(s, pick, count, pre_motion=pick(pre))
    form = pick([f for f in forms if f in ("ing", "finite", "is")])
    if form == "is":
        be = "is" if count == 1 else "are"
        return f"{_noun_phrase(s, pick, count)} {be} {_verb_phrase(s, pick, 'ing')}"
    return f"{_noun_phrase(s, pick, count)} {_verb_phrase(s, pick, form, plural=count > 1)}"


def _extras(scene: Scene, pick: _Pick) -> tuple[str, str]:
    weather = pick(WEATHER_PHRASES[scene.weather]) if scene.weather != "none" else ""
    camera = pick(CAMERA_PHRASES[scene.camera]) if scene.camera != "none" else ""
    return weather, camera


def _tail(weather: str, camera: str, pick: _Pick) -> str:
    parts = [p for p in (weather, camera) if p]
    if len(parts) == 2 and pick.chance(0.5):
        parts.reverse()
    out = ""
    for p in parts:
        bare_camera = p in ("panning left", "panning right", "zooming in", "zooming out") or \
            p.startswith("the camera")
        out += (", " if bare_camera or pick.chance(0.3) else " ") + p
    return out


def _subjects_text(scene: Scene, pick: _Pick, nominal: bool = False) -> str:
    """The subjects and their motions. `nominal`: the text follows 'there is' / 'a video of',
    so only noun-like forms fit ('a red ball bouncing', 'a bouncing red ball')."""
    subs = scene.subjects
    all_forms = ("bare", "pre", "ing") if nominal else ("bare", "pre", "ing", "finite", "is")
    if len(subs) == 1:
        return _subject_clause(subs[0], pick, forms=all_forms)
    a, b = subs
    if a.canonical() == b.canonical() and pick.chance(0.7):
        return _subject_clause(a, pick, count=2, forms=("bare", "ing") if nominal else
                               ("bare", "ing", "finite", "is"))
    if a.motion == b.motion and a.speed == b.speed and a.motion != "still" and pick.chance(0.3):
        both = f"{_noun_phrase(a, pick)} and {_noun_phrase(b, pick)}"
        vp = _verb_phrase(a, pick, "ing" if nominal else pick(["ing", "finite"]), plural=True)
        return f"{both} {pick(['', 'both '])}{vp}"
    if nominal:
        joint, first, second = pick([" and ", ", and "]), ("ing",), ("bare", "pre", "ing")
    else:
        joint = pick([" and ", " while ", ", and ", " as ", " and ", ", while "])
        if "and" in joint:
            form = pick(["ing", "finite", "is"])
            first, second = (form,), ("bare", form)
        else:
            first, second = ("ing", "finite", "is"), ("finite", "is")
    return _subject_clause(a, pick, forms=first) + joint + _subject_clause(b, pick, forms=second)


def make_caption(scene: Scene, rng: int | np.random.Generator | None = None) -> str:
    """One caption of `scene`, drawn from the grammar with `rng` (a seed or a Generator)."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    pick = _Pick(rng)
    weather, camera = _extras(scene, pick)
    pp = pick(SETTING_PP[scene.setting])
    if not scene.subjects:
        np_ = pick(SETTING_NP[scene.setting])
        style = int(rng.integers(4))
        if style == 0:
            text = f"{pick(['', 'an empty view of ', 'a view of ', 'a quiet scene of '])}{np_}"
        elif style == 1:
            text = f"{pick(['nothing but ', 'just ', 'only '])}{np_}"
        elif style == 2:
            text = f"{pick(['an empty scene', 'an empty landscape', 'a view'])} {pp}"
        else:
            text = f"{pick(['a video of ', 'a clip of ', ''])}{np_}"
        return _finish(text + _tail(weather, camera, pick), pick)

    subj = _subjects_text(scene, pick)
    if all(s.motion == "still" for s in scene.subjects):
        pp = pick([p for p in SETTING_PP[scene.setting] if p.split()[0] not in _MOTION_PREPS])
    style = int(rng.integers(8))
    if style == 0:      # subject first, then where
        text = f"{subj} {pp}{_tail(weather, camera, pick)}"
    elif style == 1:    # where first
        text = f"{_cap(pp)}, {subj}{_tail(weather, camera, pick)}"
    elif style == 2:    # there is ...
        lead = pick(['there is', 'we see', 'you can see', 'a video of', 'a clip of',
                     'footage of', 'an animation of'])
        if lead == "there is" and len(scene.subjects) == 2:
            lead = "there are"
        text = f"{lead} {_subjects_text(scene, pick, nominal=True)} {pp}{_tail(weather, camera, pick)}"
    elif style == 3 and len(scene.subjects) == 1:   # "a red ball on a beach, bouncing"
        s = scene.subjects[0]
        text = (f"{_noun_phrase(s, pick)} {pp}{pick([', ', ' '])}{_verb_phrase(s, pick, 'ing')}"
                f"{_tail(weather, camera, pick)}")
    elif style == 4 and (weather or camera):   # conditions first
        lead = weather or camera
        rest = camera if weather else ""
        text = f"{_cap(lead)}, {subj} {pp}{_tail('', rest, pick)}"
    elif style == 5:    # setting as a title
        text = f"{_cap(pick(SETTING_NP[scene.setting]))}: {subj}{_tail(weather, camera, pick)}"
    elif style == 6 and camera:   # camera as its own sentence
        sentence = pick(CAMERA_SENTENCES[scene.camera])
        text = f"{_cap(subj)} {pp}{_tail(weather, '', pick)}. {sentence}"
        return " ".join(text.split())
    else:
        text = f"{subj} {pp}{_tail(weather, camera, pick)}"
    return _finish(text, pick)
