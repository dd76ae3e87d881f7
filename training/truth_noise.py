"""How noisy is the truth? The filmed mouth opening each clip is scored against, tracked twice (issue 22).

    OMP_NUM_THREADS=1 python -m training.truth_noise [--perturb flip] [--folds 5] [--members 2]

The truth of every motion score is the inner-lip opening (face.inner_opening) that the face tracker reads off the
filmed frames. Tracked again on the same frames mirrored (--perturb flip: the same mouth, another image for the
landmark net; the measure is left-right symmetric), the two curves differ only by the tracker's noise. Resizing
alone (scale:0.8) is no test: the tracker resamples the face to its own input size, and the two curves agree at
r >= 0.999. Per clip their r (test-retest) bounds what any model can score: if
the two trackings' errors are independent, a perfect model of the true opening reaches sqrt(r) against either. The
held-out models (the plain recipe, folds of speaker groups as training.train_motion --folds) are then scored against
the first tracking, the second, and their mean (less noisy); and recipes whose training target is smoothed or is the
mean of both trackings are scored against the same first tracking as every figure in docs/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from lipdub import motion
from lipdub.core.cache import cache_dir, cache_key
from lipdub.core.metrics import pearson_at_best_lag
from lipdub.face import inner_opening, track_frames
from lipdub.media import Frame, probe_video
from training import evaluate
from training.clips import MATERIAL_VERSION
from training.fit import fit_mlp
from training.manifest import data_root, filmed_clips, require_data
from training.train_motion import OPENING_EPOCHS, aligned_rows, heldout_models, load_samples, speaker_of_name


def retracked_opening(data: Path, clip, perturb: str) -> np.ndarray:
    """The clip's inner-lip opening per frame, tracked on its frames changed by `perturb` ("flip", "scale:S" or
    both, comma-separated; NaN without a face). Cached on disk."""
    import cv2  # only this measurement needs OpenCV's resize

    path = data / clip.path
    key = cache_key(path, MATERIAL_VERSION, range=clip.range, perturb=perturb, what="retracked-opening")
    file = cache_dir() / "train" / f"{key}.npy"
    if file.is_file():
        return np.load(file)
    info = probe_video(path)
    start, end = clip.range or (None, None)
    frames = evaluate._RangeFrames(path, start, end, info.fps)
    parts = dict(p.partition(":")[::2] for p in perturb.split(","))
    scale = float(parts.get("scale") or 1.0)
    w, h = int(round(info.width * scale)) // 2 * 2, int(round(info.height * scale)) // 2 * 2

    def resized():
        for fr in frames():
            rgb = fr.rgb[:, ::-1] if "flip" in parts else fr.rgb
            if scale != 1.0:
                rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
            yield Frame(fr.index, fr.time, np.ascontiguousarray(rgb))
    lo, hi = start or 0.0, info.duration if end is None else min(end, info.duration)
    track = track_frames(resized, w, h, max(1, int(round((hi - lo) * info.fps))), info.fps)
    op = inner_opening(track.landmarks).astype(np.float64)
    op[~track.valid] = np.nan
    file.parent.mkdir(parents=True, exist_ok=True)
    np.save(file, op)
    return op


def paired_r(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1]) if ok.sum() > 10 else float("nan")


def smoothed(y: np.ndarray, sigma: float) -> np.ndarray:
    """y smoothed over frames (Gaussian, `sigma` frames), NaN frames left out of the average."""
    ok = np.isfinite(y)
    num = gaussian_filter1d(np.where(ok, y, 0.0), sigma)
    den = gaussian_filter1d(ok.astype(np.float64), sigma)
    return np.where(ok, num / np.maximum(den, 1e-9), np.nan)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.truth_noise", description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="the data root (default $LIPDUB_DATA or ../shared/data)")
    ap.add_argument("--perturb", default="flip", help="the second tracking's frames: flip, scale:S, or both")
    ap.add_argument("--folds", type=int, default=5, help="folds of speaker groups (held out)")
    ap.add_argument("--members", type=int, default=2, help="nets per held-out model")
    ap.add_argument("--retest-only", action="store_true", help="only the test-retest r (no model fits)")
    args = ap.parse_args(argv)
    clips = filmed_clips()
    data = require_data(Path(args.data) if args.data else data_root(),
                        [p for c in clips for p in dict.fromkeys((c.path, c.audio_path))])
    second = {}
    for c in clips:
        second[c.name] = retracked_opening(data, c, args.perturb)
        first = evaluate.mouth_curve(data / c.path, *(c.range or (None, None)))[1]
        print(f"{c.name:32s} test-retest r {paired_r(first, second[c.name]):.3f}", flush=True)
    samples = load_samples(data)
    rr = np.array([paired_r(s[1], second[k]) for k, s in samples.items()])
    print(f"\ntest-retest r (tracked as filmed and {args.perturb}): mean {np.nanmean(rr):.3f}, median {np.nanmedian(rr):.3f}, "
          f"min {np.nanmin(rr):.3f}; ceiling of a perfect model (mean sqrt r) {np.nanmean(np.sqrt(np.clip(rr, 0, 1))):.3f}")
    if args.retest_only:
        return 0
    group_of = speaker_of_name()
    truths = {"first tracking": lambda k: samples[k][1],
              f"second ({args.perturb})": lambda k: second[k][:len(samples[k][1])],
              "mean of both": lambda k: np.nanmean([samples[k][1], pad(second[k], len(samples[k][1]))], 0)}
    targets = {"plain": None, "smoothed 1 frame": 1.0, "mean of both": "mean"}
    for label, how in targets.items():
        fit = fitter(samples, second, how)
        models = heldout_models(samples, fit, args.members, folds=args.folds, out=None)
        scores = {}
        for tname, truth in truths.items():
            if how is not None and tname != "first tracking":
                continue
            scores[tname] = float(np.nanmean([pearson_at_best_lag(opening_of(s, models[group_of[k]]), truth(k))[0]
                                               for k, s in samples.items()]))
        print(f"target {label:18s} held-out r against " + ", ".join(f"{t} {v:.3f}" for t, v in scores.items()),
              flush=True)
    return 0


def pad(y: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([y, np.full(max(0, n - len(y)), np.nan)])[:n]


def opening_of(sample, model) -> np.ndarray:
    """The held-out model's mouth for a clip's own audio, through the full motion post-processing."""
    times, _, speech = sample[:3]
    return motion.mouth_track(speech, times, params=replace(motion.MotionParams(), model=model)).opening


def fitter(samples: dict, second: dict, how):
    """fit(names, members) on each clip's rows with its target smoothed (`how` a sigma in frames) or the mean of
    both trackings (`how` "mean"), moved by the clip's lag as the plain target is."""
    rows = {}
    for k, s in samples.items():
        times, truth, speech, lag = s[0], s[1], s[2], s[7]
        if how is None:
            rows[k] = (s[3], s[4])
            continue
        t = smoothed(truth, how) if how != "mean" else np.nanmean([truth, pad(second[k], len(truth))], 0)
        rows[k] = aligned_rows(times, t, speech, lag)

    def fit(names, members):
        return fit_mlp(np.concatenate([rows[k][0] for k in names]), np.concatenate([rows[k][1] for k in names]),
                       members=members, epochs=OPENING_EPOCHS)
    return fit


if __name__ == "__main__":
    sys.exit(main())
