"""Screen (issue 22, stop 35): the opening MLP fitted with a loss closer to the held-out score.

The screens score each held-out clip by the Pearson r of its predicted opening against its filmed one, which ignores
each clip's own offset and scale; the shipped nets minimise the squared error over all rows (training.fit.fit_mlp),
which weighs them. Here the loss is, per piece of a clip (a run of its consecutive rows), 1 − r between prediction
and target, alone or mixed with the squared error:

    loss = mix · ½ mean(err²) + (1 − mix) · var(y) · mean over pieces (1 − r)

(var(y) puts both terms on one scale: for a prediction of the targets' own spread, ½ err² ≈ var(y) · (1 − r)). With
mix 0 the nets' output has no scale or offset of its own; each net's output is then mapped onto the targets by the
least-squares line over the training rows. Variants of training.tokens (`-corr`, `-corr50`, `-corr80`: mix 0, 0.5,
0.8) call net_fitter; the figures: docs/RESULTS.md, Motion alone, stop 35.
"""

from __future__ import annotations

import re

import numpy as np

from lipdub.motion import OpeningModel
from training.fit import fit_mlp, fit_nets

PIECE_ROWS = 256  # a clip is cut into pieces of at most this many rows (≈ 10 s of frames; most clips are one piece)
MIN_PIECE_ROWS = 32  # a shorter remainder joins the piece before it (r over a few frames says little)
BATCH_ROWS = 256  # pieces are gathered into a batch until it holds this many rows (the MSE fit's batch size)
MIX_OF_SUFFIX = {"corr": 0.0, "corr50": 0.5, "corr80": 0.8}  # variant suffix -> weight of the squared error


def per_piece_loss(pred: np.ndarray, y: np.ndarray, starts: np.ndarray, mix: float, scale: float
                   ) -> tuple[float, np.ndarray]:
    """(loss, its gradient with respect to `pred`) of a batch whose pieces begin at the rows `starts` (ascending,
    the first 0): mix · ½ mean(err²) + (1 − mix) · scale · mean over pieces of (1 − Pearson r)."""
    n = len(pred)
    err = pred - y
    loss = mix * 0.5 * float(np.mean(err ** 2))
    grad = mix * err / n
    if mix < 1:
        sizes = np.diff(np.append(starts, n))
        piece = np.repeat(np.arange(len(starts)), sizes)
        pc = pred - (np.add.reduceat(pred, starts) / sizes)[piece]
        yc = y - (np.add.reduceat(y, starts) / sizes)[piece]
        p_norm = np.sqrt(np.add.reduceat(pc * pc, starts)) + 1e-9
        y_norm = np.sqrt(np.add.reduceat(yc * yc, starts)) + 1e-9
        r = np.add.reduceat(pc * yc, starts) / (p_norm * y_norm)
        weight = (1 - mix) * scale / len(starts)
        loss += weight * float(np.sum(1 - r))
        # dr/dpred_i = yc_i / (|pc| |yc|) − r · pc_i / |pc|² (the centring's terms sum to zero within a piece)
        grad = grad - weight * (yc / (p_norm * y_norm)[piece] - (r / p_norm ** 2)[piece] * pc)
    return loss, grad


def clip_batches(lengths, rng: np.random.Generator, piece_rows: int = PIECE_ROWS, min_rows: int = MIN_PIECE_ROWS,
                 batch_rows: int = BATCH_ROWS) -> list[tuple[np.ndarray, np.ndarray]]:
    """One pass's batches as (rows, starts of their pieces): each clip (its `lengths` rows consecutive in the data)
    cut at a random offset into pieces of at most `piece_rows`, the pieces shuffled and gathered until a batch holds
    `batch_rows` rows."""
    pieces = []
    first = 0
    for length in lengths:
        cuts = list(range(int(rng.integers(piece_rows)) if length > piece_rows else length, length, piece_rows))
        bounds = [0] + [c for c in cuts if min_rows <= c <= length - min_rows] + [length]
        pieces += [np.arange(first + a, first + b) for a, b in zip(bounds[:-1], bounds[1:]) if b - a >= 2]
        first += length
    batches, rows, starts = [], [], []
    for i in rng.permutation(len(pieces)):
        starts.append(sum(len(r) for r in rows))
        rows.append(pieces[i])
        if starts[-1] + len(pieces[i]) >= batch_rows:
            batches.append((np.concatenate(rows), np.array(starts)))
            rows, starts = [], []
    if rows:
        batches.append((np.concatenate(rows), np.array(starts)))
    return batches


def fit_mlp_per_clip(x: np.ndarray, y: np.ndarray, lengths, mix: float, members: int = 5, hidden: int = 32,
                     l2: float = 1e-2, epochs: int = 30, lr: float = 3e-3) -> OpeningModel:
    """fit_mlp's nets (same shape, seeds, Adam and weight decay) trained on per_piece_loss over clip_batches;
    `lengths`: the rows of each clip, in order. With mix 0 each net's output is mapped onto y by least squares."""
    if sum(lengths) != len(x):
        raise ValueError(f"clip lengths sum to {sum(lengths)}, not the {len(x)} rows")
    scale = float(y.var())

    def gradients(params, xn, batch):
        rows, starts = batch
        xb = xn[rows]
        w1, b1, w2, b2 = params
        h = np.tanh(xb @ w1 + b1)
        _, g = per_piece_loss(h @ w2 + b2, y[rows], starts, mix, scale)
        dh = np.outer(g, w2) * (1 - h ** 2)
        return [xb.T @ dh + l2 * w1, dh.sum(0), h.T @ g + l2 * w2, np.array(g.sum())]

    def least_squares_scale(params, xn):  # the correlation alone leaves the output's scale and offset free
        w1, b1, w2, b2 = params
        if mix != 0:
            return params
        a, c = np.polyfit(np.tanh(xn @ w1 + b1) @ w2 + b2, y, 1)
        return [w1, b1, w2 * a, np.array(b2 * a + c)]
    return fit_nets(x, y, lambda rng: clip_batches(lengths, rng), gradients, members, hidden, epochs, lr,
                    finish=least_squares_scale)


def rate_schedule(suffix) -> dict:
    """fit_mlp's rate settings named by a variant's suffixes: "decay" the shipped linear fall to 0, "cos" a cosine
    fall instead, "floorN" a fall to N % of the rate instead of 0 (with a fall only), "lrN" a start rate of N · 1e-3
    (the recipe's: 3e-3), "eN" N passes instead of the screen's (--epochs)."""
    out: dict = {}
    for s in suffix:
        if s in ("decay", "cos"):
            out["decay"] = "cosine" if s == "cos" else out.get("decay", True)
        elif re.fullmatch(r"floor\d+", s):
            out["floor"] = int(s[5:]) / 100
        elif re.fullmatch(r"lr\d+", s):
            out["lr"] = int(s[2:]) * 1e-3
        elif re.fullmatch(r"e\d+", s):
            out["epochs"] = int(s[1:])
    return out


def net_fitter(suffix):
    """fit(x, y, lengths, members, epochs) -> OpeningModel for a variant's suffixes: per_piece_loss when one of
    them names a mix (MIX_OF_SUFFIX), else the shipped squared-error fit with the rate of rate_schedule(suffix)."""
    mixes = [MIX_OF_SUFFIX[s] for s in suffix if s in MIX_OF_SUFFIX]
    if not mixes:
        rate = rate_schedule(suffix)
        return lambda x, y, lengths, members, epochs: fit_mlp(x, y, members=members, **{"epochs": epochs, **rate})
    return lambda x, y, lengths, members, epochs: fit_mlp_per_clip(x, y, lengths, mixes[0], members=members,
                                                                   epochs=epochs)
