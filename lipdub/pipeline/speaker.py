"""--speaker auto: the mouth a stretch of the video's own sound predicts, for the face stage to compare faces with.

The face stage tracks the candidate faces; this module is the speech → motion half of the comparison, so that the
face stage never imports speech or motion (see face.MouthFromSound)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from lipdub import motion, speech
from lipdub.core.constants import SR


def mouth_from_sound(samples: np.ndarray, motion_model: str = motion.MODEL_CHOICES[0]
                     ) -> Callable[[np.ndarray], np.ndarray] | None:
    """The predicted inner-lip opening at given frame times (s from the first sample) of 16 kHz mono `samples`, by
    the same speech analysis and motion model (--motion-model) that drive the dub; None when the stretch is too
    short (< 0.5 s) or holds no voiced speech."""
    if len(samples) < SR // 2:
        return None
    analysis = speech.analyse(samples, SR)
    if not np.asarray(analysis.voiced).any():
        return None
    params = motion.MotionParams(model=motion.load_model(motion_model))
    return lambda times: motion.mouth_track(analysis, times, params=params).opening
