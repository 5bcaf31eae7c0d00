"""Server-sent events to the open pages: each page has a bounded queue; a page that falls behind
is dropped (its browser reconnects and loads the list again).

>>> hub = Hub()
>>> queue = hub.subscribe()
>>> hub.send("alerts", [{"alert_id": "x"}])
>>> queue.get_nowait()
b'event: alerts\\ndata: [{"alert_id":"x"}]\\n\\n'
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

__all__ = ["Hub", "event_bytes"]

QUEUE_MAX = 1000


def event_bytes(name: str, data: Any) -> bytes:
    """One SSE message (JSON has no raw newlines, so one `data:` line)."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class Hub:
    """The open event streams."""

    def __init__(self, max_pages: int = 100) -> None:
        self.max_pages = max_pages
        self.queues: set[asyncio.Queue[bytes | None]] = set()
        self.closed = False

    def subscribe(self) -> asyncio.Queue[bytes | None]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=QUEUE_MAX)
        if self.closed or len(self.queues) >= self.max_pages:
            queue.put_nowait(None)
        else:
            self.queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes | None]) -> None:
        self.queues.discard(queue)

    def send(self, name: str, data: Any) -> None:
        message = event_bytes(name, data)
        for queue in list(self.queues):
            if queue.qsize() >= QUEUE_MAX - 1:  # behind: end it (the page reconnects and reloads)
                self.queues.discard(queue)
                queue.put_nowait(None)
            else:
                queue.put_nowait(message)

    def close(self) -> None:
        """End every stream (at shutdown: the web server does not wait for them)."""
        self.closed = True
        for queue in list(self.queues):
            self.queues.discard(queue)
            while queue.full():
                queue.get_nowait()
            queue.put_nowait(None)
