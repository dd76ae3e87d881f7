"""`lipdub batch jobs.csv`: many dubs from one CSV, each isolated, retried, reported and resumable; run locally (one
child process per attempt, `--workers` at a time) or as Ray tasks on a cluster (`--ray [ADDRESS]`).

CSV columns (a header row names them, in any order; without one they are taken in this order):
    video, audio, transcript, options, output
Paths are relative to the CSV's folder (`output` to `--out-dir` when given); `options` holds `lipdub dub` options
such as `--language es --strength 1.2 --profile actor.lipdub`. Each job writes `NAME.report.json` beside its output;
the batch writes `CSV-STEM.summary.json` in the output folder. A job whose output and successful report exist, and
whose inputs (paths, sizes, modification times) and options are unchanged, is skipped on a re-run.
"""

from lipdub.apps.batch.attempts import (NOT_RETRIED, REPORT_FORMAT, attempt, attempt_in_child, finished,
                                        job_report, lost_attempts, run_job, write_json)
from lipdub.apps.batch.jobs import COLUMNS, VERSION, Job, job_key, job_options, parse_options, read_jobs, report_path
from lipdub.apps.batch.runner import (RAY_PIN, SUMMARY_FORMAT, Summary, audio_seconds, import_ray, mark_long_jobs,
                                      run_batch)

__all__ = ["COLUMNS", "NOT_RETRIED", "RAY_PIN", "REPORT_FORMAT", "SUMMARY_FORMAT", "VERSION", "Job", "Summary",
           "attempt", "attempt_in_child", "audio_seconds", "finished", "import_ray", "job_key", "job_options",
           "job_report", "lost_attempts", "mark_long_jobs", "parse_options", "read_jobs", "report_path", "run_batch",
           "run_job", "write_json"]
