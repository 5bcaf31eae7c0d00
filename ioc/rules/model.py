"""The typed rule model: fields common to every rule kind, and the duration type.

Each kind subclasses `RuleSpec` with its own fields and a `kind: Literal[...]`; the model is
the schema (unknown keys are errors). Durations are written `30s`, `5m`, `1h30m` and held
as float seconds.

>>> RuleSpec.model_validate({"id": "a.b", "stream": "reservoir", "kind": "x", "realert": "30m"}).realert
1800.0
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from ioc.config import REPO_ROOT
from ioc.events.schemas import STREAMS
from ioc.timeutil import parse_duration

__all__ = ["Duration", "RESERVED_ANNOTATIONS", "RuleSpec", "SlaSpec", "SEVERITIES", "Severity", "Stream",
           "check_runbook_url"]

SEVERITIES = ("info", "warning", "critical", "emergency")
Severity = Literal["info", "warning", "critical", "emergency"]
Stream = Literal["camera", "reservoir", "vessel", "cyber", "press"]
if tuple(Stream.__args__) != STREAMS:  # type: ignore[attr-defined]
    raise RuntimeError("ioc.rules.model.Stream is out of step with ioc.events.schemas.STREAMS")


def _duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (e.g. 30s, 5m, 2h, 1d, 1h30m)")
    if isinstance(value, (int, float)) and value == 0:
        return 0.0
    return parse_duration(value)


Duration = Annotated[float, BeforeValidator(_duration)]

# Annotation names the record fills from other fields of the rule.
RESERVED_ANNOTATIONS = frozenset({"summary", "description", "runbook_url"})
_ANNOTATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


def check_runbook_url(text: str) -> str:
    """A runbook link as a rule may give it: an http(s) URL with a host, or a path under `docs/`
    of this repository that exists (an `#anchor` may follow); ValueError otherwise.

    >>> check_runbook_url("docs/kinds/absence.md#fields")
    'docs/kinds/absence.md#fields'
    >>> check_runbook_url("ftp://wiki/x")           # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: 'ftp://wiki/x' is not a runbook link (allowed: an http(s) URL such as ...)
    """
    allowed = ("(allowed: an http(s) URL such as https://wiki.example/runbooks/x, or a path under docs/ of this "
               "repository such as docs/runbooks/reservoir.md)")
    shown = repr(text[:120])
    parts = urlsplit(text)
    if parts.scheme in ("http", "https"):
        if not parts.netloc or any(ch.isspace() for ch in text):
            raise ValueError(f"{shown} is not a valid URL {allowed}")
        return text
    if parts.scheme or parts.netloc:
        raise ValueError(f"{shown} is not a runbook link {allowed}")
    path = Path(parts.path)
    if path.is_absolute() or ".." in path.parts or not path.parts or path.parts[0] != "docs":
        raise ValueError(f"{shown} is not a runbook link {allowed}")
    if not (REPO_ROOT / path).is_file():
        raise ValueError(f"{shown}: no such file in this repository {allowed}")
    return text


class SlaSpec(BaseModel):
    """Handling deadlines counted from the alert's start."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ack: Duration | None = None
    resolve: Duration | None = None


class RuleSpec(BaseModel):
    """Fields every rule has, whatever its kind."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    id: str = Field(pattern=r"^[a-z0-9._-]+$", max_length=200)
    stream: Stream
    kind: str
    enabled: bool = True
    key: list[str] = ["source_id"]
    where: str | None = None
    severity: Severity = "warning"
    labels: dict[str, str] = {}
    summary: str = ""
    description: str = ""
    # Alert annotations (templates like `summary`) and the runbook link: records carry them as
    # `annotations` (with `runbook_url` inside, as Prometheus and Alertmanager do).
    annotations: dict[str, str] = {}
    runbook_url: str | None = None
    value: str | None = None
    sla: SlaSpec | None = None
    realert: Duration = 0.0
    # State bounds (docs/rules.md): at most `max_keys` keys per shard (default limits.keys_per_rule;
    # new keys beyond are not tracked), and a key idle `key_ttl` in event time is forgotten
    # (default limits.key_idle_s; 0: off). Neither changes what the rule means: a reload that
    # changes only these keeps the rule's state.
    max_keys: int | None = Field(default=None, ge=1)
    key_ttl: Duration | None = None
    # Periods when the rule applies, in event time (ioc.rules.periods): a calendar name from
    # config/calendars/, one {from, to} or a list of them; checked and loaded by the loader.
    active: Any = None

    @field_validator("key")
    @classmethod
    def _key_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must name at least one field")
        if len(set(value)) != len(value):
            raise ValueError("names a field twice")
        return value

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_text(cls, value: Any) -> Any:
        # YAML turns `tier: 1` into an int; a label is text, as in Prometheus.
        if isinstance(value, dict):
            return {k: v if isinstance(v, str) else str(v) for k, v in value.items()}
        return value

    @field_validator("annotations")
    @classmethod
    def _annotation_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name in RESERVED_ANNOTATIONS:
                raise ValueError(f"'{name}' is not allowed as an annotation name (the rule's own `{name}` field "
                                 f"fills it; allowed: other names such as action, dashboard)")
            if not _ANNOTATION_NAME.match(name):
                raise ValueError(f"{name[:60]!r} is not an annotation name (allowed: letters, digits and '_', "
                                 "not starting with a digit, as in Alertmanager)")
        return value

    @field_validator("runbook_url")
    @classmethod
    def _runbook_link(cls, value: str | None) -> str | None:
        return check_runbook_url(value) if value is not None else None

    @property
    def domain(self) -> str:
        """The alert's domain for metrics and dashboards: the `domain` label, else the stream."""
        return self.labels.get("domain", self.stream)
