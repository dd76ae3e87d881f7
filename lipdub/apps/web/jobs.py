"""The web app's jobs, without any web framework: safe uploads, one folder and one process per job.

Safety rules (the browser is not trusted):
- an upload is only ever read from the app's own upload folder (where the web framework stored it); any other path
  a client names is refused, whatever it says;
- it is copied into the job's folder under a name made here (`video.mp4`, `audio.wav`, ...): of the client's file
  name only the suffix is used, and only when it is one lipdub reads;
- size is checked before and while copying; the content is checked with lipdub.media's restricted opener (one local
  media file, no playlists or references) in the job's own process, so a file that crashes a decoder costs only
  that job;
- text fields are passed as text (never taken as a path, unlike the CLI's `--transcript FILE`);
- the results handed back are files of the job's folder only.

The job's process is lipdub.apps.web.worker.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from lipdub.core.files import write_json
from lipdub.errors import InputError, LipdubError, ParameterError
from lipdub.options import OPTIONS, parse_binding

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".m4v", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts",
                            ".m2ts", ".wmv", ".flv", ".3gp", ".ogv"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})  # = media.IMAGE_SUFFIXES
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus", ".wma", ".aif",
                            ".aiff", ".caf"}) | VIDEO_SUFFIXES  # a video's sound works as the new speech too
PROFILE_SUFFIXES = frozenset({".lipdub"})
KINDS: dict[str, frozenset[str]] = {"video": VIDEO_SUFFIXES | IMAGE_SUFFIXES, "audio": AUDIO_SUFFIXES,
                                    "voice": AUDIO_SUFFIXES, "profile": PROFILE_SUFFIXES,
                                    "speakers": frozenset({".rttm"})}
WHAT = {"video": "video or photo", "audio": "audio file", "voice": "voice file", "profile": "actor profile",
        "speakers": "speaker map"}
MAX_VOICES = 8  # voices of one conversation
MAX_TEXT = 5000  # characters of a script or transcript: minutes of speech already
MAX_PIXELS = 7680 * 4320  # 8K: larger frames would exhaust memory before anything useful happens
KEEP_JOBS = 20  # finished job folders kept (the oldest go first)
OUTPUT = "dubbed.mp4"
# The dub options the form sets (the others keep their defaults; the profile and the speech analysis are the job's).
FORM_OPTIONS = ("transcript", "language", "length", "strength", "region", "emotion", "emotion_strength",
                "motion_model")
STAGES = {"check": "Checking the uploads", "preview": "Preparing the original for the player",
          "speech": "Synthesising the script", "track": "Tracking the face", "atlas": "Collecting mouths",
          "render": "Rendering", "plot": "Plotting the mouth curves"}



@dataclass
class Request:
    """What the form sends. Paths are the web framework's upload paths (checked before use), the rest is text."""

    video: str | None = None
    audio: str | None = None
    script: str = ""
    voice: str = ""
    transcript: str = ""
    language: str = ""
    region: str = OPTIONS["region"].default
    emotion: str = OPTIONS["emotion"].default
    emotion_strength: float = OPTIONS["emotion_strength"].default
    strength: float = OPTIONS["strength"].default
    length: str = OPTIONS["length"].default
    motion_model: str = OPTIONS["motion_model"].default
    profile: str | None = None
    voices: list = field(default_factory=list)  # a conversation: more voices besides `audio`
    faces: str = ""  # a conversation: the face of `audio` and of each voice, e.g. "1 0" (index or x,y,w,h)
    speakers: str | None = None  # a conversation in one mixed `audio`: its RTTM speaker map
    speaker_faces: str = ""  # with `speakers`: LABEL=N bindings, space separated


@dataclass
class Progress:
    stage: str
    done: int
    total: int

    @property
    def label(self) -> str:
        what = STAGES.get(self.stage, self.stage)
        return f"{what}: {self.done}/{self.total}" if self.total else what


@dataclass
class Preview:
    """The original, ready for the browser's player (a video) or shown as it is (a photo)."""

    path: Path
    is_image: bool


@dataclass
class Result:
    ok: bool
    message: str
    job_dir: Path | None = None
    output: Path | None = None  # the dub, to download
    player: Path | None = None  # the dub for the browser's player (a 4:2:0 copy when the dub is 4:4:4)
    original: Path | None = None
    original_is_image: bool = False
    plot: Path | None = None
    report: dict = field(default_factory=dict)


Event = Progress | Preview | Result


class Studio:
    """The app's folders: `uploads/` (where the web framework stores uploads) and `jobs/` (one folder per job)."""

    def __init__(self, root: str | Path | None = None, max_upload_mb: float = 500.0):
        if not max_upload_mb or not 0 < float(max_upload_mb) <= 100_000:
            raise ParameterError(f"--max-upload-mb must be between 0 and 100000, got {max_upload_mb!r}")
        self.owned = root is None
        self.root = Path(tempfile.mkdtemp(prefix="lipdub-app-") if root is None else root).resolve()
        self.max_upload_bytes = int(float(max_upload_mb) * 1024 * 1024)
        self.uploads = self.root / "uploads"
        self.jobs = self.root / "jobs"
        for d in (self.root, self.uploads, self.jobs):
            try:
                d.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise ParameterError(f"cannot use {d} as the app's working folder ({exc.strerror})") from None

    def close(self) -> None:
        """Remove the working folder if the app made it (a --work-dir the user named is left alone)."""
        if self.owned:
            shutil.rmtree(self.root, ignore_errors=True)

    def new_job(self) -> Path:
        self._prune()
        return Path(tempfile.mkdtemp(prefix="job-", dir=self.jobs))  # 0700, a random unguessable name

    def _prune(self) -> None:
        try:
            old = sorted((p for p in self.jobs.iterdir() if p.is_dir() and not p.is_symlink()),
                         key=lambda p: p.stat().st_mtime)
        except OSError:
            return
        for p in old[:max(0, len(old) - KEEP_JOBS + 1)]:
            shutil.rmtree(p, ignore_errors=True)

    def accept(self, client_path, kind: str, job_dir: Path, name: str | None = None) -> Path:
        """Copy one upload into `job_dir` as `KIND.SUFFIX` (or NAME.SUFFIX) after checking where it is, its size and
        its suffix.
        Raises InputError with a message for the user. The content is checked later, in the job's process."""
        what = WHAT[kind]
        if not isinstance(client_path, (str, os.PathLike)) or not str(client_path):
            raise InputError(f"the {what} upload is missing; upload the file again")
        given = Path(os.path.abspath(client_path))  # lexical: `uploads/../../etc/x` leaves the folder here
        real = Path(os.path.realpath(given))  # and a symlink in the folder leaves it here
        if not (given.is_relative_to(self.uploads) and real.is_relative_to(self.uploads)):
            raise InputError(f"the {what} was not uploaded to this app; upload the file itself")
        suffix = real.suffix.lower()
        if suffix not in KINDS[kind]:
            raise InputError(f"a {what} must be one of {', '.join(sorted(KINDS[kind]))}; "
                             f"got {'a ' + suffix + ' file' if suffix else 'a file without a suffix'}")
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            raise InputError(f"the {what} upload cannot be read; upload it again") from None
        target = job_dir / f"{name or kind}{suffix}"
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise InputError(f"the {what} upload is not a file; upload the file itself")
            self._check_size(st.st_size, what)
            with os.fdopen(fd, "rb", closefd=False) as src, open(target, "xb") as dst:
                copied = 0
                while chunk := src.read(1 << 20):
                    copied += len(chunk)
                    self._check_size(copied, what)  # a file that grows while being copied
                    dst.write(chunk)
            if copied == 0:
                raise InputError(f"the {what} upload is empty; upload the file again")
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
        return target

    def _check_size(self, size: int, what: str) -> None:
        if size > self.max_upload_bytes:
            shown = math.ceil(size / 2**20 * 10) / 10  # rounded up: never "1.0 MB, over the limit of 1 MB"
            raise InputError(f"the {what} is too large: {shown:g} MB, over this app's limit of "
                             f"{self.max_upload_bytes / 2**20:g} MB per file")


def inside(job_dir: Path, path) -> Path | None:
    """`path` if it is a file inside `job_dir` (resolved), else None: only the job's own files are handed out."""
    if path is None:
        return None
    p = Path(os.path.realpath(path))
    return p if p.is_relative_to(Path(os.path.realpath(job_dir))) and p.is_file() else None


def _spec(studio: Studio, req: Request, job_dir: Path) -> dict:
    """Validate the form and take the uploads into the job folder; the job's process gets this dict."""
    script, transcript = (req.script or "").strip(), (req.transcript or "").strip()
    for name, text in (("script", script), ("transcript", transcript)):
        if len(text) > MAX_TEXT:
            raise ParameterError(f"the {name} is {len(text)} characters long; this app takes at most {MAX_TEXT}")
    if not req.video:
        raise InputError("upload a video or a photo of the speaker")
    if req.audio and script:
        raise ParameterError("give either an audio file or a script to speak, not both")
    if not req.audio and not script:
        raise InputError("upload the new speech (an audio file) or type a script for the face to say")
    if script and transcript:
        raise ParameterError("a script is its own transcript: leave the transcript empty")
    options = {"transcript": transcript or None, "language": (req.language or "").strip() or None}
    options.update({name: OPTIONS[name].type(getattr(req, name)) for name in FORM_OPTIONS if name not in options})
    # DubOptions.validate checks the values in the job's process (the server need not load the pipeline)
    spec = {"script": script, "voice": (req.voice or "").strip() or None, "options": options,
            "video": studio.accept(req.video, "video", job_dir).name}
    if req.audio:
        spec["audio"] = studio.accept(req.audio, "audio", job_dir).name
    if req.profile:
        spec["profile"] = studio.accept(req.profile, "profile", job_dir).name
    _conversation(studio, req, job_dir, spec)
    return spec


def _conversation(studio: Studio, req: Request, job_dir: Path, spec: dict) -> None:
    """Several voices, each with its face; or one mixed track with a speaker map and LABEL=N bindings."""
    extra = [v for v in (req.voices or []) if v]
    faces = (req.faces or "").split()
    if not (extra or faces or req.speakers or (req.speaker_faces or "").strip()):
        return
    if not req.audio:
        raise InputError("a conversation needs the first voice (or the mixed track) as the new speech")
    if req.speakers or (req.speaker_faces or "").strip():
        if extra or faces:
            raise ParameterError("give either several voices with their faces or one mixed track with a speaker "
                                 "map, not both")
        if not req.speakers:
            raise InputError("upload the speaker map (.rttm) that the LABEL=N bindings refer to")
        spec["speakers"] = studio.accept(req.speakers, "speakers", job_dir).name
        spec["options"]["speaker_face"] = (req.speaker_faces or "").split()
        return
    if len(extra) + 1 > MAX_VOICES:
        raise ParameterError(f"this app dubs at most {MAX_VOICES} voices at once")
    if len(faces) != len(extra) + 1:
        raise ParameterError(f"give one face per voice ({len(extra) + 1} voices, {len(faces)} faces): its index "
                             "(0 = the largest face) or x,y,w,h, in the order of the voices")
    for f in faces:
        parse_binding(f)
    names = [spec["audio"]] + [studio.accept(v, "voice", job_dir, f"voice{n + 2}").name for n, v in enumerate(extra)]
    spec["voices"] = [f"{name}@{f}" for name, f in zip(names, faces)]


def run(studio: Studio, req: Request) -> Iterator[Event]:
    """One dub from the form: yields Progress and a Preview as the job goes on, and always ends with a Result
    (ok False with a message for the user when anything is refused or fails)."""
    job_dir = studio.new_job()
    t0 = time.perf_counter()
    try:
        spec = _spec(studio, req, job_dir)
    except LipdubError as exc:
        yield Result(False, str(exc), job_dir)
        return
    except (TypeError, ValueError) as exc:  # a number field that is not one
        yield Result(False, f"a setting has a value lipdub cannot use ({exc})", job_dir)
        return
    write_json(job_dir / "spec.json", spec)
    outcome: dict | None = None
    for kind, payload in _in_child(job_dir):
        if kind == "progress":
            yield Progress(payload["stage"], int(payload["done"]), int(payload["total"]))
        elif kind == "preview":
            path = inside(job_dir, job_dir / str(payload["path"]))
            if path is not None:
                yield Preview(path, bool(payload["is_image"]))
        else:
            outcome = payload
    yield _result(job_dir, outcome, time.perf_counter() - t0)


def _result(job_dir: Path, outcome: dict | None, seconds: float) -> Result:
    if outcome is None:
        return Result(False, "the dub stopped without a result", job_dir)
    if not outcome.get("ok"):
        return Result(False, str(outcome.get("error") or "the dub failed"), job_dir)
    files = {k: inside(job_dir, job_dir / str(v)) for k, v in outcome.get("files", {}).items()}
    if files.get("output") is None:
        return Result(False, "the dub wrote no output", job_dir)
    report = dict(outcome["report"], job_seconds=round(seconds, 2))
    write_json(job_dir / "report.json", report)
    return Result(True, f"Dubbed {report['frames']} frames ({report['duration']:.2f} s) in {seconds:.1f} s",
                  job_dir, files["output"], files.get("player") or files["output"], files.get("original"),
                  bool(outcome.get("original_is_image")), files.get("plot"), report)


def _in_child(job_dir: Path) -> Iterator[tuple[str, dict]]:
    """The job in its own process: a decoder crash or the OOM killer ends the job, not the server. Events arrive as
    JSON lines on the child's stdout; its stderr goes to JOB_DIR/worker.log. `-P`: the job folder (its working
    directory) is never on the module path."""
    with open(job_dir / "worker.log", "wb") as errlog:
        proc = subprocess.Popen([sys.executable, "-P", "-m", "lipdub.apps.web.worker", str(job_dir)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=errlog, cwd=job_dir, text=True, encoding="utf-8")
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                try:
                    kind, payload = json.loads(line)
                except (ValueError, TypeError):
                    continue
                if kind in ("progress", "preview"):
                    yield kind, payload
            code = proc.wait()
        finally:  # the browser went away (the generator was closed): stop the job's process too
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    outcome = read_json(job_dir / "result.json")
    if outcome is None:
        why = f"signal {-code}" if code < 0 else f"exit code {code}"
        outcome = {"ok": False, "error": f"the dub's process ended without a result ({why}); the input may be "
                                         "damaged or too large for this machine's memory"}
    yield "result", outcome


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
