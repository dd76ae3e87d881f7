"""Causal (live) motion: streaming equals the whole-file function, whatever the chunking; nothing depends on audio
beyond the look-ahead; silence rests; on a real speaker the causal mouth follows the filmed one."""

import numpy as np
import pytest

from lipdub import motion
from lipdub.core.constants import HOP_SECONDS
from lipdub.speech.posteriors import token_classes
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
    return motion.MouthTrack(cat("times"), cat("opening"), cat("width"), cat("closed"), cat("rest")), committed_at


def same(a: motion.MouthTrack, b: motion.MouthTrack) -> None:
    np.testing.assert_array_equal(a.times, b.times)
    np.testing.assert_allclose(a.opening, b.opening, atol=1e-6)
    np.testing.assert_allclose(a.width, b.width, atol=1e-6)
    np.testing.assert_array_equal(a.closed, b.closed)
    np.testing.assert_allclose(a.rest, b.rest, atol=1e-6)


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
    np.testing.assert_array_equal(a.rest[known], b.rest[known])
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
    assert model.phone_step > 0 and model.phone_window >= model.phone_step, "the opening reads streamed phones"


def test_causal_motion_follows_a_real_speakers_mouth():
    """A speaker's own audio, streamed in 20 ms chunks, predicts her filmed mouth far better than loudness does on
    this clip (r ≈ 0 there), and p/b/m close the lips inside speech ('European Central Bank'). The shipped model
    heard this clip in training; python -m training.train_causal reports held-out numbers (0.56 on this clip)."""
    from conftest import require_data
    from training import evaluate
    from lipdub import media

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


def test_live_lips_shut_on_p_b_m_without_flicker():
    """The live mouth shuts where the speech has p, b or m (as the offline analysis hears them) and does not snap shut
    for single frames elsewhere: the small log-mel classifier used before also fired on n/ng (German speech: 14 of 19
    p/b/m caught, 14 one-frame shuts in 20 s)."""
    from conftest import require_data
    from lipdub import media, speech

    from bench.motion_eval import closure_stats

    data = require_data("video/german_anchor_20s.mp4")
    audio, _ = media.load_audio(data / "video/german_anchor_20s.mp4", SR)
    times = np.arange(int(audio.size / SR * 25)) / 25
    mt = motion.causal_mouth_track(audio, times, 0.1)
    caught, n, flicker = closure_stats(mt.opening, times, speech.analyse(audio, SR).phones)
    assert n >= 10 and caught >= 0.85 * n, (caught, n)
    assert flicker <= 3, flicker


def test_streamed_posteriors_depend_on_the_audio_only_never_on_its_future():
    """The live opening model reads hama's phone posteriors computed every 80 ms on the last 0.75 s: the same numbers
    whatever the chunking, and a hop's come from a run that ended before the hop's own look-ahead did."""
    from conftest import require_data
    from lipdub import media
    from lipdub.speech.stream import StreamingPosteriors

    data = require_data("video/woman_bluebg_7s.mp4")
    audio, _ = media.load_audio(data / "video/woman_bluebg_7s.mp4", SR)
    audio = audio[:4 * SR]
    classes = token_classes()

    def streamed(samples, chunk):
        phones = StreamingPosteriors(classes, keep_all=True)
        for i in range(0, samples.size, chunk):
            phones.push(samples[i:i + chunk])
        phones.finish()
        return phones

    whole, chunked = streamed(audio, audio.size), streamed(audio, 320)
    assert whole.runs.keys() == chunked.runs.keys() and len(whole.runs) == 4 * SR // 1280 + 1
    for k in whole.runs:
        assert whole.runs[k][0] == chunked.runs[k][0]
        np.testing.assert_array_equal(whole.runs[k][1], chunked.runs[k][1])
    speech = np.concatenate([p for _, p in whole.runs.values()])
    assert (speech[:, :-1].sum(1) > 0.5).sum() > 20, "speech gives phone evidence beyond blanks"

    cut = int(2.0 * SR)
    changed = audio.copy()
    changed[cut:] = audio[::-1][:audio.size - cut]  # a different future
    other = streamed(changed, audio.size)
    hops = np.arange(audio.size // 160)
    look = 10
    a = motion.streamed_posteriors(whole, hops, look)
    b = motion.streamed_posteriors(other, hops, look)
    known = motion.ready_sample(hops, look) <= cut
    np.testing.assert_array_equal(a[known], b[known])
    assert not np.array_equal(a[~known], b[~known]), "the changed future changes later hops"


def test_streamed_token_components_are_each_windows_offline_projection_and_never_its_future():
    """Each streamed recognition's token components are what the offline analysis computes for the same audio heard
    as one chunk (speech.tokens.chunk_tokens, projected on the shipped axes), one row per hama frame; a hop reads
    them from the run its phone posteriors come from, so a changed future leaves the known hops' alone."""
    from lipdub.speech import tokens
    from lipdub.speech.stream import StreamingPosteriors

    audio = speechlike(3.0, seed=4)
    axes = tokens.load_axes()

    def streamed(samples):
        phones = StreamingPosteriors(token_classes(), keep_all=True, axes=axes)
        phones.push(samples)
        phones.finish()
        return phones

    whole = streamed(audio)
    n_hops = audio.size // 160
    window_hops = whole.window_samples // 160
    full = [k for k in whole.runs if k * whole.step_samples >= whole.window_samples
            and k * whole.step_samples <= audio.size]
    assert len(full) > 20 and whole.components.keys() == whole.runs.keys()
    for k in full[::6]:
        first = int(round(whole.runs[k][0] * SR)) // 160
        offline = axes.project(tokens.chunk_tokens(audio, [(first, first + window_hops)], n_hops))
        comps = whole.components[k]
        assert comps.shape == (len(whole.runs[k][1]), tokens.N_COMPONENTS) and len(comps) > 30
        np.testing.assert_allclose(comps, offline[first:first + 2 * len(comps):2], atol=1e-4)
        assert np.abs(comps).max() > 1.0, "speech moves the components off the axes' mean"

    cut = int(2.0 * SR)
    changed = audio.copy()
    changed[cut:] = audio[::-1][:audio.size - cut]
    other = streamed(changed)
    hops = np.arange(n_hops)
    look, taps = 10, (-0.04, 0.0, 0.04, 0.08)
    a = motion.streamed_components(whole, hops, look, taps)
    b = motion.streamed_components(other, hops, look, taps)
    known = motion.ready_sample(hops, look) <= cut
    assert a.shape == (n_hops, len(taps) * tokens.N_COMPONENTS)
    np.testing.assert_array_equal(a[known], b[known])
    assert not np.array_equal(a[~known], b[~known])
    # a tap its run did not reach reads zeros (the axes' mean), as its phone posteriors' `reached` column says
    reached = motion.streamed_posteriors(whole, hops, look)
    width = len(motion.PHONE_CLASSES) + 1
    for j, tap in enumerate(taps):
        flag = reached[:, (motion.STREAMED_TAPS.index(tap) + 1) * width - 1].astype(bool)
        block = a[:, j * tokens.N_COMPONENTS:(j + 1) * tokens.N_COMPONENTS]
        assert np.all(block[~flag] == 0) and np.all(np.abs(block[flag]).sum(1) > 0)


def test_a_live_model_declares_the_components_it_reads(tmp_path):
    """A causal model file names its component taps; the card's schema lists their columns; a file whose nets do not
    take them is refused. The permissive live model never reads them (the token axes come from research-only
    audio)."""
    from lipdub.errors import DependencyError
    from lipdub.motion import models

    shipped = models.load_causal_file(motion.CAUSAL_MODEL_PATH)
    permissive = models.load_causal_file(motion.PERMISSIVE_CAUSAL_MODEL_PATH)
    assert permissive.component_taps == ()
    assert shipped.component_taps == motion.STREAMED_TAPS  # the research live model reads them (make train-causal)
    assert not any("component" in n for heads in models.causal_schema(permissive)["looks"].values()
                   for n in heads["opening"])
    taps = (0.0, 0.04)
    declared = models.CausalModel(shipped.phones, shipped.opening, shipped.mel_prior, shipped.closure_threshold,
                                  shipped.hangover, shipped.phone_step, shipped.phone_window, taps)
    path = tmp_path / "live.npz"
    declared.save(path)
    again = models.CausalModel.load(path)
    assert again.component_taps == taps
    names = models.causal_schema(again)["looks"]["10"]["opening"]
    assert names[-64:] == [f"streamed_component{t:+.2f}:{k}" for t in taps for k in range(32)]
    with pytest.raises(DependencyError, match="inputs"):  # its nets were not trained on these columns
        models.load_causal_file(path)
    assert isinstance(again.streaming_phones().axes, type(models.load_axes()))


def test_running_standardiser_is_the_clip_standardisation_made_causal():
    """Standardising log-mel over all audio so far: the same numbers in any chunking; with no prior, the last row of
    a clip shorter than the memory is standardised exactly by the whole clip's mean and std; beyond the memory old
    audio is forgotten."""
    from lipdub.speech.stream import RunningStandardiser

    rng = np.random.default_rng(3)
    rows = rng.normal(4.0, 2.0, (900, 5))
    whole = RunningStandardiser(np.zeros(5), np.ones(5), 0, 1000)(rows)
    chunked = RunningStandardiser(np.zeros(5), np.ones(5), 0, 1000)
    pieces = np.concatenate([chunked(rows[i:i + 7]) for i in range(0, len(rows), 7)])
    np.testing.assert_allclose(pieces, whole, atol=1e-12)
    np.testing.assert_allclose(whole[-1], (rows[-1] - rows.mean(0)) / (rows.std(0) + 1e-6), rtol=1e-9)
    # a level change: after many memory lengths the old level no longer shows
    later = rng.normal(-6.0, 0.5, (20000, 5))
    norm = RunningStandardiser(np.zeros(5), np.ones(5), 300, 1000)
    norm(rows)
    settled = norm(later)[-2000:]
    assert abs(settled.mean()) < 0.2 and 0.7 < settled.std() < 1.3


def test_the_live_engine_feeds_its_opening_model_what_training_built():
    """Train/serve skew check: the inputs the streaming engine gives the opening model hop by hop (20 ms chunks)
    equal the whole-stream inputs training/train_causal.py trains on (motion.causal_opening_inputs)."""
    from conftest import require_data
    from lipdub import media
    from lipdub.speech.stream import StreamingFeatures

    data = require_data("video/hdtf_katiehill_8s.mp4")
    audio, _ = media.load_audio(data / "video/hdtf_katiehill_8s.mp4", SR)
    audio = audio[:3 * SR]
    model = motion.load_causal_model()
    look = 10
    engine = motion._CausalHops(look * HOP_SECONDS, model)
    seen = []
    head = model.opening[look]
    original = head.predict
    head.predict = lambda x, *a, **k: (seen.append(np.array(x)), original(x, *a, **k))[1]
    try:
        for i in range(0, audio.size, 320):
            engine.push(audio[i:i + 320])
        engine.finish()
    finally:
        head.predict = original
    live = np.concatenate(seen)

    f = StreamingFeatures(model.mel_prior)
    f.push(audio)
    n = f.finish()
    x = motion.causal_features(f.mel, f.loudness, np.arange(n), motion.causal_taps(look), 0, n - 1)
    post = motion.softmax(model.phones[look].predict(x))
    phones = model.streaming_phones(keep_all=True)
    phones.push(audio)
    phones.finish()
    whole = motion.causal_opening_inputs(x, post, f.voiced, phones, look, model.component_taps)
    assert live.shape == whole.shape and whole.shape[1] > x.shape[1] + 36 + 2
    np.testing.assert_allclose(live, whole, atol=1e-6)


def test_training_pieces_of_restarted_streams_keep_their_phones_and_truth_in_place():
    """training/train_causal.py also trains the live model on long clips cut into streams that start mid-clip: each
    piece's audio, phones, filmed mouth and its scale must be the clip's own over that span, shifted to start at 0."""
    from training import train_causal as train_motion
    from lipdub.speech.track import Phone, SpeechTrack

    n = 2000  # 20 s of 10 ms hops
    phones = [Phone("SIL", 0.0, 2.0)] + [Phone("AA" if k % 2 else "M", 2.0 + 0.5 * k, 2.5 + 0.5 * k)
                                         for k in range(36)]
    speech = SpeechTrack(20.0, 0.01, np.ones(n, bool), np.linspace(0, 1, n, dtype=np.float32),
                         np.zeros(n, np.float32), phones, "hama+align", None, np.zeros((n, 26), np.float32))
    audio = np.arange(20 * SR, dtype=np.float32)
    times = np.arange(500) / 25.0
    truth = np.abs(np.sin(times))
    clip = train_motion.CausalClip("g", audio, speech, times, truth)
    pieces = train_motion.restarted_pieces("long", clip)
    assert sorted(pieces) == ["long@15", "long@3", "long@9"]  # starts 3, 9, 15 s; 21 s would pass the end
    piece = pieces["long@9"]
    assert piece.restart_of == "long" and piece.group == "g"
    assert np.array_equal(piece.audio, audio[9 * SR:12 * SR])
    assert np.allclose(piece.times, times[225:300] - 9.0) and np.array_equal(piece.truth, truth[225:300])
    assert np.allclose(piece.target(), truth[225:300] / np.nanpercentile(truth, 97))  # the whole clip's scale
    assert piece.speech.phones[0].start == 0.0 and piece.speech.phones[-1].end == pytest.approx(3.0)
    assert [p.label for p in piece.speech.phones[:2]] == ["M", "AA"]  # 9.0-9.5 s is phone 14 (an M)
    assert np.array_equal(piece.speech.jaw, speech.jaw[900:1200])


def test_the_live_models_held_out_folds_split_the_filmed_speakers_by_a_seed():
    """training/train_causal.py --folds K --split S: every filmed clip's speaker group in exactly one fold, audio-only
    clips' groups in none; split 0 is the split recorded before --split existed, another seed another split."""
    from training import train_causal

    clips = {f"c{i}": train_causal.CausalClip(f"g{i % 7}", np.zeros(1), None, np.zeros(1), np.ones(1))
             for i in range(20)}
    clips["audio"] = train_causal.CausalClip("only_audio", np.zeros(1), None)
    groups = sorted(f"g{i}" for i in range(7))
    first, other = train_causal.fold_split(clips, 2, 0), train_causal.fold_split(clips, 2, 1)
    for split in (first, other):
        assert len(split) == 2 and sorted(np.concatenate(split)) == groups
    recorded = np.array_split(np.random.default_rng(0).permutation(groups), 2)
    assert all(np.array_equal(a, b) for a, b in zip(first, recorded))
    assert any(set(a) != set(b) for a, b in zip(first, other))


def test_only_the_research_live_model_learns_the_offline_mouth_on_the_audio_only_clips(monkeypatch):
    """training/train_causal.py AUDIO_TEACHER: the research live model's recipe learns the offline model's mouth on
    the audio-only clips; the permissive one never (its teacher learned from research-only footage), nor without
    the streamed phones its rows need, nor with --no-teacher."""
    from training import train_causal

    monkeypatch.setattr(train_causal, "AUDIO_TEACHER", True)
    assert train_causal.teaches("video")
    assert not train_causal.teaches("permissive") and not train_causal.teaches("all")
    assert not train_causal.teaches("video", no_teacher=True) and not train_causal.teaches("video", no_phones=True)
    monkeypatch.setattr(train_causal, "AUDIO_TEACHER", False)
    assert not train_causal.teaches("video")


def test_the_live_engine_maps_its_opening_by_the_models_curve():
    """A live opening model's curve (curve_in -> curve_out, training.fit.opening_curve) is applied by the engine, as
    the offline motion applies its model's (OpeningModel.bounded): a curve sending every opening to 0 shuts the
    mouth that the same model without it opens."""
    import copy

    audio = speechlike(2.5)
    plain = motion.load_causal_model()
    shut = copy.deepcopy(plain)
    for head in shut.opening.values():
        head.arrays.update({"curve_in": np.array([0.0, 1.2]), "curve_out": np.zeros(2)})
    opened, _ = stream(audio, 320, lookahead=0.1, model=plain)
    closed, _ = stream(audio, 320, lookahead=0.1, model=shut)
    assert opened.opening.max() > 0.1 and np.abs(closed.opening).max() < 1e-9
