"""Publish a round's records and wait for the broker: retry what may succeed later, give up
once on what never will.

The worker counts a round's input as done only once its alerts, dead letters and frames are
on the broker, so a send that fails because the broker is away is retried (the whole round,
as before: alert ids make repeats harmless, and the order of each partition's records is kept)
until it succeeds or the worker stops. A record that can never be written (larger than
`limits.record_bytes`, refused by the broker as too large, an invalid topic or partition) is
given up after one try: logged once with what and why, counted in
`ioc_publish_failures_total{topic,reason}`, and the round goes on without it, so that one bad
record never stalls its partition or the worker's shutdown.

>>> publisher = Publisher(producer, record_bytes=1_000_000)              # doctest: +SKIP
>>> dropped = await publisher.publish([OutRecord("ioc.alerts", b"{...}", b"fp")], "alerts")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    UnknownError,
)

from ioc.exceptions import IocError

__all__ = ["OutRecord", "Publisher", "PublishAbandoned", "failure_reason", "fit_json"]

log = logging.getLogger(__name__)

# Records given up in one round that are described one by one; the rest are summed up.
DETAILED = 3
# The broker's "unknown server error" is retried quickly at first (the embedded broker, restarted
# under a worker, refuses the first writes to a recreated topic with it, one refusal per record
# retried into the topic before it was recreated, then takes them), backing off to 2 s; records
# it still refuses after UNKNOWN_GIVE_UP_S of nothing but such answers are given up, so that a
# broker that never takes them cannot stall their partition for good.
UNKNOWN_GIVE_UP_S = 60.0
UNKNOWN_DELAY_S = 0.1


class PublishAbandoned(IocError):
    """The worker is stopping while records of a round are not acknowledged yet: the round is
    not done, its input is read again by the partition's next owner."""


@dataclass(frozen=True, slots=True)
class OutRecord:
    topic: str
    value: bytes | None
    key: bytes | None = None
    partition: int | None = None
    what: str = "record"  # for the operator: "alert <id> (rule x)", "dead letter of <pos>"...

    @property
    def size(self) -> int:
        return len(self.value or b"") + len(self.key or b"")


def failure_reason(exc: BaseException) -> str | None:
    """None when retrying may succeed (the broker is away or busy), else the reason it never
    will: a short label for `ioc_publish_failures_total`."""
    if isinstance(exc, (KafkaTimeoutError, UnknownError)):
        # Not acknowledged in time (the broker is away), or the broker's own trouble: not the
        # record at fault (the publisher bounds how often an unknown error is retried).
        return None
    if isinstance(exc, (MessageSizeTooLargeError, RecordListTooLargeError)):
        return "too_large"
    if isinstance(exc, KafkaError):
        if exc.retriable:
            return None
        name = type(exc).__name__
        if name == "InvalidTopicError":
            return "invalid_topic"
        if "Authorization" in name:
            return "not_authorized"
        return "rejected"
    if isinstance(exc, (OSError, TimeoutError)):
        return None
    if isinstance(exc, AssertionError):
        return "unknown_partition"  # aiokafka asserts a given partition exists
    return "rejected"  # a value of the wrong type and the like: no retry can change it


@dataclass
class _Outcome:
    record: OutRecord
    error: BaseException | None
    at_send: bool = False  # raised by send() itself: about this record alone, before any batch


class Publisher:
    """Send records with one aiokafka producer (see the module docstring).

    `stopping`: when it says so, a round still failing is abandoned (PublishAbandoned) instead
    of retried; `quiet`: while it holds (a broker outage already reported), retries are not
    logged."""

    def __init__(
        self, producer: Any, *, record_bytes: int, metrics: Any = None, prefix: str = "",
        stopping: Callable[[], bool] = lambda: False, quiet: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.producer = producer
        self.record_bytes = record_bytes
        self.metrics = metrics
        self.prefix = prefix
        self.stopping = stopping
        self.quiet = quiet
        self.sleep = sleep

    async def publish(self, records: Sequence[OutRecord], what: str = "records") -> list[OutRecord]:
        """Send `records` and wait until the broker has every one that can be written; returns
        those given up. Raises PublishAbandoned when stopping with some not acknowledged."""
        given_up: list[OutRecord] = []
        pending = []
        for record in records:
            if record.size > self.record_bytes:
                self._give_up(record, "too_large", f"{record.size} bytes, above limits.record_bytes "
                              f"({self.record_bytes})", given_up)
            else:
                pending.append(record)
        delay, attempt, unknown_since, unknown_delay = 0.5, 1, None, UNKNOWN_DELAY_S
        while pending:
            retry: BaseException | None = None
            failing: list[OutRecord] = []  # not acknowledged in this attempt
            for outcome in await self._attempt(pending):
                error = outcome.error
                if error is None:
                    continue
                reason = failure_reason(error)
                if reason is not None and not outcome.at_send:
                    # Refused by the broker: the whole batch of its partition failed with it, so
                    # it is tried once alone to tell the record at fault from its batch-mates.
                    [outcome] = await self._attempt([outcome.record])
                    error = outcome.error
                    reason = failure_reason(error) if error is not None else None
                if error is None:
                    continue
                if reason is not None:
                    self._give_up(outcome.record, reason, f"{type(error).__name__}: {error}", given_up)
                else:
                    retry = retry or error
                    failing.append(outcome.record)
            lost = {id(record) for record in given_up}
            pending = [record for record in pending if id(record) not in lost]
            if retry is None:
                break
            unknown = isinstance(retry, UnknownError)
            if not unknown:
                unknown_since, unknown_delay = None, UNKNOWN_DELAY_S
            elif unknown_since is None:
                unknown_since = self.clock()
            elif self.clock() - unknown_since > UNKNOWN_GIVE_UP_S:
                # Only the records the broker still refuses: those of this round it took stay taken.
                for record in failing:
                    self._give_up(record, "broker_error", f"the broker answered with an unknown error for "
                                  f"{UNKNOWN_GIVE_UP_S:g} s ({retry})", given_up)
                return given_up
            if self.stopping():
                raise PublishAbandoned(f"stopping with {len(pending)} {what} not acknowledged by the broker")
            if attempt == 1 and not self.quiet():
                log.warning("sending %d %s failed (%s: %s); retrying until the broker takes them",
                            len(pending), what, type(retry).__name__, retry)
            else:
                log.debug("sending %d %s failed again (attempt %d): %s", len(pending), what, attempt, retry)
            if unknown:
                await self.sleep(unknown_delay)
                unknown_delay = min(unknown_delay * 2, 2.0)
            else:
                await self.sleep(delay)
                delay = min(delay * 2, 5.0)
            attempt += 1
        if attempt > 1:
            log.info("sent %d %s after %d attempts", len(pending), what, attempt)
        return given_up

    async def _attempt(self, records: Sequence[OutRecord]) -> list[_Outcome]:
        """Send each record, then wait for all; a retriable error from send() itself (the topic's
        metadata did not come) stops sending the rest: they would wait as long each."""
        outcomes: list[_Outcome] = []
        futures: list[tuple[_Outcome, Any]] = []
        stopped: BaseException | None = None
        for record in records:
            if stopped is not None:
                outcomes.append(_Outcome(record, stopped))
                continue
            outcome = _Outcome(record, None)
            outcomes.append(outcome)
            try:
                futures.append((outcome, await self.producer.send(
                    record.topic, value=record.value, key=record.key, partition=record.partition)))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - sorted into retry or give up by failure_reason
                outcome.error, outcome.at_send = exc, True
                if failure_reason(exc) is None:
                    stopped = exc
        results = await asyncio.gather(*(future for _, future in futures), return_exceptions=True)
        for (outcome, _), result in zip(futures, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                outcome.error = result
        return outcomes

    def _give_up(self, record: OutRecord, reason: str, why: str, given_up: list[OutRecord]) -> None:
        given_up.append(record)
        topic = record.topic.removeprefix(self.prefix)
        if self.metrics is not None:
            self.metrics.publish_failures.labels(topic=topic, reason=reason).inc()
        if len(given_up) <= DETAILED:
            log.error("gave up publishing %s to %s (%d bytes): %s; it is dropped and the worker goes on",
                      record.what, record.topic, record.size, why)
        elif len(given_up) == DETAILED + 1:
            log.error("giving up more records of this round (counted in ioc_publish_failures_total)")


def fit_json(value: bytes, limit: int) -> bytes:
    """A JSON object record cut to at most `limit` bytes when it is larger: its long strings
    shortened (ending in "…") and long lists cut, with `"truncated": true` added. Returned as is
    when it fits, or when even cutting cannot make it fit (the publish path then gives it up).

    >>> body = fit_json(b'{"summary": "' + b"x" * 5000 + b'"}', 200)
    >>> len(body) <= 200, body.endswith('…","truncated":true}'.encode())
    (True, True)
    """
    if len(value) <= limit:
        return value
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if not isinstance(record, dict):
        return value
    cap = 4096
    while cap >= 16:
        body = orjson.dumps({**_cut(record, cap), "truncated": True})
        if len(body) <= limit:
            return body
        cap //= 4
    return value


def _cut(value: Any, cap: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= cap else value[:cap] + "\u2026"
    if isinstance(value, list):
        return [_cut(item, cap) for item in value[: max(1, cap // 64)]]
    if isinstance(value, dict):
        return {key: _cut(item, cap) for key, item in value.items()}
    return value
