"""The busiest functions of a py-spy raw profile (`ioc bench --profile` writes them).

    .venv/bin/python bench/profile_top.py .ioc/bench/logs/<run>/worker-shipped.pyspy.txt [--top 25]

Raw lines are `frame;frame;...;frame count`, outermost first. Prints each function's share of
all samples: `self` (the innermost frame) and `total` (anywhere on the stack, once per sample).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME_LINE = re.compile(r":\d+\)$")  # py-spy writes `name (file:line)`: one function, whatever its line


def _function(frame: str) -> str:
    return _FRAME_LINE.sub(")", frame.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    total = 0
    for line in args.profile.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        count = int(match["count"])
        frames = [_function(frame) for frame in match["stack"].split(";") if frame.strip()]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for function in set(frames):
            anywhere[function] += count
    print(f"{total:,} samples")
    print(f"{'self':>6} {'total':>6}  function")
    for function, count in own.most_common(args.top):
        print(f"{100 * count / total:5.1f}% {100 * anywhere[function] / total:5.1f}%  {function}")


if __name__ == "__main__":
    main()
