"""--length fit: the new phrases start on the frames where the original's phrases started; pauses absorb the
difference by dropping or holding their stillest frames, within a cap, and the plan lists each phrase's shift."""

import numpy as np
import pytest
from scipy.io import wavfile

import lipdub
from lipdub import media
from lipdub.core.constants import SR
from lipdub.media.retime import MAX_PACE, MIN_PACE, fit_schedule

from bench.conversation import RIGHT as VOICE, SELFIE, build_fit, measure_fit
from conftest import require_data


def _steps(schedule):
    return np.diff(np.asarray(schedule))


def test_pauses_absorb_the_difference_within_the_cap():
    fps, n_src = 25.0, 250
    original = [(1.0, 3.0), (5.0, 7.0)]
    motion = np.random.default_rng(0).random(n_src)
    # phrase 1 is 20 % shorter, the pause after it as long as the original's: the source must catch up (drops)
    plan = fit_schedule(original, [(1.0, 2.6), (4.6, 6.6)], n_src, fps, 8.0, motion)
    k = plan.schedule
    assert len(k) == 200 and plan.dropped > 0 and plan.held == 0
    assert [p["shift"] for p in plan.phrases] == [0.0, 0.0] and not plan.notes
    assert k[25] == 25 and k[115] == 125  # each new phrase starts on its original's first frame
    steps = _steps(k)
    assert set(steps) <= {1, 2}  # at most one frame skipped at a time
    assert np.all(steps[25:65] == 1) and np.all(steps[115:164] == 1)  # speaking frames at their own pace
    dropped_at = k[:-1][steps == 2] + 1
    assert motion[dropped_at].mean() < motion[65:125].mean()  # the stillest frames go
    # phrase 1 is 95 % longer and the new pause short: beyond the cap, so phrase 2 starts later, and says so
    plan = fit_schedule(original, [(1.0, 4.9), (5.4, 7.4)], n_src, fps, 8.0, motion)
    steps = _steps(plan.schedule)
    assert set(steps) <= {0, 1} and not np.any((steps[1:] == 0) & (steps[:-1] == 0))  # a frame held once at most
    held = np.flatnonzero(steps == 0) + 1
    assert len(held) and np.all(plan.shown[held] == plan.schedule[held] + 0.5)  # shown as the blend with the next
    assert np.all(plan.shown[np.setdiff1d(np.arange(200), held)] == plan.schedule[np.setdiff1d(np.arange(200), held)])
    shift = plan.phrases[1]["shift"]
    assert shift > 0 and "phrase 2 starts" in plan.notes[0]
    pause = slice(int(round(4.9 * fps)), int(round(5.4 * fps)))
    assert (plan.schedule[pause.stop] - plan.schedule[pause.start]) / (pause.stop - pause.start) >= MIN_PACE - 0.05
    assert plan.schedule[pause.stop] == round((5.0 + shift) * fps)
    assert MAX_PACE <= 2 and MIN_PACE >= 0.5


def test_no_phrases_plays_back_and_forth():
    plan = fit_schedule([], [(0.0, 1.0)], 10, 10.0, 3.0)
    assert list(plan.schedule[:12]) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 8, 7] and plan.notes


def test_new_phrases_start_where_the_originals_did(tmp_path):
    """The original: selfie_expressive 0.9–6.5 s with its own sound, two phrases and a pause (measured by the same
    voice activity). The new audio: speech cut from another clip, phrase 1 30 % longer, phrase 2 20 % shorter, a 1 s
    pause between (bench.conversation.build_fit). In the dub, the frame at each new phrase's start is matched to the
    original's frames by the upper face (the mouth is redrawn); it must be the original phrase's first frame (after
    the shift the plan lists), and no frame-to-frame change may exceed the original clip's own largest."""
    case = build_fit(tmp_path, require_data(SELFIE, VOICE))
    (s1, e1), (s2, e2) = case["said"]
    assert len(case["said"]) == 2, case["said"]  # the setup: two phrases and a pause
    heard = case["heard"]
    assert len(heard) == 2 and abs((heard[0][1] - heard[0][0]) / (e1 - s1) - 1.3) < 0.1
    assert abs((heard[1][1] - heard[1][0]) / (e2 - s2) - 0.8) < 0.1
    out = tmp_path / "fit.mp4"
    report = lipdub.dub(case["original"], case["new"], out, length="fit")
    assert report.frames == round(case["samples"] / SR * case["fps"])
    assert len(report.retiming["phrases"]) == 2
    measured = measure_fit(case, out, report)
    print(measured)
    for start in measured["starts"]:
        assert abs(start["shown"] - start["want"]) <= 2, start
        assert abs(start["shift"]) <= 0.1, start  # these pauses can absorb the differences
    assert measured["largest_change_dub"] <= measured["largest_change_original"]
    assert measured["held"] + measured["dropped"] > 0


def test_fit_needs_the_videos_own_sound(tmp_path):
    data = require_data(SELFIE)
    silent = tmp_path / "silent.mp4"
    with media.VideoWriter(silent, 64, 64, 25) as w:
        for _ in range(25):
            w.write(np.zeros((64, 64, 3), np.uint8))
    wavfile.write(tmp_path / "v.wav", SR, np.zeros(SR, np.float32))
    with pytest.raises(lipdub.InputError, match="own sound"):
        lipdub.dub(silent, tmp_path / "v.wav", tmp_path / "o.mp4", length="fit")
    assert not (tmp_path / "o.mp4").exists() and data
