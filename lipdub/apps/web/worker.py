"""The web app's job process: `python -m lipdub.apps.web.worker JOB_DIR`.

It reads JOB_DIR/spec.json (written by lipdub.apps.web.jobs after the uploads were copied in), checks the uploads' content
with lipdub.media's restricted opener, makes the original playable in a browser, dubs (or says the script), plots
the mouth curves, and writes JOB_DIR/result.json. Progress goes to stdout as JSON lines. Untrusted media are only
ever parsed here, in a process of their own.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np

from lipdub.core.constants import SR
from lipdub import media, motion, options, profile as profiles
from lipdub.apps import visemes as export
from lipdub.apps.say import say
from lipdub.apps.web.jobs import FORM_OPTIONS, MAX_PIXELS, OUTPUT
from lipdub.core.files import write_json
from lipdub.errors import InputError, LipdubError
from lipdub.options import DubOptions, split_voice
from lipdub.pipeline import dub
from lipdub.speech import SpeechTrack

log = logging.getLogger("lipdub")


def check_video(path: Path):
    """A video or photo lipdub can dub: one local media file with a decodable video frame of a sane size."""
    try:
        info = media.probe_video(path)
    except InputError as exc:
        raise InputError(f"the video or photo is not one lipdub can read ({_reason(exc, path)})") from None
    if info.width * info.height > MAX_PIXELS:
        raise InputError(f"the video or photo is {info.width}x{info.height}; this app takes up to 8K (7680x4320)")
    return info


def check_audio(path: Path) -> None:
    """An audio (or video) file with a sound track whose first frame decodes."""
    try:
        with media.open_input(path, "audio") as c:
            if not c.streams.audio:
                raise InputError("it has no sound track")
            try:
                first = next(iter(c.decode(c.streams.audio[0])), None)
            except av.FFmpegError:
                first = None
            if first is None:
                raise InputError("its sound does not decode")
    except InputError as exc:
        raise InputError(f"the audio file is not one lipdub can read ({_reason(exc, path)})") from None


def check_profile(path: Path) -> None:
    """A lipdub actor profile: an .npz archive (no pickles) that says so; the dub loads the rest."""
    try:
        with np.load(path, allow_pickle=False) as z:
            ok = "format" in z.files and str(z["format"]) == profiles.FORMAT
    except Exception:  # noqa: BLE001 - anything unreadable is simply not a profile
        ok = False
    if not ok:
        raise InputError("the actor profile is not a lipdub profile; build one with `lipdub profile build`")


def _reason(exc: Exception, path: Path) -> str:
    """The opener's words without the job folder's path (the user never named it)."""
    return str(exc).replace(f"{path} ", "").replace(str(path), "the file")


def photo_preview(src: Path, dst: Path, max_side: int = 1280) -> Path:
    """A photo as PNG for the browser (any format lipdub reads, upright, at most `max_side` pixels)."""
    rgb = next(media.iter_frames(src)).rgb
    scale = min(1.0, max_side / max(rgb.shape[:2]))
    if scale < 1:
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    if not cv2.imwrite(str(dst), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise InputError("cannot make a preview of the photo")
    return dst


def preview(src: Path, dst: Path, max_side: int = 1280) -> Path:
    """`src` as a browser-playable H.264 4:2:0 MP4 with its own sound: even size, at most `max_side` pixels."""
    info = media.probe_video(src)
    scale = min(1.0, max_side / max(info.width, info.height))
    w, h = (max(2, int(info.width * scale) // 2 * 2), max(2, int(info.height * scale) // 2 * 2))
    sound, sr = None, SR
    if info.has_audio:
        try:
            sound, sr = media.load_audio(src, None, mono=False)
        except InputError:  # a broken sound track: the picture is still worth showing
            sound = None
    with media.VideoWriter(dst, w, h, info.fps, audio=sound, audio_sr=sr, crf=23, preset="veryfast") as writer:
        for frame in media.iter_frames(src):
            rgb = frame.rgb
            if rgb.shape[:2] != (h, w):
                rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA) if scale < 1 else rgb[:h, :w]
            writer.write(np.ascontiguousarray(rgb))
    return dst


def plot(job_dir: Path, audio: Path, track, frames: int, fps: float, strength: float,
         motion_model: str = motion.MODEL_CHOICES[0]) -> Path:
    """The mouth curves the dub followed (opening, width, closures, mouth shapes) over the waveform."""
    samples, sr = media.load_audio(audio, SR)
    mouth = motion.mouth_track(track, np.arange(frames) / fps, strength,
                               params=motion.MotionParams(model=motion.load_model(motion_model)))
    path = job_dir / "mouth_curves.png"
    export.write_plot(path, samples, sr, track, mouth, export.mouth_cues(track, mouth))
    return path


def work(job_dir: Path, emit: Callable[[str, dict], None]) -> None:
    """The job itself (in the job's process): check the uploads, preview the original, dub, plot, report.
    Writes JOB_DIR/result.json whatever happens."""
    warnings: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage())

    handler = Collect(logging.WARNING)
    log.addHandler(handler)
    try:
        outcome = _work(job_dir, emit)
        outcome["report"]["warnings"] = warnings
    except LipdubError as exc:
        outcome = {"ok": False, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - the user gets one line, the log the details
        log.exception("job failed")
        outcome = {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}
    finally:
        log.removeHandler(handler)
    write_json(job_dir / "result.json", outcome)


def _work(job_dir: Path, emit: Callable[[str, dict], None]) -> dict:
    spec = json.loads((job_dir / "spec.json").read_text(encoding="utf-8"))
    video = job_dir / spec["video"]
    audio = job_dir / spec["audio"] if spec.get("audio") else None
    profile = job_dir / spec["profile"] if spec.get("profile") else None
    voices = [str(job_dir / v) for v in spec.get("voices", [])]  # a conversation: name@face each
    speakers = job_dir / spec["speakers"] if spec.get("speakers") else None
    conversation = bool(voices or speakers)
    emit("progress", {"stage": "check", "done": 0, "total": 0})
    opts = DubOptions(**{**spec["options"], "speaker_face": tuple(spec["options"].get("speaker_face") or ()) or None},
                      profile=str(profile) if profile else None, speakers=str(speakers) if speakers else None,
                      save_alignment=None if conversation else str(job_dir / "alignment.json"))
    opts.validate()
    info = check_video(video)
    if audio is not None:
        check_audio(audio)
    for v in voices[1:]:
        check_audio(Path(split_voice(v)[0]))
    if profile is not None:
        check_profile(profile)

    files: dict[str, str] = {}
    emit("progress", {"stage": "preview", "done": 0, "total": 0})
    if info.is_image:
        files["original"] = photo_preview(video, job_dir / "original_preview.png").name
    else:
        files["original"] = preview(video, job_dir / "original_preview.mp4").name
    emit("preview", {"path": files["original"], "is_image": info.is_image})

    last = [0.0, ""]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != last[1] or done >= total or now - last[0] >= 0.25:  # a few updates a second are plenty
            last[:] = [now, stage]
            emit("progress", {"stage": stage, "done": int(done), "total": int(total)})

    output = job_dir / OUTPUT
    if spec["script"]:
        emit("progress", {"stage": "speech", "done": 0, "total": 0})
        report, track = say(video, spec["script"], output, voice=spec["voice"], language=opts.language,
                            options=replace(opts, language=None), progress=progress)
        speech_audio = output  # the synthesised speech lives on only in the dub's sound track
    else:
        report = dub(video, voices or audio, output, opts, progress=progress)
        track = None if conversation else SpeechTrack.load(job_dir / "alignment.json")
        speech_audio = audio
    files["output"] = output.name
    files["player"] = output.name
    if report.frames and (info.width % 2 or info.height % 2):  # 4:4:4 H.264: browsers do not play it
        emit("progress", {"stage": "preview", "done": 0, "total": 0})
        files["player"] = preview(output, job_dir / "dubbed_preview.mp4").name
    if track is not None:  # (a conversation has one mouth track per voice: no plot)
        emit("progress", {"stage": "plot", "done": 0, "total": 0})
        try:
            files["plot"] = plot(job_dir, speech_audio, track, report.frames, report.fps,
                                 1.0 if profile else opts.strength, opts.motion_model).name
        except (LipdubError, ValueError) as exc:  # the dub is done; a missing plot must not lose it
            log.warning("no mouth-curve plot: %s", exc)
    rep = {"frames": report.frames, "duration": round(report.duration, 3), "fps": round(report.fps, 3),
           "speech_method": report.speech_method, "faces_rendered": report.faces_rendered,
           "appearance": report.appearance, "size": f"{info.width}x{info.height}",
           "source": "photo" if info.is_image else "video", **options.report(opts, FORM_OPTIONS),
           "language": (track.language if track is not None else None) or opts.language or "en",
           "script": bool(spec["script"]),
           "timings": {k: round(v, 2) for k, v in report.timings.items()},
           "output_bytes": output.stat().st_size,
           **({"voices": report.voices} if report.voices else {})}
    return {"ok": True, "files": files, "report": rep, "original_is_image": info.is_image}


def _child_main(argv: list[str]) -> int:
    """`python -m lipdub.apps.web.worker JOB_DIR`: events go to the original stdout; anything a library prints goes to
    stderr, so it cannot be mistaken for an event."""
    events = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.WARNING, format="lipdub: %(message)s")
    lock = threading.Lock()

    def emit(kind: str, payload: dict) -> None:
        with lock:  # face tracking reports from worker threads
            events.write(json.dumps([kind, payload]) + "\n")

    work(Path(argv[0]), emit)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))

