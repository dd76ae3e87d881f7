"""CPU time of the speech analysis (`speech.analyse`), with and without a transcript: median of repeated runs.

    .venv/bin/python -m bench.speech_cpu [--repeats 3]

Without a transcript hama's phone posteriors come from the recognition pass that runs anyway; with one they cost one
more hama pass. Process CPU time (all threads), so other work on a shared host moves it less than wall time. The
models are loaded by a first, untimed run.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from lipdub import media, speech
from training.manifest import data_root

JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
CASES = (("video/hdtf_katiehill_8s.mp4", None), ("audio/en_jfk_11s.wav", JFK))


def cpu_of(x: np.ndarray, transcript: str | None, repeats: int) -> list[float]:
    speech.analyse(x, 16000, transcript=transcript)  # models loaded, caches warm
    out = []
    for _ in range(repeats):
        t = time.process_time()
        speech.analyse(x, 16000, transcript=transcript)
        out.append(time.process_time() - t)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.speech_cpu", description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    for rel, transcript in CASES:
        x = media.load_audio(data_root() / rel, 16000)[0]
        runs = cpu_of(x, transcript, args.repeats)
        seconds = len(x) / 16000
        print(f"{rel} ({seconds:.1f} s, {'with' if transcript else 'without'} transcript): CPU median "
              f"{np.median(runs):.2f} s ({np.median(runs) / seconds:.3f} s per s of audio), runs "
              + " ".join(f"{v:.2f}" for v in runs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
