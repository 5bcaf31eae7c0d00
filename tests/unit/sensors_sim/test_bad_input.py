"""Injected malformed messages: every one is rejected by the schemas, for the reason it claims."""

from __future__ import annotations

import numpy
import pytest

from ioc.events import STREAMS, InvalidEvent, decode
from sensors_sim.bad import _MAKERS, BAD_KINDS, corrupt, inject_bad

GOOD = {
    "reservoir": {"source_id": "ta-trach", "ts": 1761526800, "level_m": 44.0, "inflow_m3s": 1200.0},
    "vessel": {"source_id": "TTH-90123-TS", "ts": 1761526800, "lat": 16.7, "lon": 107.8, "sog_kn": 3.0},
    "camera": {"source_id": "cam-001", "ts": 1761526800, "event_type": "crowd", "score": 0.9, "count": 40},
    "cyber": {"source_id": "soc-fw-01", "ts": 1761526800, "event_action": "firewall", "dst_port": 22,
              "src_ip": "192.0.2.10"},
    "press": {"source_id": "huengaynay.vn", "ts": 1761526800, "title": "Huế", "sentiment": 0.2},
}


@pytest.mark.parametrize("stream", STREAMS)
def test_the_good_templates_are_valid(stream):
    assert decode(stream, GOOD[stream])["source_id"] == GOOD[stream]["source_id"]


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("kind", sorted(BAD_KINDS))
def test_every_corruption_is_rejected_with_its_reason(stream, kind):
    payload = _MAKERS[kind](stream, GOOD[stream], numpy.random.default_rng(3))
    with pytest.raises(InvalidEvent) as caught:
        decode(stream, payload)
    assert caught.value.code == BAD_KINDS[kind], caught.value.reason
    assert caught.value.reason


def test_random_corruptions_always_match_their_declared_reason():
    rng = numpy.random.default_rng(11)
    for index in range(500):
        stream = STREAMS[index % len(STREAMS)]
        payload, code = corrupt(rng, stream, GOOD[stream])
        with pytest.raises(InvalidEvent) as caught:
            decode(stream, payload)
        assert caught.value.code == code


def test_injection_keeps_the_good_events_and_is_reproducible():
    events = [dict(GOOD["reservoir"], ts=1761526800 + 60 * i) for i in range(1000)]
    first = list(inject_bad(events, "reservoir", 0.05, seed=4))
    assert first == list(inject_bad(events, "reservoir", 0.05, seed=4))
    good = [e for e in first if isinstance(e, dict)]
    bad = [e for e in first if isinstance(e, bytes)]
    assert good == events
    assert 25 <= len(bad) <= 80  # about 5 %
    with pytest.raises(ValueError, match="between 0 and 1"):
        list(inject_bad(events, "reservoir", 5, seed=1))
