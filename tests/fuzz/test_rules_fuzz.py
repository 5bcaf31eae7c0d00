"""Fuzz: any rule file text, from random bytes to the shipped rules with random damage, loads
or gives `file:line: ...` errors (a RuleError), quickly and in bounded memory; never another
exception, and never an error message that repeats a huge value."""

from __future__ import annotations

import functools
import tracemalloc
from pathlib import Path

from fuzzkit import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from ioc.config import REPO_ROOT
from ioc.refdata import Reference, load_reference
from ioc.rules.exceptions import RuleError
from ioc.rules.loader import load_rules

FUZZ = fuzz_settings(60)
SHIPPED = sorted((REPO_ROOT / "rules").glob("*.yaml"))
MAX_LINE = 1200  # one error line: file, line, rule id, field and a shortened value
MAX_BYTES = 200 * 1024 * 1024  # peak Python memory of one load

# Pieces of YAML and of the rule language that an unlucky edit or an attacker may leave behind.
DAMAGE = st.sampled_from([
    "&a [1,2,3,4,5,6,7,8,9]", "*a", "[*a,*a,*a,*a,*a,*a,*a,*a,*a]", "!!python/object:os.system", "{", "}",
    "'", '"', ": ", "\t", "- ", "? ", "null", "~", "1e999", "-.inf", ".nan", "0x7fffffffffffffff",
    "{source_id:>200000000}", "{x.__class__}", "(a+)+$", "(?<=a)b", "__import__('os')", "a" * 100_000,
    "5 minutes", "-1m", "999999999d", "\u202e", "\x00", "<<: *a",
])


@functools.cache
def _reference() -> Reference:
    return load_reference(REPO_ROOT / "config" / "reference")


def _load(tmp: Path, text: str | bytes) -> None:
    path = tmp / "fuzz.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    tracemalloc.start()
    try:
        load_rules([path], _reference())
    except RuleError as exc:
        lines = str(exc).splitlines()
        assert lines
        for line in lines[1:]:
            assert line.startswith(str(path)) or line.startswith("  "), line[:300]
            assert len(line) <= MAX_LINE, line[:300]
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < MAX_BYTES


@FUZZ
@given(raw=st.binary(max_size=2048))
def test_random_bytes_as_a_rule_file(tmp_path_factory, raw: bytes) -> None:  # type: ignore[no-untyped-def]
    _load(tmp_path_factory.mktemp("r"), raw)


@FUZZ
@given(data=st.data())
def test_shipped_rules_with_random_damage(tmp_path_factory, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    lines = data.draw(st.sampled_from(SHIPPED)).read_text(encoding="utf-8").splitlines()
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        at = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
        how = data.draw(st.sampled_from(["insert", "replace_value", "append", "delete", "duplicate"]))
        piece = data.draw(DAMAGE | st.text(max_size=30))
        line = lines[at]
        if how == "insert":
            lines.insert(at, piece)
        elif how == "replace_value" and ": " in line:
            lines[at] = line.split(": ", 1)[0] + ": " + piece
        elif how == "append":
            lines[at] = line + piece
        elif how == "delete":
            del lines[at]
        else:
            lines.insert(at, line)
    _load(tmp_path_factory.mktemp("r"), "\n".join(lines) + "\n")


def test_an_alias_bomb_in_a_typed_field_is_refused_quickly(tmp_path: Path) -> None:
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    bomb += [f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 9)]
    text = "\n".join(bomb) + "\nrules:\n  - id: bomb\n    stream: press\n    kind: match\n    fields: [title]\n" \
                             "    any: *a8\n"
    _load(tmp_path, text)
