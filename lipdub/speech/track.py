"""The speech stage's output: phones plus frame-wise voice activity, jaw opening, loudness, log-mel, phone-class
posteriors and token components, saved as JSON."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lipdub.errors import InputError
from lipdub.speech.posteriors import N_COLUMNS
from lipdub.speech.tokens import N_COMPONENTS

FORMAT = "lipdub-speech"
# 2: with `posteriors`, 3: with `components` (older files load without them), 4: `mel`, `posteriors` and
# `components` packed (pack_rows; older files' lists of numbers still load)
VERSION = 4
METHODS = ("forced-alignment", "forced-alignment-espeak", "hama+align", "allphone", "acoustic-only")


PACKED = "float16"  # the packed columns' type: 3 significant digits, finer than the 2 decimals lists were rounded to
F16_MAX = float(np.finfo(np.float16).max)


def pack_rows(rows: np.ndarray) -> dict:
    """(N, K) numbers as {"dtype", "shape", "data": base64 of little-endian float16}: an hour's components (11.5 M
    numbers) as a JSON list took ~370 MB of Python floats to write and as many to read, ~30 MB so."""
    rows = np.clip(np.asarray(rows, np.float32), -F16_MAX, F16_MAX)  # (past it float16 holds only infinity)
    data = rows.astype("<f2").tobytes()
    return {"dtype": PACKED, "shape": list(rows.shape), "data": base64.b64encode(data).decode("ascii")}


def unpack_rows(value, columns: int | None = None) -> np.ndarray:
    """float32 rows from pack_rows' dict or a list of rows (files before version 4; [] is (0, columns) given
    `columns`)."""
    if isinstance(value, dict):
        shape = value.get("shape")
        if value.get("dtype") != PACKED or not isinstance(shape, list) or len(shape) != 2:
            raise ValueError(f"packed rows must be {PACKED} of a 2-D shape, got {value.get('dtype')!r} {shape!r}")
        data = base64.b64decode(value.get("data", ""), validate=True)
        n, k = (int(v) for v in shape)
        if n < 0 or k < 0 or len(data) != 2 * n * k:
            raise ValueError(f"packed rows of shape {shape} hold {len(data)} bytes")
        return np.frombuffer(data, "<f2").reshape(n, k).astype(np.float32)
    out = np.asarray(value, np.float32)
    return out.reshape(0, columns) if out.size == 0 and columns is not None else out


@dataclass
class Phone:
    label: str  # ARPAbet without stress, upper case (AA, B, M, ...); SIL for silence and pauses
    start: float  # seconds, corrected for the aligner's known bias
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class SpeechTrack:
    duration: float
    hop: float  # seconds between frames; frame i covers [i·hop, (i+1)·hop)
    voiced: np.ndarray  # (N,) bool speech activity
    jaw: np.ndarray  # (N,) float32 acoustic jaw opening in [0, 1], 0 outside speech
    loudness: np.ndarray  # (N,) float32 loudness (dB scale) normalised to [0, 1] over the clip
    phones: list[Phone] = field(default_factory=list)  # covers [0, duration] with SIL in pauses; [] if unrecognised
    method: str = "acoustic-only"
    language: str | None = None
    mel: np.ndarray | None = None  # (N, 26) standardised log-mel energies for the learned mouth model
    # (N, 13) hama's phone-class posteriors per hop (speech.posteriors); None: not computed (hama failed, or a
    # version 1 file). The offline model trained with them needs them
    posteriors: np.ndarray | None = None
    # (N, 32) hama's whole token distribution per hop, projected on the shipped axes (speech.tokens); None: not
    # computed (hama or the axes failed, or an older file). The offline model trained with them needs them
    components: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return int(self.voiced.size)

    def times(self) -> np.ndarray:
        """Start time of each frame."""
        return np.arange(self.n_frames) * self.hop

    def phone_at(self, t: float) -> Phone | None:
        for p in self.phones:
            if p.start <= t < p.end:
                return p
        return None

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "duration": round(float(self.duration), 6),
            "hop": float(self.hop),
            "method": self.method,
            "language": self.language,
            "phones": [[p.label, round(float(p.start), 4), round(float(p.end), 4)] for p in self.phones],
            "voiced": "".join("1" if v else "0" for v in np.asarray(self.voiced, bool)),
            "jaw": [round(float(v), 4) for v in self.jaw],
            "loudness": [round(float(v), 4) for v in self.loudness],
            "mel": None if self.mel is None else pack_rows(self.mel),
            "posteriors": None if self.posteriors is None else pack_rows(self.posteriors),
            "components": None if self.components is None else pack_rows(self.components),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "SpeechTrack":
        if d.get("format") != FORMAT:
            raise InputError("not a lipdub speech track (missing \"format\": \"lipdub-speech\")")
        try:
            voiced = np.array([c == "1" for c in d["voiced"]], dtype=bool)
            jaw = np.asarray(d["jaw"], np.float32)
            loud = np.asarray(d["loudness"], np.float32)
            phones = [Phone(str(lab).upper(), float(s), float(e)) for lab, s, e in d.get("phones", [])]
            mel = None if d.get("mel") is None else unpack_rows(d["mel"])
            post = None if d.get("posteriors") is None else unpack_rows(d["posteriors"], N_COLUMNS)
            comp = None if d.get("components") is None else unpack_rows(d["components"], N_COMPONENTS)
            track = cls(float(d["duration"]), float(d["hop"]), voiced, jaw, loud, phones, str(d.get("method", "")),
                        d.get("language"), mel, post, comp)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"speech track is malformed ({exc}); re-run the analysis or fix the JSON") from exc
        if not (voiced.size == jaw.size == loud.size):
            raise InputError("speech track arrays 'voiced', 'jaw' and 'loudness' differ in length")
        if post is not None and post.shape != (voiced.size, N_COLUMNS):
            raise InputError("speech track's 'posteriors' are not one row per frame; re-run the analysis "
                             "(--save-alignment) or fix the JSON")
        if comp is not None and comp.shape != (voiced.size, N_COMPONENTS):
            raise InputError(f"speech track's 'components' are not {N_COMPONENTS} numbers per frame; re-run the "
                             "analysis (--save-alignment) or fix the JSON")
        if any(p.end < p.start for p in phones):
            raise InputError("speech track has a phone that ends before it starts")
        return track

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), separators=(",", ":")), encoding="utf-8")

    @classmethod
    def load(cls, path) -> "SpeechTrack":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise InputError(f"speech track {path} does not exist") from exc
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read speech track {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise InputError(f"{path} is not a lipdub speech track")
        return cls.from_dict(data)
