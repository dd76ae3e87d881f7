"""Shared test helpers: the real-media folder (read-only, outside the repo) and a skip when it is absent.

Use `needs_data` as a decorator/pytestmark, or call `require_data()` inside a test or fixture; `data` is a fixture
returning the folder. Never copy files from DATA into the repository.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
_REASON = f"test media folder {DATA} is absent (the repository's sibling ../shared/data)"

needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=_REASON)


@dataclass
class P:
    """A phone span as the speech stage gives it."""
    label: str
    start: float
    end: float


@dataclass
class FakeSpeech:
    """What the motion stage reads of a speech analysis; loudness and log-mel only where a test needs the learned
    models (their input)."""
    phones: list
    voiced: np.ndarray
    jaw: np.ndarray
    loudness: np.ndarray | None = None
    mel: np.ndarray | None = None
    hop: float = 0.01
    posteriors: np.ndarray | None = None  # hama's phone-class posteriors per hop (the research model reads them)
    components: np.ndarray | None = None  # hama's token components per hop (speech.tokens; the research model too)


def require_data(*relative: str) -> Path:
    """Skip the calling test unless DATA (and every `relative` file in it) exists; returns DATA."""
    if not DATA.is_dir():
        pytest.skip(_REASON)
    for rel in relative:
        if not (DATA / rel).is_file():
            pytest.skip(f"test media file {DATA / rel} is absent")
    return DATA


@pytest.fixture
def data() -> Path:
    return require_data()


def write_cut(src: Path, out: Path, stop: int, start: int = 0, crf: float = 12) -> Path:
    """Frames [start, stop) of `src` written by lipdub's own writer (tagged BT.709, so HD cuts take the YUV render
    path); returns `out`."""
    from lipdub import media

    info = media.probe_video(src)
    with media.VideoWriter(out, info.width, info.height, info.fps, crf=crf) as w:
        for fr in media.iter_frames(src, start):
            if fr.index >= stop:
                break
            w.write(fr.rgb)
    return out


# Tests never read or fill the user's face-track cache: one fresh cache per test run (CI starts empty too), shared by
# the run's xdist workers (they inherit the controller's environment; entries are content-keyed and written atomically)
import os as _os
import shutil as _shutil
import tempfile as _tempfile

_RUN_CACHE_MADE_HERE = not (_os.environ.get("PYTEST_XDIST_WORKER") and _os.environ.get("LIPDUB_TEST_RUN_CACHE"))
if _RUN_CACHE_MADE_HERE:
    _os.environ["LIPDUB_TEST_RUN_CACHE"] = _tempfile.mkdtemp(prefix="lipdub-test-cache-")
_os.environ["LIPDUB_CACHE"] = _os.environ["LIPDUB_TEST_RUN_CACHE"]


def pytest_unconfigure(config) -> None:
    """The run's cache goes with the run (~0.1 GB each): removed by the process that made it, which under xdist ends
    after its workers."""
    if _RUN_CACHE_MADE_HERE:
        _shutil.rmtree(_os.environ["LIPDUB_TEST_RUN_CACHE"], ignore_errors=True)
