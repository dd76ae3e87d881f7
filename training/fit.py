"""The fitting routines of the motion models: ridge regression, an ensemble of small tanh MLPs (Adam), and a softmax
MLP for the live phone classifier. Plain numpy, seeded: the same inputs give the same arrays."""

from __future__ import annotations

import numpy as np

from lipdub.motion import OpeningModel, softmax


def fit_ridge(x: np.ndarray, y: np.ndarray, lam: float = 10.0) -> OpeningModel:
    a = np.c_[np.ones(len(x)), x]
    penalty = lam * np.eye(a.shape[1])
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    return OpeningModel({"weights": np.linalg.solve(a.T @ a + penalty, a.T @ y)})


def adam_step(params: list, grads: list, m1: list, m2: list, t: int, lr: float) -> None:
    """One Adam update (beta 0.9 / 0.999) of `params` in place, `t` the step count from 1."""
    for i, g in enumerate(grads):
        m1[i] = 0.9 * m1[i] + 0.1 * g
        m2[i] = 0.999 * m2[i] + 0.001 * g * g
        params[i] = params[i] - lr * (m1[i] / (1 - 0.9 ** t)) / (np.sqrt(m2[i] / (1 - 0.999 ** t)) + 1e-8)


def initial_net(rng: np.random.Generator, inputs: int, hidden: int, output_mean) -> tuple[list, list, list]:
    """A one-hidden-layer tanh net's first weights (scaled by fan-in, the output bias at the targets' mean) and its
    zeroed Adam moments: every opening MLP fit starts from this, so seeds give the same nets in every fitter."""
    params = [rng.normal(0, 1 / np.sqrt(inputs), (inputs, hidden)), np.zeros(hidden),
              rng.normal(0, 1 / np.sqrt(hidden), hidden), np.array(output_mean)]
    return params, [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]


DECAYS = ("linear", "cosine")  # how a falling rate comes down over the passes (pass_rate)


def pass_rate(lr: float, epoch: int, epochs: int, decay: bool | str = False, floor: float = 0.0) -> float:
    """The Adam rate of pass `epoch` (from 0) of `epochs`: `lr` throughout, or with `decay` brought down from `lr`
    towards `floor` · lr over the passes, along a line (True or "linear": the shipped recipe, train_motion.
    OPENING_DECAY) or half a cosine ("cosine": longer near the start and the end)."""
    if not decay:
        return lr
    if decay is not True and decay not in DECAYS:
        raise ValueError(f"decay: True, False or one of {', '.join(DECAYS)}, not {decay!r}")
    done = epoch / epochs
    left = 0.5 * (1 + np.cos(np.pi * done)) if decay == "cosine" else 1 - done
    return lr * (floor + (1 - floor) * left)


def fit_nets(x: np.ndarray, y: np.ndarray, batches, gradients, members: int, hidden: int, epochs: int, lr: float,
             finish=None, decay: bool | str = False, floor: float = 0.0) -> OpeningModel:
    """The loop every opening MLP fit shares: `members` nets from seeds 0.., each trained with Adam over
    `batches(rng)` (one epoch's batches) on `gradients(params, xn, batch)`; `finish(params, xn)` may adjust a
    trained net. x is standardised per column first; the nets are averaged by OpeningModel. `decay`, `floor`: the
    rate's fall over the passes (pass_rate)."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    xn = (x - mean) / std
    out = {k: [] for k in ("mean", "std", "w1", "b1", "w2", "b2")}
    for seed in range(members):
        rng = np.random.default_rng(seed)
        params, m1, m2 = initial_net(rng, x.shape[1], hidden, y.mean())
        t = 0
        for epoch in range(epochs):
            rate = pass_rate(lr, epoch, epochs, decay, floor)
            for batch in batches(rng):
                t += 1
                adam_step(params, gradients(params, xn, batch), m1, m2, t, rate)
        for key, value in zip(out, (mean, std, *(finish(params, xn) if finish else params))):
            out[key].append(value)
    return OpeningModel({k: np.stack(v) for k, v in out.items()})


def fit_mlp(x: np.ndarray, y: np.ndarray, members: int = 5, hidden: int = 32, l2: float = 1e-2, epochs: int = 30,
            lr: float = 3e-3, decay: bool | str = False, floor: float = 0.0) -> OpeningModel:
    """Average of `members` one-hidden-layer tanh nets, each from its own seed (averaging tames their variance),
    trained on the squared error over shuffled batches of 256 rows; `decay`, `floor`: the rate's fall (pass_rate)."""
    def batches(rng):
        order = rng.permutation(len(x))
        for start in range(0, len(x), 256):
            yield order[start:start + 256]

    def gradients(params, xn, batch):
        xb, yb = xn[batch], y[batch]
        w1, b1, w2, b2 = params
        h = np.tanh(xb @ w1 + b1)
        err = h @ w2 + b2 - yb
        dh = np.outer(err, w2) * (1 - h ** 2)
        return [xb.T @ dh / len(batch) + l2 * w1, dh.mean(0), h.T @ err / len(batch) + l2 * w2, np.array(err.mean())]
    return fit_nets(x, y, batches, gradients, members, hidden, epochs, lr, decay=decay, floor=floor)


def fit_softmax(x: np.ndarray, labels: np.ndarray, classes: int, hidden: int = 48, l2: float = 1e-3,
                epochs: int = 8, lr: float = 3e-3, seed: int = 0) -> OpeningModel:
    """One tanh MLP with a softmax output (cross-entropy), stored like the opening nets (w2 is hidden × classes).
    Trained on every other hop: neighbours are near-duplicates and the time halves."""
    x, labels = x[::2], labels[::2]
    rng = np.random.default_rng(seed)
    mean, std = x.mean(0), x.std(0) + 1e-6
    xn = (x - mean) / std
    onehot = np.eye(classes)[labels]
    params = [rng.normal(0, 1 / np.sqrt(x.shape[1]), (x.shape[1], hidden)), np.zeros(hidden),
              rng.normal(0, 1 / np.sqrt(hidden), (hidden, classes)), np.zeros(classes)]
    m1 = [np.zeros_like(p) for p in params]
    m2 = [np.zeros_like(p) for p in params]
    t = 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), 256):
            batch = order[start:start + 256]
            w1, b1, w2, b2 = params
            h = np.tanh(xn[batch] @ w1 + b1)
            err = (softmax(h @ w2 + b2) - onehot[batch]) / len(batch)
            dh = (err @ w2.T) * (1 - h ** 2)
            grads = [xn[batch].T @ dh + l2 * w1, dh.sum(0), h.T @ err + l2 * w2, err.sum(0)]
            t += 1
            adam_step(params, grads, m1, m2, t, lr)
    return OpeningModel({k: v[None] for k, v in zip(("mean", "std", "w1", "b1", "w2", "b2"),
                                                    (mean, std, *params))})


TEMPORAL_TAPS = (-24, -16, -12, -8, -4, 0, 4, 8, 12, 16, 24)  # hops: the temporal layer's reach, ±240 ms


def fit_temporal(feats: list, centres: list, targets: list, taps=TEMPORAL_TAPS, members: int = 5, hidden: int = 16,
                 hidden2: int = 32, l2: float = 1e-2, epochs: int = 30, lr: float = 3e-3) -> OpeningModel:
    """Average of `members` temporal nets (OpeningModel.predict_hops): per hop a tanh layer of `hidden` units over
    its features, then a tanh layer of `hidden2` over those units at hop + taps, then a linear output. Per clip:
    `feats` (hops, F) of every hop, `centres` the hops of its target frames, `targets` their openings. Taps beyond
    a clip's hops read its first or last hop, as at inference. Plain numpy gradients, Adam, seeded."""
    x = np.concatenate(feats)
    mean, std = x.mean(0), x.std(0) + 1e-6
    xn = ((x - mean) / std).astype(np.float32)
    first = np.cumsum([0] + [len(f) for f in feats])[:-1]
    lo = np.concatenate([np.full(len(c), f) for f, c in zip(first, centres)])
    hi = np.concatenate([np.full(len(c), f + len(x_) - 1) for f, c, x_ in zip(first, centres, feats)])
    at = np.concatenate([f + np.asarray(c) for f, c in zip(first, centres)])
    y = np.concatenate(targets)
    taps = np.asarray(taps)
    k, n_in = len(taps), x.shape[1]
    out = {key: [] for key in ("mean", "std", "w1", "b1", "wt", "bt", "w2", "b2")}
    for seed in range(members):
        rng = np.random.default_rng(seed)
        params = [rng.normal(0, 1 / np.sqrt(n_in), (n_in, hidden)), np.zeros(hidden),
                  rng.normal(0, 1 / np.sqrt(k * hidden), (k * hidden, hidden2)), np.zeros(hidden2),
                  rng.normal(0, 1 / np.sqrt(hidden2), hidden2), np.array(y.mean())]
        m1 = [np.zeros_like(p) for p in params]
        m2 = [np.zeros_like(p) for p in params]
        t = 0
        for _ in range(epochs):
            order = rng.permutation(len(y))
            for start in range(0, len(y), 256):
                batch = order[start:start + 256]
                xb = xn[np.clip(at[batch, None] + taps, lo[batch, None], hi[batch, None])]  # (B, K, F)
                w1, b1, wt, bt, w2, b2 = params
                h1 = np.tanh(xb @ w1 + b1)  # (B, K, H)
                z = h1.reshape(len(batch), -1)
                h2 = np.tanh(z @ wt + bt)
                err = h2 @ w2 + b2 - y[batch]
                dh2 = np.outer(err, w2) * (1 - h2 ** 2)
                dh1 = (dh2 @ wt.T).reshape(h1.shape) * (1 - h1 ** 2)
                grads = [np.einsum("bkf,bkh->fh", xb, dh1) / len(batch) + l2 * w1, dh1.sum((0, 1)) / len(batch),
                         z.T @ dh2 / len(batch) + l2 * wt, dh2.mean(0), h2.T @ err / len(batch) + l2 * w2,
                         np.array(err.mean())]
                t += 1
                adam_step(params, grads, m1, m2, t, lr)
        for key, value in zip(("mean", "std", "w1", "b1", "wt", "bt", "w2", "b2"), (mean, std, *params)):
            out[key].append(value)
    arrays = {key: np.stack(v) for key, v in out.items()}
    arrays["taps"] = taps.astype(np.float64)
    return OpeningModel(arrays)


CURVE_QUANTILES = np.linspace(0.0, 1.0, 21)  # the opening curve's knots: every 5th percentile
# where the curve starts: the quantile of the model's training openings below which it is the identity (quiet and
# shut mouths left as the model draws them), and the quantile whose opening caps the curve (None: neither). Screened
# held out (docs/RESULTS.md, Motion alone, stop 36)
CURVE_START: float | None = 0.5
CURVE_CAP: float | None = None


def opening_curve(predicted: np.ndarray, filmed: np.ndarray, quantiles: np.ndarray = CURVE_QUANTILES,
                  start: float | None = CURVE_START, cap: float | None = CURVE_CAP, strength: float = 1.0) -> dict:
    """The arrays of OpeningModel's monotone curve (`curve_in` -> `curve_out`): the piecewise-linear map taking the
    quantiles of a model's openings on its training rows onto those of the filmed openings there. r ignores a clip's
    linear scale, not the curve of its openings: the squared-error nets shrink toward the mean (held out, 5 folds x 2
    nets: r 0.683 -> 0.702 with the whole map). Below the `start` quantile of `predicted` the map is the identity and
    above it the quantile map shifted to meet it there; no output exceeds the larger of its input and the `cap`
    quantile of `predicted`; `strength` < 1 takes the map only that part of the way from the identity. The whole
    map spread the quiet openings toward 0 and the wide ones past the model's range (make eval amp 1.20 -> 1.56;
    scaled about 0 to keep the spread, realism 0.542 -> 0.613: docs/RESULTS.md, Motion alone, stop 35)."""
    knots_in = np.maximum.accumulate(np.quantile(predicted, quantiles)) + np.arange(len(quantiles)) * 1e-6
    knots_out = np.maximum.accumulate(np.quantile(filmed, quantiles))
    knots_out = knots_in + strength * (knots_out - knots_in)
    if start is not None:
        at = max(float(np.quantile(predicted, start)), 1e-6)
        above = knots_in > at
        shift = at - float(np.interp(at, knots_in, knots_out))  # continuous where the identity ends
        knots_in, knots_out = (np.concatenate([[0.0, at], knots_in[above]]),
                               np.concatenate([[0.0, at], knots_out[above] + shift]))
    if cap is not None:  # a knot at the cap keeps the capped curve under it between knots too
        top = float(np.quantile(predicted, cap))
        knots_in, knots_out = np.union1d(knots_in, [top]), np.interp(np.union1d(knots_in, [top]), knots_in, knots_out)
        knots_out = np.minimum(knots_out, np.maximum(knots_in, top))
    return {"curve_in": knots_in, "curve_out": knots_out}
