"""A CI slice of the input-layer fuzzing (bench/fuzz.py): a few hundred mutations of tiny generated media files and
a profile, fed to probe_video, iter_frames, load_audio and profile.load in worker processes. Each must end in a
result or a LipdubError: never another exception, a hang or a crash. The full run: `python -m bench.fuzz`."""

from bench import fuzz


def test_mutated_inputs_end_in_a_result_or_a_lipdub_error(tmp_path):
    seeds = fuzz.generated_seeds(tmp_path / "seeds")
    results = fuzz.fuzz(seeds, n=300, seed=1, timeout=30, workers=2, work=tmp_path)
    assert len(results) == 300
    outcomes = {o.split(":")[0] for _, o in results}
    assert {"ok", "error"} <= outcomes  # both kinds reached: the mutations are neither all fatal nor all harmless
    bad = [(c.target, c.mutation, c.path, o) for c, o in results if fuzz.is_bad(o)]
    assert not bad



def test_a_hang_is_cpu_spent_or_a_long_block_not_a_starved_worker():
    # a worker that spins past the timeout's CPU is a hang at once; one that only waits (starved on a loaded host,
    # or blocked) is given ten times the timeout of wall clock first
    import subprocess
    import sys
    import time

    pool = fuzz.Pool.__new__(fuzz.Pool)
    pool.timeout = 1.0
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    wait = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        t0 = time.monotonic()
        c_spin, c_wait = fuzz.cpu_seconds(spin.pid), fuzz.cpu_seconds(wait.pid)
        assert c_spin is not None and c_wait is not None
        assert not pool._overdue(spin, t0, c_spin) and not pool._overdue(wait, t0, c_wait)  # within the timeout
        while fuzz.cpu_seconds(spin.pid) - c_spin <= 1.1 and time.monotonic() - t0 < 9:
            time.sleep(0.1)
        if time.monotonic() - t0 < 9:  # (a host too loaded to give the spinner a second of CPU in 9 s: skipped)
            assert pool._overdue(spin, t0, c_spin)
            assert not pool._overdue(wait, t0, c_wait)
        time.sleep(max(0.0, 10.2 - (time.monotonic() - t0)))
        assert pool._overdue(wait, t0, c_wait)
    finally:
        spin.kill()
        wait.kill()
