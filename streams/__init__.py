"""The Faust app: thin agents moving records between Kafka topics and the engine.

The only package that imports faust.
"""

from streams.app import IocApp, build_app

__all__ = ["IocApp", "build_app"]
