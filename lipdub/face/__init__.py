"""face: find the speaker, track MediaPipe's 478-point 3D mesh on every frame, smooth it, normalise head pose.

Frames without the speaker's face are marked invalid and later pass through untouched. Tracks are cached per input
file (keyed by path, size and mtime) so a second dub of the same video skips tracking.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from lipdub.errors import ParameterError
from lipdub.core.assets import face_landmarker_path
from lipdub.core.cache import cache_dir, cache_key as core_cache_key
from lipdub.core.metrics import pearson_at_best_lag
from lipdub.core.landmarks import OUTER_UPPER, OUTER_LOWER, INNER_UPPER, INNER_LOWER, STABLE, EYE_OUTER, JAW, CHIN

log = logging.getLogger("lipdub")

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging to stderr
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TRACK_VERSION = 3  # bump when tracking or smoothing changes so stale caches are ignored

# Speaker choice. "largest": the largest persistent face. "auto": among the few largest persistent faces, the one whose
# mouth moves with the video's own sound (falls back to the largest when there is no sound or nothing correlates).
SPEAKER_MODES = ("largest", "auto")
# --speaker auto asks its caller how the mouth should move with a stretch of sound: given 16 kHz mono samples, a
# function from frame times (s, from the stretch's start) to the predicted inner-lip opening, or None when the stretch
# holds no speech. The face stage only compares mouths; the prediction is the speech and motion stages' (see
# pipeline.speaker).
MouthFromSound = Callable[[np.ndarray], "Callable[[np.ndarray], np.ndarray] | None"]
AUTO_MAX_CANDIDATES = 4  # faces compared, by survey score
AUTO_MIN_PRESENCE = 0.25  # share of the survey samples a candidate must appear in
AUTO_WINDOW = 20.0  # s of video tracked densely per candidate
AUTO_MAX_LAG = 3  # frames: the best lag within ± this many frames counts (sound and picture may be a little off)
AUTO_MIN_R = 0.15  # below this, no face moves with the sound: fall back to the largest


@dataclass
class FaceTrack:
    """The speaker's face in every frame of one video, in pixel coordinates of the displayed frame."""

    times: np.ndarray  # (T,) seconds
    landmarks: np.ndarray  # (T, 478, 3) float32: x, y in pixels; z in the same pixel scale
    valid: np.ndarray  # (T,) bool: the speaker's face was found
    width: int
    height: int
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)

    def save(self, path: str | Path) -> None:
        """An .npz file (np.load reads it); the landmarks are written in blocks, so a long track held on disk
        (landmark_array) is never loaded whole."""
        import zipfile

        path = Path(path)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        lm = self.landmarks
        try:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for name, arr in (("times", self.times), ("valid", self.valid),
                                  ("size", np.array([self.width, self.height])), ("version", np.array(TRACK_VERSION)),
                                  ("meta", np.array(repr(self.meta)))):
                    with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                        np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)
                with zf.open("landmarks.npy", "w", force_zip64=True) as fh:
                    np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(
                        np.dtype("<f4")), "fortran_order": False, "shape": tuple(lm.shape)})
                    for a in range(0, len(lm), BLOCK):
                        fh.write(np.ascontiguousarray(lm[a:a + BLOCK], dtype="<f4").tobytes())
                        release_pages(lm)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | Path) -> "FaceTrack":
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != TRACK_VERSION:
                raise ValueError("stale track version")
            w, h = (int(v) for v in z["size"])
            with z.zip.open("landmarks.npy") as fh:  # read in blocks into a landmark_array (on disk when long)
                version = np.lib.format.read_magic(fh)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(fh)
                if fortran or len(shape) != 3 or shape[1:] != (478, 3):
                    raise ValueError("unexpected landmark array")
                lm = landmark_array(shape[0])
                for a in range(0, shape[0], BLOCK):
                    b = min(shape[0], a + BLOCK)
                    lm[a:b] = np.frombuffer(fh.read((b - a) * 478 * 3 * dtype.itemsize), dtype).reshape(b - a, 478, 3)
                    release_pages(lm)
            return cls(z["times"], lm, z["valid"].astype(bool), w, h)


# --------------------------------------------------------------------------------------------------- storage
# A track's landmarks take 478 x 3 x 4 bytes a frame: 516 MB for an hour at 25 fps. Longer tracks than RAM_BYTES are
# kept in a disk-backed array (a memory map of an unlinked temporary file): memory use then stays flat with the
# video's length. The kernel counts the pages a process touched in a file map as its resident memory until they are
# given back, so a background thread gives them back (madvise DONTNEED: the data stays in the file and the page cache)
# every RELEASE_SECONDS, and code that sweeps a whole track does so in BLOCKs and gives them back after each.

RAM_BYTES = 64 << 20  # landmark arrays up to this size stay in RAM (~11,700 frames, 7.8 min at 25 fps)
BLOCK = 2048  # frames per block in whole-track sweeps
RELEASE_SECONDS = 0.5


def landmark_array(n: int) -> np.ndarray:
    """A zeroed (n, 478, 3) float32 array: in RAM up to RAM_BYTES, else a memory map of an unlinked temporary
    file whose touched pages are given back to the system regularly (see above)."""
    if n * 478 * 3 * 4 <= RAM_BYTES:
        return np.zeros((n, 478, 3), np.float32)
    import tempfile

    with tempfile.TemporaryFile(prefix="lipdub-landmarks-") as fh:  # the map keeps the data after the file closes
        arr = np.memmap(fh, dtype=np.float32, mode="w+", shape=(n, 478, 3))
    _Releaser.watch(arr)
    return arr


def release_pages(arr) -> None:
    """Give back the resident pages of a disk-backed landmark array (no-op for arrays in RAM)."""
    mm = getattr(arr, "_mmap", None)
    if mm is not None:
        try:
            mm.madvise(__import__("mmap").MADV_DONTNEED)
        except (ValueError, OSError, AttributeError):  # closed, or no madvise on this platform
            pass


def take_rows(arr, rows) -> np.ndarray:
    """arr[rows] (a copy) for a sparse sample of frames: read a few at a time with the pages given back in between,
    since each read of a disk-backed array maps megabytes of the kernel's read-ahead around it (a sample spread over
    an hour's track maps all 540 MB of it in one fancy-indexing read)."""
    rows = np.asarray(rows, np.int64)
    if getattr(arr, "_mmap", None) is None:
        return arr[rows]
    out = np.empty((len(rows),) + arr.shape[1:], arr.dtype)
    for a in range(0, len(rows), 16):
        out[a:a + 16] = arr[rows[a:a + 16]]
        release_pages(arr)
    return out


class _Releaser:
    """One daemon thread that calls release_pages on every live disk-backed landmark array twice a second."""

    _arrays: "list" = []
    _lock = __import__("threading").Lock()
    _thread = None

    @classmethod
    def watch(cls, arr: np.ndarray) -> None:
        import threading
        import weakref

        with cls._lock:
            cls._arrays.append(weakref.ref(arr))
            if cls._thread is None:
                cls._thread = threading.Thread(target=cls._run, name="lipdub-pages", daemon=True)
                cls._thread.start()

    @classmethod
    def _run(cls) -> None:
        import time

        while True:
            time.sleep(RELEASE_SECONDS)
            with cls._lock:
                alive = [a for a in (r() for r in cls._arrays) if a is not None]
                cls._arrays[:] = [r for r in cls._arrays if r() is not None]
            for a in alive:
                release_pages(a)
            del alive


# --------------------------------------------------------------------------------------------------- detection

_STDERR_LOCK = __import__("threading").Lock()


class _native_stderr_silenced:
    """Point file descriptor 2 at /dev/null for a moment: native libraries log there, bypassing Python."""

    def __enter__(self):
        _STDERR_LOCK.acquire()
        import sys

        sys.stderr.flush()
        self._saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc):
        os.dup2(self._saved, 2)
        os.close(self._saved)
        _STDERR_LOCK.release()


class Landmarker:
    """MediaPipe FaceLandmarker in IMAGE mode on crops: each call is independent, so crops may move freely."""

    def __init__(self, num_faces: int = 4):
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(face_landmarker_path())),
            running_mode=vision.RunningMode.IMAGE, num_faces=num_faces,
            min_face_detection_confidence=0.5, min_face_presence_confidence=0.5)
        with _native_stderr_silenced():  # MediaPipe's C++ start-up chatter is not for the user
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
            self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8)))

    def detect(self, rgb: np.ndarray, box: tuple[int, int, int, int] | None = None) -> list[np.ndarray]:
        """Faces in `rgb` (optionally only inside crop box x0,y0,x1,y1) as (478,3) pixel arrays of the full frame."""
        x0, y0 = 0, 0
        img = rgb
        if box is not None:
            x0, y0, x1, y1 = box
            img = rgb[y0:y1, x0:x1]
        if img.shape[0] < 32 or img.shape[1] < 32:
            return []
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(img))
        result = self._landmarker.detect(image)
        h, w = img.shape[:2]
        faces = []
        for lms in result.face_landmarks:
            a = np.array([(p.x, p.y, p.z) for p in lms], dtype=np.float32)
            a[:, 0] = a[:, 0] * w + x0
            a[:, 1] = a[:, 1] * h + y0
            a[:, 2] = a[:, 2] * w
            faces.append(a)
        return faces

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def face_box(lms: np.ndarray) -> np.ndarray:
    """x, y, w, h of a face's landmarks."""
    x0, y0 = lms[:, 0].min(), lms[:, 1].min()
    return np.array([x0, y0, lms[:, 0].max() - x0, lms[:, 1].max() - y0], dtype=np.float32)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    return inter / max(a[2] * a[3] + b[2] * b[3] - inter, 1e-6)


def _tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Overlapping square crops: the detector misses faces narrower than ~12 % of the frame's long side."""
    tiles = []
    for frac in (1.0, 0.55):
        side = int(min(width, height) * frac)
        nx = max(1, int(np.ceil((width - side) / (side * 0.6))) + 1)
        ny = max(1, int(np.ceil((height - side) / (side * 0.6))) + 1)
        for ix in range(nx):
            for iy in range(ny):
                x0 = int(round(ix * (width - side) / max(nx - 1, 1)))
                y0 = int(round(iy * (height - side) / max(ny - 1, 1)))
                tiles.append((x0, y0, x0 + side, y0 + side))
    return tiles


def detect_all(landmarker: Landmarker, rgb: np.ndarray) -> list[np.ndarray]:
    """Every face in the frame: full frame first, then tiles for small faces (duplicates merged)."""
    faces = landmarker.detect(rgb)
    if faces and max(face_box(f)[2] for f in faces) > 0.12 * max(rgb.shape[:2]):
        return faces
    h, w = rgb.shape[:2]
    for tile in _tiles(w, h):
        for f in landmarker.detect(rgb, tile):
            if all(_iou(face_box(f), face_box(g)) < 0.3 for g in faces):
                faces.append(f)
    return faces


def _roi(box: np.ndarray, width: int, height: int, scale: float = 2.2) -> tuple[int, int, int, int]:
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    side = max(box[2], box[3]) * scale
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(width, cx + side / 2)), int(min(height, cy + side / 2))
    return x0, y0, x1, y1


# --------------------------------------------------------------------------------------------------- speaker choice

@dataclass
class SurveyTrack:
    samples: list[int]  # survey sample numbers
    boxes: list[np.ndarray]

    @property
    def score(self) -> float:  # persistence x size: the default speaker is the largest persistent face
        return float(sum(b[2] * b[3] for b in self.boxes))


def link_tracks(samples: list[list[np.ndarray]], max_gap: int = 3) -> list[SurveyTrack]:
    """Greedy IoU linking of per-sample face boxes into tracks."""
    tracks: list[SurveyTrack] = []
    for s, boxes in enumerate(samples):
        taken: set[int] = set()
        for box in sorted(boxes, key=lambda b: -b[2] * b[3]):
            best, best_iou = None, 0.2
            for i, tr in enumerate(tracks):
                if i in taken or s - tr.samples[-1] > max_gap:
                    continue
                iou = _iou(tr.boxes[-1], box)
                if iou > best_iou:
                    best, best_iou = i, iou
            if best is None:
                tracks.append(SurveyTrack([s], [box]))
                taken.add(len(tracks) - 1)
            else:
                tracks[best].samples.append(s)
                tracks[best].boxes.append(box)
                taken.add(best)
    return tracks


def choose_speaker(tracks: list[SurveyTrack], face_index: int | None = None,
                   face_box_hint: tuple[float, float, float, float] | None = None) -> SurveyTrack | None:
    if not tracks:
        return None
    ranked = sorted(tracks, key=lambda t: -t.score)
    if face_box_hint is not None:
        hint = np.asarray(face_box_hint, dtype=np.float32)
        best = max(ranked, key=lambda t: max(_iou(b, hint) for b in t.boxes))
        if max(_iou(b, hint) for b in best.boxes) <= 0.0:
            raise ParameterError(f"no face overlaps --face-box {','.join(str(int(v)) for v in hint)}; "
                                 "give x,y,w,h in pixels of the displayed frame around the speaker's face")
        return best
    if face_index is not None:
        if not 0 <= face_index < len(ranked):
            raise ParameterError(f"--face-index {face_index} is out of range: {len(ranked)} face(s) found "
                                 "(0 = largest persistent face)")
        return ranked[face_index]
    return ranked[0]


# --------------------------------------------------------------------------------------------------- tracking

FrameSource = Callable[[], Iterable]  # yields objects with .index, .time, .rgb


class _Follower:
    """Follows one survey track frame by frame: a crop around where the face was last seen (or where the survey saw
    it); when it is lost, a whole-frame search that only accepts a face continuing this track."""

    def __init__(self, track: SurveyTrack | None, survey_frames: list[int], step: int, width: int, height: int):
        self.hint_at: dict[int, np.ndarray] = {}
        if track is not None:
            for s, box in zip(track.samples, track.boxes):
                self.hint_at[survey_frames[s]] = box
        self.hint_idx = np.array(sorted(self.hint_at), dtype=np.int64)
        self.active = track is not None
        self.step, self.width, self.height = step, width, height
        self.last_box: np.ndarray | None = None
        self.last_seen = -10**9

    def _nearest_hint(self, i: int) -> tuple[int, np.ndarray]:
        j = int(self.hint_idx[np.argmin(np.abs(self.hint_idx - i))])
        return j, self.hint_at[j]

    def find(self, det: "Landmarker", i: int, rgb: np.ndarray) -> np.ndarray | None:
        step = self.step
        expected = self.last_box if self.last_box is not None and i - self.last_seen <= 2 * step else None
        if expected is None and len(self.hint_idx):
            j, box = self._nearest_hint(i)
            expected = box if abs(j - i) <= 2 * step else None
        found = None
        if expected is not None:
            found = _closest(det.detect(rgb, _roi(expected, self.width, self.height)), expected)
        if found is None and self.active and (expected is None or i % step == 0):
            # lost the face: look again over the whole frame, but only accept this track's face
            ref = expected if expected is not None else (self._nearest_hint(i)[1] if len(self.hint_idx) else None)
            found = _closest(detect_all(det, rgb), ref) if ref is not None else None
        if found is not None:
            self.seen(i, found)
        return found

    def seen(self, i: int, lms: np.ndarray) -> None:
        self.last_box, self.last_seen = face_box(lms), i


class _LazyLandmarker:
    """A Landmarker created on first use (a thread whose frames are all known already never loads the model)."""

    def __init__(self, num_faces: int = 4):
        self.num_faces = num_faces
        self.det: Landmarker | None = None

    def get(self) -> Landmarker:
        if self.det is None:
            self.det = Landmarker(num_faces=self.num_faces)
        return self.det

    def close(self) -> None:
        if self.det is not None:
            self.det.close()


def track_frames(frames: Callable[[], Iterator], width: int, height: int, n_frames: int, fps: float,
                 face_index: int | None = None, face_box_hint=None,
                 progress: Callable[[int], None] | None = None,
                 frames_from: Callable[[int], Iterator] | None = None, workers: int = 1,
                 speaker: str = "largest", audio: np.ndarray | None = None,
                 mouth_from_sound: MouthFromSound | None = None) -> FaceTrack:
    """Track the speaker through `frames()`: a sparse survey picks the speaker, then a dense pass follows them.

    With `frames_from(start)` (frames from index `start` on) and workers=2, the dense pass runs as two threads on the
    two halves of the video: MediaPipe runs in native code without the GIL, so this uses both cores.

    speaker="largest" (default): the largest persistent face, or the one `face_index`/`face_box_hint` names.
    speaker="auto": among the few largest persistent faces, the one whose mouth moves with `audio`, the video's own
    sound (16 kHz mono float, sample 0 at the first frame's time; see media.video_audio); without sound, or when no
    face correlates, the largest face (with a warning). Its result is in `meta["speaker"]`. `mouth_from_sound` is
    how the mouth is predicted from that sound: the caller's speech and motion stages (see MouthFromSound).
    """
    if speaker not in SPEAKER_MODES:
        raise ParameterError(f"--speaker must be one of {', '.join(SPEAKER_MODES)}, got {speaker!r}")
    if speaker == "auto" and (face_index is not None or face_box_hint is not None):
        raise ParameterError("--speaker auto chooses the face itself: leave out --face-index and --face-box "
                             "(or use them with --speaker largest)")
    if speaker == "auto" and mouth_from_sound is None:
        raise ParameterError("speaker='auto' needs mouth_from_sound, the mouth the sound predicts "
                             "(lipdub.pipeline.speaker.mouth_from_sound)")
    step = max(1, int(round(fps / 2)))
    surveyor = _LazyLandmarker(num_faces=4)  # the two survey threads' landmarkers go on into the dense pass
    surveyor2 = _LazyLandmarker(num_faces=4)  # (0.4 s each to load)
    try:
        survey, survey_frames, survey_times, n_frames = _survey(frames, frames_from, n_frames, step, workers,
                                                                surveyor, surveyor2)
    except BaseException:
        surveyor.close()
        surveyor2.close()
        raise
    try:  # (the dense pass closes its landmarkers itself; closing twice is harmless)
        tracks = link_tracks(survey)
        meta: dict = {}
        known: dict[int, np.ndarray | None] = {}  # frames the speaker choice already tracked (None: face not found)
        if speaker == "auto":
            chosen, known, meta["speaker"] = _auto_speaker(tracks, survey_frames, survey_times, frames, frames_from,
                                                           width, height, fps, step, audio, workers,
                                                           mouth_from_sound)
        else:
            chosen = choose_speaker(tracks, face_index, face_box_hint)

        times = np.zeros(n_frames, np.float64)
        lms = landmark_array(n_frames)
        valid = np.zeros(n_frames, bool)
        seen = np.zeros(n_frames, bool)

        def dense(iterator: Iterator, stop: int, det: _LazyLandmarker) -> None:
            follow = _Follower(chosen, survey_frames, step, width, height)
            try:
                for fr in iterator:
                    i = fr.index
                    if i >= stop:
                        break
                    times[i], seen[i] = fr.time, True
                    if i in known:
                        found = known[i]
                        if found is not None:
                            follow.seen(i, found)
                    else:
                        found = follow.find(det.get(), i, fr.rgb)
                    if found is not None:
                        lms[i], valid[i] = found, True
                    if progress is not None:
                        progress(1)
            finally:
                det.close()

        if workers > 1 and frames_from is not None and n_frames >= 50:
            mid = n_frames // 2
            if known:  # split the frames still to track, not all frames, evenly between the two threads
                todo = np.ones(n_frames)
                todo[[i for i in known if i < n_frames]] = 0
                if todo.sum() > 0:
                    mid = int(np.clip(np.searchsorted(np.cumsum(todo), todo.sum() / 2), 1, n_frames - 1))
            _in_two_threads(lambda: dense(frames(), mid, surveyor),
                            lambda: dense(frames_from(mid), n_frames, surveyor2), "lipdub-track")
        else:
            dense(frames(), n_frames, surveyor)
    finally:
        surveyor.close()
        surveyor2.close()
    n = int(np.flatnonzero(seen).max()) + 1 if seen.any() else 0
    meta["speaker_found"] = chosen is not None
    track = FaceTrack(times[:n], lms[:n], valid[:n], width, height, meta=meta)
    return smooth_track(track)


def _in_two_threads(here: Callable[[], None], beside: Callable[[], None], name: str) -> None:
    """Run `beside` on a second thread while `here` runs on this one (MediaPipe and decoding release the GIL);
    the first error of either is raised once both have ended."""
    import threading

    errors: list[BaseException] = []

    def run(job):
        try:
            job()
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    thread = threading.Thread(target=run, args=(beside,), name=name)
    thread.start()
    try:
        run(here)
    finally:
        thread.join()
    if errors:
        raise errors[0]


def _survey(frames, frames_from, n_frames: int, step: int, workers: int, det: _LazyLandmarker,
            det2: _LazyLandmarker) -> tuple[list, list[int], list[float], int]:
    """Every face on every `step`-th frame: (boxes per surveyed frame, their indices, their times, frame count).
    With frames_from and workers > 1, the second half runs on a second thread (the same frames as one thread)."""

    def run(iterator, stop, lmk, out):
        n = 0
        for fr in iterator:
            if stop is not None and fr.index >= stop:
                break
            if fr.index % step == 0:
                out[0].append([face_box(f) for f in detect_all(lmk.get(), fr.rgb)])
                out[1].append(fr.index)
                out[2].append(fr.time)
            n = max(n, fr.index + 1)  # the probe may undercount
        out[3] = n

    first: list = [[], [], [], 0]
    if workers > 1 and frames_from is not None and n_frames >= 50:
        mid = n_frames // 2 // step * step
        second: list = [[], [], [], 0]
        _in_two_threads(lambda: run(frames(), mid, det, first), lambda: run(frames_from(mid), None, det2, second),
                        "lipdub-survey")
        for a, b in zip(first[:3], second[:3]):
            a += b
        first[3] = max(first[3], second[3])
    else:
        run(frames(), None, det, first)
    return first[0], first[1], first[2], max(n_frames, first[3])


def _auto_speaker(tracks: list[SurveyTrack], survey_frames: list[int], survey_times: list[float],
                  frames: Callable[[], Iterator], frames_from: Callable[[int], Iterator] | None,
                  width: int, height: int, fps: float, step: int, audio: np.ndarray | None, workers: int,
                  mouth_from_sound: MouthFromSound | None
                  ) -> tuple[SurveyTrack | None, dict[int, np.ndarray | None], dict]:
    """--speaker auto: the candidate face whose mouth opening follows the mouth the video's own sound predicts.

    Candidates are the AUTO_MAX_CANDIDATES best survey tracks seen in at least AUTO_MIN_PRESENCE of the survey. Each
    is tracked on every frame of one window of up to AUTO_WINDOW s (where the candidates are seen most), in parallel;
    meanwhile the window's sound goes through the speech analysis and the motion model (the same audio → mouth
    prediction that drives the dub). Pearson r of each candidate's inner-lip opening against that prediction, at the
    best lag within ±AUTO_MAX_LAG frames, decides. A raw loudness or voice-activity envelope is not enough: on the
    shared HDTF clips (8 s each) it correlated with the speaker's own mouth (r ≤ 0.23) no better than with the other
    speaker's (up to 0.33); the predicted mouth gives r 0.63–0.69 for the speaker against −0.18–−0.03 for the other face (and
    still 0.36–0.39 against ≤ 0 with the viseme rules alone, which never saw these clips).

    Returns the chosen track, the chosen face's landmarks on the window's frames (the dense pass reuses them) and a
    summary for FaceTrack.meta.
    """
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    t_start = time.perf_counter()
    ranked = sorted(tracks, key=lambda t: -t.score)
    largest = ranked[0] if ranked else None
    need = AUTO_MIN_PRESENCE * max(len(survey_frames), 1)
    cands = [t for t in ranked[:AUTO_MAX_CANDIDATES] if len(t.samples) >= need]
    info: dict = {"mode": "auto", "chosen": "largest", "candidates": []}
    if len(cands) < 2:
        log.debug("--speaker auto: %d persistent face(s), nothing to choose", len(cands))
        return largest, {}, info
    sr = 16000
    if audio is None or len(audio) < sr // 2:
        log.warning("--speaker auto: the video has no sound to match the mouths against; dubbing the largest face "
                    "(use --face-index or --face-box to pick another)")
        return largest, {}, info

    # the window: AUTO_WINDOW s of video where the candidates are seen most (the earliest such window)
    win = max(1, int(round(AUTO_WINDOW * fps)))
    span = max(1, int(np.ceil(win / step)))
    presence = np.zeros(len(survey_frames))
    for c in cands:
        presence[c.samples] += 1
    s0 = 0
    if len(survey_frames) > span:
        csum = np.concatenate([[0.0], np.cumsum(presence)])
        s0 = int(np.argmax(csum[span:] - csum[:-span]))
    f0, f1 = survey_frames[s0], survey_frames[s0] + win
    a0 = max(0.0, survey_times[s0])
    clip = np.asarray(audio[int(a0 * sr): int((a0 + win / fps) * sr) + sr // 10], np.float32)

    followers = [_Follower(c, survey_frames, step, width, height) for c in cands]
    found: list[dict[int, np.ndarray | None]] = [{} for _ in cands]
    frame_times: dict[int, float] = {}
    local = threading.local()
    made: list[Landmarker] = []

    def follow(k: int, i: int, rgb: np.ndarray) -> None:
        det = getattr(local, "det", None)
        if det is None:
            det = local.det = Landmarker(num_faces=4)
            made.append(det)
        found[k][i] = followers[k].find(det, i, rgb)

    n_workers = max(1, min(max(workers, 2), len(cands)))
    with ThreadPoolExecutor(1, thread_name_prefix="lipdub-speaker-audio") as audio_pool, \
            ThreadPoolExecutor(n_workers, thread_name_prefix="lipdub-speaker") as pool:
        analysis = audio_pool.submit(mouth_from_sound, clip)
        try:
            for fr in (frames_from(f0) if frames_from is not None else frames()):
                if fr.index < f0:
                    continue
                if fr.index >= f1:
                    break
                frame_times[fr.index] = fr.time
                list(pool.map(follow, range(len(cands)), [fr.index] * len(cands), [fr.rgb] * len(cands)))
        finally:
            for det in made:
                det.close()
        analysed = True
        try:
            predict = analysis.result()
        except Exception as exc:  # the sound cannot be analysed: the choice falls back, the dub goes on
            log.warning("--speaker auto: could not analyse the video's sound (%s)", exc)
            predict, analysed = None, False

    idx = np.array(sorted(frame_times), dtype=np.int64)
    rs: list[float] = []
    if predict is not None and len(idx) >= 8:
        predicted = predict(np.array([frame_times[i] for i in idx]) - a0)
        for k, c in enumerate(cands):
            curve = np.full(len(idx), np.nan)
            hits = [n for n, i in enumerate(idx) if found[k].get(int(i)) is not None]
            if hits:
                curve[hits] = inner_opening(np.stack([found[k][int(idx[n])] for n in hits]))
            r = np.nan
            if len(hits) >= 0.5 * len(idx):
                r, lag, _ = pearson_at_best_lag(curve, predicted, AUTO_MAX_LAG)
            else:
                lag = 0
            box = np.median(np.array(c.boxes), axis=0)
            rs.append(float(r))
            info["candidates"].append({"box": [round(float(v), 1) for v in box], "r": round(float(r), 4),
                                       "lag": int(lag), "frames_found": len(hits)})
    info["window"] = (round(a0, 3), round(a0 + len(idx) / fps, 3))
    info["seconds"] = round(time.perf_counter() - t_start, 3)
    best = int(np.nanargmax(rs)) if rs and np.isfinite(rs).any() else None
    if best is None or rs[best] < AUTO_MIN_R:
        if not analysed:
            why = "its sound could not be analysed"
        elif not rs:
            why = "no speech in the sound there"
        else:
            why = f"no mouth moves with the sound: best r {rs[best] if best is not None else float('nan'):.2f}"
        log.warning("--speaker auto: cannot tell who speaks in %.1f–%.1f s of the video (%s); dubbing the largest "
                    "face (use --face-index or --face-box to pick another)", *info["window"], why)
        k = next((k for k, c in enumerate(cands) if c is largest), None)  # its window is tracked already
        return largest, (found[k] if k is not None else {}), info
    info["chosen"] = best
    box = info["candidates"][best]["box"]
    log.info("--speaker auto: the face centred at %.0f,%.0f speaks (r %s for the %d candidates)",
             box[0] + box[2] / 2, box[1] + box[3] / 2, ", ".join(f"{r:.2f}" for r in rs), len(cands))
    return cands[best], found[best], info


def _closest(cands: list[np.ndarray], expected: np.ndarray | None) -> np.ndarray | None:
    """The candidate face that continues `expected` (same place, similar size), or None."""
    if not cands:
        return None
    if expected is None:
        return max(cands, key=lambda f: face_box(f)[2] * face_box(f)[3])
    ec = expected[:2] + expected[2:] / 2
    best, best_d = None, np.inf
    for f in cands:
        b = face_box(f)
        d = np.linalg.norm(b[:2] + b[2:] / 2 - ec) / max(expected[2], 1.0)
        ratio = b[2] / max(expected[2], 1.0)
        if d < 0.6 and 0.5 < ratio < 2.0 and d < best_d:
            best, best_d = f, d
    return best


# --------------------------------------------------------------------------------------------------- smoothing

def _segments(valid: np.ndarray, lms: np.ndarray) -> list[tuple[int, int]]:
    """Runs of valid frames, split at jumps (scene cuts, re-detections of a different face)."""
    runs, start = [], None
    for i in range(len(valid) + 1):
        if i % BLOCK == BLOCK - 1:
            release_pages(lms)  # a fast sweep: give the pages back as it goes (see landmark_array)
        cut = False
        if i < len(valid) and valid[i] and start is not None and i > 0 and valid[i - 1]:
            size = np.ptp(lms[i - 1, :, 0])
            cut = np.linalg.norm(lms[i, 1, :2] - lms[i - 1, 1, :2]) > 0.25 * max(size, 1.0)
        if start is not None and (i == len(valid) or not valid[i] or cut):
            runs.append((start, i))
            start = None
        if i < len(valid) and valid[i] and start is None:
            start = i
    return runs


def smooth_track(track: FaceTrack, sigma_stable: float = 1.5, sigma_mouth: float = 0.8) -> FaceTrack:
    """Zero-phase Gaussian smoothing inside each segment: heavier for the rigid head, lighter for lips and jaw so
    closures survive. MediaPipe jitters ~0.4 px on still faces; the rendered mouth inherits any head jitter.

    Filtered in blocks of BLOCK frames with enough neighbours on each side that every output equals filtering the
    whole segment at once (the filter's reach is 4 sigma); the result goes to a new landmark_array."""
    from scipy.ndimage import gaussian_filter1d

    src = track.landmarks
    lms = landmark_array(len(src))
    for a in range(0, len(src), BLOCK):
        lms[a:a + BLOCK] = src[a:a + BLOCK]
        release_pages(lms)
        release_pages(src)
    mouth = np.zeros(478, bool)
    mouth[OUTER_UPPER + OUTER_LOWER + INNER_UPPER + INNER_LOWER + JAW] = True
    reach = int(4.0 * max(sigma_stable, sigma_mouth) + 0.5) + 1  # gaussian_filter1d's radius (truncate=4), plus one
    for a, b in _segments(track.valid, src):
        if b - a < 3:
            continue
        for s0 in range(a, b, BLOCK):
            s1 = min(b, s0 + BLOCK)
            w0, w1 = max(a, s0 - reach), min(b, s1 + reach)
            seg = np.asarray(src[w0:w1])
            keep = slice(s0 - w0, s1 - w0)
            lms[s0:s1, ~mouth] = gaussian_filter1d(seg[:, ~mouth], sigma_stable, axis=0, mode="nearest")[keep]
            lms[s0:s1, mouth] = gaussian_filter1d(seg[:, mouth], sigma_mouth, axis=0, mode="nearest")[keep]
            release_pages(lms)
            release_pages(src)
    return FaceTrack(track.times, lms, track.valid, track.width, track.height, dict(track.meta))


# --------------------------------------------------------------------------------------------------- pose

@dataclass
class Pose:
    """Per-frame similarity transform: frame_point = scale * R @ canonical_point + t."""

    scale: np.ndarray  # (T,)
    rotation: np.ndarray  # (T, 3, 3)
    translation: np.ndarray  # (T, 3)

    def to_frame(self, i: int, pts: np.ndarray) -> np.ndarray:
        return self.scale[i] * pts @ self.rotation[i].T + self.translation[i]

    def to_canonical(self, i: int, pts: np.ndarray) -> np.ndarray:
        return ((pts - self.translation[i]) @ self.rotation[i]) / self.scale[i]


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity dst ≈ s R src + t (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    scale = float((d * sign).sum() / xs.var(0).sum())
    return scale, rot, mu_d - scale * rot @ mu_s


def canonical_shape(track: FaceTrack) -> np.ndarray:
    """The track's mean face in a canonical frame: eye corners 1 unit apart, upright, centred on the nose bridge."""
    idx = np.flatnonzero(track.valid)
    if len(idx) == 0:
        raise ValueError("no valid frames")
    sample = take_rows(track.landmarks, idx[:: max(1, len(idx) // 200)])
    ref = sample[len(sample) // 2].astype(np.float64)
    for _ in range(2):  # generalised Procrustes, two rounds are plenty
        aligned = []
        for lm in sample:
            s, r, t = umeyama(lm[STABLE].astype(np.float64), ref[STABLE])
            aligned.append(s * lm @ r.T + t)
        ref = np.mean(aligned, axis=0)
    # upright: eye line horizontal; unit: outer eye-corner distance; origin: nose bridge (168)
    left, right = ref[EYE_OUTER[0]], ref[EYE_OUTER[1]]
    angle = np.arctan2(right[1] - left[1], right[0] - left[0])
    c, s_ = np.cos(-angle), np.sin(-angle)
    rz = np.array([[c, -s_, 0], [s_, c, 0], [0, 0, 1]])
    ref = (ref - ref[168]) @ rz.T
    return ref / np.linalg.norm(ref[EYE_OUTER[1], :2] - ref[EYE_OUTER[0], :2])


def estimate_pose(track: FaceTrack, canonical: np.ndarray) -> Pose:
    n = len(track)
    scale = np.ones(n)
    rot = np.tile(np.eye(3), (n, 1, 1))
    trans = np.zeros((n, 3))
    for c, i in enumerate(np.flatnonzero(track.valid)):
        scale[i], rot[i], trans[i] = umeyama(canonical[STABLE], track.landmarks[i, STABLE].astype(np.float64))
        if c % BLOCK == BLOCK - 1:
            release_pages(track.landmarks)
    return Pose(scale, rot, trans)


def normalised_landmarks(track: FaceTrack, pose: Pose) -> np.ndarray:
    """(T, 478, 3) landmarks with head pose removed (canonical units: eye-corner distance = 1)."""
    out = np.zeros_like(track.landmarks, dtype=np.float32)
    for i in np.flatnonzero(track.valid):
        out[i] = pose.to_canonical(i, track.landmarks[i].astype(np.float64))
    return out


# --------------------------------------------------------------------------------------------------- mouth measures

def inner_opening(lms: np.ndarray) -> np.ndarray:
    """Inner-lip gap over eye-corner distance, from (…, 478, 2|3) landmarks: the sync measure used everywhere."""
    gap = np.mean([np.linalg.norm(lms[..., a, :2] - lms[..., b, :2], axis=-1)
                   for a, b in ((82, 87), (13, 14), (312, 317))], axis=0)
    iod = np.linalg.norm(lms[..., EYE_OUTER[0], :2] - lms[..., EYE_OUTER[1], :2], axis=-1)
    return gap / np.maximum(iod, 1e-6)


def mouth_width(lms: np.ndarray) -> np.ndarray:
    iod = np.linalg.norm(lms[..., EYE_OUTER[0], :2] - lms[..., EYE_OUTER[1], :2], axis=-1)
    return np.linalg.norm(lms[..., 61, :2] - lms[..., 291, :2], axis=-1) / np.maximum(iod, 1e-6)


# --------------------------------------------------------------------------------------------------- cache

def cache_key(path: str | Path, **options) -> str:
    """The cache key of `path` for face tracks and what is cut along them (TRACK_VERSION keys them)."""
    return core_cache_key(path, TRACK_VERSION, **options)
