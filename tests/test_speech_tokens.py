"""speech.tokens (hama's whole token distribution per hop, projected on the shipped axes): where each chunk's token
probabilities land, the projection, the asset and its card, the analysis and the JSON keeping the components, the
offline model declaring them as inputs. The analysis case reads ../shared/data (skipped when absent)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from lipdub import motion
from lipdub.core.constants import SR
from lipdub.errors import DependencyError, InputError
from lipdub.motion import models
from lipdub.speech import Phone, SpeechTrack, analyse, posteriors, recognise, tokens

N_TOKENS = len(recognise.token_phones())


def test_each_chunks_token_probabilities_land_on_its_hops_and_blank_elsewhere(monkeypatch):
    heard = []

    def fake(audio, sr):  # one 20 ms frame per 320 samples, each frame's token: its index
        heard.append(len(audio))
        probs = np.zeros((len(audio) // 320, N_TOKENS), np.float32)
        probs[np.arange(len(probs)), np.arange(len(probs))] = 1.0
        return probs
    monkeypatch.setattr(recognise, "frame_posteriors", fake)
    out = tokens.chunk_tokens(np.zeros(SR, np.float32), [(10, 30), (50, 61)], 60)
    blank = recognise.blank_token()
    assert heard == [20 * 160, 11 * 160]
    assert out.shape == (60, N_TOKENS)
    assert out[10, 0] == 1 and out[11, 0] == 1 and out[12, 1] == 1 and out[29, 9] == 1  # 2 hops per frame
    assert out[50, 0] == 1 and out[59, 4] == 1  # the second chunk, cut at the end of the audio
    assert np.all(out[:10, blank] == 1) and np.all(out[30:50, blank] == 1)  # unheard hops: blank


def test_the_projection_is_the_log_of_the_smoothed_distribution_on_the_axes():
    rng = np.random.default_rng(0)
    clips = [rng.dirichlet(np.full(N_TOKENS, 0.1), n).astype(np.float32) for n in (200, 120)]
    axes = tokens.fit_axes(clips, 8)
    assert axes.axes.shape == (N_TOKENS, 8) and np.allclose(axes.axes.T @ axes.axes, np.eye(8), atol=1e-4)
    p = clips[1]
    smooth = np.zeros_like(p, dtype=np.float64)  # each hop with the hops one 20 ms frame (2 hops) either side
    for d in (-2, 0, 2):
        rows = np.arange(len(p)) + d
        ok = (rows >= 0) & (rows < len(p))
        smooth[ok] += p[rows[ok]]
    want = (np.log(smooth / 3 + tokens.FLOOR) - axes.mean) @ axes.axes
    got = axes.project(p)
    assert got.shape == (120, 8) and got.dtype == np.float32 and np.allclose(got, want, atol=1e-3)
    # the first axis spreads the fitted hops most: more than any other unit direction tried
    logs = np.concatenate([tokens.log_smoothed(c) for c in clips]) - axes.mean
    spread = np.var(logs @ axes.axes[:, 0])
    others = rng.normal(size=(N_TOKENS, 20))
    assert spread > np.var(logs @ (others / np.linalg.norm(others, axis=0)), axis=0).max()



def test_the_projection_in_blocks_is_the_whole_ones(monkeypatch):
    # hops are smoothed with their neighbours across the blocks' edges: the blocks give the same values
    monkeypatch.setattr(tokens, "PROJECT_BLOCK", 7)
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.full(N_TOKENS, 0.1), 40).astype(np.float32)
    axes = tokens.fit_axes([p], 8)
    whole = (tokens.log_smoothed(p) - axes.mean) @ axes.axes
    assert np.array_equal(axes.project(p), whole)
    assert axes.project(p[:0]).shape == (0, 8)

def test_the_shipped_axes_match_their_card_and_a_changed_file_fails(tmp_path):
    axes = tokens.load_axes()
    assert axes.axes.shape == (N_TOKENS, tokens.N_COMPONENTS) and axes.mean.shape == (N_TOKENS,)
    card = json.loads(models.card_path(tokens.AXES_PATH).read_text())
    assert card["kind"] == "token-axes" and card["feature_schema"]["components"] == tokens.N_COMPONENTS
    assert {c["licence"] for c in card["training_data"]["clips"]}  # every training clip with its licence
    copy = tmp_path / "token_axes.npz"
    shutil.copy(tokens.AXES_PATH, copy)
    shutil.copy(models.card_path(tokens.AXES_PATH), models.card_path(copy))
    assert np.array_equal(tokens.load_axes(str(copy)).axes, axes.axes)
    other = tmp_path / "other.npz"  # another file than its card describes (loads are cached by path)
    np.savez(other, mean=axes.mean, axes=axes.axes[:, :8])
    shutil.copy(models.card_path(tokens.AXES_PATH), models.card_path(other))
    with pytest.raises(DependencyError, match="not the file its card"):
        tokens.load_axes(str(other))
    narrow = tmp_path / "narrow.npz"  # its card agrees, but 8 components where the code reads 32
    shutil.copy(other, narrow)
    models.card_path(narrow).write_text(json.dumps({"sha256": models.file_sha256(narrow)}))
    with pytest.raises(DependencyError, match="the code reads"):
        tokens.load_axes(str(narrow))


def _track(n: int, components) -> SpeechTrack:
    rng = np.random.default_rng(1)
    return SpeechTrack(n / 100, 0.01, np.ones(n, bool), np.full(n, 0.5, np.float32), np.full(n, 0.5, np.float32),
                       [Phone("AA", 0.0, n / 100)], "hama+align", None, np.zeros((n, 26), np.float32),
                       rng.dirichlet(np.ones(posteriors.N_COLUMNS), n).astype(np.float32), components)


def test_json_keeps_the_components_and_reads_version_2_files(tmp_path):
    n = 30
    comp = np.random.default_rng(2).normal(0, 5, (n, tokens.N_COMPONENTS)).astype(np.float32)
    _track(n, comp).save(tmp_path / "s.json")
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["version"] == 4
    back = SpeechTrack.load(tmp_path / "s.json")
    assert back.components.shape == (n, tokens.N_COMPONENTS)
    assert np.allclose(back.components, comp, rtol=1e-3, atol=1e-3)  # float16: 3 significant digits
    old = dict(saved, version=2)
    del old["components"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    old_track = SpeechTrack.load(tmp_path / "old.json")
    assert old_track.components is None and old_track.posteriors.shape == (n, posteriors.N_COLUMNS)
    (tmp_path / "bad.json").write_text(json.dumps(dict(saved, components=[[0.0] * 8] * n)))
    with pytest.raises(InputError, match="components"):
        SpeechTrack.load(tmp_path / "bad.json")


def test_a_model_trained_with_components_declares_and_needs_them(tmp_path):
    taps = motion.OFFLINE_POSTERIOR_TAPS
    n = 40
    comp = np.random.default_rng(3).normal(size=(n, tokens.N_COMPONENTS)).astype(np.float32)
    with_posteriors = len(motion.offline_feature_names(motion.MEL_CONTEXT, taps))
    full = motion.model_features(_track(n, comp), posterior_taps=taps, component_taps=taps)
    assert full.shape[1] == len(motion.offline_feature_names(motion.MEL_CONTEXT, taps, taps)) \
        == with_posteriors + len(taps) * tokens.N_COMPONENTS
    # tap +0.04 s (4 hops) of hop 10 is the components' row 14; past the end: zeros
    first = with_posteriors + 2 * tokens.N_COMPONENTS
    assert np.array_equal(full[10, first:first + tokens.N_COMPONENTS], comp[14])
    assert np.all(full[n - 1, -tokens.N_COMPONENTS:] == 0)
    with pytest.raises(InputError, match="no token components.*--motion-model permissive"):
        motion.model_features(_track(n, None), posterior_taps=taps, component_taps=taps)
    width = full.shape[1]
    rng = np.random.default_rng(0)
    arrays = {"mean": np.zeros((1, width)), "std": np.ones((1, width)), "w1": rng.normal(size=(1, width, 4)),
              "b1": np.zeros((1, 4)), "w2": rng.normal(size=(1, 4)), "b2": np.zeros(1),
              "posterior_taps": np.array(taps)}
    np.savez(tmp_path / "m.npz", **arrays, component_taps=np.array(taps))
    model = motion.load_opening_model(tmp_path / "m.npz")
    assert model.component_taps == taps
    assert models.opening_schema(model)["inputs"][-1] == f"component{taps[-1]:+.2f}:{tokens.N_COMPONENTS - 1}"
    assert len(motion.mouth_track(_track(n, comp), np.arange(10) / 25,
                                  params=motion.MotionParams(model=model)).opening) == 10
    np.savez(tmp_path / "undeclared.npz", **arrays)  # the same weights, the component taps not named
    with pytest.raises(DependencyError, match=f"takes {width} inputs .*builds {with_posteriors}"):
        motion.load_opening_model(tmp_path / "undeclared.npz")


def test_the_shipped_research_model_reads_the_components_and_fails_early_without_them():
    taps = motion.OFFLINE_POSTERIOR_TAPS
    assert motion.load_model("research").component_taps == taps
    with pytest.raises(InputError, match="no token components"):
        motion.check_speech_inputs(_track(20, None), "research")
    assert motion.load_model("permissive").component_taps == ()  # its inputs as before: no research-only axes
    motion.check_speech_inputs(_track(20, None), "permissive")


def test_the_analysis_keeps_the_components_of_its_hama_pass(monkeypatch):
    try:
        from conftest import require_data
    except ImportError:  # pragma: no cover
        pytest.skip("tests/conftest.py is not importable")
    root = require_data("video/grid_lbbc2a.mpg")
    from lipdub.media import load_audio

    x = load_audio(root / "video/grid_lbbc2a.mpg", 16000)[0]
    track = analyse(x, 16000)
    assert track.components.shape == (track.n_frames, tokens.N_COMPONENTS)
    # the same hama probabilities as the class posteriors: each 20 ms frame on its two hops, blank after the last
    hop_tokens = tokens.unheard(track.n_frames)
    tokens.place(hop_tokens, 0, recognise.frame_posteriors(x, 16000))
    assert np.array_equal(posteriors.class_posteriors(hop_tokens), track.posteriors)
    assert np.allclose(track.components, tokens.load_axes().project(hop_tokens), atol=1e-4)
    with_text = analyse(x, 16000, transcript="lay blue by c two again")  # one more pass: the same numbers
    assert np.allclose(with_text.components, track.components, atol=1e-4)
    monkeypatch.setattr(tokens, "load_axes", lambda: (_ for _ in ()).throw(DependencyError("axes missing")))
    no_axes = analyse(x, 16000)
    assert no_axes.components is None and np.array_equal(no_axes.posteriors, track.posteriors)


def test_saved_columns_are_packed_small_the_motion_the_same_and_lists_still_read(tmp_path):
    """An hour's mel, posteriors and components as JSON lists took ~GB of Python floats to write and read
    (docs/RESULTS.md, Long inputs): they are packed as float16, finer than the lists' rounding, and the motion from
    a saved and loaded track is the in-memory track's. Version 3 files (lists) still load; damaged packs fail."""
    from lipdub.speech.track import pack_rows

    n = 400
    rng = np.random.default_rng(4)
    track = _track(n, rng.normal(0, 2, (n, tokens.N_COMPONENTS)).astype(np.float32))
    track.mel = rng.normal(0, 1, (n, 26)).astype(np.float32)
    track.save(tmp_path / "s.json")
    saved = json.loads((tmp_path / "s.json").read_text())
    for name, width in (("mel", 26), ("posteriors", posteriors.N_COLUMNS), ("components", tokens.N_COMPONENTS)):
        assert saved[name]["dtype"] == "float16" and saved[name]["shape"] == [n, width], name
        assert len(saved[name]["data"]) <= 2 * n * width * 4 / 3 + 4, name  # 2 bytes a number, base64
    back = SpeechTrack.load(tmp_path / "s.json")
    assert np.abs(back.mel - track.mel).max() < 3e-3 and np.abs(back.posteriors - track.posteriors).max() < 5e-4
    times = np.arange(n // 4) / 25.0
    params = motion.MotionParams(model=motion.load_model())
    before, after = motion.mouth_track(track, times, params=params), motion.mouth_track(back, times, params=params)
    assert np.abs(before.opening - after.opening).max() < 1e-3 and np.array_equal(before.closed, after.closed)

    lists = dict(saved, version=3, **{k: np.round(getattr(track, k).astype(np.float64), 2).tolist()
                                      for k in ("mel", "posteriors", "components")})
    (tmp_path / "v3.json").write_text(json.dumps(lists))
    v3 = SpeechTrack.load(tmp_path / "v3.json")
    assert np.abs(v3.components - track.components).max() <= 5.01e-3 and v3.mel.shape == (n, 26)
    short = dict(pack_rows(track.components), shape=[n + 1, tokens.N_COMPONENTS])
    for bad in (short, dict(pack_rows(track.components), dtype="float64"), dict(pack_rows(track.components),
                                                                                data="not base64!")):
        (tmp_path / "bad.json").write_text(json.dumps(dict(saved, components=bad)))
        with pytest.raises(InputError, match="malformed"):
            SpeechTrack.load(tmp_path / "bad.json")
