"""Streaming acoustic features for live use: log-mel, loudness and voice activity at a 10 ms hop, computed causally
on audio fed in chunks of any length, with bounded state.

Hop j means what it means in `analyse`: its log-mel window covers samples [160·j, 160·j + 400), its loudness window
is centred at (j + 0.5)·hop, its voice activity comes from the silero window holding the hop's centre. What the offline
analysis normalises over the whole clip is normalised here by running estimates that use the past only:
- log-mel: per-band running mean and variance over all the audio so far (`RunningStandardiser`: the training prior
  counts as `MEL_PRIOR_WEIGHT` seconds of audio, and memory is capped at `MEL_MEMORY`); held-out mouth r 0.548 with the
  2 s exponential memory used before, 0.578 with this, 0.597 standardised over the whole clip (training/train_causal.py);
- loudness: dB below a peak tracker (instant attack, `PEAK_RELEASE` dB/s release) instead of the clip's 99th percentile.
Every value is a fixed function of the audio before a fixed sample, so the output does not depend on chunk sizes
(up to float rounding in batched matrix products, ~1e-15).
"""

from __future__ import annotations

import logging

import numpy as np

from lipdub.core.constants import HOP, SR
from lipdub.speech.acoustic import mel_bank
from lipdub.speech.posteriors import class_posteriors
from lipdub.speech.recognise import frame_posteriors
from lipdub.speech.silero import CONTEXT, FRAME, SPEECH_OFF, SPEECH_ON, SileroStream, hysteresis_step
from lipdub.speech.tokens import TokenAxes, frame_components

log = logging.getLogger(__name__)

WIN = 400  # log-mel window (25 ms)
N_FFT = 512
RMS_WIN = 400  # loudness window (25 ms), centred on the hop
MEL_PRIOR_WEIGHT = 3.0  # s: the training audio's log-mel statistics count as this much audio heard
MEL_MEMORY = 30.0  # s: longer streams forget exponentially beyond this (a change of microphone or room)
PEAK_RELEASE = 3.0  # dB/s: how fast the loudness reference forgets a loud peak
PEAK_FLOOR = -45.0  # dBFS: the reference never drops below this (silence must not become 'loud')
LOUD_RANGE = 50.0  # dB mapped onto loudness 0..1, as offline


class RunningStandardiser:
    """Per-band standardisation by the mean and variance of every row so far, the prior counting as `prior_rows`
    rows: the causal counterpart of standardising over the whole clip. Once `memory_rows` rows are in (prior
    included), each new row gets the weight 1 / memory_rows (an exponential memory of that length)."""

    def __init__(self, mean, std, prior_rows: float, memory_rows: float):
        self.count = float(prior_rows)
        self.memory = float(memory_rows)
        self.mean = np.asarray(mean, np.float64).copy()
        self.square = np.asarray(std, np.float64) ** 2 + self.mean ** 2  # running mean of x²

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.float64)
        k = len(rows)
        grow = int(min(k, max(0.0, np.floor(self.memory - self.count))))  # rows still counted one by one
        means, squares = np.empty_like(rows), np.empty_like(rows)
        if grow:
            counts = (self.count + np.arange(1, grow + 1))[:, None]
            means[:grow] = (self.count * self.mean + np.cumsum(rows[:grow], 0)) / counts
            squares[:grow] = (self.count * self.square + np.cumsum(rows[:grow] ** 2, 0)) / counts
            self.count += grow
            self.mean, self.square = means[grow - 1].copy(), squares[grow - 1].copy()
        if grow < k:
            from scipy.signal import lfilter  # here: importing scipy.signal costs ~0.75 s, and offline dubs never get here

            beta = 1.0 - 1.0 / self.memory
            rest = rows[grow:]
            means[grow:], _ = lfilter([1 - beta], [1, -beta], rest, axis=0, zi=beta * self.mean[None, :])
            squares[grow:], _ = lfilter([1 - beta], [1, -beta], rest ** 2, axis=0, zi=beta * self.square[None, :])
            self.mean, self.square = means[-1].copy(), squares[-1].copy()
            self.count = self.memory
        var = np.maximum(squares - means ** 2, 1e-12)
        return (rows - means) / (np.sqrt(var) + 1e-6)


class StreamingFeatures:
    """Push 16 kHz mono float32 audio; read hop-indexed features as they become final.

    `mel` (hops × 26, running-normalised) and `loudness` are final for hop j once samples [0, 160·j + 400) are in;
    `voiced` for hop j once the silero window holding sample 160·j + 80 is complete. Arrays hold only recent hops:
    `mel_start`/`vad_start` are the absolute hop index of their first row; `trim(keep_from)` drops older rows."""

    def __init__(self, mel_prior: tuple[np.ndarray, np.ndarray] | None = None, use_silero: bool = True):
        self.n_samples = 0
        self._buf = np.zeros(0, np.float32)  # audio from absolute sample `_buf0` on
        self._buf0 = 0
        self.n_mel = 0  # hops with final log-mel/loudness
        self._bank = mel_bank(26, N_FFT, SR).T
        self._window = np.hanning(WIN)
        mean, std = mel_prior if mel_prior is not None else (np.zeros(26), np.ones(26))
        self._norm = RunningStandardiser(mean, std, MEL_PRIOR_WEIGHT * SR / HOP, MEL_MEMORY * SR / HOP)
        self._peak = -np.inf  # running max of (dB + release·hop index)
        self._release = PEAK_RELEASE * HOP / SR
        self.mel = np.zeros((0, 26))
        self.loudness = np.zeros(0)
        self.mel_start = 0
        # voice activity
        self._silero = None
        if use_silero:
            try:
                self._silero = SileroStream()
            except Exception as exc:  # onnxruntime or the model missing: an energy detector instead
                log.warning("silero VAD unavailable (%s); live mode uses an energy detector", exc)
        self._n_windows = 0
        self._vad_state = False
        self._window_probs = np.zeros(0)  # probabilities of windows from `_win_start` on
        self._win_start = 0
        self.n_vad = 0  # hops with final voice activity
        self.voiced = np.zeros(0, bool)
        self.vad_start = 0

    # ------------------------------------------------------------------------------------------------ input
    def push(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, np.float32).reshape(-1)
        self._buf = np.concatenate([self._buf, x])
        self.n_samples += x.size
        self._advance(final=False)

    def finish(self) -> int:
        """End of stream: zero-pad the last windows (as the offline analysis does); returns the number of hops."""
        n_hops = int(np.ceil(self.n_samples / HOP - 1e-9))
        self._advance(final=True, n_hops=n_hops)
        return n_hops

    def _samples(self, start: int, stop: int) -> np.ndarray:
        """Audio [start, stop) in absolute samples, zeros outside what was pushed."""
        out = np.zeros(stop - start, np.float32)
        lo, hi = max(start, self._buf0), min(stop, self._buf0 + self._buf.size)
        if hi > lo:
            out[lo - start:hi - start] = self._buf[lo - self._buf0:hi - self._buf0]
        return out

    def _advance(self, final: bool, n_hops: int = 0) -> None:
        # log-mel and loudness of every hop whose windows are complete (all remaining hops at the end)
        ready = n_hops if final else max(0, (self.n_samples - WIN) // HOP + 1)
        if ready > self.n_mel:
            self._add_mel(self.n_mel, ready)
        windows = -(-self.n_samples // FRAME) if final else self.n_samples // FRAME
        if windows > self._n_windows:
            self._add_windows(self._n_windows, windows)
        # hops whose centre sample lies in a finished window (or all hops at the end)
        vad_ready = n_hops if final else max(0, (self._n_windows * FRAME - HOP // 2 + HOP - 1) // HOP)
        if vad_ready > self.n_vad:
            self._add_vad(self.n_vad, vad_ready)
        # keep the audio still needed: the next log-mel window, loudness context and silero context
        keep = min(self.n_mel * HOP - RMS_WIN, self._n_windows * FRAME - CONTEXT)
        if keep > self._buf0:
            self._buf = self._buf[keep - self._buf0:]
            self._buf0 = keep

    def _add_mel(self, a: int, b: int) -> None:
        starts = np.arange(a, b) * HOP
        audio = self._samples(a * HOP - RMS_WIN, (b - 1) * HOP + WIN)
        base = a * HOP - RMS_WIN
        frames = np.stack([audio[s - base:s - base + WIN] for s in starts])
        spec = np.abs(np.fft.rfft(frames * self._window, N_FFT)) ** 2
        raw = np.log(spec @ self._bank + 1e-8)
        norm = self._norm(raw)
        # loudness: RMS of a window centred on the hop, relative to a decaying peak
        lo = starts + HOP // 2 - RMS_WIN // 2 - base
        around = np.stack([audio[s:s + RMS_WIN] for s in lo]).astype(np.float64)
        rms = np.sqrt(np.einsum("ij,ij->i", around, around) / RMS_WIN)  # per row: the same sums in any chunking
        db = 20 * np.log10(np.maximum(rms, 1e-7))
        hop_idx = np.arange(a, b)
        peak = np.maximum.accumulate(np.concatenate([[self._peak], db + self._release * hop_idx]))[1:]
        self._peak = float(peak[-1])
        top = np.maximum(peak - self._release * hop_idx, PEAK_FLOOR)
        loud = np.clip((db - (top - LOUD_RANGE)) / LOUD_RANGE, 0, 1)
        self.mel = np.concatenate([self.mel, norm])
        self.loudness = np.concatenate([self.loudness, loud])
        self.n_mel = b

    def _add_windows(self, a: int, b: int) -> None:
        audio = self._samples(a * FRAME - CONTEXT, b * FRAME)
        probs = np.zeros(b - a)
        for k in range(b - a):
            window = audio[k * FRAME:(k + 1) * FRAME + CONTEXT]
            if self._silero is not None:
                probs[k] = self._silero(window)
            else:  # energy fallback: -45 dBFS and up counts as speech
                rms = float(np.sqrt(np.mean(window[CONTEXT:].astype(np.float64) ** 2)))
                probs[k] = 1.0 if 20 * np.log10(rms + 1e-9) > -45 else 0.0
        self._window_probs = np.concatenate([self._window_probs, probs])
        self._n_windows = b

    def _add_vad(self, a: int, b: int) -> None:
        win = (np.arange(a, b) * HOP + HOP // 2) // FRAME
        probs = self._window_probs[np.minimum(win, self._n_windows - 1) - self._win_start] if self._n_windows else \
            np.zeros(b - a)
        voiced = np.zeros(b - a, bool)
        for k, p in enumerate(probs):
            self._vad_state = hysteresis_step(self._vad_state, p, SPEECH_ON, SPEECH_OFF)
            voiced[k] = self._vad_state
        self.voiced = np.concatenate([self.voiced, voiced])
        self.n_vad = b
        # windows before the one holding hop b's centre are no longer needed
        first = min(int((b * HOP + HOP // 2) // FRAME), self._n_windows - 1)
        if first > self._win_start:
            self._window_probs = self._window_probs[first - self._win_start:]
            self._win_start = first

    def trim(self, mel_from: int, vad_from: int) -> None:
        """Forget hops before these absolute indices (the caller no longer needs them)."""
        if mel_from > self.mel_start:
            cut = min(mel_from, self.n_mel) - self.mel_start
            self.mel, self.loudness = self.mel[cut:], self.loudness[cut:]
            self.mel_start += cut
        if vad_from > self.vad_start:
            cut = min(vad_from, self.n_vad) - self.vad_start
            self.voiced = self.voiced[cut:]
            self.vad_start += cut


class StreamingPosteriors:
    """What is being said, for live use: hama's per-frame phone probabilities over the last `window` seconds,
    computed afresh each time another `step` of audio is in, summed into classes by `token_class` (token → column).
    Run k covers samples [k·step - window, k·step) (run 0 hears nothing; `finish` adds a last run ending with the
    audio). A hop uses the newest run that had finished when its own features did (`run_for`), so the result depends
    only on the audio, never on chunk sizes or timing.

    A run costs ~55 ms of one core per second of window (hama's native engine, outside the GIL): 0.75 s every 80 ms
    is about half a core. hama is ~70 ms late, so a run's newest frames are its least sure: the opening model learns
    how far to trust them. With token `axes` each run also keeps its frames' token components (speech.tokens:
    hama's whole output projected, as the offline analysis projects a chunk's), in `components[k]`."""

    def __init__(self, token_class: np.ndarray, step: float = 0.08, window: float = 0.75, keep_all: bool = False,
                 axes: TokenAxes | None = None):
        if not (0.01 <= step <= window):
            raise ValueError(f"step {step} must be between 0.01 s and the window {window} s")
        self.token_class = np.asarray(token_class, int)
        self.n_classes = int(self.token_class.max()) + 1
        self.step_samples = int(round(step * SR))
        self.window_samples = int(round(window * SR))
        self.keep_all = keep_all  # training: keep every run (live keeps only those still needed)
        self.n_samples = 0
        self._buf = np.zeros(0, np.float32)  # the newest samples, from absolute sample _buf0 on
        self._buf0 = 0
        self.runs: dict[int, tuple[float, np.ndarray]] = {0: (0.0, np.zeros((0, self.n_classes), np.float32))}
        self.axes = axes
        self.components: dict[int, np.ndarray] = {} if axes is None else {
            0: np.zeros((0, axes.axes.shape[1]), np.float32)}
        self.last_run = 0
        self.finished = False

    def push(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, np.float32).reshape(-1)
        self._buf = np.concatenate([self._buf, x])
        self.n_samples += x.size
        while (self.last_run + 1) * self.step_samples <= self.n_samples:
            self._run(self.last_run + 1, (self.last_run + 1) * self.step_samples)
        drop = max(0, (self.last_run + 1) * self.step_samples - self.window_samples - self._buf0)
        self._buf, self._buf0 = self._buf[drop:], self._buf0 + drop

    def finish(self) -> None:
        """The audio has ended: one last run over its final window (when samples came after the last run)."""
        if not self.finished and self.n_samples > self.last_run * self.step_samples:
            self._run(self.last_run + 1, self.n_samples)
        self.finished = True

    def _run(self, k: int, end: int) -> None:
        start = max(0, end - self.window_samples)
        probs = frame_posteriors(self._buf[start - self._buf0:end - self._buf0], SR)
        self.runs[k] = (start / SR, class_posteriors(probs, self.token_class))  # (first frame's time, frames × classes)
        if self.axes is not None:
            self.components[k] = frame_components(self.axes, probs)
        self.last_run = k

    def run_for(self, ready_sample: np.ndarray) -> np.ndarray:
        """The run each hop uses, given the sample count at which the hop's other features became final."""
        return np.minimum(np.asarray(ready_sample) // self.step_samples, self.last_run)

    def forget_before(self, run: int) -> None:
        if not self.keep_all:
            for k in [k for k in self.runs if k < run]:
                del self.runs[k]
                self.components.pop(k, None)
