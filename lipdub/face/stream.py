"""The live tracker: the offline follower's landmarker for frames coming one by one (smoothed after it by
face.smooth.AheadSmoother)."""

from __future__ import annotations

import numpy as np

from lipdub.face.detect import Landmarker, face_box, roi
from lipdub.face.follow import closest


class StreamTracker:
    """The offline follower's landmarker for frames that arrive one by one: MediaPipe in IMAGE mode on a crop around
    where the face was last seen (the whole frame when it was lost); each frame's landmarks as found (a live
    session smooths them as offline tracks are, with the frames its look-ahead lets it wait for: AheadSmoother).

    Not MediaPipe's VIDEO mode: its landmarks differ from the offline tracker's (the head read 1.2 % larger, the
    opening a frame late), and the mouths a live session draws (a prepared atlas, an actor profile) were measured by
    the offline tracker, so they were drawn off the filmed face: the realism detector told live dubs at 0.761 on six
    clips, 0.663 with this tracker (docs/RESULTS.md, Realism, stop 38)."""

    def __init__(self):
        self._landmarker = Landmarker(num_faces=1)
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
        return found

    def reset(self) -> None:
        self._box = None

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None
