"""What a rule kind is: a typed spec plus an evaluator over per-key plain-data state.

A kind decides *when* a condition starts and stops holding; the engine's runtime owns
episodes (alert ids, realert, evidence, templates, SLA deadlines). A new kind is one module
with a `RuleSpec` subclass and a `RuleKind` subclass, plus one line in `RULE_KINDS`.

Per-key state is a plain dict (JSON-able) so that it can be snapshotted and restored;
the runtime keeps its own entries in it under keys starting with `_`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from ioc.rules.expr import Expression, ExpressionError, compile_expression
from ioc.rules.model import RuleSpec

__all__ = ["BuildContext", "KindProblem", "Runtime", "RuleKind", "Key", "State"]

Key = tuple[Any, ...]
State = dict[str, Any]


class KindProblem(Exception):  # noqa: N818 - carries one analyst-facing problem to the loader
    """A problem in one field of a rule, found while building its kind."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class BuildContext:
    """What a kind may use when it is built: the names its expressions can read."""

    stream: str
    fields: frozenset[str]
    ref_fields: frozenset[str]

    def expression(self, field: str, text: str, extra: Mapping[str, Any] | None = None) -> Expression:
        """Compile an expression of the rule, turning errors into a KindProblem for `field`."""
        try:
            return compile_expression(text, self.fields, self.ref_fields, extra)
        except ExpressionError as exc:
            raise KindProblem(field, f"{exc.message} in {text!r}") from None


class Runtime(Protocol):
    """What the engine offers a kind while it evaluates (see ioc.engine.runtime)."""

    def fire(
        self, key: Key, state: State, *, starts_at: float, value: Any,
        event: Mapping[str, Any] | None, ref: Mapping[str, Any],
    ) -> None: ...

    def resolve(self, key: Key, state: State, *, ends_at: float) -> None: ...

    def schedule(self, deadline: float, key: Key) -> None: ...

    def note(self, state: State, event: Mapping[str, Any]) -> None:
        """Keep the event's id as evidence for the coming or current episode."""

    def project(self, event: Mapping[str, Any], ref: Mapping[str, Any]) -> dict[str, Any]:
        """The fields of an event and its reference row that the rule's templates use."""


class RuleKind(ABC):
    """Evaluator of one loaded rule. Subclasses set `Spec` and implement the two hooks."""

    Spec: ClassVar[type[RuleSpec]]
    # Spec fields holding expressions, checked even when other fields of the rule are invalid.
    EXPRESSION_FIELDS: ClassVar[tuple[str, ...]] = ()

    def __init__(self, spec: RuleSpec, ctx: BuildContext) -> None:
        self.spec = spec
        self.ctx = ctx

    @property
    def template_names(self) -> frozenset[str]:
        """Names a summary template may use besides event and reference fields."""
        return frozenset({"value"})

    @abstractmethod
    def on_event(
        self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any], ts: float
    ) -> None:
        """An event of `key` passed the rule's `where`; update state, fire or resolve."""

    @abstractmethod
    def on_timer(self, rt: Runtime, key: Key, state: State, deadline: float) -> None:
        """The watermark passed `deadline`, scheduled earlier for `key` (may be stale)."""
