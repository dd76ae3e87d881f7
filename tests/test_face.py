import itertools

import numpy as np
import pytest

from lipdub import face, media
from lipdub.errors import ParameterError

from conftest import require_data


def _track(path, start=0, stop=None, smooth=True):
    info = media.probe_video(path)

    def frames():
        for fr in itertools.islice(media.iter_frames(path), start, stop):
            fr.index -= start
            yield fr

    n = (stop or info.n_frames) - start
    return face.track_frames(frames, info.width, info.height, n, info.fps, smooth=smooth)


@pytest.fixture(scope="module")
def katie():
    data = require_data("video/hdtf_katiehill_8s.mp4")
    return _track(data / "video/hdtf_katiehill_8s.mp4", 0, 75)


def test_tracks_every_frame_of_a_frontal_clip(katie):
    assert len(katie) == 75 and katie.valid.all()
    lms = katie.landmarks
    assert lms.shape == (75, 478, 3)
    # the face is in the middle of a 512x512 HDTF crop, mouth below the eyes
    assert 150 < lms[:, 1, 0].mean() < 360
    assert (lms[:, 14, 1] > lms[:, 33, 1]).all()
    assert np.all(np.diff(katie.times) > 0)


def test_smoothing_reduces_head_jitter_but_keeps_mouth_motion(katie):
    raw_jitter = np.abs(np.diff(katie.landmarks[:, face.STABLE, :2], 2, axis=0)).mean()
    assert raw_jitter < 1.0  # the stored track is already smoothed: sub-pixel second differences
    opening = face.inner_opening(katie.landmarks)
    assert opening.max() - opening.min() > 0.05  # the speaker's mouth still moves


def test_pose_normalisation_is_scale_and_rotation_free(katie):
    canonical = face.canonical_shape(katie)
    assert np.linalg.norm(canonical[263, :2] - canonical[33, :2]) == pytest.approx(1.0, abs=1e-6)
    pose = face.estimate_pose(katie, canonical)
    norm = face.normalised_landmarks(katie, pose)
    spread = norm[:, face.STABLE].std(axis=0).mean()
    assert spread < 0.03  # skull points coincide after removing pose
    # a rotated and scaled copy of a frame normalises to the same canonical shape
    a = 0.3
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    moved = face.FaceTrack(katie.times[:1], (katie.landmarks[:1] @ rot.T * 1.7 + 40).astype(np.float32),
                           katie.valid[:1], 512, 512)
    pose2 = face.estimate_pose(moved, canonical)
    norm2 = face.normalised_landmarks(moved, pose2)
    assert np.abs(norm2[0] - norm[0]).max() < 1e-3


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(30, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    dst = 2.5 * src @ q.T + [1, -2, 3]
    s, r, t = face.umeyama(src, dst)
    assert s == pytest.approx(2.5) and np.allclose(r, q) and np.allclose(t, [1, -2, 3])


def test_face_less_frames_are_marked_invalid():
    data = require_data("video/face_gap_23s.mov")
    # frames 300-450 span the cut-away graphic (no face) with the speaker on both sides
    track = _track(data / "video/face_gap_23s.mov", 300, 450)
    assert track.valid[:10].all() and track.valid[-5:].all()
    gap = ~track.valid
    assert 60 <= gap.sum() <= 130
    runs = np.flatnonzero(np.diff(gap.astype(int)))
    assert len(runs) == 2  # one contiguous gap


def test_speaker_choice_default_index_and_box():
    big = [np.array([100, 100, 200, 200], np.float32)] * 6
    small = [np.array([600, 120, 80, 80], np.float32)] * 6
    samples = [[b, s] for b, s in zip(big, small)]
    tracks = face.link_tracks(samples)
    assert len(tracks) == 2
    assert face.choose_speaker(tracks).boxes[0][0] == 100
    assert face.choose_speaker(tracks, face_index=1).boxes[0][0] == 600
    assert face.choose_speaker(tracks, face_box_hint=(590, 110, 100, 100)).boxes[0][0] == 600
    with pytest.raises(ParameterError):
        face.choose_speaker(tracks, face_index=2)
    with pytest.raises(ParameterError):
        face.choose_speaker(tracks, face_box_hint=(1000, 1000, 10, 10))


def test_a_brief_face_loses_to_a_persistent_one():
    persistent = [[np.array([500, 100, 120, 120], np.float32)] for _ in range(10)]
    persistent[0].append(np.array([0, 0, 300, 300], np.float32))  # a big face seen once
    assert face.choose_speaker(face.link_tracks(persistent)).boxes[0][0] == 500


def test_track_cache_round_trip(tmp_path, katie):
    path = tmp_path / "t.npz"
    katie.save(path)
    back = face.FaceTrack.load(path)
    assert np.array_equal(back.landmarks, katie.landmarks) and np.array_equal(back.valid, katie.valid)
    assert (back.width, back.height) == (katie.width, katie.height)


def test_two_thread_tracking_matches_one(katie):
    data = require_data("video/hdtf_katiehill_8s.mp4")
    path = data / "video/hdtf_katiehill_8s.mp4"
    info = media.probe_video(path)
    both = face.track_frames(lambda: itertools.islice(media.iter_frames(path), 0, 75), info.width, info.height, 75,
                             info.fps, frames_from=lambda s: itertools.islice(media.iter_frames(path, s), 0, 75 - s),
                             workers=2)
    assert len(both) == 75 and both.valid.all()
    assert np.abs(both.landmarks[:, :, :2] - katie.landmarks[:, :, :2]).mean() < 1.0


def test_per_frame_tracking_is_the_smoothed_track_before_its_filter(katie):
    """smooth=False gives each frame's landmarks as tracked: the smoothed track is exactly their filtering, and the
    filter moves the mouth (bench.bilabials reads closures frame by frame)."""
    data = require_data("video/hdtf_katiehill_8s.mp4")
    raw = _track(data / "video/hdtf_katiehill_8s.mp4", 0, 75, smooth=False)
    assert len(raw) == 75 and raw.valid.all()
    assert np.allclose(face.smooth_track(raw).landmarks, katie.landmarks, atol=1e-3)
    opening = face.inner_opening(raw.landmarks)
    assert np.abs(opening - face.inner_opening(katie.landmarks)).max() > 0.01 * opening.max()


def test_survey_of_a_4k_frame_finds_the_face_where_the_full_frame_does():
    # the survey scales frames past SURVEY_SIDE down (MediaPipe's copies of whole 4K frames cost ~300 MB)
    import cv2
    from lipdub.face.detect import Landmarker, detect_all, face_box, iou
    from lipdub.face.follow import SURVEY_SIDE, survey_boxes

    data = require_data("images/woman_frontal.png")
    portrait = cv2.cvtColor(cv2.imread(str(data / "images/woman_frontal.png")), cv2.COLOR_BGR2RGB)
    canvas = np.full((2160, 3840, 3), 90, np.uint8)
    small = cv2.resize(portrait, (900, round(portrait.shape[0] * 900 / portrait.shape[1])))[:2000]
    canvas[100:100 + small.shape[0], 2500:3400] = small
    assert max(canvas.shape[:2]) > SURVEY_SIDE
    with Landmarker(num_faces=4) as det:
        surveyed = survey_boxes(det, media.Frame(0, 0.0, canvas))
        whole = [face_box(f) for f in detect_all(det, canvas)]
    assert len(surveyed) == len(whole) == 1
    assert iou(surveyed[0], whole[0]) > 0.9 and 2500 < surveyed[0][0] < 3400


def test_survey_on_one_decoder_matches_one_thread():
    """survey_beside (one decoder, faces found on two threads with a landmarker each) surveys the same frames and
    finds the same boxes as one thread does, in frame order."""
    from lipdub.face.detect import LazyLandmarker
    from lipdub.face.follow import survey_faces

    data = require_data("video/hdtf_katiehill_8s.mp4")
    path = data / "video/hdtf_katiehill_8s.mp4"

    def frames():
        return itertools.islice(media.iter_frames(path), 0, 75)

    dets = [LazyLandmarker(), LazyLandmarker(), LazyLandmarker()]
    try:
        one = survey_faces(frames, None, 75, 6, 1, dets[0], dets[0])
        two = survey_faces(frames, None, 75, 6, 2, dets[1], dets[2], shared=True)
    finally:
        for d in dets:
            d.close()
    assert two[1] == one[1] == list(range(0, 75, 6)) and two[2] == one[2] and two[3] == one[3] == 75
    assert dets[2].det is not None  # both threads found faces
    assert [len(b) for b in two[0]] == [len(b) for b in one[0]]
    assert all(np.array_equal(x, y) for a, b in zip(one[0], two[0]) for x, y in zip(a, b))


@pytest.mark.parametrize("pyplot_first", [False, True])
def test_mediapipe_is_imported_without_pyplot_until_its_drawing_is_used(pyplot_first):
    """detect.mediapipe_tasks imports MediaPipe with matplotlib.pyplot left out (its drawing utilities import it,
    lipdub never draws with them): pyplot is not loaded, and its stand-in loads the real one on first use. A process
    that imported pyplot before keeps it as it is."""
    import subprocess
    import sys

    code = f"""
import sys, types
if {pyplot_first}:
    import matplotlib.pyplot
from lipdub.face import detect
mp, BaseOptions, vision = detect.mediapipe_tasks()
assert vision.FaceLandmarkerOptions and BaseOptions
assert ("matplotlib.pyplot" in sys.modules) == {pyplot_first}
from mediapipe.tasks.python.vision import drawing_utils
figure = drawing_utils.plt.figure  # the drawing utilities still work: the real pyplot is loaded now
import matplotlib.pyplot as real
assert figure is real.figure and type(real) is types.ModuleType and sys.modules["matplotlib.pyplot"] is real
assert (type(drawing_utils.plt) is types.ModuleType) == {pyplot_first}
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_landmarker_left_open_at_exit_ends_quietly():
    """A landmarker nobody closed (a dub stopped by SIGTERM while one was being made) is closed at exit, before
    MediaPipe's modules are torn down: no "Exception ignored ... Traceback" under lipdub's "interrupted" line."""
    import subprocess
    import sys

    code = "from lipdub.face.detect import Landmarker\nleft_open = Landmarker()\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]


def test_the_live_tracker_reads_the_face_as_the_offline_tracker_does(katie):
    """Live sessions draw mouths measured by the offline tracker (a prepared atlas, a profile), so the live tracker's
    landmarks must agree with it: the head's scale, the lips' place, and the mouth's opening without a frame's lag
    (MediaPipe's VIDEO mode missed all three: scale 1.2 % larger, lips 2.6 px off, opening one frame late)."""
    from lipdub.face.stream import StreamTracker

    path = require_data("video/hdtf_katiehill_8s.mp4") / "video/hdtf_katiehill_8s.mp4"
    tracker = StreamTracker(media.probe_video(path).fps)
    try:
        live = np.array([tracker.track(i, fr.rgb) for i, fr in enumerate(itertools.islice(media.iter_frames(path),
                                                                                            len(katie)))])
    finally:
        tracker.close()
    canonical = face.canonical_shape(katie)
    offline_scale = face.estimate_pose(katie, canonical).scale
    live_scale = np.array([face.umeyama(canonical[face.STABLE], f[face.STABLE].astype(np.float64))[0] for f in live])
    assert abs(np.mean(live_scale / offline_scale) - 1) < 0.005
    assert np.abs(live[:, face.OUTER_UPPER + face.OUTER_LOWER, :2]
                  - katie.landmarks[:, face.OUTER_UPPER + face.OUTER_LOWER, :2]).mean() < 2.0
    a, b, n = face.inner_opening(live), face.inner_opening(katie.landmarks), len(katie)
    r = {lag: np.corrcoef(a[max(lag, 0):n + min(lag, 0)], b[max(-lag, 0):n + min(-lag, 0)])[0, 1] for lag in (-1, 0, 1)}
    assert max(r, key=r.get) == 0
