"""The virtualenv Quix Streams runs in: .ioc/bench/quix-venv, with the `bench` extra of
pyproject.toml installed.

    .venv/bin/python bench/quix_env.py          # creates or updates it; prints its python

Why a virtualenv of its own: quixstreams pins confluent-kafka < 2.13 and pydantic < 2.14,
so installing it into .venv would downgrade the librdkafka client and the pydantic that the
worker being measured (and everybody's tests) use. Only the Quix script runs in it.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import venv
from pathlib import Path

from _events import CACHE_DIR, REPO_ROOT

__all__ = ["quix_python", "bench_requirements"]

QUIX_VENV = CACHE_DIR / "quix-venv"


def bench_requirements() -> list[str]:
    """The `bench` optional dependencies declared in pyproject.toml."""
    with (REPO_ROOT / "pyproject.toml").open("rb") as file:
        return list(tomllib.load(file)["project"]["optional-dependencies"]["bench"])


def quix_python(update: bool = False) -> Path:
    """The python of the Quix venv; created (and the requirements installed) when missing."""
    python = QUIX_VENV / "bin" / "python"
    stamp = QUIX_VENV / ".installed"
    requirements = bench_requirements()
    if update or not python.exists() or not stamp.exists() or stamp.read_text() != "\n".join(requirements):
        print(f"installing {', '.join(requirements)} into {QUIX_VENV} ...", file=sys.stderr)
        if not python.exists():
            venv.create(QUIX_VENV, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *requirements], check=True)  # noqa: S603
        stamp.write_text("\n".join(requirements))
    return python


if __name__ == "__main__":
    print(quix_python(update="--update" in sys.argv))
