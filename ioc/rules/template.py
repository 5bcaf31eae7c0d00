"""Summary/description templates: `str.format` fields over event and reference data.

>>> t = Template("Ho {name}: muc nuoc {level_m:.2f} m", {"name", "level_m"})
>>> t.render({"name": "Tả Trạch", "level_m": 44.6})
'Ho Tả Trạch: muc nuoc 44.60 m'
>>> t.render({"name": "Tả Trạch"})     # a missing value shows as '?', never an exception
'Ho Tả Trạch: muc nuoc ? m'

Only plain names are allowed in braces: `{x.__class__}` or `{x[0]}` are load-time errors,
so a template can never reach Python internals. Widths and precisions are bounded at load
(`max_width`, limits.template_width), and a rendered text is cut to `max_chars` characters
(limits.alert_text_chars), ending with "…":

>>> Template("{name:>500}", {"name"})      # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ioc.rules.template.TemplateError: '{name:>500}': format width/precision 500 is more than the limit of 200 ...
>>> Template("{name}", {"name"}, max_chars=80).render({"name": "x" * 1000})[-3:]
'xx…'
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ioc.exceptions import IocError
from ioc.rules.exceptions import did_you_mean

__all__ = ["Template", "TemplateError"]

_FORMATTER = string.Formatter()
_NUMBER = re.compile(r"\d+")
MAX_WIDTH = 200  # the default of limits.template_width
MAX_CHARS = 2000  # the default of limits.alert_text_chars
ELLIPSIS = "…"


class TemplateError(IocError):
    """A template refers to an unknown name or uses a form that is not allowed."""


@dataclass(frozen=True)
class _Field:
    name: str
    spec: str
    conversion: str | None


class Template:
    """A compiled template: literal text and named fields, checked at load time."""

    def __init__(
        self, text: str, known: Iterable[str], *, max_width: int = MAX_WIDTH, max_chars: int = MAX_CHARS,
    ) -> None:
        self.text = text
        self.max_chars = max_chars
        known_names = set(known)
        parts: list[str | _Field] = []
        try:
            parsed = list(_FORMATTER.parse(text))
        except ValueError as exc:
            raise TemplateError(f"{exc} (use {{{{ and }}}} for literal braces)") from None
        for literal, name, spec, conversion in parsed:
            if literal:
                parts.append(literal)
            if name is None:
                continue
            if not name.isidentifier():
                raise TemplateError(f"'{{{name}}}' is not allowed: use a plain field name such as {{level_m}}")
            if name not in known_names:
                hint = did_you_mean(name, known_names)
                raise TemplateError(f"unknown field '{name}' (known: {_listing(known_names)}{hint})")
            if spec and ("{" in spec or "}" in spec):
                raise TemplateError(f"'{{{name}:{_cut(spec)}}}': nested fields in a format spec are not allowed")
            for number in _NUMBER.findall(spec or ""):
                # Width and precision (and a digit used as fill): '{x:>200000000}' would render
                # 200 MB per alert. Compared as text first: int() of a huge digit run is slow.
                if len(number.lstrip("0")) > len(str(max_width)) or int(number) > max_width:
                    raise TemplateError(f"'{{{name}:{_cut(spec or '')}}}': format width/precision {_cut(number, 20)} "
                                        f"is more than the limit of {max_width} (limits.template_width)")
            if conversion not in (None, "r", "s"):
                raise TemplateError(f"'{{{name}!{conversion}}}': conversion must be !r or !s")
            parts.append(_Field(name, spec or "", conversion))
        self._parts = tuple(parts)
        self.names = frozenset(p.name for p in parts if isinstance(p, _Field))

    def render(self, values: Mapping[str, Any]) -> str:
        """The text for these values, at most `max_chars` characters (cut with "…")."""
        out = []
        for part in self._parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = values.get(part.name)
            if value is None:
                out.append("?")
                continue
            if part.conversion == "r":
                value = repr(value)
            try:
                out.append(format(value, part.spec))
            except (ValueError, TypeError):
                out.append(str(value))
        text = "".join(out)
        if len(text) > self.max_chars:
            text = text[: self.max_chars - 1] + ELLIPSIS
        return text

    def __repr__(self) -> str:
        return f"Template({self.text!r})"


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit]}{ELLIPSIS}"


def _listing(names: Iterable[str], limit: int = 20) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:limit])
    return shown + (", ..." if len(ordered) > limit else "")
