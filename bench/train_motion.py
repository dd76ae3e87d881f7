"""Train the learned mouth-opening model (lipdub/assets/motion_model.npz) on real speakers.

    .venv/bin/python bench/train_motion.py [--lam 10] [--dry-run]

Each shared talking clip gives pairs (its own audio → its own filmed mouth opening, re-tracked with the face stage).
A ridge regression maps motion.model_features (phone-class dominance, log-mel context, jaw, loudness, voicing) to the
opening as a fraction of that speaker's wide-open mouth (97th percentile). Honest accuracy is reported by
leave-one-speaker-out: every clip is scored by a model that never saw that speaker, after the full motion
post-processing (closed in silence, p/b/m closures), next to the rule-based motion measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from motion_eval import SELF_CLIPS, analyse_clip  # noqa: E402

from lipdub import evaluate, motion  # noqa: E402


def group_of(name: str) -> str:
    # clips of one speaker (or one corpus) are held out together
    return "grid" if name.startswith("grid") else "cnn" if name.startswith("cnn") else name


def fit(xs: list[np.ndarray], ys: list[np.ndarray], lam: float) -> np.ndarray:
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    a = np.c_[np.ones(len(x)), x]
    penalty = lam * np.eye(a.shape[1])
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    return np.linalg.solve(a.T @ a + penalty, a.T @ y)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(evaluate.default_data_dir()))
    ap.add_argument("--lam", type=float, default=10.0)
    ap.add_argument("--dry-run", action="store_true", help="report only, do not write the model")
    ap.add_argument("--loso", default=str(Path.home() / ".cache" / "lipdub" / "motion_loso.npz"),
                    help="where to write the leave-one-speaker-out models")
    args = ap.parse_args()
    data = Path(args.data)
    samples = {}
    for name, (rel, rng) in SELF_CLIPS.items():
        times, truth = evaluate.mouth_curve(data / rel, *(rng or (None, None)))
        speech = analyse_clip(data / rel, rng)
        idx = np.clip(np.round(times / speech.hop).astype(int), 0, len(speech.voiced) - 1)
        ok = np.isfinite(truth)
        target = truth / np.nanpercentile(truth, 97)
        samples[name] = (times, truth, speech, motion.model_features(speech)[idx][ok], target[ok])
        print(f"loaded {name}: {ok.sum()} frames, {speech.method}", flush=True)

    print(f"\n{'held-out clip':18s} {'rule-based':>14s} {'learned (LOSO)':>16s}")
    rows = []
    held_out = {}
    for name, (times, truth, speech, _, _) in samples.items():
        train = [k for k in samples if group_of(k) != group_of(name)]
        w = fit([samples[k][3] for k in train], [samples[k][4] for k in train], args.lam)
        held_out[group_of(name)] = w
        rule = motion.mouth_track(speech, times, params=motion.MotionParams(learned=False)).opening
        learned = motion.mouth_track(speech, times, params=motion.MotionParams(weights=w)).opening
        r_rule, lag_rule, _ = evaluate.pearson_at_best_lag(rule, truth)
        r_learn, lag_learn, _ = evaluate.pearson_at_best_lag(learned, truth)
        rows.append((r_rule, r_learn, abs(lag_learn)))
        print(f"{name:18s} {r_rule:8.3f} ({lag_rule:+d}) {r_learn:10.3f} ({lag_learn:+d})")
    rr, rl, lag = np.mean(rows, axis=0)
    print(f"{'mean':18s} {rr:8.3f}      {rl:10.3f}      |lag| {lag:.2f}")

    weights = fit([s[3] for s in samples.values()], [s[4] for s in samples.values()], args.lam)
    if not args.dry_run:
        motion.MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
        np.savez(motion.MODEL_PATH, weights=weights.astype(np.float32), lam=args.lam,
                 labels=np.array(motion.FEATURE_LABELS), mel_context=np.array(motion.MEL_CONTEXT),
                 clips=np.array(list(samples)), loso_r=rl, rule_r=rr)
        print(f"wrote {motion.MODEL_PATH} ({weights.size} weights)")
    # models that never saw one speaker group, for bench/heldout_eval.py (not shipped)
    loso = Path(args.loso)
    loso.parent.mkdir(parents=True, exist_ok=True)
    np.savez(loso, **{g: w.astype(np.float32) for g, w in held_out.items()})
    print(f"wrote {loso} (leave-one-speaker-out models: {', '.join(held_out)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
