"""Cross-dub over many pairs (issue: motion accuracy): every talking clip's audio (its first seconds) drives each of
a set of target clips of other speakers, and each half of the long CNN clip drives the other (the same speaker at
another time); the re-tracked dubbed mouth is scored against the driving clip's own filmed mouth. Prints per pair,
per driving language, cross-speaker, same-speaker and overall: r at the best lag (±5), lag, amplitude ratio. `--heldout` drives each pair
with a motion model that never heard the driving speaker (python -m training.train_motion's leave-one-speaker-out models);
the shipped model was trained on all of these clips.

    .venv/bin/python -m bench.all_pairs [--seconds 6] [--heldout] [--targets a,b,c] [--cross-only] [--unseen N]
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

from bench.motion_eval import SELF_CLIPS, SPEAKER
from training import evaluate
from training.manifest import HELD_OUT_DIR as LOSO_DIR, filmed_clips

LANGUAGE = {"german_anchor": "de"}  # the others are English (MANIFEST); man_kitchen/woman_outdoor unverified
TARGETS = ["grid_lbax4n", "hdtf_katiehill", "woman_bluebg", "german_anchor", "interview_vfr"]
# the same speaker at another time (driver -> target): the long clip's two halves, each dubbed with the other's audio
SAME_SPEAKER = [("cnn_anchor_40_70", "cnn_anchor_0_30"), ("cnn_anchor_0_30", "cnn_anchor_40_70")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=6.0, help="length of each driving piece")
    ap.add_argument("--heldout", action="store_true")
    ap.add_argument("--targets", default=",".join(TARGETS), help="comma-separated; \"\" for none")
    ap.add_argument("--cross-only", action="store_true", help="leave out the same-speaker pairs")
    ap.add_argument("--unseen", type=int, default=0, metavar="N",
                    help="instead: N train/ speakers drive the targets in turn (one clip each, those with their own "
                         "sound track); with --heldout, by models that never heard them")
    args = ap.parse_args()
    targets = [t for t in args.targets.split(",") if t]  # empty: the same-speaker pairs alone
    clips, speaker, language = dict(SELF_CLIPS), dict(SPEAKER), dict(LANGUAGE)
    if args.unseen:
        unseen = list({c.speaker: c for c in reversed(filmed_clips())
                       if c.path.startswith("train/") and c.audio is None}.values())[::-1][:args.unseen]
        clips.update({c.name: (c.path, c.range) for c in unseen})
        speaker.update({c.name: c.speaker for c in unseen})
        language.update({c.name: c.language for c in unseen})
        pairs = [(c.name, targets[i % len(targets)]) for i, c in enumerate(unseen)]
    else:
        pairs = [(d, t) for d in SELF_CLIPS for t in targets if SPEAKER[t] != SPEAKER[d]]  # cross-speaker
        if not args.cross_only:
            pairs += SAME_SPEAKER
    rows = []
    for driver, target in pairs:
        rel, rng = clips[driver]
        start = rng[0] if rng else 0.0
        t_rel, t_rng = clips[target]
        case = evaluate.Case(f"{driver}->{target}", t_rel, rel, t_rng, (start, start + args.seconds))
        if args.heldout:
            os.environ["LIPDUB_MOTION_MODEL"] = str(LOSO_DIR / f"{SPEAKER[driver]}.npz")
        try:
            res = evaluate.run_case(case, max_seconds=args.seconds)
        except Exception as exc:  # noqa: BLE001 - one failed pair is reported, the table goes on
            print(f"{case.name:40s} failed: {exc}", flush=True)
            continue
        res["language"] = language.get(driver, "en")
        res["same"] = speaker[target] == speaker[driver]
        rows.append(res)
        print(f"{case.name:40s} r {res['r']:.3f} lag {res['lag']:+d} amp {res['amp']:.2f} "
              f"base@0 {res['base_r0']:+.3f}", flush=True)

    def mean(sel, key):
        v = [r[key] for r in sel if r.get(key) is not None and math.isfinite(r[key])]
        return float(np.mean(v)) if v else math.nan

    def line(label, sel):
        print(f"{label}: {len(sel)} pairs, mean r {mean(sel, 'r'):.3f}, "
              f"|lag| {np.mean([abs(r['lag']) for r in sel]):.2f}, amp {mean(sel, 'amp'):.2f}, "
              f"do-nothing r@0 {mean(sel, 'base_r0'):+.3f}")

    print()
    cross = [r for r in rows if not r["same"]]
    for lang in sorted({r["language"] for r in cross}):
        line(f"driving language {lang}", [r for r in cross if r["language"] == lang])
    line("cross-speaker, all", cross)
    if any(r["same"] for r in rows):
        line("same speaker, another time", [r for r in rows if r["same"]])
    line("every pair", rows)
    print(f"mean lag {np.mean([r['lag'] for r in rows]):+.2f} frames (> 0: the dub is late)")
    print(f"({'held-out' if args.heldout else 'shipped'} motion model)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
