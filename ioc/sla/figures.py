"""SLA figures: rolling on-time ratios, overdue counts and ack/resolve times, per scope and window.

`SlaFigures` reads the tracker's records (state records of `ioc.alert-state`, outcome records of
`ioc.sla`) and, when asked at an explicit time, returns the snapshot records published on
`ioc.sla` (keyed by scope). Pure and deterministic: no clock, no I/O; its state is JSON-able
(`snapshot()` / `restore()`). Definitions and the record schema: docs/sla-figures.md.

>>> figures = SlaFigures()
>>> figures.on_outcome({"type": "outcome", "alert_id": "a-1", "fingerprint": "a", "domain": "water",
...     "severity": "warning", "agency": "So NN&PTNT", "starts_at": 0.0, "acked_at": 60.0,
...     "resolved_at": 600.0, "ack_s": 60.0, "resolve_s": 600.0, "ack_on_time": True,
...     "resolve_on_time": True})
True
>>> [r for r in figures.snapshot_records(now=3600.0) if r["scope"] == "all" and r["window"] == "1h"][0][
...     "resolve_p50_s"]
600.0
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import astuple, dataclass
from typing import Any

__all__ = [
    "MAX_OPEN", "MAX_OUTCOMES", "MAX_VALUES", "OTHER", "RETENTION_S", "SEVERITIES", "UNKNOWN", "WINDOWS",
    "LabelBound", "SlaFigures", "quantile", "scopes_of",
]

# Rolling windows of the snapshot records, by name (seconds), shortest first.
WINDOWS: dict[str, float] = {"1h": 3600.0, "24h": 86400.0, "30d": 30 * 86400.0}
RETENTION_S = max(WINDOWS.values())
SEVERITIES = ("info", "warning", "critical", "emergency")
UNKNOWN = "unknown"       # a record without the label
OTHER = "other"           # a label value past the bound
MAX_VALUES = 64           # distinct domains (or agencies) kept as their own scope; later ones are OTHER
# Hard caps on memory (about 0.27 KB per resolved alert, outcome and start together, measured with
# tracemalloc; see docs/sla-figures.md);
# past them the oldest are dropped first, and counted in `dropped`.
MAX_OUTCOMES = 200_000
MAX_OPEN = 100_000


def quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile with linear interpolation between closest ranks (numpy's and pandas'
    default, "type 7"); None for no values.

    >>> quantile([10.0, 20.0, 30.0, 40.0], 0.9)
    37.0
    >>> quantile([], 0.5) is None
    True
    """
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class LabelBound:
    """Keeps a label's distinct values bounded: the first `limit` values seen are kept, later
    ones become `other`; a missing or empty value is `unknown`.

    >>> bound = LabelBound(limit=1)
    >>> bound("water"), bound("cyber"), bound(None), bound("water")
    ('water', 'other', 'unknown', 'water')
    """

    def __init__(self, limit: int = MAX_VALUES, allowed: Iterable[str] | None = None) -> None:
        self.limit = limit
        self.allowed = frozenset(allowed) if allowed is not None else None
        self.seen: dict[str, None] = {}

    def __call__(self, value: Any) -> str:
        if value is None or value == "":
            return UNKNOWN
        text = str(value)
        if text in (OTHER, UNKNOWN):          # already bounded (a scope read back): takes no slot
            return text
        if self.allowed is not None:
            return text if text in self.allowed else OTHER
        if text in self.seen:
            return text
        if len(self.seen) < self.limit:
            self.seen[text] = None
            return text
        return OTHER


def scopes_of(domain: str, severity: str, agency: str) -> tuple[str, ...]:
    """The scopes one alert counts in (the `ioc.sla` keys of its snapshot records).

    >>> scopes_of("water", "warning", "So NN&PTNT")
    ('all', 'domain=water', 'severity=warning', 'agency=So NN&PTNT', 'domain=water,severity=warning')
    """
    return ("all", f"domain={domain}", f"severity={severity}", f"agency={agency}",
            f"domain={domain},severity={severity}")


@dataclass(frozen=True, slots=True)
class _Outcome:
    alert_id: str
    fingerprint: str
    resolved_at: float
    starts_at: float
    domain: str
    severity: str
    agency: str
    ack_s: float | None
    resolve_s: float
    ack_on_time: bool
    resolve_on_time: bool


@dataclass(frozen=True, slots=True)
class _Open:
    alert_id: str
    domain: str
    severity: str
    agency: str
    ack_by: float | None
    resolve_by: float | None
    acked_at: float | None
    updated_at: float
    starts_at: float = 0.0


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


class SlaFigures:
    """Rolling SLA figures over the tracker's records; see the module docstring."""

    def __init__(self, *, max_outcomes: int = MAX_OUTCOMES, max_open: int = MAX_OPEN,
                 max_values: int = MAX_VALUES) -> None:
        self.max_outcomes = max_outcomes
        self.max_open = max_open
        self._domain = LabelBound(max_values)
        self._agency = LabelBound(max_values)
        self._severity = LabelBound(allowed=SEVERITIES)
        self._outcomes: dict[str, _Outcome] = {}                        # alert id -> its last outcome
        self._open: dict[str, _Open] = {}                               # fingerprint -> operator-open alert
        self._started: dict[str, tuple[float, str, str, str]] = {}      # alert id -> start, labels
        self.dropped = 0

    def _labels(self, record: Mapping[str, Any]) -> tuple[str, str, str]:
        return self._domain(record.get("domain")), self._severity(record.get("severity")), \
            self._agency(record.get("agency"))

    def _start(self, alert_id: str, starts_at: Any, labels: tuple[str, str, str]) -> None:
        if starts_at is not None and alert_id not in self._started:
            self._started[alert_id] = (float(starts_at), *labels)
            if len(self._started) > self.max_outcomes + self.max_open:
                self._drop_oldest(self._started, lambda item: item[0])

    def _drop_oldest(self, table: dict[str, Any], when: Any) -> None:
        # Past a cap, drop the oldest tenth at once so the sort is paid rarely.
        doomed = sorted(table, key=lambda k: when(table[k]))[: max(1, len(table) // 10)]
        for key in doomed:
            del table[key]
        self.dropped += len(doomed)

    def on_state(self, record: Mapping[str, Any]) -> None:
        """An `ioc.alert-state` record: the latest per fingerprint (its latest episode by
        `starts_at`, then by `updated_at`) is kept while operators have not resolved its alert,
        for "overdue now"."""
        fingerprint, alert_id = str(record["fingerprint"]), str(record["alert_id"])
        updated = _float(record.get("updated_at")) or _float(record.get("starts_at")) or 0.0
        labels = self._labels(record)
        self._start(alert_id, record.get("starts_at"), labels)
        held = self._open.get(fingerprint)
        starts = _float(record.get("starts_at")) or 0.0
        if held is not None and (held.starts_at, held.updated_at) > (starts, updated):
            return      # a stale record (replay, reordering), or of an episode a later one replaced
        outcome = self._outcomes.get(alert_id)
        if record.get("operator_status") == "resolved" or (outcome is not None and updated <= outcome.resolved_at):
            if held is not None:
                del self._open[fingerprint]
            return
        self._open[fingerprint] = _Open(alert_id, *labels, _float(record.get("ack_by")),
                                        _float(record.get("resolve_by")), _float(record.get("acked_at")), updated,
                                        starts)
        if len(self._open) > self.max_open:
            self._drop_oldest(self._open, lambda item: item.updated_at)

    def on_outcome(self, record: Mapping[str, Any]) -> bool:
        """An outcome record; True when it is new or changed (a replay's duplicate gives False,
        so that the caller observes each outcome once in Prometheus). An alert has one outcome:
        a later one (reopened, resolved again) replaces the earlier."""
        labels = self._labels(record)
        alert_id, fingerprint = str(record["alert_id"]), str(record["fingerprint"])
        resolved_at = float(record["resolved_at"])
        outcome = _Outcome(
            alert_id, fingerprint, resolved_at, float(record["starts_at"]), *labels, _float(record.get("ack_s")),
            float(record["resolve_s"]), bool(record.get("ack_on_time")), bool(record.get("resolve_on_time")),
        )
        self._start(alert_id, record["starts_at"], labels)
        held = self._open.get(fingerprint)
        if held is not None and held.alert_id == alert_id and held.updated_at <= resolved_at:
            del self._open[fingerprint]
        if self._outcomes.get(alert_id) == outcome:
            return False
        self._outcomes[alert_id] = outcome
        if len(self._outcomes) > self.max_outcomes:
            self._drop_oldest(self._outcomes, lambda item: item.resolved_at)
        return True

    def _prune(self, now: float) -> None:
        horizon = now - RETENTION_S
        for alert_id in [k for k, o in self._outcomes.items() if o.resolved_at <= horizon]:
            del self._outcomes[alert_id]
        for alert_id in [k for k, s in self._started.items() if s[0] <= horizon]:
            del self._started[alert_id]

    def snapshot_records(self, now: float) -> list[dict[str, Any]]:
        """One snapshot record per scope and window at event time `now` (records older than the
        longest window are dropped here). Scopes: `all` first, then sorted."""
        self._prune(now)
        starts = {w: now - length for w, length in WINDOWS.items()}
        outcomes: dict[tuple[str, str], list[_Outcome]] = {}
        started: dict[tuple[str, str], int] = {}
        overdue: dict[str, list[int]] = {}
        scopes: set[str] = {"all"}
        for o in self._outcomes.values():
            keys = scopes_of(o.domain, o.severity, o.agency)
            scopes.update(keys)
            for window, start in starts.items():
                if start < o.resolved_at <= now:
                    for scope in keys:
                        outcomes.setdefault((scope, window), []).append(o)
        for starts_at, *labels in self._started.values():
            keys = scopes_of(*labels)
            scopes.update(keys)
            for window, start in starts.items():
                if start < starts_at <= now:
                    for scope in keys:
                        started[(scope, window)] = started.get((scope, window), 0) + 1
        for held in self._open.values():
            keys = scopes_of(held.domain, held.severity, held.agency)
            scopes.update(keys)
            late_ack = held.acked_at is None and held.ack_by is not None and held.ack_by < now
            late_resolve = held.resolve_by is not None and held.resolve_by < now
            for scope in keys:
                counts = overdue.setdefault(scope, [0, 0])
                counts[0] += late_ack
                counts[1] += late_resolve
        return [
            _record(scope, window, now, started.get((scope, window), 0), outcomes.get((scope, window), []),
                    overdue.get(scope, [0, 0]))
            for scope in sorted(scopes, key=lambda s: (s != "all", s)) for window in WINDOWS
        ]

    def snapshot(self) -> dict[str, Any]:
        """The state as JSON-able data (for the runtime's checkpoint)."""
        return {
            "version": 1,
            "outcomes": [list(astuple(o)) for o in self._outcomes.values()],
            "open": {fp: list(astuple(o)) for fp, o in self._open.items()},
            "started": {alert_id: list(s) for alert_id, s in self._started.items()},
            "values": {"domain": list(self._domain.seen), "agency": list(self._agency.seen)},
            "dropped": self.dropped,
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Replace the state with one from `snapshot()`."""
        self._domain.seen = dict.fromkeys(data["values"]["domain"])
        self._agency.seen = dict.fromkeys(data["values"]["agency"])
        self._outcomes = {row[0]: _Outcome(*row) for row in data["outcomes"]}
        self._open = {fp: _Open(*row) for fp, row in data["open"].items()}
        self._started = {k: (float(v[0]), str(v[1]), str(v[2]), str(v[3])) for k, v in data["started"].items()}
        self.dropped = int(data.get("dropped", 0))


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _record(scope: str, window: str, now: float, alerts: int, outcomes: list[_Outcome],
            overdue: list[int]) -> dict[str, Any]:
    ack_times = [o.ack_s for o in outcomes if o.ack_s is not None]
    resolve_times = [o.resolve_s for o in outcomes]
    ack_on_time = sum(o.ack_on_time for o in outcomes)
    resolve_on_time = sum(o.resolve_on_time for o in outcomes)
    return {
        "type": "snapshot", "scope": scope, "window": window, "window_s": WINDOWS[window], "at": now,
        "alerts": alerts, "acked": len(ack_times), "resolved": len(outcomes),
        "ack_on_time": ack_on_time, "resolve_on_time": resolve_on_time,
        "ack_on_time_ratio": _ratio(ack_on_time, len(outcomes)),
        "resolve_on_time_ratio": _ratio(resolve_on_time, len(outcomes)),
        "overdue_ack": overdue[0], "overdue_resolve": overdue[1],
        "ack_p50_s": quantile(ack_times, 0.5), "ack_p90_s": quantile(ack_times, 0.9),
        "resolve_p50_s": quantile(resolve_times, 0.5), "resolve_p90_s": quantile(resolve_times, 0.9),
    }
