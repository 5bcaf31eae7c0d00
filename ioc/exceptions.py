"""Base exception of the IOC engine: every error the engine raises derives from it."""

__all__ = ["IocError"]


class IocError(Exception):
    """Base class for all IOC engine errors."""
