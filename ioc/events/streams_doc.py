"""docs/streams.md, generated from the event schemas and the reference data.

    python -m ioc.events.streams_doc            # write docs/streams.md
    python -m ioc.events.streams_doc --check    # exit 1 if it differs from what the code says

Every field of every stream with its type, unit, range and whether it is required, from
ioc.events.schemas (the decoder's own rules), and the reference data joined to each stream by
`source_id` (config/reference/<stream>.yaml). A unit test fails when the file is stale.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from ioc.config import REPO_ROOT, load_settings
from ioc.events.declared import BUILTIN, EventSchemas
from ioc.events.schemas import MAX_TS, SCHEMAS, STREAMS, base_type, field_bounds
from ioc.refdata import Reference, load_reference

__all__ = ["render", "main", "DOC_PATH"]

DOC_PATH = REPO_ROOT / "docs" / "streams.md"

# Units by field name (the names carry them: level_m, inflow_m3s, sog_kn...).
UNITS: dict[str, str] = {
    "ts": "RFC 3339 text with an offset, or epoch seconds / milliseconds",
    "level_m": "m (reservoirs: above sea level; gauges: the gauge's datum)",
    "inflow_m3s": "m³/s", "turbine_m3s": "m³/s", "spill_m3s": "m³/s",
    "rain_mm_1h": "mm in the last hour", "piezo_kpa": "kPa", "seepage_lps": "L/s", "turbidity_ntu": "NTU",
    "lat": "degrees north (WGS 84)", "lon": "degrees east (WGS 84)",
    "length_m": "m", "sog_kn": "knots (speed over ground)", "cog_deg": "degrees (course over ground)",
    "speed_kmh": "km/h", "score": "detector confidence, 0 to 1", "count": "people or vehicles",
    "sentiment": "-1 (negative) to 1 (positive)", "engagement": "shares, comments and reactions",
    "dst_port": "TCP/UDP port", "http_status": "HTTP status code",
}
# What the decoder checks beyond type and range (ioc.events.schemas validators).
CHECKS: dict[str, str] = {
    "source_id": "blanks around it are trimmed; 1 to 128 characters",
    "ts": f"between 1970 and 9999 (at most {MAX_TS:.0f} s); a number at or above 1e11 is milliseconds",
    "src_ip": "an IPv4 or IPv6 address", "dst_ip": "an IPv4 or IPv6 address",
    "topics": "null is taken as []",
}


def _type(annotation: Any) -> tuple[str, bool]:
    """A reader's name of a field's type, and whether null is allowed."""
    annotation, nullable = base_type(annotation)
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in get_args(annotation)), nullable
    if get_origin(annotation) is list:
        return f"list of {get_args(annotation)[0].__name__}", nullable
    names = {float: "number", int: "integer", str: "text", bool: "true or false"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation))), nullable


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


def _range(bounds: tuple[float | None, float | None] | None) -> str:
    if bounds is None:
        return ""
    low, high = bounds
    if low is not None and high is not None:
        return f"{_number(low)} to {_number(high)}"
    return f"≥ {_number(low)}" if low is not None else f"≤ {_number(high)}"  # type: ignore[arg-type]


def _stream(stream: str, reference: Reference, schemas: EventSchemas = BUILTIN) -> list[str]:
    model = schemas.model(stream)
    bounds = field_bounds(model)
    declared = {f.name: f for f in schemas.declared_of(stream)}
    doc = inspect.cleandoc(SCHEMAS[stream].__doc__ or "")
    lines = [f"## `{stream}`", "", doc, "",
             "| field | type | unit | range | required | also checked |", "|---|---|---|---|---|---|"]
    for name, info in model.model_fields.items():
        kind, nullable = _type(info.annotation)
        if name == "ts":
            kind = "time"
        required = "yes" if info.is_required() else ("no (null or absent)" if nullable else "no")
        unit, checked = UNITS.get(name, ""), CHECKS.get(name, "")
        if name in declared:
            unit = declared[name].unit
            checked = f"declared in the configuration (`fields:`): {declared[name].description}".rstrip(": ")
        lines.append(f"| `{name}` | {kind} | {unit} | {_range(bounds.get(name))} | {required} | {checked} |")
    lines.append("")
    rows = reference.rows(stream)
    if rows:
        fields = sorted(reference.fields(stream))
        lines += [f"Reference data: `config/reference/{stream}.yaml`, {len(rows)} rows joined by `source_id`; "
                  "rules read their fields by name, and the comments of the file say what each holds:", "",
                  ", ".join(f"`{field}`" for field in fields), ""]
    else:
        lines += ["No reference data is joined to this stream.", ""]
    return lines


def render(reference: Reference | None = None, schemas: EventSchemas | None = None) -> str:
    """The text of docs/streams.md; `schemas`: with the declared fields of a configuration
    (default: the built-in fields only)."""
    reference = reference if reference is not None else load_reference(REPO_ROOT / "config" / "reference")
    schemas = schemas if schemas is not None else BUILTIN
    lines = [
        "# Event streams",
        "",
        "<!-- Generated by `python -m ioc.events.streams_doc` (make docs) from ioc/events/schemas.py and",
        "     config/reference/: edit those, not this file. A unit test fails when it is stale. -->",
        "",
        "Every event is one JSON object on its stream's raw topic. Besides the fields below, an event",
        "may carry any other field: it is kept as sent. Rules read the fields below; a deployment adds",
        "fields of its own in its configuration (`fields:` in config/ioc.yaml, README \"Configuration\"),",
        "and those are listed here, marked declared, when this file is generated with that configuration.",
        "An event that breaks one of these rules goes to the dead-letter topic with the reason (README, \"Events\").",
        "The domain facts behind these streams (levels, laws, thresholds) are in [docs/domain.md](domain.md).",
        "",
        "Numbers are JSON numbers (an integer is fine where a number is expected, never text such",
        "as \"12.5\", nor true/false). Ranges are physical plausibility limits, wider than the values",
        "a sensor normally sends: an extreme but real reading must reach the rules.",
        "",
    ]
    for stream in STREAMS:
        lines += _stream(stream, reference, schemas)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write docs/streams.md from the event schemas")
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/streams.md is not what the code says")
    parser.add_argument("--config", help="settings file whose declared `fields:` are listed (default: config/ioc.yaml,"
                                         " or $IOC_CONFIG)")
    args = parser.parse_args(argv)
    text = render(schemas=load_settings(args.config).schemas())
    if args.check:
        current = DOC_PATH.read_text(encoding="utf-8") if DOC_PATH.exists() else ""
        if current != text:
            print(f"{DOC_PATH} is stale: run `make docs`", file=sys.stderr)
            return 1
        return 0
    Path(DOC_PATH).write_text(text, encoding="utf-8")
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
