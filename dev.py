#!/usr/bin/env python3
"""Set up the environment and run the demo or the tests: the two commands of the README.

    python3 dev.py demo    # build .venv from uv.lock, then run pipelines/digits.yaml
    python3 dev.py test    # build .venv from uv.lock, then run the whole test suite

Needs only Python 3.11 and pip. The environment is the locked one (uv.lock), installed by uv,
which resolves this stack in seconds where pip backtracks for minutes. Re-running is cheap:
an up-to-date environment is left as it is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
UV_VERSION = "0.9.30"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def sh(*args: str | Path, **kwargs) -> int:
    """Run a command from the project root, echoing it."""
    print("+", " ".join(str(a) for a in args), flush=True)
    return subprocess.call([str(a) for a in args], cwd=ROOT, **kwargs)


def ensure_environment() -> None:
    """Create .venv and sync it with uv.lock (the project itself installed in editable mode)."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"Python 3.11 is required (TFDV 1.16 has no wheel for {sys.version.split()[0]})")
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    uv = BIN / "uv"
    if not uv.exists():
        if sh(BIN / "python", "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}") != 0:
            sys.exit("could not install uv into .venv")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(VENV)}
    # Bytecode compiled at install: uv does not by default, and where PYTHONDONTWRITEBYTECODE is
    # set Python never caches it, so every process would recompile TensorFlow and Beam (Beam's
    # import took 4-6 s instead of 1.4 s, and each Beam worker process pays it again).
    sync = [uv, "sync", "--frozen", "--extra", "test", "--compile-bytecode"]
    if sh(*sync, "--python", BIN / "python", env=env) != 0:
        sys.exit("could not install the locked environment (uv sync failed)")


def demo(args: list[str]) -> int:
    """Run the default pipeline on the shipped demo data."""
    return sh(BIN / "pipeline", "run", "pipelines/digits.yaml", *args)


def test(args: list[str]) -> int:
    """Run the test suite; 'no tests ran' (pytest exit 5) is a failure."""
    code = sh(BIN / "python", "-m", "pytest", *args)
    if code == 5:
        print("pytest collected no tests: treating that as a failure", file=sys.stderr)
        return 1
    return code


def main() -> None:
    """``dev.py demo|test [extra arguments]``."""
    commands = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    ensure_environment()
    sys.exit(commands[sys.argv[1]](sys.argv[2:]))


if __name__ == "__main__":
    main()
