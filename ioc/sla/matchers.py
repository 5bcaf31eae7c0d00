"""Label matchers of the notification policy, as Alertmanager writes them: `=`, `!=`, `=~`, `!~`.

A label the alert does not have is the empty string (so `team=""` matches alerts without
`team`). Regexes go through the project's RE2 helper and are anchored at both ends, as
Alertmanager anchors them: `severity=~"crit"` does not match `critical`.

>>> m = parse_matcher('severity=~"critical|emergency"')
>>> m.matches({"severity": "critical"}), m.matches({"severity": "warning"})
(True, False)
>>> str(m)
'severity=~"critical|emergency"'
>>> [str(x) for x in parse_matchers({"domain": "water", "source_id": "ta-trach"})]
['domain="water"', 'source_id="ta-trach"']
>>> parse_matcher("severity>critical")
Traceback (most recent call last):
...
ioc.sla.matchers.MatcherError: matcher 'severity>critical': expected name, operator (=, !=, =~, !~) and value, ...
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ioc.exceptions import IocError
from ioc.rules.regex import Regex, RegexError, compile_regex

__all__ = ["MatcherError", "Matcher", "Op", "parse_matcher", "parse_matchers", "matches_all"]

Op = Literal["=", "!=", "=~", "!~"]

# Longest operators first, so that `=~` is not read as `=` and a value starting with `~`.
_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.DOTALL)
_MAX_TEXT = 4096


class MatcherError(IocError, ValueError):
    """A matcher that cannot be parsed or compiled; the message quotes it and says what is allowed."""


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher. `matches(labels)` reads a missing label as ""."""

    name: str
    op: Op
    value: str
    _regex: Regex | None = field(default=None, compare=False, repr=False)

    @classmethod
    def build(cls, name: str, op: Op, value: str) -> Matcher:
        """A matcher with its regex compiled (anchored) when `op` is `=~` or `!~`.

        >>> Matcher.build("rule_id", "!~", "cyber\\\\..*").matches({"rule_id": "cyber.bruteforce"})
        False
        """
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = compile_regex(rf"\A(?:{value})\Z")
            except RegexError as exc:
                raise MatcherError(f"matcher {name}{op}{_quote(value)}: {exc}") from None
        return cls(name, op, value, regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self._regex is not None:
            return self._regex.search(actual) == (self.op == "=~")
        return (actual == self.value) == (self.op == "=")

    def __str__(self) -> str:
        return f"{self.name}{self.op}{_quote(self.value)}"


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def parse_matcher(text: str) -> Matcher:
    """A matcher from `name OP value`, the value bare or in double quotes (JSON escapes)."""
    if not isinstance(text, str):
        raise MatcherError(f"a matcher must be text such as severity=\"critical\", not {type(text).__name__}")
    shown = text if len(text) <= 80 else text[:80] + "…"
    if len(text) > _MAX_TEXT:
        raise MatcherError(f"matcher {shown!r}: longer than {_MAX_TEXT} characters")
    match = _MATCHER.match(text)
    if match is None:
        raise MatcherError(
            f"matcher {shown!r}: expected name, operator (=, !=, =~, !~) and value, "
            'e.g. severity=~"critical|emergency"'
        )
    name, op, raw = match.groups()
    if raw.startswith('"'):
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, str):
            raise MatcherError(f"matcher {shown!r}: the quoted value is not closed or has a bad escape")
    elif any(ch in raw for ch in '"{},=!~<>'):
        raise MatcherError(f"matcher {shown!r}: quote a value that has any of \" {{ }} , = ! ~ < > in it")
    else:
        value = raw
    return Matcher.build(name, op, value)  # type: ignore[arg-type]  # the pattern admits only the four


def _split(text: str) -> list[str]:
    """Split `{a="x", b=~"y,z"}` at the commas outside quotes."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in body:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def parse_matchers(spec: str | Mapping[str, object] | Iterable[str] | None) -> tuple[Matcher, ...]:
    """Matchers from a string (`{a="x", b=~"y"}` or one matcher), a list of matcher strings, or a
    YAML map `{name: value}` (equality). An empty spec is no matcher, which matches every alert."""
    if spec is None:
        return ()
    if isinstance(spec, str):
        return tuple(parse_matcher(part) for part in _split(spec))
    if isinstance(spec, Mapping):
        out = []
        for name, value in spec.items():
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise MatcherError(f"matcher map {name!r}: the value must be text, not {type(value).__name__}")
            out.append(parse_matcher(f"{name}={_quote(str(value))}"))
        return tuple(out)
    if isinstance(spec, Iterable):
        return tuple(parse_matcher(item) for item in spec)
    raise MatcherError(f"matchers must be text, a list of texts or a map, not {type(spec).__name__}")


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """True when every matcher matches (so also for no matcher at all)."""
    return all(m.matches(labels) for m in matchers)
