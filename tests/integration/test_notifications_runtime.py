"""Acceptance 3 of issue 15 in a real worker over a real broker: the documented timelines of
grouping, inhibition, a silence that ends with its incident, and flapping (tests/unit/sla/
notify_timelines.py), published on `alerts` as the engine would, come out of the worker's
notification policy on `notifications` at the documented times, and the whole output equals the
policy library's over the same records.

The scripts run one after another on one event clock (`sla.clock: event`), each in a domain of
its own; the escalation chain is empty, so that the SLA tracker adds no alerts of its own. The
same with silences added and expired from the shell (`ioc silences`) while the worker runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import yaml
from conftest import wait_for
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

from ioc.config import REPO_ROOT
from ioc.sla.notify import NotificationPolicy
from ioc.sla.policy import NotifySettings
from ioc.sla.silences import apply as apply_silence
from ioc.timeutil import format_ts, parse_ts, shown_local

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


def _config(tmp_path: Path, **notify: object) -> dict:
    """`tmp_path/ioc.yaml` for the workers: the event clock, no escalations, checkpoints every
    second, `notify` over the shipped settings; returns the `notify:` section."""
    config = runtime_config(tmp_path, checkpoint_s=1)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["sla"].update(clock="event", escalation=[])
    data["notify"].update(notify)
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return dict(data["notify"])


def _publish(url: str, prefix: str, steps: list[Step]) -> None:
    """As the engine publishes them: keyed by fingerprint, in time order (a moment between times,
    so that the worker reads them in that order across partitions, as it would live)."""
    last = None
    for at, record in steps:
        if last is not None and at != last:
            time.sleep(0.3)
        send(url, f"{prefix}alerts", [(record["fingerprint"].encode(), orjson.dumps(on_the_wire(record)))])
        last = at


def _wire(notification: dict) -> tuple:
    return (parse_ts(notification["at"]), notification["group_key"], notification["reason"], notification["status"],
            *(tuple(notification[name]) for name in ("firing", "resolved", "flapping", "silenced", "inhibited")))


def test_the_worker_notifies_at_the_documented_times(  # type: ignore[no-untyped-def]
    broker_url: str, topic_prefix: str, start_worker, tmp_path: Path,
) -> None:
    notify = _config(tmp_path, silences=[{**UNTIL_SILENCE, "starts_at": T0}])
    worker = start_worker(topic_prefix, {"IOC_CONFIG": str(tmp_path / "ioc.yaml")})

    steps, end = _timeline()
    expected = play(NotificationPolicy(NotifySettings.model_validate(notify)), steps, until=end)
    documented = []
    for index, (_, notes, horizon) in enumerate(SCRIPTS):
        offset = T0 + index * GAP
        documented += [n for n in relabelled_expected(notes, str(index), offset) if n[0] <= offset + horizon]
    assert set(documented) <= set(expected)  # the library keeps its documented promises here too

    _publish(broker_url, topic_prefix, steps)

    got = read(broker_url, f"{topic_prefix}notifications", expect=len(expected), timeout=120)
    assert worker.alive(), worker.output()
    notified = sorted((_wire(value) for _, value in got), key=lambda n: (n[0], n[1]))
    # Every documented notification, at its documented time; and nothing but the library's output.
    missing = [n for n in documented if n not in notified]
    assert not missing, (missing, notified)
    assert notified == sorted(expected, key=lambda n: (n[0], n[1])), worker.output()[-3000:]
    assert [key.decode() for key, _ in got] == [value["group_key"] for _, value in got]
    escalations = read(broker_url, f"{topic_prefix}alerts", expect=0, timeout=2, escalations=True)
    assert not [v for _, v in escalations if v["labels"].get("escalation")]


def _ioc(broker_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IOC_TOPIC_PREFIX": prefix}
    return subprocess.run([sys.executable, "-m", "ioc.cli.main", "silences", *args, "--broker", broker_url],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_silences_added_and_expired_from_the_shell_reach_the_running_policy(  # type: ignore[no-untyped-def]
    broker_url: str, topic_prefix: str, start_worker, tmp_path: Path,
) -> None:
    _config(tmp_path)
    worker = start_worker(topic_prefix, {"IOC_CONFIG": str(tmp_path / "ioc.yaml")})
    until_start, grouping_start = T0, T0 + GAP
    steps = relabelled(UNTIL, "0", until_start) + relabelled(GROUPING, "1", grouping_start)
    end = T0 + 2 * GAP
    steps = sorted([*steps, alert("clock", "firing", end, domain="clock")], key=lambda step: step[0])

    # The UNTIL timeline's silence, from the shell; and one over the whole grouping script, ended at +500.
    added = _ioc(broker_url, topic_prefix, "add", "--id", "until", "--match", UNTIL_SILENCE["matchers"],
                 "--until-resolved", UNTIL_SILENCE["until_resolved"], "--starts-at", format_ts(until_start),
                 "--by", "truc-ban-1", "--comment", "bảo trì đập")
    assert added.returncode == 0, added.stderr
    muted = _ioc(broker_url, topic_prefix, "add", "--id", "grouping", "--match", 'domain="water1"',
                 "--starts-at", format_ts(grouping_start), "--for", "1d", "--by", "truc-ban-1")
    assert muted.returncode == 0, muted.stderr
    expired = _ioc(broker_url, topic_prefix, "expire", "grouping", "--at", format_ts(grouping_start + 500),
                   "--by", "truc-ban-2")
    assert expired.returncode == 0, expired.stderr
    unknown = _ioc(broker_url, topic_prefix, "expire", "nope", "--by", "truc-ban-2")
    assert unknown.returncode == 1 and "no silence 'nope'" in unknown.stderr, unknown
    listed = _ioc(broker_url, topic_prefix, "list")
    assert "until" in listed.stdout and "bảo trì đập" in listed.stdout, listed
    assert "grouping" in listed.stdout and f"expired {shown_local(grouping_start + 500)}" in listed.stdout, listed

    # The library with the same silence records gives the expected notifications.
    policy = NotificationPolicy()
    records = read(broker_url, f"{topic_prefix}silences", expect=3, timeout=30)
    assert [apply_silence(policy, value) for _, value in records] == ["added", "added", "expired"]
    expected = play(policy, steps, until=end)
    until_group = '{domain="water0",rule_id="reservoir.level"}'
    assert [n for n in expected if n[1] == until_group and n[0] <= until_start + 3000] == \
        relabelled_expected(UNTIL_EXPECTED, "0", until_start)
    grouping = [n for n in expected if n[1] == '{domain="water1",rule_id="r.warn"}']
    assert grouping[0][:3] == (grouping_start + 630, grouping[0][1], "first")  # the first tick after +500

    _publish(broker_url, topic_prefix, steps)
    got = read(broker_url, f"{topic_prefix}notifications", expect=len(expected), timeout=120)
    notified = sorted((_wire(value) for _, value in got), key=lambda n: (n[0], n[1]))
    assert notified == sorted(expected, key=lambda n: (n[0], n[1])), worker.output()[-3000:]


def test_when_the_owner_is_killed_another_worker_goes_on_from_its_checkpoint(  # type: ignore[no-untyped-def]
    broker_url: str, topic_prefix: str, start_worker, tmp_path: Path,
) -> None:
    _config(tmp_path)
    env = {"IOC_CONFIG": str(tmp_path / "ioc.yaml")}
    workers = [start_worker(topic_prefix, env), start_worker(topic_prefix, env)]
    before = relabelled(GROUPING, "0", T0)
    after = relabelled(INHIBITION, "1", T0 + GAP) + relabelled(flap_script(), "2", T0 + 2 * GAP)
    end = T0 + 3 * GAP
    after = sorted([*after, alert("clock", "firing", end, domain="clock")], key=lambda step: step[0])
    expected = play(NotificationPolicy(), before + after, until=end)
    first_part = [n for n in expected if n[0] <= before[-1][0]]
    assert len(first_part) == 4  # the grouping script up to its last alert: first, update, update, repeat

    # One of the two owns the policy once their group has settled.
    assert wait_for(lambda: sum(w.metric("ioc_cluster_owner") for w in workers) == 1
                    and all(w.metrics_url() for w in workers), 60), \
        [(w.metric("ioc_cluster_owner"), w.output()[-500:]) for w in workers]
    time.sleep(4)
    owners = wait_for(lambda: (found := [w for w in workers if w.metric("ioc_cluster_owner") == 1])
                      and len(found) == 1 and found, 30)
    assert owners and len(owners) == 1, [w.output()[-1000:] for w in workers]
    _publish(broker_url, topic_prefix, before)
    got = read(broker_url, f"{topic_prefix}notifications", expect=len(first_part), timeout=120)
    assert {_wire(value) for _, value in got} == set(first_part)
    time.sleep(3)  # a checkpoint (checkpoint_s 1), then a crash
    owners[0].kill()
    (standby,) = [w for w in workers if w is not owners[0]]

    _publish(broker_url, topic_prefix, after)
    got = read(broker_url, f"{topic_prefix}notifications", expect=len(expected), timeout=120,
               until=lambda rs: {_wire(v) for _, v in rs} >= set(expected))
    # The same notifications as one uninterrupted policy (at least once: one may come twice).
    assert {_wire(value) for _, value in got} == set(expected), standby.output()[-3000:]
    # From the checkpoint: the standby sent what came after it, not the first part again (the
    # counter goes up once the broker has a notification, so wait for it).
    rest = len(expected) - len(first_part)
    sent = wait_for(lambda: (n := standby.metric("ioc_notifications_total")) >= rest and n, 30)
    assert standby.alive() and sent and rest <= sent < len(expected), (sent, rest)
