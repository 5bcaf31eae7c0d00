"""Acceptance 3 of issue 15 in a real worker over a real broker: the documented timelines of
grouping, inhibition, a silence that ends with its incident, and flapping (tests/unit/sla/
notify_timelines.py), published on `alerts` as the engine would, come out of the worker's
notification policy on `notifications` at the documented times, and the whole output equals the
policy library's over the same records.

The scripts run one after another on one event clock (`sla.clock: event`), each in a domain of
its own; the escalation chain is empty, so that the SLA tracker adds no alerts of its own."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
import yaml
from kafka_io import read, send
from notify_timelines import (
    FLAP_EXPECTED,
    GROUPING,
    GROUPING_EXPECTED,
    INHIBITION,
    INHIBITION_EXPECTED,
    UNTIL,
    UNTIL_EXPECTED,
    UNTIL_SILENCE,
    Step,
    alert,
    flap_script,
    on_the_wire,
    play,
    relabelled,
    relabelled_expected,
)
from scenario_io import runtime_config

from ioc.sla.notify import NotificationPolicy
from ioc.sla.policy import NotifySettings
from ioc.timeutil import parse_ts

pytestmark = pytest.mark.integration

T0 = int(parse_ts("2025-10-27T00:00:00Z"))
GAP = 50_000  # seconds between the scripts: each is over (or quiet) before the next begins
# (script, its documented notifications, how long they are documented for)
SCRIPTS = [(GROUPING, GROUPING_EXPECTED, 40_000), (INHIBITION, INHIBITION_EXPECTED, 1_000),
           (UNTIL, UNTIL_EXPECTED, 3_000), (flap_script(), FLAP_EXPECTED, 5_000)]


def _timeline() -> tuple[list[Step], float]:
    steps: list[Step] = []
    for index, (script, _, _) in enumerate(SCRIPTS):
        steps += relabelled(script, str(index), T0 + index * GAP)
    end = T0 + len(SCRIPTS) * GAP
    # An alert of a group of its own moves the event clock to the end: every tick before is due.
    steps.append(alert("clock", "firing", end, domain="clock"))
    return sorted(steps, key=lambda step: step[0]), end


def _wire(notification: dict) -> tuple:
    return (parse_ts(notification["at"]), notification["group_key"], notification["reason"], notification["status"],
            *(tuple(notification[name]) for name in ("firing", "resolved", "flapping", "silenced", "inhibited")))


def test_the_worker_notifies_at_the_documented_times(  # type: ignore[no-untyped-def]
    broker_url: str, topic_prefix: str, start_worker, tmp_path: Path,
) -> None:
    silence = {**UNTIL_SILENCE, "starts_at": T0}
    config = runtime_config(tmp_path, checkpoint_s=1)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["sla"].update(clock="event", escalation=[])
    data["notify"]["silences"] = [silence]
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    worker = start_worker(topic_prefix, {"IOC_CONFIG": str(config)})

    steps, end = _timeline()
    expected = play(NotificationPolicy(NotifySettings.model_validate(data["notify"])), steps, until=end)
    documented = []
    for index, (_, notes, horizon) in enumerate(SCRIPTS):
        offset = T0 + index * GAP
        documented += [n for n in relabelled_expected(notes, str(index), offset) if n[0] <= offset + horizon]
    assert set(documented) <= set(expected)  # the library keeps its documented promises here too

    # As the engine publishes them: keyed by fingerprint, in time order (a moment between times,
    # so that the worker reads them in that order across partitions, as it would live).
    last = None
    for at, record in steps:
        if last is not None and at != last:
            time.sleep(0.3)
        send(broker_url, f"{topic_prefix}alerts", [(record["fingerprint"].encode(), orjson.dumps(on_the_wire(record)))])
        last = at

    got = read(broker_url, f"{topic_prefix}notifications", expect=len(expected), timeout=120)
    assert worker.alive(), worker.output()
    notified = sorted((_wire(value) for _, value in got), key=lambda n: (n[0], n[1]))
    # Every documented notification, at its documented time; and nothing but the library's output.
    missing = [n for n in documented if n not in notified]
    Path("/tmp/notified.json").write_text(repr((notified, expected, documented, worker.output())))
    assert not missing, (missing, notified)
    assert notified == sorted(expected, key=lambda n: (n[0], n[1])), worker.output()[-3000:]
    assert [key.decode() for key, _ in got] == [value["group_key"] for _, value in got]
    escalations = read(broker_url, f"{topic_prefix}alerts", expect=0, timeout=2, escalations=True)
    assert not [v for _, v in escalations if v["labels"].get("escalation")]
