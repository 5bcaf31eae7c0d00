"""Helpers shared by the engine's kind tests (imported by module name: `from kindtest import feed`).

Rules are YAML written to tmp_path and loaded with the real loader; events are fed to a real
`Engine` with a fixed clock. What differs per kind (the default rule, the reference data, the
stream, the events) stays in each test module, which binds it, e.g.
`feed = partial(kindtest.feed, stream="reservoir")`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ioc.alerts import Alert
from ioc.engine import Engine
from ioc.refdata import Reference
from ioc.rules.exceptions import RuleError
from ioc.rules.loader import RuleSet, load_rules
from ioc.timeutil import format_ts

T0 = 1761526800.0  # 2025-10-27T01:00:00Z (08:00 in Huế), an hour boundary

Event = dict[str, Any]
Pairs = list[tuple[int, Event]]  # (partition, event) in arrival order
Summary = tuple[str, str, float, float | None]  # (alert_id, status, starts_at, ends_at)

K = TypeVar("K")
T = TypeVar("T")
W = TypeVar("W")


# -- rules ------------------------------------------------------------------------------------


def rule_doc(rule: Mapping[str, Any]) -> str:
    """A rules file holding `rule`. JSON is YAML: exact, and keeps the Vietnamese text as written."""
    return "rules:\n  - " + json.dumps(rule, ensure_ascii=False) + "\n"


def rule_yaml(base: Mapping[str, Any], **fields: Any) -> str:
    """A rules file holding `base` with `fields` overridden or added, or removed when None.

    A trailing `_` is dropped from a field's name, for names that are Python keywords (`for_`).
    """
    rule = dict(base)
    for name, value in fields.items():
        name = name.rstrip("_")
        if value is None:
            rule.pop(name, None)
        else:
            rule[name] = value
    return rule_doc(rule)


def make_rules(tmp_path: Path, text: str, reference: Reference | None = None, name: str = "rules.yaml") -> RuleSet:
    """Write `text` to tmp_path/`name` and load it (no reference data unless given)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_rules([path], reference)


def rule_error(tmp_path: Path, text: str, reference: Reference | None = None, name: str = "rules.yaml") -> RuleError:
    """The loader's error for rules that must not load."""
    with pytest.raises(RuleError) as info:
        make_rules(tmp_path, text, reference, name)
    return info.value


def only_problem(error: RuleError) -> str:
    """The message of the one problem `error` lists (asserted to be the only one)."""
    assert len(error.problems) == 1, str(error)
    return str(error.problems[0])


# -- running the engine -------------------------------------------------------------------------


def engine_of(ruleset: RuleSet, **kw: Any) -> Engine:
    """An engine whose clock (detected_at) is always 0."""
    return Engine(ruleset, clock=lambda: 0.0, **kw)


def feed(engine: Engine, events: Iterable[Event], *, stream: str, partition: int = 0) -> list[Alert]:
    """Events one per batch (the strictest batching), alerts concatenated."""
    out: list[Alert] = []
    for event in events:
        out.extend(engine.process(stream, [event], partition))
    return out


def batches(pairs: Sequence[tuple[W, Event]], sizes: Sequence[int]) -> Iterator[tuple[W, list[Event]]]:
    """Cut the arrival sequence into batches of `sizes` (cycled); each batch grouped by the first
    item of its pairs (a partition), groups in order of first appearance. Events are copied."""
    i = j = 0
    while i < len(pairs):
        size = sizes[j % len(sizes)]
        j += 1
        groups: dict[W, list[Event]] = {}
        for where, event in pairs[i:i + size]:
            groups.setdefault(where, []).append(dict(event))
        i += size
        yield from groups.items()


def run_batched(
    engine: Engine, pairs: Sequence[tuple[int, Event]], sizes: Sequence[int], *, stream: str,
    end: float | None = None,
) -> list[Alert]:
    """(partition, event) pairs of `stream` processed in `batches`; with `end`, partitions 0 and 1
    are then advanced to it (so that what is still open fires or resolves)."""
    out: list[Alert] = []
    for part, batch in batches(pairs, sizes):
        out.extend(engine.process(stream, batch, part))
    if end is not None:
        for part in (0, 1):
            out.extend(engine.advance(stream, end, part))
    return out


def feed_pairs(engine: Engine, pairs: Sequence[tuple[int, Event]], *, stream: str) -> list[Alert]:
    """(partition, event) pairs one per batch, each in its partition."""
    return run_batched(engine, pairs, [1], stream=stream)


def replay(
    ruleset: RuleSet, pairs: Sequence[tuple[int, Event]], sizes: Sequence[int], *, stream: str,
    lateness: float = 0.0, end: float | None = None,
) -> tuple[list[Alert], Engine]:
    """`run_batched` on a new engine allowing `lateness` seconds: the alerts, and the engine."""
    engine = engine_of(ruleset, lateness_s=lateness)
    return run_batched(engine, pairs, sizes, stream=stream, end=end), engine


def restored(engine: Engine, ruleset: RuleSet, **kw: Any) -> Engine:
    """A new engine over `ruleset`, restored from `engine`'s snapshot after a JSON round trip
    (so the state must be plain data)."""
    other = engine_of(ruleset, **kw)
    other.restore(json.loads(json.dumps(engine.snapshot())))
    return other


def run_restored(
    run: Callable[[Engine, Sequence[T]], list[Alert]], events: Sequence[T], cut: int, ruleset: RuleSet,
    ruleset_after: RuleSet | None = None,
) -> list[Alert]:
    """The alerts of `run` over `events` by an engine over `ruleset` up to `cut`, then by one
    `restored` from its snapshot (over `ruleset_after`, if given) for the rest."""
    first = engine_of(ruleset)
    before = run(first, events[:cut])
    second = restored(first, ruleset if ruleset_after is None else ruleset_after)
    return before + run(second, events[cut:])


# -- looking at alerts ------------------------------------------------------------------------------


def span(alert: Alert) -> tuple[float, float | None]:
    """(starts_at - T0, ends_at - T0) of an alert."""
    return alert.starts_at - T0, None if alert.ends_at is None else alert.ends_at - T0


def brief(alerts: Sequence[Alert]) -> list[tuple[str, str, float, float | None]]:
    """(status, source_id, starts_at - T0, ends_at - T0) of each alert."""
    return [(a.status, a.key["source_id"], *span(a)) for a in alerts]


def brief_values(alerts: Sequence[Alert]) -> list[tuple[str, float, float | None, Any]]:
    """(status, starts_at - T0, ends_at - T0, value) of each alert."""
    return [(a.status, *span(a), a.value) for a in alerts]


def records(alerts: Sequence[Alert]) -> list[dict[str, Any]]:
    """The published record of each alert, but `rule_source`: the tests compare the records of
    the same rules written to two files (the place differs by design, nothing else may)."""
    return [{name: value for name, value in a.to_record().items() if name != "rule_source"} for a in alerts]


def summary_of(alerts: Sequence[Alert]) -> list[Summary]:
    """(alert_id, status, starts_at, ends_at) of each alert."""
    return [(a.alert_id, a.status, a.starts_at, a.ends_at) for a in alerts]


def per_fingerprint(alerts: Sequence[Alert]) -> dict[str, list[Summary]]:
    """`summary_of` the alerts of each fingerprint, in order: batching may only regroup partitions."""
    out: dict[str, list[Summary]] = {}
    for a in alerts:
        out.setdefault(a.fingerprint, []).extend(summary_of([a]))
    return out


def expected_fingerprint(rule_id: str, key: dict[str, Any]) -> str:
    """The fingerprint as specified (sha256 of the canonical [rule_id, sorted key] JSON, 16 hex digits),
    computed here independently of `ioc.alerts.fingerprint`."""
    canonical = json.dumps([rule_id, sorted([k, v] for k, v in key.items())], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# -- batching properties ----------------------------------------------------------------------------

SIZES = st.lists(st.integers(1, 8), min_size=1, max_size=6)  # batch sizes for `run_batched`, cycled


def arrivals(
    draw: st.DrawFn, keys: Sequence[K], *, count: int, steps: Sequence[int], late: tuple[int, int] | None = None,
    clamp: bool = False, partitions: int = 2,
) -> list[tuple[int, K, float]]:
    """(partition, key, seconds) of 1 to `count` arriving events of `keys`, each key in one partition (drawn).

    Each partition has a clock from 0 that moves on by one of `steps` seconds, or, with `late` = (lo, hi),
    by any whole number of seconds in that range (so events may arrive out of order); `clamp` keeps it >= 0.
    """
    partition_of = {key: draw(st.integers(0, partitions - 1)) for key in keys}
    clock = dict.fromkeys(range(partitions), 0.0)
    out: list[tuple[int, K, float]] = []
    for _ in range(draw(st.integers(1, count))):
        key = draw(st.sampled_from(keys))
        part = partition_of[key]
        move = draw(st.sampled_from(steps) if late is None else st.integers(*late))
        clock[part] = max(0.0, clock[part] + move) if clamp else clock[part] + move
        out.append((part, key, clock[part]))
    return out


def batching_settings(max_examples: int) -> settings:
    """Hypothesis settings of the batching properties: no deadline; module-scoped fixtures are fine."""
    return settings(max_examples=max_examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


# -- mixed histories of two streams (the property tests of batching and of the runtime) ----------


def reservoir_reading(draw: st.DrawFn, ts: float, stations: Sequence[str]) -> tuple[str, Event]:
    """A reservoir reading of one of `stations` at `ts`: levels around NWL for Tả Trạch and Bình
    Điền (so thresholds flap), heavy rain now and then."""
    station = draw(st.sampled_from(stations))
    base = {"ta-trach": 44.0, "binh-dien": 84.0}.get(station, 1.0)
    return "reservoir", {
        "source_id": station, "ts": format_ts(ts),
        "level_m": round(base + draw(st.floats(0.0, 1.5)), 2),
        "rain_mm_1h": draw(st.sampled_from([0.0, 10.0, 35.0, 45.0])),
    }


def cyber_login(draw: st.DrawFn, ts: float, sensors: Sequence[str], ips: Sequence[str]) -> tuple[str, Event]:
    """A login (mostly failed) seen by one of `sensors`, from one of `ips`, sometimes with SQL in the URL."""
    return "cyber", {
        "source_id": draw(st.sampled_from(sensors)), "ts": format_ts(ts), "event_action": "authentication",
        "event_outcome": draw(st.sampled_from(["failure", "failure", "success"])),
        "src_ip": draw(st.sampled_from(ips)), "user": draw(st.sampled_from(("lan", "minh"))),
        "url": draw(st.sampled_from(["/login", "/news?id=1 UNION  SELECT pass", "/"])),
    }


def camera_report(draw: st.DrawFn, ts: float, cameras: Sequence[str]) -> tuple[str, Event]:
    """A road-flooding report (or a heartbeat) of one of `cameras` at `ts`."""
    return "camera", {
        "source_id": draw(st.sampled_from(cameras)), "ts": format_ts(ts),
        "event_type": draw(st.sampled_from(["road_flooding", "road_flooding", "heartbeat"])),
    }


@st.composite
def mixed_history(
    draw: st.DrawFn, *, most: int, stations: Sequence[str] = ("ta-trach", "binh-dien", "kim-long"),
    sensors: Sequence[str] = ("soc-fw-01",), ips: Sequence[str] = ("192.0.2.1", "192.0.2.2", "198.51.100.7"),
    cameras: Sequence[str] = (),
) -> list[tuple[str, Event]]:
    """5 to `most` (stream, event) pairs of reservoir readings and cyber logins (and camera
    reports, when `cameras` are given), in time order."""
    count = draw(st.integers(5, most))
    ts, rows = T0, []
    for _ in range(count):
        ts += draw(st.sampled_from([0, 60, 300, 600, 1200]))
        if cameras and draw(st.integers(0, 2)) == 0:
            rows.append(camera_report(draw, ts, cameras))
        elif draw(st.booleans()):
            rows.append(reservoir_reading(draw, ts, stations))
        else:
            rows.append(cyber_login(draw, ts, sensors, ips))
    return rows
