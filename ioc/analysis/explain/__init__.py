"""`ioc explain`: why an alert fired, by replaying its rule over the events and tracing its key.

>>> explanation = explain_alert(records, ruleset, prepared, source="alerts.jsonl")   # doctest: +SKIP

One module per concern: `trace` (the replay and the wrapped kind), `model` (what an
explanation holds), `base` (the generic explainer), one module per family of kinds, `registry`
(kind name -> explainer; new kinds fall back to the generic one), `sources` (alert records and
events from files or the broker).
"""

from ioc.analysis.explain.exceptions import ExplainError
from ioc.analysis.explain.explain import explain_alert, latest_record
from ioc.analysis.explain.model import Check, Detail, EventRef, Explanation, Resolution
from ioc.analysis.explain.registry import EXPLAINERS, explainer_for

__all__ = ["EXPLAINERS", "Check", "Detail", "EventRef", "ExplainError", "Explanation", "Resolution", "explain_alert",
           "explainer_for", "latest_record"]
