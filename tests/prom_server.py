"""Real Prometheus and Alertmanager servers for the metrics and sink tests (Debian's binaries,
which `make test` unpacks into .tools/): Prometheus scrapes given targets and answers PromQL;
Alertmanager takes alerts and notifies a webhook."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def prometheus_binary() -> str:
    """The binary the Makefile provided (IOC_PROMETHEUS_BIN), `prometheus` on PATH, or .tools/."""
    unpacked = Path(__file__).resolve().parent.parent / ".tools" / "prometheus" / "usr" / "bin" / "prometheus"
    path = os.environ.get("IOC_PROMETHEUS_BIN") or shutil.which("prometheus")
    if not path and unpacked.exists():
        path = str(unpacked)
    if not path:
        raise RuntimeError("no Prometheus server: run the tests with `make test` (it provides one)")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _ServerProcess:
    """A server binary on 127.0.0.1 with its log in `workdir`; ready when `/-/ready` answers 200;
    stop() ends it by its PID."""

    name = "server"

    def _launch(self, workdir: Path, args: list[str], port: int | None = None) -> None:
        self.port = port if port is not None else _free_port()
        self.log_path = workdir / f"{self.name}.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready")

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as resp:  # noqa: S310 - our own server on loopback
            return json.load(resp)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()


class PrometheusServer(_ServerProcess):
    """`prometheus` on 127.0.0.1 with a 1 s scrape interval (and `rule_files`, evaluated every 1 s)."""

    name = "prometheus"

    def __init__(self, workdir: Path, targets: list[str], rule_files: Sequence[Path] = ()) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        rules = "".join(f"  - {json.dumps(str(path))}\n" for path in rule_files)
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            + (f"rule_files:\n{rules}" if rules else "")
            + "scrape_configs:\n"
            "  - job_name: ioc\n"
            f"    static_configs: [{{targets: {json.dumps(targets)}}}]\n",
            encoding="utf-8",
        )
        port = _free_port()
        self._launch(workdir, [
            prometheus_binary(),
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ], port)

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - our own server on loopback
            body = json.load(resp)
        if body.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {body}")
        return list(body["data"]["result"])

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def targets_up(self) -> bool:
        return self.value("up") == 1.0


def alertmanager_binary() -> str:
    """The binary the Makefile provided (IOC_ALERTMANAGER_BIN), on PATH, or in .tools/."""
    unpacked = (Path(__file__).resolve().parent.parent / ".tools" / "prometheus-alertmanager" / "usr" / "bin"
                / "prometheus-alertmanager")
    path = (os.environ.get("IOC_ALERTMANAGER_BIN") or shutil.which("prometheus-alertmanager")
            or shutil.which("alertmanager"))
    if not path and unpacked.exists():
        path = str(unpacked)
    if not path:
        raise RuntimeError("no Alertmanager: run the tests with `make test` (it provides one)")
    return path


class AlertmanagerServer(_ServerProcess):
    """`alertmanager` on 127.0.0.1 (no cluster), routing every alert at once to `webhook_url`
    with its resolution (send_resolved); `port` to start it where a worker already sends."""

    name = "alertmanager"

    def __init__(self, workdir: Path, webhook_url: str, port: int | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "alertmanager.yml"
        config.write_text(
            "route: {receiver: hook, group_by: ['...'], group_wait: 0s, group_interval: 1s, repeat_interval: 1h}\n"
            "receivers:\n"
            f"  - name: hook\n    webhook_configs: [{{url: {json.dumps(webhook_url)}, send_resolved: true}}]\n",
            encoding="utf-8",
        )
        port = port if port is not None else _free_port()
        self._launch(workdir, [
            alertmanager_binary(),
            f"--config.file={config}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ], port)

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds now (GET /api/v2/alerts): active, silenced and inhibited."""
        return list(self.get("/api/v2/alerts"))
