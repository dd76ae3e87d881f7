"""Causal (live) motion: streaming equals the whole-file function, whatever the chunking; nothing depends on audio
beyond the look-ahead; silence rests; on a real speaker the causal mouth follows the filmed one."""

import numpy as np
import pytest

from lipdub import motion
from lipdub.errors import ParameterError

SR = 16000


def speechlike(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Vowel-like bursts (a harmonic complex whose formant-ish colour and loudness change) separated by pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    colour = 0.5 + 0.5 * np.sin(2 * np.pi * 3.1 * t)
    voice = sum((colour if k > 3 else 1 - colour) * np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 1.3 * t), 0, None) ** 0.5 * (t > 0.3)
    return (0.2 * voice * envelope + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


def stream(audio: np.ndarray, chunk: int, **kw) -> tuple[motion.MouthTrack, list[float]]:
    """All frames a StreamingMotion commits, and for each the audio time at which it was committed."""
    sm = motion.StreamingMotion(**kw)
    parts, committed_at, fed = [], [], 0
    for i in range(0, audio.size, chunk):
        fed += audio[i:i + chunk].size
        mt = sm.feed(audio[i:i + chunk])
        parts.append(mt)
        committed_at += [fed / SR] * len(mt)
    mt = sm.finish()
    parts.append(mt)
    committed_at += [np.inf] * len(mt)
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    return motion.MouthTrack(cat("times"), cat("opening"), cat("width"), cat("closed")), committed_at


def same(a: motion.MouthTrack, b: motion.MouthTrack) -> None:
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_allclose(a.opening, b.opening, atol=1e-6)
    np.testing.assert_allclose(a.width, b.width, atol=1e-6)
    np.testing.assert_array_equal(a.closed, b.closed)


def test_streaming_equals_whole_file_for_any_chunk_size():
    audio = speechlike()
    expected_frames = int(np.ceil(audio.size / SR * 25))
    tracks = {}
    for chunk in (320, 37, 16000):
        tracks[chunk], _ = stream(audio, chunk, fps=25.0, lookahead=0.1)
        t = tracks[chunk].times
        assert len(t) == expected_frames, "every frame up to the end of the audio, once"
        np.testing.assert_allclose(t, np.arange(expected_frames) / 25.0)
    same(tracks[320], tracks[37])
    same(tracks[320], tracks[16000])
    batch = motion.causal_mouth_track(audio, np.arange(expected_frames) / 25.0, lookahead=0.1)
    same(tracks[320], batch)
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)  # integer PCM is scaled, not read as huge floats
    same(motion.causal_mouth_track(pcm, batch.times), motion.causal_mouth_track(pcm / 32768.0, batch.times))
    assert tracks[320].opening.max() > 0.05, "the speech-like bursts open the mouth somewhere"
    assert ((tracks[320].opening >= 0) & (tracks[320].opening <= 1.2)).all()
    assert ((tracks[320].width >= -1) & (tracks[320].width <= 1)).all()


def test_frames_commit_exactly_one_latency_behind_the_audio():
    audio = speechlike(2.0)
    sm = motion.StreamingMotion(fps=25.0, lookahead=0.1)
    assert sm.latency == pytest.approx(0.125) and sm.latency <= 0.15
    mt, committed_at = stream(audio, 320, fps=25.0, lookahead=0.1)
    live = np.isfinite(committed_at)
    delay = np.asarray(committed_at)[live] - mt.times[live]
    assert live.sum() > 30
    assert delay.min() >= sm.latency - 1e-9, "a frame was committed before its look-ahead arrived"
    assert delay.max() <= sm.latency + 0.02 + 1e-9, "a frame waited longer than one 20 ms chunk past its latency"


def test_frames_do_not_depend_on_audio_beyond_the_lookahead():
    audio = speechlike(3.0)
    changed = audio.copy()
    cut = int(1.6 * SR)
    changed[cut:] = speechlike(3.0, seed=1)[cut:] * 3.0  # a different, louder future
    times = np.arange(75) / 25.0
    a = motion.causal_mouth_track(audio, times, lookahead=0.1)
    b = motion.causal_mouth_track(changed, times, lookahead=0.1)
    known = times + 0.125 <= cut / SR
    np.testing.assert_allclose(a.opening[known], b.opening[known], atol=1e-6)
    np.testing.assert_array_equal(a.closed[known], b.closed[known])
    assert not np.allclose(a.opening[~known], b.opening[~known]), "the changed future changes later frames"


def test_silence_keeps_the_mouth_closed():
    rng = np.random.default_rng(0)
    quiet = (0.001 * rng.standard_normal(3 * SR)).astype(np.float32)
    for audio in (np.zeros(3 * SR, np.float32), quiet):
        mt, _ = stream(audio, 320)
        assert len(mt) == 75
        assert np.all(mt.opening == 0) and mt.closed.all() and np.all(mt.width == 0)


def test_other_frame_rates_and_strength():
    audio = speechlike(2.0)
    mt, _ = stream(audio, 320, fps=30.0, lookahead=0.05, strength=0.5)
    np.testing.assert_allclose(mt.times, np.arange(60) / 30.0)
    full = motion.causal_mouth_track(audio, mt.times, lookahead=0.05, strength=1.0)
    np.testing.assert_allclose(mt.opening, np.clip(full.opening * 0.5, 0, 1.2), atol=1e-6)
    # after the audio ends the mouth rests
    after = motion.causal_mouth_track(audio, np.array([2.5, 3.0]), lookahead=0.05)
    assert np.all(after.opening == 0) and after.closed.all()


def test_bad_parameters():
    for kw in ({"lookahead": 0.2}, {"lookahead": -0.01}, {"fps": 0.0}, {"strength": -1.0}, {"lookahead": np.nan}):
        with pytest.raises(ParameterError):
            motion.StreamingMotion(**kw)
    with pytest.raises(ParameterError):
        motion.causal_mouth_track(np.zeros((2, 100), np.float32), np.arange(3) / 25.0)
    sm = motion.StreamingMotion()
    sm.finish()
    with pytest.raises(ParameterError):
        sm.feed(np.zeros(320, np.float32))


def test_causal_model_ships_for_every_lookahead():
    model = motion.load_causal_model()
    assert sorted(model.opening) == sorted(model.phones) == sorted(motion.CAUSAL_LOOKAHEADS)
    assert motion.CAUSAL_MODEL_PATH.stat().st_size < 400_000


def test_causal_motion_follows_a_real_speakers_mouth():
    """A speaker's own audio, streamed in 20 ms chunks, predicts her filmed mouth far better than loudness does on
    this clip (r ≈ 0 there), and p/b/m close the lips inside speech ('European Central Bank'). The shipped model
    heard this clip in training; bench/train_motion.py --causal reports held-out numbers (0.56 on this clip)."""
    from conftest import require_data
    from lipdub import evaluate, media

    data = require_data("video/woman_bluebg_7s.mp4")
    path = data / "video/woman_bluebg_7s.mp4"
    times, truth = evaluate.mouth_curve(path, cache=False)
    audio, _ = media.load_audio(path, SR)
    fps = 1.0 / float(np.median(np.diff(times)))
    mt, _ = stream(audio, 320, fps=fps, lookahead=0.1)
    k = np.clip(np.round(times * fps).astype(int), 0, len(mt) - 1)
    r, lag, _ = evaluate.pearson_at_best_lag(mt.opening[k], truth)
    from lipdub.speech.stream import StreamingFeatures

    features = StreamingFeatures(use_silero=False)
    features.push(audio)
    features.finish()
    hop = np.clip(np.round(times / 0.01).astype(int), 0, len(features.loudness) - 1)
    r_loud, _, _ = evaluate.pearson_at_best_lag(features.loudness[hop], truth)
    assert r > 0.5 and r > r_loud + 0.3 and abs(lag) <= 2, (r, lag, r_loud)
    speaking = np.convolve(mt.opening > 0.05, np.ones(7), "same") > 2
    assert (mt.closed & speaking).sum() >= 3, "no bilabial closure inside speech"
