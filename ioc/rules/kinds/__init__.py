"""The rule kinds, one module each, and the registry that names them.

A new kind: one module (a `RuleSpec` subclass and a `RuleKind` subclass), one line here,
tests, and a section in docs/rules.md.
"""

from __future__ import annotations

from ioc.rules.kinds.base import BuildContext, KindProblem, RuleKind, Runtime
from ioc.rules.kinds.threshold import ThresholdRule

__all__ = ["RULE_KINDS", "BuildContext", "KindProblem", "RuleKind", "Runtime"]

RULE_KINDS: dict[str, type[RuleKind]] = {
    "threshold": ThresholdRule,
}
