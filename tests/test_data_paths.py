"""The tests read only what ships in the repository: the data sets exist, nothing points outside."""

from __future__ import annotations

import re
import subprocess

import pytest
from data_paths import DATA_SETS, PROJECT_DIR, TESTS_DIR

#: A path into a folder beside the repository (the shared data) or an absolute path of one machine.
OUTSIDE = re.compile(r"""\.\./shared|["']shared["']\s*/|/work/|/home/\w|/Users/\w""")


@pytest.mark.parametrize("name", sorted(DATA_SETS))
def test_every_data_set_the_tests_read_ships_in_the_repository(name: str) -> None:
    path = DATA_SETS[name]
    assert path.exists(), f"{name}: {path} is missing from the checkout"
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    assert files and all(f.stat().st_size > 0 for f in files), f"{name}: empty files in {path}"


def test_no_test_module_reads_a_folder_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(PROJECT_DIR)}:{number}: {line.strip()}"
        for path in sorted(TESTS_DIR.glob("*.py"))
        if path.name != "test_data_paths.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


#: Not scanned: the shipped data, the lock file (URLs only) and this file (its patterns).
SKIPPED = {"uv.lock", "tests/test_data_paths.py"}


@pytest.mark.skipif(not (PROJECT_DIR / ".git").exists(), reason="not a git checkout")
def test_no_tracked_file_names_an_absolute_path_of_one_machine() -> None:
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z"], cwd=PROJECT_DIR, capture_output=True, check=True, timeout=60
        )
        .stdout.decode()
        .split("\0")
    )
    machine = re.compile(r"/work/|/home/\w|/Users/\w")
    offenders = []
    for name in filter(None, listed):
        path = PROJECT_DIR / name
        if name.startswith("pipelines/data/") or name in SKIPPED or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary data
        offenders += [
            f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1) if machine.search(line)
        ]
    assert offenders == []
