"""`python -m ioc.dashboards [--check] [--out DIR]`: write the dashboards' JSON, or check it.

`--check` exits 1 and names the files that differ from what the code generates.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ioc.dashboards.generate import OUT, differences, write

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ioc.dashboards",
                                     description="Generate the IOC Grafana dashboards (JSON) from ioc/dashboards.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a file differs from what the code generates")
    parser.add_argument("--out", type=Path, default=OUT, help=f"the folder of the JSON files (default: {OUT})")
    args = parser.parse_args(argv)
    if args.check:
        found = differences(args.out)
        for path, problem in found:
            print(f"{_shown(path)}: {problem}", file=sys.stderr)
        if found:
            print("The dashboards are generated: edit ioc/dashboards, then run `make dashboards` "
                  "(python -m ioc.dashboards).", file=sys.stderr)
            return 1
        print(f"{_shown(args.out)}: the dashboards are up to date")
        return 0
    for path in write(args.out):
        print(f"wrote {_shown(path)}")
    return 0


def _shown(path: Path) -> str:
    """The path relative to the working directory when it is under it (shorter in CI logs)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
