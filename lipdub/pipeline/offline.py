"""The offline dub, as named steps: check the inputs, load what was given, analyse the speech beside face tracking,
plan the motion, plan the rendering, render and encode, report."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from lipdub import media, motion, render, speech
from lipdub import profile as profiles
from lipdub.core.constants import HOP, HOP_SECONDS, SR
from lipdub.core.files import write_atomically
from lipdub.core.memory import log_memory
from lipdub.core.progress import Progress
from lipdub.core.threads import opencv_in_caller
from lipdub.errors import InputError, OutputError, ParameterError
from lipdub.media.background import BackgroundWriter
from lipdub.motion import expression
from lipdub.options import DubOptions
from lipdub.pipeline.caches import load_track, own_renderer, passes_read_once
from lipdub.pipeline.pieces import render_in_pieces
from lipdub.pipeline.rendering import FrameDrawer, frame_reader, last_reads, render_frames
from lipdub.pipeline.report import DubReport
from lipdub.pipeline.retiming import fit_plan, plan_report
from lipdub.pipeline.speech_pieces import samples_unless_in_pieces, speech_in_pieces
from lipdub.render.styler import FaceStyler
from lipdub.speech.vad import detect_voice

log = logging.getLogger("lipdub")


def dub(video, audio, output, options: DubOptions | None = None, progress: Progress | None = None) -> DubReport:
    """Dub `video` (a clip or a photo) with `audio` into `output`; `progress(stage, done, total)` hears of each stage."""
    with opencv_in_caller():  # (the dub's own threads keep the cores busy: see lipdub.core.threads)
        return _dub(video, audio, output, options, progress)


def _dub(video, audio, output, options: DubOptions | None, progress: Progress | None) -> DubReport:
    opts = options or DubOptions()
    video, audio, output = _check_paths(video, audio, output, opts)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    info, duration, in_pieces, samples16 = _probe(video, audio, opts)
    opts = _face_box_scaled(opts, info)
    timings["load"] = time.perf_counter() - t0
    log_memory("load")
    saved, actor = _load_given(opts, audio, duration)
    # the writer opens before the speech is analysed: its sound is encoded, the first frames decoded, while the
    # analysis runs (Ahead); not for a long dub (speech in pieces), whose peak memory counts and whose time does not
    # notice a second
    with _writer(output, audio, info, opts) as writer, Ahead(None if in_pieces else writer) as ahead:
        speech_track, track, own, pauses = _analyse_speech_beside_tracking(video, audio, info, opts, saved, actor,
                                                                           in_pieces, samples16, timings, progress,
                                                                           duration, ahead)
        fit = None
        if opts.length == "fit":
            fit = fit_plan(video, info, track,
                           samples16 if samples16 is not None else media.load_audio(audio, SR)[0], duration)
        schedule, mouth, teeth, drawn = _plan_motion(speech_track, track, info, duration, opts, actor,
                                                     fit.schedule if fit is not None else None,
                                                     None if own is None else own.atlas_open)
        t = time.perf_counter()
        renderer, styler, plan = _plan_rendering(video, audio, info, track, speech_track, schedule, mouth, teeth,
                                                 opts, actor, own, samples16, pauses, drawn)
        timings["plan"] = time.perf_counter() - t
        log_memory("plan")
        t = time.perf_counter()
        shown = fit.shown if fit is not None else schedule  # --length fit: held frames blended with the next
        faces_rendered, digest = _render_and_encode(video, audio, output, info, opts, shown, renderer, styler, plan,
                                                    progress, writer, ahead.reader)
    timings["render"] = time.perf_counter() - t
    log_memory("render")
    timings["total"] = time.perf_counter() - t0
    report = _report(output, info, opts, actor, schedule, mouth if drawn is None else drawn, speech_track, renderer,
                     styler, faces_rendered, digest, timings)
    report.retiming = plan_report(fit)
    return report


def _check_paths(video, audio, output, opts: DubOptions) -> tuple[Path, Path, Path]:
    """The options checked, the inputs found, the output writable (and never one of the inputs)."""
    opts.validate()
    video, audio = Path(video), Path(audio)
    for p, what in ((video, "video"), (audio, "audio")):
        if not p.exists():
            raise InputError(f"{what} file not found: {p}")
    return video, audio, media.check_output_path(output, [video, audio])


def _probe(video: Path, audio: Path, opts: DubOptions) -> tuple[media.VideoInfo, float, bool, np.ndarray | None]:
    """The video's stream facts, the audio's length, whether the speech is analysed in pieces, and the audio's
    samples (None when it is analysed in pieces: an hour of samples is never held)."""
    info = media.probe_video(video, opts.max_size)
    if opts.face_box is not None:
        frame = frame_missed_by(opts.face_box, info)
        if frame:
            x, y, w, h = (float(v) for v in opts.face_box)
            raise ParameterError(f"--face-box {x:g},{y:g},{w:g},{h:g} lies outside the {frame} frame; give x,y,w,h "
                                 "in pixels of the displayed (upright) frame")
    n16, samples16 = samples_unless_in_pieces(audio, opts.transcript)
    if n16 < HOP:
        raise InputError(f"{audio} holds no audio (or less than 10 ms); pass a file with speech")
    return info, n16 / SR, samples16 is None, samples16


def frame_missed_by(box, info: media.VideoInfo) -> str | None:
    """The frame's size ("WxH") when a face box x, y, w, h (pixels of the displayed frame, as stored) lies wholly
    outside it; None when the box reaches into it."""
    x, y, w, h = (float(v) for v in box)
    width, height = info.source_size or (info.width, info.height)
    return f"{width}x{height}" if x >= width or y >= height or x + w <= 0 or y + h <= 0 else None


def _face_box_scaled(opts: DubOptions, info: media.VideoInfo) -> DubOptions:
    """--face-box is given in pixels of the photo as stored; a photo scaled down (--max-size) is tracked at its
    output size, so the box is scaled with it."""
    if opts.face_box is None or info.source_size is None:
        return opts
    k = info.width / info.source_size[0]
    return dataclasses.replace(opts, face_box=tuple(float(v) * k for v in opts.face_box))


def _load_given(opts: DubOptions, audio: Path, duration: float):
    """The saved speech track (--alignment, or one passed in) and the actor profile, loaded and checked before any
    tracking: a wrong file must fail fast."""
    saved = opts.speech_track
    if opts.alignment:
        saved = speech.SpeechTrack.load(opts.alignment)
    if saved is not None and abs(saved.duration - duration) > 0.1:
        what = f"--alignment {opts.alignment}" if opts.alignment else "the speech track"
        raise ParameterError(f"{what} describes {saved.duration:.2f} s of audio but {audio} lasts {duration:.2f} s; "
                             "save the alignment from this audio")
    if saved is not None:
        motion.check_speech_inputs(saved, opts.motion_model)
    actor = profiles.load(opts.profile) if opts.profile else None
    if opts.save_alignment and not Path(opts.save_alignment).resolve().parent.is_dir():
        raise OutputError(f"cannot save the alignment: folder {Path(opts.save_alignment).parent} does not exist")
    return saved, actor


def _analyse_speech_beside_tracking(video: Path, audio: Path, info, opts: DubOptions, saved, actor, in_pieces: bool,
                                    samples16, timings: dict, progress: Progress | None, duration: float,
                                    ahead: "Ahead | None" = None):
    """The speech track, the face track, (without a profile) the clip's own renderer and the filmed pauses
    (filmed_pauses). Speech analysis runs beside the rest: face tracking, the atlas and the filmed sound's voice
    spend their time in native code that releases the GIL, and a prepared video's track and atlas come from the cache
    long before the speech is analysed, so the filmed sound is read, and the render's first work done (`ahead`),
    while the other core would idle."""

    def analyse_speech():
        t_s = time.perf_counter()
        if saved is not None:
            result = saved
        elif in_pieces:
            result = speech_in_pieces(audio, opts.language)
        else:
            result = speech.analyse(samples16, SR, transcript=opts.transcript, language=opts.language)
        if opts.save_alignment:
            write_atomically(Path(opts.save_alignment), result.save)
        timings["speech"] = time.perf_counter() - t_s
        return result

    with ThreadPoolExecutor(1, thread_name_prefix="lipdub-speech") as pool:
        speech_future = pool.submit(analyse_speech)
        with passes_read_once(video, info, opts):
            t = time.perf_counter()
            track = load_track(video, info, opts, progress)
            timings["track"] = time.perf_counter() - t
            log_memory("track")
            # the clip's own mouth atlas is built while the speech analysis may still run
            t = time.perf_counter()
            own = None
            if track.valid.any():  # with a profile too: the shot's own mouths are preferred where one fits
                try:
                    own = own_renderer(video, info, track, opts, progress)
                except InputError:  # no usable mouth in the shot: a profile draws all of them, as it did before
                    if actor is None:
                        raise
            timings["atlas"] = time.perf_counter() - t
            log_memory("atlas")
        pauses = filmed_pauses(video, info, track)
        if ahead is not None:
            ahead.run(video, track, info, duration, opts, stop=speech_future.done)
        speech_track = speech_future.result()
        if in_pieces:  # a long dub: the speech models (ASR, aligner, VAD: ~50 MB) are not needed again
            speech.release_models()
        log_memory("speech")
    return speech_track, track, own, pauses


def _plan_motion(speech_track, track, info, duration: float, opts: DubOptions, actor, schedule=None,
                 shot_open: np.ndarray | None = None):
    """Which source frame each output frame shows (unless `schedule` says: --length fit), the mouth (opening,
    width, closures; teeth with a profile) the speech asks for at each output frame: the actor's articulation with a
    profile, the emotion's bias on top; and the mouth drawn where it is another (else None): with a profile whose
    footage opens less than the shot's own mouths (its atlas's openings `shot_open`), the speech drawn at the shot's
    level (profiles.shot_level), its atlas entries chosen for the speech at the footage's (level 1): chosen at the
    shot's level, the raised openings fell on other entries, whose path followed the speech less well (held out on
    the CNN anchor, bench.profile_level: r 0.763 at level 1, 0.746 chosen at the shot's, 0.761 so; docs/RESULTS.md)."""
    if schedule is None:
        schedule = _output_schedule(track, info, duration, opts)
    out_times = np.arange(len(schedule)) / info.fps
    mouth = motion.mouth_track(speech_track, out_times, 1.0 if actor is not None else opts.strength,
                               params=motion.MotionParams(model=motion.load_model(opts.motion_model)))
    teeth = drawn = None
    if actor is not None:  # this actor's articulation, then the requested strength on top
        level = 1.0 if shot_open is None else profiles.shot_level(render.descriptors(actor.atlas.norm)[:, 0],
                                                                    shot_open)
        generic = mouth
        mouth = _at_strength(actor.articulation.apply(generic, speech_track), opts.strength)
        teeth = actor.articulation.teeth(mouth, speech_track)
        if level > 1.0:
            log.info("the shot's mouths open %.2fx the profile footage's: its speech drawn as much more open", level)
            drawn = _emotion_bias(_at_strength(actor.articulation.apply(generic, speech_track, level), opts.strength),
                                  opts)
    return schedule, _emotion_bias(mouth, opts), teeth, drawn


def _at_strength(mouth: motion.MouthTrack, strength: float) -> motion.MouthTrack:
    """A profile's mouth with the requested strength on top."""
    return dataclasses.replace(mouth, opening=np.clip(mouth.opening * strength, 0, 1.2).astype(np.float32),
                               width=np.clip(mouth.width * strength, -1, 1).astype(np.float32),
                               rest=None if mouth.rest is None else mouth.rest * min(strength, 1.0))


def _emotion_bias(mouth: motion.MouthTrack, opts: DubOptions) -> motion.MouthTrack:
    """The mouth with the emotion's bias on its speech openings."""
    scale_o, floor_o = expression.mouth_bias(opts.emotion, opts.emotion_strength)
    if (scale_o, floor_o) == (1.0, 0.0):
        return mouth
    speaking = (mouth.opening > 0) & ~mouth.closed
    opened = np.where(speaking, np.maximum(mouth.opening * scale_o, floor_o), mouth.opening)
    return dataclasses.replace(mouth, opening=np.clip(opened, 0, 1.2).astype(np.float32))


def _output_schedule(track, info, duration: float, opts: DubOptions) -> np.ndarray:
    """Which source frame each output frame shows (all but --length fit, planned from the speech)."""
    return media.output_schedule(len(track), info.fps, duration, "pingpong" if opts.length == "audio" else opts.length)


SOUND_AHEAD_SECONDS = 600.0  # at most this much of the new sound is encoded ahead (its AAC held: ~10 MB)
READ_AHEAD_BYTES = 128 << 20  # the decoded frames held ahead of the render at most (93 720p frames, 43 1080p ones)


class Ahead:
    """The render's first work, done while the speech is analysed (run): a prepared video's track and atlas come from
    the cache in ~0.03 s and the main thread would wait ~1 s for the speech while the other core idles. The new
    sound's AAC is encoded into the writer (0.35 s of CPU per 8 s of stereo, measured; the encoder thread then only
    muxes it) and the first frames are decoded into the render's reader (`reader`), as far as the output is sure to
    last: neither is known before the speech with --length fit. A context: the reader is closed on leaving."""

    def __init__(self, writer: media.VideoWriter | None):
        self.writer = writer
        self.reader: media.FrameReader | None = None

    def run(self, video: Path, track, info, duration: float, opts: DubOptions, stop: Callable[[], bool]) -> None:
        if self.writer is None or opts.length == "fit" or not len(track):
            return
        schedule = _output_schedule(track, info, duration, opts)
        self.writer.encode_audio_ahead(min(len(schedule), int(SOUND_AHEAD_SECONDS * info.fps)), stop)
        if not _styled(opts):  # (the styler's whole-face warps read RGB frames: its reader is opened later)
            self.reader = frame_reader(video, info, schedule, planar=True)
            self.reader.read_ahead(READ_AHEAD_BYTES // max(1, info.width * info.height * 3 // 2), stop)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.reader is not None:
            self.reader.close()


def _styled(opts: DubOptions) -> bool:
    """Whether a dub of a face draws more than the mouth (FaceStyler: --region face or head, an emotion)."""
    return opts.region in ("face", "head") or opts.emotion != "neutral"


PAUSE_SECONDS_MAX = 600.0  # a longer video's sound is not read for its pauses (its speaker's rest: a percentile)
PAUSE_MARGIN = 0.15  # s: a filmed pause starts and ends this far from voice (lips part before speech, close after)


def filmed_pauses(video: Path, info, track) -> np.ndarray | None:
    """Per track frame: whether it was filmed in a pause of the video's own sound (no voice within PAUSE_MARGIN),
    how its speaker rests (render.Renderer.rest_opening); None for a photo, a silent or a long video."""
    if info.is_image or not info.has_audio or info.duration > PAUSE_SECONDS_MAX or not len(track):
        return None
    own = media.video_audio(video, SR)
    if own is None or len(own) < SR:
        return None
    voice = detect_voice(own)
    margin = int(round(PAUSE_MARGIN / HOP_SECONDS))
    near = np.convolve(voice.astype(np.float64), np.ones(2 * margin + 1), "same") > 0
    hop = np.round(np.asarray(track.times, np.float64) / HOP_SECONDS).astype(int)
    inside = (hop >= 0) & (hop < len(near))
    return inside & ~near[np.clip(hop, 0, len(near) - 1)]


def _plan_rendering(video: Path, audio: Path, info, track, speech_track, schedule, mouth, teeth, opts: DubOptions,
                    actor, own, samples16, pauses: np.ndarray | None = None, drawn=None):
    """The renderer (the profile's mouths or the clip's own), the styler for --region face/head or an emotion, and
    the plan of mouths; all None when the video shows no face. `pauses` (filmed_pauses) tell how the filmed speaker
    rests, which the new speech's silences show; `drawn` (_plan_motion): the mouth drawn where it is not `mouth`,
    which chooses the atlas entries."""
    renderer = styler = plan = None
    if track.valid.any():
        if actor is not None:
            # the profile's mouths matched to the shot's look, mixed with the shot's own (render.foreign)
            renderer = render.mixed_renderer(actor.atlas, actor.model, track, own, opts.region)
        else:
            renderer = own
            renderer.region = opts.region
        renderer.pauses = pauses
        if _styled(opts):
            if samples16 is None:  # expression motion follows the whole sound track
                samples16 = media.load_audio(audio, SR)[0]
            styler = FaceStyler(renderer, track, schedule, speech_track, samples16, opts.region, opts.emotion,
                                opts.emotion_strength, info.is_image, info.fps)
            renderer = styler.renderer
            plan = renderer.plan(np.arange(len(schedule)), mouth, teeth, source=schedule, drawn=drawn)
        else:
            plan = renderer.plan(schedule, mouth, teeth, drawn=drawn)
    else:
        log.warning("no face found in %s: writing the video unchanged with the new audio", video)
    return renderer, styler, plan


def _writer(output: Path, audio: Path, info, opts: DubOptions):
    """The dub's writer (a null context for --resume and --pieces, which write pieces of their own)."""
    if opts.resume or opts.pieces:
        return contextlib.nullcontext()
    return dub_writer(output, info, opts, audio)


def dub_writer(output: Path, info, opts: DubOptions, audio, audio_sr: int = SR) -> media.VideoWriter:
    """A whole dub's writer: the video's size, rate and colour matrix, the options' encode, the new sound (a file,
    or samples at `audio_sr`)."""
    return media.VideoWriter(output, info.width, info.height, info.fps, audio=audio, audio_sr=audio_sr, crf=opts.crf,
                             preset=opts.preset, repeatable=bool(opts.repeatable), matrix=info.matrix)


def _render_and_encode(video: Path, audio: Path, output: Path, info, opts: DubOptions, schedule, renderer, styler,
                       plan, progress: Progress | None, writer: media.VideoWriter | None,
                       reader: media.FrameReader | None = None) -> tuple[int, str | None]:
    """Every output frame rendered and encoded with the new audio into `writer` (_writer), or in pieces (--resume,
    --pieces); returns how many frames had a face and the digest of the rendered frames (None unless
    opts.frames_sha256). `reader`: the source frames, some decoded already (Ahead), if they come as the render
    reads them."""

    def styled_or_unchanged(k: int, j: int, frame) -> tuple:
        if styler is not None:
            return styler.frame(k, j, frame, plan)
        return frame, False  # no face in the video

    render_one = styled_or_unchanged
    if styler is None and renderer is not None:  # the mouth alone: drawn frames ahead on a second thread
        render_one = FrameDrawer(lambda k, j, frame: renderer.draw(k, j, frame, plan), renderer.finish)

    # the lower face alone is drawn in YUV frames, converting only its box (see media.PlanarFrame); the styler's
    # whole-face warps take RGB frames
    planar = styler is None

    if opts.resume or opts.pieces:
        return render_in_pieces(video, audio, output, info, opts, schedule, render_one, renderer, progress, planar)
    if reader is None or reader.planar != planar:
        reader = frame_reader(video, info, schedule, planar=planar)
    with BackgroundWriter(writer, digest=opts.frames_sha256) as sink, reader:
        faces_rendered = render_frames(range(len(schedule)), schedule, reader, render_one, sink, progress,
                                       last_reads(schedule))
    writer.close()  # the file complete and published (_dub's block aborts it on an error before)
    return faces_rendered, sink.digest


def _report(output: Path, info, opts: DubOptions, actor, schedule, mouth, speech_track, renderer, styler,
            faces_rendered: int, digest: str | None, timings: dict) -> DubReport:
    n_out = len(schedule)
    appearance = f"profile:{Path(opts.profile).name}" if actor is not None else "video"
    report = DubReport(output, n_out, info.fps, n_out / info.fps, faces_rendered, speech_track.method, timings,
                       appearance, digest)
    if renderer is not None:
        report.wanted_opening = renderer.wanted(mouth)[0].astype(np.float32)
    if styler is not None:
        report.head = styler.motion.head if styler.head else None
        report.blink = styler.motion.blink if styler.blinks and styler.warp_face else None
    return report
