"""Actor profiles: one actor learned from their own footage, reused to dub any shot of them.

A profile is a single versioned file (`actor.lipdub`, a NumPy archive) holding
- the actor's pose-normalised lower-face atlas: every usable footage frame (frontal enough, sharp, mouth not covered)
  as a JPEG crop with its landmarks, mouth descriptors, teeth visibility and head pose;
- the actor's mouth-shape space: rest width, wide-open opening, mean face;
- the actor's articulation, learned from the footage's own audio against the filmed mouth: a calibration of the
  generic opening model (gain, offset and a small ridge correction on the audio features) and per-phone width and
  teeth visibility. Each learned part is kept only if it predicts the footage better than the generic model on held-out
  halves of the footage (two-fold, in time); `lipdub profile info` prints those scores.

Dubbing with a profile draws the mouths from the profile's atlas instead of the shot itself (the shot only gives head
pose and the frame to paint into) and turns the new audio into this actor's mouth motion.

Public interface: `build(footage, progress, cache, learn, budget_bytes) -> Profile` (build.py), `Profile.save(path)`
and `load(path)` (file.py), `Articulation` and `learn_articulation` (articulation.py). Built from the face, speech and
render stages, never from the pipeline.
"""

from lipdub.profile.articulation import (RIDGE_LAMBDAS, SHOT_LEVEL_MAX, Articulation, frame_features,
                                         learn_articulation, phone_labels, shot_level)
from lipdub.profile.build import BUDGET_BYTES, MAX_YAW_PITCH, build
from lipdub.profile.file import FORMAT, VERSION, Profile, load

__all__ = ["BUDGET_BYTES", "FORMAT", "MAX_YAW_PITCH", "RIDGE_LAMBDAS", "SHOT_LEVEL_MAX", "VERSION", "Articulation",
           "Profile", "build", "frame_features", "learn_articulation", "load", "phone_labels", "shot_level"]
