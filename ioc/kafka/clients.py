"""Kafka client options from the settings: bootstrap servers and TLS/SASL.

>>> bootstrap_servers("kafka://h1:9092;h2:9092")
'h1:9092,h2:9092'
"""

from __future__ import annotations

import ssl
from typing import Any

from ioc.config import Settings

__all__ = ["bootstrap_servers", "client_options", "aiokafka_options", "producer_request_bytes", "REQUEST_OVERHEAD"]

# Room for the request, record batch and record framing above a record's key + value, so that a
# record of exactly `limits.record_bytes` passes the producer's own size check.
REQUEST_OVERHEAD = 64 * 1024


def bootstrap_servers(url: str) -> str:
    """`kafka://h1:9092;h2:9092` -> `h1:9092,h2:9092` (what kafka-python and aiokafka take)."""
    hosts = url.split("://", 1)[-1].replace(";", ",").rstrip("/")
    return hosts


def _sasl_and_protocol(settings: Settings, tls: bool) -> dict[str, Any]:
    """The SASL options and security protocol both clients name alike."""
    broker = settings.broker
    if broker.sasl_mechanism:
        return {
            "security_protocol": "SASL_SSL" if tls else "SASL_PLAINTEXT",
            "sasl_mechanism": broker.sasl_mechanism,
            "sasl_plain_username": broker.sasl_username,
            "sasl_plain_password": broker.sasl_password,
        }
    return {"security_protocol": "SSL"} if tls else {}


def client_options(settings: Settings) -> dict[str, Any]:
    """TLS/SASL settings as kafka-python client options (admin, CLI consumers, simulators)."""
    broker = settings.broker
    tls = bool(broker.ssl_cafile or broker.ssl_certfile)
    options: dict[str, Any] = {}
    if tls:
        options.update(ssl_cafile=broker.ssl_cafile, ssl_certfile=broker.ssl_certfile, ssl_keyfile=broker.ssl_keyfile)
    options.update(_sasl_and_protocol(settings, tls))
    return options


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """TLS/SASL settings as aiokafka client options (the worker's consumer and producer)."""
    broker = settings.broker
    tls = bool(broker.ssl_cafile or broker.ssl_certfile)
    options: dict[str, Any] = {}
    if tls:
        context = ssl.create_default_context(cafile=broker.ssl_cafile)
        if broker.ssl_certfile:
            context.load_cert_chain(broker.ssl_certfile, broker.ssl_keyfile)
        options["ssl_context"] = context
    options.update(_sasl_and_protocol(settings, tls))
    return options


def producer_request_bytes(settings: Settings) -> int:
    """The worker producer's `max_request_size`: a little above `limits.record_bytes`, the largest
    record the worker publishes (larger ones are given up before they reach the producer)."""
    return settings.limits.record_bytes + REQUEST_OVERHEAD
