"""Small faces (issue 22, wide shots): a `make eval` case dubbed as it is and with its video shrunk so the face is
about FACE px wide in a frame of the same size (the rest filled with the corner's colour), both scored the same way.

    .venv/bin/python -m bench.wide_shot [--case woman_bluebg] [--face 70] [--heldout]

Prints r, lag, amplitude and the frames with a tracked face of each; the issue asks the small one to stay within 0.1
of the full-size r. --heldout dubs with the leave-one-speaker-out model of the driving speaker
(python -m training.train_motion --dry-run writes them).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from lipdub.media import VideoWriter, iter_frames, probe_video
from training import evaluate
from training.manifest import HELD_OUT_DIR, speaker_of


def face_width(path: Path) -> float:
    """Median width (px) of the tracked face landmarks over the frames with a face."""
    track = evaluate._track_path(path, None, None, True)
    lm = np.asarray(track.landmarks)[track.valid]
    return float(np.median(lm[:, :, 0].max(1) - lm[:, :, 0].min(1)))


def shrink(src: Path, out: Path, scale: float, rng) -> None:
    """`src` over `rng` seconds shrunk by `scale` into the middle of a frame of its own size."""
    info = probe_video(src)
    w, h = max(2, int(info.width * scale) // 2 * 2), max(2, int(info.height * scale) // 2 * 2)
    x0, y0 = (info.width - w) // 2, (info.height - h) // 2
    lo, hi = rng or (0.0, None)
    with VideoWriter(out, info.width, info.height, info.fps, crf=12) as writer:
        for fr in iter_frames(src):
            if fr.time < lo - 0.5 / info.fps or (hi is not None and fr.time >= hi - 0.5 / info.fps):
                continue
            canvas = np.empty_like(fr.rgb)
            canvas[:] = fr.rgb[2, 2]
            canvas[y0:y0 + h, x0:x0 + w] = cv2.resize(fr.rgb, (w, h), interpolation=cv2.INTER_AREA)
            writer.write(canvas)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", default="woman_bluebg", help="a make eval case (training/dataset.json)")
    ap.add_argument("--face", type=float, default=70.0, help="face width in px after shrinking")
    ap.add_argument("--heldout", action="store_true")
    args = ap.parse_args(argv)
    case = evaluate.CASES[args.case]
    data = evaluate.default_data_dir()
    if args.heldout:
        os.environ["LIPDUB_MOTION_MODEL"] = str(HELD_OUT_DIR / f"{speaker_of(case.audio_clip)}.npz")
    full = face_width(data / case.video)
    with tempfile.TemporaryDirectory(prefix="lipdub-wide-") as tmp:
        small = Path(tmp) / "small.mp4"
        shrink(data / case.video, small, args.face / full, case.video_range)
        cases = {f"full size (face {full:.0f} px)": case,
                 f"shrunk (face {face_width(small):.0f} px)": dataclasses.replace(case, video=str(small),
                                                                                 video_range=None)}
        for label, c in cases.items():
            res = evaluate.run_case(c, data)
            print(f"{args.case} {label}: r {res['r']:.3f} lag {res['lag']:+d} r@0 {res['r0']:.3f} amp "
                  f"{res['amp']:.2f}, face tracked in {res['dub_valid']}/{res['dub_frames']} dubbed frames",
                  flush=True)
    print(f"({'held-out' if args.heldout else 'shipped'} motion model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
