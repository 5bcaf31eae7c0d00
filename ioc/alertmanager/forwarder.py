"""What the Alertmanager sink holds for the partitions of `ioc.alerts` it reads: the alerts
firing now, the transitions still to send, and when the firing ones are due again.

>>> fw = Forwarder(resend_s=60.0)
>>> fw.open(0, sent_upto=1)          # offset 0 was sent before (history): replayed silently
>>> firing = {"alert_id": "a-1", "rule_id": "r", "status": "firing", "starts_at": 0, "ends_at": None}
>>> fw.take(0, [(0, firing), (1, dict(firing, alert_id="a-2"))])
0
>>> [r["alert_id"] for r in fw.batch(now=10.0).records]   # a-2 is new; a-1 is firing: due again now
['a-2', 'a-1']

Nothing here does I/O: the runner (streams/alertmanager_runner.py) reads, posts and commits.
Offsets: records below a partition's `sent_upto` (its committed offset when it was assigned)
were sent by an earlier owner, so they only rebuild what is firing; from there on every
transition is sent. A partition's offsets may be committed once nothing of it waits to be sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Batch", "Forwarder"]


@dataclass
class _Partition:
    sent_upto: int
    next_offset: int | None = None
    active: dict[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Batch:
    """Records to post, and what sending them settles."""

    records: list[Mapping[str, Any]]
    transitions: dict[str, Mapping[str, Any]]
    resend: bool


class Forwarder:
    """Firing alerts and pending transitions of the assigned partitions (see the module docstring)."""

    def __init__(self, resend_s: float) -> None:
        self.resend_s = resend_s
        self.partitions: dict[int, _Partition] = {}
        self.outbox: dict[str, tuple[int, Mapping[str, Any]]] = {}
        self._resend_at = 0.0

    def open(self, partition: int, sent_upto: int) -> None:
        """A partition assigned; it is read from its beginning. Firing alerts are due at once."""
        self.partitions[partition] = _Partition(sent_upto)
        self._resend_at = 0.0

    def close(self, partition: int) -> None:
        """A partition revoked: its next owner sends what it had not sent."""
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
                held.active.pop(alert_id, None)
            if offset >= held.sent_upto:
                self.outbox[alert_id] = (partition, record)
        return skipped

    def due(self, now: float) -> bool:
        return bool(self.outbox) or (now >= self._resend_at and any(p.active for p in self.partitions.values()))

    def batch(self, now: float) -> Batch:
        """What to post now: the pending transitions, and every firing alert when they are due again."""
        transitions = {aid: record for aid, (_, record) in self.outbox.items()}
        records = list(transitions.values())
        resend = now >= self._resend_at
        if resend:
            records += [record for held in self.partitions.values() for aid, record in held.active.items()
                        if aid not in transitions]
        return Batch(records, transitions, resend)

    def sent(self, batch: Batch, now: float) -> None:
        """`batch` was posted (or refused for good): its transitions are settled."""
        for alert_id, record in batch.transitions.items():
            pending = self.outbox.get(alert_id)
            if pending is not None and pending[1] is record:
                del self.outbox[alert_id]
        if batch.resend:
            self._resend_at = now + self.resend_s

    def committable(self) -> dict[int, int]:
        """Next offsets of the partitions with nothing left to send."""
        waiting = {partition for partition, _ in self.outbox.values()}
        return {p: held.next_offset for p, held in self.partitions.items()
                if held.next_offset is not None and p not in waiting}

    def firing(self) -> int:
        return sum(len(held.active) for held in self.partitions.values())
