"""`streams.runner.ShardRunner` as a started service over an in-memory stand-in for the broker
(the aiokafka clients are replaced; the checkpoint store is the real one): records in, alerts,
dead letters and frames out; checkpoints on `ioc.state` when it stops; a second runner
restores them and goes on where the first stopped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

import streams.clients
import streams.runner
from ioc.alerts import Alert
from ioc.config import load_settings
from ioc.rules.loader import RuleSet
from ioc.runtime.checkpoint import decode_checkpoint
from ioc.runtime.frames import decode_frame
from ioc.runtime.reload import RuleReloader
from ioc.runtime.runner import build_worker
from ioc.timeutil import format_ts, parse_ts
from streams.runner import ShardRunner

URL = "kafka://127.0.0.1:9092"  # never contacted: the clients are replaced
T0 = parse_ts("2025-10-27T08:00:00+07:00")
RAW = "ioc.raw.reservoir"
RULE_ID = "reservoir.level.near_nwl"


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int  # ms


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


class MemoryBroker:
    """Topic partitions as lists; one partition per topic."""

    def __init__(self) -> None:
        self.logs: dict[tuple[str, int], list[Message]] = {}
        self.committed: dict[tuple[str, int], int] = {}

    def append(self, topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
        log = self.logs.setdefault((topic, partition), [])
        log.append(Message(topic, partition, len(log), key, value, int(time.time() * 1000)))

    def values(self, topic: str) -> list[tuple[bytes | None, bytes | None]]:
        return [(m.key, m.value) for m in self.logs.get((topic, 0), [])]


class MemoryProducer:
    def __init__(self, broker: MemoryBroker, **options: Any) -> None:
        self.broker = broker

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   partition: int | None = None) -> asyncio.Future[None]:
        self.broker.append(topic, partition or 0, key, value)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class MemoryConsumer:
    """The group consumer (the only member: it gets every partition of what it subscribes to,
    announced to the listener on its first fetch) or, without a group, the state reader."""

    def __init__(self, broker: MemoryBroker, group_id: str | None = None, **options: Any) -> None:
        self.broker = broker
        self.group_id = group_id
        self.positions: dict[TP, int] = {}
        self.topics: list[str] = []
        self.listener: Any = None
        self.pending_assignment = False

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def assign(self, partitions: Iterable[Any]) -> None:
        self.positions = {TP(tp.topic, tp.partition): 0 for tp in partitions}

    async def seek_to_beginning(self, *partitions: Any) -> None:
        for tp in partitions:
            self.positions[TP(tp.topic, tp.partition)] = 0

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.topics, self.listener, self.pending_assignment = list(topics), listener, True

    def subscription(self) -> set[str]:
        return set(self.topics)

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0}

    def seek(self, tp: Any, offset: int) -> None:
        self.positions[TP(tp.topic, tp.partition)] = offset

    def assignment(self) -> set[Any]:
        return {streams.runner.TopicPartition(tp.topic, tp.partition) for tp in self.positions}

    def highwater(self, tp: Any) -> int:
        return len(self.broker.logs.get((tp.topic, tp.partition), []))

    async def commit(self, offsets: dict[Any, Any]) -> None:
        for tp, meta in offsets.items():
            self.broker.committed[(tp.topic, tp.partition)] = meta.offset

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[Any, list[Message]]:
        if self.pending_assignment:  # the rebalance happens inside a fetch, as with aiokafka
            self.pending_assignment = False
            assigned = [streams.runner.TopicPartition(topic, 0) for topic in self.topics]
            self.positions = {TP(tp.topic, 0): self.broker.committed.get((tp.topic, 0), 0) for tp in assigned}
            await self.listener.on_partitions_assigned(assigned)
        out: dict[Any, list[Message]] = {}
        for tp, position in self.positions.items():
            records = self.broker.logs.get((tp.topic, tp.partition), [])[position:position + (max_records or 1000)]
            if records:
                out[streams.runner.TopicPartition(tp.topic, tp.partition)] = records
                self.positions[tp] = position + len(records)
        if not out:
            await asyncio.sleep(0.01)
        return out


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> MemoryBroker:
    broker = MemoryBroker()
    monkeypatch.setattr(streams.clients, "AIOKafkaProducer", lambda **options: MemoryProducer(broker, **options))
    monkeypatch.setattr(streams.clients, "AIOKafkaConsumer", lambda **options: MemoryConsumer(broker, **options))
    # The outage watch probes the broker: the memory broker has every topic, always.
    monkeypatch.setattr(streams.runner, "topic_prober", lambda url: EveryTopic)
    return broker


class EveryTopic(set[str]):
    def __contains__(self, name: object) -> bool:
        return True


def reading(minutes: int, level: float) -> bytes:
    return orjson.dumps({"source_id": "ta-trach", "ts": format_ts(T0 + minutes * 60), "level_m": level})


async def run_until(runner: ShardRunner, done: Callable[[], bool], timeout: float = 10.0) -> None:
    await runner.start()
    try:
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, "the runner did not get there in time"
            await asyncio.sleep(0.01)
    finally:
        await runner.stop()


def alerts_on(broker: MemoryBroker) -> list[dict[str, Any]]:
    return [orjson.loads(value or b"") for _, value in broker.values("ioc.alerts")]


def test_a_runner_publishes_checkpoints_and_a_second_runner_goes_on_from_there(broker: MemoryBroker) -> None:
    # Never idle: what the runner publishes does not depend on how long the test takes.
    settings = load_settings(env={}, overrides={"worker.idle_advance_s": 0})
    for minutes, level in ((0, 44.6), (5, 44.7), (10, 44.8), (11, 44.8)):
        broker.append(RAW, 0, b"ta-trach", reading(minutes, level))
    broker.append(RAW, 0, b"ta-trach", b"{broken")
    parts = build_worker(settings)
    heard: list[Alert] = []

    def listener(alerts: Sequence[Alert]) -> None:
        heard.extend(alerts)

    runner = ShardRunner(settings, URL, parts, listeners=[listener])
    asyncio.run(run_until(runner, lambda: bool(broker.values("ioc.alerts") and broker.values("ioc.deadletter"))))

    [fired] = alerts_on(broker)
    assert (fired["rule_id"], fired["status"]) == (RULE_ID, "firing")
    assert broker.values("ioc.alerts")[0][0] == fired["fingerprint"].encode()
    assert [a.alert_id for a in heard] == [fired["alert_id"]]
    [(key, letter)] = broker.values("ioc.deadletter")
    assert key == b"ta-trach" and orjson.loads(letter or b"")["reason"] == "bad_json"
    # The key space `all` (rules keyed by no field) reads reservoir events too: none of these
    # matters to its rules, but it is told the partition's watermark.
    frames = [decode_frame(value or b"") for _, value in broker.values("ioc.rekey.all")]
    assert [(f.source, f.watermark, f.events) for f in frames] == [(("reservoir", 0), T0 + 11 * 60, [])]
    registry = parts.registry
    assert registry.get_sample_value("ioc_events_total", {"stream": "reservoir"}) == 4.0
    assert registry.get_sample_value("ioc_events_invalid_total", {"stream": "reservoir", "reason": "bad_json"}) == 1.0
    assert registry.get_sample_value(
        "ioc_alerts_total", {"rule_id": RULE_ID, "domain": "water", "severity": "warning", "status": "firing"}
    ) == 1.0

    # Stopped: every shard checkpointed on ioc.state, and the offsets they cover committed.
    assert broker.committed[(RAW, 0)] == 5
    commits = {key: orjson.loads(value or b"") for key, value in broker.values("ioc.state")
               if key is not None and b"@" not in key and key != b"!fence"}
    assert b"raw.reservoir/0" in commits and b"rekey.all/0" in commits
    [chunk] = [value for key, value in broker.values("ioc.state")
               if key is not None and key.startswith(b"raw.reservoir/0@")]
    assert decode_checkpoint(chunk or b"")["offset"] == 5

    # A second worker: restored from the checkpoint, it neither repeats the alert nor forgets it.
    broker.append(RAW, 0, b"ta-trach", reading(20, 40.0))
    second = ShardRunner(settings, URL, build_worker(settings))
    asyncio.run(run_until(second, lambda: len(broker.values("ioc.alerts")) == 2))
    fired_again, resolved = alerts_on(broker)
    assert fired_again == fired
    assert (resolved["status"], resolved["alert_id"]) == ("resolved", fired["alert_id"])
    assert broker.committed[(RAW, 0)] == 6


def test_sigterm_while_a_reloads_resolves_are_unacknowledged_takes_no_checkpoint_past_them(
    broker: MemoryBroker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """Found in review: the swap of a reload had moved the state on (the rule gone, its alert
    resolved) while the resolve was not on the broker yet; a final checkpoint then would have
    lost the resolve for good. The stop must leave the previous checkpoint standing."""
    settings = load_settings(env={}, overrides={"worker.idle_advance_s": 0})
    for minutes, level in ((0, 44.6), (11, 44.8)):
        broker.append(RAW, 0, b"ta-trach", reading(minutes, level))
    parts = build_worker(settings)
    without = RuleSet.of([r for r in parts.ruleset.rules if r.id != RULE_ID], parts.ruleset.reference,
                         parts.ruleset.files)
    reloader = RuleReloader(lambda: without, lambda ruleset: ([], []), None, lambda: [])
    runner = ShardRunner(settings, URL, parts, reloader=reloader)
    reloader.apply = runner.apply_rules
    held: list[asyncio.Future[None]] = []
    send = MemoryProducer.send

    async def hold_resolves(self: MemoryProducer, topic: str, value: bytes | None = None, key: bytes | None = None,
                            partition: int | None = None) -> asyncio.Future[None]:
        if topic == "ioc.alerts" and b'"resolved"' in (value or b""):
            held.append(asyncio.get_running_loop().create_future())  # never acknowledged
            return held[-1]
        return await send(self, topic, value, key, partition)

    async def scenario() -> None:
        await runner.start()
        try:
            deadline = time.monotonic() + 10
            while not broker.values("ioc.alerts"):
                assert time.monotonic() < deadline, "the alert did not fire"
                await asyncio.sleep(0.01)
            monkeypatch.setattr(MemoryProducer, "send", hold_resolves)
            runner.request_reload("SIGHUP")
            while not held:
                assert time.monotonic() < deadline, "the reload's resolve was not sent"
                await asyncio.sleep(0.01)
        finally:
            started = time.monotonic()
            await runner.stop()
            assert time.monotonic() - started < 10

    states_before = len(broker.values("ioc.state"))
    asyncio.run(scenario())
    assert [a["status"] for a in alerts_on(broker)] == ["firing"]
    # No checkpoint of the state after the swap: the next owner replays and resolves again.
    checkpoints = [v for k, v in broker.values("ioc.state") if k is not None and k.startswith(b"raw.reservoir/0@")]
    assert all(RULE_ID in str(decode_checkpoint(v or b"")) for v in checkpoints), \
        "a checkpoint of the state after the swap (without the rule) was taken"
    assert states_before == 0
    assert "no final checkpoint" in caplog.text
