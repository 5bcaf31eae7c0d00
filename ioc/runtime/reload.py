"""Live rule reload: on a file change (polled) or on request (SIGHUP), swap the rule set
atomically; a broken change is rejected with the same error text as `ioc rules check`,
and the running rules keep working.

>>> reloader = RuleReloader(load, host.apply_rules, metrics, watch)     # doctest: +SKIP
>>> outcome = reloader.poll()          # None when nothing changed on disk
>>> outcome = await reloader.poll_async()   # the same, loading in a thread, within load_s

The live worker uses the `_async` forms: the rules are read and compiled in a worker thread,
so the event loop (every stream, `/metrics`, heartbeats) keeps running meanwhile, and a load
that takes longer than `load_s` (limits.rule_load_s) is rejected like a broken one. A thread
cannot be killed: bounded parsing (file size, YAML nodes, collection sizes) is what makes a
load end; the time limit is the backstop, and no new load starts while a late one still runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ioc.alerts import Alert
from ioc.exceptions import IocError
from ioc.metrics import IocMetrics
from ioc.rules.loader import RuleSet

__all__ = ["ReloadOutcome", "RuleReloader"]

log = logging.getLogger(__name__)


@dataclass
class ReloadOutcome:
    ok: bool
    message: str
    changed: list[str] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)


class RuleReloader:
    """Watches rule and reference files; reloads and swaps the engine's rule set."""

    def __init__(
        self,
        load: Callable[[], RuleSet],
        apply: Callable[[RuleSet], tuple[list[Alert], list[str]]],
        metrics: IocMetrics | None,
        watch: Callable[[], Iterable[Path]],
        running: int = 0,
        load_s: float = 10.0,
    ) -> None:
        self.load = load
        self.apply = apply
        self.running = running
        self.metrics = metrics
        self.watch = watch
        self.load_s = load_s
        self._stamp: tuple[tuple[str, int, int], ...] | None = self._fingerprint()
        self._loading: asyncio.Future[RuleSet] | None = None  # a load in its thread (it may outlive a timeout)

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        stamps = []
        for path in self.watch():
            try:
                info = path.stat()
            except OSError:
                continue
            stamps.append((str(path), info.st_mtime_ns, info.st_size))
        return tuple(sorted(stamps))

    def poll(self) -> ReloadOutcome | None:
        """Reload if a watched file changed (or appeared, or went away) since the last look."""
        return self.reload("files changed") if self.changed() else None

    def reload(self, why: str = "requested") -> ReloadOutcome:
        """Load the rules now; swap on success, keep the running set on any error."""
        self._stamp = self._fingerprint()
        try:
            ruleset = self.load()
        except IocError as exc:
            return self._rejected(why, str(exc))
        except Exception as exc:  # noqa: BLE001 - a rule file must never take the worker down
            log.exception("loading the rules failed unexpectedly")
            return self._rejected(why, f"loading failed: {type(exc).__name__}: {str(exc)[:500]}")
        return self.swap(why, ruleset)

    def changed(self) -> bool:
        """Whether a watched file changed (or appeared, or went away) since the last look."""
        stamp = self._fingerprint()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        return True

    @property
    def loading(self) -> bool:
        """A load that passed its time limit is still running in its thread."""
        return self._loading is not None and not self._loading.done()

    def retry_later(self) -> None:
        """Forget what the files looked like: the next `changed()` says yes, so a change that
        could not be loaded now is loaded at the next poll."""
        self._stamp = None

    async def poll_async(self) -> ReloadOutcome | None:
        """`poll`, loading in a worker thread within `load_s` seconds (a change seen while a late
        load still runs waits for it)."""
        if self.loading or not self.changed():
            return None
        return await self.reload_async("files changed")

    async def reload_async(self, why: str = "requested") -> ReloadOutcome:
        """`reload`, loading in a worker thread: the event loop keeps running meanwhile, and a
        load taking more than `load_s` seconds is rejected (the running rules stay)."""
        loaded = await self.load_async(why)
        return loaded if isinstance(loaded, ReloadOutcome) else self.swap(why, loaded)

    async def load_async(self, why: str = "requested") -> RuleSet | ReloadOutcome:
        """Load the rules in a worker thread within `load_s` seconds: the new rule set, to `swap`
        in when the caller is ready, or the rejected outcome (already logged and counted)."""
        self._stamp = self._fingerprint()
        if self._loading is not None and not self._loading.done():
            self.retry_later()  # this change is not loaded: the next poll tries it again
            return self._rejected(why, "the previous load of the rules has not finished yet (it passed the "
                                       f"{self.load_s:g} s limit, limits.rule_load_s); try again later")
        loading = asyncio.get_running_loop().run_in_executor(None, self.load)
        self._loading = loading
        try:
            return await asyncio.wait_for(asyncio.shield(loading), self.load_s)
        except TimeoutError:
            loading.add_done_callback(_forget)
            return self._rejected(why, f"loading the rules took more than {self.load_s:g} s "
                                       "(limits.rule_load_s)")
        except IocError as exc:
            return self._rejected(why, str(exc))
        except Exception as exc:  # noqa: BLE001 - a rule file must never take the worker down
            log.exception("loading the rules failed unexpectedly")
            return self._rejected(why, f"loading failed: {type(exc).__name__}: {str(exc)[:500]}")

    def _rejected(self, why: str, error: str) -> ReloadOutcome:
        if self.metrics is not None:
            self.metrics.rules_reload_errors.inc()
        message = f"rule reload ({why}) rejected, the previous {self.running} rules keep running:\n{error}"
        log.error("%s", message)
        return ReloadOutcome(False, message)

    def swap(self, why: str, ruleset: RuleSet) -> ReloadOutcome:
        """Apply a loaded rule set (kept state, resolved alerts of changed rules) and report it."""
        resolved, changed = self.apply(ruleset)
        self.running = len(ruleset)
        if self.metrics is not None:
            self.metrics.rules_running(len(ruleset), ruleset.version, ruleset.reference.rows("reservoir"))
        message = f"rules reloaded ({why}): {len(ruleset)} rules" + (
            f", changed: {', '.join(changed)}" if changed else ", no rule changed"
        )
        log.warning("%s", message)
        return ReloadOutcome(True, message, changed, resolved)


def _forget(future: asyncio.Future[RuleSet]) -> None:
    """A load that ended after its time limit: its result is dropped (an error is logged once)."""
    if not future.cancelled() and future.exception() is not None:
        log.info("a late rule load ended with an error: %s", future.exception())
