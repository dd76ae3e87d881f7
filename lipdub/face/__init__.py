"""face: find the speaker, track MediaPipe's 478-point 3D mesh on every frame, smooth it, normalise head pose.

Frames without the speaker's face are marked invalid and later pass through untouched. Tracks are cached per input
file (keyed by path, size and mtime) so a second dub of the same video skips tracking.

Public interface:
    track_frames(frames, width, height, n_frames, fps, ...) -> FaceTrack   the offline tracker (tracking)
    FaceTrack, landmark_array, release_pages, take_rows, BLOCK             tracks and their storage (track)
    Landmarker, detect_all, face_box                                       detection (detect)
    link_tracks, choose_speaker, SPEAKER_MODES, MouthFromSound             choosing the speaker (follow, speaker)
    smooth_track                                                           zero-phase smoothing (smooth)
    canonical_shape, estimate_pose, normalised_landmarks, Pose, umeyama    head pose (measure, core.geometry)
    inner_opening, mouth_width                                             mouth measures (measure)
    cache_key, cache_dir                                                   the track cache's keys
    StreamTracker (face.stream)                                            the live tracker
"""

from lipdub.core.cache import cache_dir
from lipdub.core.geometry import Pose, umeyama
from lipdub.core.landmarks import CHIN, EYE_OUTER, INNER_LOWER, INNER_UPPER, JAW, OUTER_LOWER, OUTER_UPPER, STABLE
from lipdub.face.detect import Landmarker, detect_all, face_box, native_stderr_silenced
from lipdub.face.follow import FrameSource, SurveyTrack, choose_speaker, link_tracks
from lipdub.face.measure import canonical_shape, estimate_pose, inner_opening, mouth_width, normalised_landmarks
from lipdub.face.smooth import smooth_track
from lipdub.face.speaker import (AUTO_MAX_CANDIDATES, AUTO_MAX_LAG, AUTO_MIN_PRESENCE, AUTO_MIN_R, AUTO_WINDOW,
                                 SPEAKER_MODES, MouthFromSound)
from lipdub.face.track import BLOCK, TRACK_VERSION, FaceTrack, cache_key, landmark_array, release_pages, take_rows
from lipdub.face.tracking import track_frames

__all__ = [
    "AUTO_MAX_CANDIDATES", "AUTO_MAX_LAG", "AUTO_MIN_PRESENCE", "AUTO_MIN_R", "AUTO_WINDOW", "BLOCK", "CHIN",
    "EYE_OUTER", "FaceTrack", "FrameSource", "INNER_LOWER", "INNER_UPPER", "JAW", "Landmarker", "MouthFromSound",
    "OUTER_LOWER", "OUTER_UPPER", "Pose", "SPEAKER_MODES", "STABLE", "SurveyTrack", "TRACK_VERSION", "cache_dir",
    "cache_key", "canonical_shape", "choose_speaker", "detect_all", "estimate_pose", "face_box", "inner_opening",
    "landmark_array", "link_tracks", "mouth_width", "native_stderr_silenced", "normalised_landmarks",
    "release_pages", "smooth_track", "take_rows", "track_frames", "umeyama",
]
