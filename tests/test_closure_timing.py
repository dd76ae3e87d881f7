"""bench.closure_timing's lag report: the held-out lags set against where each corpus's filmed lips shut against
their own sound. Synthetic offsets, no shared data."""

from __future__ import annotations

import numpy as np

from bench import closure_timing


def _corpus(name):
    return name.split("_")[0]


def test_a_corpus_whose_lips_shut_early_moves_its_clips_truth_by_the_other_speakers_closures():
    group = {"late_a": "a", "late_b": "b", "plain_c": "c", "plain_d": "d", "plain_e": "e", "few_f": "f"}
    closures = {"late_a": [-3.0] * 6, "late_b": [-3.2] * 6, "plain_c": [-1.0] * 6, "plain_d": [-1.1] * 6,
                "plain_e": [-0.9] * 6, "few_f": [0.0] * 2}
    shifts = closure_timing.corpus_shifts(closures, group, _corpus)
    assert shifts["late_a"] == shifts["late_b"] == -2.0  # the other late speaker's lips shut 2 frames early
    assert shifts["plain_c"] == 0.0
    assert shifts["few_f"] == 0.0  # no other speaker of its corpus: nothing to read
    # the clip's own closures never set its shift: only late_b's are read for late_a
    assert closure_timing.corpus_shifts({**closures, "late_a": [9.0] * 6}, group, _corpus)["late_a"] == -2.0
    lags = {"late_a": 2, "late_b": 2, "plain_c": -1, "plain_d": 0, "plain_e": 1, "few_f": 0}
    report = closure_timing.lag_report(closures, lags, group, _corpus)
    assert report["mean_abs_lag"] == np.mean([2, 2, 1, 0, 1, 0])
    assert report["retimed_mean_abs_lag"] == np.mean([0, 0, 1, 0, 1, 0])
    assert report["r"] < -0.8  # lips early against the sound, the model's mouth late
