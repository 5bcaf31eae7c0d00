"""`ioc backtest`: JSONL, CSV and Parquet inputs give the same alerts as the streaming engine."""

from __future__ import annotations

import orjson
import pandas as pd
import pytest

from ioc.analysis.backtest import BacktestError, RawEvent, read_events, run_backtest
from ioc.cli.main import main
from ioc.config import REPO_ROOT
from ioc.engine import Engine
from ioc.events import decode
from ioc.refdata import load_reference
from ioc.rules.loader import load_rules
from ioc.timeutil import format_local, format_ts, parse_ts
from sensors_sim.reservoir import ReservoirSimulator, load_stations

T0 = parse_ts("2025-10-27T08:00:00+07:00")


@pytest.fixture(scope="module")
def ruleset():
    return load_rules([REPO_ROOT / "rules" / "reservoir.yaml"], load_reference(REPO_ROOT / "config" / "reference"))


@pytest.fixture(scope="module")
def flood():
    sim = ReservoirSimulator(load_stations(), seed=3, start=T0, flood_at_s=3600.0)
    return list(sim.events(36 * 3600.0))


def _write_jsonl(path, events):
    path.write_bytes(b"".join(orjson.dumps({"stream": "reservoir", **e}) + b"\n" for e in events))
    return path


def test_backtest_equals_the_streaming_engine_on_the_same_events(ruleset, flood):
    result = run_backtest(ruleset, [RawEvent("reservoir", dict(e), "x") for e in flood])
    engine = Engine(ruleset)
    streamed = []
    for start in range(0, len(flood), 37):  # batches as a worker might fetch them
        streamed += engine.process("reservoir", [decode("reservoir", e) for e in flood[start:start + 37]])
    # Per fingerprint, in order: alerts of different keys decided at one event time may come in
    # any order (the backtest runs each partition and key space apart, then merges by detected_at;
    # e.g. reservoir.spill.without_notice, decided by a timer, and a `by: null` sequence).
    def per_fingerprint(alerts):  # type: ignore[no-untyped-def]
        out = {}
        for a in alerts:
            out.setdefault(a.fingerprint, []).append((a.alert_id, a.status, a.starts_at, a.ends_at))
        return out

    assert per_fingerprint(result.alerts) == per_fingerprint(streamed)
    assert len(result.alerts) == len(streamed)
    assert any(a.rule_id == "gauge.level.above_bd3" for a in result.alerts)
    assert result.events == len(flood)


def test_jsonl_csv_and_parquet_give_identical_alerts(ruleset, flood, tmp_path):
    jsonl = _write_jsonl(tmp_path / "flood.jsonl", flood)
    frame = pd.DataFrame([{"stream": "reservoir", **e} for e in flood])
    frame.to_csv(tmp_path / "flood.csv", index=False)
    frame.to_parquet(tmp_path / "flood.parquet")
    results = [
        [a.to_record() for a in run_backtest(ruleset, read_events([path])).alerts]
        for path in (jsonl, tmp_path / "flood.csv", tmp_path / "flood.parquet")
    ]
    assert results[0]
    assert results[0] == results[1] == results[2]


def test_output_is_reproducible_detected_at_is_event_time(ruleset, flood):
    first = [a.to_record() for a in run_backtest(ruleset, [RawEvent("reservoir", dict(e), "x") for e in flood]).alerts]
    second = [a.to_record() for a in run_backtest(ruleset, [RawEvent("reservoir", dict(e), "x") for e in flood]).alerts]
    assert first == second
    assert all(parse_ts(r["detected_at"]) >= parse_ts(r["starts_at"]) for r in first)


def test_invalid_rows_are_counted_with_their_reason_and_location(ruleset, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"stream": "reservoir", "source_id": "ta-trach", "ts": 1761526800, "level_m": 44.0}\n'
        "not json\n"
        '{"stream": "reservoir", "source_id": "ta-trach", "level_m": 44.0}\n'
        '{"stream": "weather", "source_id": "x", "ts": 1761526800}\n',
        encoding="utf-8",
    )
    result = run_backtest(ruleset, read_events([path]))
    assert result.events == 1
    assert result.invalid == {"bad_json": 1, "missing_field": 1, "unknown_stream": 1}
    assert f"{path}:3: missing required field 'ts'" in result.invalid_examples
    assert any(e.startswith(f"{path}:4: unknown stream 'weather'") for e in result.invalid_examples)


def test_unknown_file_type_and_missing_file_are_clear(tmp_path):
    (tmp_path / "events.xml").write_text("<x/>", encoding="utf-8")
    with pytest.raises(BacktestError, match=r"events.xml: unknown event file type \(allowed: .jsonl, .csv, .parquet\)"):
        list(read_events([tmp_path / "events.xml"]))
    with pytest.raises(BacktestError, match="nope.jsonl: file not found"):
        list(read_events([tmp_path / "nope.jsonl"]))


def test_until_moves_the_watermark_so_pending_timers_fire(ruleset):
    rows = [RawEvent("reservoir", {"source_id": "ta-trach", "ts": format_ts(T0), "level_m": 44.7}, "x")]
    assert run_backtest(ruleset, rows).alerts == []
    fired = run_backtest(ruleset, rows, until=T0 + 3600).alerts
    assert [(a.rule_id, a.status, a.starts_at) for a in fired] == [("reservoir.level.near_nwl", "firing", T0)]


def test_cli_writes_alerts_summary_and_report(flood, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    jsonl = _write_jsonl(tmp_path / "flood.jsonl", flood)
    out, report = tmp_path / "alerts.jsonl", tmp_path / "report.html"
    code = main(["backtest", "--events", str(jsonl), "--out", str(out), "--report", str(report)])
    printed = capsys.readouterr().out
    assert code == 0
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert records and all(r["alert_id"].startswith(r["fingerprint"]) for r in records)
    assert f"{len(flood):,} events replayed" in printed
    assert "gauge.level.above_bd3" in printed
    html = report.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 2
    assert "gauge.level.above_bd3" in html


@pytest.mark.timeout(30)
def test_a_crafted_url_cannot_stall_the_shipped_sqli_rules():
    # "union" followed by thousands of inline comments: exponential backtracking in a badly
    # written pattern would take hours here; the shipped patterns answer at once.
    rules = load_rules([REPO_ROOT / "rules" / "cyber.yaml"], load_reference(REPO_ROOT / "config" / "reference"))
    url = "/p?q=union" + "/**/" * 2000 + "select"
    rows = [RawEvent("cyber", {"source_id": "soc-waf-01", "ts": T0, "event_action": "web", "src_ip": "192.0.2.1",
                               "url": url, "http_status": 200}, "x")]
    alerts = run_backtest(rules, rows).alerts
    assert sorted(a.rule_id for a in alerts) == ["cyber.web.long_url", "cyber.web.sqli_success"]  # 8,016 chars


def test_a_folder_of_events_and_rules_joined_by_colons(flood, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    folder = tmp_path / "out"
    folder.mkdir()
    _write_jsonl(folder / "reservoir.jsonl", flood)
    (folder / "ground_truth.jsonl").write_text('{"id": "x"}\n', encoding="utf-8")   # not events
    (folder / "notes.txt").write_text("not events\n", encoding="utf-8")
    assert [row.stream for row in read_events([folder])] == ["reservoir"] * len(flood)
    rules = f"{REPO_ROOT / 'rules' / 'reservoir.yaml'}:{REPO_ROOT / 'rules' / 'camera.yaml'}"
    assert main(["backtest", "--events", str(folder), "--rules", rules]) == 0
    printed = capsys.readouterr().out
    assert f"{len(flood):,} events replayed, 0 invalid" in printed
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BacktestError, match="no event files in this folder"):
        list(read_events([empty]))


def test_progress_covers_the_evaluation(ruleset, flood):
    seen = []
    run_backtest(ruleset, [RawEvent("reservoir", dict(e), "x") for e in flood], partitions=4,
                 evaluated=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1] == (len(flood), len(flood))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_people_read_huế_time_records_keep_utc(flood, tmp_path, capsys, monkeypatch):
    """The summary and the report say ICT (UTC+7); alert records stay in UTC."""
    monkeypatch.setenv("COLUMNS", "200")
    jsonl = _write_jsonl(tmp_path / "flood.jsonl", flood)
    out, report = tmp_path / "alerts.jsonl", tmp_path / "report.html"
    assert main(["backtest", "--events", str(jsonl), "--out", str(out), "--report", str(report)]) == 0
    printed = capsys.readouterr().out
    first = min(orjson.loads(line)["starts_at"] for line in out.read_bytes().splitlines())
    assert first.endswith("Z")
    local = format_local(parse_ts(first))
    assert "first start (ICT)" in printed and local in printed
    assert "first start (ICT)" in report.read_text(encoding="utf-8")
