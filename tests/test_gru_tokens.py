"""training.gru_tokens (a bidirectional GRU on the shipped recipe's inputs, screened by training.tokens): the numpy
GRU keeps torch's gate layout, its strided states are drawn at every hop, the training windows stay on the stride's
grid inside their clip, and the net bound to a clip runs through the offline motion. The numpy-equals-torch check runs
where torch is installed (it is not a dependency of lipdub). No shared data needed."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub import motion
from lipdub.motion.offline import learned_opening
from lipdub.speech.track import Phone, SpeechTrack
from training import gru_tokens, tokens

N = 60  # hops


def speech_track() -> SpeechTrack:
    mel = np.repeat((0.01 * np.arange(N, dtype=np.float32))[:, None], 26, 1)
    return SpeechTrack(N / 100, 0.01, np.ones(N, bool), np.full(N, 0.5, np.float32), np.full(N, 0.5, np.float32),
                       [Phone("AA", 0.0, N / 100)], "hama+align", None, mel)


def random_net(rng, inputs: int, hidden: int = 4, units: int = 3) -> dict:
    return {"mean": rng.normal(size=inputs), "std": rng.random(inputs) + 0.5,
            "w1": rng.normal(size=(inputs, hidden)), "b1": rng.normal(size=hidden),
            "w_ih": rng.normal(size=(2, 3 * units, hidden)), "w_hh": rng.normal(size=(2, 3 * units, units)),
            "b_ih": rng.normal(size=(2, 3 * units)), "b_hh": rng.normal(size=(2, 3 * units)),
            "w2": rng.normal(size=hidden), "wg": rng.normal(size=2 * units), "b2": 0.3}


def test_the_gru_gates_are_r_z_n_in_that_order():
    rng = np.random.default_rng(0)
    seq = rng.normal(size=(7, 2))
    w_ih, w_hh = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    shut, open_ = np.zeros(6), np.zeros(6)
    shut[2:4], open_[2:4] = 50.0, -50.0  # the update gate z (rows G..2G): 1 keeps the zero state, 0 takes n
    assert np.allclose(gru_tokens.gru_pass(seq, w_ih, w_hh, shut, np.zeros(6)), 0.0)
    free = gru_tokens.gru_pass(seq, w_ih, np.zeros((6, 2)), open_, np.zeros(6))
    assert np.allclose(free, np.tanh(seq @ w_ih[4:].T), atol=1e-9)  # with z = 0 and no recurrence, h = n


def test_the_strided_states_are_drawn_linearly_between_steps_and_held_after_the_last():
    states = np.array([[0.0], [4.0], [8.0]])
    drawn = gru_tokens.strided_at(states, 11, 4)[:, 0]
    assert np.allclose(drawn, [0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8])
    assert np.allclose(gru_tokens.strided_at(states, 3, 1), states)


def test_training_windows_lie_inside_their_clips_on_the_stride_grid():
    cut = gru_tokens.windows([100, 2000, 801], np.random.default_rng(0), 800, 4)
    assert [c for c, *_ in cut] == [0, 1, 1, 1, 2, 2]
    assert cut[0] == (0, 0, 100)
    for c, start, stop in cut[1:]:
        assert stop - start == 800 and start % 4 == 0 and 0 <= start and stop <= [100, 2000, 801][c]


def test_the_bound_gru_runs_through_the_motion_and_avg_takes_the_mlps_half():
    rng = np.random.default_rng(1)
    speech = speech_track()
    plain = motion.model_features(speech)
    extra = rng.normal(size=(N, 2))
    nets = gru_tokens.GruOpeningNets([random_net(rng, plain.shape[1] + 2)], 4)
    expected = nets.predict_hops(np.concatenate([plain, extra], 1))
    assert np.allclose(learned_opening(speech, gru_tokens.GruOnClip(nets, extra)), np.clip(expected, 0, 1.2))

    class Mlp:
        def predict(self, x):
            assert x.shape[1] == plain.shape[1]
            return np.full(len(x), 0.2)
    averaged = learned_opening(speech, gru_tokens.GruOnClip(nets, extra, Mlp()))
    assert np.allclose(averaged, np.clip(0.5 * (expected + 0.2), 0, 1.2))


def test_every_gru_variant_is_screened():
    assert set(gru_tokens.GRU_VARIANTS) <= set(tokens.VARIANTS)


def test_the_numpy_nets_equal_torch_on_a_random_net():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    lin, head = torch.nn.Linear(5, 6), torch.nn.Linear(6 + 2 * 3, 1)
    gru = torch.nn.GRU(6, 3, batch_first=True, bidirectional=True)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(43, 5))
    mean, std = x.mean(0), x.std(0) + 1e-6
    nets = gru_tokens.GruOpeningNets([gru_tokens.net_arrays(lin, gru, head, mean, std)], 1)
    with torch.no_grad():
        hidden = torch.tanh(lin(torch.tensor((x - mean) / std, dtype=torch.float32)[None]))
        states, _ = gru(hidden)
        ref = head(torch.cat([hidden, states], 2))[0, :, 0].numpy()
    assert np.allclose(nets.predict_hops(x), ref, atol=1e-5)


def test_nets_started_from_an_mlp_draw_its_opening_before_they_learn():
    pytest.importorskip("torch")
    from training.fit import fit_mlp
    rng = np.random.default_rng(3)
    feats = [rng.normal(size=(n, 6)) for n in (90, 130)]
    centres = [np.arange(0, len(f), 4) for f in feats]
    targets = [rng.random(len(c)) for c in centres]
    mlp = fit_mlp(np.concatenate([f[c] for f, c in zip(feats, centres)]), np.concatenate(targets), members=2,
                  hidden=gru_tokens.HIDDEN, epochs=2)
    nets = gru_tokens.fit_gru(feats, centres, targets, members=2, units=3, passes=1, window=64, lr=0.0, init=mlp)
    assert np.allclose(nets.predict_hops(feats[1]), mlp.predict(feats[1]), atol=1e-4)


def test_without_context_each_hop_is_drawn_from_its_own_row_alone():
    pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    feats = [rng.normal(size=(n, 5)) for n in (70, 120)]
    centres = [np.arange(0, len(f), 4) for f in feats]
    targets = [rng.random(len(c)) for c in centres]
    nets = gru_tokens.fit_gru(feats, centres, targets, members=1, units=3, passes=2, window=64, context=False)
    x = feats[1]
    whole = nets.predict_hops(x)
    assert np.allclose(whole[::-1], nets.predict_hops(x[::-1]))  # no order: the rows alone
    with_context = gru_tokens.fit_gru(feats, centres, targets, members=1, units=3, passes=2, window=64)
    assert not np.allclose(with_context.predict_hops(x)[::-1], with_context.predict_hops(x[::-1]))
