"""Held-out sync of a profile dub where the shot's level acts (profiles.shot_level; issue 21).

bench.profile_eval's shot (50–71 s of the CNN clip) opens no wider than its profile footage, so the level is 1 there
and that bench cannot see it. Here the shot is the profile bench's cnn_anchor shot (40–48 s), whose own mouths open
about 1.15x the footage's, so the level acts:

    footage 0–30 s (video + its own audio) → the profile
    shot 40–48 s (video)                   → the shot dubbed
    speech of each 8 s window in WINDOWS   → what the anchor really did then is the truth

Each window's speech dubs the shot with the profile, with the level held at 1 (`level1`: SHOT_LEVEL_MAX = 1), as
the code does (`shot`), and without the profile (`none`); `level1_placebo` and `shot_placebo` are those two again
with a change of no meaning to selection (PROXIMITY_SECONDS 1.0 -> 1.05, stop 37's placebo): how far r moves when
only the path through the atlas moves, against which a difference between variants is read. Per dub: r at the best lag of the re-tracked
dub's mouth opening against the anchor's filmed mouth in that window, lag, amplitude, and from the plan (no
re-tracking) the r of the wanted openings and of the openings of the atlas entries drawn. Drive it with a motion
model that never saw the anchor (--heldout, as bench.profile_eval: `python -m training.train_motion --dry-run
--groups cnn` writes it); the shipped model learned from this clip.

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python -m bench.profile_level --heldout [--work DIR] [--json F]
                                                       [--variants level1,shot,none,level1_placebo,shot_placebo]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import numpy as np

from lipdub import render
from lipdub.core.files import write_json
from lipdub.core.metrics import MAX_LAG, pearson_at_best_lag, resample
from lipdub import profile as profiles
from lipdub.pipeline import DubOptions, dub
from lipdub.profile import articulation
from lipdub.render import selection
from training import evaluate
from training.manifest import HELD_OUT_DIR

CLIP = "video/cnn_anchor_71s.mp4"
FOOTAGE = (0.0, 30.0)  # the profile's footage
SHOT = (40.0, 48.0)  # realism_profile's cnn_anchor shot: its mouths open wider than the footage's
WINDOWS = ((30.0, 38.0), (50.0, 58.0), (60.0, 68.0))  # speech, outside both
VARIANTS = ("level1", "shot", "none", "level1_placebo", "shot_placebo")
PLACEBO_PROXIMITY_SECONDS = 1.05  # selection.PROXIMITY_SECONDS in a placebo dub (1.0 in the code)


@contextlib.contextmanager
def level_held_at_one():
    """profiles.shot_level reads 1 (the profile's articulation as learned) while inside."""
    saved = articulation.SHOT_LEVEL_MAX
    articulation.SHOT_LEVEL_MAX = 1.0
    try:
        yield
    finally:
        articulation.SHOT_LEVEL_MAX = saved


@contextlib.contextmanager
def placebo():
    """Selection with a change of no meaning while inside (PLACEBO_PROXIMITY_SECONDS)."""
    saved = selection.PROXIMITY_SECONDS
    selection.PROXIMITY_SECONDS = PLACEBO_PROXIMITY_SECONDS
    try:
        yield
    finally:
        selection.PROXIMITY_SECONDS = saved


def variant_context(variant: str) -> contextlib.ExitStack:
    """The code as a variant dubs: the level held at 1 (level1*), selection's placebo (*_placebo)."""
    stack = contextlib.ExitStack()
    if variant.startswith("level1"):
        stack.enter_context(level_held_at_one())
    if variant.endswith("_placebo"):
        stack.enter_context(placebo())
    return stack


@contextlib.contextmanager
def recorded(plans: list, levels: list):
    """Every Renderer.plan's result (open_c, width_c, sel) with the renderer's atlas openings appended to `plans`,
    every profiles.shot_level's to `levels`."""
    plan, shot_level = render.Renderer.plan, profiles.shot_level

    def recording_plan(self, *args, **kwargs):
        out = plan(self, *args, **kwargs)
        plans.append((out, self.atlas_open))
        return out

    def recording_level(*args):
        levels.append(shot_level(*args))
        return levels[-1]

    render.Renderer.plan, profiles.shot_level = recording_plan, recording_level
    try:
        yield
    finally:
        render.Renderer.plan, profiles.shot_level = plan, shot_level


def curve_sync(values: np.ndarray, fps: float, truth: tuple[np.ndarray, np.ndarray]) -> float:
    """r at the best lag (MAX_LAG) of a per-output-frame curve against the filmed mouth (times, opening)."""
    t_truth, y_truth = truth
    y = resample(np.arange(len(values)) / fps, np.asarray(values, np.float64), t_truth)
    return float(pearson_at_best_lag(y, y_truth, MAX_LAG)[0])


def summary(rows: list[dict]) -> dict:
    """Per variant: the mean over windows of each figure (r, amp, plan r's), and the windows it is the mean of."""
    out: dict = {}
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        keys = [k for k in ("r", "amp", "wanted_r", "drawn_r", "level") if all(k in r for r in mine)]
        out[variant] = {k: round(float(np.mean([r[k] for r in mine])), 4) for k in keys}
        out[variant]["windows"] = len(mine)
    return out


def prepare(data: Path, work: Path) -> dict:
    """Footage, shot and each window's speech, cut once into `work`; the profile built once from the footage."""
    work.mkdir(parents=True, exist_ok=True)
    clip = data / CLIP
    parts = {"shot": work / "shot_40_48.mp4", "profile": work / "cnn_0_30.lipdub"}
    if not parts["shot"].is_file():
        evaluate.cut_video(clip, *SHOT, parts["shot"])
    if not parts["profile"].is_file():
        footage = work / "footage_0_30.mp4"
        if not footage.is_file():
            evaluate.cut_video(clip, *FOOTAGE, footage, with_audio=True)
        profiles.build([footage]).save(parts["profile"])
    for a, b in WINDOWS:
        wav = work / f"speech_{a:g}_{b:g}.wav"
        if not wav.is_file():
            evaluate.cut_audio(clip, a, b, wav)
        parts[(a, b)] = wav
    return parts


def run(data: Path, work: Path, variants: tuple[str, ...]) -> list[dict]:
    parts = prepare(data, work)
    rows = []
    for a, b in WINDOWS:
        truth = evaluate.mouth_curve(data / CLIP, a, b)
        for variant in variants:
            out = work / f"dub_{variant}_{a:g}_{b:g}.mp4"
            opts = DubOptions() if variant == "none" else DubOptions(profile=str(parts["profile"]))
            plans: list = []
            levels: list = []
            t = time.perf_counter()
            with variant_context(variant), recorded(plans, levels):
                report = dub(parts["shot"], parts[(a, b)], out, opts)
            row = {"variant": variant, "window": f"{a:g}-{b:g}", "wall": round(time.perf_counter() - t, 1)}
            r, lag, amp = evaluate.dub_sync(out, truth)
            row.update(r=round(r, 4), lag=lag, amp=round(amp, 3))
            if levels:
                row["level"] = round(levels[-1], 3)
            if plans:
                (open_c, _, sel), atlas_open = plans[-1]
                row["wanted_r"] = round(curve_sync(open_c, report.fps, truth), 4)
                row["drawn_r"] = round(curve_sync(atlas_open[sel], report.fps, truth), 4)
            rows.append(row)
            print(f"{row['window']:>6s} {variant:8s} level {row.get('level', 1.0):.2f} r {row['r']:.3f} lag {row['lag']:+d} amp {row['amp']:.2f}  "
                  f"plan: wanted r {row.get('wanted_r', float('nan')):.3f} drawn r {row.get('drawn_r', float('nan')):.3f}"
                  f"  ({row['wall']:.0f} s)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.profile_level", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="the shared data folder")
    ap.add_argument("--work", default=str(Path(os.environ.get("TMPDIR", "/tmp")) / "lipdub-profile-level"))
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of " + ", ".join(VARIANTS))
    ap.add_argument("--heldout", action="store_true",
                    help="a motion model that never saw the CNN anchor (the shipped one learned from this clip)")
    ap.add_argument("--json", help="write the rows and their means here")
    args = ap.parse_args(argv)
    variants = tuple(args.variants.split(","))
    if set(variants) - set(VARIANTS):
        ap.error(f"--variants: of {', '.join(VARIANTS)}")
    if args.heldout:
        model = HELD_OUT_DIR / "cnn.npz"
        if not model.is_file():
            print(f"{model} is missing: run python -m training.train_motion --dry-run --groups cnn first",
                  file=sys.stderr)
            return 2
        os.environ["LIPDUB_MOTION_MODEL"] = str(model)
    data = Path(args.data) if args.data else evaluate.default_data_dir()
    rows = run(data, Path(args.work), variants)
    means = summary(rows)
    for variant, m in means.items():
        print(f"mean   {variant:8s} " + "  ".join(f"{k} {v:.3f}" for k, v in m.items() if k != "windows"))
    if args.json:
        write_json(Path(args.json), {"rows": rows, "mean": means})
    return 0


if __name__ == "__main__":
    sys.exit(main())
