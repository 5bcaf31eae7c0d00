"""Bounded rule loading (issue 14): file size, YAML nodes after aliases, nesting, template
widths, rendered text length, collection sizes, symlinks leaving the rule folders, shortened
quotes, reference and zone files, and a reload off the event loop within a time limit.

Each limit is asserted with the analyst's exact message; the CLI cases run `ioc rules check`
in a subprocess with a timeout, as an analyst would.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from ioc.cli.main import GuardedStream
from ioc.config import LimitSettings
from ioc.engine import Engine
from ioc.events import decode
from ioc.geo import ZoneError, load_zones
from ioc.metrics import IocMetrics
from ioc.refdata import ReferenceError, load_reference
from ioc.rules.exceptions import RuleError, shorten, shorten_quoted
from ioc.rules.loader import MAX_ITEMS, MAX_RULES_PER_FILE, RuleSet, load_rules, rule_files
from ioc.runtime.reload import RuleReloader
from ioc.timeutil import parse_ts

REPO = Path(__file__).resolve().parents[3]
T0 = parse_ts("2025-10-27T08:00:00+07:00")
RULE = textwrap.dedent("""\
    rules:
      - id: live.high
        stream: reservoir
        kind: threshold
        condition: "level_m >= 50"
        severity: warning
        summary: "{source_id} {level_m}"
    """)


def bomb(levels: int = 9) -> str:
    return "rules:\n  - id: bomb\n    labels: &a0 {k: v}\n" + "".join(
        f"    x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, levels + 1))


def errors(paths: list[Path], limits: LimitSettings | None = None) -> list[str]:
    with pytest.raises(RuleError) as info:
        load_rules(paths, limits=limits)
    return [str(problem) for problem in info.value.problems]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- file size ---------------------------------------------------------------------------------


def test_a_rule_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "big.yaml", RULE + "# " + "x" * 3000 + "\n")
    size = path.stat().st_size
    assert errors([path], LimitSettings(rule_file_bytes=2048)) == [
        f"{path}:0: the file is {size:,} bytes, more than the limit of 2,048 bytes (limits.rule_file_bytes)"]
    assert len(load_rules([path], limits=LimitSettings(rule_file_bytes=size))) == 1


def test_a_50_mb_rule_file_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as out:
        out.truncate(50 * 1024 * 1024)
    started = time.perf_counter()
    assert errors([path]) == [
        f"{path}:0: the file is 52,428,800 bytes, more than the limit of 1,048,576 bytes (limits.rule_file_bytes)"]
    assert time.perf_counter() - started < 1.0


# -- YAML nodes, nesting -------------------------------------------------------------------------


def test_an_alias_bomb_is_refused_while_it_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "bomb.yaml", bomb())
    started = time.perf_counter()
    assert errors([path]) == [
        f"{path}:8: the file has more than 100,000 YAML values, counting each alias (*name) as every value it "
        "repeats (limit: limits.yaml_nodes = 100,000)"]
    assert time.perf_counter() - started < 1.0  # before: > 20 s and > 1 GB in `rules check`


def test_the_node_limit_counts_each_use_of_an_alias(tmp_path: Path) -> None:
    # 'labels' is 3 values (mapping, key, value); each alias repeats them.
    text = "rules: []\nx: &a {k: v}\ny: [*a, *a, *a, *a]\n"
    path = write(tmp_path / "r.yaml", text)
    limits = LimitSettings(yaml_nodes=100)
    assert "more than 100 YAML values" not in " ".join(errors([path], limits))
    many = write(tmp_path / "r.yaml", text.replace("[*a, *a, *a, *a]", "[" + ", ".join(["*a"] * 40) + "]"))
    assert errors([many], limits) == [
        f"{many}:3: the file has more than 100 YAML values, counting each alias (*name) as every value it "
        "repeats (limit: limits.yaml_nodes = 100)"]


def test_recursive_aliases_and_deep_nesting_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", "rules: &r\n  - *r\n")
    assert errors([path]) == [f"{path}:2: alias *r is used inside the node it names (a document that contains itself)"]
    deep = write(tmp_path / "d.yaml", "rules: " + "[" * 5000 + "]" * 5000 + "\n")
    assert errors([deep]) == [f"{deep}:1: nested more than 100 levels deep"]


def test_characters_yaml_does_not_allow_are_a_line_error_not_a_crash(tmp_path: Path) -> None:
    # Found by the fuzz tier: the YAML reader checks characters as soon as it is built.
    path = write(tmp_path / "n.yaml", "rules:\n  - id: a\x00\n")
    assert errors([path]) == [f"{path}:2: not valid YAML: character #x0000 is not allowed in YAML text"]
    late = write(tmp_path / "l.yaml", "rules:\n" + "# padding\n" * 2000 + "  - id: b\x07\n")
    assert errors([late]) == [f"{late}:2002: not valid YAML: character #x0007 is not allowed in YAML text"]


# -- templates ---------------------------------------------------------------------------------


def test_template_width_and_precision_are_bounded_at_load(tmp_path: Path) -> None:
    path = write(tmp_path / "w.yaml", RULE.replace("{source_id}", "{source_id:>200000000}"))
    assert errors([path]) == [
        f"{path}:7: rule 'live.high': summary: '{{source_id:>200000000}}': format width/precision 200000000 is "
        "more than the limit of 200 (limits.template_width)"]
    path = write(tmp_path / "w.yaml", RULE.replace("{level_m}", "{level_m:.30f}"))
    assert errors([path], LimitSettings(template_width=20)) == [
        f"{path}:7: rule 'live.high': summary: '{{level_m:.30f}}': format width/precision 30 is more than the "
        "limit of 20 (limits.template_width)"]
    huge = write(tmp_path / "w.yaml", RULE.replace("{source_id}", "{source_id:>" + "9" * 5000 + "}"))
    assert "format width/precision 99999999999999999999… is more than the limit of 200" in errors([huge])[0]


def test_rendered_alert_texts_are_cut_to_the_limit(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", RULE.replace('summary: "{source_id} {level_m}"',
                                                    'summary: "{source_id} {level_m}"\n    description: "{source_id}"'))
    ruleset = load_rules([path], limits=LimitSettings(alert_text_chars=80))
    engine = Engine(ruleset, clock=lambda: 0.0)
    event = decode("reservoir", {"source_id": "x" * 120, "ts": T0, "level_m": 60.0})
    [alert] = engine.process("reservoir", [event], 0)
    for text in (alert.summary, alert.description):
        assert len(text) == 80 and text.endswith("x…")


# -- collection sizes ----------------------------------------------------------------------------


def test_collection_sizes_are_bounded(tmp_path: Path) -> None:
    many_rules = write(tmp_path / "many.yaml", "rules:\n" + "".join(
        f"  - {{id: r{i}, stream: reservoir, kind: threshold, condition: 'level_m > 1', severity: info, "
        f"summary: x}}\n" for i in range(MAX_RULES_PER_FILE + 1)))
    assert errors([many_rules]) == [
        f"{many_rules}:1: rules: 1,001 rules in one file, more than 1,000 (split them into several files)"]
    keywords = write(tmp_path / "k.yaml", textwrap.dedent("""\
        rules:
          - id: press.k
            stream: press
            kind: match
            fields: [title]
            severity: info
            summary: x
        """) + f"    any: [{', '.join(f'k{i}' for i in range(MAX_ITEMS + 1))}]\n")
    assert errors([keywords]) == [
        f"{keywords}:8: rule 'press.k': any: a list of 1,001 items, more than the limit of 1,000"]
    labels = write(tmp_path / "l.yaml", RULE + "    labels: {" + ", ".join(f"k{i}: v" for i in range(1001)) + "}\n")
    assert errors([labels]) == [f"{labels}:8: rule 'live.high': labels: 1,001 keys, more than the limit of 1,000"]
    where = write(tmp_path / "w.yaml", RULE + f"    where: \"{'level_m > 1 and ' * 700}level_m > 1\"\n")
    assert errors([where]) == [
        f"{where}:8: rule 'live.high': where: '{('level_m > 1 and ' * 6)[:80]}…' (11,211 characters) is longer "
        "than the limit of 10,000 characters"]


# -- symlinks ----------------------------------------------------------------------------------


def test_symlinks_leaving_the_rule_folders_are_refused(tmp_path: Path) -> None:
    rules_dir, outside = tmp_path / "rules", tmp_path / "elsewhere"
    rules_dir.mkdir()
    outside.mkdir()
    write(rules_dir / "live.yaml", RULE)
    target = write(outside / "other.yaml", RULE.replace("live.high", "other.rule"))
    (rules_dir / "link.yaml").symlink_to(target)
    (rules_dir / "folder").symlink_to(outside)
    assert errors([rules_dir]) == [
        f"{rules_dir / 'folder'}:0: is a symlink to '{outside}', outside the rule folders ({rules_dir}): refused "
        "(copy the file into a rule folder, or name its folder as a rule folder)",
        f"{rules_dir / 'link.yaml'}:0: is a symlink to '{target}', outside the rule folders ({rules_dir}): refused "
        "(copy the file into a rule folder, or name its folder as a rule folder)",
    ]
    # Watched for changes all the same (a reload then reports them).
    assert rule_files([rules_dir]) == [rules_dir / "folder", rules_dir / "link.yaml", rules_dir / "live.yaml"]
    # With its folder named as a rule folder too, the file link is admitted (the folder link is
    # still not entered: its files are read from the named folder itself).
    assert rule_files([rules_dir, outside]) == [outside / "other.yaml", rules_dir / "link.yaml",
                                                rules_dir / "live.yaml"]
    assert "duplicate rule id" in errors([rules_dir, outside])[0]


def test_symlinks_inside_the_rule_folders_are_followed(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    (rules_dir / "shared").mkdir(parents=True)
    target = write(rules_dir / "shared" / "base.yml.txt", RULE)
    (rules_dir / "live.yaml").symlink_to(target)
    assert [r.id for r in load_rules([rules_dir]).rules] == ["live.high"]


# -- shortened quotes --------------------------------------------------------------------------


def test_values_are_quoted_shortened() -> None:
    assert shorten("x" * 200) == "'" + "x" * 80 + "…' (200 characters)"
    assert shorten("short") == "'short'"
    nested: list[object] = ["x"]
    for _ in range(30):
        nested = [nested] * 9  # what an alias bomb expands to: never walked whole
    started = time.perf_counter()
    assert len(shorten(nested)) <= 81
    assert time.perf_counter() - started < 0.1
    assert shorten_quoted(f"{'y' * 300!r} is wrong", ["y" * 300]) == "'" + "y" * 80 + "…' (300 characters) is wrong"


def test_long_values_in_errors_are_shortened(tmp_path: Path) -> None:
    long_for = "5 minutes " * 30
    path = write(tmp_path / "f.yaml", RULE + f'    for: "{long_for}"\n')
    assert errors([path]) == [
        f"{path}:8: rule 'live.high': for: '{long_for[:80]}…' (300 characters) is not a duration "
        "(e.g. 30s, 5m, 2h, 1d, 1h30m)"]
    condition = "levl_m > 1 and " + " and ".join(["level_m > 1"] * 50)
    path = write(tmp_path / "c.yaml", RULE.replace('"level_m >= 50"', f'"{condition}"'))
    [message] = errors([path])
    assert message.startswith(f"{path}:5: rule 'live.high': condition: unknown field 'levl_m'")
    assert message.endswith(f" in '{condition[:80]}…' ({len(condition):,} characters)")
    path = write(tmp_path / "k.yaml", RULE.replace("kind: threshold", f"kind: {'z' * 500}"))
    assert errors([path]) == [
        f"{path}:4: rule 'live.high': kind: '{'z' * 80}…' (500 characters) is not a rule kind (allowed: threshold, "
        "window, rate, absence, geofence, match, spike, new_value, sequence, near_duplicate, proximity)"]


# -- reference and zone files ------------------------------------------------------------------


def test_reference_files_are_bounded(tmp_path: Path) -> None:
    write(tmp_path / "reservoir.yaml", "key: source_id\nitems:\n" + "  - {source_id: a}\n" * 200)
    with pytest.raises(ReferenceError) as info:
        load_reference(tmp_path, max_bytes=1024)
    size = (tmp_path / "reservoir.yaml").stat().st_size
    assert str(info.value) == (f"{tmp_path / 'reservoir.yaml'}: the file is {size:,} bytes, more than the limit of "
                               "1,024 bytes (limits.rule_file_bytes)")
    write(tmp_path / "reservoir.yaml", "key: source_id\nitems: &x [{source_id: a}]\n" + bomb(9).split("\n", 2)[2]
          .replace("    ", "").replace("labels: &a0 {k: v}", "a0: &a0 {k: v}"))
    with pytest.raises(ReferenceError) as info:
        load_reference(tmp_path)
    assert "YAML values, counting each alias" in str(info.value)


def test_zone_files_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "zones.geojson"
    with path.open("wb") as out:
        out.truncate(4096)
    with pytest.raises(ZoneError) as info:
        load_zones(path, max_bytes=1024)
    assert str(info.value) == "the file is 4,096 bytes, more than the limit of 1,024 bytes"


# -- reload off the event loop, within a time limit ------------------------------------------------


def _reloader(load, load_s: float = 0.5) -> tuple[RuleReloader, IocMetrics, list[RuleSet]]:  # type: ignore[no-untyped-def]
    metrics = IocMetrics(CollectorRegistry())
    applied: list[RuleSet] = []

    def apply(ruleset: RuleSet):  # type: ignore[no-untyped-def]
        applied.append(ruleset)
        return [], []

    return RuleReloader(load, apply, metrics, lambda: [], running=1, load_s=load_s), metrics, applied


def test_reload_async_rejects_a_load_past_the_time_limit_and_keeps_the_loop_running(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", RULE)
    release = threading.Event()

    def slow_load() -> RuleSet:
        release.wait(10)
        return load_rules([path])

    reloader, metrics, applied = _reloader(slow_load)

    async def scenario() -> tuple[str, str, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        first = await reloader.reload_async("SIGHUP")
        second = await reloader.reload_async("SIGHUP")  # the late load still runs: refused at once
        release.set()
        ticker.cancel()
        return first.message, second.message, ticks

    first, second, ticks = asyncio.run(scenario())
    assert first == ("rule reload (SIGHUP) rejected, the previous 1 rules keep running:\n"
                     "loading the rules took more than 0.5 s (limits.rule_load_s)")
    assert second.endswith("the previous load of the rules has not finished yet (it passed the 0.5 s limit, "
                           "limits.rule_load_s); try again later")
    assert ticks >= 20  # the loop ran while the rules loaded
    assert applied == []
    assert metrics.rules_reload_errors._value.get() == 2  # type: ignore[attr-defined]


def test_reload_async_swaps_good_rules_and_rejects_broken_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "r.yaml", RULE)
    reloader, metrics, applied = _reloader(lambda: load_rules([path]), load_s=10)
    ok = asyncio.run(reloader.reload_async("files changed"))
    assert ok.ok and len(applied) == 1
    write(path, bomb())
    bad = asyncio.run(reloader.reload_async("files changed"))
    assert not bad.ok and "counting each alias" in bad.message and len(applied) == 1
    assert asyncio.run(reloader.poll_async()) is None  # nothing changed since


# -- the CLI: each hostile file fails fast, in a subprocess ----------------------------------------


def _check(*paths: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ioc.cli.main", "rules", "check", *map(str, paths)], cwd=REPO,
                          capture_output=True, text=True, timeout=30)


def test_rules_check_applies_the_limits_of_the_given_configuration_and_refuses_an_invalid_one(
    tmp_path: Path,
) -> None:
    rule = write(tmp_path / "r.yaml", RULE + "    description: '" + "x" * 2000 + "'\n")
    assert _check(rule).returncode == 0
    small = write(tmp_path / "small.yaml", "limits: {rule_file_bytes: 1024}\n")
    refused = _check(rule, "--config", small)
    assert refused.returncode == 1
    assert "more than the limit of 1,024 bytes (limits.rule_file_bytes)" in refused.stderr, refused.stderr
    broken = write(tmp_path / "broken.yaml", "limits: {keys_per_rule: 0}\n")
    invalid = _check(rule, "--config", broken)
    assert invalid.returncode == 1
    assert f"{broken}: limits.keys_per_rule: Input should be greater than or equal to 1" in invalid.stderr


def test_rules_check_fails_fast_on_hostile_files(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as out:
        for _ in range(50 * 1024):
            out.write(b"# " + b"x" * 1021 + b"\n")
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "link.yaml").symlink_to(write(tmp_path / "outside.yaml", RULE))
    cases = [
        (write(tmp_path / "bomb.yaml", bomb()), ":8: the file has more than 100,000 YAML values"),
        (big, ":0: the file is 52,428,800 bytes, more than the limit of 1,048,576 bytes (limits.rule_file_bytes)"),
        (write(tmp_path / "w.yaml", RULE.replace("{source_id}", "{source_id:>200000000}")),
         ":7: rule 'live.high': summary: '{source_id:>200000000}': format width/precision 200000000 is more than"),
        (rules_dir, f"link.yaml:0: is a symlink to '{tmp_path / 'outside.yaml'}', outside the rule folders"),
    ]
    for path, message in cases:
        started = time.monotonic()
        result = _check(path)
        assert time.monotonic() - started < 15, path
        assert result.returncode == 1, result
        assert message in result.stderr, result.stderr
        assert "1 error: the rule set was not loaded" in result.stderr


# -- SIGPIPE ----------------------------------------------------------------------------------


def test_sigpipe_is_default_for_short_commands_and_ignored_by_workers() -> None:
    code = ("import signal, sys; from ioc.cli.main import _pipes; _pipes(sys.argv[1]); "
            "print(signal.getsignal(signal.SIGPIPE) == signal.SIG_DFL, type(sys.stdout).__name__)")
    for command, expected in (("rules", "True TextIOWrapper"), ("backtest", "True TextIOWrapper"),
                              ("worker", "False GuardedStream"), ("demo", "False GuardedStream")):
        out = subprocess.run([sys.executable, "-c", code, command], cwd=REPO, capture_output=True, text=True,
                             timeout=30).stdout.strip()
        assert out == expected, command


def test_a_broken_stdout_is_discarded_not_fatal() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader went away (`ioc worker | head` after head ended)
    called: list[bool] = []
    stream = GuardedStream(os.fdopen(write_end, "w"), "stdout", lambda: called.append(True))
    for _ in range(3):
        stream.write("alert line\n" * 1000)
        stream.flush()
    assert stream.broken and called == [True]
    assert os.readlink(f"/proc/self/fd/{write_end}") == os.devnull  # so the final flush at exit succeeds too
    stream.close()


def test_rules_check_piped_into_a_closed_pipe_ends_quietly() -> None:
    process = subprocess.Popen([sys.executable, "-m", "ioc.cli.main", "rules", "check", "rules/camera.yaml"],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=30)
    assert process.returncode in (0, -13), err  # done, or ended by SIGPIPE like `cat`; never a traceback
    assert b"Traceback" not in err
