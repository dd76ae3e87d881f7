"""Regions, emotions, head motion and blinks: what changes and what stays identical."""

import subprocess
import sys

import numpy as np
import pytest

import lipdub
from training import evaluate
from lipdub.motion import expression
from lipdub import face, media, speech
from lipdub.render import FACE_OVAL

from conftest import require_data

PHOTO = "images/woman_frontal.png"
VIDEO = "video/hdtf_katiehill_8s.mp4"
AUDIO = "audio/en_jfk_11s.wav"


@pytest.fixture(scope="module")
def short_audio(tmp_path_factory):
    data = require_data(AUDIO)
    out = tmp_path_factory.mktemp("audio") / "jfk_4s.wav"
    evaluate.cut_audio(data / AUDIO, 0.0, 4.0, out)
    return out


@pytest.fixture(scope="module")
def canonical():
    data = require_data(PHOTO)
    track = evaluate._track_path(data / PHOTO, None, None, cache=True)
    return face.canonical_shape(track)


def test_emotions_move_corners_brows_and_eyes_the_right_way(canonical):
    neutral = expression.emotion_offsets(canonical, "neutral")
    assert not neutral.any()
    happy = expression.emotion_offsets(canonical, "happy")
    sad = expression.emotion_offsets(canonical, "sad")
    surprised = expression.emotion_offsets(canonical, "surprised")
    angry = expression.emotion_offsets(canonical, "angry")
    corners = list(expression.MOUTH_CORNERS)
    assert (happy[corners, 1] < -0.02).all() and (sad[corners, 1] > 0.02).all()  # y grows downwards
    assert (surprised[expression.RIGHT_BROW + expression.LEFT_BROW, 1] < -0.03).all()
    assert (angry[expression.RIGHT_BROW_INNER + expression.LEFT_BROW_INNER, 1] > 0.02).all()
    assert (sad[expression.RIGHT_BROW_INNER, 1] < -0.02).all()
    # stronger emotion, bigger change; the skull does not move
    assert np.abs(expression.emotion_offsets(canonical, "happy", 2.0)).max() > np.abs(happy).max() * 1.9
    assert not happy[face.STABLE[:12]].any()


def test_head_motion_and_blinks_follow_speech_naturally(short_audio):
    data = require_data(AUDIO)
    samples, _ = media.load_audio(data / AUDIO, 16000)
    track = speech.analyse(samples, 16000)
    times = np.arange(int(11.0 * 25)) / 25
    fm = expression.face_motion(track, samples, times, seed=3)
    # a few degrees, smooth (no jitter: < 0.6 degree per frame)
    assert 0.8 < np.ptp(fm.head[:, 0]) < 8 and np.abs(fm.head).max() < 6
    assert np.abs(np.diff(fm.head, axis=0)).max() < 0.6
    # blinks every 2–8 s, each closing fully for a frame or more
    closed = fm.blink > 0.95
    starts = np.flatnonzero(np.diff(closed.astype(int)) == 1) + 1
    assert len(starts) >= 1 and np.all(np.diff(starts / 25) >= 2.0) and np.all(np.diff(starts / 25) <= 8.0)
    # nods come with stressed syllables: the pitch axis is more active while speaking
    voiced = np.asarray(track.voiced)[np.clip((times / track.hop).astype(int), 0, len(track.voiced) - 1)]
    assert np.abs(np.diff(fm.head[:, 0]))[voiced[1:]].mean() > np.abs(np.diff(fm.head[:, 0]))[~voiced[1:]].mean()


def _frames(path, ks):
    with media.FrameReader(path) as rd:
        return [rd.get(k).astype(np.int16) for k in ks]


def _box_mask(shape, pts, grow):
    lo, hi = pts.min(0), pts.max(0)
    pad = grow * (hi - lo)
    m = np.zeros(shape[:2], bool)
    y0, x0 = np.maximum((lo - pad)[::-1].astype(int), 0)
    y1, x1 = (hi + pad)[::-1].astype(int)
    m[y0:y1, x0:x1] = True
    return m


def _worst_block(diff, mask, block=12):
    """Largest mean |difference| over block x block tiles fully inside `mask` (codec noise stays small)."""
    import cv2

    d = np.where(mask, np.abs(diff).mean(axis=2), 0).astype(np.float32)
    m = cv2.resize(mask.astype(np.float32), (d.shape[1] // block, d.shape[0] // block), interpolation=cv2.INTER_AREA)
    v = cv2.resize(d, (d.shape[1] // block, d.shape[0] // block), interpolation=cv2.INTER_AREA)
    return float(v[m > 0.999].max()) if (m > 0.999).any() else 0.0


@pytest.mark.parametrize("region", ["lips", "lower", "face", "head"])
def test_photo_region_changes_only_its_part(tmp_path, short_audio, region):
    data = require_data(PHOTO)
    out = tmp_path / f"{region}.mp4"
    report = lipdub.dub(data / PHOTO, short_audio, out, region=region, emotion="happy" if region == "face" else
                        "neutral")
    lm = evaluate._track_path(data / PHOTO, None, None, cache=True).landmarks[0][:, :2]
    with media.FrameReader(data / PHOTO) as rd:
        still = rd.get(0).astype(np.int16)
    ks = list(range(0, report.frames, 6))
    frames = _frames(out, ks)
    # the lips' part: the lips and the skin around them down to where the widest asked opening puts the lower lip
    iod = float(np.linalg.norm(lm[33] - lm[263]))
    mouth = lm[face.OUTER_UPPER + face.OUTER_LOWER]
    drop = float(report.wanted_opening.max()) * iod
    lips = np.zeros(still.shape[:2], bool)
    x0, x1 = mouth[:, 0].min() - 0.3 * np.ptp(mouth[:, 0]), mouth[:, 0].max() + 0.3 * np.ptp(mouth[:, 0])
    y0, y1 = lm[2, 1], mouth[:, 1].max() + 1.4 * drop + 0.2 * np.ptp(mouth[:, 1])
    lips[int(y0):int(y1), int(x0):int(x1)] = True
    chin = np.zeros(still.shape[:2], bool)  # the chin's outline: the jaw drop shows there
    cx, cy = lm[152]
    chin[int(cy - 0.16 * iod):int(cy + 0.05 * iod), int(cx - 0.22 * iod):int(cx + 0.22 * iod)] = True
    lower = _box_mask(still.shape, lm[face.JAW + [2, 98, 327]], 0.12)
    lower[: int(lm[2, 1]) - 2] = False  # nothing above the nose base
    face_area = _box_mask(still.shape, lm[FACE_OVAL], 0.15)
    edge = np.zeros(still.shape[:2], bool)
    edge[:12], edge[-12:], edge[:, :12], edge[:, -12:] = True, True, True, True
    outside = {"lips": ~lips, "lower": ~lower, "face": ~face_area, "head": edge}[region]
    worst_out = max(_worst_block(f - still, outside) for f in frames)
    assert worst_out < 4.0, f"{region}: pixels outside the region changed ({worst_out:.1f} levels)"
    inside = {"lips": lips, "lower": lower, "face": face_area, "head": face_area}[region]
    assert max(_worst_block(f - still, inside) for f in frames) > 12.0  # and the region itself moves
    eyes = _box_mask(still.shape, lm[expression.RIGHT_UPPER_LID + expression.LEFT_LOWER_LID], 0.3)
    eye_change = max(_worst_block(f - still, eyes, 6) for f in _frames(out, range(report.frames)))
    chin_change = max(_worst_block(f - still, chin, 6) for f in frames)
    assert (chin_change < 4.0) if region == "lips" else (chin_change > 8.0)  # only the lips leave the jaw alone
    if region in ("lips", "lower"):
        assert eye_change < 4.0  # the eyes stay as photographed
        assert report.blink is None
    else:
        assert eye_change > 15.0  # blinks (and, for the face region, a smile's narrower eyes)
    if region == "head":
        assert report.head is not None and 1.0 < np.ptp(report.head[:, 0]) < 8.0


def test_video_lower_region_keeps_the_eyes_and_emotion_lifts_the_corners(tmp_path, short_audio):
    data = require_data(VIDEO)
    plain, happy = tmp_path / "plain.mp4", tmp_path / "happy.mp4"
    lipdub.dub(data / VIDEO, short_audio, plain)
    lipdub.dub(data / VIDEO, short_audio, happy, emotion="happy", emotion_strength=1.5)
    t_plain = evaluate._track_path(plain, None, None, cache=False)
    t_happy = evaluate._track_path(happy, None, None, cache=False)

    def corner_lift(lms):  # mouth corners above the lip centre line, in eye distances
        iod = np.linalg.norm(lms[:, 33, :2] - lms[:, 263, :2], axis=1)
        centre = 0.5 * (lms[:, 13, 1] + lms[:, 14, 1])
        return ((centre - 0.5 * (lms[:, 61, 1] + lms[:, 291, 1])) / iod)

    assert np.median(corner_lift(t_happy.landmarks)) > np.median(corner_lift(t_plain.landmarks)) + 0.02
    # with the default region, the upper face of the happy dub equals the plain dub (only the mouth differs)
    a, b = _frames(plain, [10, 50]), _frames(happy, [10, 50])
    lm = t_plain.landmarks[10][:, :2]
    upper = np.zeros(a[0].shape[:2], bool)
    upper[: int(lm[168, 1])] = True
    assert max(_worst_block(x - y, upper) for x, y in zip(a, b)) < 6.0  # codec noise only


def test_bad_region_and_emotion_options_are_one_line_errors(tmp_path, short_audio):
    data = require_data(PHOTO)
    for extra in (["--region", "torso"], ["--emotion", "bored"], ["--emotion-strength", "7"]):
        res = subprocess.run([sys.executable, "-m", "lipdub", "-q", "dub", str(data / PHOTO), str(short_audio), "-o",
                              str(tmp_path / "x.mp4"), *extra], capture_output=True, text=True)
        assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    with pytest.raises(lipdub.ParameterError, match="emotion-strength"):
        lipdub.dub(data / PHOTO, short_audio, tmp_path / "y.mp4", emotion_strength=-1)


@pytest.mark.parametrize("region", ["lips", "face"])
def test_video_region_changes_only_its_part(tmp_path, short_audio, region):
    data = require_data(VIDEO)
    out = tmp_path / f"{region}.mp4"
    lipdub.dub(data / VIDEO, short_audio, out, region=region, emotion="surprised" if region == "face" else "neutral")
    track = evaluate._track_path(data / VIDEO, None, None, cache=True)
    ks = [5, 25, 45, 65, 85]  # the 4 s audio is shorter than the clip: output frame k is drawn over source frame k
    dubbed, source = _frames(out, ks), _frames(data / VIDEO, ks)
    worst_out, worst_in = 0.0, 0.0
    for k, a, b in zip(ks, dubbed, source):
        lm = track.landmarks[k][:, :2]
        iod = float(np.linalg.norm(lm[33] - lm[263]))
        if region == "lips":
            mouth = lm[face.OUTER_UPPER + face.OUTER_LOWER]
            inside = np.zeros(a.shape[:2], bool)
            x0, x1 = mouth[:, 0].min() - 0.35 * np.ptp(mouth[:, 0]), mouth[:, 0].max() + 0.35 * np.ptp(mouth[:, 0])
            y0, y1 = lm[2, 1], mouth[:, 1].max() + 0.1 * iod + 0.3 * np.ptp(mouth[:, 1])
            inside[int(y0):int(y1), int(x0):int(x1)] = True
        else:
            inside = _box_mask(a.shape, lm[FACE_OVAL], 0.15)
        worst_out = max(worst_out, _worst_block(a - b, ~inside))
        worst_in = max(worst_in, _worst_block(a - b, inside))
    assert worst_out < 6.0, f"{region}: pixels outside the region changed ({worst_out:.1f} levels)"
    assert worst_in > 12.0
