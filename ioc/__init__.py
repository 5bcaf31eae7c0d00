"""IOC stream engine: validate sensor events, evaluate analyst rules, emit alerts.

The engine library has no Faust import; `streams/` adapts it to Kafka.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
