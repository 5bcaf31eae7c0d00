"""Sequences with absence steps (`absent: true`): "a spill, and no notice within 2 h".

Used by `ioc.rules.kinds.sequence` for the rules that have an absence step (the others keep the
plain evaluation there). An absence step has a *window*:

* after a present step (in the middle or last): `[t, t + within]`, `t` the previous step's time;
* as the first step (followed by a present step): `[t - within, t]`, `t` the next step's time
  ("no notice in the 4 h before the spill").

`within` is the step's own, else the rule's. An event that satisfies the absence step's condition
(for the key) with a time inside the window *cancels* the partial match, whether it arrives
before or after the step that opened the window (events of the absence steps are remembered for
that). When the watermark passes the window's end with no such event, the absence step is
*satisfied* at that end: the partial match completes there (last step; `ts` = the window's end)
or waits for the next present step, at or after that time. An event never cancels a partial
match it started or advanced itself.

Partial match (plain data): `[next_step, [time of each step], [evidence ids], {template fields
of the first present step's event}, lo, hi]`; `lo`/`hi` the window of the absence step it waits
for (null otherwise). The first present step's time counts for the rule's `within`. Remembered
absence events: `seen` = `{step index: [times]}`, at most `MAX_SEEN` per step (the earliest
arrived dropped first), forgotten once no window still to open can hold them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ioc.rules.kinds.base import Key, KindProblem, Runtime, State
from ioc.timeutil import format_ts

__all__ = ["AbsentSteps", "MAX_SEEN"]

MAX_SEEN = 50

Test = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]


class AbsentSteps:
    """The evaluation of one sequence rule with absence steps."""

    def __init__(self, streams: Sequence[str], tests: Sequence[Test], absent: Sequence[float | None],
                 within: float, resolve_after: float, max_partials: int) -> None:
        self.size = len(tests)
        self.absent = list(absent)  # per step: its window length, None for a present step
        self.within = within
        self.resolve_after = resolve_after
        self.max_partials = max_partials
        self.first = 1 if self.absent[0] is not None else 0  # the first present step
        # Per stream: (index, test) of its present steps after the first (highest first: one event
        # advances a partial match by one step at most), its absence steps, and the first step's test.
        self.later: dict[str, list[tuple[int, Test]]] = {}
        self.nots: dict[str, list[tuple[int, Test]]] = {}
        self.start: dict[str, Test] = {}
        for i in range(self.size - 1, -1, -1):
            stream = streams[i]
            if self.absent[i] is not None:
                self.nots.setdefault(stream, []).append((i, tests[i]))
            elif i == self.first:
                self.start[stream] = tests[i]
            else:
                self.later.setdefault(stream, []).append((i, tests[i]))

    @staticmethod
    def check(absent: Sequence[bool]) -> None:
        """The placement rules of absence steps, as a KindProblem for `steps`."""
        if all(absent):
            raise KindProblem("steps", "every step is `absent: true`; a sequence needs at least one present step")
        for i in range(1, len(absent)):
            if absent[i] and absent[i - 1]:
                raise KindProblem("steps", f"steps {i - 1} and {i} are both `absent: true` (allowed: a present step"
                                           " between two absence steps; merge their conditions with `or`)")

    # -- events ---------------------------------------------------------------------------------

    def on_event(self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any],
                 ts: float) -> None:
        stream = rt.stream
        partials: list[list[Any]] = state.get("partials") or []
        hits = [i for i, test in self.nots.get(stream, ()) if test(event, ref)]
        if hits and partials:
            # Cancels every partial match waiting for one of these absence steps whose window holds ts.
            partials = [p for p in partials if not (p[0] in hits and p[4] <= ts <= p[5])]
        done: list[list[Any]] = []
        touched: set[int] = set()
        within = self.within
        for index, test in self.later.get(stream, ()):
            hit: bool | None = None
            for partial in partials:
                if partial[0] != index or id(partial) in touched:
                    continue
                times = partial[1]
                if ts < times[-1] or ts > times[self.first] + within:
                    continue
                if hit is None:
                    hit = test(event, ref)
                if not hit:
                    break
                touched.add(id(partial))
                times.append(ts)
                evidence = event.get("id") or event.get("_pos")
                if evidence is not None:
                    partial[2].append(str(evidence))
                self._next(rt, key, state, partial, index + 1, ts)
                if partial[0] == self.size:
                    done.append(partial)
        start = self.start.get(stream)
        if start is not None and start(event, ref):
            evidence = event.get("id") or event.get("_pos")
            partial = [self.first, [], [str(evidence)] if evidence is not None else [], rt.project(event, ref),
                       None, None]
            if self.first == 0:
                partial[1].append(ts)
                self._next(rt, key, state, partial, 1, ts)
            else:
                self._open(rt, key, state, partial, 0, ts - self._length(0), ts)
            if partial[0] >= 0:
                partials.append(partial)
                if len(partials) > self.max_partials:
                    del partials[0]
                rt.schedule(ts + within, key)
        for i in hits:
            seen = state.setdefault("seen", {}).setdefault(str(i), [])
            seen.append(ts)
            if len(seen) > MAX_SEEN:
                del seen[0]
        partials = [p for p in partials if 0 <= p[0] < self.size]
        if partials:
            state["partials"] = partials
        else:
            state.pop("partials", None)
        if done:
            self._complete(rt, key, state, done, ts, event)

    def _length(self, index: int) -> float:
        length = self.absent[index]
        return self.within if length is None else length

    def _next(self, rt: Runtime, key: Key, state: State, partial: list[Any], index: int, ts: float) -> None:
        """`partial` goes on to step `index` after a present step at `ts`."""
        if index < self.size and self.absent[index] is not None:
            self._open(rt, key, state, partial, index, ts, ts + self._length(index))
        else:
            partial[0] = index

    def _open(self, rt: Runtime, key: Key, state: State, partial: list[Any], index: int, lo: float,
              hi: float) -> None:
        """`partial` waits for absence step `index` over [lo, hi]; cancelled (next = -1) at once when
        a remembered event falls inside."""
        seen = (state.get("seen") or {}).get(str(index)) or ()
        if any(lo <= t <= hi for t in seen):
            partial[0] = -1
            return
        partial[0], partial[4], partial[5] = index, lo, hi
        rt.schedule(hi, key)

    # -- timers ---------------------------------------------------------------------------------

    def on_timer(self, rt: Runtime, key: Key, state: State, deadline: float) -> None:
        partials: list[list[Any]] = state.get("partials") or []
        done: dict[float, list[list[Any]]] = {}
        for partial in partials:
            hi = partial[5]
            if hi is None or hi > deadline or self.absent[partial[0]] is None:
                continue
            # The watermark is past the window: no event inside it came for this key.
            index = partial[0]
            partial[1].append(hi)
            if index == 0:
                partial[1].append(hi)  # the first present step, which opened the window, at its end
            partial[4] = partial[5] = None
            partial[0] = index + (2 if index == 0 else 1)
            if partial[0] >= self.size:
                partial[0] = self.size
                done.setdefault(hi, []).append(partial)
        within = self.within
        kept = [p for p in partials if p[0] < self.size
                and (p[5] is not None or p[1][self.first] + within > deadline)]
        if kept:
            state["partials"] = kept
        else:
            state.pop("partials", None)
        for at in sorted(done):
            self._complete(rt, key, state, done[at], at)
        rt.instant_timer(key, state, deadline, self.resolve_after)
        seen = state.get("seen")
        if seen:
            for name in list(seen):
                cutoff = deadline - (self._length(0) if name == "0" else 0.0)
                times = [t for t in seen[name] if t > cutoff]
                if times:
                    seen[name] = times
                else:
                    del seen[name]
            if not seen:
                del state["seen"]

    def expired(self, state: State, watermark: float) -> bool:
        within = self.within
        for partial in state.get("partials") or ():
            if partial[5] is not None or partial[1][self.first] + within >= watermark:
                return False
        for name, times in (state.get("seen") or {}).items():
            cutoff = watermark - (self._length(0) if name == "0" else 0.0)
            if any(t >= cutoff for t in times):
                return False
        return True

    # -- completion -----------------------------------------------------------------------------

    def _complete(self, rt: Runtime, key: Key, state: State, done: list[list[Any]], ts: float,
                  event: Mapping[str, Any] | None = None) -> None:
        """Complete partial matches at `ts`, by `event` (a present last step) or by a timer."""
        best = min(done, key=lambda p: float(p[1][self.first]))
        times = best[1]
        for evidence in best[2]:
            rt.note(state, {"id": evidence})
        merged: dict[str, Any] = dict(best[3] or ())
        if event is not None:
            merged.update((name, value) for name, value in event.items() if value is not None)
        rt.match(key, state, ts=ts, value=None, event=merged, ref={}, resolve_after=self.resolve_after,
                 starts_at=times[self.first], details={"steps": [format_ts(t) for t in times]})
        if not state.get("firing"):
            state.pop("_evidence", None)
