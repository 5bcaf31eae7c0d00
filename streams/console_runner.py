"""The worker's operator console: a read model of the topics, served on the worker's web port.

A service of the Faust app (started when `worker.web_port` is set and `console.enabled`): one
aiokafka consumer without a group, assigned every partition of `ioc.alerts`, `ioc.alert-state`,
`ioc.sla` and `ioc.raw.vessel`, read from the beginning into an `ioc.console.ConsoleStore`; each
batch's changed alerts are pushed to the open pages (server-sent events). Every worker runs its
own (a read model needs no owner: the page of any worker shows all alerts). Actions from the page
are published on `ioc.alert-actions` (keyed by fingerprint, acks=all) for the SLA tracker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import mode
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ioc.config import Settings
from ioc.console.server import Console
from ioc.kafka.clients import aiokafka_options, bootstrap_servers
from ioc.kafka.topics import alert_state_topic, raw_topic
from streams import clients as kafka_clients

__all__ = ["ConsoleRunner"]

log = logging.getLogger(__name__)

FETCH_MS = 100
PUBLISH_S = 10.0


class ConsoleRunner(mode.Service):
    """Feeds the console's store from the topics; publishes the page's actions."""

    def __init__(self, settings: Settings, broker_url: str, console: Console, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.broker_url = broker_url
        self.console = console
        self.topics = {settings.topic("alerts"): "alert", alert_state_topic(settings): "state",
                       settings.topic("sla"): "sla", raw_topic(settings, "vessel"): "vessel"}
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        settings, app_id = self.settings, self.settings.worker.app_id
        self.producer = kafka_clients.producer(settings, self.broker_url, f"{app_id}-console-producer")
        await self.producer.start()
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers(self.broker_url), group_id=None,
                                         enable_auto_commit=False, auto_offset_reset="earliest",
                                         fetch_max_wait_ms=FETCH_MS, client_id=f"{app_id}-console-consumer",
                                         **aiokafka_options(settings))
        await self.consumer.start()
        await self.consumer.topics()  # metadata of every topic
        partitions = [TopicPartition(topic, p) for topic in self.topics
                      for p in sorted(self.consumer.partitions_for_topic(topic) or ())]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)
        self.console.publish = self.publish
        self._task = asyncio.ensure_future(self._run())

    async def on_stop(self) -> None:
        self.console.publish = None
        self.console.hub.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._task, timeout=2.0)
        for client in (self.consumer, self.producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.stop(), timeout=3.0)

    async def publish(self, key: bytes, value: bytes) -> tuple[int, int]:
        """One action on `ioc.alert-actions`, acknowledged by the broker: (partition, offset)."""
        producer = self.producer
        if producer is None:
            raise RuntimeError("the console is not started")
        sent = await asyncio.wait_for(producer.send_and_wait(self.settings.topic("alert-actions"), value, key=key),
                                      PUBLISH_S)
        return sent.partition, sent.offset

    async def _run(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=FETCH_MS, max_records=5000)
                self.handle(batches)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the console goes on; the worker's alerts do not depend on it
                log.exception("the console's reader failed; reading on in 1 s")
                await asyncio.sleep(1.0)

    def handle(self, batches: Any) -> None:
        store, changed = self.console.store, []
        for tp, messages in batches.items():
            role = self.topics.get(tp.topic)
            for message in messages:
                try:
                    record = orjson.loads(message.value) if message.value is not None else None
                except orjson.JSONDecodeError:
                    continue  # not ours to report: the pipeline dead-letters bad raw events
                if role == "alert":
                    changed.extend(store.on_alert(record))
                elif role == "state":
                    changed.extend(store.on_state(record))
                elif role == "sla":
                    store.on_sla(record)
                elif role == "vessel":
                    store.on_vessel(record)
        if changed:
            self.console.changed(changed)
