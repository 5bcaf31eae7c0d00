"""Replay one rule as the backtest does and record what it saw for one key.

The rule's kind is wrapped for the replay (its `on_event` and `on_timer`, on the instance, and
only for the key of the alert's fingerprint): each call is kept as a `Step` with the event (or
timer deadline), the reference row, the key's state before and after, and the alert transitions
it made. Everything else runs unchanged (ioc.analysis.backtest.replay_prepared with
`only={rule_id}`, ioc.runtime.plan), so the replay gives the backtest's alert ids.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ioc.alerts import Alert, fingerprint
from ioc.analysis.backtest import PreparedEvents, replay_prepared
from ioc.engine import KeyLimits
from ioc.rules.kinds.base import Key, Runtime, State
from ioc.rules.loader import CompiledRule, RuleSet
from ioc.runtime.shards import SHARD_LIMITS

__all__ = ["Step", "Trace", "trace_rule", "WHERE"]

# Where an event came from, set on each event for the replay only (a file's line, or
# topic/partition@offset): events that have an `id` carry no `_pos`.
WHERE = "_at"


@dataclass
class Step:
    """One call of the rule's kind for the key: an event (`event` set) or a timer at `at`."""

    what: str                         # "event" | "timer"
    at: float
    stream: str
    event: dict[str, Any] | None
    ref: dict[str, Any]
    before: State
    after: State
    alerts: list[Alert] = field(default_factory=list)

    def fired(self, alert_id: str) -> bool:
        return any(a.alert_id == alert_id and a.status == "firing" for a in self.alerts)

    def resolved(self, alert_id: str) -> bool:
        return any(a.alert_id == alert_id and a.status == "resolved" for a in self.alerts)


@dataclass
class Trace:
    """What the rule saw for one key, and every alert of the replay."""

    rule: CompiledRule
    key: Key | None
    steps: list[Step]
    alerts: list[Alert]

    def ids(self, fp: str) -> list[str]:
        """The alert ids of fingerprint `fp` the replay gave, in order, once each."""
        return list(dict.fromkeys(a.alert_id for a in self.alerts if a.fingerprint == fp))


@contextmanager
def _tracing(rule: CompiledRule, fp: str, steps: list[Step], keys: list[Key]) -> Iterator[None]:
    kind = rule.kind
    on_event, on_timer = kind.on_event, kind.on_timer
    mine: dict[Key, bool] = {}

    names = rule.key_names

    def ours(key: Key) -> bool:
        found = mine.get(key)
        if found is None:
            same = len(key) == len(names)
            found = mine[key] = same and fingerprint(rule.id, dict(zip(names, key, strict=True))) == fp
            if found and key not in keys:
                keys.append(key)
        return found

    def traced_event(rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any],
                     ts: float) -> None:
        if len(key) < len(names):
            # A kind whose alert key is longer than the key it keeps state by (near_duplicate's
            # story, proximity's pair): every event of a shorter key may lead to the alert. Kept
            # without the state (it holds many keys' data), with the transitions it made.
            out = _out(rt)
            start = len(out)
            on_event(rt, key, state, event, ref, ts)
            steps.append(Step("event", ts, rt.stream, dict(event), dict(ref), {}, {},
                              [a for a in out[start:] if a.fingerprint == fp]))
            return
        if not ours(key):
            on_event(rt, key, state, event, ref, ts)
            return
        before, out = copy.deepcopy(state), _out(rt)
        start = len(out)
        on_event(rt, key, state, event, ref, ts)
        steps.append(Step("event", ts, rt.stream, dict(event), dict(ref), before, copy.deepcopy(state),
                          list(out[start:])))

    def traced_timer(rt: Runtime, key: Key, state: State, deadline: float) -> None:
        if not ours(key):
            on_timer(rt, key, state, deadline)
            return
        before, out = copy.deepcopy(state), _out(rt)
        start = len(out)
        on_timer(rt, key, state, deadline)
        steps.append(Step("timer", deadline, rt.stream, None, {}, before, copy.deepcopy(state), list(out[start:])))

    kind.on_event = traced_event  # type: ignore[method-assign]
    kind.on_timer = traced_timer  # type: ignore[method-assign]
    try:
        yield
    finally:
        del kind.on_event
        del kind.on_timer


def _out(rt: Runtime) -> list[Alert]:
    out = getattr(rt, "out", None)
    return out if isinstance(out, list) else []


def trace_rule(
    ruleset: RuleSet, rule_id: str, fp: str, prepared: PreparedEvents, *, partitions: int = 1,
    lateness_s: float = 0.0, until: float | None = None, limits: KeyLimits = SHARD_LIMITS,
) -> Trace:
    """Replay `prepared` through rule `rule_id` where the whole rule set runs it, tracing the key
    whose fingerprint is `fp`."""
    rule = ruleset.by_id[rule_id]
    steps: list[Step] = []
    keys: list[Key] = []
    with _tracing(rule, fp, steps, keys):
        result = replay_prepared(ruleset, prepared, lateness_s=lateness_s, until=until, partitions=partitions,
                                 limits=limits, only=frozenset({rule_id}))
    return Trace(rule, keys[0] if keys else None, steps, result.alerts)
