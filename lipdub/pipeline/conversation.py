"""A conversation: several voices, each bound to a face and driving it, rendered into one output.

`dub` is the pipeline's entry point: one voice without a binding goes to the offline dub unchanged (offline.py); one
bound voice is that dub with the face chosen; several voices (or one mixed track with an RTTM speaker map) take the
steps below. Each voice is analysed, each bound face tracked, its identity checked (face.identity), its mouth planned
from its own voice (silence in a voice is a rest: where voice activity says nobody speaks the mouth rests as the face
was filmed resting, from a low percentile of its filmed openings, since the video's sound does not say which face is
silent when; the head keeps its filmed motion), and every frame gets each face's mouth drawn in turn.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lipdub import face, media, speech
from lipdub.core.constants import SR
from lipdub.core.progress import Progress
from lipdub.errors import InputError, ParameterError
from lipdub.face.detect import iou
from lipdub.face.identity import appearance_doubts, overlaps, same_face
from lipdub.media.background import BackgroundWriter
from lipdub.media.mixing import mix
from lipdub.options import DubOptions, speaker_faces, split_voice
from lipdub.pipeline import offline
from lipdub.pipeline.caches import load_track, own_renderer
from lipdub.pipeline.rendering import frame_reader, last_reads, render_frames
from lipdub.pipeline.report import DubReport
from lipdub.pipeline.retiming import fit_plan, plan_report
from lipdub.speech import rttm

log = logging.getLogger("lipdub")

@dataclass
class Voice:
    name: str  # how messages name it: the file, or the RTTM label
    samples: np.ndarray  # 16 kHz mono, for the speech analysis
    binding: object  # face index (int) or box (x, y, w, h), or None: the largest face

    @property
    def face_options(self) -> dict:
        if isinstance(self.binding, tuple):
            return {"face_index": None, "face_box": self.binding}
        return {"face_index": self.binding, "face_box": None}

    @property
    def face_text(self) -> str:
        if self.binding is None:
            return "the largest face"
        if isinstance(self.binding, tuple):
            return "the face in box " + ",".join(f"{v:g}" for v in self.binding)
        return f"face {self.binding}"


def dub(video, audio, output, options: DubOptions | None = None, progress: Progress | None = None) -> DubReport:
    """Dub `video` with `audio`: a voice file, or a list of voice files each optionally bound to a face
    (`voice.wav@N`, `voice.wav@x,y,w,h`); with options.speakers, `audio` is one mixed track and the RTTM map says
    who speaks when."""
    opts = options or DubOptions()
    voices = list(audio) if isinstance(audio, (list, tuple)) else [audio]
    if not voices:
        raise ParameterError("give at least one voice (an audio file)")
    if len(voices) == 1 and not opts.speakers and not opts.mix:
        path, binding = split_voice(voices[0])
        if binding is None:
            return offline.dub(video, voices[0], output, opts, progress)
        if opts.face_index is not None or opts.face_box is not None:
            raise ParameterError(f"{voices[0]} names its face: leave out --face-index and --face-box")
        return offline.dub(video, path, output, dataclasses.replace(opts, **Voice("", None, binding).face_options),
                           progress)
    if len(voices) == 1 and not opts.speakers and split_voice(voices[0])[1] is None and \
            (opts.face_index is not None or opts.face_box is not None):  # one voice with --mix: its face as given
        box = ",".join(f"{float(v):g}" for v in opts.face_box) if opts.face_box is not None else None
        voices = [f"{voices[0]}@{box if box is not None else opts.face_index}"]
        opts = dataclasses.replace(opts, face_index=None, face_box=None)
    return dub_conversation(video, voices, output, opts, progress)


def _check_options(opts: DubOptions, n_inputs: int) -> None:
    opts.validate()
    several = "with several voices" if not opts.speakers else "with --speakers"
    if opts.speakers and n_inputs != 1:
        raise ParameterError("--speakers MAP.rttm takes one mixed AUDIO track; bind the map's labels with "
                             "--speaker-face LABEL=N")
    if opts.face_index is not None or opts.face_box is not None or opts.speaker != "largest":
        raise ParameterError(f"{several}, bind each voice to its face (voice.wav@N or voice.wav@x,y,w,h; "
                             "--speaker-face LABEL=N) instead of --face-index, --face-box or --speaker")
    unsupported = [flag for flag, on in (("--transcript", opts.transcript), ("--alignment", opts.alignment),
                                         ("--save-alignment", opts.save_alignment), ("--profile", opts.profile),
                                         ("--resume", opts.resume), ("pieces", opts.pieces),
                                         ("speech_track", opts.speech_track is not None),
                                         (f"--region {opts.region}", opts.region not in ("lips", "lower")),
                                         (f"--emotion {opts.emotion}", opts.emotion != "neutral")) if on]
    if unsupported:
        raise ParameterError(f"{', '.join(unsupported)} cannot be used {several} yet; dub one voice at a time "
                             "for them")


def _voices(audio: list, opts: DubOptions) -> tuple[list[Voice], list[Path], object]:
    """The voices (16 kHz samples and bindings), the input files (for the output check), and the output's sound: an
    (array, rate) mix of the voices, or a file (--mix, or the mixed track of --speakers)."""
    if opts.speakers:
        track = Path(audio[0])
        paths = [track, Path(opts.speakers)]
        _exist(paths + ([Path(opts.mix)] if opts.mix else []))
        turns = rttm.read_rttm(opts.speakers)
        bound = speaker_faces(opts.speaker_face)
        missing = [label for label in rttm.labels(turns) if label not in bound]
        if missing:
            raise InputError(f"{opts.speakers} names speaker(s) {', '.join(missing)} that no --speaker-face binds; "
                             f"add --speaker-face {missing[0]}=N (N: the face's index, 0 = the largest)")
        unknown = [label for label in bound if label not in rttm.labels(turns)]
        if unknown:
            raise InputError(f"--speaker-face names {', '.join(unknown)}, which {opts.speakers} does not have "
                             f"(its labels: {', '.join(rttm.labels(turns))})")
        mixed = media.load_audio(track, SR)[0]
        voices = [Voice(f"speaker {label}", rttm.cut_for(mixed, SR, turns, label), bound[label])
                  for label in rttm.labels(turns)]
        sound = Path(opts.mix) if opts.mix else track
        return voices, paths + ([Path(opts.mix)] if opts.mix else []), sound
    parsed = [split_voice(v) for v in audio]
    paths = [Path(p) for p, _ in parsed]
    _exist(paths + ([Path(opts.mix)] if opts.mix else []))
    unbound = [str(p) for p, b in parsed if b is None]
    if len(parsed) > 1 and unbound:
        raise ParameterError(f"with several voices, bind each to its face: {unbound[0]}@N (N: the face's index, 0 = "
                             f"the largest) or {unbound[0]}@x,y,w,h")
    voices = [Voice(str(p), media.load_audio(p, SR)[0], b) for p, b in parsed]
    for v in voices:
        if len(v.samples) < 160:
            raise InputError(f"{v.name} holds no audio (or less than 10 ms); pass a file with speech")
    if opts.mix:
        return voices, paths + [Path(opts.mix)], Path(opts.mix)
    mixed, gain = mix([media.load_audio(p, media.AAC_SR)[0] for p in paths])
    if gain < 1.0:
        log.info("the voices overlap loudly: the mix is scaled by %.2f (%.1f dB) so it does not clip", gain,
                 20 * np.log10(gain))
    return voices, paths, (mixed, media.AAC_SR, gain)


def _exist(paths: list[Path]) -> None:
    for p in paths:
        if not p.is_file():
            raise InputError(f"file not found: {p}")


def _check_bindings(voices: list[Voice], info) -> None:
    """Two voices bound to one face (the same index, or overlapping boxes), or a box outside the frame."""
    for a, va in enumerate(voices):
        frame = offline.frame_missed_by(va.binding, info) if isinstance(va.binding, tuple) else None
        if frame:
            x, y, w, h = va.binding
            raise InputError(f"{va.name} is bound to the box {x:g},{y:g},{w:g},{h:g}, outside the {frame} frame; "
                             "give x,y,w,h in pixels of the displayed (upright) frame")
        for vb in voices[a + 1:]:
            same = va.binding == vb.binding
            if isinstance(va.binding, tuple) and isinstance(vb.binding, tuple):
                same = iou(np.array(va.binding), np.array(vb.binding)) > 0
            if same:
                raise InputError(f"{va.name} and {vb.name} are bound to overlapping faces ({va.face_text}, "
                                 f"{vb.face_text}); bind each voice to a face of its own")


def _scaled(voice: Voice, info) -> Voice:
    """A box binding is given in pixels of the photo as stored; a photo read smaller is tracked at its output size."""
    if not isinstance(voice.binding, tuple) or info.source_size is None:
        return voice
    k = info.width / info.source_size[0]
    return dataclasses.replace(voice, binding=tuple(float(v) * k for v in voice.binding))


def _track(video: Path, info, opts: DubOptions, voice: Voice, progress) -> face.FaceTrack:
    try:
        track = load_track(video, info, dataclasses.replace(opts, **voice.face_options), progress)
    except ParameterError as exc:  # face choice: no such face
        raise InputError(f"{voice.name} is bound to {voice.face_text}, which is not there: {exc}") from None
    if not track.valid.any():
        raise InputError(f"{voice.name} is bound to {voice.face_text}, but no face was found in {video}")
    return track


def _guard_identities(video: Path, info, voices: list[Voice], tracks: list) -> tuple[list, list[dict]]:
    """Frames where a face may be someone else (tracks overlapping, a run that looks like another person) are left
    as filmed: they become invalid in that face's track; each is warned about."""
    for a in range(len(tracks)):
        for b in range(a + 1, len(tracks)):
            if same_face(tracks[a], tracks[b]):
                raise InputError(f"{voices[a].name} ({voices[a].face_text}) and {voices[b].name} "
                                 f"({voices[b].face_text}) are bound to the same face; bind each voice to a face "
                                 "of its own (see the face order in `lipdub dub --help`)")
    crossing = overlaps(tracks)
    looks, measured = appearance_doubts(tracks, media.iter_frames(video, scaled_to=info.scaled_to), info.fps,
                                        crossing)
    guarded, notes = [], []
    for v, t, c, d, m in zip(voices, tracks, crossing, looks, measured):
        doubt = (c | d) & t.valid
        if doubt.any():
            log.warning("%s: %d frame(s) of %s left as filmed: %s (first at %.2f s)", v.name, int(doubt.sum()),
                        v.face_text, "faces overlap" if c.any() and not d.any() else
                        "it may be someone else there" if not c.any() else "faces overlap or look different",
                        float(np.flatnonzero(doubt)[0] / info.fps))
            t = face.FaceTrack(t.times, t.landmarks, t.valid & ~doubt, t.width, t.height, meta=t.meta)
        guarded.append(t)
        notes.append({"overlap_frames": int(c.sum()), "doubtful_frames": int(d.sum()), **m})
    return guarded, notes


def dub_conversation(video, audio: list, output, opts: DubOptions, progress: Progress | None = None) -> DubReport:
    """Several voices, each driving the face it is bound to (see the module docstring)."""
    _check_options(opts, len(audio))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    video = Path(video)
    _exist([video])
    voices, inputs, sound = _voices(audio, opts)
    output = media.check_output_path(output, [video, *inputs])
    info = media.probe_video(video, opts.max_size)
    voices = [_scaled(v, info) for v in voices]
    duration = max(len(v.samples) for v in voices) / SR
    if opts.length == "video" and duration > (info.n_frames + 0.5) / info.fps:
        longest = max(voices, key=lambda v: len(v.samples))
        raise InputError(f"{longest.name} lasts {duration:.2f} s but the video {info.n_frames / info.fps:.2f} s: "
                         "--length video would cut it off; trim the voice or use --length audio / pad / loop")
    _check_bindings(voices, info)
    timings["load"] = time.perf_counter() - t0
    t = time.perf_counter()
    tracks = [_track(video, info, opts, v, progress) for v in voices]
    tracks, notes = _guard_identities(video, info, voices, tracks)
    timings["track"] = time.perf_counter() - t
    t = time.perf_counter()
    analyses = [speech.analyse(v.samples, SR, language=opts.language) for v in voices]
    timings["speech"] = time.perf_counter() - t
    t = time.perf_counter()
    fit = None
    if opts.length == "fit":  # the phrases of all the voices together against the original's
        fit = fit_plan(video, info, tracks[0], mix([v.samples for v in voices])[0], duration)
    faces, schedule = [], fit.schedule if fit is not None else None
    for v, track, analysis in zip(voices, tracks, analyses):
        if not track.valid.any():
            log.warning("%s: %s is in doubt on every frame; it is left as filmed", v.name, v.face_text)
            faces.append(None)
            continue
        face_opts = dataclasses.replace(opts, **v.face_options)
        schedule, mouth, teeth, _ = offline._plan_motion(analysis, track, info, duration, face_opts, None, schedule)
        own = own_renderer(video, info, track, face_opts, progress)
        renderer, _, plan = offline._plan_rendering(video, None, info, track, analysis, schedule, mouth, teeth,
                                                    face_opts, None, own, v.samples)
        faces.append((renderer, plan))
    if schedule is None:
        schedule = media.output_schedule(len(tracks[0]), info.fps, duration,
                                         "pingpong" if opts.length == "audio" else opts.length)
    timings["plan"] = time.perf_counter() - t
    t = time.perf_counter()
    per_face = [0] * len(faces)

    def render_one(k: int, j: int, frame) -> tuple:
        drawn = False
        for n, f in enumerate(faces):
            if f is not None:
                frame, on = f[0].frame_planar(k, j, frame, f[1])
                per_face[n] += on
                drawn |= on
        return frame, drawn

    audio_out, audio_sr, gain = (sound if isinstance(sound, tuple) else (sound, SR, None))
    shown = fit.shown if fit is not None else schedule  # --length fit: held frames blended with the next
    with offline.dub_writer(output, info, opts, audio_out, audio_sr) as writer, \
            BackgroundWriter(writer, digest=opts.frames_sha256) as sink, \
            frame_reader(video, info, shown, planar=True) as reader:
        rendered = render_frames(range(len(schedule)), shown, reader, render_one, sink, progress,
                                 last_reads(shown))
    timings["render"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    report = DubReport(output, len(schedule), info.fps, len(schedule) / info.fps, rendered,
                       "+".join(sorted({a.method for a in analyses})), timings, "video", sink.digest)
    report.voices = [{"voice": v.name, "face": v.face_text, "frames_rendered": per_face[n], **notes[n]}
                     for n, v in enumerate(voices)]
    report.mix_gain = gain
    report.retiming = plan_report(fit)
    return report
