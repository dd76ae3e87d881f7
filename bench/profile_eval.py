"""Actor-profile benchmark (issue: actor profiles), on the 71 s CNN clip split in three:

    footage 0–30 s (video + its own audio) → `lipdub profile build`
    speech 30–50 s (audio only)            → what the anchor really did then is the truth
    shot 50–71 s (video)                   → the shot to dub

Prints, in one run: profile build time per minute of footage; the shot dubbed with the speech's audio with and
without the profile (mouth-opening r against the real mouth of 30–50 s, best lag, amplitude, mouth-region flicker
against the real shot, real-time ratio); the same profile dubbing another framing of the shot (centre 80 %, scaled to
720p); dubs with en_commentary_60s and ko_korean1_10s. With --sheet, a contact sheet (real mouth of 30–50 s | dub
with profile | dub without profile, 2× mouth crops). With --memory, the peak RSS of building a profile from a
10-minute footage set (the CNN clip nine times).

    .venv/bin/python bench/profile_eval.py [--work DIR] [--sheet sheet.png] [--memory]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from training import evaluate
from training.manifest import HELD_OUT_DIR
from lipdub import media
from lipdub import profile as profiles
from lipdub.pipeline import DubOptions, dub

DATA = evaluate.default_data_dir()
CNN = DATA / "video/cnn_anchor_71s.mp4"


def prepare(work: Path) -> dict[str, Path]:
    """The three parts of the CNN clip (cut once, kept in `work`)."""
    from training.evaluate import cut_audio

    work.mkdir(parents=True, exist_ok=True)
    info = media.probe_video(CNN)
    out = {"footage": work / "footage_0_30.mp4", "speech": work / "speech_30_50.wav", "shot": work / "shot_50_71.mp4",
           "shot720": work / "shot_50_71_crop80_720p.mp4"}

    def cut(a, b, path, crop=None, size=None):
        if not path.is_file():
            tmp = path.with_name(".tmp_" + path.name)
            evaluate.cut_video(CNN, a, b, tmp, with_audio=True, crop=crop, size=size)
            tmp.rename(path)

    cut(0.0, 30.0, out["footage"])
    cut(50.0, 71.2, out["shot"])
    m = int(round(info.width * 0.1)), int(round(info.height * 0.1))
    cut(50.0, 71.2, out["shot720"], crop=(m[0], m[1], info.width - m[0], info.height - m[1]), size=(720, 720))
    if not out["speech"].is_file():
        cut_audio(CNN, 30.0, 50.0, out["speech"])
    return out


def measure(out: Path, shot: Path, truth: tuple[np.ndarray, np.ndarray] | None) -> dict:
    """Sync against the truth (when given) and mouth-region flicker against the undubbed shot."""
    track = evaluate._track_path(out, None, None, cache=False)
    res: dict = {"frames": len(track), "seconds": media.probe_video(out).duration}
    if truth is not None:
        t_truth, y_truth = truth
        y = evaluate.resample(np.asarray(track.times, np.float64), evaluate._opening(track), t_truth)
        res["r"], res["lag"], res["r0"] = evaluate.pearson_at_best_lag(y, y_truth, evaluate.MAX_LAG)
        res["amp"] = evaluate.amplitude_ratio(y, y_truth)
    boxes = evaluate.mouth_boxes(track.landmarks, track.valid)
    info = media.probe_video(shot)
    schedule = media.output_schedule(info.n_frames, info.fps, len(track) / info.fps, "pingpong")
    fl_dub = evaluate.flicker(media.iter_frames(out), boxes)
    fl_src = evaluate.flicker(evaluate._frames_at(shot, schedule[: len(track)]), boxes)
    res["flicker"] = fl_dub / fl_src
    return res


def timed_dub(video: Path, audio: Path, out: Path, **opts) -> tuple[float, float]:
    t = time.perf_counter()
    report = dub(video, audio, out, DubOptions(**opts))
    return time.perf_counter() - t, report.duration


def sheet(parts: dict, with_profile: Path, without: Path, path: Path, n: int = 8) -> None:
    import cv2

    from bench.contact_sheet import mouth_crop

    from lipdub.media import FrameReader

    truth_src = evaluate._cached_cut(CNN, 30.0, 50.0)
    tracks = [evaluate._track_path(p, None, None, cache=True) for p in (truth_src, with_profile, without)]
    total = min(len(t) for t in tracks)
    picks = np.linspace(10, total - 10, n).astype(int)
    rows = []
    with FrameReader(truth_src) as a, FrameReader(with_profile) as b, FrameReader(without) as c:
        for k in picks:
            cells = []
            for reader, tr in zip((a, b, c), tracks):
                rgb = reader.get(int(k))
                lms = tr.landmarks[k] if tr.valid[k] else tracks[1].landmarks[k]
                cells.append(mouth_crop(rgb, lms))
            row = np.concatenate(cells, 1)
            cv2.putText(row, f"frame {k}", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 2)
            rows.append(row)
    img = np.concatenate(rows, 0)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    print(f"sheet {path}: columns = real mouth 30–50 s, dub with profile, dub without profile (frames {list(picks)})")


def memory_run(work: Path) -> None:
    """Peak RSS of building a profile from ~10.7 minutes of footage (the CNN clip nine times), in a child process."""
    code = ("import resource,sys,time; from lipdub import profile as p; t=time.perf_counter(); "
            f"pr=p.build([{str(CNN)!r}]*9, cache=False); pr.save({str(work / 'ten_minutes.lipdub')!r}); "
            "print(pr.info()); print('build', round(time.perf_counter()-t,1), 's; peak RSS', "
            "round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024/1024, 2), 'GB')")
    subprocess.run([sys.executable, "-c", code], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "lipdub-profile-bench"))
    ap.add_argument("--sheet", help="write a contact sheet PNG here")
    ap.add_argument("--memory", action="store_true", help="also measure a 10-minute footage build (slow)")
    ap.add_argument("--json", help="write the numbers here")
    ap.add_argument("--heldout", action="store_true",
                    help="drive both dubs with a motion model that never saw the CNN anchor (a new actor; "
                         "python -m training.train_motion writes it); the shipped model was trained on this clip")
    args = ap.parse_args()
    if args.heldout:
        model = HELD_OUT_DIR / "cnn.npz"
        if not model.is_file():
            print(f"{model} is missing: run python -m training.train_motion first", file=sys.stderr)
            return 2
        os.environ["LIPDUB_MOTION_MODEL"] = str(model)
        print(f"motion model: {model} (never saw the CNN anchor)")
    work = Path(args.work)
    parts = prepare(work)
    results: dict = {}

    # 1. build, tracking included (no track cache)
    t = time.perf_counter()
    prof = profiles.build([parts["footage"]], cache=False)
    build_s = time.perf_counter() - t
    prof_path = prof.save(work / "cnn_anchor.lipdub")
    minutes = media.probe_video(parts["footage"]).duration / 60
    results["build"] = {"seconds": build_s, "per_minute": build_s / minutes, "frames": prof.atlas.n,
                        "mb": prof_path.stat().st_size / 1e6, "articulation": prof.articulation.scores}
    print(prof.info())
    print(f"build: {build_s:.1f} s for {minutes:.2f} min of 512x512 footage = {build_s / minutes:.1f} s per minute "
          f"(goal <= 30)", flush=True)

    truth = evaluate.mouth_curve(CNN, 30.0, 50.0)
    rows = []
    # 2. the shot dubbed with the speech's audio: with the profile (track cold), then without (track cached)
    cases = [("shot + profile", parts["shot"], parts["speech"], {"profile": str(prof_path), "cache": False}),
             ("shot, no profile", parts["shot"], parts["speech"], {}),
             ("shot 80% crop 720p + profile", parts["shot720"], parts["speech"], {"profile": str(prof_path)}),
             ("shot 80% crop 720p, no profile", parts["shot720"], parts["speech"], {}),
             ("shot + profile, en_commentary_60s", parts["shot"], DATA / "audio/en_commentary_60s.wav",
              {"profile": str(prof_path)}),
             ("shot + profile, ko_korean1_10s", parts["shot"], DATA / "audio/ko_korean1_10s.wav",
              {"profile": str(prof_path)})]
    for name, video, audio, opts in cases:
        out = work / (name.replace(" ", "_").replace(",", "").replace("+", "p").replace("%", "") + ".mp4")
        wall, dur = timed_dub(video, audio, out, **opts)
        m = measure(out, video, truth if audio == parts["speech"] else None)
        m.update({"case": name, "wall": wall, "realtime": dur / wall, "output": str(out)})
        rows.append(m)
        print(f"{name:34s} r {m.get('r', float('nan')):.3f} lag {m.get('lag', 0):+d} amp {m.get('amp', float('nan')):.2f} "
              f"flicker {m['flicker']:.2f}  {m['seconds']:.2f} s in {wall:.1f} s = {dur / wall:.2f}x real time",
              flush=True)
    results["dubs"] = rows
    if args.sheet:
        sheet(parts, Path(rows[0]["output"]), Path(rows[1]["output"]), Path(args.sheet))
    if args.memory:
        memory_run(work)
    print(f"peak RSS of this run: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024:.2f} GB")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
