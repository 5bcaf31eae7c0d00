"""YAML loading that remembers line numbers, rejects duplicate keys and is bounded.

>>> doc, problems = load_yaml("rules:\n  - id: a\n    severity: info\n", "x.yaml")
>>> doc["rules"][0].line_of("severity")
3

Bounded: a document may hold at most `max_nodes` nodes, an alias (`*name`) counting every node
of what it repeats each time it is used, so an "alias bomb" (a few lines that expand to
billions of values) is refused while it is read, before anything walks the expanded value;
it may nest at most `max_depth` levels, and an alias may not repeat a node it is part of.

>>> load_yaml("a: &x [1, 2]\nb: [*x, *x, *x]\n", "x.yaml", max_nodes=8)   # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ioc.rules.yamlload.YamlProblems: ...
"""

from __future__ import annotations

from typing import Any

import yaml

from ioc.rules.exceptions import RuleProblem, shorten

__all__ = ["LineDict", "LineList", "load_yaml", "YamlProblems", "MAX_NODES", "MAX_DEPTH"]

MAX_NODES = 100_000  # the default of limits.yaml_nodes
MAX_DEPTH = 100


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


class _TooBig(Exception):  # noqa: N818 - internal carrier, converted to a RuleProblem
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Loader(yaml.SafeLoader):
    """SafeLoader building LineDict/LineList, collecting duplicate keys, counting nodes."""

    def __init__(self, stream: str, filename: str, max_nodes: int, max_depth: int) -> None:
        super().__init__(stream)
        self.filename = filename
        self.problems: list[RuleProblem] = []
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.nodes = 0
        self._open: list[str | None] = []  # anchors of the nodes being composed, outermost first
        self._sizes: dict[int, int] = {}  # id(node) -> nodes in its subtree, aliases expanded

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:
                raise _TooBig(line, f"alias *{event.anchor} is used inside the node it names "
                                    "(a document that contains itself)")
            node = super().compose_node(parent, index)
            self._add(self._size(node) if node is not None else 1, line)
            return node
        if len(self._open) >= self.max_depth:
            raise _TooBig(line, f"nested more than {self.max_depth} levels deep")
        self._open.append(getattr(event, "anchor", None))
        try:
            node = super().compose_node(parent, index)
        finally:
            self._open.pop()
        self._add(1, line)
        return node

    def _add(self, count: int, line: int) -> None:
        self.nodes += count
        if self.nodes > self.max_nodes:
            raise _TooBig(line, f"the file has more than {self.max_nodes:,} YAML values, counting each alias "
                                f"(*name) as every value it repeats (limit: limits.yaml_nodes = {self.max_nodes:,})")

    def _size(self, node: yaml.Node) -> int:
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(self._size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(self._size(key) + self._size(value) for key, value in node.value)
        self._sizes[id(node)] = size
        return size


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            # A complex key (`? [..]`) is shown in part: it may be a whole document.
            key = str(key) if isinstance(key, (int, float, bool)) or key is None else shorten(key)
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


def load_yaml(
    text: str, filename: str, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH,
) -> tuple[Any, list[RuleProblem]]:
    """Parse YAML text into (document, duplicate-key problems).

    A syntax error, or a document over the limits, raises YamlProblems with file, line and a
    message an analyst can act on. Duplicate keys do not stop loading (the first value is
    kept), so the other errors of the file are still found.
    """
    try:
        # The reader checks the text's characters as soon as it is built (a NUL byte raises here).
        loader = _Loader(text, filename, max_nodes, max_depth)
    except yaml.YAMLError as exc:
        raise YamlProblems([_reader_problem(text, filename, exc)]) from None
    try:
        document = loader.get_single_data()
    except _TooBig as exc:
        raise YamlProblems([RuleProblem(filename, exc.line, None, None, exc.message)]) from None
    except RecursionError:
        raise YamlProblems([RuleProblem(filename, 1, None, None, "nested too deeply")]) from None
    except yaml.MarkedYAMLError as exc:
        raise YamlProblems([_syntax_problem(text, filename, exc)]) from None
    except yaml.YAMLError as exc:
        raise YamlProblems([_reader_problem(text, filename, exc)]) from None
    finally:
        loader.dispose()
    return document, loader.problems


def _reader_problem(text: str, filename: str, exc: yaml.YAMLError) -> RuleProblem:
    """A reader error (a character YAML does not allow) at its line, in one line of text."""
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.position, int):
        line = text.count("\n", 0, exc.position) + 1
        return RuleProblem(filename, line, None, None,
                           f"not valid YAML: character #x{exc.character:04x} is not allowed in YAML text")
    return RuleProblem(filename, 1, None, None, f"not valid YAML: {str(exc).splitlines()[0]}")


def _syntax_problem(text: str, filename: str, exc: yaml.MarkedYAMLError) -> RuleProblem:
    mark = exc.problem_mark or exc.context_mark
    if exc.problem and "could not find expected ':'" in exc.problem and exc.context_mark is not None:
        mark = exc.context_mark  # the line without its ':' (PyYAML notices it on the next one)
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
    return RuleProblem(filename, line, None, None, f"not valid YAML: {_plain(problem)}")


# PyYAML's words for the usual mistakes, and what they mean to someone editing a rule file.
_PLAIN = (
    ("mapping values are not allowed here",
     "a ':' where a value was expected (put text that contains ': ' in quotes)"),
    ("expected <block end>, but found",
     "this line does not line up with the lines above it (check how many spaces indent it)"),
    ("could not find expected ':'",
     "a line without 'key: value' (text that goes on over several lines needs quotes)"),
    ("expected ',' or ']', but got", "a list in [ ] that is not closed, or items not separated by ','"),
    ("expected ',' or '}', but got", "a mapping in { } that is not closed, or items not separated by ','"),
    ("found undefined alias", "an alias (*name) with no anchor (&name) before it"),
    ("that cannot start any token", "a value starts with a character YAML reserves (put the value in quotes)"),
)


def _plain(problem: str) -> str:
    """PyYAML's problem in plain words, with its own words after (in parentheses)."""
    for words, meaning in _PLAIN:
        if words in problem:
            return f"{meaning} (YAML: {problem})"
    return problem


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
