"""The `match` kind in the engine: keywords and regex over text fields, Vietnamese-aware.

Rules are YAML written to tmp_path and loaded with the real loader; events are built with
`ioc.events.decode`, as the pipeline does. Press examples follow docs/domain.md §5 (aliases of
Huế, flood/dam keywords), cyber examples the SQLi signatures of §4.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import kindtest
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kindtest import (
    SIZES,
    T0,
    Pairs,
    arrivals,
    batching_settings,
    brief,
    engine_of,
    make_rules,
    replay,
    restored,
    rule_error,
    summary_of,
)

from ioc.alerts import Alert, fingerprint
from ioc.events import decode
from ioc.rules.exceptions import RuleError
from ioc.rules.kinds import RULE_KINDS
from ioc.rules.kinds.match import Matched
from ioc.rules.loader import RuleSet

RULE_ID = "press.flood.keywords"
HUE_ALIASES = ["Thừa Thiên Huế", "Thừa Thiên - Huế", "TT-Huế", "TP Huế", "Huế", "cố đô"]
FLOOD = ["xả lũ", "vỡ đập", "ngập"]


# One match rule over the press stream (flood keywords in title and body): `rule_yaml(**fields)` overrides,
# adds or (None) removes fields.
RULE: dict[str, Any] = {
    "id": RULE_ID,
    "stream": "press",
    "kind": "match",
    "fields": ["title", "body"],
    "any": FLOOD,
    "severity": "warning",
    "labels": {"domain": "press"},
    "summary": "{source_id}: {matched} ({title})",
}


# -- helpers --------------------------------------------------------------------------------

rule_yaml = partial(kindtest.rule_yaml, RULE)
feed = partial(kindtest.feed, stream="press")


def one_rule(tmp_path: Path, **fields: Any) -> RuleSet:
    return make_rules(tmp_path, rule_yaml(**fields))


def errors(tmp_path: Path, **fields: Any) -> list[str]:
    """The analyst messages for one rule that does not load."""
    return [str(problem) for problem in rule_error(tmp_path, rule_yaml(**fields)).problems]


def press(source: str, t: float, title: str = "", body: str | None = None, id: str | None = None,
          **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"source_id": source, "ts": T0 + t, "title": title}
    if body is not None:
        raw["body"] = body
    if id is not None:
        raw["id"] = id
    raw.update(extra)
    return decode("press", raw)


def cyber(source: str, t: float, url: str, **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"source_id": source, "ts": T0 + t, "event_action": "http_request", "url": url}
    raw.update(extra)
    return decode("cyber", raw)


def matches(tmp_path: Path, title: str, body: str | None = None, **fields: Any) -> list[Any]:
    """The value of the alert one event fires (or [] if it does not match)."""
    alerts = engine_of(one_rule(tmp_path, **fields)).process("press", [press("vnexpress", 0, title, body)])
    return alerts[0].details["matched"] if alerts else []


# -- firing and the alert record ----------------------------------------------------------------


def test_registered() -> None:
    assert RULE_KINDS["match"].__name__ == "MatchRule"


def test_fires_on_a_keyword_with_the_alert_record(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, sla={"ack": "15m", "resolve": "2h"},
                     description="Từ khóa: {value}. Bài: {url}")
    engine = engine_of(rules)
    event = press("tuoitre", 60, "Thủy điện Bình Điền XẢ LŨ, hạ du ngập sâu", "Nước lên nhanh.",
                  id="art-1", url="https://tuoitre.vn/a1")
    alerts = engine.process("press", [event])
    assert brief(alerts) == [("firing", "tuoitre", 60.0, None)]
    alert = alerts[0]
    # Nothing measured: the matched keywords and where they are in the text are details.
    assert alert.value is None
    assert alert.details == {"matched": ["xả lũ", "ngập"], "excerpt": "Thủy điện Bình Điền XẢ LŨ, hạ du ngập sâu"}
    assert alert.summary == "tuoitre: xả lũ, ngập (Thủy điện Bình Điền XẢ LŨ, hạ du ngập sâu)"
    assert alert.description == "Từ khóa: xả lũ, ngập. Bài: https://tuoitre.vn/a1"
    assert alert.key == {"source_id": "tuoitre"}
    assert alert.kind == "match" and alert.rule_id == RULE_ID and alert.stream == "press"
    assert alert.labels == {"domain": "press"}
    assert alert.evidence == ["art-1"]
    assert alert.fingerprint == fingerprint(RULE_ID, {"source_id": "tuoitre"})
    assert alert.alert_id == f"{alert.fingerprint}-{round((T0 + 60) * 1000)}"
    assert alert.sla == {"ack_by": T0 + 60 + 900, "resolve_by": T0 + 60 + 7200}
    record = alert.to_record()
    assert record["value"] is None and record["details"]["matched"] == ["xả lũ", "ngập"]
    assert record["starts_at"] == "2025-10-27T01:01:00Z" and record["ends_at"] is None
    assert json.loads(alert.to_json())["details"]["matched"] == ["xả lũ", "ngập"]


def test_value_is_a_plain_list_that_renders_joined(tmp_path: Path) -> None:
    value = Matched(["xả lũ", "ngập"])
    assert value == ["xả lũ", "ngập"] and isinstance(value, list)
    assert f"{value}" == "xả lũ, ngập"
    assert f"{value:>14.6}" == "        xả lũ,"
    assert json.loads(json.dumps(value)) == ["xả lũ", "ngập"]


def test_matched_in_templates_with_format_spec_and_literal_braces(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, summary="{{matched}} = [{matched:.5}] {source_id}")
    alerts = engine_of(rules).process("press", [press("vnexpress", 0, "Vỡ đập và xả lũ")])
    assert alerts[0].summary == "{matched} = [vỡ đậ] vnexpress"
    # The loader still checks the other names of the template.
    assert any("unknown field 'matchd'" in e and "did you mean 'matched'" in e
               for e in errors(tmp_path, summary="{matchd}"))


def test_value_lists_any_hits_in_text_order_then_all_then_patterns(tmp_path: Path) -> None:
    value = matches(tmp_path, "Ngập ở cố đô: vỡ đập, lại ngập", any=["vỡ đập", "ngập"], all=["cố đô"],
                    regex=["d[ao]p", "khong"])
    assert value == ["ngập", "vỡ đập", "cố đô", "d[ao]p"]


def test_equal_keywords_after_folding_report_the_first_spelling(tmp_path: Path) -> None:
    assert matches(tmp_path, "Mưa lớn ở HUẾ", any=HUE_ALIASES + ["Hue"]) == ["Huế"]


def test_longer_keyword_wins_at_the_same_place(tmp_path: Path) -> None:
    assert matches(tmp_path, "Thừa Thiên Huế mưa lớn", any=HUE_ALIASES) == ["Thừa Thiên Huế"]
    assert matches(tmp_path, "Thừa Thiên - Huế và TT–Huế", any=HUE_ALIASES) == ["Thừa Thiên - Huế", "TT-Huế"]


# -- folding, normalising and word boundaries ---------------------------------------------------


@pytest.mark.parametrize("title", [
    "Thủy điện xả lũ",
    "THỦY ĐIỆN XẢ LŨ",
    "thuy dien xa lu",
    unicodedata.normalize("NFD", "Thủy điện xả lũ"),
    "Thuỷ điện  Xả\u00a0Lũ",
])
def test_fold_matches_case_diacritics_nfd_and_spacing(tmp_path: Path, title: str) -> None:
    assert matches(tmp_path, title) == ["xả lũ"]


@pytest.mark.parametrize(("title", "expected"), [
    ("Hòa Bình hòa hoãn", ["hoà"]),        # old tone placement in the text, new in the rule
    ("Ðà Nẵng", ["Đà Nẵng"]),              # U+00D0 typed for Đ
])
def test_fold_false_compares_normalised_text(tmp_path: Path, title: str, expected: list[str]) -> None:
    assert matches(tmp_path, title, fold=False, any=["hoà", "Đà Nẵng"]) == expected


def test_fold_false_regex_meets_normalised_text(tmp_path: Path) -> None:
    rule = {"any": None, "fold": False, "regex": r"ho(à|a) bình"}
    assert matches(tmp_path, "HÒA BÌNH", **rule) == [r"ho(à|a) bình"]        # old tone placement in text
    assert matches(tmp_path, unicodedata.normalize("NFD", "hoà bình"), **rule) == [r"ho(à|a) bình"]
    assert matches(tmp_path, "hoa binh", **rule) == []


def test_fold_false_keeps_diacritics_apart(tmp_path: Path) -> None:
    assert matches(tmp_path, "Nước lũ về", fold=False, any=["lu"]) == []
    assert matches(tmp_path, "Nước lu về", fold=False, any=["lũ"]) == []
    assert matches(tmp_path, "NƯỚC LŨ VỀ", fold=False, any=["lũ"]) == ["lũ"]
    assert matches(tmp_path, "Nước lũ về", fold=True, any=["lu"]) == ["lu"]


def test_whole_words_by_default(tmp_path: Path) -> None:
    assert matches(tmp_path, "Huesca, Spain", any=["Hue"]) == []
    assert matches(tmp_path, "Đường đến Huế.", any=["Hue"]) == ["Hue"]
    assert matches(tmp_path, "Huesca, Spain", any=["Hue"], whole_words=False) == ["Hue"]
    # A keyword edge that is not a letter puts no boundary there.
    assert matches(tmp_path, "mã lỗi 5xx-", any=["5xx-"]) == ["5xx-"]


def test_keyword_never_spans_two_fields(tmp_path: Path) -> None:
    assert matches(tmp_path, "Thủy điện xả", "lũ lớn") == []
    assert matches(tmp_path, "Thủy điện", "xả lũ lớn") == ["xả lũ"]


def test_list_field_is_searched_item_by_item(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, fields=["topics"], any=["lũ lụt", "lụt huế"])
    engine = engine_of(rules)
    assert engine.process("press", [press("a", 0, topics=["Lũ lụt", "Huế"])])[0].details["matched"] == ["lũ lụt"]
    assert engine.process("press", [press("b", 0, topics=["mưa lụt", "Huế"])]) == []
    assert engine.process("press", [press("c", 0, topics=None)]) == []


def test_missing_fields_never_match(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, fields=["body"]))
    assert engine.process("press", [press("a", 0, "xả lũ")]) == []
    assert brief(engine.process("press", [press("a", 1, "", "Xả lũ")])) == [("firing", "a", 1.0, None)]


# -- any, all, exclude, regex, condition, where -------------------------------------------------


def test_all_needs_every_keyword_across_fields(tmp_path: Path) -> None:
    rule = {"any": None, "all": ["Huế", "vỡ đập"]}
    assert matches(tmp_path, "Tin Huế", "Nguy cơ vỡ đập", **rule) == ["Huế", "vỡ đập"]
    assert matches(tmp_path, "Tin Huế", "Nguy cơ xả lũ", **rule) == []


def test_all_keywords_inside_each_other_are_each_found(tmp_path: Path) -> None:
    assert matches(tmp_path, "Nguy cơ vỡ đập", any=None, all=["vỡ đập", "đập"]) == ["vỡ đập", "đập"]


def test_exclude_vetoes_a_match(tmp_path: Path) -> None:
    assert matches(tmp_path, "Diễn tập xả lũ", exclude=["diễn tập"]) == []
    assert matches(tmp_path, "Xả lũ thật", exclude=["diễn tập"]) == ["xả lũ"]


def test_regex_on_cyber_urls_unfolded(tmp_path: Path) -> None:
    patterns = [r"union\s+(all\s+)?select", r"'\s*or\s+1\s*=\s*1"]
    rules = make_rules(tmp_path, (
        "rules:\n"
        "  - id: cyber.sqli\n"
        "    stream: cyber\n"
        "    kind: match\n"
        "    key: [src_ip]\n"
        "    fields: [url]\n"
        "    fold: false\n"
        f"    regex: {json.dumps(patterns)}\n"
        "    summary: 'SQLi from {src_ip}: {matched}'\n"
    ))
    engine = engine_of(rules)
    ip = "203.0.113.7"
    alerts = engine.process("cyber", [
        cyber("waf-1", 0, "/news?id=1", src_ip=ip),
        cyber("waf-1", 1, "/news?id=1%20UNION  ALL SELECT user,pass FROM users", src_ip=ip),
        cyber("waf-1", 2, "/login?u=admin' OR 1=1--", src_ip="198.51.100.2"),
    ])
    assert [(a.key, a.details["matched"]) for a in alerts] == [
        ({"src_ip": ip}, ["union\\s+(all\\s+)?select"]),
        ({"src_ip": "198.51.100.2"}, ["'\\s*or\\s+1\\s*=\\s*1"]),
    ]
    assert alerts[0].summary == "SQLi from 203.0.113.7: union\\s+(all\\s+)?select"


def test_regex_and_keywords_must_both_hold(tmp_path: Path) -> None:
    rule = {"any": ["vỡ đập"], "regex": r"\d+ ?m3/s"}
    assert matches(tmp_path, "Vỡ đập? xả 4000 m3/s", **rule) == ["vỡ đập", r"\d+ ?m3/s"]
    assert matches(tmp_path, "Vỡ đập?", **rule) == []
    assert matches(tmp_path, "xả 4000 m3/s", **rule) == []


def test_condition_over_event_fields(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, any=HUE_ALIASES, condition="sentiment <= -0.5")
    engine = engine_of(rules)
    assert engine.process("press", [press("a", 0, "Huế ngập sâu", sentiment=-0.4)]) == []
    assert engine.process("press", [press("b", 0, "Huế ngập sâu")]) == []  # no sentiment: false
    assert brief(engine.process("press", [press("c", 0, "Cố đô ngập sâu", sentiment=-0.5)])) == [
        ("firing", "c", 0.0, None)
    ]


def test_where_filters_before_the_rule(tmp_path: Path) -> None:
    rules = one_rule(tmp_path, where="is_official != True and source_id != 'huengaynay.vn'")
    engine = engine_of(rules)
    assert engine.process("press", [press("huengaynay.vn", 0, "Xả lũ")]) == []
    assert engine.process("press", [press("baochinhphu.vn", 0, "Xả lũ", is_official=True)]) == []
    assert brief(engine.process("press", [press("vnexpress.net", 0, "Xả lũ")])) == [
        ("firing", "vnexpress.net", 0.0, None)
    ]


def test_two_rules_share_prepared_text_and_see_new_text(tmp_path: Path) -> None:
    rules = make_rules(tmp_path, (
        "defaults: {stream: press, kind: match, fields: [title]}\n"
        "rules:\n"
        "  - {id: r.fold, any: [lu]}\n"
        "  - {id: r.exact, any: [lũ], fold: false}\n"
        "  - {id: r.fold2, any: [xa lu]}\n"
    ))
    engine = engine_of(rules)
    first = engine.process("press", [press("a", 0, "Xả lũ")])
    assert sorted(a.rule_id for a in first) == ["r.exact", "r.fold", "r.fold2"]
    event = press("b", 1, "Xả lu")
    assert sorted(a.rule_id for a in engine.process("press", [event])) == ["r.fold", "r.fold2"]
    event = dict(event, title="Không có gì", ts=T0 + 2, source_id="c")  # same dict shape, new text
    assert engine.process("press", [event]) == []


# -- episodes: extension, resolution, realert --------------------------------------------------------


def test_later_matches_extend_and_it_resolves_after_the_last(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, resolve_after="10m"))
    out = feed(engine, [
        press("a", 0, "Xả lũ", id="e1"),
        press("a", 300, "Ngập sâu", id="e2"),
        press("a", 500, "Thời tiết đẹp", id="e3"),   # no match: does not resolve
        press("a", 899, "Vỡ đập", id="e4"),
    ])
    assert brief(out) == [("firing", "a", 0.0, None)]
    assert engine.advance("press", T0 + 899 + 600) == []  # timers fire once the watermark passes them
    resolved = engine.advance("press", T0 + 899 + 600.001)
    assert brief(resolved) == [("resolved", "a", 0.0, 1499.0)]
    # The resolved record shows the last match's keywords and the evidence of the episode.
    assert resolved[0].details["matched"] == ["vỡ đập"]
    assert resolved[0].evidence == ["e1", "e2", "e4"]
    assert resolved[0].alert_id == out[0].alert_id


def test_resolves_when_a_later_event_moves_the_watermark(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))  # resolve_after 5m
    assert brief(feed(engine, [press("a", 0, "Xả lũ"), press("b", 301, "Nắng đẹp")])) == [
        ("firing", "a", 0.0, None), ("resolved", "a", 0.0, 300.0),
    ]


def test_match_exactly_at_the_resolve_time_extends_the_episode(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    out = feed(engine, [press("a", 0, "Xả lũ"), press("a", 300, "Ngập")])
    assert brief(out) == [("firing", "a", 0.0, None)]
    assert brief(engine.advance("press", T0 + 601)) == [("resolved", "a", 0.0, 600.0)]


def test_match_one_second_after_the_resolve_time_is_a_new_episode(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    out = feed(engine, [press("a", 0, "Xả lũ"), press("a", 301, "Ngập")])
    assert brief(out) == [("firing", "a", 0.0, None), ("resolved", "a", 0.0, 300.0), ("firing", "a", 301.0, None)]
    assert out[0].alert_id != out[2].alert_id and out[0].fingerprint == out[2].fingerprint


def test_resolution_waits_for_the_watermark_to_pass_the_resolve_time(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    out = feed(engine, [press("a", 0, "Xả lũ"), press("b", 300, "Nắng")])
    assert brief(out) == [("firing", "a", 0.0, None)]
    # Another event at 300 could still be a match of "a": the episode ends once time moves on.
    assert brief(feed(engine, [press("c", 300, "Nắng"), press("c", 300.5, "Nắng")])) == [
        ("resolved", "a", 0.0, 300.0)
    ]


def test_keys_are_independent(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    out = feed(engine, [press("a", 0, "Xả lũ"), press("b", 100, "Ngập"), press("a", 200, "Ngập")])
    assert brief(out) == [("firing", "a", 0.0, None), ("firing", "b", 100.0, None)]
    assert brief(engine.advance("press", T0 + 1000)) == [("resolved", "b", 100.0, 400.0), ("resolved", "a", 0.0, 500.0)]


def test_realert_drops_matches_too_soon_after_an_episode(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="30m"))
    out = feed(engine, [
        press("a", 0, "Xả lũ"),
        press("a", 400, "Ngập"),     # the episode ended at 300: inside realert (until 2100)
        press("a", 2099, "Ngập"),
        press("a", 2100, "Vỡ đập"),  # realert over: a new episode
    ])
    assert brief(out) == [("firing", "a", 0.0, None), ("resolved", "a", 0.0, 300.0), ("firing", "a", 2100.0, None)]
    assert out[2].details["matched"] == ["vỡ đập"]


def test_resolve_after_is_per_rule(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, resolve_after="1h"))
    feed(engine, [press("a", 0, "Xả lũ")])
    assert engine.advance("press", T0 + 3600) == []
    assert brief(engine.advance("press", T0 + 3601)) == [("resolved", "a", 0.0, 3600.0)]


def test_worked_example_of_the_docs(tmp_path: Path) -> None:
    """docs/kinds/match.md: tuoitre.vn on 27 Oct 2025, resolve_after 10m (T0 is 08:00 Huế time)."""
    engine = engine_of(one_rule(tmp_path, fields=["title", "body", "topics"], resolve_after="10m"))
    minute = 60.0
    steps = [
        (0, "Thủy điện Bình Điền XẢ LŨ, hạ du ngập sâu", [("firing", "tuoitre.vn", 0.0, None)]),
        (4, "Giá vàng hôm nay", []),
        (7, "Nguy co VO DAP o Ta Trach?", []),
        (17, "Nước rút chậm", []),
        (20, "Mưa tạnh ở Huế", [("resolved", "tuoitre.vn", 0.0, 17 * minute)]),
        (25, "Diễn tập xả lũ", [("firing", "tuoitre.vn", 25 * minute, None)]),
    ]
    alerts: list[Alert] = []
    for at, title, expected in steps:
        out = engine.process("press", [press("tuoitre.vn", at * minute, title)])
        assert brief(out) == expected, title
        alerts.extend(out)
    assert alerts[0].details["matched"] == ["xả lũ", "ngập"]
    assert alerts[0].summary == "tuoitre.vn: xả lũ, ngập (Thủy điện Bình Điền XẢ LŨ, hạ du ngập sâu)"
    assert alerts[1].details["matched"] == ["vỡ đập"]
    assert alerts[2].details["matched"] == ["xả lũ"] and alerts[2].alert_id != alerts[0].alert_id
    exact = engine_of(one_rule(tmp_path, fold=False))
    assert exact.process("press", [press("tuoitre.vn", 0, "Nguy co VO DAP o Ta Trach?")]) == []


def test_docs_example_rules_load_and_work(tmp_path: Path) -> None:
    page = (Path(__file__).resolve().parents[3] / "docs" / "kinds" / "match.md").read_text(encoding="utf-8")
    block = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    engine = engine_of(make_rules(tmp_path, block))
    article = press("vnexpress.net", 0, "Ngập sâu ở TP Huế", "Người dân cố đô vất vả", sentiment=-0.8)
    assert sorted((a.rule_id, tuple(a.details["matched"])) for a in engine.process("press", [article])) == [
        ("press.flood.keywords", ("ngập",)),
        ("press.hue.negative", ("TP Huế", "cố đô")),
    ]
    attack = cyber("waf-1", 1, "/search?q=x' OR 1=1 --", src_ip="203.0.113.9")
    (alert,) = engine.process("cyber", [attack])
    assert alert.summary == "SQLi từ 203.0.113.9: '\\s*or\\s+1\\s*=\\s*1"


# -- lateness -------------------------------------------------------------------------------------


def test_out_of_order_within_lateness_joins_the_episode(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=120.0)
    out = feed(engine, [press("a", 100, "Xả lũ", id="e1"), press("a", 50, "Ngập", id="e2")])
    assert brief(out) == [("firing", "a", 100.0, None)]
    # The last match stays the latest in event time (100), not the last to arrive.
    assert engine.advance("press", T0 + 100 + 300) == []
    resolved = engine.advance("press", T0 + 100 + 300 + 120)
    assert brief(resolved) == [("resolved", "a", 100.0, 400.0)]
    assert resolved[0].evidence == ["e1", "e2"]


def test_out_of_order_match_within_lateness_fires_when_first(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=120.0)
    out = feed(engine, [press("b", 100, "Nắng"), press("a", -10, "Xả lũ")])
    assert brief(out) == [("firing", "a", -10.0, None)]


def test_event_beyond_lateness_is_late_and_not_evaluated(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=60.0)
    engine.process("press", [press("b", 200, "Nắng")])
    assert engine.process("press", [press("a", 139, "Xả lũ")]) == []
    assert engine.last_stats.late == 1
    assert brief(engine.process("press", [press("a", 140, "Xả lũ")])) == [("firing", "a", 140.0, None)]


# -- state --------------------------------------------------------------------------------------------


def test_state_is_plain_data_and_restores(tmp_path: Path) -> None:
    rules = one_rule(tmp_path)
    engine = engine_of(rules)
    feed(engine, [press("a", 0, "Xả lũ"), press("a", 100, "Ngập")])
    restored_engine = restored(engine, rules)
    assert brief(restored_engine.advance("press", T0 + 1000)) == brief(engine.advance("press", T0 + 1000)) == [
        ("resolved", "a", 0.0, 400.0)
    ]
    state = engine.states[RULE_ID][("a",)]
    assert set(state) <= {"firing", "_fp", "_resolved_at", "_last_starts_at"}


# -- build-time validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "expected"), [
    ({"any": None}, "any: a match rule needs at least one of 'any', 'all' or 'regex'"),
    ({"regex": "(union"}, "regex: invalid pattern '(union': missing ), unterminated subpattern at position 0"),
    ({"regex": ["ok", "a**"]}, "regex: invalid pattern 'a**': multiple repeat at position 2"),
    ({"regex": "x*"}, "regex: pattern 'x*' matches empty text, so every event would match"),
    ({"regex": r"xả\s+lũ"}, "regex: pattern 'xả\\\\s+lũ' has 'ũ', 'ả', which folded text (fold: true) never "
                            "contains (write 'xa\\\\s+lu'; or set fold: false)"),
    ({"regex": "Ðập", "fold": False}, "regex: pattern 'Ðập' has 'Ð', which normalised text never contains "
                                      "(write 'đập')"),
    ({"regex": "hòa bình", "fold": False}, "regex: pattern 'hòa bình' puts a tone mark where normalised text "
                                           "never has it (write it on the second vowel of oa, oe, uy"),
    ({"regex": []}, "regex: is empty (give a pattern or a list of patterns, or leave 'regex' out)"),
    ({"fields": ["sentiment"]}, "fields: 'sentiment' is not a text field of stream 'press' "
                                "(allowed: body, id, lang, source_id, title, topics, url)"),
    ({"fields": ["titel"]}, "fields: unknown field 'titel' of stream 'press' (allowed: body, id, lang, source_id, "
                            "title, topics, url; did you mean 'title'?)"),
    ({"fields": []}, "fields: is empty (list the text fields to search, e.g. [title, body])"),
    ({"fields": ["title", "title"]}, "fields: 'title' is listed twice"),
    ({"fields": None}, "fields: required field is missing"),
    ({"fields": "title"}, "fields: 'title' is not a list"),
    ({"any": []}, "any: is empty (list at least one keyword, or leave 'any' out)"),
    ({"all": ["Huế", "  "]}, "all: keyword '  ' is empty once normalised (give a word or phrase)"),
    ({"exclude": ["NGẬP"]}, "exclude: 'NGẬP' is also in 'any' (as 'ngập'): a keyword cannot be both looked "
                            "for and excluded"),
    ({"resolve_after": "0s"}, "resolve_after: '0s' must be more than 0 (e.g. 5m, 1h)"),
    ({"resolve_after": "soon"}, "resolve_after: 'soon' is not a duration (e.g. 30s, 5m, 2h, 1d, 1h30m)"),
    ({"value": "title"}, "value: 'title' is not allowed: a match measures nothing; the matched keywords and "
                         "patterns are its details (use {matched} in templates)"),
    ({"condition": "sentimnt <= -0.5"}, "condition: unknown field 'sentimnt'"),
    ({"exlude": ["x"]}, "exlude: unknown key (allowed: "),
    ({"fold": "yes please"}, "fold: 'yes please': Input should be a valid boolean"),
])
def test_build_errors_name_the_field_and_value(tmp_path: Path, fields: dict[str, Any], expected: str) -> None:
    found = errors(tmp_path, **fields)
    assert len(found) == 1, found
    assert found[0].startswith(f"{tmp_path / 'rules.yaml'}:2: rule '{RULE_ID}': ")
    assert expected in found[0]


def test_typo_of_a_key_suggests_the_field(tmp_path: Path) -> None:
    (message,) = errors(tmp_path, exlude=["x"])
    assert "did you mean 'exclude'?" in message
    for name in ("all", "any", "exclude", "fields", "fold", "regex", "resolve_after", "whole_words", "condition"):
        assert name in message


def test_every_problem_of_a_file_is_reported(tmp_path: Path) -> None:
    text = (
        "defaults: {stream: press, kind: match, fields: [title]}\n"
        "rules:\n"
        "  - {id: a.one, regex: '[unclosed'}\n"
        "  - {id: a.two}\n"
        "  - {id: a.three, any: [ok], condition: 'nope > 1'}\n"
    )
    with pytest.raises(RuleError) as info:
        make_rules(tmp_path, text)
    found = [(p.line, p.rule_id, p.field) for p in info.value.problems]
    assert found == [(3, "a.one", "regex"), (4, "a.two", "any"), (5, "a.three", "condition")]


# -- batching does not change results (property) ---------------------------------------------------

PROPERTY_RULES = (
    "defaults: {stream: press, kind: match, fields: [title, topics]}\n"
    "rules:\n"
    "  - {id: p.flood, any: [xả lũ, vỡ đập, ngập], exclude: [diễn tập], realert: 10m, summary: '{matched}'}\n"
    "  - {id: p.hue, all: [huế, ngập], resolve_after: 2m, summary: '{matched}'}\n"
    "  - {id: p.exact, regex: 'lũ|đập', fold: false, resolve_after: 7m}\n"
    "  - {id: p.neg, any: [huế, cố đô], condition: 'sentiment <= -0.5', resolve_after: 1m}\n"
)
TITLES = ("Xả lũ ở Huế", "HUẾ NGẬP SÂU", "Diễn tập xả lũ", "Vỡ đập?", "Nắng đẹp", "cố đô ngập", "xa lu", "Ðập")


@pytest.fixture(scope="module")
def property_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return make_rules(tmp_path_factory.mktemp("prop"), PROPERTY_RULES)


@st.composite
def press_streams(draw: st.DrawFn, *, ordered: bool = True) -> Pairs:
    outlets = draw(st.lists(st.sampled_from(["tuoitre", "vnexpress", "thanhnien"]), min_size=1, max_size=3,
                            unique=True))
    steps = [0, 1, 59, 60, 61, 119, 120, 300, 301, 600, 1200]
    pairs = []
    for i, (part, outlet, t) in enumerate(arrivals(draw, outlets, count=40, steps=steps, clamp=True,
                                                   late=None if ordered else (-200, 700))):
        raw: dict[str, Any] = {
            "source_id": outlet, "ts": T0 + t, "id": f"e{i}",
            "title": draw(st.sampled_from(TITLES)),
            "topics": draw(st.lists(st.sampled_from(["lũ", "Huế", "du lịch"]), max_size=2)),
            "sentiment": draw(st.sampled_from([-0.9, -0.5, 0.0, 0.6])),
        }
        pairs.append((part, decode("press", raw)))
    return pairs


def per_fingerprint(alerts: Sequence[Alert]) -> dict[str, list[tuple[str, str, float, float | None, Any]]]:
    """As `kindtest.per_fingerprint`, with each alert's value (the matched words)."""
    out: dict[str, list[tuple[str, str, float, float | None, Any]]] = {}
    for a in alerts:
        out.setdefault(a.fingerprint, []).append((a.alert_id, a.status, a.starts_at, a.ends_at, a.details))
    return out


@batching_settings(300)
@given(pairs=press_streams(), sizes=SIZES, lateness=st.sampled_from([0.0, 120.0]))
def test_batching_does_not_change_alerts(
    property_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, _ = replay(property_rules, pairs, [len(pairs)], stream="press", lateness=lateness)
    split, _ = replay(property_rules, pairs, sizes, stream="press", lateness=lateness)
    single, _ = replay(property_rules, pairs, [1], stream="press", lateness=lateness)
    assert per_fingerprint(split) == per_fingerprint(whole) == per_fingerprint(single)
    assert sorted(summary_of(split)) == sorted(summary_of(whole))
    if len({part for part, _ in pairs}) == 1:
        assert [a.alert_id for a in split] == [a.alert_id for a in whole]


@batching_settings(200)
@given(pairs=press_streams(ordered=False), sizes=SIZES, lateness=st.sampled_from([0.0, 60.0, 300.0]))
def test_batching_does_not_change_alerts_with_late_events(
    property_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, whole_engine = replay(property_rules, pairs, [len(pairs)], stream="press", lateness=lateness)
    split, split_engine = replay(property_rules, pairs, sizes, stream="press", lateness=lateness)
    assert per_fingerprint(split) == per_fingerprint(whole)
    assert whole_engine.states == split_engine.states
    end = max(w for w in whole_engine.watermarks.values()) + 10_000
    tail = [brief(e.advance("press", end, p)) for e in (whole_engine, split_engine) for p in (0, 1)]
    assert tail[:2] == tail[2:]


def test_known_case_whole_batch_equals_one_by_one(property_rules: RuleSet) -> None:
    events = [press("a", 0, "Xả lũ ở Huế"), press("b", 30, "HUẾ NGẬP SÂU"), press("a", 200, "Diễn tập xả lũ"),
              press("a", 299, "Vỡ đập?"), press("b", 700, "Nắng đẹp"), press("a", 1300, "Ðập")]
    whole = engine_of(property_rules).process("press", events)
    single = feed(engine_of(property_rules), events)
    assert [(a.alert_id, a.status, a.ends_at) for a in whole] == [(a.alert_id, a.status, a.ends_at) for a in single]
    assert {a.rule_id for a in whole} == {"p.flood", "p.hue", "p.exact"}
