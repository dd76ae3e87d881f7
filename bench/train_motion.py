"""Train the learned mouth-opening model (lipdub/assets/motion_model.npz) on real speakers.

    .venv/bin/python bench/train_motion.py [--dry-run]

Each shared talking clip gives pairs (its own audio → its own filmed mouth opening, re-tracked with the face stage).
Features are motion.model_features (phone-class dominance, log-mel context ±120 ms, jaw, loudness, voicing); the
target is the opening as a fraction of that speaker's wide-open mouth (97th percentile). The model is an average of
5 small tanh MLPs (numpy, Adam). Honest accuracy is reported by leave-one-speaker-out: every clip is scored by models
that never saw that speaker, after the full motion post-processing, next to a ridge regression and the rule-based
motion, all measured in the same run. The held-out models are written for bench/heldout_eval.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from motion_eval import SELF_CLIPS, analyse_clip  # noqa: E402

from lipdub import evaluate, motion  # noqa: E402

LOSO_DIR = Path.home() / ".cache" / "lipdub" / "motion_loso"


def group_of(name: str) -> str:
    # clips of one speaker (or one corpus) are held out together
    return "grid" if name.startswith("grid") else "cnn" if name.startswith("cnn") else name


def fit_ridge(x: np.ndarray, y: np.ndarray, lam: float = 10.0) -> motion.OpeningModel:
    a = np.c_[np.ones(len(x)), x]
    penalty = lam * np.eye(a.shape[1])
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    return motion.OpeningModel({"weights": np.linalg.solve(a.T @ a + penalty, a.T @ y)})


def fit_mlp(x: np.ndarray, y: np.ndarray, members: int = 5, hidden: int = 32, l2: float = 1e-2, epochs: int = 30,
            lr: float = 3e-3) -> motion.OpeningModel:
    """Average of `members` one-hidden-layer tanh nets, each from its own seed (averaging tames their variance)."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    xn = (x - mean) / std
    out = {k: [] for k in ("mean", "std", "w1", "b1", "w2", "b2")}
    for seed in range(members):
        rng = np.random.default_rng(seed)
        params = [rng.normal(0, 1 / np.sqrt(x.shape[1]), (x.shape[1], hidden)), np.zeros(hidden),
                  rng.normal(0, 1 / np.sqrt(hidden), hidden), np.array(y.mean())]
        m1 = [np.zeros_like(p) for p in params]
        m2 = [np.zeros_like(p) for p in params]
        t = 0
        for _ in range(epochs):
            order = rng.permutation(len(x))
            for start in range(0, len(x), 256):
                batch = order[start:start + 256]
                xb, yb = xn[batch], y[batch]
                w1, b1, w2, b2 = params
                h = np.tanh(xb @ w1 + b1)
                err = h @ w2 + b2 - yb
                dh = np.outer(err, w2) * (1 - h ** 2)
                grads = [xb.T @ dh / len(batch) + l2 * w1, dh.mean(0), h.T @ err / len(batch) + l2 * w2,
                         np.array(err.mean())]
                t += 1
                for i, g in enumerate(grads):
                    m1[i] = 0.9 * m1[i] + 0.1 * g
                    m2[i] = 0.999 * m2[i] + 0.001 * g * g
                    params[i] = params[i] - lr * (m1[i] / (1 - 0.9 ** t)) / (np.sqrt(m2[i] / (1 - 0.999 ** t)) + 1e-8)
        for key, value in zip(("mean", "std", "w1", "b1", "w2", "b2"), (mean, std, *params)):
            out[key].append(value)
    return motion.OpeningModel({k: np.stack(v) for k, v in out.items()})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(evaluate.default_data_dir()))
    ap.add_argument("--dry-run", action="store_true", help="report only, do not write the model")
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

    def stacked(names):
        return np.concatenate([samples[k][3] for k in names]), np.concatenate([samples[k][4] for k in names])

    def score(speech, times, truth, model):
        params = motion.MotionParams(model=model) if model is not None else motion.MotionParams(learned=False)
        return evaluate.pearson_at_best_lag(motion.mouth_track(speech, times, params=params).opening, truth)[:2]

    print(f"\n{'held-out clip':18s} {'rule-based':>12s} {'ridge':>12s} {'MLP x5':>12s}   (leave one speaker out)")
    rows = []
    LOSO_DIR.mkdir(parents=True, exist_ok=True)
    for name, (times, truth, speech, _, _) in samples.items():
        group = group_of(name)
        x, y = stacked([k for k in samples if group_of(k) != group])
        mlp = fit_mlp(x, y)
        mlp.save(LOSO_DIR / f"{group}.npz")
        res = [score(speech, times, truth, m) for m in (None, fit_ridge(x, y), mlp)]
        rows.append([r for r, _ in res] + [abs(res[2][1])])
        print(f"{name:18s} " + " ".join(f"{r:6.3f} ({lag:+d})" for r, lag in res), flush=True)
    mean = np.mean(rows, axis=0)
    print(f"{'mean':18s} {mean[0]:6.3f}       {mean[1]:6.3f}       {mean[2]:6.3f}       MLP |lag| {mean[3]:.2f}")
    print(f"held-out models: {LOSO_DIR}")

    if not args.dry_run:
        model = fit_mlp(*stacked(list(samples)))
        motion.MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
        model.save(motion.MODEL_PATH)
        print(f"wrote {motion.MODEL_PATH} (trained on all {len(samples)} clips)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
