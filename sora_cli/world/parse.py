"""The prompt parser: free English about the built-in world -> a Scene.

It inverts every caption the grammar writes and reads ordinary phrasings ("A small yellow star
falls through outer space.", "two red balls", "while it snows"). Words are matched as phrases
(longest first) into categories; subjects are noun phrases `[count] [size] colour shape`, and
motion, direction and speed words attach to the subject they are next to.

Defaults for what a prompt leaves unsaid: setting `field` (a grass field on a sunny day),
size medium, speed normal, weather none, camera none, colour red; a subject with no motion word
is still; a travel verb without a direction ("a car driving") goes right.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sora_cli.errors import SoraError
from sora_cli.world.scene import DEFAULT_COLOR, DEFAULT_SETTING, OUTDOOR, Scene, Subject
from sora_cli.world.words import (CAMERA_PHRASES, COLOR_WORDS, EXTRA_MOTION, EXTRA_SHAPE_NOUNS,
                                  EXTRA_SIZE_WORDS, EXTRA_SPEED_WORDS, EXTRA_TRAVEL,
                                  MOTION_PHRASES, SETTING_KEYWORDS, SHAPE_NOUNS, SIZE_WORDS,
                                  SPEED_WORDS, TRAVEL_VERBS, WEATHER_KEYWORDS, camera_keywords,
                                  plural_verb)


class PromptNotUnderstood(SoraError):
    """The prompt cannot be read as a scene of the built-in world; `.unknown` lists the words
    that were not understood."""

    def __init__(self, message: str, unknown: list[str] | None = None):
        super().__init__(message)
        self.unknown = list(unknown or [])


# Settings named twice ("a city at night"): the more specific one wins.
SETTING_PRIORITY = ("underwater", "space", "city", "snow", "sunset", "night", "desert",
                    "ocean", "field")
# Setting words that are adjectives: they name the place only when no setting noun does
# ("a sandy beach" and "a sandy red ball on a beach" are at the ocean, "a sunny day" a field).
SETTING_ADJECTIVES = {"sandy", "grassy", "sunny"}
CONJUNCTIONS = {"and", "while", "whilst", "as", "with", "then", "plus", "meanwhile", ".", ";",
                "but", "where", "alongside", "beside", "next", "near", "past"}
FILLER = set("""
a an the one single lone on in into onto over across through throughout above below beneath
under at by of off from to toward towards along around about beside behind between within upon
is are was were be being been it its itself they them their there here this that these those
which who whom whose what when then also too very really quite slightly somewhat just all some
each other another both together video clip scene shot footage film movie animation animated
image picture showing shows show shown depicting depicts featuring features view viewed seen
see we you can could watch watching look looking appears appear frame screen background
foreground sky clouds cloud sun sunlight sunshine moon day daytime bright clear beautiful nice
pretty cute happy shiny colorful colourful cartoon simple flat quiet empty calm peaceful open
wide vast dark light pale vivid round tall short wooden plastic toy paper lit busy cloudy windy
gentle glowing lonely solitary smoothly gracefully happily continuously constantly repeatedly
again back forth way side edge corner middle center centre top bottom distance horizon surface
high low far nearby close closer shining twinkling starry full filled nothing but only just
lights windows buildings bubbles landscape world scenery setting place area time scene:
while during for has have having with without it's theres there's same slightly bit little's
up-and-down around sits let lets some few many several own our your my his her its
away off onward forward along
""".split()) | {",", ":", "!", "?", "'", '"', "-"}
BACKGROUND_STARS = ("with stars", "full of stars", "and stars", "among the stars", "of stars",
                    "stars shining", "twinkling stars", "many stars", "starry sky")
NUMBERS = {"one": 1, "1": 1, "a single": 1, "single": 1, "two": 2, "2": 2, "a pair of": 2,
           "pair of": 2, "a couple of": 2, "couple of": 2, "twin": 2, "three": 3, "3": 3,
           "four": 4, "4": 4, "five": 5, "5": 5, "several": 3, "many": 3, "some": 3}


def _build_lexicon() -> dict[tuple[str, ...], tuple[str, object]]:
    lex: dict[tuple[str, ...], tuple[str, object]] = {}

    def add(phrase: str, cat: str, value) -> None:
        key = tuple(_tokens(phrase))
        if key and key not in lex:
            lex[key] = (cat, value)

    for w in FILLER:
        add(w, "filler", None)
    lex[(",",)] = ("comma", None)
    for w in CONJUNCTIONS:
        lex[(w,)] = ("conj", w)
    for phrase in BACKGROUND_STARS:
        lex[tuple(_tokens(phrase))] = ("filler", None)
    for canon, nouns in list(SHAPE_NOUNS.items()) + list(EXTRA_SHAPE_NOUNS.items()):
        for sing, plur in nouns:
            add(sing, "shape", (canon, 1))
            if plur != sing:
                add(plur, "shape", (canon, 2))
    for canon, words in COLOR_WORDS.items():
        for w in words:
            add(w, "color", canon)
    for table in (SIZE_WORDS, EXTRA_SIZE_WORDS):
        for canon, words in table.items():
            for w in words:
                add(w, "size", canon)
    for table in (SPEED_WORDS, EXTRA_SPEED_WORDS):
        for canon, words in table.items():
            for w in words:
                add(w, "speed", canon)
    for canon, forms in MOTION_PHRASES.items():
        for group in forms.values():
            for w in group:
                lex[tuple(_tokens(w))] = ("motion", canon)
        for w in forms["finite"]:
            lex[tuple(_tokens(plural_verb(w)))] = ("motion", canon)
    for canon, words in EXTRA_MOTION.items():
        for w in words:
            lex[tuple(_tokens(w))] = ("motion", canon)
    for forms in TRAVEL_VERBS:
        for w in forms:
            lex[(w,)] = ("travel", None)
    for w in EXTRA_TRAVEL:
        lex[(w,)] = ("travel", None)
    for d in ("left", "right", "up", "down"):
        for w in (d, d + "ward", d + "wards", "to the " + d, "towards the " + d,
                  "toward the " + d, "to the " + d + " side", "off to the " + d):
            lex[tuple(_tokens(w))] = ("dir", d)
    for a, b in (("left", "right"), ("right", "left")):
        for w in (f"from {a} to {b}", f"{a} to {b}", f"from the {a} to the {b}"):
            lex[tuple(_tokens(w))] = ("dir", b)
    lex[("upwardly",)] = ("dir", "up")
    for canon, words in SETTING_KEYWORDS.items():
        for w in words:
            lex[tuple(_tokens(w))] = ("setting", canon)
    for canon, words in WEATHER_KEYWORDS.items():
        for w in words:
            lex[tuple(_tokens(w))] = ("weather", canon)
    for canon, words in camera_keywords().items():
        for w in words + CAMERA_PHRASES[canon]:
            lex[tuple(_tokens(w))] = ("camera", canon)
    lex[("camera",)] = ("filler", None)
    for w, n in NUMBERS.items():
        lex[tuple(_tokens(w))] = ("count", n)
    return lex


_TOKEN = re.compile(r"[a-z0-9]+|[.,;:!?]")


def _tokens(text: str) -> list[str]:
    text = text.lower().replace("’", "'").replace("'s ", " ").replace("n't", "nt")
    text = text.replace("'", "").replace("-", " ")
    return _TOKEN.findall(text)


_LEX: dict | None = None
_MAXLEN = 1


def _lexicon() -> dict:
    global _LEX, _MAXLEN
    if _LEX is None:
        _LEX = _build_lexicon()
        _MAXLEN = max(len(k) for k in _LEX)
    return _LEX


@dataclass
class _Item:
    cat: str
    value: object
    text: str


def _scan(text: str) -> list[_Item]:
    """Longest-match phrases -> items; unknown words become category 'unknown'."""
    lex = _lexicon()
    toks = _tokens(text)
    items: list[_Item] = []
    i = 0
    while i < len(toks):
        # "down a city street", "up the road": a preposition, not a motion.
        if toks[i] in ("down", "up") and i + 2 < len(toks) and toks[i + 1] in ("a", "the"):
            nxt = lex.get((toks[i + 2],)) or lex.get(tuple(toks[i + 2:i + 4]))
            if nxt and nxt[0] == "setting":
                items.append(_Item("filler", None, toks[i]))
                i += 1
                continue
        for n in range(min(_MAXLEN, len(toks) - i), 0, -1):
            hit = lex.get(tuple(toks[i:i + n]))
            if hit is not None:
                items.append(_Item(hit[0], hit[1], " ".join(toks[i:i + n])))
                i += n
                break
        else:
            items.append(_Item("unknown", None, toks[i]))
            i += 1
    return items


@dataclass
class _Group:
    """A noun phrase and what attaches to it; count 2 for 'two red balls'."""
    count: int = 1
    size: str | None = None
    color: str | None = None
    shape: str | None = None
    speed: str | None = None
    motions: list = field(default_factory=list)
    dirs: list = field(default_factory=list)
    travel: bool = False
    share_next: bool = False   # "a red ball and a blue star spinning": both spin
    unknown_before: str | None = None

    def has_motion(self) -> bool:
        return bool(self.motions or self.dirs or self.travel)

    def take(self, item: _Item) -> None:
        if item.cat == "motion":
            self.motions.append(item.value)
        elif item.cat == "dir":
            self.dirs.append(item.value)
        elif item.cat == "travel":
            self.travel = True
        elif item.cat == "speed":
            self.speed = item.value

    def merge(self, other: "_Group") -> None:
        self.motions = other.motions + self.motions
        self.dirs = other.dirs + self.dirs
        self.travel = self.travel or other.travel
        self.speed = self.speed or other.speed

    def motion(self) -> tuple[str, int]:
        """(canonical motion, heading) from the words gathered."""
        m = self.motions[-1] if self.motions else None
        d = self.dirs[-1] if self.dirs else None
        heading = {"left": -1, "right": 1}.get(d, 0)
        if m in ("bounce", "spin", "grow", "shrink"):
            return m, heading
        if d is not None:
            return d, heading
        if m is not None:
            return m, 0
        return ("right", 1) if self.travel else ("still", 0)


def unknown_words(text: str) -> list[str]:
    """The words of `text` the parser does not know (they are ignored by parse_prompt)."""
    return [it.text for it in _scan(text) if it.cat == "unknown"]


def parse_prompt(text: str, strict: bool = False) -> Scene:
    """Read a prompt about the built-in world into a Scene (canonical fields; layout left to
    the renderer). Unknown words are ignored unless `strict`, or unless they leave a subject
    without its colour ("a magenta ball"); then PromptNotUnderstood lists them."""
    return parse_stated(text, strict)[0]


def parse_stated(text: str, strict: bool = False) -> tuple[Scene, list[str]]:
    """parse_prompt's Scene, and what in it the prompt did not say but a default filled in
    ("setting", "colour of the ball"): sizes, speeds, weather and camera are never listed,
    since a caption leaves them out at their defaults too."""
    scene, defaulted, _named = _parse(text, strict)
    return scene, defaulted


# Settings that, named beside the one a scene shows, are part of what it shows: a city is at
# night, underwater is in the ocean, a snowy field and a sunset or night sky over a field are
# still fields. Naming one of these pairs loses nothing, so prompt_notes says nothing of it.
IMPLIED_SETTINGS = {("city", "night"), ("underwater", "ocean"), ("snow", "field"),
                    ("sunset", "field"), ("night", "field"), ("space", "night")}


def prompt_notes(text: str) -> list[str]:
    """Warnings for what a prompt names that its scene leaves out (parse_prompt does not
    change): a second setting, weather or camera move (a scene has one of each), weather where
    the setting has none (underwater, space). [] when there is none, or when the prompt is
    not read as a scene."""
    try:
        scene, _defaulted, (settings, weathers, cameras) = _parse(text)
    except PromptNotUnderstood:
        return []
    notes = []
    words: dict[str, str] = {}   # the first words naming each setting, by canonical setting
    for canon, word in settings:
        words.setdefault(canon, word)
    dropped = [c for c in words
               if c != scene.setting and (scene.setting, c) not in IMPLIED_SETTINGS]
    if dropped:
        notes.append(_one_of(text, "settings", [_named_as(words[c], c) for c in dropped],
                             _named_as(words[scene.setting], scene.setting)))
    if weathers and scene.weather == "none":
        asked = " and ".join(dict.fromkeys(repr(w) for _, w in weathers))
        notes.append(f"{text!r} asks for {asked}, but the built-in world has no weather "
                     f"{_IN_SETTING.get(scene.setting, scene.setting)}: it is left out")
    for kind, named, shown in (("kinds of weather", weathers, scene.weather),
                               ("camera moves", cameras, scene.camera)):
        others = list(dict.fromkeys(repr(w) for c, w in named if c != shown))
        if shown != "none" and others:
            first = next(repr(w) for c, w in named if c == shown)
            notes.append(_one_of(text, kind, others, first))
    return notes


def _one_of(text: str, kind: str, others: list[str], used: str) -> str:
    return (f"{text!r} names {len(others) + 1} {kind} ({', '.join(others)} and {used}); a "
            f"scene of the built-in world has one and this prompt is read with {used}")


_IN_SETTING = {"underwater": "underwater", "space": "in space"}


def _named_as(word: str, canon: str) -> str:
    return repr(word) if word == canon else f"{word!r} ({canon})"


def _parse(text: str, strict: bool = False):
    """parse_stated's (Scene, defaulted), and the settings, weathers and camera moves the
    prompt named, each a list of (canonical value, its words); setting adjectives left out."""
    if not text or not text.strip():
        raise PromptNotUnderstood("the prompt is empty")
    items = _scan(text)
    unknown = [it.text for it in items if it.cat == "unknown"]
    if strict and unknown:
        raise PromptNotUnderstood(f"words not understood: {', '.join(unknown)}", unknown)

    groups: list[_Group] = []
    open_np: _Group | None = None
    pending = _Group()
    conj_since_last = False
    between: list[str] = []        # categories seen since the last subject's noun
    # (canonical value, the words naming it) of each setting, weather and camera move named
    named: dict[str, list[tuple[str, str]]] = {"setting": [], "weather": [], "camera": []}
    described: list[str] = []      # settings named only by an adjective
    last_unknown: str | None = None

    for it in items:
        cat = it.cat
        if cat == "shape" and open_np is None and it.value[1] == 2 and it.value[0] == "star":
            cat = "filler"     # "stars" with no colour: the starry sky, not subjects
        if cat in ("count", "size", "color"):
            if open_np is None:
                open_np = _Group()
                open_np.unknown_before = last_unknown
            if cat == "count":
                open_np.count = int(it.value)
            elif cat == "size":
                open_np.size = it.value
            else:
                open_np.color = it.value
        elif cat == "shape":
            g = open_np or _Group(unknown_before=last_unknown)
            g.shape, plural = it.value
            if plural == 2 and g.count == 1 and open_np is not None and "count" not in between:
                g.count = 2
            elif plural == 2 and open_np is None:
                g.count = 2
            g.merge(pending)
            pending = _Group()
            if groups and between == ["conj:and"] and not groups[-1].has_motion():
                groups[-1].share_next = True
            groups.append(g)
            open_np, conj_since_last, between = None, False, []
        elif cat in ("motion", "dir", "travel", "speed"):
            if open_np is not None:
                open_np.take(it)
            elif groups and not conj_since_last:
                groups[-1].take(it)
            else:
                pending.take(it)
            between.append(cat)
        elif cat == "conj":
            if groups:
                conj_since_last = True
            between.append(f"conj:{it.value}")
        elif cat in ("setting", "weather", "camera"):
            adjective = cat == "setting" and it.text in SETTING_ADJECTIVES
            if adjective:
                described.append(it.value)
            else:
                named[cat].append((it.value, it.text))
            if open_np is not None and open_np.shape is None and cat == "setting" \
                    and not adjective:
                open_np = None   # "a green meadow": the colour was the setting's
            between.append(cat)
        elif cat == "unknown":
            between.append(cat)
        last_unknown = it.text if cat == "unknown" else None

    for i, g in enumerate(groups[:-1]):
        if g.share_next and not g.has_motion():
            nxt = groups[i + 1]
            g.motions, g.dirs, g.travel = list(nxt.motions), list(nxt.dirs), nxt.travel
            g.speed = g.speed or nxt.speed

    if pending.has_motion() or pending.speed:
        # Motion words after every subject ("..., both spinning"): they go to those without one.
        targets = [g for g in groups if not g.has_motion()] or groups[-1:]
        for g in targets:
            g.merge(pending)
    subjects: list[Subject] = []
    defaulted = [f"colour of the {g.shape}" for g in groups if g.color is None]
    for g in groups:
        if g.color is None and g.unknown_before:
            raise PromptNotUnderstood(
                f"no colour understood for the {g.shape} (unknown word: {g.unknown_before}); "
                "colours are " + ", ".join(COLOR_WORDS), [g.unknown_before])
        motion, heading = g.motion()
        sub = Subject(color=g.color or DEFAULT_COLOR, shape=g.shape, size=g.size or "medium",
                      motion=motion, speed="normal" if motion == "still" else (g.speed or "normal"),
                      heading=heading)
        subjects.extend(Subject(**{**sub.__dict__}) for _ in range(g.count))
    if len(subjects) > 2:
        raise PromptNotUnderstood(f"the built-in world shows at most two subjects, the prompt "
                                  f"asks for {len(subjects)}")
    settings, weathers, cameras = ([value for value, _ in named[cat]]
                                   for cat in ("setting", "weather", "camera"))
    settings = settings or described
    if not (subjects or settings or weathers or cameras):
        raise PromptNotUnderstood(
            "nothing in the prompt names a subject or setting of the built-in world"
            + (f" (unknown words: {', '.join(unknown)})" if unknown else "")
            + "; see 'sora world vocab'", unknown)

    setting = min(settings, key=SETTING_PRIORITY.index) if settings else DEFAULT_SETTING
    weather = weathers[0] if weathers and setting in OUTDOOR else "none"
    camera = cameras[0] if cameras else "none"
    if not settings:
        defaulted.insert(0, "setting")
    return (Scene(setting=setting, subjects=subjects, weather=weather, camera=camera), defaulted,
            (named["setting"], named["weather"], named["camera"]))
