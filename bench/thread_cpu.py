"""CPU time per thread of this process over a span of work, grouped by what the threads do (Linux only).

    with ThreadCPU() as cpu:
        work()
    print(cpu.summary())

A daemon thread reads /proc/self/task/*/stat every 20 ms and keeps each thread's last user + system time, so threads
that end during the span (a pool's) are counted up to their last reading (within 20 ms of CPU). The reader is a Python
thread: a thread that lives only while native code holds the GIL (pocketsphinx building a decoder) is never seen, and
the summary gives the threads counted beside the process's total. Threads are grouped
by their Python name (lipdub-draw, lipdub-speech, ...) or, for native threads, by the name the library gives them
(FFmpeg's decoder threads "av:h264:df0", MediaPipe's "mediapipe/N"). Native threads without a name of their own
carry the process's ("python"): in a dub these are x264's threads (and OpenCV's worker pool), shown as
"x264 + unnamed native". Each reading also counts the threads ready to run (state R: on a CPU or waiting for one),
from which `idle_host` estimates the span's wall time on an otherwise idle host (bench.speed prints it: the wall times
of a shared host say little). The sampler's own CPU (`own`: ~0.02 s per second of wall time; 0.27 s
of an 11 s prepared 720p dub with open(), 0.18-0.24 s with os.read) is measured and left out of `total`, so that
`total` is the work's alone.
"""

from __future__ import annotations

import os
import re
import resource
import threading
import time
from collections import Counter, defaultdict

# (lipdub-live-audio, -video, -track and -render are live mode's four threads: each its own group)
GROUPS = ((re.compile(r"^av:"), "decoder (FFmpeg threads)"), (re.compile(r"^mediapipe/"), "MediaPipe threads"),
          (re.compile(r"^(lipdub-[a-z]+(?:-[a-z]+)*)"), None), (re.compile(r"^MainThread$"), "main thread"))


def group_of(name: str) -> str:
    for pattern, label in GROUPS:
        m = pattern.match(name)
        if m:
            return label or m.group(1)
    if name == "python" or name.startswith("python"):
        return "x264 + unnamed native"
    return name


def _ticks(tid: str) -> tuple[float, str, str] | None:
    """A thread's (user + system clock ticks, name, state: R on a CPU or ready for one, S asleep, ...)."""
    try:  # os.read, not open(): a text file object costs the sampler ~30 % more CPU
        fd = os.open(f"/proc/self/task/{tid}/stat", os.O_RDONLY)
        try:
            st = os.read(fd, 4096).decode("utf-8", "replace")
        finally:
            os.close(fd)
    except OSError:  # the thread ended
        return None
    fields = st[st.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12]), st[st.index("(") + 1:st.rindex(")")], fields[0]


class ThreadCPU:
    """Per-thread CPU seconds of the work inside the `with` block (see the module doc)."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.available = os.path.isdir("/proc/self/task")
        self._tick = os.sysconf("SC_CLK_TCK") if self.available else 100
        self._base: dict[int, float] = {}
        self._last: dict[int, tuple[float, str]] = {}
        self._ready: set[int] = set()  # the threads ready to run (state R) at the last reading
        # every reading (~10 MB a minute): (wall time, {thread id: (CPU s, name)}), and how many threads were ready
        self.samples: list[tuple[float, dict[int, tuple[float, str]]]] = []
        self.ready: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-thread-cpu", daemon=True)
        self.total = 0.0  # the process's CPU over the span, less the sampler's own
        self.own = 0.0  # the sampler thread's CPU (reading /proc every 20 ms: ~0.02 s per second of wall)

    def _read(self, names: dict[int, str]) -> None:
        self._ready = set()
        for tid in os.listdir("/proc/self/task"):
            got = _ticks(tid)
            if got is None or int(tid) == self._thread.native_id:
                continue
            t = int(tid)
            name = names.get(t) or (self._last[t][1] if t in self._last else got[1])
            self._last[t] = (got[0] / self._tick, name)
            if got[2] == "R":
                self._ready.add(t)
        self.samples.append((time.perf_counter(), dict(self._last)))
        self.ready.append(len(self._ready))

    def _run(self) -> None:
        t0 = time.thread_time()
        while not self._stop.is_set():
            self._read({t.native_id: t.name for t in threading.enumerate()})
            self._stop.wait(self.interval)
        self.own = time.thread_time() - t0

    def __enter__(self):
        r = resource.getrusage(resource.RUSAGE_SELF)
        self._cpu0 = r.ru_utime + r.ru_stime
        if self.available:
            for tid in os.listdir("/proc/self/task"):
                got = _ticks(tid)
                if got is not None:
                    self._base[int(tid)] = got[0] / self._tick
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.available:
            time.sleep(self.interval)
            self._stop.set()
            self._thread.join()
            self._read({t.native_id: t.name for t in threading.enumerate()})
        r = resource.getrusage(resource.RUSAGE_SELF)
        self.total = r.ru_utime + r.ru_stime - self._cpu0 - self.own
        return False

    def idle_host(self, t0: float | None = None, t1: float | None = None, bucket: float = 0.1, cores: int = 2
                  ) -> tuple[float, float]:
        """(an estimate of the wall time the work between wall times t0 and t1 (perf_counter; default: the whole
        span) would take on an otherwise idle host of `cores` cores, the mean number of threads ready then). Per
        `bucket` of wall time: the CPU the threads got (each sampling interval's in the bucket of its middle), over
        the cores they could have kept busy: min(cores, the mean of the threads ready at its readings), at least one
        (a dub waits on nothing outside it: what it reads is cached). On a loaded host a thread waits for a CPU that
        an idle one would give it at once; a thread that waits on another of the process's (a lock, the GIL, a
        future, a queue) is not ready, so fewer than `cores` ready is a core the work itself leaves idle; and no
        thread runs on two cores. Checked on work of known idle-host time run at load ~18 (one, two and three threads
        burning CPU, two relaying work, 0.6 s each: 0.59-0.64 s; a GIL-holding sort beside a Python loop: 1.45 s for
        1.48 s of CPU); a prepared 720p dub reads ~5 %, a first dub ~10 % short of an idle host's measured wall."""
        t0 = self.samples[0][0] if t0 is None and self.samples else t0
        t1 = self.samples[-1][0] if t1 is None and self.samples else t1
        cpu: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))  # bucket -> thread -> CPU s
        ready: dict[int, list[int]] = defaultdict(list)
        for ((ta, before), ra), (tb, after) in zip(zip(self.samples, self.ready), self.samples[1:]):
            mid = (ta + tb) / 2
            if t0 <= mid < t1:
                b = int((mid - t0) / bucket)
                for tid, (sec, _) in after.items():
                    cpu[b][tid] += sec - before[tid][0] if tid in before else sec
                ready[b].append(ra)
        # (no thread runs on two cores: the sampler, a Python thread, reads nothing while native code holds the GIL,
        # so a reading before such a stretch may count threads that then waited for the GIL as ready)
        wall = sum(max(max(c.values()), sum(c.values()) / min(cores, max(1.0, sum(ready[b]) / len(ready[b]))))
                   for b, c in cpu.items())
        counts = [r for rs in ready.values() for r in rs]
        return wall, sum(counts) / len(counts) if counts else 0.0

    def groups(self) -> Counter:
        """CPU seconds per thread group over the span."""
        out: Counter = Counter()
        for tid, (seconds, name) in self._last.items():
            spent = seconds - self._base.get(tid, 0.0)
            if spent > 0:
                out[group_of(name)] += spent
        return out

    def summary(self) -> str:
        if not self.available:
            return "per-thread CPU: not available on this system"
        g = self.groups()
        counted = sum(g.values())
        parts = [f"{name} {s:.2f}" for name, s in g.most_common() if s >= 0.01]
        return (f"CPU by thread, s: " + ", ".join(parts) +
                f" (threads counted {counted:.2f} of the process's {self.total:.2f}; the sampler's own "
                f"{self.own:.2f} left out of both)")
