"""`match`: keywords and regular expressions over text fields, Vietnamese-aware.

An instant kind: every event that matches is a *match* at its `ts`; the first match of a key
fires an alert (`starts_at = ts`), later matches extend that episode (a match exactly at
`last match + resolve_after` still does), and it resolves when the watermark passes
`last match + resolve_after` (default 5m), with `ends_at = last match + resolve_after`. A match
within `realert` of the previous episode's end is dropped.

An event matches when all of these hold:

* `condition` (optional expression over the event) is true;
* `any`: at least one keyword appears (one combined regular expression per rule);
* `all`: every keyword appears (anywhere in the searched fields);
* `regex`: at least one pattern matches (searched with RE2, in time linear in the text,
  case-insensitive; see `ioc.rules.expr.compile_regex` for what RE2 refuses);
* `exclude`: no keyword appears.

At least one of `any`, `all`, `regex` is required. The searched text is the rule's `fields`
(a list field such as press `topics` item by item), each prepared with `ioc.text.fold`
(`fold: true`, the default: no diacritics, so "xả lũ", "XẢ LŨ", "xa lu" and NFD input all
match) or `ioc.text.normalize` (`fold: false`: diacritics kept, so "lũ" is not "lu"); both
lowercase, NFC, đ/Ð folded, whitespace collapsed. The texts are joined by newlines, so a
keyword never spans two fields or two list items. Keywords are prepared the same way, once,
when the rule loads; with `whole_words: true` (default) a keyword matches only where it is
not preceded or followed by a letter or digit. Regex patterns run against the prepared text
as written (no word boundaries added; with `fold: true` they must be written without
diacritics, which is checked when the rule loads).

The alert's `value` is null (a match measures nothing); its `details` are `matched`, the list
of matched keywords (as written in the rule, each once; `any` keywords in the order they first
appear, where two start at one place the longer, then `all` keywords, then the matching
patterns), and `excerpt`, up to 160 characters of the first searched text holding a hit,
around it. Templates may use `{matched}` (the matched keywords joined by ", "; `{value}` too, as
rule files written when the value was that list do) and `{excerpt}`.

A key's state is forgotten (`expired`) as soon as its episode is over (resolved, and any
`realert` after it passed): a match remembers nothing else, so every event is judged alone.

>>> # rules/press.yaml
>>> # - id: press.hue.negative
>>> #   stream: press
>>> #   kind: match
>>> #   fields: [title, body]
>>> #   any: [Thừa Thiên Huế, Thừa Thiên - Huế, TT-Huế, TP Huế, Huế, cố đô]
>>> #   exclude: [quảng cáo]
>>> #   condition: "sentiment <= -0.5"
>>> #   resolve_after: 1h
>>> #   summary: "{source_id}: bài tiêu cực về Huế ({matched}): {title}"
"""

from __future__ import annotations

import re
import types
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import Field

from ioc.events.schemas import SCHEMAS
from ioc.rules.exceptions import did_you_mean, shorten
from ioc.rules.expr import Expression
from ioc.rules.kinds.base import BuildContext, InstantRule, InstantSpec, Key, KindProblem, Problems, Runtime, State
from ioc.rules.regex import Regex, RegexError, compile_regex
from ioc.text import fold as fold_text
from ioc.text import normalize as normalize_text
from ioc.timeutil import format_duration

__all__ = ["MatchSpec", "MatchRule", "Matched"]

EXCERPT_CHARS = 160  # of the searched text, in the record's details
# Prepared text of the last event seen per (fold, field): rules reading the same field of the
# same event (the engine runs them back to back) prepare it once. Keyed by the identity of
# the raw string, which the entry keeps alive, so a hit is always the same text.
_PREPARED: dict[tuple[bool, str], tuple[str, str]] = {}


class Matched(list[str]):
    """The matched keywords: a plain JSON list that renders in templates as "a, b"."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return format(", ".join(self), spec)


class MatchSpec(InstantSpec):
    kind: Literal["match"] = "match"
    fields: list[str]
    any_: list[str] | None = Field(default=None, alias="any")
    all_: list[str] | None = Field(default=None, alias="all")
    regex: str | list[str] | None = None
    exclude: list[str] | None = None
    fold: bool = True
    whole_words: bool = True
    condition: str | None = None


class MatchRule(InstantRule):
    Spec = MatchSpec
    VALUE_ALIAS = "matched"  # `{value}` in templates written when the value was the matched keywords
    TEMPLATE_NAMES = frozenset({"value", "matched", "excerpt"})
    EXPRESSION_FIELDS = ("condition",)
    spec: MatchSpec

    def __init__(self, spec: MatchSpec, ctx: BuildContext) -> None:  # type: ignore[override]
        super().__init__(spec, ctx)
        found = Problems()
        with found:
            if spec.resolve_after <= 0:
                raise KindProblem("resolve_after", f"'{format_duration(spec.resolve_after)}' must be more than 0 "
                                                   "(e.g. 5m, 1h)")
        with found:
            if spec.value is not None:
                raise KindProblem("value", f"{shorten(spec.value)} is not allowed: a match measures nothing; the "
                                           "matched keywords and patterns are its details (use {matched} in templates)")
        with found:
            if spec.any_ is None and spec.all_ is None and spec.regex is None:
                raise KindProblem("any", "a match rule needs at least one of 'any', 'all' or 'regex'")
        self._prepare: Callable[[str], str] = fold_text if spec.fold else normalize_text
        with found:
            self._fields = _text_fields(ctx.stream, spec.fields, ctx.schemas.model(ctx.stream))
        with found:
            self._condition: Expression | None = (
                ctx.expression("condition", spec.condition) if spec.condition is not None else None
            )
        any_words: dict[str, str] = {}
        all_words: dict[str, str] = {}
        excluded: dict[str, str] = {}
        with found:
            any_words = self._keywords("any", spec.any_)
        with found:
            all_words = self._keywords("all", spec.all_)
        with found:
            excluded = self._keywords("exclude", spec.exclude)
        with found:
            for prepared, written in excluded.items():
                for name, words in (("any", any_words), ("all", all_words)):
                    if prepared in words:
                        raise KindProblem("exclude", f"'{written}' is also in '{name}' (as '{words[prepared]}'): "
                                                     "a keyword cannot be both looked for and excluded")
        with found:
            self._regexes = self._patterns(spec.regex)
        found.raise_any()
        whole = spec.whole_words
        self._any = _Keywords(any_words, whole) if any_words else None
        self._all = [(_Keywords({p: w}, whole), w) for p, w in all_words.items()]
        self._exclude = _Keywords(excluded, whole) if excluded else None
        self._resolve_after = spec.resolve_after

    @property
    def template_names(self) -> frozenset[str]:
        return self.TEMPLATE_NAMES

    # -- build -------------------------------------------------------------------------------

    def _keywords(self, field: str, words: list[str] | None) -> dict[str, str]:
        """Prepared keyword -> keyword as written (the first spelling of equal ones)."""
        if words is None:
            return {}
        if not words:
            raise KindProblem(field, f"is empty (list at least one keyword, or leave '{field}' out)")
        prepared: dict[str, str] = {}
        for word in words:
            text = self._prepare(word)
            if not text:
                raise KindProblem(field, f"keyword {shorten(word)} is empty once normalised (give a word or phrase)")
            prepared.setdefault(text, word)
        return prepared

    def _patterns(self, regex: str | list[str] | None) -> list[tuple[Regex, str]]:
        if regex is None:
            return []
        patterns = [regex] if isinstance(regex, str) else regex
        if not patterns:
            raise KindProblem("regex", "is empty (give a pattern or a list of patterns, or leave 'regex' out)")
        compiled = []
        prepare = self._prepare
        for text in patterns:
            # NFC, so that a pattern typed decomposed meets precomposed (normalised) text. Case
            # and tone placement are left alone: patterns are matched case-insensitively, and
            # moving marks could change a character class.
            source = unicodedata.normalize("NFC", text)
            try:
                # Linear time whatever the pattern: '(a+)+$' over a long title cannot stall a worker.
                pattern = compile_regex(source, ignore_case=True, unicode_words=not self.spec.fold)
            except RegexError as exc:
                raise KindProblem("regex", f"invalid pattern {shorten(text)}: {exc}") from None
            if pattern.search(""):
                raise KindProblem("regex", f"pattern {shorten(text)} matches empty text, so every event would match "
                                           "(allowed: a pattern that needs at least one character)")
            lost = sorted({ch for ch in source if not ch.isascii() and prepare(ch) != ch.lower()})
            if lost:
                hint = "".join(prepare(ch) if ch in lost else ch for ch in source)
                form = "folded text (fold: true)" if self.spec.fold else "normalised text"
                other = "; or set fold: false" if self.spec.fold else ""
                raise KindProblem(
                    "regex", f"pattern {shorten(text)} has {', '.join(repr(ch) for ch in lost[:10])}, which {form} "
                             f"never contains (write {shorten(hint)}{other})",
                )
            lowered = " ".join(source.lower().split())
            if not self.spec.fold and normalize_text(source) != lowered:
                # Only tone placement is left to differ: "hòa" in a pattern never meets "hoà".
                raise KindProblem(
                    "regex", f"pattern {shorten(text)} puts a tone mark where normalised text never has it (write it "
                             "on the second vowel of oa, oe, uy, as in 'hoà', 'khoẻ', 'thuỷ'; or use fold: true)",
                )
            compiled.append((pattern, text))
        return compiled

    # -- per event ---------------------------------------------------------------------------

    def on_event(
        self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any], ts: float
    ) -> None:
        condition = self._condition
        if condition is not None and not condition.test(event, ref):
            return
        text = self._text(event)
        if not text:
            return
        found = self._search(text)
        if found is not None:
            rt.match(key, state, ts=ts, value=None, event=event, ref=ref, resolve_after=self._resolve_after,
                     details={"matched": found, "excerpt": self._excerpt(event)})

    def expired(self, state: State, watermark: float) -> bool:
        # All a key's state is its episode's, which the engine judges.
        return True

    def _text(self, event: Mapping[str, Any]) -> str:
        """The prepared texts of the searched fields, joined by newlines."""
        mode = self.spec.fold
        prepare = self._prepare
        parts: list[str] = []
        for name, many in self._fields:
            raw = event.get(name)
            if raw is None:
                continue
            if many:
                if isinstance(raw, list):
                    parts.extend(prepare(item) for item in raw if isinstance(item, str))
                continue
            if not isinstance(raw, str):
                continue
            cache_key = (mode, name)
            hit = _PREPARED.get(cache_key)
            if hit is not None and hit[0] is raw:
                parts.append(hit[1])
            else:
                prepared = prepare(raw)
                _PREPARED[cache_key] = (raw, prepared)
                parts.append(prepared)
        return parts[0] if len(parts) == 1 else "\n".join(parts)

    def _excerpt(self, event: Mapping[str, Any]) -> str | None:
        """Up to EXCERPT_CHARS of the first searched text (field or list item) where a keyword
        or pattern is found, around the first hit, as the event wrote it when preparing kept
        its length (else as prepared); None if no single text holds one (`all` across fields)."""
        prepare = self._prepare
        for name, many in self._fields:
            raw = event.get(name)
            for item in (raw if many and isinstance(raw, list) else (raw,)):
                if not isinstance(item, str) or not item:
                    continue
                prepared = prepare(item)
                start = self._first_hit(prepared)
                if start is None:
                    continue
                source = item if len(item) == len(prepared) else prepared
                lo = max(0, min(start - EXCERPT_CHARS // 3, len(source) - EXCERPT_CHARS))
                hi = min(len(source), lo + EXCERPT_CHARS)
                return ("…" if lo else "") + source[lo:hi] + ("…" if hi < len(source) else "")
        return None

    def _first_hit(self, text: str) -> int | None:
        """Where the first keyword looked for is in `text` (0 for a pattern), None if none is."""
        starts = [hit.start() for words in (self._any, *(each for each, _ in self._all))
                  if words is not None and (hit := words.find(text, 0)) is not None]
        if starts:
            return min(starts)
        return 0 if any(pattern.search(text) for pattern, _ in self._regexes) else None

    def _search(self, text: str) -> Matched | None:
        """The matched keywords and patterns, or None if the text does not match."""
        keywords = self._any
        if keywords is not None:
            first = keywords.find(text, 0)
            if first is None:
                return None
            found = keywords.collect(text, first)
        else:
            found = Matched()
        for each, name in self._all:
            if each.find(text, 0) is None:
                return None
            if name not in found:
                found.append(name)
        if self._regexes:
            matched = [source for pattern, source in self._regexes if pattern.search(text)]
            if not matched:
                return None
            found.extend(m for m in matched if m not in found)
        exclude = self._exclude
        if exclude is not None and exclude.find(text, 0) is not None:
            return None
        return found


class _Keywords:
    """A list of prepared keywords compiled for search: `find` gives the next whole-word hit.

    One plain alternation finds candidates: Python's `re` skips ahead on the keywords' first
    characters, which lookarounds in every branch would defeat (10-30x slower on articles).
    Word boundaries are then checked at each candidate only, with an anchored match of the
    bounded alternation, which also tries shorter keywords where the longest one fails.
    `find` is exact (the match decision); `collect` lists the other keywords present cheaply,
    checking each keyword's boundaries until it is found once.
    """

    __slots__ = ("names", "plain", "bounded")

    def __init__(self, words: Mapping[str, str], whole_words: bool) -> None:
        self.names = dict(words)
        # Longest first, so that at one place the longer keyword wins.
        ordered = sorted(words, key=lambda w: (-len(w), w))
        self.plain = re.compile("|".join(re.escape(w) for w in ordered))
        self.bounded: re.Pattern[str] | None = None
        if whole_words:
            self.bounded = re.compile("|".join(_bounded(w) for w in ordered))

    def find(self, text: str, pos: int) -> re.Match[str] | None:
        hit = self.plain.search(text, pos)
        bounded = self.bounded
        if bounded is None:
            return hit
        while hit is not None:
            start = hit.start()
            # The lookbehind sees the text before `start`: match() does not cut it off.
            checked = bounded.match(text, start)
            if checked is not None:
                return checked
            hit = self.plain.search(text, start + 1)
        return None

    def collect(self, text: str, first: re.Match[str]) -> Matched:
        """The keywords (as written) found from `first` on, once each, in text order."""
        names = self.names
        word = first.group()
        found = Matched([names[word]])
        if len(names) == 1:
            return found
        seen = {word}
        bounded = self.bounded
        for hit in self.plain.finditer(text, first.end()):
            word = hit.group()
            if word in seen:
                continue  # the hot case in long texts: a keyword already listed
            if bounded is not None:
                checked = bounded.match(text, hit.start())
                if checked is None:
                    continue
                word = checked.group()
                if word in seen:
                    continue
            seen.add(word)
            found.append(names[word])
            if len(seen) == len(names):
                break
        return found


def _bounded(word: str) -> str:
    """A keyword that must not touch a letter or digit, at the ends that are letters or digits."""
    part = re.escape(word)
    if _is_word_char(word[0]):
        part = r"(?<!\w)" + part
    if _is_word_char(word[-1]):
        part += r"(?!\w)"
    return part


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _text_fields(stream: str, names: Sequence[str], schema: Any = None) -> tuple[tuple[str, bool], ...]:
    """(field, is a list) for each searched field; only text fields of the stream."""
    if not names:
        raise KindProblem("fields", "is empty (list the text fields to search, e.g. [title, body])")
    model = (SCHEMAS[stream] if schema is None else schema).model_fields
    texts = _stream_text_fields(model)
    allowed = ", ".join(sorted(texts))
    result: list[tuple[str, bool]] = []
    for name in names:
        if name not in texts:
            if name in model:
                raise KindProblem("fields", f"'{name}' is not a text field of stream '{stream}' (allowed: {allowed})")
            hint = did_you_mean(name, texts)
            raise KindProblem("fields", f"unknown field '{name}' of stream '{stream}' (allowed: {allowed}{hint})")
        if any(name == seen for seen, _ in result):
            raise KindProblem("fields", f"'{name}' is listed twice")
        result.append((name, texts[name]))
    return tuple(result)


def _stream_text_fields(model: Mapping[str, Any]) -> dict[str, bool]:
    """Text fields of a stream's schema (its model's fields): name -> True for a list of texts."""
    found: dict[str, bool] = {}
    for name, info in model.items():
        kind = _text_kind(info.annotation)
        if kind is not None:
            found[name] = kind
    return found


def _text_kind(annotation: Any) -> bool | None:
    """False for text (str, Literal of str, optional), True for a list of text, else None."""
    if annotation is str:
        return False
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Literal:
        return False if all(isinstance(a, str) for a in args) else None
    if origin is list:
        return True if args and _text_kind(args[0]) is False else None
    if origin is types.UnionType or origin is Union:
        kinds = {_text_kind(a) for a in args if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else None
    if hasattr(annotation, "__metadata__"):  # Annotated[str, ...]
        return _text_kind(args[0]) if args else None
    return None


KIND = MatchRule
