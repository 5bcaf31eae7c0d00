"""Operator action records: the simulator's and the CLI's shapes parse; bad ones say why."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.cli.alerts import action_record
from ioc.sla.actions import Action, InvalidAction, parse_action
from ioc.timeutil import format_ts
from sensors_sim.operators import OperatorSimulator

ALERT_ID = "eece90541220b5d3-1761526800000"
T0 = 1761526800.0


def test_the_simulators_actions_parse():
    alert = {"alert_id": ALERT_ID, "status": "firing", "labels": {}, "starts_at": format_ts(T0),
             "sla": {"ack_by": format_ts(T0 + 900), "resolve_by": format_ts(T0 + 7200)}}
    parsed = [parse_action(a) for a in OperatorSimulator(seed=1).actions_for(alert)]
    assert all(isinstance(p, Action) for p in parsed)
    assert [p.action for p in parsed if isinstance(p, Action)] == ["ack", "resolve"]
    first = parsed[0]
    assert isinstance(first, Action) and first.fingerprint == "eece90541220b5d3" and first.at is not None


def test_the_cli_records_parse_assign_with_its_assignee():
    record = action_record("assign", ALERT_ID, "truc-ban-1", T0 + 60, "giao So NN", assignee="so-nnptnt")
    parsed = parse_action(record)
    assert isinstance(parsed, Action)
    assert (parsed.action, parsed.assignee, parsed.at, parsed.note) == ("assign", "so-nnptnt", T0 + 60, "giao So NN")


def test_epoch_seconds_json_text_and_no_time():
    assert parse_action({"alert_id": ALERT_ID, "action": "ack", "by": "a", "at": T0}).at == T0  # type: ignore[union-attr]
    assert parse_action(b'{"alert_id": "%s", "action": "comment", "by": "a", "note": "x"}' % ALERT_ID.encode()).at is None  # type: ignore[union-attr]  # noqa: E501


def test_bad_records_give_reasons():
    cases = {
        "not JSON": b"{nope",
        "a JSON object, not list": [1, 2],
        "'fly' is not an action": {"alert_id": ALERT_ID, "action": "fly", "by": "a", "at": T0},
        "alert_id: 'nope' is not an alert id": {"alert_id": "nope", "action": "ack", "by": "a", "at": T0},
        "at: ts 'soon' is not RFC 3339": {"alert_id": ALERT_ID, "action": "ack", "by": "a", "at": "soon"},
        "by: Field required": {"alert_id": ALERT_ID, "action": "ack", "at": T0},
        "colour: unknown field": {"alert_id": ALERT_ID, "action": "ack", "by": "a", "at": T0, "colour": "red"},
        "assignee: required for assign": {"alert_id": ALERT_ID, "action": "assign", "by": "a", "at": T0},
        "assignee: only for assign, not ack": {"alert_id": ALERT_ID, "action": "ack", "by": "a", "at": T0,
                                               "assignee": "b"},
    }
    for expected, record in cases.items():
        parsed = parse_action(record)  # type: ignore[arg-type]
        assert isinstance(parsed, InvalidAction), record
        assert expected in parsed.reason, (expected, parsed.reason)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["alert_id", "action", "by", "at", "note", "assignee", "x"]),
                       st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
                                 st.lists(st.integers(), max_size=2))))
def test_parsing_never_raises(record):
    assert isinstance(parse_action(record), (Action, InvalidAction))
