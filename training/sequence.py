"""A sequence model of the mouth opening for the screen of training.tokens (issue 22): the shipped MLP's per-hop
layer followed by a small bidirectional GRU over the clip's hops, fitted with torch on the CPU (training only).

    y(hop) = w · [tanh(W1 x + b1), BiGRU(tanh(W1 x + b1))] + b

x: the shipped model's inputs at every hop (motion.model_features at OFFLINE_POSTERIOR_TAPS). The GRU sees the whole
clip in both directions, so the mouth at a hop can depend on the sounds of the seconds around it; with its output
weights at zero the model is the MLP. Trained on random 4 s windows of the training clips, the loss (squared error)
on the hops of the filmed frames in each window (the targets of training.train_motion, aligned by the clip's lag).
Scored on each held-out clip's whole sequence.
"""

from __future__ import annotations

import numpy as np

WINDOW = 400  # hops per training window (4 s)


def _torch():
    import torch  # training only: lipdub's inference never imports torch

    torch.set_num_threads(1)
    return torch


class GruOpening:
    """One or more fitted nets (averaged), read like OpeningModel by motion.mouth_track: predict(x) gets every hop
    of a clip (the offline motion builds one block of features for clips under 327 s)."""

    reach = 0

    def __init__(self, nets, mean, std, mel_context, posterior_taps):
        self.nets, self.mean, self.std = nets, mean, std
        self.mel_context, self.posterior_taps = mel_context, posterior_taps

    def predict(self, x: np.ndarray) -> np.ndarray:
        torch = _torch()
        xn = torch.from_numpy(((x - self.mean) / self.std).astype(np.float32))[None]
        with torch.no_grad():
            return np.mean([net(xn)[0].numpy() for net in self.nets], 0).astype(np.float64)


def _net(n_in: int, hidden: int, gru: int, y_mean: float):
    torch = _torch()
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(n_in, hidden)
            self.gru = nn.GRU(hidden, gru, batch_first=True, bidirectional=True)
            self.out = nn.Linear(hidden + 2 * gru, 1)
            nn.init.zeros_(self.out.bias)
            with torch.no_grad():
                self.out.bias += y_mean

        def forward(self, x):
            h = torch.tanh(self.inp(x))
            g, _ = self.gru(h)
            return self.out(torch.cat([h, g], -1))[..., 0]
    return Net()


def fit_gru(feats: list, centres: list, targets: list, members: int = 2, hidden: int = 32, gru: int = 16,
            epochs: int = 60, lr: float = 3e-3, l2: float = 1e-2, batch: int = 16, mel_context=(),
            posterior_taps=()) -> GruOpening:
    """Average of `members` nets, each from its own seed. Per clip: `feats` (hops, F) of every hop, `centres` the
    hops of its target frames, `targets` their openings."""
    torch = _torch()
    x_all = np.concatenate(feats)
    mean, std = x_all.mean(0), x_all.std(0) + 1e-6
    xs = [torch.from_numpy(((f - mean) / std).astype(np.float32)) for f in feats]
    ys = []
    for f, c, t in zip(feats, centres, targets):
        y = np.full(len(f), np.nan, np.float32)
        y[np.asarray(c)] = t
        ys.append(torch.from_numpy(y))
    y_mean = float(np.concatenate(targets).mean())
    nets = []
    for seed in range(members):
        rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        net = _net(x_all.shape[1], hidden, gru, y_mean)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        for _ in range(epochs):
            # windows: each clip cut at a random offset into WINDOW-hop pieces (short clips whole), shuffled
            pieces = []
            for k, f in enumerate(xs):
                start = int(rng.integers(0, WINDOW)) if len(f) > WINDOW else 0
                cuts = [0] + list(range(start, len(f), WINDOW))[1 if start == 0 else 0:] + [len(f)]
                pieces += [(k, a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b - a >= 20]
            order = rng.permutation(len(pieces))
            for s in range(0, len(order), batch):
                chosen = [pieces[i] for i in order[s:s + batch]]
                length = max(b - a for _, a, b in chosen)
                xb = torch.zeros(len(chosen), length, x_all.shape[1])
                yb = torch.full((len(chosen), length), float("nan"))
                for j, (k, a, b) in enumerate(chosen):  # right-padded; padded hops have no target
                    xb[j, :b - a], yb[j, :b - a] = xs[k][a:b], ys[k][a:b]
                ok = ~torch.isnan(yb)
                if not ok.any():
                    continue
                pred = net(xb)
                loss = ((pred[ok] - yb[ok]) ** 2).mean()
                loss = loss + 0.5 * l2 * sum((p ** 2).sum() for n, p in net.named_parameters() if "bias" not in n)
                opt.zero_grad()
                loss.backward()
                opt.step()
        net.eval()
        nets.append(net)
    return GruOpening(nets, mean, std, mel_context, posterior_taps)
