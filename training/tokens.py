"""Screen: more of hama's output than the 12 phone classes as inputs of the offline opening model (issue 22).

    OMP_NUM_THREADS=1 python -m training.tokens [--folds 5] [--members 2] [--variants post5,phones5,...]
        [--keep /tmp/samples.pkl] [--results /tmp/results.json]

The shipped model reads hama's CTC token probabilities summed into 12 phone classes + other (speech.posteriors) at
motion.OFFLINE_POSTERIOR_TAPS. hama's ASR engine exposes only its output layer (191 tokens' log-probabilities per
20 ms: hama._engine.AsrSession returns log_probs and out_lengths, nothing of its encoder), so the richer inputs are
that layer, read differently:
- phones5: the tokens summed per ARPAbet phone (speech.recognise.token_phones: 39 phones + other) instead of per
  class;
- pcaK: the log of each hop's smoothed token probabilities projected on its first K principal components (fitted
  per fold on the training clips' hops only, so a held-out clip never shapes its own inputs), at the same taps,
  beside the class posteriors; pcaKf: each hop's unsmoothed log-probabilities projected, the projections smoothed
  at the taps;
- entropy: the entropy of the smoothed token distribution (the recogniser's uncertainty) at the taps, beside them;
- -xlag: the training targets moved by each clip's lag as a learned model reads it (cross_fitted_lags: measured by
  models that never heard the clip's speaker, fitted inside the training folds) instead of the viseme rules' lag.
Every clip's token probabilities come from hama on the chunks the speech analysis gives it (training.clips.clip_tokens:
the same pass as the shipped posteriors, their class sums equal SpeechTrack.posteriors, checked at load); kept in the
one cache.
Each variant is scored held out next to post5 (the shipped inputs) with the same folds of speaker groups
(training.train_motion.heldout_models), through the full motion post-processing; the best, when it gains at least
CONFIRM_GAIN, is scored again next to it over more folds and nets (--confirm). The figures: docs/RESULTS.md (Motion
alone, "The recogniser's whole output"). pca32-xlag shipped: speech.tokens (the components, their axes an asset),
training.train_motion (the recipe, cross_fitted_lags); since stop 40 the shipped nets' rate falls to 0 over their
passes (train_motion.OPENING_DECAY), which here is pca32-xlag-decay (its lags still timed by nets without it): the
variants below were screened against pca32-xlag, the recipe before. SHIPPED_RECIPE_VARIANTS vary it (inputs normalised per
utterance, wider component context, per-clip standardised targets, more nets; none kept: docs/RESULTS.md, Motion
alone, stop 34); --split N scores them on another random split of the speaker groups.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import sys
from pathlib import Path

import numpy as np

from lipdub import motion
from lipdub.core.constants import HOP_SECONDS
from lipdub.core.files import write_atomically, write_text
from lipdub.motion.features import component_columns, posterior_columns
from lipdub.speech import recognise
from lipdub.speech.posteriors import class_posteriors
from lipdub.speech.tokens import fit_axes, log_smoothed
from training.clips import clip_tokens
from training.clip_loss import net_fitter
from training.manifest import data_root, filmed_clips, require_data
from training.gru_tokens import GRU_VARIANTS, gru_variant_fitter
from training.posteriors import CONFIRM_GAIN, WithColumns, print_gain, print_variant
from training.temporal_tokens import TEMPORAL_VARIANTS, temporal_variant_fitter
from training.train_motion import LAG_MEMBERS, OPENING_EPOCHS, TAPS, aligned_rows, cross_fitted_lags, \
    heldout_models, lag_summary, load_samples, score_clip, speaker_of_name


def phone_groups() -> np.ndarray:
    """Per token: its column when the tokens are summed per ARPAbet phone (the last column: blank and non-phones)."""
    phones = recognise.token_phones()
    names = sorted({p for p in phones if p})
    return np.array([names.index(p) if p else len(names) for p in phones])


class ExtraColumns:
    """An opening model fitted on the plain motion features plus per-clip extra columns (computed by `extra(name)`
    at every hop); .on(name) is the model for one clip (training.posteriors.WithColumns, for motion.mouth_track)."""

    def __init__(self, inner, keep, extra):
        self.inner, self.keep, self.extra = inner, keep, extra

    def on(self, name: str) -> WithColumns:
        return WithColumns(self.inner, self.keep, self.extra(name))


VARIANTS = ("post5", "phones5", "entropy", "pca8", "pca16", "pca32", "pca64", "pca32f", "post5-xlag", "pca32-xlag",
            "pca64-xlag")
# variants of the shipped pca32-xlag (issue 22, stop 34). Per-utterance normalisation of the inputs the analysis does
# not standardise per utterance (the log-mel is; jaw and loudness are scaled by the clip's own percentiles), as CMVN
# does for an unseen voice, with the clip's mean (and spread) over its voiced hops: -cmean the components minus it,
# -cz the components standardised, -pmean the class posteriors minus it, -norm both (-cz and -pmean). Wider context
# of the components: pca32w7 / pca32w9 read them at WIDE_TAPS; pca32lm adds their local means over LOCAL_MEANS.
# -zt: each clip's targets standardised, then put back on the training rows' overall scale (the loss then weighs
# every clip's shape as r does, not its own range).
# -x2: twice the nets per model (what more averaging gives). Suffixes combine (-pmean-zt: both).
SHIPPED_RECIPE_VARIANTS = ("pca32-xlag-cmean", "pca32-xlag-cz", "pca32-xlag-pmean", "pca32-xlag-norm", "pca32w7-xlag",
                           "pca32w9-xlag", "pca32lm-xlag", "pca32-xlag-zt", "pca32-xlag-x2", "pca32-xlag-pmean-zt")
NETS_TIMES = {"x2": 2}
VARIANTS += SHIPPED_RECIPE_VARIANTS
VARIANTS += TEMPORAL_VARIANTS  # the temporal net on the shipped recipe's inputs (training.temporal_tokens, stop 35)
# the shipped recipe fitted with a per-clip correlation loss, alone or mixed with the squared error (training.clip_loss,
# stop 35); -zt-corr50: with the per-clip standardised targets too
LOSS_VARIANTS = ("pca32-xlag-corr", "pca32-xlag-corr50", "pca32-xlag-corr80", "pca32-xlag-zt-corr50")
VARIANTS += LOSS_VARIANTS
# the recipe with the MLP's rate brought down linearly to 0 over its passes (stop 40: the GRU started from the MLP
# gained as much with its GRU held at 0, training.gru_tokens' -ctl); shipped since (train_motion.OPENING_DECAY)
VARIANTS += ("pca32-xlag-decay",)
# the falling rate varied (issue 22, stop 41; training.clip_loss.rate_schedule): a fall to 10 % of the rate instead of
# 0, 180 and 240 passes, a start rate of 6e-3, a cosine fall, and twice the nets
DECAY_VARIANTS = ("pca32-xlag-decay-floor10", "pca32-xlag-decay-e180", "pca32-xlag-decay-e240",
                  "pca32-xlag-decay-lr6", "pca32-xlag-decay-cos", "pca32-xlag-decay-x2")
VARIANTS += DECAY_VARIANTS
VARIANTS += GRU_VARIANTS  # a bidirectional GRU on the shipped recipe's inputs (training.gru_tokens, stop 40)
WIDE_TAPS = {"w7": (-0.12, -0.06, 0.0, 0.04, 0.08, 0.14, 0.20),
             "w9": (-0.12, -0.08, -0.04, 0.0, 0.04, 0.08, 0.12, 0.16, 0.20)}
LOCAL_MEANS = ((-0.20, -0.06), (0.14, 0.28))  # s: spans just outside the taps, each averaged over its hops
_LAGS: dict = {}  # the training clips' names -> their cross-fitted lags (seeded: the same for every variant)


def utterance_normalised(columns: np.ndarray, voiced: np.ndarray, scale: bool) -> np.ndarray:
    """Every hop's `columns` minus their mean over the utterance's voiced hops (all hops when under 10 are voiced),
    with `scale` also divided by their spread there: what CMVN does to an unseen voice's features."""
    ref = columns[voiced] if np.count_nonzero(voiced) >= 10 else columns
    out = columns - ref.mean(0)
    return out / (ref.std(0) + 1e-6) if scale else out


def local_means(components: np.ndarray, hops: np.ndarray, spans=LOCAL_MEANS) -> np.ndarray:
    """(len(hops), len(spans) · K) the components averaged over each span (s) around each hop (a cumulative sum;
    hops outside the audio count as zeros, as component_columns reads them)."""
    n = len(components)
    csum = np.concatenate([np.zeros((1, components.shape[1])), np.cumsum(components, 0)])
    cols = []
    for lo, hi in spans:
        a = np.clip(hops + int(round(lo / HOP_SECONDS)), 0, n)
        b = np.clip(hops + int(round(hi / HOP_SECONDS)) + 1, 0, n)
        width = int(round(hi / HOP_SECONDS)) + 1 - int(round(lo / HOP_SECONDS))
        cols.append((csum[b] - csum[a]) / width)
    return np.concatenate(cols, 1)


def per_clip_standardised(targets: dict) -> dict:
    """Each clip's targets standardised, then put on the scale of all of them together (mean and spread)."""
    every = np.concatenate(list(targets.values()))
    mean, std = every.mean(), every.std()
    return {k: (y - y.mean()) / (y.std() + 1e-6) * std + mean for k, y in targets.items()}


def fold_lags(samples: dict, names, epochs: int) -> dict:
    """The cross-fitted lags of a fold's training clips (-xlag's targets), computed once per process and shared by
    every variant scored in it (they are seeded, so the same for each)."""
    key = (tuple(names), epochs)
    if key not in _LAGS:
        _LAGS[key] = cross_fitted_lags(samples, names, variant_fitter("post5", samples, None, epochs), LAG_MEMBERS,
                                       lambda model, name: model.on(name))
    return _LAGS[key]


def variant_fitter(variant: str, samples: dict, tokens: dict, epochs: int):
    """fit(names, members) -> ExtraColumns of a variant (the plain columns + its extra columns at every hop)."""
    n_plain = len(motion.offline_feature_names())
    keep = np.arange(n_plain)
    classes = {k: s[2].posteriors for k, s in samples.items()}
    hops = {k: np.arange(len(s[2].voiced)) for k, s in samples.items()}
    groups = phone_groups()
    per_phone = {}
    logs = {}

    def base(name):  # the shipped class posteriors at the taps
        return posterior_columns(classes[name], hops[name], TAPS)

    def phones(name):
        if name not in per_phone:
            per_phone[name] = posterior_columns(class_posteriors(tokens[name], groups), hops[name], TAPS)
        return per_phone[name]

    def log_tokens(name):
        if name not in logs:
            logs[name] = log_smoothed(tokens[name])
        return logs[name]

    def log_frames(name):  # unsmoothed: projected first, the projections smoothed at the taps
        return np.log(tokens[name] + 1e-4).astype(np.float32)

    def entropy(name):
        p = posterior_columns(tokens[name], hops[name], (0.0,))  # smoothed as the components' distributions
        h = -(p * np.log(p + 1e-9)).sum(1, keepdims=True)
        return component_columns(h, hops[name], TAPS)

    voiced = {k: np.asarray(s[2].voiced, bool) for k, s in samples.items()}
    head, *suffix = variant.split("-")
    comp_taps = WIDE_TAPS.get(head[-2:], TAPS)
    unsmoothed = head.endswith("f")

    def post_at(name):  # the class posteriors at the taps, minus the utterance's mean with -pmean / -norm
        if {"pmean", "norm"} & set(suffix):
            return posterior_columns(utterance_normalised(classes[name], voiced[name], False), hops[name], TAPS)
        return base(name)

    def fit(names, members):
        project = None
        if variant.startswith("pca"):
            k = int(re.match(r"pca(\d+)", variant)[1])
            if unsmoothed:
                rows = np.concatenate([log_frames(n) for n in names])
                mean = rows.mean(0)
                _, _, vt = np.linalg.svd(rows[::4] - mean, full_matrices=False)  # every 4th hop: the same axes
                project = (mean, vt[:k].T)
            else:  # the shipped fit (speech.tokens.fit_axes), on this fold's training clips only
                axes = fit_axes([tokens[n] for n in names], k)
                project = (axes.mean, axes.axes)

        def extra(name):
            if variant.startswith("post5"):
                return base(name)
            if variant == "phones5":
                return phones(name)
            if variant == "entropy":
                return np.concatenate([base(name), entropy(name)], 1)
            mean, axes = project
            if unsmoothed:  # each frame's log-probabilities projected, the projections smoothed at taps
                return np.concatenate([base(name), posterior_columns(
                    (log_frames(name) - mean) @ axes, hops[name], TAPS)], 1)
            comps = (log_tokens(name) - mean) @ axes
            if {"cmean", "cz", "norm"} & set(suffix):
                comps = utterance_normalised(comps, voiced[name], scale=bool({"cz", "norm"} & set(suffix)))
            parts = [post_at(name), component_columns(comps, hops[name], comp_taps)]
            if head.endswith("lm"):
                parts.append(local_means(comps, hops[name]))
            return np.concatenate(parts, 1)

        rows = {n: (samples[n][3], samples[n][4], samples[n][6]) for n in names}
        if "xlag" in suffix:  # the targets moved by each clip's cross-fitted lag instead of the rules'
            lags = fold_lags(samples, names, epochs)
            for n in names:
                times, truth, speech = samples[n][:3]
                x_, y_, c_, _ = aligned_rows(times, truth, speech, lags[n], every_hop=True, posterior_taps=TAPS)
                rows[n] = (x_, y_, c_)
            print("    cross-fitted lags minus the rules' lags: " + lag_summary(
                [lags[n] - samples[n][7] for n in names]), flush=True)
        x = np.concatenate([np.concatenate([rows[n][0][:, keep], extra(n)[np.asarray(rows[n][2])]], 1)
                            for n in names])
        targets = {n: rows[n][1] for n in names}
        if "zt" in suffix:
            targets = per_clip_standardised(targets)
        y = np.concatenate([targets[n] for n in names])
        cache: dict = {}

        def bound(name):
            if name not in cache:
                cache[name] = extra(name)
            return cache[name]
        nets = members * NETS_TIMES.get(suffix[-1] if suffix else "", 1)
        return ExtraColumns(net_fitter(suffix)(x, y, [len(targets[n]) for n in names], nets, epochs), keep, bound)
    return fit


def screen(samples: dict, tokens: dict, variants, folds: int, members: int, epochs: int, kept: Path | None = None,
           split: int = 0) -> dict:
    """Each variant held out over `folds` folds of speaker groups (split at random with the seed `split`); per-clip
    results kept in the JSON file `kept` (when given) and taken from it when it holds the same variant, folds, nets,
    passes and split (the screen is seeded)."""
    group_of = speaker_of_name()
    results = {}
    store = json.loads(kept.read_text()) if kept is not None and kept.is_file() else {}
    for variant in variants:
        key = f"{variant}|{folds}|{members}|{epochs}" + (f"|split{split}" if split else "")
        if key in store:
            res = {k: tuple(v) for k, v in store[key].items()}
        else:
            fitter = (temporal_variant_fitter if variant in TEMPORAL_VARIANTS
                      else gru_variant_fitter if variant in GRU_VARIANTS else variant_fitter)
            fit = fitter(variant, samples, tokens, epochs)
            models = heldout_models(samples, fit, members, list(samples), folds=folds, out=None, split=split)
            res = {k: score_clip(s, models[group_of[k]].on(k)) for k, s in samples.items()}
            if kept is not None:
                store[key] = {k: [float(v[0]), int(v[1]), float(v[2])] for k, v in res.items()}
                write_text(kept, json.dumps(store))
        results[variant] = res
        print_variant(variant, res, group_of)
        if variant != variants[0]:
            print_gain(variant, res, variants[0], results[variants[0]])
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.tokens", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="the data root (default $LIPDUB_DATA or ../shared/data)")
    ap.add_argument("--folds", type=int, default=5, help="folds of speaker groups (held out)")
    ap.add_argument("--members", type=int, default=2, help="nets per held-out model")
    ap.add_argument("--epochs", type=int, default=OPENING_EPOCHS, help="passes over the data")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, the first is the baseline: "
                    + ", ".join(VARIANTS))
    ap.add_argument("--keep", default=None, metavar="PKL",
                    help="load the clips' samples from this file, or write them there after loading (a later screen "
                         "in another process skips the minutes of loading; outside the repository)")
    ap.add_argument("--confirm", default="10,5", metavar="FOLDS,MEMBERS",
                    help="the screen's best variant, when it beats the first by CONFIRM_GAIN, is scored again next to "
                         "it with this many folds and nets ('' : not)")
    ap.add_argument("--results", default=None, metavar="JSON",
                    help="keep each variant's per-clip results in this file and reuse them (outside the repository)")
    ap.add_argument("--late", default="", help="variants screened after the confirmation (slow ones)")
    ap.add_argument("--split", type=int, default=0,
                    help="seed of the random split of the speaker groups into folds (another split: another seed)")
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    if any(v not in VARIANTS for v in variants + args.late.split(",") if v):
        raise SystemExit(f"--variants: choose from {', '.join(VARIANTS)}")
    clips = filmed_clips()
    data = require_data(Path(args.data) if args.data else data_root(),
                        [p for c in clips for p in dict.fromkeys((c.path, c.audio_path))])
    kept = Path(args.keep) if args.keep else None
    if kept is not None and kept.is_file():
        with open(kept, "rb") as f:
            samples = pickle.load(f)
    else:
        samples = load_samples(data)
        if kept is not None:
            write_atomically(kept, lambda tmp: pickle.dump(samples, open(tmp, "wb"), pickle.HIGHEST_PROTOCOL))
    tokens = {}
    for clip in clips:
        speech = samples[clip.name][2]
        tokens[clip.name] = clip_tokens(data, clip, len(speech.voiced))
        diff = np.abs(class_posteriors(tokens[clip.name]) - speech.posteriors).max()
        print(f"tokens of {clip.name}: {tokens[clip.name].shape}, class sums vs the analysis's posteriors: largest "
              f"difference {diff:.2g}", flush=True)
    kept_results = Path(args.results) if args.results else None
    results = screen(samples, tokens, variants, args.folds, args.members, args.epochs, kept_results, args.split)
    mean = {v: np.mean([x[0] for x in res.values()]) for v, res in results.items()}
    best = max(variants[1:], key=mean.get, default=None)
    if args.confirm and best is not None and mean[best] - mean[variants[0]] >= CONFIRM_GAIN:
        folds, members = (int(v) for v in args.confirm.split(","))
        print(f"\nconfirming {best} (+{mean[best] - mean[variants[0]]:.3f} on the screen): {folds} folds, {members} "
              "nets", flush=True)
        screen(samples, tokens, [variants[0], best], folds, members, args.epochs, kept_results, args.split)
    late = [v for v in args.late.split(",") if v]
    if late:
        print("\nscreened after the confirmation:", flush=True)
        screen(samples, tokens, [variants[0]] + late, args.folds, args.members, args.epochs, kept_results,
               args.split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
