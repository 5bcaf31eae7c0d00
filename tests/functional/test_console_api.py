"""The console's HTTP API on a real aiohttp server (in process), with the store fed as the runner
feeds it and the publisher replaced by a recorder (the real broker path is in
tests/integration/test_console_browser.py): auth before anything is published, validation and
sizes, pages, the detail's rule as written, the page's headers and the event stream."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ioc.config import load_settings
from ioc.console import Console, ConsoleStore, add_routes
from ioc.console.models import MAX_BODY_BYTES
from ioc.runtime.runner import load_ruleset
from ioc.sla.actions import Action, parse_action
from ioc.timeutil import format_ts

T0 = 1761526800.0
TOKEN = "s3cret-token"
RULESET = load_ruleset(load_settings(env={}))
RULE = next(rule for rule in RULESET.rules if "reservoir" in rule.streams)


def record(n: int, summary: str | None = None, severity: str = "warning") -> dict[str, Any]:
    fp = f"{n:016x}"
    start = T0 + n * 60
    return {"fingerprint": fp, "alert_id": f"{fp}-{round(start * 1000)}", "rule_id": RULE.id, "stream": "reservoir",
            "kind": "threshold", "severity": severity, "status": "firing", "key": {"source_id": "ta-trach"},
            "labels": {"domain": "water", "agency": "Sở NN&PTNT"}, "summary": summary or f"alert {n}",
            "description": "", "starts_at": format_ts(start), "ends_at": None, "evidence": [f"ev-{n}"],
            "sla": {"ack_by": format_ts(start + 900), "resolve_by": format_ts(start + 3600)}, "value": 44.8}


Run = Callable[..., None]


@pytest.fixture
def run() -> Run:
    def runner(body: Callable[[TestClient, Console, list[tuple[bytes, bytes]]], Awaitable[None]],
               token: str = TOKEN, alerts: int = 3) -> None:
        sent: list[tuple[bytes, bytes]] = []

        async def publish(key: bytes, value: bytes) -> tuple[int, int]:
            sent.append((key, value))
            return 0, len(sent) - 1

        async def main() -> None:
            store = ConsoleStore()
            for n in range(alerts):
                store.on_alert(record(n))
            console = Console(store, token, "ioc.alert-actions", publish=publish, rules=lambda: RULESET,
                              places={"ta-trach": {"id": "ta-trach", "kind": "reservoir", "name": "Hồ Tả Trạch",
                                                   "lat": 16.34, "lon": 107.63}},
                              wall=lambda: T0 + 600)
            app = web.Application()
            add_routes(app, console)
            async with TestClient(TestServer(app)) as client:
                await body(client, console, sent)

        asyncio.run(main())

    return runner


ACK = {"action": "ack", "by": "truc-ban-1", "note": "đã tiếp nhận"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_without_the_token_401_and_nothing_is_published(run: Run) -> None:
    async def body(client: TestClient, console: Console, sent: list[tuple[bytes, bytes]]) -> None:
        alert_id = record(1)["alert_id"]
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                        {"Authorization": "Basic czNjcmV0LXRva2Vu"}):
            response = await client.post(f"/api/alerts/{alert_id}/actions", json=ACK, headers=headers)
            assert response.status == 401, headers
            assert "token" in (await response.json())["error"]
        assert sent == []

    run(body)


def test_no_token_configured_refuses_writes_and_says_how(run: Run) -> None:
    async def body(client: TestClient, console: Console, sent: list[tuple[bytes, bytes]]) -> None:
        response = await client.post(f"/api/alerts/{record(1)['alert_id']}/actions", json=ACK,
                                     headers={"Authorization": "Bearer "})
        assert response.status == 403
        message = (await response.json())["error"]
        assert "console.token" in message and "IOC_CONSOLE_TOKEN" in message
        assert sent == []

    run(body, token="")


def test_an_action_is_published_as_the_tracker_reads_it(run: Run) -> None:
    async def body(client: TestClient, console: Console, sent: list[tuple[bytes, bytes]]) -> None:
        alert = record(1)
        response = await client.post(f"/api/alerts/{alert['alert_id']}/actions", json=ACK, headers=AUTH)
        assert response.status == 202, await response.text()
        assert [key for key, _ in sent] == [alert["fingerprint"].encode()]
        published = orjson.loads(sent[0][1])
        assert published == {"alert_id": alert["alert_id"], "action": "ack", "by": "truc-ban-1",
                             "at": format_ts(T0 + 600), "note": "đã tiếp nhận"}
        assert isinstance(parse_action(published), Action)
        assign = {"action": "assign", "by": "truc-ban-1", "assignee": "so-nnptnt"}
        response = await client.post(f"/api/alerts/{alert['alert_id']}/actions", json=assign, headers=AUTH)
        assert response.status == 202
        assert orjson.loads(sent[1][1])["assignee"] == "so-nnptnt"

    run(body)


@pytest.mark.parametrize(("payload", "status", "says"), [
    ({"action": "close", "by": "a"}, 400, "action"),
    ({"action": "ack"}, 400, "by: Field required"),
    ({"action": "ack", "by": "  "}, 400, "by"),
    ({"action": "ack", "by": "a", "at": "2025-01-01T00:00:00Z"}, 400, "at: unknown field"),
    ({"action": "assign", "by": "a"}, 400, "assignee: required"),
    ({"action": "ack", "by": "a", "assignee": "b"}, 400, "assignee: only for assign"),
    ({"action": "comment", "by": "a"}, 400, "note: required"),
    ({"action": "comment", "by": "a", "note": "x" * 2001}, 400, "note"),
    ({"action": "ack", "by": "a" * 201}, 400, "by"),
    (["ack"], 400, "valid dictionary"),
    ({"action": "ack", "by": "a", "note": "x" * MAX_BODY_BYTES}, 413, "larger than"),
])
def test_bad_actions_are_refused_with_a_reason_and_never_published(run: Run, payload: Any, status: int,
                                                                    says: str) -> None:
    async def body(client: TestClient, console: Console, sent: list[tuple[bytes, bytes]]) -> None:
        response = await client.post(f"/api/alerts/{record(1)['alert_id']}/actions", json=payload, headers=AUTH)
        assert response.status == status
        assert says in (await response.json())["error"]
        assert sent == []

    run(body)


def test_bad_json_bad_ids_unknown_alerts(run: Run) -> None:
    async def body(client: TestClient, console: Console, sent: list[tuple[bytes, bytes]]) -> None:
        alert_id = record(1)["alert_id"]
        response = await client.post(f"/api/alerts/{alert_id}/actions", data=b"{not json", headers=AUTH)
        assert response.status == 400 and "not JSON" in (await response.json())["error"]
        response = await client.post("/api/alerts/ta-trach/actions", json=ACK, headers=AUTH)
        assert response.status == 400 and "not an alert id" in (await response.json())["error"]
        response = await client.post("/api/alerts/00000000000000ff-1761526800000/actions", json=ACK, headers=AUTH)
        assert response.status == 404
        assert (await client.get("/api/alerts/00000000000000ff-1761526800000")).status == 404
        assert sent == []

    run(body)


def test_pages_with_cursor_and_offset_newest_first(run: Run) -> None:
    async def body(client: TestClient, console: Console, sent: list[tuple[bytes, bytes]]) -> None:
        first = await (await client.get("/api/alerts", params={"limit": "100"})).json()
        assert first["total"] == 250 and first["count"] == 100
        assert first["items"][0]["summary"] == "alert 249"
        ids = [item["alert_id"] for item in first["items"]]
        cursor = first["next_cursor"]
        while cursor:
            page = await (await client.get("/api/alerts", params={"limit": "100", "cursor": cursor})).json()
            ids += [item["alert_id"] for item in page["items"]]
            cursor = page["next_cursor"]
        assert ids == [record(n)["alert_id"] for n in range(249, -1, -1)]
        offset = await (await client.get("/api/alerts", params={"limit": "5", "offset": "248"})).json()
        assert [item["summary"] for item in offset["items"]] == ["alert 1", "alert 0"]
        row = first["items"][-1]
        assert row["location"] == {"lat": 16.34, "lon": 107.63}
        assert row["agency"] == "Sở NN&PTNT" and row["ack_left_s"] == round(T0 + 150 * 60 + 900 - (T0 + 600), 3)

    run(body, alerts=250)


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "501"}, {"offset": "-1"}, {"severity": "loud"},
                                    {"cursor": "'; drop"}, {"colour": "red"}, {"domain": "x" * 101}])
def test_bad_filters_are_400(run: Run, params: dict[str, str]) -> None:
    async def body(client: TestClient, console: Console, sent: list[tuple[bytes, bytes]]) -> None:
        response = await client.get("/api/alerts", params=params)
        assert response.status == 400, params
        assert (await response.json())["error"]

    run(body)


def test_detail_has_evidence_the_rule_as_written_and_time_left(run: Run) -> None:
    async def body(client: TestClient, console: Console, sent: list[tuple[bytes, bytes]]) -> None:
        alert = record(2)
        detail = await (await client.get(f"/api/alerts/{alert['alert_id']}")).json()
        assert detail["record"]["evidence"] == ["ev-2"]
        assert detail["rule"]["summary"] == RULE.summary.text and detail["rule"]["place"] == RULE.place
        assert detail["alert"]["resolve_left_s"] == 3600 + 120 - 600
        assert detail["now"] == format_ts(T0 + 600)

    run(body)


def test_untrusted_text_goes_out_as_json_data_only(run: Run) -> None:
    async def body(client: TestClient, console: Console, sent: list[tuple[bytes, bytes]]) -> None:
        console.store.on_alert(record(7, summary='<script>alert("x")</script><img src=x onerror=alert(1)>'))
        response = await client.get("/api/alerts")
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert (await response.json())["items"][0]["summary"].startswith("<script>")
        page = await client.get("/console/")
        assert page.status == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert "<script>alert" not in await page.text()  # the page itself is static

    run(body)


@pytest.mark.parametrize("path", ["/console/static/..%2Fserver.py", "/console/static/.hidden.js",
                                  "/console/static/nothere.js", "/console/static/__init__.py"])
def test_only_the_static_files_are_served(run: Run, path: str) -> None:
    async def body(client: TestClient, console: Console, sent: list[tuple[bytes, bytes]]) -> None:
        assert (await client.get(path)).status == 404
        assert (await client.get("/console/static/console.js")).status == 200

    run(body)


def test_sla_strip_and_map(run: Run) -> None:
    async def body(client: TestClient, console: Console, sent: list[tuple[bytes, bytes]]) -> None:
        console.store.on_sla({"type": "snapshot", "scope": "all", "window": "24h", "at": format_ts(T0),
                              "resolved": 10, "ack_on_time_ratio": 0.9, "resolve_on_time_ratio": 1.0})
        sla = await (await client.get("/api/sla")).json()
        assert sla["target"] == 0.95 and sla["windows"]["24h"]["ack_on_time_ratio"] == 0.9
        assert sla["escalations_today"] == 0 and sla["alerts"] == 3
        drawn = await (await client.get("/api/map")).json()
        assert len(drawn["markers"]) == 3 and drawn["places"][0]["id"] == "ta-trach"

    run(body)


def test_changed_alerts_are_pushed_as_server_sent_events(run: Run) -> None:
    async def body(client: TestClient, console: Console, sent: list[tuple[bytes, bytes]]) -> None:
        response = await client.get("/api/events")
        assert response.headers["Content-Type"] == "text/event-stream"
        assert await response.content.readuntil(b"\n\n") == b"retry: 2000\n\n"
        new = record(9, severity="critical")
        console.changed(console.store.on_alert(new))
        message = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
        name, data = message.split(b"\n", 1)
        assert name == b"event: alerts"
        assert orjson.loads(data.removeprefix(b"data: "))[0]["alert_id"] == new["alert_id"]
        clock = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
        assert clock.startswith(b"event: clock")
        console.hub.close()
        response.close()

    run(body)
