"""Label matchers: the four operators, missing labels, anchoring, the accepted forms, errors."""

from __future__ import annotations

import pytest

from ioc.sla.matchers import MatcherError, parse_matcher, parse_matchers
from ioc.sla.policy import NotifySettings, SilenceSettings


@pytest.mark.parametrize("text,labels,expected", [
    ('severity="critical"', {"severity": "critical"}, True),
    ('severity="critical"', {"severity": "warning"}, False),
    ('severity!="critical"', {"severity": "warning"}, True),
    ('severity!="critical"', {"severity": "critical"}, False),
    ('severity=~"critical|emergency"', {"severity": "emergency"}, True),
    ('severity=~"crit"', {"severity": "critical"}, False),            # anchored, as Alertmanager
    ('severity=~"crit"', {"severity": "xcrit"}, False),
    ('severity!~"warning|info"', {"severity": "critical"}, True),
    ('severity!~"warning|info"', {"severity": "info"}, False),
    ('team=""', {}, True),                                             # missing label is ""
    ('team!=""', {}, False),
    ('team=~".*"', {}, True),
    ("agency=~\"Sở.*\"", {"agency": "Sở NN&PTNT"}, True),
    ("source_id=ta-trach", {"source_id": "ta-trach"}, True),          # bare value
    ('rule_id=~"a"', {"rule_id": "a\n"}, False),                       # no newline slack at the end
])
def test_operators(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels) is expected


def test_forms_and_canonical_text() -> None:
    braces = parse_matchers('{domain="water", agency=~"a,b", x!="q\\"uote"}')
    assert [str(m) for m in braces] == ['domain="water"', 'agency=~"a,b"', 'x!="q\\"uote"']
    assert [str(m) for m in parse_matchers(["a=1", 'b!~"c"'])] == ['a="1"', 'b!~"c"']
    assert [str(m) for m in parse_matchers({"level": 2})] == ['level="2"']
    assert parse_matchers(None) == ()
    for m in braces:
        assert parse_matcher(str(m)) == m


@pytest.mark.parametrize("text,message", [
    ("severity>critical", "expected name, operator"),
    ("=critical", "expected name, operator"),
    ('severity="critical', "not closed"),
    ('severity=~"(?<=a)b"', "lookbehind"),
    ('severity=~"("', "missing \\)"),
    ("severity==critical", "quote a value"),
])
def test_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(MatcherError, match=message):
        parse_matcher(text)


def test_map_values_must_be_text() -> None:
    with pytest.raises(MatcherError, match="must be text"):
        parse_matchers({"a": ["b"]})


def test_settings_defaults_and_validation() -> None:
    s = NotifySettings()
    assert (s.group_by, s.group_wait, s.group_interval, s.repeat_interval) == (
        ("domain", "rule_id"), 30.0, 300.0, 14400.0)
    assert (s.flapping.max_changes, s.flapping.window, s.flapping.settle) == (6, 3600.0, 1800.0)
    assert s.inhibit_rules[0].source_matchers == ('severity=~"critical|emergency"',)
    assert NotifySettings.model_validate({"repeat_interval": "1h30m"}).repeat_interval == 5400.0
    with pytest.raises(ValueError, match="not a duration"):
        NotifySettings.model_validate({"group_wait": "soon"})
    with pytest.raises(ValueError, match="at least one matcher"):
        SilenceSettings.model_validate({"matchers": [], "ends_at": 10})
    with pytest.raises(ValueError, match="after starts_at"):
        SilenceSettings.model_validate({"matchers": "a=b", "starts_at": 10, "ends_at": 5})
    own = SilenceSettings.model_validate({"matchers": "a=b", "until_resolved": True})
    assert own.until_resolved == ('a="b"',)
