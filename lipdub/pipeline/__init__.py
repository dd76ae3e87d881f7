"""The dubbing pipeline: media → face → speech → motion → render → compose → media.

Each stage's result is a plain value; tracks and speech analyses are cached as files a user can reuse.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from lipdub.core.memory import log_memory, trim_heap
from lipdub.media.background import BackgroundWriter
from lipdub.render.styler import FaceStyler

from lipdub.render import compose
from lipdub.motion import expression
from lipdub import face, media, motion, render, speech
from lipdub.pipeline.speaker import mouth_from_sound
from lipdub.errors import InputError, OutputError, ParameterError
from lipdub.options import DubOptions

log = logging.getLogger("lipdub")


@dataclass
class DubReport:
    output: Path
    frames: int
    fps: float
    duration: float
    faces_rendered: int
    speech_method: str
    timings: dict = field(default_factory=dict)
    appearance: str = "video"  # where the mouths came from: "video" (the clip itself) or "profile:NAME"
    frames_sha256: str = ""  # of the rendered frames before encoding: equal wherever and whenever the dub runs
    wanted_opening: np.ndarray | None = None  # (frames,) inner-lip gap asked for, in eye-corner distances
    head: np.ndarray | None = None  # (frames, 3) head pitch/yaw/roll added (degrees), with --region head
    blink: np.ndarray | None = None  # (frames,) eye closure added (0..1), for photos with --region face/head


Progress = Callable[[str, int, int], None]  # (stage, done, total)


TRIM_EVERY = 100  # rendered frames between heap trims


def _render_frames(ks, schedule, reader, render_one, sink, progress) -> int:
    """Render output frames `ks` (source frame schedule[k] each) into `sink`; returns how many had a face."""
    faces = 0
    for k in ks:
        j = int(schedule[k])
        frame, rendered = render_one(k, j, reader.get(j))
        faces += rendered
        sink.write(frame)
        if k % TRIM_EVERY == TRIM_EVERY - 1:
            trim_heap()
        if progress:
            progress("render", k + 1, len(schedule))
    return faces


# The clip's own mouth atlas: by Atlas.bytes_per_entry's estimate (real JPEGs come out ~25 % smaller). 200 MB hold
# ~2,300 frames of a face at the atlas's largest scale (90 s at 25 fps, every frame); longer clips give every 2nd,
# 3rd... frame. Was 300 MB: lowered so a 1080p hour renders within 1 GB beside x264's ~180 MB.
OWN_ATLAS_BYTES = 200 << 20


SPEECH_PIECE = 180.0  # s: audio longer than SPEECH_PIECE + SPEECH_SLACK is analysed in pieces of about this length,
SPEECH_SLACK = 60.0  # cut at the quietest moment of the last SPEECH_SLACK s of each piece


def _count_samples(audio: Path) -> int:
    """Length of the audio at 16 kHz, streamed (an hour of samples is never held)."""
    blocks = media.audio_blocks(audio, 16000)
    next(blocks)
    return sum(b.shape[1] for b in blocks)


def _speech_in_pieces(audio: Path, language: str | None) -> "speech.SpeechTrack":
    """speech.analyse on pieces of about SPEECH_PIECE s, cut in pauses, joined into one track, so the analysis's
    memory stays that of one piece however long the audio is. Pieces are whole 10 ms frames long, so the frames line
    up with those of a single analysis; levels (loudness, jaw, mel) are normalised per piece. Needs no transcript
    (a transcript cannot be split by time here: audio with one is analysed whole)."""
    sr, hop = 16000, 160
    piece, slack = int(SPEECH_PIECE * sr), int(SPEECH_SLACK * sr)
    blocks = media.audio_blocks(audio, sr)
    next(blocks)
    tracks: list = []
    held: list[np.ndarray] = []
    n_held = 0

    def cut_and_analyse(final: bool) -> None:
        nonlocal held, n_held
        x = np.concatenate(held) if len(held) > 1 else held[0]
        cut = len(x)
        if not final:  # the quietest 300 ms (centre) among the frames in [piece - slack, piece)
            lo = (piece - slack) // hop
            energy = (x[: (piece // hop) * hop].reshape(-1, hop).astype(np.float64) ** 2).sum(1)
            smooth = np.convolve(energy, np.ones(30), mode="same")
            cut = (lo + int(np.argmin(smooth[lo:]))) * hop
        tracks.append(speech.analyse(x[:cut], sr, language=language))
        held, n_held = ([x[cut:]], len(x) - cut) if cut < len(x) else ([], 0)
        del x

    for b in blocks:
        held.append(b[0])
        n_held += b.shape[1]
        if n_held >= piece + slack:
            cut_and_analyse(final=False)
    if n_held:
        cut_and_analyse(final=True)
    return _join_speech(tracks)


def _join_speech(tracks: list) -> "speech.SpeechTrack":
    """One SpeechTrack from consecutive pieces' tracks: frame-wise arrays joined, phones shifted and joined (a piece
    without phones becomes silence), the weakest phone method of the pieces that have phones."""
    import dataclasses

    first = tracks[0]
    offsets = np.cumsum([0.0] + [t.duration for t in tracks[:-1]])  # whole frames each: t.duration = n_frames * hop
    values = {}
    for f in dataclasses.fields(first):
        vals = [getattr(t, f.name) for t in tracks]
        if f.name == "duration":
            values[f.name] = float(offsets[-1] + tracks[-1].duration)
        elif f.name == "phones":
            joined: list = []
            with_phones = any(vals)
            for t, off in zip(tracks, offsets):
                phones = t.phones or ([speech.Phone("SIL", 0.0, t.duration)] if with_phones else [])
                for p in phones:
                    q = dataclasses.replace(p, start=p.start + off, end=p.end + off)
                    if joined and q.label == "SIL" and joined[-1].label == "SIL":
                        joined[-1] = dataclasses.replace(joined[-1], end=q.end)
                    else:
                        joined.append(q)
            values[f.name] = joined
        elif f.name == "method":
            used = [t.method for t in tracks if t.phones]
            rank = {m: i for i, m in enumerate(speech.METHODS)}
            values[f.name] = max(used, key=lambda m: rank.get(m, len(rank))) if used else "acoustic-only"
        elif all(isinstance(v, np.ndarray) and v.shape[:1] == (t.n_frames,) for v, t in zip(vals, tracks)):
            values[f.name] = np.concatenate(vals)
        else:
            values[f.name] = vals[0]
    return type(first)(**values)


def _frames(path: Path):
    return lambda: media.iter_frames(path)


def _cache_file(kind: str, video: Path, opts: DubOptions, **more) -> Path:
    """Where the cache keeps `kind` ("tracks", "atlases") for this video and face choice."""
    keyed = {"face_index": opts.face_index, "face_box": opts.face_box, **more}
    if opts.speaker != "largest":  # the default keeps the cache keys it always had
        keyed["speaker"] = opts.speaker
    return face.cache_dir() / kind / f"{face.cache_key(video, **keyed)}.npz"


def _track_fingerprint(track: face.FaceTrack) -> str:
    import hashlib

    h = hashlib.sha256(np.ascontiguousarray(track.valid).data)
    h.update(face.take_rows(track.landmarks, np.arange(0, len(track), 97)).data)  # a sample: an hour's is 500 MB
    return h.hexdigest()


ATLAS_CACHE_VERSION = 1


def own_renderer(video: Path, info: media.VideoInfo, track: face.FaceTrack, opts: DubOptions,
                 progress: Progress | None) -> render.Renderer:
    """The clip as its own appearance source, its atlas from the cache when this video was prepared before with
    the same face track (building it decodes the whole video again)."""
    cache_file = _cache_file("atlases", video, opts, atlas_bytes=OWN_ATLAS_BYTES, version=ATLAS_CACHE_VERSION)
    fingerprint = _track_fingerprint(track) if opts.cache else ""
    atlas = load_cached_atlas(cache_file, fingerprint) if opts.cache else None
    if atlas is not None:
        log.info("mouth atlas from cache %s", cache_file)
        return render.Renderer(atlas, track, face.estimate_pose(track, atlas.canonical))
    renderer = render.Renderer.for_video(video, info, track, progress, budget_bytes=OWN_ATLAS_BYTES)
    if opts.cache:
        save_cached_atlas(cache_file, renderer.atlas, {"track_fingerprint": np.array(fingerprint)})
    return renderer


def load_cached_atlas(cache_file: Path, fingerprint: str | None = None) -> render.Atlas | None:
    """The atlas kept in `cache_file`; None when there is none, it is damaged or stale, or (given `fingerprint`) it
    was cut along another face track: the caller builds it again."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as z:
            if fingerprint is None or str(z["track_fingerprint"]) == fingerprint:
                return render.Atlas.from_arrays(z)
    except Exception:  # stale or damaged cache
        pass
    return None


def save_cached_atlas(cache_file: Path, atlas: render.Atlas, extra: dict | None = None) -> None:
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        atlas.save(cache_file, extra)
    except OSError as exc:  # a read-only or full cache must not stop the dub
        log.warning("could not cache the mouth atlas: %s", exc)


def load_track(video: Path, info: media.VideoInfo, opts: DubOptions, progress: Progress | None) -> face.FaceTrack:
    cache_file = _cache_file("tracks", video, opts)
    if opts.cache and cache_file.is_file():
        try:
            track = face.FaceTrack.load(cache_file)
            log.info("face track from cache %s", cache_file)
            return track
        except Exception:  # stale or damaged cache: track again
            pass
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress:
            progress("track", done[0], info.n_frames)

    own_audio = None
    if opts.speaker == "auto" and info.has_audio and not info.is_image:
        try:
            own_audio = media.video_audio(video, 16000)
        except InputError as exc:  # a damaged sound track only costs the automatic choice, not the dub
            log.warning("--speaker auto: cannot read the sound of %s (%s)", video, exc)
    track = face.track_frames(_frames(video), info.width, info.height, info.n_frames, info.fps,
                              face_index=opts.face_index, face_box_hint=opts.face_box, progress=tick,
                              frames_from=lambda start: media.iter_frames(video, start), workers=2,
                              speaker=opts.speaker, audio=own_audio,
                              mouth_from_sound=mouth_from_sound)
    if opts.cache:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            track.save(cache_file)
        except OSError as exc:  # a read-only cache must not stop the dub
            log.warning("could not cache the face track: %s", exc)
    return track


def dub(video, audio, output, options: DubOptions | None = None, progress: Progress | None = None) -> DubReport:
    opts = options or DubOptions()
    opts.validate()
    video, audio = Path(video), Path(audio)
    for p, what in ((video, "video"), (audio, "audio")):
        if not p.exists():
            raise InputError(f"{what} file not found: {p}")
    output = media.check_output_path(output, [video, audio])
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    info = media.probe_video(video)
    if opts.face_box is not None:
        x, y, w, h = (float(v) for v in opts.face_box)
        if x >= info.width or y >= info.height or x + w <= 0 or y + h <= 0:
            raise ParameterError(f"--face-box {x:g},{y:g},{w:g},{h:g} lies outside the {info.width}x{info.height} "
                                 "frame; give x,y,w,h in pixels of the displayed (upright) frame")
    n16 = _count_samples(audio)
    if n16 < 160:
        raise InputError(f"{audio} holds no audio (or less than 10 ms); pass a file with speech")
    duration = n16 / 16000.0
    # short audio (and any with a transcript) is analysed whole; longer audio streams through the analysis in pieces
    in_pieces = duration > SPEECH_PIECE + SPEECH_SLACK and not opts.transcript
    samples16 = None if in_pieces else media.load_audio(audio, 16000)[0]
    timings["load"] = time.perf_counter() - t0
    log_memory("load")

    # speech analysis runs beside face tracking: both spend their time in native code that releases the GIL
    from concurrent.futures import ThreadPoolExecutor

    saved = opts.speech_track
    if opts.alignment:  # checked before any tracking: a wrong file must fail fast
        saved = speech.SpeechTrack.load(opts.alignment)
    if saved is not None and abs(saved.duration - duration) > 0.1:
        what = f"--alignment {opts.alignment}" if opts.alignment else "the speech track"
        raise ParameterError(f"{what} describes {saved.duration:.2f} s of audio but {audio} lasts {duration:.2f} s; "
                             "save the alignment from this audio")
    actor = None
    if opts.profile:  # loaded before any tracking: a wrong file must fail fast
        from lipdub import profile as profiles

        actor = profiles.load(opts.profile)
    if opts.save_alignment and not Path(opts.save_alignment).resolve().parent.is_dir():
        raise OutputError(f"cannot save the alignment: folder {Path(opts.save_alignment).parent} does not exist")

    def analyse_speech():
        t_s = time.perf_counter()
        if saved is not None:
            result = saved
        elif in_pieces:
            result = _speech_in_pieces(audio, opts.language)
        else:
            result = speech.analyse(samples16, 16000, transcript=opts.transcript, language=opts.language)
        if opts.save_alignment:
            _save_atomically(result, Path(opts.save_alignment))
        timings["speech"] = time.perf_counter() - t_s
        return result

    with ThreadPoolExecutor(1, thread_name_prefix="lipdub-speech") as pool:
        speech_future = pool.submit(analyse_speech)
        t = time.perf_counter()
        track = load_track(video, info, opts, progress)
        timings["track"] = time.perf_counter() - t
        log_memory("track")
        # the clip's own mouth atlas is built while the speech analysis may still run
        t = time.perf_counter()
        own = None
        if actor is None and track.valid.any():
            own = own_renderer(video, info, track, opts, progress)
        timings["atlas"] = time.perf_counter() - t
        log_memory("atlas")
        speech_track = speech_future.result()
        if in_pieces:  # a long dub: the speech models (ASR, aligner, VAD: ~50 MB) are not needed again
            speech.release_models()
        log_memory("speech")

    schedule = media.output_schedule(len(track), info.fps, duration, "pingpong" if opts.length == "audio"
                                     else opts.length)
    n_out = len(schedule)
    out_times = np.arange(n_out) / info.fps
    mouth = motion.mouth_track(speech_track, out_times, 1.0 if actor is not None else opts.strength)
    teeth = None
    if actor is not None:  # this actor's articulation, then the requested strength on top
        mouth = actor.articulation.apply(mouth, speech_track)
        mouth = motion.MouthTrack(mouth.times, np.clip(mouth.opening * opts.strength, 0, 1.2).astype(np.float32),
                                  np.clip(mouth.width * opts.strength, -1, 1).astype(np.float32), mouth.closed)
        teeth = actor.articulation.teeth(mouth, speech_track)
    scale_o, floor_o = expression.mouth_bias(opts.emotion, opts.emotion_strength)
    if (scale_o, floor_o) != (1.0, 0.0):
        speaking = (mouth.opening > 0) & ~mouth.closed
        opened = np.where(speaking, np.maximum(mouth.opening * scale_o, floor_o), mouth.opening)
        mouth = motion.MouthTrack(mouth.times, np.clip(opened, 0, 1.2).astype(np.float32), mouth.width, mouth.closed)

    t = time.perf_counter()
    renderer = styler = None
    if track.valid.any():
        if actor is not None:
            renderer = render.Renderer(actor.atlas, track, model=actor.model,
                                       colour=compose.ColourMatcher(gain=True), region=opts.region)
        else:
            renderer = own
            renderer.region = opts.region
        if opts.region in ("face", "head") or opts.emotion != "neutral":
            if samples16 is None:  # expression motion follows the whole sound track
                samples16 = media.load_audio(audio, 16000)[0]
            styler = FaceStyler(renderer, track, schedule, speech_track, samples16, opts.region, opts.emotion,
                                opts.emotion_strength, info.is_image, info.fps)
            renderer = styler.renderer
            plan = renderer.plan(np.arange(n_out), mouth, teeth)
        else:
            plan = renderer.plan(schedule, mouth, teeth)
    else:
        log.warning("no face found in %s: writing the video unchanged with the new audio", video)
    timings["plan"] = time.perf_counter() - t
    log_memory("plan")

    t = time.perf_counter()
    faces_rendered = 0

    def render_one(k: int, j: int, frame) -> tuple:
        if styler is not None:
            return styler.frame(k, j, frame, plan)
        if renderer is not None:
            if isinstance(frame, media.PlanarFrame):
                return renderer.frame_planar(k, j, frame, plan)
            return renderer.frame(k, j, frame, plan)
        return frame, False

    # the lower face alone is drawn in YUV frames, converting only its box (see media.PlanarFrame); the styler's
    # whole-face warps take RGB frames
    planar = styler is None

    if opts.resume or opts.pieces:
        faces_rendered, digest = _render_in_pieces(video, audio, output, info, opts, schedule, render_one,
                                                   renderer, progress, planar)
    else:
        with media.VideoWriter(output, info.width, info.height, info.fps, audio=audio,
                               crf=opts.crf, preset=opts.preset, repeatable=bool(opts.repeatable)) as writer, \
                BackgroundWriter(writer) as sink, _reader(video, info, schedule, planar=planar) as reader:
            faces_rendered = _render_frames(range(n_out), schedule, reader, render_one, sink, progress)
        digest = sink.digest
    timings["render"] = time.perf_counter() - t
    log_memory("render")
    timings["total"] = time.perf_counter() - t0
    appearance = f"profile:{Path(opts.profile).name}" if actor is not None else "video"
    report = DubReport(output, n_out, info.fps, n_out / info.fps, faces_rendered, speech_track.method, timings,
                       appearance, digest)
    if renderer is not None:
        report.wanted_opening = renderer.wanted(mouth)[0].astype(np.float32)
    if styler is not None:
        report.head = styler.motion.head if styler.head else None
        report.blink = styler.motion.blink if styler.blinks and styler.warp_face else None
    return report


def _reader(video: Path, info, schedule: np.ndarray, back: int = 0, planar: bool = False) -> media.FrameReader:
    """The source frames in `schedule` order: a cache for the backward walks of a looped (pingpong) schedule, only
    the last `back` + 2 frames when the schedule only moves forward (a 1080p frame is 6 MB)."""
    forward = len(schedule) < 2 or bool((np.diff(schedule) >= 0).all())
    frame_bytes = info.width * info.height * 3
    return media.FrameReader(video, info, cache_bytes=(back + 2) * frame_bytes if forward else 256 << 20,
                             planar=planar)


WARM_UP = 8  # frames rendered (not written) before each piece, so colour smoothing enters it as it left the last


def _render_in_pieces(video: Path, audio: Path, output: Path, info, opts: DubOptions, schedule, render_one,
                      renderer, progress, planar: bool = False) -> tuple[int, str]:
    """Render the output in pieces of `opts.piece_seconds`, each encoded on its own into a folder beside the output,
    then joined with the audio. A piece already there (from a killed run of the same dub) is kept, so the run
    continues where it stopped; every piece starts from the same state either way (colour smoothing warmed up over
    the frames before it), so a resumed dub equals an uninterrupted one."""
    import hashlib
    import json
    import shutil

    work = output.parent / f".{output.name}.lipdub-parts"
    key_src = {"video": _stat_key(video), "audio": _stat_key(audio), "frames": len(schedule),
               "options": {k: v for k, v in vars(opts).items() if k not in ("resume", "cache", "save_alignment",
                                                                         "speech_track", "pieces")}}
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True, default=str).encode()).hexdigest()[:24]
    manifest = work / "manifest.json"
    if work.is_dir():
        try:
            same = json.loads(manifest.read_text())["key"] == key
        except (OSError, ValueError, KeyError):
            same = False
        if not same:  # another dub's pieces: start over
            shutil.rmtree(work, ignore_errors=True)
    work.mkdir(exist_ok=True)
    if not manifest.is_file():  # (written atomically: workers of one scale-out dub share the folder)
        _write_text_atomically(manifest, json.dumps({"key": key, "inputs": key_src}, default=str))
    n_out = len(schedule)
    per = max(1, int(round(opts.piece_seconds * info.fps)))
    pieces = [(k0, min(k0 + per, n_out)) for k0 in range(0, n_out, per)]
    mine = None
    if opts.pieces:
        i, n = (int(v) for v in opts.pieces.split("/"))
        mine = {c for c in range(len(pieces)) if c % n == i}
    faces, digests = 0, []
    # each piece warms up on the frames before it
    with _reader(video, info, schedule, back=WARM_UP, planar=planar) as reader:
        for c, (k0, k1) in enumerate(pieces):
            if mine is not None and c not in mine:
                continue
            part, meta = work / f"part{c:05d}.mp4", work / f"part{c:05d}.json"
            if part.is_file() and meta.is_file():
                try:
                    done = json.loads(meta.read_text())
                    faces += int(done["faces"])
                    digests.append(str(done["digest"]))
                    if progress:
                        progress("render", k1, n_out)
                    continue
                except (OSError, ValueError, KeyError):
                    pass  # a damaged record: render the piece again
            if renderer is not None:
                renderer.colour.reset()
                renderer.prev_j = None
            for k in range(max(0, k0 - WARM_UP), k0):
                render_one(k, int(schedule[k]), reader.get(int(schedule[k])))
            with media.VideoWriter(part, info.width, info.height, info.fps, crf=opts.crf, preset=opts.preset,
                                   segment=True) as writer, BackgroundWriter(writer) as sink:
                n_faces = _render_frames(range(k0, k1), schedule, reader, render_one, sink, progress)
            _write_text_atomically(meta, json.dumps({"faces": n_faces, "digest": sink.digest}))
            faces += n_faces
            digests.append(sink.digest)
    if mine is not None:  # a share of a scale-out dub: the final run joins
        return faces, ""
    media.join_segments([work / f"part{c:05d}.mp4" for c in range(len(pieces))], output, info.fps, audio)
    shutil.rmtree(work, ignore_errors=True)
    return faces, hashlib.sha256("".join(digests).encode()).hexdigest()


def _stat_key(path: Path) -> list:
    st = Path(path).stat()
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]


def _write_text_atomically(path: Path, text: str) -> None:
    import os

    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _save_atomically(track, path: Path) -> None:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".json", dir=path.parent)
    os.close(fd)
    try:
        track.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


