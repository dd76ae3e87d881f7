"""A timeline of a prepared dub (with --cold, the first dub's too): how many cores each of its thread groups keeps
busy, moment by moment.

    python -m bench.timeline [--size 1280x720 | source] [--runs 2] [--bucket 0.25] [--rows] [--cold]

The clip and audio are bench.speed's (scaled with --size as there). One cold dub prepares the video (track and atlas
cached; timed as the others with --cold), then each run is a prepared dub, its threads sampled as bench.thread_cpu samples them (/proc/self/task every
20 ms). Printed: the dub's steps (functions of lipdub.pipeline.offline, wrapped to mark where they start and end),
each with its wall time and the CPU each thread group spent in it (a step whose CPU is one group's alone kept one core
busy, whatever the host's load); with --rows also the timeline in rows of `--bucket` seconds, each group's CPU in that
span as a share of one core. On an idle host a row whose shares add to well under 2.0 is a moment a core idled; on a
loaded one the host may have given the core to another job (the columns are this process's alone). So each reading
also counts the dub's threads ready to run (state R: on a CPU or waiting for one), and each step and the whole dub get
an estimate of their wall time on an idle 2-core host (Timeline.idle_host): fewer than 2 threads ready is a core the
dub itself leaves idle, whatever the load.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

from bench.speed import DATA
from bench.thread_cpu import ThreadCPU, group_of

STEPS = ("_analyse_speech_beside_tracking", "load_track", "own_renderer", "_plan_motion", "_plan_rendering",
         "filmed_pauses", "Ahead.run", "_render_and_encode")
SHORT = {"x264 + unnamed native": "x264", "decoder (FFmpeg threads)": "decode", "main thread": "main",
         "lipdub-draw": "draw", "lipdub-speech": "speech", "lipdub-encoder": "encoder", "lipdub-aligner": "aligner"}


class Timeline(ThreadCPU):
    """bench.thread_cpu's sampler, its readings read back by span (spent) and by bucket of wall time (rows)."""

    def __enter__(self):
        self.t0 = time.perf_counter()
        self._read({t.native_id: t.name for t in threading.enumerate()})
        return super().__enter__()

    def spent(self, t0: float, t1: float) -> dict[str, float]:
        """CPU seconds per group between wall times t0 and t1 (perf_counter): each thread's last reading in the span
        less its last one before it (a thread that starts in the span: from 0)."""
        first: dict[int, float] = {}
        last: dict[int, tuple[float, str]] = {}
        for t, now in self.samples:
            for tid, (sec, name) in now.items():
                if t <= t0:
                    first[tid] = sec
                elif t <= t1 + self.interval:
                    first.setdefault(tid, 0.0)
                    last[tid] = (sec, name)
        out: dict[str, float] = defaultdict(float)
        for tid, (sec, name) in last.items():
            if sec > first[tid]:
                out[SHORT.get(group_of(name), group_of(name))] += sec - first[tid]
        return dict(out)

    def rows(self, bucket: float) -> tuple[list[str], list[tuple[float, dict[str, float]]]]:
        """Per bucket of wall time: CPU seconds per group / bucket (cores busy)."""
        out: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for (t0, before), (t1, after) in zip(self.samples, self.samples[1:]):
            b = int(((t0 + t1) / 2 - self.t0) / bucket)  # each sampling interval's CPU in the bucket of its middle
            for tid, (sec, name) in after.items():
                spent = sec - before[tid][0] if tid in before else sec  # a new thread: all its CPU is new
                if spent > 0:
                    group = group_of(name)
                    out[b][SHORT.get(group, group)] += spent / bucket
        groups = sorted({g for row in out.values() for g in row}, key=lambda g: -sum(r.get(g, 0) for r in out.values()))
        return groups, [(b * bucket, dict(out[b])) for b in range(max(out) + 1 if out else 0)]


def wrap_steps(marks: list):
    """Record each step's start and end (wall seconds) in `marks`; returns a function that unwraps them. A step is a
    function of lipdub.pipeline.offline or a method ("Class.method"); one the code does not have is left out."""
    from lipdub.pipeline import offline

    originals = {}
    for name in STEPS:
        *owner, attr = name.split(".")
        holder = getattr(offline, owner[0], None) if owner else offline
        if holder is not None and hasattr(holder, attr):
            originals[name] = holder, attr, getattr(holder, attr)

    def wrapped(name, fn):
        def run(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                marks.append((name.strip("_"), t, time.perf_counter()))
        return run

    for name, (holder, attr, fn) in originals.items():
        setattr(holder, attr, wrapped(name, fn))
    return lambda: [setattr(holder, attr, fn) for holder, attr, fn in originals.values()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", default=str(DATA / "video" / "hdtf_katiehill_8s.mp4"))
    ap.add_argument("--audio", default=str(DATA / "audio" / "en_radio34_other_8s.wav"))
    ap.add_argument("--size", default="1280x720", help="WxH as bench.speed's (its scaled clip has no sound); "
                    "'source': the clip as it is, with its sound (whose pauses a dub reads)")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--bucket", type=float, default=0.25)
    ap.add_argument("--rows", action="store_true", help="print the timeline's rows, not only the steps'")
    ap.add_argument("--cold", action="store_true", help="the first dub (tracking, atlas) too, as run 0")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lipdub-timeline-") as tmp:
        tmp = Path(tmp)
        os.environ["LIPDUB_CACHE"] = str(tmp / "cache")
        import lipdub
        from bench.long_input import make_unit

        video = Path(args.video)
        if args.size != "source":
            width, height = (int(v) for v in args.size.lower().split("x"))
            video = tmp / f"clip_{width}x{height}.mp4"
            make_unit(Path(args.video), video, width, height)
        if not args.cold:
            lipdub.dub(video, args.audio, tmp / "cold.mp4")
        for run in range(0 if args.cold else 1, args.runs + 1):
            marks: list = []
            unwrap = wrap_steps(marks)
            try:
                with Timeline() as tl:
                    report = lipdub.dub(video, args.audio, tmp / f"run{run}.mp4")
            finally:
                unwrap()
            wall = time.perf_counter() - tl.t0
            groups, rows = tl.rows(args.bucket)
            quiet, ready = tl.idle_host(tl.t0, tl.t0 + wall)
            which = "first dub" if run == 0 else f"prepared dub {run}"
            print(f"\n{which}: {wall:.2f} s wall, {report.frames} frames ({report.frames / wall:.1f}/s); "
                  f"on an idle 2-core host ~{quiet:.2f} s ({report.frames / quiet:.1f}/s; threads ready "
                  f"{ready:.2f} on average; load {os.getloadavg()[0]:.1f})")
            print("steps: " + "; ".join(f"{n} {a - tl.t0:.2f}-{b - tl.t0:.2f} s" for n, a, b in
                                        sorted(marks, key=lambda m: m[1])))
            for n, a, b in sorted(marks, key=lambda m: m[1]):
                cpu = tl.spent(a, b)
                quiet, ready = tl.idle_host(a, b)
                print(f"  {n:32s} wall {b - a:5.2f} s, idle host ~{quiet:5.2f} s (ready {ready:4.2f}), "
                      f"CPU {sum(cpu.values()):5.2f} s: " +
                      ", ".join(f"{g} {v:.2f}" for g, v in sorted(cpu.items(), key=lambda x: -x[1]) if v >= 0.01))
            if not args.rows:
                continue
            print(f"{'t (s)':>6} " + " ".join(f"{g[:8]:>8}" for g in groups) + "   cores  ready  steps running")
            for t, row in rows:
                running = [n for n, a, b in marks if a - tl.t0 < t + args.bucket and b - tl.t0 > t]
                ready = tl.idle_host(tl.t0 + t, tl.t0 + t + args.bucket, args.bucket)[1]
                print(f"{t:6.2f} " + " ".join(f"{row.get(g, 0):8.2f}" for g in groups) +
                      f"   {sum(row.values()):5.2f}  {ready:5.2f}  {', '.join(running)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
