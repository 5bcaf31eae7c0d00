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
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ioc.alerts import Alert, fingerprint, make_alert_id
from ioc.engine.episodes import EpisodeRuntime, Lane
from ioc.refdata import EMPTY_ROW
from ioc.rules.kinds.base import Key, State
from ioc.rules.loader import CompiledRule, RuleSet

__all__ = ["Engine", "EngineStats", "Export", "Lane"]

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

    __slots__ = ("events", "late", "evaluations", "errors")

    def __init__(self) -> None:
        self.events = 0
        self.late = 0
        self.evaluations = 0
        # (rule id, where, error): a rule that raised on one event is skipped for that event
        # only, so one bad rule or odd event never stops the worker. Kept to the first few.
        self.errors: list[tuple[str, str, str]] = []

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
    ) -> None:
        self.ruleset = ruleset
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
        routes = self.ruleset.routes(stream)
        table = self.ruleset.reference.table(stream)
        lookup = table.lookup if table is not None else None
        where_key = lane if lane is not None else (stream, partition)
        watermark = self.watermarks.get(where_key, float("-inf"))
        lateness = self.lateness
        states = self.states
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
                if first and self.ruleset.starters(stream):
                    self._run_starts(stream, where_key, watermark)
                    heap = self.timers.get(where_key)
                if heap and heap[0][0] < watermark:
                    # Timers fire when the watermark passes them (strictly), before the event
                    # that moved it is evaluated: the state they test held until now. A
                    # deadline equal to an event time is decided by the events at that time,
                    # whatever their order, and fires once the watermark moves past it.
                    rt.event = event
                    self._fire_timers(heap, watermark, where_key)
                    rt.stream = stream
            if not routes and not exports:
                continue
            ref = lookup(event) if lookup is not None else EMPTY_ROW
            for export in exports:
                if export.every or any(test(event, ref) for test in export.tests):
                    exported_key = tuple([event.get(name) for name in export.fields])
                    if None not in exported_key:
                        exported.append((export, exported_key, event))  # type: ignore[arg-type]
            rt.event = event
            for rule, key_fields in routes:
                where = rule.where
                if where is not None and not where.test(event, ref):
                    continue
                key = tuple([event.get(name) for name in key_fields])
                if None in key:
                    continue
                stats.evaluations += 1
                rule_states = states[rule.id]
                state = rule_states.get(key)
                if state is None:
                    state = rule_states[key] = {}
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
            heap = self.timers.get(where_key)
            if heap and heap[0][0] < watermark:
                # A kind may schedule a deadline already passed (e.g. a realert retry).
                rt.event = event
                self._fire_timers(heap, watermark, where_key)
                rt.stream = stream
        rt.event = None
        return out

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
        if previous == float("-inf") and self.ruleset.starters(stream):
            self._run_starts(stream, where_key, watermark)
        heap = self.timers.get(where_key)
        if heap and heap[0][0] < watermark:
            self.rt.event = None
            self._fire_timers(heap, watermark, where_key)
        return out

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

    def _fire_timers(
        self, heap: list[tuple[float, int, str, Key]], watermark: float, partition: Lane,
    ) -> None:
        rt = self.rt
        rt.partition = partition
        rt.stream = partition[0]
        while heap and heap[0][0] < watermark:
            deadline, _, rule_id, key = heapq.heappop(heap)
            self._timer_set.discard((partition, deadline, rule_id, key))
            rule = self.ruleset.by_id.get(rule_id)
            state = self.states.get(rule_id, {}).get(key)
            if rule is None or state is None:
                continue
            rt.rule = rule
            rt.now = deadline
            try:
                rule.kind.on_timer(rt, key, state, deadline)
            except Exception as exc:  # noqa: BLE001 - isolate one rule's failure on one timer
                self.last_stats.error(rule.id, f"timer {deadline}", exc)

    # -- rules and state ----------------------------------------------------------------------

    def sweep(self) -> int:
        """Drop the state of every key with nothing left to remember (see `RuleKind.expired`);
        returns how many. Results do not change: only state no later event or timer can read
        goes, judged against the lowest watermark of the engine's lanes (exact when each key
        lives in one lane, as in a shard; a lane that has no watermark yet is not counted)."""
        if not self.watermarks:
            return 0
        watermark = min(self.watermarks.values())
        dropped = 0
        for rule in self.ruleset.rules:
            states = self.states.get(rule.id)
            if not states:
                continue
            kind = rule.kind
            realert = rule.spec.realert
            gone = [key for key, state in states.items()
                    if _episode_over(state, realert, watermark) and kind.expired(state, watermark)]
            for key in gone:
                del states[key]
            if len(gone) > len(states):
                # CPython never shrinks a dict's table: copy it, so that the memory comes back.
                self.states[rule.id] = dict(states)
            dropped += len(gone)
        if dropped:
            self._timer_set = set(self._timer_set)
        return dropped

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
        """Replace the rule set at once, keeping the state of every rule whose spec is unchanged.

        A rule whose stream's reference data changed counts as changed (its expected keys,
        thresholds and joins may differ). Alerts firing under a rule that was removed or changed
        are resolved (ends_at = the latest watermark of its stream): the new rule starts from a
        clean state. Returns those resolved alerts and the ids of the rules that were added,
        changed or removed.
        """
        old = self.ruleset
        kept: dict[str, dict[Key, State]] = {}
        changed: list[str] = []
        for rule in ruleset.rules:
            previous = old.by_id.get(rule.id)
            same_reference = all(
                _rows(old.reference.table(stream)) == _rows(ruleset.reference.table(stream))
                for stream in rule.streams
            )
            if (previous is not None and previous.spec == rule.spec and type(previous.kind) is type(rule.kind)
                    and same_reference):
                kept[rule.id] = self.states.get(rule.id, {})
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
        self.ruleset = ruleset
        self.states = kept
        # New or changed rules with an on_start hook start on every partition already running.
        for lane, watermark in sorted(self.watermarks.items()):
            starters = [r for r in ruleset.starters(lane[0]) if r.id in changed]
            if starters:
                self._run_starts(lane[0], lane, watermark, starters)
        return out, sorted(changed)

    def snapshot(self) -> dict[str, Any]:
        """All state as plain data (lists and dicts) that `restore` takes back."""
        return {
            # A rule whose definition changed since starts afresh after a restore.
            "versions": {rule.id: rule.version for rule in self.ruleset.rules},
            "watermarks": [[s, p, w] for (s, p), w in self.watermarks.items()],
            "globals": self.globals,
            "states": {rid: [[list(k), v] for k, v in st.items()] for rid, st in self.states.items()},
            # Sorted, so that timers with equal deadlines fire in the same order after restore.
            "timers": [[s, p, d, rid, list(k)] for (s, p), h in self.timers.items() for d, _, rid, k in sorted(h)],
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Take back a `snapshot()`; state of rules that are gone or changed since is left out."""
        versions = data.get("versions")
        same = {
            rule.id for rule in self.ruleset.rules if versions is None or versions.get(rule.id) == rule.version
        }
        self.watermarks = {(s, p): w for s, p, w in data["watermarks"]}
        self.globals = {rid: dict(g) for rid, g in data.get("globals", {}).items() if rid in same}
        for rule_id in self.states:
            self.states[rule_id] = {}
        for rule_id, entries in data["states"].items():
            if rule_id in same:
                self.states[rule_id] = {tuple(k): dict(v) for k, v in entries}
        self.timers.clear()
        self._timer_set.clear()
        for s, p, deadline, rule_id, key in data["timers"]:
            if rule_id in same:
                self.schedule((s, p), deadline, rule_id, tuple(key))

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


def _rows(table: Any) -> Any:
    return table.rows if table is not None else None
