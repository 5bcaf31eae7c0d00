"""Where `ioc explain` finds an alert's records and the events to replay: a backtest's output and
its event files, or the live broker (`ioc.alerts` by fingerprint, the raw topics by time)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from ioc.alerts import fingerprint_of
from ioc.analysis.backtest import PreparedEvents, RawEvent, prepare_events, read_events
from ioc.analysis.explain.exceptions import ExplainError
from ioc.analysis.explain.trace import WHERE
from ioc.config import Settings
from ioc.events import STREAMS
from ioc.events.declared import EventSchemas

__all__ = ["records_from_file", "events_from_files", "records_from_broker", "events_from_broker", "tagged"]


def _unknown(alert_id: str, ids: Iterable[str], searched: str) -> ExplainError:
    known = list(dict.fromkeys(ids))
    same = [i for i in known if i.startswith(alert_id[:16])]
    close = same or difflib.get_close_matches(alert_id, known, 3, 0.6)
    hint = f"; did you mean {', '.join(repr(i) for i in close[:3])}?" if close else ""
    return ExplainError(f"no alert {alert_id!r} in {searched} ({len(known):,} alerts){hint}")


def records_from_file(path: Path, alert_id: str) -> list[dict[str, Any]]:
    """The records of `alert_id` in a JSONL of alert records (`ioc backtest --out`)."""
    if not path.is_file():
        raise ExplainError(f"{path}: file not found (the alerts a backtest wrote with --out)")
    found, ids = [], []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ExplainError(f"{path}:{number}: not an alert record ({exc})") from None
            if not isinstance(record, dict):
                continue
            ids.append(str(record.get("alert_id")))
            if record.get("alert_id") == alert_id:
                found.append(record)
    if not found:
        raise _unknown(alert_id, ids, str(path))
    return found


def tagged(rows: Iterable[RawEvent]) -> Iterator[RawEvent]:
    """Rows whose events say where they came from (`_at`), for the explanation only."""
    for row in rows:
        body = {**row.body, WHERE: row.origin} if isinstance(row.body, dict) else row.body
        yield RawEvent(row.stream, body, row.origin)


def events_from_files(paths: Iterable[Path], schemas: EventSchemas | None = None) -> PreparedEvents:
    """Events of files or folders as `ioc backtest --events` reads them, each tagged with its line;
    decoded with `schemas` (a rule set's, with the declared fields) as the backtest decodes them."""
    return prepare_events(tagged(read_events(paths)), schemas=schemas)


# -- the live broker ----------------------------------------------------------------------------


def _consumer(settings: Settings) -> Any:
    from kafka import KafkaConsumer

    from ioc.kafka.clients import bootstrap_servers, client_options

    return KafkaConsumer(bootstrap_servers=bootstrap_servers(settings.broker.url), enable_auto_commit=False,
                         group_id=None, client_id="ioc-explain", consumer_timeout_ms=1000, **client_options(settings))


def _read(consumer: Any, topic: str, starts: dict[int, int] | None, stop_ms: float | None,
          key: bytes | None = None) -> list[Any]:
    """Records of `topic` from `starts` (partition -> offset, -1: none; None or missing: the beginning)
    to its end as it is now; a partition stops at its first record after `stop_ms` (broker time)."""
    from kafka import TopicPartition

    partitions = consumer.partitions_for_topic(topic) or set()
    if not partitions:
        return []
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    ends = consumer.end_offsets(tps)
    for tp in tps:
        start = starts.get(tp.partition) if starts is not None else None
        if start == -1:
            consumer.seek_to_end(tp)  # nothing of this partition is recent enough
        elif start is not None:
            consumer.seek(tp, start)
        else:
            consumer.seek_to_beginning(tp)
    out: list[Any] = []
    open_parts = {tp for tp in tps if consumer.position(tp) < ends[tp]}
    while open_parts:
        batch = consumer.poll(timeout_ms=1000, max_records=5000)
        if not batch:
            # The embedded broker may report an end offset below the last record (DESIGN.md): stop
            # once nothing more comes.
            break
        for tp, messages in batch.items():
            for message in messages:
                if stop_ms is not None and message.timestamp > stop_ms:
                    open_parts.discard(tp)
                    consumer.pause(tp)
                    break
                if key is None or message.key == key:
                    out.append(message)
            if consumer.position(tp) >= ends[tp]:
                open_parts.discard(tp)
                consumer.pause(tp)
    return out


def records_from_broker(settings: Settings, alert_id: str) -> list[dict[str, Any]]:
    """The records of `alert_id` on the alerts topic (key: its fingerprint)."""
    try:
        fp = fingerprint_of(alert_id)
    except ValueError as exc:
        raise ExplainError(str(exc)) from None
    topic = settings.topic("alerts")
    consumer = _consumer(settings)
    try:
        messages = _read(consumer, topic, None, None, key=fp.encode())
    finally:
        consumer.close()
    records = []
    for message in messages:
        try:
            record = orjson.loads(message.value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and not (record.get("labels") or {}).get("escalation"):
            records.append(record)
    found = [r for r in records if r.get("alert_id") == alert_id]
    if not found:
        raise _unknown(alert_id, [str(r.get("alert_id")) for r in records],
                       f"{topic} on {settings.broker.url} (records of fingerprint {fp})")
    return found


def events_from_broker(
    settings: Settings, since: float, until: float | None, schemas: EventSchemas | None = None,
) -> tuple[PreparedEvents, int, str]:
    """The raw topics' events from broker time `since` to `until` (None: their end), in each
    partition's order, tagged with topic/partition@offset; with the topics' partition count and
    a description of what was read."""
    consumer = _consumer(settings)
    rows: list[RawEvent] = []
    counts: set[int] = set()
    try:
        from kafka import TopicPartition

        for stream in STREAMS:
            topic = settings.topic(f"raw.{stream}")
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions:
                continue
            counts.add(len(partitions))
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            try:
                found = consumer.offsets_for_times({tp: int(since * 1000) for tp in tps})
                starts: dict[int, int] = {tp.partition: found[tp].offset for tp in tps if found.get(tp) is not None}
                # No record at or after `since` in a partition: nothing of it to read.
                starts.update({tp.partition: -1 for tp in tps if found.get(tp) is None})
            except Exception:  # noqa: BLE001 - a broker without timestamp look-ups: read from the start
                starts = {}
            for message in _read(consumer, topic, starts, until * 1000 if until is not None else None):
                position = f"{message.topic}/{message.partition}@{message.offset}"
                if message.timestamp < since * 1000:
                    continue
                rows.append(RawEvent(stream, message.value, position))
    finally:
        consumer.close()
    if not rows:
        raise ExplainError(f"no events on the raw topics ({settings.topic('raw.*')}) of {settings.broker.url} "
                           "around the alert: were they removed by retention?")
    decoded = []
    for row in rows:
        try:
            body = orjson.loads(row.body)  # type: ignore[arg-type]
        except orjson.JSONDecodeError:
            decoded.append(row)
            continue
        decoded.append(RawEvent(row.stream, {**body, WHERE: row.origin} if isinstance(body, dict) else row.body,
                                row.origin))
    prepared = prepare_events(decoded, in_order=False, schemas=schemas)
    return prepared, max(counts) if counts else 1, f"the raw topics of {settings.broker.url}"
