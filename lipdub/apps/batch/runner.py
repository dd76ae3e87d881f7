"""`run_batch`: every job of a batch CSV, locally (`workers` child processes at a time) or as Ray tasks; long jobs
render in pieces (spread over the Ray workers); the summary is rewritten as jobs finish."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lipdub import media
from lipdub.apps.batch.attempts import (STOP, utc_now, attempt_in_child, finished, job_report, lost_attempts, run_job,
                                        write_json)
from lipdub.apps.batch.jobs import VERSION, Job, job_options, read_jobs
from lipdub.errors import DependencyError, OutputError, ParameterError
from lipdub.pipeline import dub, load_track

SUMMARY_FORMAT = "lipdub-batch"
RAY_PIN = "ray==2.60.0"


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
    try:
        samples, sr = media.load_audio(path, 8000)
        return len(samples) / sr
    except Exception:  # noqa: BLE001
        return 0.0


def mark_long_jobs(jobs: list[Job], split_seconds: float | None, piece_seconds: float | None = None) -> None:
    """Jobs at least `split_seconds` long render in pieces (`resume`): on Ray the pieces are spread over workers,
    locally one process renders them all; the output is the same either way (and a killed batch resumes them)."""
    if not split_seconds:
        return
    for job in jobs:
        if job.error is None and not job.voices and audio_seconds(job.audio) >= split_seconds:
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
            "started": utc_now(), "finished": None, "wall_seconds": None,
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
    data["finished"], data["wall_seconds"] = utc_now(), round(time.perf_counter() - t0, 3)
    write_json(summary_path, data)
    return Summary(summary_path, data)


def _run_local(jobs: list[Job], retries: int, workers: int, record) -> None:
    def one(job: Job) -> tuple[Job, dict]:
        return job, run_job(job, retries, "local", attempt_in_child)

    STOP.clear()
    with ThreadPoolExecutor(workers, thread_name_prefix="lipdub-batch") as pool:
        try:
            for fut in as_completed([pool.submit(one, job) for job in jobs]):
                job, report = fut.result()
                record(job, report, "ok" if report["status"] == "ok" else "failed")
        except KeyboardInterrupt:
            STOP.set()  # running children got the signal too; queued jobs never start
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
                                        utc_now(), 0.0, "ray")
                    write_json(job.report_path, report)
                    job.marker_path.unlink(missing_ok=True)
                record(job, report, "ok" if report["status"] == "ok" else "failed")
    finally:
        if started_here:
            ray.shutdown()


def _prepare_job(job: Job) -> None:
    """Track the job's video once (cached), before its pieces are rendered by several workers."""
    opts = job_options(job)
    if opts.cache:
        load_track(Path(job.video), media.probe_video(job.video, opts.max_size), opts, None)


def _render_share(job: Job, i: int, n: int) -> None:
    """Pieces i, i+n, i+2n… of a long job (kept beside its output; the job's own run joins them)."""
    Path(job.output).parent.mkdir(parents=True, exist_ok=True)
    dub(job.video, job.audio, job.output, job_options(job, pieces=f"{i}/{n}"))
