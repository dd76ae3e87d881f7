"""Speed benchmark: how long a dub takes against a plain re-encode of the same clip, and the real-time ratio.

    .venv/bin/python bench/speed.py [--video V] [--audio A] [--size WxH] [--keep OUT.mp4]

Default clip: 512x512 HDTF crop (../shared/data/video/hdtf_katiehill_8s.mp4) dubbed with an 8 s English clip.
--size 1280x720 first scales the clip to that height and pads it to that width (in the temporary folder, libx264
veryfast crf 20; see bench/long_input.py make_unit), then measures on that version: frames per second at 720p.
Measures, in one process:
  1. dub with an empty cache (LIPDUB_CACHE points at a fresh temp folder): includes model loading and face tracking;
  2. the same dub again, the video prepared: its face track and mouth atlas come from the cache (the speech is
     analysed again, as for any new audio);
  3. baseline: PyAV decode + libx264 encode of the same clip (preset veryfast, crf 16), once passing the decoded
     frames straight to the encoder (as the pipeline passes HD frames) and once through RGB arrays (SD frames).
     x264 chooses each frame's type, as in the dub (VideoWriter) and as the `ffmpeg` command does: a decoded frame
     keeps the picture type it had in the source, and libx264 obeys it (the same I/P/B pattern as the source; the
     bench's 720p clip is all P-frames, x264's own choice puts in B-frames and costs ~1 s more CPU per 200 frames).
     Before 2026-12-06 the baseline kept the source's types; it is still printed, as "source's frame types";
and prints wall times, the real-time ratio (output duration / wall time; >= 1 is faster than real time), the ratio
to the baseline, per-stage timings when the DubReport has them, and the process's peak RSS. No assertions.
It also prints each one's CPU time (all threads of the process) and their ratio: on a host shared with other jobs
the wall times follow the load, the CPU times much less, and with both cores busy the two ratios agree. Each run's
CPU is broken down by thread (bench/thread_cpu.py: x264, drawing, speech, decoding, ...); the CPU of the thread that
samples it is left out of every figure (before 2026-12-06 it was in: ~0.02 s per second of wall, 0.27 s of an 11 s
prepared 720p dub). Each run also gets an estimate of its wall time on an idle 2-core host, from the CPU its threads got
and how many of them were ready to run, moment by moment (bench.thread_cpu.idle_host): the figure the goals are about,
which the wall times of a shared host do not give.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LIPDUB_DATA") or ROOT.parent / "shared" / "data")  # as training.manifest.data_root


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux (bytes on macOS)
    return kb / (1024 * 1024) if sys.platform == "darwin" else kb / 1024


def cpu_seconds() -> float:
    """CPU time of this process so far, all threads, user + system."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def baseline_transcode(video: Path, out: Path, via_rgb: bool, crf: float = 16, preset: str = "veryfast",
                       source_types: bool = False) -> tuple[float, int]:
    """Decode `video` and encode it again with libx264 (no audio); returns (seconds, frames). x264 chooses the
    frame types unless `source_types` (each frame encoded as the type it had in the source)."""
    import av
    from av.video.frame import PictureType

    t = time.perf_counter()
    n = 0
    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        vs = src.streams.video[0]
        vs.thread_type = "AUTO"
        rate = vs.average_rate or 25
        enc = dst.add_stream("libx264", rate=rate)
        enc.width, enc.height = vs.codec_context.width, vs.codec_context.height
        enc.pix_fmt = "yuv420p"
        enc.options = {"crf": f"{crf:g}", "preset": preset}
        for frame in src.decode(vs):
            if via_rgb:
                frame = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            frame = frame.reformat(format="yuv420p")
            if not source_types:
                frame.pict_type = PictureType.NONE
            frame.pts, frame.time_base = n, 1 / rate
            for p in enc.encode(frame):
                dst.mux(p)
            n += 1
        for p in enc.encode(None):
            dst.mux(p)
    return time.perf_counter() - t, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", default=str(DATA / "video" / "hdtf_katiehill_8s.mp4"))
    ap.add_argument("--audio", default=str(DATA / "audio" / "en_radio34_other_8s.wav"))
    ap.add_argument("--size", help="scale and pad the clip to WIDTHxHEIGHT first, e.g. 1280x720")
    ap.add_argument("--keep", help="keep the (second) dub here")
    args = ap.parse_args()
    video, audio = Path(args.video), Path(args.audio)
    for p in (video, audio):
        if not p.is_file():
            print(f"speed: {p} is missing", file=sys.stderr)
            return 2

    with tempfile.TemporaryDirectory(prefix="lipdub-bench-") as tmp:
        tmp = Path(tmp)
        os.environ["LIPDUB_CACHE"] = str(tmp / "cache")  # before lipdub reads it: the first dub starts cold

        t = time.perf_counter()
        import lipdub
        from lipdub import media

        import_s = time.perf_counter() - t
        from bench.thread_cpu import ThreadCPU
        if args.size:
            from bench.long_input import make_unit

            width, height = (int(v) for v in args.size.lower().split("x"))
            scaled = tmp / f"{video.stem}_{width}x{height}.mp4"
            make_unit(video, scaled, width, height)
            video = scaled
        info = media.probe_video(video)
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}")
        print(f"clip:    {video.name} {info.width}x{info.height} @ {info.fps:.3f} fps, {info.n_frames} frames, "
              f"{info.duration:.2f} s; audio {audio.name}")
        print(f"import lipdub: {import_s:.2f} s")

        runs = []
        for label, out in (("dub, cold cache (incl. tracking)", tmp / "dub1.mp4"),
                           ("dub, video prepared (cached)", Path(args.keep) if args.keep else tmp / "dub2.mp4")):
            t, c = time.perf_counter(), cpu_seconds()
            with ThreadCPU() as threads:
                report = lipdub.dub(video, audio, out, progress=None)
            wall, cpu = time.perf_counter() - t, cpu_seconds() - c - threads.own  # less the sampler's own CPU
            duration = float(getattr(report, "duration", 0.0)) or media.probe_video(out).duration
            runs.append((label, wall, duration, report, cpu))
            print(f"\n{label}: {wall:.2f} s wall for {duration:.2f} s of output "
                  f"({getattr(report, 'frames', '?')} frames) -> real-time ratio {duration / wall:.2f}x "
                  f"({getattr(report, 'frames', 0) / wall:.1f} frames/s); peak RSS so far {peak_rss_mb():.0f} MB")
            timings = getattr(report, "timings", None)
            if isinstance(timings, dict) and timings:
                print("  stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
                if timings.get("render"):
                    print(f"  render stage (decode, draw, encode overlapped): "
                          f"{report.frames / timings['render']:.1f} frames/s")
            print("  " + threads.summary())
            idle, ready = threads.idle_host()
            runs[-1] += (idle,)
            print(f"  on an idle 2-core host ~{idle:.2f} s ({getattr(report, 'frames', 0) / idle:.1f} frames/s; "
                  f"threads ready {ready:.2f} on average; load {os.getloadavg()[0]:.1f}; bench.thread_cpu.idle_host)")

        c = cpu_seconds()
        with ThreadCPU() as threads:
            base_plain, n_plain = baseline_transcode(video, tmp / "plain.mp4", via_rgb=False)
        base_cpu = cpu_seconds() - c - threads.own
        c = cpu_seconds()
        base_kept, _ = baseline_transcode(video, tmp / "kept.mp4", via_rgb=False, source_types=True)
        kept_cpu = cpu_seconds() - c
        base_rgb, n_rgb = baseline_transcode(video, tmp / "rgb.mp4", via_rgb=True)
        src_dur = n_plain / info.fps
        print(f"\nbaseline decode + libx264 veryfast crf 16 (no audio): {base_plain:.2f} s for {n_plain} frames "
              f"-> real-time ratio {src_dur / base_plain:.1f}x; CPU {base_cpu:.2f} s")
        print("  " + threads.summary())
        base_idle = threads.idle_host()[0]
        print(f"  on an idle 2-core host ~{base_idle:.2f} s")
        print(f"baseline with the source's frame types (as before 2026-12-06): {base_kept:.2f} s, CPU {kept_cpu:.2f} s")
        print(f"baseline through RGB arrays (SD clips in the pipeline): {base_rgb:.2f} s for {n_rgb} frames "
              f"-> real-time ratio {src_dur / base_rgb:.1f}x")

        print("\nsummary")
        for label, wall, duration, _, cpu, idle in runs:
            # compare per output second: the dub's length follows the audio, the baseline's the video
            per_s = wall / duration
            print(f"  {label:34s} {wall:6.2f} s  real-time {duration / wall:5.2f}x  "
                  f"{per_s / (base_plain / src_dur):5.1f}x the plain re-encode's time per output second; "
                  f"CPU {cpu:.2f} s, {cpu / duration / (base_cpu / src_dur):.1f}x the re-encode's ({base_cpu:.2f} s; "
                  f"{cpu / duration / (kept_cpu / src_dur):.1f}x with the source's frame types); "
                  f"on an idle 2-core host ~{idle:.2f} s, {idle / duration / (base_idle / src_dur):.1f}x the "
                  f"re-encode's ({base_idle:.2f} s)")
        print(f"  peak RSS {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
