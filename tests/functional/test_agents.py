"""The Faust agents in a test context (no broker): a batch goes through the engine; alerts
and dead letters are sent to their topics (recorded here by a stand-in for the producer)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from ioc.config import load_settings
from ioc.runtime.runner import build_worker
from ioc.timeutil import format_ts, parse_ts
from streams.app import build_app

T0 = parse_ts("2025-10-27T08:00:00+07:00")


class RecordingTopic:
    """Stands in for a Faust topic's send(): records what the agent publishes."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes | None, bytes]] = []

    async def send(self, *, key: bytes | None, value: bytes) -> Any:
        self.sent.append((key, value))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future


def _event(minutes: int, level: float) -> bytes:
    return orjson.dumps({"source_id": "ta-trach", "ts": format_ts(T0 + minutes * 60), "level_m": level})


def test_ingest_agent_turns_a_batch_into_alerts_and_dead_letters():
    settings = load_settings(env={})
    parts = build_worker(settings)
    ioc_app = build_app(settings, "kafka://127.0.0.1:9092", parts.pipeline)  # not contacted here
    ioc_app.alerts_topic, ioc_app.dead_topic = RecordingTopic(), RecordingTopic()
    agent = ioc_app.app.agents["ioc.ingest.reservoir"]

    async def scenario() -> None:
        async with agent.test_context() as context:
            for minute, level in ((0, 44.6), (5, 44.7), (10, 44.8)):
                await context.put(_event(minute, level), key=b"ta-trach")
            await context.put(b"{broken", key=b"ta-trach")
            await asyncio.sleep(0.3)  # take_events flushes its buffer after `within`

    asyncio.run(scenario())
    alerts = [orjson.loads(value) for _, value in ioc_app.alerts_topic.sent]
    assert [(a["rule_id"], a["status"]) for a in alerts] == [("reservoir.level.near_nwl", "firing")]
    assert ioc_app.alerts_topic.sent[0][0] == alerts[0]["fingerprint"].encode()
    [(key, letter)] = ioc_app.dead_topic.sent
    assert key == b"ta-trach"
    assert orjson.loads(letter)["reason"] == "bad_json"
    registry = parts.registry
    assert registry.get_sample_value("ioc_events_total", {"stream": "reservoir"}) == 3.0
    assert registry.get_sample_value("ioc_events_invalid_total", {"stream": "reservoir", "reason": "bad_json"}) == 1.0
    assert registry.get_sample_value(
        "ioc_alerts_total", {"rule_id": "reservoir.level.near_nwl", "severity": "warning", "status": "firing"}
    ) == 1.0


class FlakyTopic(RecordingTopic):
    """Fails its first sends, like a broker that is briefly away."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def send(self, *, key: bytes | None, value: bytes) -> Any:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker unavailable")
        return await super().send(key=key, value=value)


def test_alerts_are_retried_until_the_broker_takes_them():
    from streams.app import send_until_acknowledged

    topic = FlakyTopic(failures=2)
    asyncio.run(send_until_acknowledged(topic, [(b"fp", b"{}")], "alerts"))
    assert topic.sent == [(b"fp", b"{}")]
    assert topic.failures == 0
