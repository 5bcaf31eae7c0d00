"""`near_duplicate`: items whose text is nearly the same (one story) from enough items or sources.

>>> # rules/press.yaml: the same story re-published by >= 5 outlets within 6 h
>>> # - id: press.story.syndicated
>>> #   stream: press
>>> #   kind: near_duplicate
>>> #   key: [lang]                 # stories are grouped per key (here: all Vietnamese articles)
>>> #   fields: [title, body]
>>> #   similarity: 0.5             # Jaccard of word 3-shingles of the folded text
>>> #   within: 6h
>>> #   distinct: source_id         # count outlets, not articles
>>> #   min_count: 5
>>> #   summary: "{value} báo đăng cùng một tin trong 6 giờ: {title}"

Text: the rule's `fields` (text fields; a list field item by item) joined by newlines and
folded as the `match` kind folds (`ioc.text.fold`: NFC, lowercase, no diacritics, đ/Ð to d),
then cut into words (runs of a-z and 0-9). An item's *shingles* are its runs of `shingle`
consecutive words (default 3); a text with fewer words is one shingle. An event with no words
in its fields is ignored. Shingles are kept as 53-bit integers (the first bytes of a BLAKE2b
digest): the same in every process, so live and backtest agree.

Similarity of two items: the Jaccard index of their shingle sets, |A ∩ B| / |A ∪ B|.

Per key, in arrival order of the events evaluated (an instant kind: see `InstantRule`):

* a new item is compared with every kept item of the key whose time is at most `within` from
  its own (`|ts - ts_i| <= within`); it joins the story of the most similar one whose
  similarity is at least `similarity` (the earliest kept of equally similar ones), else it
  starts a new story, named by its `id` (or its event time, RFC 3339, when it has none);
* the story's *value* at the item is the number of its items with times in `[ts - within, ts]`
  or, with `distinct: FIELD`, the number of distinct values (as text) of FIELD among them
  (items without FIELD do not count);
* when the value is at least `min_count`, it is a match of the story: the alert's key is the
  rule's key plus `story` (so each story has its own fingerprint and deterministic alert ids),
  `starts_at` the item's time, value the count; a later match of the same story extends the
  episode, which resolves `resolve_after` (default 5m) after the last match. Evidence: the
  ids of the story's items in the window (earliest first), then of later matches.

Stories are single-link groups: an item similar enough to any kept item of a story joins it,
so a story is a chain of near-duplicates, not a set all alike.

Bounded state: per key at most `max_items` items (default 1000; the earliest arrived is dropped
first), each with its shingles (a sorted list of ints); an item is forgotten once the watermark
is more than `within` past it (no event still accepted can be compared with it or count it). A
key's state is forgotten (`expired`) when every item is; a story's own state holds only its
episode. Cost: a new item is compared with the kept items of its key within `within` whose
shingle counts allow the similarity (|A| / |B| between `similarity` and its inverse): at most
`max_items` set intersections of one item's shingles (a few hundred for an article) per event.

Templates may use `story` (the story's name), besides `value` and the event's fields.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Literal

from ioc.rules.exceptions import did_you_mean
from ioc.rules.kinds.base import BuildContext, InstantRule, InstantSpec, Key, KindProblem, Problems, Runtime, State
from ioc.rules.kinds.match import _text_fields
from ioc.rules.kinds.new_value import _is_list
from ioc.rules.model import Duration
from ioc.text import fold
from ioc.timeutil import format_duration, format_ts

__all__ = ["MAX_ITEMS", "NearDuplicateSpec", "NearDuplicateRule", "shingles", "similarity"]

MAX_ITEMS = 100_000
_WORDS = re.compile(r"[a-z0-9]+")


class NearDuplicateSpec(InstantSpec):
    kind: Literal["near_duplicate"] = "near_duplicate"
    fields: list[str]
    similarity: float
    within: Duration
    min_count: int
    distinct: str | None = None
    shingle: int = 3
    max_items: int = 1000


def shingles(text: str, size: int = 3) -> frozenset[int]:
    """The shingles of folded `text`: each run of `size` words as a 53-bit integer.

    >>> shingles("Hồ Tả Trạch xả lũ") == shingles("HO TA TRACH XA LU")
    True
    >>> len(shingles("Hồ Tả Trạch xả lũ", 3))
    3
    """
    words = _WORDS.findall(fold(text))
    if not words:
        return frozenset()
    runs = [words] if len(words) < size else [words[i:i + size] for i in range(len(words) - size + 1)]
    return frozenset(
        int.from_bytes(hashlib.blake2b(" ".join(run).encode(), digest_size=8).digest(), "big") >> 11
        for run in runs
    )


def similarity(a: frozenset[int] | set[int], b: frozenset[int] | set[int]) -> float:
    """The Jaccard index of two shingle sets (0 when both are empty)."""
    shared = len(a & b)
    union = len(a) + len(b) - shared
    return shared / union if union else 0.0


class NearDuplicateRule(InstantRule):
    """Evaluates one `near_duplicate` rule; see the module docstring for the exact semantics."""

    Spec = NearDuplicateSpec
    spec: NearDuplicateSpec

    def __init__(self, spec: NearDuplicateSpec, ctx: BuildContext) -> None:  # type: ignore[override]
        super().__init__(spec, ctx)
        found = Problems()
        with found:
            if spec.value is not None:
                raise KindProblem("value", "is not used by kind 'near_duplicate' (the value is the number of items,"
                                           " or of distinct values of `distinct`, in the story)")
        with found:
            self._fields = _text_fields(ctx.stream, spec.fields, ctx.schemas.model(ctx.stream))
        with found:
            if not 0 < spec.similarity <= 1:
                raise KindProblem("similarity", f"{spec.similarity!r} must be more than 0 and at most 1"
                                                " (the Jaccard index of two items' shingles, e.g. 0.5)")
        with found:
            if spec.within <= 0:
                raise KindProblem("within", f"'{format_duration(spec.within)}' must be more than 0 (e.g. 6h)")
        with found:
            if spec.min_count < 2:
                raise KindProblem("min_count", f"{spec.min_count!r} must be at least 2 (a story needs two items)")
        with found:
            if not 1 <= spec.shingle <= 10:
                raise KindProblem("shingle", f"{spec.shingle!r} must be between 1 and 10 (words per shingle)")
        with found:
            # Measured against min_count: checked when min_count itself is valid.
            if not found.failed("min_count") and not spec.min_count <= spec.max_items <= MAX_ITEMS:
                raise KindProblem("max_items", f"{spec.max_items!r} must be between min_count ({spec.min_count})"
                                               f" and {MAX_ITEMS}")
        with found:
            if spec.distinct is not None:
                model = ctx.schemas.model(ctx.stream)
                known = sorted(model.model_fields)
                if spec.distinct not in known:
                    raise KindProblem("distinct", f"unknown field '{spec.distinct}' of stream '{ctx.stream}'"
                                                  f" (allowed: {', '.join(known)}{did_you_mean(spec.distinct, known)})")
                if _is_list(model, spec.distinct):
                    raise KindProblem("distinct", f"'{spec.distinct}' holds a list; distinct needs a field with one"
                                                  " value per event")
        with found:
            if "story" in spec.key:
                raise KindProblem("key", "'story' is the name the alert key gives the story; a key field cannot"
                                         " use it")
        found.raise_any()
        self.within = spec.within
        self.threshold = spec.similarity
        self.size = len(spec.key)

    @property
    def template_names(self) -> frozenset[str]:
        return frozenset({"value", "story"})

    @property
    def key_names(self) -> tuple[str, ...]:
        return (*self.spec.key, "story")

    def _text(self, event: Mapping[str, Any]) -> str:
        parts: list[str] = []
        for name, many in self._fields:
            raw = event.get(name)
            if many and isinstance(raw, list):
                parts.extend(item for item in raw if isinstance(item, str))
            elif isinstance(raw, str):
                parts.append(raw)
        return "\n".join(parts)

    def on_event(
        self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any], ts: float
    ) -> None:
        mine = shingles(self._text(event), self.spec.shingle)
        if not mine:
            return
        items: list[list[Any]] | None = state.get("items")
        if items is None:
            items = state["items"] = []
        within, threshold = self.within, self.threshold
        n = len(mine)
        best: list[Any] | None = None
        best_sim = threshold
        for item in items:
            if abs(ts - item[0]) > within:
                continue
            m = len(item[2])
            # Jaccard <= min/max of the two sizes: most items are ruled out without a set operation.
            if (m if m < n else n) < threshold * (n if m < n else m):
                continue
            shared = len(mine.intersection(item[2]))
            sim = shared / (n + m - shared)
            if sim > best_sim or (sim == best_sim and best is None):
                best, best_sim = item, sim
        ident = event.get("id")
        story = best[1] if best is not None else str(ident) if ident is not None else format_ts(ts)
        distinct = None
        if self.spec.distinct is not None:
            raw = event.get(self.spec.distinct)
            distinct = None if raw is None else raw if type(raw) is str else str(raw)
        evidence = ident if ident is not None else event.get("_pos")
        items.append([ts, story, sorted(mine), distinct, None if evidence is None else str(evidence)])
        if len(items) > self.spec.max_items:
            del items[0]
        # Forgotten once the watermark passes the last time an event could be compared with it.
        rt.schedule(ts + within, key)
        members = [item for item in items if item[1] == story and ts - within <= item[0] <= ts]
        if self.spec.distinct is None:
            value = len(members)
        else:
            value = len({item[3] for item in members if item[3] is not None})
        if value < self.spec.min_count:
            return
        story_key = (*key, story)
        story_state = rt.state(story_key)
        if not story_state.get("firing"):
            for item in members:
                if item[4] is not None:
                    rt.note(story_state, {"id": item[4]})
        rt.match(story_key, story_state, ts=ts, value=value, event={**event, "story": story}, ref=ref,
                 resolve_after=self.spec.resolve_after)

    def on_timer(self, rt: Runtime, key: Key, state: State, deadline: float) -> None:
        if len(key) > self.size:
            rt.instant_timer(key, state, deadline, self.spec.resolve_after)
            return
        items = state.get("items")
        if items:
            # The watermark is past `deadline`: every event still accepted is later than it.
            kept = [item for item in items if item[0] + self.within > deadline]
            if not kept:
                del state["items"]
            elif len(kept) < len(items):
                state["items"] = kept

    def expired(self, state: State, watermark: float) -> bool:
        within = self.within
        return all(item[0] + within < watermark for item in state.get("items") or ())


KIND = NearDuplicateRule
