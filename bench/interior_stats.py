"""What shows between the lips, original against dub: from a `bench.realism` --out folder (its work/<clip>/original.mp4
and dubbed.mp4; face tracks cached), per clip and bin of re-tracked inner-lip opening (eye distances), the mean over
frames of:

- `gap`: the grey (Lab L) inside the inner lip contour over the lips' median grey (gap_lightness's measure, in Lab);
- `teeth`: pixels inside the inner lips lighter than 0.7 × the lips and clearly less red (atlas.teeth_visibility's
  rule), per squared eye distance × 100; `upper`: those above the midline between the inner lips (the upper teeth);
- `teeth_L`: their mean grey over the lips'.

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python -m bench.interior_stats --out /tmp/realism_run --clips a,b
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from bench.realism import work_folder_parser
from lipdub import media
from lipdub.core.landmarks import EYE_OUTER, INNER_LOWER, INNER_UPPER, OUTER_LOWER, OUTER_UPPER
from lipdub.face.cached import load_track
from lipdub.face.measure import inner_opening

BINS = (0.0, 0.03, 0.06, 0.09, 0.12, 0.16, 0.25, 1.0)
FIELDS = ("gap", "teeth", "upper", "teeth_L")


def interior(rgb: np.ndarray, lms: np.ndarray) -> dict[str, float] | None:
    """One frame's interior measures (module doc) from its (478, 2|3) landmarks; None where the lips are not seen."""
    pts = lms[:, :2].astype(np.float64)
    iod = float(np.linalg.norm(pts[EYE_OUTER[0]] - pts[EYE_OUTER[1]]))
    inner = np.concatenate([pts[INNER_UPPER], pts[INNER_LOWER[::-1][1:-1]]])
    outer = np.concatenate([pts[OUTER_UPPER], pts[OUTER_LOWER[::-1][1:-1]]])
    x0, y0 = np.maximum(np.floor(outer.min(0)).astype(int) - 2, 0)
    x1, y1 = np.ceil(outer.max(0)).astype(int) + 3
    box = rgb[y0:y1, x0:x1]
    if box.shape[0] < 3 or box.shape[1] < 3 or iod <= 0:
        return None
    lab = cv2.cvtColor(np.ascontiguousarray(box), cv2.COLOR_RGB2LAB).astype(np.float32)
    m_in, m_out = np.zeros(box.shape[:2], np.uint8), np.zeros(box.shape[:2], np.uint8)
    cv2.fillPoly(m_in, [np.round((inner - [x0, y0]) * 16).astype(np.int32)], 1, shift=4)
    cv2.fillPoly(m_out, [np.round((outer - [x0, y0]) * 16).astype(np.int32)], 1, shift=4)
    inside, lips = m_in > 0, (m_out > 0) & (m_in == 0)
    if lips.sum() < 10:
        return None
    l_lip, a_lip = np.median(lab[lips][:, :2], axis=0)
    cols = np.arange(box.shape[1]) + x0
    up, lo = pts[INNER_UPPER], pts[INNER_LOWER]
    mid = 0.5 * (np.interp(cols, *up[np.argsort(up[:, 0])].T) + np.interp(cols, *lo[np.argsort(lo[:, 0])].T))
    upper = (np.arange(box.shape[0]) + y0)[:, None] < mid[None, :]
    grey = lab[..., 0]
    teeth = inside & (grey > 0.7 * l_lip) & (lab[..., 1] < a_lip - 4)
    unit = iod ** 2 / 100.0
    return {"gap": float(grey[inside].mean() / l_lip) if inside.sum() >= 3 else np.nan,
            "teeth": float(teeth.sum()) / unit, "upper": float((teeth & upper).sum()) / unit,
            "teeth_L": float(grey[teeth].mean() / l_lip) if teeth.sum() >= 3 else np.nan}


def video_interiors(video: Path, max_seconds: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(opening per frame, FIELDS per frame) of `video`'s frames with a face (its cached track)."""
    track = load_track(video, media.probe_video(video))
    opening, rows = [], []
    for fr in media.iter_frames(video):
        if max_seconds is not None and fr.time >= max_seconds:
            break
        i = fr.index
        if i >= len(track.valid) or not track.valid[i]:
            continue
        m = interior(fr.rgb, track.landmarks[i])
        if m is not None:
            opening.append(float(inner_opening(track.landmarks[i])))
            rows.append([m[k] for k in FIELDS])
    return np.array(opening), np.array(rows).reshape(-1, len(FIELDS))


def by_opening(opening: np.ndarray, values: np.ndarray, min_frames: int = 3) -> list[dict]:
    """Per BINS bin with at least `min_frames` frames: its frame count and FIELDS' means (nan-aware)."""
    out = []
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        sel = (opening >= lo) & (opening < hi)
        if sel.sum() >= min_frames:
            with np.errstate(all="ignore"):
                means = [float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for v in values[sel].T]
            out.append({"opening": (lo, hi), "n": int(sel.sum()), **dict(zip(FIELDS, means))})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = work_folder_parser(__doc__, seeds=False)
    args = ap.parse_args(argv)
    for name in args.clips.split(","):
        work = args.out / "work" / name
        print(f"{name}: opening bin | frames original / dub | " + " | ".join(f"{k} original / dub" for k in FIELDS))
        real = {tuple(b["opening"]): b for b in by_opening(*video_interiors(work / "original.mp4", args.max_seconds))}
        dub = {tuple(b["opening"]): b for b in by_opening(*video_interiors(work / "dubbed.mp4", args.max_seconds))}
        for key in sorted(set(real) & set(dub)):
            r, d = real[key], dub[key]
            print(f"  {key[0]:.2f}-{key[1]:.2f} | {r['n']} / {d['n']} | "
                  + " | ".join(f"{r[k]:.2f} / {d[k]:.2f}" for k in FIELDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
