"""OpenCV's worker pool held to the calling thread while a dub runs.

A dub already keeps both cores busy with its own threads (drawing, x264's, the decoder's, the speech analysis), and
its OpenCV calls are small (a mouth's region, a band of rows): OpenCV's pool gains them little and its idle worker
spins in sched_yield between jobs (~0.17 s of CPU per prepared 8 s 720p dub in `perf`; the dub spends ~0.37 s
less with one thread: docs/RESULTS.md, Speed). Each OpenCV call computes the same values on one thread as split
over several (per-pixel or per-row work), so the frames are the same bytes."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import cv2

_lock = threading.Lock()
_holders = 0  # dubs running in this process inside opencv_in_caller
_saved = 0  # OpenCV's thread count before the first of them


@contextmanager
def opencv_in_caller():
    """Within: OpenCV runs each call on the thread that makes it (cv2.setNumThreads(1)); afterwards its thread count
    is what it was. Overlapping dubs in one process (threads) share the setting: the last to leave restores it."""
    global _holders, _saved
    with _lock:
        if _holders == 0:
            _saved = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                cv2.setNumThreads(_saved)
