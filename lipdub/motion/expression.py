"""expression: everything the face does besides articulating — head motion, blinks, brows and emotion.

The motion stage's second half. From the speech (loudness prominence = stressed syllables, pitch) it makes:
- head motion (pitch/yaw/roll in degrees): a small nod on each stressed syllable, a slight lift on high pitch, and a
  slow drift; all smooth (no jitter) and calmer in pauses;
- blinks at a natural rate (one every 2–8 s, 0.25 s each, more likely right after a phrase ends);
- brow raises on the strongest emphases;
- a steady emotion (`--emotion`), as offsets of the face's landmarks in canonical units (eye-corner distance = 1),
  which change mouth corners, cheeks, brows and eyes consistently.

`--region` decides which of these are shown: lips (lips only), lower (lips, jaw, chin: the default for video), face
(adds eyes and brows: blinks, brow raises, cheeks), head (adds head motion; photos and static shots).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipdub.core.constants import SR
from lipdub.core.landmarks import (LEFT_BROW, LEFT_BROW_INNER, LEFT_BROW_OUTER, LEFT_CHEEK, LEFT_LID_SKIN,
                                     LEFT_LOWER_LID, LEFT_UPPER_LID, MOUTH_CORNERS, RIGHT_BROW, RIGHT_BROW_INNER,
                                     RIGHT_BROW_OUTER, RIGHT_CHEEK, RIGHT_LID_SKIN, RIGHT_LOWER_LID, RIGHT_UPPER_LID)


REGIONS = ("lips", "lower", "face", "head")
EMOTIONS = ("neutral", "happy", "sad", "angry", "surprised")


# ----------------------------------------------------------------------------------------------------- emotion

def emotion_offsets(canonical: np.ndarray, emotion: str, strength: float = 1.0) -> np.ndarray:
    """(478, 3) landmark displacement of a steady emotion, canonical units (x right, y down in the image)."""
    off = np.zeros((478, 3))
    if emotion == "neutral" or strength <= 0:
        return off
    c = canonical
    centre_x = 0.5 * (c[MOUTH_CORNERS[0], 0] + c[MOUTH_CORNERS[1], 0])

    def corners(lift: float, spread: float) -> None:
        # corners and the lips/cheek near them move together, fading with distance from each corner
        for k in MOUTH_CORNERS:
            d = np.linalg.norm(c[:, :2] - c[k, :2], axis=1)
            w = np.exp(-(d / 0.13) ** 2)
            w[w < 0.02] = 0.0  # nothing far from the corners moves (the skull stays put)
            side = np.sign(c[k, 0] - centre_x)
            off[:, 1] -= lift * w
            off[:, 0] += side * spread * w

    def move(idx, dx=0.0, dy=0.0, inward=0.0):
        for i in idx:
            side = np.sign(c[i, 0] - c[168, 0])
            off[i, 0] += dx - side * inward
            off[i, 1] += dy

    s = float(strength)
    if emotion == "happy":
        corners(0.045 * s, 0.035 * s)
        move(RIGHT_CHEEK + LEFT_CHEEK, dy=-0.025 * s)
        move(RIGHT_LOWER_LID + LEFT_LOWER_LID, dy=-0.012 * s)  # a smile narrows the eyes from below
        move(RIGHT_BROW + LEFT_BROW, dy=-0.006 * s)
    elif emotion == "sad":
        corners(-0.035 * s, -0.01 * s)
        move(RIGHT_BROW_INNER + LEFT_BROW_INNER, dy=-0.035 * s, inward=0.006 * s)
        move(RIGHT_BROW_OUTER + LEFT_BROW_OUTER, dy=0.012 * s)
        move(RIGHT_UPPER_LID + LEFT_UPPER_LID, dy=0.008 * s)
    elif emotion == "angry":
        corners(-0.012 * s, -0.015 * s)
        move(RIGHT_BROW_INNER + LEFT_BROW_INNER, dy=0.03 * s, inward=0.018 * s)
        move(RIGHT_BROW_OUTER + LEFT_BROW_OUTER, dy=0.005 * s)
        move(RIGHT_UPPER_LID + LEFT_UPPER_LID, dy=0.006 * s)
        move(RIGHT_LOWER_LID + LEFT_LOWER_LID, dy=-0.006 * s)
    elif emotion == "surprised":
        move(RIGHT_BROW + LEFT_BROW, dy=-0.05 * s)
        move(RIGHT_LID_SKIN + LEFT_LID_SKIN, dy=-0.025 * s)
        move(RIGHT_UPPER_LID + LEFT_UPPER_LID, dy=-0.014 * s)
        corners(0.0, -0.012 * s)
    return off


def mouth_bias(emotion: str, strength: float) -> tuple[float, float]:
    """(opening scale, opening floor) an emotion puts on the articulation: anger presses the lips, surprise parts them."""
    s = float(strength)
    return {"angry": (1 - 0.15 * s, 0.0), "surprised": (1 + 0.1 * s, 0.12 * s), "sad": (1 - 0.1 * s, 0.0)}.get(
        emotion, (1.0, 0.0))


# ----------------------------------------------------------------------------------------------------- speech cues

def pitch_track(samples: np.ndarray, sr: int = SR, hop: float = 0.01) -> np.ndarray:
    """Fundamental frequency per hop (Hz, 0 where unvoiced): normalised autocorrelation of 40 ms frames, 70–400 Hz."""
    x = np.asarray(samples, np.float32)
    n = int(np.ceil(len(x) / (hop * sr)))
    win = int(0.04 * sr)
    if n == 0 or len(x) < win:
        return np.zeros(n, np.float32)
    step = int(hop * sr)
    pad = np.concatenate([np.zeros(win // 2, np.float32), x, np.zeros(win, np.float32)])
    idx = np.arange(n)[:, None] * step + np.arange(win)[None, :]
    out = np.zeros(n, np.float32)
    lo, hi = int(sr / 400), int(sr / 70)
    for s0 in range(0, n, 2000):  # chunks: bounded memory on long audio
        fr = pad[idx[s0:s0 + 2000]]
        fr = fr - fr.mean(1, keepdims=True)
        spec = np.fft.rfft(fr * np.hanning(win), 2 * win)
        ac = np.fft.irfft(np.abs(spec) ** 2)[:, : hi + 1]
        energy = ac[:, :1] + 1e-9
        nac = ac / energy
        lag = lo + np.argmax(nac[:, lo:hi + 1], axis=1)
        peak = nac[np.arange(len(lag)), lag]
        f0 = sr / lag
        out[s0:s0 + 2000] = np.where((peak > 0.45) & (energy[:, 0] > 1e-4 * win), f0, 0.0)
    return out


def _prominence_peaks(loud: np.ndarray, voiced: np.ndarray, hop: float) -> list[tuple[int, float]]:
    """Stressed-syllable candidates: local loudness maxima above their surroundings, at least 0.25 s apart."""
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import find_peaks

    sm = gaussian_filter1d(np.asarray(loud, np.float64) * voiced, 3)
    base = gaussian_filter1d(sm, 60)
    peaks, props = find_peaks(sm, distance=max(1, int(0.25 / hop)), prominence=0.08)
    if not len(peaks):
        return []
    prom = props["prominences"]
    top = np.percentile(prom, 90) if len(prom) > 2 else prom.max()
    strength = np.clip(prom / max(top, 1e-6), 0, 1.2) * (sm[peaks] > base[peaks])
    return [(int(p), float(s)) for p, s in zip(peaks, strength) if s > 0.2]


# ----------------------------------------------------------------------------------------------------- face motion

@dataclass
class FaceMotion:
    times: np.ndarray  # (T,) output frame times
    head: np.ndarray  # (T, 3) degrees: pitch (+ = chin down), yaw (+ = turn to image right), roll
    blink: np.ndarray  # (T,) 0 open .. 1 closed
    brow: np.ndarray  # (T,) 0 .. 1 raise on emphasis
    emotion: str = "neutral"
    emotion_strength: float = 1.0


def _bump(t: np.ndarray, centre: float, rise: float, fall: float) -> np.ndarray:
    """Smooth 0→1→0 pulse: raised cosine up over `rise` s before `centre`, down over `fall` after."""
    up = np.clip((t - (centre - rise)) / rise, 0, 1)
    down = np.clip(((centre + fall) - t) / fall, 0, 1)
    return np.where(t < centre, 0.5 - 0.5 * np.cos(np.pi * up), 0.5 - 0.5 * np.cos(np.pi * down))


def face_motion(speech, samples: np.ndarray | None, times: np.ndarray, emotion: str = "neutral",
                emotion_strength: float = 1.0, seed: int = 0, head_degrees: float = 1.0) -> FaceMotion:
    """Head motion, blinks and brow raises for output frames at `times`, driven by `speech` (a SpeechTrack) and the
    16 kHz samples (for pitch). Deterministic for a given seed."""
    from scipy.ndimage import gaussian_filter1d

    rng = np.random.default_rng(seed)
    t = np.asarray(times, np.float64)
    T = len(t)
    hop = speech.hop
    n = len(speech.voiced)
    voiced = np.asarray(speech.voiced, bool).astype(np.float64)
    loud = np.asarray(speech.loudness, np.float64)
    idx = np.clip(np.round(t / hop).astype(int), 0, max(n - 1, 0))
    talking = gaussian_filter1d(voiced, 50)[idx] if n else np.zeros(T)  # ~0.5 s activity envelope

    # nods: head dips on stressed syllables (a little before the vowel peak), returns more slowly
    nod = np.zeros(T)
    brow = np.zeros(T)
    peaks = _prominence_peaks(loud, voiced > 0, hop) if n else []
    for p, s in peaks:
        c = p * hop
        nod += 2.2 * s * _bump(t, c + 0.02, 0.18, 0.35)
        if s > 0.85:  # the strongest emphases raise the brows too
            brow = np.maximum(brow, s * _bump(t, c, 0.15, 0.45))

    # pitch: a higher voice lifts the chin a little (relative to the speaker's own median)
    lift = np.zeros(T)
    if samples is not None and len(samples):
        f0 = pitch_track(samples, SR, hop)
        ok = f0 > 0
        if ok.sum() > 20:
            semis = np.zeros_like(f0, dtype=np.float64)
            semis[ok] = 12 * np.log2(f0[ok] / np.median(f0[ok]))
            w = gaussian_filter1d(ok.astype(np.float64), 15) + 1e-3
            semis = gaussian_filter1d(np.clip(semis, -8, 8) * ok, 15) / w
            lift = np.clip(semis, -6, 6)[np.clip(idx, 0, len(semis) - 1)] * 0.25

    # slow drift: a few low-frequency sinusoids with random phases per axis (smooth, never jittery)
    def drift(amplitude: float) -> np.ndarray:
        out = np.zeros(T)
        for f in (0.05, 0.11, 0.23):
            out += np.sin(2 * np.pi * (f * rng.uniform(0.8, 1.25) * t + rng.uniform(0, 1))) / 3
        return amplitude * out

    activity = 0.45 + 0.55 * np.clip(talking * 1.5, 0, 1)  # calmer in pauses
    pitch = (nod - lift) * activity + drift(1.2)
    yaw = drift(2.0) * activity + 0.6 * gaussian_filter1d(nod, 5) * rng.choice([-1, 1])
    roll = drift(1.0)
    head = np.stack([pitch, yaw, roll], 1) * head_degrees
    if T > 2:
        fps = 1 / max(np.median(np.diff(t)), 1e-3)
        head = gaussian_filter1d(head, max(0.5, 0.04 * fps), axis=0)
        brow = gaussian_filter1d(brow, max(0.5, 0.04 * fps))

    # blinks: snapped towards phrase ends
    blink = np.zeros(T)
    if T:
        ends = np.array([p.start for p in getattr(speech, "phones", [])
                         if p.label.upper() == "SIL" and p.end - p.start > 0.3 and p.start > 0])
        for at in blink_onsets(rng, float(t[-1]), ends):
            blink = np.maximum(blink, blink_shape(t, at))
    return FaceMotion(t, head.astype(np.float32), blink.astype(np.float32), brow.astype(np.float32), emotion,
                      float(emotion_strength))


def blink_onsets(rng, until: float, ends: np.ndarray | None = None, start: float | None = None):
    """Blink start times up to `until`: every 2–8 s (gamma-distributed gaps, mean ~4 s), the first within 1–3 s
    (or after `start`); each snaps to a phrase end in `ends` within 0.8 s. A generator, so a live stream can draw
    its blinks as it goes."""
    at = rng.uniform(1.0, 3.0) if start is None else start
    while at < until:
        if ends is not None and len(ends):
            near = ends[np.abs(ends - at) < 0.8]
            if len(near):
                at = float(near[0]) + 0.05
        yield at
        at += float(np.clip(rng.gamma(6.0, 4.0 / 6.0), 2.0, 8.0))


def blink_shape(t: np.ndarray, at: float) -> np.ndarray:
    """Eye closure 0..1 at times `t` of a blink starting at `at`: ~80 ms closing, ~70 ms shut, ~150 ms opening."""
    shut = np.maximum(_bump(t, at + 0.08, 0.08, 0.15), ((t >= at + 0.08) & (t <= at + 0.15)).astype(float))
    return np.where(t > at + 0.15, _bump(t, at + 0.15, 0.08, 0.15), shut)


def frame_offsets(motion: FaceMotion, k: int, canonical: np.ndarray, emotion: np.ndarray | None = None,
                  blinks: bool = True) -> np.ndarray:
    """(478, 3) canonical displacement of output frame k: emotion + blink + brow raise."""
    off = np.zeros((478, 3)) if emotion is None else emotion.copy()
    c = canonical + off
    b = float(motion.blink[k]) if blinks else 0.0
    if b > 0:
        for upper, lower, skin in ((RIGHT_UPPER_LID, RIGHT_LOWER_LID, RIGHT_LID_SKIN),
                                   (LEFT_UPPER_LID, LEFT_LOWER_LID, LEFT_LID_SKIN)):
            # the upper lid comes down to just above the lower lid; the lid skin above stretches after it
            gap = c[lower, 1] - c[upper, 1]
            off[upper, 1] += b * 0.88 * gap  # lids meet a little below the middle, as real ones do
            off[lower, 1] -= b * 0.12 * gap
            off[skin, 1] += b * 0.45 * float(np.mean(gap))
    r = float(motion.brow[k])
    if r > 0:
        off[RIGHT_BROW + LEFT_BROW, 1] -= 0.03 * r
        off[RIGHT_LID_SKIN + LEFT_LID_SKIN, 1] -= 0.012 * r
    return off


def rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """Image-space rotation (x right, y down, z away from the camera) for head angles in degrees."""
    p, y, r = np.radians([pitch, yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ ry @ rx
