"""The test suite's own plumbing: a test run's face-track cache is made for the run and removed when it ends."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_run_has_its_own_cache():
    cache = Path(os.environ["LIPDUB_CACHE"])
    assert cache.is_dir() and cache.name.startswith("lipdub-test-cache-")


def test_a_test_run_removes_its_cache(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LIPDUB_CACHE", "LIPDUB_TEST_RUN_CACHE", "PYTEST_XDIST_WORKER")}
    env["TMPDIR"] = str(tmp_path)  # where the nested run's mkdtemp makes its cache
    nested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         f"{Path(__file__).relative_to(ROOT)}::test_the_run_has_its_own_cache"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert nested.returncode == 0, nested.stdout + nested.stderr
    assert "1 passed" in nested.stdout
    assert not list(tmp_path.glob("lipdub-test-cache-*"))
