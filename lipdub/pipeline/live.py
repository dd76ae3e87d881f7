"""live: dub a stream as it arrives (video calls, live translation, avatars).

Audio chunks (any size; 20 ms is typical) and video frames go in as they arrive; dubbed frames come out in order,
each with the audio that belongs to it, so a sink that writes or plays frame + audio together stays in sync. The delay
is bounded by the causal motion's look-ahead (a frame's mouth is known once ~100 ms of audio after it arrived) plus
tracking and rendering, which run on their own threads (MediaPipe, OpenCV and x264 work without the GIL, so the two
cores overlap). Every frame that goes in comes out once: none dropped, none repeated.

Appearance: an actor profile (photoreal, the actor's own mouths); for a video file, the mouths of its first minute,
tracked and cut before the session starts (`prepare_atlas`, cached like `lipdub dub`'s); otherwise the stream itself —
every other tracked frame joins a growing atlas of the speaker's real mouths; a still photo is one entry.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lipdub import face as F
from lipdub.render import compose
from lipdub.motion import expression
from lipdub import motion, render
from lipdub.errors import InputError, LipdubError, ParameterError

log = logging.getLogger(__name__)

MOTION_SR = 16000
LIVE_REGIONS = ("lips", "lower")  # face/head plan expression over the whole speech: offline only
ATLAS_STRIDE = 2  # every 2nd tracked frame joins the stream's own atlas
ATLAS_MAX = 4000  # entries (~3 min at stride 2, ~60 MB of JPEG crops); later frames only render
REINDEX_EVERY = 25  # atlas entries between re-reads of its descriptors
MIN_OPEN_MAX = 0.16  # canonical wide-open gap asked of the stream's own atlas at least (see _steady_amplitude)
PREPARE_SECONDS = 60.0  # of a video file source: where its mouths are taken from before the session starts
PREPARE_CACHE_VERSION = 1


@dataclass
class LiveFrame:
    """One dubbed output frame with its share of the audio (samples [index, index+1) / fps of the stream)."""

    index: int
    time: float  # stream time of the frame (index / fps)
    rgb: np.ndarray
    audio: np.ndarray  # (channels, n) float32 at the pushed audio's rate
    rendered: bool  # False: no face found, the frame passes through
    delay: float | None = None  # wall seconds from the audio at `time` arriving to this frame being ready


@dataclass
class LiveStats:
    frames: int = 0
    rendered: int = 0
    delays: list = field(default_factory=list)
    track_cpu: float = 0.0  # CPU seconds of the tracking thread (landmarks + atlas growth)
    render_cpu: float = 0.0  # CPU seconds of the rendering thread

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.delays, q)) if self.delays else float("nan")


class _OneEuro:
    """One-euro filter on landmark arrays: steady when the face is still (MediaPipe jitters ~0.4 px), little lag when
    it moves (the cutoff rises with speed). Causal, so live frames can use it; offline tracks use zero-phase
    smoothing instead."""

    def __init__(self, fps: float, min_cutoff: float = 1.5, beta: float = 0.05, d_cutoff: float = 1.0):
        self.dt = 1.0 / fps
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x = self.dx = None

    def _alpha(self, cutoff):
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / self.dt)

    def reset(self) -> None:
        self.x = self.dx = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        if self.x is None:
            self.x, self.dx = x, np.zeros_like(x)
            return x
        dx = (x - self.x) / self.dt
        a_d = self._alpha(self.d_cutoff)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        # speed per point (pixels/s), shared by x and y so a point does not bend its path
        speed = np.linalg.norm(self.dx[..., :2], axis=-1, keepdims=True)
        a = self._alpha(self.min_cutoff + self.beta * speed)
        self.x = a * x + (1 - a) * self.x
        return self.x


class StreamTracker:
    """MediaPipe's face landmarker in VIDEO mode (it follows the face between frames instead of detecting it anew),
    then one-euro smoothing: the stabler the skull points, the steadier the pasted mouth."""

    def __init__(self, fps: float):
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        from lipdub.core.assets import face_landmarker_path

        self._mp = mp
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(face_landmarker_path())),
            running_mode=vision.RunningMode.VIDEO, num_faces=1,
            min_face_detection_confidence=0.5, min_face_presence_confidence=0.5, min_tracking_confidence=0.5)
        with F._native_stderr_silenced():
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
        self.fps = fps
        self._filter = _OneEuro(fps)
        self._last_ms = -1

    def track(self, index: int, rgb: np.ndarray) -> np.ndarray | None:
        h, w = rgb.shape[:2]
        ms = max(int(round(index * 1000.0 / self.fps)), self._last_ms + 1)  # strictly increasing, as MediaPipe wants
        self._last_ms = ms
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = self._landmarker.detect_for_video(image, ms)
        if not result.face_landmarks:
            self._filter.reset()
            return None
        lms = np.array([(p.x * w, p.y * h, p.z * w) for p in result.face_landmarks[0]], np.float32)
        return self._filter(lms)

    def reset(self) -> None:
        self._filter.reset()

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None


def _pose_of(canonical: np.ndarray, lms: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    return F.umeyama(canonical[F.STABLE], lms[F.STABLE].astype(np.float64))


class LiveAppearance:
    """The mouths drawn in live mode and the online choice among them.

    Offline dubs choose atlas entries by Viterbi over the whole clip; live frames cannot wait for the future, so each
    frame takes the cheapest of the k nearest entries given the one before (continuing a real run of frames costs
    nothing, holding costs a little, jumping costs more): the same costs, decided greedily."""

    def __init__(self, atlas: render.Atlas | None = None, model: render.MouthModel | None = None,
                 region: str = "lower", grow: bool = True, colour_gain: bool = False):
        self.atlas, self.model, self.region = atlas, model, region
        self.grow = grow and atlas is None  # a profile's atlas is complete; the stream's grows
        self.colour = compose.ColourMatcher(gain=colour_gain)
        self.renderer: render.Renderer | None = None
        self._slot = None
        self._indexed = 0
        self._tree = None
        self.prev: int | None = None
        self._lock = threading.Lock()
        self.still = False  # a photo source: one entry is all there is

    # --- the stream's own atlas ------------------------------------------------------------------------------
    def offer(self, index: int, rgb: np.ndarray, lms: np.ndarray) -> None:
        """A tracked frame of the stream (tracker thread): every ATLAS_STRIDE-th joins the atlas while it grows."""
        if not self.grow or index % ATLAS_STRIDE:
            return
        with self._lock:
            if self.atlas is None:
                one = F.FaceTrack(np.zeros(1), lms[None], np.ones(1, bool), rgb.shape[1], rgb.shape[0])
                canonical = F.canonical_shape(one)
                scale = _pose_of(canonical, lms)[0]
                self.atlas = render.Atlas(canonical, scale)
            elif self.atlas.n >= ATLAS_MAX or (self.still and self.atlas.n):
                return
        pose = _pose_of(self.atlas.canonical, lms)
        with self._lock:
            self.atlas.add(index // ATLAS_STRIDE, rgb, lms, pose)

    # --- rendering ----------------------------------------------------------------------------------------------
    def _ensure_renderer(self, width: int, height: int) -> bool:
        with self._lock:
            if self.atlas is None or self.atlas.n == 0:
                return False
            n = self.atlas.n
            if self.renderer is None:
                self._slot = F.FaceTrack(np.zeros(1), np.zeros((1, 478, 3), np.float32), np.ones(1, bool),
                                         width, height)
                pose = F.Pose(np.ones(1), np.eye(3)[None].copy(), np.zeros((1, 3)))
                self.renderer = render.Renderer(self.atlas, self._slot, pose=pose, model=self.model,
                                                colour=self.colour, region=self.region)
                self._steady_amplitude()
                self._reindex(n)
            elif n - self._indexed >= REINDEX_EVERY or (n != self._indexed and n < 100):
                self.renderer.index_atlas()
                self._steady_amplitude()
                self._reindex(n)
        return True

    def _steady_amplitude(self) -> None:
        """The stream's own atlas starts empty, so its estimate of how wide this speaker opens (offline: the whole
        clip's 97th percentile, at least 0.09) keeps changing as frames arrive, and the dub's amplitude with it; the
        floor for short clips (0.16) holds it steady through the first seconds and for speakers who barely open
        (measured: r against the real speaker 0.54 → 0.68 on the CNN case, the same on the others)."""
        if self.grow and not self.still:
            self.renderer.model.open_max = max(self.renderer.model.open_max, MIN_OPEN_MAX)

    def _reindex(self, n: int) -> None:
        from scipy.spatial import cKDTree

        r = self.renderer
        m = r.model
        self._desc_scale = np.array([1 / m.open_max, 3 / m.rest_width])
        self._desc = r.atlas_desc * self._desc_scale
        self._pose_feat = self.atlas.pose_feat.astype(np.float64)
        self._seq = self.atlas.seq
        self._blur = r.blur_cost()
        self._tree = cKDTree(np.concatenate([self._desc, np.sqrt(2.0) * self._pose_feat], 1))
        self._indexed = n

    def choose(self, want: np.ndarray, pose_feat: np.ndarray, k: int = 16, jump_cost: float = 0.05) -> int:
        """The atlas entry for this frame (see the class doc)."""
        n = len(self._desc)
        if n == 1:
            return 0
        q = np.concatenate([want, np.sqrt(2.0) * pose_feat])
        _, idx = self._tree.query(q, k=min(k, n))
        cand = np.atleast_1d(idx)
        if self.prev is not None and self.prev < n:
            follow = np.flatnonzero((self._seq - self._seq[self.prev] >= 0) & (self._seq - self._seq[self.prev] <= 2))
            cand = np.unique(np.concatenate([cand, follow[:4]]))
        d = self._desc[cand] - want
        pf = self._pose_feat[cand] - pose_feat
        cost = (d ** 2).sum(1) + 2.0 * (pf ** 2).sum(1) + self._blur[cand]
        if self.prev is not None and self.prev < n:
            step = self._seq[cand] - self._seq[self.prev]
            trans = np.full(len(cand), jump_cost)
            trans[(step >= 1) & (step <= 2)] = 0.0
            trans[step == 0] = 0.15 * jump_cost
            cost = cost + trans
        a = int(cand[int(np.argmin(cost))])
        self.prev = a
        return a

    def render(self, rgb: np.ndarray, lms: np.ndarray | None, opening: float, width: float) -> tuple[np.ndarray, bool]:
        """rgb with the mouth at `opening`/`width` (MouthTrack units), or unchanged when there is no face."""
        if lms is None or not self._ensure_renderer(rgb.shape[1], rgb.shape[0]):
            self.colour.reset()
            self.prev = None
            return rgb, False
        r = self.renderer
        r.track.landmarks[0] = lms
        s, rot, t = _pose_of(r.canonical, lms)
        r.pose.scale[0], r.pose.rotation[0], r.pose.translation[0] = s, rot, t
        open_c, width_c = r.wanted(motion.MouthTrack(np.zeros(1), np.float32([opening]), np.float32([width]),
                                                     np.zeros(1, bool)))
        want = np.array([open_c[0], width_c[0]]) * self._desc_scale
        opening_c = float(open_c[0])
        a = self.choose(want, rot[:2, 2])
        # no lock: the renderer reads its own snapshot of the atlas arrays, and the tracker thread only appends
        # (list appends and reads are atomic in CPython), so atlas growth never waits for a render
        return r.render_frame(rgb, 0, a, opening_c, float(width_c[0])), True


class _Blinks:
    """Blinks for a still photo (a video blinks by itself), drawn as the stream goes: every 2–8 s."""

    def __init__(self, canonical: np.ndarray, seed: int = 0):
        self.canonical = canonical
        self.warper = render.FaceWarper(canonical)
        self._onsets = expression.blink_onsets(np.random.default_rng(seed), np.inf)
        self._recent = [next(self._onsets)]

    def amount(self, t: float) -> float:
        while self._recent[-1] < t + 1.0:
            self._recent.append(next(self._onsets))
        self._recent = [a for a in self._recent if a > t - 1.0] or self._recent[-1:]
        return float(max(expression.blink_shape(np.array([t]), a)[0] for a in self._recent))

    def apply(self, rgb: np.ndarray, lms: np.ndarray, t: float) -> np.ndarray:
        b = self.amount(t)
        if b <= 0.01:
            return rgb
        s, rot, tr = _pose_of(self.canonical, lms)
        motion_now = expression.FaceMotion(np.zeros(1), np.zeros((1, 3), np.float32), np.float32([b]),
                                           np.zeros(1, np.float32))
        off = expression.frame_offsets(motion_now, 0, self.canonical, None, blinks=True)
        moved = lms.astype(np.float64) + s * off @ rot.T
        out = self.warper.warp(rgb, (s, rot, tr), lms.astype(np.float64), moved, None)
        if b > 0.2:
            out = render.close_eyes(out, moved, min(1.0, (b - 0.2) / 0.6), s)
        return out


class LiveDubber:
    """Feed audio and video as they arrive; take dubbed frames out in order.

        dubber = LiveDubber(fps=25)
        dubber.push_audio(chunk, sr)      # from the audio thread, any chunk size
        dubber.push_frame(rgb)            # from the video thread
        frame = dubber.get()              # LiveFrame, in order; None once close() has flushed everything
        dubber.close()                    # both streams ended

    The frame at stream time t is rendered once the motion has audio up to t + lookahead; it carries the audio of its
    own frame interval, so whoever writes or plays it delays the sound by exactly the same amount. `profile` is an
    actor profile (path or loaded) for photoreal mouths; `atlas` the source's own mouths prepared beforehand
    (prepare_atlas); without either the atlas grows from the stream. `still` says the frames are one photo (it gets
    blinks)."""

    def __init__(self, fps: float, profile=None, region: str = "lower", strength: float = 1.0,
                 lookahead: float = 0.1, still: bool = False, motion_source=None, atlas: render.Atlas | None = None):
        if not np.isfinite(fps) or fps <= 0 or fps > 120:
            raise ParameterError(f"frame rate must be between 0 and 120, got {fps}")
        if region not in LIVE_REGIONS:
            raise ParameterError(f"live mode renders --region {' or '.join(LIVE_REGIONS)}; face and head plan "
                                 "expression over the whole speech: use `lipdub dub` for them")
        if not 0 <= strength <= 3:
            raise ParameterError(f"--strength must be between 0 and 3 (1 = natural), got {strength}")
        self.fps = float(fps)
        self.strength = float(strength)
        if motion_source is None:
            motion_source = motion.StreamingMotion(fps=self.fps, lookahead=lookahead, strength=self.strength)
        self.motion = motion_source
        if isinstance(profile, (str, Path)):
            from lipdub import profile as profiles

            profile = profiles.load(profile)
        if profile is not None:
            self.appearance = LiveAppearance(profile.atlas, profile.model, region, grow=False, colour_gain=True)
        elif atlas is not None and atlas.n:  # the source's mouths, prepared before the session (prepare_atlas)
            self.appearance = LiveAppearance(atlas, None, region, grow=False)
        else:
            self.appearance = LiveAppearance(region=region)
        self.appearance.still = still
        self.stats = LiveStats()
        self._blinks: _Blinks | None = None
        self._cond = threading.Condition()
        self._mouth: dict[int, tuple[float, float]] = {}
        self._committed = 0  # frames whose mouth is known
        self._frames_in = 0
        self._tracked: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        self._audio: list[np.ndarray] = []  # (C, n) chunks at self.sr not yet handed out
        self._audio_start = 0  # sample index of the first kept sample
        self._audio_total = 0
        self._arrivals: list[tuple[int, float]] = []  # (samples received, wall time) per push
        self.sr: int | None = None
        self._channels = 1
        self._resampler = None
        self._ended = False
        self._track_q: queue.Queue = queue.Queue(maxsize=8)
        self._out: queue.Queue = queue.Queue(maxsize=16)
        self._error: BaseException | None = None
        self._tracker_done = False
        self._tracker = StreamTracker(self.fps)  # loaded here: model start-up is not part of the first frame's delay
        self._tracker_thread = threading.Thread(target=self._track_loop, name="lipdub-live-track", daemon=True)
        self._render_thread = threading.Thread(target=self._render_loop, name="lipdub-live-render", daemon=True)
        self._tracker_thread.start()
        self._render_thread.start()

    # --- input --------------------------------------------------------------------------------------------------
    @property
    def latency(self) -> float:
        """The motion's share of the delay (look-ahead and analysis windows), seconds."""
        return float(self.motion.latency)

    def push_audio(self, samples: np.ndarray, sr: int) -> None:
        """Audio as it arrives: (n,) mono or (n, channels) float in [-1, 1] at `sr` (fixed for the stream)."""
        self._raise_if_failed()
        x = np.asarray(samples, np.float32)
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] not in (1, 2):
            raise ParameterError(f"audio chunks must be (n,) or (n, 1|2) arrays, got shape {np.shape(samples)}")
        if self.sr is None:
            if not isinstance(sr, (int, np.integer)) or sr < 8000:
                raise ParameterError(f"audio sample rate must be an integer of at least 8000 Hz, got {sr!r}")
            self.sr, self._channels = int(sr), x.shape[1]
        elif sr != self.sr or x.shape[1] != self._channels:
            raise ParameterError("the audio's rate and channels must stay the same for the whole stream")
        now = time.monotonic()
        mono16 = self._to_motion_rate(x)
        committed = self.motion.feed(mono16) if mono16.size else None
        with self._cond:
            self._audio.append(np.ascontiguousarray(x.T))
            self._audio_total += x.shape[0]
            self._arrivals.append((self._audio_total, now))
            if committed is not None:
                self._commit(committed)
            self._cond.notify_all()

    def _to_motion_rate(self, x: np.ndarray) -> np.ndarray:
        mono = x.mean(1) if x.shape[1] > 1 else x[:, 0]
        if self.sr == MOTION_SR:
            return mono
        import av

        if self._resampler is None:  # swresample keeps its filter state between chunks: no seams every 20 ms
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=MOTION_SR)
        return self._resample(mono)

    def _resample(self, mono: np.ndarray | None) -> np.ndarray:
        import av

        if mono is None:
            frames = self._resampler.resample(None)
        else:
            f = av.AudioFrame.from_ndarray(mono[None].astype(np.float32), format="flt", layout="mono")
            f.sample_rate = self.sr
            frames = self._resampler.resample(f)
        parts = [fr.to_ndarray().reshape(-1) for fr in frames]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)

    def _commit(self, mt) -> None:
        for t, o, w, c in zip(mt.times, mt.opening, mt.width, mt.closed):
            k = int(round(float(t) * self.fps))
            self._mouth[k] = (0.0 if c else float(o), float(w))
            self._committed = max(self._committed, k + 1)

    def push_frame(self, rgb: np.ndarray) -> None:
        """The next video frame (H, W, 3) uint8 RGB; blocks briefly when tracking is behind (bounded memory)."""
        self._raise_if_failed()
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ParameterError(f"frames must be uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
        k = self._frames_in
        self._frames_in += 1
        while True:
            try:
                self._track_q.put((k, rgb), timeout=0.5)
                return
            except queue.Full:
                self._raise_if_failed()

    def close(self) -> None:
        """Both streams ended: the motion commits its last frames; get() returns the rest, then None."""
        if self._ended:
            return
        tail = self.motion.finish()
        with self._cond:
            if tail is not None:
                self._commit(tail)
            self._ended = True
            self._cond.notify_all()
        self._track_q.put(None)

    # --- output -------------------------------------------------------------------------------------------------
    def get(self, timeout: float | None = None) -> LiveFrame | None:
        """The next dubbed frame (blocks); None after the last one."""
        while True:
            try:
                item = self._out.get(timeout=0.5 if timeout is None else timeout)
            except queue.Empty:
                self._raise_if_failed()
                if timeout is not None:
                    raise TimeoutError("no dubbed frame yet") from None
                continue
            if isinstance(item, BaseException):
                raise item
            return item

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    # --- workers ------------------------------------------------------------------------------------------------
    def warm_up(self, rgb: np.ndarray) -> None:
        """Run the tracker once on a frame before the stream starts: its first inference is slow."""
        self._tracker.track(0, rgb)
        self._tracker.reset()

    def _track_loop(self) -> None:
        tracker = self._tracker
        try:
            while True:
                item = self._track_q.get()
                if item is None:
                    break
                k, rgb = item
                c0 = time.thread_time()
                lms = tracker.track(k, rgb)
                if lms is not None:
                    self.appearance.offer(k, rgb, lms)
                self.stats.track_cpu += time.thread_time() - c0
                with self._cond:
                    self._tracked[k] = (rgb, lms)
                    self._cond.notify_all()
        except BaseException as exc:  # handed to the caller's thread by get()/push_*()
            self._fail(exc)
        finally:
            if tracker is not None:
                tracker.close()
            with self._cond:
                self._tracker_done = True
                self._cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        if not isinstance(exc, LipdubError):
            log.exception("live dubbing failed")
        self._error = exc
        with self._cond:
            self._cond.notify_all()
        try:
            self._out.put_nowait(exc)
        except queue.Full:
            pass

    def _audio_for(self, k: int) -> np.ndarray:
        """Samples of frame k's interval, taken from the kept audio (caller holds the lock)."""
        lo = int(round(k * self.sr / self.fps)) if self.sr else 0
        hi = int(round((k + 1) * self.sr / self.fps)) if self.sr else 0
        buf = np.concatenate(self._audio, axis=1) if len(self._audio) > 1 else (
            self._audio[0] if self._audio else np.zeros((self._channels, 0), np.float32))
        a, b = lo - self._audio_start, hi - self._audio_start
        out = np.zeros((self._channels, max(hi - lo, 0)), np.float32)
        got = buf[:, max(a, 0):max(b, 0)]
        out[:, max(-a, 0):max(-a, 0) + got.shape[1]] = got
        keep = buf[:, max(b, 0):]
        self._audio = [keep] if keep.shape[1] else []
        self._audio_start = max(hi, self._audio_start)
        return out

    def _arrival(self, k: int) -> float | None:
        """Wall time when the audio sample at frame k's time had arrived."""
        if not self.sr:
            return None
        sample = int(k * self.sr / self.fps) + 1
        for n, t in self._arrivals:
            if n >= sample:
                return t
        return None

    def _render_loop(self) -> None:
        k = 0
        try:
            while True:
                with self._cond:
                    while True:
                        if self._error is not None:
                            return
                        have_frame = k in self._tracked
                        audio_end = (k + 1) / self.fps * (self.sr or 1)
                        have_mouth = k < self._committed or self._ended
                        have_audio = self._ended or (self.sr is not None and self._audio_total >= audio_end)
                        # the session ends with the voice: a frame that starts after its last sample is not dubbed
                        past_audio = self._ended and self.sr and k >= np.ceil(self._audio_total / self.sr * self.fps
                                                                               - 1e-6)
                        if have_frame and have_mouth and have_audio and not past_audio:
                            break
                        if (self._tracker_done and not have_frame) or past_audio:
                            self._out.put(None)
                            return
                        self._cond.wait(0.5)
                    rgb, lms = self._tracked.pop(k)
                    opening, width = self._mouth.pop(k, (0.0, 0.0))
                    audio = self._audio_for(k)
                    arrived = self._arrival(k)
                    # arrivals older than this frame are no longer needed
                    while len(self._arrivals) > 1 and self._arrivals[0][0] < (k / self.fps) * (self.sr or 0):
                        self._arrivals.pop(0)
                c0 = time.thread_time()
                if self.appearance.still and lms is not None and self.appearance.renderer is not None:
                    if self._blinks is None:
                        self._blinks = _Blinks(self.appearance.renderer.canonical)
                    rgb = self._blinks.apply(rgb, lms, k / self.fps)
                out, rendered = self.appearance.render(rgb, lms, opening, width)
                self.stats.render_cpu += time.thread_time() - c0
                now = time.monotonic()
                delay = None if arrived is None else now - arrived
                self.stats.frames += 1
                self.stats.rendered += rendered
                if delay is not None:
                    self.stats.delays.append(delay)
                self._out.put(LiveFrame(k, k / self.fps, out, audio, rendered, delay))
                k += 1
        except BaseException as exc:
            self._fail(exc)


# ------------------------------------------------------------------------------------------------------ sources
# A source is a media file (played at real-time pace), a named pipe (FIFO) or "-" (standard input), or a capture
# device when the machine has one: /dev/videoN (v4l2) for pictures, "alsa:NAME" or "pulse:NAME" for sound.

AUDIO_CHUNK = 0.02  # s: what a microphone callback delivers


def _open_source(source: str, kind: str):
    """(container, is_live_device). Files go through media.open_input (file protocol only, no playlists); pipes and
    devices are opened with the same protocol whitelist."""
    import os
    import stat
    import sys

    import av

    from lipdub import media

    opts = media._input_options()
    try:
        if source == "-":
            return av.open(sys.stdin.buffer, "r", container_options=opts), False
        if kind == "audio" and source.startswith(("alsa:", "pulse:")):
            fmt, _, name = source.partition(":")
            return av.open(name or "default", "r", format=fmt), True
        p = Path(source)
        if p.exists() and stat.S_ISCHR(os.stat(p).st_mode) and kind == "video":
            return av.open(str(p), "r", format="v4l2"), True
        if p.exists() and stat.S_ISFIFO(os.stat(p).st_mode):
            return av.open(os.path.abspath(p), "r", container_options=opts), False
    except (av.FFmpegError, OSError, ValueError) as e:
        raise InputError(f"cannot open the {kind} source {source} ({e}); check that the device or pipe exists "
                         "and delivers a media stream") from None
    return media.open_input(source, kind), False


def prepare_atlas(video, seconds: float = PREPARE_SECONDS, progress=None, cache: bool = True
                  ) -> render.Atlas | None:
    """The mouths of a video file's first `seconds` (tracked and cut as `lipdub dub` does, cached beside its
    atlases), for a live session to draw from its first frame on. A stream's own atlas starts empty: in the first
    seconds it holds only the few mouths filmed so far, and on 3–8 s clips the dub followed its own motion at r
    0.48–0.85 against 0.90–0.99 with the clip's mouths at hand. None for a photo, or when the file shows no usable
    face (the session then grows its atlas from the stream)."""
    import itertools

    from lipdub import face, media
    from lipdub.pipeline import OWN_ATLAS_BYTES, load_cached_atlas, save_cached_atlas

    path = Path(video)
    info = media.probe_video(path)
    if info.is_image:
        return None
    n = max(1, min(info.n_frames, int(round(seconds * info.fps))))
    cache_file = face.cache_dir() / "atlases" / f"{face.cache_key(path, live_frames=n, v=PREPARE_CACHE_VERSION)}.npz"
    atlas = load_cached_atlas(cache_file) if cache else None
    if atlas is not None:
        return atlas

    done = [0]

    def tick(k: int) -> None:
        done[0] += k
        if progress:
            progress("prepare", min(done[0], n), n)

    try:
        track = face.track_frames(lambda: itertools.islice(media.iter_frames(path), n), info.width, info.height, n,
                                  info.fps, progress=tick, workers=2,
                                  frames_from=lambda start: itertools.islice(media.iter_frames(path, start),
                                                                             max(0, n - start)))
        if not track.valid.any():
            raise InputError(f"no face in its first {n} frames")
        atlas = render.Renderer.for_video(path, info, track, budget_bytes=OWN_ATLAS_BYTES).atlas
    except InputError as exc:
        log.warning("live: no mouths prepared from %s (%s); the atlas grows from the stream", path, exc)
        return None
    if cache:
        save_cached_atlas(cache_file, atlas)
    return atlas


def video_source(source: str, loop: bool = True):
    """Yields (rgb, fps, still) for each frame; a file loops from its start while `loop` (a shorter clip under a
    longer voice), a photo repeats forever (the caller stops it)."""
    from lipdub import media

    if source not in ("-",) and media.is_image_path(source):
        rgb = next(media.iter_frames(source)).rgb
        while True:
            yield rgb, media.IMAGE_FPS, True
    first = True
    while True:
        c, device = _open_source(source, "video")
        try:
            s = media._video_stream(c, source)
            fps = float(s.average_rate or s.guessed_rate or media.IMAGE_FPS)
            n = 0
            for f in media._decode(c, s):
                n += 1
                yield media._to_rgb(f, media._rot_k(f)), fps, False
        finally:
            c.close()
        if first and n == 0:
            raise InputError(f"the video source {source} delivered no frames; pass a video with pictures")
        first = False
        if not loop or device or source == "-" or not Path(source).is_file():
            return


def audio_source(source: str, chunk: float = AUDIO_CHUNK):
    """Yields ((n, channels) float32, sr) chunks of `chunk` seconds (the last may be shorter)."""
    import av

    from lipdub import media

    c, _ = _open_source(source, "audio")
    try:
        if not c.streams.audio:
            raise InputError(f"{source} has no audio track; pass a file, pipe or device with sound")
        s = c.streams.audio[0]
        resampler = None
        pending = np.zeros((0, 1), np.float32)
        size = None
        for f in media._decode(c, s):
            if resampler is None:
                layout = "mono" if f.layout.nb_channels == 1 else "stereo"
                resampler = av.AudioResampler(format="flt", layout=layout, rate=f.sample_rate)
                sr = f.sample_rate
                size = max(1, int(round(chunk * sr)))
                pending = np.zeros((0, 1 if layout == "mono" else 2), np.float32)
            for r in resampler.resample(f):
                x = r.to_ndarray().reshape(-1, pending.shape[1])
                pending = np.concatenate([pending, x])
                while len(pending) >= size:
                    yield np.clip(np.nan_to_num(pending[:size]), -1, 1), sr
                    pending = pending[size:]
        if resampler is None:
            raise InputError(f"the audio source {source} holds no decodable sound; pass another file")
        for r in resampler.resample(None):
            pending = np.concatenate([pending, r.to_ndarray().reshape(-1, pending.shape[1])])
        if len(pending):
            yield np.clip(np.nan_to_num(pending), -1, 1), sr
    finally:
        c.close()


# ------------------------------------------------------------------------------------------------------ session
@dataclass
class LiveReport:
    output: Path | None
    frames: int
    fps: float
    rendered: int
    wall: float  # s from the first input to the last output frame
    delay_p50: float
    delay_p95: float
    delay_max: float
    cpu: float  # cores busy on average (process CPU time / wall time)
    late_frames: int  # frames that left later than real time allows (a live sink would have to drop them)
    motion_latency: float
    realtime: bool = True  # sources were paced like live ones (else the delays only measure a backlog)

    def summary(self) -> str:
        head = f"{self.frames} frames at {self.fps:g} fps ({self.rendered} with a face) in {self.wall:.1f} s"
        if not self.realtime:
            return f"{head} ({self.frames / max(self.wall, 1e-9):.1f} frames/s, read as fast as possible); " \
                   f"CPU {self.cpu:.2f} cores"
        return (f"{head}; delay p50 {self.delay_p50 * 1000:.0f} ms, p95 {self.delay_p95 * 1000:.0f} ms, "
                f"max {self.delay_max * 1000:.0f} ms; CPU {self.cpu:.2f} cores")


class _Preview:
    """The newest dubbed frame as an MJPEG stream on http://127.0.0.1:PORT/ (a browser shows it live)."""

    PAGE = (b"<!doctype html><title>lipdub live</title><body style='margin:0;background:#111'>"
            b"<img src='/stream.mjpg' style='max-width:100vw;max-height:100vh;display:block;margin:auto'></body>")

    def __init__(self, port: int):
        import http.server

        preview = self
        self.jpeg: bytes | None = None
        self.cond = threading.Condition()
        self.closed = False

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: the terminal shows the dub's progress
                pass

            def do_GET(self):
                if self.path in ("/", "/index.html"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.end_headers()
                    self.wfile.write(preview.PAGE)
                    return
                if self.path != "/stream.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                last = None
                try:
                    while True:
                        with preview.cond:
                            preview.cond.wait_for(lambda: preview.closed or preview.jpeg is not last, timeout=5)
                            if preview.closed:
                                return
                            last = jpeg = preview.jpeg
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    return

        try:
            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as e:
            raise ParameterError(f"cannot serve the preview on port {port} ({e.strerror}); pick another --preview "
                                 "port") from None
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name="lipdub-preview", daemon=True).start()

    def show(self, rgb: np.ndarray) -> None:
        import cv2

        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if ok:
            with self.cond:
                self.jpeg = buf.tobytes()
                self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()


def run(video: str, audio: str, output=None, profile=None, region: str = "lower", strength: float = 1.0,
        lookahead: float = 0.1, realtime: bool = True, preview_port: int | None = None, crf: float = 20,
        preset: str = "superfast", max_seconds: float | None = None, progress=None, motion_source=None,
        announce=None, prepare: bool = True) -> LiveReport:
    """A live session from sources to a file and/or a browser preview; ends when the audio ends (or after
    `max_seconds`). File sources are played at real-time pace unless realtime=False (as fast as the machine goes).
    With `prepare` (and no profile) a video file's mouths are prepared before the session starts (prepare_atlas)."""
    import resource

    from lipdub import media
    from lipdub.pipeline import BackgroundWriter

    if not (isinstance(lookahead, (int, float)) and 0 <= lookahead <= 0.15):
        raise ParameterError(f"--lookahead must be between 0 and 0.15 s, got {lookahead}")
    if preview_port is not None and not 0 <= int(preview_port) <= 65535:
        raise ParameterError(f"--preview must be a port number 0..65535 (0 picks a free one), got {preview_port}")
    if output is None and preview_port is None:
        raise ParameterError("give --output FILE, --preview PORT or both")
    if output is not None:
        output = media.check_output_path(output, [video if video != "-" else None,
                                                  audio if audio != "-" else None])
    if video == "-" and audio == "-":
        raise ParameterError("only one of --video and --audio can read standard input")
    actor = None
    if profile is not None:
        from lipdub import profile as profiles

        actor = profiles.load(profile)
    atlas = None
    if prepare and actor is None and video != "-" and Path(video).is_file():  # not a pipe, device or stdin
        atlas = prepare_atlas(video, progress=progress)
    frames = video_source(video)
    first_rgb, fps, still = next(frames)
    if not np.isfinite(fps) or fps <= 0 or fps > 120:
        raise InputError(f"the video source {video} reports {fps} frames per second; pass a 1–120 fps stream")
    height, width = first_rgb.shape[:2]
    dubber = LiveDubber(fps, profile=actor, region=region, strength=strength, lookahead=lookahead, still=still,
                        motion_source=motion_source, atlas=atlas)
    dubber.warm_up(first_rgb)
    preview = _Preview(preview_port) if preview_port is not None else None
    if preview is not None and announce is not None:
        announce(f"http://127.0.0.1:{preview.port}/")
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic() + 0.05
    audio_done = threading.Event()
    audio_end = [None]  # stream seconds of audio, once known
    stop = threading.Event()
    errors: list[BaseException] = []

    def pace(t: float) -> None:
        if realtime:
            wait = start + t - time.monotonic()
            if wait > 0:
                time.sleep(wait)

    def feed_audio():
        total = 0
        try:
            for chunk, sr in audio_source(audio):
                if stop.is_set():
                    break
                total += len(chunk)
                pace(total / sr)  # a chunk exists once its last sample has been heard
                dubber.push_audio(chunk, sr)
                if max_seconds is not None and total / sr >= max_seconds:
                    break
            audio_end[0] = total / sr if total else 0.0
        except BaseException as exc:
            errors.append(exc)
            stop.set()
        finally:
            audio_done.set()

    def feed_video():
        k = 0
        try:
            rgb = first_rgb
            while not stop.is_set():
                t = k / fps
                if audio_done.is_set() and audio_end[0] is not None and t >= audio_end[0]:
                    break
                if max_seconds is not None and t >= max_seconds:
                    break
                pace(t)
                if rgb.shape[:2] != (height, width):
                    raise InputError(f"the video source changed size mid-stream ({width}x{height} → "
                                     f"{rgb.shape[1]}x{rgb.shape[0]}); live mode needs a fixed size")
                dubber.push_frame(rgb)
                k += 1
                try:
                    rgb, _, _ = next(frames)
                except StopIteration:
                    break
        except BaseException as exc:
            errors.append(exc)
            stop.set()
        finally:
            audio_done.wait()
            dubber.close()

    threads = [threading.Thread(target=feed_audio, name="lipdub-live-audio", daemon=True),
               threading.Thread(target=feed_video, name="lipdub-live-video", daemon=True)]
    for t in threads:
        t.start()
    wav_tmp = video_tmp = None
    n = late = 0
    try:
        sink = None
        if output is not None:
            import tempfile

            tmpdir = Path(tempfile.mkdtemp(prefix=".lipdub-live-", dir=output.parent))
            video_tmp = tmpdir / "video.mp4"
            wav_tmp = _WavSink(tmpdir / "audio.wav")
            writer = media.VideoWriter(video_tmp, width, height, fps, crf=crf, preset=preset, segment=True)
            sink = BackgroundWriter(writer).__enter__()
        try:
            while True:
                fr = dubber.get()
                if fr is None:
                    break
                if errors:
                    raise errors[0]
                if sink is not None:
                    sink.write(fr.rgb)
                    wav_tmp.write(fr.audio, dubber.sr)
                if preview is not None:
                    preview.show(fr.rgb)
                n += 1
                if realtime and time.monotonic() > start + (fr.index + 1) / fps + 0.5:
                    late += 1
                if progress:
                    progress("live", n, 0)
        except BaseException:
            stop.set()
            if sink is not None:
                sink.__exit__(*__import__("sys").exc_info())
                writer.abort()
            raise
        if sink is not None:
            sink.__exit__(None, None, None)
            writer.close()
        wall = time.monotonic() - start
        if errors:
            raise errors[0]
        if n == 0:
            raise InputError("the live session produced no frames: did the audio or video source end at once?")
        if output is not None:
            wav_tmp.close()
            # the sound is streamed from the WAV on disk into the AAC track (hours of it never sit in memory)
            media.join_segments([video_tmp], output, fps, wav_tmp.path if wav_tmp.path.exists() else None)
    finally:
        stop.set()
        if preview is not None:
            preview.close()
        if wav_tmp is not None:
            wav_tmp.close()
            import shutil

            shutil.rmtree(wav_tmp.path.parent, ignore_errors=True)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) / max(wall, 1e-6)
    st = dubber.stats
    return LiveReport(output, n, fps, st.rendered, wall, st.percentile(50), st.percentile(95),
                      max(st.delays) if st.delays else float("nan"), cpu, late, dubber.latency, realtime)


class _WavSink:
    """The output's sound as 16-bit PCM on disk while the session runs (memory stays flat for hours)."""

    def __init__(self, path: Path):
        self.path = path
        self._w = None

    def write(self, audio: np.ndarray, sr: int | None) -> None:
        import wave

        if not audio.size:
            return
        if self._w is None:
            self._w = wave.open(str(self.path), "wb")
            self._w.setnchannels(audio.shape[0])
            self._w.setsampwidth(2)
            self._w.setframerate(sr)
        pcm = (np.clip(audio.T, -1, 1) * 32767).astype("<i2")
        self._w.writeframes(pcm.tobytes())

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
            self._w = None
