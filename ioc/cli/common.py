"""Shared pieces of the CLI: settings from flags, error printing, severity colours."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from rich.console import Console

from ioc.config import Settings, load_settings

__all__ = ["add_common", "settings_from", "fail", "console", "err_console", "SEVERITY_STYLES", "setup_logging"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

SEVERITY_STYLES = {
    "info": "cyan",
    "warning": "yellow",
    "critical": "bold red",
    "emergency": "bold white on red",
}


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="settings file (default: config/ioc.yaml, or $IOC_CONFIG)")
    parser.add_argument("--broker", help="Kafka URL, e.g. kafka://host:9092 (default: $IOC_BROKER, else embedded)")


# The command-line flags behind settings, named in errors (`--broker: broker.url: ...`).
FLAG_NAMES = {"broker.url": "--broker", "metrics.port": "--metrics-port", "worker.web_port": "--web-port"}


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    values = {"broker.url": getattr(args, "broker", None), **overrides}
    return load_settings(getattr(args, "config", None), overrides=values, flags=FLAG_NAMES)


def fail(message: str, code: int = 1) -> int:
    err_console.print(f"[bold red]ioc: error:[/] {message}", markup=True, highlight=False, soft_wrap=True)
    return code


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def publish_one(settings: Settings, topic: str, key: bytes, value: bytes, client_id: str) -> tuple[int, int] | str:
    """Publish one record (acks=all) to `settings.broker.url`; its (partition, offset), or what
    went wrong as a sentence for `fail`."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from ioc.kafka.clients import bootstrap_servers, client_options

    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap_servers(settings.broker.url), acks="all",
                                 client_id=client_id, **client_options(settings))
    except KafkaError as exc:
        return f"the broker at {settings.broker.url} is not reachable ({type(exc).__name__})"
    try:
        sent = producer.send(topic, key=key, value=value).get(timeout=15)
    except KafkaError as exc:
        return f"nothing was published to {topic} ({type(exc).__name__}: {exc})"
    finally:
        producer.close(timeout=5)
    return int(sent.partition), int(sent.offset)
