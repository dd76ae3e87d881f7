"""Photos of any size: a photo over --max-size (default 1920) is read once, scaled down to an even output size and
dubbed at that size; --max-size 0 keeps the photo's own size; bad values are refused before any work."""

import re
import subprocess
import sys
import wave

import numpy as np
import pytest

import lipdub
from conftest import require_data
from lipdub import media
from lipdub.errors import ParameterError

PORTRAIT = "images/man_frontal_hires.jpg"  # 1691 x 1691
SMALL = "images/woman_frontal.png"  # 474 x 474
AUDIO = "audio/en_jfk_11s.wav"


def _short_audio(src, out, seconds=1.5):
    with wave.open(str(src)) as w:
        params, frames = w.getparams(), w.readframes(int(seconds * w.getframerate()))
    with wave.open(str(out), "wb") as o:
        o.setparams(params)
        o.writeframes(frames)
    return out


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """A 4000x3000 photo made from a shared portrait (scaled up, the face in the middle) and 1.5 s of speech."""
    import cv2

    data = require_data(PORTRAIT, AUDIO)
    tmp = tmp_path_factory.mktemp("photos")
    img = cv2.resize(cv2.imread(str(data / PORTRAIT)), (4000, 4000), interpolation=cv2.INTER_CUBIC)[500:3500]
    cv2.imwrite(str(tmp / "large.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return tmp / "large.jpg", _short_audio(data / AUDIO, tmp / "speech.wav")


def _size(path):
    info = media.probe_video(path)
    return info.width, info.height


def test_photo_size_policy():
    assert media.photo_size(4000, 3000, 1920) == (1920, 1440)
    assert media.photo_size(3000, 4000, 1920) == (1440, 1920)
    assert media.photo_size(1691, 1691, 640) == (640, 640)
    assert media.photo_size(1001, 3001, 1920) == (640, 1920)  # even sides
    assert media.photo_size(1920, 1080, 1920) is None  # not over the limit: its own size
    assert media.photo_size(8000, 8000, 0) is None
    assert media.photo_size(910, 1137, 1920) == (910, 1136)  # an odd side loses a row: 4:2:0, as players want
    assert media.photo_size(910, 1137, 0) is None  # 0: the photo's own size, exactly


def test_an_odd_sized_photo_is_cropped_to_even_sides_not_resampled(tmp_path):
    import cv2

    data = require_data(SMALL)
    odd = tmp_path / "odd.png"
    img = cv2.imread(str(data / SMALL))[:473, :471]
    cv2.imwrite(str(odd), img)
    info = media.probe_video(odd, max_size=1920)
    assert (info.width, info.height) == (470, 472)
    rgb = next(media.iter_frames(odd, scaled_to=info.scaled_to)).rgb
    np.testing.assert_array_equal(rgb, img[:472, :470, ::-1])  # the photo's own pixels, less the last row and column


def test_a_large_photo_is_read_once_at_the_output_size(large):
    import cv2

    photo, _ = large
    info = media.probe_video(photo, 1920)
    assert (info.width, info.height, info.source_size) == (1920, 1440, (4000, 3000))
    first = next(media.iter_frames(photo, scaled_to=info.scaled_to)).rgb
    with media.FrameReader(photo, info) as reader:
        again = reader.get(0)
    full = next(media.iter_frames(photo)).rgb
    assert full.shape == (3000, 4000, 3)
    assert first.shape == (1440, 1920, 3) and np.array_equal(first, again)
    assert np.array_equal(first, cv2.resize(full, (1920, 1440), interpolation=cv2.INTER_AREA))
    assert media.probe_video(photo).source_size is None  # no limit given: read as stored


def test_a_large_photo_dubs_at_1920(large, tmp_path):
    photo, audio = large
    out = tmp_path / "large.mp4"
    report = lipdub.dub(photo, audio, out)
    assert _size(out) == (1920, 1440)
    assert report.faces_rendered == report.frames > 0


def test_max_size_0_keeps_the_photos_size_and_640_scales_it(tmp_path):
    data = require_data(SMALL, AUDIO)
    audio = _short_audio(data / AUDIO, tmp_path / "speech.wav", 1.0)
    kept = lipdub.dub(data / SMALL, audio, tmp_path / "kept.mp4", max_size=0)
    assert _size(kept.output) == (474, 474) and kept.faces_rendered > 0
    small = lipdub.dub(data / SMALL, audio, tmp_path / "small.mp4", max_size=320)
    assert _size(small.output) == (320, 320) and small.faces_rendered > 0


def test_cli_max_size_640_with_a_face_box_in_the_photos_pixels(tmp_path):
    data = require_data(PORTRAIT, AUDIO)
    audio = _short_audio(data / AUDIO, tmp_path / "speech.wav", 1.0)
    out = tmp_path / "o.mp4"
    run = subprocess.run([sys.executable, "-m", "lipdub", "dub", str(data / PORTRAIT), str(audio), "-o", str(out),
                          "--max-size", "640", "--face-box", "450,350,800,1000"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert _size(out) == (640, 640)
    rendered = re.search(r"mouth rendered on (\d+) frames", run.stdout + run.stderr)
    assert rendered and int(rendered.group(1)) > 0


@pytest.mark.parametrize("value", [-1, 10, 1.5, True, "640", 100000])
def test_bad_max_size_is_refused_before_any_work(tmp_path, value):
    data = require_data(SMALL, AUDIO)
    with pytest.raises(ParameterError, match="--max-size"):
        lipdub.dub(data / SMALL, data / AUDIO, tmp_path / "o.mp4", max_size=value)
    assert not list(tmp_path.iterdir())


def test_cli_bad_max_size(tmp_path):
    data = require_data(SMALL, AUDIO)
    run = subprocess.run([sys.executable, "-m", "lipdub", "dub", str(data / SMALL), str(data / AUDIO), "-o",
                          str(tmp_path / "o.mp4"), "--max-size", "12"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "--max-size" in run.stderr and "Traceback" not in run.stderr
    assert not list(tmp_path.iterdir())
