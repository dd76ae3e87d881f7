"""Voice activity at a 10 ms hop: silero-vad's ONNX model through onnxruntime, an energy detector as fallback.

The model itself (sessions, windows, hysteresis) is speech.silero, shared with the live features (speech.stream).
"""

from __future__ import annotations

import logging

import numpy as np

from lipdub.core.constants import HOP_SECONDS, SR
from lipdub.speech.acoustic import frame_rms
from lipdub.speech.silero import FRAME, SPEECH_OFF, SPEECH_ON, hysteresis, window_probs

log = logging.getLogger(__name__)


def close_gaps(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """Set runs of False shorter than `max_gap` frames that lie between two True runs to True."""
    mask = mask.copy()
    for start, end in segments(~mask):
        if start > 0 and end < mask.size and end - start < max_gap:
            mask[start:end] = True
    return mask


def drop_short(mask: np.ndarray, min_len: int) -> np.ndarray:
    mask = mask.copy()
    for start, end in segments(mask):
        if end - start < min_len:
            mask[start:end] = False
    return mask


def segments(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of a boolean array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(m[1:] != m[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def _dilate(mask: np.ndarray, n: int) -> np.ndarray:
    if n <= 0 or not mask.any():
        return mask
    k = np.ones(2 * n + 1)
    return np.convolve(mask.astype(float), k, mode="same") > 0


def speech_probability(audio: np.ndarray, hop: float = HOP_SECONDS) -> np.ndarray | None:
    """Silero speech probability resampled to `hop` frames, or None when the model cannot run."""
    n = int(np.ceil(audio.size / SR / hop - 1e-9))
    try:
        p = window_probs(audio)
    except Exception as exc:  # onnxruntime missing/broken: caller falls back to energy
        log.warning("silero VAD unavailable (%s); using an energy detector", exc)
        return None
    centres = (np.arange(p.size) + 0.5) * FRAME / SR
    t = (np.arange(n) + 0.5) * hop
    return np.interp(t, centres, p).astype(np.float32) if p.size else np.zeros(n, np.float32)


def energy_voiced(audio: np.ndarray, hop: float = HOP_SECONDS) -> np.ndarray:
    """Fallback detector: frame energy within 35 dB of the clip's loud frames and above -55 dBFS."""
    rms = frame_rms(audio, SR, hop)
    if rms.size == 0:
        return np.zeros(0, bool)
    db = 20 * np.log10(rms + 1e-9)
    ref = np.percentile(db, 95)
    return (db > ref - 35) & (db > -55)


def detect_voice(audio: np.ndarray, hop: float = HOP_SECONDS, max_gap: float = 0.15, pad: float = 0.03) -> np.ndarray:
    """(N,) bool speech activity at `hop` for 16 kHz mono float audio; gaps shorter than `max_gap` s are closed."""
    audio = np.asarray(audio, np.float32)
    p = speech_probability(audio, hop)
    if p is not None:
        mask = hysteresis(p, SPEECH_ON, SPEECH_OFF)
    else:
        mask = energy_voiced(audio, hop)
    mask = drop_short(mask, int(round(0.06 / hop)))
    mask = _dilate(mask, int(round(pad / hop)))
    return close_gaps(mask, int(round(max_gap / hop)))


PHRASE_PAUSE = 0.3  # s of silence that separates two phrases (shorter ones are breaths inside a phrase)
PHRASE_MIN = 0.2  # s: shorter bursts of voice (a click, a cough) are no phrase


def phrases(audio: np.ndarray, pause: float = PHRASE_PAUSE, shortest: float = PHRASE_MIN) -> list[tuple[float, float]]:
    """The phrases of 16 kHz mono speech: (start, end) in seconds of its voice activity, pauses shorter than `pause`
    closed, bursts shorter than `shortest` left out."""
    mask = detect_voice(audio, HOP_SECONDS, max_gap=pause)
    mask = drop_short(mask, int(round(shortest / HOP_SECONDS)))
    return [(a * HOP_SECONDS, b * HOP_SECONDS) for a, b in segments(mask)]
