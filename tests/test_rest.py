"""Silences rest at the speaker's own rest mouth (issue 21): a speaker who never shuts the lips keeps them parted in
the new speech's silences, still, with ramps; one who rests shut stays shut; bilabials shut whatever the rest.
Synthetic speech and tracks; the face topology comes from a real track (skips without ../shared/data)."""

import numpy as np
import pytest

from conftest import P, require_data
from lipdub import face, media, motion, render
from lipdub.pipeline.offline import filmed_pauses
from lipdub.render.interior import CLOSED_LINE_OPENING
from test_motion import frames, speech_of
from test_render_realism import _renderer, topology  # noqa: F401 (topology: a fixture shared with that module)

# silence, "ah", a bilabial inside speech, "ah", a long silence, "ah", silence
PHONES = [P("SIL", 0, 0.8), P("AA", 0.8, 1.2), P("M", 1.2, 1.3), P("AA", 1.3, 1.6), P("SIL", 1.6, 3.0),
          P("AA", 3.0, 3.4), P("SIL", 3.4, 4.0)]


def _track():
    return motion.mouth_track(speech_of(PHONES, duration=4.0), frames(duration=4.0))


def test_motion_marks_silences_as_rest_and_bilabials_as_shut():
    m = _track()
    t = m.times + motion.MotionParams().advance
    silent = (t > 1.9) & (t < 2.6)
    assert m.rest is not None and np.all(m.rest[silent] == 1.0) and np.all(m.opening[silent] == 0.0)
    speaking = (t > 0.95) & (t < 1.1)
    assert np.all(m.rest[speaking] == 0.0)
    at_m = (t >= 1.22) & (t <= 1.27)
    assert at_m.any() and np.all(m.rest[at_m] == 0.0) and np.all(m.opening[at_m] == 0.0)
    # strength 0 keeps the mouth still: no rest to move to either
    still = motion.mouth_track(speech_of(PHONES, duration=4.0), frames(duration=4.0), strength=0.0)
    assert np.all(still.rest == 0.0) and np.all(still.opening == 0.0)


def _filmed(can, openings, fps=25.0):
    """A face filmed with these inner-lip gaps (canonical units; 100 px per unit)."""
    n = len(openings)
    shapes = np.repeat(can[None].astype(np.float64), n, 0)
    for k, gap in enumerate(openings):
        for up, lo in render.INNER_PAIRS:
            shapes[k, lo, 1] = shapes[k, up, 1] + gap
    lms = (shapes * 100 + [200, 120, 0]).astype(np.float32)
    return face.FaceTrack(np.arange(n) / fps, lms, np.ones(n, bool), 400, 400)


def _never_shut(n=200):
    """A speaker whose lips stay apart (0.06-0.2) all through: stNg_talk1's kind."""
    return 0.06 + 0.14 * np.abs(np.sin(np.arange(n) * 0.37))


def test_a_speaker_who_rests_open_keeps_a_still_open_rest_in_the_new_silences(topology):
    track = _filmed(topology, _never_shut())
    r = _renderer(track, topology)
    rest = r.rest_opening()
    assert CLOSED_LINE_OPENING[1] < rest < 0.1  # parted, near the low end of what was filmed
    m = _track()
    opening, width = r.wanted(m, np.arange(len(m)) % len(track))
    t = m.times + motion.MotionParams().advance
    silent = (t > 1.9) & (t < 2.6)
    # the old rest was the closed mouth (0): this speaker never shows it
    assert np.allclose(opening[silent], rest, atol=1e-6)
    assert np.ptp(opening[silent]) < 1e-6 and np.ptp(width[silent]) < 1e-3  # still
    at_m = (t >= 1.22) & (t <= 1.27)
    assert np.all(opening[at_m] == 0.0)  # a bilabial stays shut
    # ramps: from the silence into speech the opening passes through values between, no dip to closed before it
    into = np.flatnonzero((t > 2.7) & (t < 3.2))
    assert opening[into].min() > 0.5 * rest
    # selection draws the speaker's own parted mouths there, not a mouth squeezed shut
    _, _, sel = r.plan(np.arange(len(m)) % len(track), m)
    drawn = r.atlas_open[sel[silent]]
    assert np.all(np.abs(drawn - rest) < 0.02)


def test_a_speaker_who_rests_shut_in_filmed_pauses_stays_shut(topology):
    gaps = _never_shut()
    gaps[40:80] = 0.0  # a filmed pause with the lips shut
    track = _filmed(topology, gaps)
    r = _renderer(track, topology)
    pauses = np.zeros(len(gaps), bool)
    pauses[45:75] = True
    r.pauses = pauses
    assert r.rest_opening() == 0.0
    m = _track()
    opening, _ = r.wanted(m, np.arange(len(m)) % len(track))
    t = m.times + motion.MotionParams().advance
    assert np.all(opening[(t > 1.9) & (t < 2.6)] == 0.0)


def test_filmed_pauses_tell_the_rest_and_a_photo_rests_shut(topology):
    gaps = np.full(200, 0.15)
    gaps[100:140] = 0.05  # pauses with the lips a little apart, a breath in them
    gaps[120:125] = 0.2
    r = _renderer(_filmed(topology, gaps), topology)
    pauses = np.zeros(200, bool)
    pauses[105:135] = True
    r.pauses = pauses
    assert r.rest_opening() == pytest.approx(0.05, abs=0.005)
    # too little of the pause filmed (under REST_PAUSE_SECONDS): the low percentile instead
    r = _renderer(_filmed(topology, gaps), topology)
    r.pauses = np.zeros(200, bool)
    r.pauses[105:108] = True
    assert r.rest_opening() == pytest.approx(np.percentile(gaps, render.speaker.REST_PERCENTILE), abs=0.005)
    # a photo: one mouth, not how its speaker rests
    photo = _renderer(_filmed(topology, [0.1]), topology)
    assert photo.rest_opening() == 0.0


def test_filmed_pauses_of_a_video_with_sound():
    data = require_data("video/hdtf_katiehill_8s.mp4")
    path = data / "video/hdtf_katiehill_8s.mp4"
    info = media.probe_video(path)
    times = np.arange(int(info.duration * info.fps)) / info.fps
    track = face.FaceTrack(times, np.zeros((len(times), 478, 3), np.float32), np.ones(len(times), bool),
                           info.width, info.height)
    paused = filmed_pauses(path, info, track)
    assert paused is not None and paused.shape == (len(times),)
    assert 0 < paused.mean() < 0.5  # a talking clip: mostly voice, some pauses


def _voice_with_a_pause(seconds=4.0, pause=(1.2, 2.8)):
    """Speech-like sound (tests/test_stream.speechlike) with a silence in the middle."""
    from test_stream import speechlike

    audio = speechlike(seconds)
    audio[int(pause[0] * 16000):int(pause[1] * 16000)] = 0.0
    return audio


def test_live_motion_marks_its_silences_as_rest_from_what_the_stream_knows():
    times = np.arange(100) / 25.0
    m = motion.causal_mouth_track(_voice_with_a_pause(), times, lookahead=0.1)
    silent = (times > 1.7) & (times < 2.5)
    assert m.rest is not None and np.all(m.rest[silent] == 1.0) and np.all(m.opening[silent] == 0.0)
    speaking = ~m.closed & (m.opening > 0)
    assert speaking.sum() > 20 and np.all(m.rest[speaking] < 1.0) and (m.rest[speaking] == 0.0).any()
    # into the speech after the pause the rest fades out (offline's ramp), not at once
    after = np.flatnonzero((times > 2.7) & speaking)
    assert 0.0 < m.rest[after[0]] < 1.0
    # strength 0 keeps the mouth still, its rest too
    assert np.all(motion.causal_mouth_track(_voice_with_a_pause(), times, strength=0.0).rest == 0.0)


def _live(topology, gaps, **kw):
    from lipdub.render.live import LiveAppearance

    track = _filmed(topology, gaps)
    app = LiveAppearance(_renderer(track, topology).atlas, None, grow=False, **kw)
    return app, track


def _drawn_opening(app, track, monkeypatch, rest):
    """The canonical opening LiveAppearance asks the renderer to draw for a shut speech mouth with this rest."""
    asked = []
    original = render.Renderer.render_frame
    monkeypatch.setattr(render.Renderer, "render_frame",
                        lambda self, rgb, j, a, opening, width, **kw: asked.append(opening) or
                        original(self, rgb, j, a, opening, width, **kw))
    img = np.random.default_rng(2).integers(60, 200, (400, 400, 3), dtype=np.uint8)
    app.render(img, track.landmarks[0], 0.0, 0.0, rest)
    return asked[-1]


def test_live_silences_rest_at_a_prepared_videos_own_rest(topology, monkeypatch):
    app, track = _live(topology, _never_shut())
    app.atlas.rest_opening = 0.07  # measured by pipeline.live.prepare_atlas on the file's tracked frames
    assert _drawn_opening(app, track, monkeypatch, rest=1.0) == pytest.approx(0.07, abs=1e-6)
    assert _drawn_opening(app, track, monkeypatch, rest=0.0) == 0.0  # a bilabial (rest share 0) stays shut
    # a profile's atlas alone (no rest measured on the shot) rests shut, as before
    app, track = _live(topology, _never_shut())
    assert _drawn_opening(app, track, monkeypatch, rest=1.0) == 0.0


def test_a_streams_own_atlas_rests_as_its_mouths_seen_so_far(topology, monkeypatch):
    from lipdub.render.live import LiveAppearance

    gaps = _never_shut()
    track = _filmed(topology, gaps)
    img = np.random.default_rng(1).integers(60, 200, (400, 400, 3), dtype=np.uint8)
    app = LiveAppearance(region="lower")
    for k in range(30):  # 15 mouths seen: too few to tell how this speaker rests
        app.offer(k, img, track.landmarks[k])
    assert _drawn_opening(app, track, monkeypatch, rest=1.0) == 0.0
    for k in range(30, len(gaps)):
        app.offer(k, img, track.landmarks[k])
    app.render(img, track.landmarks[0], 0.0, 0.0, 0.0)  # the atlas is read again as it grows
    seen = gaps[::2]  # every other frame joins the atlas (render.live.ATLAS_STRIDE)
    assert _drawn_opening(app, track, monkeypatch, rest=1.0) == pytest.approx(
        np.percentile(seen, render.speaker.REST_PERCENTILE), abs=0.005)
