"""Causal (live) motion: 16 kHz audio in chunks → each video frame's mouth once its look-ahead has arrived.

The offline track needs the whole utterance (phones recognised over chunks, clip-wide normalisation, an 0.8 s pause
bridge, symmetric smoothing). The causal track uses streaming features only (speech/stream.py): running-normalised
log-mel and loudness at taps reaching at most `lookahead` into the future. A phone-class classifier (trained on the
phones the offline analysis finds) turns them into class posteriors; an opening MLP (trained on the filmed mouths)
reads the same taps, the posteriors of the last 60 ms, voice activity and hama's phone posteriors recomputed on the
last 0.75 s every 80 ms (speech.stream.StreamingPosteriors), and when its file says so (`component_taps`) the token
components of the same recognitions (hama's whole output projected, speech.tokens). Width comes from the classifier's posteriors, bilabial
closures from hama's streamed ones (the classifier's without them). Both are trained by `make train-causal`
(training/train_causal.py), one pair per look-ahead in CAUSAL_LOOKAHEADS.
"""

from __future__ import annotations

import numpy as np

from lipdub.core.constants import HOP_SECONDS, SR
from lipdub.errors import ParameterError
from lipdub.motion.features import POSTERIOR_TAPS, STREAMED_TAPS, VAD_MARGIN, causal_features, causal_taps, \
    posterior_features, ready_sample, streamed_components, streamed_posteriors, voice_features
from lipdub.motion.models import CausalModel, load_causal_model, softmax
from lipdub.motion.offline import MouthTrack, check_strength
from lipdub.motion.visemes import BILABIAL_CLASS, CLASS_WIDTH, PHONE_CLASSES
from lipdub.speech.stream import StreamingFeatures

MAX_LOOKAHEAD = 0.15  # s
_MEL_WINDOW = 0.025  # s: a hop's log-mel window reaches this far past its start


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
REST_RAMP = 0.2  # s: offline's MotionParams.rest_ramp, the speaker's rest fading into the speech


def streamed_bilabial(streamed: np.ndarray) -> np.ndarray:
    """(N,) the p/b/m class posterior at CLOSURE_TAPS (the most of them) in streamed_posteriors output."""
    width = streamed.shape[1] // len(STREAMED_TAPS)
    return streamed[:, [STREAMED_TAPS.index(t) * width + BILABIAL_CLASS for t in CLOSURE_TAPS]].max(1)


class _CausalHops:
    """The causal mouth at 10 ms hops: hop i is final once audio up to i·hop + lookahead + 25 ms is in."""

    def __init__(self, lookahead: float, model: CausalModel | None = None, use_silero: bool = True):
        if not np.isfinite(lookahead) or lookahead < 0 or lookahead > MAX_LOOKAHEAD + 1e-9:
            raise ParameterError(f"lookahead must be between 0 and {MAX_LOOKAHEAD} s, got {lookahead}")
        self.model = model or load_causal_model()
        self.look = int(round(lookahead / HOP_SECONDS))
        self.model_look = max(k for k in self.model.opening if k <= self.look)
        self.taps = causal_taps(self.model_look)
        self.vad_look = self.model_look - VAD_MARGIN  # the voice features are trained at the model's look-ahead
        self.hangover = int(round(self.model.hangover / HOP_SECONDS))
        self.features = StreamingFeatures(self.model.mel_prior, use_silero)
        self.phones = self.model.streaming_phones()
        self.next_hop = 0
        self._post = np.zeros((0, len(PHONE_CLASSES)))  # posteriors of the last hops, from absolute hop _post0 on
        self._post0 = 0
        self._next_vad = 0  # first voice-activity hop not yet folded into _last_voiced
        self._last_voiced = -(10 ** 9)
        self._smoothed = 0.0  # the last hop's smoothed opening (LIVE_SMOOTHING)
        self._speech_start: int | None = None  # first hop of the speech going on at the last committed hop
        self.rest_ramp = int(round(REST_RAMP / HOP_SECONDS))
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
            return first, np.zeros(0), np.zeros(0), np.zeros(0, bool), np.zeros(0)
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
            if self.model.component_taps:
                x = np.concatenate([x, streamed_components(self.phones, hops, self.model_look,
                                                           self.model.component_taps)], 1)
            self.phones.forget_before(int(self.phones.run_for(ready_sample(hops[-1] + 1, self.model_look))))
            bilabial = streamed_bilabial(streamed)
            closure = bilabial > STREAMED_CLOSURE
        else:
            bilabial = None
            closure = post[:, BILABIAL_CLASS] > self.model.closure_threshold
        head = self.model.opening[self.model_look]
        opening = head.bounded(head.predict(x))  # its curve too, as the offline motion (learned_opening)
        if bilabial is not None:  # the lips narrow as the p/b/m evidence builds, before they shut
            opening = opening * (1.0 - np.clip(bilabial / STREAMED_CLOSURE, 0.0, 1.0))
        from scipy.signal import lfilter  # here: importing scipy.signal costs ~0.75 s, and offline dubs never get here

        a = LIVE_SMOOTHING
        opening, _ = lfilter([1.0 - a], [1.0, -a], opening, zi=[a * self._smoothed])
        self._smoothed = float(opening[-1])
        width = np.clip(post @ CLASS_WIDTH, -1.0, 1.0)
        closed = (closure & speaking) | ~speaking
        opening = np.where(closed, 0.0, opening)
        width = np.where(speaking, width, 0.0)
        rest = self._rest(hops, speaking, last_voiced, closure & speaking)
        self.next_hop = int(hops[-1]) + 1
        f.trim(self.next_hop + min(self.taps), self._next_vad)
        keep = max(0, self.next_hop + min(POSTERIOR_TAPS) - self._post0)
        self._post, self._post0 = self._post[keep:], self._post0 + keep
        return first, opening, width, closed, rest

    def _rest(self, hops: np.ndarray, speaking: np.ndarray, last_voiced: np.ndarray, closure: np.ndarray
              ) -> np.ndarray:
        """The share of the speaker's rest mouth per hop (MouthTrack.rest), from what the stream knows at each hop:
        1 in a silence; into speech it fades over REST_RAMP from the speech's start (offline's ramp at the onset),
        and out of it over the hangover after the voice stopped (offline fades over the last word, which a stream
        cannot see coming); 0 on a bilabial closure."""
        start = np.empty(len(hops), np.int64)
        current = self._speech_start
        for i, (h, s) in enumerate(zip(hops, speaking)):  # (a few hops per call)
            current = (int(h) if current is None else current) if s else None
            start[i] = h if current is None else current
        self._speech_start = current
        onset = 1.0 - (hops - start + 1) / (self.rest_ramp + 1)
        quiet = (hops - last_voiced) / (self.hangover + 1)
        rest = np.where(speaking, np.clip(np.maximum(onset, quiet), 0.0, 1.0), 1.0)
        return np.where(closure, 0.0, rest)


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
        check_strength(strength)
        self.fps = float(fps)
        self.strength = float(strength)
        self._hops = _CausalHops(lookahead, model)
        self._next_frame = 0
        # hop outputs not yet consumed by a frame, from absolute hop `_start` on
        self._start = 0
        self._opening, self._width, self._closed = np.zeros(0), np.zeros(0), np.zeros(0, bool)
        self._rest = np.zeros(0)
        self._done = False

    @property
    def latency(self) -> float:
        """Seconds between the newest audio sample and the time shown by the newest committed frame (worst case):
        the look-ahead, the log-mel window and, when frame times fall between 10 ms hops, the rounding to a hop."""
        step = 1.0 / self.fps / HOP_SECONDS
        rounding = 0.0 if abs(step - round(step)) < 1e-9 else 0.5 * HOP_SECONDS
        return self._hops.look * HOP_SECONDS + _MEL_WINDOW + rounding

    def feed(self, samples) -> MouthTrack:
        if self._done:
            raise ParameterError("StreamingMotion.feed after finish(): start a new StreamingMotion for a new stream")
        return self._frames(*self._hops.push(_mono_float(samples)), end=None)

    def finish(self) -> MouthTrack:
        if self._done:
            return self._frames(0, np.zeros(0), np.zeros(0), np.zeros(0, bool), np.zeros(0), end=0.0)
        self._done = True
        got = self._hops.finish()
        return self._frames(*got, end=self._hops.features.n_samples / SR)

    def _frames(self, first, opening, width, closed, rest, end: float | None) -> MouthTrack:
        if opening.size:
            self._opening = np.concatenate([self._opening, opening])
            self._width = np.concatenate([self._width, width])
            self._closed = np.concatenate([self._closed, closed])
            self._rest = np.concatenate([self._rest, rest])
        available = self._start + self._opening.size  # hops [._start, available) are final
        if end is None:
            k_stop = self._next_frame
            while _frame_hop(k_stop, self.fps) < available:
                k_stop += 1
        else:  # every frame that shows a time before the end of the audio
            k_stop = max(self._next_frame, int(np.ceil(end * self.fps - 1e-9)))
        ks = np.arange(self._next_frame, k_stop)
        hop = np.minimum(_frame_hop(ks, self.fps), available - 1) - self._start
        track = _track(ks / self.fps, self._opening[hop], self._width[hop], self._closed[hop], self.strength,
                       self._rest[hop])
        self._next_frame = k_stop
        if ks.size:  # drop hops no later frame will use
            keep = min(int(_frame_hop(k_stop, self.fps)), available) - self._start
            self._opening, self._width, self._closed = self._opening[keep:], self._width[keep:], self._closed[keep:]
            self._rest = self._rest[keep:]
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
    return np.round(np.asarray(k) / fps / HOP_SECONDS).astype(np.int64)


def _track(times, opening, width, closed, strength: float, rest) -> MouthTrack:
    # strength 0 keeps the mouth still: the rest fades with it below 1, as offline
    return MouthTrack(np.asarray(times, np.float64), np.clip(opening * strength, 0.0, 1.2).astype(np.float32),
                      np.clip(width * strength, -1.0, 1.0).astype(np.float32), np.asarray(closed, bool),
                      (np.clip(rest, 0.0, 1.0) * min(strength, 1.0)).astype(np.float32))


def causal_hops(audio16k: np.ndarray, lookahead: float = 0.1, model: CausalModel | None = None,
                use_silero: bool = True):
    """The causal mouth at every 10 ms hop of a whole file: (opening, width, closed, rest), as the stream commits
    them."""
    engine = _CausalHops(lookahead, model, use_silero)
    parts = [engine.push(np.asarray(audio16k, np.float32)), engine.finish()]
    return tuple(np.concatenate([p[i] for p in parts]) for i in (1, 2, 3, 4))


def causal_mouth_track(audio16k: np.ndarray, frame_times: np.ndarray, lookahead: float = 0.1, strength: float = 1.0,
                       model: CausalModel | None = None) -> MouthTrack:
    """The mouth StreamingMotion commits, for a whole file at arbitrary frame times (after the audio: at rest)."""
    check_strength(strength)
    audio16k = _mono_float(audio16k)
    frame_times = np.asarray(frame_times, np.float64)
    opening, width, closed, rest = causal_hops(audio16k, lookahead, model)
    if opening.size == 0:
        return _track(frame_times, np.zeros(frame_times.size), np.zeros(frame_times.size),
                      np.ones(frame_times.size, bool), strength, np.ones(frame_times.size))
    hop = np.clip(np.round(frame_times / HOP_SECONDS).astype(np.int64), 0, opening.size - 1)
    after = frame_times >= audio16k.size / SR  # past the end of the audio: the mouth rests
    return _track(frame_times, np.where(after, 0.0, opening[hop]), np.where(after, 0.0, width[hop]),
                  closed[hop] | after, strength, np.where(after, 1.0, rest[hop]))
