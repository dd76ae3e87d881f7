"""Train the learned mouth-opening model (lipdub/assets/motion_model.npz and its card) on real speakers.

    python -m training.train_motion [--no-heldout] [--dry-run] [--out PATH]       (`make train`: --no-heldout)

Each filmed clip of training/dataset.json gives pairs (its own audio → its own filmed mouth opening, re-tracked with
the face stage). Features are motion.model_features (columns: motion.offline_feature_names(): phone-class dominance,
log-mel context ±120 ms, jaw, loudness, voicing); the target is the opening as a fraction of that speaker's wide-open
mouth (97th percentile). The model is an average of 5 small tanh MLPs (numpy, Adam, seeded). Honest accuracy is
reported by leave-one-speaker-out: every clip is scored by models that never saw that speaker, after the full motion
post-processing, next to a ridge regression and the rule-based motion, all measured in the same run. The held-out
models are written to training.manifest.HELD_OUT_DIR for `python -m training.evaluate --heldout`.

    python -m training.train_motion --curve

reports held-out r against the number of speakers the model learned from (does more filmed data still help?).

The final model is fitted on every filmed clip in the manifest's order (seeded: the same frames give the same
arrays). When the arrays equal those already at --out (default: the shipped asset) the file is left as it is (same
bytes, same card); when they differ the new model goes to build/assets/ unless --replace.

Reproduction, measured 2026-12 on this checkout: the rebuilt model is not bit-identical to the shipped one (trained at
an earlier commit): the training features' means differ by up to 5e-4 of their size (the face and speech analyses of
the clips have changed slightly since), the weights by up to 7e-3; on 5000 inputs drawn around the training
distribution the opening predictions differ by 0.0013 on average, 0.006 at most (of a 0..1 opening whose spread is
0.20), correlation 0.99997.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lipdub import motion
from training import evaluate
from training.cards import write_card
from training.clips import analyse_clip
from training.fit import fit_mlp, fit_ridge
from training.manifest import HELD_OUT_DIR, REPO, data_root, filmed_clips, require_data

LOSO_DIR = HELD_OUT_DIR
REBUILT = REPO / "build" / "assets"  # rebuilt models that differ from the shipped ones (git-ignored)


def speaker_of_name() -> dict[str, str]:
    """Filmed clip name → its hold-out group (a speaker, or the GRID corpus)."""
    return {c.name: c.speaker for c in filmed_clips()}


def load_samples(data: Path) -> dict:
    """Per filmed clip: (frame times, filmed opening, speech analysis, features at the valid frames, target)."""
    samples = {}
    for clip in filmed_clips():
        rel, rng = clip.path, clip.range
        times, truth = evaluate.mouth_curve(data / rel, *(rng or (None, None)))
        speech = analyse_clip(data / rel, rng)
        idx = np.clip(np.round(times / speech.hop).astype(int), 0, len(speech.voiced) - 1)
        ok = np.isfinite(truth)
        target = truth / np.nanpercentile(truth, 97)
        samples[clip.name] = (times, truth, speech, motion.model_features(speech)[idx][ok], target[ok])
        print(f"loaded {clip.name}: {ok.sum()} frames, {speech.method}", flush=True)
    return samples


def stacked_from(samples: dict):
    def stacked(names):
        return np.concatenate([samples[k][3] for k in names]), np.concatenate([samples[k][4] for k in names])
    return stacked


CURVE_SIZES = (1, 3, 5, 9)  # training speaker groups per held-out group (9: all the others)


def learning_curve(samples: dict, stacked) -> int:
    """Held-out r against how many speakers the model learned from: every speaker group is scored by models fitted
    on random subsets of the other groups (two draws per size, 3 ensemble members). Whether more filmed speakers
    would still help, and roughly how much."""
    group_of = speaker_of_name()
    groups = sorted({group_of[k] for k in samples})
    rng = np.random.default_rng(0)
    sizes = [k for k in CURVE_SIZES if k < len(groups)]
    table = {k: [] for k in sizes}
    print(f"\n{'held-out group':18s} " + " ".join(f"{str(k) + ' spk':>8s}" for k in sizes))
    for held in groups:
        others = [g for g in groups if g != held]
        for k in sizes:
            draws = [others] if k >= len(others) else [list(rng.choice(others, k, replace=False)) for _ in range(2)]
            rs = []
            for draw in draws:
                model = fit_mlp(*stacked([n for n in samples if group_of[n] in draw]), members=3)
                for name, (times, truth, speech, _, _) in samples.items():
                    if group_of[name] == held:
                        opening = motion.mouth_track(speech, times, params=motion.MotionParams(model=model)).opening
                        rs.append(evaluate.pearson_at_best_lag(opening, truth)[0])
            table[k].append(float(np.mean(rs)))
        print(f"{held:18s} " + " ".join(f"{table[k][-1]:8.3f}" for k in sizes), flush=True)
    print(f"{'mean':18s} " + " ".join(f"{np.mean(table[k]):8.3f}" for k in sizes))
    return 0


def leave_one_speaker_out(samples: dict, stacked) -> dict:
    """Every clip scored by models that never saw its speaker (written to LOSO_DIR); returns the held-out means."""
    def score(speech, times, truth, model):
        params = motion.MotionParams(model=model) if model is not None else motion.MotionParams(learned=False)
        return evaluate.pearson_at_best_lag(motion.mouth_track(speech, times, params=params).opening, truth)[:2]

    group_of = speaker_of_name()
    print(f"\n{'held-out clip':18s} {'rule-based':>12s} {'ridge':>12s} {'MLP x5':>12s}   (leave one speaker out)")
    rows = []
    LOSO_DIR.mkdir(parents=True, exist_ok=True)
    for name, (times, truth, speech, _, _) in samples.items():
        group = group_of[name]
        x, y = stacked([k for k in samples if group_of[k] != group])
        mlp = fit_mlp(x, y)
        mlp.save(LOSO_DIR / f"{group}.npz")
        res = [score(speech, times, truth, m) for m in (None, fit_ridge(x, y), mlp)]
        rows.append([r for r, _ in res] + [abs(res[2][1])])
        print(f"{name:18s} " + " ".join(f"{r:6.3f} ({lag:+d})" for r, lag in res), flush=True)
    mean = np.mean(rows, axis=0)
    print(f"{'mean':18s} {mean[0]:6.3f}       {mean[1]:6.3f}       {mean[2]:6.3f}       MLP |lag| {mean[3]:.2f}")
    print(f"held-out models: {LOSO_DIR}")
    return {"metric": "Pearson r at the best lag, leave one speaker out (motion alone, filmed clips)",
            "rule_based": float(mean[0]), "ridge": float(mean[1]), "mlp": float(mean[2]),
            "measured_by": "python -m training.train_motion"}


def same_arrays(path: Path, arrays: dict) -> bool:
    """Whether the file at `path` holds exactly these arrays (names, dtypes, values)."""
    if not path.is_file():
        return False
    with np.load(path) as z:
        return sorted(z.files) == sorted(arrays) and all(
            z[k].dtype == np.asarray(v).dtype and np.array_equal(z[k], v) for k, v in arrays.items())


def max_difference(path: Path, arrays: dict) -> float:
    with np.load(path) as z:
        return max(float(np.abs(z[k].astype(np.float64) - np.asarray(v, np.float64)).max()) for k, v in arrays.items()
                   if k in z.files and z[k].shape == np.shape(v))


def add_training_arguments(ap: argparse.ArgumentParser, asset: Path) -> None:
    """The options every train script takes (the model file `asset` is where it goes by default)."""
    ap.add_argument("--data", default=None, help="the data root (default $LIPDUB_DATA or ../shared/data)")
    ap.add_argument("--out", default=str(asset), help="where the model and its card go")
    ap.add_argument("--dry-run", action="store_true", help="report only, do not write the model")
    ap.add_argument("--replace", action="store_true", help="overwrite --out even when the arrays differ")
    ap.add_argument("--no-heldout", action="store_true", help="skip the leave-one-speaker-out report (faster)")


def publish_model(model, arrays: dict, out: Path, kind: str, held_out: dict | None, replace: bool = False) -> Path:
    """Write the model and its card at `out`, unless the file there already holds exactly these arrays (then it is
    left as it is: same bytes, same card). A file there with other arrays is only replaced with `replace`; otherwise
    the new model goes to build/assets/ and the difference is reported (the shipped bytes never change by accident)."""
    if same_arrays(out, arrays):
        print(f"{out}: the same arrays as the file there, left unchanged (reproduced exactly)")
        return out
    if out.is_file() and not replace:
        diff = max_difference(out, arrays)
        out = REBUILT / out.name
        print(f"not exactly the arrays of the file there (largest difference {diff:.3g}): written to {out} instead; "
              "pass --replace to overwrite", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    print(f"wrote {out} and its card {write_card(out, kind, held_out)}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.train_motion", description=__doc__.split("\n")[0])
    add_training_arguments(ap, motion.MODEL_PATH)
    ap.add_argument("--curve", action="store_true",
                    help="only report held-out r against the number of training speakers (learning_curve)")
    args = ap.parse_args(argv)
    data = require_data(Path(args.data) if args.data else data_root(), [c.path for c in filmed_clips()])
    samples = load_samples(data)
    stacked = stacked_from(samples)
    if args.curve:
        return learning_curve(samples, stacked)
    held_out = None if args.no_heldout else leave_one_speaker_out(samples, stacked)
    if not args.dry_run:
        model = fit_mlp(*stacked(list(samples)))
        arrays = {k: v.astype(np.float32) for k, v in model.arrays.items()}  # as OpeningModel.save writes them
        publish_model(model, arrays, Path(args.out), "opening", held_out, args.replace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
