"""Thừa Thiên Huế's outline from the npm package @svg-maps/vietnam, georeferenced on Natural Earth.

One-off tool, not used at run time (its output, province_hue.geojson, ships in the repository).
Needs `numpy` and `pyshp`, the package's index.js (npm pack @svg-maps/vietnam@2.0.0; CC BY 4.0,
Stephen Truong) and Natural Earth's ne_10m_admin_0_countries*.shp (see extract_coast.py):

    python config/map/extract_province.py package/index.js ne_10m_admin_0_countries_deu.shp \
        > config/map/province_hue.geojson

The package's paths are in its own unprojected pixels. They are georeferenced by fitting
lon = a*x + b and mercator_y(lat) = c*y + d (least squares, iterated closest points: every
vertex of Natural Earth's mainland Việt Nam is matched to the nearest svg vertex of the
mainland provinces, the farthest 10 % of matches dropped, refit, 30 rounds). The Mercator fit
gives a == -c to 0.05 % (one scale on both axes, as a Mercator map has) and fits better than an
equirectangular one. The accuracy near Huế (distance from Natural Earth's coast in the
province's bounding box to the nearest svg line) is printed on stderr.
"""

from __future__ import annotations

import json
import math
import re
import sys

import numpy as np
import shapefile  # pyshp

PROVINCE = "tthue"
ISLANDS = {"hoangsa", "truongsa"}  # drawn as insets, not in place: left out of the fit
BBOX = (106.9, 15.8, 108.5, 17.0)  # lon min, lat min, lon max, lat max (as extract_coast.py)
HUE = (107.58, 16.46)  # lon, lat


def parse_path(d: str) -> list[list[tuple[float, float]]]:
    """Rings of an svg path made of M/m, L/l, H/h, V/v and Z/z (all this package uses)."""
    rings: list[list[tuple[float, float]]] = []
    ring: list[tuple[float, float]] = []
    x = y = start_x = start_y = 0.0
    tokens = re.findall(r"[MmLlHhVvZz]|-?[\d.]+(?:e-?\d+)?", d)
    i, cmd = 0, "M"
    while i < len(tokens):
        item = tokens[i]
        if item.isalpha():
            i += 1
            if item in "Zz":
                if ring:
                    rings.append(ring)
                ring, (x, y) = [], (start_x, start_y)
                continue
            if item in "Mm":
                dx, dy = float(tokens[i]), float(tokens[i + 1])
                i += 2
                x, y = (x + dx, y + dy) if item == "m" else (dx, dy)
                if ring:
                    rings.append(ring)
                ring, start_x, start_y = [(x, y)], x, y
                cmd = "l" if item == "m" else "L"
            else:
                cmd = item
            continue
        if cmd in "Hh":
            x = x + float(item) if cmd == "h" else float(item)
            i += 1
        elif cmd in "Vv":
            y = y + float(item) if cmd == "v" else float(item)
            i += 1
        else:
            dx, dy = float(tokens[i]), float(tokens[i + 1])
            i += 2
            x, y = (x + dx, y + dy) if cmd == "l" else (dx, dy)
        if not ring:
            ring, start_x, start_y = [(x, y)], x, y
        ring.append((x, y))
    if ring:
        rings.append(ring)
    return rings


def mercator(lat: np.ndarray) -> np.ndarray:
    return np.degrees(np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)))


def inverse_mercator(y: np.ndarray) -> np.ndarray:
    return np.degrees(2 * np.arctan(np.exp(np.radians(y))) - np.pi / 2)


def nearest(points: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each point, the index of and the (planar) distance to the nearest target."""
    index = np.empty(len(points), dtype=int)
    dist = np.empty(len(points))
    for lo in range(0, len(points), 500):
        chunk = points[lo:lo + 500]
        d2 = ((chunk[:, None, :] - targets[None, :, :]) ** 2).sum(axis=2)
        index[lo:lo + 500] = d2.argmin(axis=1)
        dist[lo:lo + 500] = np.sqrt(d2.min(axis=1))
    return index, dist


def fit(svg: np.ndarray, land: np.ndarray) -> tuple[float, float, float, float]:
    target = np.c_[land[:, 0], mercator(land[:, 1])]
    lo, hi, tlo, thi = svg.min(0), svg.max(0), target.min(0), target.max(0)
    a = (thi[0] - tlo[0]) / (hi[0] - lo[0])
    b = tlo[0] - a * lo[0]
    c = -(thi[1] - tlo[1]) / (hi[1] - lo[1])
    d = thi[1] - c * lo[1]
    for _ in range(30):
        index, dist = nearest(target, np.c_[a * svg[:, 0] + b, c * svg[:, 1] + d])
        keep = dist < np.percentile(dist, 90)
        a, b = np.polyfit(svg[index[keep], 0], target[keep, 0], 1)
        c, d = np.polyfit(svg[index[keep], 1], target[keep, 1], 1)
    return float(a), float(b), float(c), float(d)


def to_lonlat(params: tuple[float, float, float, float], points: np.ndarray) -> np.ndarray:
    a, b, c, d = params
    return np.c_[a * points[:, 0] + b, inverse_mercator(c * points[:, 1] + d)]


def densify(ring: np.ndarray, step: float = 0.05) -> np.ndarray:
    parts = []
    for p, q in zip(ring[:-1], ring[1:], strict=False):
        n = max(1, int(np.hypot(*(q - p)) / step))
        parts.append(p + np.linspace(0, 1, n, endpoint=False)[:, None] * (q - p))
    return np.concatenate([*parts, ring[-1:]])


def km(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    p1, p2 = np.radians(a[:, 1]), np.radians(b[:, 1])
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(b[:, 0] - a[:, 0]) / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(h))


def main(index_js: str, shp: str) -> None:
    text = open(index_js, encoding="utf-8").read()
    package = json.loads(text[text.index("{"):].rstrip().rstrip(";"))
    provinces = {loc["id"]: (loc["name"], parse_path(loc["path"])) for loc in package["locations"]}
    mainland = [np.array(ring) for key, (_, rings) in provinces.items() if key not in ISLANDS for ring in rings]
    land_rings = []
    for item in shapefile.Reader(shp).iterShapeRecords():
        if item.record["ADM0_A3"] == "VNM":
            bounds = [*item.shape.parts, len(item.shape.points)]
            land_rings += [np.array(item.shape.points[s:e]) for s, e in zip(bounds, bounds[1:], strict=False)]
    land = max(land_rings, key=len)
    params = fit(np.concatenate(mainland), land)

    # Accuracy near Huế: Natural Earth's vertices in BBOX to the nearest point of any svg line.
    west, south, east, north = BBOX
    lines = to_lonlat(params, np.concatenate([densify(ring) for ring in mainland]))
    lines = lines[(lines[:, 0] > west - 0.3) & (lines[:, 0] < east + 0.3)
                  & (lines[:, 1] > south - 0.3) & (lines[:, 1] < north + 0.3)]
    near = land[(land[:, 0] > west) & (land[:, 0] < east) & (land[:, 1] > south) & (land[:, 1] < north)]
    coast = near[near[:, 1] + 0.9 * (near[:, 0] - 107.0) > 16.95]  # east of this line: the sea coast
    kx = math.cos(math.radians((south + north) / 2))
    index, _ = nearest(np.c_[coast[:, 0] * kx, coast[:, 1]], np.c_[lines[:, 0] * kx, lines[:, 1]])
    err = km(coast, lines[index])
    accuracy = (f"{len(coast)} Natural Earth coast vertices in the bbox: distance to the svg's lines median "
                f"{np.median(err):.1f} km, 90th percentile {np.percentile(err, 90):.1f} km, max {err.max():.1f} km")
    print(f"fit lon = {params[0]:.6f} x + {params[1]:.4f}, mercator(lat) = {params[2]:.6f} y + {params[3]:.4f}",
          file=sys.stderr)
    print(accuracy, file=sys.stderr)
    near_hue = km(coast, np.array([HUE] * len(coast))) < 40
    print(f"{near_hue.sum()} of them within 40 km of Huế: median {np.median(err[near_hue]):.1f} km, "
          f"max {err[near_hue].max():.1f} km", file=sys.stderr)

    name, rings = provinces[PROVINCE]
    polygons = [[[[round(lon, 4), round(lat, 4)] for lon, lat in to_lonlat(params, np.array(ring))]]
                for ring in rings]
    feature = {"type": "Feature", "properties": {
        "name": "Thừa Thiên Huế", "source_name": name,
        "source": "@svg-maps/vietnam 2.0.0 (npm) by Stephen Truong, CC BY 4.0; georeferenced on Natural Earth "
                  "1:10m admin-0 (Mercator fit, config/map/extract_province.py)",
        "accuracy": accuracy},
        "geometry": {"type": "MultiPolygon", "coordinates": polygons}}
    json.dump({"type": "FeatureCollection", "features": [feature]}, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
