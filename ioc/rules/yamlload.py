"""YAML loading that remembers line numbers and rejects duplicate keys.

>>> doc, problems = load_yaml("rules:\n  - id: a\n    severity: info\n", "x.yaml")
>>> doc["rules"][0].line_of("severity")
3
"""

from __future__ import annotations

from typing import Any

import yaml

from ioc.rules.exceptions import RuleProblem

__all__ = ["LineDict", "LineList", "load_yaml", "YamlProblems"]


class LineDict(dict[str, Any]):
    """A mapping from YAML that knows the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str | None) -> int:
        if key is None:
            return self.line
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence from YAML that knows the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]


class YamlProblems(Exception):  # noqa: N818 - internal carrier, converted to RuleError
    def __init__(self, problems: list[RuleProblem]) -> None:
        super().__init__(problems)
        self.problems = problems


class _Loader(yaml.SafeLoader):
    """SafeLoader building LineDict/LineList and collecting duplicate keys."""

    def __init__(self, stream: str, filename: str) -> None:
        super().__init__(stream)
        self.filename = filename
        self.problems: list[RuleProblem] = []


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            key = str(key)
        if key in result:
            loader.problems.append(
                RuleProblem(loader.filename, line, None, key, f"duplicate key (first at line {result.key_lines[key]})")
            )
            loader.construct_object(value_node, deep=True)
            continue
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)  # type: ignore[arg-type]
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)  # type: ignore[arg-type]


def load_yaml(text: str, filename: str) -> tuple[Any, list[RuleProblem]]:
    """Parse YAML text into (document, duplicate-key problems).

    A syntax error raises YamlProblems with file, line and a message an analyst can act on.
    Duplicate keys do not stop loading (the first value is kept), so the other errors of the
    file are still found.
    """
    loader = _Loader(text, filename)
    try:
        document = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        raise YamlProblems([_syntax_problem(text, filename, exc)]) from None
    except yaml.YAMLError as exc:
        raise YamlProblems([RuleProblem(filename, 1, None, None, f"not valid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return document, loader.problems


def _syntax_problem(text: str, filename: str, exc: yaml.MarkedYAMLError) -> RuleProblem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    problem = exc.problem or str(exc)
    lines = text.splitlines()
    indent = lines[line - 1][: (mark.column if mark else 0) + 1] if 0 < line <= len(lines) else ""
    if "'\\t'" in problem or ("\t" in indent and not indent.strip()):
        return RuleProblem(filename, line, None, None,
                           "not valid YAML: a tab cannot be used for indentation (use spaces)")
    unclosed = _unclosed_quote(lines[:line])
    if unclosed is not None:
        number, quote = unclosed
        return RuleProblem(filename, number, None, None,
                           f"not valid YAML: the quoted text that starts here is never closed (missing '{quote}')")
    if problem == "mapping values are not allowed here":
        problem += " (put text that contains ': ' in quotes)"
    return RuleProblem(filename, line, None, None, f"not valid YAML: {problem}")


def _unclosed_quote(lines: list[str]) -> tuple[int, str] | None:
    """The first line whose value opens a quote that the line does not close, if any."""
    for number, raw in enumerate(lines, start=1):
        _, sep, value = raw.partition(": ")
        value = value.strip() if sep else raw.strip().removeprefix("- ").strip()
        if value[:1] in ("'", '"'):
            quote = value[0]
            body = value[1:]
            escaped = "\\" + quote if quote == '"' else quote * 2
            closed = body.replace(escaped, "").count(quote)
            if closed == 0:
                return number, quote
    return None
