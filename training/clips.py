"""The clips' material for training and benchmarks: the speech analysis of a clip's audio (cached per process, and
on disk for the filmed training clips) and its samples."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from lipdub import media, speech
from lipdub.core.cache import cache_dir, cache_key
from lipdub.core.files import write_atomically
from lipdub.speech import recognise
from lipdub.speech.track import VERSION as SPEECH_VERSION

_speech_cache: dict = {}
# Bump when the speech analysis or the truth tracking changes: the per-clip material on disk is then made again (the
# speech track's own VERSION keys it too: 2 added the phone posteriors).
MATERIAL_VERSION = 1


def analyse_clip(path: Path, rng, allphone: bool = False):
    """The speech analysis of a clip's audio (cached); `allphone` decodes phones with pocketsphinx's allphone
    decoder instead of hama (the baseline phone recogniser)."""
    key = (str(path), rng, allphone)
    if key not in _speech_cache:
        samples, sr = media.load_audio(path, 16000)
        if rng is not None:
            samples = samples[int(rng[0] * sr):int(rng[1] * sr)]
        saved = recognise.recognise_with_posteriors
        if allphone:  # no hama words: analysis falls back to allphone (hama's posteriors are still kept)
            recognise.recognise_with_posteriors = lambda audio, sr: ([], recognise.frame_posteriors(audio, sr))
        try:
            _speech_cache[key] = speech.analyse(samples, sr)
        finally:
            recognise.recognise_with_posteriors = saved
    return _speech_cache[key]


def clip_audio(path: Path, rng) -> np.ndarray:
    samples, sr = media.load_audio(path, 16000)
    return samples[int(rng[0] * sr):int(rng[1] * sr)] if rng is not None else samples


def clip_material(data: Path, clip, mouth_curve) -> tuple[np.ndarray, np.ndarray, object]:
    """(frame times, filmed opening, speech analysis of its own audio) of a filmed manifest clip, kept on disk in
    the one cache (keyed by both files' identity and the range): the analysis of 69 clips takes most of an hour on a
    shared CPU, a re-run seconds. `mouth_curve(path, start, end)` tracks the truth (training.evaluate's)."""
    video, audio = data / clip.path, data / clip.audio_path
    key = cache_key(video, MATERIAL_VERSION, range=clip.range, audio=cache_key(audio, MATERIAL_VERSION),
                    speech=SPEECH_VERSION)
    file = cache_dir() / "train" / f"{key}.pkl"
    if file.is_file():
        try:
            with open(file, "rb") as f:
                return pickle.load(f)
        except Exception:  # damaged or from other code: made again
            pass
    times, truth = mouth_curve(video, *(clip.range or (None, None)))
    material = (times, truth, analyse_clip(audio, clip.range))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            pickle.dump(material, f, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(file, write)
    except OSError:
        pass  # no cache: slower next time, same numbers
    return material
