"""Live rule reload: on a file change (polled) or on request (SIGHUP), swap the rule set
atomically; a broken change is rejected with the same error text as `ioc rules check`,
and the running rules keep working.

>>> reloader = RuleReloader(load, host.apply_rules, metrics, watch)     # doctest: +SKIP
>>> outcome = reloader.poll()          # None when nothing changed on disk
"""

from __future__ import annotations

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
    ) -> None:
        self.load = load
        self.apply = apply
        self.running = running
        self.metrics = metrics
        self.watch = watch
        self._stamp = self._fingerprint()

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
        stamp = self._fingerprint()
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        return self.reload("files changed")

    def reload(self, why: str = "requested") -> ReloadOutcome:
        """Load the rules now; swap on success, keep the running set on any error."""
        self._stamp = self._fingerprint()
        try:
            ruleset = self.load()
        except IocError as exc:
            if self.metrics is not None:
                self.metrics.rules_reload_errors.inc()
            message = f"rule reload ({why}) rejected, the previous {self.running} rules keep running:\n{exc}"
            log.error("%s", message)
            return ReloadOutcome(False, message)
        resolved, changed = self.apply(ruleset)
        self.running = len(ruleset)
        if self.metrics is not None:
            self.metrics.rules_loaded.set(len(ruleset))
        message = f"rules reloaded ({why}): {len(ruleset)} rules" + (
            f", changed: {', '.join(changed)}" if changed else ", no rule changed"
        )
        log.warning("%s", message)
        return ReloadOutcome(True, message, changed, resolved)
