"""Realism with an actor profile: can the detector of bench/realism.py tell dubbed mouths from real ones when the
mouths come from a profile built from *other* footage of the same person?

For each case (a person with other footage in ../shared/data: two talks of one speaker, or the other part of a long
clip), one shot of the person (`--seconds`, default 8) is dubbed with another speaker's speech twice: as any dub
(the shot's own mouths) and with `--profile` built from the other footage. Both dubs and the shot's own re-encode go
through bench/realism.py's detector (same encode, opening-matched samples, 1-second block cross-validation), and a
blind-pair sheet is written for each dub. Each dub's sync is reported too: r of its mouth against the filmed mouth
of the speaker whose speech it carries (bench.realism.speech_sync).

With --live the dubs are live sessions instead (`lipdub.apps.live.run`, as fast as the machine goes): the shot's own
mouths prepared beforehand (`lipdub live`'s default), the profile mixed with them, and the profile alone
(`--no-prepare`: how live mode drew every profile dub before the mix).

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python -m bench.realism_profile [--cases a,b] [--out DIR] [--json F]
                                                                          [--seeds 8] [--live]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import realism
from lipdub.apps import live
from lipdub import dub, media
from lipdub import profile as profiles
from lipdub.core.files import write_json
from training.evaluate import cut_video, default_data_dir


@dataclass(frozen=True)
class Case:
    name: str
    shot: str  # the clip dubbed (relative to the data root)
    shot_start: float  # where the dubbed shot starts in it, s
    footage: tuple  # (path, start, end or None) of the same person's other footage, for the profile
    speech: str  # another speaker's clip whose speech is used


CASES = (
    Case("cnn_anchor", "video/cnn_anchor_71s.mp4", 40.0, (("video/cnn_anchor_71s.mp4", 0.0, 30.0),),
         "train/vx07_man_bald_older_6s.mp4"),
    Case("hdtfB_man_congress", "train/hdtfB_man_congress_60s.mp4", 45.0,
         (("train/hdtfB_man_congress_60s.mp4", 0.0, 40.0),), "train/lrs2g_man_beard_bowtie_3s.mp4"),
    Case("stNg_talk1", "train/stNg_talk1_25s.mp4", 0.0, (("train/stNg_talk2_27s.mp4", 0.0, None),),
         "train/gridF2_lwbsza.mpg"),
    Case("stLi_ted1", "train/stLi_ted1_10s.mp4", 0.0,
         (("train/stLi_ted2_15s.mp4", 0.0, None), ("train/stLi_interview_7s.mp4", 0.0, None)),
         "train/meadM024_surprised_5s.mp4"),
    Case("vx11_suit_bluebg", "train/vx11_man_suit_bluebg_12s.mp4", 0.0,
         (("train/vx11_man_tinted_glasses_14s.mp4", 0.0, None),), "train/lrs2b_man_glasses_6s.mp4"),
)


def speech_of(data: Path, rel: str) -> Path:
    """A clip's own speech: the paired .wav beside it, else the clip (its sound track)."""
    wav = (data / rel).with_suffix(".wav")
    return wav if wav.is_file() else data / rel


def footage_clip(data: Path, rel: str, start: float, end: float | None, out: Path) -> Path:
    """rel over [start, end) with its speech (the paired .wav where the video carries none), for building a profile."""
    if out.is_file():
        return out
    wav = (data / rel).with_suffix(".wav")
    if not wav.is_file():
        cut_video(data / rel, start, end, out, with_audio=True)
        return out
    samples, sr = media.load_audio(wav, 16000)
    samples = samples[int(start * sr):None if end is None else int(end * sr)]
    info = media.probe_video(data / rel)
    with media.VideoWriter(out, info.width, info.height, info.fps, audio=samples, audio_sr=sr, crf=12) as writer:
        for fr in media.iter_frames(data / rel):
            if fr.time >= start and (end is None or fr.time < end):
                writer.write(fr.rgb)
    return out


def _dubs(shot: Path, wav: Path, profile_file: Path, work: Path, live_mode: bool) -> dict:
    """The dubs to score, by tag (made once: a file already there is kept)."""
    if live_mode:
        dubs = {"own": ({}, True), "profile": ({"profile": str(profile_file)}, True),
                "profile_alone": ({"profile": str(profile_file)}, False)}
        out = {}
        for tag, (kw, prepare) in dubs.items():
            out[tag] = work / f"live_{tag}.mp4"
            if not out[tag].is_file():
                live.run(str(shot), str(wav), out[tag], realtime=False, prepare=prepare, crf=realism.CRF,
                         preset=realism.PRESET, **kw)
        return out
    own, with_profile = work / "dubbed_own.mp4", work / "dubbed_profile.mp4"
    if not own.is_file():
        dub(shot, wav, own, length="video", crf=realism.CRF, preset=realism.PRESET)
    if not with_profile.is_file():
        dub(shot, wav, with_profile, length="video", crf=realism.CRF, preset=realism.PRESET, profile=profile_file)
    return {"own": own, "profile": with_profile}


def run_case(case: Case, data: Path, out: Path, seconds: float, seeds: int = 1, live_mode: bool = False) -> dict:
    work = out / "work" / case.name
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    shot = work / "shot.mp4"
    if not shot.is_file():
        cut_video(data / case.shot, case.shot_start, case.shot_start + seconds, shot)
    info = media.probe_video(shot)
    wav = realism.write_speech(speech_of(data, case.speech), work / "speech.wav", info.duration)
    profile_file = work / "actor.lipdub"
    if not profile_file.is_file():
        clips = []
        for k, (rel, start, end) in enumerate(case.footage):
            clips.append(footage_clip(data, rel, start, end, work / f"footage{k}.mp4"))
        profiles.build(clips).save(profile_file)
    dubs = _dubs(shot, wav, profile_file, work, live_mode)
    real = realism.read_side(realism.reencode(shot, work / "original.mp4"), None)
    row = {"case": case.name, "size": f"{info.width}x{info.height}", "seconds": round(info.duration, 2),
           "footage_s": round(sum(media.probe_video(c).duration for c in (work / f"footage{k}.mp4"
                                                                          for k in range(len(case.footage)))), 1)}
    speech = realism.Clip(case.speech, data / case.speech, speech_of(data, case.speech))
    for tag, video in dubs.items():
        fake = realism.read_side(video, None)
        row[f"{tag}_sync"] = realism.speech_sync(fake, speech)
        res = realism.compare(real, fake)
        row[tag] = res.pop("accuracy")
        matched = res.pop("_matched", None)
        if seeds > 1 and row[tag] is not None:
            # other opening samples and folds of the same two videos: the detector's own part of the noise
            accs = [row[tag]] + [realism.compare(real, fake, seed=realism.SEED + s)["accuracy"]
                                 for s in range(1, seeds)]
            row[f"{tag}_seeds"] = round(float(np.mean(accs)), 3)
        row[f"{tag}_detail"] = res
        if matched is not None:
            sheet = out / "pairs" / f"{case.name}_{'live_' if live_mode else ''}{tag}.png"
            sheet.parent.mkdir(parents=True, exist_ok=True)
            realism.pair_sheet(real, fake, matched, sheet)
    row["total_s"] = round(time.perf_counter() - t, 1)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.realism_profile", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="the shared data folder")
    ap.add_argument("--cases", help="comma-separated case names; default all: " + ", ".join(c.name for c in CASES))
    ap.add_argument("--seconds", type=float, default=8.0, help="length of the dubbed shot")
    ap.add_argument("--out", default="/tmp/lipdub-realism-profile", help="work files, blind pairs")
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--seeds", type=int, default=1,
                    help="also report each accuracy as the mean over this many detector seeds (sampling and folds)")
    ap.add_argument("--live", action="store_true",
                    help="live sessions instead of offline dubs: own mouths, the profile mixed with them, the "
                         "profile alone")
    args = ap.parse_args(argv)
    data = Path(args.data) if args.data else default_data_dir()
    wanted = set(args.cases.split(",")) if args.cases else None
    tags = ("own", "profile", "profile_alone") if args.live else ("own", "profile")
    fmt = lambda v: f"{v:.3f}" if v is not None else "  n/a"  # noqa: E731
    rows = []
    # per dub: detector accuracy (seed 0), its mean over --seeds, and sync r
    print(f"{'case':20s} {'size':>9s} {'footage s':>9s}  " + "  ".join(f"{t + ': acc/seeds/sync':>30s}" for t in tags))
    for case in CASES:
        if wanted is not None and case.name not in wanted:
            continue
        missing = [p for p in [case.shot, case.speech] + [f[0] for f in case.footage] if not (data / p).is_file()]
        if missing:
            print(f"{case.name:20s} skipped: {', '.join(missing)} missing")
            continue
        row = run_case(case, data, Path(args.out), args.seconds, args.seeds, args.live)
        rows.append(row)
        print(f"{case.name:20s} {row['size']:>9s} {row['footage_s']:9.1f}  " + "  ".join(
            f"{fmt(row[t]):>14s} {fmt(row.get(t + '_seeds')):>7s} {fmt(row.get(t + '_sync')):>7s}" for t in tags),
            flush=True)
    done = [r for r in rows if all(r[t] is not None for t in tags)]
    if done:
        def mean(key):
            return np.mean([r[key] for r in done]) if all(r.get(key) is not None for r in done) else None

        print(f"{'mean':20s} {'':9s} {'':9s}  " + "  ".join(
            f"{fmt(mean(t)):>14s} {fmt(mean(t + '_seeds')):>7s} {fmt(mean(t + '_sync')):>7s}" for t in tags))
    if args.json:
        write_json(Path(args.json), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
