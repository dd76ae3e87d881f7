"""Long inputs in bounded memory: sound tracks streamed from their file, long face tracks on disk, long speech
analysed in pieces. Each path is checked on short material against the in-memory one it replaces (the hour-long case
is a benchmark: bench/long_input.py)."""

import wave

import numpy as np
import pytest

import lipdub
from training import evaluate
from lipdub import face, media, pipeline, speech
from lipdub.pipeline import speech_pieces

from conftest import require_data
from test_media import dominant_freq, pattern, tone

VIDEO = "video/hdtf_katiehill_8s.mp4"
AUDIO = "audio/en_jfk_11s.wav"


def _wav(path, x, sr):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[0] if x.ndim == 2 else 1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(x.T if x.ndim == 2 else x, -1, 1) * 32767).astype("<i2").tobytes())


@pytest.mark.parametrize("channels,sr", [(1, 16000), (2, 44100)])
def test_writer_streams_the_sound_track_from_its_file(tmp_path, channels, sr):
    src = tmp_path / "tone.wav"
    _wav(src, tone(3.0, sr=sr, channels=channels), sr)
    outs = {}
    for kind, audio in (("file", src), ("array", media.load_audio(src, None, mono=False)[0])):
        for n in (50, 100):  # audio longer than the video (trimmed) and shorter (zero-padded)
            out = outs[kind, n] = tmp_path / f"{kind}{n}.mp4"
            with media.VideoWriter(out, 32, 32, 25, audio=audio, audio_sr=sr) as wr:
                for k in range(n):
                    wr.write(pattern(k, 32, 32))
    for n in (50, 100):
        x, rate = media.load_audio(outs["file", n], None, mono=False)
        y, _ = media.load_audio(outs["array", n], None, mono=False)
        assert rate == media.AAC_SR and x.shape[0] == channels
        assert abs(x.shape[1] / rate - n / 25) < 1024 / 48000 + 0.005
        assert dominant_freq(x[0, : int(1.5 * rate)], rate) == pytest.approx(440, abs=5)
        m = min(x.shape[1], y.shape[1], 3 * rate)
        assert np.corrcoef(x[0, :m], y[0, :m])[0, 1] > 0.99  # the same sound as from the array
        if n == 100:
            assert np.abs(x[:, int(3.2 * rate):]).max() < 0.01  # silence past the audio's end


def test_join_segments_streams_the_sound_track(tmp_path):
    src = tmp_path / "tone.wav"
    _wav(src, tone(2.0), 16000)
    parts = []
    for p in range(2):
        parts.append(tmp_path / f"p{p}.mp4")
        with media.VideoWriter(parts[-1], 32, 32, 25, segment=True) as wr:
            for k in range(25):
                wr.write(pattern(k, 32, 32))
    out = tmp_path / "joined.mp4"
    assert media.join_segments(parts, out, 25, src) == 50
    x, rate = media.load_audio(out)
    assert abs(len(x) / rate - 2.0) < 1024 / 48000 + 0.005
    assert dominant_freq(x, rate) == pytest.approx(440, abs=5)


def test_track_on_disk_smooths_saves_and_loads_like_one_in_ram(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    n = 5000
    lm = (rng.normal(size=(n, 478, 3)) * 2 + 300).astype(np.float32)
    lm[3000:] += 200  # a cut: two segments
    valid = rng.random(n) > 0.02
    in_ram = face.smooth_track(face.FaceTrack(np.arange(n) / 25, lm, valid, 640, 480))
    assert not isinstance(in_ram.landmarks, np.memmap)
    monkeypatch.setattr(face.track, "RAM_BYTES", 0)
    for module in (face.track, face.smooth):  # blocks that cut segments: the filter must not see the seams
        monkeypatch.setattr(module, "BLOCK", 700)
    on_disk = face.smooth_track(face.FaceTrack(np.arange(n) / 25, lm, valid, 640, 480))
    assert isinstance(on_disk.landmarks, np.memmap)
    face.release_pages(on_disk.landmarks)  # the data survives giving the pages back
    assert np.array_equal(np.asarray(on_disk.landmarks), in_ram.landmarks)
    on_disk.save(tmp_path / "t.npz")
    back = face.FaceTrack.load(tmp_path / "t.npz")
    assert isinstance(back.landmarks, np.memmap)
    assert np.array_equal(np.asarray(back.landmarks), in_ram.landmarks) and np.array_equal(back.valid, valid)
    with np.load(tmp_path / "t.npz") as z:  # still an ordinary .npz
        assert np.array_equal(z["landmarks"], in_ram.landmarks)


def _rss_file_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("RssFile:")) / 1024


def test_sparse_reads_of_a_track_on_disk_keep_its_pages_out_of_memory(monkeypatch):
    # an hour's track is 540 MB on disk; reading a sample spread over all of it (the atlas cache's fingerprint, the
    # mean face) once mapped the whole file through the kernel's read-ahead, and ru_maxrss counts those pages
    monkeypatch.setattr(face.track, "RAM_BYTES", 0)
    n = 30000  # 172 MB
    lm = face.landmark_array(n)
    for a in range(0, n, face.BLOCK):
        lm[a:a + face.BLOCK] = np.arange(a, min(n, a + face.BLOCK), dtype=np.float32)[:, None, None]
        face.release_pages(lm)
    track = face.FaceTrack(np.arange(n) / 25, lm, np.ones(n, bool), 640, 480)
    rows = np.arange(0, n, 97)
    before = _rss_file_mb()
    sample = face.take_rows(lm, rows)
    assert _rss_file_mb() - before < 40
    assert np.array_equal(sample[:, 0, 0], rows.astype(np.float32))
    fingerprint = pipeline.track_fingerprint(track)
    assert _rss_file_mb() - before < 40
    import hashlib  # the same value as one read of the strided view (atlas caches stay valid)
    assert fingerprint == hashlib.sha256(np.ones(n, bool).tobytes() + np.ascontiguousarray(lm[::97]).tobytes()).hexdigest()


def test_dub_with_the_track_on_disk_equals_the_dub_in_ram(tmp_path, monkeypatch):
    data = require_data(VIDEO, AUDIO)
    audio = tmp_path / "jfk3.wav"
    evaluate.cut_audio(data / AUDIO, 0.0, 3.0, audio)
    ram = lipdub.dub(data / VIDEO, audio, tmp_path / "ram.mp4", cache=False, frames_sha256=True)
    monkeypatch.setattr(face.track, "RAM_BYTES", 0)
    disk = lipdub.dub(data / VIDEO, audio, tmp_path / "disk.mp4", cache=False, frames_sha256=True)
    assert ram.frames == disk.frames == 75 and len(ram.frames_sha256) == 64
    assert ram.frames_sha256 == disk.frames_sha256


def test_audio_decoded_once_gives_load_audios_samples_or_none_in_pieces(monkeypatch):
    """samples_unless_in_pieces: short audio's samples exactly as load_audio gives them (decoded once), None past the
    pieces' threshold, and long audio with a transcript (analysed whole) read whole; its length as count_samples."""
    data = require_data("audio/en_radio34_other_8s.wav", AUDIO)
    for name in ("audio/en_radio34_other_8s.wav", AUDIO):
        x, _ = media.load_audio(data / name, 16000)
        n, once = speech_pieces.samples_unless_in_pieces(data / name, None)
        assert n == len(x) == speech_pieces.count_samples(data / name)
        assert once.dtype == x.dtype and np.array_equal(once, x)
    monkeypatch.setattr(speech_pieces, "SPEECH_PIECE", 4.0)
    monkeypatch.setattr(speech_pieces, "SPEECH_SLACK", 2.0)  # (both files last longer than 6 s)
    n, none = speech_pieces.samples_unless_in_pieces(data / name, None)
    assert n == len(x) and none is None
    n, whole = speech_pieces.samples_unless_in_pieces(data / name, "a transcript")
    assert n == len(x) and np.array_equal(whole, x)


def test_long_speech_is_analysed_in_pieces_that_line_up(monkeypatch):
    data = require_data(AUDIO)
    monkeypatch.setattr(speech_pieces, "SPEECH_PIECE", 4.0)
    monkeypatch.setattr(speech_pieces, "SPEECH_SLACK", 2.0)
    x, _ = media.load_audio(data / AUDIO, 16000)
    whole = speech.analyse(x, 16000)
    joined = speech_pieces.speech_in_pieces(data / AUDIO, None)
    assert speech_pieces.count_samples(data / AUDIO) == len(x)
    assert joined.n_frames == whole.n_frames and joined.duration == pytest.approx(whole.duration, abs=1e-6)
    assert joined.jaw.shape == whole.jaw.shape and joined.mel.shape == whole.mel.shape
    ph = joined.phones
    assert ph[0].start == 0 and ph[-1].end == pytest.approx(joined.duration, abs=0.011)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(ph, ph[1:]))  # contiguous across the seams
    assert joined.method in speech.METHODS and sum(p.label != "SIL" for p in ph) > 10
    assert (joined.voiced == whole.voiced).mean() > 0.9
