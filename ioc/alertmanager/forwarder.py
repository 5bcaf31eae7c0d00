"""What the Alertmanager sink holds for the partitions of `ioc.alerts` it reads: the alerts
firing now, the transitions still to post, and when the firing ones are due again.

>>> fw = Forwarder(resend_s=60.0)
>>> fw.open(0, sent_upto=1, end=2)   # offset 0 was posted before (history): replayed silently
>>> firing = {"alert_id": "a-1", "rule_id": "r", "status": "firing", "starts_at": 0, "ends_at": None}
>>> fw.take(0, [(0, firing), (1, dict(firing, alert_id="a-2"))])
0
>>> [r["alert_id"] for r in fw.batch(now=10.0).records]   # a-2 is new; a-1 is firing: due again now
['a-2', 'a-1']

Nothing here does I/O: the runner (streams/alertmanager_runner.py) reads, posts and commits.

A partition is read from its beginning when assigned. Records below `sent_upto` (its committed
offset then) were posted by an earlier owner: they only rebuild what is firing. Nothing of the
partition is posted, and no offset of it committed, until it is read up to `end` (its end
offset then): what an earlier owner read again after a crash is then posted as its latest
state, never a firing an earlier owner had already resolved. From there on every alert's latest
state is posted (a firing and its resolution read in one round post the resolution alone).
A resolution is posted with the labels of the firing it ends (a rule reload may have changed
its severity or labels since: Alertmanager identifies alerts by their labels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Batch", "Forwarder"]


@dataclass
class _Partition:
    sent_upto: int
    end: int
    next_offset: int | None = None
    active: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    resend_at: float = 0.0

    @property
    def ready(self) -> bool:
        """Read up to where it was when assigned: its posts may start."""
        return (self.next_offset or 0) >= self.end


@dataclass(frozen=True)
class Batch:
    """Records to post, and what posting them settles."""

    records: list[Mapping[str, Any]]
    transitions: dict[str, Mapping[str, Any]]
    resent: frozenset[int]


class Forwarder:
    """Firing alerts and pending transitions of the assigned partitions (see the module docstring)."""

    def __init__(self, resend_s: float) -> None:
        self.resend_s = resend_s
        self.partitions: dict[int, _Partition] = {}
        self.outbox: dict[str, tuple[int, Mapping[str, Any]]] = {}

    def open(self, partition: int, sent_upto: int, end: int) -> None:
        """A partition assigned, to be read from its beginning."""
        self.partitions[partition] = _Partition(sent_upto, max(end, sent_upto))

    def close(self, partition: int) -> None:
        """A partition revoked: its next owner posts what this one had not."""
        self.partitions.pop(partition, None)
        self.outbox = {aid: item for aid, item in self.outbox.items() if item[0] != partition}

    def expected(self, partition: int) -> int | None:
        """The next offset of `partition` to read (None: from the beginning)."""
        held = self.partitions.get(partition)
        return None if held is None else held.next_offset

    def take(self, partition: int, records: Sequence[tuple[int, Any]]) -> int:
        """Apply (offset, decoded record) pairs read in offset order; returns how many were not
        alert records. Records before the next expected offset (read again) are skipped."""
        held = self.partitions.get(partition)
        if held is None:
            return 0
        skipped = 0
        for offset, record in records:
            if held.next_offset is not None and offset < held.next_offset:
                continue
            held.next_offset = offset + 1
            if not isinstance(record, Mapping) or not isinstance(record.get("alert_id"), str) \
                    or record.get("status") not in ("firing", "resolved") or record.get("starts_at") is None:
                skipped += 1
                continue
            alert_id = record["alert_id"]
            if record["status"] == "firing":
                held.active[alert_id] = record
            else:
                fired = held.active.pop(alert_id, None)
                if fired is not None:
                    record = {**fired, "status": "resolved", "ends_at": record.get("ends_at")}
            if offset >= held.sent_upto:
                self.outbox[alert_id] = (partition, record)
        return skipped

    def _ready(self) -> dict[int, _Partition]:
        return {p: held for p, held in self.partitions.items() if held.ready}

    def due(self, now: float) -> bool:
        ready = self._ready()
        return any(p in ready for p, _ in self.outbox.values()) or any(
            held.active and now >= held.resend_at for held in ready.values())

    def batch(self, now: float) -> Batch:
        """What to post now: the pending transitions of the ready partitions, and their firing
        alerts where those are due again (at once for a partition that just became ready)."""
        ready = self._ready()
        transitions = {aid: record for aid, (p, record) in self.outbox.items() if p in ready}
        records = list(transitions.values())
        resent = frozenset(p for p, held in ready.items() if now >= held.resend_at)
        records += [record for p in sorted(resent) for aid, record in ready[p].active.items()
                    if aid not in transitions]
        return Batch(records, transitions, resent)

    def sent(self, batch: Batch, now: float) -> None:
        """`batch` was posted (or refused for good): its transitions are settled."""
        for alert_id, record in batch.transitions.items():
            pending = self.outbox.get(alert_id)
            if pending is not None and pending[1] is record:
                del self.outbox[alert_id]
        for partition in batch.resent:
            held = self.partitions.get(partition)
            if held is not None:
                held.resend_at = now + self.resend_s

    def committable(self) -> dict[int, int]:
        """Next offsets of the ready partitions with nothing left to post."""
        waiting = {partition for partition, _ in self.outbox.values()}
        return {p: held.next_offset for p, held in self._ready().items()
                if held.next_offset is not None and p not in waiting}

    def pending(self) -> int:
        return len(self.outbox)

    def firing(self) -> int:
        return sum(len(held.active) for held in self.partitions.values())
