"""The live tracker: MediaPipe in VIDEO mode plus causal one-euro smoothing, for frames that arrive one by one."""

from __future__ import annotations

import numpy as np

from lipdub.core.assets import face_landmarker_path
from lipdub.face.detect import mediapipe_tasks, native_stderr_silenced


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
        mp, BaseOptions, vision = mediapipe_tasks()
        self._mp = mp
        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(face_landmarker_path())),
            running_mode=vision.RunningMode.VIDEO, num_faces=1,
            min_face_detection_confidence=0.5, min_face_presence_confidence=0.5, min_tracking_confidence=0.5)
        with native_stderr_silenced():  # MediaPipe's C++ start-up chatter is not for the user
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
