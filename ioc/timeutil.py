"""Event-time helpers: parse `ts` values, format RFC 3339, parse durations.

All engine time is a float of seconds since the Unix epoch (UTC).

>>> parse_ts("2025-10-27T08:00:00+07:00")
1761526800.0
>>> parse_ts(1761526800000)   # epoch milliseconds
1761526800.0
>>> format_ts(1761526800.0)
'2025-10-27T01:00:00Z'
>>> parse_duration("1h30m")
5400.0
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["parse_ts", "format_ts", "format_local", "parse_duration", "format_duration", "EPOCH_MS_THRESHOLD",
           "LOCAL_TZ", "parse_local", "LOCAL_TIME_HELP", "shown_local"]

# A number above this is taken as epoch milliseconds: 1e11 s is the year 5138, while
# 1e11 ms is 1973, so the two ranges never overlap for real sensor data.
EPOCH_MS_THRESHOLD = 1e11

_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")
_UNITS = (86400.0, 3600.0, 60.0, 1.0)


def parse_ts(value: object) -> float:
    """Event time of a `ts` value: RFC 3339 text with an offset, or epoch s/ms as a number.

    Raises ValueError with a sentence saying what was expected.
    """
    if isinstance(value, bool):
        raise ValueError("ts must be RFC 3339 text or epoch seconds/milliseconds, not a boolean")
    if isinstance(value, (int, float)):
        seconds = float(value)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"ts {value!r} is not a valid epoch time")
        if seconds >= EPOCH_MS_THRESHOLD:
            seconds /= 1000.0
        return seconds
    if isinstance(value, str):
        text = value.strip()
        if len(text) < 20 or text[10] not in "Tt ":
            raise ValueError(f"ts {value!r} is not RFC 3339 (e.g. 2025-10-27T08:00:00+07:00)")
        if text[-1] in "Zz":
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"ts {value!r} is not RFC 3339 (e.g. 2025-10-27T08:00:00+07:00)") from None
        if parsed.tzinfo is None:
            raise ValueError(f"ts {value!r} has no UTC offset (add Z or +07:00)")
        return parsed.timestamp()
    raise ValueError(f"ts must be RFC 3339 text or epoch seconds/milliseconds, not {type(value).__name__}")


# What people in Huế read: Indochina Time (UTC+7, no daylight saving). Records stay in UTC; what a
# command prints or a report shows for people is in this time, and says so.
LOCAL_TZ = timezone(timedelta(hours=7), "ICT")


def format_local(seconds: float) -> str:
    """Minutes in Huế's time, for people (`2025-10-27 08:00`; say "ICT" where it is shown).

    >>> format_local(1761526800.0)
    '2025-10-27 08:00'
    """
    return datetime.fromtimestamp(seconds, tz=LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


# What a command's --help says of a time a person types (parse_local).
LOCAL_TIME_HELP = "e.g. '2025-10-27 08:00' in Huế's time (ICT, UTC+7) when no offset is given, or RFC 3339"


def parse_local(text: str) -> float:
    """A time typed by a person: RFC 3339 with an offset (`2025-10-27T01:00:00Z`) as written,
    and a date and time without one (`2025-10-27 08:00`, `2025-10-27T08:00:30`) in Huế's
    time (ICT, UTC+7). ValueError saying what is expected otherwise.

    >>> parse_local("2025-10-27 08:00") == parse_local("2025-10-27T01:00:00Z") == 1761526800.0
    True
    """
    try:
        return parse_ts(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text[:60]!r} is not a time ({LOCAL_TIME_HELP})") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return moment.timestamp()


def shown_local(value: float | str | None) -> str:
    """A time for a person to read, in Huế's time with its zone: `2025-10-27 08:00 ICT` (a
    record's RFC 3339 text too); `-` for None, text that is no time as it is.

    >>> shown_local("2025-10-27T01:00:00Z"), shown_local(None)
    ('2025-10-27 08:00 ICT', '-')
    """
    if value is None:
        return "-"
    try:
        seconds = parse_ts(value)
    except ValueError:
        return str(value)
    return f"{format_local(seconds)} ICT"


def format_ts(seconds: float) -> str:
    """RFC 3339 UTC text of an epoch time, with milliseconds only when they are not zero."""
    dt = datetime.fromtimestamp(seconds, tz=UTC)
    if dt.microsecond:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_duration(text: object) -> float:
    """Seconds of a duration such as `30s`, `5m`, `2h`, `1d` or `1h30m`.

    Raises ValueError naming the bad value and the allowed form.
    """
    if isinstance(text, str):
        match = _DURATION_RE.match(text.strip())
        if match and any(match.groups()):
            return sum(float(part) * unit for part, unit in zip(match.groups(), _UNITS, strict=True) if part)
    raise ValueError(f"{text!r} is not a duration (e.g. 30s, 5m, 2h, 1d, 1h30m)")


def format_duration(seconds: float) -> str:
    """Short text of a duration, the inverse of parse_duration for whole seconds."""
    remaining = int(round(seconds))
    if remaining == 0:
        return "0s"
    parts = []
    for suffix, unit in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, unit)
        if count:
            parts.append(f"{count}{suffix}")
    return "".join(parts)
