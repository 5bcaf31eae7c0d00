"""Bounds on a rule's state: how many keys it may hold, how long an idle key is kept, and how
often the engine forgets what no event or timer can read any more.

>>> limits = KeyLimits(keys_per_rule=100_000, key_idle_s=0.0, sweep_every_s=60.0)
>>> limits.max_keys(rule), limits.key_ttl(rule)                       # doctest: +SKIP
(100000, 0.0)

Every decision these bounds take is a function of the events of one shard, in their order,
never of the wall clock, so that the backtest, one worker, several and a worker restored from a
checkpoint refuse the same keys and forget the same ones:

* A rule holds at most `max_keys` keys in one engine (a shard; the rule's `max_keys`, else
  `keys_per_rule`). A new key of a full rule is not tracked: its event is not evaluated by that
  rule, and counted as refused. Before refusing, the engine forgets the rule's keys with nothing
  left to remember (at most once per `sweep_every_s` of event time while it stays full), so the
  count is of keys that matter, whatever was swept before.
* The engine sweeps itself at every multiple of `sweep_every_s` of event time (in the timer
  order: after the timers due before it), so memory follows the active keys without a sweep at
  wall-clock moments (which would make a full rule's refusals depend on when it ran). None:
  no sweeps of its own (a plain engine: its owner calls `Engine.sweep`).
* A key whose last event is `key_ttl` (the rule's `key_ttl`, else `key_idle_s`; 0: off) older
  than the sweep's time is forgotten too, unless it is firing, inside its `realert` interval, or
  has a timer still to fire (a pending `for`, a window to close): an idle key starts afresh
  when it comes back, but no episode is cut short. Kinds whose silence is the signal (absence)
  are never forgotten so.
"""

from __future__ import annotations

from dataclasses import dataclass

from ioc.rules.loader import CompiledRule

__all__ = ["KeyLimits", "UNLIMITED"]


@dataclass(frozen=True)
class KeyLimits:
    """The state bounds of one engine (see the module docstring)."""

    keys_per_rule: int = 100_000
    key_idle_s: float = 0.0
    sweep_every_s: float | None = None

    def max_keys(self, rule: CompiledRule) -> int:
        """Keys `rule` may hold in one engine."""
        own = rule.spec.max_keys
        return own if own is not None else self.keys_per_rule

    def key_ttl(self, rule: CompiledRule) -> float:
        """Seconds of event time after which an idle key of `rule` is forgotten (0: never)."""
        if not type(rule.kind).IDLE_TTL:
            return 0.0
        own = rule.spec.key_ttl
        return own if own is not None else self.key_idle_s


UNLIMITED = KeyLimits(keys_per_rule=2**62)
