"""Following faces: the sparse survey (every face on every half second), linking its boxes into tracks, choosing
the speaker among them (largest, --face-index, --face-box), and the follower that tracks one face frame by frame."""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from lipdub.errors import ParameterError
from lipdub.face.detect import LazyLandmarker, Landmarker, detect_all, face_box, iou, roi

FrameSource = Callable[[], Iterable]  # yields objects with .index, .time, .rgb


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
                overlap = iou(tr.boxes[-1], box)
                if overlap > best_iou:
                    best, best_iou = i, overlap
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
        best = max(ranked, key=lambda t: max(iou(b, hint) for b in t.boxes))
        if max(iou(b, hint) for b in best.boxes) <= 0.0:
            raise ParameterError(f"no face overlaps --face-box {','.join(str(int(v)) for v in hint)}; "
                                 "give x,y,w,h in pixels of the displayed frame around the speaker's face")
        return best
    if face_index is not None:
        if not 0 <= face_index < len(ranked):
            raise ParameterError(f"--face-index {face_index} is out of range: {len(ranked)} face(s) found "
                                 "(0 = largest persistent face)")
        return ranked[face_index]
    return ranked[0]



class Follower:
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

    def find(self, det: Landmarker, i: int, image) -> np.ndarray | None:
        """The followed face's landmarks in frame `i` (an RGB array or a media.Frame: then only the crop searched is
        converted), or None."""
        step = self.step
        expected = self.last_box if self.last_box is not None and i - self.last_seen <= 2 * step else None
        if expected is None and len(self.hint_idx):
            j, box = self._nearest_hint(i)
            expected = box if abs(j - i) <= 2 * step else None
        found = None
        if expected is not None:
            found = closest(det.detect(image, roi(expected, self.width, self.height)), expected)
        if found is None and self.active and (expected is None or i % step == 0):
            # lost the face: look again over the whole frame, but only accept this track's face
            ref = expected if expected is not None else (self._nearest_hint(i)[1] if len(self.hint_idx) else None)
            found = closest(detect_all(det, image), ref) if ref is not None else None
        if found is not None:
            self.seen(i, found)
        return found

    def seen(self, i: int, lms: np.ndarray) -> None:
        self.last_box, self.last_seen = face_box(lms), i



def closest(cands: list[np.ndarray], expected: np.ndarray | None) -> np.ndarray | None:
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



def in_two_threads(here: Callable[[], None], beside: Callable[[], None], name: str) -> None:
    """Run `beside` on a second thread while `here` runs on this one (MediaPipe and decoding release the GIL);
    the first error of either is raised once both have ended."""
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


SURVEY_SIDE = 1920  # the survey looks at larger frames scaled down to this long side: it only needs boxes, and
# MediaPipe's copies of a whole 4K frame on two threads cost ~300 MB


def survey_boxes(det: Landmarker, frame) -> list[np.ndarray]:
    """The boxes (x, y, w, h in the frame's pixels) of every face in `frame` (a media.Frame), found on the frame
    scaled to SURVEY_SIDE when it is larger (a face there is as large as in a 1080p video)."""
    import cv2

    rgb = frame.rgb
    k = SURVEY_SIDE / max(rgb.shape[:2])
    if k >= 1:
        return [face_box(f) for f in detect_all(det, rgb)]
    small = cv2.resize(rgb, (round(rgb.shape[1] * k), round(rgb.shape[0] * k)), interpolation=cv2.INTER_AREA)
    return [face_box(f) / k for f in detect_all(det, small)]


def survey_faces(frames, frames_from, n_frames: int, step: int, workers: int, det: LazyLandmarker,
                 det2: LazyLandmarker, shared: bool = False) -> tuple[list, list[int], list[float], int]:
    """Every face on every `step`-th frame: (boxes per surveyed frame, their indices, their times, frame count).
    With workers > 1 the faces are found on two threads: with `shared` (media.shared_decoder), one decoder feeds
    both (survey_beside); else, given frames_from, the second half of the video runs on a second thread with a
    decoder of its own. Either way the same frames as one thread."""
    if workers > 1 and shared and n_frames >= 50:
        return survey_beside(frames(), n_frames, step, det, det2)

    def run(iterator, stop, lmk, out):
        n = 0
        for fr in iterator:
            if stop is not None and fr.index >= stop:
                break
            if fr.index % step == 0:
                out[0].append(survey_boxes(lmk.get(), fr))
                out[1].append(fr.index)
                out[2].append(fr.time)
            n = max(n, fr.index + 1)  # the probe may undercount
        out[3] = n

    first: list = [[], [], [], 0]
    if workers > 1 and frames_from is not None and n_frames >= 50:
        mid = n_frames // 2 // step * step
        second: list = [[], [], [], 0]
        in_two_threads(lambda: run(frames(), mid, det, first), lambda: run(frames_from(mid), None, det2, second),
                       "lipdub-survey")
        for a, b in zip(first[:3], second[:3]):
            a += b
        first[3] = max(first[3], second[3])
    else:
        run(frames(), None, det, first)
    return first[0], first[1], first[2], max(n_frames, first[3])


AHEAD = 4  # surveyed frames in flight while the decoder reads on (each holds a decoded frame)


def survey_beside(iterator, n_frames: int, step: int, det: LazyLandmarker, det2: LazyLandmarker
                  ) -> tuple[list, list[int], list[float], int]:
    """survey_faces with one decoder: each surveyed frame's faces found on one of two threads, each thread with a
    landmarker of its own (one landmarker is never used by two threads at once), collected in frame order."""
    free: queue.Queue = queue.Queue()
    free.put(det)
    free.put(det2)

    def find(frame) -> list[np.ndarray]:
        lmk = free.get()
        try:
            return survey_boxes(lmk.get(), frame)
        finally:
            free.put(lmk)

    out: tuple[list, list[int], list[float]] = ([], [], [])
    pending: deque = deque()
    n = 0
    with ThreadPoolExecutor(2, thread_name_prefix="lipdub-survey") as pool:
        try:
            for fr in iterator:
                if fr.index % step == 0:
                    pending.append((fr.index, fr.time, pool.submit(find, fr)))
                    if len(pending) > AHEAD:
                        i, t, job = pending.popleft()
                        out[0].append(job.result())
                        out[1].append(i)
                        out[2].append(t)
                n = max(n, fr.index + 1)  # the probe may undercount
            while pending:
                i, t, job = pending.popleft()
                out[0].append(job.result())
                out[1].append(i)
                out[2].append(t)
        finally:
            for *_, job in pending:  # an error: drop what is still queued
                job.cancel()
    return out[0], out[1], out[2], max(n_frames, n)
