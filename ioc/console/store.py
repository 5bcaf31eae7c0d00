"""What the console shows, fed from the topics: alerts, their state, SLA snapshots, vessels.

Pure (no Kafka, no web): the console runner hands it the records it reads from `ioc.alerts`,
`ioc.alert-state`, `ioc.sla` and `ioc.raw.vessel`; the web routes query it. Each `on_*` returns
the alert ids whose view changed, so the server can push them to the open pages.

>>> store = ConsoleStore()
>>> store.on_alert({"alert_id": "eece90541220b5d3-1761526800000", "fingerprint": "eece90541220b5d3",
...                 "rule_id": "r", "stream": "reservoir", "severity": "warning", "status": "firing",
...                 "starts_at": "2025-10-27T01:00:00Z", "labels": {"domain": "water"}})
['eece90541220b5d3-1761526800000']
>>> store.page(AlertFilter(domain="water")).total
1
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from ioc.alerts import fingerprint_of
from ioc.console.models import AlertFilter
from ioc.timeutil import LOCAL_TZ, parse_ts

__all__ = ["AlertView", "ConsoleStore", "Page"]

MAX_ALERTS = 50_000   # alerts kept; the oldest go first
MAX_VESSELS = 5_000   # latest positions kept
MAX_ESCALATIONS = 10_000


@dataclass
class AlertView:
    """One alert episode: its latest record on `ioc.alerts` and its latest state record."""

    alert_id: str
    record: dict[str, Any]
    starts_at: float
    state: dict[str, Any] | None = None

    @property
    def labels(self) -> Mapping[str, Any]:
        labels = self.record.get("labels")
        return labels if isinstance(labels, Mapping) else {}

    @property
    def domain(self) -> str:
        return str((self.state or {}).get("domain") or self.labels.get("domain") or self.record.get("stream") or "")

    @property
    def agency(self) -> str:
        return str((self.state or {}).get("agency") or self.labels.get("agency") or "")

    @property
    def severity(self) -> str:
        return str(self.record.get("severity") or "")

    @property
    def status(self) -> str:
        """The engine's status: firing or resolved."""
        return str((self.state or {}).get("status") or self.record.get("status") or "firing")

    @property
    def operator_status(self) -> str:
        return str((self.state or {}).get("operator_status") or "open")

    def matches(self, query: AlertFilter) -> bool:
        return ((query.domain is None or self.domain == query.domain)
                and (query.severity is None or self.severity == query.severity)
                and (query.status is None or self.status == query.status)
                and (query.operator is None or self.operator_status == query.operator)
                and (query.agency is None or self.agency == query.agency))


class Page(NamedTuple):
    items: list[AlertView]
    total: int
    next_cursor: str | None


def cursor_of(view: AlertView) -> str:
    """A page cursor: the last item's start (ms) and id; the next page is what sorts after it."""
    return f"{round(view.starts_at * 1000)}_{view.alert_id}"


def _sort_key(view: AlertView) -> tuple[int, str]:
    # Newest first: the list is kept ascending (start in ms, id) and read backwards.
    return (round(view.starts_at * 1000), view.alert_id)


@dataclass
class ConsoleStore:
    """Alerts (newest first), SLA snapshots, escalations and vessel positions, bounded."""

    clock: str = "wall"                 # sla.clock: "event" reads time from the alerts
    max_alerts: int = MAX_ALERTS
    alerts: dict[str, AlertView] = field(default_factory=dict)
    _order: list[tuple[int, str]] = field(default_factory=list)
    snapshots: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    escalations: OrderedDict[str, float] = field(default_factory=OrderedDict)
    vessels: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    latest_event_time: float | None = None
    _pending_states: dict[str, dict[str, Any]] = field(default_factory=dict)

    # --- feeding -------------------------------------------------------------------------
    def on_alert(self, record: Any) -> list[str]:
        """A record of `ioc.alerts`: a new episode, a transition of a known one, or an escalation."""
        if not isinstance(record, Mapping):
            return []
        alert_id = record.get("alert_id")
        if not isinstance(alert_id, str):
            return []
        try:
            fingerprint_of(alert_id)
            starts_at = parse_ts(record.get("starts_at"))
        except (TypeError, ValueError):
            return []
        labels = record.get("labels")
        if isinstance(labels, Mapping) and labels.get("escalation"):
            if record.get("status") == "firing":
                self.escalations[alert_id] = starts_at
                while len(self.escalations) > MAX_ESCALATIONS:
                    self.escalations.popitem(last=False)
            return []
        self._saw_time(starts_at, record.get("ends_at"))
        view = self.alerts.get(alert_id)
        if view is None:
            view = AlertView(alert_id, dict(record), starts_at, self._pending_states.pop(alert_id, None))
            self.alerts[alert_id] = view
            bisect.insort(self._order, _sort_key(view))
            self._bound()
        elif record.get("status") == "resolved" or view.record.get("status") != "resolved":
            view.record = dict(record)  # a firing record after the resolved one is stale
        return [alert_id]

    def on_state(self, record: Any) -> list[str]:
        """A record of `ioc.alert-state` (the SLA tracker's view of an alert)."""
        if not isinstance(record, Mapping) or record.get("type") != "alert_state":
            return []
        alert_id = record.get("alert_id")
        if not isinstance(alert_id, str):
            return []
        view = self.alerts.get(alert_id)
        if view is None:  # the state may be read before its alert: kept until the alert comes
            if len(self._pending_states) < self.max_alerts:
                self._pending_states[alert_id] = dict(record)
            return []
        view.state = dict(record)
        return [alert_id]

    def on_sla(self, record: Any) -> bool:
        """A record of `ioc.sla`: snapshots are kept per scope and window; True when one was."""
        if not isinstance(record, Mapping) or record.get("type") != "snapshot":
            return False
        scope, window = record.get("scope"), record.get("window")
        if not isinstance(scope, str) or not isinstance(window, str) or len(self.snapshots) > 10_000:
            return False
        self.snapshots[(scope, window)] = dict(record)
        return True

    def on_vessel(self, event: Any) -> str | None:
        """An event of `ioc.raw.vessel`: the vessel's latest position (by event time)."""
        if not isinstance(event, Mapping):
            return None
        vessel, lat, lon = event.get("source_id"), event.get("lat"), event.get("lon")
        if not isinstance(vessel, str) or not _number(lat) or not _number(lon) or len(vessel) > 100:
            return None
        try:
            ts = parse_ts(event.get("ts"))
        except (TypeError, ValueError):
            return None
        known = self.vessels.get(vessel)
        if known is not None and known["ts"] > ts:
            return None
        self.vessels[vessel] = {"id": vessel, "lat": float(lat), "lon": float(lon), "ts": ts}  # type: ignore[arg-type]
        self.vessels.move_to_end(vessel)
        while len(self.vessels) > MAX_VESSELS:
            self.vessels.popitem(last=False)
        return vessel

    # --- reading -------------------------------------------------------------------------
    def now(self, wall: float) -> float:
        """The console's clock: the wall clock, or with `sla.clock: event` the latest alert time."""
        if self.clock == "event" and self.latest_event_time is not None:
            return self.latest_event_time
        return wall

    def newest(self) -> Iterator[AlertView]:
        for _, alert_id in reversed(self._order):
            yield self.alerts[alert_id]

    def page(self, query: AlertFilter) -> Page:
        """Alerts matching `query`, newest first, from its cursor or offset, `limit` of them."""
        start = len(self._order)
        if query.cursor is not None:
            ms, _, alert_id = query.cursor.partition("_")
            start = bisect.bisect_left(self._order, (int(ms), alert_id))
        matching = 0
        items: list[AlertView] = []
        total = 0
        for index in range(len(self._order) - 1, -1, -1):
            view = self.alerts[self._order[index][1]]
            if not view.matches(query):
                continue
            total += 1
            if index >= start:
                continue
            matching += 1
            if matching > query.offset and len(items) < query.limit:
                items.append(view)
        last = items[-1] if items else None
        more = last is not None and matching > query.offset + len(items)
        return Page(items, total, cursor_of(last) if more and last is not None else None)

    def facets(self) -> dict[str, list[str]]:
        """The values the filters can take, as seen."""
        values: dict[str, set[str]] = {"domain": set(), "severity": set(), "agency": set()}
        for view in self.alerts.values():
            values["domain"].add(view.domain)
            values["severity"].add(view.severity)
            values["agency"].add(view.agency)
        return {name: sorted(v for v in found if v) for name, found in values.items()}

    def escalations_today(self, now: float) -> int:
        """Escalations due since midnight (Huế's time) of `now`."""
        day = datetime.fromtimestamp(now, tz=LOCAL_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
        start, end = day.timestamp(), (day + timedelta(days=1)).timestamp()
        return sum(1 for due in self.escalations.values() if start <= due < end)

    def overdue(self, now: float) -> dict[str, int]:
        """Alerts past a deadline now, from their latest state (an alert can be in both counts)."""
        ack = resolve = 0
        for view in self.alerts.values():
            state = view.state
            if state is None or state.get("operator_status") == "resolved":
                continue
            if state.get("acked_at") is None and _before(state.get("ack_by"), now):
                ack += 1
            if _before(state.get("resolve_by"), now):
                resolve += 1
        return {"ack": ack, "resolve": resolve}

    # --- internals -----------------------------------------------------------------------
    def _saw_time(self, *values: Any) -> None:
        for value in values:
            if value is None:
                continue
            try:
                at = parse_ts(value)
            except (TypeError, ValueError):
                continue
            if self.latest_event_time is None or at > self.latest_event_time:
                self.latest_event_time = at

    def _bound(self) -> None:
        while len(self._order) > self.max_alerts:
            _, alert_id = self._order.pop(0)
            self.alerts.pop(alert_id, None)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _before(deadline: Any, now: float) -> bool:
    if deadline is None:
        return False
    try:
        return parse_ts(deadline) < now
    except (TypeError, ValueError):
        return False

