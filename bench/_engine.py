"""Engine phases: the engine alone, in this process, with no broker.

* `engine-shipped`: the preloaded storm-day events (the same files the worker phases read),
  decoded (bytes to validated events) and run through the 48 shipped rules, stream by stream in
  batches of 1,000: µs per event for each step, and alerts.
* `rule-curve`: µs per event with 10, 100, 1,000 and 10,000 threshold rules on the reservoir
  stream (`--quick`: up to 1,000), in three shapes: `per-sensor` (each rule is about one sensor,
  `where: source_id == '...'`, as analysts write them: the rule index hashes them),
  `shared-field` (every rule tests the same field with its own threshold and no `where`: the
  sorted threshold groups find the rules an event crosses, none here) and `shared-field-crossed`
  (the same with thresholds among the levels: every event crosses about half of the rules, which
  fire; up to 1,000 rules). Events come from 1,000 sensors; the cost ratio to 10 rules is given.
* `key-curve`: µs per event, and bytes the engine keeps per vessel and per rule key (traced
  Python allocations), as 1,000 → 1,000,000 distinct vessels (`--quick`: up to 100,000) each
  send one position through the shipped rules.
"""

from __future__ import annotations

import gc
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from _context import Row, Run, log

from ioc.config import load_settings
from ioc.engine import Engine
from ioc.engine.limits import UNLIMITED
from ioc.events.decode import decode_batch
from ioc.rules.loader import RuleSet, load_rules
from ioc.runtime.runner import load_ruleset

__all__ = ["engine_shipped", "rule_curve", "key_curve"]

BATCH = 1000
SENSORS = 1000
SHAPES = ("per-sensor", "shared-field", "shared-field-crossed")
T0 = 1_761_526_800.0  # 2025-10-27 08:00 ICT


def _batches(items: list[Any]) -> list[list[Any]]:
    return [items[i:i + BATCH] for i in range(0, len(items), BATCH)]


def engine_shipped(run: Run, name: str) -> Row:
    row = Row(name)
    settings = load_settings(env={})
    ruleset = load_ruleset(settings)
    schemas = settings.schemas()  # the declared fields (camera `ward`), as the worker decodes
    raw = {stream: path.read_bytes().splitlines() for stream, path in run.files.items()}
    started = time.perf_counter()
    decoded = {stream: [event for batch in _batches(lines) for event in decode_batch(stream, batch, schemas=schemas)[0]]
               for stream, lines in raw.items()}
    decode_s = time.perf_counter() - started
    engine = Engine(ruleset, clock=lambda: T0)
    alerts = 0
    started = time.perf_counter()
    for stream, events in decoded.items():
        for batch in _batches(events):
            alerts += len(engine.process(stream, batch))
    engine_s = time.perf_counter() - started
    count = sum(len(events) for events in decoded.values())
    row.figures.update(rules=len(ruleset), events=count, decode_us_per_event=round(decode_s / count * 1e6, 2),
                       engine_us_per_event=round(engine_s / count * 1e6, 2),
                       events_per_s=round(count / (decode_s + engine_s)), alerts=alerts)  # decode + engine
    return row


def _threshold_rules(count: int, shape: str) -> RuleSet:
    """`count` rules, in files of 500 (a rule file holds at most 1,000 rules and 1 MiB)."""
    with tempfile.TemporaryDirectory(prefix="ioc-bench-rules-") as folder:
        for first in range(0, count, 500):
            path = Path(folder) / f"rules-{first:05d}.yaml"
            path.write_text(_rule_file(range(first, min(count, first + 500)), shape), encoding="utf-8")
        return load_rules([folder])


def _rule_file(numbers: range, shape: str) -> str:
    lines = ["rules:"]
    # Thresholds from 100 to 150 m over levels of 50-99.5 m: nothing fires, the figure is the
    # cost of meeting the rules (as the worker-threshold phase's rule, which never fires). In the
    # `shared-field-crossed` shape they are from 50 to 100 m: an event crosses half of them.
    lowest = 50 if shape == "shared-field-crossed" else 100
    for i in numbers:
        where = f"\n    where: \"source_id == 'r{i % SENSORS:04d}'\"" if shape == "per-sensor" else ""
        lines.append(f"""  - id: bench.level.{i:05d}
    stream: reservoir
    kind: threshold{where}
    condition: "level_m >= {lowest + (i * 37 % 500) / 10:g}"
    for: 10m
    summary: "{{source_id}} {{level_m}}\"""")
    return "\n".join(lines) + "\n"


def _reservoir_events(count: int) -> list[dict[str, Any]]:
    return [{"source_id": f"r{j % SENSORS:04d}", "ts": T0 + j, "level_m": 50.0 + (j * 7 % 100) * 0.5}
            for j in range(count)]


def _us_per_event(ruleset: RuleSet, stream: str, events: list[dict[str, Any]]) -> tuple[float, int]:
    engine = Engine(ruleset, clock=lambda: T0)
    alerts = 0
    started = time.perf_counter()
    for batch in _batches(events):
        alerts += len(engine.process(stream, batch))
    return (time.perf_counter() - started) / len(events) * 1e6, alerts


def rule_curve(run: Run, name: str) -> Row:
    row = Row(name)
    counts = (10, 100, 1000) if run.quick else (10, 100, 1000, 10000)
    for shape in SHAPES:
        curve: dict[str, Any] = {}
        for count in counts:
            if shape == "shared-field-crossed" and count > 1000:
                continue  # every event meets ~5,000 rules and their alerts: minutes, and no news
            started = time.perf_counter()
            ruleset = _threshold_rules(count, shape)
            load_s = time.perf_counter() - started
            index = ruleset.index("reservoir")
            groups = ruleset.layout("reservoir", grouped=True).groups
            # About 5 M rule evaluations in the shared-field shape (20 M at 10,000 rules: at
            # least 2,000 events), at most 50,000 events.
            events = _reservoir_events(max(2000, min(50_000, 5_000_000 // count)))
            us, alerts = _us_per_event(ruleset, "reservoir", events)
            curve[str(count)] = {"us_per_event": round(us, 2), "events": len(events), "alerts": alerts,
                                 "load_s": round(load_s, 2),  # parse, compile, index
                                 "index_routes": index.size() if index is not None else None,
                                 "sorted_rules": sum(len(group.items) for group in groups)}
            log(f"{name} {shape}: {count:,} rules, {us:,.1f} µs/event")
        base = curve[str(counts[0])]["us_per_event"]
        for point in curve.values():
            point["vs_10_rules"] = round(point["us_per_event"] / base, 2) if base else None
        row.figures[shape] = curve
    return row


def _vessels(start: int, count: int) -> list[dict[str, Any]]:
    # At sea in the coastal band, a 9 m boat doing 6 kn (as bench/_state.py): no shipped rule fires.
    raws = [{"source_id": f"BENCH-{start + k:07d}", "ts": T0 + (start + k) * 1e-3, "lat": 16.45, "lon": 107.85,
             "sog_kn": 6.0, "cog_deg": 90.0, "length_m": 9.0, "device_status": "ok"} for k in range(count)]
    return decode_batch("vessel", raws)[0]


def key_curve(run: Run, name: str) -> Row:
    """Two passes over the same steps of new vessels (the key limit lifted: `limits.keys_per_rule`
    would cap each rule at 100,000 keys): µs per event with nothing else running, then the
    memory the engine keeps per vessel and per rule key, traced by `tracemalloc` (Python's own
    allocations after a collection: resident-memory deltas hide state in memory the allocator
    had freed before)."""
    row = Row(name)
    ruleset = load_ruleset(load_settings(env={}))
    targets = (1_000, 10_000, 100_000) if run.quick else (1_000, 10_000, 100_000, 1_000_000)
    curve: dict[str, Any] = {str(target): {} for target in targets}
    for traced in (False, True):
        engine = Engine(ruleset, clock=lambda: T0, limits=UNLIMITED)
        held = 0
        if traced:
            tracemalloc.start()
        for target in targets:
            events = _vessels(held, target - held)
            keys_before = sum(len(states) for states in engine.states.values())
            gc.collect()
            before = tracemalloc.get_traced_memory()[0] if traced else 0
            started = time.perf_counter()
            for batch in _batches(events):
                engine.process("vessel", batch)
            elapsed = time.perf_counter() - started
            point = curve[str(target)]
            if traced:
                del batch
                gc.collect()
                grown = tracemalloc.get_traced_memory()[0] - before
                keys = sum(len(states) for states in engine.states.values())
                point.update(rule_keys=keys, bytes_per_vessel=round(grown / len(events)),
                             bytes_per_rule_key=round(grown / max(1, keys - keys_before)))
                log(f"{name}: {target:,} vessels, {keys:,} rule keys, {grown / len(events):,.0f} B/vessel")
            else:
                point["us_per_event"] = round(elapsed / len(events) * 1e6, 2)
                log(f"{name}: {target:,} vessels, {point['us_per_event']:,.1f} µs/event")
            held = target
            del events
        if traced:
            tracemalloc.stop()
        del engine
    row.figures["vessels"] = curve
    return row
