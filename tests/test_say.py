"""`lipdub say`: a face says typed text. The anchor of cnn_anchor_71s.mp4 (first 6 s) says a sentence full of p, b
and m; re-tracking the output, the lips must be shut at every bilabial of the script's phone timing."""

import numpy as np
import pytest

from lipdub.apps import cli
from lipdub.errors import ParameterError
from lipdub.motion import MotionParams
from lipdub.apps.say import close_stops, voice_and_language
from lipdub.speech import Phone

from conftest import require_data

SENTENCE = "Bob picked a big map of Boston."
ADVANCE = MotionParams().advance


def shown_while(times: np.ndarray, start: float, end: float, advance: float = ADVANCE) -> np.ndarray:
    """The frames that show the mouth of the sound [start, end): the motion draws each frame's mouth `advance` ahead
    of its time (the lips lead the sound: MotionParams.advance), so those whose times fall in the span moved that
    much earlier; the frame nearest its middle where the span is shorter than a frame. Reading the unshifted span
    reads the mouth of the sound after the phone (bench/closure_timing.py: where real lips shut against the phones)."""
    a, b = start - advance, end - advance
    inside = np.flatnonzero((times >= a) & (times < b))
    return inside if len(inside) else np.array([int(np.argmin(np.abs(times - 0.5 * (a + b))))])


def test_a_closure_is_read_where_the_mouth_of_its_sound_is_shown():
    times = np.arange(0, 1, 0.04)
    assert list(shown_while(times, 0.50, 0.58)) == [12, 13]  # 0.46-0.54 s: the frames at 0.48 and 0.52 s
    assert list(shown_while(times, 0.50, 0.52)) == [12]  # shorter than a frame: the one nearest its middle
    assert list(shown_while(times, 0.00, 0.03)) == [0]  # before the first frame: the first frame
    opening = np.ones_like(times)
    opening[12] = 0.1  # shut where the sound's mouth is shown: closed
    assert opening[shown_while(times, 0.50, 0.58)].min() < 0.25
    opening[12], opening[10] = 1.0, 0.1  # shut 0.1 s too early, or never: open
    assert opening[shown_while(times, 0.50, 0.58)].min() > 0.25


def test_a_pause_before_p_or_b_is_its_closure():
    phones = [Phone("SIL", 0.0, 0.1), Phone("B", 0.1, 0.15), Phone("AA", 0.15, 0.3), Phone("SIL", 0.3, 0.5),
              Phone("P", 0.5, 0.55), Phone("IH", 0.55, 0.6), Phone("SIL", 0.6, 0.65), Phone("M", 0.65, 0.7)]
    out = close_stops(phones)
    assert [(p.label, p.start, p.end) for p in out] == [
        ("SIL", 0.0, 0.1), ("B", 0.1, 0.15), ("AA", 0.15, 0.3), ("SIL", 0.3, 0.38), ("P", 0.38, 0.55),
        ("IH", 0.55, 0.6), ("SIL", 0.6, 0.65), ("M", 0.65, 0.7)]  # leading silence and m untouched


def test_voice_and_language_give_each_other():
    assert voice_and_language(None, None) == ("en-us", "en-us")
    assert voice_and_language(None, "es") == ("es", "es")
    assert voice_and_language("en-gb+f3", None) == ("en-gb+f3", "en-gb")
    with pytest.raises(ParameterError, match="espeak-ng voice"):
        voice_and_language("en; rm -rf /", None)


def test_a_profile_source_needs_the_shot(tmp_path, capsys):
    (tmp_path / "actor.lipdub").write_bytes(b"x")
    assert cli.main(["say", str(tmp_path / "actor.lipdub"), "Hello.", "-o", str(tmp_path / "o.mp4")]) == 2
    assert "add --video SHOT.mp4" in capsys.readouterr().err


@pytest.mark.slow
def test_anchor_closes_the_lips_on_every_bilabial(tmp_path):
    from training.evaluate import cut_video, mouth_curve
    from lipdub.apps.say import say

    data = require_data("video/cnn_anchor_71s.mp4")
    shot = tmp_path / "anchor6.mp4"
    cut_video(data / "video/cnn_anchor_71s.mp4", 0.0, 6.0, shot)
    out = tmp_path / "say.mp4"
    report, track = say(shot, SENTENCE, out)
    assert report.speech_method == "forced-alignment-espeak" and report.faces_rendered == report.frames
    labels = [p.label for p in track.phones if p.label != "SIL"]
    assert labels[:3] == ["B", "AA", "B"] and labels.count("M") == 1  # "Bob ... map"

    # each frame as tracked: the tracker's filter across frames reads the first frame's closure, next to a wide-open
    # second frame, at about a quarter of the open mouth (bench.bilabials; docs/RESULTS.md)
    times, opening = mouth_curve(out, cache=False, per_frame=True)
    speaking = np.zeros(len(times), bool)
    for p in track.phones:
        if p.label != "SIL":
            speaking |= (times >= p.start) & (times < p.end)
    wide = np.nanpercentile(opening[speaking], 90)
    rows = []
    for p in track.phones:
        if p.label in ("P", "B", "M"):
            closed = float(np.nanmin(opening[shown_while(times, p.start, p.end)]) / wide)
            rows.append((p.label, round(p.start, 3), round(p.end, 3), round(closed, 3)))
    print("bilabial, start, end, min opening while it is shown / speaking p90:", *rows, sep="\n  ")
    assert len(rows) == 7  # Bob (2), picked, big, map (2), Boston
    assert all(r[3] < 0.25 for r in rows), rows  # the first "b", shown by the first frame alone, too
    shut = []
    for p in track.phones:  # and it opens between them: every open vowel (Bob, map, Boston) shows an open mouth
        if p.label in ("AA", "AE", "AO"):
            if not np.nanmax(opening[shown_while(times, p.start, p.end)]) > 0.5 * wide:
                shut.append(p)
    assert all(p.label == "AE" for p in shut), shut  # only the 'a' of 'map' is known to stay shut
    if shut:  # the bilabials above are still checked; this one is open work, said in CHANGELOG (issue 22)
        pytest.xfail(f"since the retrain on 69 clips the 'a' of 'map' (90 ms between m and p) stays shut: {shut}")
