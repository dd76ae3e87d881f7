"""An actor's articulation: their mouth as a function of speech, learned from their footage's own audio against the
filmed mouth, relative to the generic motion model. Each learned part is kept only if it predicts the footage better
than the generic model on held-out halves of the footage (two-fold, in time)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace

import numpy as np

from lipdub import motion

log = logging.getLogger("lipdub")

RIDGE_LAMBDAS = (30.0, 100.0, 300.0, 1000.0, 3000.0)  # regularisation tried (held-out halves choose)
SHOT_LEVEL_MAX = 1.5  # the most the shot's own openings raise a profile's speech (shot_level)
# the percentile of each atlas's openings shot_level compares: the upper half is speech however much of either
# footage is pause or listening (stLi's profile footage: median 0.067 in its interview, 0.122 in its talk)
SHOT_LEVEL_QUANTILE = 75


@dataclass
class Articulation:
    """This actor's mouth as a function of speech, relative to the generic motion model.

    opening' = offset + gain * opening + features @ ridge   (where the generic track speaks; closures stay shut)
    width'   = per-phone mean width of the actor where seen often enough, else the generic width
    teeth    = per-phone mean teeth visibility of the actor (drives atlas selection)"""

    gain: float = 1.0
    offset: float = 0.0
    ridge: np.ndarray | None = None  # (F + 1,) correction on motion.model_features at frame times; [0] = bias
    phone_width: dict = field(default_factory=dict)  # label -> mean width in motion units (-1 round .. +1 spread)
    phone_teeth: dict = field(default_factory=dict)  # label -> mean teeth visibility (atlas units)
    teeth_by_opening: np.ndarray | None = None  # (B,) mean teeth visibility per opening bin (0..1.2)
    scores: dict = field(default_factory=dict)  # held-out r of each variant on the footage

    def apply(self, mouth: motion.MouthTrack, speech_track, level: float = 1.0) -> motion.MouthTrack:
        """The generic mouth track turned into this actor's; its speech openings times `level` (shot_level: how
        much more open the actor speaks in the shot dubbed than in the footage learned from)."""
        o = mouth.opening.astype(np.float64)
        speaking = (o > 0) & ~mouth.closed
        adj = self.offset + self.gain * o
        if self.ridge is not None:
            x = frame_features(speech_track, mouth.times)
            adj = adj + x @ self.ridge[1:] + self.ridge[0]
        o = np.where(speaking, np.clip(level * adj, 0.0, 1.2), o)
        w = mouth.width.astype(np.float64)
        if self.phone_width:
            labels = phone_labels(speech_track, mouth.times)
            actor_w = np.array([self.phone_width.get(lab, np.nan) for lab in labels])
            w = np.where(np.isfinite(actor_w) & speaking, 0.5 * w + 0.5 * np.nan_to_num(actor_w), w)
        return replace(mouth, opening=o.astype(np.float32), width=np.clip(w, -1, 1).astype(np.float32))

    def teeth(self, mouth: motion.MouthTrack, speech_track) -> np.ndarray | None:
        """Wanted teeth visibility per frame: the actor's per-phone mean, scaled by how open the mouth is."""
        if self.teeth_by_opening is None:
            return None
        bins = len(self.teeth_by_opening)
        by_open = self.teeth_by_opening[np.clip((mouth.opening / 1.2 * bins).astype(int), 0, bins - 1)]
        if not self.phone_teeth:
            return by_open
        labels = phone_labels(speech_track, mouth.times)
        base = float(np.mean(list(self.phone_teeth.values()))) or 1e-6
        factor = np.array([self.phone_teeth.get(lab, base) / base for lab in labels])
        return by_open * np.clip(factor, 0.3, 2.5)

    def to_arrays(self) -> dict:
        return {"art_json": np.array(json.dumps({
            "gain": self.gain, "offset": self.offset, "phone_width": self.phone_width,
            "phone_teeth": self.phone_teeth, "scores": self.scores})),
            "art_ridge": self.ridge if self.ridge is not None else np.zeros(0),
            "art_teeth_by_opening": self.teeth_by_opening if self.teeth_by_opening is not None else np.zeros(0)}

    @classmethod
    def from_arrays(cls, z) -> "Articulation":
        d = json.loads(str(z["art_json"]))
        ridge = np.asarray(z["art_ridge"], np.float64)
        tbo = np.asarray(z["art_teeth_by_opening"], np.float64)
        return cls(float(d["gain"]), float(d["offset"]), ridge if ridge.size else None, dict(d["phone_width"]),
                   dict(d["phone_teeth"]), tbo if tbo.size else None, dict(d.get("scores", {})))


def shot_level(footage_open: np.ndarray, shot_open: np.ndarray) -> float:
    """How much more open the actor's mouth is in the shot dubbed than in the profile's footage: the
    SHOT_LEVEL_QUANTILE-th percentile of the shot's filmed openings over the footage's (canonical units, both
    atlases), within 1..SHOT_LEVEL_MAX. An articulation learned where the actor spoke more closed (another day,
    another talk) asks this shot for more shut mouths than it shows, served by its few shut ones again and again
    (docs/RESULTS.md: cnn_anchor's and vx11's profile dubs wanted 2-3x the shut frames of their own-mouth dubs).
    Never below 1: a shot more closed than the footage may be one where the actor listens, whose openings say
    nothing of how they speak."""
    f, s = np.asarray(footage_open, np.float64), np.asarray(shot_open, np.float64)
    if len(f) < 10 or len(s) < 10:
        return 1.0
    level_f, level_s = np.percentile(f, SHOT_LEVEL_QUANTILE), np.percentile(s, SHOT_LEVEL_QUANTILE)
    return float(np.clip(level_s / level_f, 1.0, SHOT_LEVEL_MAX)) if level_f > 0 else 1.0


def frame_features(speech_track, times: np.ndarray) -> np.ndarray:
    """The learned model's audio features, sampled at frame times (zeros past the audio's end)."""
    x = motion.model_features(speech_track)
    idx = np.round(np.asarray(times) / speech_track.hop).astype(int)
    out = x[np.clip(idx, 0, len(x) - 1)]
    out[(idx < 0) | (idx >= len(x))] = 0.0
    return out


def phone_labels(speech_track, times: np.ndarray) -> list[str]:
    """Phone label at each time ('' where none)."""
    phones = speech_track.phones
    starts = np.array([p.start for p in phones]) if phones else np.zeros(0)
    out = []
    for t in np.asarray(times, np.float64):
        k = int(np.searchsorted(starts, t, side="right")) - 1
        out.append(phones[k].label.upper().rstrip("012") if 0 <= k < len(phones) and t < phones[k].end else "")
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def learn_articulation(samples: list[dict], open_max: float) -> Articulation:
    """Fit the actor's articulation from footage samples.

    samples: per clip {"speech": SpeechTrack, "times": (T,), "opening": (T,) filmed canonical opening (NaN where no
    face), "width": (T,) filmed canonical width, "teeth": (T,) teeth visibility (NaN where unknown)}."""
    gen, real, feats, labels, widths, teeth, halves = [], [], [], [], [], [], []
    rest_w = []
    for s in samples:
        mouth = motion.mouth_track(s["speech"], s["times"])
        ok = np.isfinite(s["opening"])
        speaking = (mouth.opening > 0) & ~mouth.closed & ok
        if speaking.sum() < 25:
            continue
        gen.append(mouth.opening[speaking].astype(np.float64))
        real.append(s["opening"][speaking] / open_max)
        feats.append(frame_features(s["speech"], s["times"])[speaking])
        labels += [lab for lab, k in zip(phone_labels(s["speech"], s["times"]), speaking) if k]
        widths.append(s["width"][speaking])
        teeth.append(s["teeth"][speaking])
        idx = np.flatnonzero(speaking)
        halves.append((idx >= np.median(idx)).astype(int))
        rest = s["width"][ok & (s["opening"] < 0.03)]
        rest_w.append(rest)
    art = Articulation()
    if not gen:
        log.warning("the footage's speech is too short to learn this actor's articulation; using the generic one")
        return art
    g, y, x = np.concatenate(gen), np.concatenate(real), np.concatenate(feats)
    half = np.concatenate(halves)
    w_all, t_all = np.concatenate(widths), np.concatenate(teeth)
    labels = np.array(labels)

    def fit(train, variant):
        gain, off = np.polyfit(g[train], y[train], 1)
        ridge = None
        if variant.startswith("ridge"):
            ridge_lambda = float(variant[5:])
            resid = y[train] - (off + gain * g[train])
            xm = x[train].mean(0)
            xs = x[train].std(0) + 1e-6
            z = (x[train] - xm) / xs
            wz = np.linalg.solve(z.T @ z + ridge_lambda * np.eye(z.shape[1]), z.T @ (resid - resid.mean()))
            w = wz / xs
            ridge = np.concatenate([[resid.mean() - xm @ w], w])
        return gain, off, ridge

    def predict(params, test):
        gain, off, ridge = params
        p = off + gain * g[test]
        if ridge is not None:
            p = p + x[test] @ ridge[1:] + ridge[0]
        return np.clip(p, 0, 1.2)

    scores = {"generic": np.mean([_pearson(g[half == h], y[half == h]) for h in (0, 1)])}
    variants = ["linear"] + [f"ridge{lam:g}" for lam in RIDGE_LAMBDAS]
    for variant in variants:
        rs = []
        for h in (0, 1):
            rs.append(_pearson(predict(fit(half != h, variant), half == h), y[half == h]))
        scores[variant] = float(np.mean(rs))
    best = max(scores, key=lambda v: scores[v])
    if best != "generic":
        art.gain, art.offset, art.ridge = fit(np.ones(len(g), bool), best)
    ridge_best = max((v for v in scores if v.startswith("ridge")), key=lambda v: scores[v])
    art.scores = {"generic": round(float(scores["generic"]), 4), "linear": round(float(scores["linear"]), 4),
                  "ridge": round(float(scores[ridge_best]), 4), "chosen": best, "frames": int(len(g))}

    # per-phone width (motion units: relative change of the rest width / 0.12) and teeth
    rest = float(np.median(np.concatenate(rest_w))) if sum(len(r) for r in rest_w) >= 10 else float(np.median(w_all))
    w_units = (w_all / max(rest, 1e-6) - 1) / 0.12
    for lab in set(labels) - {"", "SIL"}:
        sel = labels == lab
        if sel.sum() >= 8:
            art.phone_width[lab] = round(float(np.clip(np.median(w_units[sel]), -1, 1)), 4)
            tt = t_all[sel]
            tt = tt[np.isfinite(tt)]
            if len(tt) >= 5:
                art.phone_teeth[lab] = round(float(np.mean(tt)), 4)
    ok_t = np.isfinite(t_all)
    if ok_t.sum() >= 30:
        bins = 12
        b = np.clip((y[ok_t] / 1.2 * bins).astype(int), 0, bins - 1)
        means = np.array([t_all[ok_t][b == i].mean() if (b == i).sum() >= 3 else np.nan for i in range(bins)])
        # fill empty bins from their neighbours, teeth never shrink as the mouth opens further
        valid = np.isfinite(means)
        means = np.interp(np.arange(bins), np.flatnonzero(valid), means[valid]) if valid.any() else None
        art.teeth_by_opening = None if means is None else np.maximum.accumulate(means)
    return art
