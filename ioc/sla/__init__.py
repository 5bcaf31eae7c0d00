"""The SLA half of the engine: operator actions on alerts, deadlines (in working time when
asked), escalation, notification policy and SLA figures. Pure, Faust-free and time-explicit:
the runtime feeds alert transitions, actions and the time, and publishes what comes out."""
