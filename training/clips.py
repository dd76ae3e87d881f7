"""The clips' material for training and benchmarks: the speech analysis of a clip's audio (cached per process, and
on disk for the filmed training clips) and its samples."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np

from lipdub import media, speech
from lipdub.core.cache import cache_dir, cache_key
from lipdub.core.files import write_atomically
from lipdub.core.constants import HOP_SECONDS, SR
from lipdub.speech import recognise, tokens, vad
from lipdub.speech.acoustic import frame_rms, n_frames
from lipdub.speech.analysis import prepare_audio, recognition_chunks

_speech_cache: dict = {}
# Bump when the speech analysis or the truth tracking changes: the per-clip material on disk is then made again.
MATERIAL_VERSION = 1
# The speech track version whose analyses the material holds (2 added the phone posteriors). Version 3 only added
# the token components, which depend on the axes: clip_material projects each clip's token probabilities (clip_tokens,
# kept apart) on the axes it is given, so the cached analyses stay valid when the axes are fitted again.
SPEECH_MATERIAL = 2
TOKENS_VERSION = 1  # bump when speech.tokens.chunk_tokens changes


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


def clip_tokens(data: Path, clip, n_hops: int) -> np.ndarray:
    """(n_hops, tokens) hama's token probabilities per hop of a clip's own audio, as its speech analysis computes
    them (speech.tokens.chunk_tokens on the chunks recognition hears), cached on disk (keyed by the audio file and
    range)."""
    audio = data / clip.audio_path
    key = cache_key(audio, TOKENS_VERSION, range=clip.range, kind="hama-tokens")
    file = cache_dir() / "train" / f"tokens-{key}.npy"
    if file.is_file():
        return np.load(file)
    x = prepare_audio(clip_audio(audio, clip.range), SR)
    if n_frames(x.size, SR, HOP_SECONDS) != n_hops:
        raise ValueError(f"{clip.name}: the analysis has {n_hops} hops, the audio {n_frames(x.size, SR, HOP_SECONDS)}")
    voiced = vad.detect_voice(x, HOP_SECONDS)[:n_hops]
    out = tokens.chunk_tokens(x, recognition_chunks(voiced, frame_rms(x, SR, HOP_SECONDS)), n_hops)
    file.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(file, lambda tmp: np.save(tmp, out))
    return out


def clip_material(data: Path, clip, mouth_curve, axes: tokens.TokenAxes | None = None
                  ) -> tuple[np.ndarray, np.ndarray, object]:
    """(frame times, filmed opening, speech analysis of its own audio) of a filmed manifest clip, kept on disk in
    the one cache (keyed by both files' identity and the range): the analysis of 69 clips takes most of an hour on a
    shared CPU, a re-run seconds. `mouth_curve(path, start, end)` tracks the truth (training.evaluate's). The
    analysis's token components are its token probabilities projected on `axes` (default: the shipped ones)."""
    times, truth, speech = _material(data, clip, mouth_curve)
    hop_tokens = clip_tokens(data, clip, len(speech.voiced))
    return times, truth, replace(speech, components=(axes or tokens.load_axes()).project(hop_tokens))


def material_tokens(data: Path, clip, mouth_curve) -> np.ndarray:
    """clip_tokens of a filmed clip, as many hops as its cached analysis has (no axes needed: what they are fitted
    on)."""
    return clip_tokens(data, clip, len(_material(data, clip, mouth_curve)[2].voiced))


def _material(data: Path, clip, mouth_curve) -> tuple[np.ndarray, np.ndarray, object]:
    video, audio = data / clip.path, data / clip.audio_path
    key = cache_key(video, MATERIAL_VERSION, range=clip.range, audio=cache_key(audio, MATERIAL_VERSION),
                    speech=SPEECH_MATERIAL)
    file = cache_dir() / "train" / f"{key}.pkl"
    if file.is_file():
        try:
            with open(file, "rb") as f:
                return pickle.load(f)
        except Exception:  # damaged or from other code: made again
            pass
    times, truth = mouth_curve(video, *(clip.range or (None, None)))
    # the components are projected on the axes in use at each load (clip_material)
    material = (times, truth, replace(analyse_clip(audio, clip.range), components=None))

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            pickle.dump(material, f, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(file, write)
    except OSError:
        pass  # no cache: slower next time, same numbers
    return material
