"""Settings of the engine: `config/ioc.yaml`, overridden by `IOC_*` environment variables.

>>> settings = load_settings("config/ioc.yaml", env={"IOC_METRICS_PORT": "9200"})
>>> settings.metrics.port
9200

Precedence: built-in defaults < the YAML file < environment variables < command-line flags
(the CLI passes flags as `overrides`). Errors name the file, the field and what is allowed.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ioc.events.declared import DeclaredField, EventSchemas, build_schemas
from ioc.exceptions import IocError
from ioc.sla.policy import NotifySettings
from ioc.sla.settings import SlaSettings
from ioc.timeutil import parse_duration

__all__ = [
    "ConfigError",
    "Settings",
    "BrokerSettings",
    "TopicSettings",
    "MetricsSettings",
    "AlertmanagerSettings",
    "ConsoleSettings",
    "WorkerSettings",
    "LimitSettings",
    "load_settings",
    "configured_schemas",
    "DEFAULT_CONFIG_PATH",
    "REPO_ROOT",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "config" / "ioc.yaml"


class ConfigError(IocError):
    """The configuration is invalid; the message says where and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BrokerSettings(_Strict):
    """Where Kafka is. An empty `url` starts the embedded Tansu broker."""

    url: str = ""
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    embedded_port: int = Field(default=0, ge=0, le=65535)
    startup_timeout_s: float = Field(default=15.0, gt=0)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("kafka://", "tcp://")):
            raise ValueError(f"{value!r} is not a broker URL (e.g. kafka://host:9092, or empty for embedded)")
        return value


class TopicSettings(_Strict):
    prefix: str = Field(default="ioc.", pattern=r"^[A-Za-z0-9._-]*$")
    partitions: int = Field(default=4, ge=1, le=1024)
    replication: int = Field(default=1, ge=1, le=16)
    retention: str = "7d"

    @field_validator("retention")
    @classmethod
    def _check_retention(cls, value: str) -> str:
        parse_duration(value)
        return value


class MetricsSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535)


class AlertmanagerSettings(_Strict):
    """The Alertmanager sink (ioc/alertmanager, docs/alertmanager.md): off while `url` is empty."""

    url: str = Field(default="", pattern=r"^(https?://\S+)?$")  # e.g. http://alertmanager:9093
    resend_s: float = Field(default=60.0, gt=0)     # firing alerts are sent again this often
    timeout_s: float = Field(default=10.0, gt=0)    # one POST
    retry_max_s: float = Field(default=30.0, gt=0)  # longest wait between tries while it is away
    runbook_url: str = ""    # annotation runbook_url, e.g. https://wiki/runbooks/{rule_id}
    generator_url: str = ""  # generatorURL, e.g. http://grafana:3000/d/ioc-overview?var-rule={rule_id}


class ConsoleSettings(_Strict):
    """The operator console (ioc/console, README "Operator console"), served on `worker.web_port`."""

    enabled: bool = True  # with a web port: the page and /api/* are served
    # Write actions (ack, assign, comment, resolve) need `Authorization: Bearer <token>`; empty: refused.
    token: str = Field(default="", max_length=500)


class WorkerSettings(_Strict):
    app_id: str = Field(default="ioc-engine", pattern=r"^[A-Za-z0-9._-]+$")
    web_port: int = Field(default=0, ge=0, le=65535)  # 0: Faust web server off
    session_timeout_s: float = Field(default=6.0, gt=0)
    allowed_lateness: str = "0s"
    max_batch: int = Field(default=1000, ge=1)
    # A partition that delivered nothing for this long (wall time) while its consumer has read all
    # there is, is idle: it stops holding back the key spaces it feeds, and (idle_clock) its
    # watermark follows the wall clock, so absence rules fire when all sensors fall silent.
    # 0: partitions are never idle.
    idle_advance_s: float = Field(default=5.0, ge=0)
    idle_clock: bool = True
    fetch_wait_ms: int = Field(default=10, ge=0, le=60_000)  # how long a fetch waits for records
    checkpoint_s: float = Field(default=10.0, gt=0)  # how often each shard's state goes to ioc.state
    rules_poll_s: float = Field(default=2.0, ge=0)  # rule/reference file checks; 0 = SIGHUP only
    # Events stamped further ahead of the worker's clock go to the dead-letter topic (a sensor
    # with a wrong clock must not push its partition's watermark into the future). 0 = no limit.
    max_future_s: float = Field(default=3600.0, ge=0)

    @field_validator("allowed_lateness")
    @classmethod
    def _check_lateness(cls, value: str) -> str:
        if value.strip() not in ("0", "0s"):
            parse_duration(value)
        return value


FRAME_HEADROOM = 65_536  # a frame's envelope and a decoded event's added fields


class LimitSettings(_Strict):
    """Bounds on what a sender or a rule file can make a worker do (README, "Limits")."""

    # Inputs: a raw message larger than this is dead-lettered (reason `too_large`) with its size
    # and the first `dead_letter_value_bytes` of its value; it is never decoded.
    event_bytes: int = Field(default=900_000, ge=1024)
    dead_letter_value_bytes: int = Field(default=16_384, ge=0)
    # Outputs: the largest record the worker publishes (the producer's max_request_size is a
    # little above it). Alert texts are cut to `alert_text_chars` characters.
    record_bytes: int = Field(default=1_000_000, ge=4096)
    alert_text_chars: int = Field(default=2000, ge=80)
    # Rule and reference files.
    rule_file_bytes: int = Field(default=1_048_576, ge=1024)
    yaml_nodes: int = Field(default=100_000, ge=100)  # per file, aliases counted each time used
    template_width: int = Field(default=200, ge=1)  # widest format width/precision in a template
    rule_load_s: float = Field(default=10.0, gt=0)  # a (re)load taking longer is refused
    # State: keys one rule may hold per shard (new keys beyond it are not tracked, counted in
    # ioc_rule_keys_refused_total), and how long a key may stay idle before its state is dropped
    # (0: only the rule's own windows decide). A rule may set its own `max_keys` / `key_ttl`.
    keys_per_rule: int = Field(default=100_000, ge=1)
    key_idle_s: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _an_accepted_event_fits_in_a_record(self) -> LimitSettings:
        # An accepted event travels on in a frame to its key spaces (ioc.rekey.*): with its
        # envelope it must fit in a record, or the rules of those spaces would never see it.
        if self.event_bytes > self.record_bytes - FRAME_HEADROOM:
            raise ValueError(f"event_bytes ({self.event_bytes}) must be at most record_bytes - {FRAME_HEADROOM} "
                             f"({self.record_bytes - FRAME_HEADROOM}): an accepted event must fit in a frame")
        return self


class Settings(_Strict):
    """All settings; build with `load_settings`."""

    broker: BrokerSettings = BrokerSettings()
    topics: TopicSettings = TopicSettings()
    metrics: MetricsSettings = MetricsSettings()
    worker: WorkerSettings = WorkerSettings()
    limits: LimitSettings = LimitSettings()
    sla: SlaSettings = SlaSettings()
    notify: NotifySettings = NotifySettings()
    alertmanager: AlertmanagerSettings = AlertmanagerSettings()
    console: ConsoleSettings = ConsoleSettings()
    rules: list[str] = ["rules"]
    reference: str = "config/reference"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Fields a deployment's sensors send beyond the built-in schemas, per stream (ioc.events.declared):
    # checked by the decoder and usable in rules like built-in fields.
    fields: dict[str, tuple[DeclaredField, ...]] = {}

    @field_validator("fields")
    @classmethod
    def _check_fields(cls, value: dict[str, tuple[DeclaredField, ...]]) -> dict[str, tuple[DeclaredField, ...]]:
        build_schemas(value)  # an unknown stream, a field declared twice or a built-in name: ValueError
        return value

    def schemas(self) -> EventSchemas:
        """The streams' event models with the declared `fields` (built once per distinct declaration)."""
        return _schemas(tuple(sorted((stream, tuple(fields)) for stream, fields in self.fields.items())))

    def topic(self, name: str) -> str:
        """Full topic name: `settings.topic("alerts") -> "ioc.alerts"`."""
        return f"{self.topics.prefix}{name}"

    def resolve(self, path: str) -> Path:
        """A configured path, relative paths taken from the repository root."""
        candidate = Path(path)
        return candidate if candidate.is_absolute() else REPO_ROOT / candidate


def configured_schemas() -> EventSchemas:
    """The event schemas of the configuration (`load_settings()`: $IOC_CONFIG or config/ioc.yaml),
    what rules are checked against when no `schemas` is passed (ioc.rules.loader.load_rules)."""
    return load_settings().schemas()


@functools.lru_cache(maxsize=8)
def _schemas(declared: tuple[tuple[str, tuple[DeclaredField, ...]], ...]) -> EventSchemas:
    return build_schemas(dict(declared))


# Environment variable -> dotted settings path.
ENV_VARS: dict[str, str] = {
    "IOC_BROKER": "broker.url",
    "IOC_BROKER_TIMEOUT": "broker.startup_timeout_s",
    "IOC_TOPIC_PREFIX": "topics.prefix",
    "IOC_PARTITIONS": "topics.partitions",
    "IOC_METRICS_HOST": "metrics.host",
    "IOC_METRICS_PORT": "metrics.port",
    "IOC_WEB_PORT": "worker.web_port",
    "IOC_APP_ID": "worker.app_id",
    "IOC_ALERTMANAGER_URL": "alertmanager.url",
    "IOC_CONSOLE_TOKEN": "console.token",
    "IOC_RULES": "rules",
    "IOC_REFERENCE": "reference",
    "IOC_LOG_LEVEL": "log_level",
    "IOC_SSL_CAFILE": "broker.ssl_cafile",
    "IOC_SASL_MECHANISM": "broker.sasl_mechanism",
    "IOC_SASL_USERNAME": "broker.sasl_username",
    "IOC_SASL_PASSWORD": "broker.sasl_password",
}


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[leaf] = value


def load_settings(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
) -> Settings:
    """Read settings from `path` (default `config/ioc.yaml` when it exists), env and overrides.

    Raises ConfigError with one line per problem: `source: field: problem`, the source being
    where the value came from: the file, `$IOC_...`, or the command-line flag `flags` names for
    an override (`{"broker.url": "--broker"}`).
    """
    env = os.environ if env is None else env
    config_path = Path(path) if path is not None else Path(env.get("IOC_CONFIG") or DEFAULT_CONFIG_PATH)
    named = "$IOC_CONFIG: " if path is None and env.get("IOC_CONFIG") else ""
    data: dict[str, Any] = {}
    if path is not None or named or config_path.exists():
        try:
            loaded = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{named}{config_path}: file not found") from None
        except OSError as exc:  # a folder, no permission
            raise ConfigError(f"{named}{config_path}: cannot be read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{config_path}:{mark.line + 1}" if mark else str(config_path)
            raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{config_path}: the top level must be a mapping of settings")
        data = loaded
    from_env: dict[str, str] = {}
    for var, dotted in ENV_VARS.items():
        if env.get(var):
            from_env[dotted] = var
            value: Any = env[var]
            if dotted == "rules":
                value = [part for part in value.split(os.pathsep) if part]
            _set_dotted(data, dotted, value)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(data, dotted, value)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "(top level)"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown setting"
            bad = error.get("input")
            # A check across fields (a model validator) has the whole section as its input.
            whole = isinstance(bad, dict) or error["type"] == "extra_forbidden"
            shown = f" (got {bad!r})" if bad is not None and not whole else ""
            given = {name for name, value in (overrides or {}).items() if value is not None}
            if field in given:
                source = (flags or {}).get(field, str(config_path))
            elif field in from_env:
                source = f"${from_env[field]}"
            else:
                source = str(config_path)
            lines.append(f"{source}: {field}: {message}{shown}")
        raise ConfigError("\n".join(lines)) from None
