"""Event schemas and decoding: raw sensor payloads to validated plain dicts.

>>> from ioc.events import decode, InvalidEvent
>>> decode("vessel", b'{"source_id": "TTH-90123-TS", "ts": 1761526800, "lat": 16.6, "lon": 107.7}')["lat"]
16.6
"""

from ioc.events.decode import MAX_EVENT_BYTES, decode, decode_batch
from ioc.events.exceptions import INVALID_EVENT_CODES, InvalidEvent
from ioc.events.schemas import (
    CAMERA_EVENT_TYPES,
    SCHEMAS,
    STREAMS,
    BaseEvent,
    CameraEvent,
    CyberEvent,
    PressEvent,
    ReservoirEvent,
    VesselEvent,
    field_bounds,
    stream_fields,
)

__all__ = [
    "MAX_EVENT_BYTES",
    "decode",
    "decode_batch",
    "InvalidEvent",
    "INVALID_EVENT_CODES",
    "STREAMS",
    "SCHEMAS",
    "CAMERA_EVENT_TYPES",
    "BaseEvent",
    "CameraEvent",
    "ReservoirEvent",
    "VesselEvent",
    "CyberEvent",
    "PressEvent",
    "stream_fields",
    "field_bounds",
]
