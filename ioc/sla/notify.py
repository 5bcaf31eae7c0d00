"""The notification policy: alert transitions in, notifications for `ioc.notifications` out.

Alertmanager's grouping (group_wait, group_interval, repeat_interval), inhibition by `equal`
labels and silences (which may end with their incident), plus Nagios-style flap control. Pure:
the time is the one passed in (`on_alert` uses the record's own time); state is plain data
(`snapshot()` / `restore()`). Semantics, defaults and the record: docs/notifications.md.

>>> policy = NotificationPolicy()
>>> policy.on_alert({"fingerprint": "f1", "alert_id": "f1-0", "rule_id": "r", "stream": "reservoir",
...     "severity": "warning", "status": "firing", "labels": {"domain": "water"}, "starts_at": 0.0})
[]
>>> [(n.at, n.reason, n.firing) for n in policy.advance(30.0)]
[(30.0, 'first', ('f1-0',))]
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ioc.exceptions import IocError
from ioc.sla.matchers import Matcher, matches_all, parse_matchers
from ioc.sla.policy import NotifySettings, SilenceSettings
from ioc.timeutil import parse_ts

__all__ = ["Notification", "NotificationPolicy", "NotifyRecordError", "SEVERITY_RANK", "group_key_of"]

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2, "emergency": 3}
_INF = math.inf
_EPS = 1e-9


class NotifyRecordError(IocError, ValueError):
    """An alert record the policy cannot read (the message says which field); skip it, count it."""


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification of a group, published on `ioc.notifications` keyed by `group_key`."""

    group_key: str
    group_labels: dict[str, str]
    status: str          # firing if an alert of the group fires (flapping ones included), else resolved
    reason: str          # first | update | repeat | resolved
    at: float            # epoch seconds: the group's tick
    firing: tuple[str, ...]
    resolved: tuple[str, ...]
    flapping: tuple[str, ...]
    silenced: tuple[str, ...]
    inhibited: tuple[str, ...]
    severity: str | None

    @property
    def alerts(self) -> tuple[str, ...]:
        """The alert ids notified: firing ones, then newly resolved ones."""
        return self.firing + self.resolved

    def to_record(self) -> dict[str, Any]:
        return {
            "type": "notification", "group_key": self.group_key, "group_labels": dict(self.group_labels),
            "status": self.status, "reason": self.reason, "at": self.at, "alerts": list(self.alerts),
            "firing": list(self.firing), "resolved": list(self.resolved), "flapping": list(self.flapping),
            "silenced": list(self.silenced), "inhibited": list(self.inhibited), "severity": self.severity,
        }


def group_key_of(group_labels: Mapping[str, str]) -> str:
    """The group key: its labels as `{name="value",...}` in group_by order.

    >>> group_key_of({"domain": "water", "rule_id": "reservoir.level"})
    '{domain="water",rule_id="reservoir.level"}'
    """
    inner = ",".join(f"{name}={json.dumps(value, ensure_ascii=False)}" for name, value in group_labels.items())
    return "{" + inner + "}"


@dataclass(slots=True)
class _Episode:
    alert_id: str
    fingerprint: str
    status: str
    labels: dict[str, str]
    group_key: str
    severity: str


@dataclass(slots=True)
class _Flap:
    changes: list[float] = field(default_factory=list)
    flapping: bool = False
    last_change: float = 0.0


@dataclass(slots=True)
class _Group:
    key: str
    labels: dict[str, str]
    anchor: float                       # first tick: created + group_wait; then every group_interval
    next_flush: float
    last_tick: float | None = None
    last_sent: float | None = None
    members: set[str] = field(default_factory=set)
    announced: set[str] = field(default_factory=set)    # notified firing, not yet notified resolved
    flap_marked: set[str] = field(default_factory=set)  # fingerprints notified as flapping


@dataclass(slots=True)
class _Silence:
    settings: SilenceSettings
    matchers: tuple[Matcher, ...]
    until: tuple[Matcher, ...] | None
    incident: set[str] = field(default_factory=set)     # fingerprints of the firing incident
    seen: bool = False
    resolved_at: float | None = None

    @property
    def end(self) -> float:
        ends = self.settings.ends_at if self.settings.ends_at is not None else _INF
        return min(ends, self.resolved_at if self.resolved_at is not None else _INF)

    def active(self, at: float) -> bool:
        return self.settings.starts_at <= at < self.end


def _text(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value:
        raise NotifyRecordError(f"alert record: {name} must be non-empty text, not {value!r:.80}")
    return value


def _time(value: Any, name: str) -> float:
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise NotifyRecordError(f"alert record: {name}: {exc}") from None


class NotificationPolicy:
    """Grouping, inhibition, silences and flap control over alert records, at explicit times.

    `on_alert(record)` first runs the ticks due before the record's time, applies it, then runs
    the ticks due at that time (a record at a tick's time is in that tick); `advance(now)` runs
    the ticks due up to `now`. The clock never goes back: a late record counts at the clock."""

    def __init__(self, settings: NotifySettings | None = None) -> None:
        self.settings = settings if settings is not None else NotifySettings()
        self._inhibit = [
            (parse_matchers(r.source_matchers), parse_matchers(r.target_matchers), r.equal)
            for r in self.settings.inhibit_rules
        ]
        self._clock = -_INF
        self._seq = 0
        self._episodes: dict[str, _Episode] = {}
        self._current: dict[str, str] = {}
        self._flaps: dict[str, _Flap] = {}
        self._groups: dict[str, _Group] = {}
        self._silences: dict[str, _Silence] = {}
        self._sources: list[dict[tuple[str, ...], set[str]]] | None = None
        self._configured = {str(s.id): s for s in (
            silence if silence.id else silence.model_copy(update={"id": f"config-{index}"})
            for index, silence in enumerate(self.settings.silences))}
        for silence in self._configured.values():
            self._add_silence(silence)

    # -- public API -------------------------------------------------------------------------------

    @property
    def clock(self) -> float:
        return self._clock

    def on_alert(self, record: Mapping[str, Any]) -> list[Notification]:
        """Apply one alert transition (DESIGN.md "Alert record"); the notifications now due."""
        episode, at = self._read(record)
        at = max(at, self._clock)
        out = self._run(at, inclusive=False)
        self._clock = at
        self._apply(episode, at)
        return out + self._run(at, inclusive=True)

    def advance(self, now: float) -> list[Notification]:
        """Run the group ticks due up to `now` (epoch seconds); the notifications they send."""
        now = max(now, self._clock)
        out = self._run(now, inclusive=True)
        self._clock = now
        for sid in [sid for sid, s in self._silences.items() if s.end <= now]:
            del self._silences[sid]
        return out

    def silence(self, matchers: str | Mapping[str, object] | Iterable[str], *, starts_at: float | None = None,
                ends_at: float | None = None, until_resolved: str | Mapping[str, object] | Iterable[str] | bool
                | None = None, kind: str = "silence", created_by: str = "", comment: str = "",
                silence_id: str | None = None) -> str:
        """Add a silence (or maintenance window) at run time; its id. `until_resolved`: matchers
        of the incident whose resolution ends it (`True`: the silence's own matchers).

        >>> p = NotificationPolicy()
        >>> p.silence('rule_id="reservoir.level"', starts_at=0.0, ends_at=600.0, created_by="ops")
        's-1'
        """
        if len(self._silences) >= self.settings.max_silences:
            raise ValueError(f"already {len(self._silences)} silences, the limit (notify.max_silences)")
        if silence_id is None:
            self._seq += 1
            silence_id = f"s-{self._seq}"
        if silence_id in self._silences:
            raise ValueError(f"silence {silence_id!r} exists already")
        start = starts_at if starts_at is not None else max(self._clock, 0.0)
        settings = SilenceSettings.model_validate({
            "id": silence_id, "kind": kind, "matchers": matchers, "starts_at": start, "ends_at": ends_at,
            "until_resolved": until_resolved, "created_by": created_by, "comment": comment,
        })
        self._add_silence(settings)
        self._wake_all(max(start, self._clock))
        return silence_id

    def expire(self, silence_id: str, at: float | None = None) -> bool:
        """End a silence at `at` (default: the clock); False when there is no such silence. One
        that has not started by then is dropped."""
        silence = self._silences.get(silence_id)
        if silence is None:
            return False
        end = max(self._clock, 0.0) if at is None else at
        if end <= silence.settings.starts_at:
            del self._silences[silence_id]
        elif silence.settings.ends_at is None or end < silence.settings.ends_at:
            silence.settings = silence.settings.model_copy(update={"ends_at": end})
        self._wake_all(max(end, self._clock))
        return True

    def silences(self) -> list[dict[str, Any]]:
        """The silences not yet over, as records (id, kind, matchers, times, ended_by_incident_at)."""
        return [{**s.settings.model_dump(), "end": s.end if s.end < _INF else None,
                 "resolved_at": s.resolved_at} for s in self._silences.values()]

    # -- reading and applying records ---------------------------------------------------------------

    def _read(self, record: Mapping[str, Any]) -> tuple[_Episode, float]:
        status = record.get("status")
        if status not in ("firing", "resolved"):
            raise NotifyRecordError(f"alert record: status must be firing or resolved, not {status!r:.80}")
        labels_in = record.get("labels") or {}
        key_in = record.get("key") or {}
        if not isinstance(labels_in, Mapping) or not isinstance(key_in, Mapping):
            raise NotifyRecordError("alert record: labels and key must be maps")
        stream = str(record.get("stream") or "")
        severity = str(record.get("severity") or "")
        labels = {str(k): str(v) for k, v in key_in.items() if v is not None}
        labels.update({str(k): str(v) for k, v in labels_in.items() if v is not None})
        labels.update(rule_id=str(record.get("rule_id") or ""), severity=severity, stream=stream,
                      kind=str(record.get("kind") or ""), domain=str(labels_in.get("domain") or stream))
        starts_at = _time(record.get("starts_at"), "starts_at")
        at = starts_at
        if status == "resolved" and record.get("ends_at") is not None:
            at = _time(record.get("ends_at"), "ends_at")
        group_labels = self._group_labels(labels)
        episode = _Episode(_text(record, "alert_id"), _text(record, "fingerprint"), status, labels,
                           group_key_of(group_labels), severity)
        return episode, at

    def _group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        if self.settings.group_by == ("...",):
            return dict(sorted(labels.items()))
        return {name: labels[name] for name in self.settings.group_by if labels.get(name)}

    def _apply(self, new: _Episode, at: float) -> None:
        self._sources = None
        fp = new.fingerprint
        prev_id = self._current.get(fp)
        prev = self._episodes.get(prev_id) if prev_id is not None else None
        if new.status == "firing" and prev is not None and prev.alert_id != new.alert_id \
                and prev.status == "firing":
            prev.status = "resolved"  # a new episode ends the previous one, even without its record
            self._change(fp, at)
        old = self._episodes.get(new.alert_id)
        if old is None:
            if new.status == "resolved":
                return  # never seen firing here: nothing was or will be announced
            self._change(fp, at)
            self._episodes[new.alert_id] = new
            self._current[fp] = new.alert_id
        else:
            if old.status != new.status:
                self._change(fp, at)
            if old.group_key != new.group_key:
                group = self._groups.get(old.group_key)
                if group is not None:
                    group.members.discard(old.alert_id)
                    group.announced.discard(old.alert_id)
            self._episodes[new.alert_id] = new
        group = self._groups.get(new.group_key)
        if group is None:
            first = at + self.settings.group_wait
            group = _Group(new.group_key, self._group_labels(new.labels), first, first)
            self._groups[new.group_key] = group
        group.members.add(new.alert_id)
        self._wake(group, at)
        if any(matches_all(src, new.labels) for src, _, _ in self._inhibit):
            self._wake_all(at)
        self._track_incidents(new, at)

    def _change(self, fp: str, at: float) -> None:
        """A state change of a fingerprint, for flap detection."""
        flap = self._flaps.setdefault(fp, _Flap())
        self._settle(flap, at)
        cfg = self.settings.flapping
        flap.changes = [t for t in flap.changes if t > at - cfg.window] + [at]
        flap.last_change = at
        if cfg.max_changes and len(flap.changes) > cfg.max_changes:
            flap.flapping = True

    def _settle(self, flap: _Flap, at: float) -> None:
        if flap.flapping and at >= flap.last_change + self.settings.flapping.settle:
            flap.flapping = False
            flap.changes.clear()  # a settled alert starts afresh

    def _add_silence(self, settings: SilenceSettings) -> None:
        until = parse_matchers(settings.until_resolved) if settings.until_resolved is not None else None
        silence = _Silence(settings, parse_matchers(settings.matchers), until)
        if until is not None:
            silence.incident = {ep.fingerprint for ep in self._episodes.values()
                                if ep.status == "firing" and matches_all(until, ep.labels)}
            silence.seen = bool(silence.incident)
        self._silences[str(settings.id)] = silence

    def _track_incidents(self, episode: _Episode, at: float) -> None:
        for silence in self._silences.values():
            if silence.until is None or silence.resolved_at is not None:
                continue
            if not matches_all(silence.until, episode.labels):
                continue
            if episode.status == "firing":
                silence.incident.add(episode.fingerprint)
                silence.seen = True
                continue
            silence.incident.discard(episode.fingerprint)
            if not silence.incident:
                if at >= silence.settings.starts_at and silence.seen:
                    silence.resolved_at = at
                    self._wake_all(at)
                elif at < silence.settings.starts_at:
                    silence.seen = False  # an incident over before the silence starts is not its incident

    # -- scheduling ------------------------------------------------------------------------------------

    def _tick_at_or_after(self, group: _Group, at: float) -> float:
        interval = self.settings.group_interval
        tick = group.anchor if at <= group.anchor else \
            group.anchor + math.ceil((at - group.anchor) / interval - _EPS) * interval
        if group.last_tick is not None and tick <= group.last_tick:
            tick = group.last_tick + interval
        return tick

    def _wake(self, group: _Group, at: float) -> None:
        group.next_flush = min(group.next_flush, self._tick_at_or_after(group, at))

    def _wake_all(self, at: float) -> None:
        for group in self._groups.values():
            self._wake(group, at)

    def _run(self, until: float, *, inclusive: bool) -> list[Notification]:
        out: list[Notification] = []
        while True:
            due = [g for g in self._groups.values()
                   if g.next_flush < until or (inclusive and g.next_flush == until)]
            if not due:
                return out
            group = min(due, key=lambda g: (g.next_flush, g.key))
            notification = self._flush(group, group.next_flush)
            if notification is not None:
                out.append(notification)

    # -- a group's tick ----------------------------------------------------------------------------

    def _silenced(self, episode: _Episode, at: float) -> bool:
        return any(s.active(at) and matches_all(s.matchers, episode.labels) for s in self._silences.values())

    def _inhibited(self, episode: _Episode) -> bool:
        if self._sources is None:
            self._sources = [{} for _ in self._inhibit]
            for ep in self._episodes.values():
                if ep.status != "firing":
                    continue
                for index, (src, _, equal) in enumerate(self._inhibit):
                    if matches_all(src, ep.labels):
                        values = tuple(ep.labels.get(name, "") for name in equal)
                        self._sources[index].setdefault(values, set()).add(ep.fingerprint)
        for index, (_, target, equal) in enumerate(self._inhibit):
            if matches_all(target, episode.labels):
                values = tuple(episode.labels.get(name, "") for name in equal)
                if self._sources[index].get(values, set()) - {episode.fingerprint}:
                    return True
        return False

    def _flush(self, group: _Group, at: float) -> Notification | None:
        group.last_tick = at
        firing: list[str] = []
        resolved: list[str] = []
        flapping: list[str] = []
        silenced: list[str] = []
        inhibited: list[str] = []
        held: set[str] = set()
        for aid in sorted(group.members):
            episode = self._episodes[aid]
            flap = self._flaps.get(episode.fingerprint)
            if flap is not None:
                self._settle(flap, at)
                if flap.flapping:
                    held.add(aid)
                    if self._current.get(episode.fingerprint) == aid:
                        flapping.append(aid)
                    continue
            if episode.status == "firing":
                if self._silenced(episode, at):
                    silenced.append(aid)
                elif self._inhibited(episode):
                    inhibited.append(aid)
                else:
                    firing.append(aid)
            elif aid in group.announced:
                resolved.append(aid)  # what was announced is always closed, muted or not
        new_firing = [aid for aid in firing if aid not in group.announced]
        flapping_fps = {self._episodes[aid].fingerprint for aid in flapping}
        new_flapping = [aid for aid in flapping if self._episodes[aid].fingerprint not in group.flap_marked]
        repeat = bool(firing) and group.last_sent is not None and at >= group.last_sent + self.settings.repeat_interval
        notification = None
        if new_firing or resolved or new_flapping or repeat:
            fires = bool(firing) or any(self._episodes[a].status == "firing" for a in flapping)
            if group.last_sent is None:
                reason = "first"
            elif not fires and resolved:
                reason = "resolved"
            elif new_firing or resolved or new_flapping:
                reason = "update"
            else:
                reason = "repeat"
            shown = firing + resolved + flapping
            severity = max((self._episodes[a].severity for a in shown),
                           key=lambda s: SEVERITY_RANK.get(s, -1), default=None)
            notification = Notification(
                group.key, dict(group.labels), "firing" if fires else "resolved", reason, at, tuple(firing),
                tuple(resolved), tuple(flapping), tuple(silenced), tuple(inhibited), severity)
            group.last_sent = at
            group.announced = (group.announced | set(firing)) - set(resolved)
            group.flap_marked = flapping_fps
        else:
            group.flap_marked &= flapping_fps
        for aid in sorted(group.members):
            episode = self._episodes[aid]
            if episode.status == "resolved" and aid not in group.announced and aid not in held:
                group.members.discard(aid)
                del self._episodes[aid]
                if self._current.get(episode.fingerprint) == aid:
                    del self._current[episode.fingerprint]
        if not group.members:
            del self._groups[group.key]
            return notification
        group.next_flush = self._next_flush(group, at)
        return notification

    def _next_flush(self, group: _Group, at: float) -> float:
        """The next tick at which something can change without a new record; others wake the group."""
        moments = [s for s in (silence.settings.starts_at for silence in self._silences.values()) if s > at]
        moments += [silence.end for silence in self._silences.values() if at < silence.end < _INF]
        if group.announced and group.last_sent is not None and group.last_sent + self.settings.repeat_interval > at:
            moments.append(group.last_sent + self.settings.repeat_interval)
        for aid in group.members:
            flap = self._flaps.get(self._episodes[aid].fingerprint)
            if flap is not None and flap.flapping:
                moments.append(flap.last_change + self.settings.flapping.settle)
        if not moments:
            return _INF
        return self._tick_at_or_after(group, max(min(moments), at + self.settings.group_interval))

    # -- checkpoints -----------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The policy's state as JSON-able data, for the runtime's checkpoints."""
        def num(value: float | None) -> float | None:
            return None if value is None or math.isinf(value) else value
        return {
            "version": 1, "clock": num(self._clock), "seq": self._seq,
            "episodes": [{"alert_id": e.alert_id, "fingerprint": e.fingerprint, "status": e.status,
                          "labels": e.labels, "group_key": e.group_key, "severity": e.severity}
                         for e in self._episodes.values()],
            "current": dict(self._current),
            "flaps": {fp: {"changes": f.changes, "flapping": f.flapping, "last_change": f.last_change}
                      for fp, f in self._flaps.items()},
            "groups": [{"key": g.key, "labels": g.labels, "anchor": g.anchor, "next_flush": num(g.next_flush),
                        "last_tick": g.last_tick, "last_sent": g.last_sent, "members": sorted(g.members),
                        "announced": sorted(g.announced), "flap_marked": sorted(g.flap_marked)}
                       for g in self._groups.values()],
            "silences": [{"settings": s.settings.model_dump(), "incident": sorted(s.incident), "seen": s.seen,
                          "resolved_at": s.resolved_at} for s in self._silences.values()],
            "configured": {sid: settings.model_dump() for sid, settings in self._configured.items()},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Replace the state with a `snapshot()` (of a policy with the same settings)."""
        if state.get("version") != 1:
            raise ValueError(f"notification policy snapshot version {state.get('version')!r} is not 1")
        clock = state["clock"]
        self._clock = -_INF if clock is None else float(clock)
        self._seq = int(state["seq"])
        self._episodes = {e["alert_id"]: _Episode(e["alert_id"], e["fingerprint"], e["status"], dict(e["labels"]),
                                                  e["group_key"], e["severity"]) for e in state["episodes"]}
        self._current = dict(state["current"])
        self._flaps = {fp: _Flap(list(f["changes"]), bool(f["flapping"]), float(f["last_change"]))
                       for fp, f in state["flaps"].items()}
        self._groups = {}
        for g in state["groups"]:
            next_flush = _INF if g["next_flush"] is None else float(g["next_flush"])
            self._groups[g["key"]] = _Group(g["key"], dict(g["labels"]), float(g["anchor"]), next_flush,
                                            g["last_tick"], g["last_sent"], set(g["members"]),
                                            set(g["announced"]), set(g["flap_marked"]))
        self._silences = {}
        for s in state["silences"]:
            settings = SilenceSettings.model_validate(s["settings"])
            until = parse_matchers(settings.until_resolved) if settings.until_resolved is not None else None
            self._silences[str(settings.id)] = _Silence(settings, parse_matchers(settings.matchers), until,
                                                        set(s["incident"]), bool(s["seen"]), s["resolved_at"])
        # The configuration wins over the snapshot for its own silences: one removed from
        # `notify.silences` since is dropped, a changed or new one is added afresh; one that is
        # unchanged is as the snapshot has it (expired, or over with its incident: gone).
        before = state.get("configured") or {}
        if not isinstance(before, Mapping):  # a snapshot that listed only the ids
            before = {}
        for sid in set(before) - set(self._configured):
            self._silences.pop(sid, None)
        for sid, settings in self._configured.items():
            if sid in before and SilenceSettings.model_validate(before[sid]) == settings:
                continue
            self._silences.pop(sid, None)
            self._add_silence(settings)
        self._sources = None
