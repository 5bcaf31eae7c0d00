"""What a rule kind is: a typed spec plus an evaluator over per-key plain-data state.

A kind decides *when* a condition starts and stops holding; the engine's runtime owns
episodes (alert ids, realert, evidence, templates, SLA deadlines). A new kind is one module
with a `RuleSpec` subclass and a `RuleKind` subclass, plus one line in `RULE_KINDS`.

Per-key state is a plain dict (JSON-able) so that it can be snapshotted and restored;
the runtime keeps its own entries in it under keys starting with `_`.

What a kind reports when it fires (`Runtime.fire` / `Runtime.match`), one convention for
every kind so that a record reader knows what it gets:

* `value` is the **measured quantity**, a number (int or float, never a bool) or None, one
  meaning per kind: threshold the `value` expression (default: the first numeric field the
  condition reads), window the aggregate, rate the change per `per`, absence the seconds
  silent, spike the ratio current/baseline, geofence its `value` expression if it has one.
  A kind with nothing measured (match, new_value, sequence, geofence without `value`) passes
  None. Use `number_or_none` on anything an expression computed.
* `details` is a small JSON-able mapping of what the kind found besides that number: the
  matched keywords and an excerpt (`matched`, `excerpt`), the zone (`zone`, `zone_id`), the
  new value (`new_value`), the steps' times (`steps`), the windows (`current`, `baseline`,
  `ratio`), the last event's time (`last_seen`). Records carry it as `details`; templates may
  use its names (list them in `template_names`).
* `VALUE_ALIAS`: for a kind with nothing measured, the detail that `{value}` renders in
  templates (rule files written when `value` held that detail keep rendering it).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from ioc.config import REPO_ROOT
from ioc.events.declared import BUILTIN, EventSchemas
from ioc.events.schemas import STREAMS
from ioc.refdata import Reference
from ioc.rules.expr import Expression, ExpressionError, compile_expression
from ioc.rules.model import Duration, RuleSpec

__all__ = ["BuildContext", "InstantSpec", "InstantRule", "KindProblem", "KindProblems", "Problems", "Runtime",
           "RuleKind", "Key", "State", "number_or_none"]

Key = tuple[Any, ...]
State = dict[str, Any]


def number_or_none(x: Any) -> float | int | None:
    """`x` if it is a finite number (not a bool), else None: what a record's `value` may hold.

    >>> number_or_none(44.6), number_or_none("44.6"), number_or_none(True), number_or_none(float("nan"))
    (44.6, None, None, None)
    """
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return x if isinstance(x, int) or math.isfinite(x) else None


class KindProblem(Exception):  # noqa: N818 - carries one analyst-facing problem to the loader
    """A problem in one field of a rule, found while building its kind."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class KindProblems(Exception):  # noqa: N818 - carries a rule's analyst-facing problems to the loader
    """Every independent problem found while building a kind, in the order they were found."""

    def __init__(self, problems: list[KindProblem]) -> None:
        super().__init__("; ".join(str(problem) for problem in problems))
        self.problems = problems


class Problems:
    """Collects a kind's independent problems, so that a rule reports all of them at once.

    >>> found = Problems()
    >>> with found:
    ...     raise KindProblem("within", "must be more than 0")
    >>> with found:
    ...     raise KindProblem("min_count", "must be at least 2")
    >>> try:
    ...     found.raise_any()
    ... except KindProblems as exc:
    ...     print(exc)
    within: must be more than 0; min_count: must be at least 2

    Each `with found:` block holds one check: a KindProblem (or the KindProblems of a part
    built with its own collector) is recorded and the block is left; any other exception
    passes. A check that needs what an earlier block built tests `found.missing(...)` or the
    value itself first. `raise_any()` ends the constructor: KindProblems if anything was found.
    """

    def __init__(self) -> None:
        self.problems: list[KindProblem] = []

    def __enter__(self) -> Problems:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> bool:
        if isinstance(exc, KindProblem):
            self.problems.append(exc)
            return True
        if isinstance(exc, KindProblems):
            self.problems.extend(exc.problems)
            return True
        return False

    def __bool__(self) -> bool:
        return bool(self.problems)

    def failed(self, *fields: str) -> bool:
        """Whether a problem was recorded for any of `fields`."""
        return any(problem.field in fields for problem in self.problems)

    def raise_any(self) -> None:
        """Raise KindProblems listing what was found, if anything was."""
        if self.problems:
            raise KindProblems(list(self.problems))


@dataclass(frozen=True)
class BuildContext:
    """What a kind may use when it is built: the names its expressions can read, reference data."""

    stream: str
    fields: frozenset[str]
    ref_fields: frozenset[str]
    reference: Reference = field(default_factory=Reference)
    config_dir: Path = REPO_ROOT / "config"
    # The streams' event models, with a deployment's declared fields (ioc.events.declared).
    schemas: EventSchemas = BUILTIN

    def expression(self, field: str, text: str, extra: Mapping[str, Any] | None = None, *,
                   previous: bool = False) -> Expression:
        """Compile an expression over the rule stream's event and reference fields (and, with
        `previous`, `previous.<field>`: the key's previous event)."""
        return self.compile(field, text, self.fields, self.ref_fields, extra,
                            previous=self.fields if previous else None)

    def compile(
        self, field: str, text: str, fields: Iterable[str], ref_fields: Iterable[str] = (),
        extra: Mapping[str, Any] | None = None, *, previous: Iterable[str] | None = None,
    ) -> Expression:
        """Compile an expression over the given names (e.g. a window's `value`, `count`),
        turning errors into a KindProblem for `field`."""
        try:
            return compile_expression(text, fields, ref_fields, extra, previous)
        except ExpressionError as exc:
            raise KindProblem(field, f"{exc.message} in {text!r}") from None

    def for_stream(self, stream: str) -> BuildContext:
        """The context of another stream (cross-stream kinds such as `sequence`)."""
        if stream not in STREAMS:
            raise KindProblem("stream", f"{stream!r} is not a stream (allowed: {', '.join(STREAMS)})")
        return BuildContext(stream, self.schemas.fields(stream), self.reference.fields(stream), self.reference,
                            self.config_dir, self.schemas)

    def ref_keys(self, stream: str | None = None) -> list[str]:
        """Keys listed in a stream's reference data (e.g. every reservoir), in file order."""
        table = self.reference.table(stream or self.stream)
        return list(table.rows) if table is not None else []

    def config_path(self, field: str, relative: str) -> Path:
        """A file named by a rule (e.g. a GeoJSON of zones), relative to config/; must exist."""
        path = Path(relative)
        path = path if path.is_absolute() else self.config_dir / path
        if not path.is_file():
            raise KindProblem(field, f"file '{relative}' not found (looked in {self.config_dir})")
        return path


class Runtime(Protocol):
    """What the engine offers a kind while it evaluates (see ioc.engine.episodes)."""

    def fire(
        self, key: Key, state: State, *, starts_at: float, value: Any,
        event: Mapping[str, Any] | None, ref: Mapping[str, Any], retry: bool = True,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Open an episode (unless one is firing). Inside `realert` after the last episode the
        call is refused; with `retry` the runtime calls `on_timer` again when realert is over.
        `value` and `details` as the module docstring says."""

    def resolve(self, key: Key, state: State, *, ends_at: float) -> None: ...

    def schedule(self, deadline: float, key: Key) -> None: ...

    def owns(self, key: Key) -> bool:
        """Whether this shard owns `key` (a key of the raw topic: which reference keys to watch)."""
        return True

    def state(self, key: Key) -> State:
        """The state of `key` for the rule being evaluated, created if missing (e.g. for keys
        an absence rule expects from reference data before they send anything)."""
        return {}

    def note(self, state: State, event: Mapping[str, Any]) -> None:
        """Keep the event's id as evidence for the coming or current episode."""

    def match(
        self, key: Key, state: State, *, ts: float, value: Any,
        event: Mapping[str, Any] | None, ref: Mapping[str, Any], resolve_after: float,
        starts_at: float | None = None, details: Mapping[str, Any] | None = None,
    ) -> None:
        """An instant match at `ts`: fire a new episode (starting at `starts_at`, default `ts`),
        or extend the current one; it resolves `resolve_after` after the last match."""

    def instant_timer(self, key: Key, state: State, deadline: float, resolve_after: float) -> bool:
        """Resolve an instant episode whose last match is `resolve_after` old; True if handled."""
        return False

    @property
    def stream(self) -> str:
        """The stream of the event (or timer) being evaluated."""
        return ""

    def project(self, event: Mapping[str, Any], ref: Mapping[str, Any]) -> dict[str, Any]:
        """The fields of an event and its reference row that the rule's templates use."""


class RuleKind(ABC):
    """Evaluator of one loaded rule. Subclasses set `Spec` and implement the two hooks."""

    Spec: ClassVar[type[RuleSpec]]
    # Spec fields holding expressions, checked even when other fields of the rule are invalid.
    EXPRESSION_FIELDS: ClassVar[tuple[str, ...]] = ()
    # The detail `{value}` renders in templates when `value` is None (see the module docstring).
    VALUE_ALIAS: ClassVar[str | None] = None
    # Of those, the fields that may read the key's previous event (`previous.lat`).
    PREVIOUS_FIELDS: ClassVar[tuple[str, ...]] = ()
    # Whether an idle key may be forgotten after `key_ttl` (limits.key_idle_s). False for kinds
    # whose keys' silence is the signal (absence).
    IDLE_TTL: ClassVar[bool] = True

    def __init__(self, spec: RuleSpec, ctx: BuildContext) -> None:
        self.spec = spec
        self.ctx = ctx

    @property
    def template_names(self) -> frozenset[str]:
        """Names a summary template may use besides event and reference fields."""
        return frozenset({"value"})

    @property
    def streams(self) -> tuple[str, ...]:
        """Streams whose events this rule evaluates (cross-stream kinds return several)."""
        return (self.spec.stream,)

    def key_fields(self, stream: str) -> tuple[str, ...]:
        """Event fields of `stream` that make the rule's key (default: the rule's `key`)."""
        return tuple(self.spec.key)

    def ref_keys(self, stream: str) -> frozenset[str]:
        """Which of `key_fields(stream)` are read from the event's reference row, not the event
        (ioc.rules.keys). Default: the names of `key` that are reference fields of the rule's
        stream and not event fields."""
        if stream != self.spec.stream:
            return frozenset()
        ctx = self.ctx
        return frozenset(name for name in self.spec.key if name not in ctx.fields and name in ctx.ref_fields)

    @property
    def key_names(self) -> tuple[str, ...]:
        """Names of the key values in alert records (default: the rule's `key`)."""
        return tuple(self.spec.key)

    def relevant(self, stream: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], bool] | None:
        """A test that is false only for events of `stream` that cannot change this rule's state
        (after `where`), so the runtime need not re-key them; None: any event may matter."""
        return None

    @property
    def opener(self) -> Callable[[Mapping[str, Any], Mapping[str, Any]], bool] | None:
        """A test of the events that give a key holding no state something to remember, when
        there is no allowed lateness; None: any event may. An event it is false for is not
        evaluated for a key the rule holds no state for (before the key limit is counted): the
        key stays untracked, as if `where` had been false."""
        return None

    @property
    def bound(self) -> tuple[str, str, float] | None:
        """(field, op, number) when `opener` is exactly `field OP number` (ioc.rules.thresholds
        sorts such rules by their number); None otherwise."""
        return None

    def watches(self, key: Key) -> bool:
        """Whether a key not tracked yet is one this rule keeps state for (asked only of new keys,
        before the key limit is counted). Default: every key."""
        return True

    def meaning_data(self) -> Any:
        """What the kind loaded besides its spec that decides its results (e.g. zone geometry),
        as JSON-able data or a digest: part of the rule's meaning (ioc.engine.meaning)."""
        return None

    def expired(self, state: State, watermark: float) -> bool:
        """Whether a key's state can be forgotten: every event still to come is at or after
        `watermark`, and no such event (nor a timer) would find anything in `state` that changes
        what the rule does, compared with a key never seen. The episode runtime's own entries
        (firing, `realert`) are judged by the engine. Default: never (a kind must say)."""
        return False

    def on_start(self, rt: Runtime, state: State, watermark: float) -> None:  # noqa: B027 - optional hook
        """The first watermark of a stream partition for this rule (absence of never-seen keys).

        `state` is a rule-wide state (not per key), shared by all partitions.
        """

    @abstractmethod
    def on_event(
        self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any], ts: float
    ) -> None:
        """An event of `key` passed the rule's `where`; update state, fire or resolve."""

    @abstractmethod
    def on_timer(self, rt: Runtime, key: Key, state: State, deadline: float) -> None:
        """The watermark passed `deadline`, scheduled earlier for `key` (may be stale)."""


class InstantSpec(RuleSpec):
    """Spec fields shared by instant kinds (match, new_value, sequence, tumbling windows)."""

    resolve_after: Duration = 300.0


class InstantRule(RuleKind):
    """Base of instant kinds: a match fires once; it resolves `resolve_after` after the last
    match, and a new match inside that time belongs to the same episode."""

    spec: InstantSpec

    def on_timer(self, rt: Runtime, key: Key, state: State, deadline: float) -> None:
        rt.instant_timer(key, state, deadline, self.spec.resolve_after)
