"""`sequence`: ordered steps, each a stream and a condition, all within `within` of the first.

>>> # rules/reservoir.yaml: heavy rain, then the level near NWL, then the spillway opens
>>> # - id: reservoir.sequence.rain_level_spill
>>> #   kind: sequence                      # `stream` defaults to the first step's stream
>>> #   by: source_id                       # the join field (the alert key)
>>> #   within: 12h
>>> #   steps:
>>> #     - {name: rain, stream: reservoir, condition: "rain_mm_1h >= 50"}
>>> #     - {name: level, stream: reservoir, condition: "level_m >= nwl_m - 1"}
>>> #     - {name: spill, stream: reservoir, condition: "spill_m3s > 0"}
>>> #   severity: critical
>>> #   summary: "{name}: mưa lớn, mực nước {level_m:.2f} m, bắt đầu xả {spill_m3s} m3/s"
>>> # - id: camera.flooding.gauge_bd2         # across streams, joined through reference data
>>> #   kind: sequence
>>> #   by: {reservoir: source_id, camera: gauge}   # gauge: a camera's reference field
>>> #   within: 2h
>>> #   steps:
>>> #     - {stream: reservoir, condition: "level_m >= bd2_m"}
>>> #     - {stream: camera, condition: "event_type == 'road_flooding'"}

Fields: `steps` (2 to `MAX_STEPS`, each `stream`, `condition`, optional `name`; `absent: true`
with an optional own `within` makes it an absence step, evaluated by
`ioc.rules.kinds.sequence_absent`), `by`
(default `source_id`), `within` (required), `resolve_after` (default 5m), and the common
fields except `key` and `value`; `stream` may be left out (it is the first step's).
The analysts' page is docs/kinds/sequence.md.

Join: every event is keyed by the `by` field of its stream's steps: one field name for all
steps, a list with one name per step (steps on the same stream must use the same name), a
mapping stream -> name naming every step's stream, or `null` for one global key that every
event joins. A name is an event field of the stream or, if it is none, a field of the stream's
reference data: the key is then read from the event's reference row (ioc.rules.keys,
`ref_keys`), and an event whose row lacks it joins nothing. Alert records name the key `by`
when it is one name, `key` otherwise (`{}` for `by: null`).

Per key, in arrival order of the events evaluated (event time decides what may match):

* an event that satisfies step 0's condition starts a new partial match (at most
  `MAX_PARTIALS` are kept per key; the oldest is dropped first);
* an event that satisfies step `i > 0` advances every partial match waiting for step `i`
  whose previous step happened at or before the event (`ts >= previous ts`) and whose first
  step is at most `within` before it (`ts <= first + within`, the boundary included). One
  event advances a partial match by one step at most, but may advance several partial
  matches, and also start a new one;
* when the last step matches, the partial match is complete: an instant match (see
  `InstantRule`) with `starts_at` = the first step's `ts` (the earliest, when one event
  completes several), `value` null (nothing is measured) and
  `details = {"steps": [RFC 3339 time of each step]}`. A new episode
  fires, or the firing one is extended; it resolves `resolve_after` after the last
  completion (`ends_at` = that time; the timer fires once the watermark is past it).
  Completed partial matches are consumed; a completion dropped by `realert` too;
* a partial match is forgotten once the watermark of the partition of its first step is
  past `first + within` (no event still accepted there can advance it), or when it is the
  oldest of a full list.

Templates are rendered with the completing event's fields; a name it lacks comes from the
first step's event (or its reference row), then from the completing event's reference row.
Evidence: the ids of the steps' events, then those of later completions.

Streams are evaluated separately, each partition with its own watermark: a cross-stream
sequence assumes its streams are roughly aligned in event time, and a step event whose time
is earlier than the previous step's (e.g. it arrived late on a stream that lags) does not
advance the match. `where` is tested on the events of every step; in a sequence over several
streams it may only read fields that all of them have.

Per-key state (plain data): `partials`, a list of `[next_step, [ts of each matched step],
[evidence ids], {template fields of the first step's event}]` in the order they started.

A key's state is forgotten (`expired`) once no partial match can still advance (every one's
`first + within` is before the watermark, whatever the partition) and its episode is over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import reduce
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from ioc.events.schemas import STREAMS
from ioc.rules.exceptions import did_you_mean
from ioc.rules.expr import Expression
from ioc.rules.keys import unknown_key_field
from ioc.rules.kinds.base import BuildContext, InstantRule, InstantSpec, Key, KindProblem, Problems, Runtime, State
from ioc.rules.kinds.sequence_absent import AbsentSteps
from ioc.rules.model import Duration, Stream
from ioc.timeutil import format_ts

__all__ = ["MAX_PARTIALS", "MAX_STEPS", "SequenceStep", "SequenceSpec", "SequenceRule"]

# Partial matches kept per key: bounds state and the work of one event.
MAX_PARTIALS = 50
MAX_STEPS = 10

Test = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]


class SequenceStep(BaseModel):
    """One step: a condition over the events of one stream."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream: Stream
    condition: str
    name: str | None = None
    # An absence step (ioc.rules.kinds.sequence_absent): no such event within its window.
    absent: bool = False
    within: Duration | None = None


class SequenceSpec(InstantSpec):
    kind: Literal["sequence"] = "sequence"
    steps: list[SequenceStep]
    by: str | list[str] | dict[str, str] | None = "source_id"
    within: Duration

    @model_validator(mode="before")
    @classmethod
    def _stream_from_first_step(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "stream" in data:
            return data
        steps = data.get("steps")
        first = steps[0] if isinstance(steps, list) and steps else None
        stream = first.get("stream") if isinstance(first, Mapping) else None
        # When the first step has no valid stream, its own error is the one to report; any
        # stream stands in here (validation fails on `steps` anyway).
        return {**data, "stream": stream if stream in STREAMS else STREAMS[0]}

    @field_validator("steps", mode="before")
    @classmethod
    def _step_keys(cls, value: Any) -> Any:
        # Said here because the loader's "allowed keys" hint does not reach into list items.
        if not isinstance(value, list):
            return value
        allowed = sorted(SequenceStep.model_fields)
        for i, step in enumerate(value):
            unknown = [k for k in step if k not in allowed] if isinstance(step, Mapping) else []
            if unknown:
                hint = did_you_mean(str(unknown[0]), allowed)
                raise ValueError(f"step {i}: unknown key '{unknown[0]}' (allowed: {', '.join(allowed)}{hint})")
        return value

    @field_validator("steps")
    @classmethod
    def _step_count(cls, steps: list[SequenceStep]) -> list[SequenceStep]:
        if len(steps) < 2:
            raise ValueError(
                f"has {len(steps)} step{'s' if len(steps) != 1 else ''}; a sequence needs at least 2"
                " (for one condition use `threshold` or `match`)"
            )
        if len(steps) > MAX_STEPS:
            raise ValueError(f"has {len(steps)} steps (allowed: 2 to {MAX_STEPS})")
        names = [step.name for step in steps if step.name is not None]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"step name '{twice[0]}' is used twice (step names must be unique)")
        return steps

    @field_validator("by", mode="before")
    @classmethod
    def _by_shape(cls, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, list) and value and all(isinstance(name, str) for name in value):
            return value
        if isinstance(value, Mapping) and value and all(isinstance(name, str) for name in value.values()):
            return dict(value)
        raise ValueError(
            f"{value!r} is not a join field (allowed: a field name, a list with one field name per step,"
            " a mapping stream: field name, or null for one global key)"
        )

    @field_validator("within")
    @classmethod
    def _within_positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be more than 0 (e.g. 12h)")
        return value


class SequenceRule(InstantRule):
    Spec = SequenceSpec
    spec: SequenceSpec

    def __init__(self, spec: SequenceSpec, ctx: BuildContext) -> None:  # type: ignore[override]
        super().__init__(spec, ctx)
        steps = spec.steps
        first_stream = steps[0].stream
        found = Problems()
        with found:
            if spec.stream != first_stream:
                raise KindProblem(
                    "stream", f"'{spec.stream}' is not the first step's stream '{first_stream}'"
                    " (leave `stream` out: a sequence's stream is its first step's)",
                )
        with found:
            if "key" in spec.model_fields_set:
                raise KindProblem("key", "a sequence is keyed by its join field: use `by`, not `key`")
        with found:
            if spec.value is not None:
                raise KindProblem("value", "a sequence measures nothing (its details are the time of each step); "
                                           "remove `value`")
        conditions: list[Expression] = []
        for i, step in enumerate(steps):
            with found:
                conditions.append(ctx.for_stream(step.stream).expression(f"steps.{i}.condition", step.condition))
        # The join field of each step; none at all for one global key (`by: null`).
        with found:
            self.by_fields = _by_fields(ctx, spec.by, steps)
        self._streams = tuple(dict.fromkeys(step.stream for step in steps))
        with found:
            if spec.where and len(self._streams) > 1:
                _check_where(ctx, spec.where, self._streams)
        with found:
            _check_absent(spec)
        found.raise_any()
        self._key_fields: dict[str, tuple[str, ...]] = {}
        # Join fields read from the reference row, not the event (ioc.rules.keys).
        self._ref_keys: dict[str, frozenset[str]] = {}
        for i, step in enumerate(steps):
            self._key_fields[step.stream] = (self.by_fields[i],) if self.by_fields else ()
            if self.by_fields and _from_reference(ctx, step.stream, self.by_fields[i]):
                self._ref_keys[step.stream] = frozenset({self.by_fields[i]})
        distinct = set(self.by_fields)
        self._key_names = (self.by_fields[0],) if len(distinct) == 1 else ("key",) if distinct else ()
        self.within = spec.within
        self.resolve_after = spec.resolve_after
        self.size = len(steps)
        # Per stream: step 0's test if step 0 is on it, and (index, test) of its later steps,
        # highest index first so that one event advances a partial match by one step at most.
        self._plans: dict[str, tuple[Test | None, tuple[tuple[int, Test], ...]]] = {}
        for stream in self._streams:
            start = conditions[0].test if first_stream == stream else None
            later = tuple(
                (i, conditions[i].test) for i in range(len(steps) - 1, 0, -1) if steps[i].stream == stream
            )
            self._plans[stream] = (start, later)
        self._absent = _absent_steps(spec, [c.test for c in conditions], MAX_PARTIALS)

    @property
    def streams(self) -> tuple[str, ...]:
        return self._streams

    def relevant(self, stream: str) -> Test | None:
        # An event that satisfies no step on its stream neither starts nor advances a match.
        start, later = self._plans.get(stream, (None, ()))
        tests = ([start] if start is not None else []) + [test for _, test in later]
        if not tests:
            return lambda event, ref: False
        return lambda event, ref: any(test(event, ref) for test in tests)

    def key_fields(self, stream: str) -> tuple[str, ...]:
        return self._key_fields.get(stream, ())

    def ref_keys(self, stream: str) -> frozenset[str]:
        return self._ref_keys.get(stream, frozenset())

    @property
    def key_names(self) -> tuple[str, ...]:
        return self._key_names

    def on_event(
        self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any], ts: float
    ) -> None:
        if self._absent is not None:
            self._absent.on_event(rt, key, state, event, ref, ts)
            return
        plan = self._plans.get(rt.stream)
        if plan is None:
            return
        start, later = plan
        partials: list[list[Any]] | None = state.get("partials")
        done: list[list[Any]] | None = None
        if partials and later:
            within = self.within
            last = self.size - 1
            for index, test in later:
                hit: bool | None = None
                for partial in partials:
                    if partial[0] != index:
                        continue
                    times = partial[1]
                    if ts < times[-1] or ts > times[0] + within:
                        continue
                    if hit is None:
                        hit = test(event, ref)
                    if not hit:
                        break
                    if index == last:
                        partial[0] = self.size
                        if done is None:
                            done = []
                        done.append(partial)
                        continue
                    partial[0] = index + 1
                    times.append(ts)
                    evidence = event.get("id") or event.get("_pos")
                    if evidence is not None:
                        partial[2].append(str(evidence))
            if done is not None:
                partials[:] = [p for p in partials if p[0] < self.size]
                if not partials:
                    del state["partials"]
                    partials = None
        if start is not None and start(event, ref):
            evidence = event.get("id") or event.get("_pos")
            partial = [1, [ts], [str(evidence)] if evidence is not None else [], rt.project(event, ref)]
            if partials is None:
                partials = state["partials"] = []
            partials.append(partial)
            if len(partials) > MAX_PARTIALS:
                del partials[0]
            # Forgotten once the watermark passes the last time an event could advance it.
            rt.schedule(ts + self.within, key)
        if done is not None:
            self._complete(rt, key, state, done, event, ref, ts)

    def _complete(
        self, rt: Runtime, key: Key, state: State, done: list[list[Any]],
        event: Mapping[str, Any], ref: Mapping[str, Any], ts: float,
    ) -> None:
        best = min(done, key=_first_ts)
        times = [*best[1], ts]
        merged: dict[str, Any] = dict(best[3] or ())
        merged.update((name, value) for name, value in event.items() if value is not None)
        for evidence in best[2]:
            rt.note(state, {"id": evidence})
        rt.match(
            key, state, ts=ts, value=None, event=merged, ref=ref,
            resolve_after=self.resolve_after, starts_at=times[0], details={"steps": [format_ts(t) for t in times]},
        )
        if not state.get("firing"):
            # Dropped inside `realert`: its evidence must not leak into a later episode.
            state.pop("_evidence", None)

    def expired(self, state: State, watermark: float) -> bool:
        if self._absent is not None:
            return self._absent.expired(state, watermark)
        # A partial match nothing can advance any more changes nothing: it is dropped first
        # when the list is full, before any live one (it is older).
        within = self.within
        return all(partial[1][0] + within < watermark for partial in state.get("partials") or ())

    def on_timer(self, rt: Runtime, key: Key, state: State, deadline: float) -> None:
        if self._absent is not None:
            self._absent.on_timer(rt, key, state, deadline)
            return
        rt.instant_timer(key, state, deadline, self.resolve_after)
        partials = state.get("partials")
        if partials:
            # The watermark is past `deadline`: every event still accepted is later than it.
            within = self.within
            kept = [p for p in partials if p[1][0] + within > deadline]
            if not kept:
                del state["partials"]
            elif len(kept) < len(partials):
                state["partials"] = kept


def _absent_steps(spec: SequenceSpec, tests: list[Test], max_partials: int) -> AbsentSteps | None:
    """The evaluation of a sequence with absence steps; None for one without (the plain one).
    The steps were checked by `_check_absent`."""
    steps = spec.steps
    if not any(step.absent for step in steps):
        return None
    return AbsentSteps(
        [step.stream for step in steps], tests,
        [(step.within if step.within is not None else spec.within) if step.absent else None for step in steps],
        spec.within, spec.resolve_after, max_partials,
    )


def _check_absent(spec: SequenceSpec) -> None:
    """The steps' own `within` and the placement of absence steps; every problem, as KindProblems."""
    steps = spec.steps
    found = Problems()
    for i, step in enumerate(steps):
        with found:
            if step.within is not None and not step.absent:
                raise KindProblem(f"steps.{i}.within", "only an absence step (`absent: true`) has its own `within`;"
                                                       " a present step is bounded by the rule's `within`")
            if step.within is not None and step.within <= 0:
                raise KindProblem(f"steps.{i}.within", "must be more than 0 (e.g. 2h)")
    with found:
        if any(step.absent for step in steps):
            AbsentSteps.check([step.absent for step in steps])
    found.raise_any()


def _first_ts(partial: list[Any]) -> float:
    return float(partial[1][0])


def _by_fields(ctx: BuildContext, by: str | list[str] | dict[str, str] | None,
               steps: list[SequenceStep]) -> tuple[str, ...]:
    """The join field of each step (none for one global key), checked against its stream: an
    event field of the step's stream, or a field of its reference data."""
    if by is None:
        return ()
    if isinstance(by, dict):
        return _by_streams(ctx, by, steps)
    if isinstance(by, str):
        names = [by] * len(steps)
    elif len(by) != len(steps):
        raise KindProblem(
            "by", f"lists {len(by)} field{'s' if len(by) != 1 else ''} for {len(steps)} steps"
            " (allowed: one field name for all steps, or exactly one per step)",
        )
    else:
        names = list(by)
    for i, (step, name) in enumerate(zip(steps, names, strict=True)):
        known = ctx.schemas.fields(step.stream)
        ref_known = ctx.reference.fields(step.stream)
        if name not in known and name not in ref_known:
            problem = unknown_key_field(name, step.stream, known, ref_known)
            raise KindProblem("by", problem.replace(" (", f" (step {i}; ", 1))
    seen: dict[str, tuple[int, str]] = {}
    for i, (step, name) in enumerate(zip(steps, names, strict=True)):
        other = seen.setdefault(step.stream, (i, name))
        if other[1] != name:
            raise KindProblem(
                "by", f"steps {other[0]} and {i} are both on stream '{step.stream}' but join on"
                f" '{other[1]}' and '{name}' (steps on one stream must join on the same field)",
            )
    return tuple(names)


def _by_streams(ctx: BuildContext, by: dict[str, str], steps: list[SequenceStep]) -> tuple[str, ...]:
    """`by` as a mapping stream -> join field (`{reservoir: source_id, camera: gauge}`)."""
    used = list(dict.fromkeys(step.stream for step in steps))
    for stream, name in by.items():
        if stream not in STREAMS:
            raise KindProblem(f"by.{stream}", f"'{stream}' is not a stream (allowed: {', '.join(used)}"
                                              f"{did_you_mean(stream, used)})")
        if stream not in used:
            raise KindProblem(f"by.{stream}", f"no step is on stream '{stream}' (steps are on: {', '.join(used)};"
                                              " name each step's stream once)")
        known = ctx.schemas.fields(stream)
        ref_known = ctx.reference.fields(stream)
        if name not in known and name not in ref_known:
            raise KindProblem(f"by.{stream}", unknown_key_field(name, stream, known, ref_known))
    missing = [stream for stream in used if stream not in by]
    if missing:
        first = next(i for i, step in enumerate(steps) if step.stream == missing[0])
        raise KindProblem("by", f"no join field for stream '{missing[0]}' (step {first}; the mapping must name"
                                f" every step's stream: {', '.join(used)})")
    return tuple(by[step.stream] for step in steps)


def _from_reference(ctx: BuildContext, stream: str, name: str) -> bool:
    """Whether join field `name` of `stream` is read from the reference row (not an event field)."""
    return name not in ctx.schemas.fields(stream) and name in ctx.reference.fields(stream)


def _check_where(ctx: BuildContext, text: str, streams: tuple[str, ...]) -> None:
    """In a sequence over several streams, `where` may only read fields every stream has."""
    try:
        ctx.expression("where", text)
    except KindProblem:
        return  # the loader reports it against the rule's stream
    common = reduce(frozenset.intersection, (ctx.schemas.fields(s) for s in streams))
    try:
        ctx.compile("where", text, common)
    except KindProblem as exc:
        raise KindProblem(
            "where", f"{exc.message}: `where` is tested on the events of every step ({', '.join(streams)}),"
            " so it may only read fields they all have; put stream-specific tests in the step conditions",
        ) from None


KIND = SequenceRule
