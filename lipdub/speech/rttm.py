"""Speaker maps in RTTM, the diarisation format: who speaks when in one mixed track, and that track cut per speaker.

An RTTM line is `SPEAKER FILE CHANNEL ONSET DURATION <NA> <NA> LABEL <NA> <NA>` (space separated, times in
seconds); only SPEAKER lines matter here, other line types (SPKR-INFO, LEXEME, ...) and `;;` comments are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import maximum_filter1d, uniform_filter1d

from lipdub.errors import InputError

EDGE_FADE = 0.01  # s: a silenced turn fades in and out, so its edges are no clicks the speech analysis hears as bursts


@dataclass(frozen=True)
class Turn:
    file: str
    onset: float  # s
    duration: float  # s
    label: str

    @property
    def end(self) -> float:
        return self.onset + self.duration


def read_rttm(path) -> list[Turn]:
    """The SPEAKER turns of an RTTM file, in time order; an InputError naming the line when one is malformed or
    when the file describes more than one recording (one mixed track is cut by it)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read the speaker map {path} ({exc.strerror})") from None
    turns: list[Turn] = []
    for n, line in enumerate(lines, 1):
        fields = line.split()
        if not fields or fields[0].startswith(";") or fields[0].upper() != "SPEAKER":
            continue
        try:
            onset, duration = float(fields[3]), float(fields[4])
            label = fields[7]
        except (IndexError, ValueError):
            raise InputError(f"{path} line {n} is not an RTTM SPEAKER line (SPEAKER FILE CHANNEL ONSET DURATION "
                             f"<NA> <NA> LABEL <NA> <NA>): {line.strip()!r}") from None
        if not (np.isfinite(onset) and np.isfinite(duration)) or onset < 0 or duration < 0:
            raise InputError(f"{path} line {n}: onset and duration must be seconds >= 0, got {onset} and {duration}")
        turns.append(Turn(fields[1], onset, duration, label))
    if not turns:
        raise InputError(f"{path} holds no SPEAKER lines; pass an RTTM speaker map (e.g. from pyannote)")
    files = sorted({t.file for t in turns})
    if len(files) > 1:
        raise InputError(f"{path} describes {len(files)} recordings ({', '.join(files[:4])}); keep the lines of "
                         "the one mixed track passed with it")
    return sorted(turns, key=lambda t: (t.onset, t.label))


def labels(turns: list[Turn]) -> list[str]:
    """The speaker labels in order of first appearance."""
    seen: dict[str, None] = {}
    for t in turns:
        seen.setdefault(t.label)
    return list(seen)


def speaking(turns: list[Turn], label: str, n: int, sr: int) -> np.ndarray:
    """(n,) bool: the samples where `label` speaks."""
    mask = np.zeros(n, bool)
    for t in turns:
        if t.label == label:
            mask[max(0, int(round(t.onset * sr))): min(n, int(round(t.end * sr)))] = True
    return mask


def cut_for(samples: np.ndarray, sr: int, turns: list[Turn], label: str) -> np.ndarray:
    """The mixed track as `label`'s voice: silent where another label speaks and `label` does not (overlapped speech
    is kept: both speak there), fading over 2 x EDGE_FADE at the silenced turns' edges; stretches nobody speaks in are
    kept as they are."""
    n = len(samples)
    own = speaking(turns, label, n, sr)
    others = np.zeros(n, bool)
    for other in labels(turns):
        if other != label:
            others |= speaking(turns, other, n, sr)
    keep = (~others | own).astype(np.float32)
    ramp = max(1, int(EDGE_FADE * sr))
    if ramp > 1 and not keep.all():  # a moving maximum then mean: the ramps lie inside the silenced turns, so the
        # label's own speech stays whole
        keep = uniform_filter1d(maximum_filter1d(keep, 2 * ramp + 1, mode="nearest"), 2 * ramp + 1, mode="nearest")
    return (samples * keep).astype(np.float32)
