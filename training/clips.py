"""The clips' material for training and benchmarks: the speech analysis of a clip's audio (cached per process) and
its samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lipdub import media, speech
from lipdub.speech import recognise

_speech_cache: dict = {}


def analyse_clip(path: Path, rng, allphone: bool = False):
    """The speech analysis of a clip's audio (cached); `allphone` decodes phones with pocketsphinx's allphone
    decoder instead of hama (the baseline phone recogniser)."""
    key = (str(path), rng, allphone)
    if key not in _speech_cache:
        samples, sr = media.load_audio(path, 16000)
        if rng is not None:
            samples = samples[int(rng[0] * sr):int(rng[1] * sr)]
        saved = recognise.recognise
        if allphone:
            recognise.recognise = lambda *a, **k: []  # no hama words: analysis falls back to allphone
        try:
            _speech_cache[key] = speech.analyse(samples, sr)
        finally:
            recognise.recognise = saved
    return _speech_cache[key]


def clip_audio(path: Path, rng) -> np.ndarray:
    samples, sr = media.load_audio(path, 16000)
    return samples[int(rng[0] * sr):int(rng[1] * sr)] if rng is not None else samples
