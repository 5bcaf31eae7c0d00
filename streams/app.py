"""The Faust app and its agents: one ingest agent per raw topic.

>>> ioc_app = build_app(settings, "kafka://127.0.0.1:9092", pipeline)   # doctest: +SKIP
>>> ioc_app.run()           # blocks until SIGINT/SIGTERM or `stop()`

Each agent takes whole fetched batches (`take_events`), hands them to the engine's
`Pipeline`, publishes dead letters and alerts, waits until the broker has them, and only
then lets Faust acknowledge (commit) the batch: at-least-once, with deterministic alert ids
so that a redelivered alert is a duplicate consumers can drop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from faust.types import EventT

from ioc.alerts import Alert
from ioc.config import Settings
from ioc.events import STREAMS
from ioc.kafka.topics import raw_topic
from ioc.runtime.pipeline import Pipeline, RawRecord
from ioc.runtime.reload import RuleReloader

__all__ = ["IocApp", "build_app", "send_until_acknowledged"]

log = logging.getLogger(__name__)

AlertListener = Callable[[Sequence[Alert]], None]
# How long a batch waits to fill before it is processed anyway (latency bound).
BATCH_WITHIN_S = 0.05


async def send_until_acknowledged(topic: Any, records: Sequence[tuple[bytes | None, bytes]], what: str) -> None:
    """Send records and wait for the broker's acknowledgement, retrying (with back-off) until it
    comes: the batch is acknowledged to Faust only after this returns, so nothing is lost
    while the broker is away. A retry may repeat records; alert ids make that harmless."""
    delay = 0.5
    attempt = 1
    while True:
        try:
            pending = [await topic.send(key=key, value=value) for key, value in records]
            await asyncio.gather(*pending)
            if attempt > 1:
                log.warning("sent %d %s after %d attempts", len(records), what, attempt)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any send failure is retried, never dropped
            log.warning("sending %d %s failed (%s: %s); retrying in %.1f s",
                        len(records), what, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            attempt += 1


def _credentials(settings: Settings) -> Any:
    broker = settings.broker
    context = None
    if broker.ssl_cafile or broker.ssl_certfile:
        context = ssl.create_default_context(cafile=broker.ssl_cafile)
        if broker.ssl_certfile:
            context.load_cert_chain(broker.ssl_certfile, broker.ssl_keyfile)
    if broker.sasl_mechanism:
        if broker.sasl_mechanism == "PLAIN":
            return faust.SASLCredentials(
                username=broker.sasl_username, password=broker.sasl_password, ssl_context=context
            )
        return faust.SASLCredentials(
            username=broker.sasl_username,
            password=broker.sasl_password,
            mechanism=broker.sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


@dataclass
class IocApp:
    """The Faust app with its pipeline; `run()` blocks as a worker."""

    app: faust.App
    pipeline: Pipeline
    settings: Settings
    listeners: list[AlertListener] = field(default_factory=list)
    worker: faust.Worker | None = None
    reloader: RuleReloader | None = None
    alerts_topic: Any = None
    dead_topic: Any = None

    async def publish(self, alerts: Sequence[Alert]) -> None:
        """Send alerts keyed by fingerprint, wait for the broker, then account and notify."""
        if not alerts:
            return
        await send_until_acknowledged(
            self.alerts_topic, [(alert.fingerprint.encode(), alert.to_json()) for alert in alerts], "alerts"
        )
        self.pipeline.published(alerts)
        for listener in self.listeners:
            try:
                listener(alerts)
            except Exception:  # a display problem must never stop the worker
                log.exception("alert listener failed")

    async def reload_rules(self, why: str) -> None:
        if self.reloader is None:
            return
        outcome = self.reloader.reload(why) if why == "SIGHUP" else self.reloader.poll()
        if outcome is not None:
            await self.publish(outcome.resolved)

    def run(self, *, loglevel: str = "WARNING", stop_after: float | None = None) -> None:
        """Run a worker until SIGINT/SIGTERM, or for `stop_after` seconds."""
        worker = faust.Worker(self.app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
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
    settings: Settings, broker_url: str, pipeline: Pipeline, reloader: RuleReloader | None = None
) -> IocApp:
    """A Faust app with one ingest agent per stream, publishing to alerts and dead letters."""
    options: dict[str, Any] = {}
    credentials = _credentials(settings)
    if credentials is not None:
        options["broker_credentials"] = credentials
    web_port = settings.worker.web_port
    app = faust.App(
        settings.worker.app_id,
        broker=broker_url,
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.worker.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.worker.session_timeout_s / 3),
        broker_request_timeout=max(40.0, settings.worker.session_timeout_s * 2),
        web_enabled=bool(web_port),
        web_bind="127.0.0.1",
        web_port=web_port or 6066,
        web_host="127.0.0.1",
        **options,
    )
    alerts_topic = app.topic(settings.topic("alerts"), key_type=bytes, value_type=bytes)
    dead_topic = app.topic(settings.topic("deadletter"), key_type=bytes, value_type=bytes)
    ioc_app = IocApp(app, pipeline, settings, reloader=reloader, alerts_topic=alerts_topic, dead_topic=dead_topic)
    for stream in STREAMS:
        _add_ingest_agent(ioc_app, stream)
    _add_housekeeping(ioc_app)
    return ioc_app


def _add_housekeeping(ioc_app: IocApp) -> None:
    """Timers: idle partitions advance with the wall clock; rule files are watched; SIGHUP reloads."""
    app, worker_settings = ioc_app.app, ioc_app.settings.worker

    if worker_settings.idle_advance_s > 0:

        @app.timer(interval=1.0)
        async def advance_idle_partitions() -> None:
            alerts = ioc_app.pipeline.advance_idle(time.time(), worker_settings.idle_advance_s)
            await ioc_app.publish(alerts)

    if ioc_app.reloader is None:
        return
    if worker_settings.rules_poll_s > 0:

        @app.timer(interval=worker_settings.rules_poll_s)
        async def watch_rule_files() -> None:
            await ioc_app.reload_rules("files changed")

    @app.task
    async def reload_on_sighup() -> None:
        loop = asyncio.get_running_loop()
        requests: asyncio.Queue[str] = asyncio.Queue()
        try:
            loop.add_signal_handler(signal.SIGHUP, requests.put_nowait, "SIGHUP")
        except (NotImplementedError, RuntimeError):  # not on this platform / not main thread
            return
        while True:
            why = await requests.get()
            await ioc_app.reload_rules(why)


def _add_ingest_agent(ioc_app: IocApp, stream: str) -> None:
    app, settings = ioc_app.app, ioc_app.settings
    topic_name = raw_topic(settings, stream)
    source = app.topic(topic_name, key_type=bytes, value_type=bytes)
    max_batch = settings.worker.max_batch

    async def ingest(events_stream: faust.Stream[Any]) -> None:
        async for batch in events_stream.take_events(max_batch, within=BATCH_WITHIN_S):
            await _handle_batch(ioc_app, stream, topic_name, batch)

    ingest.__name__ = f"ingest_{stream}"
    # Faust types agents over StreamT, which lacks take_events; the runtime object is a Stream.
    app.agent(source, name=f"ioc.ingest.{stream}")(cast(Any, ingest))


async def _handle_batch(ioc_app: IocApp, stream: str, topic_name: str, batch: Sequence[EventT]) -> None:
    records = [
        RawRecord(
            topic_name,
            event.message.partition,
            event.message.offset,
            event.message.key,
            event.message.value,
            event.message.timestamp,
        )
        for event in batch
    ]
    result = ioc_app.pipeline.handle(stream, records)
    if result.dead_letters:
        await send_until_acknowledged(
            ioc_app.dead_topic, [(letter.key, letter.value) for letter in result.dead_letters], "dead letters"
        )
    # Commit only what is on the broker: Faust acks the batch when we return.
    await ioc_app.publish(result.alerts)
