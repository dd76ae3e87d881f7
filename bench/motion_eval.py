"""Score the motion stage alone: the mouth opening predicted from a clip's audio against the mouth filmed with it.

    .venv/bin/python bench/motion_eval.py [--pairs self|cross|all]

Separates motion errors from rendering errors (the renderer follows a requested opening at r ≈ 0.95). Each talking
clip's own audio predicts its own filmed mouth ("self"); the cross-dub cases of `lipdub eval` use the same scoring.
Printed per clip with baselines measured in the same run: loudness alone, the acoustic jaw curve alone, phones
without acoustics, and the full motion.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from lipdub import evaluate, media, motion, speech

SELF_CLIPS = {
    "grid_bbaf2n": ("video/grid_bbaf2n.mpg", None), "grid_brbk7n": ("video/grid_brbk7n.mpg", None),
    "grid_lbax4n": ("video/grid_lbax4n.mpg", None), "grid_lbbc2a": ("video/grid_lbbc2a.mpg", None),
    "cnn_anchor_0_30": ("video/cnn_anchor_71s.mp4", (0.0, 30.0)),
    "cnn_anchor_40_70": ("video/cnn_anchor_71s.mp4", (40.0, 70.0)),
    "hdtf_katiehill": ("video/hdtf_katiehill_8s.mp4", None), "hdtf_radio34": ("video/hdtf_radio34_8s.mp4", None),
    "woman_bluebg": ("video/woman_bluebg_7s.mp4", None), "german_anchor": ("video/german_anchor_20s.mp4", None),
    "interview_vfr": ("video/interview_vfr_6s.mp4", None), "man_kitchen": ("video/man_kitchen_20s.mp4", None),
    "woman_outdoor": ("video/woman_outdoor_10s.mp4", None), "face_gap": ("video/face_gap_23s.mov", None),
}
_speech_cache: dict = {}


def analyse_clip(path: Path, rng):
    key = (str(path), rng)
    if key not in _speech_cache:
        samples, sr = media.load_audio(path, 16000)
        if rng is not None:
            samples = samples[int(rng[0] * sr):int(rng[1] * sr)]
        _speech_cache[key] = speech.analyse(samples, sr)
    return _speech_cache[key]


def variants(track, times):
    full = motion.mouth_track(track, times).opening
    jaw = motion.mouth_track(speech.SpeechTrack(track.duration, track.hop, track.voiced, track.jaw, track.loudness,
                                                [], "acoustic-only", None), times).opening
    phones_only = motion.mouth_track(track, times, acoustic_weight=0.0).opening
    idx = np.clip(np.round(times / track.hop).astype(int), 0, len(track.loudness) - 1)
    return {"loudness": track.loudness[idx], "jaw": jaw, "phones": phones_only, "full": full}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(evaluate.default_data_dir()))
    ap.add_argument("--clips", help="comma-separated subset")
    args = ap.parse_args()
    data = Path(args.data)
    names = args.clips.split(",") if args.clips else list(SELF_CLIPS)
    rows = []
    print(f"{'clip':18s} {'method':12s} " + " ".join(f"{k:>14s}" for k in ("loudness", "jaw", "phones", "full")))
    for name in names:
        rel, rng = SELF_CLIPS[name]
        path = data / rel
        t = time.perf_counter()
        times, truth = evaluate.mouth_curve(path, *(rng or (None, None)))
        tr = analyse_clip(path, rng)
        res = {}
        for k, pred in variants(tr, times).items():
            r, lag, _ = evaluate.pearson_at_best_lag(pred, truth)
            res[k] = (r, lag)
        rows.append(res)
        print(f"{name:18s} {tr.method:12s} " + " ".join(f"{r:8.3f} ({lag:+d})" for r, lag in res.values()),
              f" {time.perf_counter() - t:.1f}s", flush=True)
    print(f"{'mean':31s} " + " ".join(f"{np.mean([r[k][0] for r in rows]):8.3f}     " for k in rows[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
