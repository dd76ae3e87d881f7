"""`lipdub batch`: CSV parsing, retries and reports (fast, no media), then six short real jobs run locally and as Ray
tasks on a local two-worker cluster with one worker killed mid-batch: no job lost, outputs equal frame for frame."""

import dataclasses
import hashlib
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from lipdub.apps import batch, cli
from lipdub import media
from lipdub.errors import DependencyError, ParameterError

from conftest import require_data


def _csv(path: Path, rows: list[list[str]], header=("video", "audio", "transcript", "options", "output")) -> Path:
    import csv

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        if header:
            w.writerow(header)
        w.writerows(rows)
    return path


# ------------------------------------------------------------------------------------------------- no media


def test_rows_parse_with_the_dub_option_parser_and_paths_relative_to_the_csv(tmp_path):
    (tmp_path / "line.txt").write_text("Hello there.")
    (tmp_path / "v.mp4").write_bytes(b"x")
    (tmp_path / "a.wav").write_bytes(b"x")
    path = _csv(tmp_path / "jobs.csv", [
        ["v.mp4", "a.wav", "line.txt", "--language es --strength 1.2 --profile actor.lipdub", "out/es.mp4"],
        ["v.mp4", "a.wav", "", "", ""],
        ["v.mp4", "a.wav", "", "--strength 9", "bad.mp4"],
        ["v.mp4", "a.wav", "", "--no-such-option", "bad2.mp4"],
        ["# a comment row", "", "", "", ""],
        ["v.mp4", "", "", "", "noaudio.mp4"],
    ])
    jobs = batch.read_jobs(path, out_dir=tmp_path / "o")
    assert len(jobs) == 5
    first = jobs[0]
    assert first.video == str(tmp_path / "v.mp4") and first.output == str(tmp_path / "o/out/es.mp4")
    assert first.dub["language"] == "es" and first.dub["strength"] == 1.2 and first.dub["transcript"] == "Hello there."
    assert first.dub["profile"] == str(tmp_path / "actor.lipdub") and first.error is None
    assert first.report_path == tmp_path / "o/out/es.report.json"
    assert jobs[1].output == str(tmp_path / "o/v_a.mp4")  # no output named: VIDEO_AUDIO.mp4
    assert "--strength must be between 0 and 3" in jobs[2].error
    assert "unrecognized arguments: --no-such-option" in jobs[3].error
    assert jobs[4].error.startswith("row needs a video and an audio file")
    # the key changes with the options and with an input's size or modification time
    again = batch.read_jobs(path, out_dir=tmp_path / "o")
    assert [j.key for j in again] == [j.key for j in jobs]
    # asking for the frames' digest (every batch job does) draws the same output: a finished job stays current
    assert first.dub["frames_sha256"] is True
    undigested = dataclasses.replace(first, dub={**first.dub, "frames_sha256": False})
    assert batch.job_key(undigested) == first.key
    assert batch.job_key(dataclasses.replace(first, dub={**first.dub, "strength": 1.3})) != first.key
    os.utime(tmp_path / "a.wav", ns=(1, 1))
    assert batch.read_jobs(path, out_dir=tmp_path / "o")[0].key != first.key


def test_duplicate_outputs_and_unknown_columns_are_refused(tmp_path):
    with pytest.raises(ParameterError, match="both write"):
        batch.read_jobs(_csv(tmp_path / "dup.csv", [["v.mp4", "a.wav", "", "", "x.mp4"]] * 2))
    with pytest.raises(ParameterError, match="unknown column"):
        batch.read_jobs(_csv(tmp_path / "col.csv", [["v.mp4", "a.wav"]], header=("video", "audio", "voice")))
    # no header: the columns in their documented order
    jobs = batch.read_jobs(_csv(tmp_path / "plain.csv", [["v.mp4", "a.wav", "", "--crf 20", "y.mp4"]], header=None))
    assert jobs[0].dub["crf"] == 20 and jobs[0].output == str(tmp_path / "y.mp4")


def test_failures_are_retried_recorded_and_isolated(tmp_path):
    job = batch.Job(1, "v.mp4", "a.wav", str(tmp_path / "out.mp4"))
    calls = []

    def flaky(j):
        calls.append(j)
        if len(calls) < 3:
            return {"ok": False, "error": f"crash {len(calls)}", "error_type": "WorkerLost", "seconds": 0.1}
        (tmp_path / "out.mp4").write_bytes(b"video")
        return {"ok": True, "seconds": 0.5, "frames": 10, "fps": 25.0, "duration": 0.4, "faces_rendered": 9,
                "face_coverage": 0.9, "speech_method": "hama+align", "appearance": "video",
                "timings": {"total": 0.5}, "output_bytes": 5, "frames_sha256": "ab", "warnings": []}

    report = batch.run_job(job, retries=2, one_attempt=flaky)
    assert report["status"] == "ok" and report["attempts"] == 3
    assert report["errors"] == ["attempt 1: crash 1", "attempt 2: crash 2"]
    assert json.loads(job.report_path.read_text()) == report and not job.marker_path.exists()
    assert batch.finished(job) == report  # a re-run skips it ...
    (tmp_path / "out.mp4").write_bytes(b"changed")
    assert batch.finished(job) is None  # ... unless the output changed

    # an input error is not retried: the same input gives the same error
    calls.clear()
    bad = {"ok": False, "error": "audio file not found: a.wav", "error_type": "InputError", "exit_code": 3}
    report = batch.run_job(job, retries=3, one_attempt=lambda j: calls.append(j) or bad)
    assert report["status"] == "failed" and len(calls) == 1 and report["exit_code"] == 3

    # an attempt that never reported (a killed worker) is counted from its marker file, and its temporary output
    # file is removed
    batch.write_json(job.marker_path, {"attempts": 1})
    stale = tmp_path / ".out.abcd1234.mp4"
    stale.write_bytes(b"half")
    report = batch.run_job(job, retries=0, one_attempt=flaky)
    assert report["attempts"] == 2 and "ended without a result" in report["errors"][0] and not stale.exists()


def test_ray_is_optional_with_a_clear_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as when it is not installed
    with pytest.raises(DependencyError, match=r"pip install 'ray=="):
        batch.import_ray()
    # and nothing imports it unless --ray is used
    import subprocess

    probe = ("import sys, lipdub, lipdub.apps.cli, lipdub.apps.batch, lipdub.pipeline; lipdub.run_batch; "
             "print('ray' in sys.modules)")
    repo = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=repo,
                          env={**os.environ, "PYTHONPATH": repo})
    assert done.stdout.strip() == "False", done.stderr


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["batch", str(tmp_path / "missing.csv")]) == 3
    assert cli.main(["batch", str(_csv(tmp_path / "j.csv", [["v", "a"]])), "--retries", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("lipdub: error: batch file not found") and "--retries must be 0 or more" in err[1]


# ------------------------------------------------------------------------------------------- real jobs

JOBS = [  # video (cut to 2 s when long), audio cut (file, start, end), options
    ("video/grid_lbax4n.mpg", ("audio/en_jfk_11s.wav", 0.3, 2.8), ""),
    ("video/grid_bbaf2n.mpg", ("audio/es_spanish1_5s.wav", 0.5, 3.0), "--language es"),
    ("video/grid_brbk7n.mpg", ("audio/fr_french1_7s.wav", 0.5, 3.0), "--language fr --strength 1.2"),
    ("video/grid_lbbc2a.mpg", ("audio/en_radio34_other_8s.wav", 0.5, 3.0), "--length video"),
    ("video/hdtf_katiehill_8s.mp4", ("audio/en_jfk_11s.wav", 3.0, 5.5), "--crf 20"),
    ("video/hdtf_radio34_8s.mp4", ("audio/de_48k24bit_stereo_9s.wav", 1.0, 3.5), "--language de"),
]
# every job tracks its face itself (--no-cache: the Ray run must not reuse the local run's tracks) and encodes
# bit-repeatably (--repeatable: x264's default rate control does not give the same stream twice)
COMMON = "--no-cache --repeatable"


def _frame_hash(path) -> str:
    h = hashlib.sha256()
    for frame in media.iter_frames(path):
        h.update(frame.rgb.tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def local_batch(tmp_path_factory):
    """Six short jobs and one broken row, run locally on two workers."""
    from training.evaluate import cut_audio, cut_video

    data = require_data(*{j[0] for j in JOBS}, *{j[1][0] for j in JOBS})
    d = tmp_path_factory.mktemp("batch")
    rows = []
    for i, (video, (audio, a0, a1), options) in enumerate(JOBS):
        src = data / video
        if src.suffix == ".mp4":  # the 8 s HDTF clips: 2 s are enough (tracking cost)
            src = d / f"v{i}.mp4"
            cut_video(data / video, 0.0, 2.0, src)
        cut_audio(data / audio, a0, a1, d / f"a{i}.wav")
        rows.append([str(src), f"a{i}.wav", "", f"{COMMON} {options}", f"job{i}.mp4"])
    rows.append([str(data / JOBS[0][0]), "missing.wav", "", "", "broken.mp4"])
    jobs_csv = _csv(d / "jobs.csv", rows)
    t = time.perf_counter()
    code = cli.main(["-q", "batch", str(jobs_csv), "--out-dir", str(d / "local"), "--workers", "2"])
    return jobs_csv, d / "local", code, time.perf_counter() - t


@pytest.mark.slow
def test_local_batch_reports_every_job_and_isolates_the_broken_one(local_batch):
    jobs_csv, out, code, seconds = local_batch
    assert code == 1  # one job failed
    summary = json.loads((out / "jobs.summary.json").read_text())
    assert summary["counts"] == {"total": 7, "ok": 6, "failed": 1, "skipped": 0}
    for i in range(6):
        report = json.loads((out / f"job{i}.report.json").read_text())
        assert report["status"] == "ok" and report["attempts"] == 1 and report["frames"] > 0
        assert set(report["timings"]) >= {"speech", "track", "render", "total"} and report["face_coverage"] > 0.9
        assert report["output_bytes"] == (out / f"job{i}.mp4").stat().st_size
    broken = json.loads((out / "broken.report.json").read_text())
    assert broken["status"] == "failed" and broken["error_type"] == "InputError" and "missing.wav" in broken["error"]
    assert not (out / "broken.mp4").exists()
    print(f"local batch of 7 jobs on 2 workers: {seconds:.1f} s")

    # a re-run skips what is done and current; the broken row is tried again
    t = time.perf_counter()
    assert cli.main(["-q", "batch", str(jobs_csv), "--out-dir", str(out)]) == 1
    again = json.loads((out / "jobs.summary.json").read_text())
    assert again["counts"] == {"total": 7, "ok": 0, "failed": 1, "skipped": 6}
    assert time.perf_counter() - t < 15


def _ray_workers_running(name: str = "ray::run_job") -> list[int]:
    """This process's own Ray workers running `name` (descendants: the local cluster's raylet is our child), never
    another test run's on the same host."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(name.encode()) and _descends_from_us(int(entry)):
                pids.append(int(entry))
    return pids


def _descends_from_us(pid: int) -> bool:
    me = os.getpid()
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])  # the parent's pid
        except (OSError, IndexError, ValueError):
            return False
        if pid == me:
            return True
    return False


@pytest.mark.slow
def test_ray_batch_survives_a_killed_worker_and_matches_the_local_run(local_batch, tmp_path):
    pytest.importorskip("ray")
    jobs_csv, local_out, _, _ = local_batch
    killed: list[int] = []
    stop = threading.Event()

    def killer():  # kill one worker while it dubs (a second after the first task started and marked its attempt)
        while not stop.is_set():
            pids = _ray_workers_running()
            if pids and len(list((tmp_path / "ray").glob(".*.attempts.json"))) >= len(pids):  # each has its marker
                time.sleep(1.0)
                if pids[0] in _ray_workers_running():
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                    return
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    t = time.perf_counter()
    try:
        summary = batch.run_batch(jobs_csv, tmp_path / "ray", retries=2, ray="local")
    finally:
        stop.set()
        thread.join(5)
    seconds = time.perf_counter() - t
    assert killed, "no Ray worker was running a job to kill"
    assert summary.data["counts"] == {"total": 7, "ok": 6, "failed": 1, "skipped": 0}  # no job lost
    reports = [json.loads((tmp_path / "ray" / f"job{i}.report.json").read_text()) for i in range(6)]
    assert all(r["status"] == "ok" and r["runner"] == "ray" for r in reports)
    lost = [r for r in reports if r["attempts"] > 1]
    assert lost and "ended without a result" in lost[0]["errors"][0]  # the killed attempt shows in its report
    assert not [p for p in (tmp_path / "ray").iterdir() if p.name.startswith(".")]  # no temporary file left
    for i, report in enumerate(reports):
        local = json.loads((local_out / f"job{i}.report.json").read_text())
        assert len(report["frames_sha256"]) == 64  # a job's report names its frames' digest
        assert report["frames_sha256"] == local["frames_sha256"], f"job{i}: rendered frames differ"
        assert _frame_hash(tmp_path / "ray" / f"job{i}.mp4") == _frame_hash(local_out / f"job{i}.mp4"), f"job{i}"
    print(f"Ray batch with worker {killed[0]} killed: {seconds:.1f} s; retried job: {lost[0]['output']}")


@pytest.mark.slow
def test_long_job_pieces_run_as_ray_tasks_and_match_the_local_run(tmp_path):
    pytest.importorskip("ray")
    from training.evaluate import cut_audio, cut_video

    data = require_data("video/hdtf_katiehill_8s.mp4", "audio/en_jfk_11s.wav")
    cut_video(data / "video/hdtf_katiehill_8s.mp4", 0.0, 3.0, tmp_path / "v.mp4")
    cut_audio(data / "audio/en_jfk_11s.wav", 0.0, 5.0, tmp_path / "a.wav")
    jobs_csv = _csv(tmp_path / "jobs.csv", [["v.mp4", "a.wav", "", "", "long.mp4"]])
    local = batch.run_batch(jobs_csv, tmp_path / "local", split_seconds=4.0, piece_seconds=1.0)
    assert local.data["counts"]["ok"] == 1
    seen: set = set()
    stop = threading.Event()

    def watch():  # the pieces' Ray tasks, seen as worker processes
        while not stop.is_set():
            seen.update(_ray_workers_running("ray::_render_share"))
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        spread = batch.run_batch(jobs_csv, tmp_path / "ray", ray="local", workers=2, split_seconds=4.0,
                                 piece_seconds=1.0)
    finally:
        stop.set()
        thread.join(5)
    assert spread.data["counts"]["ok"] == 1
    assert len(seen) >= 2, "the pieces did not run as Ray tasks on two workers"
    assert _frame_hash(tmp_path / "ray" / "long.mp4") == _frame_hash(tmp_path / "local" / "long.mp4")
    assert media.probe_video(tmp_path / "ray" / "long.mp4").n_frames == 125
