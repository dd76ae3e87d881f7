"""CPU time of drawing the mouth, per frame, without decoding or encoding: the render stage's own work, measured so
that a loaded host distorts it little (CPU time of this process, OpenCV on one thread).

    python -m bench.draw_cpu [--video V] [--audio A] [--size 1280x720] [--reps 3]

The clip (default the HDTF crop, scaled and padded to --size as bench.speed does) is prepared by one dub into a
temporary cache; its frames are decoded as the dub decodes them (YUV), and every output frame is then drawn as the
dub draws it (Renderer.frame_planar: draw, then finish, in order) --reps times. Prints the CPU and wall milliseconds per
frame of each repetition and the SHA-256 of the drawn frames (the same before and after a change that must not alter
them). No assertions.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LIPDUB_DATA") or ROOT.parent / "shared" / "data")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", default=str(DATA / "video" / "hdtf_katiehill_8s.mp4"))
    ap.add_argument("--audio", default=str(DATA / "audio" / "en_radio34_other_8s.wav"))
    ap.add_argument("--size", default="1280x720", help="scale and pad the clip to WIDTHxHEIGHT first ('' to keep)")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    video, audio = Path(args.video), Path(args.audio)
    for p in (video, audio):
        if not p.is_file():
            print(f"draw_cpu: {p} is missing", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="lipdub-bench-") as tmp:
        tmp = Path(tmp)
        os.environ["LIPDUB_CACHE"] = str(tmp / "cache")  # before lipdub reads it
        import cv2

        import lipdub
        from lipdub import media, speech
        from lipdub.core.constants import SR
        from lipdub.options import DubOptions
        from lipdub.pipeline import offline
        from lipdub.pipeline.caches import load_track, own_renderer

        if args.size:
            from bench.long_input import make_unit

            width, height = (int(v) for v in args.size.lower().split("x"))
            scaled = tmp / f"{video.stem}_{width}x{height}.mp4"
            make_unit(video, scaled, width, height)
            video = scaled
        lipdub.dub(video, audio, tmp / "prepare.mp4")  # fills the cache: track and atlas
        opts, info = DubOptions(), media.probe_video(video)
        track = load_track(video, info, opts, None)
        renderer = own_renderer(video, info, track, opts, None)
        samples = media.load_audio(audio, SR)[0]
        schedule, mouth, teeth, _ = offline._plan_motion(speech.analyse(samples, SR), track, info,
                                                         len(samples) / SR, opts, None)
        plan = renderer.plan(schedule, mouth, teeth)
        with media.FrameReader(video, info, planar=True) as reader:
            frames = [reader.get(j) for j in range(info.n_frames)]
        cv2.setNumThreads(1)
        print(f"{video.name}: {info.width}x{info.height}, {len(schedule)} output frames")
        for rep in range(args.reps):
            renderer.colour.reset()
            renderer.prev_j = None
            digest = hashlib.sha256()
            t, c = time.perf_counter(), time.process_time()
            for k, j in enumerate(schedule):
                frame = frames[int(j)].copy()
                draw = renderer.frame_planar if isinstance(frame, media.PlanarFrame) else renderer.frame
                out, _ = draw(k, int(j), frame, plan)
                digest.update(out.i420.data if isinstance(out, media.PlanarFrame) else out.data)
            cpu, wall = time.process_time() - c, time.perf_counter() - t
            print(f"  rep {rep}: CPU {1000 * cpu / len(schedule):.2f} ms/frame, wall {1000 * wall / len(schedule):.2f}"
                  f" ms/frame; frames sha256 {digest.hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
