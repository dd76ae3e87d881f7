"""Expression and head motion on top of the mouth, for offline dubs (--region face/head, --emotion)."""

from __future__ import annotations

import logging
import zlib

import numpy as np

from lipdub.core.constants import SR
from lipdub import face
from lipdub.motion import expression
from lipdub.render.mouth import CONTROL
from lipdub.render.renderer import Renderer
from lipdub.render.warp import FaceWarper, close_eyes_for_blink

log = logging.getLogger("lipdub")


class FaceStyler:
    """Expression and head motion on top of the mouth: per output frame, the speaker's landmarks are moved (emotion,
    blinks and brow raises for the face region, a small head rotation for the head region), the frame is warped to
    them, and the mouth is rendered onto the moved face."""

    def __init__(self, renderer: Renderer, track: face.FaceTrack, schedule: np.ndarray, speech_track,
                 samples16: np.ndarray, region: str, emotion: str, emotion_strength: float, still: bool,
                 fps: float):
        self.track, self.schedule = track, np.asarray(schedule, np.int64)
        canonical = renderer.canonical
        self.pose = renderer.pose  # source frames against the atlas's canonical face
        times = np.arange(len(schedule)) / fps
        seed = zlib.crc32(np.asarray(samples16[:SR], np.float32).tobytes())
        self.motion = expression.face_motion(speech_track, samples16, times, emotion, emotion_strength,
                                             seed=seed)
        self.emotion = expression.emotion_offsets(canonical, emotion, emotion_strength)
        self.warp_face = region in ("face", "head")
        self.head = region == "head"
        # a video blinks by itself; a photo or a frozen shot needs blinks
        self.blinks = still or _is_static(track)
        if self.head and not self.blinks:
            log.warning("--region head is meant for photos and static shots: on this moving shot the added head "
                        "motion comes on top of the filmed one (use --region face to keep the filmed head)")
        self.warper = FaceWarper(canonical)
        n = len(schedule)
        moved = face.landmark_array(n)
        valid = np.zeros(n, bool)
        self.rotations = np.tile(np.eye(3), (n, 1, 1))
        self.offsets: list = [None] * n
        for k, j in enumerate(self.schedule):
            if j >= len(track) or not track.valid[j]:
                continue
            off = expression.frame_offsets(self.motion, k, canonical, self.emotion,
                                           blinks=self.blinks and self.warp_face)
            if not self.warp_face:
                off = _mouth_only(off)
            p = self.pose
            lm = track.landmarks[j].astype(np.float64) + p.scale[j] * off @ p.rotation[j].T
            if self.head:
                rot = expression.rotation(*self.motion.head[k])
                piv = self.warper.pivot((p.scale[j], p.rotation[j], p.translation[j]))
                lm = (lm - piv) @ rot.T + piv
                self.rotations[k] = rot
            moved[k], valid[k] = lm, True
            self.offsets[k] = _mouth_only(off)  # what the mouth renderer draws of it
        self.moved = face.FaceTrack(times, moved, valid, track.width, track.height)
        self.renderer = renderer.retarget(self.moved)

    def frame(self, k: int, j: int, frame: np.ndarray, plan) -> tuple[np.ndarray, bool]:
        if not self.moved.valid[k]:
            return self.renderer.frame(k, k, frame, plan)
        if self.warp_face:
            p = self.pose
            frame = self.warper.warp(frame, (p.scale[j], p.rotation[j], p.translation[j]),
                                     self.track.landmarks[j].astype(np.float64), self.moved.landmarks[k],
                                     self.rotations[k] if self.head else None)
            b = float(self.motion.blink[k]) if self.blinks else 0.0
            frame = close_eyes_for_blink(frame, self.moved.landmarks[k], b, float(p.scale[j]))
        return self.renderer.frame(k, k, frame, plan, self.offsets[k])


def _mouth_only(off: np.ndarray) -> np.ndarray:
    """The part of a landmark displacement that the mouth renderer draws (lips and the skin around them)."""
    out = np.zeros_like(off)
    keep = CONTROL
    out[keep] = off[keep]
    return out


def _is_static(track: face.FaceTrack) -> bool:
    """A still image or a shot whose face never moves or blinks by itself (a looped frame, a freeze)."""
    idx = np.flatnonzero(track.valid)
    if len(idx) < 3:
        return True
    moved = 0.0
    for a in range(0, len(idx) - 1, face.BLOCK):  # in blocks (one frame overlap): a long track may live on disk
        lm = track.landmarks[idx[a:a + face.BLOCK + 1], :, :2]
        moved = max(moved, float(np.abs(np.diff(lm, axis=0)).max()))
        face.release_pages(track.landmarks)
    return moved < 0.5
