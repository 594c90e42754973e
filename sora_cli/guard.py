"""Prompt policy: refuse prompts that ask for harmful content, before any model work.

The policy is data (`sora_cli/data/policy.json`, extendable with a user file through
`--policy FILE`): ordered categories, each with terms, combination rules and an allow-list of
exceptions. Matching is built to survive the usual ways of slipping a word past a filter while
keeping ordinary prompts allowed:

- Unicode: NFKC (full-width, math bold, circled letters), zero-width and other invisible format
  characters dropped, diacritics stripped, Cyrillic/Greek/small-capital look-alikes mapped to Latin.
- Spelling: each letter of a term also matches its l33t forms (0 o, 1 i l, 3 e, 4 a, 5 s, 7 t,
  @ a, $ s, ! i, ...), may repeat ("gooore") and may be followed by inserted symbols
  ("g.o.r.e", "s*e*x"); words spelt out letter by letter ("n u d e") are joined first.
- Whole words only, so "Scunthorpe", "cocktail" and "therapist" are not read as what they contain,
  and a match made mostly of digits ("53x zoom") is not taken for a l33t word.
- Phrase rules: terms that refuse only together ("all": a child word and a sexual word anywhere
  within a window of words) or in order ("sequence": "shooting" then "a woman" within a few words,
  while "shooting a basketball" stays allowed).
- Allow-lists: exceptions ("killer whale", "blue tits", "bath bomb") whose words a category ignores.

Term syntax in a policy file: a word or phrase ("blood bath" also matches "bloodbath" and
"blood-bath"); a trailing `*` matches any ending ("dismember*"); `re:` starts a raw regular
expression (case-insensitive; `(?-i:...)` for a case-sensitive part); in a rule, `@name` stands for
the terms of category `name`.

A user policy file adds to the built-in one and can never loosen it: it may add terms and rules to
any category and define new categories (with their own allow-lists). Two formats: the JSON format of
policy.json, or plain text, one entry per line:

    # comment (also after an entry)
    violence: chainsaw massacre          add a term to a category (new names make new categories)
    brands: acme & logo                  refuse only when all '&'-joined terms occur
    label brands: a competitor's brand   the wording of a new category's refusal message
    allow brands: acme museum            an exception, for categories the file itself adds
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from itertools import groupby, product
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union

from sora_cli.errors import SoraError, SoraUsageError

PathLike = Union[str, Path]


class PromptRefused(SoraError):
    """A prompt asks for something the policy refuses; the message names the category."""

    def __init__(self, message: str, category: str, label: str, match: str | None = None,
                 item: str | None = None, prompt: str | None = None) -> None:
        super().__init__(message)
        self.category = category
        self.label = label
        self.match = match
        self.item = item
        self.prompt = prompt


# --- text normalisation -----------------------------------------------------------------------

# Letters that look Latin but are not (NFKC leaves them alone).
_LOOKALIKES = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d",
    "ӏ": "l", "ү": "y", "һ": "h", "ԛ": "q", "ԝ": "w", "ɡ": "g",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C",
    "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "ς": "s", "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H",
    "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # small capitals and other Latin-like letters
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ꜰ": "f", "ɢ": "g", "ʜ": "h", "ɪ": "i",
    "ᴊ": "j", "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ǫ": "q", "ʀ": "r",
    "ꜱ": "s", "ᴛ": "t", "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z",
    "ı": "i", "ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ŧ": "t", "ß": "ss", "æ": "ae", "œ": "oe",
})


def normalize(text: str) -> str:
    """The text the policy is matched against: look-alikes folded, invisible characters gone.

    Case is kept (one rule, a capitalised name followed by 'saying', needs it); every other
    pattern is case-insensitive."""
    text = unicodedata.normalize("NFKC", text)
    # Cf: zero-width spaces/joiners, soft hyphens, bidi controls; removed, not turned into spaces.
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", text.translate(_LOOKALIKES))


# Runs of three or more one-character tokens, "n u d e": read as one word too.
_SPELLED_OUT = re.compile(r"(?<!\S)\S(?:\s+\S){2,}(?!\S)")
# Symbols inside a word, "g.o.r.e", "s*e*x": read without them too.
_INNER_SYMBOLS = re.compile(r"(?<=[\w$@!|])[^\w\s$@!|]+(?=[\w$@!|])")


def _views(text: str) -> list[str]:
    """The readings of a prompt that are matched: as written (symbols split words), with
    symbols inside words removed, and with spelt-out letters joined."""
    base = normalize(text).replace("_", " ")
    views = [base, _INNER_SYMBOLS.sub("", base)]
    if not _SPELLED_OUT.search(base):
        return list(dict.fromkeys(views))

    def joined(m: re.Match) -> str:
        return re.sub(r"\s+", "", m.group(0))

    def joined_after_article(m: re.Match) -> str:
        # "a n a k e d woman": the leading "a" is most likely the article, not part of the word.
        run = m.group(0)
        if run[0] in "aAiI":
            return run[0] + " " + re.sub(r"\s+", "", run[1:])
        return re.sub(r"\s+", "", run)

    views += [_SPELLED_OUT.sub(joined, base), _SPELLED_OUT.sub(joined_after_article, base)]
    return list(dict.fromkeys(views))


# --- matching terms ---------------------------------------------------------------------------
#
# Terms are matched word by word rather than by one huge regex: a prompt is split into words
# (letters, digits and the l33t symbols $ @ ! |), each word is decoded into its possible
# spellings and "squeezed" (runs of a letter counted once), and terms are looked up in a dict by
# their squeezed first word. A word matches a term's word when the squeezed forms are equal and
# each letter run is at least as long as the term's, so "naaaked" is "naked" while "bobs" is not
# "boobs". Loading the whole policy takes milliseconds; a regex build of it took over a second.

_LEET = {"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g", "@": "a", "$": "s"}
# "1" and "|" may be i or l; "*" inside a word hides a vowel ("p*rn") or is just inserted ("s*x").
_LEET_AMBIGUOUS = {"1": ("i", "l"), "|": ("l", "i"), "!": ("i", "l"),
                   "*": ("", "o", "e", "a", "i", "u")}
_LEET_SYMBOLS = "$@!|*"
_TOKEN = re.compile(r"(?:[^\W_]|[$@!|*])+")
_WORD = re.compile(r"[^\W_]+")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

Squeezed = tuple  # (letters with runs collapsed, run lengths)


def _squeeze(word: str) -> Squeezed:
    runs = [(ch, len(list(group))) for ch, group in groupby(word)]
    return "".join(ch for ch, _ in runs), tuple(n for _, n in runs)


@lru_cache(maxsize=65536)
def _forms(word: str) -> tuple[Squeezed, ...]:
    """The spellings a written word may stand for, squeezed: as written, and l33t-decoded both
    whole ("$ex") and without edge symbols ("gore!", "@user")."""
    forms = {word}
    core = word.strip(_LEET_SYMBOLS) or word
    for part in {word, core}:
        digits = sum(c.isdigit() for c in part)
        # "53x" is a zoom factor and "1950s" a decade, not l33t: decode words mostly of letters.
        if not any(c.isalpha() for c in part) or digits > len(part) - digits:
            continue
        variants = [""]
        for ch in part:
            options = _LEET_AMBIGUOUS.get(ch) or _LEET.get(ch, ch)
            variants = [v + o for v in variants for o in options][:36]
        forms.update(variants)
    forms.add(core)
    return tuple(_squeeze(f) for f in forms if f)


def _runs_ok(text_runs: tuple, term_runs: tuple, prefix: bool) -> bool:
    if prefix:
        if len(text_runs) < len(term_runs):
            return False
    elif len(text_runs) != len(term_runs):
        return False
    return all(t >= m for t, m in zip(text_runs, term_runs))


def _word_matches(forms: tuple, want: Squeezed, prefix: bool) -> bool:
    for letters, runs in forms:
        if (letters.startswith(want[0]) if prefix else letters == want[0]) and \
                _runs_ok(runs, want[1], prefix):
            return True
    return False


def _plain_pattern(term: str) -> str:
    """Regex for an allow-list phrase: whole words, any separators, but no l33t (exceptions must
    be written plainly to count)."""
    prefix = term.endswith("*")
    words = _WORD.findall(normalize(term.rstrip("*")).lower())
    if not words:
        raise ValueError("it has no letters or digits")
    body = r"[\W_]*".join(re.escape(w) for w in words)
    return body + ("" if prefix else r"(?![^\W_])")  # the caller adds the start boundary


def _compile_raw(term: str, where: str) -> re.Pattern:
    try:
        return re.compile(term[3:], re.IGNORECASE)
    except re.error as exc:
        raise SoraError(f"{where}: bad regular expression {term!r}: {exc}") from None


class _Index:
    """Every term list of a policy in one index, so that a prompt is read once for all of them.

    `add(terms)` registers a list and returns its id; `find(tokens, text)` returns
    {list id: [character spans of its matches]}."""

    def __init__(self) -> None:
        self.by_first: dict[str, list[tuple[int, tuple[Squeezed, ...], bool]]] = {}
        self.prefixes: dict[str, list[tuple[int, Squeezed]]] = {}  # one-word terms ending in *
        self.raw: list[tuple[int, re.Pattern]] = []
        self.lists = 0

    def add(self, terms: Sequence[str], where: str) -> int:
        list_id = self.lists
        self.lists += 1
        for term in terms:
            if term.startswith("re:"):
                self.raw.append((list_id, _compile_raw(term, where)))
                continue
            prefix = term.endswith("*")
            core = term.rstrip("*")
            words = _WORD.findall((core if core.isascii() else normalize(core)).lower())
            if not words:
                raise SoraError(f"{where}: term {term!r} cannot be used: it has no letters or digits")
            self._add(list_id, tuple(_squeeze(w) for w in words), prefix)
            if len(words) > 1:  # "blood bath" also as "bloodbath"
                self._add(list_id, (_squeeze("".join(words)),), prefix)
        return list_id

    def _add(self, list_id: int, seq: tuple, prefix: bool) -> None:
        if prefix and len(seq) == 1:
            self.prefixes.setdefault(seq[0][0][0], []).append((list_id, seq[0]))
        else:
            self.by_first.setdefault(seq[0][0], []).append((list_id, seq, prefix))

    def find(self, tokens: list, text: str) -> dict[int, list[tuple[int, int]]]:
        """Matches in `text`, whose words are `tokens`: (start, end, forms) each."""
        found: dict[int, list[tuple[int, int]]] = {}
        for i, (start, end, forms) in enumerate(tokens):
            for letters, runs in forms:
                for list_id, seq, prefix in self.by_first.get(letters, ()):
                    last = len(seq) - 1
                    if not _runs_ok(runs, seq[0][1], prefix and last == 0):
                        continue
                    if i + last < len(tokens) and all(
                            _word_matches(tokens[i + k][2], seq[k], prefix and k == last)
                            for k in range(1, last + 1)):
                        found.setdefault(list_id, []).append((start, tokens[i + last][1]))
                for list_id, want in self.prefixes.get(letters[:1], ()):
                    if letters.startswith(want[0]) and _runs_ok(runs, want[1], True):
                        found.setdefault(list_id, []).append((start, end))
        for list_id, pattern in self.raw:
            for m in pattern.finditer(text):
                if m.end() > m.start():
                    found.setdefault(list_id, []).append(m.span())
        return found


# --- the policy -------------------------------------------------------------------------------

@dataclass
class Rule:
    """Terms that refuse only together: `all` groups within `window` words, or a `sequence` of
    groups in order with at most `max_gap` words between neighbours (one number or one per step)."""

    kind: str  # "all" or "sequence"
    groups: list[list[str]]
    window: Optional[int] = None
    max_gap: Union[int, list[int], None] = None
    about: str = ""


@dataclass
class Category:
    name: str
    label: str  # completes "the prompt asks for ...", e.g. "graphic violence"
    description: str = ""
    terms: list[str] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    allow: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    """What the policy says about one prompt."""

    allowed: bool
    category: Optional[str] = None
    label: Optional[str] = None
    match: Optional[str] = None  # the words that triggered the refusal (as read: symbols dropped)

    def to_dict(self) -> dict:
        return {"allowed": self.allowed, "category": self.category, "label": self.label,
                "match": self.match}


@dataclass
class Policy:
    """Ordered categories (the first that matches names a refusal) and the files they came from."""

    categories: list[Category]
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._compiled: Optional[dict] = None

    def category(self, name: str) -> Category:
        for cat in self.categories:
            if cat.name == name:
                return cat
        raise KeyError(name)

    # Compiled lazily and once (milliseconds); after that a prompt is one pass over its words.
    def _compile(self) -> dict:
        if self._compiled is not None:
            return self._compiled
        names = {c.name for c in self.categories}
        where = "policy " + (", ".join(self.sources) or "(in memory)")
        index = _Index()
        terms = {c.name: index.add(c.terms, f"{where}: category '{c.name}'") for c in self.categories}
        allow = {}
        for c in self.categories:
            pats = [_compile_raw(a, where) for a in c.allow if a.startswith("re:")]
            plain = []
            for a in c.allow:
                if not a.startswith("re:"):
                    try:
                        plain.append(_plain_pattern(a))
                    except ValueError as exc:
                        raise SoraError(f"{where}: allow entry {a!r} cannot be used: {exc}") from None
            if plain:
                pats.append(re.compile(r"(?<![^\W_])(?:" + "|".join(plain) + ")", re.IGNORECASE))
            allow[c.name] = pats
        rules = {}
        for c in self.categories:
            compiled_rules = []
            for rule in c.rules:
                groups = []
                for group in rule.groups:
                    literal = [t for t in group if not t.startswith("@")]
                    refs = [t[1:] for t in group if t.startswith("@")]
                    for ref in refs:
                        if ref not in names:
                            raise SoraError(f"{where}: category '{c.name}' refers to unknown "
                                            f"category '@{ref}'")
                    groups.append((index.add(literal, f"{where}: category '{c.name}'"), refs))
                compiled_rules.append((rule, groups))
            rules[c.name] = compiled_rules
        self._compiled = {"index": index, "terms": terms, "allow": allow, "rules": rules}
        return self._compiled

    def screen(self, text: str) -> Verdict:
        """The verdict on one prompt (never raises for a refusal)."""
        if not text or not text.strip():
            return Verdict(True)
        compiled = self._compile()
        scans = [_Scan(view, compiled) for view in _views(text)]
        for cat in self.categories:  # category order first: it decides which refusal is named
            for scan in scans:
                span = scan.first_match(cat.name)
                if span is not None:
                    matched = scan.text[span[0]:span[1]].strip()
                    return Verdict(False, cat.name, cat.label, matched)
        return Verdict(True)


class _Scan:
    """One reading of a prompt: its words and every term match, found in one pass; each category
    then keeps the matches that its allow-list does not cover."""

    def __init__(self, text: str, compiled: dict) -> None:
        self.text = text
        self.c = compiled
        lower = text.lower()
        if len(lower) != len(text):  # a few letters lower-case to two characters
            lower = "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)
        tokens = [(m.start(), m.end(), _forms(m.group(0))) for m in _TOKEN.finditer(lower)]
        self.word_starts = [t[0] for t in tokens]
        self.found = compiled["index"].find(tokens, text)
        self._masks: dict[str, list[tuple[int, int]]] = {}

    def mask(self, category: str) -> list[tuple[int, int]]:
        """Where the category's allow-list phrases are."""
        if category not in self._masks:
            self._masks[category] = [m.span() for p in self.c["allow"][category]
                                     for m in p.finditer(self.text) if m.end() > m.start()]
        return self._masks[category]

    def spans(self, list_id: int, categories: Sequence[str]) -> list[tuple[int, int]]:
        spans = self.found.get(list_id)
        if not spans:
            return []
        masks = [m for c in categories for m in self.mask(c)]
        if masks:
            spans = [(s, e) for s, e in spans if not any(s < me and ms < e for ms, me in masks)]
        return spans

    def words_between(self, start: int, end: int) -> int:
        """How many words begin in text[start:end]."""
        return bisect_left(self.word_starts, end) - bisect_left(self.word_starts, start)

    def group_spans(self, category: str, group: tuple) -> list[tuple[int, int]]:
        list_id, refs = group
        spans = self.spans(list_id, (category,))
        for ref in refs:
            spans = spans + self.spans(self.c["terms"][ref], (category, ref))
        return sorted(set(spans))

    def first_match(self, category: str) -> Optional[tuple[int, int]]:
        spans = self.spans(self.c["terms"][category], (category,))
        if spans:
            return min(spans)
        for rule, groups in self.c["rules"][category]:
            found = []
            for group in groups:
                spans = self.group_spans(category, group)
                if not spans:
                    break
                found.append(spans)
            else:
                span = (self._sequence(found, rule.max_gap) if rule.kind == "sequence"
                        else self._together(found, rule.window))
                if span is not None:
                    return span
        return None

    def _together(self, found: list, window: Optional[int]) -> Optional[tuple[int, int]]:
        for combo in product(*found):
            # Each group needs words of its own: "mario" alone is not "mario" and "luigi".
            ordered = sorted(combo)
            if any(a[1] > b[0] for a, b in zip(ordered, ordered[1:])):
                continue
            lo, hi = ordered[0][0], max(e for _, e in ordered)
            if window is None or self.words_between(lo, hi) <= window:
                return lo, hi
        return None

    def _sequence(self, found: list, max_gap) -> Optional[tuple[int, int]]:
        steps = len(found) - 1
        gaps = max_gap if isinstance(max_gap, list) else [3 if max_gap is None else max_gap] * steps

        def extend(i: int, start: int, end: int) -> Optional[tuple[int, int]]:
            if i == len(found):
                return start, end
            for s, e in found[i]:
                if s >= end and self.words_between(end, s) <= gaps[i - 1]:
                    hit = extend(i + 1, start, e)
                    if hit:
                        return hit
            return None

        for s, e in found[0]:
            hit = extend(1, s, e)
            if hit:
                return hit
        return None


# --- loading policy files ---------------------------------------------------------------------

_CATEGORY_KEYS = {"name", "label", "description", "terms", "rules", "allow"}
_RULE_KEYS = {"all", "sequence", "window", "max_gap", "about"}


def _strings(value, where: str, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SoraError(f"{where}: '{what}' must be a list of non-empty strings")
    return [v.strip() for v in value]


def _parse_rule(raw, where: str) -> Rule:
    if not isinstance(raw, dict) or set(raw) - _RULE_KEYS or ("all" in raw) == ("sequence" in raw):
        raise SoraError(f"{where}: a rule is an object with either 'all' or 'sequence' (a list of "
                        "term lists), and optionally 'window' / 'max_gap' and 'about'")
    kind = "all" if "all" in raw else "sequence"
    groups = raw[kind]
    if not isinstance(groups, list) or len(groups) < 2:
        raise SoraError(f"{where}: a rule's '{kind}' needs at least two term lists")
    groups = [_strings(g, where, kind) for g in groups]
    window, max_gap = raw.get("window"), raw.get("max_gap")
    if window is not None and (not isinstance(window, int) or window < 0):
        raise SoraError(f"{where}: 'window' must be a whole number of words")
    if max_gap is not None:
        ok = (isinstance(max_gap, int) and max_gap >= 0) or (
            isinstance(max_gap, list) and len(max_gap) == len(groups) - 1
            and all(isinstance(g, int) and g >= 0 for g in max_gap))
        if not ok:
            raise SoraError(f"{where}: 'max_gap' must be a number of words, or one per step")
    return Rule(kind, groups, window, max_gap, str(raw.get("about", "")))


def _categories_from_json(data, where: str) -> list[Category]:
    if not isinstance(data, dict) or not isinstance(data.get("categories"), list):
        raise SoraError(f"{where}: expected a JSON object with a 'categories' list")
    out = []
    for raw in data["categories"]:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise SoraError(f"{where}: each category needs a 'name'")
        name = raw["name"].strip().lower()
        cwhere = f"{where}: category '{name}'"
        if not _NAME.match(name):
            raise SoraError(f"{cwhere}: names use letters, digits, '-' and '_'")
        unknown = set(raw) - _CATEGORY_KEYS
        if unknown:
            raise SoraError(f"{cwhere}: unknown key(s) {', '.join(sorted(unknown))} "
                            f"(known: {', '.join(sorted(_CATEGORY_KEYS))})")
        out.append(Category(
            name=name,
            label=str(raw.get("label", "")).strip(),
            description=str(raw.get("description", "")).strip(),
            terms=_strings(raw.get("terms", []), cwhere, "terms"),
            rules=[_parse_rule(r, cwhere) for r in raw.get("rules", [])],
            allow=_strings(raw.get("allow", []), cwhere, "allow"),
        ))
    return out


def _categories_from_text(text: str, where: str) -> list[Category]:
    cats: dict[str, Category] = {}
    line_re = re.compile(r"^(?:(label|allow)\s+)?([A-Za-z0-9][\w-]*)\s*:\s*(.+)$")
    for number, line in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", line).strip()  # comments: whole lines or trailing
        if not line:
            continue
        m = line_re.match(line)
        if not m:
            raise SoraError(f"{where}:{number}: expected 'category: term' "
                            f"(or 'label category: text', 'allow category: phrase'), got {line!r}")
        keyword, name, value = m.group(1), m.group(2).lower(), m.group(3).strip()
        cat = cats.setdefault(name, Category(name=name, label=""))
        if keyword == "label":
            cat.label = value
        elif keyword == "allow":
            cat.allow.append(value)
        elif "&" in value:
            parts = [p.strip() for p in value.split("&")]
            if not all(parts):
                raise SoraError(f"{where}:{number}: empty term around '&' in {line!r}")
            cat.rules.append(Rule("all", [[p] for p in parts], about=value))
        else:
            cat.terms.append(value)
    return list(cats.values())


def _read_policy_file(path: PathLike) -> list[Category]:
    p = Path(path)
    where = f"policy file {p}"
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SoraError(f"policy file not found: {p}") from None
    except IsADirectoryError:
        raise SoraError(f"{where} is a folder, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SoraError(f"cannot read {where}: {exc}") from None
    if p.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SoraError(f"{where} is not valid JSON: {exc}") from None
        return _categories_from_json(data, where)
    return _categories_from_text(text, where)


def _merge(base: list[Category], extra: list[Category], where: str) -> list[Category]:
    """Add a user file's categories: it can add to built-in ones but not loosen them."""
    merged = {c.name: c for c in base}
    order = [c.name for c in base]
    for cat in extra:
        if cat.name in merged:
            old = merged[cat.name]
            if cat.allow:
                raise SoraError(f"{where}: 'allow' entries for the built-in category '{cat.name}' "
                                "are not accepted: a user policy can add terms, never loosen the "
                                "built-in policy")
            merged[cat.name] = Category(old.name, cat.label or old.label,
                                        cat.description or old.description,
                                        old.terms + cat.terms, old.rules + cat.rules, old.allow)
        else:
            if not cat.terms and not cat.rules:
                raise SoraError(f"{where}: category '{cat.name}' has no terms or rules")
            cat.label = cat.label or f"content in the user policy category '{cat.name}'"
            merged[cat.name] = cat
            order.append(cat.name)
    return [merged[n] for n in order]


def builtin_policy_path() -> Path:
    return Path(str(resources.files("sora_cli.data").joinpath("policy.json")))


def load_policy(path: Optional[PathLike] = None,
                extra: Union[PathLike, Sequence[PathLike], None] = None) -> Policy:
    """The policy in `path` (the built-in policy.json when None), plus the user files in `extra`."""
    if path is None and extra is None:
        return default_policy()
    base_path = Path(path) if path is not None else builtin_policy_path()
    categories = _read_policy_file(base_path)
    sources = [str(base_path)]
    if extra is not None:
        for user in [extra] if isinstance(extra, (str, Path)) else list(extra):
            categories = _merge(categories, _read_policy_file(user), f"policy file {user}")
            sources.append(str(user))
    for cat in categories:
        if not cat.label:
            cat.label = f"content in the policy category '{cat.name}'"
    policy = Policy(categories, sources)
    policy._compile()  # report a bad term or regex now, not on the first prompt
    return policy


@lru_cache(maxsize=1)
def default_policy() -> Policy:
    """The built-in policy, loaded and compiled once per process."""
    path = builtin_policy_path()
    policy = Policy(_read_policy_file(path), [str(path)])
    policy._compile()
    return policy


def policy_from_option(path: Optional[PathLike]) -> Policy:
    """The policy for a command's `--policy FILE` option (None: the built-in policy alone)."""
    return default_policy() if path is None else load_policy(extra=path)


# --- checking prompts -------------------------------------------------------------------------

def screen(text: str, policy: Optional[Policy] = None) -> Verdict:
    """The policy's verdict on one prompt, without raising (for batches and `sora check`)."""
    return (policy or default_policy()).screen(text)


def refusal_message(verdict: Verdict, subject: str = "the prompt") -> str:
    return (f"refused: {subject} asks for {verdict.label} (policy category "
            f"'{verdict.category}'); sora-cli does not make such videos")


def check_prompt(text: str, policy: Optional[Policy] = None, *, item: str = "the prompt") -> None:
    """Raise PromptRefused (exit 1, one line naming the category) if the policy refuses `text`."""
    if not isinstance(text, str):   # None would pass as an empty prompt
        raise SoraUsageError(f"{item} must be text, got {type(text).__name__}")
    verdict = screen(text, policy)
    if not verdict.allowed:
        raise PromptRefused(refusal_message(verdict, item), verdict.category, verdict.label,
                            verdict.match, item, text)


def check_prompts(texts: Union[Mapping[str, Optional[str]], Iterable], policy: Optional[Policy] = None
                  ) -> None:
    """Check many prompts (storyboard segments, batch rows, a prompt and its negative prompt)
    and raise PromptRefused for the first refused one, naming it.

    `texts` is a mapping {what it is: text}, e.g. {"the prompt": p, "the negative prompt": n},
    or an iterable of strings (named "prompt 1", "prompt 2", ...). None and empty texts are
    skipped."""
    if isinstance(texts, str) or texts is None:   # a string's letters would be the prompts
        raise SoraUsageError(f"check_prompts takes several prompts (a dict or a list), got "
                             f"{texts!r}: use check_prompt for one")
    policy = policy or default_policy()
    if isinstance(texts, Mapping):
        items = list(texts.items())
    else:
        texts = list(texts)
        items = [("the prompt" if len(texts) == 1 else f"prompt {i}", t)
                 for i, t in enumerate(texts, 1)]
    for item, text in items:
        if text is not None and text != "":
            check_prompt(text, policy, item=item)


def read_prompt_file(path: PathLike) -> list[tuple[str, str]]:
    """(what, text) pairs from a prompt list for screening: one prompt per line ('#' comments and
    blank lines skipped) or JSONL rows whose 'prompt' and 'negative' are both checked; '-' is
    stdin."""
    from sora_cli.textfile import read_text_arg, text_lines

    text, name = read_text_arg(path, "prompt file", "one prompt or JSON row a line")
    lines = text_lines(text)   # numbered as batch numbers the same file
    items = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("{"):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SoraError(f"{name}:{number}: not a valid JSON row: {exc}") from None
            prompt = row.get("prompt") if isinstance(row, dict) else None
            if not isinstance(prompt, str) or not prompt.strip():
                # a batch would fail this row: a screening that passed it would mislead
                raise SoraError(f'{name}:{number}: a JSON row needs a "prompt" string')
            for key in ("prompt", "negative", "negative_prompt"):
                if isinstance(row.get(key), str) and row[key].strip():
                    what = f"line {number}" + ("" if key == "prompt" else f" ({key})")
                    items.append((what, row[key]))
        else:
            items.append((f"line {number}", line))
    if not items:
        raise SoraError(f"no prompts in {name} (one prompt or JSON row a line)")
    return items
