#!/usr/bin/env python3
"""Set up the environment and run the demo or the tests: the two commands of the README.

    python3 dev.py demo    # build .venv from uv.lock, then run pipelines/digits.yaml
    python3 dev.py test    # build .venv from uv.lock, then run the whole test suite

Needs only Python 3.11 and pip. The environment is the locked one (uv.lock), installed by uv,
which resolves this stack in seconds where pip backtracks for minutes. Re-running is cheap:
an up-to-date environment is left as it is.

The sync is inexact (``uv sync --inexact``): it installs and upgrades what uv.lock holds but
removes nothing, so plugins you ``pip install -e`` into .venv survive a re-run. To get back
the exact locked environment, delete .venv and run this again.

It prints one line per phase (environment, uv, sync, command); when a phase fails, the output
of the tool that failed follows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
UV_VERSION = "0.9.30"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def phase(message: str) -> None:
    """Print one progress line of the set-up."""
    print(f"dev.py: {message}", flush=True)


def quiet(*args: str | Path, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a command from the project root, capturing its output (shown only on failure)."""
    out = subprocess.run(
        [str(a) for a in args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stdout + out.stderr)
    return out


def sync_summary(uv_output: str) -> str:
    """``3 packages installed or upgraded`` from uv's messages, or the size of an unchanged one."""
    installed = re.search(r"^Installed (\d+) package", uv_output, re.M)
    if installed:
        return f"{installed.group(1)} packages installed or upgraded"
    # A set: lib64 may be a link to lib.
    found = len({p.name for p in VENV.glob("[Ll]ib*/**/site-packages/*.dist-info")})
    return f"already up to date ({found} packages)"


def ensure_environment() -> None:
    """Create .venv and sync it with uv.lock (the project itself installed in editable mode)."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"Python 3.11 is required (TFDV 1.16 has no wheel for {sys.version.split()[0]})")
    if not (BIN / "python").exists():
        phase(f"creating the environment {VENV.relative_to(ROOT)}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    uv = BIN / "uv"
    if not uv.exists():
        phase(f"installing uv {UV_VERSION} into it")
        pip = [BIN / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        if quiet(*pip, f"uv=={UV_VERSION}").returncode != 0:
            sys.exit("could not install uv into .venv")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(VENV)}
    # Bytecode compiled at install: uv does not by default, and where PYTHONDONTWRITEBYTECODE is
    # set Python never caches it, so every process would recompile TensorFlow and Beam (Beam's
    # import took 4-6 s instead of 1.4 s, and each Beam worker process pays it again).
    # --inexact: keep what the user installed into .venv (their plugins) instead of removing it.
    sync = [uv, "sync", "--frozen", "--inexact", "--extra", "test", "--compile-bytecode"]
    started = time.perf_counter()
    out = quiet(*sync, "--python", BIN / "python", env=env)
    if out.returncode != 0:
        sys.exit("could not install the locked environment (uv sync failed)")
    seconds = time.perf_counter() - started
    phase(f"synced .venv with uv.lock: {sync_summary(out.stderr + out.stdout)} ({seconds:.1f} s)")


def demo(args: list[str]) -> int:
    """Run the default pipeline on the shipped demo data."""
    phase("running pipelines/digits.yaml")
    return subprocess.call([str(BIN / "pipeline"), "run", "pipelines/digits.yaml", *args], cwd=ROOT)


def parallel(args: list[str]) -> list[str]:
    """pytest-xdist options when ``TEST_WORKERS`` is set (``auto``: one per core, at most 4):
    that many worker processes, each test file on one worker.

    Most tests use one core at a time (the suite took 106 % CPU on 2 cores in one process), and
    two workers took it from 19:19 to 14:32. It is not the default: under a second worker's load
    the seq2seq kill-and-resume test once ended 2.5e-7 away from the uninterrupted weights (CPU
    kernels' reduction order varies with thread timing), where the serial suite has always
    passed. A file stays on one worker because its module-scoped fixtures (a trained model, a
    started server) are built once per file. ``-n`` or ``-p no:xdist`` given by the caller wins."""
    wanted = os.environ.get("TEST_WORKERS", "")
    if not wanted or any(a.startswith("-n") or "xdist" in a for a in args):
        return []
    cores = max(1, min(4, os.cpu_count() or 1))
    workers = cores if wanted == "auto" else max(1, int(wanted))
    return ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else []


def test(args: list[str]) -> int:
    """Run the test suite; 'no tests ran' (pytest exit 5) is a failure."""
    phase("running the tests" + (f" ({' '.join(args)})" if args else ""))
    code = subprocess.call([str(BIN / "python"), "-m", "pytest", *parallel(args), *args], cwd=ROOT)
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
