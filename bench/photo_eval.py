"""Photo → talking head (issue: single photo, region and emotion): each portrait speaks en_jfk_11s with
`--region head`, then the output is re-tracked and measured:

- mouth: r of the re-tracked inner-lip opening against the opening the system asked for (goal ≥ 0.9);
- blinks: dips of the re-tracked eye opening below 0.65× its median; intervals (goal: every 2–8 s);
- head: re-tracked yaw/pitch/roll range (goal: a few degrees) and r against the head motion asked for;
- frame edge: mean |difference| from the photo in a 6-pixel band along the frame edge (no tearing: codec noise only)
  and the largest one over all frames.

    .venv/bin/python bench/photo_eval.py [--sheet-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import lipdub
from training import evaluate
from lipdub import face, media

PHOTOS = ["images/obama_portrait.jpg", "images/man_frontal_hires.jpg", "images/woman_frontal.png",
          "images/man_bw_vintage.jpg"]
AUDIO = "audio/en_jfk_11s.wav"


def head_angles(track) -> np.ndarray:
    can = face.canonical_shape(track)
    r = face.estimate_pose(track, can).rotation
    yaw = np.degrees(np.arcsin(np.clip(r[:, 0, 2], -1, 1)))
    pitch = np.degrees(np.arcsin(np.clip(-r[:, 1, 2], -1, 1)))
    roll = np.degrees(np.arctan2(r[:, 1, 0], r[:, 0, 0]))
    return np.stack([pitch, yaw, roll], 1)


def eye_opening(lms: np.ndarray) -> np.ndarray:
    iod = np.linalg.norm(lms[:, 33, :2] - lms[:, 263, :2], axis=1)
    gaps = [np.linalg.norm(lms[:, a, :2] - lms[:, b, :2], axis=1) for a, b in ((159, 145), (386, 374))]
    return np.mean(gaps, axis=0) / np.maximum(iod, 1e-6)


def edge_band(frame: np.ndarray, width: int = 6) -> np.ndarray:
    return np.concatenate([frame[:width].reshape(-1, 3), frame[-width:].reshape(-1, 3),
                           frame[:, :width].reshape(-1, 3), frame[:, -width:].reshape(-1, 3)]).astype(np.float32)


def measure(photo: Path, out: Path, report) -> dict:
    track = evaluate._track_path(out, None, None, cache=False)
    fps = media.probe_video(out).fps
    got = face.inner_opening(track.landmarks)
    want = report.wanted_opening[: len(got)]
    r_mouth, lag, _ = evaluate.pearson_at_best_lag(got, want, 1)
    eo = eye_opening(track.landmarks)
    closed = eo < 0.65 * np.median(eo)
    starts = np.flatnonzero(np.diff(closed.astype(int)) == 1) + 1
    angles = head_angles(track)
    asked = report.head[: len(angles)]
    r_head = [evaluate.pearson_at_best_lag(angles[:, a], asked[:, a], 2)[0] for a in range(3)]
    with media.FrameReader(photo) as rd:
        still = rd.get(0)
    band0 = edge_band(still)
    edge = [float(np.abs(edge_band(fr.rgb) - band0).mean()) for fr in media.iter_frames(out)]
    return {"r_mouth": r_mouth, "lag": lag, "blinks_s": (starts / fps).round(2).tolist(),
            "intervals": np.diff(np.r_[0.0, starts / fps]).round(2).tolist(),
            "range": np.ptp(angles, axis=0).round(2).tolist(), "r_head": np.round(r_head, 3).tolist(),
            "edge_mean": float(np.mean(edge)), "edge_max": float(np.max(edge)), "frames": len(track)}


def sheet(photo: Path, out: Path, path: Path, blinks: list) -> None:
    track = evaluate._track_path(photo, None, None, cache=True)
    lm = track.landmarks[0]
    x0, y0 = np.maximum(lm[:, :2].min(0) - 0.25 * np.ptp(lm[:, :2], 0), 0).astype(int)
    x1, y1 = (lm[:, :2].max(0) + 0.25 * np.ptp(lm[:, :2], 0)).astype(int)
    info = media.probe_video(out)
    picks = sorted(set(np.linspace(0, info.n_frames - 1, 6).astype(int).tolist() +
                       [int(b * info.fps) + 1 for b in blinks[:2]]))
    tiles = []
    with media.FrameReader(out) as rd:
        for k in picks:
            crop = rd.get(k)[y0:y1, x0:x1]
            crop = cv2.resize(crop, (300, int(300 * crop.shape[0] / crop.shape[1])), interpolation=cv2.INTER_AREA)
            cv2.putText(crop, str(k), (5, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2)
            tiles.append(crop)
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    img = np.concatenate([np.concatenate(tiles[i:i + 4], 1) for i in range(0, len(tiles), 4)], 0)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sheet-dir", help="write a contact sheet per photo here")
    ap.add_argument("--region", default="head")
    args = ap.parse_args()
    data = evaluate.default_data_dir()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rel in PHOTOS:
            photo = data / rel
            out = Path(tmp) / (photo.stem + ".mp4")
            t = time.perf_counter()
            report = lipdub.dub(photo, data / AUDIO, out, region=args.region)
            wall = time.perf_counter() - t
            m = measure(photo, out, report)
            m.update(photo=photo.name, wall=wall)
            rows.append(m)
            print(f"{photo.name:24s} mouth r {m['r_mouth']:.3f} (lag {m['lag']:+d})  blinks at {m['blinks_s']} s  "
                  f"head range p/y/r {m['range']} deg, r vs asked {m['r_head']}  edge |diff| mean "
                  f"{m['edge_mean']:.2f} max {m['edge_max']:.2f}  {wall:.1f} s", flush=True)
            if args.sheet_dir:
                Path(args.sheet_dir).mkdir(parents=True, exist_ok=True)
                sheet(photo, out, Path(args.sheet_dir) / f"{photo.stem}.png", m["blinks_s"])
    print(f"mean mouth r {np.mean([r['r_mouth'] for r in rows]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
