"""User regular expressions (`matches()` and the `match` kind's `regex`): Python's syntax, run by
RE2 in time linear in the text, so no pattern can stall a worker. What RE2 cannot run
(lookaround, backreferences, atomic groups, possessive quantifiers) is refused with what to write
instead; Python meanings RE2 spells differently (Unicode \\w \\d \\s, {,n}, $, \\Z) are
translated.

>>> compile_regex("(a+)+$").search("a" * 100_000 + "!")
False
"""

from __future__ import annotations

import re
from typing import Any

import re2

__all__ = ["MAX_PATTERN_CHARS", "Regex", "RegexError", "compile_regex"]

MAX_PATTERN_CHARS = 2000
CACHED_TEXTS = 1024  # per pattern: ~300 KB of ASCII text at most, ~1 MB of other text (see Regex._seen)
CACHED_CHARS = 256
_RE2_MAX_MEM = 8 << 20  # bytes of compiled program per pattern (RE2's default, stated)
# Python's Unicode classes, which RE2 spells out (its own \w, \d, \s are ASCII).
_WORD, _DIGIT, _SPACE = r"\p{L}\p{N}_", r"\p{Nd}", r"\t-\r\x{1c}-\x{20}\x{85}\p{Z}"
_CLASSES = {"w": _WORD, "d": _DIGIT, "s": _SPACE}
_LOOK = "RE2, which runs every pattern in time linear in the text, has no lookaround"
_NO_BACKTRACK = "RE2 never backtracks, so it is not needed"
_GROUP_FORMS: tuple[tuple[str, str], ...] = (
    ("(?<=", f"(?<=...) (lookbehind) is not supported: {_LOOK}; match the text before instead, "
             "e.g. 'x(ab)' for '(?<=x)ab'"),
    ("(?<!", f"(?<!...) (negative lookbehind) is not supported: {_LOOK}; match the character before "
             "instead, e.g. '(^|[^a-z0-9])word' for '(?<![a-z0-9])word'"),
    ("(?=", f"(?=...) (lookahead) is not supported: {_LOOK}; match the text after instead, "
            "e.g. 'ab(x)' for 'ab(?=x)'"),
    ("(?!", f"(?!...) (negative lookahead) is not supported: {_LOOK}; match the character after instead, "
            "e.g. 'word([^a-z0-9]|$)' for 'word(?![a-z0-9])', or exclude the text with a second "
            "condition (not matches(...))"),
    ("(?P=", "(?P=name) (a backreference) is not supported: RE2 cannot match repeated text in linear time; "
             "write the repeated part out (e.g. '(ab)ab')"),
    ("(?>", f"(?>...) (an atomic group) is not supported: use a plain group (...): {_NO_BACKTRACK}"),
    ("(?(", "(?(...)...) (a conditional group) is not supported: write the alternatives out with '|'"),
)


class RegexError(ValueError):
    """A pattern that RE2 cannot run, or that is not valid: what is wrong and what to write.

    A ValueError, so that a bad pattern computed per event is "no match", never a crash."""


class Regex:
    """A user pattern compiled for RE2: `search(text)` is True where it is found, in time
    linear in the text (no catastrophic backtracking, whatever the pattern).

    >>> Regex.compile("(a+)+$").search("a" * 100_000 + "!")
    False
    >>> Regex.compile("HUẾ", ignore_case=True).search("thừa thiên huế")
    True
    """

    __slots__ = ("pattern", "_compiled", "_seen")

    def __init__(self, pattern: str, compiled: Any) -> None:
        self.pattern = pattern
        self._compiled = compiled
        # Answers for recent short texts: the same URLs, actions and user agents recur (57
        # distinct URLs in 100,000 web events of the storm day), and a look-up is ~10x cheaper
        # than RE2. Emptied when full, so it holds at most CACHED_TEXTS texts of CACHED_CHARS
        # characters (up to 4 bytes each).
        self._seen: dict[str, bool] = {}

    @staticmethod
    def compile(pattern: str, *, ignore_case: bool = False, unicode_words: bool = False) -> Regex:
        return compile_regex(pattern, ignore_case=ignore_case, unicode_words=unicode_words)

    def search(self, text: str) -> bool:
        if len(text) > CACHED_CHARS:
            return self._search(text)
        seen = self._seen
        found = seen.get(text)
        if found is None:
            found = self._search(text)
            if len(seen) >= CACHED_TEXTS:
                seen.clear()
            seen[text] = found
        return found

    def _search(self, text: str) -> bool:
        # Searching UTF-8 bytes: no offsets to map back to characters, a third of the cost.
        return self._compiled.search(text.encode("utf-8", "replace")) is not None

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"


def compile_regex(pattern: str, *, ignore_case: bool = False, unicode_words: bool = False) -> Regex:
    """Compile a user pattern (Python `re` syntax) for RE2; raise RegexError saying what cannot
    be run (lookaround, backreferences, atomic groups, possessive quantifiers) and what to write
    instead. `\\w`, `\\d`, `\\s` keep their Unicode meaning ("ế" is a word character);
    `\\b` is RE2's ASCII one, so it is refused where words may have diacritics: when
    `unicode_words` is set, or the pattern itself has non-ASCII characters.

    >>> compile_regex("(?<![a-z])lu")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    ioc.rules.regex.RegexError: (?<!...) (negative lookbehind) is not supported: RE2, ...
    """
    if not isinstance(pattern, str):
        raise RegexError(f"a pattern must be text, not {type(pattern).__name__}")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise RegexError(f"the pattern has {len(pattern):,} characters, more than the limit of {MAX_PATTERN_CHARS:,}")
    try:
        # Python's parser first: the syntax is Python's, and so are the messages (with positions).
        # Compiling is not matching: nothing here depends on a text.
        re.compile(pattern)
    except re.error as exc:
        raise RegexError(str(exc)) from None
    except (RecursionError, OverflowError):
        raise RegexError("the pattern is nested too deeply") from None
    translated, boundary = _translate(pattern)
    if boundary and (unicode_words or not pattern.isascii()):
        raise RegexError(
            "\\b (word boundary) only knows ASCII letters in RE2, so it would cut words with diacritics "
            "('thu' in 'thuế'); match the character before and after instead, e.g. "
            "'(^|\\W)huế(\\W|$)'" + ("" if not unicode_words else ", or use fold: true")
        )
    options = re2.Options()
    options.log_errors = False
    options.max_mem = _RE2_MAX_MEM
    options.case_sensitive = not ignore_case
    try:
        compiled = re2.compile(translated, options)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        if "pattern too large" in reason:
            reason = f"the pattern is too large for RE2 (more than {_RE2_MAX_MEM >> 20} MB compiled)"
        elif "repetition size" in reason:
            reason += " (at most 1000)"
        raise RegexError(reason) from None
    return Regex(pattern, compiled)


_UPTO = re.compile(r"\{,(\d+)\}")
_MULTILINE = re.compile(r"\(\?[aiLmsux]*m")  # (?m) or (?im:...): $ is then the same in both


def _translate(pattern: str) -> tuple[str, bool]:
    """The pattern in RE2 syntax with Python's meanings, and whether it uses \\b or \\B;
    raises RegexError for what RE2 cannot run."""
    out: list[str] = []
    boundary = False
    in_class = False
    multiline = _MULTILINE.search(pattern) is not None
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            code = pattern[i + 1]
            if code in "123456789" or (code == "g" and not in_class):
                raise RegexError(f"\\{code} (a backreference) is not supported: RE2 cannot match repeated "
                                 "text in linear time; write the repeated part out (e.g. '(ab)ab')")
            if code in _CLASSES:
                out.append(_CLASSES[code] if in_class else f"[{_CLASSES[code]}]")
            elif code.lower() in _CLASSES:
                if in_class:
                    raise RegexError(f"\\{code} inside [...] is not supported: write it outside the class, "
                                     f"e.g. '(\\{code}|x)' for '[\\{code}x]'")
                out.append(f"[^{_CLASSES[code.lower()]}]")
            elif code == "Z":
                out.append("\\z")
            else:
                boundary = boundary or (code in "bB" and not in_class)
                out.append(char + code)
            i += 2
            continue
        if in_class:
            in_class = char != "]"
            out.append(char)
            i += 1
            continue
        if char == "[":
            end = i + 1
            end += pattern.startswith("^", end)
            end += pattern.startswith("]", end)  # a leading ']' is a literal
            out.append(pattern[i:end])
            in_class, i = True, end
            continue
        if char == "(" and pattern.startswith("(?", i):
            for form, message in _GROUP_FORMS:
                if pattern.startswith(form, i):
                    raise RegexError(message)
        if char == "{" and (bound := _UPTO.match(pattern, i)) is not None:
            out.append("{0," + bound.group(1) + "}")  # Python's {,n} is RE2's {0,n} (RE2 reads '{,n}' as text)
            i = bound.end()
            continue
        if char == "$" and not multiline:
            out.append("(?:\\n?\\z)")  # Python's $ also matches before a final newline; RE2's does not
            i += 1
            continue
        if char == "+" and out and out[-1] in ("*", "+", "?", "}") and not (len(out) > 1 and out[-2] == "\\"):
            raise RegexError(f"'{out[-1]}+' (a possessive quantifier) is not supported: use '{out[-1]}': "
                             f"{_NO_BACKTRACK}")
        out.append(char)
        i += 1
    return "".join(out), boundary
