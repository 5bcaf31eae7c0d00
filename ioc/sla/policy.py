"""Settings of the notification policy (to become `settings.notify`): grouping, inhibition,
silences and maintenance windows, flap control. Durations are seconds, or text such as `5m`;
times are epoch seconds or RFC 3339. Matchers are kept as their canonical text, so the model
stays plain JSON-able data; semantics in docs/notifications.md.

>>> s = NotifySettings.model_validate({"group_wait": "10s", "group_by": ["domain"]})
>>> s.group_wait, s.group_interval, s.repeat_interval
(10.0, 300.0, 14400.0)
>>> s.inhibit_rules[0].equal
('domain', 'source_id')
>>> SilenceSettings.model_validate({"matchers": {"domain": "water"}, "ends_at": "2025-10-27T10:00:00Z"}).matchers
('domain="water"',)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from ioc.sla.matchers import parse_matchers
from ioc.timeutil import parse_duration, parse_ts

__all__ = ["FlapSettings", "InhibitRuleSettings", "NotifySettings", "SilenceSettings", "PSEUDO_LABELS"]

# Fields of the alert record that the policy sees as labels, over the record's own `labels`.
PSEUDO_LABELS = ("rule_id", "severity", "stream", "kind", "domain")


def _seconds(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    return value


def _time(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (str, int, float)):
        return parse_ts(value)
    return value


def _matchers(value: Any) -> Any:
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        value = list(value)
    return tuple(str(m) for m in parse_matchers(value))


Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]
EpochTime = Annotated[float, BeforeValidator(_time)]
Matchers = Annotated[tuple[str, ...], BeforeValidator(_matchers)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InhibitRuleSettings(_Strict):
    """A firing alert matching `source_matchers` mutes the alerts matching `target_matchers` that
    have the same values (a missing label is "") for every label in `equal`; never itself."""

    source_matchers: Matchers
    target_matchers: Matchers
    equal: tuple[str, ...] = ()


class SilenceSettings(_Strict):
    """Mutes the alerts matching `matchers` from `starts_at` until `ends_at`, or until the incident
    matching `until_resolved` has resolved (`true`: the incident is `matchers` itself)."""

    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,128}$")
    kind: Literal["silence", "maintenance"] = "silence"
    matchers: Matchers
    starts_at: EpochTime = 0.0
    ends_at: EpochTime | None = None
    until_resolved: Matchers | None = None
    created_by: str = ""
    comment: str = ""

    @model_validator(mode="before")
    @classmethod
    def _until_self(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("until_resolved") is True:
            data = {**data, "until_resolved": data.get("matchers")}
        if isinstance(data, dict) and data.get("until_resolved") is False:
            data = {**data, "until_resolved": None}
        return data

    @model_validator(mode="after")
    def _check(self) -> SilenceSettings:
        if not self.matchers:
            raise ValueError("a silence needs at least one matcher (it would mute every alert)")
        if self.ends_at is None and self.until_resolved is None:
            raise ValueError("a silence needs ends_at, until_resolved, or both")
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.until_resolved is not None and not self.until_resolved:
            raise ValueError("until_resolved needs at least one matcher (or true for the silence's own)")
        return self


class FlapSettings(_Strict):
    """Nagios-inspired flap control: more than `max_changes` state changes of a fingerprint within
    `window` mark it flapping; it settles after `settle` without a change. `max_changes: 0` = off."""

    max_changes: int = Field(default=6, ge=0)
    window: Seconds = 3600.0
    settle: Seconds = 1800.0


def _default_inhibit() -> tuple[InhibitRuleSettings, ...]:
    return (
        InhibitRuleSettings(
            source_matchers=('severity=~"critical|emergency"',),
            target_matchers=('severity=~"warning|info"',),
            equal=("domain", "source_id"),
        ),
    )


class NotifySettings(_Strict):
    """The notification policy: Alertmanager's grouping, inhibition and silences, plus flap control.

    `group_by` names labels (or pseudo-labels, PSEUDO_LABELS); `["..."]` groups by all labels."""

    group_by: tuple[str, ...] = ("domain", "rule_id")
    group_wait: Seconds = 30.0
    group_interval: Annotated[float, BeforeValidator(_seconds), Field(gt=0)] = 300.0
    repeat_interval: Seconds = 14400.0
    inhibit_rules: tuple[InhibitRuleSettings, ...] = Field(default_factory=_default_inhibit)
    silences: tuple[SilenceSettings, ...] = ()
    flapping: FlapSettings = FlapSettings()
    max_silences: int = Field(default=10_000, ge=1)
