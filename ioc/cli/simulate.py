"""`ioc simulate`: publish simulated sensor events to the raw topics, or write JSONL."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import orjson

from ioc.broker import broker_for, client_options
from ioc.cli.common import add_common, console, fail, settings_from
from ioc.topics import catalogue, ensure_topics, raw_topic
from sensors_sim.publish import publish
from sensors_sim.reservoir import ReservoirSimulator, load_stations

__all__ = ["register", "demo_start"]

STREAMS_SIMULATED = ("reservoir",)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("simulate", help="publish simulated sensor events (or write JSONL with --out)")
    add_common(parser)
    parser.add_argument("--stream", choices=STREAMS_SIMULATED, default="reservoir")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same events")
    parser.add_argument("--hours", type=float, default=48.0, help="event-time span to simulate (default 48)")
    parser.add_argument("--flood-at", type=float, default=3.0, help="hours until the flood starts (-1: none)")
    parser.add_argument("--rate", type=float, default=0.0, help="events per second (0: as fast as possible)")
    parser.add_argument("--start", type=float, help="event time of the first step, epoch seconds")
    parser.add_argument("--out", type=Path, help="write JSONL to this file instead of publishing")
    parser.set_defaults(run=run)


def demo_start(now: float | None = None) -> float:
    """Event time the demo's simulation starts: 90 days ago, on a 5-minute boundary. At the
    demo's pace (about 25 minutes of event time per second) it stays in the past for over an
    hour, so the worker's future-timestamp check never rejects it."""
    now = time.time() if now is None else now
    return float(int((now - 90 * 86400) // 300 * 300))


def run(args: argparse.Namespace) -> int:
    start = args.start if args.start is not None else demo_start()
    flood_at = None if args.flood_at < 0 else args.flood_at * 3600.0
    simulator = ReservoirSimulator(load_stations(), seed=args.seed, start=start, flood_at_s=flood_at)
    events = simulator.events(args.hours * 3600.0)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        count = 0
        with args.out.open("wb") as out:
            for event in events:
                out.write(orjson.dumps({"stream": args.stream, **event}) + b"\n")
                count += 1
        console.print(f"wrote {count} {args.stream} events to {args.out}")
        return 0
    settings = settings_from(args)
    if not settings.broker.url:
        return fail("ioc simulate publishes to a running broker: pass --broker kafka://host:port "
                    "(ioc demo prints it) or set IOC_BROKER; use --out FILE to write JSONL instead")
    with broker_for(settings) as url:
        ensure_topics(url, catalogue(settings), settings.topics.replication, client_options(settings))
        topic = raw_topic(settings, args.stream)
        stats = publish(url, topic, events, rate=args.rate or None)
    console.print(f"published {stats.sent} events to {topic} in {stats.seconds:.1f} s ({stats.rate:.0f}/s)")
    return 0
