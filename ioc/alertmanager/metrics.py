"""Metrics of the Alertmanager sink (no labels but the result: bounded)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["AlertmanagerMetrics"]


class AlertmanagerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.alerts = Counter("ioc_alertmanager_alerts", "Alerts posted to Alertmanager, by result "
                              "(sent; refused: never taken; retry: sent again later)", ["result"], registry=registry)
        self.pending = Gauge("ioc_alertmanager_pending",
                             "Alert transitions read and not yet taken by Alertmanager", registry=registry)
        self.firing = Gauge("ioc_alertmanager_firing",
                            "Firing alerts this worker sends to Alertmanager again every alertmanager.resend_s",
                            registry=registry)
        self.last_sent = Gauge("ioc_alertmanager_last_success_timestamp_seconds",
                               "When Alertmanager last took a post from this worker", registry=registry)
        for result in ("sent", "refused", "retry"):
            self.alerts.labels(result=result)
