"""Acoustic mouth cues for any language: frame RMS, loudness, F1 by LPC, and the jaw-opening estimate.

jaw = RMS × (0.3 + 0.7·normalised F1): loud, open vowels (high F1) open the jaw most. Frames are `hop` apart and
frame i describes the time span [i·hop, (i+1)·hop) (analysis windows are centred at (i + 0.5)·hop).
"""

from __future__ import annotations

import numpy as np

from lipdub.core.constants import HOP_SECONDS, SR
from lipdub.core.resample import resample_poly


def n_frames(n_samples: int, sr: int = SR, hop: float = HOP_SECONDS) -> int:
    return int(np.ceil(n_samples / sr / hop - 1e-9))


def frame_rms(audio: np.ndarray, sr: int = SR, hop: float = HOP_SECONDS, win: float = 0.025) -> np.ndarray:
    """RMS of `win`-second windows centred on each frame, via a running sum (no frame matrix)."""
    n = n_frames(audio.size, sr, hop)
    w = int(round(win * sr))
    sq = np.concatenate([[0.0], np.cumsum(np.asarray(audio, np.float64) ** 2)])
    centres = ((np.arange(n) + 0.5) * hop * sr).astype(np.int64)
    lo = np.clip(centres - w // 2, 0, audio.size)
    hi = np.clip(centres - w // 2 + w, 0, audio.size)
    return np.sqrt((sq[hi] - sq[lo]) / w).astype(np.float32)


def loudness(rms: np.ndarray, range_db: float = 50.0) -> np.ndarray:
    """RMS in dB mapped to [0, 1]: 1 at the clip's 99th percentile, 0 at `range_db` below it."""
    if rms.size == 0:
        return np.zeros(0, np.float32)
    db = 20 * np.log10(np.maximum(rms, 1e-7))
    top = float(np.percentile(db, 99))
    return np.clip((db - (top - range_db)) / range_db, 0, 1).astype(np.float32)


def _lpc(frames: np.ndarray, order: int) -> np.ndarray:
    """LPC polynomials (n, order+1) of windowed frames by Levinson–Durbin, vectorised over frames."""
    n, w = frames.shape
    r = np.stack([np.einsum("ij,ij->i", frames[:, : w - k], frames[:, k:]) for k in range(order + 1)], axis=1)
    r[:, 0] = r[:, 0] * (1 + 1e-6) + 1e-10  # white-noise floor keeps silent frames stable
    a = np.zeros((n, order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, order + 1):
        acc = r[:, i] + np.einsum("ij,ij->i", a[:, 1:i], r[:, i - 1 : 0 : -1]) if i > 1 else r[:, i].copy()
        k = -acc / err
        a_prev = a.copy()
        a[:, i] = k
        if i > 1:
            a[:, 1:i] = a_prev[:, 1:i] + k[:, None] * a_prev[:, i - 1 : 0 : -1]
        err = err * (1 - k**2)
        err = np.maximum(err, 1e-12)
    return a


def first_formant(audio: np.ndarray, sr: int = SR, hop: float = HOP_SECONDS, win: float = 0.025) -> np.ndarray:
    """F1 in Hz per frame (NaN where no plausible formant), from LPC roots at 10 kHz, order 12."""
    n = n_frames(audio.size, sr, hop)
    if n == 0:
        return np.zeros(0, np.float32)
    fs = 10000
    x = resample_poly(np.asarray(audio, np.float64), fs, sr) if sr != fs else np.asarray(audio, np.float64)
    x = np.convolve([1.0, -0.97], x)[:x.size]  # pre-emphasis (what lfilter does with this FIR filter)
    w = int(round(win * fs))
    centres = ((np.arange(n) + 0.5) * hop * fs).astype(np.int64)
    padded = np.pad(x, (w, w))
    idx = centres[:, None] - w // 2 + w + np.arange(w)[None, :]
    frames = padded[idx] * np.hamming(w)[None, :]
    order = 12
    a = _lpc(frames, order)
    comp = np.zeros((n, order, order))
    comp[:, 0, :] = -a[:, 1:]
    comp[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    finite = np.isfinite(comp).all(axis=(1, 2))
    comp[~finite] = 0.0
    roots = np.linalg.eigvals(comp)
    freq = np.angle(roots) * fs / (2 * np.pi)
    bw = -np.log(np.maximum(np.abs(roots), 1e-9)) * fs / np.pi
    ok = (roots.imag > 0) & (freq > 200) & (freq < 1200) & (bw < 500) & finite[:, None]
    f1 = np.where(ok, freq, np.inf).min(axis=1)
    f1[~np.isfinite(f1)] = np.nan
    return f1.astype(np.float32)


def smooth(x: np.ndarray, frames: int = 2) -> np.ndarray:
    """Gaussian smoothing with sigma `frames` (edges padded with the edge value)."""
    if frames <= 0 or x.size < 2:
        return x
    r = 3 * frames
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / frames) ** 2)
    k /= k.sum()
    return np.convolve(np.pad(x, r, mode="edge"), k, mode="valid").astype(x.dtype)


def jaw_opening(audio: np.ndarray, voiced: np.ndarray, sr: int = SR, hop: float = HOP_SECONDS,
                rms: np.ndarray | None = None) -> np.ndarray:
    """(N,) float32 jaw opening in [0, 1]; 0 outside `voiced`."""
    n = voiced.size
    if rms is None:
        rms = frame_rms(audio, sr, hop)
    rms = rms[:n]
    jaw = np.zeros(n, np.float32)
    if n == 0 or not voiced.any():
        return jaw
    f1 = first_formant(audio, sr, hop)[:n]
    good = voiced & np.isfinite(f1)
    if good.sum() >= 3:
        lo, hi = np.percentile(f1[good], [5, 95])
        hi = max(hi, lo + 300.0)
        idx = np.arange(n)
        f1 = np.interp(idx, idx[np.isfinite(f1)], f1[np.isfinite(f1)]) if np.isfinite(f1).any() else np.full(n, lo)
        f1n = np.clip((f1 - lo) / (hi - lo), 0, 1)
    else:
        f1n = np.full(n, 0.5)
    raw = rms * (0.3 + 0.7 * f1n)
    ref = float(np.percentile(raw[voiced], 95))
    if ref <= 0:
        return jaw
    jaw = np.clip(raw / ref, 0, 1).astype(np.float32)
    jaw = smooth(jaw, 2) * voiced
    return np.clip(jaw, 0, 1).astype(np.float32)


def mel_bank(n_mels: int = 26, n_fft: int = 512, sr: int = SR) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular mel filters from 60 Hz to 7.6 kHz."""
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(mel(60), mel(7600), n_mels + 2) / 2595) - 1)
    bins = np.floor((n_fft + 1) * edges / sr).astype(int)
    bank = np.zeros((n_mels, n_fft // 2 + 1))
    for i in range(n_mels):
        a, b, c = bins[i], bins[i + 1], bins[i + 2]
        bank[i, a:b] = np.linspace(0, 1, b - a, endpoint=False)
        bank[i, b:c] = np.linspace(1, 0, c - b, endpoint=False)
    return bank


def log_mel(audio: np.ndarray, sr: int = SR, hop: float = HOP_SECONDS, win: float = 0.025, n_mels: int = 26,
            standardise: bool = True) -> np.ndarray:
    """(N, n_mels) float32 log-mel energies, standardised per band over the whole utterance (so the learned
    mouth model sees the spectrum's shape over time, not the microphone's level or colour)."""
    h, w, n_fft = int(round(hop * sr)), int(round(win * sr)), 512
    n = n_frames(len(audio), sr, hop)
    if n == 0:
        return np.zeros((0, n_mels), np.float32)
    padded = np.pad(np.asarray(audio, np.float32), (0, w + h * n))
    frames = np.lib.stride_tricks.sliding_window_view(padded, w)[::h][:n]
    spec = np.abs(np.fft.rfft(frames * np.hanning(w), n_fft)) ** 2
    out = np.log(spec @ mel_bank(n_mels, n_fft, sr).T + 1e-8)
    if standardise:
        out = (out - out.mean(0)) / (out.std(0) + 1e-6)
    return out.astype(np.float32)
