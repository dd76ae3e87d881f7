"""Screen: the temporal convolution (training.fit.fit_temporal) on the shipped recipe's inputs and targets (issue 22,
stop 35), scored held out by training.tokens next to the shipped MLP (`--variants pca32-xlag,tcn32-xlag,...`).

The temporal net reads, at every hop, what the shipped MLP reads at its frame's hop: the dominance, the log-mel of the
hop (motion's TEMPORAL_MEL: its taps give the context), jaw, loudness, voicing, the class posteriors and the 32 token
components (axes fitted per fold on the training clips, as training.tokens' pca32), the posteriors and components at
the hop itself (PER_HOP: the temporal taps reach ±240 ms around it). Its targets are timed by the fold's cross-fitted
lags (-xlag, shared with training.tokens' variants in one process). Suffixes:
- -avg: the mean of its opening and the shipped MLP's (pca32-xlag, fitted on the same fold), before the clip to
  [0, 1.2] the motion applies;
- -pmean / -zt: as in training.tokens (class posteriors minus the utterance's mean; targets standardised per clip),
  for the temporal net and, with -avg, the MLP;
- -eN: N passes for the temporal net instead of the screen's --epochs.
"""

from __future__ import annotations

import re

import numpy as np

from lipdub.motion.features import component_columns, offline_feature_names, posterior_columns
from lipdub.speech.tokens import fit_axes, log_smoothed
from training.fit import fit_temporal
from training.train_motion import SAMPLE_COLUMNS, TAPS, TEMPORAL_MEL, aligned_rows

TEMPORAL_VARIANTS = ("tcn32-xlag", "tcn32-xlag-avg", "tcn32-xlag-pmean-zt", "tcn32-xlag-avg-pmean-zt",
                     "tcn32-xlag-e60", "tcn32-xlag-avg-e60")
COMPONENTS = 32
PER_HOP = (0.0,)  # s: where the temporal net reads the posteriors and components around each hop
_FITTED: dict = {}  # (part, recipe, training names, nets, passes) -> fitted model: -avg reuses the plain net's fits


class TemporalOnClip:
    """The fitted temporal net (and with -avg the MLP) bound to one clip's extra columns: quacks like a temporal
    OpeningModel for motion.mouth_track (reach, mel_context, predict_hops)."""

    posterior_taps = component_taps = ()  # it is given the plain features and appends the clip's own columns

    def __init__(self, tcn, extra: np.ndarray, mlp=None):
        self.tcn, self.extra, self.mlp = tcn, extra, mlp
        self.reach = tcn.reach
        self.mel_context = mlp.mel_context if mlp is not None else tcn.mel_context
        names = offline_feature_names(self.mel_context)
        self.plain = [names.index(n) for n in offline_feature_names(tcn.mel_context)]

    def predict_hops(self, x: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        stop = len(x) if stop is None else stop
        if len(x) != len(self.extra):  # learned_opening builds one block for clips under FEATURE_BLOCK hops
            raise ValueError(f"{len(x)} feature rows against {len(self.extra)} extra rows")
        out = self.tcn.predict_hops(np.concatenate([x[:, self.plain], self.extra], 1), start, stop)
        if self.mlp is not None:
            out = 0.5 * (out + self.mlp.predict(x[start:stop]))
        return out


class TemporalColumns:
    """A fold's fitted temporal net; .on(name) binds it to a clip (training.tokens.screen scores it so)."""

    def __init__(self, tcn, extra, mlp=None):
        self.tcn, self.extra, self.mlp = tcn, extra, mlp

    def on(self, name: str) -> TemporalOnClip:
        return TemporalOnClip(self.tcn, self.extra(name), None if self.mlp is None else self.mlp.on(name))


def temporal_variant_fitter(variant: str, samples: dict, tokens: dict, epochs: int):
    """fit(names, members) -> TemporalColumns of a TEMPORAL_VARIANTS recipe."""
    # training.tokens imports this module to dispatch its variants: imported here, when a variant is fitted
    from training.tokens import fold_lags, per_clip_standardised, utterance_normalised, variant_fitter
    _, *suffix = variant.split("-")
    passes = next((int(s[1:]) for s in suffix if re.fullmatch(r"e\d+", s)), epochs)
    pmean, standardised = "pmean" in suffix, "zt" in suffix
    mlp_recipe = "pca32-xlag" + "-pmean" * pmean + "-zt" * standardised
    plain = [SAMPLE_COLUMNS.index(n) for n in offline_feature_names(TEMPORAL_MEL)]
    hops = {k: np.arange(len(s[2].voiced)) for k, s in samples.items()}

    def posteriors(name):
        post = samples[name][2].posteriors
        if pmean:
            post = utterance_normalised(post, np.asarray(samples[name][2].voiced, bool), False)
        return posterior_columns(post, hops[name], PER_HOP)

    def fit(names, members):
        tcn_key = ("tcn", variant.replace("-avg", ""), tuple(names), members, passes)
        if tcn_key not in _FITTED:
            axes = fit_axes([tokens[n] for n in names], COMPONENTS)
            cache: dict = {}

            def extra(name):  # the posteriors and this fold's components at every hop of a clip
                if name not in cache:
                    comps = (log_smoothed(tokens[name]) - axes.mean) @ axes.axes
                    cache[name] = np.concatenate([posteriors(name), component_columns(comps, hops[name], PER_HOP)], 1)
                return cache[name]
            lags = fold_lags(samples, names, epochs)
            timed = {n: aligned_rows(*samples[n][:3], lags[n], every_hop=True, posterior_taps=TAPS) for n in names}
            targets = {n: timed[n][1] for n in names}
            if standardised:
                targets = per_clip_standardised(targets)
            feats = [np.concatenate([samples[n][5][:, plain], extra(n)], 1) for n in names]
            tcn = fit_temporal(feats, [timed[n][2] for n in names], [targets[n] for n in names], members=members,
                               epochs=passes)
            tcn.arrays["mel_context"] = np.array(TEMPORAL_MEL, float)
            _FITTED[tcn_key] = (tcn, extra)
        tcn, extra = _FITTED[tcn_key]
        mlp = None
        if "avg" in suffix:
            mlp_key = ("mlp", mlp_recipe, tuple(names), members, epochs)
            if mlp_key not in _FITTED:
                _FITTED[mlp_key] = variant_fitter(mlp_recipe, samples, tokens, epochs)(names, members)
            mlp = _FITTED[mlp_key]
        return TemporalColumns(tcn, extra, mlp)
    return fit

