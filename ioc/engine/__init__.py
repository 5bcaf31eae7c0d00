"""The rule engine (pure Python): event batches in, alert transitions out."""

from ioc.engine.engine import Engine, EngineStats, Export, Lane
from ioc.engine.limits import KeyLimits
from ioc.engine.meaning import meaning, presentation

__all__ = ["Engine", "EngineStats", "Export", "KeyLimits", "Lane", "meaning", "presentation"]
