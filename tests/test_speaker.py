"""`--speaker auto`: of two faces side by side, the one whose mouth moves with the video's own sound is dubbed.

The composite (built at test time, never stored) puts hdtf_katiehill on the left and hdtf_radio34 on the right, both
512x512 at 25 fps and 8 s, with ONE of the two clips' original sound. The faces are about the same size (radio34's is
~8 % larger, so "largest" picks the right one whatever the sound): only the sound can tell the speaker.
"""

import itertools
import logging
import subprocess
import sys

import numpy as np
import pytest

from lipdub import face, media
from lipdub.pipeline import DubOptions, load_track
from lipdub.pipeline.speaker import mouth_from_sound

from conftest import require_data

LEFT, RIGHT = "video/hdtf_katiehill_8s.mp4", "video/hdtf_radio34_8s.mp4"


def _composite(out, left, right, sound_from):
    """left | right in one frame, with `sound_from`'s original audio (PyAV through lipdub.media)."""
    li, ri = media.probe_video(left), media.probe_video(right)
    assert (li.width, li.height) == (ri.width, ri.height) and abs(li.fps - ri.fps) < 1e-6
    audio, sr = media.load_audio(sound_from, None, mono=False)
    with media.VideoWriter(out, 2 * li.width, li.height, li.fps, audio=audio, audio_sr=sr, crf=18) as w:
        for a, b in zip(media.iter_frames(left), media.iter_frames(right)):
            w.write(np.concatenate([a.rgb, b.rgb], axis=1))
    return out


def _centre_x(track):
    return float(np.median(track.landmarks[track.valid][:, :, 0].mean(axis=1)))


@pytest.fixture(scope="module")
def composites(tmp_path_factory):
    data = require_data(LEFT, RIGHT)
    folder = tmp_path_factory.mktemp("speaker")
    return {name: _composite(folder / f"two_faces_{name}_sound.mp4", data / LEFT, data / RIGHT, data / src)
            for name, src in (("left", LEFT), ("right", RIGHT))}


@pytest.fixture(scope="module")
def tracks(composites):
    """load_track as `lipdub dub` calls it: the default and --speaker auto, on both composites (the left-sound one
    through the track cache, to show that auto and largest keep separate cache entries)."""
    out = {}
    for name, path in composites.items():
        info = media.probe_video(path)
        for mode in ("largest", "auto"):
            out[name, mode] = load_track(path, info, DubOptions(speaker=mode, cache=name == "left"), None)
    return out


@pytest.mark.parametrize("sound, side", [("left", "left"), ("right", "right")])
def test_auto_dubs_the_face_that_speaks_in_the_sound(tracks, sound, side):
    track = tracks[sound, "auto"]
    assert track.valid.mean() > 0.95
    x = _centre_x(track)
    assert (x < 512) if side == "left" else (x > 512), f"--speaker auto chose the face at x={x:.0f}"
    info = track.meta["speaker"]
    rs = {("left" if c["box"][0] + c["box"][2] / 2 < 512 else "right"): c["r"] for c in info["candidates"]}
    assert set(rs) == {"left", "right"}
    other = "right" if side == "left" else "left"
    assert rs[side] > 0.4 and rs[other] < face.AUTO_MIN_R, rs  # measured: 0.63 / -0.18 and 0.69 / -0.03


def test_default_still_dubs_the_largest_face_whatever_the_sound(tracks):
    # radio34's face (right) is the larger one; the default ignores the sound
    assert _centre_x(tracks["left", "largest"]) > 512 and _centre_x(tracks["right", "largest"]) > 512
    assert "speaker" not in tracks["left", "largest"].meta
    # same face, same landmarks as the dense pass of --speaker auto, which reused its candidate window
    both = tracks["right", "largest"], tracks["right", "auto"]
    assert np.abs(both[0].landmarks[:, :, :2] - both[1].landmarks[:, :, :2]).mean() < 1.0


def _frames(path, stop):
    return lambda: itertools.islice(media.iter_frames(path), 0, stop)


def test_auto_falls_back_to_the_largest_face_with_a_warning(composites, caplog):
    path = composites["left"]
    info = media.probe_video(path)
    with caplog.at_level(logging.WARNING, logger="lipdub"):
        silent = face.track_frames(_frames(path, 40), info.width, info.height, 40, info.fps, speaker="auto",
                                   audio=None, mouth_from_sound=mouth_from_sound)
    assert _centre_x(silent) > 512 and "no sound" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lipdub"):
        quiet = face.track_frames(_frames(path, 40), info.width, info.height, 40, info.fps, speaker="auto",
                                  audio=np.zeros(16000 * 2, np.float32), mouth_from_sound=mouth_from_sound)
    assert _centre_x(quiet) > 512 and "cannot tell who speaks" in caplog.text


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "lipdub", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def test_cli_speaker_option_errors_are_one_line(tmp_path):
    data = require_data(LEFT)
    video = data / LEFT
    bad = _cli("dub", video, video, "-o", tmp_path / "o.mp4", "--speaker", "loudest")
    assert bad.returncode == 2 and "--speaker" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    both = _cli("dub", video, video, "-o", tmp_path / "o.mp4", "--speaker", "auto", "--face-index", "1")
    assert both.returncode == 2 and "--speaker auto" in both.stderr and "Traceback" not in both.stderr
    assert len(both.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_video_audio_is_the_video_files_own_sound():
    data = require_data(LEFT, "video/selfie_noaudio_12s.mp4")
    assert media.video_audio(data / "video/selfie_noaudio_12s.mp4") is None
    sound = media.video_audio(data / LEFT)
    assert sound.dtype == np.float32 and abs(len(sound) / 16000 - media.probe_video(data / LEFT).duration) < 0.1
