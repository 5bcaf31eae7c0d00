"""Errors of rule loading: each problem carries file, line, rule id and field.

Values quoted into messages are shortened, so that a huge value in a rule file never makes
a huge error message:

>>> shorten("x" * 500)
"'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' (500 characters)"
>>> shorten(42)
'42'
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ioc.exceptions import IocError

__all__ = ["RuleProblem", "RuleError", "shorten", "shorten_quoted", "closest", "did_you_mean", "QUOTE_CHARS"]

QUOTE_CHARS = 80  # characters of a value quoted in a message
_MESSAGE_CHARS = 2000  # a whole message is never longer than this
_REPR = reprlib.Repr()
_REPR.maxstring = QUOTE_CHARS + 2
_REPR.maxother = QUOTE_CHARS
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6
_REPR.maxlevel = 3


def closest(name: object, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The candidate a mistyped `name` most likely meant, if one is close enough (difflib); a
    value, a short word, wants a higher `cutoff` than a key ('median' is no misspelt 'min')."""
    if not isinstance(name, str):
        return None
    close = difflib.get_close_matches(name, list(candidates), 1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(name: object, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """`; did you mean 'x'?` to end a message's list of what is allowed, or nothing.

    >>> did_you_mean("levl_m", ["level_m", "lat"]), did_you_mean("zzz", ["level_m"])
    ("; did you mean 'level_m'?", '')
    """
    found = closest(name, candidates, cutoff)
    return f"; did you mean '{found}'?" if found is not None else ""


def shorten(value: Any, limit: int = QUOTE_CHARS) -> str:
    """`repr(value)` for a message, at most about `limit` characters: a longer text keeps its
    start, then "…" and its full length. Containers are shown in part (never expanded whole,
    so an alias bomb costs nothing to quote)."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        head = repr(value[:limit])
        return f"{head[:-1]}…{head[-1]} ({len(value):,} characters)"
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def shorten_quoted(message: str, values: Iterable[str] = ()) -> str:
    """`message` with the repr of each of `values` (texts of the rule that code quoted with
    `!r`) shortened, and at most 2,000 characters in all.

    >>> shorten_quoted(f"{'x' * 100!r} is not a duration", ["x" * 100])[-40:]
    "xxx…' (100 characters) is not a duration"
    """
    for value in values:
        if len(value) > QUOTE_CHARS:
            quoted = repr(value)
            if quoted in message:
                message = message.replace(quoted, shorten(value))
    if len(message) > _MESSAGE_CHARS:
        message = message[:_MESSAGE_CHARS] + f"… ({len(message):,} characters)"
    return message


@dataclass(frozen=True, order=True)
class RuleProblem:
    """One thing wrong in a rule file, printed as `file:line: rule 'id': field: message`."""

    file: str
    line: int
    rule_id: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        parts = [f"{self.file}:{self.line}:"]
        if self.rule_id is not None:
            parts.append(f"rule '{self.rule_id}':")
        if self.field:
            # A field name comes from the file (an unknown key may be any text): never whole.
            parts.append(f"{self.field if len(self.field) <= QUOTE_CHARS else shorten(self.field)}:")
        parts.append(self.message)
        return " ".join(parts)


class RuleError(IocError):
    """A rule set did not load; `problems` lists every error found, in file order."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = sorted(problems)
        count = len(self.problems)
        header = f"{count} error{'s' if count != 1 else ''} in the rules"
        super().__init__("\n".join([header, *(str(p) for p in self.problems)]))
