"""Where each rule runs: in the shards of its raw topic, or in a re-keyed key space.

A raw topic is keyed by `source_id`, so a rule whose key holds `source_id` (and that reads
one stream) sees every event of a key in one partition: it runs in that partition's shard.
Any other rule (keyed by `src_ip`, by `lang`, `by: null`, a sequence across streams) runs in
a *key space*: the raw shards hand the events that may matter to it on to an internal topic
`ioc.rekey.<space>`, partitioned by the space's key, so that each key has one owner.

>>> plan = plan_rules(ruleset)                                        # doctest: +SKIP
>>> sorted(plan.spaces)
['all', 'cyber.dst_ip', 'cyber.src_ip', 'cyber.user', 'press.lang']
>>> [rule.id for rule in plan.local["reservoir"].rules][:1]
['reservoir.level.near_nwl']

Spaces: a one-stream rule joins an existing space of its stream partitioned by a subset of
its key fields (`[src_ip, dst_ip]` runs in `cyber.src_ip`: one owner per `src_ip` is one
owner per pair), else it makes its own; rules with no key at all share the space `all`
(one partition's worth of work); cross-stream rules share a space with the same join
fields per stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ioc.engine import Export
from ioc.events import STREAMS
from ioc.rules.keys import route_fields
from ioc.rules.loader import CompiledRule, RuleSet

__all__ = ["TOPIC_KEY", "Space", "Plan", "plan_rules"]

# The field raw topics are keyed (and partitioned) by.
TOPIC_KEY = "source_id"
GLOBAL_SPACE = "all"

Test = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Space:
    """A key space: the rules it runs and, per stream, the fields its partitions are keyed by."""

    name: str
    fields: Mapping[str, tuple[str, ...]]
    rules: tuple[CompiledRule, ...]

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(stream for stream in STREAMS if stream in self.fields)

    def layout(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """What decides the space's partitioning (equal layouts: the same topic stays valid)."""
        return tuple((stream, self.fields[stream]) for stream in self.streams)


@dataclass(frozen=True)
class Plan:
    """A rule set split into raw-shard rules per stream and key spaces."""

    ruleset: RuleSet
    local: dict[str, RuleSet]
    spaces: dict[str, Space]
    space_rules: dict[str, RuleSet]
    exports: dict[str, tuple[Export, ...]] = field(default_factory=dict)

    def layout(self) -> dict[str, tuple[tuple[str, tuple[str, ...]], ...]]:
        return {name: space.layout() for name, space in sorted(self.spaces.items())}

    def sources(self, space: str) -> tuple[str, ...]:
        """The streams whose raw shards feed `space`."""
        return self.spaces[space].streams


def is_local(rule: CompiledRule) -> bool:
    """Whether a rule runs in the shards of its raw topic (its key holds the topic key)."""
    streams = rule.streams
    return len(streams) == 1 and TOPIC_KEY in rule.kind.key_fields(streams[0])


def plan_rules(ruleset: RuleSet, only: frozenset[str] | None = None) -> Plan:
    """Split `ruleset` (see the module docstring). `only`: keep just the raw-shard rules of these
    ids and the key spaces that hold one of them, whole and as the whole rule set lays them out
    (what `ioc backtest --sweep` replays). A raw shard's rules do not change one another's
    results; the rules of one key space do (the events handed on to it move its watermark)."""
    local = [rule for rule in ruleset.rules if is_local(rule)]
    spaces: dict[str, tuple[dict[str, tuple[str, ...]], list[CompiledRule]]] = {}
    remote = [rule for rule in ruleset.rules if not is_local(rule)]
    # Fewer key fields first, so that a wider key can join a space of a narrower one.
    order = sorted(range(len(remote)), key=lambda i: (_width(remote[i]), i))
    for index in order:
        rule = remote[index]
        fields = {stream: tuple(rule.kind.key_fields(stream)) for stream in rule.streams}
        name = _space_for(fields, spaces)
        if name not in spaces:
            spaces[name] = ({}, [])
        layout, members = spaces[name]
        for stream, names in fields.items():
            layout.setdefault(stream, names if name != GLOBAL_SPACE else ())
        members.append(rule)
    rank = {rule.id: i for i, rule in enumerate(ruleset.rules)}
    if only is not None:
        local = [rule for rule in local if rule.id in only]
        spaces = {name: (layout, members) for name, (layout, members) in spaces.items()
                  if any(rule.id in only for rule in members)}
    built = {
        name: Space(name, dict(layout), tuple(sorted(members, key=lambda r: rank[r.id])))
        for name, (layout, members) in sorted(spaces.items())
    }
    reference, files = ruleset.reference, ruleset.files
    return Plan(
        ruleset=ruleset,
        local={stream: RuleSet.of([r for r in local if stream in r.streams], reference, files) for stream in STREAMS},
        spaces=built,
        space_rules={name: RuleSet.of(space.rules, reference, files) for name, space in built.items()},
        exports={stream: _exports(stream, built) for stream in STREAMS},
    )


def _width(rule: CompiledRule) -> int:
    return max((len(rule.kind.key_fields(stream)) for stream in rule.streams), default=0)


def _space_for(
    fields: dict[str, tuple[str, ...]], spaces: Mapping[str, tuple[dict[str, tuple[str, ...]], list[CompiledRule]]]
) -> str:
    if not any(fields.values()):
        return GLOBAL_SPACE
    if len(fields) == 1:
        ((stream, names),) = fields.items()
        for name, (layout, _) in spaces.items():
            if name != GLOBAL_SPACE and list(layout) == [stream] and set(layout[stream]) <= set(names):
                return name
        return f"{stream}.{'.'.join(names)}"
    joined = "-".join(f"{stream}.{'.'.join(fields[stream]) or 'all'}" for stream in STREAMS if stream in fields)
    return joined


def _exports(stream: str, spaces: Mapping[str, Space]) -> tuple[Export, ...]:
    """What raw shards of `stream` hand on: per space reading it, the events some rule may use."""
    out = []
    for name, space in spaces.items():
        if stream not in space.fields:
            continue
        tests: list[Test] = []
        every = False
        ref: frozenset[str] = frozenset()
        for rule in space.rules:
            if stream not in rule.streams:
                continue
            ref |= rule.kind.ref_keys(stream)
            test = _rule_test(rule, stream)
            if test is None:
                every = True
            else:
                tests.append(test)
        # A key read through reference data goes to the partition of its value (ioc.rules.keys).
        out.append(Export(name, route_fields(space.fields[stream], ref), tuple(tests), every))
    return tuple(out)


def _rule_test(rule: CompiledRule, stream: str) -> Test | None:
    """An event of `stream` can change this rule's state only if this passes (None: any may)."""
    where = rule.where.test if rule.where is not None else None
    relevant = rule.kind.relevant(stream)
    if where is None:
        return relevant
    if relevant is None:
        return where
    return lambda event, ref: where(event, ref) and relevant(event, ref)
