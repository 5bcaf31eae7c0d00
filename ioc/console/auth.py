"""Who may write: a bearer token from the configuration (`console.token`, `$IOC_CONSOLE_TOKEN`).

>>> refused("Bearer s3cret", "s3cret") is None
True
>>> refused(None, "s3cret").status
401
>>> refused("Bearer x", "").status
403
"""

from __future__ import annotations

import hmac
from typing import NamedTuple

__all__ = ["Refusal", "refused"]


class Refusal(NamedTuple):
    status: int
    message: str


WRITES_OFF = ("write actions are off: no console token is configured (set console.token in config/ioc.yaml "
            "or $IOC_CONSOLE_TOKEN, then send it as 'Authorization: Bearer <token>'); ioc alerts ack|resolve "
            "works from the shell")


def refused(authorization: str | None, token: str) -> Refusal | None:
    """Why a write with this `Authorization` header is refused (None: allowed)."""
    if not token:
        return Refusal(403, WRITES_OFF)
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return Refusal(401, "write actions need the console token: send 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return Refusal(401, "the console token is not right")
    return None
