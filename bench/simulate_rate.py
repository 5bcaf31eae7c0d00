"""Benchmark: can `ioc simulate` sustain a given rate into the embedded broker?

    .venv/bin/python bench/simulate_rate.py --rate 20000 --seconds 60

Starts an embedded Tansu broker on 127.0.0.1, publishes the storm-day scenario (every stream)
with the rate cap, stops after --seconds, and prints the measured rate. A benchmark, not a
test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import threading
import time

from ioc.cli.simulate import publish_scenario
from ioc.config import load_settings
from ioc.kafka.broker import EmbeddedBroker
from ioc.kafka.topics import catalogue, ensure_topics, raw_topic
from ioc.timeutil import parse_ts
from sensors_sim.scenario import build, load_scenario


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20000.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--scenario", default="storm-day")
    args = parser.parse_args()
    settings = load_settings(env={})
    scenario = load_scenario(args.scenario)
    # Long enough that the run never ends before the time is up at this rate.
    run = build(scenario, seed=0, start=parse_ts("2025-10-27T00:00:00+07:00"), duration_s=30 * 86400.0)
    with EmbeddedBroker() as broker:
        ensure_topics(broker.url, catalogue(settings))
        topics = {stream: raw_topic(settings, stream) for stream in scenario.streams}
        stop = threading.Event()
        timer = threading.Timer(args.seconds, stop.set)
        timer.start()
        started = time.monotonic()
        stats = publish_scenario(broker.url, run, topics, rate=args.rate, stop=stop)
        timer.cancel()
        elapsed = time.monotonic() - started
    print(f"scenario {scenario.name}, rate cap {args.rate:,.0f}/s, {args.seconds:.0f} s requested")
    print(f"published {stats.sent:,} messages in {elapsed:.1f} s: {stats.sent / elapsed:,.0f} messages/s "
          f"({stats.sent / elapsed / args.rate:.0%} of the cap)")


if __name__ == "__main__":
    main()
