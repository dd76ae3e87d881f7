"""Which source frame each output frame shows, when the voice is longer or shorter than the video."""

from __future__ import annotations

import math

import numpy as np

from lipdub.errors import ParameterError

POLICIES = ("audio", "pingpong", "loop", "pad", "video", "fit")  # fit: planned from phrases (media.retime)


def output_schedule(n_src_frames: int, src_fps: float, duration: float | None, policy: str = "audio") -> np.ndarray:
    if policy not in POLICIES:
        raise ParameterError(f"unknown loop policy {policy!r}; use one of: {', '.join(POLICIES)}")
    if policy == "fit":
        raise ParameterError("--length fit is planned from the phrases of both sound tracks (media.fit_schedule), "
                             "not here")
    n = int(n_src_frames)
    if n < 1:
        raise ParameterError("the source has no frames; pass a video with at least one frame or a photo")
    if not src_fps or src_fps <= 0 or not math.isfinite(src_fps):
        raise ParameterError(f"frame rate must be positive, got {src_fps!r}")
    if policy == "video":
        n_out = n
    else:
        if duration is None or not math.isfinite(duration) or duration <= 0:
            raise ParameterError(f"audio duration must be positive, got {duration!r}; is the audio empty?")
        n_out = max(1, round(duration * src_fps))
    k = np.arange(n_out, dtype=np.int64)
    if n == 1:
        return np.zeros(n_out, dtype=np.int64)
    if policy in ("audio", "pingpong"):
        k %= 2 * (n - 1)
        return np.where(k < n, k, 2 * (n - 1) - k)
    if policy == "loop":
        return k % n
    return np.minimum(k, n - 1)  # pad; for "video" this is the identity


