"""Settings: file, environment and flags, and the messages for invalid configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from ioc.cli.main import main
from ioc.config import DEFAULT_CONFIG_PATH, ConfigError, load_settings


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ioc.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_loads_with_documented_defaults():
    settings = load_settings(DEFAULT_CONFIG_PATH, env={})
    assert settings.broker.url == ""
    assert settings.topic("alerts") == "ioc.alerts"
    assert settings.metrics.host == "127.0.0.1"
    assert settings.metrics.port == 9108
    assert settings.rules == ["rules"]


def test_environment_overrides_file_and_flags_override_environment(tmp_path):
    path = _write(tmp_path, "metrics: {port: 9200}\ntopics: {prefix: 'a.'}\n")
    settings = load_settings(path, env={"IOC_METRICS_PORT": "9300", "IOC_BROKER": "kafka://k:9092"})
    assert settings.metrics.port == 9300
    assert settings.topics.prefix == "a."
    assert settings.broker.url == "kafka://k:9092"
    flagged = load_settings(path, env={"IOC_METRICS_PORT": "9300"}, overrides={"metrics.port": 9400})
    assert flagged.metrics.port == 9400


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics: {prot: 9108}\n", "metrics.prot: unknown setting"),
        ("metrics: {port: 99999}\n", "metrics.port: Input should be less than or equal to 65535 (got 99999)"),
        ("metrics: {port: many}\n", "metrics.port: Input should be a valid integer"),
        ("broker: {url: 'localhost:9092'}\n",
         "broker.url: 'localhost:9092' is not a broker URL (e.g. kafka://host:9092, or empty for embedded)"),
        ("topics: {retention: 'a week'}\n", "topics.retention: 'a week' is not a duration"),
        ("log_level: LOUD\n", "log_level: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
        ("- just\n- a list\n", "the top level must be a mapping of settings"),
        ("metrics: {port: [\n", "not valid YAML"),
    ],
)
def test_invalid_config_names_file_field_and_problem(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    message = str(caught.value)
    assert message.startswith(f"{path}")
    assert expected in message


def test_missing_config_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.yaml", env={})


def test_cli_reports_invalid_config_in_one_line_and_exits_non_zero(tmp_path, capsys):
    path = _write(tmp_path, "metrics: {prot: 9108}\n")
    code = main(["worker", "--config", str(path)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"ioc: error: {path}: metrics.prot: unknown setting" in err
    assert "Traceback" not in err


def test_tls_and_sasl_settings_become_client_options(tmp_path):
    from ioc.kafka.clients import client_options

    plain = load_settings(_write(tmp_path, "broker: {url: 'kafka://k:9092'}\n"), env={})
    assert client_options(plain) == {}
    sasl = load_settings(
        _write(tmp_path, "broker: {url: 'kafka://k:9093', ssl_cafile: /etc/ca.pem, sasl_mechanism: SCRAM-SHA-512,"
                         " sasl_username: ioc, sasl_password: s3cret}\n"),
        env={},
    )
    options = client_options(sasl)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("ioc", "s3cret")
    assert options["ssl_cafile"] == "/etc/ca.pem"


def test_an_invalid_environment_value_is_blamed_on_the_variable(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(_write(tmp_path, "metrics: {port: 9108}\n"), env={"IOC_PARTITIONS": "abc"})
    assert str(caught.value).startswith("$IOC_PARTITIONS: topics.partitions: Input should be a valid integer")


def test_the_engine_library_never_imports_faust():
    """ioc/ is the pure engine: Faust stays in streams/ (the CLI loads it only to run a worker)."""
    import ast as python_ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for path in root.glob("ioc/**/*.py"):
        for node in python_ast.walk(python_ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, python_ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, python_ast.ImportFrom) and node.col_offset == 0:
                names = [node.module or ""]
            if any(name.split(".")[0] in ("faust", "mode", "streams") for name in names):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []


def test_an_accepted_event_must_fit_in_a_record():
    assert load_settings(DEFAULT_CONFIG_PATH).limits.event_bytes <= load_settings().limits.record_bytes - 65_536
    with pytest.raises(ConfigError) as info:
        load_settings(DEFAULT_CONFIG_PATH, overrides={"limits.event_bytes": 990_000})
    assert str(info.value) == (f"{DEFAULT_CONFIG_PATH}: limits: event_bytes (990000) must be at most record_bytes - "
                               "65536 (934464): an accepted event must fit in a frame")


def test_a_missing_ioc_config_file_is_an_error_naming_the_variable(tmp_path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"IOC_CONFIG": str(tmp_path / "nope.yaml")})
    assert str(info.value) == f"$IOC_CONFIG: {tmp_path / 'nope.yaml'}: file not found"
    # Without IOC_CONFIG, a missing default file means the defaults.
    assert load_settings(env={}).topics.partitions >= 1


def test_errors_name_the_flag_or_variable_the_value_came_from(capsys) -> None:
    from ioc.cli.main import main

    assert main(["worker", "--broker", "notaurl", "--duration", "1"]) != 0
    assert "ioc: error: --broker: broker.url: 'notaurl' is not a broker URL" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"^\$IOC_BROKER: broker.url: "):
        load_settings(env={"IOC_BROKER": "notaurl"}, overrides={"broker.url": None}, flags={"broker.url": "--broker"})
