"""A batch CSV read into jobs: each row's inputs, output, dub options (a `lipdub dub` options cell, parsed with the
option registry) and the key that says whether a finished job is still current."""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from lipdub import options as dub_options
from lipdub.apps.transcript import read_transcript
from lipdub.errors import InputError, LipdubError, ParameterError
from lipdub.options import DubOptions

COLUMNS = ("video", "audio", "transcript", "options", "output", "voices")
VERSION = 1


@dataclass
class Job:
    row: int  # line of the CSV (1-based), for messages
    video: str  # absolute paths from here on: jobs travel to other processes and machines
    audio: str
    output: str
    options: str = ""  # the options cell as written
    dub: dict = field(default_factory=dict)  # DubOptions fields parsed from it (and the transcript column)
    key: str = ""  # hash of inputs and options: decides whether a finished job is still current
    error: str | None = None  # the row cannot run (bad options, missing cell): it fails without an attempt
    error_type: str = "ParameterError"
    voices: list = field(default_factory=list)  # a conversation: voice files, each with its @face binding

    @property
    def report_path(self) -> Path:
        return report_path(self.output)

    @property
    def marker_path(self) -> Path:
        out = Path(self.output)
        return out.with_name(f".{out.name}.attempts.json")


def report_path(output) -> Path:
    out = Path(output)
    return out.with_name(out.stem + ".report.json")


# ------------------------------------------------------------------------------------------------------ reading


class _OptionsParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise ParameterError(message)


def _options_parser() -> argparse.ArgumentParser:
    """The registry's command-line options, as `lipdub dub` takes them."""
    parser = _OptionsParser(prog="options", add_help=False, allow_abbrev=False)
    dub_options.add_arguments(parser)
    return parser


def _transcript(value: str, base: Path) -> str:
    """A transcript cell or --transcript value: the text itself, or a text file relative to the CSV's folder."""
    candidate = base / value
    if len(value) < 4096 and candidate.suffix.lower() in (".txt", ".lab", ".srt") and candidate.is_file():
        return read_transcript(str(candidate)) or ""
    return value


def _voices(text: str, base: Path) -> list[str]:
    """A voices cell: voice files (relative to the CSV's folder) each bound to a face, `a.wav@0 b.wav@1`, space
    separated (quote a name with spaces)."""
    try:
        tokens = shlex.split(text or "")
    except ValueError as exc:
        raise ParameterError(f"cannot split the voices {text!r} ({exc}); check the quotes") from None
    out = []
    for token in tokens:
        path, binding = dub_options.split_voice(str(base / token))
        out.append(str(Path(path).resolve()) + (token[token.rindex("@"):] if binding is not None else ""))
    return out


def parse_options(text: str, base: Path, transcript: str | None = None) -> dict:
    """DubOptions fields from an options cell; relative paths are taken from `base` (the CSV's folder)."""
    try:
        tokens = shlex.split(text or "")
    except ValueError as exc:
        raise ParameterError(f"cannot split the options {text!r} ({exc}); check the quotes") from None
    try:
        args = _options_parser().parse_args(tokens)
    except ParameterError as exc:
        raise ParameterError(f"options {text!r}: {exc}") from None
    if transcript and args.transcript:
        raise ParameterError("the row has a transcript column and a --transcript option; keep one")
    if args.transcript:
        transcript = _transcript(args.transcript, base)
    for name in ("alignment", "save_alignment", "profile", "speakers", "mix"):
        if getattr(args, name):
            setattr(args, name, str((base / getattr(args, name)).resolve()))
    # a job's report names its frames' digest (a job's frames against a local run's, whichever worker drew them)
    opts = dub_options.from_args(args, transcript=transcript or None, frames_sha256=True)
    opts.validate()
    return dub_options.report(opts)  # plain JSON values: an in-memory speech track is never part of a batch


def job_options(job: Job, **extra) -> DubOptions:
    """The job's DubOptions (`extra` overrides some, e.g. the pieces one worker renders)."""
    values = {k: (tuple(v) if k == "face_box" and v is not None else v) for k, v in job.dub.items()}
    values.update(extra)
    return DubOptions(**values)


def _stat(path: str | None) -> list:
    if not path:
        return [None, None, None]
    try:
        st = os.stat(path)
        return [path, st.st_size, st.st_mtime_ns]
    except OSError:
        return [path, None, None]


def job_key(job: Job) -> str:
    """Inputs (path, size, mtime) + options + output: a finished job is current while this is unchanged."""
    files = [_stat(job.video), _stat(job.audio)] + [_stat(dub_options.split_voice(v)[0]) for v in job.voices]
    files += [_stat(job.dub.get(name)) for name in ("alignment", "profile", "speakers", "mix")]
    # the frames' digest is reported, not drawn: asking for it leaves the output as it was, so batches finished
    # before it was asked for stay current
    dub = {k: v for k, v in job.dub.items() if k != "frames_sha256"}
    text = json.dumps({"files": files, "dub": dub, "output": job.output, "format": VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def read_jobs(csv_path, out_dir=None) -> list[Job]:
    """The jobs of a batch CSV. A row that cannot run becomes a job carrying its error (the others still run)."""
    csv_path = Path(csv_path).expanduser()
    if not csv_path.is_file():
        raise InputError(f"batch file not found: {csv_path}; give a CSV with columns {', '.join(COLUMNS)}")
    base = csv_path.resolve().parent
    out_base = Path(out_dir).expanduser().resolve() if out_dir else base
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            rows = [(i, row) for i, row in enumerate(csv.reader(fh), 1)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read the batch file {csv_path} ({exc}); save it as UTF-8 CSV") from None
    rows = [(i, [c.strip() for c in row]) for i, row in rows
            if any(c.strip() for c in row) and not row[0].lstrip().startswith("#")]
    columns = list(COLUMNS)
    if rows and {"video", "audio"} <= {c.lower() for c in rows[0][1]}:
        columns = [c.lower() for c in rows[0][1]]
        unknown = [c for c in columns if c not in COLUMNS]
        if unknown:
            raise ParameterError(f"{csv_path}: unknown column(s) {', '.join(unknown)}; use {', '.join(COLUMNS)}")
        rows = rows[1:]
    if not rows:
        raise InputError(f"{csv_path} holds no jobs; add rows of {', '.join(COLUMNS)}")
    jobs: list[Job] = []
    for line, cells in rows:
        cell = dict(zip(columns, cells))
        if len(cells) > len(columns) and any(cells[len(columns):]):
            error = f"row has {len(cells)} cells but the batch has {len(columns)} columns; quote cells with commas"
        else:
            error = None
        video, audio = cell.get("video", ""), cell.get("audio", "")
        try:
            voices = _voices(cell.get("voices", ""), base)
        except LipdubError as exc:
            voices, error = [], error or str(exc)
        if voices and not audio:  # (the output's default name and the audio column: the first voice)
            audio = dub_options.split_voice(voices[0])[0]
        if cell.get("output"):
            output = out_base / cell["output"]
        else:  # no output named: VIDEO-STEM_AUDIO-STEM.mp4 in the output folder
            output = out_base / (f"{Path(video).stem}_{Path(audio).stem}.mp4" if video and audio else f"row{line}.mp4")
        job = Job(line, str((base / video).resolve()) if video else "", str((base / audio).resolve()) if audio else "",
                  str(output.resolve()), cell.get("options", ""), voices=voices)
        if error is None and not (video and audio):
            error = "row needs a video and an audio file (or a voices cell: voice.wav@N ...)"
        if error is None and voices and cell.get("audio"):
            error = "row has an audio and a voices cell; keep one (voices: voice.wav@N voice2.wav@M ...)"
        if error is None:
            try:
                transcript = _transcript(cell["transcript"], base) if cell.get("transcript") else None
                job.dub = parse_options(job.options, base, transcript)
            except LipdubError as exc:
                error, job.error_type = str(exc), type(exc).__name__
        job.error = error
        job.key = job_key(job)
        jobs.append(job)
    seen: dict[str, int] = {}
    for job in jobs:
        for path in (job.output, str(job.report_path)):
            if path in seen:
                raise ParameterError(f"{csv_path}: rows {seen[path]} and {job.row} both write {path}; "
                                     "give each row its own output name")
            seen[path] = job.row
    return jobs
