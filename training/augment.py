"""More "speakers" from the same filmed clips: the clip's audio perturbed (speed, noise, reverb, EQ), its acoustic
analysis made again, the mouth it goes with unchanged (retimed for speed). Training rows only: every held-out score
stays on the clean clips.

A variant is "kind:value": speed:0.9 (the audio resampled to play 0.9x as fast, pitch and formants 0.9x; phones and
the filmed frames retimed to match), noise:20 (white noise at 20 dB SNR over the voiced hops), babble:10 (the other
clips' speech mixed in at 10 dB), reverb:0.4 (an exponentially decaying noise room response of RT60 0.4 s, half wet),
eq:6 (a random smooth gain curve over frequency, ±6 dB at most, seeded per clip). The phones are not recognised
again: they keep the clean analysis' spans (a recogniser pass per variant would take most of an hour on the shared
CPU); the voice activity, loudness, acoustic jaw and log-mel (standardised per utterance as at dub time) are those
of the perturbed audio.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np
from scipy.signal import fftconvolve, istft, resample_poly, stft

from lipdub import speech
from lipdub.core.constants import HOP_SECONDS, SR
from lipdub.speech import vad
from lipdub.speech.acoustic import frame_rms, jaw_opening, log_mel, loudness as loudness_curve, n_frames
from training.clips import clip_audio

KINDS = ("speed", "vtlp", "noise", "babble", "reverb", "eq")


def parse(spec: str) -> list[tuple[str, float]]:
    """'speed:0.9,speed:1.1' -> [('speed', 0.9), ('speed', 1.1)]."""
    out = []
    for part in filter(None, (s.strip() for s in spec.split(","))):
        kind, _, value = part.partition(":")
        if kind not in KINDS or not value:
            raise SystemExit(f"--augment: '{part}' is not one of {', '.join(k + ':VALUE' for k in KINDS)}")
        out.append((kind, float(value)))
    return out


def seed_of(name: str, kind: str, value: float) -> int:
    return zlib.crc32(f"{name}|{kind}|{value}".encode())


def voiced_power(audio: np.ndarray) -> float:
    """Mean power of the louder half of the 10 ms hops (the speech, not the pauses)."""
    rms = frame_rms(audio, SR, HOP_SECONDS)
    loud = rms[rms >= np.median(rms)]
    return float(np.mean(loud ** 2)) if len(loud) else 1e-8


def perturb(audio: np.ndarray, kind: str, value: float, rng, other: np.ndarray | None = None) -> np.ndarray:
    """The perturbed audio (16 kHz mono float32); for speed its duration is len / value."""
    x = np.asarray(audio, np.float64)
    if kind == "speed":  # resampled and played at the same rate: faster and higher (value > 1)
        up = int(round(100 / value))
        x = resample_poly(x, up, 100)
    elif kind == "vtlp":  # the spectrum's frequency axis stretched (a longer or shorter vocal tract), same timing
        _, _, spec = stft(x, SR, nperseg=512, noverlap=384)
        bins = np.arange(spec.shape[0], dtype=np.float64)
        # bin b takes the magnitude of bin b / value (value > 1: formants higher) and that bin's phase advance per
        # frame times value (a phase vocoder: the moved partials keep a coherent frequency)
        src = bins / value
        mag = np.stack([np.interp(src, bins, np.abs(col), right=0.0) for col in spec.T], 1)
        expected = 2 * np.pi * bins * 128 / 512
        advance = np.diff(np.angle(spec), axis=1, prepend=0.0) - expected[:, None]
        advance = expected[:, None] + (advance + np.pi) % (2 * np.pi) - np.pi  # each bin's true advance
        near = np.minimum(np.round(src).astype(int), len(bins) - 1)
        phase = np.cumsum(value * advance[near], axis=1)
        _, x = istft(mag * np.exp(1j * phase), SR, nperseg=512, noverlap=384)
        x = np.pad(x, (0, max(0, len(audio) - len(x))))[:len(audio)]
    elif kind in ("noise", "babble"):
        if kind == "noise":
            n = rng.standard_normal(len(x))
        else:  # other speech, looped and cut at a random point
            reps = int(np.ceil(len(x) / max(len(other), 1))) + 1
            n = np.tile(other, reps)
            start = int(rng.integers(0, max(len(other), 1)))
            n = n[start:start + len(x)]
        gain = np.sqrt(voiced_power(x) / (voiced_power(n) + 1e-12) / 10 ** (value / 10))
        x = x + gain * n
    elif kind == "reverb":
        t = np.arange(int(value * SR)) / SR
        rir = rng.standard_normal(len(t)) * np.exp(-6.9 * t / value)  # -60 dB at RT60
        rir[0] = 0.0
        wet = fftconvolve(x, rir)[:len(x)]
        wet *= np.sqrt(voiced_power(x) / (voiced_power(wet) + 1e-12))
        x = 0.5 * x + 0.5 * wet
    elif kind == "eq":
        spec = np.fft.rfft(x)
        freqs = np.fft.rfftfreq(len(x), 1 / SR)
        knots = np.geomspace(80, SR / 2, 8)  # a smooth curve over log-frequency
        gains_db = rng.uniform(-value, value, len(knots))
        db = np.interp(np.log(np.maximum(freqs, 80)), np.log(knots), gains_db)
        x = np.fft.irfft(spec * 10 ** (db / 20), len(x))
    else:
        raise ValueError(kind)
    peak = np.abs(x).max()
    return (x / peak * 0.9 if peak > 1 else x).astype(np.float32)


def acoustic_track(audio: np.ndarray, phones, method: str, language) -> speech.SpeechTrack:
    """The speech analysis of `audio` with these phones (not recognised again): the acoustic part as
    speech.analyse computes it."""
    n = n_frames(audio.size, SR, HOP_SECONDS)
    voiced = vad.detect_voice(audio, HOP_SECONDS)[:n]
    rms = frame_rms(audio, SR, HOP_SECONDS)
    jaw = jaw_opening(audio, voiced, SR, HOP_SECONDS, rms=rms)
    return speech.SpeechTrack(audio.size / SR, HOP_SECONDS, voiced, jaw, loudness_curve(rms), list(phones), method,
                              language, log_mel(audio, SR, HOP_SECONDS)[:n])


def augmented_rows(data, clips: dict, samples: dict, variants, rows_of) -> dict:
    """name -> [(features, target), ...] of each variant of each filmed clip in `clips` (name -> manifest Clip);
    `rows_of(times, truth, speech, lag)` makes a clip's training rows (train_motion's, aligned by the clean clip's
    lag, samples[name][7]); for speed the filmed frames are retimed with the audio."""
    audio = {name: clip_audio(data / clip.audio_path, clip.range) for name, clip in clips.items()}
    names = list(clips)
    out: dict = {}
    for i, name in enumerate(names):
        times, truth, clean = samples[name][:3]
        rows = []
        for kind, value in variants:
            rng = np.random.default_rng(seed_of(name, kind, value))
            other = audio[names[(i + 1 + int(rng.integers(0, len(names) - 1))) % len(names)]] \
                if kind == "babble" else None
            x = perturb(audio[name], kind, value, rng, other)
            scale = 1 / value if kind == "speed" else 1.0
            phones = [replace(p, start=p.start * scale, end=p.end * scale) for p in clean.phones]
            track = acoustic_track(x, phones, clean.method, clean.language)
            rows.append(rows_of(np.asarray(times) * scale, truth, track, samples[name][7]))
        out[name] = rows
        print(f"augmented {name}: {len(rows)} variants", flush=True)
    return out

