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

from lipdub.errors import ParameterError

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
MODEL_PATH = Path(__file__).resolve().parents[1] / "assets" / "motion_model.npz"
MEL_CONTEXT = (-12, -8, -4, 0, 4, 8, 12)  # hops
FEATURE_LABELS = sorted(_V)


def dominance_features(phones, n: int, hop: float, lead: float = 0.02, start: int = 0, stop: int | None = None
                       ) -> np.ndarray:
    """(stop - start, len(FEATURE_LABELS)): each phone class's share of the dominance-blended mouth at hops
    [start, stop) of n (default: all); any range gives the same numbers as those rows of the whole."""
    stop = n if stop is None else min(stop, n)
    m = max(0, stop - start)
    t = (np.arange(start, start + m) + 0.5) * hop
    feats = np.zeros((m, len(FEATURE_LABELS)))
    den = np.full(m, 1e-6)
    column = {label: i for i, label in enumerate(FEATURE_LABELS)}
    # a phone's weight exp(-dist / reach) is exactly 0.0 in float64 beyond 746 reaches (67 s at the widest): each
    # phone only touches the hops within that, the same numbers at a fraction of the work on long audio
    span = 746 * 0.09 + hop
    for ph in phones:
        centre = 0.5 * (ph.start + ph.end) - lead
        half = max(0.5 * (ph.end - ph.start), 0.02)
        lo, hi = max(0, int((centre - half - span) / hop)), min(n, int((centre + half + span) / hop) + 1)
        lo, hi = max(lo, start) - start, min(hi, stop) - start
        if hi <= lo:
            continue
        label = ph.label.upper().rstrip("012")
        _, _, dom = viseme_target(label)
        tw = t[lo:hi]
        dist = np.abs(tw - centre) - half
        tight = label in BILABIALS
        reach = np.where(tw < centre, 0.035 if tight else 0.09, 0.025 if tight else 0.06)
        d = dom * np.exp(-np.maximum(dist, 0.0) / reach)
        if label in column:
            feats[lo:hi, column[label]] += d
        den[lo:hi] += d
    return feats / den[:, None]


def model_features(speech, start: int = 0, stop: int | None = None) -> np.ndarray:
    """(N, F) features of the learned opening model at hops [start, stop) of `speech` (default: all)."""
    n = len(speech.voiced)
    stop = n if stop is None else min(stop, n)
    mel = np.asarray(speech.mel, np.float32)[:n]
    idx = np.arange(start, stop)

    def mel_at(rows: np.ndarray) -> np.ndarray:  # rows past the analysed spectrum are silence (zeros)
        rows = np.clip(rows, 0, n - 1)
        out = np.zeros((len(rows), mel.shape[1]), np.float32)
        inside = rows < len(mel)
        out[inside] = mel[rows[inside]]
        return out

    context = [mel_at(idx + off) for off in MEL_CONTEXT]
    acoustic = np.stack([speech.jaw[start:stop], speech.loudness[start:stop],
                         np.asarray(speech.voiced[start:stop], np.float32)], 1)
    dominance = dominance_features(speech.phones, n, speech.hop, start=start, stop=stop)
    return np.concatenate([dominance] + context + [acoustic], 1)


class OpeningModel:
    """Audio features → mouth opening (fraction of the speaker's wide-open mouth): an average of small tanh MLPs
    (plain numpy; a single ridge regression when the file holds only `weights`). Nets with a 2-D output layer
    return one column per output (the causal model's phone-class logits)."""

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
        if a["w2"].ndim == 3:  # several outputs (class logits): (N, K)
            return (np.einsum("enh,ehk->enk", hidden, a["w2"]) + a["b2"][:, None]).mean(0)
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


FEATURE_BLOCK = 8 * 4096  # hops per block of features (a multiple of predict's chunk: the same arithmetic)


def learned_opening(speech, model: OpeningModel) -> np.ndarray:
    """The model's opening at every hop, its features built a block at a time: an hour of speech has 360,000 hops,
    and all their features at once took ~1 GB (the phone dominance alone ~250 MB)."""
    n = len(speech.voiced)
    blocks = [model.predict(model_features(speech, a, a + FEATURE_BLOCK)) for a in range(0, n, FEATURE_BLOCK)]
    return np.clip(np.concatenate(blocks) if blocks else np.zeros(0), 0.0, 1.2)


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
    # s: the mouth parts this long before the voice starts (speakers part their lips and breathe in first). Held out
    # (bench/all_pairs.py --heldout, 62 pairs): r 0.600 without, 0.632 with 0.2 s; motion alone 0.549 -> 0.583
    # (0.603 at 0.3 s, gained mostly on GRID speakers, who open wide before speaking: 0.2 s is kept)
    onset_lead: float = 0.2
    # a long phone silence where voice activity covers more than this share is speech the phones missed (man_kitchen:
    # the mouth is open 0.74 of its widest there): the learned model drives it. Held out motion alone 0.583 -> 0.610
    missed_speech: float = 0.3
    # s: voice activity runs on past the last phone and starts before the first (hysteresis, padding, gap closing);
    # in a silence that opens or closes the audio, that much next to the recognised speech is not counted as missed
    # speech (jfk: applause after the last word kept the mouth open 0.7 of its widest to the end)
    edge_margin: float = 0.15
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
    jaw_opening = np.clip(jaw, 0, 1) * 0.85  # the acoustic jaw alone, where no phones are known
    phones = [p for p in speech.phones if p.label.upper() != "SIL"]
    if phones:
        _, opening, width, closure = phone_curves(speech.phones, n * hop, hop, prm.lead)
        opening, width, closure = opening[:n], width[:n], closure[:n]
        # loudness modulates emphasis; phones decide shape and closures
        aw = prm.acoustic_weight
        opening = opening * ((1 - aw) + aw * 1.6 * np.clip(jaw, 0, 1))
    else:  # no phones recognised: the acoustic jaw curve alone (no closures from acoustics)
        opening, width, closure = jaw_opening, np.zeros(n), np.zeros(n, bool)
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
        # voice activity fires on breaths and background noise too: where the phones say a long silence, it is one,
        # unless the voice fills much of it: then the recogniser missed speech (laughter, mumbling, another language)
        t = (np.arange(n) + 0.5) * hop
        for p in speech.phones:
            at_end = p.start <= 0 or p.end >= n * hop - 0.01
            # pauses inside speech shorter than pause_bridge stay natural (speakers often pause open-mouthed);
            # leading and trailing silence always rests
            if p.label.upper() == "SIL" and (at_end or p.end - p.start >= max(prm.pause_bridge, 0.3)):
                lo = p.start + 0.05 if p.start > 0 else -1.0
                hi = p.end - 0.05 if p.end < n * hop - 0.01 else np.inf
                span = (t >= lo) & (t < hi)
                # whether the voice fills it is judged away from the recognised speech: in a silence that opens or
                # closes the audio, voice activity's overhang next to that speech is no missed speech
                edge = max(prm.edge_margin, 0.05) if at_end else 0.05
                judged = (t >= (p.start + edge if p.start > 0 else -1.0)) & \
                    (t < (p.end - edge if p.end < n * hop - 0.01 else np.inf))
                if not judged.any():
                    judged = span
                if span.any() and voiced[judged].mean() > prm.missed_speech:
                    if model is None:  # no phones there to drive the rules: the acoustic jaw does
                        opening = np.where(span, jaw_opening, opening)
                    continue
                hard_silence |= span
        voiced = voiced & ~hard_silence
    speaking = binary_dilation(voiced, iterations=3)
    opening_model = opening
    lead_hops = int(round(prm.onset_lead / hop))
    if lead_hops > 0:
        # the mouth does what the model says from onset_lead before each onset of speech (a ramp from closed over
        # that time scored lower: 0.562 vs 0.583 held out)
        for a in np.flatnonzero(speaking[1:] & ~speaking[:-1]) + 1:
            speaking[max(0, a - lead_hops):a] = True
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
        o = exposure_mean(opening, idx, span)
        has_closure = exposure_mean(closure.astype(np.float64), idx, span) > 0
        o[has_closure] = 0.0
        shut_f = shut_f | has_closure
    after = frame_times >= n * hop  # past the end of the audio (--length video): the mouth rests
    o[after], w[after], shut_f = 0.0, 0.0, shut_f | after
    o = np.clip(o * strength, 0.0, 1.2)
    w = np.clip(w * strength, -1.0, 1.0)
    return MouthTrack(frame_times, o.astype(np.float32), w.astype(np.float32), shut_f)


def exposure_mean(values: np.ndarray, centres: np.ndarray, span: int) -> np.ndarray:
    """Mean of `values` (hops) over [centre - span, centre + span] for each centre, clipped to the array: what a
    frame exposed over that time shows."""
    last = len(values) - 1
    lo, hi = np.clip(centres - span, 0, last), np.clip(centres + span, 0, last)
    cs = np.concatenate([[0.0], np.cumsum(values)])
    return (cs[hi + 1] - cs[lo]) / (hi + 1 - lo)


# ------------------------------------------------------------------------------------------ causal (live) motion
# The offline track needs the whole utterance (phones recognised over chunks, clip-wide normalisation, an 0.8 s pause
# bridge, symmetric smoothing). The causal track uses streaming features only (speech/stream.py): running-normalised
# log-mel and loudness at taps reaching at most `lookahead` into the future. A phone-class classifier (trained on the
# phones the offline analysis finds) turns them into class posteriors; an opening MLP (trained on the filmed mouths)
# reads the same taps, the posteriors of the last 60 ms, voice activity and hama's phone posteriors recomputed on the
# last 0.75 s every 80 ms (speech.stream.StreamingPosteriors). Width comes from the classifier's posteriors, bilabial
# closures from hama's streamed ones (the classifier's without them). Both are trained by bench/train_motion.py
# --causal, one pair per look-ahead in CAUSAL_LOOKAHEADS.
CAUSAL_MODEL_PATH = Path(__file__).resolve().parents[1] / "assets" / "motion_model_causal.npz"
CAUSAL_PAST = (-24, -16, -10, -6, -3, 0)  # hops of log-mel context before the frame
CAUSAL_FUTURE = (3, 6, 10, 15)  # hops after it, used as far as the look-ahead allows
CAUSAL_LOOKAHEADS = (0, 5, 10, 15)  # hops: one trained model set per look-ahead
POSTERIOR_TAPS = (-6, -3, 0)  # hops: the classifier's own look-ahead already reaches the limit, so only the past
PHONE_CLASSES = (("SIL",), ("P", "B", "M"), ("F", "V"), ("TH", "DH"), ("T", "D", "N", "L"), ("S", "Z"),
                 ("K", "G", "NG", "HH"), ("CH", "JH", "SH", "ZH"), ("R", "W", "ER"), ("Y", "IY", "IH", "EY"),
                 ("AA", "AE", "AH", "AO", "AW", "AY", "EH"), ("OW", "OY", "UH", "UW"))
BILABIAL_CLASS = 1
CLASS_WIDTH = np.array([np.mean([_V[p][1] for p in group]) for group in PHONE_CLASSES])  # viseme table's width
MAX_LOOKAHEAD = 0.15  # s
_HOP = 0.01
_MEL_WINDOW = 0.025  # s: a hop's log-mel window reaches this far past its start
_VAD_MARGIN = 2  # hops: the silero window holding a hop's centre ends up to 37 ms later, i.e. 2 hops before the mel


def phone_class(label: str) -> int:
    """Index into PHONE_CLASSES (unknown labels count as t/d/n/l, the commonest consonants)."""
    label = label.upper().rstrip("012")
    for k, group in enumerate(PHONE_CLASSES):
        if label in group:
            return k
    return 4


def causal_taps(look_hops: int) -> tuple[int, ...]:
    return CAUSAL_PAST + tuple(f for f in CAUSAL_FUTURE if f <= look_hops)


def causal_features(mel: np.ndarray, loudness: np.ndarray, hops: np.ndarray, taps: tuple[int, ...], first: int,
                    last: int | None) -> np.ndarray:
    """(len(hops), len(taps) · 27) classifier inputs: log-mel and loudness at hop + tap, taps clamped to [0, last]
    (`last` None: every tap exists). `mel`/`loudness` rows start at absolute hop `first`."""
    idx = hops[:, None] + np.asarray(taps)[None, :]
    idx = np.maximum(idx, 0) if last is None else np.clip(idx, 0, last)
    idx = idx - first
    return np.concatenate([mel[idx].reshape(len(hops), -1), loudness[idx]], 1)


def posterior_features(post: np.ndarray, hops: np.ndarray, first: int) -> np.ndarray:
    """(len(hops), len(POSTERIOR_TAPS) · classes): class posteriors at hop + tap (clamped at hop 0); `post` rows
    start at absolute hop `first`."""
    idx = np.maximum(hops[:, None] + np.asarray(POSTERIOR_TAPS)[None, :], 0) - first
    return post[idx].reshape(len(hops), -1)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


@dataclass
class CausalModel:
    """Per look-ahead (hops): the phone-class classifier (logits) and the opening model; plus the log-mel prior
    (mean, std of raw log-mel over the training audio) that starts the running normalisation."""

    phones: dict
    opening: dict
    mel_prior: tuple[np.ndarray, np.ndarray]
    closure_threshold: float = 0.35  # log-mel p/b/m posterior above which the lips shut (held-out F1 best of
    # 0.2..0.8); only for models without streamed phones, the others shut on hama's (STREAMED_CLOSURE)
    hangover: float = 0.3  # s: after voice activity ends the mouth follows the model this long, then rests (held-out
    # r the same for 0.15, 0.3 and 0.5 s, lower for 1 s: the shortest wait that does not cost accuracy)
    phone_step: float = 0.0  # s: > 0: the opening model also reads hama's streamed phone posteriors
    phone_window: float = 0.0  # s: audio each streamed recognition hears

    def save(self, path) -> None:
        """float16 weights: a few hundred KB for all look-aheads, predictions change by < 1e-3."""
        arrays = {"mel_mean": self.mel_prior[0], "mel_std": self.mel_prior[1],
                  "closure_threshold": np.array(self.closure_threshold), "hangover": np.array(self.hangover),
                  "phone_step": np.array(self.phone_step), "phone_window": np.array(self.phone_window)}
        for head in ("phones", "opening"):
            for look, model in getattr(self, head).items():
                arrays.update({f"L{look}__{head}__{k}": v.astype(np.float16) for k, v in model.arrays.items()})
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path) -> "CausalModel":
        heads: dict = {"phones": {}, "opening": {}}
        with np.load(path) as z:
            for key in z.files:
                if key.count("__") == 2:
                    look, head, name = key.split("__")
                    heads[head].setdefault(int(look[1:]), {})[name] = z[key]
            prior = (z["mel_mean"].astype(np.float64), z["mel_std"].astype(np.float64))
            threshold, hangover = float(z["closure_threshold"]), float(z["hangover"])
            step, window = (float(z[k]) if k in z.files else 0.0 for k in ("phone_step", "phone_window"))
        models = {h: {look: OpeningModel(a) for look, a in v.items()} for h, v in heads.items()}
        if not models["opening"] or models["opening"].keys() != models["phones"].keys():
            raise ValueError("opening and phone models differ in look-aheads")
        return cls(models["phones"], models["opening"], prior, threshold, hangover, step, window)

    def streaming_phones(self, keep_all: bool = False):
        """The streamed phone posteriors this model's opening heads were trained with, or None."""
        if self.phone_step <= 0:
            return None
        from lipdub.speech.stream import StreamingPosteriors

        return StreamingPosteriors(hama_token_classes(), self.phone_step, self.phone_window, keep_all)


@lru_cache(maxsize=1)
def hama_token_classes() -> np.ndarray:
    """Column of each hama output token in streamed posteriors: its phone class, or one extra column for blank,
    word boundary and the other non-phones."""
    from lipdub.speech.recognise import token_phones

    return np.array([phone_class(p) if p else len(PHONE_CLASSES) for p in token_phones()])


@lru_cache(maxsize=4)
def _load_causal(path: str) -> CausalModel:
    try:
        return CausalModel.load(path)
    except (OSError, KeyError, ValueError) as exc:
        from lipdub.errors import DependencyError

        raise DependencyError(f"the causal motion model {path} is missing or unreadable ({exc}); "
                              "reinstall lipdub or run bench/train_motion.py --causal") from exc


def load_causal_model() -> CausalModel:
    """The shipped causal model, or the one named by $LIPDUB_CAUSAL_MODEL (held-out evaluation, experiments)."""
    import os

    return _load_causal(os.environ.get("LIPDUB_CAUSAL_MODEL") or str(CAUSAL_MODEL_PATH))


class _CausalHops:
    """The causal mouth at 10 ms hops: hop i is final once audio up to i·hop + lookahead + 25 ms is in."""

    def __init__(self, lookahead: float, model: CausalModel | None = None, use_silero: bool = True):
        from lipdub.speech.stream import StreamingFeatures

        if not np.isfinite(lookahead) or lookahead < 0 or lookahead > MAX_LOOKAHEAD + 1e-9:
            raise ParameterError(f"lookahead must be between 0 and {MAX_LOOKAHEAD} s, got {lookahead}")
        self.model = model or load_causal_model()
        self.look = int(round(lookahead / _HOP))
        self.model_look = max(k for k in self.model.opening if k <= self.look)
        self.taps = causal_taps(self.model_look)
        self.vad_look = self.model_look - _VAD_MARGIN  # the voice features are trained at the model's look-ahead
        self.hangover = int(round(self.model.hangover / _HOP))
        self.features = StreamingFeatures(self.model.mel_prior, use_silero)
        self.phones = self.model.streaming_phones()
        self.next_hop = 0
        self._post = np.zeros((0, len(PHONE_CLASSES)))  # posteriors of the last hops, from absolute hop _post0 on
        self._post0 = 0
        self._next_vad = 0  # first voice-activity hop not yet folded into _last_voiced
        self._last_voiced = -(10 ** 9)
        self._smoothed = 0.0  # the last hop's smoothed opening (LIVE_SMOOTHING)
        self.n_hops: int | None = None  # known at the end of the stream

    def push(self, samples: np.ndarray):
        self.features.push(samples)
        if self.phones is not None:
            self.phones.push(samples)
        return self._commit()

    def finish(self):
        self.n_hops = self.features.finish()
        if self.phones is not None:
            self.phones.finish()
        return self._commit()

    def _commit(self):
        """(first hop, opening, width, closed) of the hops that became final."""
        f = self.features
        if self.n_hops is None:
            stop = min(f.n_mel - self.look, f.n_vad - self.vad_look)
        else:
            stop = self.n_hops
        hops = np.arange(self.next_hop, max(stop, self.next_hop))
        first = self.next_hop
        if hops.size == 0:
            return first, np.zeros(0), np.zeros(0), np.zeros(0, bool)
        last = None if self.n_hops is None else self.n_hops - 1
        # voice activity: the last voiced hop up to hop + vad_look (what the stream knows at that moment)
        vad_hops = np.arange(self._next_vad, min(hops[-1] + self.vad_look, f.n_vad - 1) + 1)
        voiced_at = np.where(f.voiced[vad_hops - f.vad_start], vad_hops, -(10 ** 9))
        running = np.maximum.accumulate(np.concatenate([[self._last_voiced], voiced_at]))
        ask = np.minimum(hops + self.vad_look, f.n_vad - 1) - self._next_vad + 1  # index into running
        last_voiced = np.where(ask >= 0, running[np.maximum(ask, 0)], self._last_voiced)
        voiced_now = (last_voiced == np.minimum(hops + self.vad_look, f.n_vad - 1)) & (hops + self.vad_look >= 0)
        speaking = (last_voiced >= hops - self.hangover) & (hops + self.vad_look >= 0)
        if vad_hops.size:
            self._last_voiced = int(running[-1])
            self._next_vad = int(vad_hops[-1]) + 1
        x = causal_features(f.mel, f.loudness, hops, self.taps, f.mel_start, last)
        post = softmax(self.model.phones[self.model_look].predict(x))
        self._post = np.concatenate([self._post, post])
        x = np.concatenate([x, posterior_features(self._post, hops, self._post0)], 1)
        if self.phones is not None:
            streamed = streamed_posteriors(self.phones, hops, self.model_look)
            x = np.concatenate([x, voice_features(voiced_now, last_voiced, hops), streamed], 1)
            self.phones.forget_before(int(self.phones.run_for(ready_sample(hops[-1] + 1, self.model_look))))
            bilabial = streamed_bilabial(streamed)
            closure = bilabial > STREAMED_CLOSURE
        else:
            bilabial = None
            closure = post[:, BILABIAL_CLASS] > self.model.closure_threshold
        opening = np.clip(self.model.opening[self.model_look].predict(x), 0.0, 1.2)
        if bilabial is not None:  # the lips narrow as the p/b/m evidence builds, before they shut
            opening = opening * (1.0 - np.clip(bilabial / STREAMED_CLOSURE, 0.0, 1.0))
        from scipy.signal import lfilter

        a = LIVE_SMOOTHING
        opening, _ = lfilter([1.0 - a], [1.0, -a], opening, zi=[a * self._smoothed])
        self._smoothed = float(opening[-1])
        width = np.clip(post @ CLASS_WIDTH, -1.0, 1.0)
        closed = (closure & speaking) | ~speaking
        opening = np.where(closed, 0.0, opening)
        width = np.where(speaking, width, 0.0)
        self.next_hop = int(hops[-1]) + 1
        f.trim(self.next_hop + min(self.taps), self._next_vad)
        keep = max(0, self.next_hop + min(POSTERIOR_TAPS) - self._post0)
        self._post, self._post0 = self._post[keep:], self._post0 + keep
        return first, opening, width, closed


def ready_sample(hop, look: int):
    """Audio samples needed before hop `hop` is final at `look` hops of look-ahead (its log-mel window's end)."""
    return 160 * (np.asarray(hop) + look) + 400


STREAMED_TAPS = (-0.08, -0.04, 0.0, 0.04, 0.08, 0.12)  # s around a hop's centre where hama's posteriors are read


def streamed_posteriors(phones, hops: np.ndarray, look: int) -> np.ndarray:
    """(len(hops), len(STREAMED_TAPS) · (classes + 1)) hama's class posteriors (smoothed over ±1 frame: CTC is peaky)
    around ascending `hops`, each from the newest run of `phones` (a speech.stream.StreamingPosteriors) that was
    complete when the hop's own features were; per tap one more column says whether that run reached it. What the
    live stream knows of the phones around the hop at that moment, and the same numbers in training."""
    from lipdub.speech.recognise import POSTERIOR_FRAME

    width = phones.n_classes + 1
    out = np.zeros((len(hops), len(STREAMED_TAPS) * width))
    run = phones.run_for(ready_sample(hops, look))
    for r in np.unique(run):
        sel = np.flatnonzero(run == r)
        t0, probs = phones.runs[int(r)]
        if not len(probs):
            continue
        smooth = probs.astype(np.float64)
        smooth[1:] += probs[:-1]
        smooth[:-1] += probs[1:]
        smooth /= 3.0
        centre = (hops[sel] + 0.5) * _HOP
        for j, tap in enumerate(STREAMED_TAPS):
            frame = np.round((centre + tap - t0) / POSTERIOR_FRAME - 0.5).astype(int)
            ok = (frame >= 0) & (frame < len(smooth))
            out[sel[ok], j * width:j * width + phones.n_classes] = smooth[frame[ok]]
            out[sel, (j + 1) * width - 1] = ok
    return out


# Live p/b/m closures from hama's streamed posteriors rather than the small log-mel classifier, which also fires on
# n/ng and shut open mouths for one frame. Held out at 0.10 s over the 14 filmed clips (bench/motion_eval.py
# --heldout): the offline analysis' p/b/m with the live mouth shut within 60 ms 47 -> 105 of 127, one-frame shuts
# 63 -> 9, r 0.479 -> 0.483; the filmed opening where the live mouth is shut stays about 0.3 of its widest; the five
# held-out live cross-dubs (bench/live.py) 0.484 -> 0.527.
CLOSURE_TAPS = (0.0, 0.04, 0.08)  # s of STREAMED_TAPS where the evidence is read (hama is ~70 ms late)
STREAMED_CLOSURE = 0.15  # p/b/m posterior (the most at those taps) above which the lips shut
# The live opening per hop is also scaled by 1 - posterior / STREAMED_CLOSURE (lips narrowing into a p/b/m) and
# smoothed by a one-pole filter (coefficient per 10 ms hop, ~10 ms of delay): the hop-by-hop opening moved twice as
# jerkily as filmed mouths (mean |second difference| per frame 0.133 against 0.064; offline 0.063). Held out at
# 0.10 s: r 0.483 -> 0.496, jitter 0.133 -> 0.102 (the narrowing alone: 0.491, jitter unchanged; stronger filters
# 0.6/0.7/0.8: r 0.498/0.500/0.502, jitter 0.095/0.085/0.073, but the live mouth, already ~1.4 frames late at its
# best lag, falls further behind the sound: 1.57/1.79/1.93 frames).
LIVE_SMOOTHING = 0.5


def streamed_bilabial(streamed: np.ndarray) -> np.ndarray:
    """(N,) the p/b/m class posterior at CLOSURE_TAPS (the most of them) in streamed_posteriors output."""
    width = streamed.shape[1] // len(STREAMED_TAPS)
    return streamed[:, [STREAMED_TAPS.index(t) * width + BILABIAL_CLASS for t in CLOSURE_TAPS]].max(1)


def voice_features(voiced_now: np.ndarray, last_voiced: np.ndarray, hops: np.ndarray) -> np.ndarray:
    """(len(hops), 2): voice activity at the newest hop it is known for, and seconds since the last voiced hop
    (clipped to [-0.2, 1.5]): lets the opening model learn how speakers' mouths settle in pauses."""
    since = np.clip((hops - np.asarray(last_voiced, np.float64)) * _HOP, -0.2, 1.5)
    return np.stack([np.asarray(voiced_now, np.float64), since], 1)


def last_voiced_hops(voiced: np.ndarray, upto: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a whole stream's voice activity: (the last voiced hop <= each `upto` clamped to the stream, or -1e9;
    whether that hop is voiced), as the live engine knows them."""
    voiced = np.asarray(voiced, bool)
    if not voiced.size:
        return np.full(len(upto), -(10 ** 9)), np.zeros(len(upto), bool)
    upto = np.asarray(upto)
    at = np.clip(upto, 0, voiced.size - 1)
    last = np.maximum.accumulate(np.where(voiced, np.arange(voiced.size), -(10 ** 9)))
    return np.where(upto >= 0, last[at], -(10 ** 9)), voiced[at] & (upto >= 0)


def causal_opening_inputs(x: np.ndarray, post: np.ndarray, voiced: np.ndarray | None, phones, look: int
                          ) -> np.ndarray:
    """The opening model's inputs at every hop of a whole stream, as the live engine builds them hop by hop:
    classifier inputs `x` (causal_features), class posteriors `post`, and with `phones` (StreamingPosteriors, all
    runs kept) voice activity `voiced` and the streamed phone posteriors. Training uses this (tests check the
    engine against it)."""
    hops = np.arange(len(x))
    parts = [x, posterior_features(post, hops, 0)]
    if phones is not None:
        last_voiced, voiced_now = last_voiced_hops(voiced, hops + look - _VAD_MARGIN)
        parts += [voice_features(voiced_now, last_voiced, hops), streamed_posteriors(phones, hops, look)]
    return np.concatenate(parts, 1)


class StreamingMotion:
    """Live mouth motion: feed 16 kHz mono audio in chunks of any length, get each video frame's mouth once its
    look-ahead has arrived. Frame k shows audio time k / fps; frames come out in order, each exactly once.

        sm = StreamingMotion(fps=25.0, lookahead=0.1)
        for chunk in microphone:            # e.g. 320 samples (20 ms)
            track = sm.feed(chunk)          # MouthTrack of the frames committed now (often 0 or 1)
        track = sm.finish()                 # the frames up to the end of the audio
    """

    def __init__(self, fps: float = 25.0, lookahead: float = 0.1, strength: float = 1.0,
                 model: CausalModel | None = None):
        if not np.isfinite(fps) or fps <= 0 or fps > 1000:
            raise ParameterError(f"fps must be a positive frame rate, got {fps}")
        if not np.isfinite(strength) or strength < 0 or strength > 3:
            raise ParameterError(f"--strength must be between 0 and 3 (1 = natural), got {strength}")
        self.fps = float(fps)
        self.strength = float(strength)
        self._hops = _CausalHops(lookahead, model)
        self._next_frame = 0
        # hop outputs not yet consumed by a frame, from absolute hop `_start` on
        self._start = 0
        self._opening, self._width, self._closed = np.zeros(0), np.zeros(0), np.zeros(0, bool)
        self._done = False

    @property
    def latency(self) -> float:
        """Seconds between the newest audio sample and the time shown by the newest committed frame (worst case):
        the look-ahead, the log-mel window and, when frame times fall between 10 ms hops, the rounding to a hop."""
        step = 1.0 / self.fps / _HOP
        rounding = 0.0 if abs(step - round(step)) < 1e-9 else 0.5 * _HOP
        return self._hops.look * _HOP + _MEL_WINDOW + rounding

    def feed(self, samples) -> MouthTrack:
        if self._done:
            raise ParameterError("StreamingMotion.feed after finish(): start a new StreamingMotion for a new stream")
        return self._frames(*self._hops.push(_mono_float(samples)), end=None)

    def finish(self) -> MouthTrack:
        if self._done:
            return self._frames(0, np.zeros(0), np.zeros(0), np.zeros(0, bool), end=0.0)
        self._done = True
        got = self._hops.finish()
        return self._frames(*got, end=self._hops.features.n_samples / 16000)

    def _frames(self, first, opening, width, closed, end: float | None) -> MouthTrack:
        if opening.size:
            self._opening = np.concatenate([self._opening, opening])
            self._width = np.concatenate([self._width, width])
            self._closed = np.concatenate([self._closed, closed])
        available = self._start + self._opening.size  # hops [._start, available) are final
        if end is None:
            k_stop = self._next_frame
            while _frame_hop(k_stop, self.fps) < available:
                k_stop += 1
        else:  # every frame that shows a time before the end of the audio
            k_stop = max(self._next_frame, int(np.ceil(end * self.fps - 1e-9)))
        ks = np.arange(self._next_frame, k_stop)
        hop = np.minimum(_frame_hop(ks, self.fps), available - 1) - self._start
        track = _track(ks / self.fps, self._opening[hop], self._width[hop], self._closed[hop], self.strength)
        self._next_frame = k_stop
        if ks.size:  # drop hops no later frame will use
            keep = min(int(_frame_hop(k_stop, self.fps)), available) - self._start
            self._opening, self._width, self._closed = self._opening[keep:], self._width[keep:], self._closed[keep:]
            self._start += keep
        return track


def _mono_float(samples) -> np.ndarray:
    """1-D float32 samples in [-1, 1]; integer PCM is scaled by its full range."""
    a = np.asarray(samples)
    if a.ndim != 1:
        raise ParameterError(f"causal motion needs mono 16 kHz samples (1-D), got shape {a.shape}")
    if np.issubdtype(a.dtype, np.integer):
        return (a.astype(np.float32) / float(max(abs(np.iinfo(a.dtype).min), np.iinfo(a.dtype).max)))
    return np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def _frame_hop(k, fps: float):
    return np.round(np.asarray(k) / fps / _HOP).astype(np.int64)


def _track(times, opening, width, closed, strength: float) -> MouthTrack:
    return MouthTrack(np.asarray(times, np.float64), np.clip(opening * strength, 0.0, 1.2).astype(np.float32),
                      np.clip(width * strength, -1.0, 1.0).astype(np.float32), np.asarray(closed, bool))


def causal_hops(audio16k: np.ndarray, lookahead: float = 0.1, model: CausalModel | None = None,
                use_silero: bool = True):
    """The causal mouth at every 10 ms hop of a whole file: (opening, width, closed), as the stream commits them."""
    engine = _CausalHops(lookahead, model, use_silero)
    parts = [engine.push(np.asarray(audio16k, np.float32)), engine.finish()]
    return tuple(np.concatenate([p[i] for p in parts]) for i in (1, 2, 3))


def causal_mouth_track(audio16k: np.ndarray, frame_times: np.ndarray, lookahead: float = 0.1, strength: float = 1.0,
                       model: CausalModel | None = None) -> MouthTrack:
    """The mouth StreamingMotion commits, for a whole file at arbitrary frame times (after the audio: at rest)."""
    if not np.isfinite(strength) or strength < 0 or strength > 3:
        raise ParameterError(f"--strength must be between 0 and 3 (1 = natural), got {strength}")
    audio16k = _mono_float(audio16k)
    frame_times = np.asarray(frame_times, np.float64)
    opening, width, closed = causal_hops(audio16k, lookahead, model)
    if opening.size == 0:
        return _track(frame_times, np.zeros(frame_times.size), np.zeros(frame_times.size),
                      np.ones(frame_times.size, bool), strength)
    hop = np.clip(np.round(frame_times / _HOP).astype(np.int64), 0, opening.size - 1)
    after = frame_times >= audio16k.size / 16000  # past the end of the audio: the mouth rests
    return _track(frame_times, np.where(after, 0.0, opening[hop]), np.where(after, 0.0, width[hop]),
                  closed[hop] | after, strength)
