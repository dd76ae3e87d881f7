"""silero-vad through onnxruntime, for whole files (`window_probs`, used by speech.vad) and for live audio
(`SileroStream`, used by speech.stream): one session factory, the model's window and context sizes, and the
hysteresis that turns its probabilities into speech.

Never `import silero_vad` (it pulls torch): the ONNX files are located through `lipdub.core.assets`.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache

import numpy as np

from lipdub.core.assets import silero_vad_path
from lipdub.core.constants import SR

log = logging.getLogger(__name__)

FRAME = 512  # silero's window at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous window prefixed to each window (silero v5/v6)
SPEECH_ON, SPEECH_OFF = 0.5, 0.35  # hysteresis: speech starts at probability SPEECH_ON, lasts while >= SPEECH_OFF
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


def streaming_session(path=None):
    """The streaming export (one window per call, recurrent state carried) and the shape of its state."""
    session = onnx_session(path or silero_vad_path())
    inputs = {i.name: i for i in session.get_inputs()}
    if not {"input", "state", "sr"} <= set(inputs):
        raise RuntimeError(f"unexpected silero-vad inputs {sorted(inputs)}")
    shape = inputs["state"].shape
    return session, (2, 1, shape[2] if isinstance(shape[2], int) else 128)


class SileroBatch:
    """Per-window speech probabilities of a whole file; prefers the batched 'sequence' export (one ONNX call per
    ~16 s)."""

    def __init__(self) -> None:
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
            self.session, self.state_shape = streaming_session(streaming)

    def probs(self, audio: np.ndarray) -> np.ndarray:
        n = (audio.size + FRAME - 1) // FRAME
        if n == 0:
            return np.zeros(0, np.float32)
        frames = np.zeros((n, FRAME), np.float32)
        frames.reshape(-1)[: audio.size] = audio
        ctx = np.zeros((n, CONTEXT), np.float32)
        ctx[1:] = frames[:-1, -CONTEXT:]
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
def batch_model() -> SileroBatch:
    return SileroBatch()


def window_probs(audio: np.ndarray) -> np.ndarray:
    """Speech probability of each FRAME-sample window of 16 kHz `audio` (the last zero-padded); raises when the
    model cannot run."""
    with _lock:
        return batch_model().probs(audio)


class SileroStream:
    """silero-vad's streaming ONNX model: one window (CONTEXT + FRAME samples) per call, recurrent state carried."""

    def __init__(self) -> None:
        self.session, shape = streaming_session()
        self.state = np.zeros(shape, np.float32)
        self.sr = np.array(SR, np.int64)

    def __call__(self, window: np.ndarray) -> float:
        p, self.state = self.session.run(None, {"input": window[None], "state": self.state, "sr": self.sr})
        return float(np.asarray(p).reshape(-1)[0])


def hysteresis_step(state: bool, p: float, on: float = SPEECH_ON, off: float = SPEECH_OFF) -> bool:
    """Speech starts at probability `on` and lasts until it falls below `off`."""
    return bool(p >= off) if state else bool(p >= on)


def hysteresis(p: np.ndarray, on: float = SPEECH_ON, off: float = SPEECH_OFF) -> np.ndarray:
    out = np.zeros(p.size, bool)
    state = False
    for i, v in enumerate(p):
        state = hysteresis_step(state, v, on, off)
        out[i] = state
    return out
