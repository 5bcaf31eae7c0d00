"""The Faust app around the shard runner, built but not started (no broker). The runner's
publishing (retries, records given up) is tested in tests/unit/kafka/test_publish.py."""

from __future__ import annotations

from ioc.config import load_settings
from ioc.runtime.reload import RuleReloader
from ioc.runtime.runner import build_worker, load_ruleset, watched_files
from streams.app import build_app
from streams.runner import ShardRunner

URL = "kafka://127.0.0.1:9092"  # never contacted here


def test_the_app_runs_the_shard_runner_and_never_joins_a_faust_group() -> None:
    settings = load_settings(env={})
    parts = build_worker(settings)
    reloader = RuleReloader(lambda: load_ruleset(settings), lambda ruleset: ([], []), parts.metrics,
                            lambda: watched_files(settings))
    ioc_app = build_app(settings, URL, parts, reloader)
    app, runner = ioc_app.app, ioc_app.runner

    # The runner is started and stopped with the app, and evaluates with the worker's parts.
    assert isinstance(runner, ShardRunner)
    assert runner in app._children  # mode's add_dependency (no public accessor)
    assert runner.host.plan is parts.plan and runner.host.pipeline is parts.pipeline
    assert runner.host.settings == parts.host_settings
    assert runner.consumer is None and runner.producer is None  # made in on_start only
    # Rule reloads swap the host's rules.
    assert reloader.apply == runner.apply_rules

    # Faust starts neither its consumer (it would join a group of its own and take partitions
    # from the runner) nor its producer, conductor or table manager.
    boot = app.boot_strategy
    assert not app.producer_only and not app.client_only  # so the app boots boot.server()
    assert list(boot.kafka_consumer()) == []
    assert list(boot.kafka_producer()) == []
    assert list(boot.kafka_conductor()) == []
    assert list(boot.tables()) == []
    assert [type(service).__name__ for service in boot.server()] == ["AgentManager"]
    assert list(app.agents) == []  # no Faust agents: records reach the engine only through the runner
    assert app.conf.store.scheme == "memory"
    assert app.conf.web_enabled is False  # worker.web_port is 0 by default


def test_escalation_counters_start_at_zero_and_the_alertmanager_sink_runs_only_when_configured() -> None:
    settings = load_settings(env={})
    parts = build_worker(settings)
    ioc_app = build_app(settings, URL, parts)
    assert ioc_app.alertmanager is None
    levels = {(s.labels["domain"], s.labels["level"]): s.value for family in parts.registry.collect()
              for s in family.samples if s.name == "ioc_sla_escalations_total"}
    assert levels[("water", "1")] == levels[("cyber", "3")] == 0.0
    assert {level for _, level in levels} == {"1", "2", "3"}  # the three levels of the shipped chain

    with_sink = load_settings(env={"IOC_ALERTMANAGER_URL": "http://127.0.0.1:9093"})
    sink_app = build_app(with_sink, URL, build_worker(with_sink))
    assert sink_app.alertmanager is not None and sink_app.alertmanager in sink_app.app._children
