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


def analyse_clip(path: Path, rng, allphone: bool = False):
    """The speech analysis of a clip's audio (cached); `allphone` decodes phones with pocketsphinx's allphone
    decoder instead of hama (the baseline phone recogniser)."""
    key = (str(path), rng, allphone)
    if key not in _speech_cache:
        from lipdub.speech import recognise

        samples, sr = media.load_audio(path, 16000)
        if rng is not None:
            samples = samples[int(rng[0] * sr):int(rng[1] * sr)]
        saved = recognise.recognise
        if allphone:
            recognise.recognise = lambda *a, **k: []  # no hama words: analysis falls back to allphone
        try:
            _speech_cache[key] = speech.analyse(samples, sr)
        finally:
            recognise.recognise = saved
    return _speech_cache[key]


def variants(track, times, allphone_track=None, model=None):
    """Baselines and the full system, each an opening curve at `times`."""
    rules = motion.MotionParams(learned=False, acoustic_weight=0.0)
    full = motion.mouth_track(track, times, params=motion.MotionParams(model=model) if model else None).opening
    jaw = motion.mouth_track(speech.SpeechTrack(track.duration, track.hop, track.voiced, track.jaw, track.loudness,
                                                [], "acoustic-only", None), times, params=rules).opening
    visemes = motion.mouth_track(track, times, params=rules).opening
    idx = np.clip(np.round(times / track.hop).astype(int), 0, len(track.loudness) - 1)
    out = {"loudness": track.loudness[idx], "jaw": jaw, "visemes": visemes}
    if allphone_track is not None:
        out["allphone"] = motion.mouth_track(allphone_track, times, params=rules).opening
    out["full"] = full
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(evaluate.default_data_dir()))
    ap.add_argument("--clips", help="comma-separated subset")
    ap.add_argument("--heldout", action="store_true",
                    help="full system = a model that never heard the clip's speaker (bench/train_motion.py's)")
    args = ap.parse_args()
    data = Path(args.data)
    names = args.clips.split(",") if args.clips else list(SELF_CLIPS)
    rows = []
    keys = ("loudness", "jaw", "visemes", "allphone", "full")
    print("loudness: audio loudness alone; jaw: acoustic jaw curve; visemes: recognised phones through the generic "
          "viseme table; allphone: pocketsphinx allphone phones through the same table; full: the system "
          f"({'held-out' if args.heldout else 'shipped'} opening model)")
    print(f"{'clip':18s} {'method':12s} " + " ".join(f"{k:>14s}" for k in keys))
    for name in names:
        rel, rng = SELF_CLIPS[name]
        path = data / rel
        t = time.perf_counter()
        times, truth = evaluate.mouth_curve(path, *(rng or (None, None)))
        tr = analyse_clip(path, rng)
        model = None
        if args.heldout:
            from train_motion import LOSO_DIR, group_of

            model = motion._load(str(LOSO_DIR / f"{group_of(name)}.npz"))
        res = {}
        for k, pred in variants(tr, times, analyse_clip(path, rng, allphone=True), model).items():
            r, lag, _ = evaluate.pearson_at_best_lag(pred, truth)
            res[k] = (r, lag)
        rows.append(res)
        print(f"{name:18s} {tr.method:12s} " + " ".join(f"{r:8.3f} ({lag:+d})" for r, lag in res.values()),
              f" {time.perf_counter() - t:.1f}s", flush=True)
    print(f"{'mean':31s} " + " ".join(f"{np.mean([r[k][0] for r in rows]):8.3f}     " for k in rows[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
