"""Audio: decoding any file's sound to float32 samples (load_audio, streamed by audio_blocks), a video's own sound on
its clock (video_audio), and the sound track a written video carries (AudioFile, AudioTrack)."""

from __future__ import annotations

import itertools
import math
import os
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np

from lipdub.core.constants import SR
from lipdub.core.resample import resample_poly
from lipdub.errors import InputError, ParameterError
from lipdub.media.probe import decode_frames, open_input, stream_starts

AAC_SR = 48000


def load_audio(path, sr: int | None = SR, mono: bool = True) -> tuple[np.ndarray, int]:
    """Samples as float32 in [-1, 1] at `sr` (None: the file's rate): (N,) when mono (plain channel mean), else
    (C, N) with C = 1 or 2: more channels (5.1, 7.1, ...) are downmixed to stereo by FFmpeg's matrix."""
    blocks = audio_blocks(path, sr, mono)
    rate, est = next(blocks)
    bufs: list[np.ndarray] = []  # one per channel, grown in place (ndarray.resize: realloc, which remaps the pages
    n = 0  # of a large block): long audio is never held twice
    for a in blocks:
        if not bufs:
            bufs[:] = [np.zeros(max(int(est * rate * 1.01) + 4096, a.shape[1]), np.float32) for _ in a]
        if n + a.shape[1] > bufs[0].size:
            for b in bufs:
                b.resize(max(2 * b.size, n + a.shape[1]), refcheck=False)
        for b, ch in zip(bufs, a):
            b[n:n + a.shape[1]] = ch
        n += a.shape[1]
    if not bufs or n == 0:
        raise InputError(f"{path}: the audio track holds no decodable samples; pass another audio file")
    for b in bufs:
        b.resize(n, refcheck=False)
    return (bufs[0] if mono else np.stack(bufs)), rate


def audio_blocks(path, sr: int | None = SR, mono: bool = True) -> Iterator:
    """load_audio's samples as a stream: first (rate, estimated duration in s), then float32 (1 or C, m) blocks that
    join into exactly what load_audio returns, holding only one decoded frame at a time."""
    path = Path(path)
    if sr is not None and (not isinstance(sr, (int, np.integer)) or sr <= 0):
        raise ParameterError(f"audio sample rate must be a positive integer, got {sr!r}")
    c = open_input(path, "audio")
    try:
        if not c.streams.audio:
            raise InputError(f"{path} has no audio track; pass an audio file or a video with sound")
        s = c.streams.audio[0]
        s.thread_type = "AUTO"
        est = float(s.duration * s.time_base) if s.duration and s.time_base else (c.duration or 0) / 1e6
        frames = decode_frames(c, s)
        first = next(frames, None)
        rate = sr or (first.sample_rate if first is not None else SR)
        yield rate, est
        if first is None:
            return
        # keep the channel layout; downmix to mono ourselves (plain mean, no gain tricks)
        layout = first.layout if mono or first.layout.nb_channels <= 2 else "stereo"
        resampler = setup = None

        def converted(out):
            for r in out:
                a = r.to_ndarray()
                if a.shape[1]:
                    # float files may hold NaN/inf (a broken export): silence and full scale, not poison for the
                    # speech analysis
                    a = np.clip(np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0).astype(
                        np.float32, copy=False)
                    yield a.mean(axis=0, keepdims=True) if mono else a

        channels = 1 if mono else max(1, min(first.layout.nb_channels, 2))
        for f in itertools.chain([first], frames):
            try:
                if (f.format.name, f.layout.name, f.sample_rate) != setup:
                    # first frame, or the stream changed rate/channels midway (concatenated files): a new resampler
                    # to the same output layout and rate
                    if resampler is not None:
                        yield from converted(resampler.resample(None))
                    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
                    setup = (f.format.name, f.layout.name, f.sample_rate)
                yield from converted(resampler.resample(f))
            except av.FFmpegError:
                # a damaged frame that decoded with a layout or rate nothing can convert (found by bench.fuzz):
                # silence of its length, so the sound after it stays in time, and a fresh resampler after it (what
                # the failed one still holds comes first)
                if resampler is not None:
                    try:
                        yield from converted(resampler.resample(None))
                    except av.FFmpegError:
                        pass
                resampler = setup = None
                n = int(round(f.samples * rate / f.sample_rate)) if f.sample_rate > 0 and f.samples > 0 else 0
                if 0 < n <= 10 * rate:
                    yield np.zeros((channels, n), np.float32)
        if resampler is not None:
            yield from converted(resampler.resample(None))
    finally:
        c.close()


def video_audio(path, sr: int = SR) -> np.ndarray | None:
    """A video's own sound as mono float32 at `sr` on the video's clock (sample 0 = the first frame's time: leading
    audio is cut, late audio is preceded by silence); None when the file has no audio track."""
    with open_input(Path(path), "video") as c:
        if not c.streams.audio:
            return None
    samples, sr = load_audio(path, sr)
    v0, a0 = stream_starts(path)
    shift = int(round((a0 - v0) * sr))  # > 0: the audio starts after the first frame
    if shift > 0:
        return np.concatenate([np.zeros(shift, np.float32), samples])
    return samples[-shift:]


class AudioFile:
    """An audio file's samples streamed at AAC_SR as float32 (channels, n) blocks, for muxing a long sound track
    without holding it: `audio_blocks(path, AAC_SR, mono=False)` (mono stays mono, more channels become stereo;
    NaN/inf become silence/full scale) read on demand; reads past the end return zeros."""

    def __init__(self, path):
        self.path = Path(path)
        self._blocks = audio_blocks(self.path, AAC_SR, mono=False)
        next(self._blocks)  # opens the file: InputError here when it has no sound
        self._pending: list[np.ndarray] = []
        self._have = 0
        self._done = False
        self._pull()  # the first block tells mono or stereo
        self.channels = self._pending[0].shape[0] if self._pending else 1

    def _pull(self) -> None:
        x = next(self._blocks, None) if self._blocks is not None else None
        if x is None:
            self.close()
        else:
            self._pending.append(x)
            self._have += x.shape[1]

    def read(self, n: int) -> np.ndarray:
        """The next `n` samples (channels, n), zero-padded past the end of the file."""
        while self._have < n and not self._done:
            self._pull()
        out = np.zeros((self.channels, n), np.float32)
        got = 0
        while got < n and self._pending:
            x = self._pending[0]
            m = min(n - got, x.shape[1])
            out[:, got:got + m] = x[:, :m]
            got += m
            if m == x.shape[1]:
                self._pending.pop(0)
            else:
                self._pending[0] = x[:, m:]
        self._have -= got
        return out

    def close(self) -> None:
        self._done = True
        if self._blocks is not None:
            self._blocks.close()  # closes the file
            self._blocks = None


def prepare_audio(audio, sr):
    """An audio array ((N,) or (C, N) at `sr`) as the writer muxes it: float32 (C, N) at AAC_SR in [-1, 1]."""
    if audio is None:
        return None
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise ParameterError(f"audio must have shape (N,) or (C, N) with 1 or 2 channels, got {np.shape(audio)}")
    if not sr or sr <= 0:
        raise ParameterError(f"audio sample rate must be positive, got {sr!r}")
    x = np.nan_to_num(x)
    if sr != AAC_SR:
        g = math.gcd(int(sr), AAC_SR)
        x = resample_poly(x, AAC_SR // g, int(sr) // g, axis=1).astype(np.float32)
    return np.ascontiguousarray(np.clip(x, -1.0, 1.0))


def muxable_audio(audio, sr):
    """VideoWriter/join_segments `audio`: a file path (streamed by AudioFile) or an array (prepared in memory)."""
    if isinstance(audio, (str, os.PathLike)):
        return AudioFile(audio)
    return prepare_audio(audio, sr)


class AudioTrack:
    """An AAC stream fed in 1024-sample frames up to a given sample, zero-padded past the audio's end (the audio
    lasts exactly as long as the video), from a (channels, samples) array at AAC_SR or an AudioFile. Frames may be
    encoded ahead of the video (encode_ahead): their packets are kept and handed on by packets() when the video
    reaches them, so the stream is muxed in the same order as without."""

    def __init__(self, container, audio):
        self.audio = audio
        self.layout = "mono" if (audio.channels if isinstance(audio, AudioFile) else audio.shape[0]) == 1 \
            else "stereo"
        self.stream = container.add_stream("aac", rate=AAC_SR, layout=self.layout)
        self.stream.bit_rate = 96000 if self.layout == "mono" else 128000
        self.sent = 0  # samples given to the encoder
        self._ahead: deque = deque()  # (samples given when it came out, packet) encoded ahead, not yet handed on

    def _samples(self, m: int) -> np.ndarray:
        if isinstance(self.audio, AudioFile):
            return self.audio.read(m)
        chunk = np.zeros((self.audio.shape[0], m), np.float32)
        have = self.audio[:, self.sent:self.sent + m]
        chunk[:, :have.shape[1]] = have
        return chunk

    def _encode(self, m: int) -> list:
        af = av.AudioFrame.from_ndarray(self._samples(m), format="fltp", layout=self.layout)
        af.sample_rate, af.pts, af.time_base = AAC_SR, self.sent, Fraction(1, AAC_SR)
        packets = self.stream.encode(af)
        self.sent += m
        return packets

    def encode_ahead(self, end: int, stop: Callable[[], bool] | None = None) -> None:
        """Encode the whole frames up to sample `end` now (until `stop()` says to stop), keeping their packets for
        packets(). `end` must not pass the end packets() is finally given: the encoder is fed the same frames as
        without, only earlier."""
        end -= end % 1024
        while self.sent < end and not (stop is not None and stop()):
            packets = self._encode(1024)
            self._ahead.extend((self.sent, p) for p in packets)

    def packets(self, end: int, final: bool):
        """Encoded packets of the samples up to `end` (a whole number of AAC frames unless `final`)."""
        if not final:
            end -= end % 1024
        while self._ahead and (final or self._ahead[0][0] <= end):
            yield self._ahead.popleft()[1]
        while self.sent < end:
            yield from self._encode(min(1024, end - self.sent))
        if final:
            yield from self.stream.encode(None)
            if isinstance(self.audio, AudioFile):
                self.audio.close()
