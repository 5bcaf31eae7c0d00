"""The `near_duplicate` kind in the engine: the same story (near-identical text) from several items.

Rules are YAML written to tmp_path and loaded with the real loader; press events are built with
`ioc.events.decode`, as the pipeline does. docs/domain.md §5: "same story from >= 5 outlets within
6 h"; text normalised as for the match kind (NFC, tone placement, Ð for Đ, diacritics folded).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kindtest import (
    SIZES,
    T0,
    batching_settings,
    engine_of,
    feed,
    make_rules,
    only_problem,
    per_fingerprint,
    replay,
    restored,
    rule_doc,
    rule_error,
)

from ioc.alerts import Alert
from ioc.events import decode
from ioc.rules.kinds import RULE_KINDS
from ioc.rules.kinds.near_duplicate import NearDuplicateRule, shingles, similarity
from ioc.rules.loader import RuleSet
from ioc.timeutil import format_ts

H = 3600.0
RULE: dict[str, Any] = {
    "id": "t.story", "stream": "press", "kind": "near_duplicate", "key": ["lang"], "fields": ["title", "body"],
    "similarity": 0.5, "within": "6h", "distinct": "source_id", "min_count": 3, "resolve_after": "1h",
    "summary": "{value} báo: {title} ({story})",
}

STORY = ("Chiều 27/10, hồ Tả Trạch tăng lưu lượng xả lũ lên 3.000 m³/s; mực nước sông Hương tại Kim Long"
         " lên 2,6 m, trên báo động 2. Nhiều tuyến đường ở TP Huế ngập sâu, người dân vùng trũng được sơ tán.")
OTHER = ("Sáng 27/10, giá xăng RON 95 giảm 500 đồng một lít từ 15 giờ chiều nay theo điều hành của liên bộ"
         " Công Thương - Tài chính; giá dầu diesel giữ nguyên.")


def rules_of(tmp_path: Path, **fields: Any) -> RuleSet:
    rule = {**RULE, **{k: v for k, v in fields.items() if v is not None}}
    for name in [k for k, v in fields.items() if v is None]:
        rule.pop(name, None)
    return make_rules(tmp_path, rule_doc(rule))


def item(at: float, source: str, body: str = STORY, *, title: str = "Huế: hồ Tả Trạch xả lũ", ident: str | None = None,
         lang: str | None = "vi") -> dict[str, Any]:
    raw: dict[str, Any] = {"source_id": source, "ts": format_ts(T0 + at), "title": title, "body": body}
    if lang is not None:
        raw["lang"] = lang
    raw["id"] = ident if ident is not None else f"{source}-{int(at)}"
    return decode("press", raw)


def run(rules: RuleSet, events: list[dict[str, Any]]) -> list[Alert]:
    return feed(engine_of(rules), events, stream="press")


def brief(alerts: list[Alert]) -> list[tuple[str, dict[str, Any], Any, float, float | None]]:
    return [(a.status, a.key, a.value, a.starts_at - T0, None if a.ends_at is None else a.ends_at - T0)
            for a in alerts]


def test_registered() -> None:
    assert RULE_KINDS["near_duplicate"] is NearDuplicateRule


def test_shingles_fold_vietnamese_and_similarity_is_jaccard() -> None:
    nfd = "Ho\u0302\u0300 Ta\u0309 Tra\u0323ch xa\u0309 lu\u0303"  # NFD "Hồ Tả Trạch xả lũ"
    assert shingles(nfd) == shingles("HỒ TẢ TRẠCH XẢ LŨ") == shingles("ho ta trach, xa lu!")
    assert shingles("Ðà Nẵng") == shingles("Đà Nẵng") == shingles("da nang")
    a, b = shingles("a b c d e"), shingles("a b c d f")  # {abc, bcd, cde} vs {abc, bcd, cdf}
    assert similarity(a, b) == 2 / 4
    assert shingles("hai từ", 3) == shingles("hai tu", 3) and len(shingles("hai từ", 3)) == 1
    assert shingles("!!! …") == frozenset()


def test_fires_when_the_story_reaches_min_count_outlets(tmp_path: Path) -> None:
    alerts = run(rules_of(tmp_path), [
        item(0, "a.vn"), item(600, "b.vn", STORY + " Theo Ban chỉ huy PCTT tỉnh."),
        item(1200, "other.vn", OTHER), item(1800, "c.vn", "Cập nhật: " + STORY),
    ])
    assert brief(alerts) == [("firing", {"lang": "vi", "story": "a.vn-0"}, 3, 1800.0, None)]
    assert alerts[0].summary == "3 báo: Huế: hồ Tả Trạch xả lũ (a.vn-0)"
    assert alerts[0].evidence == ["a.vn-0", "b.vn-600", "c.vn-1800"]
    assert alerts[0].kind == "near_duplicate"


def test_the_same_outlet_twice_counts_once_with_distinct(tmp_path: Path) -> None:
    events = [item(0, "a.vn"), item(600, "a.vn"), item(1200, "b.vn")]
    assert run(rules_of(tmp_path), events) == []
    # Without `distinct` the items are counted.
    assert brief(run(rules_of(tmp_path, distinct=None), events)) == [
        ("firing", {"lang": "vi", "story": "a.vn-0"}, 3, 1200.0, None)]


def test_text_typed_differently_is_the_same_story(tmp_path: Path) -> None:
    from sensors_sim.press import retype
    title = retype("Huế: hồ Tả Trạch xả lũ", eth=True)
    events = [item(0, "a.vn"), item(600, "b.vn", retype(STORY, nfd=True), title=title),
              item(1200, "c.vn", STORY.upper())]
    assert [a.value for a in run(rules_of(tmp_path), events)] == [3]


def test_different_stories_do_not_group(tmp_path: Path) -> None:
    events = [item(0, "a.vn"), item(600, "b.vn", OTHER, title="Giá xăng giảm"), item(1200, "c.vn", OTHER,
                                                                                       title="Giá xăng giảm")]
    assert run(rules_of(tmp_path), events) == []


def test_two_stories_have_their_own_keys_and_alert_ids(tmp_path: Path) -> None:
    events = [item(0, "a.vn"), item(60, "x.vn", OTHER, title="Giá xăng giảm"), item(600, "b.vn"),
              item(660, "y.vn", OTHER, title="Giá xăng giảm"), item(1200, "c.vn"),
              item(1260, "z.vn", OTHER, title="Giá xăng giảm")]
    alerts = run(rules_of(tmp_path), events)
    assert [a.key["story"] for a in alerts] == ["a.vn-0", "x.vn-60"]
    assert alerts[0].fingerprint != alerts[1].fingerprint


def test_within_boundary(tmp_path: Path) -> None:
    rules = rules_of(tmp_path, min_count=2)
    # Exactly 6 h apart: same story, counted.
    assert [a.value for a in run(rules, [item(0, "a.vn"), item(6 * H, "b.vn")])] == [2]
    # One second more: a new story (and nothing to count with).
    assert run(rules, [item(0, "a.vn"), item(6 * H + 1, "b.vn")]) == []


def test_count_is_over_the_last_within(tmp_path: Path) -> None:
    # A chain of re-publications 4 h apart: each joins the story, but never 3 outlets within 6 h.
    events = [item(k * 4 * H, f"o{k}.vn") for k in range(5)]
    assert run(rules_of(tmp_path), events) == []


def test_resolves_resolve_after_the_last_match_and_later_matches_extend(tmp_path: Path) -> None:
    events = [item(0, "a.vn"), item(600, "b.vn"), item(1200, "c.vn"), item(2400, "d.vn"),
              item(4 * H, "other.vn", OTHER, title="Giá xăng")]
    assert brief(run(rules_of(tmp_path), events)) == [
        ("firing", {"lang": "vi", "story": "a.vn-0"}, 3, 1200.0, None),
        ("resolved", {"lang": "vi", "story": "a.vn-0"}, 4, 1200.0, 2400.0 + H),
    ]


def test_an_item_without_text_or_key_is_ignored(tmp_path: Path) -> None:
    events = [item(0, "a.vn"), item(300, "n.vn", "", title="!!!"), item(600, "b.vn"), item(900, "c.vn", lang=None)]
    assert run(rules_of(tmp_path), events) == []


def test_state_is_bounded_and_forgotten_by_the_watermark(tmp_path: Path) -> None:
    engine = engine_of(rules_of(tmp_path, max_items=3))
    feed(engine, [item(k * 60, f"o{k}.vn", OTHER + f" tin {k}") for k in range(5)], stream="press")
    assert len(engine.states["t.story"][("vi",)]["items"]) == 3
    feed(engine, [item(7 * H, "late.vn", "Một tin khác hẳn về lễ hội áo dài")], stream="press")
    # Every item older than 6 h before the watermark is gone; the new one is kept.
    assert [i[1] for i in engine.states["t.story"][("vi",)]["items"]] == ["late.vn-25200"]
    feed(engine, [item(14 * H, "x.vn", lang="en")], stream="press")
    assert engine.states["t.story"][("vi",)] == {}  # pruned by its timer; the sweep drops the key
    engine.sweep()
    assert list(engine.states["t.story"]) == [("en",)]


def test_snapshot_restore_continues(tmp_path: Path) -> None:
    rules = rules_of(tmp_path)
    events = [item(0, "a.vn"), item(600, "b.vn"), item(1200, "c.vn"), item(3 * H, "z.vn", OTHER, title="x")]
    whole = run(rules, events)
    first = engine_of(rules)
    before = feed(first, events[:2], stream="press")
    after = feed(restored(first, rules), events[2:], stream="press")
    assert [a.to_record() for a in before + after] == [a.to_record() for a in whole]
    assert json.loads(json.dumps(first.snapshot()))  # plain data


@pytest.mark.parametrize(("fields", "expected"), [
    ({"similarity": 1.5}, "similarity: 1.5 must be more than 0 and at most 1 (the Jaccard index of two items'"
                          " shingles, e.g. 0.5)"),
    ({"within": 0}, "within: '0s' must be more than 0 (e.g. 6h)"),
    ({"min_count": 1}, "min_count: 1 must be at least 2 (a story needs two items)"),
    ({"fields": ["titel"]}, "fields: unknown field 'titel' of stream 'press' (allowed: body, id, lang, source_id,"
                            " title, topics, url; did you mean 'title'?)"),
    ({"fields": ["sentiment"]}, "fields: 'sentiment' is not a text field of stream 'press' (allowed: body, id, lang,"
                                " source_id, title, topics, url)"),
    ({"distinct": "source"}, "distinct: unknown field 'source' of stream 'press' (allowed: body, engagement, id,"
                             " is_official, lang, sentiment, source_id, title, topics, ts, url; did you mean"
                             " 'source_id'?)"),
    ({"distinct": "topics"}, "distinct: 'topics' holds a list; distinct needs a field with one value per event"),
    ({"max_items": 2}, "max_items: 2 must be between min_count (3) and 100000"),
    ({"value": "1"}, "value: is not used by kind 'near_duplicate' (the value is the number of items, or of distinct"
                     " values of `distinct`, in the story)"),
])
def test_build_errors(tmp_path: Path, fields: dict[str, Any], expected: str) -> None:
    # Without the summary: a rule whose kind does not build has its templates checked without the
    # kind's names (`story`), a second error (the loader's, for every kind).
    rule = {k: v for k, v in {**RULE, **fields}.items() if k != "summary"}
    message = only_problem(rule_error(tmp_path, rule_doc(rule)))
    assert message == f"{tmp_path / 'rules.yaml'}:2: rule 't.story': {expected}"


def test_missing_similarity_is_reported(tmp_path: Path) -> None:
    rule = {k: v for k, v in RULE.items() if k != "similarity"}
    assert only_problem(rule_error(tmp_path, rule_doc(rule))).endswith("similarity: required field is missing")


# -- batching and lateness do not change results (property) ------------------------------------

CORPUS = (STORY, STORY + " Theo Ban chỉ huy.", "Cập nhật: " + STORY, OTHER, OTHER.upper(), "Lễ hội áo dài Huế 2025",
          "Huế: lễ hội áo dài 2025 khai mạc")


@st.composite
def press_streams(draw: st.DrawFn) -> list[tuple[int, dict[str, Any]]]:
    """Press items of 5 outlets, all on partition 0 (one key), times moving 0..40 min, now and then back
    (out of order by up to 10 min)."""
    t, pairs = 0.0, []
    for n in range(draw(st.integers(1, 30))):
        t = max(0.0, t + draw(st.sampled_from([-600.0, 0.0, 60.0, 600.0, 1800.0, 2400.0])))
        source = draw(st.sampled_from(["a.vn", "b.vn", "c.vn", "d.vn", "e.vn"]))
        pairs.append((0, item(t, source, draw(st.sampled_from(CORPUS)), ident=f"i{n}")))
    return pairs


@batching_settings(200)
@given(pairs=press_streams(), sizes=SIZES, lateness=st.sampled_from([0.0, 600.0]))
def test_batching_does_not_change_alerts(tmp_path_factory: pytest.TempPathFactory, pairs: list[Any],
                                         sizes: list[int], lateness: float) -> None:
    rules = rules_of(tmp_path_factory.mktemp("r"), min_count=2, within="1h", resolve_after="30m")
    one, _ = replay(rules, pairs, [1], stream="press", lateness=lateness, end=T0 + 30 * H)
    batched, engine = replay(rules, pairs, sizes, stream="press", lateness=lateness, end=T0 + 30 * H)
    assert per_fingerprint(batched) == per_fingerprint(one)
    # And a sweep at the end forgets everything (the watermark is far past every item).
    engine.sweep()
    assert not engine.states["t.story"]


def test_similarity_exactly_the_threshold_joins(tmp_path: Path) -> None:
    # {a b c, b c d, c d e} and {a b c, b c d, c d f}: Jaccard 2/4 = 0.5, the rule's similarity.
    rules = rules_of(tmp_path, fields=["body"], distinct=None, min_count=2)
    alerts = run(rules, [item(0, "a.vn", "a b c d e"), item(60, "b.vn", "a b c d f")])
    assert [a.value for a in alerts] == [2]


def test_an_item_is_kept_until_the_watermark_is_within_past_it(tmp_path: Path) -> None:
    # The 00:00 item's timer (06:00) fires at the 06:03 item; the 00:05 story item stays until 06:05.
    rules = rules_of(tmp_path, distinct=None, min_count=2)
    events = [item(0, "x.vn", OTHER, title="Giá xăng"), item(300, "a.vn"), item(6 * H + 180, "b.vn")]
    assert [a.value for a in run(rules, events)] == [2]


def test_with_lateness_the_count_is_still_over_the_last_within(tmp_path: Path) -> None:
    # a, b 4 h later, c 3 h after b: one story, but only b and c lie in c's last 6 h. With 3 h of
    # lateness `a` is still kept (the watermark is at 04:00) and must not be counted.
    rules = rules_of(tmp_path)
    engine = engine_of(rules, lateness_s=3 * H)
    alerts = feed(engine, [item(0, "a.vn"), item(4 * H, "b.vn"), item(7 * H, "c.vn")], stream="press")
    assert alerts == []
    assert len(engine.states["t.story"][("vi",)]["items"]) == 3
