"""The `geofence` kind in the engine: inside/outside (continuous, with dwell), enters/exits (instant).

Rules are YAML written to tmp_path and loaded with the real loader; zones are the shipped
config/zones/hue_sea.geojson (bands off Thừa Thiên Huế, ports, an illustrative foreign box)
or small squares written to tmp_path. Events are built with `ioc.events.decode`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import kindtest
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kindtest import (
    SIZES,
    T0,
    Pairs,
    arrivals,
    batching_settings,
    brief,
    engine_of,
    expected_fingerprint,
    feed_pairs,
    make_rules,
    per_fingerprint,
    records,
    replay,
    rule_error,
    run_restored,
    summary_of,
)

import ioc.rules.expr as expr_module
from ioc.events import decode
from ioc.events.schemas import stream_fields
from ioc.refdata import Reference, RefTable
from ioc.rules.exceptions import RuleError
from ioc.rules.kinds import RULE_KINDS, BuildContext
from ioc.rules.kinds.base import Key, State
from ioc.rules.kinds.geofence import GeofenceRule, GeofenceSpec
from ioc.rules.loader import RuleSet

RULE_ID = "test.vessel.geofence"
ZONES = "zones/hue_sea.geojson"
V1, V2, V3 = "TTH-90123-TS", "TTH-90456-TS", "TTH-91789-TS"

# (lat, lon) positions checked against config/zones/hue_sea.geojson (see tests/unit/test_geo.py).
PORT = (16.567, 107.625)       # Cửa Thuận An: inside the port box and the coastal band
COASTAL = (16.602, 107.648)    # ~3 nm off Thuận An
INSHORE = (16.729, 107.733)    # ~12 nm
OFFSHORE = (17.122, 107.997)   # ~40 nm
FOREIGN = (19.3, 108.2)        # the illustrative foreign box (Gulf of Tonkin, off Hainan)
NOWHERE = (16.0, 109.5)        # open sea outside every zone of the file
LAND = (16.45, 107.5)          # Huế city

FOREIGN_NAME = "Vùng biển nước ngoài (minh hoạ)"
COASTAL_NAME = "Vùng biển ven bờ (< 6 hải lý)"
INSHORE_NAME = "Vùng lộng (6–24 hải lý)"
OFFSHORE_NAME = "Vùng khơi (> 24 hải lý)"
THUAN_AN = "Cửa Thuận An (cảng cá)"

LENGTH_MISMATCH = "length_m < min_length_m or (max_length_m is not None and length_m >= max_length_m)"
BANDS = "zone_class in ['coastal', 'inshore', 'offshore']"


# One geofence rule over the vessel stream (inside the foreign box): `rule_yaml(**fields)` overrides,
# adds or (None) removes fields.
RULE: dict[str, Any] = {
    "id": RULE_ID,
    "stream": "vessel",
    "kind": "geofence",
    "zones": ZONES,
    "zone_filter": "foreign == True",
    "mode": "inside",
    "severity": "critical",
    "labels": {"domain": "fisheries", "agency": "Chi cục Thủy sản"},
    "summary": "Tàu {source_id} trong {value}",
}


# -- helpers --------------------------------------------------------------------------------------

rule_yaml = partial(kindtest.rule_yaml, RULE)
feed = partial(kindtest.feed, stream="vessel")
run = partial(feed_pairs, stream="vessel")


def vessel_reference(**rows: dict[str, Any]) -> Reference:
    """Reference data for the vessel stream, joined on source_id (like config/reference/vessel.yaml)."""
    table = {source: {"source_id": source, **row} for source, row in rows.items()}
    names = frozenset({"source_id"}).union(*(row.keys() for row in rows.values()))
    return Reference({"vessel": RefTable("vessel", "source_id", table, names)})


def one_rule(tmp_path: Path, **fields: Any) -> RuleSet:
    return make_rules(tmp_path, rule_yaml(**fields))


def load_error(tmp_path: Path, **fields: Any) -> str:
    """The loader's message for a rule that must not load."""
    return str(rule_error(tmp_path, rule_yaml(**fields)))


def vessel(source: str, t: float, pos: tuple[float, float], length: float = 20.0, **extra: Any) -> dict[str, Any]:
    """A decoded VMS position at T0 + t seconds."""
    raw: dict[str, Any] = {"source_id": source, "ts": T0 + t, "lat": pos[0], "lon": pos[1], "length_m": length}
    raw.update(extra)
    return decode("vessel", raw)


def square(zone_id: str, lat: float, lon: float, half: float = 0.05, **props: Any) -> dict[str, Any]:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]
    return {"type": "Feature", "id": zone_id, "properties": props,
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def zones_file(tmp_path: Path, features: list[Any] | str, name: str = "zones.geojson") -> str:
    """Write a zones file; returns its absolute path (a rule may name one outside config/)."""
    path = tmp_path / name
    text = features if isinstance(features, str) else json.dumps(
        {"type": "FeatureCollection", "features": features}, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- inside: foreign waters, at once ----------------------------------------------------------------


def test_inside_fires_at_first_position_inside_and_resolves_at_first_outside(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    assert feed(engine, [vessel(V1, 0, OFFSHORE), vessel(V1, 600, NOWHERE)]) == []
    fired = feed(engine, [vessel(V1, 1200, FOREIGN)])
    assert brief(fired) == [("firing", V1, 1200.0, None)]
    assert fired[0].details["zone"] == FOREIGN_NAME
    assert fired[0].summary == f"Tàu {V1} trong {FOREIGN_NAME}"
    assert feed(engine, [vessel(V1, 1800, FOREIGN)]) == []  # still inside: same episode
    resolved = feed(engine, [vessel(V1, 2400, NOWHERE)])
    assert brief(resolved) == [("resolved", V1, 1200.0, 2400.0)]
    assert resolved[0].alert_id == fired[0].alert_id
    assert engine.firing() == []


def test_inside_does_not_fire_outside_selected_zones(tmp_path: Path) -> None:
    # Every home zone contains these points, but zone_filter selects only the foreign one.
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, [vessel(V1, 60 * i, pos) for i, pos in
                           enumerate([PORT, COASTAL, INSHORE, OFFSHORE, NOWHERE, LAND])])
    assert alerts == []
    assert engine.last_stats.evaluations == 1


def test_keys_are_independent(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    alerts = feed(engine, [vessel(V1, 0, FOREIGN), vessel(V2, 10, OFFSHORE), vessel(V2, 20, FOREIGN),
                           vessel(V1, 30, NOWHERE)])
    assert brief(alerts) == [("firing", V1, 0.0, None), ("firing", V2, 20.0, None), ("resolved", V1, 0.0, 30.0)]
    assert [a.key["source_id"] for a in engine.firing()] == [V2]


def test_without_zone_filter_every_zone_counts(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, zone_filter=None))
    alerts = feed(engine, [vessel(V1, 0, LAND), vessel(V1, 60, PORT), vessel(V1, 120, NOWHERE)])
    # The port position is in the coastal band and the port box: the first in file order is reported.
    assert brief(alerts) == [("firing", V1, 60.0, None), ("resolved", V1, 60.0, 120.0)]
    assert alerts[0].details["zone"] == COASTAL_NAME


# -- dwell --------------------------------------------------------------------------------------------


def test_dwell_fires_exactly_when_held_for_dwell(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, dwell="30m"))
    assert feed(engine, [vessel(V1, 0, FOREIGN), vessel(V1, 900, FOREIGN), vessel(V1, 1799, FOREIGN)]) == []
    alerts = feed(engine, [vessel(V1, 1800, FOREIGN)])
    assert brief(alerts) == [("firing", V1, 0.0, None)]


def test_dwell_interrupted_by_a_position_outside(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, dwell="30m"))
    alerts = feed(engine, [vessel(V1, 0, FOREIGN), vessel(V1, 1000, NOWHERE), vessel(V1, 1100, FOREIGN),
                           vessel(V2, 1900, NOWHERE), vessel(V1, 2899, FOREIGN)])
    assert alerts == []  # the stale timer (1800) must not fire: pending since 1100 only
    assert brief(feed(engine, [vessel(V1, 2900, FOREIGN)])) == [("firing", V1, 1100.0, None)]


def test_dwell_timer_fires_when_another_key_moves_the_watermark(tmp_path: Path) -> None:
    # VMS reports every few hours: the vessel says nothing more, the stream's watermark decides.
    engine = engine_of(one_rule(tmp_path, dwell="30m"))
    assert feed(engine, [vessel(V1, 0, FOREIGN, id="p1"), vessel(V2, 1799, NOWHERE)]) == []
    alerts = feed(engine, [vessel(V2, 1801, NOWHERE)])
    assert brief(alerts) == [("firing", V1, 0.0, None)]
    assert alerts[0].details["zone"] == FOREIGN_NAME
    assert alerts[0].summary == f"Tàu {V1} trong {FOREIGN_NAME}"  # rendered from the remembered position
    assert alerts[0].evidence == ["p1"]


def test_dwell_timer_fires_only_once_the_watermark_is_past_the_deadline(tmp_path: Path) -> None:
    # An event of another key exactly at the deadline does not fire it: events sharing that
    # time might still say otherwise; the next later event does.
    engine = engine_of(one_rule(tmp_path, dwell="30m"))
    assert feed(engine, [vessel(V1, 0, FOREIGN), vessel(V2, 1800, NOWHERE)]) == []
    assert brief(feed(engine, [vessel(V3, 1800.5, NOWHERE)])) == [("firing", V1, 0.0, None)]


def test_dwell_tie_position_outside_at_deadline_decides_no_fire(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, dwell="30m"))
    alerts = feed(engine, [vessel(V1, 0, FOREIGN), vessel(V1, 1800, NOWHERE), vessel(V2, 9000, NOWHERE)])
    assert alerts == []


def test_dwell_deadline_strictly_before_an_outside_position_fires_then_resolves(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, dwell="30m"))
    alerts = feed(engine, [vessel(V1, 0, FOREIGN), vessel(V1, 1801, NOWHERE)])
    assert brief(alerts) == [("firing", V1, 0.0, None), ("resolved", V1, 0.0, 1801.0)]


def test_dwell_fired_by_advance(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, dwell="30m"))
    feed(engine, [vessel(V1, 0, FOREIGN)])
    assert engine.advance("vessel", T0 + 1800) == []
    assert brief(engine.advance("vessel", T0 + 1801)) == [("firing", V1, 0.0, None)]


def test_dwell_continues_across_adjacent_matching_zones(tmp_path: Path) -> None:
    # Any zone matching counts: coastal then inshore (both wrong for a 20 m vessel) is one stay.
    engine = engine_of(one_rule(tmp_path, zone_filter=BANDS, condition=LENGTH_MISMATCH, dwell="2h"))
    alerts = feed(engine, [vessel(V1, 0, COASTAL), vessel(V1, 3600, INSHORE), vessel(V1, 7200, INSHORE)])
    assert brief(alerts) == [("firing", V1, 0.0, None)]
    assert alerts[0].details["zone"] == INSHORE_NAME  # the zone of the position that fired it


# -- condition over zone properties ---------------------------------------------------------------------


@pytest.mark.parametrize(("length", "pos", "fires", "zone"), [
    (10.0, COASTAL, False, None), (10.0, INSHORE, True, INSHORE_NAME), (10.0, OFFSHORE, True, OFFSHORE_NAME),
    (12.0, COASTAL, True, COASTAL_NAME), (13.5, INSHORE, False, None), (14.99, OFFSHORE, True, OFFSHORE_NAME),
    (15.0, INSHORE, True, INSHORE_NAME), (15.0, OFFSHORE, False, None), (24.0, OFFSHORE, False, None),
    (24.0, COASTAL, True, COASTAL_NAME), (24.0, NOWHERE, False, None),
])
def test_zone_not_allowed_for_length(
    tmp_path: Path, length: float, pos: tuple[float, float], fires: bool, zone: str | None
) -> None:
    # docs/domain.md §2: < 12 m coastal only; 12-15 m inshore only; >= 15 m offshore only.
    engine = engine_of(one_rule(tmp_path, zone_filter=BANDS, condition=LENGTH_MISMATCH, severity="warning",
                                summary="{source_id} ({length_m} m) trong {value}"))
    alerts = feed(engine, [vessel(V1, 0, pos, length=length)])
    assert [a.details["zone"] for a in alerts] == ([zone] if fires else [])
    if fires:
        assert alerts[0].summary == f"{V1} ({length} m) trong {zone}"


def test_condition_mixes_event_fields_and_zone_properties(tmp_path: Path) -> None:
    # Slow (fishing speed) inside a band not allowed for the length.
    engine = engine_of(one_rule(tmp_path, zone_filter=BANDS, condition=f"sog_kn < 4 and ({LENGTH_MISMATCH})"))
    alerts = feed(engine, [vessel(V1, 0, COASTAL, sog_kn=9.0), vessel(V1, 600, COASTAL, sog_kn=2.5),
                           vessel(V1, 1200, COASTAL, sog_kn=8.0)])
    assert brief(alerts) == [("firing", V1, 600.0, None), ("resolved", V1, 600.0, 1200.0)]


def test_value_expression_over_zone_properties(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, zone_filter=BANDS, condition=LENGTH_MISMATCH,
                                value="length_m - max_length_m", summary="{value:.1f} m"))
    alerts = feed(engine, [vessel(V1, 0, COASTAL, length=18.5)])
    assert alerts[0].value == pytest.approx(6.5)
    assert alerts[0].summary == "6.5 m"


def test_condition_reads_reference_data_and_zone_properties(tmp_path: Path) -> None:
    reference = vessel_reference(**{
        V1: {"allowed_zone": "offshore", "home_port_name": "Cảng cá Thuận An"},
        V2: {"allowed_zone": "coastal", "home_port_name": "Cảng Tư Hiền"},
    })
    text = rule_yaml(zone_filter=BANDS, condition="zone_class != allowed_zone",
                     summary="{source_id} ({home_port_name}, {allowed_zone}) trong {value}")
    engine = engine_of(make_rules(tmp_path, text, reference=reference))
    alerts = feed(engine, [vessel(V1, 0, OFFSHORE), vessel(V2, 10, COASTAL), vessel(V1, 60, COASTAL),
                           vessel(V2, 70, INSHORE), vessel(V1, 120, OFFSHORE)])
    assert brief(alerts) == [("firing", V1, 60.0, None), ("firing", V2, 70.0, None), ("resolved", V1, 60.0, 120.0)]
    assert alerts[0].summary == f"{V1} (Cảng cá Thuận An, offshore) trong {COASTAL_NAME}"
    assert alerts[1].details["zone"] == INSHORE_NAME


def test_zone_property_shared_with_a_reference_field_only_where_read(tmp_path: Path) -> None:
    # The vessel's registered name and the zone's name: fine until the rule reads `name`.
    reference = vessel_reference(**{V1: {"name": "Phú Thuận 01"}})
    assert make_rules(tmp_path, rule_yaml(), reference=reference).rules[0].id == RULE_ID
    for field, fields in (("summary", {"summary": "{name}"}), ("condition", {"condition": "name != ''"}),
                          ("value", {"value": "name"})):
        with pytest.raises(RuleError) as info:
            make_rules(tmp_path, rule_yaml(**fields), reference=reference)
        assert problem(tmp_path, f"{field}: 'name': both a property of the zones in '{ZONES}' and a reference field"
                                 " of stream 'vessel' (rename the zone property)") in str(info.value)


# -- outside ---------------------------------------------------------------------------------------------


def test_outside_allowed_zones(tmp_path: Path) -> None:
    # Outside every zone allowed for the vessel's length (ports always allowed), for 1 h.
    allowed = "zone_class == 'port' or (min_length_m <= length_m and (max_length_m is None or length_m < max_length_m))"
    engine = engine_of(one_rule(tmp_path, zone_filter=None, mode="outside", condition=allowed, dwell="1h",
                                severity="warning"))
    alerts = feed(engine, [
        vessel(V1, 0, PORT), vessel(V1, 600, COASTAL), vessel(V1, 1200, INSHORE),  # 20 m: transit
        vessel(V1, 2400, OFFSHORE), vessel(V1, 3600, OFFSHORE),                      # allowed again
        vessel(V1, 4000, COASTAL), vessel(V1, 7600, COASTAL),                        # an hour in coastal
    ])
    assert brief(alerts) == [("firing", V1, 4000.0, None)]
    assert alerts[0].details["zone"] == COASTAL_NAME  # the zone it is in without being allowed there
    assert brief(feed(engine, [vessel(V1, 8000, PORT)])) == [("resolved", V1, 4000.0, 8000.0)]


def test_outside_every_selected_zone_has_no_zone_value(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, zone_filter=BANDS, mode="outside",
                                summary="{source_id} ngoài vùng ({value})"))
    alerts = feed(engine, [vessel(V1, 0, OFFSHORE), vessel(V1, 60, NOWHERE), vessel(V1, 120, INSHORE)])
    assert brief(alerts) == [("firing", V1, 60.0, None), ("resolved", V1, 60.0, 120.0)]
    assert alerts[0].value is None and alerts[0].details == {}
    assert alerts[0].summary == f"{V1} ngoài vùng (?)"


# -- enters / exits ----------------------------------------------------------------------------------------


def test_enters_port(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, zone_filter="zone_class == 'port'", mode="enters", severity="info",
                                resolve_after="30m", summary="{source_id} vào {value}"))
    alerts = feed(engine, [vessel(V1, 0, COASTAL), vessel(V1, 600, COASTAL)])
    assert alerts == []
    alerts = feed(engine, [vessel(V1, 1200, PORT, id="in")])
    assert brief(alerts) == [("firing", V1, 1200.0, None)]
    assert alerts[0].details["zone"] == THUAN_AN
    assert alerts[0].summary == f"{V1} vào {THUAN_AN}"
    assert alerts[0].evidence == ["in"]
    assert feed(engine, [vessel(V1, 1800, PORT)]) == []  # staying is not entering again
    assert engine.advance("vessel", T0 + 3000) == []
    assert brief(engine.advance("vessel", T0 + 3001)) == [("resolved", V1, 1200.0, 3000.0)]


def test_first_position_of_a_key_is_not_a_crossing(tmp_path: Path) -> None:
    enters = engine_of(one_rule(tmp_path, zone_filter="zone_class == 'port'", mode="enters"))
    assert feed(enters, [vessel(V1, 0, PORT), vessel(V1, 60, PORT)]) == []
    exits = engine_of(make_rules(tmp_path, rule_yaml(zone_filter="zone_class == 'port'", mode="exits"), name="x.yaml"))
    assert feed(exits, [vessel(V1, 0, COASTAL), vessel(V1, 60, NOWHERE)]) == []


def test_exits_port(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, zone_filter="zone_class == 'port'", mode="exits", resolve_after="10m",
                                summary="{source_id} rời {value}"))
    alerts = feed(engine, [vessel(V1, 0, PORT), vessel(V1, 600, PORT), vessel(V1, 1200, COASTAL)])
    assert brief(alerts) == [("firing", V1, 1200.0, None)]
    assert alerts[0].summary == f"{V1} rời {THUAN_AN}"
    # Resolved 10 min after the last match, by the next position (timers strictly before it run first).
    assert brief(feed(engine, [vessel(V1, 5000, INSHORE)])) == [("resolved", V1, 1200.0, 1800.0)]


def test_enters_is_per_zone_between_adjacent_bands(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, zone_filter=BANDS, mode="enters"))
    alerts = feed(engine, [vessel(V1, 0, COASTAL), vessel(V1, 60, INSHORE), vessel(V1, 120, OFFSHORE)])
    assert brief(alerts) == [("firing", V1, 60.0, None)]
    assert alerts[0].details["zone"] == INSHORE_NAME
    assert alerts[0].to_record()["details"]["zone"] == INSHORE_NAME  # extended by the second crossing: last value kept


def test_crossing_inside_resolve_after_extends_the_episode(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, zone_filter="zone_class == 'port'", mode="enters", resolve_after="30m"))
    alerts = feed(engine, [vessel(V1, 0, COASTAL), vessel(V1, 60, PORT), vessel(V1, 600, COASTAL),
                           vessel(V1, 1200, PORT), vessel(V1, 2000, COASTAL)])
    assert brief(alerts) == [("firing", V1, 60.0, None)]
    # Last match 1200 + 30 m = 3000: resolved then, one episode.
    alerts = feed(engine, [vessel(V2, 3001, NOWHERE)])
    assert brief(alerts) == [("resolved", V1, 60.0, 3000.0)]
    # A new entry after the episode ended is a new episode with a new id.
    again = feed(engine, [vessel(V1, 4000, PORT)])
    assert brief(again) == [("firing", V1, 4000.0, None)]
    assert again[0].alert_id != alerts[0].alert_id
    assert again[0].fingerprint == alerts[0].fingerprint


def test_exits_with_condition_counts_condition_turning_false(tmp_path: Path) -> None:
    # A zone "matches" only while the condition holds: speeding up inside the port is leaving it.
    engine = engine_of(one_rule(tmp_path, zone_filter="zone_class == 'port'", mode="exits", condition="sog_kn < 1"))
    alerts = feed(engine, [vessel(V1, 0, PORT, sog_kn=0.0), vessel(V1, 60, PORT, sog_kn=3.0)])
    assert brief(alerts) == [("firing", V1, 60.0, None)]
    assert alerts[0].details["zone"] == THUAN_AN


# -- realert ---------------------------------------------------------------------------------------------


def test_realert_suppresses_then_retries_while_still_inside(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="1h"))
    alerts = feed(engine, [vessel(V1, 0, FOREIGN), vessel(V1, 600, NOWHERE)])
    assert brief(alerts) == [("firing", V1, 0.0, None), ("resolved", V1, 0.0, 600.0)]
    assert feed(engine, [vessel(V1, 1200, FOREIGN), vessel(V1, 3000, FOREIGN), vessel(V2, 4199, NOWHERE)]) == []
    alerts = feed(engine, [vessel(V2, 4201, NOWHERE)])
    assert brief(alerts) == [("firing", V1, 1200.0, None)]  # retried at 600 + 1 h, from the pending start
    assert alerts[0].summary == f"Tàu {V1} trong {FOREIGN_NAME}"


def test_realert_retry_cancelled_when_the_vessel_left(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="1h"))
    feed(engine, [vessel(V1, 0, FOREIGN), vessel(V1, 600, NOWHERE)])
    assert feed(engine, [vessel(V1, 1200, FOREIGN), vessel(V1, 2000, NOWHERE), vessel(V2, 9000, NOWHERE)]) == []
    assert engine.firing() == []


def test_realert_drops_crossings_inside_the_interval(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, zone_filter="zone_class == 'port'", mode="enters",
                                resolve_after="10m", realert="2h"))
    alerts = feed(engine, [vessel(V1, 0, COASTAL), vessel(V1, 60, PORT), vessel(V1, 120, COASTAL),
                           vessel(V1, 1000, COASTAL)])
    assert brief(alerts) == [("firing", V1, 60.0, None), ("resolved", V1, 60.0, 660.0)]
    assert feed(engine, [vessel(V1, 2000, PORT), vessel(V1, 2100, COASTAL), vessel(V2, 9000, NOWHERE)]) == []
    alerts = feed(engine, [vessel(V1, 9100, PORT)])  # 660 + 2 h = 7860 is over
    assert brief(alerts) == [("firing", V1, 9100.0, None)]


# -- time: lateness, order -------------------------------------------------------------------------------


def test_out_of_order_position_within_lateness_is_ignored(tmp_path: Path) -> None:
    # The geofence follows the latest position: an older one (not late for the engine) changes nothing.
    engine = engine_of(one_rule(tmp_path), lateness_s=600.0)
    alerts = feed(engine, [vessel(V1, 0, NOWHERE), vessel(V1, 300, FOREIGN), vessel(V1, 100, NOWHERE)])
    assert brief(alerts) == [("firing", V1, 300.0, None)]
    assert engine.last_stats.late == 0
    assert engine.last_stats.evaluations == 1
    assert engine.states[RULE_ID][(V1,)]["last_ts"] == T0 + 300
    # A position at the same time as the latest one is evaluated (arrival order decides).
    assert brief(feed(engine, [vessel(V1, 300, NOWHERE)])) == [("resolved", V1, 300.0, 300.0)]


def test_out_of_order_crossing_is_not_a_phantom_exit(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, zone_filter="zone_class == 'port'", mode="exits"), lateness_s=3600.0)
    alerts = feed(engine, [vessel(V1, 0, PORT), vessel(V1, 1200, PORT), vessel(V1, 600, COASTAL)])
    assert alerts == []


def test_position_late_beyond_lateness_is_not_evaluated(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=60.0)
    alerts = engine.process("vessel", [vessel(V1, 0, FOREIGN), vessel(V2, 500, NOWHERE), vessel(V1, 430, NOWHERE)])
    assert brief(alerts) == [("firing", V1, 0.0, None)]
    assert engine.last_stats.late == 1
    assert engine.last_stats.evaluations == 2
    assert len(engine.firing()) == 1


def test_lateness_delays_dwell_timer(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, dwell="30m"), lateness_s=60.0)
    assert feed(engine, [vessel(V1, 0, FOREIGN), vessel(V2, 1860, NOWHERE)]) == []  # watermark 1800
    assert brief(feed(engine, [vessel(V2, 1861, NOWHERE)])) == [("firing", V1, 0.0, None)]


def test_position_on_zone_boundary_is_inside(tmp_path: Path) -> None:
    path = zones_file(tmp_path, [square("sq", 16.5, 107.5, half=0.05, name="Ô vuông")])
    engine = engine_of(one_rule(tmp_path, zones=path, zone_filter=None))
    alerts = feed(engine, [vessel(V1, 0, (16.45, 107.5)), vessel(V1, 60, (16.5, 107.45)),
                           vessel(V1, 120, (16.44999, 107.5))])
    assert brief(alerts) == [("firing", V1, 0.0, None), ("resolved", V1, 0.0, 120.0)]


# -- where, missing positions, other streams --------------------------------------------------------------


def test_where_false_positions_are_ignored(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, where="device_status != 'test'"))
    alerts = feed(engine, [vessel(V1, 0, FOREIGN, device_status="test"), vessel(V1, 60, FOREIGN, device_status="ok"),
                           vessel(V1, 120, NOWHERE, device_status="test")])
    assert brief(alerts) == [("firing", V1, 60.0, None)]  # the test position neither started nor ended it
    assert engine.last_stats.evaluations == 0


def test_camera_events_without_position_are_ignored(tmp_path: Path) -> None:
    path = zones_file(tmp_path, [square("citadel", 16.47, 107.58, half=0.02, name="Kinh thành Huế",
                                        zone_class="heritage")])
    text = rule_yaml(id="camera.crowd.citadel", stream="camera", zones=path, zone_filter=None,
                     where="event_type == 'crowd'", condition="count > 200",
                     summary="{source_id}: {count} người, {value}")
    engine = engine_of(make_rules(tmp_path, text))

    def cam(t: float, **extra: Any) -> dict[str, Any]:
        return decode("camera", {"source_id": "cam-ngo-mon", "ts": T0 + t, "event_type": "crowd", **extra})

    alerts = engine.process("camera", [cam(0, count=500), cam(60, count=350, lat=16.468, lon=107.579),
                                       cam(120, count=400), cam(180, count=20, lat=16.468, lon=107.579)])
    assert brief(alerts) == [("firing", "cam-ngo-mon", 60.0, None), ("resolved", "cam-ngo-mon", 60.0, 180.0)]
    assert alerts[0].summary == "cam-ngo-mon: 350 người, Kinh thành Huế"


def test_explicit_default_position_fields(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, lat_field="lat", lon_field="lon"))
    assert brief(feed(engine, [vessel(V1, 0, FOREIGN)])) == [("firing", V1, 0.0, None)]


# -- the alert record ---------------------------------------------------------------------------------------


def test_alert_record(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, dwell="1h", sla={"ack": "15m", "resolve": "2h"},
                                description="Tàu {source_id} dài {length_m} m, vị trí {lat}, {lon}"))
    fired = feed(engine, [vessel(V1, 0, FOREIGN, id="vms-1"), vessel(V1, 1800, FOREIGN, id="vms-2"),
                          vessel(V1, 3600, (19.4, 108.3), id="vms-3")])
    resolved = feed(engine, [vessel(V1, 5400, NOWHERE, id="vms-4")])
    f, r = fired[0].to_record(), resolved[0].to_record()
    fp = expected_fingerprint(RULE_ID, {"source_id": V1})
    assert f["fingerprint"] == r["fingerprint"] == fp
    assert f["alert_id"] == r["alert_id"] == f"{fp}-{round(T0 * 1000)}"
    assert (f["kind"], f["stream"], f["severity"], f["rule_id"]) == ("geofence", "vessel", "critical", RULE_ID)
    assert f["key"] == {"source_id": V1}
    assert f["labels"] == {"domain": "fisheries", "agency": "Chi cục Thủy sản"}
    assert f["value"] is r["value"] is None  # no `value` expression: nothing measured
    assert f["details"] == r["details"] == {"zone": FOREIGN_NAME, "zone_id": f["details"]["zone_id"]}
    assert f["summary"] == f"Tàu {V1} trong {FOREIGN_NAME}"
    assert f["description"] == f"Tàu {V1} dài 20.0 m, vị trí 19.4, 108.3"
    assert (f["status"], f["starts_at"], f["ends_at"]) == ("firing", "2025-10-27T01:00:00Z", None)
    assert (r["status"], r["starts_at"], r["ends_at"]) == ("resolved", "2025-10-27T01:00:00Z", "2025-10-27T02:30:00Z")
    assert f["evidence"] == ["vms-1", "vms-2", "vms-3"]
    assert "vms-4" not in r["evidence"]
    assert f["sla"] == {"ack_by": "2025-10-27T01:15:00Z", "resolve_by": "2025-10-27T03:00:00Z"}


def test_rule_key_other_than_source_id(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, key=["mmsi"]))
    alerts = feed(engine, [vessel(V1, 0, FOREIGN), vessel(V1, 60, FOREIGN, mmsi="574001234")])
    assert [a.key for a in alerts] == [{"mmsi": "574001234"}]


class RecordingRuntime:
    """A Runtime that records what the kind asks for (the kind's side of the contract)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.stream = "vessel"

    def fire(self, key: Key, state: State, **kw: Any) -> None:
        self.calls.append(("fire", kw))
        state["firing"] = True

    def resolve(self, key: Key, state: State, **kw: Any) -> None:
        self.calls.append(("resolve", kw))
        state["firing"] = False

    def match(self, key: Key, state: State, **kw: Any) -> None:
        self.calls.append(("match", kw))

    def schedule(self, deadline: float, key: Key) -> None:
        self.calls.append(("schedule", {"deadline": deadline}))

    def note(self, state: State, event: Mapping[str, Any]) -> None:
        pass

    def instant_timer(self, key: Key, state: State, deadline: float, resolve_after: float) -> bool:
        return False

    def project(self, event: Mapping[str, Any], ref: Mapping[str, Any]) -> dict[str, Any]:
        return {"source_id": event.get("source_id")}


def build(**fields: Any) -> GeofenceRule:
    data = {"id": RULE_ID, "stream": "vessel", "kind": "geofence", "zones": ZONES, **fields}
    spec = GeofenceSpec.model_validate(data)
    return GeofenceRule(spec, BuildContext("vessel", stream_fields("vessel"), frozenset()))


def test_zone_properties_are_merged_into_the_event_given_to_the_runtime() -> None:
    rule = build(mode="inside", zone_filter=BANDS, condition=LENGTH_MISMATCH)
    rt = RecordingRuntime()
    state: State = {}
    event = vessel(V1, 0, COASTAL)
    rule.on_event(rt, (V1,), state, event, {}, event["ts"])
    (name, call), = rt.calls
    assert name == "fire"
    assert call["value"] is None and call["details"]["zone"] == COASTAL_NAME
    assert call["event"]["zone_class"] == "coastal"
    assert call["event"]["max_length_m"] == 12
    assert call["event"]["source_id"] == V1 and call["event"]["length_m"] == 20.0
    assert "zone_class" not in event  # the engine's event is not modified
    crossing = build(mode="exits", zone_filter="zone_class == 'port'")
    rt, state = RecordingRuntime(), {}
    for t, pos in ((0, PORT), (60, COASTAL)):
        e = vessel(V1, t, pos)
        crossing.on_event(rt, (V1,), state, e, {}, e["ts"])
    (name, call), = rt.calls
    assert (name, call["details"]["zone"], call["event"]["zone_class"]) == ("match", THUAN_AN, "port")
    assert call["resolve_after"] == 300.0


def test_zone_properties_render_in_templates_when_the_rule_projects_them(tmp_path: Path) -> None:
    # The runtime renders the fields listed in the rule's `template_fields`; the loader lists only
    # event and reference fields there today (reported), so this test lists zone properties itself.
    ruleset = one_rule(tmp_path, zone_filter=BANDS, condition=LENGTH_MISMATCH, dwell="1h",
                       summary="{source_id} {length_m} m: {name} ({zone_class}, {min_length_m}-{max_length_m} m)")
    rule = ruleset.rules[0]
    projected = dataclasses.replace(rule, template_fields=(*rule.template_fields, "length_m", "name", "zone_class",
                                                           "min_length_m", "max_length_m"))
    engine = engine_of(RuleSet.of([projected], ruleset.reference))
    by_event = feed(engine, [vessel(V1, 0, INSHORE, length=16.0), vessel(V1, 3600, INSHORE, length=16.0)])
    assert by_event[0].summary == f"{V1} 16.0 m: {INSHORE_NAME} (inshore, 12-15 m)"
    by_timer = feed(engine, [vessel(V2, 3600, COASTAL, length=13.0), vessel(V3, 7201, NOWHERE)])
    assert by_timer[0].summary == f"{V2} 13.0 m: {COASTAL_NAME} (coastal, 0-12 m)"


# -- build-time validation (through the loader) -----------------------------------------------------------


def problem(tmp_path: Path, message: str) -> str:
    return f"{tmp_path / 'rules.yaml'}:2: rule '{RULE_ID}': {message}"


def test_zones_file_missing(tmp_path: Path) -> None:
    assert problem(tmp_path, "zones: file 'zones/nope.geojson' not found (looked in ") in load_error(
        tmp_path, zones="zones/nope.geojson")


def test_zones_required(tmp_path: Path) -> None:
    assert problem(tmp_path, "zones: required field is missing") in load_error(tmp_path, zones=None)


def test_zones_not_json(tmp_path: Path) -> None:
    path = zones_file(tmp_path, "{not json")
    assert problem(tmp_path, f"zones: '{path}': is not valid JSON: ") in load_error(tmp_path, zones=path)


def test_zones_not_a_feature_collection(tmp_path: Path) -> None:
    path = zones_file(tmp_path, json.dumps({"type": "Feature"}))
    message = load_error(tmp_path, zones=path)
    assert problem(tmp_path, f"zones: '{path}': must be a GeoJSON FeatureCollection") in message


def test_zones_bad_geometry(tmp_path: Path) -> None:
    feature = square("open", 16.5, 107.5, name="Hở")
    feature["geometry"]["coordinates"][0].pop()
    path = zones_file(tmp_path, [feature])
    assert problem(tmp_path, f"zones: '{path}': feature 1 ('open'): ring 1: is not closed") in load_error(
        tmp_path, zones=path, zone_filter=None)


def test_zones_lat_lon_swapped(tmp_path: Path) -> None:
    feature = square("swapped", 107.5, 16.5, half=0.05)  # [lat, lon] by mistake: lat 107.45
    path = zones_file(tmp_path, [feature])
    assert "latitude 107.45 is outside -90..90 (positions are [lon, lat])" in load_error(
        tmp_path, zones=path, zone_filter=None)


def test_zone_property_named_like_an_event_field(tmp_path: Path) -> None:
    path = zones_file(tmp_path, [square("z", 16.5, 107.5, name="Z", length_m=12, sog_kn=3)])
    assert problem(tmp_path, f"zones: '{path}': zone properties 'length_m', 'sog_kn' have the names of fields of"
                             " stream 'vessel' (rename them in the file") in load_error(tmp_path, zones=path,
                                                                                         zone_filter=None)


def test_zone_filter_unknown_property(tmp_path: Path) -> None:
    message = load_error(tmp_path, zone_filter="zone_klass == 'port'")
    assert problem(tmp_path, "zone_filter: unknown field 'zone_klass' (known: foreign, illustrative, max_length_m,"
                             " min_length_m, name, note, zone_class; did you mean 'zone_class'?)") in message


def test_zone_filter_cannot_read_event_fields(tmp_path: Path) -> None:
    assert "zone_filter: unknown field 'length_m'" in load_error(tmp_path, zone_filter="length_m > 12")


def test_zone_filter_selecting_nothing(tmp_path: Path) -> None:
    assert problem(tmp_path, "zone_filter: \"zone_class == 'harbour'\" selects none of the 7 zones of"
                             f" '{ZONES}'") in load_error(tmp_path, zone_filter="zone_class == 'harbour'")


def test_condition_unknown_name(tmp_path: Path) -> None:
    message = load_error(tmp_path, condition="length_m > max_len")
    assert problem(tmp_path, "condition: unknown field 'max_len'") in message
    assert "did you mean 'max_length_m'?" in message


def test_mode_not_allowed(tmp_path: Path) -> None:
    assert problem(tmp_path, "mode: 'within' is not allowed (allowed: inside, outside, enters, exits)") in load_error(
        tmp_path, mode="within")


def test_schema_error_does_not_report_zone_properties_as_unknown(tmp_path: Path) -> None:
    # With the schema broken the zones are not loaded: the condition is not judged without them.
    message = load_error(tmp_path, mode="within", condition=LENGTH_MISMATCH)
    assert message.count("\n") == 1
    assert "mode:" in message


def test_dwell_not_allowed_for_crossings(tmp_path: Path) -> None:
    assert problem(tmp_path, "dwell: dwell '10m' applies to mode inside or outside only (mode 'enters' fires at the"
                             " crossing") in load_error(tmp_path, mode="enters", dwell="10m")


def test_dwell_not_a_duration(tmp_path: Path) -> None:
    assert problem(tmp_path, "dwell: '10 minutes' is not a duration (e.g. 30s, 5m, 2h, 1d, 1h30m)") in load_error(
        tmp_path, dwell="10 minutes")


def test_resolve_after_not_allowed_for_continuous_modes(tmp_path: Path) -> None:
    assert problem(tmp_path, "resolve_after: applies to mode enters or exits only (mode 'inside' resolves at the"
                             " first position where it no longer holds)") in load_error(tmp_path, resolve_after="5m")


def test_position_field_not_of_the_stream(tmp_path: Path) -> None:
    assert problem(tmp_path, "lat_field: 'latitude' is not a field of stream 'vessel' (allowed: cog_deg,") in (
        load_error(tmp_path, lat_field="latitude"))
    text = rule_yaml(stream="cyber")
    with pytest.raises(RuleError) as info:
        make_rules(tmp_path, text, name="cyber.yaml")
    assert "lat_field: 'lat' is not a field of stream 'cyber'" in str(info.value)


def test_position_fields_must_differ(tmp_path: Path) -> None:
    assert problem(tmp_path, "lon_field: 'lat' is also the lat_field (they must differ)") in load_error(
        tmp_path, lon_field="lat")


def test_template_names(tmp_path: Path) -> None:
    message = load_error(tmp_path, summary="{zone_klass}")
    assert problem(tmp_path, "summary: unknown field 'zone_klass'") in message
    assert "did you mean 'zone_class'?" in message
    assert one_rule(tmp_path, summary="{source_id} {zone_class} {max_length_m} {value}").rules[0].id == RULE_ID


def test_every_problem_of_a_file_is_reported(tmp_path: Path) -> None:
    text = rule_yaml(zone_filter="zone_klass == 1") + "  - " + json.dumps(
        {"id": "second", "stream": "vessel", "kind": "geofence", "zones": ZONES, "mode": "exits", "dwell": "5m"}) + "\n"
    with pytest.raises(RuleError) as info:
        make_rules(tmp_path, text)
    assert [p.field for p in info.value.problems] == ["zone_filter", "dwell"]


def test_kind_is_registered() -> None:
    assert RULE_KINDS["geofence"] is GeofenceRule


def test_no_expression_compiled_per_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ruleset = one_rule(tmp_path, zone_filter=BANDS, condition=LENGTH_MISMATCH, value="max_length_m")

    def refuse(*args: Any, **kw: Any) -> None:
        raise AssertionError("compile_expression called while evaluating events")

    monkeypatch.setattr(expr_module, "compile_expression", refuse)
    monkeypatch.setattr("ioc.rules.kinds.base.compile_expression", refuse)
    monkeypatch.setattr(expr_module, "compile", refuse, raising=False)
    engine = engine_of(ruleset)
    alerts = feed(engine, [vessel(V1, 0, COASTAL), vessel(V1, 60, OFFSHORE)])
    assert [a.status for a in alerts] == ["firing", "resolved"]


# -- state: plain, bounded, restorable ----------------------------------------------------------------------


MIXED_RULES = (
    f"defaults: {{stream: vessel, kind: geofence, zones: {ZONES}, summary: '{{source_id}} {{value}}'}}\n"
    "rules:\n"
    "  - {id: m.foreign, zone_filter: 'foreign == True', mode: inside, severity: critical}\n"
    f"  - {{id: m.length, zone_filter: \"{BANDS}\", condition: '{LENGTH_MISMATCH}', mode: inside, dwell: 30m,"
    " realert: 1h}\n"
    f"  - {{id: m.out, zone_filter: \"{BANDS}\", mode: outside, dwell: 10m}}\n"
    "  - {id: m.in, zone_filter: \"zone_class == 'port'\", mode: enters, resolve_after: 30m}\n"
    "  - {id: m.leave, zone_filter: \"zone_class == 'port'\", mode: exits, resolve_after: 10m, realert: 1h}\n"
)

POSITIONS = (PORT, COASTAL, INSHORE, OFFSHORE, FOREIGN, NOWHERE)
LENGTHS = {V1: 10.0, V2: 13.0, V3: 22.0}


def voyage() -> Pairs:
    track = [PORT, COASTAL, INSHORE, OFFSHORE, OFFSHORE, FOREIGN, FOREIGN, NOWHERE, OFFSHORE, COASTAL, PORT]
    out = []
    for i, pos in enumerate(track):
        for j, source in enumerate((V1, V2, V3)):
            out.append((j % 2, vessel(source, i * 900 + j * 7, pos, length=LENGTHS[source], id=f"{source}-{i}")))
    return out


def test_voyage_state_is_plain_and_bounded(tmp_path: Path) -> None:
    engine = engine_of(make_rules(tmp_path, MIXED_RULES))
    alerts = run(engine, voyage() * 1)
    assert {a.rule_id for a in alerts} == {"m.foreign", "m.length", "m.out", "m.in", "m.leave"}
    snapshot = engine.snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot  # plain JSON data: no tuples, sets or objects
    allowed = {"last_ts", "pending_since", "last_value", "last_event", "last_zone", "inside", "firing"}
    for states in engine.states.values():
        for state in states.values():
            assert {k for k in state if not k.startswith("_")} <= allowed
            assert len(state.get("inside") or []) <= 3


@pytest.mark.parametrize("cut", [1, 5, 12, 20, 27])
def test_snapshot_restore_mid_stream_same_alerts(tmp_path: Path, cut: int) -> None:
    pairs = voyage()
    whole = run(engine_of(make_rules(tmp_path, MIXED_RULES)), pairs)
    again = make_rules(tmp_path, MIXED_RULES, name="again.yaml")
    assert records(run_restored(run, pairs, cut, make_rules(tmp_path, MIXED_RULES), again)) == records(whole)


# -- batching does not change results (property) ------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return make_rules(tmp_path_factory.mktemp("geofence"), MIXED_RULES)


@st.composite
def tracks(draw: st.DrawFn, *, ordered: bool = True) -> Pairs:
    keys = draw(st.lists(st.sampled_from([V1, V2, V3]), min_size=1, max_size=3, unique=True))
    steps = [0, 1, 60, 599, 600, 601, 1800, 3600]
    pairs = []
    for i, (part, key, t) in enumerate(arrivals(draw, keys, count=40, steps=steps,
                                                late=None if ordered else (-900, 2400))):
        pos = draw(st.sampled_from(POSITIONS))
        pairs.append((part, vessel(key, 10_000 + t, pos, length=LENGTHS[key], id=f"e{i}")))
    return pairs


@batching_settings(200)
@given(pairs=tracks(), sizes=SIZES, lateness=st.sampled_from([0.0, 600.0]))
def test_batching_does_not_change_alerts(
    mixed_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, _ = replay(mixed_rules, pairs, [len(pairs)], stream="vessel", lateness=lateness)
    split, _ = replay(mixed_rules, pairs, sizes, stream="vessel", lateness=lateness)
    single, _ = replay(mixed_rules, pairs, [1], stream="vessel", lateness=lateness)
    assert per_fingerprint(split) == per_fingerprint(whole) == per_fingerprint(single)
    assert sorted(summary_of(split)) == sorted(summary_of(whole))


@batching_settings(150)
@given(pairs=tracks(ordered=False), sizes=SIZES, lateness=st.sampled_from([0.0, 300.0, 1800.0]))
def test_batching_does_not_change_alerts_with_out_of_order_positions(
    mixed_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, whole_engine = replay(mixed_rules, pairs, [len(pairs)], stream="vessel", lateness=lateness)
    split, split_engine = replay(mixed_rules, pairs, sizes, stream="vessel", lateness=lateness)
    assert per_fingerprint(split) == per_fingerprint(whole)
    assert whole_engine.states == split_engine.states
