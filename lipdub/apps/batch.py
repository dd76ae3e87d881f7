"""`lipdub batch jobs.csv`: many dubs from one CSV, each isolated, retried, reported and resumable; run locally (one
child process per attempt, `--workers` at a time) or as Ray tasks on a cluster (`--ray [ADDRESS]`).

CSV columns (a header row names them, in any order; without one they are taken in this order):
    video, audio, transcript, options, output
Paths are relative to the CSV's folder (`output` to `--out-dir` when given); `options` holds `lipdub dub` options
such as `--language es --strength 1.2 --profile actor.lipdub`. Each job writes `NAME.report.json` beside its output;
the batch writes `CSV-STEM.summary.json` in the output folder. A job whose output and successful report exist, and
whose inputs (paths, sizes, modification times) and options are unchanged, is skipped on a re-run.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from lipdub.errors import DependencyError, InputError, LipdubError, OutputError, ParameterError

log = logging.getLogger("lipdub")

COLUMNS = ("video", "audio", "transcript", "options", "output")
REPORT_FORMAT = "lipdub-batch-job"
SUMMARY_FORMAT = "lipdub-batch"
VERSION = 1
# The same input gives the same error: retrying these only wastes time. Everything else (a crashed or lost worker,
# a full disk, a missing program on one cluster node, an unexpected exception) is retried.
NOT_RETRIED = ("ParameterError", "InputError")
RAY_PIN = "ray==2.60.0"
_STOP = threading.Event()  # set when the batch is interrupted: no new attempt starts


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
    from lipdub.apps.cli import _add_dub_options

    parser = _OptionsParser(prog="options", add_help=False, allow_abbrev=False)
    _add_dub_options(parser)
    return parser


def _transcript(value: str, base: Path) -> str:
    """A transcript cell or --transcript value: the text itself, or a text file relative to the CSV's folder."""
    from lipdub.apps.cli import read_transcript

    candidate = base / value
    if len(value) < 4096 and candidate.suffix.lower() in (".txt", ".lab", ".srt") and candidate.is_file():
        return read_transcript(str(candidate)) or ""
    return value


def parse_options(text: str, base: Path, transcript: str | None = None) -> dict:
    """DubOptions fields from an options cell; relative paths are taken from `base` (the CSV's folder)."""
    from lipdub.apps.cli import dub_options

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
    args.transcript = None  # read here, relative to the CSV, not by the CLI's reader (relative to the cwd)
    for name in ("alignment", "save_alignment", "profile"):
        if getattr(args, name):
            setattr(args, name, str((base / getattr(args, name)).resolve()))
    opts = dub_options(args, transcript=transcript or None)
    opts.validate()
    values = asdict(opts)
    values.pop("speech_track", None)  # an in-memory speech track is never part of a batch
    if values["face_box"] is not None:
        values["face_box"] = [float(v) for v in values["face_box"]]
    return values


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
    files = [_stat(job.video), _stat(job.audio)]
    files += [_stat(job.dub.get(name)) for name in ("alignment", "profile")]
    text = json.dumps({"files": files, "dub": job.dub, "output": job.output, "format": VERSION}, sort_keys=True)
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
        if cell.get("output"):
            output = out_base / cell["output"]
        else:  # no output named: VIDEO-STEM_AUDIO-STEM.mp4 in the output folder
            output = out_base / (f"{Path(video).stem}_{Path(audio).stem}.mp4" if video and audio else f"row{line}.mp4")
        job = Job(line, str((base / video).resolve()) if video else "", str((base / audio).resolve()) if audio else "",
                  str(output.resolve()), cell.get("options", ""))
        if error is None and not (video and audio):
            error = "row needs a video and an audio file"
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


# ------------------------------------------------------------------------------------------------------ running


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, data: dict) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; reports are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def finished(job: Job) -> dict | None:
    """The job's successful report when it is current: output present, same size, same inputs and options."""
    report = _read_json(job.report_path)
    if not report or report.get("format") != REPORT_FORMAT or report.get("status") != "ok":
        return None
    if report.get("key") != job.key:
        return None
    try:
        size = os.path.getsize(job.output)
    except OSError:
        return None
    return report if size == report.get("output_bytes") else None


def attempt(job: Job) -> dict:
    """One dub, in this process. Never raises (but for KeyboardInterrupt): the outcome is a plain dict."""
    from lipdub.pipeline import dub

    warnings: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings.append(record.getMessage())

    handler = Collect(logging.WARNING)
    logger = logging.getLogger("lipdub")
    logger.addHandler(handler)
    t = time.perf_counter()
    try:
        Path(job.output).parent.mkdir(parents=True, exist_ok=True)
        report = dub(job.video, job.audio, job.output, _job_options(job))
        return {"ok": True, "seconds": time.perf_counter() - t, "frames": report.frames, "fps": report.fps,
                "duration": report.duration, "faces_rendered": report.faces_rendered,
                "face_coverage": report.faces_rendered / max(report.frames, 1),
                "speech_method": report.speech_method, "appearance": report.appearance,
                "frames_sha256": report.frames_sha256,
                "timings": {k: round(v, 3) for k, v in report.timings.items()},
                "output_bytes": os.path.getsize(report.output), "warnings": warnings}
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # isolated: recorded in the report, the batch goes on
        kind = type(exc).__name__
        message = str(exc) if isinstance(exc, LipdubError) else f"internal error: {kind}: {exc}"
        return {"ok": False, "seconds": time.perf_counter() - t, "error": message, "error_type": kind,
                "exit_code": getattr(exc, "exit_code", 1), "warnings": warnings}
    finally:
        logger.removeHandler(handler)


def attempt_in_child(job: Job) -> dict:
    """One dub in a fresh child process, so a crash (a native library's segfault, the kernel's OOM killer) costs
    only this attempt; the child writes its outcome to a file."""
    fd, result = tempfile.mkstemp(prefix=".lipdub-attempt.", suffix=".json")
    os.close(fd)
    t = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "lipdub.apps.batch", result], input=json.dumps(asdict(job)),
                              text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        if _STOP.is_set():  # Ctrl-C reached the child too: neither a result nor a failure of the job
            raise KeyboardInterrupt
        outcome = _read_json(Path(result))
        if proc.returncode == 0 and outcome is not None:
            return outcome
        why = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
        tail = (proc.stderr or "").strip().splitlines()[-1:] or [""]
        return {"ok": False, "seconds": time.perf_counter() - t, "error_type": "WorkerLost", "exit_code": 1,
                "error": f"the worker process ended without a result ({why}) {tail[0]}".strip(), "warnings": []}
    finally:
        Path(result).unlink(missing_ok=True)


def _remove_stale_temporaries(output: Path) -> None:
    """A killed attempt leaves the writer's temporary file (`.STEM.XXXXXXXX.mp4`) behind: remove it."""
    pattern = re.compile(rf"^\.{re.escape(output.stem)}\.[a-z0-9_]{{8}}{re.escape(output.suffix)}$")
    try:
        for p in output.parent.iterdir():
            if pattern.match(p.name):
                p.unlink(missing_ok=True)
    except OSError:
        pass


def run_job(job: Job, retries: int = 1, runner: str = "local", one_attempt: Callable[[Job], dict] = attempt) -> dict:
    """Run one job with up to `retries` retries, write its report beside the output and return it.

    Attempts that ended without a result (a lost Ray worker, a killed batch) are counted from a marker file beside
    the output: they show in the report but do not use up `retries` (Ray's own max_retries bounds those)."""
    output = Path(job.output)
    started, t0 = _now(), time.perf_counter()
    n = lost_attempts(job)
    errors = [f"attempt {i + 1}: ended without a result (worker lost or batch stopped)" for i in range(n)]
    if n:
        _remove_stale_temporaries(output)
    if job.error is not None:
        outcome = {"ok": False, "error": job.error, "error_type": job.error_type,
                   "exit_code": 3 if job.error_type == "InputError" else 2}
        errors.append(job.error)
    for _ in range(retries + 1 if job.error is None else 0):
        n += 1
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            write_json(job.marker_path, {"attempts": n})
        except OSError as exc:
            outcome = {"ok": False, "error": f"cannot write to {output.parent} ({exc.strerror}); check the output "
                       "folder", "error_type": "OutputError", "exit_code": 4}
            break
        outcome = one_attempt(job)
        if outcome["ok"]:
            break
        errors.append(f"attempt {n}: {outcome['error']}")
        if outcome.get("error_type") in NOT_RETRIED:
            break
    report = job_report(job, outcome, n, errors, started, time.perf_counter() - t0, runner)
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        write_json(job.report_path, report)
        job.marker_path.unlink(missing_ok=True)
    except OSError as exc:  # the summary still records the outcome
        log.warning("cannot write the report %s: %s", job.report_path, exc)
    return report


def lost_attempts(job: Job) -> int:
    """Attempts started on this job that never reported (their marker file is still there)."""
    marker = _read_json(job.marker_path) or {}
    try:
        return max(0, int(marker.get("attempts", 0)))
    except (TypeError, ValueError):
        return 0


def job_report(job: Job, outcome: dict, attempts: int, errors: list[str], started: str, seconds: float,
               runner: str) -> dict:
    report = {"format": REPORT_FORMAT, "version": VERSION, "status": "ok" if outcome["ok"] else "failed",
              "row": job.row, "video": job.video, "audio": job.audio, "output": job.output, "options": job.options,
              "transcript": job.dub.get("transcript"), "key": job.key, "attempts": attempts,
              "wall_seconds": round(seconds, 3), "started": started, "finished": _now(), "runner": runner,
              "host": socket.gethostname()}
    if outcome["ok"]:
        report.update({k: outcome[k] for k in ("frames", "fps", "duration", "faces_rendered", "speech_method",
                                               "appearance", "timings", "output_bytes", "frames_sha256")})
        report["face_coverage"] = round(outcome["face_coverage"], 4)
        report["dub_seconds"] = round(outcome["seconds"], 3)
    else:
        report.update(error=outcome["error"], error_type=outcome["error_type"], exit_code=outcome.get("exit_code", 1))
    report["warnings"] = outcome.get("warnings", [])
    report["errors"] = errors
    return report


# ------------------------------------------------------------------------------------------------------- batches


@dataclass
class Summary:
    path: Path
    data: dict

    @property
    def failed(self) -> int:
        return self.data["counts"]["failed"]


def _summary_entry(job: Job, report: dict, status: str) -> dict:
    return {"row": job.row, "output": job.output, "report": str(job.report_path), "status": status,
            "attempts": report.get("attempts"), "wall_seconds": report.get("wall_seconds"),
            "error": report.get("error")}


def audio_seconds(path: str) -> float:
    """Length of a file's audio (0 when it cannot be read: the job will fail on its own with a clear message)."""
    from lipdub.media import load_audio

    try:
        samples, sr = load_audio(path, 8000)
        return len(samples) / sr
    except Exception:  # noqa: BLE001
        return 0.0


def mark_long_jobs(jobs: list[Job], split_seconds: float | None, piece_seconds: float | None = None) -> None:
    """Jobs at least `split_seconds` long render in pieces (`resume`): on Ray the pieces are spread over workers,
    locally one process renders them all; the output is the same either way (and a killed batch resumes them)."""
    if not split_seconds:
        return
    for job in jobs:
        if job.error is None and audio_seconds(job.audio) >= split_seconds:
            job.dub["resume"] = True
            if piece_seconds:
                job.dub["piece_seconds"] = float(piece_seconds)


def run_batch(csv_path, out_dir=None, retries: int = 1, workers: int | None = None, ray: str | None = None,
              force: bool = False, on_job: Callable[[dict, int, int], None] | None = None,
              split_seconds: float | None = 120.0, piece_seconds: float | None = None) -> Summary:
    """Run every job of `csv_path`; `ray` = None (local processes), "local" (a local Ray instance) or a Ray
    cluster address. `on_job(summary_entry, done, total)` is called as jobs finish. Jobs whose audio lasts at least
    `split_seconds` are rendered in pieces (of `piece_seconds`, default 10 s), as several Ray tasks under Ray.
    Returns the summary."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ParameterError(f"--retries must be 0 or more, got {retries!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ParameterError(f"--workers must be 1 or more, got {workers!r}")
    jobs = read_jobs(csv_path, out_dir)
    mark_long_jobs(jobs, split_seconds, piece_seconds)
    out_base = Path(out_dir).expanduser().resolve() if out_dir else Path(csv_path).resolve().parent
    try:
        out_base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {out_base} ({exc.strerror}); choose another --out-dir")
    summary_path = out_base / f"{Path(csv_path).stem}.summary.json"
    runner = "local" if ray is None else "ray"
    data = {"format": SUMMARY_FORMAT, "version": VERSION, "csv": str(Path(csv_path).resolve()),
            "out_dir": str(out_base), "runner": runner, "ray_address": ray, "retries": retries,
            "started": _now(), "finished": None, "wall_seconds": None,
            "counts": {"total": len(jobs), "ok": 0, "failed": 0, "skipped": 0}, "jobs": []}
    t0 = time.perf_counter()
    lock = threading.Lock()

    def record(job: Job, report: dict, status: str) -> None:
        with lock:
            entry = _summary_entry(job, report, status)
            data["jobs"].append(entry)
            data["counts"][status] += 1
            data["wall_seconds"] = round(time.perf_counter() - t0, 3)
            write_json(summary_path, data)
            if on_job:
                on_job(entry, len(data["jobs"]), len(jobs))

    todo = []
    for job in jobs:
        report = None if force else finished(job)
        if report is not None:
            record(job, report, "skipped")
        else:
            todo.append(job)
    if todo:
        if ray is None:
            _run_local(todo, retries, workers or 1, record)
        else:
            _run_ray(todo, retries, workers, ray, record)
    data["jobs"].sort(key=lambda e: e["row"])
    data["finished"], data["wall_seconds"] = _now(), round(time.perf_counter() - t0, 3)
    write_json(summary_path, data)
    return Summary(summary_path, data)


def _run_local(jobs: list[Job], retries: int, workers: int, record) -> None:
    def one(job: Job) -> tuple[Job, dict]:
        return job, run_job(job, retries, "local", attempt_in_child)

    _STOP.clear()
    with ThreadPoolExecutor(workers, thread_name_prefix="lipdub-batch") as pool:
        try:
            for fut in as_completed([pool.submit(one, job) for job in jobs]):
                job, report = fut.result()
                record(job, report, "ok" if report["status"] == "ok" else "failed")
        except KeyboardInterrupt:
            _STOP.set()  # running children got the signal too; queued jobs never start
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def import_ray():
    """Ray, imported only for --ray; a clear message when it is not installed."""
    try:
        import ray
    except ImportError:
        raise DependencyError(f"--ray needs Ray: install it with `pip install '{RAY_PIN}'` (or leave out --ray to run "
                              "the batch on this machine)") from None
    return ray


def _run_ray(jobs: list[Job], retries: int, workers: int | None, address: str, record) -> None:
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        try:
            if address == "local":  # a private instance on this machine: one dub per CPU
                ray.init(num_cpus=workers or 2, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.WARNING)
            else:
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        except Exception as exc:  # noqa: BLE001 - Ray raises many kinds for an unreachable cluster
            if address == "local":
                raise DependencyError(f"cannot start a local Ray instance ({exc}); run without --ray") from None
            raise DependencyError(f"cannot connect to the Ray cluster at {address!r} ({exc}); check the address "
                                  "(`ray status` on the head node) or run `lipdub batch CSV --ray` for a local one") \
                from None
    # max_retries: Ray runs the task again when its worker process or node dies; errors inside a dub are retried
    # by run_job itself (and recorded), so the task never raises for them.
    task = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(run_job)
    prepare = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(_prepare_job)
    share = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(_render_share)
    try:
        limit = workers or len(jobs)
        # long jobs first: tracked once, then their pieces spread over the workers; run_job below only joins them
        n_shares = max(1, workers or int(ray.cluster_resources().get("CPU", 2)))
        for job in jobs:
            if job.error is None and job.dub.get("resume"):
                try:
                    ray.get(prepare.remote(job))
                    ray.get([share.remote(job, i, n_shares) for i in range(n_shares)])
                except Exception:  # noqa: BLE001 - run_job renders whatever piece is missing and reports errors
                    pass
        queue = list(jobs)
        pending: dict = {}
        while queue or pending:
            while queue and len(pending) < limit:
                job = queue.pop(0)
                pending[task.remote(job, retries, "ray")] = job
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                job = pending.pop(ref)
                try:
                    report = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - the task was lost more often than max_retries allows
                    first = str(exc).strip().splitlines()[:1] or [""]
                    error = f"the Ray task was lost ({type(exc).__name__}: {first[0]})"
                    n = lost_attempts(job)
                    errors = [f"attempt {i + 1}: ended without a result (worker lost)" for i in range(n)] + [error]
                    report = job_report(job, {"ok": False, "error": error, "error_type": "WorkerLost"}, n, errors,
                                        _now(), 0.0, "ray")
                    write_json(job.report_path, report)
                    job.marker_path.unlink(missing_ok=True)
                record(job, report, "ok" if report["status"] == "ok" else "failed")
    finally:
        if started_here:
            ray.shutdown()


def _job_options(job: Job, **extra):
    from lipdub.pipeline import DubOptions

    values = {k: (tuple(v) if k == "face_box" and v is not None else v) for k, v in job.dub.items()}
    values.update(extra)
    return DubOptions(**values)


def _prepare_job(job: Job) -> None:
    """Track the job's video once (cached), before its pieces are rendered by several workers."""
    from lipdub import media
    from lipdub.pipeline import load_track

    opts = _job_options(job)
    if opts.cache:
        load_track(Path(job.video), media.probe_video(job.video), opts, None)


def _render_share(job: Job, i: int, n: int) -> None:
    """Pieces i, i+n, i+2n… of a long job (kept beside its output; the job's own run joins them)."""
    from lipdub.pipeline import dub

    Path(job.output).parent.mkdir(parents=True, exist_ok=True)
    dub(job.video, job.audio, job.output, _job_options(job, pieces=f"{i}/{n}"))


def _child_main(argv: list[str]) -> int:
    """`python -m lipdub.apps.batch RESULT.json` with a job as JSON on stdin: one attempt, outcome written to RESULT."""
    logging.basicConfig(level=logging.WARNING, format="lipdub: %(message)s")
    job = Job(**json.loads(sys.stdin.read()))
    outcome = attempt(job)
    write_json(Path(argv[0]), outcome)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
