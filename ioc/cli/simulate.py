"""`ioc simulate`: run a scenario's simulators; publish to the raw topics or write JSONL.

    ioc simulate --scenario flood --out out/flood          # JSONL per stream + ground truth
    ioc simulate --scenario flood --broker kafka://... --speed 600 --bad-rate 0.01
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy
import orjson

from ioc.cli.common import add_common, console, fail, settings_from
from ioc.kafka.broker import broker_for
from ioc.kafka.clients import client_options
from ioc.kafka.topics import catalogue, ensure_topics, raw_topic
from ioc.timeutil import format_duration, parse_duration, parse_ts
from sensors_sim.bad import corrupt
from sensors_sim.publish import PublishStats, make_producer
from sensors_sim.scenario import ScenarioError, ScenarioRun, build, load_scenario, scenario_names

__all__ = ["register", "demo_start", "DEFAULT_START", "run_scenario_events"]

# A fixed start for files, so that the same seed gives byte-identical JSONL on every run.
DEFAULT_START = "2025-10-27T00:00:00+07:00"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "simulate", help="run a scenario: publish simulated events to the raw topics, or write JSONL (--out)",
        description="Scenarios: " + ", ".join(scenario_names()),
    )
    add_common(parser)
    parser.add_argument("--scenario", default="storm-day",
                        help="scenario name or file (default: storm-day, as for ioc demo)")
    parser.add_argument("--duration", help="event time to simulate, e.g. 2d (default: the scenario's)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same events")
    parser.add_argument("--start", help="event time of the start, RFC 3339 (default: fixed for --out, "
                                        "the duration before now when publishing)")
    parser.add_argument("--rate", type=float, default=0.0, help="at most this many events per second (0: no cap)")
    parser.add_argument("--speed", type=float, default=0.0,
                        help="event time runs this many times faster than the clock (0: as fast as --rate allows)")
    parser.add_argument("--bad-rate", type=float, default=0.0, help="share of extra malformed messages (0..1)")
    parser.add_argument("--out", type=Path, help="write <stream>.jsonl per stream and ground_truth.jsonl here")
    parser.set_defaults(run=run)


def demo_start(now: float | None = None) -> float:
    """Event time the demo's simulation starts: 90 days ago, on a 5-minute boundary. At the
    demo's pace (about 25 minutes of event time per second) it stays in the past for over an
    hour, so the worker's future-timestamp check never rejects it."""
    now = time.time() if now is None else now
    return float(int((now - 90 * 86400) // 300 * 300))


def run_scenario_events(
    run: ScenarioRun, bad_rate: float, seed: int
) -> Iterator[tuple[str, Mapping[str, Any] | bytes]]:
    """(stream, event or malformed bytes) in event-time order; a malformed copy follows an event
    with probability `bad_rate`, from its own random generator (the good events stay the same)."""
    rng = numpy.random.default_rng(seed + 7919)
    for stream, event in run.events():
        yield stream, event
        if bad_rate and rng.random() < bad_rate:
            yield stream, corrupt(rng, stream, event)[0]


def run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(args.scenario)
        duration = parse_duration(args.duration) if args.duration else scenario.duration_s
    except ScenarioError as exc:
        return fail(str(exc))
    except ValueError as exc:
        return fail(f"--duration: {exc}")
    if not 0 <= args.bad_rate <= 1:
        return fail(f"--bad-rate {args.bad_rate} must be between 0 and 1")
    try:
        if args.start:
            start = parse_ts(args.start)
        elif args.out is not None:
            start = parse_ts(DEFAULT_START)
        else:
            start = float(int((time.time() - duration) // 60 * 60))
    except ValueError as exc:
        return fail(f"--start: {exc}")
    try:
        scenario_run = build(scenario, seed=args.seed, start=start, duration_s=duration)
    except ScenarioError as exc:
        return fail(str(exc))
    if args.out is not None:
        return _write(scenario_run, args)
    settings = settings_from(args)
    if not settings.broker.url:
        return fail("ioc simulate publishes to a running broker: pass --broker kafka://host:port "
                    "(ioc demo prints it) or set IOC_BROKER; use --out DIR to write JSONL instead")
    with broker_for(settings) as url:
        ensure_topics(url, catalogue(settings), settings.topics.replication, client_options(settings))
        topics = {stream: raw_topic(settings, stream) for stream in scenario.streams}
        stats = publish_scenario(url, scenario_run, topics, rate=args.rate, speed=args.speed,
                                 bad_rate=args.bad_rate, seed=args.seed)
    console.print(f"published {stats.sent:,} messages in {stats.seconds:.1f} s ({stats.rate:,.0f}/s) "
                  f"to {', '.join(topics.values())}; {len(scenario_run.incidents)} incidents injected")
    if args.bad_rate:
        console.print(f"{stats.bad:,} malformed messages among them (each one must reach "
                      f"{settings.topic('deadletter')})")
    if stats.failed:
        console.print(f"{stats.failed:,} messages were refused by the producer or the broker (see the warnings)")
    return 0


def publish_scenario(
    url: str, scenario_run: ScenarioRun, topics: Mapping[str, str], *, rate: float = 0.0, speed: float = 0.0,
    bad_rate: float = 0.0, seed: int = 0, stop: threading.Event | None = None,
) -> PublishStats:
    """Send the scenario's events keyed by source_id, paced by `speed` and capped by `rate`."""
    producer = make_producer(url)
    stats = PublishStats()
    started = time.monotonic()
    try:
        for stream, item in run_scenario_events(scenario_run, bad_rate, seed):
            if stop is not None and stop.is_set():
                break
            if isinstance(item, bytes):
                producer.send(topics[stream], key=None, value=item)
                stats.bad += 1
            else:
                source = item.get("source_id")
                key = str(source).encode("utf-8") if source is not None else None
                producer.send(topics[stream], key=key, value=orjson.dumps(item))
                if speed:
                    due = (parse_ts(item["ts"]) - scenario_run.start) / speed
                    _sleep(due - (time.monotonic() - started), stop)
            stats.sent += 1
            if rate:
                _sleep(stats.sent / rate - (time.monotonic() - started), stop)
        producer.flush()
    finally:
        producer.close()
        stats.seconds = time.monotonic() - started
        stats.failed = getattr(producer, "failed", 0)
    return stats


def _sleep(seconds: float, stop: threading.Event | None) -> None:
    if seconds > 0:
        if stop is not None:
            stop.wait(seconds)
        else:
            time.sleep(seconds)


def _write(scenario_run: ScenarioRun, args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, IO[bytes]] = {}
    counts: dict[str, int] = {}
    try:
        for stream, item in run_scenario_events(scenario_run, args.bad_rate, args.seed):
            handle = files.get(stream)
            if handle is None:
                handle = files[stream] = (out / f"{stream}.jsonl").open("wb")
            if isinstance(item, bytes):
                handle.write(item.replace(b"\n", b" ") + b"\n")
            else:
                handle.write(orjson.dumps({"stream": stream, **item}) + b"\n")
            counts[stream] = counts.get(stream, 0) + 1
    finally:
        for handle in files.values():
            handle.close()
    with (out / "ground_truth.jsonl").open("wb") as truth:
        for incident in scenario_run.incidents:
            truth.write(orjson.dumps(incident.to_record()) + b"\n")
    summary = ", ".join(f"{stream} {count:,}" for stream, count in counts.items())
    span = format_duration(scenario_run.end - scenario_run.start)
    console.print(f"wrote {sum(counts.values()):,} events ({summary}) over {span} of event time and "
                  f"{len(scenario_run.incidents)} incidents to {out}/")
    return 0
