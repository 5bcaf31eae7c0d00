"""The `ioc` command line."""

__all__: list[str] = []
