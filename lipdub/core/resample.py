"""Polyphase resampling, the same numbers as scipy.signal.resample_poly (default Kaiser window, zero padding).

Importing scipy.signal costs ~0.75 s of CPU (it loads scipy.stats, scipy.interpolate and more), more than a dub's
whole speech analysis spends resampling; every dub resamples (the formant track at 10 kHz, the AAC track at 48 kHz).
This module follows scipy 1.17's steps operation for operation (firwin's filter, upfirdn's per-output sums in the
same order), so the results are bit-identical: tests/test_resample.py compares them across rates and dtypes.
"""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.special import i0  # already loaded by scipy.ndimage / scipy.spatial: no extra import cost

BLOCK = 1 << 16  # output samples per phase and block: bounds the temporaries on an hour of audio


def lowpass(up: int, down: int) -> tuple[np.ndarray, int]:
    """resample_poly's filter (firwin, Kaiser beta 5, cutoff at the lower Nyquist) before its gain and padding, and
    its half length."""
    max_rate = max(up, down)
    half_len = 10 * max_rate
    numtaps = 2 * half_len + 1
    cutoff = 1.0 / max_rate
    m = np.arange(0, numtaps, dtype=np.float64) - 0.5 * (numtaps - 1)
    h = cutoff * np.sinc(cutoff * m)  # firwin also subtracts the left band edge's 0 * sinc and scales by cos(0): no-ops
    n = np.arange(0, numtaps, dtype=np.float64)
    alpha = (numtaps - 1) / 2.0
    h *= i0(5.0 * np.sqrt(1 - ((n - alpha) / alpha) ** 2.0)) / i0(np.asarray(5.0, dtype=np.float64))
    h /= np.sum(h)
    return h, half_len


def _output_len(len_h: int, in_len: int, up: int, down: int) -> int:
    nt = (in_len + (len_h + (-len_h % up)) // up - 1) * up
    return nt // down + bool(nt % down)


def resample_poly(x, up: int, down: int, axis: int = 0) -> np.ndarray:
    """`x` resampled by up/down along `axis`, as scipy.signal.resample_poly(x, up, down, axis) computes it."""
    x = np.asarray(x)
    up, down = int(up), int(down)
    if up < 1 or down < 1:
        raise ValueError("up and down must be >= 1")
    g = gcd(up, down)
    up, down = up // g, down // g
    if up == down == 1:
        return x.copy()
    n_in = x.shape[axis]
    n_out = n_in * up
    n_out = n_out // down + bool(n_out % down)
    h, half_len = lowpass(up, down)
    if np.issubdtype(x.dtype, np.floating):
        h = h.astype(x.dtype)
    h *= up
    n_pre_pad = down - half_len % down
    n_post_pad = 0
    n_pre_remove = (half_len + n_pre_pad) // down
    while _output_len(len(h) + n_pre_pad + n_post_pad, n_in, up, down) < n_out + n_pre_remove:
        n_post_pad += 1
    h = np.concatenate((np.zeros(n_pre_pad, h.dtype), h, np.zeros(n_post_pad, h.dtype)))
    dtype = np.result_type(h.dtype, x.dtype, np.float32)
    h = h.astype(dtype)
    # upfirdn's filter: padded to a multiple of `up`, one row per phase, each row reversed
    h_full = np.zeros(len(h) + (-len(h) % up), dtype)
    h_full[:len(h)] = h
    phases = np.ascontiguousarray(h_full.reshape(-1, up).T[:, ::-1])
    per_phase = phases.shape[1]
    xs = np.moveaxis(x, axis, -1)
    lead = per_phase - 1  # upfirdn skips the taps before x[0] and after its end; adding their 0 * h changes no sum
    out = np.empty(xs.shape[:-1] + (n_out,), dtype)
    span = BLOCK * up
    for y_lo in range(0, n_out, span):  # a block of outputs at a time, from a zero-padded copy of its inputs only
        y_hi = min(y_lo + span, n_out)
        p_lo = (n_pre_remove + y_lo) * down // up
        p_hi = (n_pre_remove + y_hi - 1) * down // up + per_phase
        win = np.zeros(xs.shape[:-1] + (p_hi - p_lo,), dtype)
        a, b = max(p_lo - lead, 0), min(p_hi - lead, xs.shape[-1])
        if b > a:
            win[..., a + lead - p_lo:b + lead - p_lo] = xs[..., a:b]
        # outputs y, y + up, y + 2 up, ... share a filter phase and read inputs `down` apart: strided slices
        for r in range(min(up, y_hi - y_lo)):
            y0 = n_pre_remove + y_lo + r
            start, phase = y0 * down // up - p_lo, y0 * down % up
            k = len(range(r, y_hi - y_lo, up))
            acc = np.zeros(xs.shape[:-1] + (k,), dtype)
            for j in range(per_phase):  # upfirdn's order: each output's taps from the oldest input sample on
                acc += win[..., start + j:start + j + (k - 1) * down + 1:down] * phases[phase, j]
            out[..., y_lo + r:y_hi:up] = acc
    return np.moveaxis(out, -1, axis)
