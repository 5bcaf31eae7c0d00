"""The error raised for an event that cannot be accepted.

`reason` is a sentence for people (it goes to the dead-letter topic); `code` is a
short label from a fixed set, safe to use as a Prometheus label value.

>>> err = InvalidEvent("missing required field 'ts'", "missing_field")
>>> str(err), err.code
("missing required field 'ts'", 'missing_field')
"""

from __future__ import annotations

from ioc.exceptions import IocError

__all__ = ["InvalidEvent", "INVALID_EVENT_CODES"]

# Kept closed so a metric labelled by code cannot grow without bound.
INVALID_EVENT_CODES: frozenset[str] = frozenset(
    {
        "bad_json",
        "not_object",
        "bad_encoding",
        "too_large",
        "missing_field",
        "wrong_type",
        "out_of_range",
        "bad_ts",
        "unknown_stream",
    }
)


class InvalidEvent(IocError):
    """An event failed decoding or validation.

    Attributes:
        reason: one readable sentence naming the problem; also `str(exc)`.
        code: one of INVALID_EVENT_CODES.
    """

    reason: str
    code: str

    def __init__(self, reason: str, code: str) -> None:
        if code not in INVALID_EVENT_CODES:
            raise ValueError(f"unknown InvalidEvent code {code!r} (allowed: {sorted(INVALID_EVENT_CODES)})")
        super().__init__(reason)
        self.reason = reason
        self.code = code

    def __str__(self) -> str:
        return self.reason

    def __repr__(self) -> str:
        return f"InvalidEvent({self.reason!r}, {self.code!r})"

    def __reduce__(self) -> tuple[type[InvalidEvent], tuple[str, str]]:
        # Default exception pickling replays only `args`, which would drop `code`;
        # events cross process boundaries in worker pools.
        return (type(self), (self.reason, self.code))
