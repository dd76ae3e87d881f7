"""How a dub's mouths differ from the filmed ones in texture and in the gap between the lips, at the frame's own
pixel scale (issue 21: a small face's dub, 160² TV pictures, read "pinker and more sharply outlined" by eye).

From a `bench.realism` --out folder (its work/<clip>/original.mp4 and dubbed.mp4; face tracks cached), per clip:
mouth crops cut at their native size (bench.realism.read_side's, not resized up), both sides sampled to the same
opening distribution (det.matched_sample, over `--seeds` draws), and on each crop's middle half (lips and what
shows between them):

- texture: for L, Lab a* (red–green) and YUV V (the codec's red chroma plane) the edges' contrast (mean gradient
  magnitude, which a blur leaves as it is) and sharpness (RMS over mean gradient magnitude, which a blur lowers);
  mean a* (how pink); fine detail (std of L less its σ=1 blur); dub against original as a ratio and in units of
  the frames' spread (sd);
- the gap, per opening bin: along the middle third of columns, rows 35–80 % down the crop, the darkest row's L over
  the rows' median (lower: a darker line between the lips) and how many rows lie below half way from it to the
  median (the dark valley's height, px).

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python -m bench.realism_texture --out /tmp/realism_run --clips a,b [--json F]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from bench import realism_detect as det
from bench.realism import read_side, work_folder_parser
from lipdub.core.files import write_json

GAP_ROWS = (0.35, 0.8)  # share of the crop's height searched for the gap (nose base above, chin below)
OPENING_BINS = (0.0, 0.03, 0.05, 0.075, 1.0)  # inner-lip opening / eye-corner distance
MIN_PER_BIN = 3


def _gradient(x: np.ndarray) -> np.ndarray:
    return np.hypot(cv2.Sobel(x, cv2.CV_64F, 1, 0, ksize=3), cv2.Sobel(x, cv2.CV_64F, 0, 1, ksize=3))


def texture(crop: np.ndarray) -> dict[str, float]:
    """The texture measures of one RGB crop, over its middle half: per plane (L, a*, V) the edges' contrast (mean
    gradient magnitude: a blur leaves it) and sharpness (RMS over mean gradient magnitude: a blur lowers it, a
    contrast change does not); mean a*; fine detail."""
    n = crop.shape[0]
    q = n // 4
    mid = (slice(q, n - q), slice(q, n - q))
    lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float64)
    planes = {"L": lab[..., 0], "a": lab[..., 1], "V": cv2.cvtColor(crop, cv2.COLOR_RGB2YUV)[..., 2].astype(np.float64)}
    out = {}
    for name, plane in planes.items():
        g = _gradient(plane)[mid]
        out[f"{name}_contrast"] = float(g.mean())
        out[f"{name}_sharpness"] = float(np.sqrt((g ** 2).mean()) / max(g.mean(), 1e-6))
    out["a_mean"] = float(lab[..., 1][mid].mean())
    out["fine_detail"] = float((lab[..., 0] - cv2.GaussianBlur(lab[..., 0], (0, 0), 1.0))[mid].std())
    return out


def gap(crop: np.ndarray) -> tuple[float, int]:
    """(darkest row's L over the rows' median, the dark valley's height in px) between the lips of one RGB crop."""
    n = crop.shape[0]
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float64)
    rows = grey[int(GAP_ROWS[0] * n):int(GAP_ROWS[1] * n), n // 3:2 * n // 3].mean(1)
    darkest, median = float(rows.min()), float(np.median(rows))
    return darkest / max(median, 1.0), int((rows < 0.5 * (darkest + median)).sum())


def compare_clip(work: Path, max_seconds: float, seeds: int) -> dict:
    """A bench.realism work folder's filmed (original.mp4) and dubbed mouths compared: per texture measure their
    means, ratio and difference in sd units; per opening bin (OPENING_BINS) the gap's darkness and valley height,
    with the frames per side of one sampling."""
    real_side, dub_side = (read_side(work / name, max_seconds, size=None) for name in ("original.mp4", "dubbed.mp4"))
    real, real_open, dub, dub_open = real_side.crops, real_side.opening, dub_side.crops, dub_side.opening
    measures: dict[str, dict[str, list]] = {}
    bins: dict[int, dict[str, list]] = {}
    for seed in range(seeds):
        ia, ib = det.matched_sample(real_open, dub_open, seed=seed)
        for side, idx, crops, opening in (("real", ia, real, real_open), ("dub", ib, dub, dub_open)):
            for i in idx:
                for k, val in texture(crops[i]).items():
                    measures.setdefault(k, {"real": [], "dub": []})[side].append(val)
                b = int(np.clip(np.searchsorted(OPENING_BINS, opening[i], side="right") - 1, 0, len(OPENING_BINS) - 2))
                bins.setdefault(b, {"real": [], "dub": []})[side].append(gap(crops[i]))
    out = {"crop_px": int(np.median([c.shape[0] for c in real])) if real else 0, "texture": {}, "gap": []}
    for k, d in measures.items():
        a, b = np.array(d["real"]), np.array(d["dub"])
        sd = float(np.sqrt((a.var() + b.var()) / 2)) or 1.0
        out["texture"][k] = {"real": round(float(a.mean()), 3), "dub": round(float(b.mean()), 3),
                             "ratio": round(float(b.mean() / a.mean()), 3) if a.mean() else None,
                             "sd_units": round(float((b.mean() - a.mean()) / sd), 2)}
    for b in sorted(bins):
        r, f = np.array(bins[b]["real"], np.float64), np.array(bins[b]["dub"], np.float64)
        if len(r) < MIN_PER_BIN * seeds or len(f) < MIN_PER_BIN * seeds:
            continue
        out["gap"].append({"opening": [OPENING_BINS[b], OPENING_BINS[b + 1]],
                           "frames": [len(r) // seeds, len(f) // seeds],
                           "darkness_real": round(float(r[:, 0].mean()), 3),
                           "darkness_dub": round(float(f[:, 0].mean()), 3),
                           "valley_px_real": round(float(r[:, 1].mean()), 2),
                           "valley_px_dub": round(float(f[:, 1].mean()), 2)})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = work_folder_parser(__doc__)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    rows = {}
    for name in args.clips.split(","):
        rows[name] = m = compare_clip(args.out / "work" / name, args.max_seconds, args.seeds)
        print(f"{name} (mouth crop {m['crop_px']} px): " + ", ".join(
            f"{k} {v['real']:.2f} → {v['dub']:.2f} ({v['sd_units']:+.2f} sd)" for k, v in m["texture"].items()))
        for g in m["gap"]:
            print(f"  opening {g['opening'][0]:.3f}–{g['opening'][1]:.3f} ({g['frames'][0]}/{g['frames'][1]}): "
                  f"gap darkness {g['darkness_real']:.3f} → {g['darkness_dub']:.3f}, "
                  f"valley {g['valley_px_real']:.2f} → {g['valley_px_dub']:.2f} px")
    if args.json:
        write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
