"""Live equals backtest for the rules issue 18 made expressible, on two workers and a real broker.

The sea scenario (3 days of VMS positions: a position jump read through `previous`, two vessels
meeting at sea, a vessel out during the storm ban of `active: storm-bans`) and the reservoir and
press streams of the flood scenario (a spill without its notice, an absence step of `sequence`;
one story re-published by several outlets, `near_duplicate`), on topics of 4 partitions. The
distinct alert transitions on `ioc.alerts` must be exactly the backtest's, and the new rules
must be among them (else the test would prove nothing about them).
"""

from __future__ import annotations

import pytest
from scenario_io import (
    AlertLog,
    create_topics,
    describe,
    expected,
    load_events,
    produce,
    runtime_config,
    scenario_files,
)

pytestmark = pytest.mark.integration

SETTLE_S = 180

CASES = {
    "sea": ("3d", ("vessel",), {"vessel.vms.position_jump", "vessel.behaviour.encounter", "vessel.storm_ban.at_sea"}),
    "flood": ("36h", ("reservoir", "press"), {"reservoir.spill.without_notice", "press.story.syndicated"}),
}


@pytest.mark.parametrize("scenario", sorted(CASES))
def test_two_workers_give_the_backtest_alerts_of_the_new_kinds(
    broker_url, topic_prefix, start_worker, tmp_path, scenario
):
    duration, streams, new_rules = CASES[scenario]
    files = [path for path in scenario_files(duration, scenario) if path.name.split(".")[0] in streams]
    want = expected(files, partitions=4)
    assert new_rules <= {rule_id for _, _, _, rule_id in want}
    create_topics(broker_url, topic_prefix)
    produce(broker_url, topic_prefix, load_events(files))
    config = runtime_config(tmp_path, idle_clock=False, idle_advance_s=2, checkpoint_s=2)
    env = {"IOC_CONFIG": str(config)}
    first, second = start_worker(topic_prefix, env), start_worker(topic_prefix, env)
    log = AlertLog(broker_url, topic_prefix)
    try:
        got = log.settle(set(want), timeout=SETTLE_S)
        assert got == want, describe(set(want), got)
        assert first.alive() and second.alive(), first.output() + second.output()
    finally:
        log.close()
