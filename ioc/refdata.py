"""Reference data joined to events by key: `config/reference/<stream>.yaml`.

A file holds `key:` (the event field to join on, usually `source_id`) and `items:`, a list
of rows with the same fields. Rules read those fields by name (`nwl_m`, `bd2_m`...).

>>> ref = load_reference("config/reference")            # doctest: +SKIP
>>> ref.table("reservoir").lookup({"source_id": "ta-trach"})["nwl_m"]
45.0
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ioc.events.schemas import STREAMS
from ioc.exceptions import IocError
from ioc.rules.yamlload import MAX_NODES, YamlProblems, load_yaml

MAX_FILE_BYTES = 1_048_576  # the default of limits.rule_file_bytes

__all__ = ["RefTable", "Reference", "ReferenceError", "load_reference", "EMPTY_ROW"]

EMPTY_ROW: Mapping[str, Any] = {}


class ReferenceError(IocError):  # noqa: A001 - our own name, scoped to this package
    """A reference data file is missing fields or malformed."""


@dataclass(frozen=True)
class RefTable:
    """Rows of one stream's reference data, by the value of the join field."""

    stream: str
    key: str
    rows: dict[str, dict[str, Any]]
    fields: frozenset[str]

    def lookup(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.rows.get(event.get(self.key), EMPTY_ROW)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Reference:
    """All reference tables, by stream."""

    tables: dict[str, RefTable] = field(default_factory=dict)

    def table(self, stream: str) -> RefTable | None:
        return self.tables.get(stream)

    def rows(self, stream: str) -> dict[str, dict[str, Any]]:
        """The stream's rows by join value ({} without reference data)."""
        table = self.tables.get(stream)
        return table.rows if table else {}

    def fields(self, stream: str) -> frozenset[str]:
        table = self.tables.get(stream)
        return table.fields - {table.key} if table else frozenset()


def load_reference(
    directory: str | Path, *, max_bytes: int = MAX_FILE_BYTES, max_nodes: int = MAX_NODES,
) -> Reference:
    """Load every `<stream>.yaml` in `directory` (a missing directory means no reference data).

    Bounded like rule files: a file over `max_bytes` (limits.rule_file_bytes) is refused before
    it is read, and one over `max_nodes` YAML values (aliases expanded, limits.yaml_nodes) while
    it is parsed."""
    base = Path(directory)
    tables: dict[str, RefTable] = {}
    for stream in STREAMS:
        path = base / f"{stream}.yaml"
        if path.exists():
            tables[stream] = _load_table(stream, path, max_bytes, max_nodes)
    return Reference(tables)


def _load_table(stream: str, path: Path, max_bytes: int, max_nodes: int) -> RefTable:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ReferenceError(f"{path}: the file is {size:,} bytes, more than the limit of {max_bytes:,} bytes "
                                 "(limits.rule_file_bytes)")
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise ReferenceError(f"{path}: the file is more than the limit of {max_bytes:,} bytes "
                                 "(limits.rule_file_bytes)")
        data, _ = load_yaml(raw.decode("utf-8"), str(path), max_nodes=max_nodes)
        data = data or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ReferenceError(f"{path}: cannot be read: {exc}") from None
    except YamlProblems as exc:
        raise ReferenceError("\n".join(str(problem) for problem in exc.problems)) from None
    except yaml.YAMLError as exc:
        raise ReferenceError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ReferenceError(f"{path}: expected a mapping with 'key' and an 'items' list")
    key = data.get("key", "source_id")
    rows: dict[str, dict[str, Any]] = {}
    names: set[str] = set()
    for index, item in enumerate(data["items"]):
        if not isinstance(item, dict) or key not in item:
            raise ReferenceError(f"{path}: item {index + 1} has no '{key}'")
        if item[key] in rows:
            raise ReferenceError(f"{path}: '{item[key]}' is listed twice")
        rows[str(item[key])] = dict(item)
        names.update(item)
    return RefTable(stream, key, rows, frozenset(names))
