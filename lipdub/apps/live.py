"""`lipdub live`: a session from sources to a file and/or a browser preview (MJPEG), with its report."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lipdub import media, motion, profile as profiles
from lipdub.errors import InputError, ParameterError
from lipdub.media.background import BackgroundWriter
from lipdub.media.sources import audio_source, video_source
from lipdub.pipeline.live import LiveDubber, prepare_atlas


# ------------------------------------------------------------------------------------------------------ session
@dataclass
class LiveReport:
    output: Path | None
    frames: int
    fps: float
    rendered: int
    wall: float  # s from the first input to the last output frame
    delay_p50: float
    delay_p95: float
    delay_max: float
    cpu: float  # cores busy on average (process CPU time / wall time)
    late_frames: int  # frames that left later than real time allows (a live sink would have to drop them)
    motion_latency: float
    realtime: bool = True  # sources were paced like live ones (else the delays only measure a backlog)

    def summary(self) -> str:
        head = f"{self.frames} frames at {self.fps:g} fps ({self.rendered} with a face) in {self.wall:.1f} s"
        if not self.realtime:
            return f"{head} ({self.frames / max(self.wall, 1e-9):.1f} frames/s, read as fast as possible); " \
                   f"CPU {self.cpu:.2f} cores"
        return (f"{head}; delay p50 {self.delay_p50 * 1000:.0f} ms, p95 {self.delay_p95 * 1000:.0f} ms, "
                f"max {self.delay_max * 1000:.0f} ms; CPU {self.cpu:.2f} cores")


class _Preview:
    """The newest dubbed frame as an MJPEG stream on http://127.0.0.1:PORT/ (a browser shows it live)."""

    PAGE = (b"<!doctype html><title>lipdub live</title><body style='margin:0;background:#111'>"
            b"<img src='/stream.mjpg' style='max-width:100vw;max-height:100vh;display:block;margin:auto'></body>")

    def __init__(self, port: int):
        import http.server

        preview = self
        self.jpeg: bytes | None = None
        self.cond = threading.Condition()
        self.closed = False

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet: the terminal shows the dub's progress
                pass

            def do_GET(self):
                if self.path in ("/", "/index.html"):
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.end_headers()
                    self.wfile.write(preview.PAGE)
                    return
                if self.path != "/stream.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                last = None
                try:
                    while True:
                        with preview.cond:
                            preview.cond.wait_for(lambda: preview.closed or preview.jpeg is not last, timeout=5)
                            if preview.closed:
                                return
                            last = jpeg = preview.jpeg
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    return

        try:
            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError as e:
            raise ParameterError(f"cannot serve the preview on port {port} ({e.strerror}); pick another --preview "
                                 "port") from None
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name="lipdub-preview", daemon=True).start()

    def show(self, rgb: np.ndarray) -> None:
        import cv2

        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        if ok:
            with self.cond:
                self.jpeg = buf.tobytes()
                self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        self.server.shutdown()
        self.server.server_close()


def run(video: str, audio: str, output=None, profile=None, region: str = "lower", strength: float = 1.0,
        lookahead: float = 0.1, realtime: bool = True, preview_port: int | None = None, crf: float = 20,
        preset: str = "superfast", max_seconds: float | None = None, progress=None, motion_source=None,
        announce=None, prepare: bool = True, motion_model: str = motion.MODEL_CHOICES[0]) -> LiveReport:
    """A live session from sources to a file and/or a browser preview; ends when the audio ends (or after
    `max_seconds`). File sources are played at real-time pace unless realtime=False (as fast as the machine goes).
    With `prepare` a video file's mouths are prepared before the session starts (prepare_atlas); with a profile
    too, mixed with the profile's (render.foreign)."""
    import resource

    if not (isinstance(lookahead, (int, float)) and 0 <= lookahead <= 0.15):
        raise ParameterError(f"--lookahead must be between 0 and 0.15 s, got {lookahead}")
    if preview_port is not None and not 0 <= int(preview_port) <= 65535:
        raise ParameterError(f"--preview must be a port number 0..65535 (0 picks a free one), got {preview_port}")
    if output is None and preview_port is None:
        raise ParameterError("give --output FILE, --preview PORT or both")
    if output is not None:
        output = media.check_output_path(output, [video if video != "-" else None,
                                                  audio if audio != "-" else None])
    if video == "-" and audio == "-":
        raise ParameterError("only one of --video and --audio can read standard input")
    actor = None
    if profile is not None:
        actor = profiles.load(profile)
    atlas = None
    if prepare and video != "-" and Path(video).is_file():  # not a pipe, device or stdin
        atlas = prepare_atlas(video, progress=progress)
    # with an output the decoded frames travel beside the RGB ones: the sink encodes them with only the drawn pixels
    # written back (LiveFrame.planar), instead of converting each whole RGB frame to YUV (~10 ms per 720p frame)
    frames = video_source(video, planar=output is not None)
    first_rgb, fps, still, first_planar = next(frames)
    if not np.isfinite(fps) or fps <= 0 or fps > 120:
        raise InputError(f"the video source {video} reports {fps} frames per second; pass a 1–120 fps stream")
    height, width = first_rgb.shape[:2]
    dubber = LiveDubber(fps, profile=actor, region=region, strength=strength, lookahead=lookahead, still=still,
                        motion_source=motion_source, atlas=atlas, motion_model=motion_model)
    try:
        dubber.warm_up(first_rgb)
        preview = _Preview(preview_port) if preview_port is not None else None
    except BaseException:
        dubber.shutdown()
        raise
    if preview is not None and announce is not None:
        announce(f"http://127.0.0.1:{preview.port}/")
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic() + 0.05
    audio_done = threading.Event()
    audio_end = [None]  # stream seconds of audio, once known
    stop = threading.Event()
    errors: list[BaseException] = []

    def pace(t: float) -> None:
        if realtime:
            wait = start + t - time.monotonic()
            if wait > 0:
                time.sleep(wait)

    def feed_audio():
        total = 0
        try:
            for chunk, sr in audio_source(audio):
                if stop.is_set():
                    break
                total += len(chunk)
                pace(total / sr)  # a chunk exists once its last sample has been heard
                dubber.push_audio(chunk, sr)
                if max_seconds is not None and total / sr >= max_seconds:
                    break
            audio_end[0] = total / sr if total else 0.0
        except BaseException as exc:
            errors.append(exc)
            stop.set()
        finally:
            audio_done.set()

    def feed_video():
        k = 0
        try:
            rgb, planar = first_rgb, first_planar
            while not stop.is_set():
                t = k / fps
                if audio_done.is_set() and audio_end[0] is not None and t >= audio_end[0]:
                    break
                if max_seconds is not None and t >= max_seconds:
                    break
                pace(t)
                if rgb.shape[:2] != (height, width):
                    raise InputError(f"the video source changed size mid-stream ({width}x{height} → "
                                     f"{rgb.shape[1]}x{rgb.shape[0]}); live mode needs a fixed size")
                dubber.push_frame(rgb, planar)
                k += 1
                try:
                    rgb, _, _, planar = next(frames)
                except StopIteration:
                    break
        except BaseException as exc:
            errors.append(exc)
            stop.set()
        finally:
            audio_done.wait()
            dubber.close()

    threads = [threading.Thread(target=feed_audio, name="lipdub-live-audio", daemon=True),
               threading.Thread(target=feed_video, name="lipdub-live-video", daemon=True)]
    for t in threads:
        t.start()
    wav_tmp = video_tmp = None
    n = late = 0
    try:
        sink = None
        if output is not None:
            import tempfile

            tmpdir = Path(tempfile.mkdtemp(prefix=".lipdub-live-", dir=output.parent))
            video_tmp = tmpdir / "video.mp4"
            wav_tmp = _WavSink(tmpdir / "audio.wav")
            # in the source's matrix, so that its decoded frames pass as they are (VideoWriter.write)
            same = {"matrix": first_planar.colorspace} if first_planar is not None else {}
            writer = media.VideoWriter(video_tmp, width, height, fps, crf=crf, preset=preset, segment=True, **same)
            sink = BackgroundWriter(writer, digest=False).__enter__()
        try:
            while True:
                fr = dubber.get()
                if fr is None:
                    break
                if errors:
                    raise errors[0]
                if sink is not None:
                    sink.write(fr.planar if fr.planar is not None else fr.rgb)
                    wav_tmp.write(fr.audio, dubber.sr)
                if preview is not None:
                    preview.show(fr.rgb)
                n += 1
                if realtime and time.monotonic() > start + (fr.index + 1) / fps + 0.5:
                    late += 1
                if progress:
                    progress("live", n, 0)
        except BaseException:
            stop.set()
            if sink is not None:
                sink.__exit__(*sys.exc_info())
                writer.abort()
            raise
        if sink is not None:
            sink.__exit__(None, None, None)
            writer.close()
        wall = time.monotonic() - start
        if errors:
            raise errors[0]
        if n == 0:
            raise InputError("the live session produced no frames: did the audio or video source end at once?")
        if output is not None:
            wav_tmp.close()
            # the sound is streamed from the WAV on disk into the AAC track (hours of it never sit in memory)
            media.join_segments([video_tmp], output, fps, wav_tmp.path if wav_tmp.path.exists() else None)
    finally:
        stop.set()
        for t in threads:  # before the tracker stops: the video feeder pushes to it
            t.join(timeout=10)
        dubber.shutdown()
        if not any(t.is_alive() for t in threads):
            frames.close()
        if preview is not None:
            preview.close()
        if wav_tmp is not None:
            wav_tmp.close()
            import shutil

            shutil.rmtree(wav_tmp.path.parent, ignore_errors=True)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime) / max(wall, 1e-6)
    st = dubber.stats
    return LiveReport(output, n, fps, st.rendered, wall, st.percentile(50), st.percentile(95),
                      max(st.delays) if st.delays else float("nan"), cpu, late, dubber.latency, realtime)


class _WavSink:
    """The output's sound as 16-bit PCM on disk while the session runs (memory stays flat for hours)."""

    def __init__(self, path: Path):
        self.path = path
        self._w = None

    def write(self, audio: np.ndarray, sr: int | None) -> None:
        import wave

        if not audio.size:
            return
        if self._w is None:
            self._w = wave.open(str(self.path), "wb")
            self._w.setnchannels(audio.shape[0])
            self._w.setsampwidth(2)
            self._w.setframerate(sr)
        pcm = (np.clip(audio.T, -1, 1) * 32767).astype("<i2")
        self._w.writeframes(pcm.tobytes())

    def close(self) -> None:
        if self._w is not None:
            self._w.close()
            self._w = None
