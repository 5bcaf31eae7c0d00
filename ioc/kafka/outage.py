"""Broker outages said once: a watch that notices the broker going and coming back, recreates
the topics it lost, and keeps the Kafka clients' logs quiet meanwhile.

Measured before this existed: an embedded broker restarted under a worker gave 1,730 error
lines in 40 s (every failed connection, fetch, heartbeat and offset commit of aiokafka, one
line each, retried every 100 ms) and the worker never recreated its topics. Now the worker
says "lost the broker" once, "broker back after N s; recreated topics: ..." once, and counts
`ioc_broker_reconnects_total`.

>>> watch = BrokerWatch(url, probe, expected, recreate, metrics=metrics)   # doctest: +SKIP
>>> await watch.check()         # every second, from the worker's loop
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ioc.kafka.broker import probe_topics
from ioc.kafka.clients import bootstrap_servers
from ioc.kafka.topics import TopicSpec

__all__ = ["BrokerWatch", "QuietClientLogs", "topic_prober"]

log = logging.getLogger(__name__)

CLIENT_LOGGERS = ("aiokafka", "kafka")


class QuietClientLogs(logging.Filter):
    """Holds back the Kafka clients' warnings and errors: all of them while an outage is
    reported (`muted`), and otherwise any message already let through in the last `every_s`
    seconds (the same template, e.g. "Unable connect to node with id %s: %s"). Counts what it
    held back (`suppressed`), so that the outage's last line can say how much."""

    def __init__(self, every_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s = every_s
        self.clock = clock
        self.muted = False
        self.suppressed = 0
        self._seen: dict[tuple[str, str], float] = {}
        self._loggers: list[logging.Logger] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        if self.muted:
            self.suppressed += 1
            return False
        key = (record.name, str(record.msg))
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last < self.every_s:
            self.suppressed += 1
            return False
        if len(self._seen) > 1000:  # templates are few; messages built with f-strings are not
            self._seen.clear()
        self._seen[key] = now
        return True

    def install(self, prefixes: Iterable[str] = CLIENT_LOGGERS) -> None:
        """Filter every client logger that exists now (a logger's filter applies to what it logs
        itself, not to its children: each one gets it). The clients create them on import."""
        wanted = tuple(prefixes)
        names = [name for name in list(logging.root.manager.loggerDict)
                 if name in wanted or name.startswith(tuple(prefix + "." for prefix in wanted))]
        for name in [*wanted, *names]:
            logger = logging.getLogger(name)
            if self not in logger.filters:
                logger.addFilter(self)
                self._loggers.append(logger)

    def uninstall(self) -> None:
        for logger in self._loggers:
            logger.removeFilter(self)
        self._loggers.clear()


def topic_prober(url: str, timeout_s: float = 1.0) -> Callable[[], set[str]]:
    """A blocking probe for `BrokerWatch`: the topic names of the first broker of `url` that
    answers a plaintext metadata request; OSError when none does."""
    hosts = []
    for part in bootstrap_servers(url).split(","):
        host, _, port = part.strip().rpartition(":")
        hosts.append((host.strip("[]"), int(port)))

    def probe() -> set[str]:
        error: Exception = OSError("no broker address")
        for host, port in hosts:
            try:
                return probe_topics(host, port, timeout_s)
            except (OSError, struct.error, UnicodeDecodeError) as exc:
                error = exc
        raise OSError(str(error) or type(error).__name__)

    return probe


class BrokerWatch:
    """Probe the broker every second (see the module docstring).

    `probe()` (blocking, run in a thread): the broker's topic names, or OSError. `expected()`:
    the topics the worker needs. `recreate(specs)` (blocking): create them, returns the names
    created. `on_lost(names)` runs before missing topics are recreated (the worker forgets the
    offsets it held on them: the recreated topics start at 0), `on_recreated(names)` after."""

    def __init__(
        self, url: str, probe: Callable[[], set[str]], expected: Callable[[], list[TopicSpec]],
        recreate: Callable[[list[TopicSpec]], list[str]], *, metrics: Any = None,
        on_lost: Callable[[list[str]], Awaitable[None]] | None = None,
        on_recreated: Callable[[list[str]], Awaitable[None]] | None = None,
        quiet: QuietClientLogs | None = None, clock: Callable[[], float] = time.monotonic,
        probe_timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.probe = probe
        self.expected = expected
        self.recreate = recreate
        self.metrics = metrics
        self.on_lost = on_lost
        self.on_recreated = on_recreated
        self.quiet = quiet if quiet is not None else QuietClientLogs()
        self.clock = clock
        self.probe_timeout_s = probe_timeout_s
        self.down_since: float | None = None
        self.down_wall: float | None = None

    @property
    def outage(self) -> bool:
        """Whether the broker is away now (as far as the last probe could tell)."""
        return self.down_since is not None

    async def run(self, interval_s: float = 1.0) -> None:
        """Check every `interval_s` until cancelled; a failing check never ends the watch."""
        while True:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the watch must outlive any one failure
                log.exception("the broker watch failed; checking again in %.0f s", interval_s)
            await asyncio.sleep(interval_s)

    async def check(self) -> None:
        """One probe: note an outage, or the broker's return, and recreate missing topics."""
        try:
            topics = await asyncio.wait_for(asyncio.to_thread(self.probe), self.probe_timeout_s)
        except (OSError, TimeoutError) as exc:
            self._lost(exc)
            return
        missing = [spec for spec in self.expected() if spec.name not in topics]
        created: list[str] = []
        if missing:
            names = [spec.name for spec in missing]
            if self.on_lost is not None:
                await self.on_lost(names)
            try:
                created = await asyncio.to_thread(self.recreate, missing)
            except Exception as exc:  # noqa: BLE001 - tried again at the next check
                if not self.outage:
                    log.warning("%d topics are missing on the broker at %s and could not be created (%s); "
                                "trying again", len(missing), self.url, exc)
                self._lost(exc, quiet=True)
                return
            if self.on_recreated is not None:
                await self.on_recreated(names)
        recreated = ", ".join(sorted(created)) if created else "none"
        if self.down_since is not None:
            seconds = self.clock() - self.down_since
            self.down_since = self.down_wall = None
            self.quiet.muted = False
            if self.metrics is not None:
                self.metrics.broker_reconnects.inc()
            log.warning("broker back after %.0f s; recreated topics: %s (%d client log lines held back)",
                        seconds, recreated, self.quiet.suppressed)
            self.quiet.suppressed = 0
        elif created:
            # Gone and back between two probes (a quick restart), or deleted by someone.
            if self.metrics is not None:
                self.metrics.broker_reconnects.inc()
            log.warning("topics were missing on the broker at %s (restarted, or deleted); recreated: %s",
                        self.url, recreated)

    def _lost(self, error: BaseException, *, quiet: bool = False) -> None:
        if self.down_since is not None:
            return
        self.down_since, self.down_wall = self.clock(), time.time()
        self.quiet.muted = True
        if not quiet:
            when = time.strftime("%H:%M:%S", time.localtime(self.down_wall))
            log.warning("lost the broker at %s at %s (%s); retrying quietly until it is back",
                        self.url, when, str(error) or type(error).__name__)
