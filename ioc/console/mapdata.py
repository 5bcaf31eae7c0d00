"""The offline map's data: base layers shipped in the repository and the places alerts are about.

- `coast`: Việt Nam's land around the province, Natural Earth 1:10m (public domain),
  `config/map/coast_hue.geojson` (config/map/README.md says where it comes from).
- `province`: Thừa Thiên Huế's outline, `config/map/province_hue.geojson` (npm @svg-maps/vietnam,
  CC BY 4.0, georeferenced on Natural Earth: about 1 km off near the coast, up to 6 km).
- `river`: the Hương river, `config/map/river_huong.geojson` (GSHHG WDBII rivers, LGPL-3.0-or-later).
- `zones`: every `config/zones/*.geojson` (the geofence rules' zones).
- `points`: reservoirs and gauges (`lat`/`lon` of config/reference/reservoir.yaml) and cameras
  (`cam_lat`/`cam_lon` of camera.yaml).

An alert is placed at its key's `source_id`: a point above, else the vessel's latest position.

>>> from ioc.refdata import Reference
>>> reference_points(Reference())
[]
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from ioc.console.exceptions import ConsoleError
from ioc.refdata import Reference

__all__ = ["base_layers", "locate", "reference_points"]

MAX_MAP_FILE_BYTES = 5_000_000

# stream -> (latitude field, longitude field, kind of place: from the row's `type` when None)
_PLACES: dict[str, tuple[str, str, str | None]] = {
    "reservoir": ("lat", "lon", None),
    "camera": ("cam_lat", "cam_lon", "camera"),
}


# base layer -> its file in config/map/
_LAYER_FILES = {"coast": "coast_hue.geojson", "province": "province_hue.geojson", "river": "river_huong.geojson"}


def reference_points(reference: Reference) -> list[dict[str, Any]]:
    """Places of the reference data that have a position, as `{id, kind, name, lat, lon}`."""
    points = []
    for stream, (lat_field, lon_field, kind) in _PLACES.items():
        for source_id, row in sorted(reference.rows(stream).items()):
            lat, lon = row.get(lat_field), row.get(lon_field)
            if isinstance(lat, (int, float)) and isinstance(lon, (int, float)):
                points.append({"id": str(source_id), "kind": kind or str(row.get("type") or stream),
                               "name": str(row.get("name") or source_id), "lat": float(lat), "lon": float(lon)})
    return points


def locate(record: Mapping[str, Any], places: Mapping[str, Mapping[str, Any]],
           vessels: Mapping[str, Mapping[str, Any]]) -> tuple[float, float] | None:
    """Where an alert is: its key's source_id as a place or a vessel (latest position), else None."""
    key = record.get("key")
    source = key.get("source_id") if isinstance(key, Mapping) else None
    if not isinstance(source, str):
        return None
    found = places.get(source) or vessels.get(source)
    if found is None:
        return None
    return float(found["lat"]), float(found["lon"])


def base_layers(repo: Path) -> dict[str, Any]:
    """`{"coast"|"province"|"river": FeatureCollection | None, "zones": [FeatureCollection, ...]}`."""
    map_dir = repo / "config" / "map"
    zones_dir = repo / "config" / "zones"
    zones = [_read(path) for path in sorted(zones_dir.glob("*.geojson"))] if zones_dir.is_dir() else []
    layers: dict[str, Any] = {name: _read(map_dir / file) if (map_dir / file).is_file() else None
                              for name, file in _LAYER_FILES.items()}
    return {**layers, "zones": zones}


def _read(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
        if len(data) > MAX_MAP_FILE_BYTES:
            raise ConsoleError(f"{path}: larger than {MAX_MAP_FILE_BYTES} bytes")
        parsed = orjson.loads(data)
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConsoleError(f"{path}: not readable GeoJSON ({exc})") from None
    if not isinstance(parsed, dict) or parsed.get("type") != "FeatureCollection":
        raise ConsoleError(f"{path}: not a GeoJSON FeatureCollection")
    return {"name": path.stem, "type": "FeatureCollection", "features": parsed.get("features") or []}
