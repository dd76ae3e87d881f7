"""Bad and unusual inputs, end to end through the command line, as a user (or a script) would feed them.

Every case ends in EITHER a correct output (a valid video of the expected size and length, with sound) OR exactly one
non-empty stderr line `lipdub: error: ...` and a non-zero exit code. In both cases the inputs are unchanged (sha256
and mtime) and the output folder holds nothing but the finished output: no partial or temporary file.

Untrusted media (playlists, concat scripts, image-sequence patterns) must never make lipdub read another file or a
URL: those cases watch a FIFO (a reader opening it is detected) and a local TCP port (a connection is detected).

All media are generated here (tiny, at most 2 s); the cases that need a real face use a shared portrait from
../shared/data (never copied into the repository) and skip without it.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import stat
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np
import pytest
from conftest import DATA, require_data

import lipdub
from lipdub import media
from lipdub.errors import InputError

FPS = 25
SR = 16000
PORTRAIT = "images/woman_frontal.png"
REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------------------------- media builders


def pattern(k: int, h: int, w: int) -> np.ndarray:
    """A face-less frame: smooth gradients and a moving bar."""
    a = np.empty((h, w, 3), np.uint8)
    a[..., 0] = np.linspace(30, 220, w, dtype=np.uint8)[None]
    a[..., 1] = np.linspace(200, 40, h, dtype=np.uint8)[:, None]
    a[..., 2] = (k * 9) % 256
    x = (k * 3) % max(1, w - 4)
    a[:, x:x + 4] = 255
    return a


def write_video(path: Path, n: int = 25, w: int = 160, h: int = 120, fps: float = FPS, codec: str = "libx264",
                pix_fmt: str = "yuv420p", rotation: int | None = None, step_ms: list[int] | None = None,
                audio: np.ndarray | None = None, faststart: bool = True, frames=None) -> Path:
    """Frames pattern(k) (or `frames`) encoded with PyAV; `step_ms` makes variable frame durations; `audio` (mono,
    SR) adds an AAC track."""
    opts = {"movflags": "+faststart"} if faststart and path.suffix in (".mp4", ".mov") else {}
    with av.open(str(path), "w", options=opts) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        if codec == "libx264":
            s.options = {"crf": "12", "preset": "ultrafast"}
        if rotation is not None:
            s.set_display_rotation(rotation)
        if step_ms:
            s.codec_context.time_base = Fraction(1, 1000)
        a = c.add_stream("aac", rate=SR, layout="mono") if audio is not None else None
        t = 0
        for k in range(n):
            rgb = frames[k] if frames is not None else pattern(k, h, w)
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format=pix_fmt)
            if step_ms:
                f.pts, f.time_base = t, Fraction(1, 1000)
                t += step_ms[k % len(step_ms)]
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
        if a is not None:
            x = np.asarray(audio, np.float32)[None]
            for i in range(0, x.shape[1], 1024):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i:i + 1024]), format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = SR, i, Fraction(1, SR)
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return path


def write_audio(path: Path, x: np.ndarray, sr: int = SR, codec: str = "pcm_s16le") -> Path:
    """x: (N,) or (C, N) float in [-1, 1]; written as packed PCM by FFmpeg's own wav muxer."""
    x = np.atleast_2d(np.asarray(x, np.float32))
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[x.shape[0]]
    inter = np.ascontiguousarray(x.T).reshape(1, -1)
    if codec == "pcm_s16le":
        fmt, data = "s16", (inter * 32767).astype(np.int16)
    elif codec == "pcm_s24le":  # the encoder takes s32 and keeps the top 24 bits
        fmt, data = "s32", (inter.astype(np.float64) * (2**31 - 256)).astype(np.int32)
    else:
        fmt, data = "flt", inter
    with av.open(str(path), "w", format="wav") as c:
        s = c.add_stream(codec, rate=sr, layout=layout)
        if x.shape[1]:
            f = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
            f.sample_rate = sr
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def speech_like(seconds: float, sr: int = SR) -> np.ndarray:
    """A voiced buzz (120 Hz harmonics through two formants) in 4 Hz syllables with short pauses."""
    from scipy.signal import lfilter

    t = np.arange(int(round(seconds * sr))) / sr
    src = np.sign(np.sin(2 * np.pi * 120 * t)) * 0.5
    y = np.zeros_like(src)
    for f0, bw in ((700, 130), (1200, 150)):
        r = np.exp(-np.pi * bw / sr)
        y += lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f0 / sr), r * r], src)
    env = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    y *= env
    return (0.5 * y / (np.abs(y).max() + 1e-9)).astype(np.float32)


def chords(seconds: float, sr: int) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    y = np.zeros_like(t)
    for i, notes in enumerate(((261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6))):
        part = (t >= i * seconds / 3) & (t < (i + 1) * seconds / 3)
        y[part] = sum(np.sin(2 * np.pi * f * t[part]) for f in notes)
    return (0.25 * y).astype(np.float32)


def save_image(path: Path, rgb: np.ndarray, **kw) -> Path:
    from PIL import Image

    Image.fromarray(rgb).save(path, **kw)
    return path


@dataclass
class Media:
    root: Path
    clip: Path  # 160x120, 30 frames at 25 fps, H.264 + AAC, moov first
    clip_moov_last: Path
    silent_clip: Path  # video only
    speech: Path  # 1.0 s of speech-like sound, 16 kHz mono wav
    portrait: Path | None  # a real frontal face, 256x256 PNG (None without the shared data)


@pytest.fixture(scope="module")
def m(tmp_path_factory) -> Media:
    root = tmp_path_factory.mktemp("media")
    snd = speech_like(1.2)
    clip = write_video(root / "clip.mp4", n=30, audio=snd)
    moov_last = write_video(root / "clip_moov_last.mp4", n=30, audio=snd, faststart=False)
    silent_clip = write_video(root / "silent_clip.mp4", n=30)
    speech = write_audio(root / "speech.wav", speech_like(1.0))
    portrait = None
    if (DATA / PORTRAIT).is_file():
        from PIL import Image

        with Image.open(DATA / PORTRAIT) as im:
            portrait = root / "portrait.png"
            im.convert("RGB").resize((256, 256), Image.LANCZOS).save(portrait)
    return Media(root, clip, moov_last, silent_clip, speech, portrait)


def need_portrait(m: Media) -> Path:
    if m.portrait is None:
        require_data(PORTRAIT)
    return m.portrait


# ----------------------------------------------------------------------------------------------- the harness


@dataclass
class Case:
    video: object  # Path or str
    audio: object
    out: Path
    args: list = field(default_factory=list)
    code: int = 0  # expected exit code; 0 = a correct output
    message: str | None = None  # regex the error line must match
    size: tuple[int, int] | None = None  # expected (width, height) of the output
    frames: int | None = None  # expected output frame count (+-1)
    check: Callable[[Path], None] | None = None  # further checks of a correct output
    watch: list = field(default_factory=list)  # extra files that must stay unchanged
    timeout: float = 120
    monitor: "Watch | None" = None  # untrusted media: detects reads of the files/URLs they name
    role: str = "video"  # untrusted media: which argument the crafted file is
    cwd: Path | None = None  # working folder of the command (relative input names)


@dataclass
class Run:
    case: Case
    result: subprocess.CompletedProcess
    changed: list  # inputs whose bytes or mtime changed
    listed: set | None  # the output folder before ...
    after: set | None  # ... and after


def fingerprint(p: Path):
    st = os.stat(p)
    if stat.S_ISDIR(st.st_mode):
        return ("dir", sorted(os.listdir(p)), st.st_mtime_ns)
    if not stat.S_ISREG(st.st_mode):  # a FIFO: never read it here
        return ("special", st.st_mtime_ns)
    return (hashlib.sha256(Path(p).read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns)


def listing(folder: Path):
    return set(os.listdir(folder)) if folder.is_dir() else None


def run_cli(*args, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "lipdub", "-q", "dub", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, env=env, cwd=cwd)


def execute(case: Case) -> Run:
    """Run one case through the command line (on a worker thread: only observe here, assert in the test)."""
    inputs = [Path(case.cwd or ".", p) for p in (case.video, case.audio, *case.watch)
              if p is not None and os.path.lexists(Path(case.cwd or ".", p))]
    before = {p: fingerprint(p) for p in inputs}
    listed = listing(case.out.parent)
    argv = [a for a in (case.video, case.audio) if a is not None]
    r = run_cli(*argv, "-o", case.out, *case.args, timeout=case.timeout, cwd=case.cwd)
    changed = [str(p) for p in inputs if fingerprint(p) != before[p]]
    return Run(case, r, changed, listed, listing(case.out.parent))


def assert_one_line_error(r: subprocess.CompletedProcess, code: int, message: str | None = None) -> str:
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("lipdub: error: "), r.stderr
    assert r.returncode == code, (r.returncode, r.stderr)
    if message:
        assert re.search(message, lines[0], re.I), lines[0]
    return lines[0]


def check_run(run: Run) -> None:
    case, r = run.case, run.result
    assert not run.changed, f"inputs modified: {run.changed}"
    if case.code:
        assert_one_line_error(r, case.code, case.message)
        assert run.after == run.listed, f"left in the output folder: {(run.after or set()) - (run.listed or set())}"
        return
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "error" not in r.stderr, r.stderr
    assert run.after - (run.listed or set()) == {case.out.name}, run.after  # the output, no temporary file
    info = media.probe_video(case.out)
    if case.size:
        assert (info.width, info.height) == case.size
    if case.frames:
        assert abs(info.n_frames - case.frames) <= 1, (info.n_frames, case.frames)
    assert info.has_audio
    sound, sr = media.load_audio(case.out, 16000)
    assert abs(len(sound) / sr - info.n_frames / info.fps) < 0.05
    if case.check:
        case.check(case.out)


@pytest.fixture(scope="module")
def runs(m, tmp_path_factory, request):
    """Builds every selected case and runs the command lines two at a time (each is mostly one busy core: Python
    start-up and imports) while the tests check the results in order."""
    selected = {it.callspec.params["name"] for it in request.session.items
                if it.module is request.module and hasattr(it, "callspec") and "name" in it.callspec.params}
    pool = ThreadPoolExecutor(2, thread_name_prefix="lipdub-cli")
    started: dict = {}
    try:
        for name, build in CASES.items():
            if name not in selected:
                continue
            try:
                case = build(tmp_path_factory.mktemp(name), m)
            except (Exception, pytest.skip.Exception) as exc:  # raised again in that case's test
                started[name] = exc
                continue
            started[name] = (case, pool.submit(execute, case))
        yield started
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for item in started.values():
            if isinstance(item, tuple) and item[0].monitor is not None:
                item[0].monitor.close()


def get_run(runs: dict, name: str) -> Run:
    item = runs[name]
    if isinstance(item, BaseException):
        raise item
    return item[1].result()


def frames_of(path: Path) -> list[np.ndarray]:
    return [f.rgb for f in media.iter_frames(path)]


def same_frames(expected: list[np.ndarray], tol: float = 4.0) -> Callable[[Path], None]:
    """Output frame k equals expected[k % len] within codec noise (for a photo: the photo repeated)."""

    def check(out: Path):
        got = frames_of(out)
        for k, g in enumerate(got):
            e = expected[k % len(expected)]
            assert g.shape == e.shape
            assert np.abs(g.astype(np.int16) - e.astype(np.int16)).mean() < tol, k

    return check


def pingpong_frames(src: list[np.ndarray], n_out: int) -> list[np.ndarray]:
    return [src[int(j)] for j in media.output_schedule(len(src), FPS, n_out / FPS, "pingpong")]


# ----------------------------------------------------------------------------------------------- the cases

CASES: dict[str, Callable[[Path, Media], Case]] = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def _out(tmp: Path, name: str = "out.mp4") -> Path:
    (tmp / "out").mkdir(exist_ok=True)
    return tmp / "out" / name


@case
def very_large_frame(tmp, m):  # first: the slowest case runs while the others are built
    v = write_video(tmp / "large.mp4", n=25, w=3840, h=2160)
    return Case(v, m.speech, _out(tmp), size=(3840, 2160), frames=25, timeout=180)


@case
def truncated_video_moov_first(tmp, m):
    v = tmp / "half.mp4"
    data = m.clip.read_bytes()
    v.write_bytes(data[: len(data) // 2])
    return Case(v, m.speech, _out(tmp), size=(160, 120), frames=25)


@case
def truncated_video_moov_last(tmp, m):
    v = tmp / "half.mp4"
    data = m.clip_moov_last.read_bytes()
    v.write_bytes(data[: len(data) // 2])
    return Case(v, m.speech, _out(tmp), code=3, message="cannot read video")


@case
def corrupt_bytes_in_the_middle(tmp, m):
    v = tmp / "corrupt.mp4"
    data = bytearray(m.clip.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 2048] = np.random.default_rng(7).integers(0, 256, 2048, dtype=np.uint8).tobytes()
    v.write_bytes(bytes(data))
    return Case(v, m.speech, _out(tmp), size=(160, 120), frames=25)


@case
def text_file_named_mp4(tmp, m):
    v = tmp / "notes.mp4"
    v.write_text("this is not a video\n" * 50)
    return Case(v, m.speech, _out(tmp), code=3, message="cannot read video")


@case
def empty_video_file(tmp, m):
    v = tmp / "empty.mp4"
    v.write_bytes(b"")
    return Case(v, m.speech, _out(tmp), code=3, message="empty")


@case
def empty_audio_file(tmp, m):
    a = tmp / "empty.wav"
    a.write_bytes(b"")
    return Case(m.clip, a, _out(tmp), code=3, message="empty")


@case
def directory_as_video(tmp, m):
    d = tmp / "a folder.mp4"
    d.mkdir()
    return Case(d, m.speech, _out(tmp), code=3, message="not a file")


@case
def audio_only_as_video(tmp, m):
    return Case(m.speech, m.speech, _out(tmp), code=3, message="no video stream")


@case
def video_only_as_audio(tmp, m):
    return Case(m.clip, m.silent_clip, _out(tmp), code=3, message="no audio track")


@case
def zero_sample_wav(tmp, m):
    import struct

    a = tmp / "zero.wav"  # a complete header with an empty data chunk
    a.write_bytes(b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, SR, 2 * SR, 2, 16)
                  + b"data" + struct.pack("<I", 0))
    return Case(m.clip, a, _out(tmp), code=3, message="no (decodable )?(audio|samples)")


@case
def audio_20ms(tmp, m):
    a = write_audio(tmp / "short.wav", speech_like(0.02))
    return Case(m.clip, a, _out(tmp), size=(160, 120), frames=1)


@case
def silent_audio_mouth_closed(tmp, m):
    photo = need_portrait(m)
    a = write_audio(tmp / "silence.wav", np.zeros(2 * SR, np.float32))

    def check(out):
        from lipdub import face

        with face.Landmarker(num_faces=1) as lmk:
            ref = lmk.detect(frames_of(photo)[0])
            got = [lmk.detect(f) for f in frames_of(out)[::10]]
        assert ref and all(got)
        rest = face.inner_opening(ref[0][None])[0]
        opening = face.inner_opening(np.stack([g[0] for g in got]))
        assert opening.max() < rest + 0.03, (rest, opening)  # speech opens this portrait's mouth to 0.1-0.15

    return Case(photo, a, _out(tmp), size=(256, 256), frames=50, check=check)


@case
def music_without_speech(tmp, m):
    photo = need_portrait(m)
    a = write_audio(tmp / "chords.wav", chords(2.0, 44100), sr=44100)
    return Case(photo, a, _out(tmp), size=(256, 256), frames=50)


@case
def audio_8khz(tmp, m):
    a = write_audio(tmp / "8k.wav", speech_like(1.0, 8000), sr=8000)
    return Case(m.clip, a, _out(tmp), size=(160, 120), frames=25)


@case
def audio_96khz(tmp, m):
    a = write_audio(tmp / "96k.wav", speech_like(1.0, 96000), sr=96000)
    return Case(m.clip, a, _out(tmp), size=(160, 120), frames=25)


@case
def audio_six_channels(tmp, m):
    x = np.stack([speech_like(1.0) * g for g in (1, 0.8, 0.6, 0.1, 0.4, 0.3)])
    a = write_audio(tmp / "surround.wav", x)
    return Case(m.clip, a, _out(tmp), size=(160, 120), frames=25)


@case
def audio_changes_rate_and_channels_midway(tmp, m):
    """Two ADTS AAC streams back to back (44.1 kHz mono, then 22.05 kHz stereo): one file, two formats."""
    parts = []
    for sr, layout in ((44100, "mono"), (22050, "stereo")):
        p = tmp / f"part_{sr}.aac"
        with av.open(str(p), "w", format="adts") as c:
            s = c.add_stream("aac", rate=sr, layout=layout)
            x = np.tile(speech_like(0.6, sr), (2 if layout == "stereo" else 1, 1))
            for i in range(0, x.shape[1], 1024):
                f = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i:i + 1024]), format="fltp", layout=layout)
                f.sample_rate, f.pts = sr, i
                for pk in s.encode(f):
                    c.mux(pk)
            for pk in s.encode():
                c.mux(pk)
        parts.append(p.read_bytes())
    a = tmp / "mixed.aac"
    a.write_bytes(b"".join(parts))
    with av.open(str(a)) as c:  # independent oracle: the decoder's own frame lengths (AAC priming included)
        seconds = sum(f.samples / f.sample_rate for f in c.decode(audio=0))
    return Case(m.clip, a, _out(tmp), size=(160, 120), frames=round(seconds * FPS))


@case
def wav_24bit(tmp, m):
    a = write_audio(tmp / "24.wav", np.stack([speech_like(1.0), -speech_like(1.0)]), sr=48000 // 3,
                    codec="pcm_s24le")
    return Case(m.clip, a, _out(tmp), size=(160, 120), frames=25)


@case
def wav_float32(tmp, m):
    a = write_audio(tmp / "f32.wav", speech_like(1.0), codec="pcm_f32le")
    return Case(m.clip, a, _out(tmp), size=(160, 120), frames=25)


@case
def float_wav_with_nan_and_overrange(tmp, m):
    x = speech_like(1.0)
    x[100:200], x[300:310], x[500:600] = np.nan, np.inf, 7.0
    a = write_audio(tmp / "broken_float.wav", x, codec="pcm_f32le")
    return Case(m.clip, a, _out(tmp), size=(160, 120), frames=25)


@case
def every_video_packet_garbage(tmp, m):
    v = tmp / "garbage.mp4"
    rng = np.random.default_rng(3)
    with av.open(str(m.silent_clip)) as i, av.open(str(v), "w") as o:
        si = i.streams.video[0]
        so = o.add_stream_from_template(si)
        for p in i.demux(si):
            if p.dts is None:
                continue
            q = av.Packet(rng.integers(0, 256, p.size, dtype=np.uint8).tobytes())
            q.pts, q.dts, q.time_base, q.duration, q.stream = p.pts, p.dts, p.time_base, p.duration, so
            o.mux(q)
    return Case(v, m.speech, _out(tmp), code=3, message="no video frame could be decoded")


@case
def rotated_phone_video(tmp, m):
    v = write_video(tmp / "phone.mp4", n=20, w=96, h=64, rotation=90)
    src = frames_of(v)
    assert src[0].shape == (96, 64, 3)
    return Case(v, m.speech, _out(tmp), size=(64, 96), frames=25, check=same_frames(pingpong_frames(src, 25)))


@case
def variable_frame_rate(tmp, m):
    v = write_video(tmp / "vfr.mp4", n=30, w=96, h=64, step_ms=[20, 40, 60])
    info = media.probe_video(v)
    return Case(v, m.speech, _out(tmp), size=(96, 64), frames=round(1.0 * info.fps))


@case
def odd_frame_size(tmp, m):
    v = write_video(tmp / "odd.mkv", n=10, w=161, h=119, codec="libx264rgb", pix_fmt="rgb24")
    return Case(v, m.speech, _out(tmp), size=(161, 119), frames=25)


@case
def tiny_frame_passes_through(tmp, m):
    v = write_video(tmp / "tiny.mp4", n=10, w=32, h=32)
    src = frames_of(v)
    return Case(v, m.speech, _out(tmp), size=(32, 32), frames=25, check=same_frames(pingpong_frames(src, 25)))


@case
def grayscale_video(tmp, m):
    v = write_video(tmp / "gray.mkv", n=10, w=96, h=64, codec="ffv1", pix_fmt="gray")
    with av.open(str(v)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "gray"
    return Case(v, m.speech, _out(tmp), size=(96, 64), frames=25)


@case
def ten_bit_video(tmp, m):
    v = write_video(tmp / "10bit.mp4", n=10, w=96, h=64, pix_fmt="yuv420p10le")
    return Case(v, m.speech, _out(tmp), size=(96, 64), frames=25)


@case
def small_face_in_big_frame(tmp, m):
    from PIL import Image

    photo = need_portrait(m)
    canvas = np.full((720, 1280, 3), 90, np.uint8)
    canvas[:, :, 2] = 140
    with Image.open(photo) as im:
        canvas[500:564, 900:964] = np.asarray(im.resize((64, 64), Image.LANCZOS))
    v = save_image(tmp / "crowd.png", canvas)
    return Case(v, m.speech, _out(tmp), size=(1280, 720), frames=25)


@case
def face_with_mouth_covered(tmp, m):
    from PIL import Image

    with Image.open(need_portrait(m)) as im:
        rgb = np.asarray(im.convert("RGB")).copy()
    rgb[150:220, 70:190] = (40, 90, 160)  # a hand-sized flat patch over mouth and chin
    v = save_image(tmp / "covered.jpg", rgb, quality=95)
    return Case(v, m.speech, _out(tmp), size=(256, 256), frames=25)


@case
def upside_down_face(tmp, m):
    from PIL import Image

    with Image.open(need_portrait(m)) as im:
        v = save_image(tmp / "upside_down.png", np.asarray(im.convert("RGB"))[::-1].copy())
    return Case(v, m.speech, _out(tmp), size=(256, 256), frames=25)


@case
def animated_gif(tmp, m):
    from PIL import Image

    ims = [Image.fromarray(pattern(k, 60, 80)) for k in range(6)]
    v = tmp / "anim.gif"
    ims[0].save(v, save_all=True, append_images=ims[1:], duration=80, loop=0)
    return Case(v, m.speech, _out(tmp), size=(80, 60))


@case
def no_usable_face_photo_passes_through(tmp, m):
    g = pattern(3, 120, 160)
    v = save_image(tmp / "gradient.png", g)
    return Case(v, m.speech, _out(tmp), size=(160, 120), frames=25, check=same_frames([g]))


@case
def paths_with_spaces_and_non_ascii(tmp, m):
    d = tmp / "dir with space"
    d.mkdir()
    v = d / "vidéo ü.mp4"
    v.write_bytes(m.clip.read_bytes())
    a = d / "sön ñ audio.wav"
    a.write_bytes(m.speech.read_bytes())
    return Case(v, a, _out(tmp, "sortie é ü.mp4"), size=(160, 120), frames=25)


@case
def file_name_that_looks_like_a_protocol(tmp, m):
    """A relative name "concat:clip.mp4" is that file, not FFmpeg's concat protocol reading clip.mp4."""
    write_video(tmp / "concat:clip.mp4", n=10, w=96, h=64)
    (tmp / "clip.mp4").write_bytes(m.clip.read_bytes())  # 160x120: what the protocol would have read
    return Case("concat:clip.mp4", m.speech, _out(tmp), size=(96, 64), frames=25, cwd=tmp,
                watch=[tmp / "clip.mp4"])


@case
def output_under_a_regular_file(tmp, m):
    f = tmp / "file.txt"
    f.write_text("x")
    return Case(m.clip, m.speech, f / "out.mp4", code=4, message="is a file, not a folder", watch=[f])


@case
def output_folder_missing(tmp, m):
    return Case(m.clip, m.speech, tmp / "no such folder" / "out.mp4", code=4, message="does not exist")


@case
def output_equals_input(tmp, m):
    v = tmp / "in.mp4"
    v.write_bytes(m.clip.read_bytes())
    return Case(v, m.speech, v, code=4, message="overwrite the input")


@case
def output_suffix_wav(tmp, m):
    return Case(m.clip, m.speech, _out(tmp, "out.wav"), code=4, message=r"\.mp4")


@case
def output_suffix_txt(tmp, m):
    return Case(m.clip, m.speech, _out(tmp, "out.txt"), code=4, message=r"\.mp4")


@case
def unknown_length_value(tmp, m):
    return Case(m.clip, m.speech, _out(tmp), args=["--length", "forever"], code=2, message="--length")


@case
def negative_strength(tmp, m):
    return Case(m.clip, m.speech, _out(tmp), args=["--strength", "-1"], code=2, message="strength")


@case
def not_a_number_strength(tmp, m):
    return Case(m.clip, m.speech, _out(tmp), args=["--strength", "lots"], code=2, message="strength")


@case
def face_index_out_of_range(tmp, m):
    return Case(need_portrait(m), m.speech, _out(tmp), args=["--face-index", "5"], code=2, message="face-index")


@case
def negative_face_index(tmp, m):
    return Case(m.clip, m.speech, _out(tmp), args=["--face-index", "-1"], code=2, message="face-index")


@case
def face_box_outside_the_frame(tmp, m):
    return Case(m.clip, m.speech, _out(tmp), args=["--face-box", "500,500,50,50"], code=2, message="face-box")


@case
def face_box_not_numbers(tmp, m):
    return Case(m.clip, m.speech, _out(tmp), args=["--face-box", "a,b,c"], code=2, message="face-box")


@case
def unknown_preset(tmp, m):
    return Case(m.clip, m.speech, _out(tmp), args=["--preset", "warp9"], code=2, message="preset")


@case
def missing_audio_file(tmp, m):
    return Case(m.clip, tmp / "nope.wav", _out(tmp), code=3, message="not found")


@case
def missing_transcript_file_is_text(tmp, m):
    return Case(m.clip, m.speech, _out(tmp), args=["--transcript", str(tmp / "missing.txt")], size=(160, 120),
                frames=25)


@case
def empty_transcript(tmp, m):
    return Case(m.clip, m.speech, _out(tmp), args=["--transcript", ""], size=(160, 120), frames=25)


@case
def punctuation_only_transcript(tmp, m):
    return Case(m.clip, m.speech, _out(tmp), args=["--transcript", "?! ... -- 123 ~~"], size=(160, 120), frames=25)


@case
def unknown_language(tmp, m):
    return Case(m.clip, m.speech, _out(tmp), args=["--transcript", "hello there", "--language", "zz-qq"], code=2,
                message="language")


@case
def png_with_alpha(tmp, m):
    rgba = np.dstack([pattern(1, 64, 80), np.linspace(0, 255, 80, dtype=np.uint8)[None].repeat(64, 0)])
    v = save_image(tmp / "alpha.png", rgba)
    return Case(v, m.speech, _out(tmp), size=(80, 64), frames=25, check=same_frames([rgba[..., :3]]))


@case
def webp_image(tmp, m):
    g = pattern(2, 64, 96)
    v = save_image(tmp / "still.webp", g, lossless=True)
    return Case(v, m.speech, _out(tmp), size=(96, 64), frames=25, check=same_frames([g]))


@case
def bmp_image(tmp, m):
    g = pattern(4, 66, 98)
    v = save_image(tmp / "still.bmp", g)
    return Case(v, m.speech, _out(tmp), size=(98, 66), frames=25, check=same_frames([g]))


@case
def missing_arguments(tmp, m):
    return Case(m.clip, None, _out(tmp), code=2, message="usage")


# ----------------------------------------------------------------------------------------------- untrusted media


class Watch:
    """Detects any attempt to read `fifo` (a reader opening a FIFO) or to connect to a local TCP port."""

    def __init__(self, folder: Path, name: str):
        self.fifo = folder / name
        os.mkfifo(self.fifo)
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.server.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/segment.ts"
        self.events: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
                self.events.append("http connection")
                conn.close()
            except OSError:
                pass
            try:  # succeeds only while someone holds the FIFO open for reading; closing it gives them EOF
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
                self.events.append("fifo opened")
                os.close(fd)
            except OSError:
                pass

    def close(self) -> list[str]:
        if not self._stop.is_set():
            self._stop.set()
            self._thread.join()
            self.server.close()
        return self.events


def hls_playlist(path: Path, segments: list[str]) -> Path:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
    for seg in segments:
        lines += ["#EXTINF:1.0,", seg]
    path.write_text("\n".join(lines + ["#EXT-X-ENDLIST", ""]))
    return path


def untrusted(role: str):
    """A crafted file given as `role` (video or audio) that names other media: it must be refused (exit code 3)
    without reading what it names. The builder gets (tmp, m, watch, seg): seg is a real local media file."""

    def register(make):
        def build(tmp: Path, m: Media) -> Case:
            seg = write_video(tmp / "segment.ts", n=10, w=64, h=48, audio=speech_like(0.4))
            watch = Watch(tmp, "secret.ts")
            crafted = make(tmp, m, watch, seg)
            video, audio = (crafted, m.speech) if role == "video" else (m.clip, crafted)
            return Case(video, audio, _out(tmp), code=3, timeout=60, watch=[seg], monitor=watch, role=role)

        CASES["untrusted_" + make.__name__] = build
        return make

    return register


@untrusted("video")
def hls_local_file_and_http_url(tmp, m, watch, seg):
    return hls_playlist(tmp / "list.m3u8", [str(seg), watch.url])


@untrusted("video")
def hls_fifo(tmp, m, watch, seg):
    return hls_playlist(tmp / "fifo.m3u8", [str(watch.fifo)])


@untrusted("audio")
def hls_named_m3u_as_audio(tmp, m, watch, seg):
    return hls_playlist(tmp / "list.m3u", [watch.url, str(seg)])


@untrusted("video")
def hls_relative_named_mp4(tmp, m, watch, seg):
    return hls_playlist(tmp / "list_hls.mp4", [watch.fifo.name, seg.name])


@untrusted("video")
def ffconcat_absolute_real_clip(tmp, m, watch, seg):
    real = DATA / "video/grid_bbaf2n.mpg"
    p = tmp / "concat.txt"
    p.write_text(f"ffconcat version 1.0\nfile '{real if real.is_file() else seg}'\n")
    return p


@untrusted("video")
def ffconcat_relative_named_mp4(tmp, m, watch, seg):
    # FFmpeg's concat "safe" mode allows plain relative names: this one would be read without a whitelist
    p = tmp / "concat_relative.mp4"
    p.write_text(f"ffconcat version 1.0\nfile {watch.fifo.name}\nfile {seg.name}\n")
    return p


@untrusted("audio")
def ffconcat_as_audio(tmp, m, watch, seg):
    p = tmp / "concat_audio.wav"
    p.write_text(f"ffconcat version 1.0\nfile {seg.name}\nfile {watch.fifo.name}\n")
    return p


@untrusted("video")
def ffconcat_etc_passwd(tmp, m, watch, seg):
    p = tmp / "passwd.mp4"
    p.write_text("ffconcat version 1.0\nfile /etc/passwd\n")
    return p


@untrusted("video")
def plain_txt_list(tmp, m, watch, seg):
    p = tmp / "files.txt"
    p.write_text(f"{seg}\n{watch.fifo}\n{watch.url}\n")
    return p


@untrusted("video")
def image_sequence_pattern(tmp, m, watch, seg):
    # FFmpeg's image2 demuxer would read pic1.jpg (a valid image) for the name "pic%d.jpg"
    save_image(tmp / "pic1.jpg", pattern(0, 48, 64))
    trap = tmp / "pic%d.jpg"
    trap.write_bytes(b"not a jpeg")
    return trap


BAD = [n for n in CASES if not n.startswith("untrusted_")]
UNTRUSTED = [n for n in CASES if n.startswith("untrusted_")]


@pytest.mark.parametrize("name", BAD)
def test_bad_input(name, runs):
    check_run(get_run(runs, name))


@pytest.mark.parametrize("name", UNTRUSTED)
def test_untrusted_media_is_refused(name, runs, tmp_path):
    run = get_run(runs, name)
    case = run.case
    crafted = case.video if case.role == "video" else case.audio
    try:
        check_run(run)  # the command line: one line, exit code 3, nothing written, inputs untouched
        assert "Traceback" not in run.result.stderr
        with pytest.raises(InputError):  # the Python API
            lipdub.dub(case.video, case.audio, tmp_path / "api.mp4", cache=False)
        with pytest.raises(InputError):
            (media.probe_video if case.role == "video" else media.load_audio)(crafted)
        assert not list(tmp_path.iterdir())
    finally:
        events = case.monitor.close()
    assert not events, f"lipdub followed a reference inside {crafted.name}: {events}"


def test_non_finite_float_samples_are_sanitised(tmp_path):
    x = speech_like(0.5)
    x[10:20], x[30:40], x[50:60] = np.nan, np.inf, -np.inf
    path = write_audio(tmp_path / "nan.wav", x, codec="pcm_f32le")
    for sr, mono in ((16000, True), (None, False)):
        y, _ = media.load_audio(path, sr, mono=mono)
        assert np.isfinite(y).all() and np.abs(y).max() <= 1.0


def test_more_than_two_channels_become_stereo(tmp_path):
    x = np.stack([speech_like(0.5) * g for g in (1, 0.5, 0.7, 0.2, 0.3, 0.3)])
    y, sr = media.load_audio(write_audio(tmp_path / "six.wav", x), None, mono=False)
    assert sr == SR and y.shape == (2, x.shape[1]) and np.abs(y).max() > 0.1


def test_an_audio_frame_nothing_can_convert_becomes_silence_in_time(tmp_path, monkeypatch):
    # bench.fuzz found AAC frames that decode with 47 channels: FFmpeg cannot build a downmix for them and the
    # resampler raised av.ArgumentError out of load_audio. Such a frame is now silence of its own length.
    import av

    from lipdub.media import audio as audio_module

    x = speech_like(1.0, 48000)
    path = tmp_path / "speech.m4a"
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=48000, layout="mono")
        for a in range(0, len(x), 1024):
            f = av.AudioFrame.from_ndarray(x[None, a:a + 1024].copy(), format="fltp", layout="mono")
            f.sample_rate, f.pts = 48000, a
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    clean, sr = media.load_audio(path, SR)
    real, calls = audio_module.av.AudioResampler, [0]

    class Damaged:  # the 10th frame's conversion fails as the fuzzed file's did
        def __init__(self, **kw):
            self.inner = real(**kw)

        def resample(self, frame):
            if frame is not None:
                calls[0] += 1
                if calls[0] == 10:
                    raise av.ArgumentError(22, "Invalid argument")
            return self.inner.resample(frame)

    monkeypatch.setattr(audio_module.av, "AudioResampler", Damaged)
    damaged, sr2 = media.load_audio(path, SR)
    assert sr2 == sr and calls[0] > 10
    assert abs(len(damaged) - len(clean)) <= 32  # the sound after the frame stays in time
    start = int(round(9 * 1024 * SR / 48000))  # the 10th AAC frame (1024 samples each at 48 kHz)
    assert np.abs(damaged[start + 40:start + 300]).max() == 0.0
    late = slice(len(clean) // 2, len(clean) // 2 + 4000)
    assert np.corrcoef(damaged[late], clean[late])[0, 1] > 0.99
