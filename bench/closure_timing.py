"""Where do real lips shut on p, b, m, against the phone spans the speech stage gives? Which frames a closure test
should read.

    python -m bench.closure_timing [--advance 0.04] [--lags RESULTS.json --key KEY]

Over the filmed clips of training/dataset.json (their own audio and filmed mouths; the cached analyses of
`make train`), for every p/b/m phone between two speech phones: the time of the filmed mouth's lowest opening within
±0.2 s of the phone's middle, relative to that middle (< 0: the lips shut before the middle of the sound), and the
share of bilabials whose filmed mouth is shut (below 0.25 of the speaker's open mouth, the 90th percentile while
speaking, as bench.bilabials and tests/test_say judge a dub) within each window a test could read: ±1 frame of the
phone's middle, the phone's span, and the span shifted earlier by `--advance` (MotionParams.advance, the shift the
dub's mouth gets). Real speakers, own sound: what a closure looks like when the sync is right by construction
(up to each clip's own audio-video offset), by folder of the data root. With --lags, a screen's held-out lags
(training.tokens --results) set against each corpus's closure timing (lag_report): whether the lag spread is the
recordings' or the model's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from lipdub import motion
from training import evaluate
from training.clips import clip_material
from training.manifest import data_root, filmed_clips
from training.posteriors import corpus_of
from training.train_motion import speaker_of_name

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


MIN_BILABIALS = 5  # a corpus's closure timing is read from at least this many p/b/m of other speakers


def corpus_shifts(closures: dict, group_of: dict, corpus_of) -> dict:
    """Per clip: how many frames (rounded) its corpus's filmed lips shut later than all the footage's against their
    own sound (< 0: earlier, the film ahead of the sound): the median closure offset (frames) over the other speaker
    groups' clips of its corpus minus that over all other groups' clips, 0 where its corpus's other groups have fewer
    than MIN_BILABIALS. `closures`: clip -> its p/b/m offsets in frames. Nothing of the clip's own speaker is read, so
    a held-out lag moved by it (lag + shift: the truth re-timed by its corpus's closures) stays held out."""
    shifts = {}
    for name in closures:
        others = [v for k, c in closures.items() if group_of[k] != group_of[name] for v in c]
        same = [v for k, c in closures.items()
                if group_of[k] != group_of[name] and corpus_of(k) == corpus_of(name) for v in c]
        shifts[name] = float(np.round(np.median(same) - np.median(others))) if len(same) >= MIN_BILABIALS else 0.0
    return shifts


def lag_report(closures: dict, lags: dict, group_of: dict, corpus_of) -> dict:
    """Held-out lags (clip -> frames, > 0: the model's mouth late; e.g. a training.tokens --results file's) set
    against the clips' own closure timing, which no model made: per corpus, the clips whose lips shut early against
    their sound should be those the model is late on. Prints per corpus and returns the summary."""
    names = [k for k in lags if k in closures]
    by: dict = {}
    for k in names:
        by.setdefault(corpus_of(k), []).append(k)
    print(f"\n{'corpus':22s} {'clips':>5s} {'p/b/m':>6s} {'closure median (frames)':>24s} {'model lag':>10s} "
          f"{'|lag|':>6s}")
    for corpus, ks in sorted(by.items()):
        every = [v for k in ks for v in closures[k]]
        print(f"{corpus:22s} {len(ks):5d} {len(every):6d} {np.median(every) if every else np.nan:+24.2f} "
              f"{np.mean([lags[k] for k in ks]):+10.2f} {np.mean([abs(lags[k]) for k in ks]):6.2f}")
    counted = [k for k in names if len(closures[k]) >= 3]
    r = float(np.corrcoef([np.median(closures[k]) for k in counted], [lags[k] for k in counted])[0, 1])
    shifts = corpus_shifts({k: closures[k] for k in names}, group_of, corpus_of)
    lag = np.array([lags[k] for k in names], float)
    moved = lag + np.array([shifts[k] for k in names])
    print(f"per clip (>= 3 p/b/m, {len(counted)} clips): r of its closure median with its held-out lag {r:+.2f}")
    print(f"held-out lag over {len(names)} clips: mean {lag.mean():+.2f}, mean |lag| {np.abs(lag).mean():.2f}; against "
          f"each truth re-timed by its corpus's closures (other speakers'): mean {moved.mean():+.2f}, mean |lag| "
          f"{np.abs(moved).mean():.2f}")
    return {"r": r, "mean_abs_lag": float(np.abs(lag).mean()), "retimed_mean_abs_lag": float(np.abs(moved).mean()),
            "shifts": shifts}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.closure_timing", description=__doc__.split("\n")[0])
    ap.add_argument("--advance", type=float, default=motion.MotionParams().advance)
    ap.add_argument("--lags", default=None, metavar="JSON",
                    help="a training.tokens --results file: set its held-out lags against the closures (lag_report)")
    ap.add_argument("--key", default=None, help="with --lags: the entry (variant|folds|nets|passes[|splitN]) to read")
    args = ap.parse_args(argv)
    data = data_root()
    by_corpus: dict = {}
    closures: dict = {}  # clip -> its p/b/m offsets in frames
    for clip in filmed_clips():
        times, truth, speech = clip_material(data, clip, evaluate.mouth_curve)
        rows = bilabial_rows(np.asarray(times), np.asarray(truth), speech, args.advance)
        by_corpus.setdefault(clip.path.split("/")[0] + "/", []).extend(rows)
        closures[clip.name] = [r[0] / float(np.median(np.diff(times))) for r in rows]
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
    if args.lags:
        stored = json.loads(Path(args.lags).read_text())
        key = args.key or next(iter(stored))
        lag_report(closures, {k: v[1] for k, v in stored[key].items()}, speaker_of_name(), corpus_of)
    return 0


if __name__ == "__main__":
    sys.exit(main())
