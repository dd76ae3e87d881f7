"""Dub options: what a dub can be asked to do, and the checks every value passes before any work starts.

`DUB_OPTIONS` is the one registry: each option is declared once here (name, type, default, choices or bounds, help,
check) and everything else reads it: `DubOptions` (its fields and `validate`), the command line (`add_arguments`,
`from_args`: `lipdub dub`, `say`, `live`, `visemes`), a batch CSV's options column, the web app's form and the job
reports, and the README's option table (`python -m lipdub.options --markdown`).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass, field, make_dataclass
from typing import Any, Callable

import numpy as np

from lipdub import face, media, motion, speech
from lipdub.errors import ParameterError
from lipdub.motion import expression

_AUTO = "auto"


@dataclass(frozen=True)
class Option:
    """One dub option. `flag` is its command-line spelling (None: the Python API only); `choices` or `bounds` are the
    values it takes; `message` is what a bad value is told ({value} is the value); `check` replaces the
    choices/bounds check where an option needs more."""

    name: str  # the DubOptions field and lipdub.dub keyword
    type: Any  # str, float, int, bool, or a description for the others
    default: Any
    help: str
    choices: tuple = ()
    bounds: tuple[float, float] | None = None
    message: str = ""
    flag: str | None = _AUTO  # "--" + name with dashes unless given
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None  # command-line text → value (default: `type`)
    check_value: Callable[[Any], None] | None = None
    repeat: bool = False  # the flag may be given several times; the value is a tuple of what each gave

    @property
    def cli(self) -> str | None:
        return "--" + self.name.replace("_", "-") if self.flag == _AUTO else self.flag

    @property
    def label(self) -> str:
        """How messages name it: the flag, or the Python keyword of an API-only option."""
        return self.cli or self.name

    def check(self, value) -> None:
        """Raise a ParameterError naming the option when `value` is not one it takes."""
        if self.check_value is not None:
            self.check_value(value)
            return
        if value is None and self.default is None:
            return
        if self.choices:
            if value not in self.choices:
                raise ParameterError(self.message.format(value=value, choices=", ".join(self.choices)))
        elif self.bounds is not None:
            lo, hi = self.bounds
            if not lo <= _number(value, self.label) <= hi:
                raise ParameterError(self.message.format(value=value))
        elif self.type is bool:
            if not (isinstance(value, (bool, np.bool_, int, np.integer)) and value in (0, 1)):
                raise ParameterError(f"{self.label} is on or off (True or False), got {value!r}")
        elif self.type is str:
            if not isinstance(value, str):
                raise ParameterError(f"{self.label} must be text, got {type(value).__name__}")


def _number(value, option: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{option} must be a number, got {value!r}") from None


def _face_box(text: str) -> tuple[float, float, float, float]:
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4:
        raise argparse.ArgumentTypeError("expected x,y,w,h in pixels, e.g. 420,80,300,300")
    return parts  # type: ignore[return-value]


def _check_face_index(value) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0):
        raise ParameterError(f"--face-index must be 0 or more (0 = the largest face), got {value!r}")


def _check_face_box(value) -> None:
    if value is None:
        return
    try:
        box = [float(v) for v in value]
    except (TypeError, ValueError):
        box = []
    if len(box) != 4 or not np.isfinite(box).all() or min(box[2:]) <= 0:
        raise ParameterError("--face-box must be x,y,w,h in pixels with positive width and height")


def parse_binding(text: str) -> int | tuple[float, float, float, float]:
    """A face binding: `N` (a face index, as --face-index) or `x,y,w,h` (a box in displayed-frame pixels); a
    ParameterError saying both forms otherwise."""
    text = str(text).strip()
    try:
        if "," not in text:
            index = int(text)
            if index >= 0:
                return index
        else:
            box = tuple(float(v) for v in text.split(","))
            if len(box) == 4 and np.isfinite(box).all() and min(box[2:]) > 0:
                return box  # type: ignore[return-value]
    except ValueError:
        pass
    raise ParameterError(f"a face binding is N (a face index, 0 = the largest persistent face) or x,y,w,h (a box "
                         f"in pixels of the displayed frame), got {text!r}")


def split_voice(text) -> tuple[str, int | tuple[float, float, float, float] | None]:
    """`voice.wav@N` or `voice.wav@x,y,w,h` → (path, binding); a plain path (an existing file whose name holds
    an @ included) → (path, None)."""
    text = os.fspath(text)
    path, at, binding = text.rpartition("@")
    if not at or os.path.exists(text) or not re.fullmatch(r"[-+0-9.,\s]+", binding):
        return text, None
    return path, parse_binding(binding)


def _speaker_face(text: str) -> str:
    label, eq, binding = str(text).partition("=")
    if not eq or not label.strip():
        raise argparse.ArgumentTypeError("expected LABEL=N, e.g. spk0=1 (the RTTM label and a face index)")
    try:
        parse_binding(binding)
    except ParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return f"{label.strip()}={binding.strip()}"


def _check_speaker_face(value) -> None:
    if value is None:
        return
    if isinstance(value, (str, bytes)) or not all(isinstance(v, str) for v in value):
        raise ParameterError("--speaker-face takes LABEL=N bindings (a list of such strings in Python)")
    labels = []
    for v in value:
        label, eq, binding = v.partition("=")
        if not eq or not label.strip():
            raise ParameterError(f"--speaker-face takes LABEL=N (the RTTM label and a face index), got {v!r}")
        parse_binding(binding)
        labels.append(label.strip())
    if len(set(labels)) < len(labels):
        raise ParameterError(f"--speaker-face binds a label twice ({', '.join(labels)}); give each label once")


def speaker_faces(value) -> dict[str, int | tuple[float, float, float, float]]:
    """--speaker-face's LABEL=N bindings as {label: binding}."""
    out = {}
    for v in value or ():
        label, _, binding = v.partition("=")
        out[label.strip()] = parse_binding(binding)
    return out


def _check_pieces(value) -> None:
    if value is None:
        return
    try:
        i, n = (int(v) for v in str(value).split("/"))
        ok = 0 <= i < n
    except ValueError:
        ok = False
    if not ok:
        raise ParameterError(f"pieces must be 'I/N' with 0 <= I < N, got {value!r}")


MAX_SIZE_RANGE = (64, 16384)  # a photo's long side: --max-size N (0: the photo's own size)


def _check_max_size(value) -> None:
    lo, hi = MAX_SIZE_RANGE
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or \
            not (value == 0 or lo <= value <= hi):
        raise ParameterError(f"--max-size must be 0 (keep the photo's own size) or a whole number of pixels from "
                             f"{lo} to {hi}, got {value!r}")


def _check_path(label: str) -> Callable[[Any], None]:
    def check(value) -> None:
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise ParameterError(f"{label} must be a file path, got {type(value).__name__}")
    return check


def _check_speech_track(value) -> None:
    if value is not None and not isinstance(value, speech.SpeechTrack):
        raise ParameterError(f"speech_track must be a lipdub.speech.SpeechTrack, got {type(value).__name__}")


# In the order of `lipdub dub --help`.
DUB_OPTIONS: tuple[Option, ...] = (
    Option("transcript", str, None, "what the new audio says (text, or a .txt file): enables forced alignment"),
    Option("language", str, None, "language of the new audio, e.g. en, es, fr, de, ko (default: English)"),
    Option("length", str, "audio",
           "output length: audio (default: as long as the audio, video played back and forth), "
           "video, loop, pingpong, pad (hold the last frame), fit (new phrases where the original's were: "
           "pauses absorb the difference)",
           choices=media.POLICIES, message="--length must be one of {choices}, got {value!r}"),
    Option("strength", float, 1.0, "articulation strength, 0..3 (default 1)",
           bounds=motion.STRENGTH_RANGE, check_value=motion.check_strength),
    Option("motion_model", str, motion.MODEL_CHOICES[0],
           "research (default: learned from 60 filmed speakers, the better sync; mostly non-commercial research "
           "footage) or permissive (learned from CC BY 4.0 footage only, for commercial use; weaker sync)",
           choices=motion.MODEL_CHOICES, message="--motion-model must be one of {choices}, got {value!r}"),
    Option("face_index", int, None, "which face to dub: 0 = largest persistent face (default)",
           check_value=_check_face_index),
    Option("face_box", "x,y,w,h", None, "dub the face inside x,y,w,h (pixels of the displayed frame)",
           parse=_face_box, check_value=_check_face_box),
    Option("speaker", str, "largest",
           "which face speaks when there are several: largest (default: the largest persistent face) "
           "or auto (the face whose mouth moves with the video's own sound)",
           choices=face.SPEAKER_MODES, message="--speaker must be one of {choices}, got {value!r}"),
    Option("speakers", str, None,
           "one mixed AUDIO track and who speaks when in it (an RTTM speaker map, as diarisation tools write): "
           "each label's turns drive the face --speaker-face binds it to", metavar="MAP.rttm",
           check_value=_check_path("--speakers")),
    Option("speaker_face", "LABEL=N", None,
           "with --speakers: the face a label's voice drives, N as --face-index or x,y,w,h (repeat per label)",
           metavar="LABEL=N", parse=_speaker_face, check_value=_check_speaker_face, repeat=True),
    Option("mix", str, None,
           "several voices: the finished sound track of the output (e.g. with music and effects) instead of "
           "the voices' own mix", metavar="FILE", check_value=_check_path("--mix")),
    Option("max_size", int, 1920,
           "photos: the output's long side at most N pixels, even sizes (default 1920; 0 keeps the photo's own "
           "size); videos keep their size",
           bounds=(0, MAX_SIZE_RANGE[1]), check_value=_check_max_size, metavar="N"),
    Option("crf", float, 16.0, "H.264 quality, lower is better (default 16)",
           bounds=(0, 51), message="--crf must be between 0 (lossless) and 51, got {value}"),
    Option("preset", str, "veryfast",
           "x264 preset (default veryfast, lightened: no 8x8 partitions in B-frames, diamond motion search; the "
           "others as x264 defines them)",
           choices=media.X264_PRESETS, message="unknown --preset {value!r}; use one of: {choices}"),
    Option("repeatable", bool, False,
           "bit-repeatable encoding: the same inputs always give the same file (about 1.5x larger)"),
    Option("resume", bool, False,
           "render in pieces kept beside the output; after a crash or Ctrl-C the same command continues where "
           "it stopped (the result equals an uninterrupted run)"),
    Option("piece_seconds", float, 10.0, "length of the --resume pieces, seconds",
           bounds=(0.5, 3600), message="piece_seconds must be between 0.5 and 3600, got {value}", flag=None),
    Option("pieces", "I/N", None, "scale-out: render only pieces I, I+N, I+2N…; a final resume run joins them",
           check_value=_check_pieces, flag=None),
    Option("cache", bool, True, "do not read or write the face-track cache", flag="--no-cache"),
    Option("frames_sha256", bool, False,
           "report the SHA-256 of the rendered frames before encoding (the same frames give the same digest "
           "wherever the dub runs; ~0.8 ms of CPU per 720p frame, so off unless asked)"),
    Option("save_alignment", str, None,
           "write the speech analysis (phones with times, voicing, jaw) for reuse or editing",
           metavar="FILE.json", check_value=_check_path("--save-alignment")),
    Option("alignment", str, None,
           "use a saved (possibly edited) speech analysis instead of analysing AUDIO again",
           metavar="FILE.json", check_value=_check_path("--alignment")),
    Option("region", str, "lower",
           "what moves: lips; lower (lips, jaw, chin: default); face (+ eyes and brows: blinks, brow "
           "raises, cheeks); head (+ head motion driven by the speech: photos and static shots)",
           choices=expression.REGIONS, message="--region must be one of {choices}, got {value!r}"),
    Option("emotion", str, "neutral",
           "a steady emotion: mouth corners, cheeks, brows and eyes (eyes and brows need --region face or head)",
           choices=expression.EMOTIONS, message="--emotion must be one of {choices}, got {value!r}"),
    Option("emotion_strength", float, 1.0, "0..2 (default 1)",
           bounds=(0, 2), message="--emotion-strength must be between 0 and 2 (1 = clear), got {value!r}"),
    Option("profile", str, None,
           "an actor profile (lipdub profile build): mouths and articulation from the actor's footage",
           metavar="ACTOR.lipdub", check_value=_check_path("--profile")),
    Option("speech_track", "SpeechTrack", None,
           "a speech analysis in memory (as `lipdub say` makes): used like --alignment",
           check_value=_check_speech_track, flag=None),
)
OPTIONS: dict[str, Option] = {o.name: o for o in DUB_OPTIONS}


def check(name: str, value) -> None:
    """Check one option's value (ParameterError naming the option when it is not one the option takes)."""
    OPTIONS[name].check(value)


def _validate(self) -> None:
    """Every option checked before any work starts (a bad value must not cost a face track first)."""
    for option in DUB_OPTIONS:
        option.check(getattr(self, option.name))
    if self.speaker == "auto" and (self.face_index is not None or self.face_box is not None):
        raise ParameterError("--speaker auto chooses the face itself: leave out --face-index and --face-box "
                             "(or use them with --speaker largest)")
    if (self.speakers is None) != (not self.speaker_face):
        raise ParameterError("--speakers MAP.rttm and --speaker-face LABEL=N go together: bind each RTTM label "
                             "to a face")
    if self.speech_track is not None and self.alignment:
        raise ParameterError("give either a speech track or --alignment, not both")


def _annotation(option: Option) -> str:
    kind = option.type.__name__ if isinstance(option.type, type) else "Any"
    return kind if option.default is not None else f"{kind} | None"


# The dataclass of the registry's options, in its order, with its defaults.
DubOptions = make_dataclass(
    "DubOptions", [(o.name, _annotation(o), field(default=o.default)) for o in DUB_OPTIONS],
    namespace={"validate": _validate,
               "__doc__": "What a dub is asked to do: one field per option of lipdub.options.DUB_OPTIONS (whose "
                          "help says what each does), with its default. `validate()` checks them all."})
DubOptions.__module__ = __name__  # pickles and prints as lipdub.options.DubOptions


# ------------------------------------------------------------------------------------------------- command line


def add_argument(parser: argparse.ArgumentParser, name: str, **overrides) -> None:
    """Add one registry option to an argparse parser (dest = the option's name); `overrides` change argparse
    settings where a command differs (e.g. `lipdub live`'s own defaults)."""
    option = OPTIONS[name]
    if option.cli is None:
        raise ValueError(f"{name} is not a command-line option")
    kw: dict[str, Any] = {"dest": option.name, "help": option.help}
    if option.repeat:
        kw["action"] = "append"
    if option.type is bool:
        kw["action"] = "store_false" if option.default else "store_true"
    else:
        if option.default is not None:
            kw["default"] = option.default
        if option.choices and option.name != "preset":  # the preset's long list is named by its own message
            kw["choices"] = list(option.choices)
        parse = option.parse or (option.type if option.type in (int, float) else None)
        if parse is not None:
            kw["type"] = parse
        if option.metavar:
            kw["metavar"] = option.metavar
    kw.update(overrides)
    parser.add_argument(option.cli, **kw)


def add_arguments(parser: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """The command-line options of a dub (`lipdub dub`, a batch CSV's options column); `exclude` names some to
    leave out."""
    for option in DUB_OPTIONS:
        if option.cli is not None and option.name not in exclude:
            add_argument(parser, option.name)


def cli_options() -> tuple[Option, ...]:
    return tuple(o for o in DUB_OPTIONS if o.cli is not None)


def from_args(args: argparse.Namespace, **overrides):
    """DubOptions from what `add_arguments` parsed (options a parser left out keep their defaults)."""
    values = {o.name: getattr(args, o.name) for o in cli_options() if hasattr(args, o.name)}
    for o in cli_options():  # repeated flags arrive as argparse's list
        if o.repeat and isinstance(values.get(o.name), list):
            values[o.name] = tuple(values[o.name])
    values.update(overrides)
    return DubOptions(**values)


def report(opts, names=None) -> dict:
    """Options as plain JSON values (for job reports): `names`, or every option but an in-memory speech track."""
    out = {}
    for name in names or [o.name for o in DUB_OPTIONS if o.name != "speech_track"]:
        value = getattr(opts, name)
        out[name] = [float(v) for v in value] if name == "face_box" and value is not None else \
            list(value) if OPTIONS[name].repeat and value is not None else value
    return out


# ------------------------------------------------------------------------------------------------------- README


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


def markdown_table() -> str:
    """The README's option table: every option, its default, its values and what it does."""
    rows = ["| option | default | choices | what it does |", "|---|---|---|---|"]
    for o in DUB_OPTIONS:
        if o.cli is not None:
            name = f"`{o.cli}`" if o.type is bool else f"`{o.cli} {o.metavar or o.name.upper()}`"
        else:
            name = f"`{o.name}=` (Python API)"
        if o.type is bool and o.cli is not None:
            default = "off"
        else:
            default = "—" if o.default is None else f"`{o.default:g}`" if isinstance(o.default, float) else \
                f"`{o.default}`"
        if o.choices:
            values = ", ".join(o.choices)
        elif o.bounds is not None:
            values = f"{o.bounds[0]:g} … {o.bounds[1]:g}"
        else:
            values = ""
        rows.append(f"| {_cell(name)} | {_cell(default)} | {_cell(values)} | {_cell(o.help)} |")
    return "\n".join(rows) + "\n"


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m lipdub.options", description="The dub option registry.")
    parser.add_argument("--markdown", action="store_true", help="print the README's option table")
    args = parser.parse_args(argv)
    if args.markdown:
        sys.stdout.write(markdown_table())
    else:
        for o in DUB_OPTIONS:
            print(f"{o.label}: {o.default!r}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
