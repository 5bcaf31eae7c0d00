"""Kafka plumbing: the embedded or external broker, the topic catalogue, client options."""

__all__: list[str] = []
