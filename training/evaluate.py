"""Cross-dub sync evaluation (`python -m training.evaluate`, `make eval`; formerly `lipdub eval`): dub video V with
the audio of another real clip C; C's own filmed mouth is the truth. Needs a checkout with the shared clips beside it
(the data root: $LIPDUB_DATA, default ../shared/data); the cases are training/dataset.json's `eval_cases`.

Per case:
  1. cut C's audio to [c0, c1] (16 kHz mono WAV) and, where the case says so, V to [v0, v1];
  2. dub V with that audio through the generic path (no transcript);
  3. re-track the dubbed output with the face tracker and measure the mouth opening per frame
     (`face.inner_opening`: inner-lip gap / outer eye-corner distance; frames without a face are NaN);
  4. track C's own video over [c0, c1] the same way (cached under `face.cache_dir()/eval/`);
  5. resample the dub's curve onto the truth's frame times and report
       r       Pearson r at the best lag within ±MAX_LAG truth frames (positive lag = the dub is late),
       r0      Pearson r at lag 0,
       amp     std(dub opening) / std(truth opening) over the frames valid in both,
       flicker mean |frame-to-frame difference| of the dub's mouth region (grayscale; lip landmarks' bounding box of
               the re-tracked face, grown 30 %) over the same measure on V's own frames that the dub was made from,
               in the same region (≈ 1: flickers like real footage),
       base_r  the do-nothing baseline: V's own mouth opening over the frames the dub used, against the same truth,
               scored exactly like the dub (best lag within ±MAX_LAG), and base_r0 at lag 0 (the unbiased one).

The numbers are a report, not a pass/fail: `main` exits 0 unless a case crashed.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from lipdub.core.metrics import MAX_LAG, amplitude_ratio, flicker, mouth_boxes, pearson_at_best_lag, resample
from lipdub.errors import ParameterError
from training.manifest import SOURCES, Case, data_root, eval_cases, heldout_dir, require_data, speaker_of

log = logging.getLogger("lipdub")

EVAL_VERSION = 1  # bump when the cut/range logic changes so cached truth tracks are ignored


CASES: dict[str, Case] = eval_cases()  # training/dataset.json


def default_data_dir() -> Path:
    """$LIPDUB_DATA, or ../shared/data beside the checkout (training.manifest.data_root)."""
    return data_root()


# --------------------------------------------------------------------------------------------------- tracking

class _RangeFrames:
    """Zero-arg callable: frames of `path` with time in [start, end), re-indexed from 0, times relative to start."""

    def __init__(self, path: Path, start: float | None, end: float | None, fps: float):
        self.path, self.fps = path, fps
        self.start = 0.0 if start is None else float(start)
        self.end = end
        self.tol = 0.5 / fps

    def __call__(self) -> Iterator:
        from lipdub.media import Frame, iter_frames

        k = 0
        for fr in iter_frames(self.path):
            if fr.time < self.start - self.tol:
                continue
            if self.end is not None and fr.time >= self.end - self.tol:
                break
            yield Frame(k, fr.time - self.start, fr.rgb)
            k += 1


def _track_path(path: Path, start: float | None, end: float | None, cache: bool, per_frame: bool = False):
    """face.FaceTrack of `path` over [start, end) seconds (times relative to start), cached in cache_dir()/eval;
    `per_frame`: without the filter across frames (face.track_frames' smooth=False)."""
    from lipdub import face, media

    path = Path(path)
    cache_file = None
    if cache:
        extra = {"per_frame": True} if per_frame else {}  # the smoothed tracks keep their keys
        key = face.cache_key(path, start=start, end=end, eval=EVAL_VERSION, **extra)
        cache_file = face.cache_dir() / "eval" / f"{key}.npz"
        if cache_file.is_file():
            try:
                return face.FaceTrack.load(cache_file)
            except Exception:  # stale or damaged: track again
                pass
    info = media.probe_video(path)
    lo = 0.0 if start is None else start
    hi = info.duration if end is None else min(end, info.duration)
    n_est = max(1, int(round((hi - lo) * info.fps)))
    track = face.track_frames(_RangeFrames(path, start, end, info.fps), info.width, info.height, n_est, info.fps,
                              smooth=not per_frame)
    if cache_file is not None:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            track.save(cache_file)
        except OSError as exc:
            log.warning("could not cache the evaluation track: %s", exc)
    return track


def _opening(track) -> np.ndarray:
    from lipdub.face import inner_opening

    op = inner_opening(track.landmarks).astype(np.float64)
    op[~track.valid] = np.nan
    return op


def mouth_curve(path, start: float | None = None, end: float | None = None, cache: bool = True,
                per_frame: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(times, opening) of the face in `path` over [start, end) seconds; times are relative to `start`; frames
    without a face are NaN. Tracks are cached (keyed by file, size, mtime and range) unless cache=False.
    `per_frame`: each frame's opening as tracked, not filtered across frames (the filter, sigma 0.8 frames, reads a
    shut frame between two wide-open ones at about a quarter of the open mouth: bench.bilabials)."""
    track = _track_path(Path(path), start, end, cache, per_frame)
    return np.asarray(track.times, np.float64), _opening(track)


def dub_sync(out: Path, truth: tuple[np.ndarray, np.ndarray]) -> tuple[float, int, float]:
    """(r at the best lag within MAX_LAG, that lag, amplitude ratio) of the dub `out`'s mouth opening, tracked again,
    against the filmed mouth `truth` (mouth_curve's times and opening)."""
    t_dub, y_dub = mouth_curve(out, cache=False)
    t_truth, y_truth = truth
    on = resample(t_dub, y_dub, t_truth)
    r, lag, _ = pearson_at_best_lag(on, y_truth, MAX_LAG)
    return float(r), int(lag), float(amplitude_ratio(on, y_truth))


# --------------------------------------------------------------------------------------------------- media prep

def _stream_starts(path: Path) -> tuple[float, float]:
    """Start times (s) of the first video and audio streams (0 where unknown)."""
    from lipdub.media import stream_starts

    return stream_starts(path)


def cut_audio(path: Path, start: float | None, end: float | None, out: Path) -> float:
    """Write `path`'s audio over video-relative [start, end) seconds as a 16 kHz mono 16-bit WAV; returns seconds."""
    from scipy.io import wavfile

    from lipdub.media import load_audio

    samples, sr = load_audio(path, 16000)
    v0, a0 = _stream_starts(path)
    offset = v0 - a0  # audio sample s sits at video-relative time s/sr - offset
    s0 = int(round(((start or 0.0) + offset) * sr))
    s1 = len(samples) if end is None else int(round((end + offset) * sr))
    piece = samples[max(0, s0):max(0, min(len(samples), s1))]
    if s0 < 0:  # audio starts after the video: silence first
        piece = np.concatenate([np.zeros(-s0, np.float32), piece])
    if len(piece) == 0:
        raise ValueError(f"{path}: no audio in [{start}, {end}]")
    wavfile.write(str(out), sr, (np.clip(piece, -1, 1) * 32767).astype(np.int16))
    return len(piece) / sr


def cut_video(path: Path, start: float | None, end: float | None, out: Path, with_audio: bool = False,
              crop: tuple[int, int, int, int] | None = None, size: tuple[int, int] | None = None) -> int:
    """Write `path`'s frames over [start, end) seconds with the project's writer (with the same span of its audio when
    `with_audio`; each frame cropped to x0,y0,x1,y1 and resized to `size` when given); returns the frame count."""
    import cv2

    from lipdub.media import VideoWriter, load_audio, probe_video

    info = probe_video(path)
    samples, sr = None, 16000
    if with_audio:
        with tempfile.TemporaryDirectory(prefix="lipdub-cut-") as tmp:
            wav = Path(tmp) / "audio.wav"
            cut_audio(path, start, end, wav)
            samples, sr = load_audio(wav, None, mono=False)
    w, h = size or ((crop[2] - crop[0], crop[3] - crop[1]) if crop else (info.width, info.height))
    n = 0
    with VideoWriter(out, w, h, info.fps, audio=samples, audio_sr=sr, crf=12) as writer:
        for fr in _RangeFrames(path, start, end, info.fps)():
            rgb = fr.rgb if crop is None else fr.rgb[crop[1]:crop[3], crop[0]:crop[2]]
            if rgb.shape[1::-1] != (w, h):
                rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_CUBIC)
            writer.write(rgb)
            n += 1
    return n


def _cached_cut(path: Path, start: float | None, end: float | None) -> Path:
    """A cut of `path` kept in the cache, so repeated evaluations reuse it (and the pipeline's track cache of it)."""
    from lipdub.face import cache_dir, cache_key

    key = cache_key(path, start=start, end=end, eval=EVAL_VERSION)
    out = cache_dir() / "eval" / "cuts" / f"{Path(path).stem}_{key}.mp4"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        cut_video(path, start, end, out)
    return out


# --------------------------------------------------------------------------------------------------- a case

def _frames_at(path: Path, indices: np.ndarray) -> Iterator[np.ndarray]:
    from lipdub.media import FrameReader

    with FrameReader(path) as reader:
        for j in indices:
            yield reader.get(int(j))


def _fmt(x, spec=".3f") -> str:
    return "nan" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def run_case(case: Case | str, data: str | Path | None = None, max_seconds: float | None = None,
             keep: str | Path | None = None) -> dict:
    """Run one cross-dub case and return its measures (see the module doc). `max_seconds` shortens the audio clip
    (and V, so the dub does not track frames it will not use) for quick runs; `keep` is a folder to keep the dub in."""
    import lipdub
    from lipdub import media

    if isinstance(case, str):
        if case not in CASES:
            raise KeyError(f"unknown case {case!r}; known: {', '.join(CASES)}")
        case = CASES[case]
    data = Path(data) if data is not None else default_data_dir()
    video, clip = data / case.video, data / case.audio_clip
    for p in (video, clip):
        if not p.is_file():
            raise FileNotFoundError(f"{p} is missing")
    t_start = time.perf_counter()

    c0, c1 = case.clip_range if case.clip_range else (0.0, None)
    v_rng = case.video_range
    if max_seconds is not None:
        c_end = media.probe_video(clip).duration if c1 is None else c1
        c1 = min(c_end, c0 + max_seconds)
        v0, v1 = v_rng if v_rng else (0.0, media.probe_video(video).duration)
        v_rng = (v0, min(v1, v0 + max_seconds))

    with tempfile.TemporaryDirectory(prefix="lipdub-eval-") as tmp:
        tmp = Path(tmp)
        audio = tmp / "audio.wav"
        audio_s = cut_audio(clip, c0, c1, audio)
        src = _cached_cut(video, *v_rng) if v_rng else video
        out = (Path(keep) / f"{case.name}.mp4") if keep else tmp / "dub.mp4"
        if keep:
            out.parent.mkdir(parents=True, exist_ok=True)

        t = time.perf_counter()
        report = lipdub.dub(src, audio, out, progress=None, transcript=None, cache=True)
        dub_s = time.perf_counter() - t

        # truth: C's own mouth over [c0, c1)
        truth_track = _track_path(clip, c0, c1, cache=True)
        t_truth, y_truth = np.asarray(truth_track.times, np.float64), _opening(truth_track)

        # the dub, re-tracked
        dub_track = _track_path(out, None, None, cache=False)
        t_dub, y_dub = np.asarray(dub_track.times, np.float64), _opening(dub_track)
        n_out = len(dub_track)
        out_info = media.probe_video(out)
        src_info = media.probe_video(src)

        # V itself over the frames the dub used (the pipeline's default length policy plays V back and forth)
        src_track = _track_path(src, None, None, cache=True)
        y_src = _opening(src_track)
        schedule = media.output_schedule(len(src_track), src_info.fps, audio_s, "pingpong")
        if len(schedule) != n_out:
            log.warning("%s: dub has %d frames, the expected schedule %d; using the first %d", case.name, n_out,
                        len(schedule), min(n_out, len(schedule)))
            if len(schedule) < n_out:
                schedule = np.concatenate([schedule, np.full(n_out - len(schedule), schedule[-1])])
            schedule = schedule[:n_out]
        y_base = y_src[np.minimum(schedule, len(y_src) - 1)]

        dub_on = resample(t_dub, y_dub, t_truth)
        base_on = resample(t_dub, y_base, t_truth)
        r, lag, r0 = pearson_at_best_lag(dub_on, y_truth, MAX_LAG)
        base_r, base_lag, base_r0 = pearson_at_best_lag(base_on, y_truth, MAX_LAG)
        amp = amplitude_ratio(dub_on, y_truth)
        base_amp = amplitude_ratio(base_on, y_truth)

        boxes = mouth_boxes(dub_track.landmarks, dub_track.valid)
        fl_dub = flicker(media.iter_frames(out), boxes)
        fl_src = flicker(_frames_at(src, schedule), boxes)
        fl_ratio = fl_dub / fl_src if fl_src and math.isfinite(fl_src) and fl_src > 1e-9 else math.nan

    valid_common = int((np.isfinite(dub_on) & np.isfinite(y_truth)).sum())
    return {
        "case": case.name, "video": case.video, "audio_clip": case.audio_clip,
        "video_range": list(v_rng) if v_rng else None, "clip_range": [c0, c1],
        "r": r, "lag": lag, "r0": r0, "amp": amp, "flicker": fl_ratio,
        "base_r": base_r, "base_lag": base_lag, "base_r0": base_r0, "base_amp": base_amp,
        "flicker_dub": fl_dub, "flicker_src": fl_src,
        "truth_frames": len(t_truth), "truth_valid": int(np.isfinite(y_truth).sum()),
        "dub_frames": n_out, "dub_valid": int(dub_track.valid.sum()), "common_valid": valid_common,
        "truth_fps": float(1 / np.median(np.diff(t_truth))) if len(t_truth) > 1 else math.nan,
        "dub_fps": float(out_info.fps), "faces_rendered": int(getattr(report, "faces_rendered", -1)),
        "speech_method": str(getattr(report, "speech_method", "")),
        "timings": {k: float(v) for k, v in (getattr(report, "timings", None) or {}).items()},
        "dub_seconds": dub_s, "seconds": time.perf_counter() - t_start,
    }


# --------------------------------------------------------------------------------------------------- report

COLUMNS = [("case", "case", "s"), ("r", "r", ".3f"), ("lag", "lag", "+d"), ("r0", "r@0", ".3f"),
           ("amp", "amp", ".2f"), ("flicker", "flicker", ".2f"), ("base_r", "base r", ".3f"),
           ("base_r0", "base r@0", ".3f"), ("seconds", "sec", ".1f")]


def _mean(rows: list[dict], key: str) -> float:
    vals = [float(r[key]) for r in rows if r.get(key) is not None and math.isfinite(float(r[key]))]
    return float(np.mean(vals)) if vals else math.nan


def _cell(v, spec: str) -> str:
    if spec == "s":
        return str(v)
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "nan"
    return format(v, spec)


def format_table(rows: list[dict]) -> str:
    """One line per case, then the mean over the cases that ran (lag: mean of signed lags; sec: the sum)."""
    ok = [r for r in rows if "error" not in r]
    table = [[_cell(r[key], spec) for key, _, spec in COLUMNS] for r in ok]
    if ok:
        mean = ["mean"] + [_cell(_mean(ok, key), ".2f" if spec == "+d" else spec) for key, _, spec in COLUMNS[1:-1]]
        table.append(mean + [_cell(sum(r["seconds"] for r in ok), ".1f")])
    heads = [h for _, h, _ in COLUMNS]
    widths = [max([len(h)] + [len(row[i]) for row in table]) for i, h in enumerate(heads)]

    def line(cells):
        return "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(cells))

    lines = [line(heads)] + [line(row) for row in table]
    lines += [f"{r['case']}: ERROR {r['error']}" for r in rows if "error" in r]
    lines.append(f"r: Pearson r of the re-tracked dub's mouth opening vs the clip's own, best lag within ±{MAX_LAG} "
                 "truth frames (lag > 0: dub late); r@0: at lag 0; amp: std ratio dub/truth; flicker: mouth-region "
                 "frame-difference ratio dub/original; base r / base r@0: the undubbed video scored like the dub; "
                 "sec: per case (mean row: total).")
    return "\n".join(lines)


def _json_safe(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, np.generic):
        return _json_safe(x.item())
    return x


def evaluate(names: Sequence[str] | None = None, data: str | Path | None = None, max_seconds: float | None = None,
             echo: bool = True) -> list[dict]:
    """Run the named cases (all by default); a case that raises becomes a row with an "error" entry."""
    names = list(names) if names else list(CASES)
    rows = []
    for name in names:
        if echo:
            print(f"[eval] {name} ...", file=sys.stderr, flush=True)
        try:
            row = run_case(name, data=data, max_seconds=max_seconds)
        except Exception as exc:  # report the crash, carry on with the other cases
            log.debug("case %s crashed", name, exc_info=True)
            if echo:
                traceback.print_exc(file=sys.stderr)
            row = {"case": name, "error": f"{type(exc).__name__}: {exc}"}
        else:
            if echo:
                print(f"[eval] {name}: r={_fmt(row['r'])} lag={row['lag']:+d} r0={_fmt(row['r0'])} "
                      f"amp={_fmt(row['amp'], '.2f')} flicker={_fmt(row['flicker'], '.2f')} "
                      f"base_r={_fmt(row['base_r'])} ({row['seconds']:.1f} s)", file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def evaluate_heldout(names: Sequence[str] | None = None, data: str | Path | None = None,
                     max_seconds: float | None = None, echo: bool = True, sources: str = "all") -> list[dict]:
    """Like evaluate(), but each case's dub is driven by the offline motion model that never heard the speaker whose
    audio (and filmed mouth) is the truth: heldout_dir(sources)/<speaker>.npz, written by `python -m
    training.train_motion [--sources permissive]` (leave-one-speaker-out). The shipped model learned from every filmed clip, the truth clips included; this shows
    how much of the score survives on speakers the model has never heard."""
    names = list(names) if names else list(CASES)
    rows = []
    saved = os.environ.get("LIPDUB_MOTION_MODEL")
    try:
        for name in names:
            speaker = speaker_of(CASES[name].audio_clip)
            model = heldout_dir(sources) / f"{speaker}.npz"
            if not model.is_file():
                raise ParameterError(f"no held-out model {model}: run `python -m training.train_motion --dry-run "
                                     f"--sources {sources}` first (it writes one per speaker)")
            os.environ["LIPDUB_MOTION_MODEL"] = str(model)
            row = evaluate([name], data, max_seconds, echo)[0]
            row["held_out_speaker"] = speaker
            rows.append(row)
    finally:
        if saved is None:
            os.environ.pop("LIPDUB_MOTION_MODEL", None)
        else:
            os.environ["LIPDUB_MOTION_MODEL"] = saved
    return rows


def main(argv: list[str] | None = None) -> int:
    """`python -m training.evaluate [--data DIR] [--cases a,b] [--json FILE] [--heldout]` (`make eval`): needs a
    checkout with the shared clips beside it."""
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description="cross-dub sync evaluation "
                                     "(needs a checkout with the shared clips: $LIPDUB_DATA or ../shared/data)")
    parser.add_argument("--data", help="folder with video/ and audio/ (default $LIPDUB_DATA or ../shared/data)")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--json", help="also write the results as JSON here")
    parser.add_argument("--heldout", action="store_true",
                        help="HELD-OUT mode: each case dubbed by a motion model that never heard the truth's speaker "
                             "(python -m training.train_motion writes them); not the default table")
    parser.add_argument("--sources", choices=SOURCES, default="all",
                        help="with --heldout: the held-out models of this recipe (permissive: learned from the "
                             "permissively licensed clips of the other speakers)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-case lines while running")
    args = parser.parse_args(argv)

    names = [n.strip() for n in args.cases.split(",") if n.strip()] if getattr(args, "cases", None) else None
    unknown = [n for n in names or [] if n not in CASES]
    if unknown:
        raise ParameterError(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    data = Path(args.data) if getattr(args, "data", None) else default_data_dir()
    if not data.is_dir():
        raise ParameterError(f"the evaluation needs a checkout with the shared clips: data folder {data} does not "
                             "exist; set $LIPDUB_DATA or pass --data FOLDER (with video/)")
    require_data(data, sorted({p for n in names or CASES for p in (CASES[n].video, CASES[n].audio_clip)}))
    max_seconds = getattr(args, "max_seconds", None)
    echo = not getattr(args, "quiet", False)
    if args.heldout:
        rows = evaluate_heldout(names, data, max_seconds=max_seconds, echo=echo, sources=args.sources)
        print(f"HELD-OUT motion models ({heldout_dir(args.sources)}): each case dubbed by a model that never heard "
              "its truth's speaker")
    else:
        rows = evaluate(names, data, max_seconds=max_seconds, echo=echo)
        print("IN-SAMPLE: the shipped motion model was trained on these clips, the truth speakers included; "
              "--heldout scores speakers it never heard")
    print(format_table(rows))
    if getattr(args, "json", None):
        summary = {k: _mean([r for r in rows if "error" not in r], k)
                   for k in ("r", "lag", "r0", "amp", "flicker", "base_r", "base_r0")}
        Path(args.json).write_text(json.dumps(_json_safe({"max_lag": MAX_LAG, "heldout": bool(args.heldout),
                                                          "cases": rows, "mean": summary}),
                                              indent=2), encoding="utf-8")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
