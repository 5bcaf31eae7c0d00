"""Rule keys read through reference data: a key field may be a field of the stream's reference row.

A rule's key (`key: [gauge]`, a sequence's `by: {reservoir: source_id, camera: gauge}`) names
event fields, or fields of the event's reference row (config/reference/<stream>.yaml, joined by
its key, usually `source_id`). A name that is an event field of the stream is read from the
event (an event field wins, as in expressions); any other from the reference row. A key with a
missing or null value is no key: the event is ignored by the rule (a camera whose `gauge` is
null joins nothing).

The engine reads keys with `tuple([event.get(name) for name in fields])`, the fastest way for
the plain keys of almost every rule. The key fields of a rule that reads some from reference
data are a `RefKey`: iterated, it gives its event fields and, in place of each reference field,
`FROM_REF`, which no event holds (events have text keys), so that plain read gives None there;
the engine then sees the `RefKey` and reads the key with `RefKey.read`. Rules without reference
keys pay nothing for it.

>>> fields = route_fields(("gauge",), frozenset({"gauge"}))
>>> fields.read({"source_id": "cam-031"}, {"gauge": "kim-long"})
('kim-long',)
>>> tuple([{"gauge": "forged"}.get(name) for name in fields])
(None,)
>>> route_fields(("source_id",), frozenset())
('source_id',)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from ioc.rules.exceptions import did_you_mean

__all__ = ["FROM_REF", "RefKey", "route_fields", "read_key", "unknown_key_field"]


class _FromRef:
    """The stand-in name of a reference field in a `RefKey`: never a key of an event."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "FROM_REF"


# Typed as a name so that a RefKey is the tuple of names the engine iterates.
FROM_REF: str = cast(str, _FromRef())


class RefKey(tuple[str, ...]):
    """Key fields some of which are read from the reference row (see the module docstring)."""

    names: tuple[str, ...]
    ref: frozenset[str]

    def __new__(cls, names: Iterable[str], ref: frozenset[str]) -> RefKey:
        names = tuple(names)
        self = super().__new__(cls, [FROM_REF if name in ref else name for name in names])
        self.names = names
        self.ref = ref
        return self

    def read(self, event: Mapping[str, Any], ref: Mapping[str, Any]) -> tuple[Any, ...]:
        """The key of `event` (whose reference row is `ref`); None where a value is missing."""
        refs = self.ref
        return tuple([ref.get(name) if name in refs else event.get(name) for name in self.names])

    def __repr__(self) -> str:
        return f"RefKey({self.names!r}, ref={sorted(self.ref)!r})"

    def __reduce__(self) -> Any:
        return (RefKey, (self.names, self.ref))


def route_fields(names: Iterable[str], ref: frozenset[str]) -> tuple[str, ...]:
    """The key fields as the engine reads them: the plain names, or a RefKey when `ref` (the
    names read from the reference row) is not empty."""
    names = tuple(names)
    return RefKey(names, ref) if ref & set(names) else names


def read_key(fields: tuple[str, ...], event: Mapping[str, Any], ref: Mapping[str, Any]) -> tuple[Any, ...]:
    """The key of an event by `fields` (plain names or a RefKey), outside the engine's loop."""
    if isinstance(fields, RefKey):
        return fields.read(event, ref)
    return tuple([event.get(name) for name in fields])


def unknown_key_field(name: str, stream: str, event_fields: Iterable[str], ref_fields: Iterable[str]) -> str:
    """The problem of a key or join field that is neither an event nor a reference field.

    >>> unknown_key_field("guage", "camera", ["ts"], ["gauge"])
    "unknown field 'guage' of stream 'camera' (event fields: ts; reference fields: gauge; did you mean 'gauge'?)"
    """
    event_names, ref_names = sorted(event_fields), sorted(set(ref_fields) - set(event_fields))
    known = f"event fields: {', '.join(event_names)}"
    if ref_names:
        known += f"; reference fields: {', '.join(ref_names)}"
    else:
        known += "; no reference data"
    return f"unknown field '{name}' of stream '{stream}' ({known}{did_you_mean(name, event_names + ref_names)})"
