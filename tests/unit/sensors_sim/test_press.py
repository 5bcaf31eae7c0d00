"""Unit tests of the press simulator: determinism, schema, realism of the background, Vietnamese
text handling, and every incident kind caught by the shipped rules of rules/press.yaml."""

from __future__ import annotations

import re
import statistics
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from ioc.alerts import Alert
from ioc.analysis.backtest import RawEvent, run_backtest
from ioc.analysis.scoring import TruthIncident, score_alerts
from ioc.events import decode
from ioc.refdata import load_reference
from ioc.rules.loader import RuleSet, load_rules
from ioc.text import fold, normalize
from ioc.timeutil import parse_ts
from sensors_sim.base import Incident
from sensors_sim.press import (
    DEFAULT_REFERENCE_PATH,
    HUE_ALIASES,
    INCIDENT_RULES,
    SPIKE_HISTORY_S,
    OutletConfigError,
    PressSimulator,
    load_outlets,
    retype,
)
from sensors_sim.reservoir import ReservoirSimulator, load_stations

REPO = Path(__file__).resolve().parents[3]
START = parse_ts("2025-10-20T00:00:00+07:00")
DAY = 86400.0
HOUR = 3600.0
SLACK_S = 60.0  # an alert may start this much before the incident's first event (none should)

Event = dict[str, Any]

# The regexes the shipped rules apply (rules/press.yaml).
HUE_MENTION = re.compile(r"(?<!\w)(huế|hue|cố đô)(?!\w)")
FLOOD_WORDS = re.compile(r"(?<![a-z0-9])(xa lu|vo dap|ngap(?! tran))(?![a-z0-9])")
FLOOD_TOPICS = re.compile(r"(?<![a-z0-9])(lu lut|mua lu|bao lu|ngap lut|thien tai)(?![a-z0-9])")
MOJIBAKE = re.compile("Ã|Ä|Æ|á»|áº|\ufffd|\\?\\?")


@cache
def ruleset() -> RuleSet:
    return load_rules([REPO / "rules" / "press.yaml"], load_reference(REPO / "config" / "reference"))


@cache
def background(seed: int = 0, days: float = 30.0, **knobs: Any) -> tuple[Event, ...]:
    return tuple(PressSimulator(seed=seed, start=START, **knobs).events(START + days * DAY))


def backtest(events: Iterable[Event], extra: Iterable[tuple[str, Event]] = ()) -> list[Alert]:
    rows = [RawEvent("press", e, e["id"]) for e in events]
    rows += [RawEvent(stream, e, e["id"]) for stream, e in extra]
    result = run_backtest(ruleset(), rows)
    assert not result.invalid, result.invalid_examples
    return result.alerts


def firing(alerts: Iterable[Alert]) -> list[Alert]:
    return [a for a in alerts if a.status == "firing"]


def catches(alert: Alert, incident: Incident, rules: Sequence[str] | None = None, slack_s: float = SLACK_S) -> bool:
    return (
        alert.status == "firing"
        and alert.rule_id in (rules or incident.rules)
        and all(alert.key.get(k) == v for k, v in incident.keys.items())
        and incident.start - slack_s <= alert.starts_at <= incident.end
    )


def run_with(kind: str, *, at: float, duration: float, days: float = 6.0, seed: int = 0,
             **params: Any) -> tuple[Incident, list[Event], list[Alert]]:
    sim = PressSimulator(seed=seed, start=START)
    incident = sim.add_incident(kind, at=at, duration=duration, **params)
    events = list(sim.events(START + days * DAY))
    return incident, events, backtest(events)


def local_hour(event: Event) -> int:
    return int((parse_ts(event["ts"]) + 7 * HOUR) // HOUR % 24)


# --- reference data --------------------------------------------------------------------------


def test_outlets_come_from_the_reference_file() -> None:
    outlets = load_outlets()
    doc = yaml.safe_load(DEFAULT_REFERENCE_PATH.read_text(encoding="utf-8"))
    assert [o.source_id for o in outlets] == [item["source_id"] for item in doc["items"]]
    assert len(outlets) == 15
    local = [o for o in outlets if not o.national]
    assert {o.source_id for o in local} == {"baothuathienhue.vn", "huengaynay.vn", "hue.gov.vn", "trt.com.vn"}
    # Local outlets write dozens of articles a day between them, each national one a few.
    assert all(8 <= o.articles_per_day <= 30 for o in local)
    assert all(0.5 <= o.articles_per_day <= 5 for o in outlets if o.national)


def test_a_bad_outlet_file_lists_every_problem(tmp_path: Path) -> None:
    text = DEFAULT_REFERENCE_PATH.read_text(encoding="utf-8")
    bad = text.replace("national: false", "national: maybe", 1).replace("outlet_reach: 500000\n", "outlet_reach: -1\n")
    path = tmp_path / "press.yaml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(OutletConfigError) as caught:
        load_outlets(path)
    assert caught.value.problems == [
        "press.yaml: item 1: national: 'maybe' is not true or false",
        "press.yaml: item 2: outlet_reach: -1 is not a positive number",
    ]


# --- determinism, order, schema --------------------------------------------------------------


def test_same_seed_gives_identical_events_and_another_seed_differs() -> None:
    sim = PressSimulator(seed=0, start=START)
    first = list(sim.events(START + 3 * DAY))
    assert list(sim.events(START + 3 * DAY)) == first  # events() replays from the seed
    assert list(PressSimulator(seed=0, start=START).events(START + 3 * DAY)) == first
    assert list(background(0, 3.0)) == first
    other = list(PressSimulator(seed=1, start=START).events(START + 3 * DAY))
    assert [e["title"] for e in other] != [e["title"] for e in first]
    # Byte-identical as JSONL, too.
    assert b"\n".join(map(orjson.dumps, first)) == b"\n".join(map(orjson.dumps, background(0, 3.0)))


def test_a_shorter_run_is_a_prefix_of_a_longer_one() -> None:
    long = background(0, 3.0)
    short = list(PressSimulator(seed=0, start=START).events(START + 1.5 * DAY))
    assert short == list(long[: len(short)])
    assert all(parse_ts(e["ts"]) < START + 1.5 * DAY for e in short)
    assert parse_ts(long[len(short)]["ts"]) >= START + 1.5 * DAY


def test_events_are_ts_ordered_with_unique_ids_and_all_pass_the_schema() -> None:
    sim = PressSimulator(seed=3, start=START + 1234.5)  # a start that is not on a day or second boundary
    for number, kind in enumerate(("negative_national", "negative_wave", "flood_coverage"), start=1):
        sim.add_incident(kind, at=START + number * DAY + 0.25, duration=8 * HOUR)
    events = list(sim.events(START + 4 * DAY))
    times = [parse_ts(e["ts"]) for e in events]
    assert times == sorted(times)
    assert times[0] >= START + 1234.5
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert all(e["id"].startswith(e["source_id"] + "-") for e in events)
    for event in events:
        decoded = decode("press", event)
        assert decoded["source_id"] == event["source_id"]
        assert decoded["ts"] == parse_ts(event["ts"])
        assert set(event) == {"source_id", "ts", "id", "url", "title", "body", "lang", "topics", "sentiment",
                              "engagement", "is_official"}


def test_incidents_do_not_change_the_background() -> None:
    sim = PressSimulator(seed=0, start=START)
    sim.add_incident("negative_wave", at=START + DAY, duration=4 * HOUR)
    sim.add_incident("flood_coverage", at=START + 2 * DAY, duration=6 * HOUR)
    mixed = list(sim.events(START + 3 * DAY))
    assert [e for e in mixed if "-press-" not in e["id"]] == list(background(0, 3.0))
    assert len(mixed) > len(background(0, 3.0))


# --- realism of the background ---------------------------------------------------------------


def test_publication_rates_per_outlet_and_hour_of_day() -> None:
    events = background(0, 30.0)
    per_day = {sid: n / 30.0 for sid, n in Counter(e["source_id"] for e in events).items()}
    outlets = {o.source_id: o for o in load_outlets()}
    assert set(per_day) == set(outlets)  # every outlet publishes
    local = sum(v for k, v in per_day.items() if not outlets[k].national)
    assert 40 <= local <= 90  # dozens of local articles a day
    assert 14 <= per_day["baothuathienhue.vn"] <= 35
    for sid, rate in per_day.items():
        if outlets[sid].national:
            assert 0.3 <= rate <= 6, (sid, rate)  # a few articles about Huế a day
    hours = Counter(local_hour(e) for e in events)
    night = sum(hours[h] for h in range(0, 5)) / 5
    morning = sum(hours[h] for h in range(7, 10)) / 3
    assert morning > 8 * night  # newsrooms publish in the morning, not at 3 a.m.
    # Two disaster-prevention bulletins a day, at 06:00 and 17:00 local.
    bulletins = [e for e in events if "phòng chống thiên tai" in e["topics"]]
    assert len(bulletins) == 60
    assert {local_hour(e) for e in bulletins} == {6, 17}


def test_sentiment_topics_engagement_urls_and_outlet_flags() -> None:
    events = background(0, 30.0)
    outlets = {o.source_id: o for o in load_outlets()}
    sentiments = [e["sentiment"] for e in events]
    assert min(sentiments) > -0.5  # never what the negative-press rules watch
    assert max(sentiments) <= 1.0
    negative = sum(s < -0.05 for s in sentiments) / len(sentiments)
    positive = sum(s > 0.05 for s in sentiments) / len(sentiments)
    assert 0.02 <= negative <= 0.2 < 0.5 <= positive
    assert statistics.mean(sentiments) > 0.15
    topics = Counter(t for e in events for t in e["topics"])
    for topic in ("du lịch", "di sản", "kinh tế", "giao thông", "thời tiết", "giáo dục", "văn hóa", "lễ hội",
                  "chính quyền"):
        assert topics[topic] >= 30, topic
    for event in events:
        outlet = outlets[event["source_id"]]
        assert event["is_official"] is outlet.official
        assert event["lang"] == "vi"
        assert event["url"].startswith(f"https://{event['source_id']}/")
        assert re.fullmatch(r"https://[a-z0-9./-]+", event["url"]), event["url"]
        assert isinstance(event["engagement"], int) and event["engagement"] >= 0
        assert event["topics"] and all(isinstance(t, str) for t in event["topics"])
    national = statistics.median(e["engagement"] for e in events if outlets[e["source_id"]].national)
    local = statistics.median(e["engagement"] for e in events if not outlets[e["source_id"]].national)
    assert national > 3 * local


def test_every_article_names_the_province_and_the_aliases_all_occur() -> None:
    events = background(0, 30.0)
    for event in events:
        text = normalize(event["title"]) + " " + normalize(event["body"])
        assert HUE_MENTION.search(text), event
    nfc = " ".join(unicodedata.normalize("NFC", e["title"] + " " + e["body"]) for e in events)
    for alias in HUE_ALIASES:
        assert nfc.count(alias) >= 20, alias


def test_background_has_no_flood_keywords_and_few_flood_topics() -> None:
    events = background(0, 30.0)
    for event in events:
        assert not FLOOD_WORDS.search(fold(event["title"]) + " | " + fold(event["body"])), event
        assert not FLOOD_WORDS.search(fold(event["topics"][0] if len(event["topics"]) == 1 else " ".join(
            event["topics"]))), event
    # The near miss of real festival news: "ngập tràn sắc màu" (brimming with colour) occurs.
    assert any("ngap tran" in fold(e["title"]) for e in events)
    flood_topic = [e for e in events if FLOOD_TOPICS.search(fold(" ".join(e["topics"])))]
    assert 2.0 <= len(flood_topic) / 30.0 <= 4.0  # the two bulletins, and a few weather articles


# --- Vietnamese text -------------------------------------------------------------------------


def test_mixed_unicode_forms_in_realistic_shares() -> None:
    events = background(0, 30.0)
    n = len(events)
    nfd = sum(not unicodedata.is_normalized("NFC", e["title"] + e["body"]) for e in events)
    with_d = [e for e in events if re.search("[Đ\u00d0]", e["title"] + e["body"])]
    eth = sum("\u00d0" in e["title"] + e["body"] for e in with_d)
    new_tone = sum(bool(re.search("oà|oá|oả|uỷ|uý|oẻ", unicodedata.normalize("NFC", e["title"] + e["body"])))
                   for e in events)
    old_tone = sum(bool(re.search("òa|óa|ỏa|ủy|úy|ỏe", unicodedata.normalize("NFC", e["title"] + e["body"])))
                   for e in events)
    assert 0.1 <= nfd / n <= 0.2
    assert 0.015 <= eth / len(with_d) <= 0.06  # Ð typed for Đ in a few articles that have a Đ
    assert new_tone >= 0.1 * n and old_tone >= 0.3 * n


def test_texts_round_trip_vietnamese_correctly() -> None:
    """Same seed with and without typing variants: the same articles; every variant normalises
    (ioc.text.normalize) to the intended text, and no text is mojibake."""
    typed = background(0, 10.0)
    intended = background(0, 10.0, nfd_share=0.0, tone_share=0.0, eth_share=0.0)
    assert [e["id"] for e in typed] == [e["id"] for e in intended]
    changed = 0
    for got, want in zip(typed, intended, strict=True):
        for field in ("title", "body"):
            assert unicodedata.is_normalized("NFC", want[field]) and "\u00d0" not in want[field]
            assert normalize(got[field]) == normalize(want[field])
            assert fold(got[field]) == fold(want[field])
            changed += got[field] != want[field]
            for text in (got[field], want[field]):
                assert not MOJIBAKE.search(text), text
                assert text.encode("utf-8").decode("utf-8") == text
        assert orjson.loads(orjson.dumps(got)) == got
        assert {k: v for k, v in got.items() if k not in ("title", "body")} == {
            k: v for k, v in want.items() if k not in ("title", "body")}
    assert changed > 0.2 * len(typed)
    # A few exact intended texts with their Vietnamese letters.
    titles = {e["title"] for e in intended}
    assert any("Đại Nội" in t for t in titles) and any("lăng Tự Đức" in t for t in titles)


def test_retype_variants() -> None:
    text = "Hòa bình, sức khỏe, Thủy Xuân, thuyền, hoàng cung, Thuận Hóa, Quý, Đại Nội"
    assert retype(text, tone=True) == "Hoà bình, sức khoẻ, Thuỷ Xuân, thuyền, hoàng cung, Thuận Hoá, Quý, Đại Nội"
    assert retype(text, eth=True).count("\u00d0") == 1
    nfd = retype(text, nfd=True, tone=True, eth=True)
    assert not unicodedata.is_normalized("NFC", nfd)
    assert normalize(nfd) == normalize(text)
    assert retype(text) == text


# --- the shipped rules ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_background_alone_sets_off_no_press_rule(seed: int) -> None:
    """30 days (beyond the 7-day learning of press.outlet.new_hue and the spike rule's baseline)."""
    alerts = backtest(background(seed, 30.0))
    assert firing(alerts) == []


def test_negative_national_is_caught_per_outlet() -> None:
    at = START + 2 * DAY + 9 * HOUR
    incident, events, alerts = run_with("negative_national", at=at, duration=4 * HOUR, outlet="vnexpress.net")
    assert incident.keys == {"source_id": "vnexpress.net"}
    assert incident.rules == ("press.hue.negative_national",)
    assert incident.start == at and incident.end == at + 4 * HOUR
    mine = [e for e in events if incident.id in e["id"]]
    assert len(mine) == 3 and all(e["sentiment"] <= -0.5 and e["source_id"] == "vnexpress.net" for e in mine)
    assert all(HUE_MENTION.search(normalize(e["title"] + " " + e["body"])) for e in mine)
    caught = [a for a in alerts if catches(a, incident)]
    assert len(caught) == 1 and caught[0].starts_at == at
    assert [a for a in firing(alerts) if not catches(a, incident)] == []


def test_negative_national_default_outlet_is_a_national_one() -> None:
    sim = PressSimulator(seed=5, start=START)
    incident = sim.add_incident("negative_national", at=START + HOUR, duration=0)
    assert {o.source_id: o.national for o in load_outlets()}[incident.keys["source_id"]]
    assert incident.start == incident.end == START + HOUR


def test_negative_wave_is_caught_by_the_wide_story_rule() -> None:
    at = START + 3 * DAY + 8 * HOUR
    incident, events, alerts = run_with("negative_wave", at=at, duration=5 * HOUR, outlets=6)
    mine = [e for e in events if incident.id in e["id"]]
    assert len({e["source_id"] for e in mine}) == 6
    assert incident.end - incident.start <= 6 * HOUR
    assert all(e["sentiment"] <= -0.5 for e in mine)
    wide = [a for a in alerts if catches(a, incident, ["press.story.negative_wide"])]
    assert len(wide) == 1 and wide[0].key == {"lang": "vi"} and wide[0].value == 5
    # Its per-outlet alerts are part of the incident too (precision 1.0).
    assert all(catches(a, incident) for a in firing(alerts))


def test_flood_coverage_is_caught_by_the_flood_story_rule() -> None:
    at = START + 4 * DAY + 2 * HOUR
    incident, events, alerts = run_with("flood_coverage", at=at, duration=10 * HOUR, dam_rumour=True)
    assert incident.keys == {"lang": "vi"}
    assert incident.rules == ("press.story.flood_wide", "press.topic.flood.spike", "press.story.syndicated")
    mine = [e for e in events if incident.id in e["id"]]
    assert len(mine) == 7 + 10 and len({e["source_id"] for e in mine}) == 7
    assert all(FLOOD_WORDS.search(fold(e["title"] + " " + e["body"])) for e in mine)
    assert any("vo dap" in fold(e["title"]) for e in mine)
    assert all(-0.5 < e["sentiment"] < 0 for e in mine)
    assert any(catches(a, incident, ["press.story.flood_wide"]) for a in alerts)
    assert all(catches(a, incident) for a in firing(alerts))


def kim_long_readings(start: float, end: float, level: float = 2.4) -> list[tuple[str, Event]]:
    """The reservoir stream's Kim Long gauge, every 15 min, above BĐ2 (2.0 m)."""
    readings = []
    t = start
    while t <= end:
        readings.append(("reservoir", {"source_id": "kim-long", "ts": t, "id": f"kim-long-{int(t)}",
                                       "level_m": level}))
        t += 900.0
    return readings


def test_flood_coverage_with_kim_long_above_bd2_is_caught_by_the_cross_stream_rules() -> None:
    at = START + 4 * DAY + 2 * HOUR
    sim = PressSimulator(seed=0, start=START)
    incident = sim.add_incident("flood_coverage", at=at, duration=8 * HOUR, dam_rumour=True,
                                kim_long_above_bd2=True)
    assert incident.keys == {}
    assert {"press.flood.kim_long_bd2", "press.dam.break_kim_long_bd2", "press.story.flood_wide"} <= set(
        incident.rules)
    events = list(sim.events(START + 6 * DAY))
    gauge = kim_long_readings(at - HOUR, at + 9 * HOUR)
    alerts = backtest(events, gauge)
    # The sequence rules start at the Kim Long reading the article completes, up to their
    # `within` (1 h) before it: the slack of the check is that hour.
    for rule in ("press.flood.kim_long_bd2", "press.dam.break_kim_long_bd2", "press.story.flood_wide"):
        assert any(catches(a, incident, [rule], slack_s=HOUR) for a in alerts), rule
    assert all(catches(a, incident, slack_s=HOUR) for a in firing(alerts))
    # Without the flood on the river, background articles never pair with a high Kim Long.
    assert firing(backtest(background(0, 6.0), gauge)) == []


def test_flood_coverage_during_a_simulated_reservoir_flood() -> None:
    """The same with the reservoir simulator's flood: the articles start once Kim Long is over BĐ2."""
    flood = ReservoirSimulator(load_stations(), seed=1, start=START, flood_at_s=3 * HOUR)
    gauge = [("reservoir", e) for e in flood.events(2 * DAY)]
    high = [parse_ts(e["ts"]) for _, e in gauge if e["source_id"] == "kim-long" and e["level_m"] >= 2.0]
    assert high and high[-1] - high[0] > 10 * HOUR
    sim = PressSimulator(seed=1, start=START)
    incident = sim.add_incident("flood_coverage", at=high[0] + HOUR, duration=8 * HOUR, kim_long_above_bd2=True)
    alerts = backtest(sim.events(START + 2 * DAY), gauge)
    assert any(catches(a, incident, ["press.flood.kim_long_bd2"], slack_s=HOUR) for a in alerts)
    assert any(catches(a, incident, ["press.story.flood_wide"]) for a in alerts)
    assert all(catches(a, incident, slack_s=HOUR) for a in firing(alerts))


def test_topic_spike_needs_a_week_of_history_and_is_then_caught() -> None:
    sim = PressSimulator(seed=0, start=START)
    # The first bulletin is at 06:00 local on the first day; the rule judges 7 d 54 min later.
    assert sim.spike_ready_at == START + 6 * HOUR + SPIKE_HISTORY_S
    with pytest.raises(ValueError, match="7-day baseline"):
        sim.add_incident("topic_spike", at=START + 5 * DAY, duration=HOUR)
    at = sim.spike_ready_at
    incident = sim.add_incident("topic_spike", at=at, duration=2 * HOUR)
    assert incident.keys == {"lang": "vi"} and incident.rules == ("press.topic.flood.spike", "press.story.syndicated")
    events = list(sim.events(at + DAY))
    mine = [e for e in events if incident.id in e["id"]]
    assert len(mine) == 12
    assert all(FLOOD_TOPICS.search(fold(" ".join(e["topics"]))) for e in mine)
    assert not any(FLOOD_WORDS.search(fold(e["title"] + " " + e["body"])) for e in mine)
    alerts = backtest(events)
    caught = [a for a in alerts if catches(a, incident, ["press.topic.flood.spike"])]
    assert len(caught) == 1 and caught[0].details["current"] == 6
    # Its articles, composed from few sentences, are also one near-duplicate story (INCIDENT_RULES).
    assert [a.rule_id for a in firing(alerts) if a not in caught] == ["press.story.syndicated"]
    assert all(catches(a, incident) for a in firing(alerts))


@pytest.mark.parametrize("story", [0, 1, 2])
def test_syndicated_story_is_caught_by_the_near_duplicate_rule(story: int) -> None:
    at = START + 2 * DAY + 9 * HOUR
    incident, events, alerts = run_with("syndicated_story", at=at, duration=5 * HOUR, outlets=6, story=story)
    assert incident.keys == {"lang": "vi"} and incident.rules == ("press.story.syndicated",)
    mine = [e for e in events if incident.id in e["id"]]
    assert len({e["source_id"] for e in mine}) == 6 and incident.end - incident.start <= 5 * HOUR
    # The copies are edited: not all the same text (titles, bylines, a sentence left out).
    assert len({(e["title"], e["body"]) for e in mine}) > 1
    caught = [a for a in alerts if catches(a, incident)]
    assert len(caught) == 1 and caught[0].value == 5 and caught[0].key == {"lang": "vi", "story": mine[0]["id"]}
    assert caught[0].evidence == [e["id"] for e in mine[:5]]
    # Nothing else fires in the run (6 days of background).
    assert firing(alerts) == caught


def test_every_kind_in_one_run_scores_recall_and_precision_one() -> None:
    sim = PressSimulator(seed=4, start=START)
    incidents = [
        sim.add_incident("negative_national", at=START + 1 * DAY + 9 * HOUR, duration=2 * HOUR),
        sim.add_incident("negative_wave", at=START + 2 * DAY + 9 * HOUR, duration=5 * HOUR),
        sim.add_incident("flood_coverage", at=START + 3 * DAY + 9 * HOUR, duration=12 * HOUR),
        sim.add_incident("topic_spike", at=sim.spike_ready_at + 2 * HOUR, duration=HOUR),
        sim.add_incident("syndicated_story", at=sim.spike_ready_at + 2 * DAY, duration=5 * HOUR),
        sim.add_incident("negative_national", at=sim.spike_ready_at + DAY, duration=0, outlet="vtv.vn"),
    ]
    assert tuple(i.kind for i in incidents[:5]) == sim.incident_kinds == tuple(INCIDENT_RULES)
    assert all(i.rules == INCIDENT_RULES[i.kind] for i in incidents)
    assert len({i.id for i in incidents}) == len(incidents)
    alerts = backtest(sim.events(sim.spike_ready_at + 3 * DAY))
    truth = [TruthIncident.from_record(orjson.loads(orjson.dumps(i.to_record()))) for i in incidents]
    score = score_alerts(alerts, truth, slack_s=SLACK_S)
    assert score.recall == 1.0, score.missed
    assert {rule: s.precision for rule, s in score.rules.items()} == dict.fromkeys(score.rules, 1.0)
    assert "press.story.negative_wide" in score.rules and "press.topic.flood.spike" in score.rules
    assert "press.story.syndicated" in score.rules


# --- parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("landslide", {}, "unknown press incident 'landslide'"),
        ("negative_national", {"outlet": "huengaynay.vn"}, "not a national outlet"),
        ("negative_national", {"outlet": "tinnong24h.net"}, "not in the reference data"),
        ("negative_national", {"sentiment": -0.3}, "must be within -1..-0.5"),
        ("negative_wave", {"outlets": 4}, "outlets \\(4\\) must be a whole number within 5..15"),
        ("flood_coverage", {"dam_rumour": "yes"}, "must be true or false"),
        ("flood_coverage", {"colour": "red"}, "unknown parameter\\(s\\) colour"),
        ("topic_spike", {"articles": 3}, "within 6..2000"),
    ],
)
def test_bad_incidents_are_refused(kind: str, params: dict[str, Any], message: str) -> None:
    sim = PressSimulator(seed=0, start=START)
    with pytest.raises(ValueError, match=message):
        sim.add_incident(kind, at=sim.spike_ready_at, duration=HOUR, **params)


def test_incident_before_the_start_is_refused_and_knobs_are_checked() -> None:
    sim = PressSimulator(seed=0, start=START)
    with pytest.raises(ValueError, match="at or after the simulation start"):
        sim.add_incident("negative_wave", at=START - 1, duration=HOUR)
    with pytest.raises(ValueError, match="nfd_share"):
        PressSimulator(start=START, nfd_share=1.5)
    assert list(PressSimulator(start=START, rate_scale=0.0).events(START + 2 * DAY)) == []


def test_rate_scale_multiplies_the_traffic() -> None:
    base = len(background(0, 3.0))
    scaled = len(list(PressSimulator(seed=0, start=START, rate_scale=10.0).events(START + 3 * DAY)))
    assert 8 * base <= scaled <= 11 * base
