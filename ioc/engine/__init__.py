"""The rule engine (pure Python): event batches in, alert transitions out."""

from ioc.engine.engine import Engine, EngineStats, Export, Lane

__all__ = ["Engine", "EngineStats", "Export", "Lane"]
