"""The Python API behind `lipdub.dub` and `lipdub.say`: the dub options as keywords (see lipdub.options)."""

from __future__ import annotations

from lipdub import pipeline
from lipdub.apps import say as saying
from lipdub.errors import ParameterError
from lipdub.options import DubOptions
from lipdub.pipeline import DubReport
from lipdub.speech import SpeechTrack


def _options(function: str, options: dict) -> DubOptions:
    try:
        return DubOptions(**options)
    except TypeError as exc:
        raise ParameterError(f"unknown option for lipdub.{function}: {exc}") from None


def dub(video, audio, output, progress=None, **options) -> DubReport:
    """Dub `video` (or a photo) with `audio` into `output`; options as in `lipdub dub --help`
    (transcript, language, length, strength, face_index, face_box, speaker, crf, preset, repeatable, cache, profile).
    A conversation: `audio` a list of voices each bound to a face (`["a.wav@0", "b.wav@1"]`, or `@x,y,w,h`), or one
    mixed track with speakers="map.rttm", speaker_face=("spk0=0", "spk1=1"); mix="final.wav" for the output's sound.
    Returns a DubReport (its `voices` and, with length="fit", `retiming` say what was done)."""
    return pipeline.dub(video, audio, output, _options("dub", options), progress=progress)


def say(source, text: str, output, voice: str | None = None, language: str | None = None,
        speed: int = saying.SPEED, video=None, progress=None, **options) -> tuple[DubReport, SpeechTrack]:
    """Make the face in `source` (a video or photo; or an actor profile, then `video` is the shot) say `text`,
    synthesised offline by espeak-ng; dub options as keywords, as for `dub`. Returns (DubReport, SpeechTrack)."""
    return saying.say(source, text, output, voice=voice, language=language, speed=speed, video=video,
                      options=_options("say", options), progress=progress)
