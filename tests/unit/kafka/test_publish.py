"""Publishing a round: retriable failures are retried, records that can never be written are
given up once (logged, counted) and the others still go out; a stopping worker abandons."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest
from aiokafka.errors import (
    InvalidTopicError,
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    UnknownTopicOrPartitionError,
)
from prometheus_client import CollectorRegistry

from ioc.kafka.publish import OutRecord, PublishAbandoned, Publisher, failure_reason, fit_json
from ioc.metrics import IocMetrics


class ScriptedProducer:
    """aiokafka's producer surface: `send()` returns a future. `refuse(topic, value)` gives the
    error (raised by send, or set on the future when `on_future`) or None."""

    def __init__(self, refuse: Any) -> None:
        self.refuse = refuse
        self.acknowledged: list[tuple[str, bytes | None]] = []
        self.attempts = 0

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   partition: int | None = None) -> asyncio.Future[None]:
        self.attempts += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        outcome = self.refuse(topic, value)
        if outcome is None:
            self.acknowledged.append((topic, value))
            future.set_result(None)
            return future
        error, on_future = outcome
        if not on_future:
            raise error
        future.set_exception(error)
        return future


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


def _publisher(producer: Any, **options: Any) -> tuple[Publisher, CollectorRegistry]:
    registry = CollectorRegistry()
    options.setdefault("sleep", _no_sleep)
    return Publisher(producer, record_bytes=1000, metrics=IocMetrics(registry), prefix="ioc.", **options), registry


def _failures(registry: CollectorRegistry, topic: str, reason: str) -> float | None:
    return registry.get_sample_value("ioc_publish_failures_total", {"topic": topic, "reason": reason})


def test_a_record_over_record_bytes_is_given_up_once_and_the_others_go_out(caplog) -> None:
    producer = ScriptedProducer(lambda topic, value: None)
    publisher, registry = _publisher(producer)
    records = [OutRecord("ioc.alerts", b"a"), OutRecord("ioc.deadletter", b"x" * 1001, what="a dead letter"),
               OutRecord("ioc.alerts", b"b")]
    with caplog.at_level(logging.ERROR):
        dropped = asyncio.run(publisher.publish(records))
    assert dropped == [records[1]]
    assert producer.acknowledged == [("ioc.alerts", b"a"), ("ioc.alerts", b"b")]
    assert _failures(registry, "deadletter", "too_large") == 1
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "a dead letter" in line and "1001 bytes" in line and "record_bytes" in line


def test_a_record_of_exactly_record_bytes_is_sent() -> None:
    producer = ScriptedProducer(lambda topic, value: None)
    publisher, _ = _publisher(producer)
    assert asyncio.run(publisher.publish([OutRecord("ioc.alerts", b"x" * 990, b"k" * 10)])) == []
    assert len(producer.acknowledged) == 1


@pytest.mark.parametrize(("error", "reason"), [
    (MessageSizeTooLargeError("too big"), "too_large"),
    (InvalidTopicError(), "invalid_topic"),
    (AssertionError("Unrecognized partition"), "unknown_partition"),
])
def test_an_error_raised_by_send_that_retrying_cannot_change_is_given_up_at_once(error, reason) -> None:
    producer = ScriptedProducer(lambda topic, value: (error, False) if value == b"bad" else None)
    publisher, registry = _publisher(producer)
    dropped = asyncio.run(publisher.publish([OutRecord("ioc.alerts", b"bad"), OutRecord("ioc.alerts", b"ok")]))
    assert [r.value for r in dropped] == [b"bad"]
    assert producer.attempts == 2  # one try each, never a retry
    assert _failures(registry, "alerts", reason) == 1


def test_a_batch_refused_by_the_broker_is_tried_again_record_by_record() -> None:
    """A broker refusal fails the whole batch of a partition: the innocent batch-mates go out."""
    first_try = {b"bad", b"mate"}

    def refuse(topic: str, value: bytes | None) -> Any:
        if value == b"bad":
            return MessageSizeTooLargeError(), True
        if value in first_try:
            first_try.discard(value)
            return MessageSizeTooLargeError(), True  # failed with its batch
        return None

    producer = ScriptedProducer(refuse)
    publisher, registry = _publisher(producer)
    dropped = asyncio.run(publisher.publish([OutRecord("ioc.alerts", b"bad"), OutRecord("ioc.alerts", b"mate")]))
    assert [r.value for r in dropped] == [b"bad"]
    assert producer.acknowledged == [("ioc.alerts", b"mate")]
    assert _failures(registry, "alerts", "too_large") == 1


def test_retriable_failures_are_retried_with_back_off_until_the_broker_takes_the_round() -> None:
    failures = [KafkaConnectionError("away"), KafkaTimeoutError(), UnknownTopicOrPartitionError()]
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    def refuse(topic: str, value: bytes | None) -> Any:
        if value == b"a" and failures:
            return failures.pop(0), True
        return None

    producer = ScriptedProducer(refuse)
    publisher, registry = _publisher(producer, sleep=sleep)
    assert asyncio.run(publisher.publish([OutRecord("ioc.alerts", b"a"), OutRecord("ioc.alerts", b"b")])) == []
    assert delays == [0.5, 1.0, 2.0]
    # The whole round is sent again each time (order kept; repeats are harmless by alert id).
    assert producer.acknowledged[-2:] == [("ioc.alerts", b"a"), ("ioc.alerts", b"b")]
    assert registry.get_sample_value("ioc_publish_failures_total", {"topic": "alerts", "reason": "too_large"}) is None


def test_a_stopping_worker_abandons_a_round_the_broker_does_not_take() -> None:
    stopping = [False]

    async def sleep(seconds: float) -> None:
        stopping[0] = True  # SIGTERM arrives during the back-off

    producer = ScriptedProducer(lambda topic, value: (KafkaConnectionError("away"), True))
    publisher, _ = _publisher(producer, sleep=sleep, stopping=lambda: stopping[0])
    with pytest.raises(PublishAbandoned, match="1 records not acknowledged"):
        asyncio.run(publisher.publish([OutRecord("ioc.alerts", b"a")]))
    assert producer.attempts == 2


def test_a_cancelled_round_is_not_retried() -> None:
    producer = ScriptedProducer(lambda topic, value: (asyncio.CancelledError(), False))
    publisher, _ = _publisher(producer)
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(publisher.publish([OutRecord("ioc.alerts", b"a")]))
    assert producer.attempts == 1


def test_what_is_retriable() -> None:
    assert failure_reason(KafkaConnectionError()) is None
    assert failure_reason(KafkaTimeoutError()) is None  # expired in the accumulator: broker away
    assert failure_reason(ConnectionResetError()) is None
    assert failure_reason(MessageSizeTooLargeError()) == "too_large"
    assert failure_reason(TypeError("value must be bytes")) == "rejected"


def test_an_oversized_json_record_is_cut_to_fit_and_says_so() -> None:
    alert = {"alert_id": "abc-1", "summary": "s" * 5000, "evidence": [f"e{i}" for i in range(500)], "value": 3}
    body = fit_json(orjson.dumps(alert), 2000)
    cut = orjson.loads(body)
    assert len(body) <= 2000 and cut["truncated"] is True
    assert cut["alert_id"] == "abc-1" and cut["value"] == 3 and cut["summary"].startswith("sss")
    small = orjson.dumps({"alert_id": "abc-1"})
    assert fit_json(small, 2000) is small


def test_an_unknown_broker_error_is_retried_quickly_then_only_what_it_still_refuses_is_given_up() -> None:
    """The embedded broker, restarted, refuses the first writes to a recreated topic this way."""
    from aiokafka.errors import UnknownError

    from ioc.kafka.publish import UNKNOWN_DELAY_S, UNKNOWN_GIVE_UP_S

    now = [0.0]
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)
        now[0] += seconds

    refusals = [5]

    def refuse_five_times(topic: str, value: bytes | None) -> Any:
        if refusals[0]:
            refusals[0] -= 1
            return UnknownError(), True
        return None

    publisher, _ = _publisher(ScriptedProducer(refuse_five_times), sleep=sleep, clock=lambda: now[0])
    assert asyncio.run(publisher.publish([OutRecord("ioc.state", b"fence")])) == []
    assert delays == [UNKNOWN_DELAY_S * 2**n for n in range(5)]  # quick first, not an outage's back-off

    # 'a' is never taken; 'b', in the same round, is taken at every attempt: only 'a' is given up.
    refuse_a = ScriptedProducer(lambda topic, value: (UnknownError(), True) if value == b"a" else None)
    now[0] = 0.0
    publisher, registry = _publisher(refuse_a, sleep=sleep, clock=lambda: now[0])
    dropped = asyncio.run(publisher.publish([OutRecord("ioc.alerts", b"a"), OutRecord("ioc.alerts", b"b")]))
    assert [r.value for r in dropped] == [b"a"]
    assert _failures(registry, "alerts", "broker_error") == 1
    assert UNKNOWN_GIVE_UP_S < now[0] < UNKNOWN_GIVE_UP_S + 5
    assert ("ioc.alerts", b"b") in refuse_a.acknowledged
