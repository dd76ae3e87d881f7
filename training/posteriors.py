"""Screen: hama's CTC phone posteriors as more inputs of the offline opening model (issue 22; shipped since).

    OMP_NUM_THREADS=1 python -m training.posteriors [--folds 5] [--members 2] [--variants plain,post,...]

The offline model reads each phone's 1-best identity (the dominance columns: hama's recognised phones force-aligned
by pocketsphinx). On an unseen voice the recogniser's 1-best errors are what changes most; its per-frame posteriors
keep the runners-up. Each variant adds (or swaps in) the phone-class posteriors that the speech analysis keeps
(SpeechTrack.posteriors, speech.posteriors: hama's of the pass that recognises the phones, 12 classes + blank/other),
read as motion.features.posterior_columns reads them (smoothed over ±1 frame, at TAPS around each hop). Every variant
is scored held out in the same process with the same folds of speaker groups (training.train_motion.heldout_models),
through the full motion post-processing, next to the plain recipe: a gain can only come from the inputs.

`--variants plain,post5` gives the two recipes of docs/RESULTS.md (Phone posteriors); post5 is the one shipped
(motion.OFFLINE_POSTERIOR_TAPS, `make train`), and `python -m training.train_motion --dry-run --folds 10 --members 5
[--no-posteriors]` scores the shipped code path itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lipdub import motion
from lipdub.motion.features import FEATURE_LABELS, posterior_columns
from training.fit import fit_mlp
from training.manifest import SOURCES, data_root, filmed_clips, require_data, training_clips
from training.train_motion import OPENING_EPOCHS, heldout_models, lag_summary, learning_curve, load_samples, \
    score_clip, speaker_of_name

# s around a hop's centre. The posteriors' argmax class agrees best with the aligned phones' class 0.04 s later (on
# four clips of four corpora: 0.50-0.64 of the phone hops at +0.04 s, 0.34-0.46 at 0, 0.20-0.44 at +0.08), so the
# taps are the log-mel's ±120 ms around +0.04 s
TAPS = {"post": (-0.08, -0.04, 0.0, 0.04, 0.08, 0.12, 0.16), "post3": (0.0, 0.04, 0.08), "post1": (0.04,),
        "post3w": (-0.04, 0.04, 0.12), "post5": (-0.04, 0.0, 0.04, 0.08, 0.12),
        "post-nodom": (-0.08, -0.04, 0.0, 0.04, 0.08, 0.12, 0.16)}
# variants of post5 (screened after the taps): log-probabilities (CTC posteriors are peaky; the MLP standardises
# each column, so a log spreads the small values), and 64 hidden units (the net reads 65 more columns)
TAPS.update({"post5-log": TAPS["post5"], "post5-h64": TAPS["post5"]})
HIDDEN = {"post5-h64": 64}  # the MLP's hidden units where not 32 (fit_mlp's default)


class WithColumns:
    """An opening model that reads the motion features with columns `keep` of them and `extra` columns appended
    (one clip's, bound at scoring): quacks like OpeningModel for motion.mouth_track."""

    reach = 0
    posterior_taps = component_taps = ()  # the features it is given are the plain ones: it appends its own

    def __init__(self, inner, keep: np.ndarray, extra: np.ndarray):
        self.inner, self.keep, self.extra = inner, keep, extra
        self.mel_context = inner.mel_context

    def predict(self, x: np.ndarray) -> np.ndarray:
        if len(x) != len(self.extra):  # learned_opening builds one block for clips under FEATURE_BLOCK hops
            raise ValueError(f"{len(x)} feature rows against {len(self.extra)} extra rows (the clip's posterior rows)")
        return self.inner.predict(np.concatenate([x[:, self.keep], self.extra], 1))


VARIANTS = ("plain",) + tuple(TAPS)  # post-nodom: the posteriors at post's taps instead of the dominance columns


def variant_inputs(variant: str, samples: dict, posts: dict) -> tuple[np.ndarray, dict]:
    """(the motion feature columns kept, clip -> extra columns at every hop) of a variant."""
    n_feat = len(motion.offline_feature_names())
    n_dom = len(FEATURE_LABELS)
    keep = np.arange(n_dom if variant == "post-nodom" else 0, n_feat)
    if variant == "plain":
        return keep, {k: np.zeros((len(s[2].voiced), 0)) for k, s in samples.items()}
    taps = TAPS[variant]
    cols = {k: posterior_columns(posts[k], np.arange(len(s[2].voiced)), taps) for k, s in samples.items()}
    if variant.endswith("-log"):
        cols = {k: np.log(v + 1e-3) for k, v in cols.items()}
    return keep, cols


CONFIRM_GAIN = 0.005  # a screened gain below this is within what another split of the same recipe moves


def corpus_of(name: str) -> str:
    for prefix, corpus in (("grid", "GRID"), ("mead", "MEAD"), ("lrs2", "LRS2"), ("vx", "VoxCeleb-style"),
                           ("st", "st* (interview/talk)"), ("hdtf", "HDTF-style")):
        if name.startswith(prefix):
            return corpus
    return "other"


def variant_fitter(variant: str, samples: dict, posts: dict, epochs: int):
    """(columns kept, clip -> extra columns, fit(names, members)) of a variant: the MLP on each clip's aligned rows
    with the variant's columns."""
    keep, extra = variant_inputs(variant, samples, posts)
    rows = {k: (s[3][:, keep], extra[k][np.asarray(s[6])]) for k, s in samples.items()}

    def fit(names, members):
        x = np.concatenate([np.concatenate(rows[k], 1) for k in names])
        y = np.concatenate([samples[k][4] for k in names])
        return fit_mlp(x, y, members=members, epochs=epochs, hidden=HIDDEN.get(variant, 32))
    return keep, extra, fit


def curve(samples: dict, posts: dict, variants, epochs: int) -> None:
    """training.train_motion.learning_curve (the same folds and draws) of each variant."""
    for variant in variants:
        keep, extra, fit = variant_fitter(variant, samples, posts, epochs)
        print(f"\nlearning curve, {variant}:", flush=True)
        learning_curve(samples, fit, scorer=lambda name, sample, model: score_clip(
            sample, WithColumns(model, keep, extra[name]))[0])


def screen(samples: dict, posts: dict, variants, folds: int, members: int, epochs: int, sources: str = "all") -> dict:
    """Each variant held out over `folds` folds of speaker groups, learned from the `sources` clips of the others."""
    learn = [c.name for c in training_clips("opening", sources)]
    group_of = speaker_of_name()
    results = {}
    for variant in variants:
        keep, extra, fit = variant_fitter(variant, samples, posts, epochs)
        models = heldout_models(samples, fit, members, learn, folds=folds, out=None)
        res = {k: score_clip(s, WithColumns(models[group_of[k]], keep, extra[k])) for k, s in samples.items()}
        results[variant] = res
        print_variant(variant, res, group_of)
    if "plain" in results:
        for variant, res in results.items():
            if variant != "plain":
                print_gain(variant, res, "plain", results["plain"])
    return results


def print_variant(variant: str, res: dict, group_of: dict) -> None:
    """One variant's held-out summary from its per-clip (r, lag, r at lag 0): over the clips, the mean of the
    speakers, the lags, and by corpus."""
    by_group: dict = {}
    for k, v in res.items():
        by_group.setdefault(group_of[k], []).append(v[0])
    print(f"{variant:12s} r {np.mean([v[0] for v in res.values()]):.3f}  mean of {len(by_group)} speakers "
          f"{np.mean([np.mean(v) for v in by_group.values()]):.3f}  r@0 {np.mean([v[2] for v in res.values()]):.3f}"
          f"  {lag_summary([v[1] for v in res.values()])}", flush=True)
    by_corpus: dict = {}
    for k, v in res.items():
        by_corpus.setdefault(corpus_of(k), []).append(v)
    print("    by corpus: " + "; ".join(
        f"{c} ({len(v)}): r {np.mean([x[0] for x in v]):.3f}, lag {np.mean([x[1] for x in v]):+.2f}, "
        f"|lag| {np.mean([abs(x[1]) for x in v]):.2f}" for c, v in sorted(by_corpus.items())), flush=True)


def print_gain(variant: str, res: dict, base_name: str, base: dict) -> None:
    """How a variant's per-clip r compares with a baseline's over the same clips."""
    d = np.array([res[k][0] - base[k][0] for k in base])
    print(f"    {variant} - {base_name} per clip: mean {d.mean():+.4f}, better on {(d > 0).sum()} of {len(d)}",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.posteriors", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="the data root (default $LIPDUB_DATA or ../shared/data)")
    ap.add_argument("--folds", type=int, default=5, help="folds of speaker groups (held out)")
    ap.add_argument("--members", type=int, default=2, help="nets per held-out model")
    ap.add_argument("--sources", choices=SOURCES, default="all",
                    help="learn from all clips or the permissively licensed ones (GRID); every clip is scored")
    ap.add_argument("--curve", action="store_true",
                    help="the learning curve (train_motion --curve: held-out r against training speakers) per variant")
    ap.add_argument("--epochs", type=int, default=OPENING_EPOCHS, help="passes over the data")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated: " + ", ".join(VARIANTS))
    ap.add_argument("--confirm", default="10,5", metavar="FOLDS,MEMBERS",
                    help="the screen's best variant, when it beats plain by CONFIRM_GAIN, is scored again next to "
                         "plain with this many folds and nets ('' : not)")
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    if any(v not in VARIANTS for v in variants):
        raise SystemExit(f"--variants: choose from {', '.join(VARIANTS)}")
    clips = filmed_clips()
    needed = [p for c in clips for p in dict.fromkeys((c.path, c.audio_path))]
    data = require_data(Path(args.data) if args.data else data_root(), needed)
    samples = load_samples(data)
    posts = {name: s[2].posteriors for name, s in samples.items()}  # the speech analysis's own (speech.posteriors)
    if args.curve:
        curve(samples, posts, variants, args.epochs)
        return 0
    results = screen(samples, posts, variants, args.folds, args.members, args.epochs, args.sources)
    mean = {v: np.mean([x[0] for x in res.values()]) for v, res in results.items()}
    best = max((v for v in mean if v != "plain"), key=mean.get, default=None)
    if args.confirm and "plain" in mean and best is not None and mean[best] - mean["plain"] >= CONFIRM_GAIN:
        folds, members = (int(v) for v in args.confirm.split(","))
        print(f"\nconfirming {best} (+{mean[best] - mean['plain']:.3f} on the screen): {folds} folds, {members} nets",
              flush=True)
        screen(samples, posts, ["plain", best], folds, members, args.epochs, args.sources)
    return 0


if __name__ == "__main__":
    sys.exit(main())
