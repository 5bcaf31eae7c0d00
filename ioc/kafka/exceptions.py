"""The error raised when the broker cannot be started or reached.

>>> str(BrokerError("the broker at kafka://127.0.0.1:9092 did not answer within 5 s"))
'the broker at kafka://127.0.0.1:9092 did not answer within 5 s'
"""

from __future__ import annotations

from ioc.exceptions import IocError

__all__ = ["BrokerError"]


class BrokerError(IocError):
    """The broker cannot be started or reached; the message is one sentence saying why."""
