"""The preloaded events: `ioc simulate --out` files, generated once per scenario/duration/seed
and cached under .ioc/bench/events/.

>>> files, count = scenario_files("storm-day", "5d", seed=0)       # doctest: +SKIP
>>> count                                                           # the whole-run size
1061492
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["scenario_files", "REPO_ROOT", "CACHE_DIR"]

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".ioc" / "bench"
STREAMS = ("camera", "reservoir", "vessel", "cyber", "press")


def scenario_files(scenario: str, duration: str, seed: int) -> tuple[dict[str, Path], int]:
    """The `<stream>.jsonl` files of a simulated run (generated if not cached) and their line count."""
    folder = CACHE_DIR / "events" / f"{scenario}-{duration}-seed{seed}"
    if not (folder / "done").exists():
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        print(f"generating {scenario} events for {duration} (seed {seed}) into {folder} ...", file=sys.stderr)
        subprocess.run(  # noqa: S603 - fixed argv, no shell
            [sys.executable, "-m", "ioc.cli.main", "simulate", "--scenario", scenario, "--duration", duration,
             "--seed", str(seed), "--out", str(partial)],
            cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
        (folder / "done").write_text("")
    files = {stream: folder / f"{stream}.jsonl" for stream in STREAMS if (folder / f"{stream}.jsonl").exists()}
    count = 0
    for path in files.values():
        with path.open("rb") as lines:
            count += sum(1 for _ in lines)
    return files, count
