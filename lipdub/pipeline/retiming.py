"""--length fit for a dub: the phrases of the video's own sound and of the new speech, and the face's motion, turned
into the output schedule (media.retime)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from lipdub import face, media
from lipdub.core.constants import SR
from lipdub.core.landmarks import STABLE
from lipdub.errors import InputError, ParameterError
from lipdub.speech.vad import phrases

log = logging.getLogger("lipdub")


def face_motion(track: face.FaceTrack) -> np.ndarray:
    """(T,) how far the face's rigid points move from each frame to the next, in face widths (inf where the face is
    not seen: a frame to keep rather than hold or drop)."""
    pts = track.landmarks[:, STABLE, :2].astype(np.float64)
    width = np.ptp(track.landmarks[:, :, 0], axis=1).astype(np.float64)
    step = np.linalg.norm(np.diff(pts, axis=0), axis=-1).mean(axis=1) / np.maximum(width[:-1], 1.0)
    ok = track.valid[:-1] & track.valid[1:]
    return np.append(np.where(ok, step, np.inf), np.inf)


def fit_plan(video: Path, info, track: face.FaceTrack, new_samples: np.ndarray, duration: float) -> media.FitPlan:
    """The --length fit schedule of `video` for new speech `new_samples` (16 kHz mono) lasting `duration` s."""
    if info.is_image:
        raise ParameterError("--length fit retimes a video by the phrases of its sound; a photo has none: use "
                             "--length audio")
    own = media.video_audio(video, SR) if info.has_audio else None
    if own is None or len(own) < SR // 10:
        raise InputError(f"--length fit needs the video's own sound to find its phrases, and {video} has none; "
                         "use --length audio, pad or loop")
    plan = media.fit_schedule(phrases(own), phrases(new_samples), len(track), info.fps, duration,
                              face_motion(track))
    for note in plan.notes:
        log.info("--length fit: %s", note)
    return plan


def plan_report(plan: media.FitPlan | None) -> dict | None:
    if plan is None:
        return None
    return {"phrases": plan.phrases, "held": plan.held, "dropped": plan.dropped, "notes": plan.notes}
