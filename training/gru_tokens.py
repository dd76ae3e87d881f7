"""Screen: a small bidirectional GRU on the shipped recipe's inputs and targets (issue 22, stop 40), scored held out
by training.tokens next to the shipped MLP (`--variants pca32-xlag,gru16-xlag,...`).

Per hop the net reads exactly the row the shipped MLP reads at a frame's hop (the plain features with the log-mel at
MEL_CONTEXT, the class posteriors and 32 token components at TAPS, the axes fitted per fold on the training clips as
training.tokens' pca32) through a tanh layer of 32 units (the MLP's hidden layer); a bidirectional GRU runs over those
units every STRIDE hops; each hop's opening is a linear read of its own units (the MLP's path) plus of the GRU's
states drawn linearly between the strided steps. Its targets are the fold's cross-fitted lags' (-xlag, shared with
training.tokens' variants in one process). Fitted with torch on the CPU (one thread; torch is not a dependency of
lipdub: install it beside it to run these variants), on random windows of WINDOW hops cut from the clips, the rate
brought down linearly to 0 over the passes; the fitted nets run in numpy (GruOpeningNets), over a whole clip. Suffixes:
- -avg: the mean of its opening and the shipped MLP's (pca32-xlag, fitted on the same fold), before the motion's clip
  to [0, 1.2];
- -warm: each net starts from the fold's shipped MLP (its per-hop layer and output; the GRU's part of the output at
  0) at WARM_RATE of the rate;
- -ctl: the GRU's part of the output held at 0 (with -warm: the MLP trained on further as the GRU was, the control);
- gruN: N GRU units per direction; -sN: the GRU every N hops (default STRIDE); -eN: N passes over the
  training windows instead of PASSES.
Screened (docs/RESULTS.md, Motion alone, stop 40): from scratch it loses (0.683 -> 0.666); -warm gains +0.006 / +0.005
on two splits, and so does its -ctl: the GRU's context adds nothing. None kept.
"""

from __future__ import annotations

import re

import numpy as np

from lipdub.motion.features import component_columns, posterior_columns
from lipdub.speech.tokens import fit_axes, log_smoothed
from training.train_motion import TAPS, aligned_rows

GRU_VARIANTS = ("gru16-xlag", "gru16-xlag-avg", "gru16-xlag-warm-e20", "gru16-xlag-warm-avg-e20",
                "gru16-xlag-warm-e20-ctl")  # the ones screened (more combine from the suffixes below)
COMPONENTS = 32
HIDDEN = 32  # per-hop tanh units: the shipped MLP's hidden layer
STRIDE = 8  # hops between the GRU's steps (80 ms): an eighth of the sequential steps (4 screened on one fold: the same)
WINDOW = 800  # hops per training window (8 s); a clip shorter than that is one padded window
MARGIN = 25  # hops: targets this close to a window's cut (not the clip's own end) are not scored in training
BATCH = 32  # windows per Adam step
PASSES = 60  # passes over the training windows (each clip cut into ceil(hops / WINDOW) windows per pass)
L2, LR = 1e-2, 3e-3  # as the MLP's fit
WARM_RATE = 1 / 3  # -warm: the nets start from the fold's MLP, at a third of the rate
_FITTED: dict = {}  # (recipe, training names, nets) -> fitted nets: -avg reuses the plain net's fits


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * v))


def gru_pass(seq: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray) -> np.ndarray:
    """(T, G) states of one GRU direction over `seq` (T, H), torch.nn.GRU's equations and weight layout (gates r, z,
    n stacked in the rows of w_ih (3G, H) and w_hh (3G, G)), from a zero state."""
    g = w_hh.shape[1]
    gates_in = seq @ w_ih.T + b_ih  # every step's input part at once: the loop is a (G, 3G) product per step
    out = np.empty((len(seq), g))
    h = np.zeros(g)
    for t in range(len(seq)):
        a = gates_in[t]
        b = w_hh @ h + b_hh
        r = sigmoid(a[:g] + b[:g])
        z = sigmoid(a[g:2 * g] + b[g:2 * g])
        n = np.tanh(a[2 * g:] + r * b[2 * g:])
        h = (1.0 - z) * n + z * h
        out[t] = h
    return out


def strided_at(states: np.ndarray, n: int, stride: int) -> np.ndarray:
    """(n, G) the states of steps 0, stride, 2·stride, ... drawn linearly at every hop 0..n-1 (held after the last)."""
    pos = np.arange(n) / stride
    i0 = np.minimum(np.floor(pos).astype(int), len(states) - 1)
    i1 = np.minimum(i0 + 1, len(states) - 1)
    frac = (pos - i0)[:, None] * (i1 > i0)[:, None]
    return states[i0] * (1.0 - frac) + states[i1] * frac


class GruOpeningNets:
    """The fitted nets (a list of arrays dicts, one per net) in numpy: the mean of their openings at every hop."""

    def __init__(self, nets: list, stride: int):
        self.nets, self.stride = nets, stride

    def predict_hops(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros(len(x))
        for a in self.nets:
            hidden = np.tanh((x - a["mean"]) / a["std"] @ a["w1"] + a["b1"])
            steps = hidden[::self.stride]
            fwd = gru_pass(steps, a["w_ih"][0], a["w_hh"][0], a["b_ih"][0], a["b_hh"][0])
            bwd = gru_pass(steps[::-1], a["w_ih"][1], a["w_hh"][1], a["b_ih"][1], a["b_hh"][1])[::-1]
            states = strided_at(np.concatenate([fwd, bwd], 1), len(x), self.stride)
            out += hidden @ a["w2"] + states @ a["wg"] + a["b2"]
        return out / len(self.nets)


def windows(lengths: list, rng: np.random.Generator, window: int, stride: int) -> list:
    """One pass's (clip, start, stop) windows: ceil(hops / window) per clip, their starts drawn at random (the
    clip's ends as likely as its middle) on the stride's grid, so the GRU steps on the hops it steps on in a whole
    clip."""
    out = []
    for c, n in enumerate(lengths):
        if n <= window:
            out.append((c, 0, n))
            continue
        for _ in range(-(-n // window)):
            start = int(np.clip(rng.integers(-window // 2, n - window // 2), 0, n - window)) // stride * stride
            out.append((c, start, start + window))
    return out


def fit_gru(feats: list, centres: list, targets: list, members: int = 2, units: int = 16, stride: int = STRIDE,
            passes: int = PASSES, window: int = WINDOW, lr: float = LR, init=None, context: bool = True,
            after_pass=None
            ) -> GruOpeningNets:
    """`members` nets from seeds 0.., each trained with Adam on the squared error at the target hops of random
    windows. Per clip: `feats` (hops, F) of every hop, `centres` the hops of its targets, `targets` their openings.
    `init`: an MLP OpeningModel on the same columns (its nets in turn) that each net starts from: its per-hop layer
    and output are the MLP's, the GRU's part of the output 0, so the untrained net draws the MLP's opening.
    `context` False: the GRU's part of the output held at 0 (a control: what the same training does without it).
    `after_pass(k, net)`: called after each pass k (from 1) with the net so far (a learning curve)."""
    import torch  # only to fit: the fitted nets run in numpy

    torch.set_num_threads(1)
    every = np.concatenate(feats)
    mean, std = every.mean(0), every.std(0) + 1e-6
    ys, cs = [np.asarray(t, np.float32) for t in targets], [np.asarray(c) for c in centres]
    y_mean = float(np.concatenate(ys).mean())
    lengths = [len(f) for f in feats]
    first = np.cumsum([0] + lengths)  # each clip's first row in `table`; its last row: zeros (padding)
    table = torch.from_numpy(np.concatenate([(every - mean) / std, np.zeros((1, every.shape[1]))]).astype(np.float32))
    del every
    nets = []
    for seed in range(members):
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        lin = torch.nn.Linear(table.shape[1], HIDDEN)
        gru = torch.nn.GRU(HIDDEN, units, batch_first=True, bidirectional=True)
        head = torch.nn.Linear(HIDDEN + 2 * units, 1)
        with torch.no_grad():
            head.bias.fill_(y_mean)
            if init is not None:  # the MLP's standardisation folded into the first layer: the same hidden units
                a = {k: v[seed % len(v)] for k, v in init.arrays.items() if k in ("mean", "std", "w1", "b1", "w2",
                                                                                    "b2")}
                lin.weight.copy_(torch.from_numpy((a["w1"] * (std / a["std"])[:, None]).T.astype(np.float32)))
                lin.bias.copy_(torch.from_numpy(((mean - a["mean"]) / a["std"] @ a["w1"] + a["b1"]).astype(np.float32)))
                head.weight.zero_()
                head.weight[0, :HIDDEN] = torch.from_numpy(a["w2"].astype(np.float32))
                head.bias.fill_(float(a["b2"]))
        weights = [lin.weight, head.weight] + [p for k, p in gru.named_parameters() if k.startswith("weight")]
        biases = [lin.bias, head.bias] + [p for k, p in gru.named_parameters() if k.startswith("bias")]
        opt = torch.optim.Adam([{"params": weights, "weight_decay": L2}, {"params": biases}], lr=lr)
        for k in range(1, passes + 1):
            for group in opt.param_groups:  # the rate brought down linearly to 0: the last passes settle the net
                group["lr"] = lr * (1 - (k - 1) / passes)
            cut = windows(lengths, rng, window, stride)
            order = rng.permutation(len(cut))
            for b in range(0, len(cut), BATCH):
                batch = [cut[i] for i in order[b:b + BATCH]]
                steps = [-(-(stop - start) // stride) for _, start, stop in batch]
                at_steps = np.full((len(batch), max(steps)), first[-1])  # the padding row
                rows, hops, want, last = [], [], [], []
                for i, (c, start, stop) in enumerate(batch):
                    at_steps[i, :steps[i]] = first[c] + np.arange(start, stop, stride)
                    keep = (cs[c] >= start) & (cs[c] < stop)
                    keep &= (cs[c] >= start + MARGIN) | (start == 0)
                    keep &= (cs[c] < stop - MARGIN) | (stop == lengths[c])
                    rows.append(np.full(int(keep.sum()), i))
                    hops.append(cs[c][keep] - start)
                    want.append(ys[c][keep])
                    last.append(np.full(int(keep.sum()), steps[i] - 1))
                rows, hops, last = np.concatenate(rows), np.concatenate(hops), np.concatenate(last)
                starts = np.array([start + first[c] for c, start, _ in batch])
                packed = torch.nn.utils.rnn.pack_padded_sequence(torch.tanh(lin(table[torch.from_numpy(at_steps)])),
                                                                 steps, batch_first=True, enforce_sorted=False)
                states, _ = gru(packed)
                states, _ = torch.nn.utils.rnn.pad_packed_sequence(states, batch_first=True)
                i0 = np.minimum(hops // stride, last)  # each window's states are held after its last step
                i1 = np.minimum(i0 + 1, last)
                frac = torch.tensor((hops / stride - i0) * (i1 > i0), dtype=torch.float32)[:, None]
                rows_t = torch.from_numpy(rows)
                drawn = states[rows_t, torch.from_numpy(i0)] * (1 - frac) + states[rows_t, torch.from_numpy(i1)] * frac
                own = torch.tanh(lin(table[torch.from_numpy(starts[rows] + hops)]))  # the MLP's path: the hop's row
                pred = head(torch.cat([own, drawn if context else torch.zeros_like(drawn)], 1))[:, 0]
                loss = ((pred - torch.from_numpy(np.concatenate(want))) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            if after_pass is not None:
                after_pass(k, GruOpeningNets([net_arrays(lin, gru, head, mean, std)], stride))
        nets.append(net_arrays(lin, gru, head, mean, std))
        if not context:
            nets[-1]["wg"] = np.zeros_like(nets[-1]["wg"])
    return GruOpeningNets(nets, stride)


def net_arrays(lin, gru, head, mean: np.ndarray, std: np.ndarray) -> dict:
    """A torch net's weights as GruOpeningNets reads them (float64)."""
    p = {k: v.detach().double().numpy() for k, v in gru.named_parameters()}
    hidden = lin.weight.shape[0]
    w = head.weight.detach().double().numpy()[0]
    return {"mean": mean, "std": std, "w1": lin.weight.detach().double().numpy().T,
            "b1": lin.bias.detach().double().numpy(),
            "w_ih": np.stack([p["weight_ih_l0"], p["weight_ih_l0_reverse"]]),
            "w_hh": np.stack([p["weight_hh_l0"], p["weight_hh_l0_reverse"]]),
            "b_ih": np.stack([p["bias_ih_l0"], p["bias_ih_l0_reverse"]]),
            "b_hh": np.stack([p["bias_hh_l0"], p["bias_hh_l0_reverse"]]),
            "w2": w[:hidden], "wg": w[hidden:], "b2": float(head.bias.detach()[0])}


class GruOnClip:
    """The fitted GRU (and with -avg the MLP) bound to one clip's extra columns: quacks like a temporal OpeningModel
    for motion.mouth_track (reach, mel_context, predict_hops; the GRU reads the whole clip, one block)."""

    reach = 1  # > 0: motion.learned_opening asks for predict_hops over the clip's hops
    posterior_taps = component_taps = ()  # it is given the plain features and appends the clip's own columns

    def __init__(self, nets: GruOpeningNets, extra: np.ndarray, mlp=None):
        from lipdub.motion import MEL_CONTEXT
        self.nets, self.extra, self.mlp = nets, extra, mlp
        self.mel_context = MEL_CONTEXT

    def predict_hops(self, x: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
        stop = len(x) if stop is None else stop
        if len(x) != len(self.extra):  # learned_opening builds one block for clips under FEATURE_BLOCK hops
            raise ValueError(f"{len(x)} feature rows against {len(self.extra)} extra rows")
        out = self.nets.predict_hops(np.concatenate([x, self.extra], 1))[start:stop]
        if self.mlp is not None:
            out = 0.5 * (out + self.mlp.predict(x[start:stop]))
        return out


class GruColumns:
    """A fold's fitted GRU; .on(name) binds it to a clip (training.tokens.screen scores it so)."""

    def __init__(self, nets, extra, mlp=None):
        self.nets, self.extra, self.mlp = nets, extra, mlp

    def on(self, name: str) -> GruOnClip:
        return GruOnClip(self.nets, self.extra(name), None if self.mlp is None else self.mlp.on(name))


def gru_variant_fitter(variant: str, samples: dict, tokens: dict, epochs: int):
    """fit(names, members) -> GruColumns of a GRU_VARIANTS recipe."""
    # training.tokens imports this module to dispatch its variants: imported here, when a variant is fitted
    from lipdub import motion
    from training.tokens import fold_lags, variant_fitter
    head, *suffix = variant.split("-")
    units = int(re.fullmatch(r"gru(\d+)", head)[1])
    option = {s[0]: int(s[1:]) for s in suffix if re.fullmatch(r"[se]\d+", s)}
    stride, passes = option.get("s", STRIDE), option.get("e", PASSES)
    warm = "warm" in suffix
    n_plain = len(motion.offline_feature_names())
    hops = {k: np.arange(len(s[2].voiced)) for k, s in samples.items()}

    def fit(names, members):
        key = (variant.replace("-avg", ""), tuple(names), members)
        if key not in _FITTED:
            axes = fit_axes([tokens[n] for n in names], COMPONENTS)
            cache: dict = {}

            def extra(name):  # pca32's columns: the class posteriors and this fold's components at the taps
                if name not in cache:
                    comps = (log_smoothed(tokens[name]) - axes.mean) @ axes.axes
                    cache[name] = np.concatenate([posterior_columns(samples[name][2].posteriors, hops[name], TAPS),
                                                  component_columns(comps, hops[name], TAPS)], 1)
                return cache[name]
            lags = fold_lags(samples, names, epochs)
            timed = {n: aligned_rows(*samples[n][:3], lags[n], every_hop=True, posterior_taps=TAPS) for n in names}
            feats = [np.concatenate([samples[n][5][:, :n_plain], extra(n)], 1) for n in names]
            nets = fit_gru(feats, [timed[n][2] for n in names], [timed[n][1] for n in names], members=members,
                           units=units, stride=stride, passes=passes, lr=LR * (WARM_RATE if warm else 1),
                           init=shipped_mlp(names, members).inner if warm else None, context="ctl" not in suffix)
            _FITTED[key] = (nets, extra)
        nets, extra = _FITTED[key]
        return GruColumns(nets, extra, shipped_mlp(names, members) if "avg" in suffix else None)

    def shipped_mlp(names, members):
        key = ("mlp", tuple(names), members, epochs)
        if key not in _FITTED:
            _FITTED[key] = variant_fitter("pca32-xlag", samples, tokens, epochs)(names, members)
        return _FITTED[key]
    return fit
