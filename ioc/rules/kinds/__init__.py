"""The rule kinds, one module each, and the registry that names them.

A new kind: one module under `ioc/rules/kinds/` defining a `RuleSpec` subclass, a `RuleKind`
subclass and `KIND = <that class>`; one name in `KIND_MODULES`; tests; a page in docs/kinds/.
"""

from __future__ import annotations

import importlib

from ioc.rules.kinds.base import (
    BuildContext,
    InstantRule,
    InstantSpec,
    KindProblem,
    KindProblems,
    Problems,
    RuleKind,
    Runtime,
)

__all__ = ["RULE_KINDS", "KIND_MODULES", "BuildContext", "InstantRule", "InstantSpec", "KindProblem", "KindProblems",
           "Problems", "RuleKind", "Runtime"]

# Registry order is the order kinds are listed in error messages.
KIND_MODULES = ("threshold", "window", "rate", "absence", "geofence", "match", "spike", "new_value", "sequence",
                "near_duplicate", "proximity")


def _load(names: tuple[str, ...]) -> dict[str, type[RuleKind]]:
    kinds: dict[str, type[RuleKind]] = {}
    for name in names:
        module_name = f"{__name__}.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A kind still being written is left out; any other missing import is a real error.
            if exc.name == module_name:
                continue
            raise
        kinds[name] = module.KIND
    return kinds


RULE_KINDS: dict[str, type[RuleKind]] = _load(KIND_MODULES)
