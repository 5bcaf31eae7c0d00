"""The `new_value` kind in the engine: the first time a field takes a value for a key.

Most tests use successful cyber logons keyed by `user`, with `field: src_ip`: a user logging
in from an address not seen for that user within `lookback`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import kindtest
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kindtest import (
    SIZES,
    T0,
    Pairs,
    arrivals,
    batching_settings,
    engine_of,
    make_rules,
    only_problem,
    per_fingerprint,
    records,
    replay,
    rule_error,
    run_restored,
    span,
    summary_of,
)

from ioc.alerts import Alert
from ioc.engine import Engine
from ioc.events import decode
from ioc.rules.exceptions import RuleError
from ioc.rules.loader import RuleSet

DAY = 86400.0
RULE_ID = "cyber.login.new_src_ip"
ALICE, BOB = "nguyen.van.a", "tran.thi.b"
IP1, IP2, IP3, IP4 = "10.20.0.11", "10.20.0.12", "113.161.5.9", "2001:db8::7"


# One new_value rule: a user logging on from a new src_ip. `rule_yaml(**fields)` overrides, adds or (None)
# removes fields.
RULE: dict[str, Any] = {
    "id": RULE_ID,
    "stream": "cyber",
    "kind": "new_value",
    "key": ["user"],
    "where": "event_action == 'logon' and event_outcome == 'success'",
    "field": "src_ip",
    "severity": "warning",
    "labels": {"domain": "cyber", "agency": "Sở TT&TT"},
    "summary": "Tài khoản {user} đăng nhập vào {host} từ địa chỉ mới {value}",
}


# -- helpers --------------------------------------------------------------------------------

rule_yaml = partial(kindtest.rule_yaml, RULE)
feed = partial(kindtest.feed, stream="cyber")


def one_rule(tmp_path: Path, **fields: Any) -> RuleSet:
    return make_rules(tmp_path, rule_yaml(**fields))


def load_error(tmp_path: Path, **fields: Any) -> str:
    return only_problem(rule_error(tmp_path, rule_yaml(**fields)))


def logon(t: float, user: str | None = ALICE, ip: str | None = IP1, outcome: str = "success",
          id: str | None = None, **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"source_id": "soc-sensor-1", "ts": T0 + t, "event_action": "logon",
                           "event_outcome": outcome, "host": "mail.thuathienhue.gov.vn"}
    if user is not None:
        raw["user"] = user
    if ip is not None:
        raw["src_ip"] = ip
    if id is not None:
        raw["id"] = id
    raw.update(extra)
    return decode("cyber", raw)


def brief(alerts: Sequence[Alert]) -> list[tuple[str, str, float, float | None, Any]]:
    """(status, user, starts_at - T0, ends_at - T0, the new value) of each alert."""
    assert all(a.value is None for a in alerts)  # nothing measured: the new value is a detail
    return [(a.status, a.key["user"], *span(a), a.details["new_value"]) for a in alerts]


def state_of(engine: Engine, user: str = ALICE, rule_id: str = RULE_ID) -> dict[str, Any]:
    return engine.states[rule_id][(user,)]


# -- firing, not firing, resolution ----------------------------------------------------------


def test_first_value_of_a_key_fires_without_learning(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, [logon(0, id="l1")])
    assert brief(alerts) == [("firing", ALICE, 0.0, None, IP1)]
    assert alerts[0].summary == f"Tài khoản {ALICE} đăng nhập vào mail.thuathienhue.gov.vn từ địa chỉ mới {IP1}"


def test_a_seen_value_does_not_fire(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, resolve_after="1m"))
    alerts = feed(engine, [logon(0), logon(3600), logon(7200), logon(DAY)])
    assert brief(alerts) == [("firing", ALICE, 0.0, None, IP1), ("resolved", ALICE, 0.0, 60.0, IP1)]
    assert state_of(engine)["seen"] == {IP1: T0 + DAY}


def test_resolves_resolve_after_the_last_match(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))  # resolve_after 5m
    feed(engine, [logon(0)])
    assert brief(feed(engine, [logon(300, user=BOB)])) == [("firing", BOB, 300.0, None, IP1)]
    assert state_of(engine)["firing"]  # the watermark reached 0 + 5m but did not pass it
    alerts = feed(engine, [logon(301, user=BOB, ip=IP2)])
    assert brief(alerts) == [("resolved", ALICE, 0.0, 300.0, IP1)]


def test_a_new_value_while_firing_extends_the_episode(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    fired = feed(engine, [logon(0, ip=IP1), logon(200, ip=IP2)])
    assert brief(fired) == [("firing", ALICE, 0.0, None, IP1)]  # one alert: the same episode
    assert engine.advance("cyber", T0 + 400) == []  # 0 + 5m passed, but the last match was at 200
    resolved = engine.advance("cyber", T0 + 501)
    assert brief(resolved) == [("resolved", ALICE, 0.0, 500.0, IP2)]  # value: the last new value
    assert resolved[0].alert_id == fired[0].alert_id


def test_each_key_has_its_own_values(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, resolve_after="1m"))
    feed(engine, [logon(0, ALICE, IP1)])
    alerts = feed(engine, [logon(1000, BOB, IP1)])
    # ALICE's episode resolved by the watermark; IP1 is new for BOB.
    assert [(a.status, a.key) for a in alerts] == [("resolved", {"user": ALICE}), ("firing", {"user": BOB})]


def test_event_without_the_field_is_ignored(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    assert feed(engine, [logon(0, ip=None)]) == []
    assert state_of(engine) == {"first": T0}  # the key's first event, no value


def test_event_without_a_key_field_is_ignored(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    assert feed(engine, [logon(0, user=None)]) == []
    assert engine.states[RULE_ID] == {}


def test_where_filters_events(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    # A failed logon from a new address is neither alerted nor learned.
    assert feed(engine, [logon(0, outcome="failure", ip=IP3)]) == []
    assert engine.states[RULE_ID] == {}
    assert brief(feed(engine, [logon(10, ip=IP3)])) == [("firing", ALICE, 10.0, None, IP3)]


# -- learning and lookback -------------------------------------------------------------------


def test_learning_learns_values_silently_then_alerts_new_ones(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, learning="7d"))
    learned = [logon(0, ip=IP1), logon(DAY, ip=IP2), logon(7 * DAY - 1, ip=IP3)]
    assert feed(engine, learned) == []
    assert list(state_of(engine)["seen"]) == [IP1, IP2, IP3]
    # After learning: known values stay quiet; exactly at first + learning a new value alerts.
    assert feed(engine, [logon(7 * DAY, ip=IP2)]) == []
    assert brief(feed(engine, [logon(7 * DAY, ip=IP4)])) == [("firing", ALICE, 7 * DAY, None, IP4)]


def test_learning_counts_from_the_keys_first_event(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, learning="1d", resolve_after="1m"))
    feed(engine, [logon(0, ALICE, IP1)])
    # BOB's learning starts at his own first event.
    assert feed(engine, [logon(DAY + 10, BOB, IP1)]) == []
    assert [a.key["user"] for a in feed(engine, [logon(DAY + 20, ALICE, IP2)])] == [ALICE]
    assert [(a.status, a.key["user"]) for a in feed(engine, [logon(2 * DAY, BOB, IP2)])] == [("resolved", ALICE)]
    assert [(a.status, a.key["user"]) for a in feed(engine, [logon(2 * DAY + 10, BOB, IP3)])] == [("firing", BOB)]


def test_a_value_not_seen_for_more_than_lookback_is_new_again(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, lookback="1d", resolve_after="1m"))
    feed(engine, [logon(0, ip=IP1), logon(100, user=BOB, ip=IP2)])
    # Seen exactly lookback ago: not new (only BOB's episode resolves).
    assert [(a.status, a.key["user"]) for a in feed(engine, [logon(DAY, ip=IP1)])] == [("resolved", BOB)]
    # Lookback + 1 s after its last sighting (at 2 * DAY): new again.
    assert feed(engine, [logon(2 * DAY, ip=IP1)]) == []
    alerts = feed(engine, [logon(3 * DAY + 1, ip=IP1)])
    assert brief(alerts) == [("firing", ALICE, 3 * DAY + 1, None, IP1)]


def test_stale_values_are_pruned_when_a_value_is_added(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, lookback="1h"))
    feed(engine, [logon(0, ip=IP1), logon(1800, ip=IP2), logon(5000, ip=IP3)])
    assert state_of(engine)["seen"] == {IP2: T0 + 1800, IP3: T0 + 5000}  # IP1 older than 1h


def test_max_values_evicts_the_least_recently_seen(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, max_values=2, resolve_after="1s"))
    feed(engine, [logon(0, ip=IP1), logon(10, ip=IP2), logon(20, ip=IP1)])  # IP1 seen again: IP2 is oldest
    feed(engine, [logon(30, ip=IP3)])
    assert list(state_of(engine)["seen"]) == [IP1, IP3]
    # IP2 was evicted: it is new again; IP1 was kept: not new.
    assert [a for a in feed(engine, [logon(40, ip=IP1)]) if a.status == "firing"] == []
    assert [a.details["new_value"] for a in feed(engine, [logon(50, ip=IP2)]) if a.status == "firing"] == [IP2]
    assert len(state_of(engine)["seen"]) == 2


def test_values_are_compared_as_text_and_reported_as_sent(tmp_path: Path) -> None:
    text = (
        "rules:\n  - {id: cyber.port.new, stream: cyber, kind: new_value, key: [host], field: dst_port,"
        " summary: 'Máy {host}: cổng mới {new_value}'}\n"
    )
    engine = engine_of(make_rules(tmp_path, text))
    alerts = feed(engine, [decode("cyber", {"source_id": "fw-1", "ts": T0, "event_action": "connection",
                                            "host": "db01", "dst_port": 5432})])
    assert alerts[0].details["new_value"] == 5432
    assert alerts[0].summary == "Máy db01: cổng mới 5432"
    assert engine.states["cyber.port.new"][("db01",)]["seen"] == {"5432": T0}


# -- time: lateness, out of order ------------------------------------------------------------


def test_out_of_order_within_lateness(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, resolve_after="1m"), lateness_s=600.0)
    feed(engine, [logon(0, ip=IP1), logon(500, ip=IP2)])
    # IP2 arrives again with an earlier time: seen later already, not new; its sighting stays 500.
    assert feed(engine, [logon(300, ip=IP2)]) == []
    assert state_of(engine)["seen"][IP2] == T0 + 500
    # A new value out of order is new; it joins the firing episode, whose last match stays 500.
    assert feed(engine, [logon(400, ip=IP3)]) == []
    assert state_of(engine)["_last_match"] == T0 + 500
    assert engine.last_stats.late == 0


def test_out_of_order_first_event_moves_learning_earlier(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, learning="10m"), lateness_s=600.0)
    feed(engine, [logon(300, ip=IP1)])
    assert feed(engine, [logon(0, ip=None)]) == []  # the key's first event is at 0 after all
    assert state_of(engine)["first"] == T0
    assert brief(feed(engine, [logon(600, ip=IP2)])) == [("firing", ALICE, 600.0, None, IP2)]


def test_late_event_beyond_lateness_is_not_learned(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, learning="1h"))
    feed(engine, [logon(0, ip=IP1), logon(500, user=BOB, ip=IP1)])
    assert feed(engine, [logon(400, ip=IP2)]) == []
    assert engine.last_stats.late == 1
    assert IP2 not in state_of(engine)["seen"]


# -- realert ---------------------------------------------------------------------------------


def test_realert_drops_matches_but_learns_the_values(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="1h", resolve_after="1m"))
    feed(engine, [logon(0, ip=IP1)])
    assert [a.status for a in feed(engine, [logon(100, ip=IP2)])] == ["resolved"]  # ends at 60
    assert feed(engine, [logon(200, ip=IP3)]) == []  # inside realert (until 60 + 1h): dropped
    assert IP3 in state_of(engine)["seen"]
    assert feed(engine, [logon(3700, ip=IP3)]) == []  # learned, not new
    assert brief(feed(engine, [logon(3700, ip=IP4)])) == [("firing", ALICE, 3700.0, None, IP4)]


# -- the alert record ------------------------------------------------------------------------


def test_alert_record(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, severity="critical", sla={"ack": "30m", "resolve": "4h"}, learning="1d"))
    feed(engine, [logon(0, ip=IP1, id="known")])
    fired = feed(engine, [logon(DAY + 0.5, ip=IP3, id="evt-1")])
    more = feed(engine, [logon(DAY + 60, ip=IP4, id="evt-2")])
    resolved = engine.advance("cyber", T0 + DAY + 400)
    assert more == []
    f, r = fired[0].to_record(), resolved[0].to_record()
    assert f["rule_id"] == RULE_ID and f["kind"] == "new_value" and f["stream"] == "cyber"
    assert f["key"] == {"user": ALICE}
    assert f["labels"] == {"domain": "cyber", "agency": "Sở TT&TT"}
    assert f["severity"] == "critical" and f["status"] == "firing"
    assert f["value"] is None and f["details"] == {"new_value": IP3}
    assert f["summary"] == f"Tài khoản {ALICE} đăng nhập vào mail.thuathienhue.gov.vn từ địa chỉ mới {IP3}"
    assert f["starts_at"] == "2025-10-28T01:00:00.500Z" and f["ends_at"] is None
    assert f["sla"] == {"ack_by": "2025-10-28T01:30:00.500Z", "resolve_by": "2025-10-28T05:00:00.500Z"}
    assert f["evidence"] == ["evt-1"]
    assert (r["status"], r["ends_at"]) == ("resolved", "2025-10-28T01:06:00Z")  # last match + 5m
    assert r["alert_id"] == f["alert_id"] and r["summary"] == f["summary"]
    assert r["details"] == {"new_value": IP4} and r["evidence"] == ["evt-1", "evt-2"]
    assert orjson.loads(fired[0].to_json()) == f


def test_templates_may_name_new_value(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, summary="{user} @ {host}: {new_value}", description="{new_value!r}"))
    alerts = feed(engine, [logon(0, ip=IP3)])
    assert alerts[0].summary == f"{ALICE} @ mail.thuathienhue.gov.vn: {IP3}"
    assert alerts[0].description == repr(IP3)


def test_user_agent_keyed_by_host(tmp_path: Path) -> None:
    text = (
        "rules:\n  - {id: cyber.ua.new, stream: cyber, kind: new_value, key: [host], field: user_agent,"
        " learning: 1d, where: \"http_method is not None\"}\n"
    )
    engine = engine_of(make_rules(tmp_path, text))

    def web(t: float, agent: str) -> dict[str, Any]:
        return decode("cyber", {"source_id": "waf-1", "ts": T0 + t, "event_action": "http_request",
                                "host": "dichvucong.thuathienhue.gov.vn", "http_method": "GET", "user_agent": agent})

    assert feed(engine, [web(0, "Mozilla/5.0"), web(3600, "Zalo/23.09")]) == []
    alerts = feed(engine, [web(DAY, "sqlmap/1.7.2#stable")])
    assert [(a.key, a.details["new_value"]) for a in alerts] == [
        ({"host": "dichvucong.thuathienhue.gov.vn"}, "sqlmap/1.7.2#stable")]


# -- build-time validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"field": None}, "field: required field is missing"),
        ({"field": "source_ip"}, "field: unknown field 'source_ip' of stream 'cyber' (allowed: dst_ip, dst_port,"),
        ({"field": "user"}, "field: 'user' is part of the key [user]: every value would be a new key"),
        ({"lookback": "0s"}, "lookback: '0s' must be more than 0 (e.g. 30d)"),
        ({"lookback": "a month"}, "lookback: 'a month' is not a duration (e.g. 30s, 5m, 2h, 1d, 1h30m)"),
        ({"learning": "7 days"}, "learning: '7 days' is not a duration"),
        ({"max_values": 0}, "max_values: 0 must be between 1 and 100000"),
        ({"max_values": "many"}, "max_values: 'many'"),
        ({"value": "src_ip"},
         "value: is not used by kind 'new_value' (the new value of field is in the alert's details)"),
        ({"lookbak": "7d"}, "lookbak: unknown key (allowed: "),
        ({"summary": "{new_valu}"}, "summary: unknown field 'new_valu'"),
    ],
)
def test_build_errors(tmp_path: Path, fields: dict[str, Any], message: str) -> None:
    text = load_error(tmp_path, **fields)
    assert text.startswith(f"{tmp_path / 'rules.yaml'}:2: rule '{RULE_ID}': ")
    assert message in text


def test_typo_in_a_field_name_suggests_the_field(tmp_path: Path) -> None:
    assert "did you mean 'lookback'?" in load_error(tmp_path, lookbak="7d")


def test_a_list_field_is_refused(tmp_path: Path) -> None:
    text = "rules:\n  - {id: press.topic.new, stream: press, kind: new_value, field: topics}\n"
    with pytest.raises(RuleError) as info:
        make_rules(tmp_path, text)
    assert str(info.value.problems[0]).endswith(
        "rule 'press.topic.new': field: 'topics' holds a list; new_value needs a field with one value per event"
    )


# -- determinism: snapshots and batching -----------------------------------------------------


PROPERTY_RULES = (
    "defaults: {stream: cyber, kind: new_value, key: [user], field: src_ip, summary: '{user} {value}'}\n"
    "rules:\n"
    "  - {id: p.plain}\n"
    "  - {id: p.learn, learning: 20m, lookback: 1h, resolve_after: 2m}\n"
    "  - {id: p.small, max_values: 2, realert: 10m, where: \"event_outcome == 'success'\"}\n"
)


@pytest.fixture(scope="module")
def property_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return make_rules(tmp_path_factory.mktemp("prop"), PROPERTY_RULES)


@st.composite
def streams(draw: st.DrawFn, *, ordered: bool = True) -> Pairs:
    users = draw(st.lists(st.sampled_from([ALICE, BOB, "le.c"]), min_size=1, max_size=3, unique=True))
    steps = [0, 1, 60, 119, 120, 121, 300, 1200, 3600, 3601]
    pairs = []
    for i, (part, user, t) in enumerate(arrivals(draw, users, count=50, steps=steps, clamp=True,
                                                 late=None if ordered else (-300, 1800))):
        raw: dict[str, Any] = {"source_id": "soc", "ts": T0 + t, "event_action": "logon", "user": user,
                               "event_outcome": draw(st.sampled_from(["success", "failure"])), "id": f"e{i}"}
        ip = draw(st.sampled_from([None, IP1, IP2, IP3, IP4]))
        if ip is not None:
            raw["src_ip"] = ip
        pairs.append((part, decode("cyber", raw)))
    return pairs


@batching_settings(300)
@given(pairs=streams(), sizes=SIZES, lateness=st.sampled_from([0.0, 120.0]))
def test_batching_does_not_change_alerts(
    property_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, whole_engine = replay(property_rules, pairs, [len(pairs)], stream="cyber", lateness=lateness)
    split, split_engine = replay(property_rules, pairs, sizes, stream="cyber", lateness=lateness)
    single, _ = replay(property_rules, pairs, [1], stream="cyber", lateness=lateness)
    assert per_fingerprint(split) == per_fingerprint(whole) == per_fingerprint(single)
    assert whole_engine.states == split_engine.states
    if len({part for part, _ in pairs}) == 1:
        assert summary_of(split) == summary_of(whole)


@batching_settings(200)
@given(pairs=streams(ordered=False), sizes=SIZES, lateness=st.sampled_from([0.0, 60.0, 600.0]))
def test_batching_does_not_change_alerts_with_out_of_order_events(
    property_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, whole_engine = replay(property_rules, pairs, [len(pairs)], stream="cyber", lateness=lateness)
    split, split_engine = replay(property_rules, pairs, sizes, stream="cyber", lateness=lateness)
    assert per_fingerprint(split) == per_fingerprint(whole)
    assert whole_engine.states == split_engine.states
    for state in whole_engine.states["p.small"].values():
        assert len(state.get("seen", {})) <= 2


def test_property_rules_do_fire_and_resolve(property_rules: RuleSet) -> None:
    events = [logon(0, ip=IP1), logon(60, ip=IP2), logon(1300, ip=IP3), logon(1400, ip=IP4), logon(2000, ip=IP1),
              logon(9000, ip=IP1)]
    alerts = feed(engine_of(property_rules), events)
    assert {(a.rule_id, a.status) for a in alerts} == {
        (rule, status) for rule in ("p.plain", "p.learn", "p.small") for status in ("firing", "resolved")
    }


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 5])
def test_snapshot_restore_mid_stream(tmp_path: Path, cut: int) -> None:
    rules = one_rule(tmp_path, max_values=2, learning="1m")
    events = [logon(0, ip=IP1), logon(100, ip=IP2), logon(200, ip=IP3), logon(250, ip=IP1), logon(1000, ip=IP4),
              logon(2000, ip=IP2), logon(9000, user=BOB)]
    whole = feed(engine_of(rules), events)
    # The state is plain data (dict order kept): it survives JSON.
    assert records(run_restored(feed, events, cut, rules)) == records(whole)
    assert len(whole) >= 4
