"""Contact sheet: original frames beside dubbed frames, with 2x mouth crops, as one PNG to look at.

    .venv/bin/python bench/contact_sheet.py ORIGINAL DUBBED -o sheet.png [--frames 8] [--start 0] [--face-index N ...]

The dubbed video's frame k is shown next to the original frame it was made from (ping-pong schedule of the default
length policy), so seams, colour shifts, teeth and chin outlines can be compared directly.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from lipdub import media
from lipdub.pipeline import DubOptions, load_track


def mouth_crop(rgb: np.ndarray, lms: np.ndarray, size=(320, 240)) -> np.ndarray:
    cx, cy = lms[14, :2]
    half = 0.32 * np.ptp(lms[:, 0])
    x0, y0 = int(cx - half), int(cy - half * 0.75)
    x1, y1 = int(cx + half), int(cy + half * 0.75)
    pad = int(half) + 2
    big = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT)
    crop = big[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
    return cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("original")
    ap.add_argument("dubbed")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--frames", type=int, default=6)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--length", default="pingpong")
    ap.add_argument("--face-index", type=int, action="append",
                    help="whose mouth to crop (repeat for several faces: a conversation); default the largest")
    args = ap.parse_args()
    orig, dubbed = Path(args.original), Path(args.dubbed)
    io, idub = media.probe_video(orig), media.probe_video(dubbed)
    tracks = [load_track(orig, io, DubOptions(face_index=i), None) for i in (args.face_index or [None])]
    track = tracks[0]
    schedule = media.output_schedule(len(track), io.fps, idub.n_frames / idub.fps, args.length)
    ks = np.linspace(args.start, idub.n_frames - 1, args.frames).astype(int)
    rows = []
    with media.FrameReader(orig, io) as ro, media.FrameReader(dubbed, idub) as rd:
        for k in ks:
            j = int(schedule[min(k, len(schedule) - 1)])
            a, b = ro.get(j), rd.get(int(k))
            thumb_h = 240
            scale = thumb_h / a.shape[0]
            ta = cv2.resize(a, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            tb = cv2.resize(b, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            crops = []
            for t in tracks:
                if t.valid[j]:
                    crops += [mouth_crop(a, t.landmarks[j]), mouth_crop(b, t.landmarks[j])]
                else:
                    crops += [np.zeros((240, 320, 3), np.uint8)] * 2
            row = np.concatenate([ta, tb, *crops], 1)
            cv2.putText(row, f"out {k} / src {j}", (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2)
            rows.append(row)
    sheet = np.concatenate(rows, 0)
    cv2.imwrite(args.output, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.output}: columns = original, dubbed, then per face original mouth x2, dubbed mouth x2")


if __name__ == "__main__":
    main()
