"""One time zone per output: people read and type Huế's time (ICT, UTC+7), records and JSON stay
in RFC 3339 UTC (ioc.timeutil.parse_local / shown_local and the commands that use them)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ioc.cli.main import build_parser, main
from ioc.cli.silences import _fields
from ioc.sla.silences import silence_record
from ioc.timeutil import parse_local, shown_local

T0 = 1761526800.0  # 2025-10-27T01:00:00Z = 08:00 ICT


@pytest.mark.parametrize("typed", ["2025-10-27 08:00", "2025-10-27T08:00", "2025-10-27T08:00:00",
                                   "2025-10-27T01:00:00Z", "2025-10-27T08:00:00+07:00"])
def test_a_time_without_offset_is_ict_one_with_an_offset_is_as_written(typed: str) -> None:
    assert parse_local(typed) == T0


def test_a_time_that_is_no_time_says_what_is_expected() -> None:
    with pytest.raises(ValueError, match=r"'tomorrow' is not a time \(e.g. '2025-10-27 08:00' in Huế's time"):
        parse_local("tomorrow")


def test_times_shown_to_people_are_ict_with_the_zone_named() -> None:
    assert shown_local(T0) == shown_local("2025-10-27T01:00:00Z") == "2025-10-27 08:00 ICT"
    assert shown_local(None) == "-"


def test_silence_times_typed_without_offset_are_ict_and_the_record_is_utc() -> None:
    args = argparse.Namespace(starts_at="2025-10-27 08:00", ends_at="2025-10-27 10:30", duration=None,
                              until_resolved=None, match=["rule_id=reservoir.level.at_nwl"], maintenance=False,
                              comment="")
    fields, _ = _fields(args)
    assert (fields["starts_at"], fields["ends_at"]) == (T0, T0 + 2.5 * 3600)
    record = silence_record(fields, "s-1", "truc-ban-1")
    assert (record["starts_at"], record["ends_at"]) == ("2025-10-27T01:00:00Z", "2025-10-27T03:30:00Z")


@pytest.mark.parametrize("command", [["silences", "add"], ["silences", "expire"], ["alerts", "ack"],
                                     ["alerts", "resolve"], ["backtest"]])
def test_help_says_that_times_without_offset_are_ict(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    assert "in Huế's time (ICT, UTC+7) when no offset is given" in " ".join(capsys.readouterr().out.split())


def test_a_bad_action_time_is_refused_before_anything_is_sent(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["alerts", "ack", "eece90541220b5d3-1761526800000", "--by", "truc-ban-1", "--at", "8h sáng"])
    assert code != 0
    assert "--at: '8h sáng' is not a time" in " ".join(capsys.readouterr().err.split())


def test_backtest_until_typed_in_ict_equals_the_same_time_in_utc(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps({"stream": "reservoir", "source_id": "ta-trach", "ts": T0 + i * 600,
                                            "level_m": 45.2, "id": f"e{i}"}) for i in range(3)) + "\n",
                      encoding="utf-8")
    outs = []
    for until in ("2025-10-27 10:00", "2025-10-27T03:00:00Z"):
        out = tmp_path / f"{len(outs)}.jsonl"
        assert main(["backtest", "--events", str(events), "--out", str(out), "--until", until]) == 0
        outs.append(out.read_text(encoding="utf-8"))
    assert outs[0] == outs[1] and outs[0]
