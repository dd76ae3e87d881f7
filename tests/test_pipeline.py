"""End to end on real clips: `lipdub dub` as a user runs it."""

import subprocess
import sys

import numpy as np
import pytest

import lipdub
from lipdub import face, media, render
from lipdub.errors import ParameterError

from conftest import require_data, write_cut

JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def _mean_abs(a, b):
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _worst_block(a, b, block=16):
    """Largest mean difference over block x block tiles: a re-rendered mouth stands out, codec noise does not."""
    import cv2

    d = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)
    return float(cv2.resize(d, (d.shape[1] // block, d.shape[0] // block), interpolation=cv2.INTER_AREA).max())


@pytest.fixture(scope="module")
def katie_jfk(tmp_path_factory):
    data = require_data("video/hdtf_katiehill_8s.mp4", "audio/en_jfk_11s.wav")
    out = tmp_path_factory.mktemp("dub") / "katie_jfk.mp4"
    report = lipdub.dub(data / "video/hdtf_katiehill_8s.mp4", data / "audio/en_jfk_11s.wav", out, transcript=JFK)
    return data / "video/hdtf_katiehill_8s.mp4", out, report


def test_output_lasts_as_long_as_the_audio_at_source_size_and_rate(katie_jfk):
    src, out, report = katie_jfk
    info, src_info = media.probe_video(out), media.probe_video(src)
    assert (info.width, info.height) == (src_info.width, src_info.height)
    assert info.fps == pytest.approx(src_info.fps, abs=0.01)
    assert abs(info.n_frames - 275) <= 1  # 11.0 s at 25 fps, to the frame
    assert info.has_audio
    audio, sr = media.load_audio(out, 16000)
    assert len(audio) / sr == pytest.approx(11.0, abs=0.05)
    assert report.speech_method == "forced-alignment"


def test_upper_face_unchanged_and_mouth_speaks(katie_jfk):
    src, out, _ = katie_jfk
    src_info = media.probe_video(src)
    track = face.track_frames(lambda: media.iter_frames(src), src_info.width, src_info.height, src_info.n_frames,
                              src_info.fps)
    schedule = media.output_schedule(len(track), src_info.fps, 11.0, "pingpong")
    upper, mouth = [], []
    with media.FrameReader(src) as orig, media.FrameReader(out) as dubbed:
        for k in range(0, len(schedule), 10):
            j = int(schedule[k])
            a, b = orig.get(j), dubbed.get(k)
            lm = track.landmarks[j]
            eyes_y = int(lm[[33, 263], 1].mean())
            upper.append(_mean_abs(a[: eyes_y + 10], b[: eyes_y + 10]))
            x0, x1 = int(lm[61, 0]) - 5, int(lm[291, 0]) + 5
            y0, y1 = int(lm[0, 1]) - 5, int(lm[17, 1]) + 15
            mouth.append(_mean_abs(a[y0:y1, x0:x1], b[y0:y1, x0:x1]))
    assert max(upper) < 3.0  # codec noise only: a plain CRF-16 re-encode of this mpeg4 clip differs by 2.3
    assert np.mean(mouth) > 3 * np.mean(upper)
    # the re-tracked mouth opens and closes with the new speech
    out_info = media.probe_video(out)
    dub_track = face.track_frames(lambda: media.iter_frames(out), out_info.width, out_info.height, out_info.n_frames,
                                  out_info.fps)
    opening = face.inner_opening(dub_track.landmarks)
    speech, _ = media.load_audio(out, 16000)
    hop = 16000 // 25
    rms = np.array([np.sqrt(np.mean(speech[i * hop:(i + 1) * hop] ** 2)) for i in range(len(opening))])
    assert opening[rms < 0.3 * np.median(rms[rms > 0])].mean() < opening[rms > np.median(rms)].mean()
    assert np.corrcoef(opening, rms)[0, 1] > 0.3


def test_face_less_frames_pass_through(tmp_path):
    data = require_data("video/face_gap_23s.mov", "audio/en_jfk_11s.wav")
    src = data / "video/face_gap_23s.mov"
    # a 6 s cut that spans the face-less cut-away (frames ~318-437 of the file)
    cut = write_cut(src, tmp_path / "cut.mp4", 460, start=280)
    out = tmp_path / "out.mp4"
    report = lipdub.dub(cut, data / "audio/en_jfk_11s.wav", out, length="video", cache=False, crf=0,
                        preset="ultrafast")  # lossless: what passes through untouched must come back exactly
    cut_info = media.probe_video(cut)
    track = face.track_frames(lambda: media.iter_frames(cut), cut_info.width, cut_info.height, cut_info.n_frames,
                              cut_info.fps)
    assert 0 < report.faces_rendered < report.frames
    faceless = np.flatnonzero(~track.valid)
    assert len(faceless) > 60
    with media.FrameReader(cut) as a, media.FrameReader(out) as b:
        untouched = [_worst_block(a.get(int(j)), b.get(int(j))) for j in faceless[::10]]
        rendered = [_worst_block(a.get(int(j)), b.get(int(j))) for j in np.flatnonzero(track.valid)[::10]]
    assert max(untouched) == 0.0  # exactly as in the input
    assert np.median(rendered) > 2.0


def test_a_photo_speaks(tmp_path):
    data = require_data("images/woman_frontal.png", "audio/es_spanish1_5s.wav")
    out = tmp_path / "photo.mp4"
    report = lipdub.dub(data / "images/woman_frontal.png", data / "audio/es_spanish1_5s.wav", out, language="es")
    info = media.probe_video(out)
    assert abs(info.n_frames - round(4.512 * info.fps)) <= 1
    assert report.faces_rendered == info.n_frames
    track = face.track_frames(lambda: media.iter_frames(out), info.width, info.height, info.n_frames, info.fps)
    opening = face.inner_opening(track.landmarks)
    assert opening.max() - opening.min() > 0.08  # the still face's mouth moves


def test_api_rejects_unknown_options(tmp_path):
    with pytest.raises(ParameterError):
        lipdub.dub("a.mp4", "b.wav", tmp_path / "o.mp4", wobble=3)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "lipdub", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_cli_errors_are_one_line_with_exit_codes(tmp_path):
    data = require_data("video/grid_bbaf2n.mpg")
    video = data / "video/grid_bbaf2n.mpg"
    missing = _cli("dub", tmp_path / "nope.mp4", video, "-o", tmp_path / "o.mp4")
    assert missing.returncode == 3 and "not found" in missing.stderr and "Traceback" not in missing.stderr
    same = _cli("dub", video, video, "-o", video)
    assert same.returncode == 4 and "Traceback" not in same.stderr
    bad = _cli("dub", video, video, "-o", tmp_path / "o.mp4", "--strength", "9")
    assert bad.returncode == 2 and "strength" in bad.stderr
    assert not list(tmp_path.iterdir())  # nothing partial left behind


def test_cli_wav2lip_aliases(tmp_path):
    data = require_data("video/grid_bbaf2n.mpg", "video/grid_brbk7n.mpg")
    out = tmp_path / "alias.mp4"
    r = _cli("-q", "dub", "--face", data / "video/grid_bbaf2n.mpg", "--audio", data / "video/grid_brbk7n.mpg",
             "--outfile", out)
    assert r.returncode == 0, r.stderr
    info = media.probe_video(out)
    assert info.has_audio and abs(info.duration - 3.0) < 0.1


def _side_by_side(tmp_path, left, right, seconds=2.0):
    """Two clips next to each other in one frame (two faces), with the left clip's sound."""
    li, ri = media.probe_video(left), media.probe_video(right)
    out = tmp_path / "two_faces.mp4"
    n = int(seconds * li.fps)
    audio, sr = media.load_audio(left, 16000)
    with media.VideoWriter(out, li.width + ri.width, li.height, li.fps, audio=audio[: int(seconds * sr)],
                           audio_sr=sr, crf=12) as w:
        for a, b in zip(media.iter_frames(left), media.iter_frames(right)):
            if a.index >= n:
                break
            w.write(np.concatenate([a.rgb, b.rgb[: li.height]], axis=1))
    return out, li.width


@pytest.mark.parametrize("choice", ["face_index", "face_box"])
def test_choosing_the_speaker_among_two_faces(tmp_path, choice):
    data = require_data("video/grid_bbaf2n.mpg", "video/grid_lbax4n.mpg", "audio/en_jfk_11s.wav")
    both, split = _side_by_side(tmp_path, data / "video/grid_bbaf2n.mpg", data / "video/grid_lbax4n.mpg")
    info = media.probe_video(both)
    # which face is index 1 depends on size: find the right-hand face's box from a survey of the first frame
    if choice == "face_box":
        kwargs = {"face_box": (split + 60, 40, 240, 240)}
    else:
        with face.Landmarker() as lmk:
            faces = face.detect_all(lmk, next(media.iter_frames(both)).rgb)
        boxes = sorted((face.face_box(f) for f in faces), key=lambda b: -b[2] * b[3])
        assert len(boxes) == 2
        kwargs = {"face_index": [i for i, b in enumerate(boxes) if b[0] > split][0]}
    out = tmp_path / "dub.mp4"
    lossless = {"crf": 0, "preset": "ultrafast"}  # so the untouched side compares exactly, without codec noise
    lipdub.dub(both, data / "audio/en_jfk_11s.wav", out, length="video", cache=False, **lossless, **kwargs)
    plain = tmp_path / "plain.mp4"
    with media.VideoWriter(plain, info.width, info.height, info.fps, **lossless) as w, \
            media.FrameReader(both, planar=True) as frames:  # as the dub reads them (YUV where the format allows)
        for j in range(info.n_frames):
            w.write(frames.get(j))
    left, right = [], []
    with media.FrameReader(plain) as a, media.FrameReader(out) as b:
        for j in range(5, info.n_frames, 8):
            fa, fb = a.get(j), b.get(j)
            left.append(_worst_block(fa[:, :split], fb[:, :split]))
            right.append(_worst_block(fa[:, split:], fb[:, split:]))
    assert max(left) < 0.5  # the other person is untouched
    assert np.median(right) > 6.0  # the chosen speaker's mouth was re-rendered


@pytest.mark.parametrize("audio", ["audio/ko_korean1_10s.wav", "audio/fr_french1_7s.wav"])
def test_other_languages_dub_without_a_transcript(tmp_path, audio):
    data = require_data("video/grid_lbbc2a.mpg", audio)
    out = tmp_path / "dub.mp4"
    report = lipdub.dub(data / "video/grid_lbbc2a.mpg", data / audio, out, length="video", cache=False)
    assert report.speech_method in ("hama+align", "allphone")
    info = media.probe_video(out)
    track = face.track_frames(lambda: media.iter_frames(out), info.width, info.height, info.n_frames, info.fps)
    opening = face.inner_opening(track.landmarks)
    assert track.valid.all() and np.percentile(opening, 90) - np.percentile(opening, 10) > 0.08


def test_alignment_is_saved_edited_and_reused(tmp_path):
    data = require_data("video/grid_bbaf2n.mpg", "video/grid_brbk7n.mpg")
    saved = tmp_path / "speech.json"
    first = tmp_path / "a.mp4"
    r = _cli("-q", "dub", data / "video/grid_bbaf2n.mpg", data / "video/grid_brbk7n.mpg", "-o", first,
             "--save-alignment", saved)
    assert r.returncode == 0, r.stderr
    from lipdub.speech import SpeechTrack

    track = SpeechTrack.load(saved)
    assert track.phones and track.method == "hama+align"
    # a user silences the whole clip by editing the alignment: the reused file drives the dub, the mouth rests
    track.voiced[:] = False
    track.phones = [type(track.phones[0])("SIL", 0.0, track.duration)]
    track.save(saved)
    second = tmp_path / "b.mp4"
    r = _cli("-q", "dub", data / "video/grid_bbaf2n.mpg", data / "video/grid_brbk7n.mpg", "-o", second,
             "--alignment", saved)
    assert r.returncode == 0, r.stderr
    info = media.probe_video(second)
    tr = face.track_frames(lambda: media.iter_frames(second), info.width, info.height, info.n_frames, info.fps)
    assert np.percentile(face.inner_opening(tr.landmarks), 95) < 0.05
    wrong = _cli("-q", "dub", data / "video/grid_bbaf2n.mpg", data / "audio/en_jfk_11s.wav", "-o",
                 tmp_path / "c.mp4", "--alignment", saved)
    assert wrong.returncode == 2 and "alignment" in wrong.stderr


def test_visemes_command_writes_every_format(tmp_path):
    data = require_data("audio/es_spanish1_5s.wav")
    outs = [tmp_path / "m.tsv", tmp_path / "m.csv", tmp_path / "m.json", tmp_path / "m.png"]
    args = ["-q", "visemes", data / "audio/es_spanish1_5s.wav", "--fps", "25"]
    for o in outs:
        args += ["-o", o]
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    assert all(o.stat().st_size > 0 for o in outs)
    assert outs[0].read_text().splitlines()[0] == "0.00\tX"


def test_hd_frames_pass_as_decoded_outside_the_mouth(tmp_path, monkeypatch):
    """HD BT.709 sources are drawn on in YUV (media.PlanarFrame): the mouth comes out as the RGB path draws it, and
    the rest of the frame skips the RGB round trip."""
    data = require_data("video/face_gap_23s.mov", "audio/es_spanish1_5s.wav")
    monkeypatch.setenv("LIPDUB_CACHE", str(tmp_path / "cache"))  # the track below is this clip's
    cut = write_cut(data / "video/face_gap_23s.mov", tmp_path / "cut.mp4", 75)
    audio = data / "audio/es_spanish1_5s.wav"
    lossless = {"length": "video", "crf": 0, "preset": "ultrafast"}  # differences are the drawing's, not x264's
    planar = lipdub.dub(cut, audio, tmp_path / "planar.mp4", **lossless)
    monkeypatch.setattr(media.frames, "passes_as_decoded", lambda frame: False)
    rgb = lipdub.dub(cut, audio, tmp_path / "rgb.mp4", **lossless)
    assert planar.frames == rgb.frames == 75 and planar.faces_rendered == rgb.faces_rendered > 70
    track = face.FaceTrack.load(next((face.cache_dir() / "tracks").glob("*.npz")))
    same, drawn, err_planar, err_rgb = [], [], [], []
    with media.FrameReader(cut) as src, media.FrameReader(tmp_path / "planar.mp4") as a, \
            media.FrameReader(tmp_path / "rgb.mp4") as b:
        for k in range(0, 75, 8):
            s, p, r = src.get(k), a.get(k), b.get(k)
            lm = track.landmarks[k]
            x0, x1 = int(lm[61, 0]) - 10, int(lm[291, 0]) + 10
            y0, y1 = int(lm[0, 1]) - 10, int(lm[17, 1]) + 20
            same.append(_mean_abs(p[y0:y1, x0:x1], r[y0:y1, x0:x1]))
            drawn.append(_mean_abs(p[y0:y1, x0:x1], s[y0:y1, x0:x1]))
            top = int(lm[[33, 263], 1].mean())  # above the eyes: never drawn on
            err_planar.append(_mean_abs(s[:top], p[:top]))
            err_rgb.append(_mean_abs(s[:top], r[:top]))
    assert max(same) < 1.5 and np.mean(drawn) > 3 * np.mean(same)  # the same new mouths
    # exactly as decoded; the RGB round trip is within rounding too since reading and writing share one exact
    # matrix (FFmpeg's conversion moved it by 0.5+ levels)
    assert max(err_planar) < 0.01 and max(err_rgb) < 0.05


def test_the_clips_atlas_is_cached_with_its_track(tmp_path, monkeypatch):
    """A second dub of the same video (another audio) reuses the mouth atlas instead of decoding the video again,
    with the same frames; a damaged or foreign atlas file is rebuilt. The first dub decodes the video once before
    rendering it (survey, tracking and atlas read the same decoded frames: media.frames_held)."""
    import lipdub.media.frames as frames_mod

    data = require_data("video/grid_bbaf2n.mpg", "audio/es_spanish1_5s.wav", "audio/fr_french1_7s.wav")
    monkeypatch.setenv("LIPDUB_CACHE", str(tmp_path / "cache"))
    video = data / "video/grid_bbaf2n.mpg"
    decodes, held = [], []
    real_decoded, real_held = frames_mod._decoded, media.frames_held
    monkeypatch.setattr(frames_mod, "_decoded", lambda *a: decodes.append(1) or real_decoded(*a))
    monkeypatch.setattr(media, "frames_held", lambda *a, **k: held.append(1) or real_held(*a, **k))
    first = lipdub.dub(video, data / "audio/es_spanish1_5s.wav", tmp_path / "a.mp4", frames_sha256=True)
    assert len(decodes) == 1 and len(held) == 1  # 75 frames: tracked in two halves, as a longer video
    cached = list((tmp_path / "cache" / "atlases").glob("*.npz"))
    assert len(cached) == 1

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the atlas was built again")

    from lipdub.pipeline import caches
    from lipdub.render import interior

    measured = []  # entries whose gap lightness a dub measures (the curves' samples are kept with the atlas)
    real_measure = interior.stored_gap_lightness
    monkeypatch.setattr(interior, "stored_gap_lightness", lambda atlas, a: measured.append(a) or real_measure(atlas, a))
    assert len(caches.load_cached_gaps(cached[0])) > 0
    with monkeypatch.context() as m:
        m.setattr(render.Renderer, "for_video", no_rebuild)
        again = lipdub.dub(video, data / "audio/es_spanish1_5s.wav", tmp_path / "b.mp4", frames_sha256=True)
        kept = len(measured)
        # a prepared video's filmed pauses are read while the speech is analysed (the other core idles there): the
        # analysis waits for them here, which it could never see if they were read after it
        import threading

        from lipdub import speech
        from lipdub.pipeline import offline

        # and its new sound is encoded, its first frames decoded, then too (offline.Ahead): into the same file
        read, ahead_done, seen, ahead = threading.Event(), threading.Event(), [], []
        real_pauses, real_analyse = offline.filmed_pauses, speech.analyse
        real_sound, real_frames = media.VideoWriter.encode_audio_ahead, media.FrameReader.read_ahead

        def encode_ahead(writer, frames, stop=None):
            real_sound(writer, frames, stop)
            ahead.append((frames, writer._a.sent, len(writer._a._ahead)))

        def read_ahead(reader, count, stop=None):
            ahead.append(real_frames(reader, count, stop))
            ahead_done.set()
            return ahead[-1]

        m.setattr(offline, "filmed_pauses", lambda *a: read.set() or real_pauses(*a))
        m.setattr(media.VideoWriter, "encode_audio_ahead", encode_ahead)
        m.setattr(media.FrameReader, "read_ahead", read_ahead)
        m.setattr(speech, "analyse",
                  lambda *a, **k: seen.append(read.wait(60) and ahead_done.wait(60)) or real_analyse(*a, **k))
        plain = lipdub.dub(video, data / "audio/fr_french1_7s.wav", tmp_path / "c.mp4", repeatable=True)
        assert seen == [True]
        (frames, sent, packets), read_first = ahead
        assert frames == plain.frames and sent > 0.95 * frames / plain.fps * 48000 and packets > 0.9 * sent / 1024
        assert read_first == media.probe_video(video).n_frames  # 75 small frames: all of them
        m.setattr(offline.Ahead, "run", lambda *a, **k: None)
        m.setattr(speech, "analyse", real_analyse)
        lipdub.dub(video, data / "audio/fr_french1_7s.wav", tmp_path / "c_in_turn.mp4", repeatable=True)
        assert (tmp_path / "c.mp4").read_bytes() == (tmp_path / "c_in_turn.mp4").read_bytes()
        # a long dub (its speech analysed in pieces) does nothing ahead: its peak memory counts, a second does not
        given, real_samples = [], offline.samples_unless_in_pieces
        m.setattr(offline.Ahead, "run", lambda self, *a, **k: given.append(self.writer))
        m.setattr(offline, "samples_unless_in_pieces", lambda audio, transcript: (real_samples(audio, transcript)[0],
                                                                                 None))
        lipdub.dub(video, data / "audio/fr_french1_7s.wav", tmp_path / "c_long.mp4")
        assert given == [None] and (tmp_path / "c_long.mp4").exists()
        # an archive written before the gap lightness was kept with it (version 2): measured again, the same frames
        with np.load(cached[0]) as z:
            older = {k: z[k] for k in z.files if not k.startswith("gap_")}
        np.savez(cached[0], **older)
        assert caches.load_cached_gaps(cached[0]) == {}
        measured.clear()
        old = lipdub.dub(video, data / "audio/es_spanish1_5s.wav", tmp_path / "o.mp4", frames_sha256=True)
    assert again.frames_sha256 == first.frames_sha256 == old.frames_sha256 and len(first.frames_sha256) == 64
    assert plain.frames_sha256 is None  # a dub not asked for its frames' digest does not hash them
    assert len(measured) > kept
    cached[0].write_bytes(b"not an archive")
    decodes.clear()
    rebuilt = lipdub.dub(video, data / "audio/es_spanish1_5s.wav", tmp_path / "d.mp4", frames_sha256=True)
    assert rebuilt.frames_sha256 == first.frames_sha256 and cached[0].stat().st_size > 10000
    assert len(decodes) == 1 and len(held) == 1  # the track from the cache: the atlas's pass alone, nothing held


def test_sigterm_leaves_no_partial_output(tmp_path):
    """A dub stopped by SIGTERM (a scheduler, `kill`) ends like Ctrl-C: exit 143, no output, no temporary file."""
    import os
    import signal
    import time

    data = require_data("video/hdtf_katiehill_8s.mp4", "audio/en_jfk_11s.wav")
    out = tmp_path / "out" / "dub.mp4"
    out.parent.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "lipdub", "--quiet", "dub",
                             str(data / "video/hdtf_katiehill_8s.mp4"), str(data / "audio/en_jfk_11s.wav"),
                             "-o", str(out), "--no-cache"],
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    deadline = time.time() + 120
    while not list(out.parent.glob(".dub.*")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)  # until the encoder's temporary file exists: the dub is rendering
    assert proc.poll() is None, "the dub ended before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "interrupted" in err and "Traceback" not in err
    assert list(out.parent.iterdir()) == []
