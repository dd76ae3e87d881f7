"""Fuzzing the input layer: mutated media files and profiles fed to lipdub.media.probe_video, iter_frames,
FrameReader (backward reads: seeks), load_audio and lipdub.profile.load. Every input must end in a result or a
lipdub.errors.LipdubError: never another exception, a hang (over --timeout seconds of CPU on one input, or ten times
that of wall clock) or a crash of the process.

    python -m bench.fuzz [--n 2000] [--seed 0] [--timeout 30] [--workers 2] [--seeds FILE...] [--keep DIR]

Seeds: small real media from ../shared/data (a GRID clip, an HDTF clip, a VFR clip, WAV, M4A, JPEG and PNG files)
plus generated ones (a tiny H.264 MP4, a WAV, a PNG, a profile built from the generated clip's arrays; a video and a
WAV with zero-length streams). Mutations (deterministic from --seed): truncation, flipped bytes in the first 4 KB
(headers) or in the rest (packets), a zeroed block, a repeated block, the unchanged file under a wrong extension,
an empty file. Each input runs in a pool of worker processes: a worker past the timeout is killed ("hang"), one
that dies is a "crash". Prints the outcomes by kind and every input that is neither ok nor a LipdubError (with
--keep, those files are copied there to become regression cases). Exit status 1 when there is any.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LIPDUB_DATA") or ROOT.parent / "shared" / "data")
REAL_SEEDS = ("video/grid_bbaf2n.mpg", "video/hdtf_katiehill_8s.mp4", "video/interview_vfr_6s.mp4",
              "audio/es_spanish1_5s.wav", "audio/en_accented_17s.m4a", "images/obama_portrait.jpg",
              "images/woman_frontal.png")
MEDIA_TARGETS = ("probe", "frames", "reader", "audio")
EXTENSIONS = (".mp4", ".mkv", ".mov", ".wav", ".m4a", ".mp3", ".jpg", ".png", ".webp", ".mpg", ".lipdub", "")
MAX_FRAMES = 30  # frames read per input by the "frames" target


@dataclass(frozen=True)
class Case:
    path: str
    target: str
    mutation: str


# ----------------------------------------------------------------------------------------------------- seeds


def generated_seeds(folder: Path) -> list[Path]:
    """Tiny inputs made here: an H.264+AAC MP4, a WAV, a PNG, a profile, and files with zero-length streams."""
    import wave

    import av
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    frames = [np.ascontiguousarray(np.broadcast_to(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None],
                                                   (48, 64, 3)) ^ np.uint8(k * 9)) for k in range(12)]
    mp4 = folder / "tiny.mp4"
    with av.open(str(mp4), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=16000)
        a.layout = "mono"
        for f in frames:
            c.mux(v.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(v.encode(None))
        tone = (0.2 * np.sin(np.arange(8000) / 16000 * 2 * np.pi * 220)).astype(np.float32)[None]
        af = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
        af.sample_rate = 16000
        c.mux(a.encode(af))
        c.mux(a.encode(None))
    wav = folder / "tiny.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes((rng.standard_normal(4000) * 3000).astype("<i2").tobytes())
    empty_wav = folder / "no_samples.wav"
    with wave.open(str(empty_wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
    no_frames = folder / "no_frames.mp4"
    with av.open(str(no_frames), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        c.start_encoding()  # the header is written without any frame
        c.mux(v.encode(None))
    png = folder / "tiny.png"
    cv2.imwrite(str(png), frames[3])
    return [mp4, wav, empty_wav, no_frames, png, tiny_profile(folder / "tiny.lipdub")]


def tiny_profile(path: Path) -> Path:
    """A structurally valid profile file (an empty atlas on a random mean face): what the loader is fuzzed with."""
    import numpy as np

    from lipdub import profile, render
    from lipdub.profile.articulation import Articulation

    canonical = np.random.default_rng(1).standard_normal((478, 3))
    actor = profile.Profile(render.Atlas(canonical, 100.0), render.MouthModel(canonical, 0.4, 1.0), Articulation(),
                            {"frames": 0})
    return actor.save(path)


# -------------------------------------------------------------------------------------------------- mutations


def mutate(seed: Path, rng: random.Random, out_dir: Path, k: int) -> tuple[Path, str]:
    """One mutated copy of `seed` in `out_dir`; returns (path, mutation name)."""
    data = bytearray(seed.read_bytes())
    n = len(data)
    kind = rng.choice(("truncate", "flip_header", "flip_body", "zero_block", "repeat_block", "wrong_ext", "empty"))
    ext = seed.suffix
    if kind == "truncate":
        data = data[:rng.randrange(0, max(1, n))]
    elif kind == "flip_header":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(0, min(n, 4096))
            data[i] ^= 1 << rng.randrange(8) if rng.random() < 0.5 else rng.randrange(1, 256)
    elif kind == "flip_body" and n > 4096:
        for _ in range(rng.randint(1, 64)):
            data[rng.randrange(4096, n)] = rng.randrange(256)
    elif kind == "zero_block":
        i = rng.randrange(0, n)
        data[i:i + rng.randint(1, 4096)] = bytes(min(n - i, rng.randint(1, 4096)))
        data = data[:n]
    elif kind == "repeat_block":
        i = rng.randrange(0, n)
        block = data[i:i + rng.randint(1, 8192)]
        data[i:i] = block * rng.randint(1, 4)
    elif kind == "wrong_ext":
        ext = rng.choice([e for e in EXTENSIONS if e != seed.suffix])
    elif kind == "empty":
        data = bytearray()
    else:  # a flip_body of a file without a body
        kind = "flip_header"
        if n:
            data[rng.randrange(n)] ^= 0xFF
    path = out_dir / f"{k:05d}-{seed.stem}-{kind}{ext}"
    path.write_bytes(bytes(data))
    return path, kind


def make_cases(seeds: list[Path], n: int, seed: int, out_dir: Path) -> list[Case]:
    """`n` cases: the seeds themselves once per target, then mutations, each fed to every target of its kind."""
    rng = random.Random(seed)
    cases: list[Case] = []

    def targets(p: Path, original: Path) -> tuple[str, ...]:
        return ("profile",) if original.suffix == ".lipdub" else MEDIA_TARGETS

    for s in seeds:
        cases += [Case(str(s), t, "none") for t in targets(s, s)]
    k = 0
    while len(cases) < n:
        original = rng.choice(seeds)
        path, kind = mutate(original, rng, out_dir, k)
        k += 1
        for t in targets(path, original):
            cases.append(Case(str(path), t, kind))
    return cases[:n]


# ------------------------------------------------------------------------------------------------------ running


def run_target(target: str, path: str) -> str:
    """Feed `path` to one input function; returns a short description of the result."""
    from lipdub import media, profile

    if target == "probe":
        info = media.probe_video(path)
        return f"{info.width}x{info.height} {info.n_frames} frames"
    if target == "frames":
        n = 0
        for fr in media.iter_frames(path):
            fr.rgb
            n += 1
            if n >= MAX_FRAMES:
                break
        return f"{n} frames"
    if target == "reader":  # random access: forward, backward (seeks), past a damaged end
        info = media.probe_video(path)
        with media.FrameReader(path, info) as reader:
            for i in sorted({info.n_frames - 1, 0, info.n_frames // 2, min(info.n_frames - 1, 3)}, reverse=True):
                reader.get(i)
        return f"{info.n_frames} frames"
    if target == "audio":
        x, sr = media.load_audio(path, 16000)
        return f"{len(x)} samples"
    if target == "profile":
        actor = profile.load(path)
        return f"{actor.atlas.n} mouths"
    raise ValueError(target)


def _worker(conn) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from lipdub.errors import LipdubError

    while True:
        msg = conn.recv()
        if msg is None:
            return
        target, path = msg
        try:
            run_target(target, path)
            outcome = "ok"
        except LipdubError as exc:
            outcome = f"error:{type(exc).__name__}"
        except BaseException as exc:  # noqa: BLE001 - what the fuzzing looks for
            outcome = f"BUG:{type(exc).__name__}: {str(exc)[:200]}"
        conn.send(outcome)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` (all its threads) from /proc; None where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Pool:
    """Worker processes fed one case at a time; a worker past `timeout` is killed and replaced."""

    def __init__(self, workers: int, timeout: float):
        self.ctx = mp.get_context("spawn")
        self.timeout = timeout
        self.slots = [self._start() for _ in range(workers)]

    def _start(self):
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        proc.start()
        return [proc, parent, None, 0.0, 0.0]  # process, pipe, case, start time, CPU seconds at the start

    def _overdue(self, proc, t0: float, cpu0: float) -> bool:
        """A hang: over `timeout` seconds of the worker's CPU on one input (spinning), or 10x that of wall clock
        (blocked). Wall time alone flagged inputs that were only starved on a loaded host (a 2.7 s input took over
        30 s at nice 19 beside other jobs)."""
        wall = time.monotonic() - t0
        if wall <= self.timeout:
            return False
        cpu = cpu_seconds(proc.pid)
        return wall > 10 * self.timeout or cpu is None or cpu - cpu0 > self.timeout

    def run(self, cases: list[Case], on_result) -> None:
        pending = list(reversed(cases))
        while pending or any(s[2] is not None for s in self.slots):
            for i, slot in enumerate(self.slots):
                proc, conn, case, t0, cpu0 = slot
                if case is None:
                    if pending:
                        case = pending.pop()
                        conn.send((case.target, case.path))
                        self.slots[i] = [proc, conn, case, time.monotonic(), cpu_seconds(proc.pid) or 0.0]
                    continue
                if conn.poll(0.01):
                    try:
                        outcome = conn.recv()
                    except EOFError:
                        outcome = None
                    if outcome is not None:
                        on_result(case, outcome)
                        self.slots[i] = [proc, conn, None, 0.0, 0.0]
                        continue
                if not proc.is_alive() or conn.closed:
                    on_result(case, f"crash (exit {proc.exitcode})")
                    self.slots[i] = self._start()
                elif self._overdue(proc, t0, cpu0):
                    proc.kill()
                    proc.join()
                    on_result(case, f"hang (over {self.timeout:g} s of CPU or {10 * self.timeout:g} s)")
                    self.slots[i] = self._start()

    def close(self) -> None:
        for proc, conn, *_ in self.slots:
            try:
                conn.send(None)
            except OSError:
                pass
            proc.join(5)
            if proc.is_alive():
                proc.kill()


def fuzz(seeds: list[Path], n: int, seed: int = 0, timeout: float = 30.0, workers: int = 2,
         work: Path | None = None) -> list[tuple[Case, str]]:
    """Run `n` cases; returns every (case, outcome)."""
    work = work or Path(tempfile.mkdtemp(prefix="lipdub-fuzz-"))
    cases = make_cases(seeds, n, seed, work)
    results: list[tuple[Case, str]] = []
    pool = Pool(workers, timeout)
    try:
        pool.run(cases, lambda case, outcome: results.append((case, outcome)))
    finally:
        pool.close()
    return results


def is_bad(outcome: str) -> bool:
    return not (outcome == "ok" or outcome.startswith("error:"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="inputs fed (default 2000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds before an input counts as a hang")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seeds", nargs="*", type=Path, help="seed files (default: shared media + generated)")
    ap.add_argument("--keep", type=Path, help="copy every bad input into this folder")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="lipdub-fuzz-"))
    seeds = args.seeds or [DATA / s for s in REAL_SEEDS if (DATA / s).is_file()] + generated_seeds(work / "seeds")
    t = time.perf_counter()
    results = fuzz(seeds, args.n, args.seed, args.timeout, args.workers, work)
    wall = time.perf_counter() - t
    print(f"{len(results)} inputs from {len(seeds)} seeds in {wall:.0f} s (seed {args.seed}, timeout "
          f"{args.timeout:g} s)")
    by_kind = Counter((case.target, "BUG" if outcome.startswith("BUG") else outcome.split(" ")[0])
                      for case, outcome in results)
    for (target, outcome), count in sorted(by_kind.items()):
        print(f"  {target:8} {outcome:28} {count}")
    bad = [(c, o) for c, o in results if is_bad(o)]
    for case, outcome in bad:
        print(f"BAD {case.target} {case.mutation} {case.path}: {outcome}")
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy2(case.path, args.keep / Path(case.path).name)
    print(f"{len(bad)} bad inputs" if bad else "no bad inputs")
    shutil.rmtree(work, ignore_errors=True) if not bad else None
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
