"""`proximity`: two different keys of one stream whose latest positions are close (two vessels
meeting at sea).

>>> # rules/vessel.yaml: an encounter of two vessels <= 500 m for >= 2 h, outside ports
>>> # - id: vessel.behaviour.encounter
>>> #   stream: vessel
>>> #   kind: proximity
>>> #   distance_km: 0.5                # the two latest positions at most this far apart
>>> #   within: 2h                      # ... and reported at most this long apart
>>> #   for: 2h                         # held this long (event time) before it fires
>>> #   condition: "distance_km(lat, lon, 16.56, 107.62) > 3"   # per vessel, on its latest fix
>>> #   summary: "Tàu {source_id} và {other_id} cách nhau {value} km"

Per pair, in event time, judged at each event of either key (`where` passed, lat/lon given):

* each key's *latest position* is its event with the largest `ts` (an older event, out of
  order within the allowed lateness, is ignored); it *qualifies* when `condition` (over that
  event and its reference row) is true, or always when there is no condition;
* two keys are *close* at an event of one of them when both latest positions qualify, their
  times are at most `within` apart and their positions at most `distance_km` apart
  (`distance_km`, the haversine distance of the expressions);
* close pairs behave as a threshold with `for`: the first event at which a pair is close makes
  it pending (`starts_at` = that event's ts); it fires once it has been close for `for`,
  checked at each event of either key and when the watermark passes `since + for` (the pair is
  taken to stay close until an event of one of them says otherwise); it resolves at the first
  event of either key at which the pair is not close (`ends_at` = that event's ts). `value` is
  the distance in km (3 decimals) when the pair was last found close.

The alert key is the pair, sorted: `{<key field>: the smaller id, other_id: the larger}`
(`key` names the one field that identifies a key, default `source_id`). Templates may use
`other_id`, `value` and the fields of the event that found the pair close (its `source_id` is
replaced by the pair's first id).

Where the state lives: a rule keyed by a pair sees the events of every key, so it cannot be
split by key. It runs with no key (`key_fields` is empty): the runtime re-keys every event of
the stream that passes `where` into the one-partition key space `all` (ioc.runtime.plan), where
one engine sees them all in event-time order, as a backtest does. This is exact (no pair across
a partition or grid-cell border is missed) and deterministic, at a price: every such event is
published once more (on `ioc.rekey.all`), and one worker evaluates this rule for the whole
stream. The whole fleet's state is one plain-data entry (key `()`):

* `pos`: per key, `[ts, lat, lon, qualifies, event id]` of its latest position;
* `rows`: the qualifying keys by latitude row, rows `distance_km` high: two positions within
  `distance_km` are in the same or adjacent rows (a great-circle distance is never shorter than
  the difference of latitudes), so an event compares its position with the keys of three rows,
  not with all of them;
* `open`: per key, the keys it is pending or firing with (they are judged at its events even
  when their positions are stale or forgotten, so that the pair can resolve);
* `dirty`: the keys whose positions came in since the watermark last moved: a pair is judged
  once the watermark has passed the time of the position (every event of that time is in), so
  that the order of events sharing a timestamp never matters. An alert is therefore decided at
  the stream's next later event (or, live, when an idle partition's watermark moves on);
* per pair, its own state (key `(a, b)`: pending `since`, the value and evidence), created when
  the pair is first close.

Bounds: at most `max_pairs` pairs are pending or firing at once (a further close pair is not
opened until one closes: each holds its own state, evidence and event); at most `max_vessels`
keys are tracked (the events of further keys are ignored until a
key is forgotten); a key whose latest position is older than `within` before the watermark (no
future event can be close to it) is forgotten at the rule's prune timer (every `within` of event
time). Per event the cost is the keys of three rows plus the key's open pairs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from ioc.rules.expr import FUNCTIONS
from ioc.rules.kinds.base import BuildContext, Key, KindProblem, Problems, RuleKind, Runtime, State
from ioc.rules.model import Duration, RuleSpec
from ioc.timeutil import format_duration

__all__ = ["ProximitySpec", "ProximityRule", "OTHER"]

OTHER = "other_id"  # the name of the pair's second id in alert keys and templates
FLEET: Key = ()     # the key of the rule-wide state (every key's latest position)
_DEGREE_KM = 6371.0088 * math.pi / 180.0  # km per degree of latitude, as distance_km measures it
_distance_km = FUNCTIONS["distance_km"]


class ProximitySpec(RuleSpec):
    """Fields of a `proximity` rule (see the module docstring)."""

    kind: Literal["proximity"] = "proximity"
    distance_km: float
    within: Duration
    for_: Duration = Field(default=0.0, alias="for")
    condition: str | None = None
    max_vessels: int = Field(default=10_000, ge=2, le=1_000_000)
    max_pairs: int = Field(default=10_000, ge=1, le=1_000_000)


class ProximityRule(RuleKind):
    """Evaluator of a `proximity` rule."""

    Spec = ProximitySpec
    EXPRESSION_FIELDS = ("condition",)
    IDLE_TTL: ClassVar[bool] = False  # one rule-wide entry and pair entries: see `expired`

    def __init__(self, spec: ProximitySpec, ctx: BuildContext) -> None:  # type: ignore[override]
        super().__init__(spec, ctx)
        found = Problems()
        with found:
            if len(spec.key) != 1:
                raise KindProblem("key", f"[{', '.join(spec.key)}]: a proximity rule names the one field that "
                                         "identifies a key (e.g. [source_id]); the alert key is the pair")
        with found:
            # The key field is checked when the key names one field.
            names = (spec.key[0], "lat", "lon") if not found.failed("key") else ("lat", "lon")
            missing = [name for name in names if name not in ctx.fields]
            if missing:
                raise KindProblem("key" if not found.failed("key") and spec.key[0] in missing else "stream",
                                  f"stream '{ctx.stream}' has no field '{missing[0]}' (a proximity rule needs "
                                  f"lat, lon and its key field; allowed: {', '.join(sorted(ctx.fields))})")
        with found:
            if not 0 < spec.distance_km <= 100:
                too_small = f"{spec.distance_km:g} must be more than 0 (a distance in km, e.g. 0.5)"
                raise KindProblem("distance_km", too_small if spec.distance_km <= 0
                                  else f"{spec.distance_km:g} is more than 100 km (at most 100)")
        with found:
            if spec.within <= 0:
                raise KindProblem("within", f"'{format_duration(spec.within)}' must be more than 0 (e.g. 10m, 2h)")
        with found:
            if spec.value is not None:
                raise KindProblem("value", f"{spec.value!r} is not allowed: a proximity's value is the distance"
                                           " in km")
        with found:
            self.condition = ctx.expression("condition", spec.condition) if spec.condition else None
        found.raise_any()
        self.id_field = spec.key[0]
        self.limit = spec.distance_km
        self.within = spec.within
        self.hold = spec.for_
        self.row_deg = spec.distance_km / _DEGREE_KM
        self.max_vessels = spec.max_vessels
        self.max_pairs = spec.max_pairs

    def key_fields(self, stream: str) -> tuple[str, ...]:
        return ()  # every event to one place: see "Where the state lives"

    @property
    def key_names(self) -> tuple[str, ...]:
        return (self.id_field, OTHER)

    @property
    def template_names(self) -> frozenset[str]:
        return frozenset({"value", OTHER})

    def _row(self, lat: float) -> int:
        return math.floor(lat / self.row_deg)

    def on_event(
        self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any], ts: float
    ) -> None:
        me, lat, lon = event.get(self.id_field), event.get("lat"), event.get("lon")
        if me is None or lat is None or lon is None:
            return
        pos: dict[str, list[Any]] = state.setdefault("pos", {})
        rows: dict[str, list[str]] = state.setdefault("rows", {})
        me = str(me)
        old = pos.get(me)
        if old is None and len(pos) >= self.max_vessels:
            return  # full: a new key is not tracked (see Bounds)
        if old is not None and ts < old[0]:
            return  # older than the key's latest position (out of order within lateness)
        ok = self.condition.test(event, ref) if self.condition is not None else True
        if old is not None and old[3]:
            _unlist(rows, str(self._row(old[1])), me)
        pos[me] = [ts, lat, lon, ok, event.get("id") or event.get("_pos"), rt.project(event, ref)]
        if ok:
            rows.setdefault(str(self._row(lat)), []).append(me)
        # Judged once every event at `ts` is in (the watermark passed it), so that the order of
        # events sharing a timestamp never matters.
        state.setdefault("dirty", []).append([ts, me])
        rt.schedule(ts, FLEET)
        if state.get("prune") is None:
            state["prune"] = ts + self.within
            rt.schedule(ts + self.within, FLEET)

    def on_timer(self, rt: Runtime, key: Key, state: State, deadline: float) -> None:
        if key == FLEET:
            self._judge_due(rt, state, deadline)
            prune = state.get("prune")
            if prune is not None and prune <= deadline:
                self._prune(rt, state, deadline)
            return
        # A pair's `for` is over: the events at the deadline decide first (as in `threshold`).
        self._judge_due(rt, rt.state(FLEET), deadline)
        since = state.get("since")
        if not state.get("firing") and since is not None and since + self.hold <= deadline:
            rt.fire(key, state, starts_at=since, value=state.get("value"), event=state.get("event"), ref={})

    def _judge_due(self, rt: Runtime, fleet: State, deadline: float) -> None:
        """Judge the keys whose positions came at or before `deadline`, in (ts, key) order."""
        dirty = fleet.get("dirty")
        if not dirty:
            return
        due = sorted({(ts, me) for ts, me in dirty if ts <= deadline})
        if not due:
            return
        fleet["dirty"] = [entry for entry in dirty if entry[0] > deadline]
        pos, rows = fleet["pos"], fleet.get("rows", {})
        for ts, me in due:
            mine = pos.get(me)
            if mine is None:
                continue
            others = set(fleet.get("open", {}).get(me, ()))
            if mine[3]:
                row = self._row(mine[1])
                for near in (row - 1, row, row + 1):
                    others.update(rows.get(str(near), ()))
            others.discard(me)
            for other in sorted(others):
                self._judge(rt, fleet, me, other, ts)

    def _judge(self, rt: Runtime, fleet: State, me: str, other: str, ts: float) -> None:
        """Whether the pair (me, other) is close at `ts`, and what follows for its episode."""
        mine, theirs = fleet["pos"][me], fleet["pos"].get(other)
        distance = None
        if mine[3] and theirs is not None and theirs[3] and abs(mine[0] - theirs[0]) <= self.within:
            distance = _distance_km(mine[1], mine[2], theirs[1], theirs[2])
        close = distance is not None and distance <= self.limit
        opened = fleet.setdefault("open", {})
        pair = (me, other) if me < other else (other, me)
        if other not in opened.get(me, ()):
            if not close:
                return
            if _open_pairs(opened) >= self.max_pairs:
                return  # no room for another pending or firing pair until one closes (`max_pairs`)
        state = rt.state(pair)
        if not close:
            if state.get("firing"):
                rt.resolve(pair, state, ends_at=ts)
            _close_pair(fleet, state, me, other)
            return
        value = round(distance, 3)  # type: ignore[arg-type]
        if state.get("firing"):
            state["_value"] = value
            return
        since = state.get("since")
        if since is None:
            since = state["since"] = ts
            opened.setdefault(me, []).append(other)
            opened.setdefault(other, []).append(me)
        for fix in (theirs, mine):
            rt.note(state, {"id": fix[4]})  # type: ignore[index]
        shown = {**mine[5], self.id_field: pair[0], OTHER: pair[1]}
        state["value"] = value
        state["event"] = shown
        if ts - since >= self.hold:
            rt.fire(pair, state, starts_at=since, value=value, event=shown, ref={})
        else:
            rt.schedule(since + self.hold, pair)

    def _prune(self, rt: Runtime, state: State, deadline: float) -> None:
        """The watermark passed `deadline`: every event still to come is later, so a key whose
        latest position is older than `deadline - within` can be close to none of them."""
        pos, rows = state.get("pos", {}), state.get("rows", {})
        # A stale key's open pairs are not close any more either: they resolve at the next event
        # of the other key (its `open` list still names them).
        stale = [key for key, fix in pos.items() if fix[0] < deadline - self.within]
        for key in stale:
            fix = pos.pop(key)
            if fix[3]:
                _unlist(rows, str(self._row(fix[1])), key)
        if pos:
            state["prune"] = deadline + self.within
            rt.schedule(deadline + self.within, FLEET)
        else:
            state["prune"] = None

    def expired(self, state: State, watermark: float) -> bool:
        if "pos" in state:
            # The fleet: forgotten once it holds no key and no pair is open (the open lists are
            # what lets a pair whose keys were forgotten resolve).
            return not state["pos"] and not state.get("open")
        return state.get("since") is None  # a pair: once neither pending nor firing (the engine keeps realert)


def _unlist(rows: dict[str, list[str]], row: str, key: str) -> None:
    keys = rows.get(row)
    if keys is not None and key in keys:
        keys.remove(key)
        if not keys:
            del rows[row]


def _close_pair(fleet: State, state: State, me: str, other: str) -> None:
    """The pair is neither pending nor firing any more."""
    for name in ("since", "value", "event"):
        state.pop(name, None)
    if not state.get("firing"):
        state.pop("_evidence", None)
    opened = fleet["open"]
    for a, b in ((me, other), (other, me)):
        keys = opened.get(a)
        if keys is not None and b in keys:
            keys.remove(b)
            if not keys:
                del opened[a]


def _open_pairs(opened: Mapping[str, list[str]]) -> int:
    """How many pairs are pending or firing (each is listed under both its keys); counted only
    when a pair would open, which close pairs rarely do."""
    return sum(len(keys) for keys in opened.values()) // 2


KIND = ProximityRule
