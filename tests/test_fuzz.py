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
