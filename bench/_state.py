"""State phase: the worker's resident memory per distinct key (shipped rules).

After a warm-up, K distinct vessels each send one valid position (at sea in the coastal band,
a 9 m boat doing 6 kn: no shipped rule fires); RSS before and after, divided by K. Then the
worker stays idle for a while and RSS is read once more (`rss-after-quiet`).
"""

from __future__ import annotations

import time

import orjson
from _context import Row, Run, log
from _kafka import producer
from _procs import ProcessFailed
from _worker import Worker

__all__ = ["state_bytes_per_key"]

WARMUP_KEYS = 1_000


def _vessel(source_id: str, ts: float) -> bytes:
    return orjson.dumps({"stream": "vessel", "source_id": source_id, "ts": ts, "id": f"{source_id}-0",
                         "lat": 16.45, "lon": 107.85, "sog_kn": 6.0, "cog_deg": 90.0, "length_m": 9.0,
                         "device_status": "ok"})


def _send_vessels(run: Run, topic: str, label: str, count: int) -> None:
    out = producer(run.bootstrap)
    ts = time.time()
    for index in range(count):
        source_id = f"BENCH-{label}-{index:06d}"
        ts += 1e-5  # increasing: no event is older than its partition's watermark
        while True:
            try:
                out.produce(topic, value=_vessel(source_id, ts), key=source_id.encode())
                break
            except BufferError:
                out.poll(0.05)
    out.flush(60)


def _wait_processed(worker: Worker, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while worker.counts().processed < count:
        if time.monotonic() > deadline or not worker.alive():
            raise ProcessFailed(f"state: {worker.counts().processed:,} of {count:,} events processed")
        time.sleep(0.2)


def state_bytes_per_key(run: Run, keys: int, quiet_s: float = 10.0) -> Row:
    row = Row("state-bytes-per-key")
    with run.measured(row):
        prefix = run.fresh_prefix("state")
        topic = run.topics_for(prefix)["vessel"]
        worker = Worker.start(run.procs, "worker-state", run.url, prefix=prefix, app_id=run.fresh("state"),
                              partitions=run.partitions, log_dir=run.log_dir)
        _send_vessels(run, topic, "warm", WARMUP_KEYS)
        _wait_processed(worker, WARMUP_KEYS, timeout_s=120)
        time.sleep(1.0)
        before = worker.rss_bytes()
        log(f"state: warm at {before / 2**20:,.0f} MiB RSS; sending {keys:,} new vessels")
        _send_vessels(run, topic, "key", keys)
        _wait_processed(worker, WARMUP_KEYS + keys, timeout_s=120 + keys / 500)
        after = worker.rss_bytes()
        time.sleep(quiet_s)
        quiet = worker.rss_bytes()
        counts = worker.counts()
        row.figures["stop_s"] = round(worker.stop(), 2)
    row.figures.update(
        keys=keys, rss_before_mib=_mib(before), rss_after_mib=_mib(after), rss_after_quiet_mib=_mib(quiet),
        bytes_per_key=round((after - before) / keys), quiet_s=quiet_s,
        invalid=int(counts.invalid), late=int(counts.late), alerts=int(counts.alerts_firing),
    )
    return row


def _mib(value: int) -> float:
    return round(value / 2**20, 1)
