"""Backtests: recorded events through the same engine as the streaming path, alerts out.

>>> result = run_backtest(ruleset, read_events(["flood.jsonl"]))      # doctest: +SKIP
>>> result.summary()[0].episodes
3

Events are JSONL (one event per line with a `stream` field), CSV or Parquet (a `stream`
column). Valid events are replayed in event-time order (stable for equal times), so a
backtest sees no late events; invalid ones are counted with their reason, as the worker
would send them to the dead-letter topic. In a backtest `detected_at` is the event time at
which the engine decided (the output is reproducible), and the watermark moves only with
events: nothing fires "after the end" of the input unless `until` says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ioc.alerts import Alert
from ioc.engine import KeyLimits
from ioc.events import MAX_EVENT_BYTES, STREAMS, InvalidEvent, decode
from ioc.events.declared import EventSchemas
from ioc.exceptions import IocError
from ioc.rules.loader import RuleSet
from ioc.runtime.plan import plan_rules
from ioc.runtime.replay import replay
from ioc.runtime.shards import SHARD_LIMITS

__all__ = ["BacktestError", "RawEvent", "BacktestResult", "RuleSummary", "PreparedEvents", "read_events",
           "run_backtest", "prepare_events", "replay_prepared"]


class BacktestError(IocError):
    """An event file cannot be read."""


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One input row: its stream, the event object, and where it came from."""

    stream: str
    body: dict[str, Any] | bytes   # bytes: a message as received (malformed ones included)
    origin: str


@dataclass(frozen=True)
class RuleSummary:
    rule_id: str
    severity: str
    transitions: int
    episodes: int
    first: float | None
    last: float | None
    firing_seconds: float


@dataclass
class BacktestResult:
    alerts: list[Alert] = field(default_factory=list)
    events: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    invalid_examples: list[str] = field(default_factory=list)
    last_ts: float | None = None
    # Per stream, the event times of its first and last valid events.
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)

    def span_s(self, streams: Iterable[str]) -> float:
        """Seconds of event time from the first to the last event of `streams`."""
        known = [self.spans[stream] for stream in streams if stream in self.spans]
        return max(end for _, end in known) - min(start for start, _ in known) if known else 0.0

    def summary(self, ruleset: RuleSet | None = None) -> list[RuleSummary]:
        """Per rule: transitions, episodes, first/last start and total time firing."""
        by_rule: dict[str, list[Alert]] = {}
        for alert in self.alerts:
            by_rule.setdefault(alert.rule_id, []).append(alert)
        ids = [r.id for r in ruleset.rules] if ruleset is not None else sorted(by_rule)
        rows = []
        for rule_id in ids:
            alerts = by_rule.get(rule_id, [])
            starts: dict[str, float] = {}
            ends: dict[str, float] = {}
            for alert in alerts:
                starts[alert.alert_id] = alert.starts_at
                if alert.ends_at is not None:
                    ends[alert.alert_id] = alert.ends_at
            end_of_input = self.last_ts if self.last_ts is not None else 0.0
            firing = sum(max(0.0, ends.get(aid, end_of_input) - start) for aid, start in starts.items())
            severity = alerts[0].severity if alerts else (ruleset.by_id[rule_id].spec.severity if ruleset else "")
            rows.append(RuleSummary(
                rule_id, severity, len(alerts), len(starts),
                min(starts.values()) if starts else None, max(starts.values()) if starts else None, firing,
            ))
        return rows


EVENT_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".csv.gz", ".parquet", ".pq")
TRUTH_FILE = "ground_truth.jsonl"  # what `ioc simulate --out DIR` writes beside the events: not events


def event_files(path: Path) -> list[Path]:
    """The event files of a folder (`ioc simulate --out DIR`): every JSONL, CSV and Parquet file
    in it, in name order, but its ground truth."""
    found = sorted(p for p in path.iterdir() if p.is_file() and p.name != TRUTH_FILE
                   and any(p.name.endswith(suffix) for suffix in EVENT_SUFFIXES))
    if not found:
        raise BacktestError(f"{path}: no event files in this folder (.jsonl, .csv, .parquet)")
    return found


def read_events(paths: Iterable[str | Path]) -> Iterator[RawEvent]:
    """Rows of JSONL, CSV or Parquet files (by extension), each with its stream; a folder stands
    for its event files (`event_files`)."""
    for raw_path in paths:
        path = Path(raw_path)
        if not path.exists():
            raise BacktestError(f"{path}: file not found")
        if path.is_dir():
            yield from read_events(event_files(path))
            continue
        suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
        if suffix in (".jsonl", ".ndjson", ".json"):
            yield from _read_jsonl(path)
        elif suffix in (".csv", ".csv.gz"):
            yield from _read_frame(path, "csv")
        elif suffix in (".parquet", ".pq"):
            yield from _read_frame(path, "parquet")
        else:
            raise BacktestError(f"{path}: unknown event file type (allowed: .jsonl, .csv, .parquet)")


def _read_jsonl(path: Path) -> Iterator[RawEvent]:
    # A file named after a stream (`ioc simulate --out` writes reservoir.jsonl, ...) holds that
    # stream's messages: a line without a `stream` field, even a malformed one, belongs to it
    # and is judged by that stream's schema, as the worker would judge it.
    default = path.name.split(".")[0] if path.name.split(".")[0] in STREAMS else ""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            origin = f"{path}:{number}"
            raw = line.rstrip(b"\r\n")
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                yield RawEvent(default, raw if default else {"_error": f"not valid JSON: {exc}"}, origin)
                continue
            if not isinstance(body, dict):
                yield RawEvent(default, raw if default else {"_error": "an event must be a JSON object"}, origin)
                continue
            stream = body.pop("stream", None)
            stream_name = str(stream) if stream is not None else default
            # Oversized messages keep their bytes, so that the size limit applies as in the worker.
            yield RawEvent(stream_name, raw if len(raw) > MAX_EVENT_BYTES else body, origin)


def _read_frame(path: Path, kind: str) -> Iterator[RawEvent]:
    import pandas as pd

    try:
        frame = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except (OSError, ValueError, ImportError) as exc:
        raise BacktestError(f"{path}: cannot be read as {kind}: {exc}") from None
    if "stream" not in frame.columns:
        raise BacktestError(f"{path}: needs a 'stream' column naming each event's stream")
    for column in frame.columns:
        # A column of whole numbers with gaps is read as float (NaN needs it): restore integers,
        # so that integer fields such as `gates_open` validate as they do from JSON.
        values = frame[column]
        if values.dtype.kind == "f" and values.notna().any() and (values.dropna() % 1 == 0).all():
            frame[column] = values.astype("Int64")
    columns = list(frame.columns)
    for number, row in enumerate(frame.itertuples(index=False, name=None), start=2 if kind == "csv" else 1):
        body = {name: _plain(value) for name, value in zip(columns, row, strict=True)}
        body = {name: value for name, value in body.items() if value is not None}
        yield RawEvent(str(body.pop("stream", "")), body, f"{path}:{number}")


def _plain(value: Any) -> Any:
    """numpy/pandas scalars to Python, missing (NaN/NaT/None) to None."""
    import pandas as pd

    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    if hasattr(value, "item"):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            return value
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def run_backtest(
    ruleset: RuleSet,
    rows: Iterable[RawEvent],
    *,
    lateness_s: float = 0.0,
    until: float | None = None,
    progress: Callable[[int], None] | None = None,
    in_order: bool = True,
    partitions: int = 1,
    limits: KeyLimits = SHARD_LIMITS,
    evaluated: Callable[[int, int], None] | None = None,
) -> BacktestResult:
    """Replay rows through the runtime's shards; `until` advances every watermark at the end.

    `in_order`: sort events by event time first (a recording's replay); False keeps the rows'
    order as arrival order, so that late events can be tested (rule tests do this).
    `partitions`: how many partitions each topic has, as in the live deployment: a watermark
    is per partition (see docs/architecture.md), so the same events give the live alerts only
    with the same number. `limits`: the key limits and idle TTL of the live worker's shards
    (`host_settings(settings).limits`), so that a full rule refuses the same keys. `progress(n)`:
    n rows read; `evaluated(n, total)`: n of the total valid events evaluated."""
    prepared = prepare_events(rows, progress=progress, in_order=in_order, schemas=ruleset.schemas)
    return replay_prepared(ruleset, prepared, lateness_s=lateness_s, until=until, partitions=partitions,
                           limits=limits, evaluated=evaluated)


@dataclass
class PreparedEvents:
    """Rows decoded once (`prepare_events`), to be replayed through any rule set
    (`replay_prepared`): what `ioc backtest --sweep` replays once per value."""

    events: list[tuple[str, dict[str, Any]]]
    invalid: Counter[str]
    invalid_examples: list[str]
    spans: dict[str, tuple[float, float]]
    last_ts: float | None


def prepare_events(rows: Iterable[RawEvent], *, progress: Callable[[int], None] | None = None,
                   in_order: bool = True, schemas: EventSchemas | None = None) -> PreparedEvents:
    """Decode and order rows as a backtest does (invalid ones counted with their reason);
    `schemas`: the event models with declared fields (a rule set's `schemas`)."""
    scratch = BacktestResult()
    events: list[tuple[float, int, str, dict[str, Any]]] = []
    for index, row in enumerate(rows):
        if progress is not None and index % 5000 == 0:
            progress(index)
        error = row.body.get("_error") if not row.stream and isinstance(row.body, dict) else None
        if row.stream not in STREAMS:
            reason = error or f"unknown stream {row.stream!r} (allowed: {', '.join(STREAMS)})"
            _invalid(scratch, "unknown_stream" if not error else "bad_json", f"{row.origin}: {reason}")
            continue
        try:
            event = decode(row.stream, row.body, schemas=schemas)
        except InvalidEvent as exc:
            _invalid(scratch, exc.code, f"{row.origin}: {exc.reason}")
            continue
        if event.get("id") is None:
            event["_pos"] = row.origin
        events.append((event["ts"], index, row.stream, event))
    if in_order:
        events.sort(key=lambda item: (item[0], item[1]))
    spans: dict[str, tuple[float, float]] = {}
    for ts, _, stream, _ in events:
        first, last = spans.get(stream, (ts, ts))
        spans[stream] = (min(first, ts), max(last, ts))
    return PreparedEvents([(stream, event) for _, _, stream, event in events], scratch.invalid,
                          scratch.invalid_examples, spans, max((item[0] for item in events), default=None))


def replay_prepared(
    ruleset: RuleSet, prepared: PreparedEvents, *, lateness_s: float = 0.0, until: float | None = None,
    partitions: int = 1, limits: KeyLimits = SHARD_LIMITS, evaluated: Callable[[int, int], None] | None = None,
    only: frozenset[str] | None = None,
) -> BacktestResult:
    """The backtest of prepared events (see `run_backtest`). The events may be replayed again:
    a replay only numbers them in their partition (`_off`), the same way each time. `only`: run
    just these rules, each where the whole rule set would run it (ioc.runtime.plan)."""
    result = BacktestResult(events=len(prepared.events), invalid=Counter(prepared.invalid),
                            invalid_examples=list(prepared.invalid_examples), last_ts=prepared.last_ts,
                            spans=dict(prepared.spans))
    total = len(prepared.events)
    result.alerts = replay(plan_rules(ruleset, only=only), prepared.events, partitions=partitions,
                           lateness_s=lateness_s, until=until, limits=limits,
                           progress=None if evaluated is None else lambda done: evaluated(done, total))
    if until is not None:
        result.last_ts = max(result.last_ts or until, until)
    return result


def _invalid(result: BacktestResult, code: str, message: str) -> None:
    result.invalid[code] += 1
    if len(result.invalid_examples) < 20:
        result.invalid_examples.append(message)
