"""`sla.clock` and `sla.snapshot_s`: the SLA runner's settings, from config/ioc.yaml and overrides."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ioc.config import load_settings
from ioc.sla.settings import SlaSettings


def test_clock_and_snapshot_interval_defaults_and_bounds() -> None:
    assert (SlaSettings().clock, SlaSettings().snapshot_s) == ("wall", 60.0)
    assert SlaSettings(clock="event").clock == "event"
    with pytest.raises(ValidationError):
        SlaSettings(clock="lunar")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SlaSettings(snapshot_s=0)


def test_the_shipped_config_says_wall_and_the_demo_override_gives_event() -> None:
    shipped = load_settings(env={})
    assert (shipped.sla.clock, shipped.sla.snapshot_s) == ("wall", 60.0)
    demo = load_settings(env={}, overrides={"sla.clock": "event", "sla.snapshot_s": 10.0})
    assert (demo.sla.clock, demo.sla.snapshot_s) == ("event", 10.0)
