"""Versioned model folders (``beamline.model_folder``): whole versions, increasing numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from beamline.errors import PipelineError
from beamline.model_folder import (
    EXPORT_INFO,
    PUBLISH_INFO,
    is_model_folder,
    latest_version,
    prune,
    publish,
    versions,
)


def _export(folder, content: bytes = b"graph-1", info: dict | None = None):
    """An exporter artifact's layout: saved_model/{saved_model.pb, variables/} + export.json."""
    model = folder / "saved_model"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(content)
    (model / "variables" / "variables.index").write_bytes(content + b"-index")
    (folder / EXPORT_INFO).write_text(json.dumps(info or {"classes": ["a", "b"]}))
    return folder


def test_versions_count_up_from_one_in_the_tf_serving_layout(tmp_path):
    root = tmp_path / "models"
    first = publish(_export(tmp_path / "e1", b"one"), root, "digits")
    second = publish(_export(tmp_path / "e2", b"two"), root, "digits")
    assert (first.version, second.version) == (1, 2)
    assert (root / "digits" / "2" / "saved_model.pb").read_bytes() == b"two"
    assert (root / "digits" / "2" / "variables" / "variables.index").is_file()
    assert json.loads((root / "digits" / "1" / EXPORT_INFO).read_text())["classes"] == ["a", "b"]
    assert json.loads((root / "digits" / "1" / PUBLISH_INFO).read_text())["digest"]
    assert versions(root / "digits") == [1, 2] and latest_version(root / "digits") == 2
    assert is_model_folder(root / "digits") and not is_model_folder(tmp_path / "e1")
    assert sorted(p.name for p in (root / "digits").iterdir()) == ["1", "2"]  # no temp left


def test_publishing_the_same_content_again_returns_the_version_already_there(tmp_path):
    root = tmp_path / "models"
    publish(_export(tmp_path / "e1", b"one"), root, "m")
    again = publish(_export(tmp_path / "e1b", b"one"), root, "m")
    assert again.version == 1 and again.reused
    assert versions(root / "m") == [1]


def test_a_half_written_version_is_never_visible_and_is_cleaned_up(tmp_path):
    base = tmp_path / "models" / "m"
    publish(_export(tmp_path / "e1", b"one"), base.parent, "m")
    # A publisher killed mid-copy: its hidden folder has a dead pid (a finished child's).
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    abandoned = base / f".deadbeef.{dead}.tmp"
    (abandoned / "variables").mkdir(parents=True)
    (abandoned / "saved_model.pb").write_bytes(b"half")
    # A folder named like a version but without its SavedModel is not a version either.
    (base / "7").mkdir()
    assert versions(base) == [1]
    published = publish(_export(tmp_path / "e2", b"two"), base.parent, "m")
    assert published.version == 2 and not abandoned.exists()


def test_concurrent_publishers_never_share_a_version(tmp_path):
    root = tmp_path / "models"
    exports = [_export(tmp_path / f"e{i}", f"model-{i}".encode()) for i in range(6)]
    results = []
    threads = [
        threading.Thread(target=lambda e=e: results.append(publish(e, root, "m"))) for e in exports
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.version for r in results) == [1, 2, 3, 4, 5, 6]
    contents = {(root / "m" / str(v) / "saved_model.pb").read_bytes() for v in range(1, 7)}
    assert len(contents) == 6


def test_keep_prunes_the_oldest_versions_only(tmp_path):
    root = tmp_path / "models"
    for i in range(4):
        publish(_export(tmp_path / f"e{i}", f"m{i}".encode()), root, "m", keep=2)
    assert versions(root / "m") == [3, 4]
    assert prune(root / "m", 1) == [3] and versions(root / "m") == [4]
    assert [p.name for p in (root / "m").iterdir()] == ["4"]


def test_bad_names_and_folders_without_a_saved_model_are_refused(tmp_path):
    with pytest.raises(PipelineError, match="plain folder name"):
        publish(_export(tmp_path / "e"), tmp_path / "models", "../up")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PipelineError, match=r"empty: no SavedModel here.*exporter step"):
        publish(tmp_path / "empty", tmp_path / "models", "m")
    assert not os.path.exists(tmp_path / "models" / "m")
