"""A reload keeps the state and alert ids of rules whose meaning did not change.

A rule's meaning (ioc.engine.meaning) is what decides its state and alert ids: kind, key,
condition, windows, `realert`, reference rows. Its presentation (summary, description, severity,
labels, SLA) only shows in records: a reload (`Engine.swap_rules`) or a restart from a checkpoint
(`Engine.restore`) that changes only that keeps the firing alerts' ids, and the next transition
(the resolve) carries the new presentation. No resolve-and-refire pair appears.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kindtest import T0, engine_of, make_rules

from ioc.engine import Engine, meaning, presentation
from ioc.events import decode
from ioc.refdata import Reference, RefTable
from ioc.rules.loader import RuleSet

BASE: dict[str, Any] = {
    "id": "lvl", "stream": "reservoir", "kind": "threshold", "condition": "level_m >= 5",
    "severity": "warning", "labels": {"domain": "water"}, "summary": "old {source_id} {level_m}",
    "sla": {"ack": "15m"},
}


def rules(tmp_path: Path, name: str = "rules.yaml", reference: Reference | None = None, **fields: Any) -> RuleSet:
    rule = {**BASE, **fields}
    return make_rules(tmp_path, "rules:\n  - " + json.dumps(rule, ensure_ascii=False) + "\n", reference, name)


def level(t: float, value: float, source: str = "ta-trach") -> dict[str, Any]:
    return decode("reservoir", {"source_id": source, "ts": T0 + t, "level_m": value})


def firing_engine(ruleset: RuleSet) -> tuple[Engine, str]:
    engine = engine_of(ruleset)
    fired = engine.process("reservoir", [level(0, 6.0)])
    assert [a.status for a in fired] == ["firing"]
    assert fired[0].summary == "old ta-trach 6.0"
    return engine, fired[0].alert_id


def test_a_summary_change_keeps_the_firing_alert_and_applies_to_its_resolve(tmp_path: Path) -> None:
    engine, alert_id = firing_engine(rules(tmp_path))
    edited = rules(tmp_path, "edited.yaml", summary="new {source_id} {level_m:.1f} m", severity="critical",
                   labels={"domain": "dams"}, sla={"ack": "5m"})
    resolved, changed = engine.swap_rules(edited)
    assert resolved == [] and changed == []  # no resolve-and-refire
    # The firing alert as published after the swap: same id, the new presentation.
    [now] = engine.firing()
    assert (now.alert_id, now.summary, now.severity, now.labels) == (alert_id, "new ta-trach 6.0 m", "critical",
                                                                     {"domain": "dams"})
    assert now.sla == {"ack_by": T0 + 300}
    # Its next transition: the resolve, under the same id, with the new texts.
    [resolve] = engine.process("reservoir", [level(600, 1.0)])
    assert (resolve.status, resolve.alert_id, resolve.summary, resolve.severity) == (
        "resolved", alert_id, "new ta-trach 6.0 m", "critical")


def test_a_change_of_meaning_resolves_and_starts_afresh(tmp_path: Path) -> None:
    engine, alert_id = firing_engine(rules(tmp_path))
    resolved, changed = engine.swap_rules(rules(tmp_path, "edited.yaml", condition="level_m >= 5.5"))
    assert [(a.status, a.alert_id) for a in resolved] == [("resolved", alert_id)]
    assert changed == ["lvl"]
    assert engine.states["lvl"] == {}


def test_a_restart_after_a_summary_change_keeps_state_and_id(tmp_path: Path) -> None:
    engine, alert_id = firing_engine(rules(tmp_path))
    saved = json.loads(json.dumps(engine.snapshot()))
    restarted = engine_of(rules(tmp_path, "edited.yaml", summary="new {source_id}"))
    restarted.restore(saved)
    [now] = restarted.firing()
    assert (now.alert_id, now.summary) == (alert_id, "new ta-trach")
    [resolve] = restarted.process("reservoir", [level(600, 1.0)])
    assert (resolve.status, resolve.alert_id, resolve.summary) == ("resolved", alert_id, "new ta-trach")
    # A restart after a change of meaning starts the rule afresh (its alert resolves nowhere:
    # the new rule never saw it).
    other = engine_of(rules(tmp_path, "other.yaml", condition="level_m >= 5.5"))
    other.restore(saved)
    assert other.states["lvl"] == {} and other.firing() == []


def test_a_new_template_name_the_old_alert_never_had_shows_as_unknown(tmp_path: Path) -> None:
    engine, alert_id = firing_engine(rules(tmp_path))
    engine.swap_rules(rules(tmp_path, "edited.yaml", summary="{source_id}: {inflow_m3s} m3/s"))
    [resolve] = engine.process("reservoir", [level(600, 1.0)])
    assert (resolve.alert_id, resolve.summary) == (alert_id, "ta-trach: ? m3/s")


def test_what_is_meaning_and_what_is_presentation(tmp_path: Path) -> None:
    base = rules(tmp_path).rules[0]
    same = {
        "summary": "x", "description": "y", "severity": "critical", "labels": {"a": "b"}, "sla": {"ack": "1h"},
        "max_keys": 10, "key_ttl": "1h",
    }
    for n, (name, value) in enumerate(same.items()):
        other = rules(tmp_path, f"same{n}.yaml", **{name: value}).rules[0]
        assert meaning(other) == meaning(base), name
    assert presentation(rules(tmp_path, "p.yaml", summary="x").rules[0]) != presentation(base)
    different = {"condition": "level_m >= 6", "where": "level_m > 0", "realert": "30m", "for": "10m",
                 "key": ["source_id", "gates_open"], "keep_firing_for": "5m"}
    for n, (name, value) in enumerate(different.items()):
        other = rules(tmp_path, f"diff{n}.yaml", **{name: value}).rules[0]
        assert meaning(other) != meaning(base), name


def test_reference_rows_are_part_of_the_meaning(tmp_path: Path) -> None:
    def reference(nwl: float) -> Reference:
        rows = {"ta-trach": {"source_id": "ta-trach", "nwl_m": nwl}}
        return Reference({"reservoir": RefTable("reservoir", "source_id", rows, frozenset({"source_id", "nwl_m"}))})

    one = rules(tmp_path, "a.yaml", reference(45.0), condition="level_m >= nwl_m").rules[0]
    same = rules(tmp_path, "b.yaml", reference(45.0), condition="level_m >= nwl_m", summary="x").rules[0]
    moved = rules(tmp_path, "c.yaml", reference(46.0), condition="level_m >= nwl_m").rules[0]
    assert meaning(one) == meaning(same) != meaning(moved)


def test_a_reference_column_only_a_template_shows_is_presentation(tmp_path: Path) -> None:
    """Fixing a typo in a reservoir's name must not resolve and re-fire its alerts under new ids;
    listing another reservoir, or a column the condition reads, changes what the rule decides."""
    def reference(name: str, nwl: float = 45.0, more: bool = False) -> Reference:
        rows = {"ta-trach": {"source_id": "ta-trach", "nwl_m": nwl, "name": name}}
        if more:
            rows["binh-dien"] = {"source_id": "binh-dien", "nwl_m": 80.0, "name": "Bình Điền"}
        return Reference({"reservoir": RefTable("reservoir", "source_id", rows,
                                                frozenset({"source_id", "nwl_m", "name"}))})

    def rule(ref: Reference, n: int) -> Any:
        return rules(tmp_path, f"r{n}.yaml", ref, condition="level_m >= nwl_m", summary="{name}").rules[0]

    base = meaning(rule(reference("Ta Trach"), 0))
    assert meaning(rule(reference("Tả Trạch"), 1)) == base
    assert meaning(rule(reference("Tả Trạch", nwl=46.0), 2)) != base
    assert meaning(rule(reference("Ta Trach", more=True), 3)) != base


def test_a_ttl_added_by_a_reload_or_a_restart_cuts_no_pending_episode_short(tmp_path: Path) -> None:
    """Keys kept from before their rule had a TTL carry no last-event time: they count from the
    change, and a pending `for` keeps its key (found in review: they were dropped at once)."""
    for how in ("reload", "restart"):
        engine = engine_of(rules(tmp_path, **{"for": "2h"}))
        assert engine.process("reservoir", [level(0, 6.0)]) == []  # pending: fires at 2 h
        with_ttl = rules(tmp_path, "ttl.yaml", **{"for": "2h", "key_ttl": "10m"})
        if how == "reload":
            assert engine.swap_rules(with_ttl) == ([], [])  # a TTL is not meaning
        else:
            saved = json.loads(json.dumps(engine.snapshot()))
            engine = engine_of(with_ttl)
            engine.restore(saved)
        engine.advance("reservoir", T0 + 1800)
        assert engine.sweep() == 0, how
        fired = engine.advance("reservoir", T0 + 7201)
        assert [a.status for a in fired] == ["firing"], how
