"""live: dub a stream as it arrives (video calls, live translation, avatars).

Audio chunks (any size; 20 ms is typical) and video frames go in as they arrive; dubbed frames come out in order,
each with the audio that belongs to it, so a sink that writes or plays frame + audio together stays in sync. The delay
is bounded by the causal motion's look-ahead (a frame's mouth is known once ~100 ms of audio after it arrived) plus
tracking and rendering, which run on their own threads (MediaPipe, OpenCV and x264 work without the GIL, so the two
cores overlap). Every frame that goes in comes out once: none dropped, none repeated.

Appearance: an actor profile (photoreal, the actor's own mouths); for a video file, the mouths of its first minute,
tracked and cut before the session starts (`prepare_atlas`, cached like `lipdub dub`'s), with a profile mixed with
its mouths (render.foreign, as offline); otherwise the stream itself —
every other tracked frame joins a growing atlas of the speaker's real mouths; a still photo is one entry.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from lipdub import face, media, motion, render
from lipdub import profile as profiles
from lipdub.core.cache import cache_dir
from lipdub.core.constants import SR
from lipdub.errors import InputError, LipdubError, ParameterError
from lipdub.face.stream import StreamTracker
from lipdub.pipeline.caches import OWN_ATLAS_BYTES, load_cached_atlas, save_cached_atlas
from lipdub.pipeline.offline import filmed_pauses
from lipdub.render.foreign import live_mixed_atlas, live_mouth_model
from lipdub.render.live import LiveAppearance, Blinks

log = logging.getLogger(__name__)

MOTION_SR = SR
LIVE_REGIONS = ("lips", "lower")  # face/head plan expression over the whole speech: offline only
PREPARE_SECONDS = 60.0  # of a video file source: where its mouths are taken from before the session starts
PREPARE_CACHE_VERSION = 3  # 2: with each entry's head rotation; 3: with the speaker's rest


@dataclass
class LiveFrame:
    """One dubbed output frame with its share of the audio (samples [index, index+1) / fps of the stream)."""

    index: int
    time: float  # stream time of the frame (index / fps)
    rgb: np.ndarray
    audio: np.ndarray  # (channels, n) float32 at the pushed audio's rate
    rendered: bool  # False: no face found, the frame passes through
    delay: float | None = None  # wall seconds from the audio at `time` arriving to this frame being ready
    # the frame as decoded (given to push_frame) with the drawn pixels written back: what a sink encodes (the
    # pixels outside the mouth exactly as decoded, and no whole-frame RGB → YUV conversion); None when not given
    planar: media.PlanarFrame | None = None


@dataclass
class LiveStats:
    frames: int = 0
    rendered: int = 0
    delays: list = field(default_factory=list)
    track_cpu: float = 0.0  # CPU seconds of the tracking thread (landmarks + atlas growth)
    render_cpu: float = 0.0  # CPU seconds of the rendering thread

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.delays, q)) if self.delays else float("nan")


class LiveDubber:
    """Feed audio and video as they arrive; take dubbed frames out in order.

        dubber = LiveDubber(fps=25)
        dubber.push_audio(chunk, sr)      # from the audio thread, any chunk size
        dubber.push_frame(rgb[, planar])  # from the video thread (planar: the same frame as decoded, YUV 4:2:0)
        frame = dubber.get()              # LiveFrame, in order; None once close() has flushed everything
        dubber.close()                    # both streams ended

    The frame at stream time t is rendered once the motion has audio up to t + lookahead; it carries the audio of its
    own frame interval, so whoever writes or plays it delays the sound by exactly the same amount. `profile` is an
    actor profile (path or loaded) for photoreal mouths; `atlas` the source's own mouths prepared beforehand
    (prepare_atlas), mixed with the profile's when both are given; without either the atlas grows from the stream.
    `still` says the frames are one photo (it gets blinks). `motion_model` is a --motion-model choice (which
    shipped live model moves the mouth)."""

    def __init__(self, fps: float, profile=None, region: str = "lower", strength: float = 1.0,
                 lookahead: float = 0.1, still: bool = False, motion_source=None, atlas: render.Atlas | None = None,
                 motion_model: str = motion.MODEL_CHOICES[0]):
        if not np.isfinite(fps) or fps <= 0 or fps > 120:
            raise ParameterError(f"frame rate must be between 0 and 120, got {fps}")
        if region not in LIVE_REGIONS:
            raise ParameterError(f"live mode renders --region {' or '.join(LIVE_REGIONS)}; face and head plan "
                                 "expression over the whole speech: use `lipdub dub` for them")
        motion.check_strength(strength)
        self.fps = float(fps)
        self.strength = float(strength)
        if motion_source is None:
            motion_source = motion.StreamingMotion(fps=self.fps, lookahead=lookahead, strength=self.strength,
                                                   model=motion.load_causal_model(motion_model))
        self.motion = motion_source
        if isinstance(profile, (str, Path)):
            profile = profiles.load(profile)
        if profile is not None and atlas is not None and atlas.n:
            # the source's own mouths mixed with the profile's, the own preferred, as an offline profile dub does
            mixed = live_mixed_atlas(profile.atlas, atlas, getattr(atlas, "entry_rotation", None))
            mixed.rest_opening = getattr(atlas, "rest_opening", None)  # the shot's speaker rests as filmed
            self.appearance = LiveAppearance(mixed, live_mouth_model(profile.model, mixed), region, grow=False,
                                             fps=self.fps)
        elif profile is not None:
            self.appearance = LiveAppearance(profile.atlas, profile.model, region, grow=False, colour_gain=True,
                                             fps=self.fps)
        elif atlas is not None and atlas.n:  # the source's mouths, prepared before the session (prepare_atlas)
            self.appearance = LiveAppearance(atlas, None, region, grow=False, fps=self.fps)
        else:
            self.appearance = LiveAppearance(region=region, fps=self.fps)
        self.appearance.still = still
        self.stats = LiveStats()
        self._blinks: Blinks | None = None
        self._cond = threading.Condition()
        self._mouth: dict[int, tuple[float, float, float]] = {}  # opening, width, share of the rest
        self._committed = 0  # frames whose mouth is known
        self._frames_in = 0
        self._tracked: dict[int, tuple[np.ndarray, np.ndarray | None, media.PlanarFrame | None]] = {}
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
        self._stopping = False  # shutdown(): the workers leave at their next step
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
        if self._resampler is None:  # swresample keeps its filter state between chunks: no seams every 20 ms
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=MOTION_SR)
        return self._resample(mono)

    def _resample(self, mono: np.ndarray | None) -> np.ndarray:
        if mono is None:
            frames = self._resampler.resample(None)
        else:
            f = av.AudioFrame.from_ndarray(mono[None].astype(np.float32), format="flt", layout="mono")
            f.sample_rate = self.sr
            frames = self._resampler.resample(f)
        parts = [fr.to_ndarray().reshape(-1) for fr in frames]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)

    def _commit(self, mt) -> None:
        rest = mt.rest if mt.rest is not None else np.zeros(len(mt.times))  # a motion source without a rest: closed
        for t, o, w, c, r in zip(mt.times, mt.opening, mt.width, mt.closed, rest):
            k = int(round(float(t) * self.fps))
            self._mouth[k] = (0.0 if c else float(o), float(w), float(r))
            self._committed = max(self._committed, k + 1)

    def push_frame(self, rgb: np.ndarray, planar: media.PlanarFrame | None = None) -> None:
        """The next video frame (H, W, 3) uint8 RGB; blocks briefly when tracking is behind (bounded memory).
        `planar`, the same frame as decoded (its RGB is `rgb`), comes out as LiveFrame.planar with the mouth drawn
        into it in place: a sink then encodes it as it is (the offline dubs' path: Renderer.finish)."""
        self._raise_if_failed()
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ParameterError(f"frames must be uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
        if planar is not None and planar.shape != rgb.shape:
            raise ParameterError(f"the decoded frame is {planar.width}x{planar.height}, its RGB "
                                 f"{rgb.shape[1]}x{rgb.shape[0]}: pass the same frame both ways")
        k = self._frames_in
        self._frames_in += 1
        while True:
            try:
                self._track_q.put((k, rgb, planar), timeout=0.5)
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
        self._end_track_queue(drop=False)

    def _end_track_queue(self, drop: bool) -> None:
        """Put the end mark on the tracker's queue; `drop` discards waiting frames to make room. Never blocks on a
        tracker that has stopped."""
        while self._tracker_thread.is_alive():
            try:
                self._track_q.put(None, timeout=0.1)
                return
            except queue.Full:
                if drop:
                    try:
                        self._track_q.get_nowait()
                    except queue.Empty:
                        pass

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

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop both worker threads and release the tracker, whether or not the stream was read to its end. A caller
        that stops early (an error in a source) must call it: a tracker still running on a daemon thread when the
        interpreter exits aborts the whole process ("terminate called without an active exception", status -6)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._end_track_queue(drop=True)
        deadline = time.monotonic() + timeout
        for thread in (self._render_thread, self._tracker_thread):
            while thread.is_alive() and time.monotonic() < deadline:
                try:  # a render thread blocked on a full output queue
                    while True:
                        self._out.get_nowait()
                except queue.Empty:
                    pass
                thread.join(0.1)

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
                if item is None or self._stopping:
                    break
                k, rgb, planar = item
                c0 = time.thread_time()
                lms = tracker.track(k, rgb)
                if lms is not None:
                    self.appearance.offer(k, rgb, lms)
                self.stats.track_cpu += time.thread_time() - c0
                with self._cond:
                    self._tracked[k] = (rgb, lms, planar)
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
                        if self._error is not None or self._stopping:
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
                    rgb, lms, planar = self._tracked.pop(k)
                    opening, width, rest = self._mouth.pop(k, (0.0, 0.0, 1.0))
                    audio = self._audio_for(k)
                    arrived = self._arrival(k)
                    # arrivals older than this frame are no longer needed
                    while len(self._arrivals) > 1 and self._arrivals[0][0] < (k / self.fps) * (self.sr or 0):
                        self._arrivals.pop(0)
                c0 = time.thread_time()
                if self.appearance.still and lms is not None and self.appearance.renderer is not None:
                    if self._blinks is None:
                        self._blinks = Blinks(self.appearance.renderer.canonical)
                    rgb = self._blinks.apply(rgb, lms, k / self.fps)
                    planar = None  # the blink changed more than the mouth's pixels
                out, rendered = self.appearance.render(rgb, lms, opening, width, rest, planar)
                self.stats.render_cpu += time.thread_time() - c0
                now = time.monotonic()
                delay = None if arrived is None else now - arrived
                self.stats.frames += 1
                self.stats.rendered += rendered
                if delay is not None:
                    self.stats.delays.append(delay)
                self._out.put(LiveFrame(k, k / self.fps, out, audio, rendered, delay, planar))
                k += 1
        except BaseException as exc:
            self._fail(exc)


# ------------------------------------------------------------------------------------------------------ sources
# A source is a media file (played at real-time pace), a named pipe (FIFO) or "-" (standard input), or a capture
# device when the machine has one: /dev/videoN (v4l2) for pictures, "alsa:NAME" or "pulse:NAME" for sound.


def prepare_atlas(video, seconds: float = PREPARE_SECONDS, progress=None, cache: bool = True
                  ) -> render.Atlas | None:
    """The mouths of a video file's first `seconds` (tracked and cut as `lipdub dub` does, cached beside its
    atlases), for a live session to draw from its first frame on. A stream's own atlas starts empty: in the first
    seconds it holds only the few mouths filmed so far, and on 3–8 s clips the dub followed its own motion at r
    0.48–0.85 against 0.90–0.99 with the clip's mouths at hand. None for a photo, or when the file shows no usable
    face (the session then grows its atlas from the stream). The atlas carries `entry_rotation` (A, 3, 3), each
    entry's head rotation against its canonical face, which mixing it with a profile's needs (render.foreign)."""
    path = Path(video)
    info = media.probe_video(path)
    if info.is_image:
        return None
    n = max(1, min(info.n_frames, int(round(seconds * info.fps))))
    cache_file = cache_dir() / "atlases" / f"{face.cache_key(path, live_frames=n, v=PREPARE_CACHE_VERSION)}.npz"
    atlas = _load_prepared(cache_file) if cache else None
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
        own = render.Renderer.for_video(path, info, track, budget_bytes=OWN_ATLAS_BYTES)
    except InputError as exc:
        log.warning("live: no mouths prepared from %s (%s); the atlas grows from the stream", path, exc)
        return None
    atlas = own.atlas
    frames = atlas.seq.astype(np.int64) * render.Renderer.own_stride(track, atlas, OWN_ATLAS_BYTES)
    atlas.entry_rotation = own.pose.rotation[np.minimum(frames, len(track) - 1)].astype(np.float32)
    # how its speaker rests, measured as a dub of the file does (its tracked frames and the pauses of its sound)
    own.pauses = filmed_pauses(path, info, track)
    atlas.rest_opening = own.rest_opening()
    if cache:
        save_cached_atlas(cache_file, atlas, {"entry_rotation": atlas.entry_rotation,
                                              "rest_opening": np.float64(atlas.rest_opening)})
    return atlas


def _load_prepared(cache_file: Path) -> render.Atlas | None:
    """A prepared atlas from the cache with its entries' head rotations; None when there is none or it is stale."""
    atlas = load_cached_atlas(cache_file)
    if atlas is None:
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as z:
            atlas.entry_rotation = np.asarray(z["entry_rotation"], np.float32)
            atlas.rest_opening = float(z["rest_opening"])
    except (KeyError, OSError, ValueError):
        return None
    return atlas if atlas.entry_rotation.shape == (atlas.n, 3, 3) else None
