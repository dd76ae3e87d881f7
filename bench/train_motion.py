"""Train the motion models: the fitting code lives in training/ (not shipped). Kept as a shortcut.

    python -m bench.train_motion [args]             = python -m training.train_motion [args]   (make train)
    python -m bench.train_motion --causal [args]    = python -m training.train_causal [args]   (make train-causal)
"""

from __future__ import annotations

import sys

from training import train_causal, train_motion


def main() -> int:
    args = sys.argv[1:]
    if "--causal" in args:
        return train_causal.main([a for a in args if a != "--causal"])
    return train_motion.main(args)


if __name__ == "__main__":
    sys.exit(main())
