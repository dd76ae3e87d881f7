"""Voice activity at a 10 ms hop: silero-vad's ONNX model through onnxruntime, an energy detector as fallback.

Never `import silero_vad` (it pulls torch): the ONNX files are located through `lipdub.models`.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache

import numpy as np

from lipdub.speech.acoustic import frame_rms

log = logging.getLogger(__name__)

SR = 16000
_FRAME = 512  # silero's window at 16 kHz (32 ms)
_CONTEXT = 64  # samples of the previous window prefixed to each window (silero v5/v6)
_lock = threading.Lock()


def onnx_session(path):
    """A quiet, single-threaded ONNX Runtime CPU session: the VAD is tiny, and more threads would only contend
    with face tracking for the two cores."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class _Silero:
    """Per-window speech probabilities; prefers the batched 'sequence' export (one ONNX call per ~16 s)."""

    def __init__(self) -> None:
        from lipdub.core.assets import silero_vad_path

        streaming = silero_vad_path()
        sequence = streaming.with_name("silero_vad_16k_sequence.onnx")
        self.sequence = False
        if sequence.is_file():
            try:
                self.session = onnx_session(sequence)
                names = {i.name for i in self.session.get_inputs()}
                self.sequence = {"input", "h", "c"} <= names
            except Exception as exc:  # a broken optional file: use the streaming model
                log.debug("silero sequence model unusable: %s", exc)
        if not self.sequence:
            self.session = onnx_session(streaming)
            inputs = {i.name: i for i in self.session.get_inputs()}
            if not {"input", "state", "sr"} <= set(inputs):
                raise RuntimeError(f"unexpected silero-vad inputs {sorted(inputs)}")
            shape = inputs["state"].shape
            self.state_shape = (2, 1, shape[2] if isinstance(shape[2], int) else 128)

    def probs(self, audio: np.ndarray) -> np.ndarray:
        n = (audio.size + _FRAME - 1) // _FRAME
        if n == 0:
            return np.zeros(0, np.float32)
        frames = np.zeros((n, _FRAME), np.float32)
        frames.reshape(-1)[: audio.size] = audio
        ctx = np.zeros((n, _CONTEXT), np.float32)
        ctx[1:] = frames[:-1, -_CONTEXT:]
        windows = np.concatenate([ctx, frames], axis=1)
        out = []
        if self.sequence:
            h = np.zeros((1, 1, 128), np.float32)
            c = np.zeros((1, 1, 128), np.float32)
            for i in range(0, n, 512):
                p, h, c = self.session.run(["speech_probs", "hn", "cn"], {"input": windows[i : i + 512], "h": h, "c": c})
                out.append(np.asarray(p, np.float32).reshape(-1))
        else:
            state = np.zeros(self.state_shape, np.float32)
            sr = np.array(SR, dtype=np.int64)
            for i in range(n):
                p, state = self.session.run(None, {"input": windows[i : i + 1], "state": state, "sr": sr})
                out.append(np.asarray(p, np.float32).reshape(-1))
        return np.concatenate(out)


@lru_cache(maxsize=1)
def _silero() -> _Silero:
    return _Silero()


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


def _hysteresis_step(state: bool, p: float, on: float, off: float) -> bool:
    """Speech starts at probability `on` and lasts until it falls below `off`."""
    return bool(p >= off) if state else bool(p >= on)


def _hysteresis(p: np.ndarray, on: float, off: float) -> np.ndarray:
    out = np.zeros(p.size, bool)
    state = False
    for i, v in enumerate(p):
        state = _hysteresis_step(state, v, on, off)
        out[i] = state
    return out


def speech_probability(audio: np.ndarray, hop: float = 0.01) -> np.ndarray | None:
    """Silero speech probability resampled to `hop` frames, or None when the model cannot run."""
    n = int(np.ceil(audio.size / SR / hop - 1e-9))
    try:
        with _lock:
            p = _silero().probs(audio)
    except Exception as exc:  # onnxruntime missing/broken: caller falls back to energy
        log.warning("silero VAD unavailable (%s); using an energy detector", exc)
        return None
    centres = (np.arange(p.size) + 0.5) * _FRAME / SR
    t = (np.arange(n) + 0.5) * hop
    return np.interp(t, centres, p).astype(np.float32) if p.size else np.zeros(n, np.float32)


def energy_voiced(audio: np.ndarray, hop: float = 0.01) -> np.ndarray:
    """Fallback detector: frame energy within 35 dB of the clip's loud frames and above -55 dBFS."""
    rms = frame_rms(audio, SR, hop)
    if rms.size == 0:
        return np.zeros(0, bool)
    db = 20 * np.log10(rms + 1e-9)
    ref = np.percentile(db, 95)
    return (db > ref - 35) & (db > -55)


def detect_voice(audio: np.ndarray, hop: float = 0.01, max_gap: float = 0.15, pad: float = 0.03) -> np.ndarray:
    """(N,) bool speech activity at `hop` for 16 kHz mono float audio; gaps shorter than `max_gap` s are closed."""
    audio = np.asarray(audio, np.float32)
    p = speech_probability(audio, hop)
    if p is not None:
        mask = _hysteresis(p, 0.5, 0.35)
    else:
        mask = energy_voiced(audio, hop)
    mask = drop_short(mask, int(round(0.06 / hop)))
    mask = _dilate(mask, int(round(pad / hop)))
    return close_gaps(mask, int(round(max_gap / hop)))
