"""The console's read model: alerts newest first with filters and stable pages, states joined to
their alert whichever comes first, escalations counted per Huế day, vessels' latest positions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.console.models import AlertFilter
from ioc.console.store import ConsoleStore
from ioc.timeutil import format_ts

T0 = 1761526800.0  # 2025-10-27 01:00 UTC = 08:00 in Huế


def alert(n: int, *, start: float | None = None, severity: str = "warning", domain: str = "water",
          status: str = "firing", **labels: str) -> dict[str, Any]:
    start = T0 + n * 60 if start is None else start
    fp = f"{n:016x}"
    return {"fingerprint": fp, "alert_id": f"{fp}-{round(start * 1000)}", "rule_id": f"r.{domain}",
            "stream": "reservoir", "severity": severity, "status": status, "key": {"source_id": "ta-trach"},
            "labels": {"domain": domain, **labels}, "summary": f"alert {n}", "starts_at": format_ts(start),
            "ends_at": None, "sla": {"ack_by": format_ts(start + 900), "resolve_by": format_ts(start + 3600)}}


def state(record: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"type": "alert_state", "alert_id": record["alert_id"], "fingerprint": record["fingerprint"],
            "domain": record["labels"]["domain"], "severity": record["severity"], "agency": None,
            "status": "firing", "operator_status": "open", "acked_at": None,
            "ack_by": record["sla"]["ack_by"], "resolve_by": record["sla"]["resolve_by"], **fields}


def test_newest_first_and_filtered() -> None:
    store = ConsoleStore()
    for n in range(10):
        store.on_alert(alert(n, severity="critical" if n % 2 else "warning", domain="sea" if n < 5 else "water"))
    page = store.page(AlertFilter())
    assert [v.record["summary"] for v in page.items] == [f"alert {n}" for n in range(9, -1, -1)]
    critical_sea = store.page(AlertFilter(severity="critical", domain="sea"))
    assert [v.record["summary"] for v in critical_sea.items] == ["alert 3", "alert 1"]
    assert critical_sea.total == 2 and critical_sea.next_cursor is None


def test_cursor_pages_cover_everything_once_even_when_alerts_arrive_between_pages() -> None:
    store = ConsoleStore()
    for n in range(250):
        store.on_alert(alert(n))
    seen: list[str] = []
    page = store.page(AlertFilter(limit=100))
    seen += [v.alert_id for v in page.items]
    store.on_alert(alert(1000))  # a newer alert while the operator pages: not in the older pages
    while page.next_cursor is not None:
        page = store.page(AlertFilter(limit=100, cursor=page.next_cursor))
        seen += [v.alert_id for v in page.items]
    assert len(seen) == 250 == len(set(seen))
    assert seen == [alert(n)["alert_id"] for n in range(249, -1, -1)]


def test_offset_pages() -> None:
    store = ConsoleStore()
    for n in range(30):
        store.on_alert(alert(n))
    page = store.page(AlertFilter(limit=10, offset=25))
    assert [v.record["summary"] for v in page.items] == [f"alert {n}" for n in range(4, -1, -1)]
    assert page.total == 30 and page.next_cursor is None


def test_a_state_read_before_its_alert_is_joined_when_the_alert_comes() -> None:
    store = ConsoleStore()
    record = alert(1)
    assert store.on_state(state(record, operator_status="acked", acked_at=format_ts(T0 + 100))) == []
    assert store.on_alert(record) == [record["alert_id"]]
    assert store.alerts[record["alert_id"]].operator_status == "acked"
    assert store.page(AlertFilter(operator="acked")).total == 1
    assert store.page(AlertFilter(operator="open")).total == 0


def test_a_firing_record_after_the_resolved_one_is_stale() -> None:
    store = ConsoleStore()
    record = alert(1)
    store.on_alert(record)
    store.on_alert({**record, "status": "resolved", "ends_at": format_ts(T0 + 600)})
    store.on_alert(record)  # redelivered
    assert store.alerts[record["alert_id"]].status == "resolved"


def test_escalations_are_counted_per_day_in_hue_and_never_listed() -> None:
    store = ConsoleStore()
    base = alert(1)
    for n, due in enumerate((T0, T0 + 3600, T0 - 2 * 3600)):  # 08:00, 09:00 and 06:00 of the 27th in Huế
        fp = f"e{n:015x}"
        store.on_alert({**base, "fingerprint": fp, "alert_id": f"{fp}-{round(due * 1000)}", "starts_at": format_ts(due),
                        "labels": {"domain": "water", "escalation": "1"}})
    # 16:59 UTC on the 26th is 23:59 on the 26th in Huế: none of them yet
    assert store.escalations_today(T0 - 8 * 3600 - 60) == 0
    assert store.escalations_today(T0 + 7200) == 3
    assert store.page(AlertFilter()).total == 0


def test_overdue_now_from_the_states() -> None:
    store = ConsoleStore()
    late, acked, closed = alert(1), alert(2), alert(3)
    for record in (late, acked, closed):
        store.on_alert(record)
    store.on_state(state(late))
    store.on_state(state(acked, operator_status="acked", acked_at=format_ts(T0 + 200)))
    store.on_state(state(closed, operator_status="resolved", acked_at=format_ts(T0 + 200)))
    assert store.overdue(T0 + 1000) == {"ack": 1, "resolve": 0}
    assert store.overdue(T0 + 4000) == {"ack": 1, "resolve": 2}


def test_event_clock_follows_the_alerts() -> None:
    store = ConsoleStore(clock="event")
    assert store.now(5.0) == 5.0
    store.on_alert(alert(3))
    assert store.now(5.0) == T0 + 180


def test_vessels_keep_their_latest_position_by_event_time() -> None:
    store = ConsoleStore()
    store.on_vessel({"source_id": "TTH-90001-TS", "lat": 16.6, "lon": 107.7, "ts": T0 + 60})
    store.on_vessel({"source_id": "TTH-90001-TS", "lat": 16.5, "lon": 107.6, "ts": T0})  # late: older
    assert store.vessels["TTH-90001-TS"]["lat"] == 16.6
    assert store.on_vessel({"source_id": "x", "lat": "16", "lon": 107.0, "ts": T0}) is None
    assert store.on_vessel("junk") is None


@pytest.mark.parametrize("junk", [None, "x", [], {"alert_id": 3}, {"alert_id": "not-an-id"},
                                  {"alert_id": "0000000000000001-1", "starts_at": "yesterday"}])
def test_junk_records_change_nothing(junk: Any) -> None:
    store = ConsoleStore()
    assert store.on_alert(junk) == [] and store.on_state(junk) == [] and store.on_sla(junk) is False
    assert store.alerts == {}


def test_bounded() -> None:
    store = ConsoleStore(max_alerts=5)
    for n in range(8):
        store.on_alert(alert(n))
    assert [v.record["summary"] for v in store.newest()] == [f"alert {n}" for n in (7, 6, 5, 4, 3)]


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(40)), st.integers(min_value=1, max_value=15))
def test_the_list_does_not_depend_on_arrival_order(order: list[int], limit: int) -> None:
    store = ConsoleStore()
    for n in order:
        store.on_alert(alert(n, start=T0 + (n % 7) * 60))  # equal starts: ties broken by id
    ids: list[str] = []
    page = store.page(AlertFilter(limit=limit))
    ids += [v.alert_id for v in page.items]
    while page.next_cursor:
        page = store.page(AlertFilter(limit=limit, cursor=page.next_cursor))
        ids += [v.alert_id for v in page.items]
    expected = sorted((alert(n, start=T0 + (n % 7) * 60) for n in range(40)),
                      key=lambda r: (r["starts_at"], r["alert_id"]), reverse=True)
    assert ids == [r["alert_id"] for r in expected]


def test_the_token_is_configured_like_every_setting() -> None:
    from ioc.config import ConfigError, load_settings

    assert load_settings(env={}).console.token == ""
    assert load_settings(env={"IOC_CONSOLE_TOKEN": "s3cret"}).console.token == "s3cret"
    with pytest.raises(ConfigError, match="console.enabled"):
        load_settings(env={}, overrides={"console.enabled": "maybe"})
