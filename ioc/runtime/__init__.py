"""The worker runtime: batch pipeline, rule reloading and the worker's engine-side parts."""

__all__: list[str] = []
