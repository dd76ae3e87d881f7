"""What a dub reports when it is done."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class DubReport:
    output: Path
    frames: int
    fps: float
    duration: float
    faces_rendered: int
    speech_method: str
    timings: dict = field(default_factory=dict)
    appearance: str = "video"  # where the mouths came from: "video" (the clip itself) or "profile:NAME"
    # of the rendered frames before encoding, equal wherever and whenever the dub runs; None unless asked
    # (the frames_sha256 option)
    frames_sha256: str | None = None
    wanted_opening: np.ndarray | None = None  # (frames,) inner-lip gap asked for, in eye-corner distances
    head: np.ndarray | None = None  # (frames, 3) head pitch/yaw/roll added (degrees), with --region head
    blink: np.ndarray | None = None  # (frames,) eye closure added (0..1), for photos with --region face/head
    voices: list = field(default_factory=list)  # several voices: per voice, its face, frames drawn, frames in doubt
    mix_gain: float | None = None  # several voices mixed: the one gain applied so that the mix does not clip
    retiming: dict | None = None  # --length fit: each phrase's times and shift, frames held and dropped, notes
