"""A partition assignor that gives every partition to one member of the group.

For the worker's services that need the whole of a topic at once (the notification policy groups
alerts across fingerprints, so across partitions; the SLA figures are over all alerts): every
worker runs one, all join one group, one of them owns everything and the others stand by. When
the owner leaves or dies, the group rebalances and the next member takes over from the last
checkpoint. The owner is the member whose id sorts first.

>>> from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata as Meta
>>> class Cluster:
...     def partitions_for_topic(self, topic): return {0, 1, 2}
>>> out = SingleOwnerAssignor.assign(Cluster(), {"b-1": Meta(0, ["t"], b""), "a-2": Meta(0, ["t"], b"")})
>>> out["a-2"].assignment, out["b-1"].assignment
([('t', [0, 1, 2])], [])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment, ConsumerProtocolMemberMetadata

__all__ = ["SingleOwnerAssignor"]


class SingleOwnerAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """Every partition of every subscribed topic to the member whose id sorts first."""

    name = "ioc-single-owner"
    version = 0

    @classmethod
    def assign(cls, cluster: ClusterMetadata,
               members: Mapping[str, ConsumerProtocolMemberMetadata]) -> dict[str, ConsumerProtocolMemberAssignment]:
        owner = min(members) if members else None
        topics: set[str] = set()
        for metadata in members.values():
            topics.update(metadata.subscription)
        owned: list[tuple[str, list[int]]] = []
        for topic in sorted(topics):
            partitions = cluster.partitions_for_topic(topic)
            if partitions:
                owned.append((topic, sorted(partitions)))
        return {member: ConsumerProtocolMemberAssignment(cls.version, owned if member == owner else [], b"")
                for member in members}

    @classmethod
    def metadata(cls, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        return ConsumerProtocolMemberMetadata(cls.version, list(topics), b"")

    @classmethod
    def on_assignment(cls, assignment: ConsumerProtocolMemberAssignment) -> None:
        pass
