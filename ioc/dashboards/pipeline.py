"""The IOC pipeline health dashboard (`ioc-pipeline`): workers, rule sets and builds,
throughput and lag, latency, dead letters, freshness, state and checkpoints.

>>> dashboard().uid
'ioc-pipeline'
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard as DashboardBuilder
from grafana_foundation_sdk.builders.dashboard import Row
from grafana_foundation_sdk.models.dashboard import Dashboard

from ioc.dashboards.board import PIPELINE, finish, new
from ioc.dashboards.panels import Query, dashed, stat, table, thresholds, timeseries

__all__ = ["dashboard"]

# The thresholds of the platform's alerting rules (config/prometheus/rules/ioc-alerts.yml).
LAG_LIMIT = 1000
DEAD_LETTER_LIMIT = 0.05
STALE_S = 900
CHECKPOINT_S = 600


def dashboard() -> Dashboard:
    """The pipeline health dashboard, built."""
    board = new(PIPELINE, "Is the stream engine keeping up? Workers, throughput, lag, latency, dead letters, "
                          "freshness, state and checkpoints.")
    board = _workers(board.with_row(Row("Workers")))
    board = _throughput(board.with_row(Row("Throughput and lag")))
    board = _latency(board.with_row(Row("Latency")))
    board = _dead_letters(board.with_row(Row("Dead letters")))
    board = _freshness(board.with_row(Row("Freshness")))
    board = _state(board.with_row(Row("State and checkpoints")))
    return finish(board)


def _workers(board: DashboardBuilder) -> DashboardBuilder:
    up = stat(
        "Workers up",
        "Workers Prometheus scrapes successfully now. Good: as many as you run; a worker down for a "
        "minute fires IocWorkerDown and its partitions move to the others.",
        [Query('sum(up{job="ioc"})', "up")],
        unit="short", width=4, height=6, limits=thresholds("red", (1, "green")),
    )
    rules = stat(
        "Rules loaded, by worker",
        "Rules in the rule set each worker runs. Good: the same number on every worker.",
        [Query("max by (instance) (ioc_rules_loaded)", "{{instance}}")],
        unit="short", width=6, height=6, sparkline=False,
    )
    versions = table(
        "Rule-set version, by worker",
        "The version (a hash) of the rule set each worker runs. Good: one version on every worker; "
        "two versions for more than a moment after a reload mean a worker rejected the new rules.",
        [Query("max by (instance, version) (ioc_rules_info)", table=True)],
        unit="short", width=7, height=6, columns={"instance": "Worker", "version": "Rule-set version"},
    )
    builds = table(
        "Build, by worker",
        "The engine version and Python version each worker runs. Good: the same on every worker.",
        [Query("max by (instance, version, python) (ioc_build_info)", table=True)],
        unit="short", width=7, height=6, columns={"instance": "Worker", "version": "Engine", "python": "Python"},
    )
    return board.with_panel(up).with_panel(rules).with_panel(versions).with_panel(builds)


def _throughput(board: DashboardBuilder) -> DashboardBuilder:
    events = timeseries(
        "Events per second, by stream",
        "Valid sensor events the workers take per second, by stream (5-minute average). A stream "
        "dropping to zero means its sensors or its feed stopped.",
        [Query("sum by (stream) (stream:ioc_events:rate5m)", "{{stream}}")],
        unit="short", width=8, height=8, minimum=0, axis_label="events/s",
    )
    evaluations = timeseries(
        "Rule evaluations per second, by stream",
        "Rule evaluations per second (events times the stream's rules). Rises with traffic and with "
        "the number of rules.",
        [Query("sum by (stream) (rate(ioc_rule_evaluations_total[$__rate_interval]))", "{{stream}}")],
        unit="short", width=8, height=8, minimum=0, axis_label="evaluations/s",
    )
    lag = timeseries(
        "Consumer lag, by stream",
        "Events of each stream waiting on the broker, not read yet by any worker. Good: near 0. "
        "Above the dashed line (1000) and growing, the workers fall behind: add a worker.",
        [Query("sum by (stream) (stream:ioc_consumer_lag:sum)", "{{stream}}")],
        unit="short", width=8, height=8, minimum=0, limits=thresholds("green", (LAG_LIMIT, "orange")),
    )
    return board.with_panel(events).with_panel(evaluations).with_panel(lag)


def _latency(board: DashboardBuilder) -> DashboardBuilder:
    buckets = "rate(ioc_event_to_alert_seconds_bucket[$__rate_interval])"
    to_alert = timeseries(
        "Event to alert latency",
        "From an event's arrival on the broker to its alert being published: median (p50) and p99 "
        "over all workers, and the recorded 5-minute p99. Good: well under a second.",
        [Query(f"histogram_quantile(0.5, sum by (le) ({buckets}))", "p50"),
         Query(f"histogram_quantile(0.99, sum by (le) ({buckets}))", "p99"),
         Query("job:ioc_event_to_alert_seconds:p99_5m", "p99 over 5 min (recorded)")],
        unit="s", width=12, height=8, minimum=0,
    ).override_by_query("C", [dashed()])
    batch = "rate(ioc_processing_seconds_bucket[$__rate_interval])"
    engine = timeseries(
        "Engine time per batch, by stream",
        "Time the rule engine spends on one fetched batch of events, by stream: p50 solid, p99 "
        "dashed. Rising while the lag rises: the rules of that stream are the bottleneck.",
        [Query(f"histogram_quantile(0.5, sum by (stream, le) ({batch}))", "{{stream}} p50"),
         Query(f"histogram_quantile(0.99, sum by (stream, le) ({batch}))", "{{stream}} p99")],
        unit="s", width=12, height=8, minimum=0,
    ).override_by_query("B", [dashed()])
    return board.with_panel(to_alert).with_panel(engine)


def _dead_letters(board: DashboardBuilder) -> DashboardBuilder:
    count = timeseries(
        "Dead letters per minute, by stream and reason",
        "Messages rejected to the dead-letter topic per minute, by stream and reason (bad JSON, "
        "schema, unknown field...). Good: none. Read them on ioc.deadletter.",
        [Query("60 * sum by (stream, reason) (rate(ioc_events_invalid_total[$__rate_interval]))",
               "{{stream}} {{reason}}")],
        unit="short", width=12, height=8, minimum=0, stacked=True, axis_label="per minute",
    )
    ratio = timeseries(
        "Dead-letter ratio, by stream",
        "Share of each stream's messages that went to the dead-letter topic (5-minute rate). Above "
        "the dashed 5 % line for 10 minutes, IocDeadLetterRateHigh fires.",
        [Query("stream:ioc_events_invalid:ratio_rate5m", "{{stream}}")],
        unit="percentunit", width=12, height=8, minimum=0,
        limits=thresholds("green", (DEAD_LETTER_LIMIT, "red")),
    )
    return board.with_panel(count).with_panel(ratio)


def _freshness(board: DashboardBuilder) -> DashboardBuilder:
    arrival = timeseries(
        "Since the newest event arrived, by stream and worker",
        "Seconds since each worker took the newest event of a stream. Good: seconds to a few "
        "minutes; past the dashed line (15 min) IocStreamStale fires: a feed may have stopped.",
        [Query("ioc_stream_freshness_seconds", "{{stream}} on {{instance}}")],
        unit="s", width=12, height=8, minimum=0, limits=thresholds("green", (STALE_S, "red")),
    )
    event_time = timeseries(
        "Event-time age of the newest event, by stream",
        "Now minus the timestamp the sensor put on the newest event of each stream. Larger than "
        "the arrival age when sensors send late or their clocks drift.",
        [Query("time() - max by (stream) (ioc_stream_last_event_timestamp_seconds)", "{{stream}}")],
        unit="s", width=12, height=8,
    )
    return board.with_panel(arrival).with_panel(event_time)


def _state(board: DashboardBuilder) -> DashboardBuilder:
    age = timeseries(
        "Checkpoint age, by runner and worker",
        "Seconds since the oldest checkpoint of what each worker holds was saved (shards: rule "
        "state; sla; cluster: notifications). A crash replays that much. Good: under the dashed "
        "10-minute line.",
        [Query("ioc_checkpoint_age_seconds", "{{runner}} on {{instance}}")],
        unit="s", width=6, height=8, minimum=0, limits=thresholds("green", (CHECKPOINT_S, "red")),
    )
    size = timeseries(
        "Checkpoint size, by runner and worker",
        "Bytes of the latest checkpoints each worker holds. Steady growth means state that is "
        "never freed (keys of rules that never expire).",
        [Query("ioc_checkpoint_bytes", "{{runner}} on {{instance}}")],
        unit="bytes", width=6, height=8, minimum=0,
    )
    keys = timeseries(
        "Rule keys and timers, by worker",
        "Rule keys holding state (one per sensor and rule, say) and timers pending, per worker. "
        "Follows the number of sensors; should not grow without bound.",
        [Query("sum by (instance) (ioc_state_keys)", "keys on {{instance}}"),
         Query("sum by (instance) (ioc_timers)", "timers on {{instance}}")],
        unit="short", width=6, height=8, minimum=0,
    ).override_by_query("B", [dashed()])
    shards = timeseries(
        "Partitions held, by worker",
        "Input partitions each worker holds state for (raw topics and rekeyed ones). Good: spread "
        "evenly; they move when a worker joins or leaves.",
        [Query("ioc_shards", "{{kind}} on {{instance}}")],
        unit="short", width=6, height=8, minimum=0,
    )
    return board.with_panel(age).with_panel(size).with_panel(keys).with_panel(shards)
