"""The operator console: a live alert board with an offline map, served by the worker's web server.

`store` (what the topics say), `views` (JSON shapes), `models` (validated inputs), `auth`
(the write token), `hub` (server-sent events), `mapdata` (the offline map), `server` (routes);
the pages are under `static/`. The Kafka side is `streams/console_runner.py`.
"""

from ioc.console.exceptions import ConsoleError
from ioc.console.server import Console, add_routes
from ioc.console.store import ConsoleStore

__all__ = ["Console", "ConsoleError", "ConsoleStore", "add_routes"]
