"""A rule kind reports every independent problem of a rule, not only the first (issue 18).

For each kind: a valid rule loads; the same rule with two or more independent mistakes reports
each of them, as `file:line: rule 'id': field: problem`; with one mistake, exactly that one.
The line expected for a field is the line of its key in the written file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ioc.refdata import Reference, load_reference
from ioc.rules.exceptions import RuleError
from ioc.rules.kinds import KindProblem, KindProblems, Problems
from ioc.rules.loader import load_rules

REPO = Path(__file__).resolve().parents[3]
DROP = object()  # an override that removes the key


# kind: (stream, a valid rule's kind fields, overrides with several problems, the expected
# problems (field, message), overrides with one problem, its problem).
Case = tuple[str, dict[str, Any], dict[str, Any], list[tuple[str, str]], dict[str, Any], tuple[str, str]]

RESERVOIR_KNOWN = (
    "bd1_m, bd2_m, bd3_m, dead_m, event_type, flood_wait_m, gates_open, id, inflow_m3s, lat, level_m, lon, name, "
    "nwl_m, piezo_kpa, rain_mm_1h, river, seepage_lps, source_id, spill_m3s, ..."
)

CASES: dict[str, Case] = {
    "threshold": (
        "reservoir",
        {"kind": "threshold", "condition": "level_m >= nwl_m", "value": "level_m"},
        {"condition": "level_m >= nwl", "value": "levl_m"},
        [("condition", f"unknown field 'nwl' (known: {RESERVOIR_KNOWN}; did you mean 'nwl_m'?) in 'level_m >= nwl'"),
         ("value", f"unknown field 'levl_m' (known: {RESERVOIR_KNOWN}; did you mean 'level_m'?) in 'levl_m'")],
        {"value": "levl_m"},
        ("value", f"unknown field 'levl_m' (known: {RESERVOIR_KNOWN}; did you mean 'level_m'?) in 'levl_m'"),
    ),
    "window": (
        "camera",
        {"kind": "window", "key": ["source_id"], "window": "10m", "agg": "sum", "field": "speed_kmh",
         "condition": "value > 3"},
        {"field": "plate", "step": "5m"},
        [("field", "'plate' is not a number field of stream 'camera'; agg 'sum' needs one"
                   " (allowed: count, lat, lon, score, speed_kmh, ts)"),
         ("step", "only for type hopping (this window is sliding)")],
        {"step": "5m"},
        ("step", "only for type hopping (this window is sliding)"),
    ),
    "window_hopping": (
        "camera",
        {"kind": "window", "type": "hopping", "key": ["source_id"], "window": "10m", "step": "5m", "agg": "count",
         "condition": "value > 3"},
        {"field": "plate", "step": "3m", "value": "speed_kmh"},
        [("value", "not used by kind 'window': the alert's value is the aggregate (count)"),
         ("field", "not used with agg 'count' (it counts the events that pass `where`)"),
         ("step", "step '3m' must divide window '10m' (e.g. window 15m, step 5m)")],
        {"step": "3m"},
        ("step", "step '3m' must divide window '10m' (e.g. window 15m, step 5m)"),
    ),
    "rate": (
        "reservoir",
        {"kind": "rate", "field": "level_m", "window": "1h", "per": "1h", "min_span": "30m", "condition": "value > 1"},
        {"field": "level_mm", "min_span": "2h", "condition": "vale > 1"},
        [("field", f"unknown field 'level_mm' (known: {RESERVOIR_KNOWN}; did you mean 'level_m'?) in 'level_mm'"),
         ("min_span", "'2h' must be shorter than window '1h' (the samples of a window span less than the window)"),
         ("condition", "unknown field 'vale' (known: count, delta, span, value; did you mean 'value'?) in 'vale > 1'")],
        {"min_span": "2h"},
        ("min_span", "'2h' must be shorter than window '1h' (the samples of a window span less than the window)"),
    ),
    "absence": (
        "reservoir",
        {"kind": "absence", "timeout": "30m", "expect": "reference", "key": ["source_id"]},
        {"timeout": "0s", "value": "level_m", "key": ["name"]},
        [("timeout", "'0s' must be more than 0 (e.g. 10m, 2h)"),
         ("value", "'level_m' is not allowed: an absence has no event to compute it from (its value is the seconds"
                   " silent)"),
         ("expect", "'reference' needs key [source_id] (reference data is joined on source_id), not [name]"
                    " (use expect: seen for other keys)")],
        {"timeout": "0s"},
        ("timeout", "'0s' must be more than 0 (e.g. 10m, 2h)"),
    ),
    "geofence": (
        "vessel",
        {"kind": "geofence", "zones": "zones/hue_sea.geojson", "mode": "enters", "lat_field": "lat",
         "lon_field": "lon"},
        {"dwell": "1h", "lon_field": "lat", "zones": "zones/missing.geojson"},
        [("dwell", "dwell '1h' applies to mode inside or outside only (mode 'enters' fires at the crossing; for"
                   " 'stays inside for a while' use mode inside with dwell)"),
         ("lon_field", "'lat' is also the lat_field (they must differ)"),
         ("zones", f"file 'zones/missing.geojson' not found (looked in {REPO / 'config'})")],
        {"lon_field": "lat"},
        ("lon_field", "'lat' is also the lat_field (they must differ)"),
    ),
    "match": (
        "press",
        {"kind": "match", "fields": ["title", "body"], "any": ["xả lũ"], "regex": "vo dap"},
        {"fields": ["title", "titel"], "any": [], "resolve_after": "0s", "regex": "("},
        [("fields", "unknown field 'titel' of stream 'press' (allowed: body, id, lang, source_id, title, topics, url;"
                    " did you mean 'title'?)"),
         ("any", "is empty (list at least one keyword, or leave 'any' out)"),
         ("resolve_after", "'0s' must be more than 0 (e.g. 5m, 1h)"),
         ("regex", "invalid pattern '(': missing ), unterminated subpattern at position 0")],
        {"any": []},
        ("any", "is empty (list at least one keyword, or leave 'any' out)"),
    ),
    "spike": (
        "camera",
        {"kind": "spike", "key": ["source_id"], "window": "1h", "baseline": "7d", "ratio": 3, "min_count": 5},
        {"ratio": 1, "min_count": 0, "field": "speed_kmh"},
        [("ratio", "1.0 must be a number more than 1 (e.g. 3.0: three times the baseline, or a third of it for"
                   " direction down)"),
         ("min_count", "0 must be at least 1"),
         ("field", "is only used with agg sum or avg (agg is count)")],
        {"min_count": 0},
        ("min_count", "0 must be at least 1"),
    ),
    "new_value": (
        "cyber",
        {"kind": "new_value", "key": ["user"], "field": "src_ip", "lookback": "30d"},
        {"field": "src_ipp", "lookback": "0s", "max_values": 0},
        [("field", "unknown field 'src_ipp' of stream 'cyber' (allowed: dst_ip, dst_port, event_action,"
                   " event_outcome, host, http_method, http_status, id, signature, source_id, src_ip, ts, url, user,"
                   " user_agent)"),
         ("lookback", "'0s' must be more than 0 (e.g. 30d)"),
         ("max_values", "0 must be between 1 and 100000")],
        {"lookback": "0s"},
        ("lookback", "'0s' must be more than 0 (e.g. 30d)"),
    ),
    "sequence": (
        "cyber",
        {"kind": "sequence", "by": "src_ip", "within": "2m",
         "steps": [{"name": "a", "stream": "cyber", "condition": "event_outcome == 'failure'"},
                   {"name": "b", "stream": "cyber", "condition": "event_outcome == 'success'"}]},
        {"value": "x", "by": "src_ipp",
         "steps": [{"name": "a", "stream": "cyber", "condition": "event_outcom == 'failure'"},
                   {"name": "b", "stream": "cyber", "condition": "event_outcome == 'success'", "within": "1m"}]},
        [("value", "a sequence measures nothing (its details are the time of each step); remove `value`"),
         ("steps.0.condition", "unknown field 'event_outcom' (known: change_window, dst_ip, dst_port, event_action,"
                               " event_outcome, host, http_method, http_status, id, protects, sensor_site,"
                               " sensor_type, signature, source_id, src_ip, ts, url, user, user_agent, web_root;"
                               " did you mean 'event_outcome'?) in \"event_outcom == 'failure'\""),
         ("by", "unknown field 'src_ipp' of stream 'cyber' (step 0; event fields: dst_ip, dst_port, event_action,"
                " event_outcome, host, http_method, http_status, id, signature, source_id, src_ip, ts, url, user,"
                " user_agent; reference fields: change_window, protects, sensor_site, sensor_type, web_root; did you"
                " mean 'src_ip'?)"),
         ("steps.1.within", "only an absence step (`absent: true`) has its own `within`; a present step is bounded"
                            " by the rule's `within`")],
        {"value": "x"},
        ("value", "a sequence measures nothing (its details are the time of each step); remove `value`"),
    ),
    "near_duplicate": (
        "press",
        {"kind": "near_duplicate", "key": ["lang"], "fields": ["title", "body"], "similarity": 0.5, "within": "6h",
         "min_count": 3},
        {"similarity": 2, "min_count": 1},
        [("similarity", "2.0 must be more than 0 and at most 1 (the Jaccard index of two items' shingles, e.g. 0.5)"),
         ("min_count", "1 must be at least 2 (a story needs two items)")],
        {"similarity": 2},
        ("similarity", "2.0 must be more than 0 and at most 1 (the Jaccard index of two items' shingles, e.g. 0.5)"),
    ),
    "proximity": (
        "vessel",
        {"kind": "proximity", "key": ["source_id"], "distance_km": 0.5, "within": "10m", "condition": "sog_kn > 1"},
        {"distance_km": 0, "within": "0s", "condition": "sog > 1"},
        [("distance_km", "0 must be more than 0 (a distance in km, e.g. 0.5)"),
         ("within", "'0s' must be more than 0 (e.g. 10m, 2h)"),
         ("condition", "unknown field 'sog' (known: allowed_zone, cog_deg, device_status, home_port,"
                       " home_port_name, id, lat, length_class, length_m, lon, mmsi, mmsi_ref, owner_commune, sog_kn,"
                       " source_id, ts, vessel_length_m, vms_required; did you mean 'sog_kn'?) in 'sog > 1'")],
        {"within": "0s"},
        ("within", "'0s' must be more than 0 (e.g. 10m, 2h)"),
    ),
}


@pytest.fixture(scope="module")
def reference() -> Reference:
    return load_reference(REPO / "config" / "reference")


def write_rule(directory: Path, name: str, stream: str, fields: dict[str, Any],
               overrides: dict[str, Any]) -> tuple[Path, str]:
    rule: dict[str, Any] = {"id": f"t.{name}", "stream": stream, "severity": "warning", "summary": "x", **fields}
    for key, value in overrides.items():
        if value is DROP:
            rule.pop(key, None)
        else:
            rule[key] = value
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"rules": [rule]}, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path, rule["id"]


def expected(path: Path, rule_id: str, problems: list[tuple[str, str]]) -> list[str]:
    """The messages, each at the line of its field's key in the file."""
    lines = path.read_text(encoding="utf-8").splitlines()

    def line_of(field: str) -> int:
        top = field.split(".")[0]
        return next(i for i, text in enumerate(lines, 1) if text.strip().startswith(f"{top}:"))

    return [f"{path}:{line_of(field)}: rule '{rule_id}': {field}: {message}" for field, message in problems]


def errors(path: Path, reference: Reference) -> list[str]:
    with pytest.raises(RuleError) as info:
        load_rules([path], reference)
    return [str(problem) for problem in info.value.problems]


def test_every_loaded_kind_has_a_case() -> None:
    from ioc.rules.kinds import RULE_KINDS

    assert set(RULE_KINDS) <= {case[1]["kind"] for case in CASES.values()}


@pytest.mark.parametrize("name", CASES)
def test_the_valid_rule_loads(name: str, tmp_path: Path, reference: Reference) -> None:
    stream, fields, *_ = CASES[name]
    path, _ = write_rule(tmp_path, name, stream, fields, {})
    assert len(load_rules([path], reference)) == 1


@pytest.mark.parametrize("name", CASES)
def test_every_independent_problem_is_reported(name: str, tmp_path: Path, reference: Reference) -> None:
    stream, fields, several, problems, _, _ = CASES[name]
    assert len(problems) >= 2
    path, rule_id = write_rule(tmp_path, name, stream, fields, several)
    assert sorted(errors(path, reference)) == sorted(expected(path, rule_id, problems))


@pytest.mark.parametrize("name", CASES)
def test_one_problem_is_reported_alone(name: str, tmp_path: Path, reference: Reference) -> None:
    stream, fields, _, _, one, problem = CASES[name]
    path, rule_id = write_rule(tmp_path, name, stream, fields, one)
    assert errors(path, reference) == expected(path, rule_id, [problem])


def test_a_where_the_kind_and_the_loader_both_check_is_reported_once(tmp_path: Path, reference: Reference) -> None:
    """An absence with expect: reference compiles `where` itself (it chooses the expected keys),
    and the loader checks every rule's `where`: one line, not two."""
    stream, fields, *_ = CASES["absence"]
    path, rule_id = write_rule(tmp_path, "absence", stream, fields, {"where": "vms_requird == True"})
    [message] = errors(path, reference)
    where_line = expected(path, rule_id, [("where", "")])[0].removesuffix(" ")
    assert message.startswith(f"{where_line} unknown field 'vms_requird'")


# --- the collector ---------------------------------------------------------------------------


def test_problems_records_each_check_and_continues() -> None:
    found = Problems()
    ran = []
    with found:
        raise KindProblem("within", "must be more than 0")
    with found:
        ran.append("second")
        raise KindProblems([KindProblem("steps.1.within", "a"), KindProblem("steps", "b")])
    with found:
        ran.append("third")
    assert ran == ["second", "third"]
    assert found.failed("steps") and not found.failed("value")
    with pytest.raises(KindProblems) as info:
        found.raise_any()
    assert [(p.field, p.message) for p in info.value.problems] == [
        ("within", "must be more than 0"), ("steps.1.within", "a"), ("steps", "b")]


def test_problems_lets_other_errors_through_and_raises_nothing_when_empty() -> None:
    found = Problems()
    with pytest.raises(ZeroDivisionError), found:
        _ = 1 / 0
    found.raise_any()
    assert not found
