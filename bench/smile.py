"""Does a dub keep the filmed expression? Per frame, the dub's re-tracked corner lift and mouth width against the
original's (the same frame of the clip), from a `bench.realism` --out folder (its work/<clip>/original.mp4 and
dubbed.mp4; face tracks cached, so a second look costs no tracking).

Corner lift: how far the mouth corners sit above the upper inner lip's middle, per eye-corner distance, in the
frame's eye-aligned axes (a smile lifts the corners: larger). Width: corner to corner per eye distance. Reported per
clip and split by the dub's opening (small: under SMALL_OPENING, where the issue's tell is: a smile with teeth drawn
as a pursed, rounded mouth): each side's spread (sd), the dub's mean minus the original's, and Pearson r of the dub
against the original frame by frame (`r`) and of their 1 s running medians (`slow`). Lift and width also move with
the opening, and a dub opens to other speech than the frame it is drawn over, so `lift_expr` and `width_expr` take
out the original's line fit of each on the opening: what is left is the expression.

`--by-opening` adds the mouth's shape per quartile of the original's opening (by_opening): width, roundness
(opening / width: an "o" is round, a smile flat) and the inner opening's fullness (opening_fullness: a lens 2/3, an
ellipse pi/4) at the 10th, 50th and 90th percentile on each side, as the realism detector compares them
(opening-matched).

    PYTHONPATH=$PWD .venv/bin/python -m bench.smile --out /tmp/realism_run [--clips a,b] [--json F] [--by-opening]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import median_filter

from lipdub import media
from lipdub.core.files import write_json
from lipdub.core.landmarks import EYE_OUTER, INNER_LOWER, INNER_UPPER
from lipdub.face.cached import load_track
from lipdub.face.measure import inner_opening, mouth_width

SMALL_OPENING = 0.10  # inner gap per eye distance: under it a mouth is shut or parted a little (teeth at most)
SLOW_SECONDS = 1.0  # the expression: running medians this long (speech moves lift and width back and forth faster)


def corner_lift_2d(lms: np.ndarray) -> np.ndarray:
    """(…, 478, 2|3) frame landmarks → corner lift per eye-corner distance, in the eye line's axes (up positive)."""
    eye = lms[..., EYE_OUTER[1], :2] - lms[..., EYE_OUTER[0], :2]
    iod = np.maximum(np.linalg.norm(eye, axis=-1), 1e-6)
    down = np.stack([-eye[..., 1], eye[..., 0]], -1) / iod[..., None]  # the eye line turned 90°: the face's down
    corners = 0.5 * (lms[..., 61, :2] + lms[..., 291, :2])
    return ((lms[..., 13, :2] - corners) * down).sum(-1) / iod


def opening_fullness(lms: np.ndarray) -> np.ndarray:
    """(…, 478, 2|3) landmarks → the inner lip contour's area over its corner-to-corner width times its middle gap:
    how elliptic the opening is (a lens of two parabolas 2/3, an ellipse pi/4, a slot 1); nan where shut."""
    ring = np.concatenate([lms[..., INNER_UPPER, :2], lms[..., INNER_LOWER[-2:0:-1], :2]], -2)
    x, y = ring[..., 0], ring[..., 1]
    area = 0.5 * np.abs((x * np.roll(y, -1, -1) - np.roll(x, -1, -1) * y).sum(-1))
    width = np.linalg.norm(lms[..., INNER_UPPER[0], :2] - lms[..., INNER_UPPER[-1], :2], axis=-1)
    gap = np.linalg.norm(lms[..., 13, :2] - lms[..., 14, :2], axis=-1)
    return np.where(gap * width > 1e-9, area / np.maximum(width * gap, 1e-9), np.nan)


def series(video: Path) -> dict[str, np.ndarray]:
    """Per frame of `video` (nan without a face): opening, width and corner lift, from its cached face track, and
    lift and width as SLOW_SECONDS running medians."""
    info = media.probe_video(video)
    track = load_track(video, info)
    lms, ok = track.landmarks.astype(np.float64), track.valid
    out = {"opening": inner_opening(lms), "width": mouth_width(lms), "lift": corner_lift_2d(lms),
           "fullness": opening_fullness(lms)}
    out = {k: np.where(ok, v, np.nan) for k, v in out.items()}
    size = max(1, int(round(SLOW_SECONDS * info.fps)) | 1)
    for key in ("lift", "width"):  # the slow part, over the frames with a face (nan elsewhere)
        slow = np.full(len(ok), np.nan)
        slow[ok] = median_filter(out[key][ok], size=size, mode="nearest")
        out[f"{key}_slow"] = slow
    return out


def with_expression(real: dict[str, np.ndarray], dub: dict[str, np.ndarray]) -> None:
    """Add `lift_expr` and `width_expr` to both sides: lift and width over the original's line fit of each on the
    opening. Lift and width move with the opening (the jaw drops the corners, an open mouth narrows), and the dub
    opens to other speech than the frame it is drawn over, so the per-frame values differ by the speech alone; what
    is left over the fit is the expression (a smile widens and lifts at any opening)."""
    ok = np.isfinite(real["lift"]) & np.isfinite(real["opening"])
    for key in ("lift", "width"):
        b, a = np.polyfit(real["opening"][ok], real[key][ok], 1) if ok.sum() >= 10 else (0.0, 0.0)
        for side in (real, dub):
            side[f"{key}_expr"] = side[key] - a - b * side["opening"]


def _r(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 10 or np.std(a) < 1e-9 or np.std(b) < 1e-9:
        return None
    return round(float(np.corrcoef(a, b)[0, 1]), 3)


def compare(real: dict[str, np.ndarray], dub: dict[str, np.ndarray]) -> dict:
    """The dub's lift and width against the original's, frame by frame: all frames, small and large openings (by
    the dub's opening)."""
    with_expression(real, dub)
    n = min(len(real["lift"]), len(dub["lift"]))
    ok = np.isfinite(real["lift"][:n]) & np.isfinite(dub["lift"][:n])
    small = dub["opening"][:n] < SMALL_OPENING
    out = {}
    for part, sel in (("all", ok), ("small", ok & small), ("large", ok & ~small)):
        row = {"frames": int(sel.sum())}
        for key in ("lift", "width", "lift_expr", "width_expr"):
            a, b = real[key][:n][sel], dub[key][:n][sel]
            if len(a) < 10:
                continue
            row[key] = {"sd_real": round(float(np.std(a)), 4), "sd_dub": round(float(np.std(b)), 4),
                        "mean_diff": round(float(np.mean(b - a)), 4), "r": _r(a, b),
                        "r_slow": _r(real[f"{key}_slow"][:n][sel], dub[f"{key}_slow"][:n][sel])
                        if f"{key}_slow" in real else None}
        out[part] = row
    return out


def by_opening(real: dict[str, np.ndarray], dub: dict[str, np.ndarray], bins: int = 4) -> list[dict]:
    """Per bin of the original's opening (its quantiles): frames on each side and the 10th, 50th and 90th
    percentile of each side's width, roundness (opening / width) and, given, the opening's fullness there."""
    ok_r, ok_d = np.isfinite(real["opening"]), np.isfinite(dub["opening"])
    edges = np.quantile(real["opening"][ok_r], np.linspace(0, 1, bins + 1))
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        row = {"opening": [round(float(lo), 3), round(float(hi), 3)]}
        for name, side, ok in (("real", real, ok_r), ("dub", dub, ok_d)):
            sel = ok & (side["opening"] >= lo) & (side["opening"] <= hi)
            row[f"{name}_frames"] = int(sel.sum())
            if sel.sum() >= 3:
                width = side["width"][sel]
                shape = [("width", width), ("round", side["opening"][sel] / width)]
                if "fullness" in side:
                    shape.append(("fullness", side["fullness"][sel]))
                for key, v in shape:
                    row[f"{name}_{key}"] = [round(float(q), 3) for q in np.nanpercentile(v, [10, 50, 90])]
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="a bench.realism --out folder")
    ap.add_argument("--clips", default=None, help="comma-separated clip names; default every clip there")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--by-opening", action="store_true", help="width and roundness per quartile of the opening")
    args = ap.parse_args(argv)
    names = args.clips.split(",") if args.clips else sorted(p.name for p in (args.out / "work").iterdir())
    rows = {}
    for name in names:
        work = args.out / "work" / name
        if not (work / "dubbed.mp4").is_file() or not (work / "original.mp4").is_file():
            print(f"skip {name}: no dub", file=sys.stderr)
            continue
        real, dub = series(work / "original.mp4"), series(work / "dubbed.mp4")
        rows[name] = compare(real, dub)
        if args.by_opening:
            rows[name]["by_opening"] = by_opening(real, dub)
            for b in rows[name]["by_opening"]:
                print(f"{name} opening {b['opening'][0]:.3f}-{b['opening'][1]:.3f}, frames {b['real_frames']}/"
                      f"{b['dub_frames']}: width p10/50/90 {b.get('real_width')} | dub {b.get('dub_width')}; "
                      f"roundness {b.get('real_round')} | dub {b.get('dub_round')}; "
                      f"fullness {b.get('real_fullness')} | dub {b.get('dub_fullness')}", flush=True)
        line = [name]
        for part in ("all", "small", "large"):
            row = rows[name][part]
            if "lift" in row:
                line.append(f"{part} ({row['frames']} frames): " + "; ".join(
                    f"{key} sd {v['sd_real']:.4f}/{v['sd_dub']:.4f} r {v['r']} slow {v['r_slow']} "
                    f"d {v['mean_diff']:+.4f}" for key, v in row.items() if key != "frames"))
        print("\n  ".join(line), flush=True)
    means = {}
    for part in ("all", "small", "large"):
        for key in ("lift", "width", "lift_expr", "width_expr"):
            rs = [v[part][key]["r"] for v in rows.values() if key in v[part] and v[part][key]["r"] is not None]
            slow = [v[part][key]["r_slow"] for v in rows.values()
                    if key in v[part] and v[part][key]["r_slow"] is not None]
            ratio = [v[part][key]["sd_dub"] / max(v[part][key]["sd_real"], 1e-9) for v in rows.values()
                     if key in v[part]]
            diff = [v[part][key]["mean_diff"] for v in rows.values() if key in v[part]]
            if rs:
                means[f"{part}_{key}"] = {"r": round(float(np.mean(rs)), 3),
                                          "r_slow": round(float(np.mean(slow)), 3) if slow else None,
                                          "sd_ratio": round(float(np.mean(ratio)), 3),
                                          "mean_diff": round(float(np.mean(diff)), 4)}
    for k, v in means.items():
        print(f"mean {k}: r {v['r']} slow {v['r_slow']} sd dub/real {v['sd_ratio']} dub-real {v['mean_diff']:+.4f}")
    if args.json:
        write_json(args.json, {"command": " ".join(sys.argv), "rows": rows, "means": means})
    return 0


if __name__ == "__main__":
    sys.exit(main())
