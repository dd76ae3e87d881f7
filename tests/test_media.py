"""lipdub.media: probing, decoding, random access, audio loading, schedules, atomic writing, output checks."""

import os
import re

import av
import numpy as np
import pytest
from conftest import DATA, needs_data, require_data

from lipdub.errors import InputError, OutputError, ParameterError
from lipdub.media import FrameReader, PlanarFrame, VideoWriter, check_output_path, is_image_path, iter_frames, load_audio, output_schedule, probe_video

V = "video/"


def decode_count(path):
    """Independent oracle: frames PyAV decodes with a plain loop."""
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def pattern(k, h, w):
    """Distinct, orientation-revealing synthetic frame number k."""
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 0] = (k * 37) % 256
    a[..., 1] = np.linspace(0, 255, w, dtype=np.uint8)[None]
    a[..., 2] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    a[: h // 4, : w // 4] = 255  # bright top-left corner
    return a


def make_video(path, n, w=64, h=48, fps=25, gop=None, bframes=None, rotation=None, codec="libx264"):
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height = w, h
        s.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec == "libx264":
            s.options = {"crf": "10", **({"g": str(gop), "keyint_min": str(gop)} if gop else {}),
                         **({"bf": str(bframes)} if bframes is not None else {})}
        if rotation is not None:
            s.set_display_rotation(rotation)
        for k in range(n):
            for p in s.encode(av.VideoFrame.from_ndarray(pattern(k, h, w), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def damage_packet(src, dst, bad_index):
    """Remux src into dst, replacing one packet's payload with random bytes."""
    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        si = i.streams.video[0]
        so = o.add_stream_from_template(si)
        for j, p in enumerate(pk for pk in i.demux(si) if pk.dts is not None):
            if j == bad_index:
                q = av.Packet(np.random.default_rng(1).integers(0, 256, p.size, dtype=np.uint8).tobytes())
                q.pts, q.dts, q.time_base, q.duration, q.is_keyframe = p.pts, p.dts, p.time_base, p.duration, True
                p = q
            p.stream = so
            o.mux(p)
    return dst


def tone(seconds, sr=16000, freq=440.0, channels=1):
    t = np.arange(int(round(seconds * sr))) / sr
    x = (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return x if channels == 1 else np.stack([x, -x])


def dominant_freq(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


# ---------------------------------------------------------------- probe / decode on real clips


@needs_data
@pytest.mark.parametrize(
    "name,w,h,fps,n,dur,audio",
    [
        (V + "grid_bbaf2n.mpg", 360, 288, 25.0, 75, 3.0, True),
        (V + "interview_vfr_6s.mp4", 700, 700, 22.131, 135, 6.1, True),
        (V + "face_gap_23s.mov", 1280, 720, 30.0, 681, 22.7, True),
        (V + "selfie_noaudio_12s.mp4", 720, 1280, 30.0, 352, 11.733, False),
        (V + "woman_outdoor_10s.mp4", 1080, 1920, 25.0, 250, 10.0, True),
    ],
)
def test_probe_real_clips(name, w, h, fps, n, dur, audio):
    info = probe_video(DATA / name)
    assert (info.width, info.height, info.n_frames, info.has_audio) == (w, h, n, audio)
    assert info.fps == pytest.approx(fps, abs=0.01)
    assert info.duration == pytest.approx(dur, abs=0.02)
    assert info.rotation == 0 and not info.is_image


@needs_data
@pytest.mark.parametrize("name", [V + "grid_bbaf2n.mpg", V + "face_gap_23s.mov"])
def test_probe_frame_count_matches_decoder(name):
    # face_gap's last packet is dropped by the mov edit list: a naive packet count says 682
    assert probe_video(DATA / name).n_frames == decode_count(DATA / name)


@needs_data
def test_probe_images():
    for name, (w, h) in {"images/obama_portrait.jpg": (910, 1137), "images/man_microphone.png": (704, 612)}.items():
        info = probe_video(DATA / name)
        assert info.is_image and info.n_frames == 1 and not info.has_audio
        assert (info.width, info.height) == (w, h)
        frames = list(iter_frames(DATA / name))
        assert len(frames) == 1 and frames[0].rgb.shape == (h, w, 3) and frames[0].rgb.dtype == np.uint8


@needs_data
def test_vfr_timestamps_are_real():
    path = DATA / V / "interview_vfr_6s.mp4"
    info = probe_video(path)
    frames = list(iter_frames(path))
    t = np.array([f.time for f in frames])
    assert len(frames) == info.n_frames and [f.index for f in frames] == list(range(len(frames)))
    assert t[0] == pytest.approx(0.0, abs=1e-6)
    d = np.diff(t)
    assert (d > 0).all()
    assert d.max() - d.min() > 0.02  # 30 fps capture with dropped frames: gaps of 1/30 and 2/30 s
    assert t[-1] == pytest.approx(info.duration - d[-1], abs=0.04)
    assert frames[0].rgb.shape == (700, 700, 3) and frames[0].rgb.flags.c_contiguous


@needs_data
def test_iter_frames_start_offset():
    path = DATA / V / "grid_bbaf2n.mpg"
    full = list(iter_frames(path))
    tail = list(iter_frames(path, start=70))
    assert [f.index for f in tail] == [70, 71, 72, 73, 74]
    for a, b in zip(tail, full[70:]):
        assert a.time == b.time and np.array_equal(a.rgb, b.rgb)


@needs_data
def test_frame_reader_backward_equals_forward_real_clips():
    for name in ("grid_bbaf2n.mpg", "interview_vfr_6s.mp4"):
        path = DATA / V / name
        ref = [f.rgb for f in iter_frames(path)]
        with FrameReader(path, cache_bytes=12 * ref[0].nbytes) as r:
            for i in list(range(len(ref) - 1, -1, -1)) + [3, 90 % len(ref), 1]:
                assert np.array_equal(r.get(i), ref[i]), (name, i)


# ---------------------------------------------------------------- synthetic decode / random access


def test_frame_reader_gops_and_bframes(tmp_path):
    path = make_video(tmp_path / "g.mp4", 40, gop=7, bframes=2)
    ref = [f.rgb for f in iter_frames(path)]
    assert len(ref) == 40 == probe_video(path).n_frames
    assert len({r[0, -1, 0] for r in ref}) > 30  # frames really differ
    order = list(range(39, -1, -1)) + list(np.random.default_rng(0).permutation(40)) + list(range(40))
    with FrameReader(path, cache_bytes=5 * ref[0].nbytes) as r:
        for i in order:
            got = r.get(int(i))
            assert np.array_equal(got, ref[i]), i
        got[:] = 0  # returned arrays are copies: the cache stays intact
        assert np.array_equal(r.get(39), ref[39])
        assert len(r._cache) <= 5  # bounded by the byte budget
        with pytest.raises(ParameterError):
            r.get(40)


def test_frame_reader_take_gives_its_own_frame(tmp_path):
    # take() hands over the cached frame (no copy) and forgets it; a later read decodes it again
    path = make_video(tmp_path / "g.mp4", 12, gop=5, bframes=2)
    ref = [f.rgb for f in iter_frames(path)]
    with FrameReader(path, cache_bytes=4 * ref[0].nbytes) as r:
        for i in (0, 1, 6, 7, 11):
            got = r.take(i)
            assert np.array_equal(got, ref[i]) and i not in r._cache
            got[:] = 0
        r.get(9)
        cached = r._cache[9]
        assert r.take(9) is cached  # not a copy
        for i in (7, 0, 11):
            assert np.array_equal(r.get(i), ref[i])
    with FrameReader(path, planar=True) as r:
        got = r.take(3)
        assert isinstance(got, PlanarFrame) and np.array_equal(got.rgb(), r.get(3).rgb())


def test_frame_reader_reads_ahead_and_holds_what_it_read(tmp_path, monkeypatch):
    # read_ahead decodes the first frames once, beyond the cache's bound, and the reads after it give the same frames
    # without decoding them again; stop() ends it early; a reader already reading does not read ahead
    import lipdub.media.frames as frames_mod

    path = make_video(tmp_path / "g.mp4", 30, gop=7, bframes=2)
    ref = [f.rgb for f in iter_frames(path)]
    decoded, real = [], frames_mod.decode_frames

    def counted(*a, **k):
        for f in real(*a, **k):
            decoded.append(1)
            yield f

    monkeypatch.setattr(frames_mod, "decode_frames", counted)
    with FrameReader(path, cache_bytes=2 * ref[0].nbytes) as r:
        assert r.read_ahead(12) == 12 and len(decoded) == 12 and sorted(r._cache) == list(range(12))
        for i in range(30):
            assert np.array_equal(r.take(i), ref[i]), i
        assert len(decoded) == 30 and not r._cache  # each frame decoded once
    polled = iter(range(100))
    with FrameReader(path, planar=True) as r:
        assert r.read_ahead(20, stop=lambda: next(polled) >= 5) == 4 and len(r._cache) == 4
        assert all(np.array_equal(r.get(i).rgb(), FrameReader(path).get(i)) for i in (0, 3, 4, 19))
        assert r.read_ahead(10) == 0
    with FrameReader(path, cache_bytes=2 * ref[0].nbytes) as r:  # told to stop at once: the cache's bound kept
        assert r.read_ahead(20, stop=lambda: True) == 0 and r._window == 1 and r._next == 0
    with FrameReader(path) as r:
        assert r.read_ahead(100) == 30  # the whole video at most


def test_frame_reader_image_any_index(tmp_path):
    from PIL import Image

    p = tmp_path / "face.png"
    Image.fromarray(pattern(3, 30, 41)).save(p)
    with FrameReader(p) as r:
        a, b = r.get(0), r.get(57)
    assert a.shape == (30, 41, 3) and np.array_equal(a, b) and np.array_equal(a, pattern(3, 30, 41))


def test_corrupt_packet_is_skipped(tmp_path):
    for codec, suffix in (("mjpeg", ".avi"), ("libx264", ".mp4")):
        src = make_video(tmp_path / f"ok{suffix}", 20, codec=codec)
        bad = damage_packet(src, tmp_path / f"bad{suffix}", 10)
        with pytest.raises(av.error.InvalidDataError):  # the naive decode loop aborts on this file
            decode_count(bad)
        frames = list(iter_frames(bad))
        assert 15 <= len(frames) < 20 and frames[-1].index == len(frames) - 1
        ref = [f.rgb for f in frames]
        with FrameReader(bad, cache_bytes=3 * ref[0].nbytes) as r:
            for i in range(len(ref) - 1, -1, -1):
                assert np.array_equal(r.get(i), ref[i]), (codec, i)
            # probe counts packets (20); indices past the decodable end hold the last frame
            assert np.array_equal(r.get(probe_video(bad).n_frames - 1), ref[-1])


@pytest.mark.parametrize("rotation,k", [(90, 1), (-90, 3), (180, 2)])
def test_rotation_metadata_applied(tmp_path, rotation, k):
    path = make_video(tmp_path / "r.mp4", 3, w=64, h=32, rotation=rotation)
    info = probe_video(path)
    assert info.rotation == k * 90
    assert (info.width, info.height) == ((32, 64) if k % 2 else (64, 32))
    rgb = next(iter_frames(path)).rgb
    expect = np.rot90(pattern(0, 32, 64), k)
    assert rgb.shape == expect.shape and rgb.flags.c_contiguous
    assert np.abs(rgb.astype(int) - expect).mean() < 6
    with FrameReader(path, info) as r:
        assert np.array_equal(r.get(0), rgb)


def test_exif_orientation_applied(tmp_path):
    from PIL import Image

    im = Image.fromarray(pattern(0, 20, 40))
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    im.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    info = probe_video(tmp_path / "phone.jpg")
    assert info.is_image and (info.width, info.height, info.rotation) == (20, 40, 270)
    rgb = next(iter_frames(tmp_path / "phone.jpg")).rgb
    assert np.abs(rgb.astype(int) - np.rot90(pattern(0, 20, 40), -1)).mean() < 6


def test_single_frame_video_is_image(tmp_path):
    info = probe_video(make_video(tmp_path / "one.mp4", 1))
    assert info.is_image and info.n_frames == 1


def test_probe_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        probe_video(tmp_path / "nope.mp4")
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(InputError, match="cannot read"):
        probe_video(tmp_path / "notes.mp4")
    with av.open(str(tmp_path / "a.wav"), "w") as c:
        s = c.add_stream("pcm_s16le", rate=16000, layout="mono")
        f = av.AudioFrame.from_ndarray(np.zeros((1, 1600), np.int16), format="s16", layout="mono")
        f.sample_rate = 16000
        for p in s.encode(f):
            c.mux(p)
    with pytest.raises(InputError, match="no video stream"):
        probe_video(tmp_path / "a.wav")


# ---------------------------------------------------------------- audio


@needs_data
@pytest.mark.parametrize(
    "name,seconds",
    [
        ("audio/en_jfk_11s.wav", 11.0),
        ("audio/de_48k24bit_stereo_9s.wav", 9.342667),
        ("audio/en_accented_17s.m4a", 16.574667),
        (V + "interview_vfr_6s.mp4", 6.13),
        (V + "grid_bbaf2n.mpg", 2.98),
    ],
)
def test_load_audio_formats(name, seconds):
    x, sr = load_audio(DATA / name)
    assert sr == 16000 and x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - seconds * 16000) < 0.03 * 16000
    assert np.abs(x).max() <= 1.0 and np.abs(x).max() > 0.1 and x.std() > 0.01


@needs_data
@pytest.mark.filterwarnings("ignore::scipy.io.wavfile.WavFileWarning")
def test_load_audio_24bit_native_is_exact():
    from scipy.io import wavfile

    path = DATA / "audio/de_48k24bit_stereo_9s.wav"
    x, sr = load_audio(path, sr=None, mono=False)
    rate, ref = wavfile.read(path)  # 24-bit arrives as int32, left-justified
    assert sr == rate == 48000 and x.shape == (2, ref.shape[0])
    assert np.abs(x - ref.T / 2.0**31).max() < 1e-6
    mono, _ = load_audio(path, sr=None)
    assert np.allclose(mono, x.mean(axis=0), atol=1e-6)


@needs_data
def test_load_audio_no_track():
    with pytest.raises(InputError, match="no audio track; pass an audio file or a video with sound"):
        load_audio(DATA / V / "selfie_noaudio_12s.mp4")


def test_load_audio_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFF....nonsense" * 4)
    with pytest.raises(InputError):
        load_audio(tmp_path / "junk.wav")
    with pytest.raises(InputError, match="no audio track"):
        load_audio(make_video(tmp_path / "silent.mp4", 3))


# ---------------------------------------------------------------- schedule


def test_output_schedule_policies():
    pp = [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2]
    assert output_schedule(4, 25, 11 / 25, "pingpong").tolist() == pp
    assert output_schedule(4, 25, 11 / 25, "audio").tolist() == pp
    assert output_schedule(4, 25, 11 / 25, "loop").tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2]
    assert output_schedule(4, 25, 11 / 25, "pad").tolist() == [0, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3]
    assert output_schedule(2, 10, 0.5, "pingpong").tolist() == [0, 1, 0, 1, 0]
    for policy in ("audio", "loop", "pad", "pingpong"):  # audio shorter than the video: truncate
        assert output_schedule(10, 25, 3 / 25, policy).tolist() == [0, 1, 2]
    assert output_schedule(6, 25, 100.0, "video").tolist() == [0, 1, 2, 3, 4, 5]
    assert output_schedule(6, 25, None, "video").tolist() == list(range(6))


def test_output_schedule_lengths_and_image():
    s = output_schedule(135, 22.131, 9.6, "audio")
    assert s.dtype == np.int64 and len(s) == round(9.6 * 22.131) and s.min() == 0 and s.max() == 134
    assert np.abs(np.diff(s)).max() == 1  # ping-pong never jumps
    assert len(output_schedule(500, 25, 60.0)) == 1500
    img = output_schedule(1, 25, 4.5, "loop")
    assert len(img) == 112 and not img.any()
    assert output_schedule(1, 25, 4.5, "audio").tolist() == [0] * 112


def test_output_schedule_errors():
    with pytest.raises(ParameterError, match="policy"):
        output_schedule(10, 25, 1.0, "bounce")
    for bad in (0.0, -1.0, None):
        with pytest.raises(ParameterError):
            output_schedule(10, 25, bad, "audio")


# ---------------------------------------------------------------- writer


@pytest.mark.parametrize(
    "fps,w,h,suffix,audio_s,channels",
    [(22.13, 64, 48, ".mp4", 2.0, 1), (30, 65, 47, ".mov", 1.5, 2), (29.97, 64, 48, ".mkv", 1.0, 1)],
)
def test_writer_round_trip(tmp_path, fps, w, h, suffix, audio_s, channels):
    n = int(round(audio_s * fps))
    out = tmp_path / f"out{suffix}"
    frames = [pattern(k, h, w) for k in range(n)]
    with VideoWriter(out, w, h, fps, audio=tone(audio_s, channels=channels), audio_sr=16000) as wr:
        for f in frames:
            wr.write(f)
    info = probe_video(out)
    assert (info.width, info.height, info.n_frames, info.has_audio) == (w, h, n, True)  # odd size kept exactly
    assert info.fps == pytest.approx(fps, rel=1e-3)
    assert info.duration == pytest.approx(n / fps, abs=1 / fps)
    got = [f.rgb for f in iter_frames(out)]
    assert len(got) == n
    assert max(np.abs(a.astype(int) - b).mean() for a, b in zip(got, frames)) < 6  # lossy; a flip or BGR is >30
    x, sr = load_audio(out, sr=None, mono=False)
    assert sr == 48000 and x.shape[0] == channels
    assert abs(x.shape[1] / sr - n / fps) < 1024 / 48000 + 0.005
    assert dominant_freq(x[0], sr) == pytest.approx(440, abs=5)
    with av.open(str(out)) as c:
        v = c.streams.video[0].codec_context
        assert v.name == "h264" and c.streams.audio[0].codec_context.name == "aac"
        assert v.pix_fmt == ("yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p")


def test_writer_colours_survive(tmp_path):
    # a BT.601/709 matrix mismatch between writing and reading shifts saturated colours by 10+ levels
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (200, 180, 40), (128, 128, 128)]
    for size in ((64, 48), (1280, 32)):  # SD and HD (width >= 1280) take different paths for untagged input
        out = tmp_path / f"c{size[0]}.mp4"
        with VideoWriter(out, *size, 25) as wr:
            for c in colours:
                wr.write(np.full((size[1], size[0], 3), c, np.uint8))
        for f, c in zip(iter_frames(out), colours):
            assert np.abs(f.rgb.reshape(-1, 3).mean(0) - c).max() < 3, (size, c)
        # untagged input (most phone/web SD clips): read as BT.709 when HD, BT.601 otherwise, like players do
        raw = tmp_path / f"untagged{size[0]}.mp4"
        with av.open(str(raw), "w") as out_c:
            s = out_c.add_stream("libx264", rate=25)
            s.width, s.height, s.pix_fmt = *size, "yuv420p"
            for c in colours:
                f = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), c, np.uint8), format="rgb24")
                f = f.reformat(format="yuv420p", dst_colorspace=1 if size[0] >= 1280 else 5, dst_color_range=1)
                f.colorspace, f.color_range = 2, 0
                for p in s.encode(f):
                    out_c.mux(p)
            for p in s.encode():
                out_c.mux(p)
        for f, c in zip(iter_frames(raw), colours):
            assert np.abs(f.rgb.reshape(-1, 3).mean(0) - c).max() < 3, ("untagged", size, c)


def test_writer_trims_and_pads_audio(tmp_path):
    for audio_s, n in ((5.0, 25), (0.5, 50)):
        out = tmp_path / f"a{n}.mp4"
        with VideoWriter(out, 32, 32, 25, audio=tone(audio_s, sr=22050), audio_sr=22050) as wr:
            for k in range(n):
                wr.write(pattern(k, 32, 32))
        x, sr = load_audio(out)
        assert abs(len(x) / sr - n / 25) < 1024 / 48000 + 0.005
        if audio_s < n / 25:
            assert np.abs(x[int(0.7 * sr):]).max() < 0.01 < np.abs(x[: int(0.4 * sr)]).max()


def test_sound_encoded_ahead_is_handed_on_as_the_video_reaches_it(tmp_path):
    # AudioTrack.encode_ahead feeds the encoder the same frames earlier: each packets() call must give the packets it
    # gives without (same bytes, same call), and the written file must be the same bytes
    from lipdub.media.audio import AudioTrack, prepare_audio

    audio = prepare_audio(tone(2.3, channels=2), 16000)
    ends = [4000, 9000, 9000, 30000, 52000, 70000, 100000]  # samples at 48 kHz; the last call is final

    def calls(ahead=None, stop_after=None):
        with av.open(str(tmp_path / "t.mp4"), "w") as c:
            track = AudioTrack(c, audio)
            if ahead is not None:
                n = iter(range(10 ** 6))
                track.encode_ahead(ahead, None if stop_after is None else lambda: next(n) >= stop_after)
            got = [[bytes(p) for p in track.packets(e, final=i == len(ends) - 1)] for i, e in enumerate(ends)]
            return got

    plain = calls()
    assert sum(map(len, plain)) > 90 and all(plain[:2]) and not plain[2]
    for ahead, stop_after in ((100000, None), (99999, None), (60000, None), (100000, 9), (1000, None)):
        assert calls(ahead, stop_after) == plain, (ahead, stop_after)

    def written(ahead):
        out = tmp_path / f"w{ahead}.mp4"
        with VideoWriter(out, 32, 32, 25, audio=tone(2.3, sr=22050), audio_sr=22050, repeatable=True) as wr:
            if ahead:
                wr.encode_audio_ahead(ahead)
            for k in range(50):
                wr.write(pattern(k, 32, 32))
        return out.read_bytes()

    assert written(50) == written(0) == written(31)


def test_writer_is_atomic(tmp_path):
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"previous result")
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, 32, 32, 25, audio=tone(1.0)) as wr:
            wr.write(pattern(0, 32, 32))
            assert len(list(tmp_path.iterdir())) == 2  # the temp file lives next to the destination
            raise RuntimeError("boom")
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]

    wr = VideoWriter(tmp_path / "new.mp4", 32, 32, 25)
    wr.write(pattern(0, 32, 32))
    wr.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]

    with pytest.raises(OutputError, match="no frames"):
        with VideoWriter(tmp_path / "empty.mp4", 32, 32, 25):
            pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]

    with VideoWriter(out, 32, 32, 25) as wr:
        wr.write(pattern(0, 32, 32))
    assert probe_video(out).n_frames == 1
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]


def test_writer_rejects_bad_input(tmp_path):
    with VideoWriter(tmp_path / "x.mp4", 32, 32, 25) as wr:
        with pytest.raises(ParameterError, match="shape"):
            wr.write(np.zeros((32, 33, 3), np.uint8))
        with pytest.raises(ParameterError):
            wr.write(np.zeros((32, 32, 3), np.float32))
        wr.write(pattern(0, 32, 32))
    with pytest.raises(ParameterError):
        VideoWriter(tmp_path / "y.mp4", 32, 32, 25, audio=np.zeros((3, 100), np.float32))
    with pytest.raises(OutputError):
        VideoWriter(tmp_path / "y.avi", 32, 32, 25)
    with pytest.raises(ParameterError, match="preset"):
        VideoWriter(tmp_path / "y.mp4", 32, 32, 25, preset="bogus")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.mp4"]


# ---------------------------------------------------------------- paths


def test_is_image_path():
    assert is_image_path("a/B.JPG") and is_image_path("x.png") and is_image_path("x.webp")
    assert not is_image_path("x.mp4") and not is_image_path("x.gif")


def test_check_output_path(tmp_path, monkeypatch):
    inp = tmp_path / "in.mp4"
    inp.write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    assert check_output_path(tmp_path / "sub" / ".." / "out.mkv", [inp]) == (tmp_path / "out.mkv").resolve()
    with pytest.raises(OutputError, match="overwrite the input"):
        check_output_path(tmp_path / "sub" / ".." / "in.mp4", [None, inp])
    (tmp_path / "link.mp4").symlink_to(inp)
    with pytest.raises(OutputError, match="overwrite the input"):
        check_output_path(tmp_path / "link.mp4", [inp])
    with pytest.raises(OutputError, match="does not exist"):
        check_output_path(tmp_path / "nodir" / "out.mp4", [inp])
    for bad in ("out.avi", "out.gif", "out.wav", "out"):
        with pytest.raises(OutputError, match=r"\.mp4"):
            check_output_path(tmp_path / bad, [inp])
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(OutputError, match="folder"):
        check_output_path(tmp_path / "dir.mp4", [inp])
    monkeypatch.setattr("lipdub.media.probe.os.access", lambda *a, **k: False)
    with pytest.raises(OutputError, match="not writable"):
        check_output_path(tmp_path / "out.mp4", [inp])


def test_conftest_data_location():
    assert DATA.name == "data" and DATA.parent.name == "shared"
    if DATA.is_dir():
        assert require_data("MANIFEST.md") == DATA


# ---------------------------------------------------------------- planar (YUV) frames for the render stage


def make_hd_video(path, n=6, w=1280, h=720):
    """A 720p clip written by our own writer (BT.709, limited range: frames a planar reader keeps as YUV)."""
    with VideoWriter(path, w, h, 25) as wr:
        for k in range(n):
            wr.write(pattern(k, h, w))
    return path


def test_planar_reader_box_equals_whole_frame_read(tmp_path):
    path = make_hd_video(tmp_path / "hd.mp4")
    ref = [f.rgb for f in iter_frames(path)]
    with FrameReader(path, planar=True) as r:
        for i in (0, 3, 5, 1):
            pf = r.get(i)
            assert isinstance(pf, PlanarFrame) and pf.shape == ref[i].shape
            assert np.array_equal(pf.rgb(), ref[i])
            for roi in ((101, 37, 603, 411), (0, 0, 64, 64), (1200, 650, 1280, 720)):
                box = pf.box(roi, pad=2)
                assert all(v % 2 == 0 for v in box) and box[0] <= roi[0] and box[3] >= min(roi[3], 720)
                x0, y0, x1, y1 = box
                assert np.array_equal(pf.rgb(box), ref[i][y0:y1, x0:x1]), (i, roi)
    # untagged SD is kept as YUV too (in BT.601, as read): its box reads as the whole frame there
    sd = make_video(tmp_path / "sd.mp4", 3)
    with FrameReader(sd, planar=True) as r:
        pf = r.get(1)
        assert isinstance(pf, PlanarFrame) and pf.colorspace == 6
        assert np.array_equal(pf.rgb((10, 8, 40, 30)), list(iter_frames(sd))[1].rgb[8:30, 10:40])
    # frames that cannot pass as decoded stay RGB: odd sizes, full-range MJPEG
    for odd in (make_video(tmp_path / "odd.mkv", 3, w=63, h=47, codec="ffv1"),
                make_video(tmp_path / "mjpeg.mkv", 3, codec="mjpeg")):
        with FrameReader(odd, planar=True) as r:
            assert isinstance(r.get(1), np.ndarray)


def test_frame_box_reads_as_the_whole_frame_there(tmp_path):
    # the tracker converts only the crop it searches: it must see the pixels the whole frame's conversion gives
    def deep(path, fmt):
        with av.open(str(path), "w") as c:
            s = c.add_stream("ffv1", rate=25)
            s.width, s.height, s.pix_fmt = 63, 47, fmt
            for k in range(2):
                for p in s.encode(av.VideoFrame.from_ndarray(pattern(k, 47, 64)[:, :63].copy(), format="rgb24")):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        return path

    sources = [make_video(tmp_path / "a.mp4", 2), make_hd_video(tmp_path / "hd.mp4", n=2),
               make_video(tmp_path / "odd.mkv", 2, w=63, h=47, codec="ffv1"),
               make_video(tmp_path / "mjpeg.mkv", 2, codec="mjpeg"),
               make_video(tmp_path / "r.mp4", 2, w=64, h=32, rotation=90),
               deep(tmp_path / "p10.mkv", "yuv420p10le"), deep(tmp_path / "p422.mkv", "yuv422p"),
               deep(tmp_path / "p444.mkv", "yuv444p")]
    for path in sources:
        whole = [f.rgb for f in iter_frames(path)]
        h, w = whole[0].shape[:2]
        for box in ((0, 0, w, h), (1, 3, 30, 21), (2, 2, 31, 22), (w - 9, h - 7, w, h), (5, 0, 6, 1)):
            for f, ref in zip(iter_frames(path), whole):
                x0, y0, x1, y1 = box
                got = f.rgb_box(box)
                assert got.shape == (y1 - y0, x1 - x0, 3), (path.name, box)
                assert np.array_equal(got, ref[y0:y1, x0:x1]), (path.name, box)


def test_planar_put_rgb_changes_only_what_changed(tmp_path):
    path = make_hd_video(tmp_path / "hd.mp4", n=2)  # (one frame would be a photo)
    with FrameReader(path, planar=True) as r:
        pf = r.get(0)
    untouched = pf.i420.copy()
    box = pf.box((300, 200, 500, 400))
    x0, y0, x1, y1 = box
    rgb = pf.rgb(box)
    changed = np.zeros(rgb.shape[:2], bool)
    changed[51:90, 61:121] = True  # odd edges: chroma samples with 1 or 2 of their 4 pixels changed
    new = rgb.copy()
    new[changed] = (200, 30, 60)
    pf.put_rgb(box, new, changed)
    y, u, v = pf.planes()
    y0_, u0, v0 = PlanarFrame(untouched, pf.width, pf.height).planes()
    diff_y = y != y0_
    assert diff_y.any() and not diff_y[:y0 + 51].any() and not diff_y[y0 + 90:].any()
    assert not diff_y[:, :x0 + 61].any() and not diff_y[:, x0 + 121:].any()
    diff_c = (u != u0) | (v != v0)
    rows, cols = np.nonzero(diff_c)
    assert (rows.min(), rows.max()) == ((y0 + 51) // 2, (y0 + 89) // 2)  # partly covered samples too, no more
    assert (cols.min(), cols.max()) == ((x0 + 61) // 2, (x0 + 120) // 2)
    assert diff_c[(y0 + 51) // 2, (x0 + 61) // 2]  # the corner sample with one changed pixel of four
    # the written colour reads back as what was drawn (BT.709 limited range, the writer's own conversion)
    back = pf.rgb(box)
    assert np.abs(back[60:80, 70:110].reshape(-1, 3).astype(int) - (200, 30, 60)).max() <= 3


def test_writer_takes_planar_frames_as_decoded(tmp_path):
    src = make_hd_video(tmp_path / "hd.mp4", n=4)
    out = tmp_path / "copy.mp4"
    with FrameReader(src, planar=True) as r, VideoWriter(out, 1280, 720, 25, crf=0) as wr:
        frames = [r.get(i) for i in range(4)]
        for f in frames:
            wr.write(f)
    with FrameReader(out, planar=True) as r:
        for i, f in enumerate(frames):  # lossless x264 (crf 0): the YUV samples come back exactly
            assert np.array_equal(r.get(i).i420, f.i420), i


def test_writer_is_done_with_a_frame_when_write_returns(tmp_path):
    """The writer hands x264 the frame's own pixels (no copy): x264 copies them before encode() returns, so a
    frame changed or reused after write() still encodes as it was written (lossless, crf 0)."""
    src = make_hd_video(tmp_path / "hd.mp4", n=6)
    out = tmp_path / "copy.mp4"
    with FrameReader(src, planar=True) as r:
        frames = [r.get(i) for i in range(6)]
    kept = [f.i420.copy() for f in frames]
    with VideoWriter(out, 1280, 720, 25, crf=0) as wr:
        for f in frames:
            wr.write(f)
            f.i420[:] = 0  # as a reused buffer would be
        rgb = pattern(3, 720, 1280)
        wr.write(rgb)
        rgb[:] = 0
    with FrameReader(out, planar=True) as r:
        for i, want in enumerate(kept):
            assert np.array_equal(r.get(i).i420, want), i
        assert np.abs(r.get(6).rgb().astype(int) - pattern(3, 720, 1280)).mean() < 2.5


@pytest.mark.parametrize("height", [66, 64, 18])
def test_writer_keeps_frames_whose_height_is_not_a_multiple_of_four(tmp_path, height):
    # the zero-copy hand-over to x264 (i420_frame) is only right for heights that are multiples of 4
    out = tmp_path / "odd.mp4"
    rgb = in_gamut(1, height, 98)
    with VideoWriter(out, 98, height, 25, crf=0) as wr:
        wr.write(rgb)
    with FrameReader(out) as r:
        got = r.get(0)
    assert got.shape == rgb.shape and np.abs(got.astype(int) - rgb).mean() < 3


def in_gamut(k, h, w):
    """pattern() kept inside 30..210: colours that survive 4:2:0 without clipping (a mean is then unbiased)."""
    return (30 + pattern(k, h, w) * (180 / 255)).astype(np.uint8)


def test_planar_round_trip_keeps_the_samples_of_untagged_hd(tmp_path):
    """An untagged HD frame is BT.709 however small the box read from it (the frame's size decides, not the box's),
    and a box read to RGB and written back unchanged returns its samples within rounding, without a bias."""
    path = tmp_path / "untagged.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt, s.options = 1280, 720, "yuv420p", {"qp": "0"}
        for k in range(2):
            f = av.VideoFrame.from_ndarray(in_gamut(k, 720, 1280), format="rgb24").reformat(
                format="yuv420p", dst_colorspace=1, dst_color_range=1)
            f.colorspace, f.color_range = 2, 0
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    whole = next(iter_frames(path)).rgb
    with FrameReader(path, planar=True) as r:
        pf = r.get(0)
    assert isinstance(pf, PlanarFrame) and pf.colorspace == 1
    before = [p.astype(np.float64) for p in pf.planes()]
    box = x0, y0, x1, y1 = pf.box((300, 200, 420, 300))
    rgb = pf.rgb(box)
    assert np.array_equal(rgb, whole[y0:y1, x0:x1])
    assert np.abs(rgb.reshape(-1, 3).mean(0) - in_gamut(0, 720, 1280)[y0:y1, x0:x1].reshape(-1, 3).mean(0)).max() < 1
    pf.put_rgb(box, rgb, np.ones(rgb.shape[:2], bool))
    for now, was, sl in zip(pf.planes(), before, ((y0, y1, x0, x1), (y0 // 2, y1 // 2, x0 // 2, x1 // 2),
                                                   (y0 // 2, y1 // 2, x0 // 2, x1 // 2))):
        d = now.astype(np.float64) - was
        assert abs(d[sl[0]:sl[1], sl[2]:sl[3]].mean()) < 0.05 and np.abs(d).max() <= 1


def test_writer_writes_in_the_matrix_it_is_given(tmp_path):
    """The output is in the source's matrix (BT.601 for an SD source) and tagged so; RGB frames read back as
    written, and an unchanged planar frame passes to the encoder as decoded."""
    out = tmp_path / "601.mp4"
    frames = [in_gamut(k, 48, 64) for k in range(3)]
    with VideoWriter(out, 64, 48, 25, crf=0, matrix=6) as wr:
        for f in frames:
            wr.write(f)
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.colorspace, cc.color_range) == (6, 1)
    for f, ref in zip(iter_frames(out), frames):
        assert np.abs(f.rgb.astype(int) - ref).mean() < 2.5  # 4:2:0 chroma of a busy pattern
        assert np.abs(f.rgb.reshape(-1, 3).mean(0) - ref.reshape(-1, 3).mean(0)).max() < 0.5
    with FrameReader(out, planar=True) as r, VideoWriter(tmp_path / "copy.mp4", 64, 48, 25, crf=0, matrix=6) as wr:
        kept = [r.get(i) for i in range(3)]
        for pf in kept:
            wr.write(pf)
    with FrameReader(tmp_path / "copy.mp4", planar=True) as r:
        assert all(np.array_equal(r.get(i).i420, pf.i420) for i, pf in enumerate(kept))


def x264_settings(path) -> dict[str, str]:
    """The settings x264 wrote into the stream (its SEI: "options: cabac=1 ref=1 ... analyse=0x3:0x113 me=hex ...")."""
    m = re.search(rb"options: ([ -~]+)", path.read_bytes())
    return dict(kv.split("=", 1) for kv in m.group(1).decode().split() if "=" in kv)


@pytest.mark.parametrize("preset, tuned", [(None, True), ("veryfast", True), ("fast", False), ("superfast", False)])
def test_only_the_default_preset_is_tuned(tmp_path, preset, tuned):
    """veryfast (the default) leaves out the B-frames' 8x8 partitions and searches motion by diamond (issue 23); a
    preset asked for by another name is x264's own; the other settings the writer adds still apply."""
    out = tmp_path / "tuned.mp4"
    with VideoWriter(out, 64, 48, 25, **({"preset": preset} if preset else {}), segment=True) as wr:
        for k in range(3):
            wr.write(in_gamut(k, 48, 64))
    got = x264_settings(out)
    own = {"veryfast": ("0x113", "hex"), "fast": ("0x113", "hex"), "superfast": ("0x3", "dia")}[preset or "veryfast"]
    # analyse's P/B part: 0x1 i4x4, 0x2 i8x8, 0x10 p8x8, 0x100 b8x8
    assert (got["analyse"].split(":")[1], got["me"]) == (("0x13", "dia") if tuned else own)
    assert got["bframes"] == "0" and got["mbtree"] == "0"  # segment's own settings beside the tuning


def test_blend_makes_an_in_between_frame():
    from lipdub.media import PlanarFrame, blend

    a, b = np.zeros((4, 6, 3), np.uint8), np.full((4, 6, 3), 200, np.uint8)
    assert (blend(a, b, 0.5) == 100).all() and (blend(a, b, 0.25) == 50).all()
    pa, pb = PlanarFrame(np.zeros((6, 6), np.uint8), 6, 4), PlanarFrame(np.full((6, 6), 90, np.uint8), 6, 4)
    mixed = blend(pa, pb, 0.5)
    assert isinstance(mixed, PlanarFrame) and (mixed.i420 == 45).all() and (pa.i420 == 0).all()


def test_to_levels_rounds_as_numpy_does():
    # OpenCV's saturating conversion stands for np.clip(np.rint(a), 0, 255): halves to even, out of range clamped
    from lipdub.media.colour import to_levels

    rng = np.random.default_rng(8)
    for shape in [(1, 1), (4, 1), (9,), (7, 5), (6, 1), (151, 233), (40, 60, 3), (30, 50, 2)]:
        for dtype in (np.float32, np.float64):
            a = rng.uniform(-30, 290, shape).astype(dtype)
            flat = a.reshape(-1)
            flat[::3] = np.round(flat[::3]) + 0.5  # exact halves, the case rounding modes differ on
            flat[::7] = np.nextafter(dtype(0.5), dtype(0))
            flat[::11], flat[::13], flat[::17] = -0.5, 255.5, 254.5
            for view in (a, a[::2], a[..., 0] if a.ndim == 3 else a.T):
                assert np.array_equal(to_levels(view), np.clip(np.rint(view), 0, 255).astype(np.uint8))


def test_the_background_writer_hashes_its_frames_when_asked(tmp_path):
    # a dub asked for its frames' digest (the frames_sha256 option) identifies them by it; any other sink writes the
    # same video unhashed
    import hashlib

    from lipdub.media.background import BackgroundWriter

    frames = [np.full((32, 48, 3), 40 * k, np.uint8) for k in range(3)]
    sizes = []
    for digest in (True, False):
        out = tmp_path / f"hashed_{digest}.mp4"
        writer = VideoWriter(out, 48, 32, 25)
        with BackgroundWriter(writer, digest=digest) as sink:
            for f in frames:
                sink.write(f)
        writer.close()
        want = hashlib.sha256(b"".join(f.tobytes() for f in frames)).hexdigest() if digest else None
        assert sink.digest == want
        sizes.append(len(list(iter_frames(out))))
    assert sizes == [3, 3]


def test_rgb_to_i420_is_the_rounded_yuv_and_its_2x2_chroma_means():
    # the writer's conversion (the live sink's every frame) against its definition spelled out in numpy: luma rounded,
    # chroma the INTER_AREA 2x2 mean of the unrounded YUV rounded once, planes Y, U, V in rows of the frame's width
    import cv2

    from lipdub.media.colour import BT601, BT709, rgb_to_i420, rgb_to_yuv

    rng = np.random.default_rng(3)
    for h, w in [(2, 2), (4, 6), (66, 98), (720, 1280)]:
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        rgb[: h // 2, : w // 2] = rgb[0, 0]  # flat areas too (their means fall on whole levels)
        for matrix in (BT709, BT601):
            yuv = rgb_to_yuv(rgb, matrix).astype(np.float64)
            area = cv2.resize(yuv.astype(np.float32), (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            want = np.concatenate([np.rint(yuv[..., 0]).ravel(), np.rint(area[..., 1]).ravel(),
                                   np.rint(area[..., 2]).ravel()]).clip(0, 255).astype(np.uint8).reshape(-1, w)
            got = rgb_to_i420(rgb, matrix)
            assert got.shape == (h * 3 // 2, w) and np.array_equal(got, want)


def test_frames_held_read_again_without_decoding(tmp_path, monkeypatch):
    """Inside frames_held, the first whole pass keeps the decoded frames and later passes (from any start) read the
    same frames without opening the file; a pass that stops early, a video over the budget or one outside the
    block is decoded again."""
    import lipdub.media.frames as frames_mod
    from lipdub.media import frames_held

    path = make_video(tmp_path / "v.mp4", 12, 64, 48, bframes=2)
    info = probe_video(path)
    opened = []
    real_open = frames_mod.open_input
    monkeypatch.setattr(frames_mod, "open_input", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    plain = [(f.index, f.time, f.rgb) for f in iter_frames(path)]

    def same(got, start):
        return [(f.index, f.time) for f in got] == [p[:2] for p in plain[start:]] and all(
            np.array_equal(f.rgb, p[2]) and np.array_equal(f.rgb_box((3, 5, 40, 31)), p[2][5:31, 3:40])
            for f, p in zip(got, plain[start:]))

    opened.clear()
    with frames_held(path, info):
        assert same(list(iter_frames(path)), 0) and len(opened) == 1
        assert same(list(iter_frames(path, 7)), 7) and same(list(iter_frames(path)), 0) and len(opened) == 1
    assert same(list(iter_frames(path, 3)), 3) and len(opened) == 2  # outside the block: decoded again

    opened.clear()
    with frames_held(path, info):
        for f in iter_frames(path):  # a first pass that stops early keeps nothing
            if f.index == 5:
                break
        assert same(list(iter_frames(path, 2)), 2) and same(list(iter_frames(path)), 0) and len(opened) == 3

    opened.clear()
    frame_bytes = 64 * 48 * 3 // 2
    with frames_held(path, info, budget=12 * frame_bytes - 1):  # the probe's estimate is over the budget
        list(iter_frames(path)), list(iter_frames(path))
    with frames_held(path, info, budget=12 * frame_bytes):  # the decoded planes (padded rows) are over it
        assert same(list(iter_frames(path)), 0) and same(list(iter_frames(path, 1)), 1)
    assert len(opened) == 4


def test_frames_not_held_seek_to_the_keyframe_before_a_later_start(tmp_path, monkeypatch):
    """Inside frames_held, for a video whose frames are not kept, a whole pass leaves a FrameIndex and a later pass
    from frame `start` seeks to the keyframe before it: the same frames and times as a pass from the first frame,
    fewer decoded; where the frames after the seek do not match the index, it decodes from the first frame again."""
    import lipdub.media.frames as frames_mod
    from lipdub.media import frames_held

    path = make_video(tmp_path / "v.mp4", 40, 64, 48, gop=8, bframes=2)
    info = probe_video(path)
    decoded = []
    real_decode = frames_mod.decode_frames

    def counting(c, s):
        for f in real_decode(c, s):
            decoded.append(f.pts)
            yield f

    monkeypatch.setattr(frames_mod, "decode_frames", counting)
    plain = [(f.index, f.time, f.rgb) for f in iter_frames(path)]

    def same(got, start):
        return [(f.index, f.time) for f in got] == [p[:2] for p in plain[start:]] and all(
            np.array_equal(f.rgb, p[2]) for f, p in zip(got, plain[start:]))

    with frames_held(path, info, budget=0):  # nothing kept
        decoded.clear()
        assert same(list(iter_frames(path, 19)), 19) and len(decoded) == 40  # no index yet: from the first frame
        held = frames_mod.held_for(path)
        assert held.index is not None and held.index.keys[0] == 0 and len(held.index.keys) >= 4 and not held.frames
        for start in (19, 24, 39, 3):
            decoded.clear()
            assert same(list(iter_frames(path, start)), start)
            assert len(decoded) <= 40 - held.index.key_before(start) + 2  # (+ leading B-frames before the key)
        decoded.clear()
        assert same(list(iter_frames(path, 30)), 30) and len(decoded) < 16
        held.index.pts[27] += 1  # a frame after the seek that does not match: decoded again from the first frame
        decoded.clear()
        assert same(list(iter_frames(path, 26)), 26) and len(decoded) > 40
    decoded.clear()
    assert same(list(iter_frames(path, 30)), 30) and len(decoded) == 40  # outside the block: from the first frame
