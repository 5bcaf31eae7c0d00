"""The Faust app: worker lifecycle, timers, web server and signals around the shard runner.

>>> ioc_app = build_app(settings, "kafka://127.0.0.1:9092", parts)   # doctest: +SKIP
>>> ioc_app.run()           # blocks until SIGINT/SIGTERM or `stop()`

Records reach the engine as whole fetched batches through `streams.runner.ShardRunner`, a
service of this app with its own consumer in the worker's group (Faust's per-event
Stream/Event path and its fixed 1.5 s fetch wait are not used: docs/architecture.md has
the measurements). The alert tracker runs beside it as `streams.sla_runner.SlaRunner`, a
service with a consumer group of its own over the alerts and actions, and the notification
policy and SLA figures as `streams.cluster_runner.ClusterRunner`, owned by one worker of all
(a group of their own, every partition to one member). With `alertmanager.url` set,
`streams.alertmanager_runner.AlertmanagerRunner` posts alert transitions to Alertmanager
(a group of its own, each worker its partitions). With a web port, the operator console
(`ioc.console`, fed by `streams.console_runner.ConsoleRunner`) is served on it. Faust runs everything
around them: start and stop, the rule-file timer, SIGHUP, the optional web server.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import faust
from faust.app.base import BootStrategy

from ioc.alertmanager.metrics import AlertmanagerMetrics
from ioc.config import REPO_ROOT, Settings
from ioc.console import Console, ConsoleError, ConsoleStore, add_routes
from ioc.console.mapdata import base_layers, reference_points
from ioc.runtime.reload import RuleReloader
from ioc.runtime.runner import WorkerParts
from ioc.sla.sla_metrics import SlaMetrics
from streams.alertmanager_runner import AlertmanagerRunner
from streams.cluster_runner import ClusterRunner
from streams.console_runner import ConsoleRunner
from streams.runner import AlertListener, ShardRunner
from streams.sla_runner import SlaRunner

__all__ = ["IocApp", "build_app"]

log = logging.getLogger(__name__)

class _Boot(BootStrategy):
    # The shard runner owns the consumer and producer: Faust's own would join a group of their own.
    enable_kafka_consumer = False
    enable_kafka_producer = False


class _App(faust.App):
    BootStrategy = _Boot


@dataclass
class IocApp:
    """The Faust app with its shard runner; `run()` blocks as a worker."""

    app: faust.App
    runner: ShardRunner
    settings: Settings
    sla: SlaRunner | None = None
    cluster: ClusterRunner | None = None
    alertmanager: AlertmanagerRunner | None = None
    worker: faust.Worker | None = None

    @property
    def listeners(self) -> list[AlertListener]:
        return self.runner.listeners

    def run(self, *, loglevel: str = "WARNING", stop_after: float | None = None) -> None:
        """Run a worker until SIGINT/SIGTERM, or for `stop_after` seconds."""
        worker = faust.Worker(self.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
        # No terminal spinner: it sets the root logger to DEBUG to spin on every record (every
        # aiokafka debug call then builds a LogRecord: 4 % of a busy worker), and writes cursor
        # escape codes into piped output.
        worker.spinner = None
        self.worker = worker
        if stop_after is not None:

            @self.app.task
            async def _stop_later() -> None:
                await asyncio.sleep(stop_after)
                log.info("duration of %.0f s reached: stopping", stop_after)
                self.stop()

        try:
            worker.execute_from_commandline()
        except SystemExit as exc:
            if exc.code not in (0, None):
                raise

    def stop(self) -> None:
        """Ask the running worker to shut down as on SIGTERM (from the worker's loop)."""
        if self.worker is not None:
            self.worker._schedule_shutdown(signal.SIGTERM)


def build_app(
    settings: Settings, broker_url: str, parts: WorkerParts, reloader: RuleReloader | None = None,
) -> IocApp:
    """A Faust app around a shard runner on `broker_url`."""
    web_port = settings.worker.web_port
    app = _App(
        settings.worker.app_id,
        broker=broker_url,
        store="memory://",
        web_enabled=bool(web_port),
        web_bind="127.0.0.1",
        web_port=web_port or 6066,
        web_host="127.0.0.1",
    )
    runner = ShardRunner(settings, broker_url, parts, reloader=reloader)
    if reloader is not None:
        reloader.apply = runner.apply_rules
    app.add_dependency(runner)  # started and stopped with the app
    sla_metrics = SlaMetrics(parts.registry)
    sla_metrics.expect({rule.spec.labels.get("domain") or stream for rule in parts.ruleset.rules
                        for stream in rule.streams}, len(settings.sla.escalation))
    sla = SlaRunner(settings, broker_url, parts, sla_metrics)  # the alert tracker (docs/sla.md), its own group
    app.add_dependency(sla)
    cluster = ClusterRunner(settings, broker_url, parts, sla_metrics)  # notifications, SLA figures: one owner
    app.add_dependency(cluster)
    sink = None
    if settings.alertmanager.url:  # alert transitions to Alertmanager (docs/alertmanager.md), its own group
        sink = AlertmanagerRunner(settings, broker_url, parts, AlertmanagerMetrics(parts.registry),
                                  rules=lambda: runner.host.plan.ruleset)
        app.add_dependency(sink)
    if web_port and settings.console.enabled:  # the operator console on the web port (README)
        points = reference_points(parts.ruleset.reference)
        try:
            base = base_layers(REPO_ROOT)
        except ConsoleError as exc:  # the map goes without its base layers; the alerts do not wait
            log.warning("console map: %s", exc)
            base = {}
        console = Console(ConsoleStore(clock=settings.sla.clock), settings.console.token,
                          settings.topic("alert-actions"), rules=lambda: runner.host.plan.ruleset,
                          places={point["id"]: point for point in points}, base=base)
        add_routes(app.web.web_app, console)  # type: ignore[attr-defined]  # the aiohttp driver's
        app.add_dependency(ConsoleRunner(settings, broker_url, console))
    ioc_app = IocApp(app, runner, settings, sla, cluster, sink)
    _add_housekeeping(ioc_app)
    return ioc_app


def _add_housekeeping(ioc_app: IocApp) -> None:
    """Timers: rule files are watched; SIGHUP reloads."""
    app, worker_settings, runner = ioc_app.app, ioc_app.settings.worker, ioc_app.runner
    if runner.reloader is None:
        return
    if worker_settings.rules_poll_s > 0:

        @app.timer(interval=worker_settings.rules_poll_s)
        async def watch_rule_files() -> None:
            runner.request_reload("files changed")

    @app.task
    async def reload_on_sighup() -> None:
        loop = asyncio.get_running_loop()
        requests: asyncio.Queue[str] = asyncio.Queue()
        try:
            loop.add_signal_handler(signal.SIGHUP, requests.put_nowait, "SIGHUP")
        except (NotImplementedError, RuntimeError):  # not on this platform / not main thread
            return
        while True:
            runner.request_reload(await requests.get())

