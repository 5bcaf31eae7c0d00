"""The rule engine: batches of plain events in, alert transitions out. Pure Python, no Faust.

>>> engine = Engine(ruleset)                                       # doctest: +SKIP
>>> alerts = engine.process("reservoir", [event, event, ...])      # a fetched batch
>>> [a.status for a in alerts]
['firing']

Event time everywhere. Each lane (a raw topic partition by default, `(stream, partition)`;
a re-keyed shard passes one lane for all its streams) has a watermark = largest `ts` seen
minus the allowed lateness; an event older than its lane's watermark is late: counted and
not evaluated. Timers (`for`, window closes, absence) fire when the watermark passes them
(strictly), checked at every event, so results depend neither on how events are batched
nor on the order of events that share a timestamp. State is plain data (`snapshot()` /
`restore()`), alert ids are deterministic.

An engine may also *export* events: for rules that run elsewhere (keyed by another field
than the topic key, see ioc.runtime.plan), each on-time event that may matter to them is
handed back with its key, in `last_exports`, for the runtime to re-key.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ioc.alerts import Alert, fingerprint, make_alert_id
from ioc.engine.episodes import EpisodeRuntime, Lane
from ioc.engine.limits import KeyLimits
from ioc.engine.meaning import meaning, presentation
from ioc.events.schemas import STREAMS
from ioc.refdata import EMPTY_ROW
from ioc.rules.expr import SOFT_ERRORS
from ioc.rules.keys import RefKey
from ioc.rules.kinds.base import Key, RuleKind, State
from ioc.rules.loader import CompiledRule, Layout, Route, RuleSet
from ioc.rules.periods import Periods
from ioc.rules.thresholds import ThresholdGroup

__all__ = ["Engine", "EngineStats", "Export", "KeyLimits", "Lane"]

# The rule id of the engine's own sweep timers (no rule id is empty); they sort before the rules'
# timers of the same deadline.
SWEEP = ""
# How soon (event time) a full rule is swept again to make room, when the engine has no sweep period.
RETRY_FULL_S = 60.0
# The timers of the ends of a rule's periods (`active:`) carry its id after this mark (no rule id
# starts with it): when one is due the rule's episodes resolve and its state goes.
PERIOD_END = "@"

Test = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]


@dataclass(frozen=True, eq=False)
class Export:
    """Events of a stream that rules elsewhere need: keyed by `fields`, kept when any of
    `tests` passes (no tests: every event with a complete key)."""

    target: str
    fields: tuple[str, ...]
    tests: tuple[Test, ...] = ()
    every: bool = True


class EngineStats:
    """Counts of the last `process` call, for metrics (kept out of the per-event loop)."""

    __slots__ = ("events", "late", "evaluations", "errors", "refused", "full")

    def __init__(self) -> None:
        self.events = 0
        self.late = 0
        self.evaluations = 0
        # (rule id, where, error): a rule that raised on one event is skipped for that event
        # only, so one bad rule or odd event never stops the worker. Kept to the first few.
        self.errors: list[tuple[str, str, str]] = []
        # Per rule id, events of new keys not tracked because the rule holds its key limit; and
        # (rule id, limit) of the rules that became full in this call (once per episode of being
        # full, for a log line).
        self.refused: dict[str, int] = {}
        self.full: list[tuple[str, int]] = []

    def error(self, rule_id: str, where: str, exc: Exception) -> None:
        if len(self.errors) < 100:
            self.errors.append((rule_id, where, f"{type(exc).__name__}: {exc}"))


class Engine:
    """Evaluates a RuleSet over event batches, keeping per-rule, per-key state."""

    def __init__(
        self,
        ruleset: RuleSet,
        *,
        lateness_s: float = 0.0,
        clock: Callable[[], float] = time.time,
        evidence_limit: int = 5,
        exports: Mapping[str, Sequence[Export]] | None = None,
        owner: Callable[[Key], bool] | None = None,
        limits: KeyLimits | None = None,
    ) -> None:
        self.ruleset = ruleset
        self.limits = limits if limits is not None else KeyLimits()
        self.lateness = lateness_s
        self.clock = clock
        self.states: dict[str, dict[Key, State]] = {rule.id: {} for rule in ruleset.rules}
        self.watermarks: dict[Lane, float] = {}
        # Rule-wide state (not per key), e.g. which reference keys an absence rule expects.
        self.globals: dict[str, State] = {}
        self.timers: dict[Lane, list[tuple[float, int, str, Key]]] = {}
        self._timer_set: set[tuple[Lane, float, str, Key]] = set()
        self._seq = 0
        self.rt = EpisodeRuntime(self, evidence_limit)
        self.last_stats = EngineStats()
        # Per stream, the events to hand on to rules that run elsewhere (see `Export`).
        self.exports: dict[str, tuple[Export, ...]] = {s: tuple(e) for s, e in (exports or {}).items() if e}
        self.last_exports: list[tuple[Export, Key, dict[str, Any]]] = []
        # Which keys this engine's shard owns (the reference keys an absence rule watches).
        self._owner = owner
        # State bounds (ioc.engine.limits): per rule, its key limit and idle TTL (rules with one);
        # rules whose kind chooses which new keys it tracks.
        self._max_keys: dict[str, int] = {}
        self._ttls: dict[str, float] = {}
        self._watchers: frozenset[str] = frozenset()
        # With no allowed lateness: per rule with an opener (RuleKind.opener), the test a key with
        # no state must pass to be tracked; the sorted threshold groups of each rule in one
        # (ioc.rules.thresholds); and, per group, the keys its rules hold state for (`_held`:
        # added when a state is made, removed when it is forgotten, and checked against `states`
        # when read).
        self._openers: dict[str, Test] = {}
        self._group_of: dict[str, tuple[ThresholdGroup[Route], int, Route]] = {}
        self._held: dict[ThresholdGroup[Route], dict[Key, dict[int, Route]]] = {}
        # Rules with periods (`active:`, ioc.rules.periods); empty for most rule sets.
        self._periods: dict[str, Periods] = {}
        self._configure()
        # Full rules: the event-time watermark before which a full rule is not swept again to make
        # room (saved with the state: refusals must not depend on a restart), and the rules
        # refusing keys now (for one log line per episode of being full).
        self._full_retry: dict[str, float] = {}
        self._full: set[str] = set()
        self._sweeps: dict[Lane, float] = {}   # the pending sweep timer of each lane
        self._swept = 0                        # keys the engine's own sweeps forgot (see `sweep`)

    def _configure(self) -> None:
        limits = self.limits
        rules = self.ruleset.rules
        self._max_keys = {rule.id: limits.max_keys(rule) for rule in rules}
        self._ttls = {rule.id: ttl for rule in rules if (ttl := limits.key_ttl(rule)) > 0}
        self._watchers = frozenset(rule.id for rule in rules if type(rule.kind).watches is not RuleKind.watches)
        self._periods = {rule.id: rule.periods for rule in rules if rule.periods is not None}
        grouped = self.lateness == 0
        self._openers = {rule.id: opener for rule in rules
                         if grouped and len(rule.streams) == 1 and (opener := rule.kind.opener) is not None}
        self._group_of = {route[0].id: (group, position, route) for stream in STREAMS
                          for group in self.ruleset.layout(stream, grouped).groups for position, route in group.items}
        self._hold_all()

    def _hold_all(self) -> None:
        """`_held` from the states (after a restore or a change of rules)."""
        self._held = {group: {} for group, _, _ in self._group_of.values()}
        for rule_id, (group, position, route) in self._group_of.items():
            held = self._held[group]
            for key in self.states.get(rule_id, ()):
                held.setdefault(key, {})[position] = route

    def owns(self, key: Key) -> bool:
        """Whether `key` (of a topic-keyed rule) belongs to this engine's shard."""
        return self._owner is None or self._owner(key)

    # -- the batch entry points -------------------------------------------------------------

    def process(
        self, stream: str, events: Iterable[Mapping[str, Any]], partition: int = 0, *, lane: Lane | None = None,
    ) -> list[Alert]:
        """Evaluate a batch of valid events (in arrival order) of one stream partition (or `lane`)."""
        out: list[Alert] = []
        rt = self.rt
        rt.out = out
        stats = self.last_stats = EngineStats()
        exported = self.last_exports = []
        exports = self.exports.get(stream, ())
        # Rules an event's equalities rule out are not met (the index), nor threshold rules whose
        # number it does not cross, for keys they hold no state for (the groups).
        layout = self.ruleset.layout(stream, self.lateness == 0)
        routes, index, groups = layout.routes, layout.index, layout.groups
        openers = self._openers
        table = self.ruleset.reference.table(stream)
        lookup = table.lookup if table is not None else None
        where_key = lane if lane is not None else (stream, partition)
        watermark = self.watermarks.get(where_key, float("-inf"))
        lateness = self.lateness
        states = self.states
        max_keys = self._max_keys
        ttls = self._ttls
        watchers = self._watchers
        periods = self._periods
        heap = self.timers.get(where_key)
        rt.stream = stream
        for event in events:
            stats.events += 1
            ts = event["ts"]
            if ts < watermark:
                stats.late += 1
                continue
            if ts - lateness > watermark:
                first = watermark == float("-inf")
                watermark = ts - lateness
                self.watermarks[where_key] = watermark
                if first:
                    self._first_watermark(stream, where_key, watermark)
                    heap = self.timers.get(where_key)
                if heap and heap[0][0] < watermark:
                    # Timers fire when the watermark passes them (strictly), before the event
                    # that moved it is evaluated: the state they test held until now. A
                    # deadline equal to an event time is decided by the events at that time,
                    # whatever their order, and fires once the watermark moves past it.
                    rt.event = event
                    self._fire_timers(heap, watermark, where_key)
                    rt.stream = stream
            if not routes and not exports and not groups:
                continue
            ref = lookup(event) if lookup is not None else EMPTY_ROW
            for export in exports:
                if export.every or any(test(event, ref) for test in export.tests):
                    exported_key = tuple([event.get(name) for name in export.fields])
                    if None in exported_key and export.fields.__class__ is RefKey:
                        exported_key = export.fields.read(event, ref)  # type: ignore[attr-defined]
                    if None not in exported_key:
                        exported.append((export, exported_key, event))  # type: ignore[arg-type]
            rt.event = event
            selected: Iterable[Route] = routes if index is None else index.select(event)
            if groups:
                selected = self._with_groups(layout, event, selected)
            for rule, key_fields in selected:
                where = rule.where
                if where is not None:
                    try:  # Expression.test, inlined: it is called for most rules an event meets
                        if not where.fn(event, ref):
                            continue
                    except SOFT_ERRORS:
                        continue
                key = tuple([event.get(name) for name in key_fields])
                if None in key:
                    # A key read through reference data (ioc.rules.keys): only then, so that the
                    # plain keys of other rules are read as fast as ever.
                    if key_fields.__class__ is not RefKey:
                        continue
                    key = key_fields.read(event, ref)  # type: ignore[attr-defined]
                    if None in key:
                        continue
                rule_states = states[rule.id]
                state = rule_states.get(key)
                if state is None:
                    if watchers and rule.id in watchers and not rule.kind.watches(key):
                        continue
                    if openers and rule.id in openers and not self._opens(rule, openers[rule.id], event, ref, stats):
                        continue
                    if len(rule_states) >= max_keys[rule.id]:
                        if not self._make_room(rule, watermark, stats):
                            continue
                        rule_states = states[rule.id]
                    state = rule_states[key] = {}
                    if rule.id in self._group_of:
                        group, position, route = self._group_of[rule.id]
                        self._held[group].setdefault(key, {})[position] = route
                stats.evaluations += 1
                rt.rule = rule
                rt.partition = where_key
                rt.now = ts
                try:
                    rule.kind.on_event(rt, key, state, event, ref, ts)
                except Exception as exc:  # noqa: BLE001 - isolate one rule's failure on one event
                    stats.error(rule.id, str(event.get("id") or event.get("_pos") or ts), exc)
                if not state:
                    # Nothing to remember for this key (e.g. a match rule that did not match):
                    # keep high-cardinality keys such as src_ip from growing the state.
                    del rule_states[key]
                    if rule.id in self._group_of:
                        self._unhold(rule.id, key)
                elif ttls and rule.id in ttls and ts > state.get("_seen", float("-inf")):
                    state["_seen"] = ts  # the key's last event, for its idle TTL
                if periods and rule.id in periods:
                    self._arm_period_end(rule.id, where_key, ts)
            heap = self.timers.get(where_key)
            if heap and heap[0][0] < watermark:
                # A kind may schedule a deadline already passed (e.g. a realert retry).
                rt.event = event
                self._fire_timers(heap, watermark, where_key)
                rt.stream = stream
        rt.event = None
        rt.out = []  # not kept: the caller publishes these (the engine holds no alert past its call)
        return out

    def _opens(self, rule: CompiledRule, opener: Test, event: Mapping[str, Any], ref: Mapping[str, Any],
               stats: EngineStats) -> bool:
        """Whether an event gives a key `rule` holds no state for something to remember."""
        try:
            return opener(event, ref)
        except Exception as exc:  # noqa: BLE001 - as a failure of the rule's own evaluation
            stats.error(rule.id, str(event.get("id") or event.get("_pos") or event.get("ts")), exc)
            return False

    def _unhold(self, rule_id: str, key: Key) -> None:
        """A grouped rule forgot `key`: its group need not meet the key's events for it any more."""
        group, position, _ = self._group_of[rule_id]
        by_key = self._held[group]
        held = by_key.get(key)
        if held is not None:
            held.pop(position, None)
            if not held:
                del by_key[key]

    def _with_groups(self, layout: Layout, event: Mapping[str, Any], selected: Iterable[Route]) -> Iterable[Route]:
        """`selected` (the routes of the other rules) with the grouped threshold rules `event` meets:
        those whose number it crosses, and those holding state for its key; in rule-set order."""
        met: dict[int, Route] = {}
        states = self.states
        for group in layout.groups:
            crossed = group.crossed(event.get(group.field))
            met.update(group.items if crossed is None else crossed)
            by_key = self._held[group]
            key = tuple([event.get(name) for name in group.key_fields])
            held = by_key.get(key)
            if held:
                for position, route in list(held.items()):
                    if key in states[route[0].id]:
                        met[position] = route
                    else:
                        del held[position]  # forgotten since (a sweep, the key limit)
                if not held:
                    del by_key[key]
        if not met:
            return selected
        positions = layout.positions
        for route in selected:
            met[positions[route[0].id]] = route
        return [met[position] for position in sorted(met)]

    def advance(self, stream: str, watermark: float, partition: int = 0, *, lane: Lane | None = None) -> list[Alert]:
        """Move a partition's (or lane's) watermark forward without an event (idle streams, end of replay)."""
        out: list[Alert] = []
        self.rt.out = out
        self.last_stats = EngineStats()
        self.last_exports = []
        where_key = lane if lane is not None else (stream, partition)
        previous = self.watermarks.get(where_key, float("-inf"))
        if watermark <= previous:
            return out
        self.watermarks[where_key] = watermark
        if previous == float("-inf"):
            self._first_watermark(stream, where_key, watermark)
        heap = self.timers.get(where_key)
        if heap and heap[0][0] < watermark:
            self.rt.event = None
            self._fire_timers(heap, watermark, where_key)
        self.rt.out = []
        return out

    def _first_watermark(self, stream: str, lane: Lane, watermark: float) -> None:
        if self.ruleset.starters(stream):
            self._run_starts(stream, lane, watermark)
        every = self.limits.sweep_every_s
        if every is not None and lane not in self._sweeps:
            self._schedule_sweep(lane, (math.floor(watermark / every) + 1) * every)

    def _run_starts(
        self, stream: str, lane: Lane, watermark: float, rules: Iterable[CompiledRule] | None = None
    ) -> None:
        rt = self.rt
        rt.partition = lane
        rt.stream = stream
        for rule in self.ruleset.starters(stream) if rules is None else rules:
            rt.rule = rule
            rt.now = watermark
            rule.kind.on_start(rt, self.globals.setdefault(rule.id, {}), watermark)

    # -- timers -------------------------------------------------------------------------------

    def schedule(self, partition: Lane, deadline: float, rule_id: str, key: Key) -> None:
        marker = (partition, deadline, rule_id, key)
        if marker in self._timer_set:
            return
        self._timer_set.add(marker)
        self._seq += 1
        heapq.heappush(self.timers.setdefault(partition, []), (deadline, self._seq, rule_id, key))
        if rule_id in self._ttls:
            # A key with a timer still to fire is not idle, whatever its last event (see `_idle`).
            state = self.states[rule_id].get(key)
            if state is not None and deadline > state.get("_due", float("-inf")):
                state["_due"] = deadline

    def _schedule_sweep(self, lane: Lane, at: float) -> None:
        marker = (lane, at, SWEEP, ())
        if marker in self._timer_set:
            return
        self._timer_set.add(marker)
        self._sweeps[lane] = at
        heapq.heappush(self.timers.setdefault(lane, []), (at, -1, SWEEP, ()))

    def _fire_timers(
        self, heap: list[tuple[float, int, str, Key]], watermark: float, partition: Lane,
    ) -> None:
        rt = self.rt
        rt.partition = partition
        rt.stream = partition[0]
        while heap and heap[0][0] < watermark:
            deadline, _, rule_id, key = heapq.heappop(heap)
            self._timer_set.discard((partition, deadline, rule_id, key))
            if rule_id == SWEEP:
                self._sweep_due(heap, deadline, watermark, partition)
                continue
            rule = self.ruleset.by_id.get(rule_id)
            if rule is None:
                if rule_id[:1] == PERIOD_END:
                    self._period_end(rule_id[1:], deadline)
                    rt.partition = partition
                    rt.stream = partition[0]
                continue
            state = self.states.get(rule_id, {}).get(key)
            if state is None:
                continue
            periods = self._periods
            if periods and rule_id in periods:
                if not periods[rule_id].inside(deadline):
                    continue  # outside the rule's periods its timers do nothing (its state is gone)
                self._arm_period_end(rule_id, partition, deadline)
            rt.rule = rule
            rt.now = deadline
            try:
                rule.kind.on_timer(rt, key, state, deadline)
            except Exception as exc:  # noqa: BLE001 - isolate one rule's failure on one timer
                self.last_stats.error(rule.id, f"timer {deadline}", exc)

    def _arm_period_end(self, rule_id: str, lane: Lane, ts: float) -> None:
        """A rule with periods holds state from `ts`: its period's end must come (once per lane)."""
        end = self._periods[rule_id].end_of(ts)
        if end is not None:
            self.schedule(lane, end, PERIOD_END + rule_id, ())

    def _period_end(self, rule_id: str, end: float) -> None:
        """A period of the rule ended (the watermark passed it): its firing alerts resolve at `end`
        and its state goes, so that the next period starts afresh (ioc.rules.periods)."""
        rule = self.ruleset.by_id.get(rule_id)
        periods = self._periods.get(rule_id)
        if rule is None or periods is None or not any(span_end == end for _, span_end in periods.spans):
            return  # armed for periods a reload has since changed: not an end of the rule's periods now
        rt = self.rt
        rt.rule = rule
        rt.now = end
        states = self.states.get(rule_id, {})
        for key, state in states.items():
            if state.get("firing"):
                rt.resolve(key, state, ends_at=end)
        if rule_id in self._group_of:
            for key in states:
                self._unhold(rule_id, key)
        self.states[rule_id] = {}

    # -- rules and state ----------------------------------------------------------------------

    def sweep(self) -> int:
        """Drop the state of every key with nothing left to remember (see `RuleKind.expired`, and
        the idle TTL of ioc.engine.limits); returns how many. Results do not change: only state no
        later event or timer can read goes (and idle keys, by the TTL's own terms), judged against
        the lowest watermark of the engine's lanes (exact when each key lives in one lane, as in a
        shard; a lane that has no watermark yet is not counted).

        An engine with a sweep period (`limits.sweep_every_s`, as in every shard) sweeps itself at
        event-time moments; then this drops nothing and returns how many keys those sweeps forgot
        since the last call: a sweep at a wall-clock moment would make which new keys a full rule
        refuses depend on it (live would differ from the backtest)."""
        if self.limits.sweep_every_s is not None:
            dropped, self._swept = self._swept, 0
            return dropped
        if not self.watermarks:
            return 0
        return self._sweep_all(min(self.watermarks.values()))

    def _sweep_all(self, at: float) -> int:
        dropped = sum(self._forget(rule, at) for rule in self.ruleset.rules)
        if dropped:
            self._timer_set = set(self._timer_set)
        return dropped

    def _forget(self, rule: CompiledRule, at: float) -> int:
        """Drop the keys of `rule` with nothing left to remember at watermark `at`, and its idle
        keys (TTL); a rule that was refusing keys and is no longer full is full no more."""
        states = self.states.get(rule.id)
        if not states:
            return 0
        kind = rule.kind
        realert = rule.spec.realert
        ttl = self._ttls.get(rule.id, 0.0)
        gone = [key for key, state in states.items()
                if _episode_over(state, realert, at) and (kind.expired(state, at) or (ttl and _idle(state, ttl, at)))]
        for key in gone:
            del states[key]
        if gone and rule.id in self._group_of:
            for key in gone:
                self._unhold(rule.id, key)
        if len(gone) > len(states):
            # CPython never shrinks a dict's table: copy it, so that the memory comes back.
            self.states[rule.id] = dict(states)
        if rule.id in self._full and len(states) < self._max_keys.get(rule.id, 0):
            self._full.discard(rule.id)
        return len(gone)

    def _sweep_due(self, heap: list[tuple[float, int, str, Key]], deadline: float, watermark: float,
                   lane: Lane) -> None:
        """The engine's sweep timer of `lane` is due: sweep, and schedule the next one.

        Sweeps are at multiples of the sweep period, each after the timers due before it. When the
        watermark jumps several periods with no timer between (an idle partition, the end of a
        backtest), one sweep at the last of them does what a sweep at each would (nothing changes
        the state between them, and what is forgettable at one moment still is later), so a
        watermark that moves in one step forgets what one that moves in many would."""
        every = self.limits.sweep_every_s
        if every is None:
            self._sweeps.pop(lane, None)
            return
        upto = heap[0][0] if heap else watermark
        at = deadline
        last = math.floor(min(upto, watermark) / every) * every
        while last >= watermark or last > upto:
            last -= every  # float rounding: the sweep must be before the watermark and the next timer
        at = max(at, last)
        marks = self.watermarks.values()
        self._swept += self._sweep_all(min(at, *marks) if marks else at)
        self._schedule_sweep(lane, (math.floor(at / every) + 1) * every)

    def _make_room(self, rule: CompiledRule, watermark: float, stats: EngineStats) -> bool:
        """A new key for `rule`, which holds its key limit: forget what it can (at most once per
        sweep period of event time while it stays full), and say whether the key fits now;
        otherwise count it refused."""
        rule_id = rule.id
        limit = self._max_keys[rule_id]
        retry = self._full_retry.get(rule_id)
        if retry is None or watermark >= retry:
            self._full_retry[rule_id] = watermark + (self.limits.sweep_every_s or RETRY_FULL_S)
            if self._forget(rule, min(self.watermarks.values())):
                self._timer_set = set(self._timer_set)
            if len(self.states[rule_id]) < limit:
                return True
        stats.refused[rule_id] = stats.refused.get(rule_id, 0) + 1
        if rule_id not in self._full:
            self._full.add(rule_id)
            stats.full.append((rule_id, limit))
        return False

    def fingerprint_of(self, rule: CompiledRule, key: Key, state: State) -> str:
        fp = state.get("_fp")
        if fp is None:
            fp = state["_fp"] = fingerprint(rule.id, dict(zip(rule.key_names, key, strict=True)))
        return fp

    def firing(self) -> list[Alert]:
        """Alerts firing now (as their last firing records)."""
        result = []
        for rule in self.ruleset.rules:
            for key, state in self.states[rule.id].items():
                if state.get("firing"):
                    result.append(self.rt.alert_of(rule, key, state, "firing", None))
        return result

    def swap_rules(self, ruleset: RuleSet) -> tuple[list[Alert], list[str]]:
        """Replace the rule set at once, keeping the state of every rule whose meaning is unchanged.

        Meaning (ioc.engine.meaning) is the rule without its presentation: same kind, key,
        condition, windows, `realert` and reference rows. A rule that changed only its summary,
        severity, labels or SLA keeps its state and the ids of its firing alerts; the texts of its
        firing alerts are rendered again with the new templates, and its next record (a resolve,
        an escalation) shows the new presentation. Alerts firing under a rule that was removed or
        whose meaning changed are resolved (ends_at = the latest watermark of its stream): the new
        rule starts from a clean state. Returns those resolved alerts and the ids of the rules that
        were added, changed in meaning or removed.
        """
        old = self.ruleset
        kept: dict[str, dict[Key, State]] = {}
        changed: list[str] = []
        for rule in ruleset.rules:
            previous = old.by_id.get(rule.id)
            if previous is not None and meaning(previous) == meaning(rule):
                kept[rule.id] = self.states.get(rule.id, {})
                if presentation(previous) != presentation(rule):
                    self._render_again(rule, kept[rule.id])
            else:
                kept[rule.id] = {}
                changed.append(rule.id)
        out: list[Alert] = []
        self.rt.out = out
        self.rt.event = None
        for rule in old.rules:
            if rule.id in kept and rule.id not in changed:
                continue
            if rule.id not in ruleset.by_id:
                changed.append(rule.id)
            marks = [w for (s, _), w in self.watermarks.items() if s in rule.streams] or list(self.watermarks.values())
            ends_at = max(marks) if marks else self.clock()
            self.rt.rule = rule
            self.rt.now = ends_at
            for key, state in self.states.get(rule.id, {}).items():
                if state.get("firing"):
                    self.rt.resolve(key, state, ends_at=max(ends_at, state.get("_starts_at", ends_at)))
        self.globals = {rid: g for rid, g in self.globals.items() if rid in kept and rid not in changed}
        self._full_retry = {rid: at for rid, at in self._full_retry.items() if rid in kept and rid not in changed}
        self._full &= set(kept) - set(changed)
        self.ruleset = ruleset
        self.states = kept
        timed = set(self._ttls)
        self._configure()
        self._arm_ttls(set(self._ttls) - timed)
        # New or changed rules with an on_start hook start on every partition already running.
        for lane, watermark in sorted(self.watermarks.items()):
            starters = [r for r in ruleset.starters(lane[0]) if r.id in changed]
            if starters:
                self._run_starts(lane[0], lane, watermark, starters)
        self.rt.out = []
        return out, sorted(changed)

    def _render_again(self, rule: CompiledRule, states: Mapping[Key, State]) -> None:
        """The summary and description of `rule`'s firing alerts, with its (new) templates."""
        for state in states.values():
            if state.get("firing"):
                self.rt.render_again(rule, state)

    def snapshot(self) -> dict[str, Any]:
        """All state as plain data (lists and dicts) that `restore` takes back."""
        return {
            # A rule whose meaning changed since starts afresh after a restore; one whose
            # presentation changed keeps its state, its firing alerts' texts rendered again.
            "meanings": {rule.id: meaning(rule) for rule in self.ruleset.rules},
            "presentations": {rule.id: presentation(rule) for rule in self.ruleset.rules},
            "watermarks": [[s, p, w] for (s, p), w in self.watermarks.items()],
            "globals": self.globals,
            "states": {rid: [[list(k), v] for k, v in st.items()] for rid, st in self.states.items()},
            # Sorted, so that timers with equal deadlines fire in the same order after restore.
            "timers": [[s, p, d, rid, list(k)] for (s, p), h in self.timers.items() for d, _, rid, k in sorted(h)],
            "full_retry": self._full_retry,
            # Rules whose keys carry their last-event times (`_seen`, for the idle TTL).
            "ttl_rules": sorted(self._ttls),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Take back a `snapshot()`; state of rules that are gone or changed in meaning since is
        left out (a snapshot of before meanings were saved: compared by `CompiledRule.version`)."""
        meanings = data.get("meanings")
        versions = data.get("versions")
        if meanings is not None:
            same = {rule.id for rule in self.ruleset.rules if meanings.get(rule.id) == meaning(rule)}
        else:
            same = {rule.id for rule in self.ruleset.rules
                    if versions is None or versions.get(rule.id) == rule.version}
        self.watermarks = {(s, p): w for s, p, w in data["watermarks"]}
        self.globals = {rid: dict(g) for rid, g in data.get("globals", {}).items() if rid in same}
        for rule_id in self.states:
            self.states[rule_id] = {}
        for rule_id, entries in data["states"].items():
            if rule_id in same:
                self.states[rule_id] = {tuple(k): dict(v) for k, v in entries}
        presentations = data.get("presentations") or {}
        for rule in self.ruleset.rules:
            if rule.id in same and presentations.get(rule.id, presentation(rule)) != presentation(rule):
                self._render_again(rule, self.states[rule.id])
        self._full_retry = {rid: at for rid, at in (data.get("full_retry") or {}).items() if rid in same}
        self._full.clear()
        self.timers.clear()
        self._timer_set.clear()
        self._sweeps.clear()
        every = self.limits.sweep_every_s
        for s, p, deadline, rule_id, key in data["timers"]:
            if rule_id == SWEEP:
                if every is not None:
                    self._schedule_sweep((s, p), deadline)
            elif rule_id in same or (rule_id[:1] == PERIOD_END and rule_id[1:] in same):
                self.schedule((s, p), deadline, rule_id, tuple(key))
        if every is not None:
            for lane, watermark in self.watermarks.items():
                if lane not in self._sweeps:  # a snapshot of an engine that did not sweep itself
                    self._schedule_sweep(lane, (math.floor(watermark / every) + 1) * every)
        self._arm_ttls(set(self._ttls) - set(data.get("ttl_rules") or ()))
        self._hold_all()

    def _arm_ttls(self, rule_ids: set[str]) -> None:
        """Rules that have an idle TTL now and did not when their state was kept (a reload or a
        restart that added one): their keys' last-event times were not kept up, so their idle
        time counts from the latest watermark; and a pending timer keeps its key (`_due`)."""
        if not rule_ids:
            return
        now = max(self.watermarks.values(), default=float("-inf"))
        for rule_id in rule_ids:
            for state in self.states.get(rule_id, {}).values():
                state["_seen"] = now
        for heap in self.timers.values():
            for deadline, _, rule_id, key in heap:
                pending = self.states[rule_id].get(key) if rule_id in rule_ids else None
                if pending is not None and deadline > pending.get("_due", float("-inf")):
                    pending["_due"] = deadline

    def make_alert_id(self, fp: str, starts_at: float) -> str:
        return make_alert_id(fp, starts_at)


def _episode_over(state: State, realert: float, watermark: float) -> bool:
    """Nothing of the episode runtime's part of a key's state matters any more: not firing, and
    any `realert` interval after its last episode passed."""
    if state.get("firing"):
        return False
    started = state.get("_last_starts_at")
    if started is not None and started >= watermark:
        return False  # a later episode's start is adjusted by this one's (see EpisodeRuntime.fire)
    resolved = state.get("_resolved_at")
    return resolved is None or resolved + realert <= watermark


def _idle(state: State, ttl: float, at: float) -> bool:
    """A key idle past its TTL at watermark `at`: its last event `ttl` old or older, and no timer
    of it still to fire (a timer at `at` fires after a sweep at `at`)."""
    return bool(state.get("_seen", float("-inf")) + ttl <= at and state.get("_due", float("-inf")) < at)
