"""The console's web routes (aiohttp), served by the worker's web server on `worker.web_port`.

    GET  /console/                      the page (static files under ioc/console/static/)
    GET  /api/alerts                    list: domain, severity, status, operator, agency; limit, cursor|offset
    GET  /api/alerts/{alert_id}         detail: record, evidence, state, rule as written, time left
    POST /api/alerts/{alert_id}/actions ack | assign | comment | resolve (Authorization: Bearer <token>)
    GET  /api/sla                       on-time ratios against the target, overdue now, escalations today
    GET  /api/map                       base layers, places, vessels and alert markers
    GET  /api/events                    server-sent events: `alerts` (changed rows), `clock`, `reload`

>>> from aiohttp import web
>>> console = Console(ConsoleStore(), token="", actions_topic="ioc.alert-actions")
>>> add_routes(web.Application(), console)                       # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from ioc.alerts import fingerprint_of
from ioc.cli.alerts import action_record
from ioc.console.auth import refused
from ioc.console.hub import Hub, event_bytes
from ioc.console.mapdata import locate
from ioc.console.models import MAX_BODY_BYTES, ActionIn, AlertFilter
from ioc.console.store import AlertView, ConsoleStore
from ioc.console.views import alert_detail, alert_row, sla_strip
from ioc.sla.actions import InvalidAction, parse_action
from ioc.timeutil import format_ts

__all__ = ["Console", "add_routes", "STATIC"]

STATIC = Path(__file__).resolve().parent / "static"
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json",
          ".png": "image/png", ".svg": "image/svg+xml"}
# The page runs only its own files: no inline script, nothing from elsewhere.
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
MAX_ROWS_PER_EVENT = 500
CLOCK_S = 1.0

Publish = Callable[[bytes, bytes], Awaitable[tuple[int, int]]]


@dataclass
class Console:
    """What the routes serve from: the store, the token, how to publish an action, the map's data."""

    store: ConsoleStore
    token: str
    actions_topic: str
    publish: Publish | None = None
    rules: Callable[[], Any] = lambda: None          # the running RuleSet (rule summaries as written)
    places: dict[str, dict[str, Any]] = field(default_factory=dict)
    base: dict[str, Any] = field(default_factory=dict)
    wall: Callable[[], float] = time.time
    hub: Hub = field(default_factory=Hub)

    def now(self) -> float:
        return self.store.now(self.wall())

    def where(self, view: AlertView) -> tuple[float, float] | None:
        return locate(view.record, self.places, self.store.vessels)

    def row(self, view: AlertView, now: float | None = None) -> dict[str, Any]:
        return alert_row(view, self.now() if now is None else now, self.where(view))

    def changed(self, alert_ids: Iterable[str]) -> None:
        """Push the rows of changed alerts to the open pages."""
        if not self.hub.queues:
            return
        ids = list(dict.fromkeys(alert_ids))
        if len(ids) > MAX_ROWS_PER_EVENT:
            self.hub.send("reload", {"changed": len(ids)})
            return
        now = self.now()
        rows = [self.row(self.store.alerts[i], now) for i in ids if i in self.store.alerts]
        if rows:
            self.hub.send("alerts", rows)


def add_routes(app: web.Application, console: Console) -> None:
    """Add the console's routes to an aiohttp application (before it starts)."""
    handlers = _Handlers(console)
    app.router.add_get("/console", handlers.redirect)
    app.router.add_get("/console/", handlers.page)
    app.router.add_get("/console/static/{name}", handlers.static)
    app.router.add_get("/api/alerts", handlers.alerts)
    app.router.add_get("/api/alerts/{alert_id}", handlers.alert)
    app.router.add_post("/api/alerts/{alert_id}/actions", handlers.action)
    app.router.add_get("/api/sla", handlers.sla)
    app.router.add_get("/api/map", handlers.map)
    app.router.add_get("/api/events", handlers.events)

    async def _close_streams(_app: web.Application) -> None:
        console.hub.close()

    app.on_shutdown.append(_close_streams)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"})


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


def _problems(exc: ValidationError) -> str:
    out = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        out.append(f"{where}: {message}" if where else message)
    return "; ".join(out)


class _Handlers:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/console/")

    async def page(self, request: web.Request) -> web.Response:
        return self._file("index.html")

    async def static(self, request: web.Request) -> web.Response:
        return self._file(request.match_info["name"])

    def _file(self, name: str) -> web.Response:
        path = STATIC / name
        # Only the files of static/ itself, by their plain name.
        if "/" in name or name.startswith(".") or path.suffix not in _TYPES or not path.is_file():
            return _error(404, f"no such file: {name[:80]}")
        return web.Response(body=path.read_bytes(), content_type=_TYPES[path.suffix],
                            headers={"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff",
                                     "Cache-Control": "no-cache"})

    async def alerts(self, request: web.Request) -> web.Response:
        query = request.query
        if len(query) != len(set(query.keys())):
            return _error(400, "each filter may be given once")
        try:
            wanted = AlertFilter.model_validate(dict(query))
        except ValidationError as exc:
            return _error(400, _problems(exc))
        console = self.console
        page = console.store.page(wanted)
        now = console.now()
        return _json({"now": format_ts(now), "total": page.total, "count": len(page.items),
                      "next_cursor": page.next_cursor, "items": [console.row(v, now) for v in page.items],
                      "facets": console.store.facets()})

    def _known(self, request: web.Request) -> AlertView | web.Response:
        alert_id = request.match_info["alert_id"]
        try:
            fingerprint_of(alert_id)
        except ValueError as exc:
            return _error(400, f"alert_id: {exc}")
        view = self.console.store.alerts.get(alert_id)
        return view if view is not None else _error(404, f"alert {alert_id} is not known to this console")

    async def alert(self, request: web.Request) -> web.Response:
        view = self._known(request)
        if isinstance(view, web.Response):
            return view
        console = self.console
        ruleset = console.rules()
        rule = ruleset.by_id.get(view.record.get("rule_id")) if ruleset is not None else None
        return _json(alert_detail(view, console.now(), rule, console.where(view)))

    async def action(self, request: web.Request) -> web.Response:
        console = self.console
        refusal = refused(request.headers.get("Authorization"), console.token)
        if refusal is not None:
            return _error(refusal.status, refusal.message)
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        body = await request.content.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "the body is not JSON")
        try:
            wanted = ActionIn.model_validate(data)
        except ValidationError as exc:
            return _error(400, _problems(exc))
        view = self._known(request)
        if isinstance(view, web.Response):
            return view
        record = action_record(wanted.action, view.alert_id, wanted.by, console.now(), wanted.note, wanted.assignee)
        checked = parse_action(record)  # what the SLA tracker will read: refuse here what it would refuse
        if isinstance(checked, InvalidAction):
            return _error(400, checked.reason)
        if console.publish is None:
            return _error(503, "this worker cannot publish actions now")
        try:
            partition, offset = await console.publish(checked.fingerprint.encode(), orjson.dumps(record))
        except Exception as exc:  # noqa: BLE001 - any broker failure is the same answer to the page
            return _error(503, f"the action was not published ({type(exc).__name__}); try again")
        return _json({"published": record, "topic": console.actions_topic, "partition": partition,
                      "offset": offset}, 202)

    async def sla(self, request: web.Request) -> web.Response:
        return _json(sla_strip(self.console.store, self.console.now()))

    async def map(self, request: web.Request) -> web.Response:
        console = self.console
        now = console.now()
        markers = []
        for view in console.store.newest():
            where = console.where(view)
            if where is not None and view.operator_status != "resolved":
                markers.append({"alert_id": view.alert_id, "severity": view.severity, "lat": where[0],
                                "lon": where[1], "summary": view.record.get("summary"), "status": view.status})
                if len(markers) >= 2000:
                    break
        return _json({"now": format_ts(now), **console.base, "places": list(console.places.values()),
                      "vessels": list(console.store.vessels.values())[-2000:], "markers": markers})

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Content-Type-Options": "nosniff"})
        await response.prepare(request)
        queue = self.console.hub.subscribe()
        try:
            await response.write(b"retry: 2000\n\n")
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), timeout=CLOCK_S)
                except TimeoutError:
                    message = event_bytes("clock", {"now": format_ts(self.console.now())})
                if message is None:
                    break
                await response.write(message)
        except ConnectionResetError:
            pass
        finally:
            self.console.hub.unsubscribe(queue)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response
