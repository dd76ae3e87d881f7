"""motion: phones + acoustics → a mouth trajectory sampled at the output frame times.

Coarticulation follows Cohen & Massaro's dominance model: every phone pulls the mouth towards its viseme target with a
dominance that decays away from the phone's centre, so transitions anticipate the next sound and weak consonants
(t, k, h) borrow the shape of their neighbouring vowels. Bilabials (p, b, m) are then forced fully shut at their
centre, and the mouth rests closed wherever voice activity says there is no speech.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import ParameterError

# viseme targets: (opening 0..1 of the speaker's wide-open, width change -1 (rounded) .. +1 (spread), dominance)
_V = {
    "SIL": (0.0, 0.0, 0.6),
    "P": (0.0, 0.0, 6.0), "B": (0.0, 0.0, 6.0), "M": (0.0, 0.0, 6.0),
    "F": (0.08, -0.05, 3.0), "V": (0.08, -0.05, 3.0),
    "TH": (0.22, 0.05, 1.2), "DH": (0.22, 0.05, 1.0),
    "T": (0.25, 0.1, 0.5), "D": (0.25, 0.1, 0.5), "N": (0.22, 0.1, 0.5), "L": (0.3, 0.0, 0.5),
    "S": (0.12, 0.3, 1.2), "Z": (0.12, 0.3, 1.0),
    "K": (0.35, 0.0, 0.35), "G": (0.35, 0.0, 0.35), "NG": (0.3, 0.0, 0.35), "HH": (0.45, 0.0, 0.2),
    "CH": (0.18, -0.5, 1.5), "JH": (0.18, -0.5, 1.5), "SH": (0.18, -0.5, 1.5), "ZH": (0.18, -0.5, 1.5),
    "R": (0.22, -0.4, 0.9), "W": (0.1, -0.8, 2.0), "Y": (0.2, 0.3, 0.8),
    "AA": (0.95, 0.0, 1.0), "AE": (0.8, 0.25, 1.0), "AH": (0.65, 0.0, 0.9), "AO": (0.8, -0.35, 1.0),
    "AW": (0.8, -0.2, 1.0), "AY": (0.8, 0.1, 1.0), "EH": (0.6, 0.25, 0.9), "ER": (0.35, -0.4, 0.9),
    "EY": (0.5, 0.35, 0.9), "IH": (0.38, 0.3, 0.8), "IY": (0.26, 0.5, 0.9), "OW": (0.55, -0.6, 1.0),
    "OY": (0.6, -0.45, 1.0), "UH": (0.32, -0.5, 0.9), "UW": (0.2, -0.8, 1.1),
}
BILABIALS = {"P", "B", "M"}


@dataclass
class MouthTrack:
    """Per output frame: the wanted mouth, relative to the speaker (rendering turns it into landmarks)."""

    times: np.ndarray  # (T,) seconds
    opening: np.ndarray  # (T,) 0 closed .. 1 the speaker's wide-open
    width: np.ndarray  # (T,) -1 rounded .. +1 spread, 0 = rest
    closed: np.ndarray  # (T,) bool: lips must touch (bilabial or silence)

    def __len__(self) -> int:
        return len(self.times)


def viseme_target(label: str) -> tuple[float, float, float]:
    return _V.get(label.upper().rstrip("012"), (0.3, 0.0, 0.5))


def phone_curves(phones, duration: float, hop: float = 0.01, lead: float = 0.02):
    """Dominance-blended opening/width at `hop` resolution plus a mask of bilabial closure centres."""
    n = max(1, int(np.ceil(duration / hop)))
    t = (np.arange(n) + 0.5) * hop
    num_o, num_w, den = np.zeros(n), np.zeros(n), np.full(n, 1e-6)
    closure = np.zeros(n, bool)
    for ph in phones:
        o, w, dom = viseme_target(ph.label)
        centre = 0.5 * (ph.start + ph.end) - lead  # lips move slightly ahead of the sound
        half = max(0.5 * (ph.end - ph.start), 0.02)
        # dominance: flat over the phone, exponential decay outside; anticipation reaches further than carry-over
        dist = np.abs(t - centre) - half
        tight = ph.label.upper() in BILABIALS  # lips shut fast and let go fast: strong but short-reaching
        reach = np.where(t < centre, 0.035 if tight else 0.09, 0.025 if tight else 0.06)
        d = dom * np.exp(-np.maximum(dist, 0.0) / reach)
        num_o += d * o
        num_w += d * w
        den += d
        if ph.label.upper() in BILABIALS:
            closure |= np.abs(t - centre) <= max(half * 0.5, 0.02)
    return t, num_o / den, num_w / den, closure


# ------------------------------------------------------------------------------------------ learned opening model
# Small neural nets from audio to mouth opening, trained by bench/train_motion.py on real speakers' filmed mouths:
# features = phone-class dominance (what is said), log-mel context ±120 ms (how it sounds), jaw, loudness, voicing.
MODEL_PATH = Path(__file__).resolve().parent / "assets" / "motion_model.npz"
MEL_CONTEXT = (-12, -8, -4, 0, 4, 8, 12)  # hops
FEATURE_LABELS = sorted(_V)


def dominance_features(phones, n: int, hop: float, lead: float = 0.02) -> np.ndarray:
    """(n, len(FEATURE_LABELS)): each phone class's share of the dominance-blended mouth at every hop."""
    t = (np.arange(n) + 0.5) * hop
    feats = np.zeros((n, len(FEATURE_LABELS)))
    den = np.full(n, 1e-6)
    column = {label: i for i, label in enumerate(FEATURE_LABELS)}
    for ph in phones:
        label = ph.label.upper().rstrip("012")
        _, _, dom = viseme_target(label)
        centre = 0.5 * (ph.start + ph.end) - lead
        half = max(0.5 * (ph.end - ph.start), 0.02)
        dist = np.abs(t - centre) - half
        tight = label in BILABIALS
        reach = np.where(t < centre, 0.035 if tight else 0.09, 0.025 if tight else 0.06)
        d = dom * np.exp(-np.maximum(dist, 0.0) / reach)
        if label in column:
            feats[:, column[label]] += d
        den += d
    return feats / den[:, None]


def model_features(speech) -> np.ndarray:
    """(N, F) features of the learned opening model at every hop of `speech`."""
    n = len(speech.voiced)
    mel = np.asarray(speech.mel, np.float32)[:n]
    if len(mel) < n:
        mel = np.concatenate([mel, np.zeros((n - len(mel), mel.shape[1]), np.float32)])
    idx = np.arange(n)
    context = [mel[np.clip(idx + off, 0, n - 1)] for off in MEL_CONTEXT]
    acoustic = np.stack([speech.jaw[:n], speech.loudness[:n], np.asarray(speech.voiced[:n], np.float32)], 1)
    return np.concatenate([dominance_features(speech.phones, n, speech.hop)] + context + [acoustic], 1)


class OpeningModel:
    """Audio features → mouth opening (fraction of the speaker's wide-open mouth): an average of small tanh MLPs
    (plain numpy; a single ridge regression when the file holds only `weights`)."""

    def __init__(self, arrays: dict):
        self.arrays = {k: np.asarray(v, np.float64) for k, v in arrays.items()}

    def predict(self, x: np.ndarray, chunk: int = 4096) -> np.ndarray:
        a = self.arrays
        if "w1" not in a:
            w = a["weights"]
            return w[0] + x @ w[1:]
        if len(x) > chunk:  # bounded memory on hour-long audio: the ensemble's (E, N, F) temporaries stay small
            return np.concatenate([self.predict(x[i:i + chunk], chunk) for i in range(0, len(x), chunk)])
        z = (x[None] - a["mean"][:, None]) / a["std"][:, None]  # (E, N, F)
        hidden = np.tanh(np.einsum("enf,efh->enh", z, a["w1"]) + a["b1"][:, None])
        return (np.einsum("enh,eh->en", hidden, a["w2"]) + a["b2"][:, None]).mean(0)

    def save(self, path) -> None:
        np.savez(path, **{k: v.astype(np.float32) for k, v in self.arrays.items()})

    @property
    def n_features(self) -> int:
        a = self.arrays
        return a["w1"].shape[1] if "w1" in a else a["weights"].shape[0] - 1


@lru_cache(maxsize=4)
def _load(path: str) -> OpeningModel | None:
    try:
        with np.load(path) as z:
            return OpeningModel({k: z[k] for k in z.files if k in ("weights", "mean", "std", "w1", "b1", "w2", "b2")})
    except (OSError, KeyError, ValueError):
        return None


def load_model() -> OpeningModel | None:
    """The shipped model, or the one named by $LIPDUB_MOTION_MODEL (held-out evaluation, experiments)."""
    import os

    return _load(os.environ.get("LIPDUB_MOTION_MODEL") or str(MODEL_PATH))


def learned_opening(speech, model: OpeningModel) -> np.ndarray:
    return np.clip(model.predict(model_features(speech)), 0.0, 1.2)


@dataclass
class MotionParams:
    """Knobs of the motion model; defaults are tuned on the shared clips' own audio vs. filmed mouths
    (bench/motion_eval.py)."""

    acoustic_weight: float = 0.35  # how much loudness/jaw modulates the phone-driven opening
    lead: float = 0.02  # s: lips lead the sound
    smooth: float = 0.02  # s: Gaussian inertia of the jaw
    pause_bridge: float = 0.8  # s: pauses shorter than this belong to the utterance (the mouth may stay open)
    pause_open: float = 0.0  # fixed opening held through such pauses; 0 = what the learned model predicts
    force_closures: bool = True  # p/b/m shut the lips completely
    learned: bool = True  # use the learned opening model when it and log-mel features are available
    model: "OpeningModel | None" = None  # override the shipped model (training, experiments)


def mouth_track(speech, frame_times: np.ndarray, strength: float = 1.0, acoustic_weight: float | None = None,
                params: MotionParams | None = None) -> MouthTrack:
    """Sample the wanted mouth at `frame_times` (seconds on the audio's clock)."""
    if not np.isfinite(strength) or strength < 0 or strength > 3:
        raise ParameterError(f"--strength must be between 0 and 3 (1 = natural), got {strength}")
    prm = params or MotionParams()
    if acoustic_weight is not None:
        from dataclasses import replace

        prm = replace(prm, acoustic_weight=acoustic_weight)
    from scipy.ndimage import binary_closing, binary_dilation, gaussian_filter1d

    hop = speech.hop
    n = len(speech.voiced)
    voiced = np.asarray(speech.voiced, bool)
    jaw = np.asarray(speech.jaw, np.float64)
    phones = [p for p in speech.phones if p.label.upper() != "SIL"]
    if phones:
        _, opening, width, closure = phone_curves(speech.phones, n * hop, hop, prm.lead)
        opening, width, closure = opening[:n], width[:n], closure[:n]
        # loudness modulates emphasis; phones decide shape and closures
        aw = prm.acoustic_weight
        opening = opening * ((1 - aw) + aw * 1.6 * np.clip(jaw, 0, 1))
    else:  # no phones recognised: the acoustic jaw curve alone (no closures from acoustics)
        opening, width, closure = np.clip(jaw, 0, 1) * 0.85, np.zeros(n), np.zeros(n, bool)
    model = prm.model if prm.model is not None else (load_model() if prm.learned else None)
    if model is not None and getattr(speech, "mel", None) is not None and len(speech.mel):
        opening = learned_opening(speech, model)
    else:
        model = None
    if not prm.force_closures:
        closure = np.zeros(n, bool)

    # silence: the mouth rests closed; short pauses inside speech keep a relaxed opening; ramps, no snapping
    hard_silence = np.zeros(n, bool)
    if phones:
        # voice activity fires on breaths and background noise too: where the phones say a long silence, it is one
        t = (np.arange(n) + 0.5) * hop
        for p in speech.phones:
            at_end = p.start <= 0 or p.end >= n * hop - 0.01
            # pauses inside speech shorter than pause_bridge stay natural (speakers often pause open-mouthed);
            # leading and trailing silence always rests
            if p.label.upper() == "SIL" and (at_end or p.end - p.start >= max(prm.pause_bridge, 0.3)):
                lo = p.start + 0.05 if p.start > 0 else -1.0
                hi = p.end - 0.05 if p.end < n * hop - 0.01 else np.inf
                hard_silence |= (t >= lo) & (t < hi)
        voiced = voiced & ~hard_silence
    speaking = binary_dilation(voiced, iterations=3)
    opening_model = opening
    opening = np.where(speaking, opening, 0.0)
    bridge = int(round(prm.pause_bridge / hop))
    if bridge > 0:
        # a pause shorter than pause_bridge is part of the utterance: the mouth does what the model says there
        # (speakers breathe with their mouth open); only longer silences rest closed
        bridged = binary_closing(np.pad(speaking, bridge), np.ones(bridge, bool))[bridge:-bridge] & ~speaking
        bridged &= ~hard_silence
        if model is not None and prm.pause_open <= 0:
            opening = np.where(bridged, opening_model, opening)
        else:
            opening = np.where(bridged, prm.pause_open, opening)
        speaking = speaking | bridged
    if prm.smooth > 0:
        opening = gaussian_filter1d(opening, prm.smooth / hop)
    width = gaussian_filter1d(np.where(speaking, width, 0.0), 3.0)
    opening[closure] = 0.0
    shut = closure | ~speaking

    # sample at frame times: average over each frame's exposure, but a closure anywhere in it wins
    frame_times = np.asarray(frame_times, np.float64)
    idx = np.clip(np.round(frame_times / hop).astype(int), 0, n - 1)
    o = opening[idx]
    w = width[idx]
    shut_f = shut[idx]
    if len(frame_times) > 1:
        span = max(1, int(round(np.median(np.diff(frame_times)) / hop / 2)))
        lo, hi = np.clip(idx - span, 0, n - 1), np.clip(idx + span, 0, n - 1)
        cs = np.concatenate([[0], np.cumsum(opening)])
        o = (cs[hi + 1] - cs[lo]) / (hi + 1 - lo)
        cc = np.concatenate([[0], np.cumsum(closure)])
        has_closure = (cc[hi + 1] - cc[lo]) > 0
        o[has_closure] = 0.0
        shut_f = shut_f | has_closure
    after = frame_times >= n * hop  # past the end of the audio (--length video): the mouth rests
    o[after], w[after], shut_f = 0.0, 0.0, shut_f | after
    o = np.clip(o * strength, 0.0, 1.2)
    w = np.clip(w * strength, -1.0, 1.0)
    return MouthTrack(frame_times, o.astype(np.float32), w.astype(np.float32), shut_f)
