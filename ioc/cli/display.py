"""How alerts look in a terminal: one line each, severity coloured, Vietnamese as is."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rich.text import Text

from ioc.cli.common import SEVERITY_STYLES
from ioc.timeutil import LOCAL_TZ, parse_ts

__all__ = ["alert_line"]



def _local(value: object) -> str:
    if not isinstance(value, str) or not value:
        return ""
    try:
        moment = datetime.fromtimestamp(parse_ts(value), tz=LOCAL_TZ)
    except ValueError:
        return value[:16]
    return moment.strftime("%d/%m %H:%M")


def alert_line(record: Mapping[str, Any]) -> Text:
    """`2025-10-27 08:15  CRITICAL  FIRING    gauge.level.above_bd2  kim-long  Trạm Kim Long: ...`"""
    severity = str(record.get("severity", "?"))
    status = str(record.get("status", "?"))
    escalation = (record.get("labels") or {}).get("escalation")
    when = record.get("ends_at") if status == "resolved" else record.get("starts_at")
    when_text = _local(when)
    key = record.get("key") or {}
    key_text = ",".join(str(v) for v in key.values()) if isinstance(key, Mapping) else str(key)
    line = Text()
    line.append(f"{when_text:11}  ", style="dim")
    line.append(f"{severity.upper():9}", style=SEVERITY_STYLES.get(severity, ""))
    line.append(" ")
    status_text = "ESCALATED" if escalation else status.upper()
    line.append(f"{status_text:9}", style="bold" if status == "firing" else "green")
    line.append(f" {record.get('rule_id', '?')}", style="bold")
    line.append(f"  {key_text}  ", style="magenta")
    line.append(str(record.get("summary", "")))
    return line
