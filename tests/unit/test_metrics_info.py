"""`ioc_rules_info{version}` and `ioc_build_info`: which rule set and which engine a worker runs."""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry

from ioc import __version__
from ioc.config import load_settings
from ioc.metrics import IocMetrics
from ioc.rules.loader import RuleSet
from ioc.runtime.runner import load_ruleset


def test_the_rule_set_version_is_a_hash_of_its_rules_and_changes_with_them() -> None:
    ruleset = load_ruleset(load_settings(env={}))
    again = load_ruleset(load_settings(env={}))
    fewer = RuleSet.of(ruleset.rules[:-1], ruleset.reference)
    assert ruleset.version == again.version != fewer.version
    assert len(ruleset.version) == 12


def test_the_info_gauges_name_the_running_rule_set_and_the_engine() -> None:
    registry = CollectorRegistry()
    metrics = IocMetrics(registry)
    metrics.rules_running(48, "aaaaaaaaaaaa")
    metrics.rules_running(47, "bbbbbbbbbbbb")  # a reload: the previous version's series goes
    assert registry.get_sample_value("ioc_rules_info", {"version": "bbbbbbbbbbbb"}) == 1.0
    assert registry.get_sample_value("ioc_rules_info", {"version": "aaaaaaaaaaaa"}) is None
    assert registry.get_sample_value("ioc_rules_loaded") == 47.0
    assert registry.get_sample_value("ioc_build_info",
                                     {"version": __version__, "python": platform.python_version()}) == 1.0
