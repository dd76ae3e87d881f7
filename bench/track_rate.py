"""Reduced-rate tracking, measured before it is built: how far landmarks carried by optical flow from keyframes drift
from the landmarks the full-rate tracker finds, and what the flow costs against the landmark model.

    python -m bench.track_rate [--clips hdtf_katiehill_8s,...] [--every 2 3 5] [--frames 250]

For each clip (../shared/data/video; the first --frames frames), the full-rate face track (the dub's own, through the
cache) is the reference. Every N-th frame is a keyframe that keeps its tracked landmarks; the frames between get the
previous frame's landmarks moved by pyramidal Lucas-Kanade flow (cv2.calcOpticalFlowPyrLK, 21 px windows, 3 levels)
on a grey crop of the face box grown by a quarter. Printed per clip and N, over the frames between keyframes: the lip
landmarks' mean distance from the reference (median and 95th percentile, in % of the distance between the outer eye
corners), the error of the mouth opening (inner-lip gap, same unit), the share of frames where the flow lost a lip
point (re-detected: they and the rest of their run take the reference; the errors are over the frames carried), and
the flow's CPU time per frame. For scale: the reference lips' own motion from one frame to the next. No assertions:
this measures what reduced-rate tracking would add, it changes nothing.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from lipdub import media
from lipdub.core.landmarks import EYE_OUTER, INNER_LOWER, INNER_UPPER, OUTER_LOWER, OUTER_UPPER
from lipdub.options import DubOptions
from lipdub.pipeline.caches import load_track

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("LIPDUB_DATA") or ROOT.parent / "shared" / "data")
LIPS = sorted(set(OUTER_UPPER + OUTER_LOWER + INNER_UPPER + INNER_LOWER))
GAP = [(82, 87), (13, 14), (312, 317)]  # inner-lip pairs at the middle: the opening
CLIPS = "hdtf_katiehill_8s,hdtf_radio34_8s,woman_outdoor_10s,selfie_expressive_15s,man_kitchen_20s"


def opening(lms: np.ndarray) -> float:
    return float(np.mean([lms[lo, 1] - lms[up, 1] for up, lo in GAP]))


def carried(grey: list[np.ndarray], ref: np.ndarray, valid: np.ndarray, every: int):
    """Landmarks carried by flow from each keyframe; per in-between frame: (index, landmarks, lost a lip point),
    and the flow's CPU seconds."""
    out, cpu = [], 0.0
    for k0 in range(0, len(grey), every):
        if not valid[k0]:
            continue
        pts = ref[k0, :, :2].astype(np.float32)
        x, y = pts.min(0)
        w, h = pts.max(0) - (x, y)
        x0, y0 = int(max(0, x - w / 4)), int(max(0, y - h / 4))
        x1, y1 = int(min(grey[0].shape[1], x + w * 1.25)), int(min(grey[0].shape[0], y + h * 1.25))
        shift = np.float32([x0, y0])
        for i in range(k0 + 1, min(k0 + every, len(grey))):
            if not valid[i]:
                break
            c = time.process_time()
            moved, status, _ = cv2.calcOpticalFlowPyrLK(
                grey[i - 1][y0:y1, x0:x1], grey[i][y0:y1, x0:x1], pts - shift, None, winSize=(21, 21), maxLevel=3,
                criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
            cpu += time.process_time() - c
            pts = moved + shift
            lost = not bool(status[LIPS].all())
            out.append((i, pts.copy(), lost))
            if lost:  # re-detected: the rest of this run comes from the landmark model (the reference)
                break
    return out, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", default=CLIPS)
    ap.add_argument("--every", type=int, nargs="+", default=[2, 3, 5])
    ap.add_argument("--frames", type=int, default=250)
    args = ap.parse_args()
    cv2.setNumThreads(1)  # CPU time of one flow, as the tracker's threads would each run it
    print(f"{'clip':24s} {'N':>2s} {'lips med':>8s} {'lips p95':>8s} {'open med':>8s} {'open p95':>8s} "
          f"{'lost':>5s} {'flow ms':>7s}   (errors in % of the outer-eye distance)")
    for name in args.clips.split(","):
        path = next(DATA.glob(f"video/{name}.*"), None)
        if path is None:
            print(f"track_rate: {name} is missing from {DATA / 'video'}", file=sys.stderr)
            return 2
        info = media.probe_video(path)
        track = load_track(path, info, DubOptions(), None)
        n = min(args.frames, len(track))
        grey = [cv2.cvtColor(f.rgb, cv2.COLOR_RGB2GRAY) for f in itertools.islice(media.iter_frames(path), n)]
        n = len(grey)
        ref, valid = track.landmarks[:n].astype(np.float64), track.valid[:n]
        eyes = np.linalg.norm(ref[:, EYE_OUTER[0], :2] - ref[:, EYE_OUTER[1], :2], axis=1)
        ok = valid[1:] & valid[:-1]
        motion = np.linalg.norm(ref[1:, LIPS, :2] - ref[:-1, LIPS, :2], axis=2).mean(1)[ok] / eyes[1:][ok]
        print(f"{name:24s}  reference lips move {100 * np.median(motion):.2f} % (median), "
              f"{100 * np.percentile(motion, 95):.2f} % (p95) from frame to frame; {int(valid.sum())}/{n} frames")
        for every in args.every:
            got, cpu = carried(grey, ref, valid, every)
            if not got:
                continue
            kept = [(i, p) for i, p, lo in got if not lo]
            lips = np.array([np.linalg.norm(p[LIPS] - ref[i, LIPS, :2], axis=1).mean() / eyes[i] for i, p in kept])
            gap = np.array([abs(opening(p) - opening(ref[i])) / eyes[i] for i, p in kept])
            lost = 1 - len(kept) / len(got)
            print(f"{'':24s} {every:2d} {100 * np.median(lips):8.2f} {100 * np.percentile(lips, 95):8.2f} "
                  f"{100 * np.median(gap):8.2f} {100 * np.percentile(gap, 95):8.2f} {100 * lost:4.0f}% "
                  f"{1000 * cpu / len(got):7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
