"""Operators who acknowledge and resolve alerts, with realistic delays, for `ioc.alert-actions`.

Most alerts are handled on time; a few percent are late, as in the seeds' IOC (1.86 % of field
reports handled late, docs/domain.md "SLA baselines"). The decision for an alert depends only on the
seed and the alert id, so replays produce the same actions.

>>> operators = OperatorSimulator(seed=3)
>>> actions = operators.actions_for(alert_record)                     # doctest: +SKIP
>>> [a["action"] for a in actions]
['ack', 'resolve']
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy

from ioc.sla.calendar import WorkingCalendar
from ioc.sla.deadlines import compute_deadlines
from ioc.sla.settings import SlaSettings, WorkingHours
from ioc.timeutil import format_ts, parse_ts

__all__ = ["OperatorSimulator", "LATE_SHARE", "OPERATORS"]


@functools.cache
def _calendar(path: str, hours: str) -> WorkingCalendar:
    return WorkingCalendar.from_file(path, WorkingHours.model_validate_json(hours))

LATE_SHARE = 0.0186           # docs/domain.md: 1.86 % of field reports handled late
OPERATORS = ("truc-ban-1", "truc-ban-2", "truc-ban-3", "so-nnptnt", "chi-cuc-thuy-san", "soc-hue")


@dataclass(frozen=True)
class OperatorSimulator:
    """Decides, per firing alert, when an operator acknowledges and resolves it (event time)."""

    seed: int = 0
    late_share: float = LATE_SHARE
    settings: SlaSettings = field(default_factory=SlaSettings)   # `sla:` of the worker the alerts are for

    def _rng(self, alert_id: str) -> numpy.random.Generator:
        digest = hashlib.sha256(f"{self.seed}:{alert_id}".encode()).digest()
        return numpy.random.default_rng(int.from_bytes(digest[:8], "big"))

    def actions_for(self, alert: Mapping[str, Any]) -> list[dict[str, Any]]:
        """`ack` then `resolve` records (`{alert_id, action, by, at, note}`) for a firing alert;
        none for a resolved or escalation record."""
        if alert.get("status") != "firing" or (alert.get("labels") or {}).get("escalation"):
            return []
        starts = parse_ts(alert["starts_at"])
        # The deadlines the tracker counts: the rule's `sla`, else the severity's defaults (wall time
        # from the start, working hours and holidays included where the settings say so).
        deadlines = compute_deadlines(starts, str(alert.get("severity") or "warning"), str(alert.get("rule_id")),
                                      alert.get("sla"), self.settings,
                                      _calendar(self.settings.calendar, self.settings.working_hours.model_dump_json()))
        ack_budget = deadlines.ack.due_at - starts
        resolve_budget = deadlines.resolve.due_at - starts
        rng = self._rng(str(alert["alert_id"]))
        late = rng.random() < self.late_share
        # On time: most within half the budget (beta-shaped); late: 5-60 % past the deadline.
        ack_after = ack_budget * (1.05 + 0.55 * rng.random() if late else 0.9 * rng.beta(2.0, 5.0) + 0.02)
        resolve_after = max(
            ack_after + 60.0,
            resolve_budget * (1.05 + 0.55 * rng.random() if late else 0.9 * rng.beta(2.5, 4.0) + 0.05),
        )
        who = OPERATORS[int(rng.integers(len(OPERATORS)))]
        alert_id = str(alert["alert_id"])
        return [
            {"alert_id": alert_id, "action": "ack", "by": who, "at": format_ts(starts + ack_after),
             "note": "đã tiếp nhận"},
            {"alert_id": alert_id, "action": "resolve", "by": who, "at": format_ts(starts + resolve_after),
             "note": "đã xử lý xong" if not late else "xử lý trễ hạn"},
        ]
