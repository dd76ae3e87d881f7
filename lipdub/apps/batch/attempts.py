"""One batch job run: attempts (each in a child process locally), retries, and the report written beside the
output; a finished job whose report is current is skipped."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from lipdub.apps.batch.jobs import VERSION, Job, job_options
from lipdub.core.files import write_json as _write_json
from lipdub.errors import LipdubError
from lipdub.options import OPTIONS
from lipdub.pipeline import dub

log = logging.getLogger("lipdub")

REPORT_FORMAT = "lipdub-batch-job"
# The same input gives the same error: retrying these only wastes time. Everything else (a crashed or lost worker,
# a full disk, a missing program on one cluster node, an unexpected exception) is retried.
NOT_RETRIED = ("ParameterError", "InputError")
STOP = threading.Event()  # set when the batch is interrupted: no new attempt starts


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_json(path: Path, data: dict) -> None:
    """Atomic: a reader sees the old file or the new one, never half of one."""
    _write_json(path, data)


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
        report = dub(job.video, job.voices or job.audio, job.output, job_options(job))
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
        if STOP.is_set():  # Ctrl-C reached the child too: neither a result nor a failure of the job
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
    started, t0 = utc_now(), time.perf_counter()
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
              **({"voices": job.voices} if job.voices else {}),
              "transcript": job.dub.get("transcript"), "key": job.key, "attempts": attempts,
              "wall_seconds": round(seconds, 3), "started": started, "finished": utc_now(), "runner": runner,
              "host": socket.gethostname(),
              "settings": {k: v for k, v in job.dub.items()  # the options that differ from their defaults
                           if k in OPTIONS and k != "transcript" and v != OPTIONS[k].default}}
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
