"""Do the lips really close on p, b, m? (issue: motion accuracy) A dub with a known transcript is re-tracked and,
at every bilabial of the forced alignment, the re-tracked inner-lip opening (lowest within ±1 frame of the phone's
span) is compared with the speaker's open mouth (90th percentile of the dub's opening while speaking).

The dub is re-tracked frame by frame (evaluate.mouth_curve per_frame): the tracker's filter across frames (sigma 0.8
frames) reads a shut frame between wide-open ones at about a quarter of the open mouth, so short closures that are
drawn shut counted as open (docs/RESULTS.md, "Bilabial closures read frame by frame"). --smoothed reads them as before.

    .venv/bin/python bench/bilabials.py [VIDEO AUDIO "TRANSCRIPT"] [--threshold 0.25]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

import lipdub
from training import evaluate
from lipdub import speech

JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
BILABIAL_LINE = ("Bob picked a big map of Boston, and Pam brought a purple umbrella. "
                 "My mom may be more impressed by probably the best bamboo boat.")
CASES = [("video/hdtf_katiehill_8s.mp4", "audio/en_jfk_11s.wav", JFK),
         ("video/cnn_anchor_71s.mp4", "audio/en_jfk_11s.wav", JFK),
         ("images/woman_frontal.png", "audio/en_jfk_11s.wav", JFK)]


def closures(video: Path, audio: Path, transcript: str, threshold: float, per_frame: bool = True
             ) -> list[tuple[str, float, float, bool]]:
    with tempfile.TemporaryDirectory() as tmp:
        out, align = Path(tmp) / "dub.mp4", Path(tmp) / "align.json"
        report = lipdub.dub(video, audio, out, transcript=transcript, save_alignment=str(align))
        track = speech.SpeechTrack.load(align)
        t, opening = evaluate.mouth_curve(out, cache=False, per_frame=per_frame)
    fps = report.fps
    speaking = np.zeros(len(t), bool)
    for p in track.phones:
        if p.label not in ("SIL",):
            speaking[int(p.start * fps):int(np.ceil(p.end * fps)) + 1] = True
    ref = np.nanpercentile(opening[speaking[: len(opening)]], 90)
    rows = []
    for p in track.phones:
        if p.label in ("P", "B", "M"):
            k0, k1 = int(np.floor(p.start * fps)) - 1, int(np.ceil(p.end * fps)) + 1
            seg = opening[max(k0, 0):min(k1 + 1, len(opening))]
            low = float(np.nanmin(seg)) / ref if len(seg) and np.isfinite(seg).any() else float("nan")
            rows.append((p.label, p.start, low, bool(low < threshold)))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("case", nargs="*", help="VIDEO AUDIO TRANSCRIPT (default: the shared-clip cases)")
    ap.add_argument("--threshold", type=float, default=0.25, help="closed = opening below this share of open")
    ap.add_argument("--smoothed", action="store_true", help="read the re-tracked mouth filtered across frames")
    args = ap.parse_args()
    data = evaluate.default_data_dir()
    cases = [tuple(args.case)] if args.case else [(data / v, data / a, t) for v, a, t in CASES]
    if not args.case:  # plus a line rich in bilabials, spoken by espeak-ng (a second voice, many more p/b/m)
        from lipdub.apps.demo import synthesise

        tmp = Path(tempfile.mkdtemp(prefix="lipdub-bilabials-"))
        wav = synthesise(BILABIAL_LINE, tmp / "line.wav")
        cases += [(data / "video/hdtf_katiehill_8s.mp4", wav, BILABIAL_LINE),
                  (data / "video/woman_bluebg_7s.mp4", wav, BILABIAL_LINE)]
    total = closed = 0
    for video, audio, text in cases:
        rows = closures(Path(video), Path(audio), text, args.threshold, per_frame=not args.smoothed)
        n_ok = sum(r[3] for r in rows)
        total, closed = total + len(rows), closed + n_ok
        print(f"{Path(video).name:24s} {n_ok}/{len(rows)} bilabials closed: " +
              ", ".join(f"{lab}@{s:.2f}s {v:.2f}{'' if ok else ' OPEN'}" for lab, s, v, ok in rows), flush=True)
    print(f"closed on {closed}/{total} = {100 * closed / max(total, 1):.0f}% of bilabials (goal >= 90%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
