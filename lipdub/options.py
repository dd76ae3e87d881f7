"""Dub options: what a dub can be asked to do, and the checks every value passes before any work starts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipdub import face, media, speech
from lipdub.errors import ParameterError
from lipdub.motion import expression


LENGTH_POLICIES = ("audio", "video", "loop", "pingpong", "pad")


@dataclass
class DubOptions:
    transcript: str | None = None
    language: str | None = None
    length: str = "audio"
    strength: float = 1.0
    face_index: int | None = None
    face_box: tuple[float, float, float, float] | None = None
    speaker: str = "largest"  # "largest" persistent face, or "auto": the face whose mouth moves with the video's sound
    crf: float = 16.0
    preset: str = "veryfast"
    repeatable: bool = False  # bit-repeatable encoding: the same inputs always give the same file (larger)
    resume: bool = False  # render in pieces kept beside the output, so a killed run continues where it stopped
    piece_seconds: float = 10.0  # length of those pieces
    pieces: str | None = None  # "I/N" (scale-out): render only pieces I, I+N, I+2N…; a final resume run joins them
    cache: bool = True
    alignment: str | None = None  # a saved SpeechTrack JSON to use instead of analysing the audio
    save_alignment: str | None = None  # where to write the speech analysis for reuse
    profile: str | None = None  # an actor profile (`lipdub profile build`) to draw mouths and articulation from
    region: str = "lower"  # lips | lower (lips, jaw, chin) | face (+ eyes, brows, cheeks) | head (+ head motion)
    emotion: str = "neutral"  # neutral | happy | sad | angry | surprised
    emotion_strength: float = 1.0
    speech_track: "speech.SpeechTrack | None" = None  # an analysis in memory (`lipdub say`): used like `alignment`

    def validate(self) -> None:
        """Every option checked before any work starts (a bad value must not cost a face track first)."""
        if self.length not in LENGTH_POLICIES:
            raise ParameterError(f"--length must be one of {', '.join(LENGTH_POLICIES)}, got {self.length!r}")
        if not 0 <= _number(self.crf, "--crf") <= 51:
            raise ParameterError(f"--crf must be between 0 (lossless) and 51, got {self.crf}")
        if not 0 <= _number(self.strength, "--strength") <= 3:
            raise ParameterError(f"--strength must be between 0 and 3 (1 = natural), got {self.strength}")
        if self.preset not in media.X264_PRESETS:
            raise ParameterError(f"unknown --preset {self.preset!r}; use one of: {', '.join(media.X264_PRESETS)}")
        if self.face_index is not None and (isinstance(self.face_index, bool) or not isinstance(
                self.face_index, (int, np.integer)) or self.face_index < 0):
            raise ParameterError(f"--face-index must be 0 or more (0 = the largest face), got {self.face_index!r}")
        if self.face_box is not None:
            try:
                box = [float(v) for v in self.face_box]
            except (TypeError, ValueError):
                box = []
            if len(box) != 4 or not np.isfinite(box).all() or min(box[2:]) <= 0:
                raise ParameterError("--face-box must be x,y,w,h in pixels with positive width and height")
        expression.check(self.region, self.emotion, self.emotion_strength)
        if self.pieces is not None:
            try:
                i, n = (int(v) for v in str(self.pieces).split("/"))
                ok = 0 <= i < n
            except ValueError:
                ok = False
            if not ok:
                raise ParameterError(f"pieces must be 'I/N' with 0 <= I < N, got {self.pieces!r}")
        if not 0.5 <= _number(self.piece_seconds, "piece_seconds") <= 3600:
            raise ParameterError(f"piece_seconds must be between 0.5 and 3600, got {self.piece_seconds}")
        if self.speaker not in face.SPEAKER_MODES:
            raise ParameterError(f"--speaker must be one of {', '.join(face.SPEAKER_MODES)}, got {self.speaker!r}")
        if self.speaker == "auto" and (self.face_index is not None or self.face_box is not None):
            raise ParameterError("--speaker auto chooses the face itself: leave out --face-index and --face-box "
                                 "(or use them with --speaker largest)")
        if self.speech_track is not None and not isinstance(self.speech_track, speech.SpeechTrack):
            raise ParameterError("speech_track must be a lipdub.speech.SpeechTrack, got "
                                 f"{type(self.speech_track).__name__}")
        if self.speech_track is not None and self.alignment:
            raise ParameterError("give either a speech track or --alignment, not both")
        for name in ("transcript", "language"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ParameterError(f"--{name} must be text, got {type(getattr(self, name)).__name__}")


def _number(value, option: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{option} must be a number, got {value!r}") from None
