"""Contact sheet grid of every --region and --emotion on one video and one photo (issue: region and emotion
controls): one row per setting, the same output frames in every row, face crops.

    .venv/bin/python bench/region_grid.py -o grid.png [--frames 40,57,110]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

import lipdub
from training import evaluate
from lipdub import media

SETTINGS = [("lips", "neutral"), ("lower", "neutral"), ("face", "neutral"), ("head", "neutral"),
            ("face", "happy"), ("face", "sad"), ("face", "angry"), ("face", "surprised")]


def face_box(path: Path) -> tuple[int, int, int, int]:
    lm = evaluate._track_path(path, None, None, cache=True).landmarks[0]
    lo, hi = lm[:, :2].min(0), lm[:, :2].max(0)
    pad = 0.12 * (hi - lo)
    return int(lo[0] - pad[0]), int(lo[1] - pad[1]), int(hi[0] + pad[0]), int(hi[1] + pad[1])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--frames", default="40,57,110")
    args = ap.parse_args()
    data = evaluate.default_data_dir()
    frames = [int(v) for v in args.frames.split(",")]
    sources = [data / "video/hdtf_katiehill_8s.mp4", data / "images/woman_frontal.png"]
    audio = data / "audio/en_jfk_11s.wav"
    blocks = []
    with tempfile.TemporaryDirectory() as tmp:
        for src in sources:
            x0, y0, x1, y1 = face_box(src)
            rows = []
            for region, emotion in SETTINGS:
                out = Path(tmp) / f"{src.stem}_{region}_{emotion}.mp4"
                lipdub.dub(src, audio, out, region=region, emotion=emotion)
                tiles = []
                with media.FrameReader(out) as rd:
                    for k in frames:
                        crop = rd.get(k)[max(y0, 0):y1, max(x0, 0):x1]
                        tiles.append(cv2.resize(crop, (220, int(220 * crop.shape[0] / crop.shape[1]))))
                row = np.concatenate(tiles, 1)
                label = np.full((row.shape[0], 150, 3), 255, np.uint8)
                cv2.putText(label, region, (6, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
                cv2.putText(label, emotion, (6, 65), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
                rows.append(np.concatenate([label, row], 1))
                print(f"{src.name} {region} {emotion}", flush=True)
            width = max(r.shape[1] for r in rows)
            blocks.append(np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)),
                                                 constant_values=255) for r in rows], 0))
    width = max(b.shape[1] for b in blocks)
    img = np.concatenate([np.pad(b, ((0, 8), (0, width - b.shape[1]), (0, 0)), constant_values=255)
                          for b in blocks], 0)
    cv2.imwrite(args.output, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.output}: rows = {SETTINGS}, columns = output frames {frames}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
