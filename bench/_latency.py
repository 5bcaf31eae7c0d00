"""Latency phase: event -> alert at a fixed rate, through a fresh worker and fresh topics.

One threshold rule that every sent event fires anew (each event is a new reservoir source
with a level over the threshold). A producer thread sends at the fixed rate with `ts` = now
and a unique `id`; a consumer thread reads the alerts topic and maps each alert's evidence
ids back to their send times. Latency = alert received - event sent (one monotonic clock).
"""

from __future__ import annotations

import threading
import time

import orjson
from _context import THRESHOLD, Row, Run, log
from _kafka import alerts_consumer, producer
from _worker import Worker

__all__ = ["latency"]


class _Alerts(threading.Thread):
    """Receive times of the evidence ids seen on the alerts topic."""

    def __init__(self, run: Run, topic: str) -> None:
        super().__init__(name="bench-alerts", daemon=True)
        self.consumer = alerts_consumer(run.bootstrap, topic, run.partitions)
        self.received: dict[str, float] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                # A short timeout: consume() waits until it has num_messages or the timeout passes,
                # and every message of a batch is stamped when the batch returns.
                for message in self.consumer.consume(num_messages=500, timeout=0.002):
                    now = time.monotonic()
                    value = message.value()
                    if message.error() is not None or value is None:
                        continue
                    alert = orjson.loads(value)
                    if alert.get("status") != "firing":
                        continue
                    for event_id in alert.get("evidence") or ():
                        self.received.setdefault(str(event_id), now)
        finally:
            self.consumer.close()


def _event(event_id: str, ts: float) -> bytes:
    return orjson.dumps({"stream": "reservoir", "source_id": event_id, "ts": ts, "id": event_id,
                         "level_m": THRESHOLD + 0.5})


def _wait_warm(run: Run, topic: str, alerts: _Alerts, timeout_s: float = 90.0) -> float:
    """Send a warm-up event every second until one's alert comes back (the worker has joined)."""
    out = producer(run.bootstrap, linger_ms=0)
    started = time.monotonic()
    sent: list[str] = []
    while time.monotonic() - started < timeout_s:
        event_id = f"warm-{len(sent)}"
        out.produce(topic, value=_event(event_id, time.time()), key=event_id.encode())
        out.flush(5)
        sent.append(event_id)
        until = time.monotonic() + 1.0
        while time.monotonic() < until:
            if any(event_id in alerts.received for event_id in sent):
                return time.monotonic() - started
            time.sleep(0.02)
    raise TimeoutError(f"no alert for a warm-up event within {timeout_s:g} s")


def _send(run: Run, topic: str, rate: float, seconds: float) -> tuple[dict[str, float], float]:
    """Send `rate` events/s for `seconds`; returns the send time of each id and the achieved rate."""
    out = producer(run.bootstrap, linger_ms=1)
    total = int(rate * seconds)
    sent: dict[str, float] = {}
    started = time.monotonic()
    last_ts = 0.0
    index = 0
    while index < total:
        due = min(total, int((time.monotonic() - started) * rate) + 1)
        while index < due:
            event_id = f"lat-{index}"
            last_ts = max(time.time(), last_ts + 1e-6)  # never older than the partition's watermark
            sent[event_id] = time.monotonic()
            out.produce(topic, value=_event(event_id, last_ts), key=event_id.encode())
            index += 1
        out.poll(0)
        time.sleep(0.001)
    elapsed = time.monotonic() - started
    out.flush(30)
    return sent, total / elapsed


def latency(run: Run, rate: float, seconds: float, name: str = "latency") -> Row:
    """p50/p99/max event -> alert latency at `rate` events/s for `seconds`."""
    row = Row(name)
    with run.measured(row):
        prefix = run.fresh_prefix("lat")
        raw = run.topics_for(prefix)["reservoir"]
        alerts = _Alerts(run, f"{prefix}alerts")
        alerts.start()
        try:
            worker = Worker.start(run.procs, "worker-latency", run.url, prefix=prefix, app_id=run.fresh("lat"),
                                  partitions=run.partitions, log_dir=run.log_dir, rules=run.threshold_rules())
            row.figures["warmup_s"] = round(_wait_warm(run, raw, alerts), 2)
            log(f"latency: worker joined; sending {rate:,.0f} events/s for {seconds:g} s")
            sent, achieved = _send(run, raw, rate, seconds)
            deadline = time.monotonic() + 30.0
            while time.monotonic() < deadline and not all(event_id in alerts.received for event_id in sent):
                time.sleep(0.2)
            row.figures["stop_s"] = round(worker.stop(), 2)
        finally:
            alerts.stopping.set()
            alerts.join(timeout=5)
    latencies = sorted(alerts.received[event_id] - at for event_id, at in sent.items() if event_id in alerts.received)
    row.figures.update(rate=rate, sent_rate=round(achieved), seconds=seconds, expected=len(sent),
                       received=len(latencies), lost=len(sent) - len(latencies))
    if latencies:
        row.figures.update(p50_ms=_ms(latencies, 0.50), p99_ms=_ms(latencies, 0.99), max_ms=_ms(latencies, 1.0))
    return row


def _ms(values: list[float], quantile: float) -> float:
    return round(values[min(len(values) - 1, int(quantile * len(values)))] * 1000, 1)
