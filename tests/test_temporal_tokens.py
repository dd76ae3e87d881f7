"""training.temporal_tokens (the temporal net on the shipped recipe's inputs, screened by training.tokens): the model
bound to a clip runs through the offline motion, reads the temporal net's own columns, and -avg averages the MLP in.
No shared data needed."""

from __future__ import annotations

import numpy as np

from lipdub import motion
from lipdub.motion.offline import learned_opening
from lipdub.speech.track import Phone, SpeechTrack
from training import temporal_tokens, tokens
from training.fit import fit_temporal

N = 60  # hops


def speech_track() -> SpeechTrack:
    mel = np.repeat((0.01 * np.arange(N, dtype=np.float32))[:, None], 26, 1)  # hop i's log-mel: 0.01 i
    return SpeechTrack(N / 100, 0.01, np.ones(N, bool), np.full(N, 0.5, np.float32), np.full(N, 0.5, np.float32),
                       [Phone("AA", 0.0, N / 100)], "hama+align", None, mel)


class MelAtTheHop:
    """A stand-in temporal net: its output is the first log-mel column of its input (the hop's own, if the plain
    columns were mapped right) plus the last input column (the clip's extra)."""

    reach, mel_context = 4, (0,)

    def predict_hops(self, x, start=0, stop=None):
        mel0 = motion.offline_feature_names((0,)).index("mel+0:0")
        return x[start:stop, mel0] + x[start:stop, -1]


def test_the_bound_temporal_net_reads_its_hops_log_mel_and_the_clips_columns_through_the_motion():
    extra = np.full((N, 2), 0.1)
    opening = learned_opening(speech_track(), temporal_tokens.TemporalOnClip(MelAtTheHop(), extra))
    assert np.allclose(opening, 0.01 * np.arange(N) + 0.1, atol=1e-6)


def test_avg_is_the_mean_of_the_temporal_net_and_the_mlp():
    class Mlp:
        mel_context = motion.MEL_CONTEXT  # the MLP reads more log-mel hops: the temporal net's are picked out

        def predict(self, x):
            assert x.shape[1] == len(motion.offline_feature_names())
            return np.full(len(x), 0.5)
    model = temporal_tokens.TemporalOnClip(MelAtTheHop(), np.zeros((N, 1)), Mlp())
    assert model.mel_context == motion.MEL_CONTEXT and model.reach == 4
    opening = learned_opening(speech_track(), model)
    assert np.allclose(opening, 0.5 * (0.01 * np.arange(N) + 0.5), atol=1e-6)


def test_a_fitted_temporal_net_bound_to_a_clip_predicts_as_on_its_training_inputs():
    plain = len(motion.offline_feature_names((0,)))
    rng = np.random.default_rng(0)
    extra = rng.normal(size=(N, 3))
    speech = speech_track()
    feats = np.concatenate([motion.model_features(speech, mel_context=(0,)), extra], 1)
    assert feats.shape[1] == plain + 3
    net = fit_temporal([feats], [np.arange(5, N, 4)], [rng.random(len(range(5, N, 4)))], members=1, hidden=2,
                       hidden2=3, epochs=1)
    net.arrays["mel_context"] = np.array([0.0])
    opening = learned_opening(speech, temporal_tokens.TemporalOnClip(net, extra))
    assert np.allclose(opening, np.clip(net.predict_hops(feats), 0, 1.2))


def test_every_temporal_variant_is_screened_and_names_known_suffixes():
    assert set(temporal_tokens.TEMPORAL_VARIANTS) <= set(tokens.VARIANTS)
    for variant in temporal_tokens.TEMPORAL_VARIANTS:
        head, *suffix = variant.split("-")
        assert head == f"tcn{temporal_tokens.COMPONENTS}" and "xlag" in suffix
        assert all(s in {"xlag", "avg", "pmean", "zt"} or (s[0] == "e" and s[1:].isdigit()) for s in suffix)
