"""The runtime tests share the engine tests' helpers (`from kindtest import ...`).

pytest puts each test's own folder on sys.path (the tests have no `__init__.py`), so
kindtest is importable from tests/unit/engine only; this adds that folder for the runtime
tests too, also when they run without the engine tests."""

from __future__ import annotations

import sys
from pathlib import Path

ENGINE_TESTS = str(Path(__file__).resolve().parents[1] / "engine")
if ENGINE_TESTS not in sys.path:
    sys.path.insert(0, ENGINE_TESTS)
