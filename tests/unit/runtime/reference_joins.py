"""Acceptance 3 of issue 18, shared by the backtest test (tests/unit/runtime/test_reference_keys.py)
and the embedded-broker test (tests/integration/test_reference_joins.py): events for the shipped
camera.flooding.gauge_bd2 (a cross-stream sequence joined through the cameras' reference `gauge`)
and camera.crowd.ward_wide (a window keyed by the declared field `ward`), and the alert
transitions they must give, computed here from the rules' definitions, not from the engine:

* flooding (within 2 h, resolve_after 1 h): Kim Long 2.10 m >= BĐ2 2.0 m at 0m, Phú Ốc 3.20 m >=
  BĐ2 3.0 m at 10m; cam-041 (gauge phu-oc) floods at 20m, cam-032 (gauge kim-long) at 30m, cam-001
  (gauge null) at 35m. Two alerts, one per gauge: phu-oc starts 10m, resolved 20m + 1h = 80m;
  kim-long starts 0m, resolved 30m + 1h = 90m. cam-001 joins nothing.
* ward (sliding 15 min, distinct cameras over their crowd_limit >= 2): cam-013 (Phú Hội, limit 250)
  310 at 40m and 330 at 45m, cam-014 (Phú Hội, limit 1000) 1150 at 49m: starts 49m; the window
  drops cam-013's last crowd at 45m + 15m = 60m: resolved 60m. cam-008 (Đông Ba) alone: nothing.
* a camera event whose `ward` is a number is a dead letter (wrong_type).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ioc.timeutil import format_ts

T0 = 1761505200.0  # 2025-10-27T02:00:00+07:00
MIN = 60.0

FLOODING = "camera.flooding.gauge_bd2"
WARD = "camera.crowd.ward_wide"


def _at(minutes: float) -> str:
    return format_ts(T0 + minutes * MIN)


EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("reservoir", {"source_id": "kim-long", "ts": _at(0), "id": "kl-1", "level_m": 2.10}),
    ("reservoir", {"source_id": "phu-oc", "ts": _at(10), "id": "po-1", "level_m": 3.20}),
    ("camera", {"source_id": "cam-041", "ts": _at(20), "id": "c41-1", "event_type": "road_flooding", "score": 0.9}),
    ("camera", {"source_id": "cam-032", "ts": _at(30), "id": "c32-1", "event_type": "road_flooding", "score": 0.85}),
    ("camera", {"source_id": "cam-001", "ts": _at(35), "id": "c01-1", "event_type": "road_flooding", "score": 0.9}),
    ("camera", {"source_id": "cam-013", "ts": _at(40), "id": "c13-1", "event_type": "crowd", "count": 310,
                "ward": "Phú Hội"}),
    ("camera", {"source_id": "cam-013", "ts": _at(45), "id": "c13-2", "event_type": "crowd", "count": 330,
                "ward": "Phú Hội"}),
    ("camera", {"source_id": "cam-008", "ts": _at(46), "id": "c08-1", "event_type": "crowd", "count": 260,
                "ward": "Đông Ba"}),
    ("camera", {"source_id": "cam-014", "ts": _at(49), "id": "c14-1", "event_type": "crowd", "count": 1150,
                "ward": "Phú Hội"}),
    ("camera", {"source_id": "cam-014", "ts": _at(50), "id": "c14-bad", "event_type": "crowd", "count": 1150,
                "ward": 5}),
    # Later readings and heartbeats move every partition's watermark past the resolutions.
    ("reservoir", {"source_id": "kim-long", "ts": _at(120), "id": "kl-2", "level_m": 1.60}),
    ("reservoir", {"source_id": "phu-oc", "ts": _at(120), "id": "po-2", "level_m": 2.40}),
    *[("camera", {"source_id": cam, "ts": _at(120), "id": f"{cam}-hb", "event_type": "heartbeat"})
      for cam in ("cam-041", "cam-032", "cam-001", "cam-013", "cam-008", "cam-014")],
]
BAD = {"c14-bad": ("field 'ward': 5 is not a string", "wrong_type")}


def fingerprint(rule_id: str, key: dict[str, Any]) -> str:
    """As specified (DESIGN.md, alert record): sha256 of [rule id, sorted key pairs] as compact UTF-8 JSON."""
    canonical = json.dumps([rule_id, sorted([k, v] for k, v in key.items())], separators=(",", ":"),
                           ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _alert_id(rule_id: str, key: dict[str, Any], starts_min: float) -> str:
    return f"{fingerprint(rule_id, key)}-{round((T0 + starts_min * MIN) * 1000)}"


# (alert_id, rule_id, status, key, starts_at, ends_at)
Transition = tuple[str, str, str, tuple[tuple[str, Any], ...], float, float | None]


def _both(rule_id: str, key: dict[str, Any], starts: float, ends: float) -> list[Transition]:
    alert_id, pairs = _alert_id(rule_id, key, starts), tuple(key.items())
    return [(alert_id, rule_id, "firing", pairs, T0 + starts * MIN, None),
            (alert_id, rule_id, "resolved", pairs, T0 + starts * MIN, T0 + ends * MIN)]


EXPECTED: frozenset[Transition] = frozenset(
    _both(FLOODING, {"key": "phu-oc"}, 10, 80)
    + _both(FLOODING, {"key": "kim-long"}, 0, 90)
    + _both(WARD, {"ward": "Phú Hội"}, 49, 60)
)


def transitions(records: list[dict[str, Any]]) -> frozenset[Transition]:
    """The expected shape of alert records (dicts as on ioc.alerts) of the two rules."""
    from ioc.timeutil import parse_ts

    out = set()
    for record in records:
        if record["rule_id"] not in (FLOODING, WARD) or "escalation" in (record.get("labels") or {}):
            continue
        ends = record.get("ends_at")
        out.add((record["alert_id"], record["rule_id"], record["status"], tuple(record["key"].items()),
                 parse_ts(record["starts_at"]), None if ends is None else parse_ts(ends)))
    return frozenset(out)
