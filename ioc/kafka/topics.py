"""The topic catalogue of DESIGN.md, created idempotently at start.

>>> [spec.name for spec in catalogue(settings)][:2]        # doctest: +SKIP
['ioc.raw.camera', 'ioc.raw.reservoir']
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ioc.config import Settings
from ioc.events.schemas import STREAMS
from ioc.kafka.clients import bootstrap_servers
from ioc.kafka.exceptions import BrokerError
from ioc.timeutil import parse_duration

__all__ = ["TopicSpec", "alert_state_topic", "catalogue", "ensure_topics", "raw_topic", "rekey_topic", "state_topic"]


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    cleanup_policy: str = "delete"


def raw_topic(settings: Settings, stream: str) -> str:
    return settings.topic(f"raw.{stream}")


def rekey_topic(settings: Settings, space: str) -> str:
    return settings.topic(f"rekey.{space}")


def state_topic(settings: Settings) -> str:
    return settings.topic("state")


def alert_state_topic(settings: Settings) -> str:
    return settings.topic("alert-state")


def catalogue(settings: Settings, spaces: Iterable[str] = ()) -> list[TopicSpec]:
    """Every topic the engine reads or writes, with explicit configs (Tansu only
    reports configs that were set at creation, and some clients need them). `spaces`: the
    key spaces of the rule set (one internal `rekey.<space>` topic each)."""
    partitions = settings.topics.partitions
    retention_ms = int(parse_duration(settings.topics.retention) * 1000)
    names = [raw_topic(settings, stream) for stream in STREAMS]
    names += [settings.topic(name) for name in ("deadletter", "alerts", "alert-actions", "sla", "notifications")]
    names += [rekey_topic(settings, space) for space in sorted(spaces)]
    specs = [TopicSpec(name, partitions, retention_ms) for name in names]
    # Checkpoints: the latest per shard is what counts. One partition: a restore reads it
    # up to a fence record of its own (see ioc.kafka.state).
    specs.append(TopicSpec(state_topic(settings), 1, retention_ms, "compact"))
    # Alert states of the SLA tracker, keyed by fingerprint: the latest per alert is what counts.
    specs.append(TopicSpec(alert_state_topic(settings), partitions, retention_ms, "compact"))
    # Run-time silences (`ioc silences add|expire`), keyed by silence id: the latest of each counts.
    specs.append(TopicSpec(settings.topic("silences"), 1, retention_ms, "compact"))
    return specs


def ensure_topics(
    url: str, specs: list[TopicSpec], replication: int = 1, options: dict[str, Any] | None = None
) -> list[str]:
    """Create the topics that do not exist yet; returns the names created. `options`: client
    security settings (see ioc.kafka.clients.client_options)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers(url), client_id="ioc-admin", **(options or {}))
    except KafkaError as exc:
        raise BrokerError(f"the broker at {url} is not reachable ({type(exc).__name__})") from None
    try:
        existing = set(admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        created = []
        for spec in missing:
            topic = NewTopic(
                spec.name,
                spec.partitions,
                replication,
                topic_configs={
                    "retention.ms": str(spec.retention_ms),
                    "cleanup.policy": spec.cleanup_policy,
                },
            )
            try:
                admin.create_topics([topic])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another worker created it between list and create
        return created
    finally:
        admin.close()
