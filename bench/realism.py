"""Realism benchmark: can a simple detector tell our dubbed mouths from real ones?

For every talking clip in ../shared/data (`video/` and `train/`; a clip needs speech, its own sound track or the
paired .wav beside it, and a face):

1. the clip (its first --max-seconds, cut by copying packets, no re-encode) is dubbed with another clip's speech
   (a fixed seeded pairing over all clips: a shuffled ring, so no clip gets its own speech), cut or looped to the
   clip's length, with `lipdub.dub(..., length="video")`;
2. the clip is passed through the same encode as the dub (media.VideoWriter with the dub's crf and preset, frames
   read as the dub reads them), so both sides are one codec generation from the source;
3. every video is decoded to RGB as players do (media.iter_frames: the stream's colour tags; untagged BT.709 for HD,
   BT.601 below) and tracked (face.cached.load_track, cached); a square mouth crop (side 1.1 eye-corner
   distances, centred on the mouth) is cut from every frame with a face;
4. both sides are sampled with the same distribution of inner-lip opening (8 quantile bins), features are computed
   (HOG of the grey crop, Lab mean/std, log Laplacian variance, frame-to-frame change) and an L2 logistic
   regression is cross-validated over 1-second blocks (5 folds; a block's real and dubbed frames share a fold);
5. the same again with both sides sampled with one joint distribution of opening and head pose (det.head_pose:
   roll, turn and nod from points no drawn mouth moves; each dub frame paired with a filmed frame of near opening
   and pose, det.pose_matched_sample): the dub's speech is another's, so its open mouths fall at other moments of
   the footage, at other head poses, which HOG of the crop sees; pose-matched, what is left is the mouth's look.

Reported per clip: balanced accuracy real-vs-dub (0.5 = indistinguishable, 1 = always told apart; `accuracy`
opening-matched, `accuracy_pose` pose-matched, with `main` / `main_pose` giving the samples per side), and the control
(`control`, `control_pose`):
the re-encode against a second encode of the same frames through the same encode, the source's first frame put
before them (CONTROL_LEAD; left out when read), so every frame's type, references and quantisation fall differently:
two sides one codec generation from the source, as the real side and the dub are, told apart by nothing but the
codec's own noise (must be ~0.5, else the detector or the sides' reading is broken). Also `generation`: the decoded
source against its re-encode, one generation apart, which a detector tells apart through x264's own shifts (+0.1 to
+0.2 levels in Y, U and V of the mouth box at crf 16, most of it gone without its dead zones and trellis; the same
frames on both sides make it easy): what the control read before, not a score of the dub. A blind-pair PNG per clip
(real and dubbed crops of the same opening side by side, sides shuffled; key in the JSON beside it) is written for
eyes. Also the dub's sync: its re-tracked mouth opening against the filmed opening of the clip whose speech it carries
(Pearson r at the best lag, as `make eval` scores; in-sample for the shipped motion model), so a change that fools the
detector by giving up sync shows.

One opening-matched draw of ~150 frames a side moves a clip's accuracy by a few hundredths; `--seeds N` averages the
detector over N draws and fold splits (the dubs in --out are kept: a second run re-scores them without dubbing again).

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python -m bench.realism [--clips a,b] [--max-seconds 8] [--seeds 8] [--out DIR]
        [--json F] [--live] [--cnn]

--cnn also scores the second detector (bench/realism_convnet.py: a fixed-filter conv net on the same crops, draws
and folds, the control's encode differences taken out of its features) on the dub and the control: `accuracy_cnn`,
`control_cnn` (bench.realism_cnn does the same on an existing --out folder, with where the net looks).

--live dubs with a live session instead (`lipdub.apps.live.run` as fast as the machine goes, the clip's own mouths
prepared beforehand, `lipdub live`'s default).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import wave
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from bench import realism_convnet as cnnet
from bench import realism_detect as det
from lipdub import dub, media
from lipdub.apps import live
from lipdub.core.files import write_json
from lipdub.core.metrics import pearson_at_best_lag, resample
from lipdub.errors import LipdubError
from lipdub.face.cached import load_track
from lipdub.face.measure import inner_opening
from training.evaluate import default_data_dir

VIDEO_SUFFIXES = (".mp4", ".mpg", ".mov")
SEED = 21
CRF, PRESET = 16.0, "veryfast"  # the dub's defaults (lipdub.options); both sides are encoded with these
MIN_SAMPLES = 20  # per side, after opening matching
CONTROL_LEAD = 1  # copies of the first frame the control's second encode starts with (then left out when read)


@dataclass
class Clip:
    name: str
    video: Path
    speech: Path | None  # the clip's own speech: the paired .wav, else the video (its sound track)
    skip: str | None = None  # why the clip is left out


def find_clips(data: Path) -> list[Clip]:
    """Every video in data/video and data/train, with its speech (or why it has none)."""
    clips = []
    for folder in ("video", "train"):
        for p in sorted((data / folder).glob("*")):
            if p.suffix.lower() not in VIDEO_SUFFIXES:
                continue
            wav = p.with_suffix(".wav")
            if wav.is_file():
                clips.append(Clip(p.stem, p, wav))
            elif media.probe_video(p).has_audio:
                clips.append(Clip(p.stem, p, p))
            else:
                clips.append(Clip(p.stem, p, None, "no speech (no sound track, no paired .wav)"))
    return clips


def work_folder_parser(doc: str, seeds: bool = True) -> argparse.ArgumentParser:
    """The arguments shared by the tools that read a bench.realism --out folder again (its dubs and originals)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="a bench.realism --out folder")
    ap.add_argument("--clips", required=True, help="comma-separated clip names")
    ap.add_argument("--max-seconds", type=float, default=8.0)
    if seeds:
        ap.add_argument("--seeds", type=int, default=4)
    return ap


def pairing(names: list[str], seed: int = SEED) -> dict[str, str]:
    """Whose speech each clip is dubbed with: a seeded shuffled ring (no clip gets its own)."""
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    return {a: order[(i + 1) % len(order)] for i, a in enumerate(order)} if len(order) > 1 else {}


# ------------------------------------------------------------------------------------------------------ inputs

def trim(src: Path, dst: Path, seconds: float) -> Path:
    """The first `seconds` (+1 s, so B-frames near the end decode) of src's video stream, packets copied as they are
    (no re-encode: the decoded frames are the source's own)."""
    if dst.is_file():
        return dst
    tmp = dst.with_name(f".{dst.name}")
    with av.open(str(src)) as inp, av.open(str(tmp), "w", format=None if src.suffix != ".mpg" else "mpeg") as out:
        vs = inp.streams.video[0]
        ovs = out.add_stream_from_template(vs)
        t0 = vs.start_time or 0
        for packet in inp.demux(vs):
            if packet.dts is None:
                continue
            if float((packet.dts - t0) * vs.time_base) > seconds + 1.0:
                break
            packet.stream = ovs
            out.mux(packet)
    tmp.replace(dst)
    return dst


def write_speech(src: Path, dst: Path, seconds: float) -> Path:
    """src's speech (16 kHz mono) cut, or looped, to `seconds`, as a 16-bit .wav."""
    audio, sr = media.load_audio(src)
    n = int(round(seconds * sr))
    if len(audio) < n:
        audio = np.tile(audio, -(-n // max(1, len(audio))))
    pcm = (np.clip(audio[:n], -1, 1) * 32767).astype("<i2")
    tmp = dst.with_name(f".{dst.name}")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())
    tmp.replace(dst)
    return dst


def reencode(src: Path, dst: Path, crf: float = CRF, preset: str = PRESET, lead: int = 0) -> Path:
    """src through the dub's encode: frames read as the dub reads them (planar where they pass as decoded, else RGB
    as players show them) into media.VideoWriter with the same crf and preset; `lead` copies of the first frame
    before them (read_side(skip=lead) leaves them out)."""
    if dst.is_file():
        return dst
    info = media.probe_video(src)
    with media.FrameReader(src, info, planar=True) as reader, \
            media.VideoWriter(dst, info.width, info.height, info.fps, crf=crf, preset=preset,
                              matrix=info.matrix) as writer:  # the matrix a dub of it is written in
        for i in [0] * lead + list(range(info.n_frames)):
            writer.write(reader.get(i))
    return dst


# ------------------------------------------------------------------------------------------------------- sides

@dataclass
class Side:
    times: np.ndarray  # (N,) seconds of the frames with a face, in time order
    opening: np.ndarray  # (N,) inner-lip opening / eye-corner distance
    crops: list  # N (CROP, CROP, 3) uint8 RGB mouth crops
    follows: list  # crop i-1 is the frame just before crop i
    pose: np.ndarray | None = None  # (N, 3) det.head_pose of each frame (the "pose" sampling needs it)
    _features: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _cnn: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def features(self) -> np.ndarray:
        """det.features of the crops, computed once (every comparison a side is in uses them)."""
        if self._features is None:
            self._features = det.features(self.crops, self.follows)
        return self._features

    def cnn_features(self) -> np.ndarray:
        """cnnet.crop_features of the crops (every shifted reading), computed once."""
        if self._cnn is None:
            self._cnn = cnnet.crop_features(self.crops)
        return self._cnn


def read_side(video: Path, max_seconds: float | None, track=None, skip: int = 0, size: int | None = det.CROP) -> Side:
    """Mouth crops of every frame with a face in the first max_seconds of `video`, decoded as players do, boxes from
    `track` (default: video's own face track, tracked once and cached); the first `skip` frames left out and the
    times counted from the next (a reencode(lead=skip)). Crops are `size` square, or their size in the frame (None)."""
    info = media.probe_video(video)
    if track is None:
        track = load_track(video, info)
    times, opening, crops, follows, pose = [], [], [], [], []
    last, t0 = -2, None
    for fr in media.iter_frames(video, start=skip):
        t0 = fr.time if t0 is None else t0
        t = fr.time - t0 if skip else fr.time
        if max_seconds is not None and t >= max_seconds:
            break
        i = fr.index
        if i >= len(track.valid) or not track.valid[i]:
            continue
        lms = track.landmarks[i]
        box = det.mouth_box(lms)
        crops.append(det.cut(fr.rgb, box, size=size or max(8, int(round(box[2])))))
        times.append(t)
        opening.append(float(inner_opening(lms)))
        pose.append(det.head_pose(lms))
        follows.append(last == i - 1)
        last = i
    return Side(np.array(times), np.array(opening), crops, follows, np.array(pose).reshape(-1, 3))


def compare(real: Side, fake: Side, seed: int = SEED, seeds: int = 1, sampling: str = "opening") -> dict:
    """Balanced accuracy telling `fake` (class 1) from `real` (class 0), both sides sampled by `sampling` (one of
    det.SAMPLINGS: the same distribution of mouth opening, or of opening and head pose together), over 1-second
    blocks; plus the matched indices (for the blind pairs). With `seeds` > 1 the accuracies are means over that many
    samplings and fold splits (seed, seed + 1, ...; `accuracy_sd` their spread): one draw of ~150 frames a side moves
    a clip's figure by a few hundredths, which the per-clip target cannot tell from a change."""
    draw = lambda s: det.sample(sampling, real.opening, fake.opening, real.pose, fake.pose, seed=s)  # noqa: E731
    ia, ib = draw(seed)
    out = {"samples": int(len(ia)), "real_frames": int(len(real.times)), "fake_frames": int(len(fake.times))}
    if len(ia) < MIN_SAMPLES:
        out["accuracy"] = None
        out["note"] = f"only {len(ia)} {sampling}-matched frames per side"
        return out
    Fa, Fb = real.features(), fake.features()
    runs = []
    try:
        for s in range(seed, seed + max(1, seeds)):
            ja, jb = (ia, ib) if s == seed else draw(s)
            X, y, blocks = det.stacked(Fa, Fb, real.times, fake.times, ja, jb)
            acc, _ = det.cross_validate(X, y, blocks, seed=s)
            # the same detector on one feature group at a time: what tells the sides apart
            groups = {name: det.cross_validate(X[:, cols], y, blocks, seed=s)[0]
                      for name, cols in det.FEATURE_GROUPS.items()}
            runs.append((acc, groups, len(np.unique(blocks))))
    except ValueError as exc:
        out["accuracy"], out["note"] = None, str(exc)
        return out
    out["accuracy"] = round(float(np.mean([r[0] for r in runs])), 3)
    if len(runs) > 1:
        out["accuracy_sd"] = round(float(np.std([r[0] for r in runs])), 3)
        out["seeds"] = len(runs)
    out["by_features"] = {name: round(float(np.mean([r[1][name] for r in runs])), 3) for name in det.FEATURE_GROUPS}
    out["blocks"] = int(runs[0][2])
    out["_matched"] = (ia, ib)
    return out


def sync_r(dub_times: np.ndarray, dub_opening: np.ndarray, truth_times: np.ndarray, truth_opening: np.ndarray,
           period: float) -> float | None:
    """Sync of a dub: its mouth opening against the filmed opening of the speaker whose speech it carries, that
    speech looped every `period` seconds as write_speech loops it (Pearson r at the best lag, core.metrics, as `make
    eval` scores); None when undefined."""
    want = resample(truth_times, truth_opening, np.mod(dub_times, period))
    r, _, _ = pearson_at_best_lag(dub_opening, want)
    return None if r != r else round(float(r), 3)


def speech_sync(fake: Side, speech: Clip) -> float | None:
    """sync_r of the dubbed side against `speech`'s own filmed mouth (its video's face track, cached)."""
    info = media.probe_video(speech.video)
    track = load_track(speech.video, info)
    if not track.valid.any():
        return None
    truth = np.where(track.valid, inner_opening(track.landmarks), np.nan)
    audio, sr = media.load_audio(speech.speech)
    period = len(audio) / sr
    return sync_r(fake.times, fake.opening, track.times, truth, period)


def pair_sheet(real: Side, fake: Side, matched, path: Path, n: int = 8) -> None:
    """The blind-pair PNG at `path` and its key (`path` with .json): n pairs of real and dubbed crops of the same
    opening bin (matched samples in opening order), sides shuffled (seeded by the file name: each sheet has its own
    key)."""
    seed = zlib.crc32(path.stem.encode())
    ia, ib = matched
    ia = ia[np.argsort(real.opening[ia], kind="stable")]
    ib = ib[np.argsort(fake.opening[ib], kind="stable")]
    pick = np.unique(np.linspace(0, len(ia) - 1, min(n, len(ia))).round().astype(int))
    sheet, key = det.blind_pairs([real.crops[ia[k]] for k in pick], [fake.crops[ib[k]] for k in pick], seed=seed)
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    path.write_bytes(png.tobytes())
    write_json(path.with_suffix(".json"), {"real_is": key, "rows": [
        {"real_time": round(float(real.times[ia[k]]), 3), "dubbed_time": round(float(fake.times[ib[k]]), 3),
         "real_opening": round(float(real.opening[ia[k]]), 3), "dubbed_opening": round(float(fake.opening[ib[k]]), 3)}
        for k in pick]})


# ------------------------------------------------------------------------------------------------------ driver

def run_clip(clip: Clip, speech: Clip, out: Path, max_seconds: float | None, seeds: int = 1,
             live_mode: bool = False, cnn: bool = False) -> dict:
    work = out / "work" / clip.name
    work.mkdir(parents=True, exist_ok=True)
    info = media.probe_video(clip.video)
    src = clip.video
    if max_seconds is not None and info.duration > max_seconds + 1.5:
        src = trim(clip.video, work / f"source{clip.video.suffix}", max_seconds)
        info = media.probe_video(src)
    row = {"clip": clip.name, "speech": speech.name, "size": f"{info.width}x{info.height}", "fps": round(info.fps, 2)}
    t = time.perf_counter()
    wav = write_speech(speech.speech, work / "speech.wav", info.duration)
    dubbed = work / ("live.mp4" if live_mode else "dubbed.mp4")
    if not dubbed.is_file():
        if live_mode:  # a live session as fast as the machine goes, the clip's mouths prepared (`lipdub live`)
            live.run(str(src), str(wav), dubbed, realtime=False, prepare=True, crf=CRF, preset=PRESET)
        else:
            dub(src, wav, dubbed, length="video", crf=CRF, preset=PRESET)
    encoded = reencode(src, work / "original.mp4")
    again = reencode(src, work / "original_again.mp4", lead=CONTROL_LEAD)
    row["dub_s"] = round(time.perf_counter() - t, 1)
    source = read_side(src, max_seconds)
    if len(source.times) == 0:
        return {**row, "skip": "no face"}
    real = read_side(encoded, max_seconds)
    fake = read_side(dubbed, max_seconds)
    twin = read_side(again, max_seconds, skip=CONTROL_LEAD)
    main, control = compare(real, fake, seeds=seeds), compare(real, twin, seeds=seeds)
    generation = compare(source, real, seeds=seeds)
    row["accuracy"], row["control"] = main.pop("accuracy"), control.pop("accuracy")
    # the same with both sides' samples matched in head pose too (the dub's open mouths fall at other moments of the
    # footage than its own, so at other poses, which HOG of the crop sees): what is left is the mouth's look
    for key, detail, other in (("accuracy_pose", "main_pose", fake), ("control_pose", "control_pose_detail", twin)):
        res = compare(real, other, seeds=seeds, sampling="pose")
        row[key] = res.pop("accuracy")
        res.pop("_matched", None)
        row[detail] = res
    row["generation"] = generation.pop("accuracy")
    generation.pop("_matched", None)
    row["generation_detail"] = generation
    if cnn:  # the second detector (bench/realism_convnet.py) on the same draws and folds
        row.update(cnn_scores(real, fake, twin, seeds))
    row["sync"] = speech_sync(fake, speech)
    # how often the dub shows a mouth nearly as it showed one within 2 s (the real clip's own: 0.1)
    row["repeat"] = det.repeat_share(det.nearest_earlier(real.crops, real.times),
                                     det.nearest_earlier(fake.crops, fake.times))
    matched = main.pop("_matched", None)
    control.pop("_matched", None)
    row["main"], row["control_detail"] = main, control
    if matched is not None:
        sheet = out / "pairs" / f"{clip.name}.png"
        sheet.parent.mkdir(parents=True, exist_ok=True)
        pair_sheet(real, fake, matched, sheet)
        row["pairs"] = str(sheet)
    row["total_s"] = round(time.perf_counter() - t, 1)
    return row


def cnn_scores(real: Side, fake: Side, twin: Side, seeds: int) -> dict:
    """The second detector's accuracy on the dub and on the control (`accuracy_cnn`, `control_cnn`; their details,
    per filter group, in `cnn_detail` and `cnn_control_detail`), the control's encode differences taken out of its
    features in both."""
    main = cnnet.compare(real, fake, SEED, seeds, twin=twin)
    control = cnnet.compare(real, twin, SEED, seeds, twin=twin)
    return {"accuracy_cnn": main.pop("accuracy"), "control_cnn": control.pop("accuracy"), "cnn_detail": main,
            "cnn_control_detail": control}


def _stat(v: list) -> dict:
    return ({"n": len(v), "mean": round(float(np.mean(v)), 3), "min": round(float(np.min(v)), 3),
             "max": round(float(np.max(v)), 3)} if v else {"n": 0})


def column_summary(rows, keys) -> dict:
    """Per key: n, mean, min and max of the rows' values (rows without one, or None, left out)."""
    return {k: _stat([r[k] for r in rows if r.get(k) is not None]) for k in keys}


def summary(rows: list[dict]) -> dict:
    out = column_summary(rows, ("accuracy", "control", "accuracy_pose", "control_pose", "generation", "sync", "repeat",
                                "accuracy_cnn", "control_cnn"))
    for side, detail in (("accuracy", "main"), ("control", "control_detail"), ("generation", "generation_detail"),
                         ("accuracy_pose", "main_pose"), ("control_pose", "control_pose_detail")):
        for group in det.FEATURE_GROUPS:
            v = [r[detail]["by_features"][group] for r in rows if "by_features" in r.get(detail, {})]
            out[f"{side}_{group}_only"] = _stat(v)
    return out


def table(rows: list[dict], skipped: list[dict]) -> str:
    lines = ["| clip | dubbed with | size | matched frames/side | balanced accuracy | HOG only | colour only | control "
             "| control, HOG only | source vs re-encode | sync r | pose-matched frames/side | pose-matched accuracy "
             "| pose-matched control | CNN accuracy | CNN control |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    for r in rows:
        if "skip" in r:
            continue
        m, c = r["main"].get("by_features", {}), r["control_detail"].get("by_features", {})
        lines.append(f"| {r['clip']} | {r['speech']} | {r['size']} | {r['main']['samples']} | "
                     f"{fmt(r['accuracy'])} | {fmt(m.get('hog'))} | {fmt(m.get('colour'))} | {fmt(r['control'])} | "
                     f"{fmt(c.get('hog'))} | {fmt(r.get('generation'))} | {fmt(r.get('sync'))} | "
                     f"{r.get('main_pose', {}).get('samples', '—')} | {fmt(r.get('accuracy_pose'))} | "
                     f"{fmt(r.get('control_pose'))} | {fmt(r.get('accuracy_cnn'))} | {fmt(r.get('control_cnn'))} |")
    s = summary(rows)
    lines.append("")
    sides = ("accuracy", "control", "generation", "accuracy_pose", "control_pose")
    groups = [f"{a}_{g}_only" for a in sides for g in det.FEATURE_GROUPS]
    for name in (*sides, "accuracy_cnn", "control_cnn", "sync", *groups):
        v = s[name]
        if v["n"]:
            lines.append(f"{name}: mean {v['mean']:.3f} (min {v['min']:.3f}, max {v['max']:.3f}) over {v['n']} clips")
    for r in skipped:
        lines.append(f"skipped {r['clip']}: {r['skip']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=default_data_dir(), help="the shared data folder")
    ap.add_argument("--clips", default=None, help="comma-separated clip names (file stems) to run; default all")
    ap.add_argument("--max-seconds", type=float, default=None, help="use only each clip's first seconds")
    ap.add_argument("--out", type=Path, default=Path("build/realism"), help="work files, blind pairs")
    ap.add_argument("--json", type=Path, default=None, help="write the rows and summary here")
    ap.add_argument("--seeds", type=int, default=1,
                    help="average the detector over this many opening samplings and fold splits (less noise per clip)")
    ap.add_argument("--live", action="store_true", help="dub with a live session instead (own mouths prepared)")
    ap.add_argument("--cnn", action="store_true",
                    help="also score the second detector, bench/realism_convnet.py (seconds of CPU a clip more)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    clips = find_clips(args.data)
    usable = [c for c in clips if c.skip is None]
    partner = pairing([c.name for c in usable])
    by_name = {c.name: c for c in usable}
    wanted = set(args.clips.split(",")) if args.clips else None
    if wanted:
        unknown = wanted - {c.name for c in clips}
        if unknown:
            print(f"unknown clips: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
    rows: list[dict] = []
    skipped = [{"clip": c.name, "skip": c.skip} for c in clips if c.skip and (not wanted or c.name in wanted)]
    for c in skipped:
        print(f"skip {c['clip']}: {c['skip']}", flush=True)
    for clip in usable:
        if wanted and clip.name not in wanted:
            continue
        try:
            row = run_clip(clip, by_name[partner[clip.name]], args.out, args.max_seconds, args.seeds, args.live,
                           args.cnn)
        except LipdubError as exc:
            row = {"clip": clip.name, "skip": f"{type(exc).__name__}: {exc}"}
        if "skip" in row:
            skipped.append(row)
            print(f"skip {clip.name}: {row['skip']}", flush=True)
        else:
            rows.append(row)
            print(f"{clip.name}: accuracy {row['accuracy']} control {row['control']} "
                  f"({row['main']['samples']} frames/side, {row['total_s']} s); pose-matched: accuracy "
                  f"{row['accuracy_pose']} control {row['control_pose']} ({row['main_pose']['samples']} frames/side)"
                  + (f"; CNN: accuracy {row['accuracy_cnn']} control {row['control_cnn']}" if args.cnn else ""),
                  flush=True)
        if args.json:  # after every clip, so a run stopped early still leaves its rows
            write_json(args.json, {"command": " ".join(sys.argv), "max_seconds": args.max_seconds, "seeds": args.seeds,
                                   "summary": summary(rows), "rows": rows, "skipped": skipped})
    print(table(rows, skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
