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


def test_the_idle_host_estimate_spreads_cpu_over_the_threads_ready_and_at_most_two_cores():
    # 0-1 s: the main thread alone ready (it waits on nothing else), 0.5 s of CPU: a loaded host's share, which an
    # idle host gives in 0.5 s; 1-2 s: three threads ready, 1.6 s of CPU: two cores do it in 0.8 s; 2-3 s: one
    # thread ready at a time (two that hand work to each other), 0.8 s of CPU: 0.8 s
    samples = [(0.0, {1: (0.0, "MainThread")}), (0.5, {1: (0.25, "MainThread")}),
               (1.0, {1: (0.5, "MainThread")}), (1.5, {1: (0.7, "MainThread"), 2: (0.4, "lipdub-draw")}),
               (2.0, {1: (0.9, "MainThread"), 2: (0.8, "lipdub-draw"), 3: (0.4, "python")}),
               (2.5, {1: (1.3, "MainThread"), 2: (0.8, "lipdub-draw"), 3: (0.4, "python")}),
               (3.0, {1: (1.3, "MainThread"), 2: (1.2, "lipdub-draw"), 3: (0.4, "python")})]
    tl = _timeline(samples)
    tl.ready = [1, 1, 3, 3, 1, 1, 1]
    assert tl.idle_host(0.0, 1.0, bucket=1.0) == pytest.approx((0.5, 1.0))
    assert tl.idle_host(1.0, 2.0, bucket=1.0) == pytest.approx((0.8, 3.0))
    assert tl.idle_host(2.0, 3.0, bucket=1.0) == pytest.approx((0.8, 1.0))
    assert tl.idle_host(0.0, 3.0, bucket=1.0)[0] == pytest.approx(2.1)


def test_the_sampler_counts_the_threads_ready_and_two_busy_threads_take_their_cpu_over_two_cores():
    import hashlib
    import threading
    import time

    from bench.thread_cpu import ThreadCPU

    def burn(seconds):  # CPU without the GIL (hashlib lets go of it for large buffers)
        t, block = time.thread_time(), bytes(1 << 20)
        while time.thread_time() - t < seconds:
            hashlib.sha256(block).digest()

    with ThreadCPU() as cpu:
        workers = [threading.Thread(target=burn, args=(0.3,)) for _ in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    idle, ready = cpu.idle_host()
    assert len(cpu.ready) == len(cpu.samples) > 3
    assert 1.5 < ready <= 2.5  # both workers ready (on a CPU or waiting for one) at nearly every reading
    assert 0.2 < idle < 0.45  # 0.6 s of CPU on two cores, whatever this host's load made of the wall time


def test_the_idle_host_estimate_never_runs_one_thread_on_two_cores():
    # a reading taken as a thread started to hold the GIL counted three threads ready; the next came 1 s later, the
    # GIL holder's CPU alone in between: its 1 s, not half of it
    tl = _timeline([(0.0, {1: (0.0, "MainThread"), 2: (0.0, "lipdub-speech")}),
                    (1.0, {1: (0.0, "MainThread"), 2: (1.0, "lipdub-speech")})])
    tl.ready = [3, 1]
    assert tl.idle_host(0.0, 1.0, bucket=1.0)[0] == pytest.approx(1.0)
