"""The cross-dub evaluation with honest motion: each case is driven by a motion model that never saw the speaker
whose audio (and filmed mouth) is the truth. Now `python -m training.evaluate --heldout`; kept as a shortcut.

    python -m training.train_motion --dry-run    # writes ~/.cache/lipdub/motion_loso/<speaker group>.npz
    python -m bench.heldout_eval

The shipped model was trained on every filmed clip, including the truth clips of the evaluation; this shows how
much of the score survives on speakers the model has never heard.
"""

from __future__ import annotations

import sys

from training import evaluate


def main() -> int:
    return evaluate.main(["--heldout"] + sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
