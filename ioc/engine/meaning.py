"""A rule's *meaning*: what decides its state and its alert ids, without its presentation.

Two loads of a rule with the same meaning evaluate alike, so state saved under one is valid for
the other: a reload (or a restart from a checkpoint) that changes only a summary keeps the
rule's state and the ids of its firing alerts, and the new text applies from the rule's next
transition. Alert ids are `fingerprint(rule id, key)` + the episode's start (ioc.alerts), so
what can change an id or a decision is meaning; what only shows in a record is presentation.

* Meaning: the kind (its class), the key, `where`, the condition and every kind field (windows,
  `for`, zones...), `value`, `realert` (it decides when a new episode may start), the reference
  data of the rule's streams that it can read (the listed keys, and the columns its meaning
  names: a column only a template shows is presentation) and what the kind loaded from files
  (zones), and the periods of `active` (a calendar's contents).
* Presentation: `summary`, `description`, `annotations`, `runbook_url`, `severity`, `labels` (and so
  the domain), `sla`
  (deadlines are computed when a record is made). `enabled` is not part of either: a disabled
  rule is not loaded at all.
* Neither: the state bounds `max_keys` and `key_ttl` (a tighter bound applies to what is kept).

>>> meaning(rule) == meaning(same_rule_with_another_summary)          # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import re
import weakref
from typing import Any

import orjson

from ioc.refdata import RefTable
from ioc.rules.loader import CompiledRule

__all__ = ["NOT_MEANING", "PRESENTATION", "meaning", "presentation"]

PRESENTATION = frozenset({"summary", "description", "severity", "labels", "sla", "annotations", "runbook_url"})
NOT_MEANING = PRESENTATION | {"enabled", "max_keys", "key_ttl"}

_MEANINGS: weakref.WeakKeyDictionary[CompiledRule, str] = weakref.WeakKeyDictionary()


def meaning(rule: CompiledRule) -> str:
    """A short hash of the rule's meaning (see the module docstring); computed once per rule."""
    found = _MEANINGS.get(rule)
    if found is None:
        kind = type(rule.kind)
        reference = rule.kind.ctx.reference
        spec = rule.spec.model_dump(mode="json", exclude=set(NOT_MEANING))
        named = set(_NAME.findall(orjson.dumps(spec).decode()))
        tables = {stream: _read_rows(reference.table(stream), named) for stream in rule.streams}
        data = [f"{kind.__module__}.{kind.__qualname__}", spec, tables, rule.kind.meaning_data()]
        if rule.periods is not None:
            data.append(rule.periods.spans)  # what a calendar named in `active:` holds
        found = _MEANINGS[rule] = _digest(data)
    return found


def presentation(rule: CompiledRule) -> str:
    """A short hash of the rule's presentation fields: equal for rules whose records read alike."""
    return _digest(rule.spec.model_dump(mode="json", include=set(PRESENTATION)))


def _digest(data: Any) -> str:
    text = orjson.dumps(data, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(text).hexdigest()[:16]


def _read_rows(table: RefTable | None, named: set[str]) -> Any:
    """The rows of a reference table as the rule can read them: every listed key (absence
    expects them, a join finds them or not), with the columns the rule's meaning names. Names are
    matched as words anywhere in the meaning (expressions, `field:`...), so more columns may be
    counted than are read, never fewer."""
    if table is None:
        return None
    columns = sorted(table.fields & named)
    return {key: [row.get(column) for column in columns] for key, row in table.rows.items()}, columns


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
