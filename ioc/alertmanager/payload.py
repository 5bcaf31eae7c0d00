"""One alert record of `ioc.alerts` as an alert of Alertmanager's v2 API (`postableAlert`).

>>> record = {"fingerprint": "f1", "alert_id": "f1-1761526800000", "rule_id": "reservoir.level.high",
...           "stream": "reservoir", "kind": "threshold", "severity": "critical", "status": "firing",
...           "key": {"source_id": "ta-trach"}, "labels": {"domain": "water"},
...           "summary": "Hồ Tả Trạch 45.2 m", "description": "", "starts_at": "2025-10-27T01:00:00Z",
...           "ends_at": None, "value": 45.2}
>>> alert = am_alert(record, now=1761530400.0, valid_s=240.0)
>>> alert["labels"]["alertname"], alert["labels"]["source_id"], alert["labels"]["domain"]
('reservoir.level.high', 'ta-trach', 'water')
>>> alert["startsAt"], alert["endsAt"]
('2025-10-27T01:00:00Z', '2025-10-27T02:04:00Z')

Labels say *which* alert it is (Alertmanager's identity of an alert is its label set, as
Prometheus' is): `alertname` (the rule id), `rule_id`, `severity`, `stream`, `kind`, `domain`,
the key fields (`source_id`...), and the rule's labels (`escalation` on escalation records).
Annotations say what to know about it: `summary`, `description`, `value` (the measured
number), `alert_id`, `fingerprint`, `rule` (its file:line), then the record's own `annotations`
(the rule's `annotations:` as rendered, and its `runbook_url`); a rule's `runbook_url` wins over
the configured `alertmanager.runbook_url` template, which fills it for rules that give none. Times: `startsAt` is
the alert's start; a firing alert's `endsAt` is `valid_s` from now (sent again before then, so
an engine that stops lets Alertmanager resolve it by itself, as Prometheus does); a resolved
one's is its end. `startsAt` and a resolved alert's `endsAt` are never later than `now`:
Alertmanager lives in wall time, replays and the demo in event time that may run ahead of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ioc.timeutil import format_ts, parse_ts

__all__ = ["am_alert", "label_name"]

_INVALID = re.compile(r"[^A-Za-z0-9_]")
_FIRST = ("alertname", "rule_id", "severity", "stream", "kind", "domain")


def label_name(name: str) -> str:
    """A valid Alertmanager label name (`[A-Za-z_][A-Za-z0-9_]*`) for a field name.

    >>> label_name("camera.zone"), label_name("1st")
    ('camera_zone', '_1st')
    """
    cleaned = _INVALID.sub("_", name) or "_"
    return cleaned if not cleaned[0].isdigit() else "_" + cleaned


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _template(template: str, record: Mapping[str, Any]) -> str:
    """`{rule_id}`, `{alert_id}`, `{fingerprint}`, `{severity}` in a configured URL."""
    if not template:
        return ""
    try:
        return template.format_map({name: _text(record.get(name)) for name in
                                    ("rule_id", "alert_id", "fingerprint", "severity", "stream")})
    except (KeyError, ValueError, IndexError):
        return template


def am_alert(
    record: Mapping[str, Any], *, now: float, valid_s: float, rule_source: str = "",
    runbook_url: str = "", generator_url: str = "",
) -> dict[str, Any]:
    """The postable alert of an alert record (see the module docstring)."""
    labels: dict[str, str] = {}
    for name, value in (record.get("labels") or {}).items():
        labels[label_name(str(name))] = _text(value)
    for name, value in (record.get("key") or {}).items():
        labels[label_name(str(name))] = _text(value)
    labels.update({
        "alertname": _text(record.get("rule_id")),
        "rule_id": _text(record.get("rule_id")),
        "severity": _text(record.get("severity")),
        "stream": _text(record.get("stream")),
        "kind": _text(record.get("kind")),
        "domain": _text((record.get("labels") or {}).get("domain") or record.get("stream")),
    })
    labels = {name: value for name, value in labels.items() if value}
    ordered = {name: labels[name] for name in _FIRST if name in labels}
    ordered.update(sorted((n, v) for n, v in labels.items() if n not in ordered))
    annotations = {
        "summary": _text(record.get("summary")),
        "description": _text(record.get("description")),
        "value": _text(record.get("value")),
        "alert_id": _text(record.get("alert_id")),
        "fingerprint": _text(record.get("fingerprint")),
        "rule": rule_source,
        "runbook_url": _template(runbook_url, record),
    }
    for name, value in (record.get("annotations") or {}).items():
        if isinstance(value, str) and value:
            annotations[label_name(str(name))] = value
    starts_at = min(parse_ts(record["starts_at"]), now)
    if record.get("status") == "resolved":
        ended = record.get("ends_at")
        ends_at = min(parse_ts(ended), now) if ended is not None else now
        ends_at = max(ends_at, starts_at)
    else:
        ends_at = now + valid_s
    alert: dict[str, Any] = {
        "labels": ordered,
        "annotations": {name: value for name, value in annotations.items() if value},
        "startsAt": format_ts(starts_at),
        "endsAt": format_ts(ends_at),
    }
    generator = _template(generator_url, record)
    if generator:
        alert["generatorURL"] = generator
    return alert
