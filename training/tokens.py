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
Every clip's token probabilities come from hama on the chunks the speech analysis gives it (the same pass as the
shipped posteriors: their class sums equal SpeechTrack.posteriors, checked at load); kept in the one cache.
Each variant is scored held out next to post5 (the shipped inputs) with the same folds of speaker groups
(training.train_motion.heldout_models), through the full motion post-processing; the best, when it gains at least
CONFIRM_GAIN, is scored again next to it over more folds and nets (--confirm). The figures and what shipping the
winner takes: docs/RESULTS.md (Motion alone, "The recogniser's whole output"). Nothing here is shipped.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

import numpy as np

from lipdub import motion
from lipdub.core.cache import cache_dir, cache_key
from lipdub.core.constants import HOP_SECONDS, SR
from lipdub.core.files import write_atomically, write_text
from lipdub.motion.features import posterior_columns
from lipdub.speech import recognise, vad
from lipdub.speech.acoustic import frame_rms, n_frames
from lipdub.speech.analysis import _prepare_audio, _recognition_chunks
from lipdub.speech.posteriors import HOPS_PER_FRAME, class_posteriors
from training.clips import clip_audio
from training.fit import fit_mlp
from training.manifest import data_root, filmed_clips, require_data
from training.posteriors import CONFIRM_GAIN, WithColumns, print_gain, print_variant
from training.train_motion import OPENING_EPOCHS, aligned_rows, heldout_models, lag_summary, load_samples, \
    score_clip, speaker_of_name

TAPS = motion.OFFLINE_POSTERIOR_TAPS
TOKENS_VERSION = 1


def token_posteriors(x: np.ndarray, n_hops: int) -> np.ndarray:
    """(n_hops, tokens) hama's token probabilities of prepared 16 kHz audio `x` on the chunks the analysis runs it
    on (speech.analysis._recognition_chunks), each 20 ms frame on its two hops; blank elsewhere."""
    voiced = vad.detect_voice(x, HOP_SECONDS)[:n_hops]
    rms = frame_rms(x, SR, HOP_SECONDS)
    tokens = len(recognise.token_phones())
    blank = recognise._model().blank_id
    out = np.zeros((n_hops, tokens), np.float32)
    out[:, blank] = 1.0
    for a, b in _recognition_chunks(voiced, rms):
        probs = recognise.frame_posteriors(x[int(a * HOP_SECONDS * SR):int(b * HOP_SECONDS * SR)], SR)
        rows = np.repeat(probs, HOPS_PER_FRAME, axis=0)[:max(0, n_hops - a)]
        out[a:a + len(rows)] = rows
    return out


def clip_tokens(data: Path, clip, speech) -> np.ndarray:
    """token_posteriors of a filmed clip's own audio, cached on disk (keyed by the audio file and range)."""
    audio = data / clip.audio_path
    key = cache_key(audio, TOKENS_VERSION, range=clip.range, kind="hama-tokens")
    file = cache_dir() / "train" / f"tokens-{key}.npy"
    if file.is_file():
        return np.load(file)
    x = _prepare_audio(clip_audio(audio, clip.range), SR)
    n = len(speech.voiced)
    assert n == n_frames(x.size, SR, HOP_SECONDS)
    tok = token_posteriors(x, n)
    file.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(file, lambda tmp: np.save(open(tmp, "wb"), tok))
    return tok


def phone_groups() -> np.ndarray:
    """Per token: its column when the tokens are summed per ARPAbet phone (the last column: blank and non-phones)."""
    phones = recognise.token_phones()
    names = sorted({p for p in phones if p})
    return np.array([names.index(p) if p else len(names) for p in phones])


def smoothed(post: np.ndarray) -> np.ndarray:
    """Each hop's probabilities averaged with those one hama frame either side (posterior_columns' smoothing)."""
    return posterior_columns(post, np.arange(len(post)), (0.0,))


def shifted(cols: np.ndarray, hops: np.ndarray, taps) -> np.ndarray:
    """(len(hops), len(taps) · K) per-hop columns at hop + tap (s); zeros outside the audio."""
    out = []
    for tap in taps:
        rows = np.asarray(hops) + int(round(tap / HOP_SECONDS))
        ok = (rows >= 0) & (rows < len(cols))
        block = np.zeros((len(rows), cols.shape[1]))
        block[ok] = cols[rows[ok]]
        out.append(block)
    return np.concatenate(out, 1)


class ExtraColumns:
    """An opening model fitted on the plain motion features plus per-clip extra columns (computed by `extra(name)`
    at every hop); .on(name) is the model for one clip (training.posteriors.WithColumns, for motion.mouth_track)."""

    def __init__(self, inner, keep, extra):
        self.inner, self.keep, self.extra = inner, keep, extra

    def on(self, name: str) -> WithColumns:
        return WithColumns(self.inner, self.keep, self.extra(name))


VARIANTS = ("post5", "phones5", "entropy", "pca8", "pca16", "pca32", "pca64", "pca32f", "post5-xlag", "pca32-xlag",
            "pca64-xlag")


LAG_MEMBERS = 2  # nets of each model that measures lags (it only has to find a best lag)


def cross_fitted_lags(samples: dict, names, members: int, epochs: int) -> dict:
    """Each training clip's own lag (> 0: its audio's mouth late against its film) as a learned model reads it, with
    no clip's speaker in the model that measures it: the training speaker groups are split in two halves, each half's
    clips measured (MotionParams advance 0, as clip_lag) by the shipped recipe fitted on the other half. Nothing of a
    held-out fold is used, so its scores stay held out."""
    group_of = speaker_of_name()
    groups = sorted({group_of[n] for n in names})
    halves = np.array_split(np.random.default_rng(1).permutation(groups), 2)
    fit = variant_fitter("post5", samples, None, epochs)
    lags = {}
    for half in halves:
        inside = set(half)
        model = fit([n for n in names if group_of[n] not in inside], members)
        for n in names:
            if group_of[n] in inside:
                lags[n] = score_clip(samples[n], model.on(n), motion.MotionParams(advance=0.0))[1]
    return lags


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
            logs[name] = np.log(smoothed(tokens[name]) + 1e-4).astype(np.float32)
        return logs[name]

    def log_frames(name):  # unsmoothed: projected first, the projections smoothed at the taps
        return np.log(tokens[name] + 1e-4).astype(np.float32)

    def entropy(name):
        p = smoothed(tokens[name])
        h = -(p * np.log(p + 1e-9)).sum(1, keepdims=True)
        return shifted(h, hops[name], TAPS)

    def fit(names, members):
        project = None
        if variant.startswith("pca"):
            k = int(variant[3:].split("-")[0].rstrip("f"))
            rows = np.concatenate([(log_frames if variant.endswith("f") else log_tokens)(n) for n in names])
            mean = rows.mean(0)
            _, _, vt = np.linalg.svd(rows[::4] - mean, full_matrices=False)  # every 4th hop: the same axes, faster
            project = (mean, vt[:k].T)

        def extra(name):
            if variant.startswith("post5"):
                return base(name)
            if variant == "phones5":
                return phones(name)
            if variant == "entropy":
                return np.concatenate([base(name), entropy(name)], 1)
            mean, axes = project
            if variant.endswith("f"):  # each frame's log-probabilities projected, the projections smoothed at taps
                return np.concatenate([base(name), posterior_columns(
                    (log_frames(name) - mean) @ axes, hops[name], TAPS)], 1)
            return np.concatenate([base(name), shifted((log_tokens(name) - mean) @ axes, hops[name], TAPS)], 1)

        rows = {n: (samples[n][3], samples[n][4], samples[n][6]) for n in names}
        if variant.endswith("-xlag"):  # the targets moved by each clip's cross-fitted lag instead of the rules'
            lags = cross_fitted_lags(samples, names, LAG_MEMBERS, epochs)
            for n in names:
                times, truth, speech = samples[n][:3]
                x_, y_, c_, _ = aligned_rows(times, truth, speech, lags[n], every_hop=True, posterior_taps=TAPS)
                rows[n] = (x_, y_, c_)
            print("    cross-fitted lags minus the rules' lags: " + lag_summary(
                [lags[n] - samples[n][7] for n in names]), flush=True)
        x = np.concatenate([np.concatenate([rows[n][0][:, keep], extra(n)[np.asarray(rows[n][2])]], 1)
                            for n in names])
        y = np.concatenate([rows[n][1] for n in names])
        cache: dict = {}

        def bound(name):
            if name not in cache:
                cache[name] = extra(name)
            return cache[name]
        return ExtraColumns(fit_mlp(x, y, members=members, epochs=epochs), keep, bound)
    return fit


def screen(samples: dict, tokens: dict, variants, folds: int, members: int, epochs: int, kept: Path | None = None
           ) -> dict:
    """Each variant held out over `folds` folds of speaker groups; per-clip results kept in the JSON file `kept`
    (when given) and taken from it when it holds the same variant, folds, nets and passes (the screen is seeded)."""
    group_of = speaker_of_name()
    results = {}
    store = json.loads(kept.read_text()) if kept is not None and kept.is_file() else {}
    for variant in variants:
        key = f"{variant}|{folds}|{members}|{epochs}"
        if key in store:
            res = {k: tuple(v) for k, v in store[key].items()}
        else:
            fit = variant_fitter(variant, samples, tokens, epochs)
            models = heldout_models(samples, fit, members, list(samples), folds=folds, out=None)
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
        tokens[clip.name] = clip_tokens(data, clip, speech)
        diff = np.abs(class_posteriors(tokens[clip.name]) - speech.posteriors).max()
        print(f"tokens of {clip.name}: {tokens[clip.name].shape}, class sums vs the analysis's posteriors: largest "
              f"difference {diff:.2g}", flush=True)
    kept_results = Path(args.results) if args.results else None
    results = screen(samples, tokens, variants, args.folds, args.members, args.epochs, kept_results)
    mean = {v: np.mean([x[0] for x in res.values()]) for v, res in results.items()}
    best = max(variants[1:], key=mean.get, default=None)
    if args.confirm and best is not None and mean[best] - mean[variants[0]] >= CONFIRM_GAIN:
        folds, members = (int(v) for v in args.confirm.split(","))
        print(f"\nconfirming {best} (+{mean[best] - mean[variants[0]]:.3f} on the screen): {folds} folds, {members} "
              "nets", flush=True)
        screen(samples, tokens, [variants[0], best], folds, members, args.epochs, kept_results)
    late = [v for v in args.late.split(",") if v]
    if late:
        print("\nscreened after the confirmation:", flush=True)
        screen(samples, tokens, [variants[0]] + late, args.folds, args.members, args.epochs, kept_results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
