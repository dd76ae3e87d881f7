"""Long audio analysed in pieces cut in pauses, joined into one speech track: the analysis's memory stays that of one
piece however long the audio is."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from lipdub import media, speech
from lipdub.core.constants import HOP, SR

SPEECH_PIECE = 180.0  # s: audio longer than SPEECH_PIECE + SPEECH_SLACK is analysed in pieces of about this length,
SPEECH_SLACK = 60.0  # cut at the quietest moment of the last SPEECH_SLACK s of each piece


def analysed_in_pieces(duration: float, transcript: str | None) -> bool:
    """Whether audio of `duration` s streams through the analysis in pieces: short audio (and any with a transcript)
    is analysed whole."""
    return duration > SPEECH_PIECE + SPEECH_SLACK and not transcript


def count_samples(audio: Path) -> int:
    """Length of the audio at 16 kHz, streamed (an hour of samples is never held)."""
    blocks = media.audio_blocks(audio, SR)
    next(blocks)
    return sum(b.shape[1] for b in blocks)


def samples_unless_in_pieces(audio: Path, transcript: str | None) -> tuple[int, np.ndarray | None]:
    """(the audio's length at 16 kHz, its samples as load_audio gives them, or None where it is analysed in pieces:
    analysed_in_pieces), decoding short audio once (count_samples, then load_audio, decoded it twice: 0.032-0.037 s
    of CPU for 8 s, 0.016 s once). What it holds stops at the pieces' threshold; long audio with a transcript is
    decoded again whole (load_audio: never held twice)."""
    limit = int((SPEECH_PIECE + SPEECH_SLACK) * SR)
    blocks = media.audio_blocks(audio, SR)
    next(blocks)
    held: list[np.ndarray] | None = []
    n = 0
    for b in blocks:
        n += b.shape[1]
        if held is not None and n <= limit:
            held.append(b[0])
        else:
            held = None
    if held is not None:  # (blocks join into exactly load_audio's samples)
        return n, np.concatenate(held) if held else np.zeros(0, np.float32)
    return n, None if analysed_in_pieces(n / SR, transcript) else media.load_audio(audio, SR)[0]


def speech_in_pieces(audio: Path, language: str | None) -> "speech.SpeechTrack":
    """speech.analyse on pieces of about SPEECH_PIECE s, cut in pauses, joined into one track, so the analysis's
    memory stays that of one piece however long the audio is. Pieces are whole 10 ms frames long, so the frames line
    up with those of a single analysis; levels (loudness, jaw, mel) are normalised per piece. Needs no transcript
    (a transcript cannot be split by time here: audio with one is analysed whole)."""
    piece, slack = int(SPEECH_PIECE * SR), int(SPEECH_SLACK * SR)
    blocks = media.audio_blocks(audio, SR)
    next(blocks)
    tracks: list = []
    held: list[np.ndarray] = []
    n_held = 0

    def cut_and_analyse(final: bool) -> None:
        nonlocal held, n_held
        x = np.concatenate(held) if len(held) > 1 else held[0]
        cut = len(x)
        if not final:  # the quietest 300 ms (centre) among the frames in [piece - slack, piece)
            lo = (piece - slack) // HOP
            energy = (x[: (piece // HOP) * HOP].reshape(-1, HOP).astype(np.float64) ** 2).sum(1)
            smooth = np.convolve(energy, np.ones(30), mode="same")
            cut = (lo + int(np.argmin(smooth[lo:]))) * HOP
        tracks.append(speech.analyse(x[:cut], SR, language=language))
        held, n_held = ([x[cut:]], len(x) - cut) if cut < len(x) else ([], 0)
        del x

    for b in blocks:
        held.append(b[0])
        n_held += b.shape[1]
        if n_held >= piece + slack:
            cut_and_analyse(final=False)
    if n_held:
        cut_and_analyse(final=True)
    return join_speech(tracks)


def join_speech(tracks: list) -> "speech.SpeechTrack":
    """One SpeechTrack from consecutive pieces' tracks: frame-wise arrays joined, phones shifted and joined (a piece
    without phones becomes silence), the weakest phone method of the pieces that have phones."""
    first = tracks[0]
    offsets = np.cumsum([0.0] + [t.duration for t in tracks[:-1]])  # whole frames each: t.duration = n_frames * hop
    values = {}
    for f in dataclasses.fields(first):
        vals = [getattr(t, f.name) for t in tracks]
        if f.name == "duration":
            values[f.name] = float(offsets[-1] + tracks[-1].duration)
        elif f.name == "phones":
            joined: list = []
            with_phones = any(vals)
            for t, off in zip(tracks, offsets):
                phones = t.phones or ([speech.Phone("SIL", 0.0, t.duration)] if with_phones else [])
                for p in phones:
                    q = dataclasses.replace(p, start=p.start + off, end=p.end + off)
                    if joined and q.label == "SIL" and joined[-1].label == "SIL":
                        joined[-1] = dataclasses.replace(joined[-1], end=q.end)
                    else:
                        joined.append(q)
            values[f.name] = joined
        elif f.name == "method":
            used = [t.method for t in tracks if t.phones]
            rank = {m: i for i, m in enumerate(speech.METHODS)}
            values[f.name] = max(used, key=lambda m: rank.get(m, len(rank))) if used else "acoustic-only"
        elif f.name == "posteriors" and any(v is None for v in vals):  # hama failed on a piece: none for the whole
            values[f.name] = None
        elif all(isinstance(v, np.ndarray) and v.shape[:1] == (t.n_frames,) for v, t in zip(vals, tracks)):
            values[f.name] = np.concatenate(vals)
        else:
            values[f.name] = vals[0]
    return type(first)(**values)
