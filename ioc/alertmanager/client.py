"""POST alerts to Alertmanager's v2 API, and what the answer means for them.

`sent` (2xx), `refused` (4xx other than 408/429: these alerts will never be taken, trying again
would only block the ones behind them; logged with Alertmanager's reason), `retry` (no answer,
timeouts, 408, 429, 5xx: Alertmanager is away or busy, the same alerts are sent again later).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import aiohttp
import orjson

__all__ = ["CHUNK", "Result", "post_alerts"]

CHUNK = 500  # alerts per POST
Result = Literal["sent", "refused", "retry"]


def classify(status: int) -> Result:
    """
    >>> classify(200), classify(400), classify(429), classify(503)
    ('sent', 'refused', 'retry', 'retry')
    """
    if 200 <= status < 300:
        return "sent"
    if 400 <= status < 500 and status not in (408, 429):
        return "refused"
    return "retry"


async def post_alerts(session: aiohttp.ClientSession, base_url: str, alerts: Sequence[dict[str, Any]],
                      timeout_s: float) -> tuple[Result, str]:
    """POST `alerts` to `<base_url>/api/v2/alerts`; (result, detail for the log)."""
    url = base_url.rstrip("/") + "/api/v2/alerts"
    try:
        async with session.post(url, data=orjson.dumps(list(alerts)), headers={"Content-Type": "application/json"},
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            body = (await response.text())[:500]
            return classify(response.status), f"HTTP {response.status} {body}".strip()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return "retry", f"{type(exc).__name__}: {exc}".rstrip(": ")
