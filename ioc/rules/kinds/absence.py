"""`absence`: no event of a key within `timeout` (VMS signal lost, camera offline).

Per key, in event time:

* `last_seen` is the `ts` of the key's latest event that passed the rule's `where`;
* it **fires** when the watermark of the key's stream partition passes (strictly)
  `last_seen + timeout` with no newer event of the key, so an event exactly at that time is
  still in time; `starts_at = last_seen + timeout`; `value` = the seconds the key had been
  silent when it was detected (the watermark's deadline minus `last_seen`: `timeout`, or more
  when a `realert` interval held the alert back), `details.last_seen` = `last_seen` as RFC 3339;
* it **resolves** at the key's next event (`ends_at` = that event's `ts`); the next silence
  is a new episode (subject to `realert`, which delays it but keeps its `starts_at`).

Which keys are watched (`expect`):

* `reference` (the default when the stream's reference data is joined on the rule's key):
  only the keys listed in the stream's reference data (`config/reference/<stream>.yaml`,
  joined on `source_id`, so `key` must be `[source_id]`). A listed key whose reference row
  passes `where` counts from the stream's first watermark (it fires at that watermark +
  `timeout` if it never sends); the others from their first event that passes `where`. Events
  of keys that are not listed are ignored: an unknown sender never raises its own alert.
* `seen` (the default for other streams and keys): keys that have sent at least one event
  (bounded by the rule's key limit, `max_keys` / limits.keys_per_rule);
* `reference+seen`: both, the listed keys from the start and any other key from its first event.

Templates may use `last_seen` (RFC 3339), `silent_for` (e.g. `2h`: the silence when it was
detected), `value` (the same silence in seconds), key and reference fields, and event fields
(taken from the key's latest event).

>>> # rules/vessel.yaml
>>> # - id: vessel.vms.late
>>> #   stream: vessel
>>> #   kind: absence
>>> #   timeout: 2h
>>> #   expect: reference+seen
>>> #   summary: "Tàu {source_id}: không có vị trí VMS từ {last_seen} ({silent_for})"

State per key is a few numbers: `last` (last_seen), `due` (the deadline of the key's one live
timer; any other timer of the key is stale), `expected` (listed but never seen), `ended`
(when the last episode resolved, for `realert` retries). One timer per key at a time: an event
only moves `last`; the live timer, when due, re-arms itself at `last + timeout` if the key
was heard from meanwhile. So the per-event cost is a few dict stores, not a heap push.

A key's state is never forgotten (`expired` is always false, and `key_ttl` does not apply):
every key is watched, and its state is what says it is (a key forgotten while silent would never
be reported silent: its silence is the signal). What bounds an absence rule's state is which keys
it watches: the reference list, or the key limit for seen keys.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from ioc.refdata import EMPTY_ROW
from ioc.rules.kinds.base import BuildContext, Key, KindProblem, Problems, RuleKind, Runtime, State
from ioc.rules.model import Duration, RuleSpec
from ioc.timeutil import format_duration, format_ts

__all__ = ["AbsenceSpec", "AbsenceRule"]

TEMPLATE_NAMES = frozenset({"value", "last_seen", "silent_for"})
_FORMATTER = string.Formatter()


Expect = Literal["reference", "seen", "reference+seen"]


class AbsenceSpec(RuleSpec):
    """Fields of an `absence` rule: `timeout` (required) and `expect` (`reference` | `seen` |
    `reference+seen`; left out: `reference` where the stream's reference data lists the keys,
    else `seen`)."""

    kind: Literal["absence"] = "absence"
    timeout: Duration
    expect: Expect | None = None


class AbsenceRule(RuleKind):
    """Evaluator of an `absence` rule (see the module docstring for the exact semantics)."""

    Spec = AbsenceSpec
    TEMPLATE_NAMES = TEMPLATE_NAMES
    IDLE_TTL: ClassVar[bool] = False  # a silent key is the point: see the module docstring

    def __init__(self, spec: AbsenceSpec, ctx: BuildContext) -> None:  # type: ignore[override]
        super().__init__(spec, ctx)
        found = Problems()
        with found:
            if spec.timeout <= 0:
                raise KindProblem("timeout", f"'{format_duration(spec.timeout)}' must be more than 0 (e.g. 10m, 2h)")
        with found:
            if spec.value is not None:
                raise KindProblem(
                    "value", f"{spec.value!r} is not allowed: an absence has no event to compute it from "
                    "(its value is the seconds silent)",
                )
        self.timeout = spec.timeout
        self.realert = spec.realert
        table = ctx.reference.table(ctx.stream)
        self._lookup = table.lookup if table is not None else None
        self._ref_keys: tuple[Key, ...] = ()
        self._listed: frozenset[Key] | None = None  # None: any key that sends is watched
        join = table.key if table is not None else "source_id"
        keys = ctx.ref_keys()
        self.expect: Expect = spec.expect or ("reference" if keys and list(spec.key) == [join] else "seen")
        with found:
            if self.expect != "seen" and not keys:
                raise KindProblem(
                    "expect", f"'{self.expect}' needs reference data listing the {ctx.stream}s to expect, "
                    f"and config/reference/{ctx.stream}.yaml has none (use expect: seen)",
                )
            if self.expect != "seen" and list(spec.key) != [join]:
                raise KindProblem(
                    "expect", f"'{self.expect}' needs key [{join}] (reference data is joined on {join}), "
                    f"not [{', '.join(spec.key)}] (use expect: seen for other keys)",
                )
        found.raise_any()
        if self.expect != "seen":
            # `where` also chooses which listed keys are expected: it is tested on each key's
            # reference row (event fields read as missing), e.g. `vms_required == True`.
            where = ctx.expression("where", spec.where) if spec.where else None
            rows = table.rows if table is not None else {}
            self._ref_keys = tuple(
                (name,) for name in keys if where is None or where.test({join: name}, rows.get(name, {}))
            )
            if self.expect == "reference":
                self._listed = frozenset((name,) for name in keys)
        # Event fields the templates show: kept from the key's latest event for the alert.
        key_names = set(spec.key)
        self._carry = tuple(sorted(
            (_template_names(spec.summary) | _template_names(spec.description)) & ctx.fields
            - key_names - {"ts", "id"}
        ))

    @property
    def template_names(self) -> frozenset[str]:
        return TEMPLATE_NAMES

    def watches(self, key: Key) -> bool:
        # `expect: reference`: a key that is not listed is never tracked, so an unknown sender
        # neither raises its own alert nor takes a place under the key limit.
        return self._listed is None or key in self._listed

    def on_start(self, rt: Runtime, state: State, watermark: float) -> None:
        if not self._ref_keys or "started" in state:
            return
        # Each shard watches the listed keys it owns (the raw topic's partition of the key), from
        # its first watermark; an engine without shards watches all of them.
        state["started"] = watermark
        due = watermark + self.timeout
        for key in self._ref_keys:
            if not rt.owns(key):
                continue
            key_state = rt.state(key)
            if "last" in key_state:
                continue
            key_state.update(last=watermark, due=due, expected=True)
            rt.schedule(due, key)

    def on_event(
        self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any], ts: float
    ) -> None:
        if self._listed is not None and key not in self._listed:
            return  # not watched (an engine that does not ask `watches` first)
        last = state.get("last")
        if last is not None and ts < last and not state.get("expected"):
            return  # out of order within lateness: an older sign of life changes nothing
        state["last"] = ts
        state["last_id"] = event.get("id") or event.get("_pos")
        if self._carry:
            kept = state.get("fields")
            if kept is None:
                kept = state["fields"] = {}
            for name in self._carry:
                kept[name] = event.get(name)
        if last is not None and not state.get("expected") and not state.get("firing"):
            return  # the hot path: the live timer re-arms itself when due
        if state.get("firing"):
            # ends_at is never before starts_at, even if the key was expected in another partition.
            ended = max(ts, state.get("since", ts))
            rt.resolve(key, state, ends_at=ended)
            state["ended"] = ended
            state.pop("since", None)
        state.pop("expected", None)
        due = state["due"] = ts + self.timeout
        rt.schedule(due, key)

    def expired(self, state: State, watermark: float) -> bool:
        # Never: a watched key stays watched. Its silence is the signal, and a forgotten key
        # (seen, or expected from reference data) would never fire when it goes silent.
        return False

    def on_timer(self, rt: Runtime, key: Key, state: State, deadline: float) -> None:
        if deadline != state.get("due") or state.get("firing"):
            return  # stale: the key has a newer live timer (or is already firing)
        last = state["last"]
        silent_at = last + self.timeout
        if silent_at > deadline:
            state["due"] = silent_at
            rt.schedule(silent_at, key)
            return
        event = self._last_event(key, state, deadline)
        ref = self._lookup(event) if self._lookup is not None else EMPTY_ROW
        # The measured quantity is the silence when it was detected, in seconds.
        rt.fire(key, state, starts_at=silent_at, value=deadline - last, event=event, ref=ref,
                details={"last_seen": event["last_seen"]})
        if state.get("firing"):
            state["due"] = None
            state["since"] = silent_at
            return
        # Suppressed by `realert`: try again when the interval is over (the runtime's retry time).
        ended = state.get("ended")
        retry = state["due"] = None if ended is None else ended + self.realert
        if retry is not None:
            rt.schedule(retry, key)

    def _last_event(self, key: Key, state: State, deadline: float) -> dict[str, Any]:
        """What the alert renders: the key's latest event as kept, plus last_seen/silent_for."""
        last = state["last"]
        event: dict[str, Any] = dict(state.get("fields") or {})
        event.update(zip(self.spec.key, key, strict=True))
        event.update(ts=last, id=state.get("last_id"), last_seen=format_ts(last),
                     silent_for=format_duration(deadline - last))
        return event


def _template_names(text: str) -> set[str]:
    try:
        return {name for _, name, _, _ in _FORMATTER.parse(text) if name}
    except ValueError:
        return set()  # the loader reports the template itself


KIND = AbsenceRule
