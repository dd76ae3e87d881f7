"""Live-mode benchmark: a 720p stream dubbed at real-time pace, and live vs offline accuracy on the cross-dub cases.

    .venv/bin/python bench/live.py [--seconds 120] [--skip-speed] [--skip-accuracy] [--cases a,b] [--keep DIR]
                                   [--no-prepare] [--motion-model permissive]

Speed: assembles (in a temp folder, never committed) a 1280x720 25 fps stream from the shared CNN clip (scaled to
720 px high, padded, played back and forth) with each frame's number stamped in its top-left corner, and a voice of
the same length from the shared commentary audio; `lipdub.apps.live.run` plays both at real-time pace and writes the dub.
Prints frames per second, p50/p95/max delay (audio sample arriving → the frame that shows it leaving the dubber), CPU
use, frames later than 0.5 s behind real time, CPU seconds per stream-second by thread (bench/thread_cpu.py: the
live audio thread runs the motion and hama, -video decodes, -track and the MediaPipe threads track, -render draws,
lipdub-encoder and x264's threads encode), and checks the stamps of the output: every input frame exactly once,
in order (no drop, no repeat).

Accuracy: every evaluation case (`make eval`) dubbed offline (`lipdub dub`) and live (`lipdub.apps.live.run`, fast, same inputs), both
re-tracked and scored against the real speaker's filmed mouth (r at the best lag within ±5, lag, amplitude).
Both parts prepare the video file's mouths before the session starts, as `lipdub live` does (not timed: it happens
before the stream plays); --no-prepare takes them from the stream as it plays. No assertions: a report.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.thread_cpu import ThreadCPU
from lipdub import media
from lipdub.apps import live
from lipdub.pipeline.live import prepare_atlas
from training import evaluate
from training.manifest import data_root

DATA = data_root()
STAMP_BITS = 12


def stamp(rgb: np.ndarray, k: int) -> None:
    for bit in range(STAMP_BITS):
        rgb[:16, bit * 16:(bit + 1) * 16] = 255 if k >> bit & 1 else 0


def read_stamps(path: Path) -> list[int]:
    return [sum(1 << b for b in range(STAMP_BITS) if fr.rgb[4:12, b * 16 + 4:b * 16 + 12].mean() > 128)
            for fr in media.iter_frames(path)]


def assemble_stream(out_video: Path, out_audio: Path, seconds: float) -> None:
    import cv2

    clip = DATA / "video/cnn_anchor_71s.mp4"
    info = media.probe_video(clip)
    n = int(round(seconds * 25))
    order = np.concatenate([np.arange(info.n_frames), np.arange(info.n_frames - 2, 0, -1)])  # back and forth
    with media.VideoWriter(out_video, 1280, 720, 25, crf=18) as w, media.FrameReader(clip, info) as reader:
        for k in range(n):
            face = cv2.resize(reader.get(int(order[k % len(order)])), (720, 720), interpolation=cv2.INTER_CUBIC)
            canvas = np.full((720, 1280, 3), 40, np.uint8)
            canvas[:, 280:1000] = face
            stamp(canvas, k)
            w.write(canvas)
    voice, sr = media.load_audio(DATA / "audio/en_commentary_60s.wav", 16000)
    reps = int(np.ceil(seconds * sr / len(voice)))
    full = np.tile(voice, reps)[: int(seconds * sr)]
    import wave

    with wave.open(str(out_audio), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(sr)
        wf.writeframes((np.clip(full, -1, 1) * 32767).astype("<i2").tobytes())


def speed(seconds: float, keep: Path | None, work_dir: Path | None = None, prepare: bool = True) -> None:
    with tempfile.TemporaryDirectory(prefix="lipdub-bench-live-") as tmp:
        tmp = Path(tmp)
        folder = work_dir or tmp
        video, audio = folder / f"stream720_{seconds:g}s.mp4", folder / f"voice_{seconds:g}s.wav"
        if not (video.is_file() and audio.is_file()):  # --work-dir keeps the assembled stream for the next run
            t = time.perf_counter()
            assemble_stream(video, audio, seconds)
            print(f"assembled a {seconds:g} s 1280x720 25 fps stream in {time.perf_counter() - t:.1f} s")
        out = (keep / "live720.mp4") if keep else tmp / "live.mp4"
        if prepare:  # before the CPU is counted (cached after the first run)
            prepare_atlas(str(video))
        with ThreadCPU() as cpu:
            report = live.run(str(video), str(audio), out, realtime=True, prepare=prepare)
        stamps = read_stamps(out)
        expected = list(range(int(round(seconds * 25))))
        dropped = len(set(expected) - set(stamps))
        repeated = len(stamps) - len(set(stamps))
        in_order = stamps == sorted(stamps)
        print(f"\nlive 720p, real-time pace, {seconds:g} s: {report.frames} frames, "
              f"{report.frames / report.wall:.2f} fps over {report.wall:.1f} s wall")
        print(f"  delay p50 {report.delay_p50 * 1000:.0f} ms, p95 {report.delay_p95 * 1000:.0f} ms, "
              f"max {report.delay_max * 1000:.0f} ms (motion look-ahead share {report.motion_latency * 1000:.0f} ms)")
        print(f"  CPU {report.cpu:.2f} cores; frames > 0.5 s behind real time: {report.late_frames}")
        # CPU seconds per second of stream hold under load, where lateness and cores (CPU / wall) do not
        per = ", ".join(f"{name} {s / seconds:.3f}" for name, s in cpu.groups().most_common() if s / seconds >= 0.002)
        print(f"  CPU per stream-second {cpu.total / seconds:.3f} s; by thread: {per}")
        print(f"  output stamps: {len(stamps)} frames, dropped {dropped}, repeated {repeated}, in order {in_order}")


def accuracy(cases: list[str], keep: Path | None, prepare: bool = True, motion_model: str = "research") -> None:
    import lipdub

    print("\nlive vs offline, cross-dub cases (no transcript), r / lag / amplitude against the real speaker")
    print(f"{'case':16s} {'offline r':>9s} {'lag':>4s} {'amp':>5s} {'live r':>7s} {'lag':>4s} {'amp':>5s} "
          f"{'live-off':>8s}")
    rows = []
    for name in cases:
        case = evaluate.CASES[name]
        with tempfile.TemporaryDirectory(prefix="lipdub-bench-acc-") as tmp:
            tmp = Path(tmp)
            c0, c1 = case.clip_range if case.clip_range else (0.0, None)
            audio = tmp / "audio.wav"
            evaluate.cut_audio(DATA / case.audio_clip, c0, c1, audio)
            src = evaluate._cached_cut(DATA / case.video, *case.video_range) if case.video_range else DATA / case.video
            off, on = (keep or tmp) / f"{name}_offline.mp4", (keep or tmp) / f"{name}_live.mp4"
            lipdub.dub(src, audio, off, progress=None, cache=True, motion_model=motion_model)
            # same frames and motion as at real-time pace
            live.run(str(src), str(audio), on, realtime=False, prepare=prepare, motion_model=motion_model)
            truth = evaluate.mouth_curve(DATA / case.audio_clip, c0, c1)
            a, b = evaluate.dub_sync(off, truth), evaluate.dub_sync(on, truth)
        rows.append((a, b))
        print(f"{name:16s} {a[0]:9.3f} {a[1]:+4d} {a[2]:5.2f} {b[0]:7.3f} {b[1]:+4d} {b[2]:5.2f} {b[0] - a[0]:+8.3f}")
    a = np.array([[r[0][0], r[0][2]] for r in rows])
    b = np.array([[r[1][0], r[1][2]] for r in rows])
    print(f"{'mean':16s} {a[:, 0].mean():9.3f} {'':4s} {a[:, 1].mean():5.2f} {b[:, 0].mean():7.3f} {'':4s} "
          f"{b[:, 1].mean():5.2f} {b[:, 0].mean() - a[:, 0].mean():+8.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="length of the real-time 720p stream")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--no-prepare", action="store_true",
                    help="live sessions take their mouths from the stream as it plays (lipdub live --no-prepare)")
    ap.add_argument("--cases", help="comma-separated eval cases (default: all)")
    ap.add_argument("--motion-model", default="research", help="accuracy: the --motion-model of both dubs")
    ap.add_argument("--keep", type=Path, help="keep the outputs in this folder")
    ap.add_argument("--work-dir", type=Path, help="keep (and reuse) the assembled 720p stream in this folder")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"bench/live.py needs the shared test media at {DATA}")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    if not args.skip_accuracy:
        accuracy(args.cases.split(",") if args.cases else list(evaluate.CASES), args.keep, not args.no_prepare,
                 args.motion_model)
    if not args.skip_speed:
        if args.work_dir:
            args.work_dir.mkdir(parents=True, exist_ok=True)
        speed(args.seconds, args.keep, args.work_dir, not args.no_prepare)


if __name__ == "__main__":
    main()
