"""Scoring alerts against a scenario's ground truth: recall per incident, precision per rule.

>>> score = score_alerts(result.alerts, read_truth("out/ground_truth.jsonl"))   # doctest: +SKIP
>>> score.recall, score.rules["gauge.level.above_bd2"].precision
(1.0, 1.0)

An incident is caught when an alert of one of its `rules`, with its key values, starts within
[start - slack, end]. An episode (alert id) of a rule is a true positive when it catches some
incident; precision is over the rule's episodes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ioc.alerts import Alert
from ioc.exceptions import IocError
from ioc.timeutil import parse_ts

__all__ = ["TruthError", "TruthIncident", "RuleScore", "Score", "read_truth", "score_alerts"]


class TruthError(IocError):
    """A ground-truth file cannot be read."""


@dataclass(frozen=True)
class TruthIncident:
    id: str
    stream: str
    kind: str
    keys: dict[str, Any]
    start: float
    end: float
    rules: tuple[str, ...]

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TruthIncident:
        return cls(str(record["id"]), str(record["stream"]), str(record["kind"]), dict(record.get("keys") or {}),
                   parse_ts(record["start"]), parse_ts(record["end"]), tuple(record.get("rules") or ()))


@dataclass
class RuleScore:
    rule_id: str
    episodes: int = 0
    true_positives: int = 0

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.episodes if self.episodes else None


@dataclass
class Score:
    caught: dict[str, str | None] = field(default_factory=dict)   # incident id -> alert id (None: missed)
    incidents: list[TruthIncident] = field(default_factory=list)
    rules: dict[str, RuleScore] = field(default_factory=dict)

    @property
    def recall(self) -> float | None:
        scored = [i for i in self.incidents if i.rules]
        if not scored:
            return None
        return sum(1 for i in scored if self.caught.get(i.id)) / len(scored)

    @property
    def missed(self) -> list[TruthIncident]:
        return [i for i in self.incidents if i.rules and not self.caught.get(i.id)]


def read_truth(path: str | Path) -> list[TruthIncident]:
    try:
        lines = Path(path).read_bytes().splitlines()
    except OSError as exc:
        raise TruthError(f"{path}: cannot be read ({exc.strerror})") from None
    incidents = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                incidents.append(TruthIncident.from_record(orjson.loads(line)))
            except (orjson.JSONDecodeError, KeyError, ValueError) as exc:
                raise TruthError(f"{path}:{number}: not a ground-truth record ({exc})") from None
    return incidents


def _matches(alert: Alert, incident: TruthIncident, slack_s: float) -> bool:
    return (
        alert.rule_id in incident.rules
        and all(alert.key.get(name) == value for name, value in incident.keys.items())
        and incident.start - slack_s <= alert.starts_at <= incident.end
    )


def score_alerts(alerts: Sequence[Alert], incidents: Iterable[TruthIncident], *, slack_s: float = 3600.0) -> Score:
    """Recall over incidents that name rules; precision per rule over its episodes."""
    score = Score(incidents=list(incidents))
    firing = [a for a in alerts if a.status == "firing"]
    episodes: dict[str, Alert] = {}
    for alert in firing:
        episodes.setdefault(alert.alert_id, alert)
    for incident in score.incidents:
        hit = next((a for a in episodes.values() if _matches(a, incident, slack_s)), None)
        score.caught[incident.id] = hit.alert_id if hit is not None else None
    for alert in episodes.values():
        rule = score.rules.setdefault(alert.rule_id, RuleScore(alert.rule_id))
        rule.episodes += 1
        if any(_matches(alert, incident, slack_s) for incident in score.incidents):
            rule.true_positives += 1
    return score
