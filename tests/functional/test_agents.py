"""The Faust app around the shard runner, built but not started (no broker), and the
runner's retrying send."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import streams.runner
from ioc.config import load_settings
from ioc.runtime.reload import RuleReloader
from ioc.runtime.runner import build_worker, load_ruleset, watched_files
from streams.app import build_app
from streams.runner import ShardRunner, send_until_acknowledged

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


def test_alerts_are_retried_until_the_broker_takes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[tuple[bytes, bytes]] = []
    failures = [2]  # the broker is away for the first two attempts
    delays: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        delays.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(streams.runner.asyncio, "sleep", sleep)

    async def send() -> Any:
        if failures[0]:
            failures[0] -= 1
            raise ConnectionError("broker unavailable")
        sent.append((b"fp", b"{}"))

    asyncio.run(send_until_acknowledged(send, "alerts", 1))
    assert sent == [(b"fp", b"{}")]
    assert failures == [0]
    assert delays == [0.5, 1.0]  # back-off doubles


def test_a_cancelled_send_is_not_retried() -> None:
    """Shutdown cancels the round in hand: the send gives up instead of retrying for ever."""
    attempts: list[int] = []

    async def send() -> None:
        attempts.append(1)
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(send_until_acknowledged(send, "alerts", 1))
    assert attempts == [1]
