"""lipdub.core: the one atomic writer."""

import pytest

from lipdub.apps.batch.attempts import _remove_stale_temporaries
from lipdub.core.files import atomic_path, write_text


def test_a_failed_write_leaves_nothing_and_a_finished_one_replaces_the_target(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
    write_text(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_temporary_left_by_a_killed_join_is_found_by_the_batch_cleanup(tmp_path):
    # join_segments writes through atomic_path; a batch attempt killed mid-join (no `finally` runs) leaves its
    # temporary behind, and the next attempt must remove it
    output = tmp_path / "dub.mp4"
    with pytest.raises(RuntimeError), atomic_path(output) as tmp:
        name = tmp.name
        raise RuntimeError("killed")
    (tmp_path / name).write_bytes(b"partial")  # what SIGKILL would have left
    _remove_stale_temporaries(output)
    assert not (tmp_path / name).exists()
