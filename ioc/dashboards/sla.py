"""The IOC SLA dashboard (`ioc-sla`): alerts acknowledged and resolved on time against the 95 %
target, what is overdue now, escalations, time to act, and the notifications sent.

>>> dashboard().uid
'ioc-sla'
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard as DashboardBuilder
from grafana_foundation_sdk.builders.dashboard import Row
from grafana_foundation_sdk.models.dashboard import Dashboard

from ioc.dashboards.board import SLA, finish, new
from ioc.dashboards.panels import (
    Query,
    bargauge,
    color,
    dashed,
    stat,
    table,
    thresholds,
    timeseries,
    value_text,
)

__all__ = ["dashboard"]

TARGET = 0.95  # the on-time target of IocSlaOnTimeBelowTarget (config/prometheus/rules/ioc-alerts.yml)
BACKLOG_LIMIT = 100  # IocNotificationBacklog's threshold


def dashboard() -> Dashboard:
    """The SLA dashboard, built."""
    board = new(SLA, "Are the city's alerts acknowledged and resolved in time? Target: 95 % on time.")
    board = _on_time(board.with_row(Row("On time (target 95 %)")))
    board = _overdue(board.with_row(Row("Overdue and escalated")))
    board = _time_to_act(board.with_row(Row("Time to act")))
    board = _notifications(board.with_row(Row("Notifications")))
    return finish(board)


def _on_time(board: DashboardBuilder) -> DashboardBuilder:
    target = thresholds("red", (TARGET, "green"))
    trend = timeseries(
        "On time, all domains",
        "Share of the alerts resolved in each window (1 h, 24 h, 30 d) whose acknowledgement (ack) "
        "or resolution (resolve) met its deadline. Good: above the dashed 95 % line.",
        [Query('max by (deadline, window) (ioc_sla_on_time_ratio{domain="all"})', "{{deadline}} over {{window}}")],
        unit="percentunit", width=16, height=8, minimum=0, maximum=1, limits=target,
    )
    now = stat(
        "On time over 24 h",
        "Alerts of the last 24 hours acknowledged (ack) and resolved (resolve) on time. Green at 95 % "
        "and above; red below (the IocSlaOnTimeBelowTarget alert fires after 30 min below).",
        [Query('max by (deadline) (ioc_sla_on_time_ratio{domain="all", window="24h"})', "{{deadline}}")],
        unit="percentunit", width=8, height=8, limits=target,
    )
    panels = [trend, now]
    for deadline, words in (("resolve", "Resolved"), ("ack", "Acknowledged")):
        panels.append(bargauge(
            f"{words} on time over 24 h, by domain",
            f"{words} on time over the last 24 hours, one bar per domain. A short red bar shows the "
            "domain (and its agency) that misses its deadlines.",
            [Query(f'max by (domain) (ioc_sla_on_time_ratio{{domain!="all", window="24h", deadline="{deadline}"}})',
                   "{{domain}}")],
            unit="percentunit", width=12, height=8, minimum=0, maximum=1, limits=target,
        ))
    for panel in panels:
        board = board.with_panel(panel)
    return board


def _overdue(board: DashboardBuilder) -> DashboardBuilder:
    now = stat(
        "Overdue now",
        "Open alerts past their acknowledgement (ack) or resolution (resolve) deadline; one alert can "
        "be in both. Good: 0.",
        [Query("sum by (deadline) (ioc_sla_overdue)", "{{deadline}}")],
        unit="short", width=6, height=8, limits=thresholds("green", (1, "red")),
    )
    by_domain = timeseries(
        "Overdue now, by domain and deadline",
        "Open alerts past a deadline at each moment, by domain and deadline. A line that keeps "
        "rising means a domain's alerts wait for nobody.",
        [Query("sum by (domain, deadline) (ioc_sla_overdue)", "{{domain}} {{deadline}}")],
        unit="short", width=9, height=8, minimum=0,
    )
    escalations = timeseries(
        "Escalations, by domain and level",
        "Alerts escalated to the next level (1 first, then 2...) because a deadline passed, by domain. "
        "Good: rare, and rarely past level 1.",
        [Query("sum by (domain, level) (increase(ioc_sla_escalations_total[$__rate_interval]))",
               "{{domain}} level {{level}}")],
        unit="short", width=9, height=8, minimum=0, stacked=True,
    )
    return board.with_panel(now).with_panel(by_domain).with_panel(escalations)


def _quantiles(histogram: str, by: str = "") -> list[Query]:
    return [Query(f"histogram_quantile({q}, sum by ({by}le) (rate({histogram}_bucket[$__rate_interval])))",
                  f"p{round(q * 100)}") for q in (0.5, 0.9)]


def _time_to_act(board: DashboardBuilder) -> DashboardBuilder:
    panels = []
    for histogram, words in (("ioc_sla_ack_seconds", "acknowledge"), ("ioc_sla_resolve_seconds", "resolve")):
        panels.append(timeseries(
            f"Time to {words} (p50, p90)",
            f"How long operators took to {words} the alerts they closed lately, from the alert's start: "
            "half took less than p50, nine in ten less than p90. Gaps mean nothing was closed then.",
            _quantiles(histogram), unit="s", width=12, height=8, minimum=0,
        ).override_by_query("B", [dashed()]))
    outcomes = timeseries(
        "Outcomes: on time vs late",
        "Alerts closed by operators, whether they met the acknowledgement (ack) and resolution "
        "(resolve) deadlines. Good: the late bars stay small.",
        # One query for both: a day with no late outcome still has series (the on-time ones).
        [Query("sum by (deadline, on_time) (increase(ioc_sla_outcomes_total[$__rate_interval]))",
               "{{deadline}}, on time: {{on_time}}")],
        unit="short", width=12, height=8, minimum=0, stacked=True,
    )
    for name, colour in (("ack, on time: true", "green"), ("resolve, on time: true", "dark-green"),
                         ("ack, on time: false", "orange"), ("resolve, on time: false", "red")):
        outcomes = outcomes.override_by_name(name, [color(colour)])
    by_domain = table(
        "Time to act by domain, over the time range",
        "Per domain, over the time range picked at the top right: median (p50) and p90 time to "
        "acknowledge and to resolve. Compare with each domain's deadlines.",
        [Query(f"histogram_quantile({q}, sum by (domain, le) (increase({histogram}_bucket[$__range])))",
               table=True)
         for histogram in ("ioc_sla_ack_seconds", "ioc_sla_resolve_seconds") for q in (0.5, 0.9)],
        unit="s", width=12, height=8,
        columns={"domain": "Domain", "Value #A": "Ack p50", "Value #B": "Ack p90",
                 "Value #C": "Resolve p50", "Value #D": "Resolve p90"},
        sort_desc="Resolve p90",
    )
    for panel in [*panels, outcomes, by_domain]:
        board = board.with_panel(panel)
    return board


def _notifications(board: DashboardBuilder) -> DashboardBuilder:
    sent = timeseries(
        "Notifications sent per minute, by status and reason",
        "Notifications the policy sent to the agencies: first (a new alert group), update, repeat "
        "(still firing), resolved. Silent while alerts fire means notifications are stuck.",
        [Query("60 * sum by (status, reason) (rate(ioc_notifications_total[$__rate_interval]))",
               "{{status}} {{reason}}")],
        unit="short", width=10, height=8, minimum=0, stacked=True, axis_label="per minute",
    )
    backlog = timeseries(
        "Notification backlog",
        "Alert records the notification policy has not applied yet. Good: near 0; above the dashed "
        "line (100) for 10 minutes the IocNotificationBacklog alert fires.",
        [Query("sum(ioc_notification_backlog)", "waiting")],
        unit="short", width=8, height=8, minimum=0, limits=thresholds("green", (BACKLOG_LIMIT, "red")),
    )
    owner = stat(
        "Notification owner, by worker",
        "Which worker runs the notification policy and the SLA figures now. Good: exactly one "
        "worker shows 'owner'; none means notifications have stopped.",
        [Query("max by (instance) (ioc_cluster_owner)", "{{instance}}")],
        unit="short", width=6, height=8, sparkline=False,
        mappings=[value_text({"1": ("owner", "green"), "0": ("standby", "text")})],
    )
    return board.with_panel(sent).with_panel(backlog).with_panel(owner)
