"""The offline map's data: places from the reference data, an alert located by its key's source_id
(a place, else a vessel's latest position), and the base layers shipped in the repository."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ioc.config import REPO_ROOT
from ioc.console.exceptions import ConsoleError
from ioc.console.mapdata import base_layers, locate, reference_points
from ioc.refdata import load_reference


def test_places_of_the_shipped_reference_data() -> None:
    points = {p["id"]: p for p in reference_points(load_reference(REPO_ROOT / "config" / "reference"))}
    assert points["ta-trach"] == {"id": "ta-trach", "kind": "reservoir", "name": "Hồ Tả Trạch", "lat": 16.34,
                                  "lon": 107.63}
    assert points["kim-long"]["kind"] == "gauge"
    assert points["cam-001"]["kind"] == "camera"
    # Every place is inside the province's box (docs/domain.md: lat 15.99–16.74, lon 107.02–108.22).
    assert all(15.99 <= p["lat"] <= 16.74 and 107.02 <= p["lon"] <= 108.22 for p in points.values())


def test_an_alert_is_placed_by_its_key() -> None:
    places = {"ta-trach": {"lat": 16.34, "lon": 107.63}}
    vessels = {"TTH-90001-TS": {"lat": 16.9, "lon": 107.8}}
    assert locate({"key": {"source_id": "ta-trach"}}, places, vessels) == (16.34, 107.63)
    assert locate({"key": {"source_id": "TTH-90001-TS"}}, places, vessels) == (16.9, 107.8)
    assert locate({"key": {"source_id": "soc-fw-01"}}, places, vessels) is None
    assert locate({"key": None}, places, vessels) is None


def test_the_shipped_base_layers() -> None:
    layers = base_layers(REPO_ROOT)
    coast = layers["coast"]["features"][0]
    assert coast["geometry"]["type"] == "MultiPolygon" and "Natural Earth" in coast["properties"]["source"]
    ring = coast["geometry"]["coordinates"][0][0]
    assert all(106.9 <= lon <= 108.5 and 15.8 <= lat <= 17.0 for lon, lat in ring)
    assert [zones["name"] for zones in layers["zones"]] == ["hue_sea"]


def _points(geometry: dict) -> list[list[float]]:
    if geometry["type"] == "LineString":
        return geometry["coordinates"]
    return [point for polygon in geometry["coordinates"] for ring in polygon for point in ring]


def test_the_province_outline_is_thua_thien_hue() -> None:
    province = base_layers(REPO_ROOT)["province"]["features"][0]
    assert province["properties"]["name"] == "Thừa Thiên Huế" and "CC BY 4.0" in province["properties"]["source"]
    assert "km" in province["properties"]["accuracy"]
    points = _points(province["geometry"])
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    # Its extent is the province's (docs/domain.md: lat 15.99–16.74, lon 107.02–108.22) to ~3 km.
    assert abs(min(lats) - 15.99) < 0.03 and abs(max(lats) - 16.74) < 0.03
    assert abs(min(lons) - 107.02) < 0.03 and abs(max(lons) - 108.22) < 0.03
    assert all(round(v, 4) == v for v in lons + lats)
    # The reservoirs and gauges are inside it; the cameras too, or (on the coast) within its ~2 km accuracy.
    shapely = pytest.importorskip("shapely")
    outline = shapely.geometry.shape(province["geometry"])
    places = reference_points(load_reference(REPO_ROOT / "config" / "reference"))
    assert all(outline.contains(shapely.Point(p["lon"], p["lat"])) for p in places if p["kind"] != "camera")
    assert all(outline.distance(shapely.Point(p["lon"], p["lat"])) * 111 < 2.5 for p in places)


def test_the_huong_river_runs_through_hue_to_the_lagoon() -> None:
    river = base_layers(REPO_ROOT)["river"]["features"][0]
    assert river["properties"]["name"] == "Sông Hương" and "GSHHG" in river["properties"]["source"]
    line = _points(river["geometry"])
    assert river["geometry"]["type"] == "LineString" and len(line) > 100
    assert all(106.9 <= lon <= 108.5 and 15.8 <= lat <= 17.0 for lon, lat in line)

    def km(p: list[float], lon: float, lat: float) -> float:
        return math.hypot((p[0] - lon) * math.cos(math.radians(lat)), p[1] - lat) * 111.2

    assert min(km(p, 107.58, 16.46) for p in line) < 2        # through Huế city
    assert km(line[-1], 107.63, 16.56) < 5                     # ends near the Thuận An mouth


def test_a_broken_map_file_is_an_error_that_names_it(tmp_path: Path) -> None:
    (tmp_path / "config" / "zones").mkdir(parents=True)
    (tmp_path / "config" / "zones" / "bad.geojson").write_text("{not json")
    with pytest.raises(ConsoleError, match="bad.geojson: not readable GeoJSON"):
        base_layers(tmp_path)
    assert base_layers(tmp_path / "nothing") == {"coast": None, "province": None, "river": None, "zones": []}
