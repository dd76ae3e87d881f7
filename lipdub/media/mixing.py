"""Several voices as one sound track: summed at their own levels, scaled down as a whole only where the sum clips."""

from __future__ import annotations

import numpy as np

HEADROOM = 0.98  # largest sample value the mix may reach


def mix(tracks: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """The sum of mono `tracks` (same rate; shorter ones end in silence) and the one gain applied to all of it: 1.0
    unless overlapping speech would clip, then HEADROOM / peak, so the voices keep their levels relative to each
    other and nothing clips (no limiter: a limiter pumps in a dialogue)."""
    n = max(len(t) for t in tracks)
    out = np.zeros(n, np.float64)
    for t in tracks:
        out[:len(t)] += t
    peak = float(np.abs(out).max()) if n else 0.0
    gain = 1.0 if peak <= HEADROOM else HEADROOM / peak
    return (out * gain).astype(np.float32), gain
