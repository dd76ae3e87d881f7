"""Score the motion stage alone: the mouth opening predicted from a clip's audio against the mouth filmed with it.

    .venv/bin/python -m bench.motion_eval [--clips a,b] [--heldout]

Separates motion errors from rendering errors (the renderer follows a requested opening at r ≈ 0.95). Each talking
clip's own audio predicts its own filmed mouth ("self"); the cross-dub cases of `make eval` use the same scoring.
Printed per clip with baselines measured in the same run: loudness alone, the acoustic jaw curve alone, phones
without acoustics, the full offline motion, and the causal (live) motion at 0.05 / 0.10 / 0.15 s look-ahead (0.10
streamed in 20 ms feeds exactly as live mode does, with its CPU cost per feed). Means of r, |lag| and amplitude
(std of the prediction / std of the filmed opening as a fraction of the speaker's 97th percentile) close the table,
then how many of the offline analysis' p/b/m find the mouth shut, how often it shuts for a single frame, and its
jitter (mean |second difference| per frame) beside the filmed mouths'.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from lipdub import motion, speech
from training import evaluate
from training.clips import analyse_clip, clip_audio
from training.manifest import HELD_OUT_CAUSAL_DIR, HELD_OUT_DIR, filmed_clips
from training.train_causal import fold_group

# name → (path relative to the data root, range or None), in the manifest's order (training/dataset.json)
# the 14 filmed clips of video/, as this bench has always scored them (all 69: python -m training.train_motion)
SELF_CLIPS = {c.name: (c.path, c.range) for c in filmed_clips() if c.path.startswith("video/")}
AUDIO_OF = {c.path: c.audio_path for c in filmed_clips()}  # a paired sound file where the video has no sound track
SPEAKER = {c.name: c.speaker for c in filmed_clips()}


def stream_causal(audio: np.ndarray, fps: float, lookahead: float, model=None) -> tuple[np.ndarray, list[float]]:
    """The live path as live mode drives it: 20 ms feeds; the opening of every frame and the CPU seconds per feed."""
    sm = motion.StreamingMotion(fps=fps, lookahead=lookahead, model=model)
    openings, cpu = [], []
    for i in range(0, audio.size, 320):
        t = time.process_time()
        openings.append(sm.feed(audio[i:i + 320]).opening)
        cpu.append(time.process_time() - t)
    openings.append(sm.finish().opening)
    return np.concatenate(openings), cpu


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


CAUSAL = (0.05, 0.1, 0.15)


def closure_stats(opening: np.ndarray, times: np.ndarray, phones) -> tuple[int, int, int]:
    """(p/b/m of the offline analysis with the mouth shut, opening 0, at a frame within 60 ms of the phone's centre;
    how many p/b/m; one-frame shuts: a shut frame between two frames open more than 0.15, which real mouths do not
    make at 25-30 fps and a viewer sees as a flicker)."""
    o = np.asarray(opening)
    shut = o <= 1e-6
    centres = [0.5 * (p.start + p.end) for p in phones if p.label.upper().rstrip("012") in motion.BILABIALS]
    caught = sum(bool(shut[np.abs(times - c) <= 0.06].any()) for c in centres)
    flicker = int((shut[1:-1] & (o[:-2] > 0.15) & (o[2:] > 0.15)).sum())
    return caught, len(centres), flicker


def jitter(opening: np.ndarray) -> float:
    """Mean |second difference| per frame: how jerkily a mouth track moves (a fraction of the wide-open mouth)."""
    o = np.asarray(opening, np.float64)
    return float(np.nanmean(np.abs(o[2:] - 2 * o[1:-1] + o[:-2]))) if o.size > 2 else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(evaluate.default_data_dir()))
    ap.add_argument("--clips", help="comma-separated subset")
    ap.add_argument("--heldout", action="store_true",
                    help="full system and causal rows = models that never heard the clip's speaker "
                         "(python -m training.train_motion and training.train_causal write them)")
    args = ap.parse_args()
    data = Path(args.data)
    names = args.clips.split(",") if args.clips else list(SELF_CLIPS)
    rows = []
    keys = ("loudness", "jaw", "visemes", "allphone", "full") + tuple(f"causal {v:.2f}" for v in CAUSAL)
    print("loudness: audio loudness alone; jaw: acoustic jaw curve; visemes: recognised phones through the generic "
          "viseme table; allphone: pocketsphinx allphone phones through the same table; full: the offline system "
          f"({'held-out' if args.heldout else 'shipped'} opening model); causal L: the live system with L s look-ahead "
          "(latency L + 25 ms), 0.10 streamed in 20 ms feeds")
    print(f"{'clip':18s} {'method':12s} " + " ".join(f"{k:>14s}" for k in keys))
    cpu_all, filmed_jitter = [], []
    for name in names:
        rel, rng = SELF_CLIPS[name]
        path = data / rel
        t = time.perf_counter()
        times, truth = evaluate.mouth_curve(path, *(rng or (None, None)))
        sound = data / AUDIO_OF[rel]
        tr = analyse_clip(sound, rng)
        model = causal = None
        if args.heldout:
            model = motion.load_opening_model(HELD_OUT_DIR / f"{SPEAKER[name]}.npz")
            causal = motion.load_causal_file(HELD_OUT_CAUSAL_DIR / f"{fold_group(SPEAKER[name])}.npz")
        preds = variants(tr, times, analyse_clip(sound, rng, allphone=True), model)
        audio = clip_audio(sound, rng)
        fps = 1.0 / float(np.median(np.diff(times)))
        for v in CAUSAL:
            if v == 0.1:  # the exact live path; its frames sit at k / fps, the clip's frames at `times`
                live, cpu = stream_causal(audio, fps, v, causal)
                k = np.clip(np.round(times * fps).astype(int), 0, len(live) - 1)
                preds[f"causal {v:.2f}"] = live[k]
                cpu_all += cpu
            else:
                preds[f"causal {v:.2f}"] = motion.causal_mouth_track(audio, times, v, model=causal).opening
        scale = np.nanpercentile(truth, 97)  # the opening is a fraction of the speaker's wide-open mouth
        res = {}
        for k, pred in preds.items():
            r, lag, _ = evaluate.pearson_at_best_lag(pred, truth)
            res[k] = (r, lag, evaluate.amplitude_ratio(pred, truth / scale), *closure_stats(pred, times, tr.phones),
                      jitter(pred))
        filmed_jitter.append(jitter(truth / scale))
        rows.append(res)
        print(f"{name:18s} {tr.method:12s} " + " ".join(f"{r:8.3f} ({lag:+d})" for r, lag, *_ in res.values()),
              f" {time.perf_counter() - t:.1f}s", flush=True)
    print(f"{'mean r':31s} " + " ".join(f"{np.mean([r[k][0] for r in rows]):8.3f}     " for k in rows[0]))
    print(f"{'mean |lag| (frames)':31s} " + " ".join(f"{np.mean([abs(r[k][1]) for r in rows]):8.2f}     "
                                                    for k in rows[0]))
    print(f"{'mean amplitude':31s} " + " ".join(f"{np.nanmean([r[k][2] for r in rows]):8.2f}     " for k in rows[0]))
    print(f"{'p/b/m shut within 60 ms':31s} " + " ".join(
        f"{sum(r[k][3] for r in rows):>7d}/{sum(r[k][4] for r in rows):<6d}" for k in rows[0]))
    print(f"{'one-frame shuts':31s} " + " ".join(f"{sum(r[k][5] for r in rows):8d}     " for k in rows[0]))
    print(f"{'jitter':31s} " + " ".join(f"{np.nanmean([r[k][6] for r in rows]):8.3f}     " for k in rows[0])
          + f"  (filmed mouths: {np.nanmean(filmed_jitter):.3f})")
    cpu_ms = 1e3 * np.asarray(cpu_all)
    print(f"live path CPU per 20 ms feed: mean {cpu_ms.mean():.2f} ms, 99th percentile "
          f"{np.percentile(cpu_ms, 99):.2f} ms, max {cpu_ms.max():.2f} ms over {cpu_ms.size} feeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
