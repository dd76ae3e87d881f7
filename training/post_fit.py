"""Screen (issue 22, stop 35): the motion's post-processing of the learned opening, fitted on the training folds only.

    OMP_NUM_THREADS=1 python -m training.post_fit --keep /tmp/samples.pkl [--split N] [--folds 5] [--members 2]

The shipped recipe's fold models (training.tokens `pca32-xlag`, held out over folds of the speaker groups) are fitted
once; every variant changes only what follows the model, so all are scored on the same models, each held-out clip
through the full motion (motion.mouth_track) against its filmed mouth:
- smooth-S: MotionParams.smooth S s (the Gaussian inertia of the opening; shipped 0.02);
- gamma-G: the model's opening raised to the power G before the rest of the motion (a monotone curve: r ignores
  only a clip's linear scale);
- quantile*: the opening mapped by the piecewise-linear curve that takes the training clips' predicted openings'
  quantiles (in-sample, at their filmed frames) onto their filmed openings' quantiles (training.fit.opening_curve:
  the whole map, or the identity below a quantile of the predicted openings and the map above it, capped or not);
- asym-R-F: the mouth opens R s ahead of the sound and closes F s ahead (the larger of the two tracks sampled R and F
  ahead when R > F, the smaller when R < F; a frame shut on either keeps the smaller, so closures stay shut);
- *-fit: per fold, the grid's value that scores best on that fold's own training clips (in-sample: their model
  heard them), never on the scored clips.
--curves-only: the shipped post-processing and the quantile curves only. Each variant's amp: the mean over the clips
of std(motion opening) / std(filmed opening). The figures: docs/RESULTS.md, Motion alone, stops 35 and 36.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from lipdub import motion
from lipdub.core.metrics import amplitude_ratio
from lipdub.motion.offline import learned_opening
from training import evaluate
from training.clips import clip_tokens
from training.fit import opening_curve
from training.manifest import data_root, filmed_clips
from training.posteriors import print_gain, print_variant
from training.tokens import variant_fitter
from training.train_motion import OPENING_EPOCHS, heldout_models, speaker_of_name

RECIPE = "pca32-xlag"  # the shipped recipe (training.tokens)
SMOOTHS = (0.0, 0.01, 0.02, 0.03, 0.04, 0.06)  # s: MotionParams.smooth
GAMMAS = (0.7, 0.85, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5)
ASYMMETRIC = ((0.06, 0.02), (0.06, 0.04), (0.05, 0.03), (0.08, 0.04), (0.04, 0.02), (0.02, 0.04), (0.02, 0.06))
# name -> (start, cap, strength) of opening_curve: the identity below the `start` quantile, capped at the `cap`
# quantile, the map taken `strength` of the way from the identity
CURVES = {"quantile": (None, None, 1.0), **{f"quantile-from{s:g}": (s, None, 1.0) for s in (0.25, 0.4, 0.5, 0.6)},
          **{f"quantile-from{s:g}-cap{c:g}": (s, c, 1.0) for s in (0.4, 0.5) for c in (0.95, 0.99)},
          **{f"quantile-cap{c:g}": (None, c, 1.0) for c in (0.95, 0.99)},
          **{f"quantile-strength{a:g}": (None, None, a) for a in (0.5, 0.75)}}


class FixedOpening:
    """A model that gives a clip's precomputed learned opening (every hop) to motion.mouth_track, mapped by `curve`:
    its post-processing scored again without running the nets again. learned_opening asks for it a block at a time,
    in order."""

    reach = 0
    posterior_taps = component_taps = ()

    def __init__(self, opening: np.ndarray, mel_context, curve=None):
        self.opening = curve(opening) if curve is not None else opening
        self.mel_context = mel_context
        self.at = 0

    def predict(self, x: np.ndarray) -> np.ndarray:
        out = self.opening[self.at:self.at + len(x)]
        self.at = (self.at + len(x)) % len(self.opening)
        return out


def asymmetric_opening(track_rise: motion.MouthTrack, track_fall: motion.MouthTrack, rise: float, fall: float
                       ) -> np.ndarray:
    """The opening of two tracks sampled `rise` and `fall` s ahead: the larger when rise > fall (opens early,
    closes late), else the smaller; a frame shut on either track keeps the smaller."""
    a, b = track_rise.opening, track_fall.opening
    out = np.maximum(a, b) if rise > fall else np.minimum(a, b)
    shut = track_rise.closed | track_fall.closed
    out[shut] = np.minimum(a, b)[shut]
    return out


def quantile_curve(predicted: np.ndarray, filmed: np.ndarray, start: float | None = None, cap: float | None = None,
                   strength: float = 1.0):
    """The monotone piecewise-linear curve taking `predicted`'s quantiles onto `filmed`'s (held flat beyond them;
    the identity below the `start` quantile, capped at the `cap` quantile, `strength` of the way from the identity):
    training.fit.opening_curve."""
    curve = opening_curve(predicted, filmed, start=start, cap=cap, strength=strength)
    return lambda o: np.interp(o, curve["curve_in"], curve["curve_out"])


def gamma_curve(gamma: float):
    return lambda o: np.clip(o, 0.0, None) ** gamma


def score(sample, opening: np.ndarray, mel_context, params=None, curve=None, asym=None) -> tuple:
    """(r at the best lag, that lag, r at lag 0, amp) of a clip's motion from its precomputed learned `opening`."""
    times, truth, speech = sample[:3]
    params = params or motion.MotionParams()

    def track(advance):
        model = FixedOpening(opening, mel_context, curve)
        return motion.mouth_track(speech, times, params=replace(params, model=model, advance=advance))
    if asym is None:
        predicted = track(params.advance).opening
    else:
        predicted = asymmetric_opening(track(asym[0]), track(asym[1]), *asym)
    return (*evaluate.pearson_at_best_lag(predicted, truth), amplitude_ratio(predicted, truth))


def variants(curves_only: bool = False) -> dict:
    """name -> (params, curve or None, asym or None) of each grid variant."""
    out = {"shipped": (None, None, None)}
    if curves_only:
        return out
    out.update({f"smooth-{s:g}": (motion.MotionParams(smooth=s), None, None) for s in SMOOTHS if s != 0.02})
    out.update({f"gamma-{g:g}": (None, gamma_curve(g), None) for g in GAMMAS if g != 1.0})
    out.update({f"asym-{r:g}-{f:g}": (None, None, (r, f)) for r, f in ASYMMETRIC})
    return out


def screen(samples: dict, tokens: dict, folds: int, members: int, epochs: int, split: int,
           curves_only: bool = False) -> dict:
    """Every variant's per-clip (r, lag, r at lag 0), held out, on one set of fold models."""
    group_of = speaker_of_name()
    fit = variant_fitter(RECIPE, samples, tokens, epochs)
    models = heldout_models(samples, fit, members, list(samples), folds=folds, out=None, split=split)
    mel_context = next(iter(models.values())).inner.mel_context
    held = {k: learned_opening(s[2], models[group_of[k]].on(k)) for k, s in samples.items()}
    grid = variants(curves_only)
    results = {name: {k: score(s, held[k], mel_context, *grid[name]) for k, s in samples.items()} for name in grid}
    # the *-fit variants: per fold model, the grid value best on its own training clips (in-sample)
    kinds = () if curves_only else ("smooth", "gamma", "asym")
    fitted = {f"{kind}-fit": {} for kind in kinds + tuple(CURVES)}
    for model in {id(m): m for m in models.values()}.values():
        scored = [k for k in samples if models[group_of[k]] is model]
        trained = [k for k in samples if models[group_of[k]] is not model]
        seen = {k: learned_opening(samples[k][2], model.on(k)) for k in trained}
        for kind in kinds:
            names = ["shipped"] + [n for n in grid if n.startswith(kind)]
            best = max(names, key=lambda n: np.mean([score(samples[k], seen[k], mel_context, *grid[n])[0]
                                                     for k in trained]))
            print(f"    fold of {len(scored)} clips: {kind}-fit chose {best}", flush=True)
            fitted[f"{kind}-fit"].update({k: results[best][k] for k in scored})
        predicted = np.concatenate([seen[k][samples[k][6]] for k in trained])
        filmed = np.concatenate([samples[k][4] for k in trained])
        for name, (start, cap, strength) in CURVES.items():
            curve = quantile_curve(predicted, filmed, start, cap, strength)
            fitted[f"{name}-fit"].update({k: score(samples[k], held[k], mel_context, curve=curve) for k in scored})
    results.update(fitted)
    for name, res in results.items():
        print_variant(name, res, group_of)
        print(f"    amp {np.nanmean([v[3] for v in res.values()]):.3f}", flush=True)
        if name != "shipped":
            print_gain(name, res, "shipped", results["shipped"])
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.post_fit", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="the data root (default $LIPDUB_DATA or ../shared/data)")
    ap.add_argument("--keep", required=True, metavar="PKL", help="the clips' samples (training.tokens --keep)")
    ap.add_argument("--folds", type=int, default=5, help="folds of speaker groups (held out)")
    ap.add_argument("--members", type=int, default=2, help="nets per held-out model")
    ap.add_argument("--epochs", type=int, default=OPENING_EPOCHS, help="passes over the data")
    ap.add_argument("--split", type=int, default=0, help="seed of the random split of the speaker groups")
    ap.add_argument("--curves-only", action="store_true", help="the shipped post-processing and the curves only")
    args = ap.parse_args(argv)
    data = Path(args.data) if args.data else data_root()
    with open(args.keep, "rb") as f:
        samples = pickle.load(f)
    tokens = {c.name: clip_tokens(data, c, len(samples[c.name][2].voiced)) for c in filmed_clips()}
    screen(samples, tokens, args.folds, args.members, args.epochs, args.split, args.curves_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
