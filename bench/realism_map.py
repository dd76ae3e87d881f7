"""Where in the mouth crop does the realism detector look? From a `bench.realism` --out folder (its
work/<clip>/original.mp4 and dubbed.mp4; face tracks cached), per clip:

- the detector's HOG weights (the logistic regression of bench.realism fitted on all opening-matched frames, features
  standardised) folded onto the crop's 4 x 4 HOG cells: each cell's share of the weights' total |w| (a cell sits in
  up to four 2 x 2 blocks; its nine orientations summed);
- the dub minus the original per cell: the mean block-normalised gradient energy of the cell (its nine orientations
  summed), in units of the original's spread (negative: the dub has less edge there), and per orientation band
  (horizontal edges: the lip lines; vertical: teeth, corners, folds);
- out-of-fold accuracy per opening bin (which openings give the dub away);
- `pose_only`: the same detector, opening-matched the same way, on where the face's fixed points (nose, eye corners,
  the face's sides) sit in the mouth crop: above 0.5 when the dub opens its mouth at other head poses than the
  footage does (its speech is another's), a tell of the sampling, not of how the drawn mouth looks; the crop's centre
  is the mouth's, so a mouth placed elsewhere in the face, or a face outline re-tracked elsewhere around the drawn
  mouth, reads here too (selfie_expressive's 0.57 stays with the head pose matched);
  `pose_only_pose_matched`: the same with both sides matched in opening and head pose (bench.realism's "pose"
  sampling), which should leave it near 0.5;
- `by_departure`: the dub's frames by how far its re-tracked opening departs from the original's at the same frame
  (quartiles), with their mean out-of-fold p of "dubbed": the frames whose drawn mouth is far from the filmed one
  (a pause's rest over a talking frame, a wide vowel over a still one) read surest on the hard clips (2026-12-07);
- `by_voice`: the dub's frames by whether its own sound is voiced there (speech.vad on the dub's audio track, a
  pause's edges counted as speech): their count and mean out-of-fold probability of "dubbed" (all features), in the
  silences and in the speech. A held rest
  mouth in the new speech's pauses reads here (stNg_talk1's profile dub, 2026-12-07: silences 0.72, speech 0.56);
- a PNG per clip: the mean original crop, the mean dub crop and the cells' weight share as a heat map over the
  original, side by side (`OUT/maps/<clip>.png`).

A `bench.realism_profile` --out folder is read too: clip `<case>_<tag>` is its work/<case>/dubbed_<tag>.mp4 (tag own,
profile, ...) against that case's original.mp4.

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python -m bench.realism_map --out /tmp/realism_run --clips a,b [--json F]
    PYTHONPATH=$PWD nice -n 10 .venv/bin/python -m bench.realism_map --out /tmp/rp --clips stNg_talk1_profile
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from bench import realism_detect as det
from bench.realism import SEED, read_side, work_folder_parser
from lipdub import media
from lipdub.core.files import write_json
from lipdub.face.cached import load_track
from lipdub.face.measure import inner_opening
from lipdub.pipeline.offline import filmed_pauses

CELLS = 4  # det.FEATURE_SIZE / 16: HOG cells per side of the crop
BLOCKS = CELLS - 1  # 2 x 2-cell blocks per side, one cell apart
ORIENTATIONS = 9
BANDS = {"horizontal edges": (3, 4, 5), "vertical edges": (0, 8), "diagonal": (1, 2, 6, 7)}  # gradient orientation
BINS = 4  # opening bins for the per-opening accuracy


def hog_cells(values: np.ndarray) -> np.ndarray:
    """(..., HOG_SIZE) HOG vector(s) -> (..., CELLS, CELLS, ORIENTATIONS): each cell's values summed over the blocks
    it sits in (skimage's layout: blocks row, blocks column, cell row, cell column, orientation)."""
    v = np.asarray(values, np.float64).reshape(*values.shape[:-1], BLOCKS, BLOCKS, 2, 2, ORIENTATIONS)
    out = np.zeros((*values.shape[:-1], CELLS, CELLS, ORIENTATIONS))
    for br in range(BLOCKS):
        for bc in range(BLOCKS):
            for i in range(2):
                for j in range(2):
                    out[..., br + i, bc + j, :] += v[..., br, bc, i, j, :]
    return out


def weight_share(model: det.Logistic) -> np.ndarray:
    """(CELLS, CELLS) share of the fitted model's total |HOG weight| per cell (weights on standardised features)."""
    w = np.abs(model.w[:det.HOG_SIZE])
    cells = hog_cells(w).sum(-1)
    return cells / max(cells.sum(), 1e-12)


def cell_difference(real: np.ndarray, fake: np.ndarray, band: tuple[int, ...] | None = None) -> np.ndarray:
    """(CELLS, CELLS) mean dub minus mean original of each cell's gradient energy (orientations in `band`, default
    all), in units of the original's spread."""
    pick = slice(None) if band is None else list(band)
    r = hog_cells(real[:, :det.HOG_SIZE])[..., pick].sum(-1)
    f = hog_cells(fake[:, :det.HOG_SIZE])[..., pick].sum(-1)
    return (f.mean(0) - r.mean(0)) / (r.std(0) + 1e-9)


def by_opening(opening: np.ndarray, y: np.ndarray, p: np.ndarray, bins: int = BINS) -> list[dict]:
    """Out-of-fold balanced accuracy per opening quantile bin (both sides pooled)."""
    edges = np.quantile(opening, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, opening, side="right") - 1, 0, bins - 1)
    out = []
    for k in range(bins):
        m = which == k
        if m.sum() < 8 or len(np.unique(y[m])) < 2:
            continue
        out.append({"opening": [round(float(edges[k]), 3), round(float(edges[k + 1]), 3)], "n": int(m.sum()),
                    "accuracy": round(det.balanced_accuracy(y[m], p[m] > 0.5), 3)})
    return out


def pose_features(video: Path, max_seconds: float | None) -> tuple[np.ndarray, ...]:
    """(features, opening, times, head pose) of `video`'s frames with a face (its cached track): det.crop_pose (the
    face's fixed points in the mouth crop) and det.head_pose of each."""
    info = media.probe_video(video)
    track = load_track(video, info)
    keep = track.valid & (track.times < (np.inf if max_seconds is None else max_seconds))
    lms = track.landmarks[keep]
    return (np.array([det.crop_pose(x) for x in lms]), inner_opening(lms), track.times[keep],
            np.array([det.head_pose(x) for x in lms]).reshape(-1, 3))


def pose_only(real: tuple[np.ndarray, ...], fake: tuple[np.ndarray, ...], seeds: int,
              sampling: str = "opening") -> float:
    """Accuracy of the detector on pose features alone, real against dub, both sides sampled as bench.realism samples
    them by `sampling` (mean over seeds); each side (features, opening, times[, head pose]) as pose_features gives it
    (the head pose only needed for the "pose" sampling)."""
    (Pr, Or, Tr, *Hr), (Pf, Of, Tf, *Hf) = real, fake
    accs = []
    for s in range(SEED, SEED + seeds):
        ia, ib = det.sample(sampling, Or, Of, *(Hr or [None]), *(Hf or [None]), seed=s)
        accs.append(det.cross_validate(*det.stacked(Pr, Pf, Tr, Tf, ia, ib), seed=s)[0])
    return round(float(np.mean(accs)), 3)


def heat_png(real_crops: list, fake_crops: list, share: np.ndarray, path: Path) -> None:
    """Mean original crop | mean dub crop | the weight share over the original (red: where the detector looks)."""
    mr = np.mean(np.stack(real_crops).astype(np.float32), 0)
    mf = np.mean(np.stack(fake_crops).astype(np.float32), 0)
    heat = cv2.resize((share / max(share.max(), 1e-12)).astype(np.float32), mr.shape[1::-1],
                      interpolation=cv2.INTER_NEAREST)
    over = mr * (1 - 0.5 * heat[..., None]) + np.array([255, 0, 0], np.float32) * 0.5 * heat[..., None]
    gap = np.full((mr.shape[0], 6, 3), 255, np.float32)
    sheet = np.clip(np.hstack([mr, gap, mf, gap, over]), 0, 255).astype(np.uint8)
    sheet = cv2.resize(sheet, (sheet.shape[1] * 2, sheet.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png.tobytes())


def clip_videos(out: Path, name: str) -> tuple[Path, Path]:
    """(original, dub) of clip `name` in a bench.realism --out folder (work/<name>/original.mp4, dubbed.mp4), or in a
    bench.realism_profile one (`<case>_<tag>`: work/<case>/original.mp4, dubbed_<tag>.mp4)."""
    work = out / "work" / name
    if (work / "dubbed.mp4").is_file():
        return work / "original.mp4", work / "dubbed.mp4"
    case, _, tag = name.rpartition("_")
    dub = out / "work" / case / f"dubbed_{tag}.mp4"
    if case and dub.is_file():
        return dub.with_name("original.mp4"), dub
    raise FileNotFoundError(f"no dub of {name} under {out / 'work'} (dubbed.mp4, or <case>_<tag>: dubbed_<tag>.mp4)")


def voiced_at(video: Path, times: np.ndarray) -> np.ndarray | None:
    """Per time (s) of `video`'s frames: whether its own sound has voice within PAUSE_MARGIN of it; the rest are its
    pauses' middles, read as pipeline.offline.filmed_pauses reads a filmed speaker's (None without a sound track)."""
    info = media.probe_video(video)
    track = load_track(video, info)
    pauses = filmed_pauses(video, info, track)
    if pauses is None:
        return None
    frame = np.round(np.interp(times, track.times, np.arange(len(track)))).astype(int)
    return ~pauses[frame]


def by_departure(real_times: np.ndarray, real_open: np.ndarray, fake_times: np.ndarray, fake_open: np.ndarray,
                 p_sum: np.ndarray, p_count: np.ndarray, bins: int = BINS) -> list[dict] | None:
    """The dub's frames by how far the drawn mouth departs from the filmed frame's own: the re-tracked opening of
    the dub less that of the original at the same time, per quantile bin of that departure (the same frame of the
    footage on both sides: `length=video` dubs), with each bin's frames and mean out-of-fold p of "dubbed" (summed
    over the seeds' samples; frames never sampled, or without an original frame at their time, left out). None
    when no frame pairs up. The frame's skin is moved with a jaw the drawn opening puts elsewhere than filmed."""
    step = float(np.median(np.diff(real_times))) if len(real_times) > 1 else 1.0
    at = np.clip(np.searchsorted(real_times, fake_times), 0, max(len(real_times) - 1, 0))
    if not len(real_times):
        return None
    before = np.clip(at - 1, 0, None)
    at = np.where(np.abs(real_times[before] - fake_times) < np.abs(real_times[at] - fake_times), before, at)
    ok = (np.abs(real_times[at] - fake_times) < 0.5 * step) & (p_count > 0)
    if not ok.any():
        return None
    d = (fake_open - real_open[at])[ok]
    p = p_sum[ok] / p_count[ok]
    edges = np.quantile(d, np.linspace(0, 1, bins + 1))
    b = np.clip(np.searchsorted(edges, d, side="right") - 1, 0, bins - 1)
    return [{"departure": [round(float(edges[k]), 4), round(float(edges[k + 1]), 4)], "frames": int((b == k).sum()),
             "p": round(float(p[b == k].mean()), 3) if (b == k).any() else None} for k in range(bins)]


def by_voice(voiced: np.ndarray, p_sum: np.ndarray, p_count: np.ndarray) -> dict:
    """Count and mean out-of-fold p of "dubbed" of the dub's frames in silences and in speech (`voiced` per frame;
    p summed over the seeds' samples, frames never sampled left out)."""
    out = {}
    for key, m in (("silence", ~voiced), ("speech", voiced)):
        m = m & (p_count > 0)
        out[key] = {"frames": int(m.sum()),
                    "p": round(float(np.sum(p_sum[m]) / np.sum(p_count[m])), 3) if m.any() else None}
    return out


def clip_map(original: Path, dubbed: Path, max_seconds: float | None, seeds: int, png: Path | None) -> dict:
    real = read_side(original, max_seconds)
    fake = read_side(dubbed, max_seconds)
    Fa, Fb = real.features(), fake.features()
    shares, diffs, bands, per_bin, accs = [], [], {b: [] for b in BANDS}, [], []
    crops_r, crops_f = [], []
    p_sum, p_count = np.zeros(len(fake.times)), np.zeros(len(fake.times))
    for s in range(SEED, SEED + seeds):
        ia, ib = det.matched_sample(real.opening, fake.opening, seed=s)
        X, y, blocks = det.stacked(Fa, Fb, real.times, fake.times, ia, ib)
        np.add.at(p_sum, ib, det.cross_validate(X, y, blocks, seed=s)[1][len(ia):])
        np.add.at(p_count, ib, 1)
        acc, p = det.cross_validate(X[:, det.FEATURE_GROUPS["hog"]], y, blocks, seed=s)
        accs.append(acc)
        per_bin.append(by_opening(np.r_[real.opening[ia], fake.opening[ib]], y, p))
        shares.append(weight_share(det.Logistic().fit(X[:, :det.HOG_SIZE], y)))
        diffs.append(cell_difference(Fa[ia], Fb[ib]))
        for name, band in BANDS.items():
            bands[name].append(cell_difference(Fa[ia], Fb[ib], band))
        if s == SEED:
            crops_r, crops_f = [real.crops[i] for i in ia], [fake.crops[i] for i in ib]
    share = np.mean(shares, 0)
    if png is not None:
        heat_png(crops_r, crops_f, share, png)
    rnd = lambda a: np.round(np.asarray(a), 3).tolist()  # noqa: E731
    bins = [{"opening": b["opening"], "n": b["n"], "accuracy": round(float(np.mean(
        [pb[k]["accuracy"] for pb in per_bin if k < len(pb)])), 3)} for k, b in enumerate(per_bin[0])]
    poses = pose_features(original, max_seconds), pose_features(dubbed, max_seconds)
    voiced = voiced_at(dubbed, fake.times)
    return {"hog_accuracy": round(float(np.mean(accs)), 3), "pose_only": pose_only(*poses, seeds),
            "by_voice": None if voiced is None else by_voice(voiced, p_sum, p_count),
            "pose_only_pose_matched": pose_only(*poses, seeds, sampling="pose"),
            "by_departure": by_departure(real.times, real.opening, fake.times, fake.opening, p_sum, p_count),
            "weight_share": rnd(share),
            "dub_minus_real": rnd(np.mean(diffs, 0)),
            "dub_minus_real_by_band": {k: rnd(np.mean(v, 0)) for k, v in bands.items()},
            "by_opening": bins}


def main(argv: list[str] | None = None) -> int:
    ap = work_folder_parser(__doc__)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    rows = {}
    for name in args.clips.split(","):
        rows[name] = m = clip_map(*clip_videos(args.out, name), args.max_seconds, args.seeds,
                                  args.out / "maps" / f"{name}.png")
        print(f"{name}: HOG only {m['hog_accuracy']:.3f}, pose only {m['pose_only']:.3f} "
              f"(pose-matched sampling: {m['pose_only_pose_matched']:.3f})")
        print("  weight share per cell (rows top→bottom):")
        for row in m["weight_share"]:
            print("   " + " ".join(f"{v:5.3f}" for v in row))
        print("  dub − original, gradient energy per cell (sd units):")
        for row in m["dub_minus_real"]:
            print("   " + " ".join(f"{v:+5.2f}" for v in row))
        for band, cells in m["dub_minus_real_by_band"].items():
            print(f"  {band}: " + " | ".join(" ".join(f"{v:+4.2f}" for v in row) for row in cells))
        print("  by opening: " + ", ".join(f"{b['opening'][0]:.3f}–{b['opening'][1]:.3f}: {b['accuracy']:.3f}"
                                           for b in m["by_opening"]))
        if m["by_departure"] is not None:
            print("  dub frames by drawn less filmed opening, mean p of dubbed: " + ", ".join(
                f"{b['departure'][0]:+.3f}–{b['departure'][1]:+.3f}: {b['p']}" for b in m["by_departure"]))
        if m["by_voice"] is not None:
            print("  dub frames, mean p of dubbed: " + ", ".join(
                f"{k} {v['p'] if v['p'] is not None else 'n/a'} ({v['frames']} frames)" for k, v in m["by_voice"].items()))
        if args.json:
            write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
