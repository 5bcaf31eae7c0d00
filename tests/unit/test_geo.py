"""Zones (`ioc.geo`): GeoJSON validation, point look-ups, caching, and the shipped Huế sea zones."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point

from ioc.geo import ZoneError, ZoneSet, load_zones, parse_zones

REPO = Path(__file__).resolve().parents[2]
HUE_SEA = REPO / "config" / "zones" / "hue_sea.geojson"
NM_KM = 1.852


def ring(lon: float, lat: float, half: float) -> list[list[float]]:
    return [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]


def feature(geometry: Any = None, zone_id: Any = "z", **props: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Feature", "properties": props,
                           "geometry": geometry or {"type": "Polygon", "coordinates": [ring(0.5, 0.5, 0.5)]}}
    if zone_id is not None:
        out["id"] = zone_id
    return out


def collection(*features: Any) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def error_of(document: Any) -> str:
    with pytest.raises(ZoneError) as info:
        parse_zones(document)
    return str(info.value)


# -- the shipped zones off Thừa Thiên Huế (docs/domain.md §2) -------------------------------------------------


@pytest.fixture(scope="module")
def hue() -> ZoneSet:
    return load_zones(HUE_SEA)


def ids_at(zones: ZoneSet, lat: float, lon: float) -> list[str]:
    return [zone.id for zone in zones.zones_at(lon, lat)]


def off_thuan_an(nm: float) -> tuple[float, float]:
    """(lat, lon) `nm` nautical miles out to sea from Cửa Thuận An, square to the coast."""
    normal = (0.543, 0.839)  # seaward (east, north) unit vector of the coast there
    km = nm * NM_KM
    return 16.56 + km * normal[1] / 110.57, 107.62 + km * normal[0] / (111.32 * math.cos(math.radians(16.5)))


def test_hue_sea_zones(hue: ZoneSet) -> None:
    assert [z.id for z in hue] == ["hue-coastal", "hue-inshore", "hue-offshore", "port-thuan-an", "port-tu-hien",
                                   "port-chan-may", "foreign-eez-illustrative"]
    assert hue.property_names == {"name", "zone_class", "min_length_m", "max_length_m", "foreign", "note",
                                  "illustrative"}
    bands = {z.properties["zone_class"]: z for z in hue if z.properties["zone_class"] in ("coastal", "inshore",
                                                                                          "offshore")}
    # docs/domain.md §2: < 12 m coastal only, 12-15 m inshore only, >= 15 m offshore only.
    assert [(b.properties["min_length_m"], b.properties["max_length_m"]) for b in bands.values()] == [
        (0, 12), (12, 15), (15, None)]
    assert [z.properties["foreign"] for z in hue] == [False] * 6 + [True]
    for zone in hue:
        assert "(unverified)" in zone.properties["note"] or "ILLUSTRATIVE" in zone.properties["note"]


def test_hue_sea_file_says_what_it_is() -> None:
    document = json.loads(HUE_SEA.read_text(encoding="utf-8"))
    assert "(unverified)" in document["comment"]
    assert "official data" in document["comment"]
    assert "[lon, lat]" in document["comment"]
    foreign = document["features"][-1]["properties"]
    assert foreign["illustrative"] is True
    assert "is not itself a boundary" in foreign["note"]
    assert "not in a disputed area" in foreign["note"]


@pytest.mark.parametrize(("lat", "lon", "port"), [
    (16.56, 107.62, "port-thuan-an"), (16.28, 107.93, "port-tu-hien"), (16.33, 108.00, "port-chan-may"),
])
def test_hue_sea_ports_at_domain_positions(hue: ZoneSet, lat: float, lon: float, port: str) -> None:
    found = hue.zones_at(lon, lat)
    assert port in [z.id for z in found]
    assert hue.get(port) is not None and hue.get(port).properties["zone_class"] == "port"  # type: ignore[union-attr]
    assert hue.get(port).geometry.area < 0.001  # type: ignore[union-attr]  # a few km², not a band


@pytest.mark.parametrize(("nm", "band"), [
    (3, "hue-coastal"), (5, "hue-coastal"), (7, "hue-inshore"), (12, "hue-inshore"), (23, "hue-inshore"),
    (25, "hue-offshore"), (40, "hue-offshore"),
])
def test_hue_sea_bands_by_distance_from_shore(hue: ZoneSet, nm: float, band: str) -> None:
    assert ids_at(hue, *off_thuan_an(nm)) == [band]


def test_hue_sea_bands_do_not_overlap_and_stay_off_hue(hue: ZoneSet) -> None:
    coastal, inshore, offshore = (hue.get(i).geometry for i in ("hue-coastal", "hue-inshore", "hue-offshore"))  # type: ignore[union-attr]
    assert coastal.intersection(inshore).area == pytest.approx(0.0, abs=1e-9)
    assert inshore.intersection(offshore).area == pytest.approx(0.0, abs=1e-9)
    assert coastal.intersection(offshore).area == pytest.approx(0.0, abs=1e-9)
    # The coastline: ~16.75 N 107.2 E to ~16.2 N 108.2 E; land (Huế city, 16.45 N 107.5 E) is in no zone.
    minx, miny, maxx, maxy = coastal.bounds
    assert (minx, miny) == pytest.approx((107.2, 16.2), abs=0.01)
    assert ids_at(hue, 16.45, 107.5) == []
    assert shapely.union_all([coastal, inshore, offshore]).bounds[2] < 109.0


def test_hue_sea_foreign_box_is_far_from_the_province(hue: ZoneSet) -> None:
    foreign = hue.get("foreign-eez-illustrative")
    assert foreign is not None and foreign.name == "Vùng biển nước ngoài (minh hoạ)"
    assert ids_at(hue, 19.3, 108.2) == ["foreign-eez-illustrative"]
    minx, miny, maxx, maxy = foreign.geometry.bounds
    assert miny > 16.74  # north of the province's bounding box, off Hainan


# -- look-ups ----------------------------------------------------------------------------------------------


def test_containing_in_file_order_with_overlaps() -> None:
    zones = parse_zones(collection(
        feature({"type": "Polygon", "coordinates": [ring(0.5, 0.5, 0.5)]}, "big"),
        feature({"type": "Polygon", "coordinates": [ring(0.2, 0.2, 0.1)]}, "small"),
        feature({"type": "Polygon", "coordinates": [ring(5.0, 5.0, 0.1)]}, "far"),
    ))
    assert zones.containing(0.2, 0.2) == (0, 1)
    assert [z.id for z in zones.zones_at(0.8, 0.8)] == ["big"]
    assert zones.containing(3.0, 3.0) == ()  # inside the total bounds, in no zone
    assert zones.containing(-50.0, 0.0) == ()  # outside the total bounds
    assert zones.containing(0.2, 0.2) == (0, 1)  # after the memo changed


def test_boundary_and_vertex_are_inside() -> None:
    zones = parse_zones(collection(feature()))
    assert zones.containing(0.0, 0.5) == (0,)
    assert zones.containing(1.0, 1.0) == (0,)
    assert zones.containing(1.0000001, 0.5) == ()


def test_polygon_hole_and_multipolygon() -> None:
    holed = {"type": "Polygon", "coordinates": [ring(0.5, 0.5, 0.5), ring(0.5, 0.5, 0.1)]}
    multi = {"type": "MultiPolygon", "coordinates": [[ring(10.5, 0.5, 0.5)], [ring(20.5, 0.5, 0.5)]]}
    zones = parse_zones(collection(feature(holed, "holed"), feature(multi, "islands")))
    assert zones.containing(0.5, 0.5) == ()       # in the hole
    assert zones.containing(0.4, 0.5) == (0,)     # on the hole's edge
    assert zones.containing(0.1, 0.1) == (0,)
    assert zones.containing(10.5, 0.5) == (1,)
    assert zones.containing(20.5, 0.5) == (1,)
    assert zones.containing(15.0, 0.5) == ()


def test_detailed_polygons_use_prepared_geometry() -> None:
    circle = shapely.buffer(Point(107.5, 16.5), 1.0, quad_segs=2000)
    document = collection(feature(json.loads(shapely.to_geojson(circle)), "round"))
    zones = parse_zones(document)
    assert shapely.is_prepared(zones.zones[0].geometry)
    assert zones.containing(107.5, 17.49) == (0,)
    assert zones.containing(108.49, 16.5) == (0,)
    assert zones.containing(108.3, 17.3) == ()


@st.composite
def squares(draw: st.DrawFn) -> list[tuple[float, float, float]]:
    return draw(st.lists(st.tuples(st.floats(100, 115), st.floats(5, 20), st.floats(0.01, 3)), min_size=1, max_size=40))


@settings(max_examples=100, deadline=None)
@given(boxes=squares(), points=st.lists(st.tuples(st.floats(98, 117), st.floats(3, 22)), min_size=1, max_size=30))
def test_containing_agrees_with_brute_force(
    boxes: list[tuple[float, float, float]], points: list[tuple[float, float]]
) -> None:
    document = collection(*(feature({"type": "Polygon", "coordinates": [ring(x, y, h)]}, f"z{i}")
                            for i, (x, y, h) in enumerate(boxes)))
    zones = parse_zones(document)
    for lon, lat in points + [(boxes[0][0], boxes[0][1])]:
        expected = tuple(i for i, z in enumerate(zones) if z.geometry.intersects(Point(lon, lat)))
        assert zones.containing(lon, lat) == expected


def test_thousands_of_zones() -> None:
    features = [feature({"type": "Polygon", "coordinates": [ring(100 + (i % 60) * 0.25, 5 + (i // 60) * 0.25, 0.1)]},
                        f"cell-{i}", name=f"Ô {i}") for i in range(3000)]
    zones = parse_zones(collection(*features))
    assert len(zones) == 3000
    assert [z.name for z in zones.zones_at(100.25, 5.0)] == ["Ô 1"]
    assert zones.containing(100.125, 5.0) == ()  # between cells
    assert zones.containing(100 + 59 * 0.25, 5 + 49 * 0.25) == (2999,)


# -- the zone model -----------------------------------------------------------------------------------------


def test_ids_names_and_read_only_properties() -> None:
    zones = parse_zones(collection(
        feature(zone_id=7, name="Bảy", zone_class="port"),
        feature(zone_id=None, name="Chỉ có tên"),
        feature(zone_id="no-name"),
    ))
    assert [(z.index, z.id, z.name) for z in zones] == [(0, "7", "Bảy"), (1, "Chỉ có tên", "Chỉ có tên"),
                                                         (2, "no-name", "no-name")]
    assert zones.get("7") is zones.zones[0]
    assert zones.get("missing") is None
    with pytest.raises(TypeError):
        zones.zones[0].properties["zone_class"] = "x"  # type: ignore[index]
    assert zones.property_names == {"name", "zone_class"}


# -- validation ---------------------------------------------------------------------------------------------


def closed_ring_removed() -> dict[str, Any]:
    f = feature()
    f["geometry"]["coordinates"][0].pop()
    return collection(f)


@pytest.mark.parametrize(("document", "message"), [
    ([], "must be a GeoJSON FeatureCollection"),
    ({"type": "Feature"}, "must be a GeoJSON FeatureCollection"),
    ({"type": "FeatureCollection", "features": []}, "'features' must be a non-empty list"),
    (collection("x"), "feature 1: must be an object with \"type\": \"Feature\""),
    (collection(feature({"type": "Point", "coordinates": [1, 2]})),
     "feature 1 ('z'): geometry type 'Point' is not allowed (allowed: Polygon, MultiPolygon)"),
    (collection({"type": "Feature", "id": "g", "properties": {}, "geometry": None}),
     "feature 1 ('g'): 'geometry' must be a Polygon or MultiPolygon object"),
    (closed_ring_removed(), "feature 1 ('z'): ring 1: is not closed (the last position must repeat the first"),
    (collection(feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]})),
     "ring 1: a linear ring needs at least 4 positions"),
    (collection(feature({"type": "Polygon", "coordinates": [ring(16.5, 107.5, 0.1)]})),
     "latitude 107.4 is outside -90..90 (positions are [lon, lat])"),
    (collection(feature({"type": "Polygon", "coordinates": [ring(190, 10, 1)]})),
     "longitude 189 is outside -180..180"),
    (collection(feature({"type": "Polygon", "coordinates": [[[0, 0], ["1", 0], [1, 1], [0, 0]]]})),
     "position ['1', 0] is not [lon, lat] (two finite numbers)"),
    (collection(feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]})),
     "feature 1 ('z'): geometry is not valid: Self-intersection"),
    (collection(feature({"type": "MultiPolygon", "coordinates": [[ring(0, 0, 1)], []]})),
     "feature 1 ('z'): polygon 2: must be a non-empty list of linear rings"),
    (collection(feature({"type": "Polygon", "coordinates": []})),
     "feature 1 ('z'): must be a non-empty list of linear rings"),
    (collection(feature({"type": "MultiPolygon", "coordinates": []})),
     "feature 1 ('z'): MultiPolygon 'coordinates' must be a non-empty list"),
    (collection(feature(zone_id=None)), "feature 1: needs an 'id' or a 'name' property"),
    (collection(feature(zone_id=True)), "feature 1: 'id' must be text or a number, not True"),
    (collection(feature(name="")), "feature 1: property 'name' must be non-empty text, not ''"),
    (collection(feature(name=3)), "property 'name' must be non-empty text, not 3"),
    (collection(feature(**{"class": "port"})), "feature 1: property 'class' cannot be used in rules"),
    (collection(feature(**{"max length": 12})), "property 'max length' cannot be used in rules (allowed: letters"),
    (collection(feature(**{"_private": 1})), "property '_private' cannot be used in rules"),
    (collection({"type": "Feature", "id": "p", "properties": [1], "geometry": None}),
     "feature 1: 'properties' must be an object or null"),
    (collection(feature(zone_id="a"), feature(zone_id="a")),
     "feature 2: zone id 'a' already used by feature 1 (ids must be unique)"),
])
def test_invalid_documents(document: Any, message: str) -> None:
    assert message in error_of(document)


def test_every_bad_feature_is_reported() -> None:
    bad = [feature({"type": "Point", "coordinates": [0, 0]}, f"p{i}") for i in range(7)]
    message = error_of(collection(feature(zone_id="ok"), *bad))
    assert message.count("is not allowed") == 5
    assert message.startswith("feature 2 ('p0'):")
    assert message.endswith("(and 2 more)")


def test_null_properties_are_empty() -> None:
    f = feature()
    f["properties"] = None
    zones = parse_zones(collection(f))
    assert dict(zones.zones[0].properties) == {}
    assert zones.property_names == frozenset()


# -- loading files ------------------------------------------------------------------------------------------


def test_load_zones_is_cached_per_file_version(tmp_path: Path) -> None:
    path = tmp_path / "z.geojson"
    path.write_text(json.dumps(collection(feature(zone_id="one"))), encoding="utf-8")
    first = load_zones(path)
    assert load_zones(str(path)) is first
    assert load_zones(tmp_path / "." / "z.geojson") is first
    path.write_text(json.dumps(collection(feature(zone_id="two"), feature(zone_id="three"))), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = load_zones(path)
    assert second is not first
    assert [z.id for z in second] == ["two", "three"]


def test_load_zones_errors(tmp_path: Path) -> None:
    with pytest.raises(ZoneError, match="cannot be read"):
        load_zones(tmp_path / "missing.geojson")
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection",\n "features": [}', encoding="utf-8")
    with pytest.raises(ZoneError, match=r"is not valid JSON: .* at line 2 column"):
        load_zones(bad)
    binary = tmp_path / "binary.geojson"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ZoneError, match="cannot be read"):
        load_zones(binary)
