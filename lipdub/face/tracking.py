"""The offline tracker: track_frames surveys the video, chooses the speaker, follows them on every frame and
smooths the result into a FaceTrack."""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from lipdub import media
from lipdub.errors import ParameterError
from lipdub.face.detect import LazyLandmarker
from lipdub.face.follow import Follower, choose_speaker, in_two_threads, link_tracks, survey_faces
from lipdub.face.smooth import smooth_track
from lipdub.face.speaker import SPEAKER_MODES, MouthFromSound, auto_speaker
from lipdub.face.track import FaceTrack, landmark_array


def track_frames(frames: Callable[[], Iterator], width: int, height: int, n_frames: int, fps: float,
                 face_index: int | None = None, face_box_hint=None,
                 progress: Callable[[int], None] | None = None,
                 frames_from: Callable[[int], Iterator] | None = None, workers: int = 1,
                 speaker: str = "largest", audio: np.ndarray | None = None,
                 mouth_from_sound: MouthFromSound | None = None, smooth: bool = True) -> FaceTrack:
    """Track the speaker through `frames()`: a sparse survey picks the speaker, then a dense pass follows them.

    With `frames_from(start)` (frames from index `start` on) and workers=2, the dense pass runs as two threads on the
    two halves of the video: MediaPipe runs in native code without the GIL, so this uses both cores.

    speaker="largest" (default): the largest persistent face, or the one `face_index`/`face_box_hint` names.
    speaker="auto": among the few largest persistent faces, the one whose mouth moves with `audio`, the video's own
    sound (16 kHz mono float, sample 0 at the first frame's time; see media.video_audio); without sound, or when no
    face correlates, the largest face (with a warning). Its result is in `meta["speaker"]`. `mouth_from_sound` is
    how the mouth is predicted from that sound: the caller's speech and motion stages (see MouthFromSound).
    smooth=False: each frame's landmarks as tracked, without smooth_track's filter across frames (what one frame
    shows, e.g. whether its lips touch: the filter reads a 1-2 frame closure between open frames as parted).
    """
    if speaker not in SPEAKER_MODES:
        raise ParameterError(f"--speaker must be one of {', '.join(SPEAKER_MODES)}, got {speaker!r}")
    if speaker == "auto" and (face_index is not None or face_box_hint is not None):
        raise ParameterError("--speaker auto chooses the face itself: leave out --face-index and --face-box "
                             "(or use them with --speaker largest)")
    if speaker == "auto" and mouth_from_sound is None:
        raise ParameterError("speaker='auto' needs mouth_from_sound, the mouth the sound predicts "
                             "(lipdub.pipeline.speaker.mouth_from_sound)")
    step = max(1, int(round(fps / 2)))
    surveyor = LazyLandmarker(num_faces=4)  # the two survey threads' landmarkers go on into the dense pass
    surveyor2 = LazyLandmarker(num_faces=4)  # (0.4 s each to load)
    try:
        survey, survey_frames, survey_times, n_frames = survey_faces(frames, frames_from, n_frames, step, workers,
                                                                      surveyor, surveyor2,
                                                                      media.shared_decoder(width, height))
    except BaseException:
        surveyor.close()
        surveyor2.close()
        raise
    try:  # (the dense pass closes its landmarkers itself; closing twice is harmless)
        tracks = link_tracks(survey)
        meta: dict = {}
        known: dict[int, np.ndarray | None] = {}  # frames the speaker choice already tracked (None: face not found)
        if speaker == "auto":
            chosen, known, meta["speaker"] = auto_speaker(tracks, survey_frames, survey_times, frames, frames_from,
                                                          width, height, fps, step, audio, workers,
                                                          mouth_from_sound)
        else:
            chosen = choose_speaker(tracks, face_index, face_box_hint)

        times = np.zeros(n_frames, np.float64)
        lms = landmark_array(n_frames)
        valid = np.zeros(n_frames, bool)
        seen = np.zeros(n_frames, bool)

        def dense(iterator: Iterator, stop: int, det: LazyLandmarker) -> None:
            follow = Follower(chosen, survey_frames, step, width, height)
            try:
                for fr in iterator:
                    i = fr.index
                    if i >= stop:
                        break
                    times[i], seen[i] = fr.time, True
                    if i in known:
                        found = known[i]
                        if found is not None:
                            follow.seen(i, found)
                    else:
                        found = follow.find(det.get(), i, fr)
                    if found is not None:
                        lms[i], valid[i] = found, True
                    if progress is not None:
                        progress(1)
            finally:
                det.close()

        if workers > 1 and frames_from is not None and n_frames >= 50:
            mid = n_frames // 2
            if known:  # split the frames still to track, not all frames, evenly between the two threads
                todo = np.ones(n_frames)
                todo[[i for i in known if i < n_frames]] = 0
                if todo.sum() > 0:
                    mid = int(np.clip(np.searchsorted(np.cumsum(todo), todo.sum() / 2), 1, n_frames - 1))
            in_two_threads(lambda: dense(frames(), mid, surveyor),
                           lambda: dense(frames_from(mid), n_frames, surveyor2), "lipdub-track")
        else:
            dense(frames(), n_frames, surveyor)
    finally:
        surveyor.close()
        surveyor2.close()
    n = int(np.flatnonzero(seen).max()) + 1 if seen.any() else 0
    meta["speaker_found"] = chosen is not None
    track = FaceTrack(times[:n], lms[:n], valid[:n], width, height, meta=meta)
    return smooth_track(track) if smooth else track

