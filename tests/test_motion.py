import numpy as np
import pytest

from conftest import FakeSpeech, P
from lipdub import motion
from lipdub.errors import ParameterError


# the default mouth of a frame at t is the one wanted at t + ADV (MotionParams.advance: unseen speakers ran late)
ADV = motion.MotionParams().advance


def speech_of(phones, duration=2.0):
    n = int(duration / 0.01)
    t = (np.arange(n) + 0.5) * 0.01
    voiced = np.zeros(n, bool)
    for p in phones:
        if p.label != "SIL":
            voiced[(t >= p.start) & (t < p.end)] = True
    jaw = voiced * 0.6
    return FakeSpeech(phones, voiced, jaw.astype(np.float32))


def frames(duration=2.0, fps=25.0):
    return np.arange(int(duration * fps)) / fps


def test_bilabial_closes_between_open_vowels():
    # "ah-m-ah": the M must shut the lips completely even though both neighbours are wide open
    ph = [P("SIL", 0, 0.4), P("AA", 0.4, 0.7), P("M", 0.7, 0.8), P("AA", 0.8, 1.1), P("SIL", 1.1, 2.0)]
    m = motion.mouth_track(speech_of(ph), frames())
    t = m.times + ADV
    at_m = (t >= 0.72) & (t <= 0.78)
    assert at_m.any() and np.all(m.opening[at_m] == 0.0)
    assert m.closed[at_m].all()
    assert m.opening[(t > 0.5) & (t < 0.62)].max() > 0.5
    assert m.opening[(t > 0.88) & (t < 1.0)].max() > 0.5


def test_the_mouth_eases_into_and_out_of_a_closure():
    """Next to a bilabial the opening is scaled down over MotionParams.closure_ramp (no snap from wide open to shut);
    further away it is what it was without the ramp."""
    ph = [P("SIL", 0, 0.4), P("AA", 0.4, 0.7), P("M", 0.7, 0.8), P("AA", 0.8, 1.1), P("SIL", 1.1, 2.0)]
    times = np.arange(0.0, 2.0, 0.01)  # every hop: the ramp is a few hops wide
    eased = motion.mouth_track(speech_of(ph), times)
    snapped = motion.mouth_track(speech_of(ph), times, params=motion.MotionParams(closure_ramp=0.0))
    assert np.array_equal(eased.closed, snapped.closed)
    shut = np.flatnonzero(eased.closed & (times > 0.5) & (times < 1.0))
    before, after = shut.min() - 1, shut.max() + 1  # the hops just outside the closure
    assert eased.opening[before] < 0.5 * snapped.opening[before]
    assert eased.opening[after] < 0.5 * snapped.opening[after]
    far = (np.abs(times - times[shut].mean()) > 0.2) & (times < 1.2)
    assert np.allclose(eased.opening[far], snapped.opening[far], atol=1e-3)


def test_silence_rests_closed_and_speech_opens():
    ph = [P("SIL", 0, 0.8), P("AA", 0.8, 1.2), P("SIL", 1.2, 2.0)]
    m = motion.mouth_track(speech_of(ph), frames())
    t = m.times + ADV
    assert np.all(m.opening[t < 0.45] == 0)
    assert np.all(m.opening[t > 1.5] == 0)
    assert m.opening[(t > 0.9) & (t < 1.1)].min() > 0.4
    # the lips part before the voice starts (onset_lead), not long before it
    parts = t[np.flatnonzero(m.opening > 0.01)[0]]
    late = motion.mouth_track(speech_of(ph), frames(), params=motion.MotionParams(onset_lead=0.0))
    assert 0.5 <= parts < late.times[np.flatnonzero(late.opening > 0.01)[0]] + ADV <= 0.8


def test_speech_the_phones_missed_moves_the_mouth_and_true_silence_rests():
    ph = [P("SIL", 0, 0.4), P("AA", 0.4, 0.7), P("SIL", 0.7, 2.6), P("AA", 2.6, 2.9), P("SIL", 2.9, 3.0)]
    s = speech_of(ph, duration=3.0)
    s.voiced[80:150] = True  # the voice goes on at 0.8-1.5 s where the recogniser heard nothing
    s.jaw = np.where(s.voiced, 0.6, 0.0).astype(np.float32)
    m = motion.mouth_track(s, frames(duration=3.0))
    t = m.times
    assert m.opening[(t > 0.9) & (t < 1.4)].min() > 0.3
    assert np.all(m.opening[(t > 1.9) & (t < 2.3)] == 0)  # the rest of the long pause is silent: closed
    deaf = motion.mouth_track(s, frames(duration=3.0), params=motion.MotionParams(missed_speech=1.0))
    assert np.all(deaf.opening[(t > 0.9) & (t < 1.4)] == 0)


def test_noise_after_the_last_word_rests_but_a_word_cut_by_the_end_speaks():
    # the last word ends at 1.0 s; voice activity overhangs it to 1.12 s and fires again on applause at 1.5-1.6 s:
    # 37 % of the trailing silence, but none of it speech, so the mouth rests there
    ph = [P("SIL", 0, 0.4), P("AA", 0.4, 1.0), P("SIL", 1.0, 1.6)]
    s = speech_of(ph, duration=1.6)
    s.voiced[100:112] = True
    s.voiced[150:160] = True
    s.jaw = np.where(s.voiced, 0.6, 0.0).astype(np.float32)
    t = frames(duration=1.6)
    m = motion.mouth_track(s, t)
    assert m.opening[(t > 0.5) & (t < 0.9)].min() > 0.3
    assert np.all(m.opening[t > 1.3] == 0)
    old = motion.mouth_track(s, t, params=motion.MotionParams(edge_margin=0.05))  # the overhang counted
    assert old.opening[t > 1.3].max() > 0.1
    # a word cut by the end of the audio (voice to the end, no phones there) still moves the mouth
    cut = speech_of([P("SIL", 0, 0.4), P("AA", 0.4, 1.0), P("SIL", 1.0, 1.2)], duration=1.2)
    cut.voiced[100:] = True
    cut.jaw = np.where(cut.voiced, 0.6, 0.0).astype(np.float32)
    tc = frames(duration=1.2)
    assert motion.mouth_track(cut, tc).opening[tc > 1.05].min() > 0.1


def test_the_mouth_closes_after_the_last_word_of_real_speech_with_applause():
    from conftest import require_data
    from lipdub import media, speech

    path = require_data("audio/en_jfk_11s.wav") / "audio/en_jfk_11s.wav"
    samples, sr = media.load_audio(path, 16000)
    sp = speech.analyse(samples, sr)
    last = max(p.end for p in sp.phones if p.label.upper() != "SIL")
    t = np.arange(0, sp.duration, 0.04)
    m = motion.mouth_track(sp, t)
    assert 10.2 < last < 10.7  # "...for your country", then the crowd
    assert np.all(m.opening[t > last + 0.25] == 0)
    assert m.opening[(t > last - 0.5) & (t < last)].max() > 0.2


def test_vowel_classes_order_and_rounding():
    def peak(label):
        ph = [P("SIL", 0, 0.5), P(label, 0.5, 0.9), P("SIL", 0.9, 2.0)]
        m = motion.mouth_track(speech_of(ph), frames())
        mid = (m.times > 0.6) & (m.times < 0.8)
        return m.opening[mid].mean(), m.width[mid].mean()
    aa, iy, uw = peak("AA"), peak("IY"), peak("UW")
    assert aa[0] > iy[0] and aa[0] > uw[0]
    assert uw[1] < -0.3 < 0.2 < iy[1]  # rounded vs spread


def test_transition_anticipates_next_vowel():
    # the mouth starts opening before the vowel's acoustic onset (coarticulation)
    ph = [P("SIL", 0, 0.5), P("T", 0.5, 0.6), P("AA", 0.6, 0.9), P("SIL", 0.9, 2.0)]
    m = motion.mouth_track(speech_of(ph), frames(fps=100.0), strength=1.0)
    before = m.opening[(m.times > 0.55) & (m.times < 0.6)]
    assert before.max() > 0.2


def test_strength_scales_and_is_validated():
    ph = [P("SIL", 0, 0.5), P("AA", 0.5, 0.9), P("SIL", 0.9, 2.0)]
    s = speech_of(ph)
    a = motion.mouth_track(s, frames(), 1.0).opening
    b = motion.mouth_track(s, frames(), 0.5).opening
    assert np.allclose(b, a * 0.5, atol=1e-6)
    with pytest.raises(ParameterError):
        motion.mouth_track(s, frames(), -1)


def test_acoustic_only_without_phones_follows_jaw():
    s = speech_of([], 2.0)
    s.voiced[50:150] = True
    s.jaw = np.where(s.voiced, 0.5 + 0.4 * np.sin(np.arange(len(s.voiced)) / 5.0), 0).astype(np.float32)
    m = motion.mouth_track(s, frames())
    idx = np.clip(np.round((m.times + ADV) / 0.01).astype(int), 0, len(s.jaw) - 1)
    inside = (m.times > 0.6) & (m.times < 1.4)
    assert np.corrcoef(m.opening[inside], s.jaw[idx][inside])[0, 1] > 0.8


def test_learned_model_ships_with_matching_features():
    model = motion.load_model()
    assert model is not None, "lipdub/assets/motion_model.npz is missing: run make train"
    # dominance, log-mel, jaw / loudness / voicing, the phone-class posteriors (12 classes + other) and the 32 token
    # components at each tap
    n_features = (len(motion.FEATURE_LABELS) + 26 * len(motion.MEL_CONTEXT) + 3 + 13 * len(model.posterior_taps)
                  + 32 * len(model.component_taps))
    assert model.posterior_taps == model.component_taps == motion.OFFLINE_POSTERIOR_TAPS
    assert model.n_features == n_features
    x = np.zeros((5, n_features))
    assert model.predict(x).shape == (5,)


def _ensemble_at_once(a: dict, x: np.ndarray) -> np.ndarray:
    """OpeningModel.predict as it was written before it went member by member: every member's (N, F) at once."""
    z = (x[None] - a["mean"][:, None]) / a["std"][:, None]
    hidden = np.tanh(np.einsum("enf,efh->enh", z, a["w1"]) + a["b1"][:, None])
    if a["w2"].ndim == 3:
        return (np.einsum("enh,ehk->enk", hidden, a["w2"]) + a["b2"][:, None]).mean(0)
    return (np.einsum("enh,eh->en", hidden, a["w2"]) + a["b2"][:, None]).mean(0)


@pytest.mark.parametrize("choice", motion.MODEL_CHOICES)
def test_ensemble_member_by_member_gives_the_same_bytes(choice):
    """predict's member-by-member loop (half the CPU) returns exactly what the ensemble computed at once did, for the
    shipped offline models and the causal ones' phone and opening nets, float32 and float64 rows, 1 to 4096 rows."""
    rng = np.random.default_rng(7)
    causal = motion.load_causal_model(choice)
    nets = [motion.load_model(choice)] + list(causal.phones.values()) + list(causal.opening.values())
    for net in nets:
        width = net.arrays["w1"].shape[1]
        for rows, dtype in ((1, np.float64), (3, np.float32), (800, np.float64), (4096, np.float32)):
            x = (rng.normal(size=(rows, width)) * 3 + 0.5).astype(dtype)
            assert np.array_equal(net.predict(x), _ensemble_at_once(net.arrays, x))


def test_phone_dominance_of_any_hop_range_equals_those_rows_of_the_whole():
    # long audio builds its features a block at a time: blocks must not see their edges
    rng = np.random.default_rng(3)
    labels = ["AA", "M", "IY", "S", "UW", "B", "SIL", "EH", "F", "OW"]
    t, phones = 0.0, []
    while t < 30.0:
        d = float(rng.uniform(0.04, 0.3))
        phones.append(P(str(rng.choice(labels)), t, t + d))
        t += d
    n = 3000
    whole = motion.dominance_features(phones, n, 0.01)
    assert whole.shape == (n, len(motion.FEATURE_LABELS))
    for a, b in ((0, 700), (700, 701), (1234, 2999), (2500, n), (2990, n + 40)):
        assert np.array_equal(motion.dominance_features(phones, n, 0.01, start=a, stop=b), whole[a:b])


def test_learned_motion_follows_a_real_speakers_mouth():
    """The clip's own audio predicts its own filmed mouth better than loudness does, and the mouth is shut in the
    long silence we append."""
    from conftest import require_data
    from training import evaluate
    from lipdub import media, speech

    data = require_data("video/hdtf_radio34_8s.mp4")
    path = data / "video/hdtf_radio34_8s.mp4"
    times, truth = evaluate.mouth_curve(path, cache=False)
    audio, sr = media.load_audio(path, 16000)
    audio = np.concatenate([audio, np.zeros(2 * sr, np.float32)])
    track = speech.analyse(audio, sr)
    assert track.mel is not None and track.mel.shape == (len(track.voiced), 26)
    all_times = np.arange(int((len(audio) / sr) * 25)) / 25
    m = motion.mouth_track(track, all_times)
    pred = m.opening[: len(times)]
    r, lag, _ = evaluate.pearson_at_best_lag(pred, truth)
    idx = np.clip(np.round(times / track.hop).astype(int), 0, len(track.loudness) - 1)
    r_loud, _, _ = evaluate.pearson_at_best_lag(track.loudness[idx], truth)
    assert r > 0.45 and r > r_loud + 0.1
    # on time before the advance (this clip's film runs a frame behind its sound: training.train_motion.clip_lag -1)
    on_time = motion.mouth_track(track, all_times, params=motion.MotionParams(advance=0.0)).opening[: len(times)]
    assert abs(evaluate.pearson_at_best_lag(on_time, truth)[1]) <= 1
    assert np.all(m.opening[all_times > len(times) / 25 + 1.0] == 0)


def test_mouth_rests_after_the_audio_ends():
    ph = [P("SIL", 0, 0.2), P("AA", 0.2, 1.0)]  # still speaking when the audio stops at 1 s
    s = speech_of(ph, duration=1.0)
    m = motion.mouth_track(s, frames(duration=2.0))
    assert m.opening[m.times < 0.9].max() > 0.4
    assert np.all(m.opening[m.times >= 1.0] == 0) and m.closed[m.times >= 1.0].all()


def test_advance_moves_the_whole_mouth_earlier():
    """MotionParams.advance samples the finished mouth that much ahead: the mouth of a frame at t is the one at
    t + advance without it (openings, closures and the rest alike)."""
    ph = [P("SIL", 0, 0.4), P("AA", 0.4, 0.7), P("M", 0.7, 0.8), P("AA", 0.8, 1.1), P("SIL", 1.1, 2.0)]
    s = speech_of(ph)
    t = frames()
    base = motion.mouth_track(s, t + 0.08, params=motion.MotionParams(advance=0.0))
    early = motion.mouth_track(s, t, params=motion.MotionParams(advance=0.08))
    inside = t + 0.08 < 1.9
    assert np.array_equal(early.opening[inside], base.opening[inside])
    assert np.array_equal(early.closed[inside], base.closed[inside])
    assert not np.array_equal(early.opening, motion.mouth_track(s, t, params=motion.MotionParams(advance=0.0)).opening)


def test_a_model_file_names_its_own_log_mel_taps():
    """An opening model may read other log-mel taps than MEL_CONTEXT (its `mel_context` array): the schema and the
    features follow the file."""
    from lipdub.motion import models
    from training.fit import fit_mlp

    taps = (-20, 0, 20)
    width = len(motion.FEATURE_LABELS) + 26 * len(taps) + 3
    rng = np.random.default_rng(0)
    model = fit_mlp(rng.normal(size=(64, width)), rng.normal(size=64), members=1, epochs=1)
    model.arrays["mel_context"] = np.array(taps, float)
    assert model.mel_context == taps
    assert len(models.opening_schema(model)["inputs"]) == width and "mel+20:0" in models.opening_schema(model)["inputs"]
    assert motion.load_model().mel_context == motion.MEL_CONTEXT  # files without the array: the default taps
