"""bench.timeline: the CPU of a span and of each bucket, from per-thread samples."""

import pytest

from bench.timeline import Timeline


def _timeline(samples):
    tl = Timeline(interval=0.1)
    tl.t0 = 0.0
    tl.samples = samples
    return tl


def test_a_span_counts_each_threads_cpu_in_it_and_a_new_thread_from_zero():
    samples = [(0.0, {1: (5.0, "MainThread")}),
               (1.0, {1: (5.5, "MainThread"), 2: (0.3, "lipdub-speech")}),
               (2.0, {1: (5.6, "MainThread"), 2: (0.9, "lipdub-speech")}),
               (3.0, {1: (6.6, "MainThread")})]  # the speech thread has ended
    tl = _timeline(samples)
    assert tl.spent(0.0, 2.0) == pytest.approx({"main": 0.6, "speech": 0.9})
    assert tl.spent(2.0, 3.0) == pytest.approx({"main": 1.0})
    groups, rows = tl.rows(1.0)
    assert groups == ["main", "speech"]
    assert [t for t, _ in rows] == [0.0, 1.0, 2.0]
    assert rows[0][1] == pytest.approx({"main": 0.5, "speech": 0.3})  # the CPU of 0-1 s, in cores
    assert rows[2][1] == pytest.approx({"main": 1.0})
