"""Which explainer each kind gets; a kind not listed (a new one) gets the generic `Explainer`."""

from __future__ import annotations

from ioc.analysis.explain.base import Explainer
from ioc.analysis.explain.continuous import GeofenceExplainer, ThresholdExplainer
from ioc.analysis.explain.groups import NearDuplicateExplainer, ProximityExplainer
from ioc.analysis.explain.instants import AbsenceExplainer, MatchExplainer, NewValueExplainer
from ioc.analysis.explain.sequence import SequenceExplainer
from ioc.analysis.explain.windows import RateExplainer, SpikeExplainer, WindowExplainer

__all__ = ["EXPLAINERS", "explainer_for"]

EXPLAINERS: dict[str, Explainer] = {
    "threshold": ThresholdExplainer(),
    "window": WindowExplainer(),
    "rate": RateExplainer(),
    "absence": AbsenceExplainer(),
    "geofence": GeofenceExplainer(),
    "match": MatchExplainer(),
    "spike": SpikeExplainer(),
    "new_value": NewValueExplainer(),
    "sequence": SequenceExplainer(),
    "near_duplicate": NearDuplicateExplainer(),
    "proximity": ProximityExplainer(),
}

GENERIC = Explainer()


def explainer_for(kind: str) -> Explainer:
    return EXPLAINERS.get(kind, GENERIC)
