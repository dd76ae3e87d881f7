"""Face detection: MediaPipe's FaceLandmarker on whole frames and crops, with tiles for faces too small to be found
in the whole frame, and the box arithmetic (face_box, iou, roi) the survey and the follower share."""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading
import types
import weakref

import numpy as np

from lipdub.core.assets import face_landmarker_path

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging to stderr
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

_STDERR_LOCK = threading.Lock()
# Landmarkers not closed yet. One left to the garbage collector at interpreter exit (a dub stopped by a signal in
# the middle of creating one) is closed by MediaPipe's __del__ after its modules are torn down, which prints a
# traceback under "interrupted"; closing them at exit, before the teardown, ends quietly.
_OPEN: "weakref.WeakSet[Landmarker]" = weakref.WeakSet()


@atexit.register
def _close_open_landmarkers() -> None:
    for det in list(_OPEN):
        det.close()


class native_stderr_silenced:
    """Point file descriptor 2 at /dev/null for a moment: native libraries log there, bypassing Python."""

    def __enter__(self):
        _STDERR_LOCK.acquire()
        sys.stderr.flush()
        self._saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc):
        os.dup2(self._saved, 2)
        os.close(self._saved)
        _STDERR_LOCK.release()


class _Deferred(types.ModuleType):
    """A stand-in module that imports the real one on first use of an attribute."""

    def __getattr__(self, attr: str):
        if attr.startswith("__"):  # what the import system probes for: a plain module's answer
            raise AttributeError(attr)
        return getattr(importlib.import_module(self.__name__), attr)


_IMPORT_LOCK = threading.Lock()
_PYPLOT = "matplotlib.pyplot"


def mediapipe_tasks():
    """(mediapipe, BaseOptions, vision). MediaPipe's vision package imports its drawing utilities, which import
    matplotlib.pyplot (~0.26 s of CPU beyond matplotlib itself, on every first dub), and lipdub never draws with
    them: while MediaPipe is imported, pyplot is a stand-in that imports the real one if the drawing utilities are
    ever used; nothing else sees it (sys.modules holds the real pyplot, or none, afterwards)."""
    with _IMPORT_LOCK:
        stand_in = None
        if "mediapipe.tasks.python.vision" not in sys.modules and _PYPLOT not in sys.modules:
            stand_in = sys.modules[_PYPLOT] = _Deferred(_PYPLOT)
        try:
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions, vision
        finally:
            if stand_in is not None and sys.modules.get(_PYPLOT) is stand_in:
                del sys.modules[_PYPLOT]
    return mp, BaseOptions, vision


class Landmarker:
    """MediaPipe FaceLandmarker in IMAGE mode on crops: each call is independent, so crops may move freely."""

    def __init__(self, num_faces: int = 4):
        mp, BaseOptions, vision = mediapipe_tasks()
        self._mp = mp
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(face_landmarker_path())),
            running_mode=vision.RunningMode.IMAGE, num_faces=num_faces,
            min_face_detection_confidence=0.5, min_face_presence_confidence=0.5)
        self._landmarker = None
        _OPEN.add(self)
        with native_stderr_silenced():  # MediaPipe's C++ start-up chatter is not for the user
            self._landmarker = vision.FaceLandmarker.create_from_options(options)
            self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((64, 64, 3), np.uint8)))

    def detect(self, image, box: tuple[int, int, int, int] | None = None) -> list[np.ndarray]:
        """Faces in `image` (optionally only inside crop box x0,y0,x1,y1) as (478,3) pixel arrays of the full frame.
        `image` is an RGB array or a media.Frame, of which only the box is converted."""
        x0, y0 = 0, 0
        img = rgb_of(image) if box is None else None
        if box is not None:
            x0, y0, x1, y1 = box
            img = image[y0:y1, x0:x1] if isinstance(image, np.ndarray) else image.rgb_box(box)
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
        _OPEN.discard(self)
        landmarker, self._landmarker = self._landmarker, None
        if landmarker is not None:
            landmarker.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LazyLandmarker:
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


def rgb_of(image) -> np.ndarray:
    """The whole RGB frame of an RGB array or a media.Frame."""
    return image if isinstance(image, np.ndarray) else image.rgb


def face_box(lms: np.ndarray) -> np.ndarray:
    """x, y, w, h of a face's landmarks."""
    x0, y0 = lms[:, 0].min(), lms[:, 1].min()
    return np.array([x0, y0, lms[:, 0].max() - x0, lms[:, 1].max() - y0], dtype=np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x, y, w, h boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    return inter / max(a[2] * a[3] + b[2] * b[3] - inter, 1e-6)


def tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Overlapping square crops: the detector misses faces narrower than ~12 % of the frame's long side."""
    found = []
    for frac in (1.0, 0.55):
        side = int(min(width, height) * frac)
        nx = max(1, int(np.ceil((width - side) / (side * 0.6))) + 1)
        ny = max(1, int(np.ceil((height - side) / (side * 0.6))) + 1)
        for ix in range(nx):
            for iy in range(ny):
                x0 = int(round(ix * (width - side) / max(nx - 1, 1)))
                y0 = int(round(iy * (height - side) / max(ny - 1, 1)))
                found.append((x0, y0, x0 + side, y0 + side))
    return found


def detect_all(landmarker: Landmarker, image) -> list[np.ndarray]:
    """Every face in the frame (an RGB array or a media.Frame): full frame first, then tiles for small faces
    (duplicates merged)."""
    rgb = rgb_of(image)
    faces = landmarker.detect(rgb)
    if faces and max(face_box(f)[2] for f in faces) > 0.12 * max(rgb.shape[:2]):
        return faces
    h, w = rgb.shape[:2]
    for tile in tiles(w, h):
        for f in landmarker.detect(rgb, tile):
            if all(iou(face_box(f), face_box(g)) < 0.3 for g in faces):
                faces.append(f)
    return faces


def roi(box: np.ndarray, width: int, height: int, scale: float = 2.2) -> tuple[int, int, int, int]:
    """The crop x0, y0, x1, y1 to search for the face last seen in `box`: `scale` times its size, inside the frame."""
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    side = max(box[2], box[3]) * scale
    x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    x1, y1 = int(min(width, cx + side / 2)), int(min(height, cy + side / 2))
    return x0, y0, x1, y1
