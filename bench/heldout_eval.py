"""`lipdub eval` with honest motion: each cross-dub case is driven by a motion model that never saw the speaker
whose audio (and filmed mouth) is the truth.

    .venv/bin/python bench/train_motion.py     # writes ~/.cache/lipdub/motion_loso/<speaker group>.npz
    .venv/bin/python bench/heldout_eval.py

The shipped model was trained on every shared clip, including the truth clips of `lipdub eval`; this script shows how
much of the score survives on speakers the model has never heard.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from motion_eval import SELF_CLIPS  # noqa: E402
from train_motion import group_of  # noqa: E402

from training import evaluate


def truth_group(case: evaluate.Case) -> str:
    for name, (rel, rng) in SELF_CLIPS.items():
        if rel == case.audio_clip:
            return group_of(name)
    raise KeyError(case.audio_clip)


def main() -> int:
    from train_motion import LOSO_DIR

    rows = []
    for case in evaluate.CASES.values():
        group = truth_group(case)
        os.environ["LIPDUB_MOTION_MODEL"] = str(LOSO_DIR / f"{group}.npz")
        row = evaluate.run_case(case)
        row["held_out_group"] = group
        rows.append(row)
        print(f"[held-out] {case.name} (model without '{group}'): r={row['r']:.3f} lag={row['lag']:+d}", flush=True)
    os.environ.pop("LIPDUB_MOTION_MODEL", None)
    print(evaluate.format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
