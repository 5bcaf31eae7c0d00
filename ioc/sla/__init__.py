"""The SLA half of the engine: operator actions on alerts, deadlines (in working time when
asked), escalation, notification policy and SLA figures. Pure, Faust-free and time-explicit:
the runtime feeds alert transitions, actions and the time, and publishes what comes out.

* `tracker.AlertTracker`: an alert's lifecycle (ack, assign, comment, resolve, reopen),
  deadlines (`deadlines`, `calendar`: Vietnam's working days), escalation, outcome records;
* `notify.NotificationPolicy`: grouping, inhibition, silences, flapping (`matchers`, `policy`);
* `figures.SlaFigures`, `sla_metrics.SlaMetrics`: rolling SLA figures and `ioc_sla_*` metrics.

The modules are imported by name (`from ioc.sla.tracker import AlertTracker`): `ioc.config`
takes its settings models from here, so this file imports nothing.
"""
