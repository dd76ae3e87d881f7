"""Score the renderer alone: drive it with a real speaker's filmed mouth opening and check that the re-tracked
output follows what was asked.

    .venv/bin/python bench/render_truth.py [VIDEO_NAME DRIVER_NAME] ...

Default pairs: each video in data/video driven by another clip's filmed mouth. Prints r and amplitude of the
rendered opening against the requested one, and ms per rendered frame.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from training import evaluate
from lipdub import media, motion
from lipdub.pipeline import DubOptions, load_track
from lipdub.render import Renderer

PAIRS = [("hdtf_katiehill_8s.mp4", "hdtf_radio34_8s.mp4"), ("woman_bluebg_7s.mp4", "german_anchor_20s.mp4"),
         ("grid_bbaf2n.mpg", "grid_brbk7n.mpg"), ("interview_vfr_6s.mp4", "hdtf_katiehill_8s.mp4")]


def run(video: Path, driver: Path) -> tuple[float, float, float]:
    info = media.probe_video(video)
    track = load_track(video, info, DubOptions(), None)
    t_drv, want = evaluate.mouth_curve(driver)
    renderer = Renderer.for_video(video, info, track)
    n = min(int(info.duration * info.fps), int(t_drv[-1] * info.fps))
    times = np.arange(n) / info.fps
    wanted = np.nan_to_num(evaluate.resample(t_drv, want, times))
    mouth = motion.MouthTrack(times, np.clip(wanted / renderer.model.open_max, 0, 1.2).astype(np.float32),
                              np.zeros(n, np.float32), wanted < 0.01)
    schedule = media.output_schedule(len(track), info.fps, n / info.fps, "pingpong")
    plan = renderer.plan(schedule, mouth)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.mp4"
        t0 = time.perf_counter()
        with media.VideoWriter(out, info.width, info.height, info.fps) as w, media.FrameReader(video, info) as rd:
            for k, j in enumerate(schedule):
                w.write(renderer.frame(k, int(j), rd.get(int(j)), plan)[0])
        ms = (time.perf_counter() - t0) / n * 1000
        got_t, got = evaluate.mouth_curve(out, cache=False)
    r, _, _ = evaluate.pearson_at_best_lag(got[:n], wanted[: len(got)], 2)
    return r, evaluate.amplitude_ratio(got[:n], wanted[: len(got)]), ms


def main() -> int:
    data = evaluate.default_data_dir() / "video"
    pairs = list(zip(sys.argv[1::2], sys.argv[2::2])) or PAIRS
    rs = []
    for v, d in pairs:
        r, amp, ms = run(data / v, data / d)
        rs.append(r)
        print(f"{v:24s} driven by {d:24s} r {r:.3f}  amplitude {amp:.2f}  render+encode {ms:.1f} ms/frame", flush=True)
    print(f"mean r {np.mean(rs):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
