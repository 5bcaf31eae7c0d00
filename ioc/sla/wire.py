"""The SLA records on the wire: epoch seconds in the tracker, RFC 3339 text on Kafka.

`wire()` is what the SLA runner publishes (state, outcome, rejection and snapshot records);
`unwire()` is its inverse for a service that reads them back (the cluster runner's figures).

>>> record = {"type": "outcome", "acked_at": 1761527000.0, "ack_s": 200.0, "ends_at": None}
>>> wire(record)
{'type': 'outcome', 'acked_at': '2025-10-27T01:03:20Z', 'ack_s': 200.0, 'ends_at': None}
>>> unwire(wire(record)) == record
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ioc.timeutil import format_ts, parse_ts

__all__ = ["TIME_FIELDS", "unwire", "wire"]

# Epoch-second fields written as RFC 3339 on the wire (state, outcome, rejection, snapshot records).
TIME_FIELDS = frozenset({"starts_at", "ends_at", "ack_by", "resolve_by", "acked_at", "resolved_at",
                         "updated_at", "at"})


def wire(record: Mapping[str, Any]) -> dict[str, Any]:
    """A tracker record with its epoch-second time fields (and its notes' `at`) as RFC 3339."""
    out: dict[str, Any] = {}
    for name, value in record.items():
        if name in TIME_FIELDS and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = format_ts(float(value))
        elif name == "notes" and isinstance(value, list):
            out[name] = [wire(note) if isinstance(note, Mapping) else note for note in value]
        else:
            out[name] = value
    return out


def unwire(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record read from the wire with its time fields back as epoch seconds; a time that does
    not parse raises ValueError (the caller skips the record)."""
    out: dict[str, Any] = {}
    for name, value in record.items():
        if name in TIME_FIELDS and isinstance(value, str):
            out[name] = parse_ts(value)
        elif name == "notes" and isinstance(value, list):
            out[name] = [unwire(note) if isinstance(note, Mapping) else note for note in value]
        else:
            out[name] = value
    return out
