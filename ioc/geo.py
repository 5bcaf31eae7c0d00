"""Geographic zones for rules: GeoJSON polygons, validated once, looked up per point.

A zones file is a GeoJSON FeatureCollection (RFC 7946) of `Polygon`/`MultiPolygon`
features, coordinates `[lon, lat]` (WGS 84). Each feature needs an `id` or a `name`
property (zone ids must be unique); its properties are what rules read (`zone_class`,
`max_length_m`...), so their names must be usable in expressions: identifiers, not
Python keywords, not starting with `_`.

>>> zones = load_zones("config/zones/hue_sea.geojson")          # doctest: +SKIP
>>> [zones.zones[i].name for i in zones.containing(107.625, 16.565)]   # doctest: +SKIP
['Vùng biển ven bờ (< 6 hải lý)', 'Cửa Thuận An (cảng cá)']

Loading is pure and cached per file (path, modification time and size), so every rule
naming the same file shares one `ZoneSet`. Look-ups use an STRtree over the zones'
bounding boxes, then a prepared-geometry point test, so thousands of zones, or zones
with thousands of vertices, stay cheap. A point on a zone's boundary is inside it.
"""

from __future__ import annotations

import functools
import json
import keyword
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import shapely
from shapely import STRtree
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from ioc.exceptions import IocError

__all__ = ["Zone", "ZoneError", "ZoneSet", "load_zones", "parse_zones"]

GEOMETRY_TYPES = ("Polygon", "MultiPolygon")
# Zone files may hold detailed coastlines: larger than a rule file, but bounded, and checked
# before the file is read.
MAX_FILE_BYTES = 16 * 1_048_576
_MAX_LISTED = 5


class ZoneError(IocError):
    """A zones file that cannot be used: what is wrong, where, and what is allowed."""


@dataclass(frozen=True, eq=False)
class Zone:
    """One zone: its id, display name, read-only properties and (prepared) geometry."""

    index: int
    id: str
    name: str
    properties: Mapping[str, Any]
    geometry: BaseGeometry


class ZoneSet:
    """The zones of one file, in file order, with a spatial index.

    >>> zs = parse_zones({"type": "FeatureCollection", "features": [{"type": "Feature", "id": "sq",
    ...     "properties": {"zone_class": "port"},
    ...     "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}}]})
    >>> zs.containing(0.5, 0.5), zs.containing(2.0, 0.5), zs.containing(1.0, 0.5)
    ((0,), (), (0,))
    """

    __slots__ = ("source", "zones", "property_names", "bounds", "_by_id", "_geoms", "_tree", "_memo")

    def __init__(self, zones: Sequence[Zone], source: str = "<zones>") -> None:
        self.source = source
        self.zones: tuple[Zone, ...] = tuple(zones)
        self.property_names: frozenset[str] = frozenset(n for z in self.zones for n in z.properties)
        self._by_id = {z.id: z for z in self.zones}
        self._geoms = [z.geometry for z in self.zones]
        shapely.prepare(self._geoms)
        self._tree = STRtree(self._geoms)
        if self.zones:
            self.bounds = tuple(float(v) for v in shapely.total_bounds(self._geoms))
        else:
            self.bounds = (math.inf, math.inf, -math.inf, -math.inf)
        # The last point looked up and its answer: rules sharing this file evaluate the same
        # event one after another. One tuple, replaced whole, so readers never see half of it.
        self._memo: tuple[float, float, tuple[int, ...]] = (math.nan, math.nan, ())

    def __len__(self) -> int:
        return len(self.zones)

    def __iter__(self) -> Iterator[Zone]:
        return iter(self.zones)

    def get(self, zone_id: str) -> Zone | None:
        """The zone with this id, or None."""
        return self._by_id.get(zone_id)

    def containing(self, lon: float, lat: float) -> tuple[int, ...]:
        """Indices (file order) of the zones containing the point; its boundary counts as inside."""
        memo = self._memo
        if memo[0] == lon and memo[1] == lat:
            return memo[2]
        minx, miny, maxx, maxy = self.bounds
        found: tuple[int, ...] = ()
        if minx <= lon <= maxx and miny <= lat <= maxy:
            candidates = self._tree.query(Point(lon, lat))
            if len(candidates):
                geoms = self._geoms
                found = tuple(sorted(
                    i for i in candidates.tolist() if shapely.intersects_xy(geoms[i], lon, lat)
                ))
        self._memo = (lon, lat, found)
        return found

    def zones_at(self, lon: float, lat: float) -> list[Zone]:
        """The zones containing the point, in file order."""
        return [self.zones[i] for i in self.containing(lon, lat)]


def load_zones(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> ZoneSet:
    """The zones of a GeoJSON file; raises ZoneError saying what is wrong with it.

    A file larger than `max_bytes` is refused before it is read. Cached per (resolved path,
    modification time, size): a file edited for a rule reload is read again, an unchanged one
    is shared.
    """
    resolved = Path(path).resolve()
    try:
        stat = resolved.stat()
    except OSError as exc:
        raise ZoneError(f"cannot be read: {exc.strerror or exc}") from None
    if stat.st_size > max_bytes:
        raise ZoneError(f"the file is {stat.st_size:,} bytes, more than the limit of {max_bytes:,} bytes")
    return _load_cached(str(resolved), stat.st_mtime_ns, stat.st_size, max_bytes)


@functools.lru_cache(maxsize=32)
def _load_cached(path: str, mtime_ns: int, size: int, max_bytes: int) -> ZoneSet:
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise ZoneError(f"the file is more than the limit of {max_bytes:,} bytes")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ZoneError(f"cannot be read: {exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ZoneError(f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ZoneError("is not valid GeoJSON: nested too deeply") from None
    return parse_zones(document, path)


def parse_zones(document: Any, source: str = "<zones>") -> ZoneSet:
    """Validate a parsed GeoJSON document into a ZoneSet; raises ZoneError listing the problems."""
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise ZoneError("must be a GeoJSON FeatureCollection (an object with \"type\": \"FeatureCollection\")")
    features = document.get("features")
    if not isinstance(features, list) or not features:
        raise ZoneError("'features' must be a non-empty list of Polygon or MultiPolygon features")
    problems: list[str] = []
    zones: list[Zone] = []
    seen: dict[str, int] = {}
    for number, feature in enumerate(features, start=1):
        try:
            zone = _zone(feature, number, len(zones))
        except ZoneError as exc:
            problems.append(str(exc))
            continue
        if zone.id in seen:
            problems.append(f"feature {number}: zone id {zone.id!r} already used by feature {seen[zone.id]}"
                            " (ids must be unique)")
            continue
        seen[zone.id] = number
        zones.append(zone)
    if problems:
        more = f" (and {len(problems) - _MAX_LISTED} more)" if len(problems) > _MAX_LISTED else ""
        raise ZoneError("; ".join(problems[:_MAX_LISTED]) + more)
    return ZoneSet(zones, source)


def _zone(feature: Any, number: int, index: int) -> Zone:
    where = f"feature {number}"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise ZoneError(f"{where}: must be an object with \"type\": \"Feature\"")
    properties = feature.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise ZoneError(f"{where}: 'properties' must be an object or null")
    for name in properties:
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            raise ZoneError(f"{where}: property {name!r} cannot be used in rules (allowed: letters, digits"
                            " and '_', not starting with a digit or '_', not a Python keyword)")
    name = properties.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ZoneError(f"{where}: property 'name' must be non-empty text, not {name!r}")
    raw_id = feature.get("id")
    if raw_id is not None and (isinstance(raw_id, bool) or not isinstance(raw_id, (str, int, float))):
        raise ZoneError(f"{where}: 'id' must be text or a number, not {raw_id!r}")
    if raw_id is None and name is None:
        raise ZoneError(f"{where}: needs an 'id' or a 'name' property (to tell zones apart in alerts)")
    zone_id = str(raw_id) if raw_id is not None else str(name)
    where = f"feature {number} ({zone_id!r})"
    geometry = _geometry(feature.get("geometry"), where)
    return Zone(index, zone_id, name if name is not None else zone_id, MappingProxyType(dict(properties)), geometry)


def _geometry(raw: Any, where: str) -> BaseGeometry:
    if not isinstance(raw, dict):
        raise ZoneError(f"{where}: 'geometry' must be a Polygon or MultiPolygon object")
    kind = raw.get("type")
    if kind not in GEOMETRY_TYPES:
        raise ZoneError(f"{where}: geometry type {kind!r} is not allowed (allowed: {', '.join(GEOMETRY_TYPES)})")
    coordinates = raw.get("coordinates")
    polygons = [coordinates] if kind == "Polygon" else coordinates
    if not isinstance(polygons, list) or not polygons:
        raise ZoneError(f"{where}: {kind} 'coordinates' must be a non-empty list")
    for p, polygon in enumerate(polygons, start=1):
        label = f"{where}: polygon {p}" if kind == "MultiPolygon" else where
        if not isinstance(polygon, list) or not polygon:
            raise ZoneError(f"{label}: must be a non-empty list of linear rings")
        for r, ring in enumerate(polygon, start=1):
            _check_ring(ring, f"{label}: ring {r}")
    geometry = shape(raw)
    if geometry.is_empty:
        raise ZoneError(f"{where}: geometry is empty")
    if not geometry.is_valid:
        raise ZoneError(f"{where}: geometry is not valid: {shapely.is_valid_reason(geometry)}"
                        " (rings must not cross themselves or each other)")
    return geometry


def _check_ring(ring: Any, where: str) -> None:
    if not isinstance(ring, list) or len(ring) < 4:
        raise ZoneError(f"{where}: a linear ring needs at least 4 positions (the first repeated last)")
    for position in ring:
        if (
            not isinstance(position, list) or len(position) < 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in position)
            or not all(math.isfinite(v) for v in position)
        ):
            raise ZoneError(f"{where}: position {position!r} is not [lon, lat] (two finite numbers)")
        lon, lat = position[0], position[1]
        if not -180.0 <= lon <= 180.0:
            raise ZoneError(f"{where}: longitude {lon} is outside -180..180 (positions are [lon, lat])")
        if not -90.0 <= lat <= 90.0:
            raise ZoneError(f"{where}: latitude {lat} is outside -90..90 (positions are [lon, lat])")
    if ring[0][:2] != ring[-1][:2]:
        raise ZoneError(f"{where}: is not closed (the last position must repeat the first, {ring[0]!r})")
