"""`lipdub say`: make a face say typed text, offline.

espeak-ng (GPL, only ever run as an external program) synthesises the speech. Its command line prints the phonemes
it speaks (`--ipa`) but not their timing: `--pho` (phonemes with durations) works only with MBROLA voices, which need
the separate mbrola program and voice files. So the timing comes from forced alignment of espeak-ng's own phoneme
string for the text (in context: weak forms, numbers spelled out) to the synthesised audio. Synthetic speech is
noise-free and pronounced exactly as that string says, the easiest case for the aligner. One correction: the aligner
labels the silent closure before a word-initial p or b as a pause, but the lips are shut through it, so the stop
takes up to `STOP_CLOSURE` seconds of that silence.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from lipdub.core.constants import SR
from lipdub import media, speech
from lipdub.errors import DependencyError, InputError, ParameterError
from lipdub.options import DubOptions
from lipdub.pipeline import dub
from lipdub.speech import g2p
from lipdub.speech.track import Phone, SpeechTrack

SPEED = 150  # words per minute: a little slower than espeak-ng's 175, nearer a presenter's pace
STOP_CLOSURE = 0.12  # s of a preceding pause given to a p/b: a typical stop closure
_VOICE = re.compile(r"[A-Za-z0-9_-]+(\+[A-Za-z0-9_-]+)?")


def voice_and_language(voice: str | None, language: str | None) -> tuple[str, str]:
    """The espeak-ng voice and the language tag: either gives the other (`es` → voice es; voice en-us+f3 → en-us)."""
    if voice is not None and not _VOICE.fullmatch(voice):
        raise ParameterError(f"--voice {voice!r} is not an espeak-ng voice name; list them with `espeak-ng --voices`")
    if voice is None:
        voice = g2p.espeak_voice(language)
    if language is None:
        language = voice.split("+")[0]
    g2p.espeak_voice(language)  # validates the tag
    return voice, language


def synthesise(text: str, path: Path, voice: str, speed: int = SPEED) -> Path:
    """Speech for `text` as a WAV file, from espeak-ng given the text on stdin (never as an argument it could
    mistake for an option)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DependencyError("espeak-ng is not installed; run `make system-deps` (Debian package espeak-ng)")
    try:
        proc = subprocess.run([exe, "-v", voice, "-s", str(int(speed)), "-w", str(path), "--stdin"],
                              input=" ".join(text.split()), capture_output=True, text=True, encoding="utf-8",
                              timeout=300, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DependencyError(f"espeak-ng could not run ({exc}); reinstall it (`make system-deps`)") from None
    if proc.returncode != 0 or "does not exist" in proc.stderr or not Path(path).is_file():
        raise ParameterError(f"espeak-ng has no voice {voice!r}; list voices with `espeak-ng --voices`")
    return Path(path)


def close_stops(phones: list[Phone], closure: float = STOP_CLOSURE) -> list[Phone]:
    """p/b after a pause inside speech start up to `closure` s earlier: the pause is their closure (lips shut)."""
    out = [Phone(p.label, p.start, p.end) for p in phones]
    for i in range(1, len(out)):
        prev, cur = out[i - 1], out[i]
        if cur.label in ("P", "B") and prev.label == "SIL" and i >= 2:
            start = max(prev.start, cur.start - closure)
            prev.end = cur.start = start
    return [p for p in out if p.end - p.start > 1e-6]


def script_track(samples: np.ndarray, sr: int, text: str, voice: str, language: str) -> SpeechTrack:
    """The speech analysis of espeak-ng's rendering of `text`: acoustics from the audio, phones aligned from the
    synthesiser's own phoneme string."""
    prons = g2p.espeak_text_phones(text, voice)
    if not prons:
        raise ParameterError("the text has nothing to say (no word espeak-ng can pronounce); type some words")
    track = speech.analyse(samples, sr, language=language, pronunciations=prons)
    track.phones = close_stops(track.phones)
    return track


def say(source, text: str, output, voice: str | None = None, language: str | None = None, speed: int = SPEED,
        video=None, options=None, progress=None):
    """Dub `source` (a video or photo; or an actor profile, then `video` is the shot to paint into) saying `text`.
    Returns (DubReport, SpeechTrack): the track holds the phone timing the mouth follows."""
    opts = options or DubOptions()
    if not isinstance(text, str) or not text.strip():
        raise ParameterError("nothing to say: give the text to speak (or a .txt file)")
    if not 60 <= int(speed) <= 500:
        raise ParameterError(f"--speed must be between 60 and 500 words per minute, got {speed}")
    source = Path(source)
    if source.suffix.lower() == ".lipdub":  # a profile paints into a shot: the shot is still needed
        if video is None:
            raise ParameterError(f"{source} is an actor profile: add --video SHOT.mp4 (the shot of the actor to dub)")
        if opts.profile:
            raise ParameterError("give the profile once: as SOURCE or as --profile")
        opts = replace(opts, profile=str(source))
        source = Path(video)
    elif video is not None:
        raise ParameterError("--video is only for a .lipdub profile SOURCE; SOURCE is already the video to dub")
    if not source.exists():
        raise InputError(f"video file not found: {source}")
    voice, language = voice_and_language(voice, language)
    with tempfile.TemporaryDirectory(prefix="lipdub-say-") as tmp:
        wav = synthesise(text, Path(tmp) / "speech.wav", voice, speed)
        samples, sr = media.load_audio(wav, SR)
        track = script_track(samples, sr, text, voice, language)
        opts = replace(opts, speech_track=track, transcript=None, language=language, alignment=None)
        report = dub(source, wav, output, opts, progress=progress)
    return report, track
