"""Hostile rule files in a live worker (issue 14, acceptance 2 and 3), on the embedded broker.

A YAML alias bomb, a 50 MB rule file, a huge format width and a symlink to a file outside the
rule folder each reach a running worker through a live reload: each is rejected within seconds
with its clear error, and the rules that ran before keep running (an event after the bad reload
still gives its transition). A `regex: "(a+)+$"` over a title of 40 'a's and '!' (catastrophic
for a backtracking engine) is evaluated by RE2 in linear time, and another stream's events
still give their alerts promptly.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import orjson
import pytest
from conftest import wait_for
from kafka_io import read, send

from ioc.timeutil import format_ts, parse_ts

pytestmark = pytest.mark.integration

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
BOMB = (
    "rules:\n  - id: bomb\n    stream: reservoir\n    kind: threshold\n    condition: x\n    labels: &a0 {k: v}\n"
    + "".join(f"    x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))
)
REJECTED = "rejected, the previous 1 rules keep running"
RELOADED = "rules reloaded (files changed)"


def _level(minute: int, level: float) -> tuple[bytes, bytes]:
    body = {"source_id": "ta-trach", "ts": format_ts(T0 + minute * 60), "level_m": level}
    return b"ta-trach", orjson.dumps(body)


def _article(minute: int, source: str, title: str) -> tuple[bytes, bytes]:
    body = {"source_id": source, "ts": format_ts(T0 + minute * 60), "title": title, "lang": "vi"}
    return source.encode(), orjson.dumps(body)


def test_broken_rule_files_are_rejected_live_and_the_old_rules_keep_running(
    broker_url, topic_prefix, start_worker, tmp_path: Path,
) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    live = rules_dir / "live.yaml"
    live.write_text(RULE, encoding="utf-8")
    worker = start_worker(topic_prefix, {"IOC_RULES": str(rules_dir)})
    raw, alerts_topic = f"{topic_prefix}raw.reservoir", f"{topic_prefix}alerts"
    send(broker_url, raw, [_level(0, 60.0)])
    assert len(read(broker_url, alerts_topic, expect=1, timeout=60)) == 1, worker.output()

    outside = tmp_path / "outside.yaml"
    outside.write_text(RULE.replace("live.high", "outside.rule"), encoding="utf-8")
    big = rules_dir / "big.yaml"
    cases = [
        ("alias bomb", lambda: (rules_dir / "bomb.yaml").write_text(BOMB, encoding="utf-8"),
         lambda: (rules_dir / "bomb.yaml").unlink(),
         f"{rules_dir / 'bomb.yaml'}:11: the file has more than 100,000 YAML values, counting each alias"),
        ("50 MB file", lambda: _write_big(big), lambda: big.unlink(),
         f"{big}:0: the file is 52,428,800 bytes, more than the limit of 1,048,576 bytes (limits.rule_file_bytes)"),
        ("huge width",
         lambda: live.write_text(RULE.replace("{source_id}", "{source_id:>200000000}"), encoding="utf-8"),
         lambda: live.write_text(RULE, encoding="utf-8"),
         f"{live}:7: rule 'live.high': summary: '{{source_id:>200000000}}': format width/precision 200000000 "
         "is more than the limit of 200 (limits.template_width)"),
        ("symlink outside", lambda: (rules_dir / "link.yaml").symlink_to(outside),
         lambda: (rules_dir / "link.yaml").unlink(),
         f"{rules_dir / 'link.yaml'}:0: is a symlink to '{outside}', outside the rule folders"),
    ]
    transitions = 1
    for number, (name, breaks, repairs, message) in enumerate(cases, start=1):
        rejected = worker.output().count(REJECTED)
        started = time.monotonic()
        breaks()
        assert wait_for(lambda before=rejected: worker.output().count(REJECTED) > before, 30), (
            f"{name}: {worker.output()[-3000:]}")
        took = time.monotonic() - started
        assert took < 15, f"{name}: rejected after {took:.1f} s"  # a 2 s poll, then a bounded load
        assert message in worker.output(), f"{name}: {worker.output()[-3000:]}"
        # The old rule still evaluates: alternate below/above its threshold, one transition each.
        send(broker_url, raw, [_level(number, 40.0 if number % 2 else 60.0)])
        transitions += 1
        got = read(broker_url, alerts_topic, expect=transitions, timeout=60)
        assert len(got) == transitions, f"{name}: {worker.output()[-3000:]}"
        assert got[-1][1]["rule_id"] == "live.high"
        assert got[-1][1]["status"] == ("resolved" if number % 2 else "firing")
        reloaded = worker.output().count(RELOADED)
        repairs()
        assert wait_for(lambda before=reloaded: worker.output().count(RELOADED) > before, 30), name
    assert worker.alive(), worker.output()[-3000:]
    # The big file never reached the worker's memory: it was refused from its size.
    assert "52,428,800 bytes" in worker.output()


def _write_big(path: Path) -> None:
    line = b"# " + b"x" * 1021 + b"\n"  # 1 KiB
    with path.open("wb") as out:
        for _ in range(50 * 1024):
            out.write(line)


def test_a_catastrophic_regex_is_linear_and_other_streams_keep_flowing(
    broker_url, topic_prefix, start_worker, tmp_path: Path,
) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    redos = textwrap.dedent("""\
        - id: press.redos
          stream: press
          kind: match
          fields: [title]
          regex: "(a+)+$"
          severity: info
          summary: "{source_id}: {title}"
        """)
    (rules_dir / "rules.yaml").write_text(RULE + textwrap.indent(redos, "  "), encoding="utf-8")
    worker = start_worker(topic_prefix, {"IOC_RULES": str(rules_dir)})
    alerts_topic = f"{topic_prefix}alerts"
    # Up first: a reservoir alert shows the worker is consuming.
    send(broker_url, f"{topic_prefix}raw.reservoir", [_level(0, 60.0)])
    assert len(read(broker_url, alerts_topic, expect=1, timeout=60)) == 1, worker.output()

    # With Python's re, one of these titles takes longer than the age of the universe.
    hostile = [_article(1 + i, f"outlet-{i}", "a" * 40 + "!") for i in range(5)]
    send(broker_url, f"{topic_prefix}raw.press", hostile)
    started = time.monotonic()
    send(broker_url, f"{topic_prefix}raw.reservoir", [_level(1, 40.0)])
    got = read(broker_url, alerts_topic, expect=2, timeout=30)
    took = time.monotonic() - started
    assert [(v["rule_id"], v["status"]) for _, v in got] == [("live.high", "firing"), ("live.high", "resolved")]
    assert took < 10, f"the reservoir alert took {took:.1f} s"

    # The pattern is evaluated (not skipped): a title it matches fires the press rule.
    send(broker_url, f"{topic_prefix}raw.press", [_article(10, "outlet-x", "a" * 40)])
    got = read(broker_url, alerts_topic, expect=3, timeout=30)
    assert ("press.redos", "firing") in [(v["rule_id"], v["status"]) for _, v in got], worker.output()[-3000:]
    assert worker.alive()
