"""The dubbing pipeline: media → face → speech → motion → render → compose → media.

Each stage's result is a plain value; tracks and speech analyses are cached as files a user can reuse.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from . import compose, face, media, motion, render, speech
from .errors import InputError, LipdubError, OutputError, ParameterError

log = logging.getLogger("lipdub")

LENGTH_POLICIES = ("audio", "video", "loop", "pingpong", "pad")


@dataclass
class DubOptions:
    transcript: str | None = None
    language: str | None = None
    length: str = "audio"
    strength: float = 1.0
    face_index: int | None = None
    face_box: tuple[float, float, float, float] | None = None
    crf: float = 16.0
    preset: str = "veryfast"
    cache: bool = True
    alignment: str | None = None  # a saved SpeechTrack JSON to use instead of analysing the audio
    save_alignment: str | None = None  # where to write the speech analysis for reuse

    def validate(self) -> None:
        """Every option checked before any work starts (a bad value must not cost a face track first)."""
        if self.length not in LENGTH_POLICIES:
            raise ParameterError(f"--length must be one of {', '.join(LENGTH_POLICIES)}, got {self.length!r}")
        if not 0 <= _number(self.crf, "--crf") <= 51:
            raise ParameterError(f"--crf must be between 0 (lossless) and 51, got {self.crf}")
        if not 0 <= _number(self.strength, "--strength") <= 3:
            raise ParameterError(f"--strength must be between 0 and 3 (1 = natural), got {self.strength}")
        if self.preset not in media.X264_PRESETS:
            raise ParameterError(f"unknown --preset {self.preset!r}; use one of: {', '.join(media.X264_PRESETS)}")
        if self.face_index is not None and (isinstance(self.face_index, bool) or not isinstance(
                self.face_index, (int, np.integer)) or self.face_index < 0):
            raise ParameterError(f"--face-index must be 0 or more (0 = the largest face), got {self.face_index!r}")
        if self.face_box is not None:
            try:
                box = [float(v) for v in self.face_box]
            except (TypeError, ValueError):
                box = []
            if len(box) != 4 or not np.isfinite(box).all() or min(box[2:]) <= 0:
                raise ParameterError("--face-box must be x,y,w,h in pixels with positive width and height")
        for name in ("transcript", "language"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ParameterError(f"--{name} must be text, got {type(getattr(self, name)).__name__}")


def _number(value, option: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{option} must be a number, got {value!r}") from None


@dataclass
class DubReport:
    output: Path
    frames: int
    fps: float
    duration: float
    faces_rendered: int
    speech_method: str
    timings: dict = field(default_factory=dict)


Progress = Callable[[str, int, int], None]  # (stage, done, total)


def _frames(path: Path):
    return lambda: media.iter_frames(path)


def load_track(video: Path, info: media.VideoInfo, opts: DubOptions, progress: Progress | None) -> face.FaceTrack:
    key = face.cache_key(video, face_index=opts.face_index, face_box=opts.face_box)
    cache_file = face.cache_dir() / "tracks" / f"{key}.npz"
    if opts.cache and cache_file.is_file():
        try:
            track = face.FaceTrack.load(cache_file)
            log.info("face track from cache %s", cache_file)
            return track
        except Exception:  # stale or damaged cache: track again
            pass
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress:
            progress("track", done[0], info.n_frames)

    track = face.track_frames(_frames(video), info.width, info.height, info.n_frames, info.fps,
                              face_index=opts.face_index, face_box_hint=opts.face_box, progress=tick,
                              frames_from=lambda start: media.iter_frames(video, start), workers=2)
    if opts.cache:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            track.save(cache_file)
        except OSError as exc:  # a read-only cache must not stop the dub
            log.warning("could not cache the face track: %s", exc)
    return track


def _pose_features(pose: face.Pose, idx: np.ndarray) -> np.ndarray:
    # direction of the face normal in the image: sin(yaw), sin(pitch)
    return pose.rotation[idx][:, :2, 2]


def dub(video, audio, output, options: DubOptions | None = None, progress: Progress | None = None) -> DubReport:
    opts = options or DubOptions()
    opts.validate()
    video, audio = Path(video), Path(audio)
    for p, what in ((video, "video"), (audio, "audio")):
        if not p.exists():
            raise InputError(f"{what} file not found: {p}")
    output = media.check_output_path(output, [video, audio])
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    info = media.probe_video(video)
    if opts.face_box is not None:
        x, y, w, h = (float(v) for v in opts.face_box)
        if x >= info.width or y >= info.height or x + w <= 0 or y + h <= 0:
            raise ParameterError(f"--face-box {x:g},{y:g},{w:g},{h:g} lies outside the {info.width}x{info.height} "
                                 "frame; give x,y,w,h in pixels of the displayed (upright) frame")
    samples16, _ = media.load_audio(audio, 16000)
    if len(samples16) < 160:
        raise InputError(f"{audio} holds no audio (or less than 10 ms); pass a file with speech")
    native, native_sr = media.load_audio(audio, None, mono=False)
    duration = len(samples16) / 16000.0
    timings["load"] = time.perf_counter() - t0

    # speech analysis runs beside face tracking: both spend their time in native code that releases the GIL
    from concurrent.futures import ThreadPoolExecutor

    saved = None
    if opts.alignment:  # checked before any tracking: a wrong file must fail fast
        saved = speech.SpeechTrack.load(opts.alignment)
        if abs(saved.duration - duration) > 0.1:
            raise ParameterError(f"--alignment {opts.alignment} describes {saved.duration:.2f} s of audio but "
                                 f"{audio} lasts {duration:.2f} s; save the alignment from this audio")
    if opts.save_alignment and not Path(opts.save_alignment).resolve().parent.is_dir():
        raise OutputError(f"cannot save the alignment: folder {Path(opts.save_alignment).parent} does not exist")

    def analyse_speech():
        t_s = time.perf_counter()
        result = saved or speech.analyse(samples16, 16000, transcript=opts.transcript, language=opts.language)
        if opts.save_alignment:
            _save_atomically(result, Path(opts.save_alignment))
        timings["speech"] = time.perf_counter() - t_s
        return result

    with ThreadPoolExecutor(1, thread_name_prefix="lipdub-speech") as pool:
        speech_future = pool.submit(analyse_speech)
        t = time.perf_counter()
        track = load_track(video, info, opts, progress)
        timings["track"] = time.perf_counter() - t
        speech_track = speech_future.result()

    schedule = media.output_schedule(len(track), info.fps, duration, "pingpong" if opts.length == "audio"
                                     else opts.length)
    n_out = len(schedule)
    out_times = np.arange(n_out) / info.fps
    mouth = motion.mouth_track(speech_track, out_times, opts.strength)

    t = time.perf_counter()
    renderer = None
    if track.valid.any():
        renderer = Renderer(video, info, track, progress)
        plan = renderer.plan(schedule, mouth)
    else:
        log.warning("no face found in %s: writing the video unchanged with the new audio", video)
    timings["atlas"] = time.perf_counter() - t

    t = time.perf_counter()
    faces_rendered = 0
    with media.VideoWriter(output, info.width, info.height, info.fps, audio=native, audio_sr=native_sr,
                           crf=opts.crf, preset=opts.preset) as writer, \
            BackgroundWriter(writer) as sink, media.FrameReader(video, info) as reader:
        for k, j in enumerate(schedule):
            j = int(j)
            frame = reader.get(j)
            if renderer is not None:
                frame, rendered = renderer.frame(k, j, frame, plan)
                faces_rendered += rendered
            sink.write(frame)
            if progress:
                progress("render", k + 1, n_out)
    timings["render"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return DubReport(output, n_out, info.fps, n_out / info.fps, faces_rendered, speech_track.method, timings)


def _save_atomically(track, path: Path) -> None:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".json", dir=path.parent)
    os.close(fd)
    try:
        track.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class BackgroundWriter:
    """Encodes on a second thread (x264 releases the GIL) while the next frame renders; errors surface on the
    caller's thread, and leaving the block with an exception discards queued frames."""

    def __init__(self, writer: media.VideoWriter, depth: int = 6):
        import queue
        import threading

        self.writer = writer
        self.queue: "queue.Queue" = queue.Queue(depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="lipdub-encoder", daemon=True)

    def _run(self) -> None:
        while True:
            frame = self.queue.get()
            if frame is None:
                return
            if self.error is None:
                try:
                    self.writer.write(frame)
                except BaseException as exc:  # re-raised on the caller's thread
                    self.error = exc

    def write(self, frame: np.ndarray) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(frame)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.error = self.error or exc
        self.queue.put(None)
        self.thread.join()
        if exc_type is None and self.error is not None:
            raise self.error
        return False


class Renderer:
    """Holds the clip's appearance atlas and mouth model; renders output frames in order."""

    def __init__(self, video: Path, info: media.VideoInfo, track: face.FaceTrack, progress: Progress | None = None):
        self.info, self.track = info, track
        self.canonical = face.canonical_shape(track)
        self.pose = face.estimate_pose(track, self.canonical)
        self.warper = render.MeshWarper(self.canonical)
        px_per_unit = float(np.median(self.pose.scale[track.valid]))
        self.px_per_unit = px_per_unit
        self.atlas = render.Atlas(self.canonical, px_per_unit, len(track))
        for fr in media.iter_frames(video):
            i = fr.index
            if i < len(track) and track.valid[i] and self.atlas.wants(i):
                self.atlas.add(i, fr.rgb, track.landmarks[i])
            if progress:
                progress("atlas", i + 1, len(track))
        if self.atlas.n == 0:
            raise LipdubError(f"could not build a mouth atlas from {video}; is the face too small or turned away?")
        # pose-free landmarks of the atlas frames only (memory stays bounded by the atlas, not the video length)
        self.norm = np.stack([self.pose.to_canonical(int(i), track.landmarks[int(i)].astype(np.float64))
                              for i in self.atlas.frame_index[: self.atlas.n]]).astype(np.float32)
        self.model = render.build_mouth_model(self.canonical, self.norm, np.ones(len(self.norm), bool))
        self.atlas_open = render.descriptors(self.norm)[:, 0]
        self.donor = int(np.argmax(self.atlas_open))  # the clip's most open mouth: interior donor
        self._edge_pos = [render.CONTROL.index(i) for i in render.UPPER_EDGE]
        self.donor_src = self._crop_controls(self.donor)
        self.colour = compose.ColourMatcher()
        self.prev_j: int | None = None

    def plan(self, schedule: np.ndarray, mouth: motion.MouthTrack):
        """Wanted canonical opening/width per output frame and the atlas frame to draw each from."""
        m = self.model
        open_c = mouth.opening * m.open_max
        width_c = m.rest_width * (1 + 0.12 * mouth.width)
        a = self.atlas
        desc = render.descriptors(self.norm)
        scale = np.array([1 / m.open_max, 3 / m.rest_width])
        want = np.stack([open_c, width_c], 1) * scale
        sel = render.select_frames(desc * scale, _pose_features(self.pose, a.frame_index[: a.n]),
                                   a.frame_index[: a.n], want, _pose_features(self.pose, schedule),
                                   jump_cost=0.05, pose_weight=2.0, atlas_cost=self.blur_cost())
        return open_c, width_c, sel

    def blur_cost(self) -> np.ndarray:
        """Penalty for atlas frames blurrier than the clip's typical frame (motion blur ghosts the lips)."""
        sharp = self.atlas.sharpness[: self.atlas.n].astype(np.float64)
        typical = float(np.median(sharp)) if len(sharp) else 0.0
        if typical <= 0:
            return np.zeros(len(sharp))
        return 0.3 * np.clip(1 - sharp / typical, 0, 1) ** 2

    def frame(self, k: int, j: int, frame: np.ndarray, plan) -> tuple[np.ndarray, bool]:
        """Output frame k drawn over source frame j; frames without the speaker pass through untouched."""
        open_c, width_c, sel = plan
        if j >= len(self.track) or not self.track.valid[j]:
            self.colour.reset()
            self.prev_j = None
            return frame, False
        if self.prev_j is not None and abs(j - self.prev_j) > 1:
            self.colour.reset()  # a loop jump: the lighting may differ
        self.prev_j = j
        return self.render_frame(frame, j, int(sel[k]), float(open_c[k]), float(width_c[k])), True

    def _crop_controls(self, a: int) -> np.ndarray:
        """Control points of atlas entry a in its crop's pixels."""
        atlas, pose, warper = self.atlas, self.pose, self.warper
        fa = int(atlas.frame_index[a])
        pts = pose.to_frame(fa, warper.control_points(self.norm[a]))[:, :2]
        pts[: len(render.CONTROL)] = self.track.landmarks[fa, render.CONTROL, :2]
        return pts @ atlas.affine[a][:, :2].T + atlas.affine[a][:, 2]

    def _to_frame(self, j: int, shape: np.ndarray) -> np.ndarray:
        dst = self.pose.to_frame(j, self.warper.control_points(shape))[:, :2]
        # the top edge stays exactly where this frame has it, so the seam lines up with the unchanged cheeks
        dst[self._edge_pos] = self.track.landmarks[j, render.UPPER_EDGE, :2]
        return dst

    def interior(self, patch: np.ndarray, j: int, dst: np.ndarray, roi, detail, opening: float, width: float):
        """Mouth interior for a target opening wider than the chosen atlas mouth."""
        d, n_ctrl = self.donor, len(render.CONTROL)
        donor_open = float(self.atlas_open[d])
        if donor_open >= 0.85 * opening:  # the clip has a mouth this open: use it whole
            return self.warper.warp(self.atlas.crops[d], self.donor_src, dst, roi, detail)[0]
        # wider than the clip ever opens (a photo, a mumbler): the donor's upper teeth stay under the upper lip,
        # its lower teeth ride down with the jaw, and the gap between them is a dark cavity
        cavity = render.synthetic_cavity(patch, dst[:n_ctrl], roi)
        if donor_open < 0.02:
            return cavity
        dst_u = self._to_frame(j, render.target_shape(self.model, self.norm[d], donor_open, width))
        teeth = self.warper.warp(self.atlas.crops[d], self.donor_src, dst_u, roi, detail)[0]
        drop = dst[render.CONTROL.index(14)] - dst_u[render.CONTROL.index(14)]
        shift = np.float32([[1, 0, drop[0]], [0, 1, drop[1]]])
        teeth_low = cv2.warpAffine(teeth, shift, teeth.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
        mask_u = render.inner_lip_mask(dst_u[:n_ctrl], roi)
        mask_l = cv2.warpAffine(mask_u, shift, mask_u.shape[1::-1])
        rows = np.arange(mask_u.shape[0], dtype=np.float32)[:, None]
        mid = 0.5 * (dst_u[render.CONTROL.index(13), 1] + dst_u[render.CONTROL.index(14), 1]) - roi[1]
        fade = max(1.5, 0.012 * float(self.pose.scale[j]))  # teeth edges fade into the cavity, no cut line
        mask_u = (mask_u * np.clip((mid - rows) / fade + 0.5, 0, 1))[..., None]
        mask_l = (mask_l * np.clip((rows - mid - drop[1]) / fade + 0.5, 0, 1))[..., None]
        out = cavity * (1 - mask_u) + teeth * mask_u
        return (out * (1 - mask_l) + teeth_low * mask_l + 0.5).astype(np.uint8)

    def render_frame(self, frame: np.ndarray, j: int, a: int, opening: float, width: float) -> np.ndarray:
        atlas, pose, warper = self.atlas, self.pose, self.warper
        fa = int(atlas.frame_index[a])
        shape = render.target_shape(self.model, self.norm[a], opening, width)
        dst = pose.to_frame(j, warper.control_points(shape))[:, :2]
        n_ctrl = len(render.CONTROL)
        # the top edge stays exactly where this frame has it, so the seam lines up with the unchanged cheeks
        edge_pos = [render.CONTROL.index(i) for i in render.UPPER_EDGE]
        dst[edge_pos] = self.track.landmarks[j, render.UPPER_EDGE, :2]
        src_frame = pose.to_frame(fa, warper.control_points(self.norm[a]))[:, :2]
        src_frame[:n_ctrl] = self.track.landmarks[fa, render.CONTROL, :2]
        src_open = float(self.atlas_open[a])
        squeeze = max(1 - opening / 0.04, (1 - opening / src_open) if src_open > 0.02 else 0.0)
        if squeeze > 0:
            # a mouth closing over its source: the lips cover the teeth instead of teeth being squeezed onto
            # the lips (MediaPipe's inner contour often sits on the teeth' edge, not the lip's)
            src_frame[:n_ctrl] = render.pull_inner_lips(src_frame[:n_ctrl], 0.35 * min(squeeze, 1.0))
        src = src_frame @ atlas.affine[a][:, :2].T + atlas.affine[a][:, 2]
        h, w = frame.shape[:2]
        scale = pose.scale[j]
        roi = compose.region_of_interest(dst, w, h, margin=2)
        lips = dst[[render.CONTROL.index(i) for i in render.LIPS]]
        margin = 0.08 * scale
        detail = (int(lips[:, 0].min() - margin), int(lips[:, 1].min() - margin),
                  int(lips[:, 0].max() + margin) + 1, int(lips[:, 1].max() + margin) + 1)
        warped, cover = warper.warp(atlas.crops[a], src, dst, roi, detail)
        lack = opening - self.atlas_open[a]
        if opening > 0.05 and lack > 0.2 * opening:
            # the chosen mouth is less open than asked: a stretched interior looks smeared, so the opening shows
            # the clip's most open mouth: real teeth and tongue, anchored to the lips
            # a steep ramp: half-blended interiors show two sets of teeth (ghosting)
            weight = float(np.clip((lack / opening - 0.2) / 0.15, 0.0, 1.0))
            interior = self.interior(warped, j, dst, roi, detail, opening, width)
            m = (render.inner_lip_mask(dst[:n_ctrl], roi) * weight)[..., None]
            warped = (warped * (1 - m) + interior * m + 0.5).astype(np.uint8)
        hull = np.concatenate([dst[: n_ctrl][[render.CONTROL.index(i) for i in face.JAW]],
                               self.track.landmarks[j, face.JAW, :2],
                               self.track.landmarks[j, render.UPPER_EDGE, :2]])
        alpha = compose.feathered_mask(hull, roi, feather=0.12 * scale)
        alpha *= cover.astype(np.float32) / 255.0
        x0, y0, x1, y1 = roi
        warped = self.colour(warped, frame[y0:y1, x0:x1], alpha)
        return compose.blend(frame, warped, alpha, roi)
