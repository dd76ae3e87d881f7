"""--length fit: which source frame each output frame shows, so that the new phrases fall where the original's were.

New phrases are mapped to the original's phrases in order. While a new phrase is spoken the source plays at its own
pace from the start of the matching original phrase (its speaking frames are kept, never slowed or sped); the length
difference is absorbed in the pause before each phrase: frames are dropped or held once more there, at the stillest
frames (least face motion), never two neighbours, so the picture never jumps by more than one skipped frame; a held
frame is shown as the blend of it and the next (j, j + 1/2, j + 1), so it never freezes. At most a third of a pause's frames are dropped or held: that caps its pace at
MIN_PACE..MAX_PACE (and always leaves enough non-neighbours to pick from); where a pause cannot absorb the
difference, the next phrase starts that much earlier or later in the source than its original, and the plan says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MAX_PACE = 1.5  # a pause plays at most 1.5x as fast (every third frame dropped) ...
MIN_PACE = 0.75  # ... and at least 0.75x as fast (every third frame held once more)


@dataclass
class FitPlan:
    schedule: np.ndarray  # (n_out,) source frame per output frame
    shown: np.ndarray | None = None  # (n_out,) the same with a fraction where a held frame is blended with the next
    phrases: list[dict] = field(default_factory=list)  # per mapped phrase: times, source start, shift
    notes: list[str] = field(default_factory=list)  # what could not be done as asked
    held: int = 0  # output frames that repeat the frame before
    dropped: int = 0  # source frames skipped


def _pick(motion: np.ndarray, a: int, b: int, count: int) -> list[int]:
    """`count` frames of [a, b), the stillest first, no two neighbours (each pick rules out at most three frames, so
    count <= ceil((b - a) / 3) always succeeds)."""
    if count <= 0 or b <= a:
        return []
    order = np.argsort(motion[a:b], kind="stable") + a
    taken: set[int] = set()
    for j in order:
        if j - 1 not in taken and j + 1 not in taken:
            taken.add(int(j))
            if len(taken) == count:
                break
    return sorted(taken)


def _pause(out: list[float], motion: np.ndarray, start: int, advance: int, n_out: int) -> tuple[int, int]:
    """Append `n_out` output frames that play the source from `start` over `advance` frames; returns (held,
    dropped)."""
    if n_out <= 0:
        return 0, 0
    frames: list[float] = list(range(start, start + advance))
    held = dropped = 0
    if advance > n_out:  # drop the stillest frames
        gone = set(_pick(motion, start, start + advance, advance - n_out))
        frames = [j for j in frames if j not in gone]
        dropped = len(gone)
    elif advance < n_out:  # hold the stillest frames once more
        again = set(_pick(motion, start, start + advance, n_out - advance))
        frames = [j for f in frames for j in ([f, f + 0.5] if f in again else [f])]  # f, its blend with f + 1
        held = len(again)
    frames = (frames + [start + advance - 1] * n_out)[:n_out]  # (rounding: never short)
    out.extend(frames)
    return held, dropped


def _advance_range(n_out: int) -> tuple[int, int]:
    """How many source frames a pause of `n_out` output frames may play within the pace caps."""
    return math.ceil(n_out * MIN_PACE), math.floor(n_out * MAX_PACE)


def fit_schedule(original: list[tuple[float, float]], new: list[tuple[float, float]], n_src: int, fps: float,
                 duration: float, motion: np.ndarray | None = None) -> FitPlan:
    """The source frame of each output frame for new speech of `duration` s whose phrases are `new`, dubbed over a
    clip of `n_src` frames whose own phrases are `original` (both (start, end) in seconds). `motion` (n_src,) is how
    much the face moves from each frame to the next (lower: a better frame to hold or drop)."""
    n_out = max(1, round(duration * fps))
    motion = np.zeros(n_src) if motion is None else np.nan_to_num(np.asarray(motion, np.float64), nan=np.inf)
    motion = np.concatenate([motion, np.full(max(0, 4 * n_out + n_src), np.inf)])  # (frames past the clip's end)
    plan = FitPlan(np.zeros(0, np.int64))
    if not original or not new:
        plan.notes.append("no phrases in the " + ("original sound" if not original else "new audio") +
                          ": the video plays back and forth as with --length audio")
        k = np.arange(n_out) % max(1, 2 * (n_src - 1))
        plan.schedule = np.where(k < n_src, k, 2 * (n_src - 1) - k) if n_src > 1 else np.zeros(n_out, np.int64)
        plan.shown = plan.schedule.astype(np.float64)
        return plan
    new = list(new)
    if len(new) > len(original):  # more new phrases than original ones: the last original phrase takes the rest
        plan.notes.append(f"the new audio has {len(new)} phrases, the original {len(original)}: new phrases "
                          f"{len(original)}–{len(new)} are spoken over the last original phrase and what follows")
        new = new[:len(original) - 1] + [(new[len(original) - 1][0], new[-1][1])]
    elif len(original) > len(new):
        plan.notes.append(f"the original has {len(original)} phrases, the new audio {len(new)}: the original's last "
                          f"{len(original) - len(new)} phrase(s) are played through without a new phrase")
    to_frame = lambda t: int(round(t * fps))  # noqa: E731
    out: list[float] = []
    source = 0  # where the source is at the next output frame
    for i, (ns, ne) in enumerate(new):
        target = to_frame(original[i][0])
        gap = to_frame(ns) - len(out)  # output frames of the pause before this phrase
        lo, hi = _advance_range(gap)
        if i == 0:  # the pause before the first phrase may start anywhere in the source: at rate 1 if it can
            advance = min(gap, target) if target >= lo else lo
            source = max(0, target - advance)
        else:
            advance = int(np.clip(target - source, lo, hi))
        held, dropped = _pause(out, motion, source, advance, gap)
        plan.held += held
        plan.dropped += dropped
        source += advance
        shift = source - target
        length = to_frame(ne) - len(out)
        out.extend(range(source, source + length))  # the phrase: the source at its own pace
        plan.phrases.append({"phrase": i + 1, "new": [round(ns, 3), round(ne, 3)],
                             "original": [round(original[i][0], 3), round(original[i][1], 3)],
                             "source_start": round(source / fps, 3), "shift": round(shift / fps, 3),
                             "held": held, "dropped": dropped})
        if shift:
            plan.notes.append(f"phrase {i + 1} starts {abs(shift) / fps:.2f} s {'later' if shift > 0 else 'earlier'} "
                              f"in the video than its original: the pause before it could not absorb more (a pause "
                              f"plays at {MIN_PACE:g}x–{MAX_PACE:g}x)")
        source += length
    out.extend(range(source, source + n_out - len(out)))  # after the last phrase: at its own pace
    shown = np.asarray(out[:n_out], np.float64)
    k = np.floor(shown).astype(np.int64)
    if n_src > 1 and k.max() >= n_src:  # past the clip's end: back and forth, as --length audio does
        plan.notes.append("the new audio runs past the end of the video: it plays back from there")
        k %= 2 * (n_src - 1)
        k = np.where(k < n_src, k, 2 * (n_src - 1) - k)
    plan.schedule = np.minimum(k, n_src - 1)
    fraction = shown - np.floor(shown)
    plan.shown = plan.schedule + np.where(plan.schedule + 1 < n_src, fraction, 0.0)
    return plan
