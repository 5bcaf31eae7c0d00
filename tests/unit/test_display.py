"""The terminal line of an alert: local time, coloured severity, Vietnamese text intact."""

from __future__ import annotations

from rich.console import Console

from ioc.cli.display import alert_line


def _record(**changes):
    record = {
        "severity": "critical", "status": "firing", "rule_id": "gauge.level.above_bd2",
        "key": {"source_id": "kim-long"}, "labels": {"domain": "water"},
        "summary": "Trạm Kim Long: mực nước 2.06 m trên báo động 2 (2.0 m)",
        "starts_at": "2025-10-27T01:15:00Z", "ends_at": None,
    }
    record.update(changes)
    return record


def test_line_shows_hue_local_time_severity_status_rule_key_and_summary():
    text = alert_line(_record()).plain
    assert text.startswith("27/10 08:15")  # 01:15 UTC is 08:15 in Hue (UTC+7)
    assert "CRITICAL" in text and "FIRING" in text
    assert "gauge.level.above_bd2  kim-long  Trạm Kim Long: mực nước 2.06 m" in text


def test_resolved_line_uses_end_time_and_escalations_are_marked():
    resolved = alert_line(_record(status="resolved", ends_at="2025-10-27T03:00:00Z")).plain
    assert resolved.startswith("27/10 10:00") and "RESOLVED" in resolved
    escalated = alert_line(_record(labels={"escalation": "ack_overdue"})).plain
    assert "ESCALATED" in escalated


def test_severities_have_distinct_colours():
    console = Console(force_terminal=True, color_system="standard", width=200)
    rendered = {}
    for severity in ("info", "warning", "critical", "emergency"):
        with console.capture() as capture:
            console.print(alert_line(_record(severity=severity)))
        rendered[severity] = capture.get()
    assert all("\x1b[" in out for out in rendered.values())
    assert len({out.split(severity.upper())[0] for severity, out in rendered.items()}) == 4
