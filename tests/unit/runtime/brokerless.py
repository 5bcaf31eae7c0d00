"""A worker's shards in one `ShardHost` with partition logs in memory instead of a broker:
`feed` appends records to a partition and hands them to its shard, `deliver` puts the frames
a round produced on their key-space partitions at once (as the broker would carry them) and
keeps the alerts. Shared by the runtime tests (`from brokerless import Brokerless`)."""

from __future__ import annotations

from ioc.alerts import Alert
from ioc.runtime.host import Output, ShardHost, ShardKey
from ioc.runtime.pipeline import DeadLetter, RawRecord


class Brokerless:
    def __init__(self, host: ShardHost, *, received: float = 0.0) -> None:
        self.host = host
        self.received = received  # the records' broker timestamp
        self.offsets: dict[ShardKey, int] = {}
        self.alerts: list[Alert] = []
        self.dead_letters: list[DeadLetter] = []

    def feed(self, topic: str, partition: int, values: list[bytes], key: bytes | None = None) -> None:
        """Append `values` to a partition's log and let its shard handle them."""
        start = self.offsets.get((topic, partition), 0)
        self.offsets[(topic, partition)] = start + len(values)
        records = [RawRecord("ioc." + topic, partition, start + i, key, v, self.received)
                   for i, v in enumerate(values)]
        self.deliver(self.host.handle(topic, partition, records))

    def deliver(self, out: Output) -> None:
        """Keep a round's alerts and dead letters; hand its frames to their partitions (grouped, in order)."""
        self.alerts.extend(out.alerts)
        self.dead_letters.extend(out.dead_letters)
        by_target: dict[tuple[str, int], list[bytes]] = {}
        for topic, q, value in out.frames:
            by_target.setdefault((topic, q), []).append(value)
        for (topic, q), values in by_target.items():
            self.feed(topic, q, values)
