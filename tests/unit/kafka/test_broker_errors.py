"""Clear, one-sentence errors when the broker cannot be started or reached."""

from __future__ import annotations

import socket
import time

import pytest

from ioc.cli.main import main
from ioc.kafka.broker import EmbeddedBroker, wait_until_ready
from ioc.kafka.exceptions import BrokerError
from ioc.runtime.runner import MetricsError, MetricsServer


@pytest.fixture
def busy_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def test_embedded_broker_on_a_busy_port_says_so(busy_port):
    broker = EmbeddedBroker(busy_port)
    with pytest.raises(BrokerError) as caught:
        broker.start()
    assert str(caught.value) == (
        f"port {busy_port} on 127.0.0.1 is already in use: stop what uses it or set "
        "broker.embedded_port to 0 for a free port"
    )
    assert broker.process is None


def test_missing_broker_binary_says_what_to_do(monkeypatch):
    monkeypatch.setenv("CALF_TANSU_BIN", "/nonexistent/tansu")
    with pytest.raises(BrokerError) as caught:
        EmbeddedBroker().start()
    message = str(caught.value)
    assert message.startswith("the embedded broker binary was not found:")
    assert "/nonexistent/tansu" in message


def test_unreachable_broker_fails_within_its_timeout():
    port = _closed_port()
    started = time.monotonic()
    with pytest.raises(BrokerError) as caught:
        wait_until_ready(f"kafka://127.0.0.1:{port}", timeout_s=1.5)
    assert str(caught.value).startswith(f"the broker at kafka://127.0.0.1:{port} did not answer within 1.5 s")
    assert time.monotonic() - started < 15


def test_cli_with_unreachable_broker_exits_with_one_clear_line(capsys, monkeypatch):
    port = _closed_port()
    monkeypatch.setenv("IOC_BROKER_TIMEOUT", "1")
    code = main(["worker", "--broker", f"kafka://127.0.0.1:{port}", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"ioc: error: the broker at kafka://127.0.0.1:{port} did not answer within 1 s" in err
    assert "Traceback" not in err


def test_cli_demo_with_busy_embedded_port_exits_with_one_clear_line(tmp_path, capsys, busy_port):
    config = tmp_path / "ioc.yaml"
    config.write_text(f"broker: {{embedded_port: {busy_port}}}\n", encoding="utf-8")
    code = main(["demo", "--config", str(config), "--duration", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"ioc: error: port {busy_port} on 127.0.0.1 is already in use" in err


def test_busy_metrics_port_is_reported(busy_port):
    from prometheus_client import CollectorRegistry

    with pytest.raises(MetricsError) as caught:
        MetricsServer.start(CollectorRegistry(), "127.0.0.1", busy_port)
    assert str(caught.value).startswith(f"metrics port {busy_port} on 127.0.0.1 is already in use")
