"""Where do real lips shut on p, b, m, against the phone spans the speech stage gives? Which frames a closure test
should read.

    python -m bench.closure_timing [--advance 0.04]

Over the filmed clips of training/dataset.json (their own audio and filmed mouths; the cached analyses of
`make train`), for every p/b/m phone between two speech phones: the time of the filmed mouth's lowest opening within
±0.2 s of the phone's middle, relative to that middle (< 0: the lips shut before the middle of the sound), and the
share of bilabials whose filmed mouth is shut (below 0.25 of the speaker's open mouth, the 90th percentile while
speaking, as bench.bilabials and tests/test_say judge a dub) within each window a test could read: ±1 frame of the
phone's middle, the phone's span, and the span shifted earlier by `--advance` (MotionParams.advance, the shift the
dub's mouth gets). Real speakers, own sound: what a closure looks like when the sync is right by construction
(up to each clip's own audio-video offset), by folder of the data root.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from lipdub import motion
from training import evaluate
from training.clips import clip_material
from training.manifest import data_root, filmed_clips

BILABIALS = ("P", "B", "M")
THRESHOLD = 0.25  # closed: below this share of the open mouth (bench.bilabials, tests/test_say)


def span_frames(times: np.ndarray, start: float, end: float) -> np.ndarray:
    """Indices of the frames shown while [start, end) plays: those whose time falls in it, or the frame nearest
    its middle where the span is shorter than a frame."""
    inside = np.flatnonzero((times >= start) & (times < end))
    return inside if len(inside) else np.array([int(np.argmin(np.abs(times - 0.5 * (start + end))))])


def bilabial_rows(times, truth, speech, advance: float) -> list[tuple[float, bool, bool, bool]]:
    """Per p/b/m between speech phones: (offset of the filmed minimum from the middle, s; shut within ±1 frame of
    the middle; shut within the span; shut within the span shifted earlier by `advance`)."""
    phones = list(speech.phones)
    speaking = np.zeros(len(times), bool)
    for p in phones:
        if p.label != "SIL":
            speaking |= (times >= p.start) & (times < p.end)
    if speaking.sum() < 10 or not np.isfinite(truth[speaking]).any():
        return []
    wide = np.nanpercentile(truth[speaking], 90)
    fps = 1 / np.median(np.diff(times))
    rows = []
    for i, p in enumerate(phones[1:-1], 1):
        if p.label not in BILABIALS or "SIL" in (phones[i - 1].label, phones[i + 1].label):
            continue
        mid = 0.5 * (p.start + p.end)
        near = np.flatnonzero(np.abs(times - mid) <= 0.2)
        if len(near) < 5 or not np.isfinite(truth[near]).all():
            continue
        k = int(round(mid * fps))

        def shut(idx):
            idx = idx[(idx >= 0) & (idx < len(truth))]
            return bool(len(idx) and np.nanmin(truth[idx]) / wide < THRESHOLD)
        offset = float(times[near[np.argmin(truth[near])]] - mid)
        rows.append((offset, shut(np.arange(k - 1, k + 2)), shut(span_frames(times, p.start, p.end)),
                     shut(span_frames(times, p.start - advance, p.end - advance))))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.closure_timing", description=__doc__.split("\n")[0])
    ap.add_argument("--advance", type=float, default=motion.MotionParams().advance)
    args = ap.parse_args(argv)
    data = data_root()
    by_corpus: dict = {}
    for clip in filmed_clips():
        times, truth, speech = clip_material(data, clip, evaluate.mouth_curve)
        rows = bilabial_rows(np.asarray(times), np.asarray(truth), speech, args.advance)
        by_corpus.setdefault(clip.path.split("/")[0] + "/", []).extend(rows)
    every = [r for rows in by_corpus.values() for r in rows]
    if not every:
        print("no bilabials found")
        return 1
    print(f"{'clips':10s} {'p/b/m':>6s} {'median offset (s)':>18s} {'shut ±1 frame':>14s} {'in span':>8s} "
          f"{'span -' + format(args.advance, '.2f') + ' s':>12s}")
    for name, rows in sorted(by_corpus.items()) + [("all", every)]:
        if not rows:
            continue
        a = np.array(rows, float)
        print(f"{name:10s} {len(a):6d} {np.median(a[:, 0]):+18.3f} {a[:, 1].mean():14.0%} {a[:, 2].mean():8.0%} "
              f"{a[:, 3].mean():12.0%}")
    a = np.array(every, float)
    print(f"offset of the filmed minimum from the phone's middle: quartiles {np.percentile(a[:, 0], 25):+.3f} / "
          f"{np.median(a[:, 0]):+.3f} / {np.percentile(a[:, 0], 75):+.3f} s, mean {a[:, 0].mean():+.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
