"""Fields a deployment declares for a stream in its configuration (`fields:` in config/ioc.yaml).

A deployment's sensors may send fields the built-in schemas do not know (a ward, an area). Once
declared (name, type, range or allowed values, unit, description), such a field is part of the
stream's schema: the decoder checks it (a wrong type or an out-of-range value is a dead letter
with its reason, like a built-in field; absent is allowed unless `required`), rules may read it
with the same load-time checks as a built-in field, and docs/streams.md lists it when generated
with that configuration. The extended models derive from the built-in ones
(`pydantic.create_model` with the stream's model as base), so the decoder's msgspec fast path
(ioc.events.fastpath) is derived from them as from the built-in ones.

Nothing here is global: an `EventSchemas` is built from the settings (`Settings.schemas()`) and
passed to what loads rules (`load_rules(..., schemas=)`) and decodes events (`decode(...,
schemas=)`, `Pipeline(schemas=)`); a rule set keeps the schemas it was loaded with.

>>> ward = DeclaredField(name="ward", type="text", description="ward of the camera")
>>> schemas = build_schemas({"camera": [ward]})
>>> "ward" in schemas.fields("camera"), "ward" in BUILTIN.fields("camera")
(True, False)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from annotated_types import Ge, Le
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from ioc.events.schemas import SCHEMAS, STREAMS, BaseEvent

__all__ = ["BUILTIN", "DeclaredField", "EventSchemas", "FIELD_TYPES", "build_schemas"]

FieldType = Literal["text", "number", "integer", "bool"]
FIELD_TYPES: tuple[str, ...] = ("text", "number", "integer", "bool")
_PYTHON: dict[str, type] = {"text": str, "number": float, "integer": int, "bool": bool}


class DeclaredField(BaseModel):
    """One declared field of a stream (an item of `fields.<stream>` in the configuration)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    type: FieldType
    min: float | None = None
    max: float | None = None
    values: tuple[str | float, ...] | None = None
    required: bool = False
    unit: str = ""
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> DeclaredField:
        numeric = self.type in ("number", "integer")
        if (self.min is not None or self.max is not None) and not numeric:
            raise ValueError(f"field '{self.name}': min/max apply to number and integer fields, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"field '{self.name}': min ({self.min:g}) is above max ({self.max:g})")
        if self.values is not None:
            if self.type != "text":
                raise ValueError(f"field '{self.name}': values apply to text fields (use min/max for numbers)")
            if not self.values or not all(isinstance(value, str) for value in self.values):
                raise ValueError(f"field '{self.name}': values must be a non-empty list of texts")
        return self

    def annotation(self) -> Any:
        """The field's type for the pydantic model (None allowed unless required)."""
        kind: Any
        if self.values is not None:
            kind = Literal[tuple(self.values)]
        else:
            kind = _PYTHON[self.type]
            if self.min is not None:
                kind = Annotated[kind, Ge(self.min)]
            if self.max is not None:
                kind = Annotated[kind, Le(self.max)]
        return kind if self.required else kind | None


@dataclass(frozen=True, eq=False)
class EventSchemas:
    """The event model of each stream: the built-in ones, extended by declared fields."""

    models: Mapping[str, type[BaseEvent]]
    declared: Mapping[str, tuple[DeclaredField, ...]] = field(default_factory=dict)

    def model(self, stream: str) -> type[BaseEvent]:
        return self.models[stream]

    @functools.cached_property
    def _fields(self) -> dict[str, frozenset[str]]:
        return {stream: frozenset(model.model_fields) for stream, model in self.models.items()}

    def fields(self, stream: str) -> frozenset[str]:
        """Every field name of the stream, built-in and declared."""
        return self._fields[stream]

    def declared_of(self, stream: str) -> tuple[DeclaredField, ...]:
        return self.declared.get(stream, ())


BUILTIN = EventSchemas(SCHEMAS)


def build_schemas(declared: Mapping[str, Sequence[DeclaredField]]) -> EventSchemas:
    """The schemas with `declared` fields added to their streams; ValueError when a stream is
    unknown, or a field is declared twice or is a built-in field of its stream."""
    if not any(declared.values()):
        return BUILTIN
    models = dict(SCHEMAS)
    kept: dict[str, tuple[DeclaredField, ...]] = {}
    for stream, fields in declared.items():
        if stream not in STREAMS:
            raise ValueError(f"'{stream}' is not a stream (allowed: {', '.join(STREAMS)})")
        base = SCHEMAS[stream]
        names = [f.name for f in fields]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"{stream}: field '{twice[0]}' is declared twice")
        clash = sorted(set(names) & set(base.model_fields))
        if clash:
            raise ValueError(f"{stream}: '{clash[0]}' is a built-in field of the stream (declare only new fields)")
        if not fields:
            continue
        definitions: dict[str, Any] = {f.name: (f.annotation(), ... if f.required else None) for f in fields}
        models[stream] = create_model(f"{base.__name__}Declared", __base__=base, **definitions)
        kept[stream] = tuple(fields)
    return EventSchemas(models, kept)
