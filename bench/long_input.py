"""Long-input benchmark: peak memory and wall time of `lipdub dub` on an N-minute 1080p input.

    .venv/bin/python bench/long_input.py --minutes 5 10 20 [--size 1920x1080] [--work-dir DIR] [--keep]
    .venv/bin/python bench/long_input.py --minutes 60                 # the goal case: peak RSS <= 1 GB
    .venv/bin/python bench/long_input.py --minutes 5 --resume-check   # kill at half + --resume = uninterrupted
    .venv/bin/python -m bench.long_input --minutes 0.1333 --size 3840x2160 \
        --source ../shared/data/video/hdtf_katiehill_8s.mp4   # the 8 s 4K close-up (200 frames): peak RSS <= 1 GB
    .venv/bin/python bench/long_input.py --minutes 60 --work-dir W --cache-dir W/cache-X  # reuse a run's track
    .venv/bin/python -m bench.long_input --minutes 60 --speech-only   # the speech stage and motion plan alone
    .venv/bin/python bench/long_input.py --minutes 60 --work-dir W --cache-dir W/cache-X --resume-check \
        --reference W/dub_60min.mp4   # killed + resumed vs an uninterrupted --resume dub kept from an earlier run

The input is assembled at bench time in a temporary folder (never in the repository) from the shared test clips:
../shared/data/video/cnn_anchor_71s.mp4 scaled to the frame height and padded to WIDTHxHEIGHT, encoded once with
libx264 and then repeated by copying its packets (no re-encode) until N minutes are covered; the new audio is
shared English speech files (en_commentary_60s, en_jfk_11s, en_woman_outdoor_dub_10s, en_radio34_other_8s) one after
the other, repeated and cut to exactly N minutes, written as 16 kHz mono 16-bit WAV.

Each dub runs `python -m lipdub dub VIDEO AUDIO -o OUT` in a child process under `nice` with a fresh LIPDUB_CACHE;
its peak RSS is the kernel's high-water mark for that child (os.wait4 → ru_maxrss), and /proc/PID/status is polled
once a second for the RSS over time (written next to the output as rss.tsv). With --resume-check the same dub runs
twice with --resume, once uninterrupted and once killed (SIGKILL) when half of its pieces are finished and then
continued; the decoded frames of both outputs are hashed and compared. No assertions: the numbers are printed.

--speech-only runs, in a child process the same way, only what the dub does with the audio before rendering: the
speech analysis (in pieces, as the dub analyses long audio), the motion plan at 25 fps, and the track saved as an
alignment (--save-alignment), then in a second process loaded (--alignment); each step's RSS and the peak so far
are printed. --no-plan leaves the motion plan out.
--speech-copies K joins the analysed track K times before the motion plan (the analysis's own memory is that of one
piece whatever the length; the joined arrays, the plan and the alignment file grow with it).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LIPDUB_DATA") or ROOT.parent / "shared" / "data")  # as training.manifest.data_root
SOURCE = DATA / "video" / "cnn_anchor_71s.mp4"
SPEECH = ["en_commentary_60s.wav", "en_jfk_11s.wav", "en_woman_outdoor_dub_10s.wav", "en_radio34_other_8s.wav"]


# ------------------------------------------------------------------------------------------------------ assembly
def make_unit(source: Path, out: Path, width: int, height: int, crf: float = 20) -> tuple[int, Fraction]:
    """`source` scaled to `height` (keeping its aspect) and centred on a black WIDTHxHEIGHT frame, video only, no
    B-frames (so copies join by shifting timestamps). Returns (frames, frame rate)."""
    import av

    tmp = out.with_name(out.name + ".tmp.mp4")
    n = 0
    with av.open(str(source)) as src, av.open(str(tmp), "w") as dst:
        vs = src.streams.video[0]
        vs.thread_type = "AUTO"
        rate = Fraction(vs.average_rate or 25)
        sw, sh = vs.codec_context.width, vs.codec_context.height
        th = height
        tw = min(width, int(round(sw * th / sh / 2)) * 2)
        x0 = (width - tw) // 2
        enc = dst.add_stream("libx264", rate=rate)
        enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
        enc.options = {"crf": f"{crf:g}", "preset": "veryfast", "x264-params": "bframes=0"}
        canvas = np.zeros((height, width, 3), np.uint8)
        for frame in src.decode(vs):
            canvas[:, x0:x0 + tw] = frame.reformat(width=tw, height=th, format="rgb24").to_ndarray()
            f = av.VideoFrame.from_ndarray(canvas, format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = n, 1 / rate
            for p in enc.encode(f):
                dst.mux(p)
            n += 1
        for p in enc.encode(None):
            dst.mux(p)
    os.replace(tmp, out)
    return n, rate


def repeat_video(unit: Path, out: Path, seconds: float) -> int:
    """Copies of `unit` (no B-frames, like a resumable dub's pieces) joined without re-encoding until `seconds` are
    covered; returns the frame count."""
    import av

    from lipdub import media

    with av.open(str(unit)) as probe:
        s = probe.streams.video[0]
        rate = Fraction(s.average_rate)
        unit_frames = sum(1 for p in probe.demux(s) if p.size)
    copies = math.ceil(seconds * rate / unit_frames)
    return media.join_segments([unit] * copies, out, rate)


def make_audio(out: Path, seconds: float, sr: int = 16000) -> None:
    """Shared English speech files one after the other, repeated and cut to `seconds`, as 16-bit mono WAV."""
    from lipdub import media

    clips = [media.load_audio(DATA / "audio" / name, sr)[0] for name in SPEECH if (DATA / "audio" / name).is_file()]
    if not clips:
        raise SystemExit(f"long_input: none of {SPEECH} found in {DATA / 'audio'}")
    need = int(round(seconds * sr))
    tmp = out.with_name(out.name + ".tmp.wav")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        written, i = 0, 0
        while written < need:
            x = clips[i % len(clips)][: need - written]
            w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
            written += len(x)
            i += 1
    os.replace(tmp, out)


def assemble(work: Path, minutes: float, width: int, height: int, source: Path) -> tuple[Path, Path]:
    """The N-minute video and audio in `work` (made once; reused when already there)."""
    tag = f"{width}x{height}"
    unit = work / f"unit_{source.stem}_{tag}.mp4"
    if not unit.is_file():
        t = time.perf_counter()
        n, rate = make_unit(source, unit, width, height)
        print(f"  unit {unit.name}: {n} frames at {float(rate):g} fps, {time.perf_counter() - t:.1f} s")
    video = work / f"long_{minutes:g}min_{tag}.mp4"
    if not video.is_file():
        frames = repeat_video(unit, video, minutes * 60)
        print(f"  video {video.name}: {frames} frames, {video.stat().st_size / 1e6:.0f} MB")
    audio = work / f"speech_{minutes:g}min.wav"
    if not audio.is_file():
        make_audio(audio, minutes * 60)
    return video, audio


# ------------------------------------------------------------------------------------------------------- running
def _rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_dub(video: Path, audio: Path, out: Path, cache: Path, extra: list[str] = (), nice: int = 5,
            kill_when=None) -> dict:
    """`lipdub dub` in a child process; returns wall time, peak RSS (MB), exit status and the RSS log."""
    env = dict(os.environ, LIPDUB_CACHE=str(cache), PYTHONPATH=str(ROOT))
    cmd = ["nice", "-n", str(nice), sys.executable, "-m", "lipdub", "--debug", "dub", str(video), str(audio),
           "-o", str(out), *extra]
    log_path = out.with_name(out.stem + ".log")
    rss_path = out.with_name(out.stem + ".rss.tsv")
    t0 = time.perf_counter()
    with open(log_path, "w") as log, open(rss_path, "w") as rss_log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        peak_polled, killed = 0, False
        rss_log.write("seconds\trss_mb\n")
        while True:
            done, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if done:
                break
            kb = _rss_kb(proc.pid)
            if kb is not None:
                peak_polled = max(peak_polled, kb)
                rss_log.write(f"{time.perf_counter() - t0:.1f}\t{kb / 1024:.0f}\n")
                rss_log.flush()
            if kill_when is not None and not killed and kill_when():
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
            time.sleep(1.0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    return {"wall": wall, "peak_mb": usage.ru_maxrss / 1024, "polled_mb": peak_polled / 1024,
            "rc": proc.returncode, "killed": killed, "cmd": cmd, "log": log_path, "rss": rss_path}


SPEECH_CHILD = """
import sys, time, resource
import numpy as np
from lipdub import motion, speech
from lipdub.core.memory import trim_heap
from lipdub.pipeline.speech_pieces import speech_in_pieces

def mb(what, t):
    trim_heap()
    rss = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS'))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f'  {what}: {time.perf_counter() - t:.0f} s, RSS {rss / 1024:.0f} MB, peak so far {peak / 1024:.0f} MB',
          flush=True)

audio, saved, copies, plan = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == 'plan'
t = time.perf_counter(); mb('imports', t)
if audio == '-':  # a second process: the saved alignment loaded alone
    t = time.perf_counter(); track = speech.SpeechTrack.load(saved); mb('alignment loaded (a process of its own)', t)
    sys.exit(0)
t = time.perf_counter(); track = speech_in_pieces(audio, None); mb('speech analysis (in pieces)', t)
if copies > 1:
    from lipdub.pipeline.speech_pieces import join_speech
    t = time.perf_counter(); track = join_speech([track] * copies)
    mb(f'the track joined {copies} times ({track.duration / 60:.0f} min)', t)
for name in ('mel', 'posteriors', 'components'):
    v = getattr(track, name)
    print(f'    {name}: {None if v is None else (v.shape, v.dtype.name, round(v.nbytes / 1e6))} MB', flush=True)
if plan:
    t = time.perf_counter()
    mouth = motion.mouth_track(track, np.arange(int(track.duration * 25)) / 25.0,
                               params=motion.MotionParams(model=motion.load_model()))
    mb('motion plan (25 fps)', t)
t = time.perf_counter(); track.save(saved); mb('saved as an alignment', t)
"""


def run_speech_only(audio: Path, work: Path, nice: int, copies: int = 1, plan: bool = True) -> dict:
    """SPEECH_CHILD in a child process under `nice` (analysis, plan, save), then again loading the saved alignment
    alone; their output printed, their peak RSS returned."""
    saved = work / f"{audio.stem}.alignment.json"
    peaks = []
    for args in ([str(audio), str(saved), str(copies), "plan" if plan else "-"], ["-", str(saved), "1", "-"]):
        cmd = ["nice", "-n", str(nice), sys.executable, "-c", SPEECH_CHILD, *args]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        _, status, usage = os.wait4(proc.pid, 0)
        rc = os.waitstatus_to_exitcode(status)
        size = saved.stat().st_size / 1e6 if saved.is_file() else math.nan
        print(f"  exit {rc}, wall {time.perf_counter() - t0:.0f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MB, "
              f"alignment file {size:.0f} MB")
        peaks.append(usage.ru_maxrss / 1024)
        if rc != 0:
            break
    saved.unlink(missing_ok=True)
    return {"rc": rc, "peak_mb": peaks}


def frame_hashes(path: Path) -> list[str]:
    """sha256 of every frame's pixels as decoded (yuv420p planes for lipdub's output): equal decoded pictures give
    equal RGB too, and skipping the colour conversion halves the time on an hour of 1080p."""
    from lipdub import media

    hashes = []
    for fr in media.iter_frames(path):
        decoded = fr._decoded
        pixels = decoded.to_ndarray() if decoded is not None else fr.rgb
        hashes.append(hashlib.sha256(pixels.tobytes()).hexdigest())
    return hashes


def hashes_side_by_side(a: Path, b: Path) -> tuple[list[str], list[str]]:
    """frame_hashes of two files, one process each (the two cores)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        fa, fb = pool.submit(frame_hashes, a), pool.submit(frame_hashes, b)
        return fa.result(), fb.result()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[5.0])
    ap.add_argument("--size", default="1920x1080", help="frame size WIDTHxHEIGHT (default 1920x1080)")
    ap.add_argument("--source", default=str(SOURCE), help="clip to repeat (default: cnn_anchor_71s.mp4)")
    ap.add_argument("--work-dir", help="assemble inputs and write outputs here (default: a temporary folder, removed)")
    ap.add_argument("--keep", action="store_true", help="keep the outputs (with --work-dir)")
    ap.add_argument("--nice", type=int, default=5, help="niceness of the dubs (default 5)")
    ap.add_argument("--resume-check", action="store_true",
                    help="also dub with --resume killed at half and continued; compare frame hashes")
    ap.add_argument("--reference", help="with --resume-check: an uninterrupted `--resume` dub of the same inputs "
                                        "made earlier (e.g. this script's run with --keep --dub-args=--resume), used "
                                        "instead of dubbing again; the main dub is skipped")
    ap.add_argument("--speech-only", action="store_true",
                    help="only the speech analysis, motion plan and alignment save/load of the N-minute audio")
    ap.add_argument("--speech-copies", type=int, default=1,
                    help="with --speech-only: the analysed track joined this many times before the motion plan, "
                         "save and load (an hour's track from 10 minutes analysed: --minutes 10 --speech-copies 6)")
    ap.add_argument("--no-plan", action="store_true", help="with --speech-only: no motion plan")
    ap.add_argument("--dub-args", default="", help="extra `lipdub dub` options, space-separated")
    ap.add_argument("--cache-dir", help="LIPDUB_CACHE of the dubs (default: a fresh one per length, so each dub "
                                        "tracks its input); pointing at an earlier run's keeps what it prepared "
                                        "(face track, mouth atlas): say so when reporting")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    source = Path(args.source)
    if not source.is_file():
        print(f"long_input: {source} is missing (needs the shared test data)", file=sys.stderr)
        return 2
    extra = args.dub_args.split()

    own_tmp = None
    if args.work_dir:
        work = Path(args.work_dir)
        work.mkdir(parents=True, exist_ok=True)
    else:
        own_tmp = work = Path(tempfile.mkdtemp(prefix="lipdub-long-"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}; "
          f"work dir {work}")
    rows = []
    try:
        for minutes in args.minutes:
            if args.speech_only:
                audio = work / f"speech_{minutes:g}min.wav"
                if not audio.is_file():
                    make_audio(audio, minutes * 60)
                print(f"\n{minutes:g} min of speech: analysis, motion plan, alignment saved and loaded")
                run_speech_only(audio, work, args.nice, args.speech_copies, not args.no_plan)
                continue
            print(f"\n{minutes:g} min at {width}x{height}: assembling")
            video, audio = assemble(work, minutes, width, height, source)
            out = work / f"dub_{minutes:g}min.mp4"
            cache = Path(args.cache_dir) if args.cache_dir else Path(tempfile.mkdtemp(prefix="cache-", dir=work))
            frames = round(minutes * 60 * 25)
            if args.reference:
                if not args.resume_check or not Path(args.reference).is_file():
                    print("long_input: --reference needs --resume-check and an existing file", file=sys.stderr)
                    return 2
                rows.append(resume_check(video, audio, work, cache, minutes, extra, args.nice,
                                         Path(args.reference)))
                continue
            print(f"  dubbing -> {out}")
            r = run_dub(video, audio, out, cache, extra, args.nice)
            print(f"  exit {r['rc']}, wall {r['wall']:.0f} s, peak RSS {r['peak_mb']:.0f} MB "
                  f"(polled {r['polled_mb']:.0f} MB); command: {' '.join(r['cmd'])}")
            if r["rc"] != 0:
                print(f"  FAILED: see {r['log']}")
                print(r["log"].read_text()[-3000:])
            rows.append((minutes, frames, r))
            if args.resume_check and r["rc"] == 0:
                rows.append(resume_check(video, audio, work, cache, minutes, extra, args.nice))
            if not args.keep:
                out.unlink(missing_ok=True)
            if not args.cache_dir:
                shutil.rmtree(cache, ignore_errors=True)
        if args.speech_only:
            return 0
        print(f"\nsummary ({width}x{height} input, 25 fps, new audio as long as the input; peak RSS = ru_maxrss "
              "of the dub's process)")
        print(f"{'minutes':>8} {'frames':>7} {'wall s':>8} {'frames/s':>8} {'peak RSS MB':>12}  status")
        for minutes, frames, r in rows:
            status = "ok" if r["rc"] == 0 else f"exit {r['rc']} (did not finish: wall and peak so far)"
            fps = f"{frames / r['wall']:>8.1f}" if r["rc"] == 0 else f"{'-':>8}"
            print(f"{minutes:>8g} {frames:>7d} {r['wall']:>8.0f} {fps} {r['peak_mb']:>12.0f}  {r.get('label', status)}")
    finally:
        if own_tmp is not None:
            shutil.rmtree(own_tmp, ignore_errors=True)
    return 0


def resume_check(video: Path, audio: Path, work: Path, cache: Path, minutes: float, extra, nice: int,
                 reference: Path | None = None):
    """--resume uninterrupted (or `reference`, made so earlier) vs killed when half its pieces are done and continued:
    decoded frames compared."""
    whole, resumed = work / f"whole_{minutes:g}min.mp4", work / f"resumed_{minutes:g}min.mp4"
    if reference is None:
        a = run_dub(video, audio, whole, cache, [*extra, "--resume"], nice)
    else:
        whole, a = reference, {"rc": 0, "wall": math.nan, "peak_mb": math.nan}
        print(f"  uninterrupted: {reference} (made earlier)")
    parts = work / f".{resumed.name}.lipdub-parts"
    n_pieces = math.ceil(minutes * 60 / 10.0)

    def half_done() -> bool:
        return parts.is_dir() and len(list(parts.glob("part*.json"))) >= n_pieces // 2

    b1 = run_dub(video, audio, resumed, cache, [*extra, "--resume"], nice, kill_when=half_done)
    kept = len(list(parts.glob("part*.json"))) if parts.is_dir() else 0
    print(f"  killed run: killed={b1['killed']}, exit {b1['rc']}, {kept} of {n_pieces} pieces kept, "
          f"partial output present: {resumed.exists()}")
    b2 = run_dub(video, audio, resumed, cache, [*extra, "--resume"], nice)
    same = False
    if a["rc"] == 0 and b2["rc"] == 0:
        t = time.perf_counter()
        ha, hb = hashes_side_by_side(whole, resumed)
        print(f"  hashed both outputs' frames in {time.perf_counter() - t:.0f} s")
        same = ha == hb
        print(f"  frames: uninterrupted {len(ha)}, resumed {len(hb)}; decoded frame hashes identical: {same} "
              f"(sha256 of all: {hashlib.sha256(''.join(ha).encode()).hexdigest()[:16]} vs "
              f"{hashlib.sha256(''.join(hb).encode()).hexdigest()[:16]})")
    for p in (whole, resumed):
        if p != reference:
            p.unlink(missing_ok=True)
    b2["label"] = (f"--resume killed at {kept}/{n_pieces} pieces + resumed: frames identical={same}; "
                   f"uninterrupted --resume {a['wall']:.0f} s / {a['peak_mb']:.0f} MB, killed part "
                   f"{b1['wall']:.0f} s")
    return (minutes, round(minutes * 60 * 25), b2)


if __name__ == "__main__":
    sys.exit(main())
