"""The live tracker: the offline follower's landmarker and causal one-euro smoothing, for frames coming one by one."""

from __future__ import annotations

import numpy as np

from lipdub.face.detect import Landmarker, face_box, roi
from lipdub.face.follow import closest


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
    """The offline follower's landmarker for frames that arrive one by one: MediaPipe in IMAGE mode on a crop around
    where the face was last seen (the whole frame when it was lost), then one-euro smoothing.

    Not MediaPipe's VIDEO mode: its landmarks differ from the offline tracker's (the head read 1.2 % larger, the
    opening a frame late), and the mouths a live session draws (a prepared atlas, an actor profile) were measured by
    the offline tracker, so they were drawn off the filmed face: the realism detector told live dubs at 0.761 on six
    clips, 0.663 with this tracker (docs/RESULTS.md, Realism, stop 38)."""

    def __init__(self, fps: float):
        self._landmarker = Landmarker(num_faces=1)
        self.fps = fps
        self._filter = _OneEuro(fps)
        self._box: np.ndarray | None = None  # where the face was last seen (x, y, w, h)

    def track(self, index: int, rgb: np.ndarray) -> np.ndarray | None:
        """Frame `index`'s landmarks (478, 3; pixels), or None without a face."""
        h, w = rgb.shape[:2]
        found = None
        if self._box is not None:
            found = closest(self._landmarker.detect(rgb, roi(self._box, w, h)), self._box)
        if found is None:
            found = closest(self._landmarker.detect(rgb), None)
        if found is None:
            self.reset()
            return None
        self._box = face_box(found)
        return self._filter(found)

    def reset(self) -> None:
        self._filter.reset()
        self._box = None

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None
