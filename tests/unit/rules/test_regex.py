"""User regular expressions run on RE2 (ioc.rules.expr.compile_regex): linear in the text,
Python's syntax and Unicode classes, and what RE2 cannot run refused at load with what to write.

Both places an analyst writes a pattern are covered: the `regex` of the `match` kind and the
`matches(text, pattern)` function of expressions.
"""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioc.engine import Engine
from ioc.events import decode
from ioc.rules.exceptions import RuleError
from ioc.rules.expr import ExpressionError, compile_expression
from ioc.rules.loader import RuleSet, load_rules
from ioc.rules.regex import CACHED_CHARS, CACHED_TEXTS, MAX_PATTERN_CHARS, RegexError, compile_regex
from ioc.timeutil import parse_ts

T0 = parse_ts("2025-10-27T08:00:00+07:00")
REDOS = "(a+)+$"
SLOW_FOR_RE = "a" * 40 + "!"  # Python's re needs about 2**40 steps for this one


def rules(tmp_path: Path, body: str) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n" + textwrap.indent(textwrap.dedent(body), "  "), encoding="utf-8")
    return load_rules([path])


def error(tmp_path: Path, body: str) -> str:
    with pytest.raises(RuleError) as info:
        rules(tmp_path, body)
    assert len(info.value.problems) == 1, str(info.value)
    return str(info.value.problems[0])


def match_rule(regex: str, fold: bool = True) -> str:
    quoted = "'" + regex.replace("'", "''") + "'"  # YAML single quotes: backslashes stay as written
    return f"""\
        - id: press.re
          stream: press
          kind: match
          fields: [title]
          regex: {quoted}
          fold: {str(fold).lower()}
          severity: info
          summary: "{{source_id}}"
        """


def fired(ruleset: RuleSet, *titles: str) -> list[str]:
    """The titles (in order) whose event fires or extends the rule `press.re`."""
    engine = Engine(ruleset, clock=lambda: 0.0)
    out = []
    for index, title in enumerate(titles):
        event = decode("press", {"source_id": f"outlet-{index}", "ts": T0 + index, "title": title})
        if engine.process("press", [event], 0):
            out.append(title)
    return out


# -- linear time --------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [40, 100_000])
def test_catastrophic_pattern_of_the_match_kind_runs_in_linear_time(tmp_path: Path, length: int) -> None:
    ruleset = rules(tmp_path, match_rule(REDOS))
    title = "a" * length + "!"
    started = time.perf_counter()
    assert fired(ruleset, title, "a" * 40) == ["a" * 40]
    assert time.perf_counter() - started < 1.0  # Python's re: effectively forever


@pytest.mark.parametrize("length", [40, 100_000])
def test_catastrophic_pattern_in_matches_runs_in_linear_time(length: int) -> None:
    expr = compile_expression(f"matches(title, {REDOS!r})", ["title"])
    started = time.perf_counter()
    assert expr.test({"title": "a" * length + "!"}) is False
    assert expr.test({"title": "a" * length}) is True
    assert time.perf_counter() - started < 1.0


def test_a_pattern_computed_per_event_is_bounded_and_a_bad_one_is_no_match() -> None:
    expr = compile_expression("matches(title, pattern)", ["title", "pattern"])
    assert expr.test({"title": SLOW_FOR_RE, "pattern": REDOS}) is False
    assert expr.test({"title": "ab", "pattern": "(?<=a)b"}) is False  # refused: no match, no crash
    assert expr.test({"title": "ab", "pattern": "x" * (MAX_PATTERN_CHARS + 1)}) is False


# -- Vietnamese text ---------------------------------------------------------------------------


def test_case_insensitive_vietnamese_in_the_match_kind(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, match_rule("THỪA THIÊN HUẾ|ĐÀ NẴNG", fold=False))
    assert fired(ruleset, "Mưa lớn ở Thừa Thiên Huế", "ĐÀ NẴNG ngập", "Thua Thien Hue", "Hà Nội") == [
        "Mưa lớn ở Thừa Thiên Huế", "ĐÀ NẴNG ngập",
    ]


def test_folded_patterns_meet_folded_vietnamese(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, match_rule(r"xa\s+lu|vo dap"))
    assert fired(ruleset, "Thủy điện XẢ LŨ", "VỠ ĐẬP", "xả  lũ", "lũ lụt") == ["Thủy điện XẢ LŨ", "VỠ ĐẬP", "xả  lũ"]


def test_word_classes_keep_their_unicode_meaning() -> None:
    # RE2's own \w and \d are ASCII: 'ế' would not be a word character.
    assert compile_regex(r"^\w+$").search("huế")
    assert compile_regex(r"^[\w-]+$").search("thừa-thiên-huế")
    assert not compile_regex(r"\W").search("huế")
    assert compile_regex(r"(^|\W)huế(\W|$)").search("tp huế, mưa")
    assert not compile_regex(r"(^|\W)huế(\W|$)").search("thuếhuế")
    assert compile_regex(r"^\d+$").search("١٢٣")  # Arabic-Indic digits are \d in Python too
    assert compile_regex(r"a\sb").search("a\u00a0b")
    assert compile_regex(r"end\Z").search("the end")


def test_case_insensitive_matches_with_an_inline_flag() -> None:
    expr = compile_expression("matches(title, '(?i)THỪA THIÊN HUẾ')", ["title"])
    assert expr.test({"title": "tin thừa thiên huế"})
    assert not expr.test({"title": "tin thua thien hue"})


def test_same_answers_as_python_re_on_a_rewritten_shipped_pattern() -> None:
    # The shipped press rule's `ngap(?! tran)` (lookahead) spelled out for RE2 (README, "Rules").
    old = re.compile("(?<![a-z0-9])(xa lu|vo dap|ngap(?! tran))(?![a-z0-9])")
    new = compile_regex("(^|[^a-z0-9])(xa lu([^a-z0-9]|$)|vo dap([^a-z0-9]|$)|ngap([^a-z0-9 ]|$| ([^t]|$)"
                        "| t([^r]|$)| tr([^a]|$)| tra([^n]|$)))")
    texts = ["ngap", "ngap tran", "ngap tranh", "ngap tra", "ngap t", "ngap.", "ngapx", "bi ngap sau",
             "xa lu", "xa lux", "vo dap!", "avo dap", "ngap tran, xa lu", "ngap trau", "ngap  tran"]
    for text in texts:
        assert bool(old.search(text)) == new.search(text), text


# -- refused at load, with what to write instead --------------------------------------------------

REFUSED = [
    ("(?<![a-z])lu lut", "(?<!...) (negative lookbehind) is not supported: RE2, which runs every pattern in time "
                         "linear in the text, has no lookaround; match the character before instead, "
                         "e.g. '(^|[^a-z0-9])word' for '(?<![a-z0-9])word'"),
    ("(?<=x)lu", "(?<=...) (lookbehind) is not supported"),
    ("lu(?=t)", "(?=...) (lookahead) is not supported"),
    ("ngap(?! tran)", "(?!...) (negative lookahead) is not supported: RE2, which runs every pattern in time linear "
                      "in the text, has no lookaround; match the character after instead, e.g. 'word([^a-z0-9]|$)' "
                      "for 'word(?![a-z0-9])', or exclude the text with a second condition (not matches(...))"),
    (r"(a+)\1", r"\1 (a backreference) is not supported: RE2 cannot match repeated text in linear time; "
                "write the repeated part out (e.g. '(ab)ab')"),
    ("(?P<w>a)(?P=w)", "(?P=name) (a backreference) is not supported"),
    ("(?>a+)b", "(?>...) (an atomic group) is not supported: use a plain group (...): RE2 never backtracks, "
                "so it is not needed"),
    ("a++b", "'++' (a possessive quantifier) is not supported: use '+'"),
    ("(a)?(?(1)b|c)", "(?(...)...) (a conditional group) is not supported: write the alternatives out with '|'"),
    ("x{2000}", "invalid repetition size: {2000} (at most 1000)"),
    (r"[\Wx]", r"\W inside [...] is not supported: write it outside the class, e.g. '(\W|x)' for '[\Wx]'"),
    (r"\bhuế\b", r"\b (word boundary) only knows ASCII letters in RE2"),
]


@pytest.mark.parametrize(("pattern", "message"), REFUSED, ids=[p for p, _ in REFUSED])
def test_what_re2_cannot_run_is_refused_with_what_to_write(pattern: str, message: str) -> None:
    with pytest.raises(RegexError) as info:
        compile_regex(pattern)
    assert str(info.value).startswith(message)


def test_match_kind_refusal_names_file_line_rule_and_pattern(tmp_path: Path) -> None:
    message = error(tmp_path, match_rule("(?<![a-z])lu lut"))
    assert message.startswith(f"{tmp_path / 'rules.yaml'}:6: rule 'press.re': regex: invalid pattern "
                              "'(?<![a-z])lu lut': (?<!...) (negative lookbehind) is not supported")


def test_matches_refusal_is_a_load_error_of_the_expression(tmp_path: Path) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("matches(fold(title), 'ngap(?! tran)')", ["title"])
    assert info.value.message.startswith("invalid regular expression 'ngap(?! tran)': (?!...) (negative lookahead)")


def test_ascii_word_boundary_is_kept_for_ascii_patterns_and_refused_for_unfolded_text(tmp_path: Path) -> None:
    assert compile_regex(r"\bsqli\b").search("a sqli attempt")
    ruleset = rules(tmp_path, match_rule(r"\bxa lu\b"))  # fold: true, the text is ASCII
    assert fired(ruleset, "Thủy điện XẢ LŨ", "xa lux") == ["Thủy điện XẢ LŨ"]
    message = error(tmp_path, match_rule(r"\bthu\b", fold=False))
    assert "\\b (word boundary) only knows ASCII letters in RE2, so it would cut words with diacritics" in message
    assert message.endswith("or use fold: true")


def test_the_existing_checks_still_hold(tmp_path: Path) -> None:
    assert error(tmp_path, match_rule("x*")).endswith(
        "regex: pattern 'x*' matches empty text, so every event would match "
        "(allowed: a pattern that needs at least one character)")
    assert "which folded text (fold: true) never contains (write 'xa\\\\s+lu'; or set fold: false)" in error(
        tmp_path, match_rule(r"xả\s+lũ"))
    assert error(tmp_path, match_rule("(union")).endswith(
        "regex: invalid pattern '(union': missing ), unterminated subpattern at position 0")


def test_a_long_pattern_is_quoted_shortened(tmp_path: Path) -> None:
    pattern = "(?<!x)" + "a" * 500
    message = error(tmp_path, match_rule(pattern))
    assert "'(?<!x)aaaa" in message and "…' (506 characters)" in message
    assert len(message) < 600


@pytest.mark.parametrize(("pattern", "text"), [
    ("a{,3}b", "aab"), ("x{,2}$", "xxx"), ("abc$", "abc\n"), ("abc$", "abcd"), ("abc$", "abc\n\n"),
    ("(?m)^a$", "a\nb"), ("[$]", "x$"), (r"\$", "$"), (r"a{2,}", "aaa"), (r"a\{,3\}", "a{,3}"),
])
def test_python_meanings_that_re2_spells_differently_are_kept(pattern: str, text: str) -> None:
    """Found in review: RE2 reads '{,n}' as text, and its '$' never matches before a final newline."""
    assert compile_regex(pattern).search(text) is (re.search(pattern, text) is not None)


@given(texts=st.lists(st.sampled_from(["/tin-tuc", "/?id=1 union select 2", "UNION SELECT", "", "x" * 300,
                                       "/?q=union%20all%20select", "tin-tuc/union/select"]) | st.text(max_size=8),
                      max_size=60))
def test_remembered_answers_are_the_patterns(texts: list[str]) -> None:
    pattern = r"union([+ ]|%20)+(all([+ ]|%20)+)?select"
    regex = compile_regex(pattern)
    for text in texts:
        assert regex.search(text) == (re.search(pattern, text) is not None)
        assert len(regex._seen) <= CACHED_TEXTS


def test_remembered_texts_are_bounded() -> None:
    regex = compile_regex("a+b")
    answers = [regex.search(f"{n}ab" if n % 2 else str(n)) for n in range(CACHED_TEXTS * 3)]
    assert answers == [bool(n % 2) for n in range(CACHED_TEXTS * 3)]
    assert 0 < len(regex._seen) <= CACHED_TEXTS
    assert regex.search("ab" * CACHED_CHARS) and ("ab" * CACHED_CHARS) not in regex._seen
