"""lipdub.core.threads: a dub holds OpenCV to the calling thread, and that leaves every result the same."""

import threading

import cv2
import numpy as np
import pytest

from lipdub.core.threads import opencv_in_caller


@pytest.fixture
def opencv_threads():
    before = cv2.getNumThreads()
    yield
    cv2.setNumThreads(before)


def test_opencv_runs_in_the_caller_within_and_as_before_after(opencv_threads):
    cv2.setNumThreads(3)
    with opencv_in_caller():
        assert cv2.getNumThreads() == 1
    assert cv2.getNumThreads() == 3


def test_overlapping_dubs_restore_the_count_when_the_last_leaves(opencv_threads):
    cv2.setNumThreads(3)
    first, second = opencv_in_caller(), opencv_in_caller()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert cv2.getNumThreads() == 1  # the second dub still runs
    second.__exit__(None, None, None)
    assert cv2.getNumThreads() == 3
    with pytest.raises(RuntimeError), opencv_in_caller():
        raise RuntimeError("a failed dub")
    assert cv2.getNumThreads() == 3


def test_the_offline_dub_runs_inside(monkeypatch, opencv_threads):
    from lipdub.pipeline import offline

    cv2.setNumThreads(2)
    seen = []
    monkeypatch.setattr(offline, "_dub", lambda *a: seen.append(cv2.getNumThreads()) or "report")
    assert offline.dub("v.mp4", "a.wav", "o.mp4") == "report"
    assert seen == [1] and cv2.getNumThreads() == 2


def _drawing_calls(img: np.ndarray) -> list[np.ndarray]:
    """The OpenCV calls a dub's drawing makes on whole 720p planes, where OpenCV splits work between threads."""
    h, w = img.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x, map_y = xs * 0.93 + 11.3 + 3 * np.sin(ys / 17), ys * 1.04 - 7.7
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    coarse = map_x[::2, ::2].copy()
    return [cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE),
            cv2.remap(img, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE),
            cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR),
            cv2.GaussianBlur(img, (0, 0), 3.3),
            cv2.distanceTransform((grey > 120).view(np.uint8), cv2.DIST_L2, 3),
            cv2.dilate(grey, np.ones((3, 3), np.uint8), iterations=2),
            cv2.warpAffine(img, np.array([[0.9, 0.1, 5.5], [-0.1, 0.95, 3.2]]), (w, h), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REPLICATE),
            cv2.blendLinear(img.astype(np.float32), img[::-1].astype(np.float32), map_y / h, 1 - map_y / h)]


def test_opencv_on_one_thread_gives_the_same_bytes(opencv_threads):
    img = np.random.default_rng(3).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 1.5)  # some structure for the distances and blends
    cv2.setNumThreads(4)
    pooled = _drawing_calls(img)
    with opencv_in_caller():
        alone = _drawing_calls(img)
    for a, b in zip(pooled, alone):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_threads_of_a_dub_each_see_one(opencv_threads):
    cv2.setNumThreads(2)
    seen = []
    with opencv_in_caller():
        t = threading.Thread(target=lambda: seen.append(cv2.getNumThreads()))
        t.start()
        t.join()
    assert seen == [1]
