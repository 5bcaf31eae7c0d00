"""Replay events through the runtime's shards in memory: what a backtest runs.

The live worker and the backtest share one definition of time (docs/architecture.md): each
raw topic partition is a shard with its own watermark, and each key space partition
evaluates its events in event-time order once the minimum watermark of its sources has
passed them. A replay assigns events to partitions as Kafka's default partitioner does
(by `source_id`), runs every raw shard over its partition, hands the re-keyed events to the
key spaces as frames, and then lets every source be idle, as a worker that has read all
there is. So the same events give the same alerts here, in one worker, in several, and
across restarts.

>>> alerts = replay(plan_rules(ruleset), [("reservoir", event), ...], partitions=4)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ioc.alerts import Alert
from ioc.engine import KeyLimits
from ioc.events import STREAMS
from ioc.runtime.frames import Frame, decode_frame, encode_frame
from ioc.runtime.partitioner import KeyPartitioner
from ioc.runtime.plan import TOPIC_KEY, Plan
from ioc.runtime.shards import SHARD_LIMITS, RawShard, RekeyShard

__all__ = ["replay", "partition_counts"]


def partition_counts(plan: Plan, partitions: int) -> dict[str, int]:
    """Partitions of every topic a plan reads (`raw.<stream>`, `rekey.<space>`), all alike."""
    counts = {f"raw.{stream}": partitions for stream in STREAMS}
    counts.update({f"rekey.{space}": partitions for space in plan.spaces})
    return counts


def replay(
    plan: Plan,
    events: Iterable[tuple[str, dict[str, Any]]],
    *,
    partitions: int | Mapping[str, int] = 1,
    lateness_s: float = 0.0,
    until: float | None = None,
    event_time_clock: bool = True,
    limits: KeyLimits = SHARD_LIMITS,
    progress: Callable[[int], None] | None = None,
) -> list[Alert]:
    """Alerts of `events` ((stream, validated event) in arrival order), ordered by decision time.

    `until` moves every watermark on to that time at the end. With `event_time_clock`,
    `detected_at` is the event time at which the engine decided (reproducible output). `limits`:
    the shards' state bounds, as the worker's (`HostSettings.limits`, from settings.limits): a full
    rule refuses the same keys here as live. `progress(n)`: n events evaluated by the raw shards so
    far, after each one."""
    counts = partition_counts(plan, partitions) if isinstance(partitions, int) else dict(partitions)
    by_partition: dict[tuple[str, int], list[dict[str, Any]]] = {}
    partitioners = {stream: KeyPartitioner(counts.get(f"raw.{stream}", 1)) for stream in STREAMS}
    for stream, event in events:
        partition = partitioners[stream]((event[TOPIC_KEY],))
        bucket = by_partition.setdefault((stream, partition), [])
        event["_off"] = len(bucket)
        bucket.append(event)
    alerts: list[list[Alert]] = []
    frames: dict[tuple[str, int], list[Frame]] = {}
    raw_shards = []
    evaluated = 0
    for stream in STREAMS:
        for partition in range(counts.get(f"raw.{stream}", 1)):
            shard = RawShard(stream, partition, plan, counts, lateness_s=lateness_s, limits=limits)
            _event_time(shard, event_time_clock)
            raw_shards.append(shard)
            batch = by_partition.get((stream, partition), [])
            found, exports = shard.process(batch)
            alerts.append(found)
            if progress is not None:
                evaluated += len(batch)
                progress(evaluated)
            # Read everything there is: every source is idle, its frames carry its last watermark.
            shard.idle = True
            for target in shard.targets():
                frame = shard.frame(exports.get(target))
                frames.setdefault(target, []).append(decode_frame(encode_frame(frame)))
            if until is not None:
                alerts.append(shard.advance(until))
    for space in plan.spaces:
        for partition in range(counts.get(f"rekey.{space}", 1)):
            rekeyed = RekeyShard(space, partition, plan, counts, limits=limits)
            _event_time(rekeyed, event_time_clock)
            for frame in frames.get((space, partition), []):
                rekeyed.add(frame)
            alerts.append(rekeyed.release())
            if until is not None:
                alerts.append(rekeyed.advance(until))
    merged = [alert for found in alerts for alert in found]
    merged.sort(key=lambda alert: alert.detected_at)
    return merged


def _event_time(shard: RawShard | RekeyShard, enabled: bool) -> None:
    if enabled:
        engine = shard.engine
        engine.clock = lambda: engine.rt.now
