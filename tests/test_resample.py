"""core.resample gives scipy.signal.resample_poly's numbers bit for bit, and offline dubs no longer import scipy.signal."""

import subprocess
import sys

import numpy as np
import pytest
from scipy.signal import lfilter, resample_poly as scipy_resample_poly

from lipdub.core.resample import resample_poly

RATES = [(10000, 16000), (48000, 16000), (16000, 44100), (16000, 48000), (16000, 22050), (48000, 44100),
         (16000, 8000), (3, 7), (48000, 11025)]


@pytest.mark.parametrize("up,down", RATES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_bits_as_scipy(up, down, dtype):
    rng = np.random.default_rng(up * 7 + down)
    for n in (0, 1, 5, 999, 48001):
        x = (rng.standard_normal(n) * 0.3).astype(dtype)
        ours, theirs = resample_poly(x, up, down), scipy_resample_poly(x, up, down)
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert ours.tobytes() == theirs.tobytes(), (up, down, dtype, n)


def test_along_an_axis_and_integer_input():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((2, 30001)) * 0.3).astype(np.float32)
    assert resample_poly(x, 3, 1, axis=1).tobytes() == scipy_resample_poly(x, 3, 1, axis=1).tobytes()
    assert resample_poly(x.T, 3, 1).tobytes() == scipy_resample_poly(x.T, 3, 1).tobytes()
    i = (rng.standard_normal(4000) * 3000).astype(np.int16)
    assert resample_poly(i, 5, 8).tobytes() == scipy_resample_poly(i, 5, 8).tobytes()
    assert resample_poly(x, 4, 4).tobytes() == x.tobytes()
    with pytest.raises(ValueError):
        resample_poly(x, 0, 1)


def test_pre_emphasis_is_lfilter():
    x = np.random.default_rng(5).standard_normal(16001) * 0.3
    assert np.convolve([1.0, -0.97], x)[:x.size].tobytes() == lfilter([1.0, -0.97], [1.0], x).tobytes()


def test_offline_dub_modules_leave_scipy_signal_out():
    code = ("import sys, lipdub, lipdub.pipeline.offline, lipdub.apps.cli; "
            "print(sorted(m for m in ('scipy.signal', 'scipy.stats') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_blocks_join_exactly(monkeypatch):
    import lipdub.core.resample as resample

    monkeypatch.setattr(resample, "BLOCK", 7)  # many blocks, each edge inside the filter's reach
    x = (np.random.default_rng(7).standard_normal(5000) * 0.3).astype(np.float32)
    for up, down in [(3, 1), (5, 8), (160, 441), (1, 3)]:
        assert resample.resample_poly(x, up, down).tobytes() == scipy_resample_poly(x, up, down).tobytes()
