"""The dataset manifest: which clips the shipped motion models were trained on (speaker ids, licences, sha256) and
the cross-dub evaluation cases, read from training/dataset.json. Every training and evaluation script takes its clips
from here.

The clips themselves are not in the repository (most are third-party footage): they live in the data root,
$LIPDUB_DATA, by default ../shared/data beside the checkout, described by its MANIFEST.md.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lipdub.errors import InputError

DATASET = Path(__file__).resolve().parent / "dataset.json"
REPO = Path(__file__).resolve().parents[1]
# leave-one-speaker-out models (python -m training.train_motion [--causal]): <speaker>.npz, never shipped
HELD_OUT_DIR = Path.home() / ".cache" / "lipdub" / "motion_loso"
HELD_OUT_CAUSAL_DIR = Path.home() / ".cache" / "lipdub" / "motion_loso_causal"


def data_root() -> Path:
    """$LIPDUB_DATA, or ../shared/data beside the checkout."""
    return Path(os.environ.get("LIPDUB_DATA") or REPO.parent / "shared" / "data")


@dataclass(frozen=True)
class Clip:
    name: str
    path: str  # relative to the data root
    range: tuple[float, float] | None  # seconds of the file used; None: all of it
    speaker: str  # hold-out group: clips of one speaker (or one corpus) are held out together
    sha256: str
    licence: str
    source: str  # repository:path@commit it was taken from
    filmed: bool  # False: audio only (the live phone classifier's material)
    audio: str | None = None  # a paired sound file beside a video without an audio track (None: the file's own)
    language: str = "en"
    marginal: bool = False  # MANIFEST.md marks it low-confidence (short, head turned, ...)
    permissive: str | None = None  # the footage's own permissive terms (dataset.json); None: research-only

    @property
    def audio_path(self) -> str:
        """The file whose sound is this clip's speech (relative to the data root)."""
        return self.audio or self.path


@dataclass(frozen=True)
class Case:
    """A cross-dub evaluation case: dub `video` with `audio_clip`'s audio; the clip's own filmed mouth is the truth."""

    name: str
    video: str  # relative to the data root
    audio_clip: str
    video_range: tuple[float, float] | None = None  # seconds; None = whole file
    clip_range: tuple[float, float] | None = None


@lru_cache(maxsize=1)
def _document() -> dict:
    return json.loads(DATASET.read_text(encoding="utf-8"))


def _range(value) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


def _clips(key: str, filmed: bool) -> list[Clip]:
    doc = _document()
    return [Clip(c["name"], c["path"], _range(c["range"]), c["speaker"], doc["files"][c["path"]]["sha256"],
                 doc["files"][c["path"]]["licence"], doc["files"][c["path"]]["source"], filmed, c.get("audio"),
                 c.get("language", "en"), bool(c.get("marginal", False)), doc["files"][c["path"]].get("permissive"))
            for c in doc[key]]


def filmed_clips() -> list[Clip]:
    """Talking clips whose own audio and filmed mouth train the opening models, in training order."""
    return _clips("filmed", True)


def audio_clips() -> list[Clip]:
    """Audio-only clips the live phone classifier also learns from, in training order."""
    return _clips("audio_only", False)


# What a model may learn from: every clip, the permissively licensed ones, or the 14 filmed clips of video/ (the
# shipped live model's: held out, the live recipe on all clips scored lower, see training/train_causal.py)
SOURCES = ("all", "permissive", "video")


def heldout_dir(sources: str = "all") -> Path:
    """Where the leave-one-speaker-out offline models of a --sources recipe go (the permissive ones beside, never
    over, the others)."""
    return HELD_OUT_DIR if sources == "all" else HELD_OUT_DIR.with_name(f"{HELD_OUT_DIR.name}_{sources}")


def training_clips(kind: str, sources: str = "all") -> list[Clip]:
    """The clips a model of `kind` ("opening": the offline model, "causal": the live one) learns from, in training
    order: the filmed clips (the live model: the audio-only clips too); with sources="permissive" only clips whose
    footage (and paired sound) is permissively licensed; with "video" only the filmed clips of video/."""
    if sources not in SOURCES:
        raise ValueError(f"sources must be one of {SOURCES}, got {sources!r}")
    clips = filmed_clips() + (audio_clips() if kind == "causal" else [])
    if sources == "permissive":
        return [c for c in clips if c.permissive and files()[c.audio_path].get("permissive")]
    if sources == "video":
        return [c for c in clips if not c.filmed or c.path.startswith("video/")]
    return clips


def eval_cases() -> dict[str, Case]:
    return {c["name"]: Case(c["name"], c["video"], c["audio_clip"], _range(c["video_range"]), _range(c["clip_range"]))
            for c in _document()["eval_cases"]}


def files() -> dict[str, dict]:
    """Every file the manifest names: path → sha256, licence, source."""
    return dict(_document()["files"])


def speaker_of(path: str) -> str:
    """The hold-out group of a filmed file (evaluation truth clips are filmed clips)."""
    for clip in filmed_clips():
        if clip.path == path:
            return clip.speaker
    raise KeyError(f"{path} is not a filmed clip of training/dataset.json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def require_data(root: Path | None = None, paths=None) -> Path:
    """The data root, after checking the named files (default: all the manifest's) are there with their sha256;
    InputError saying what is missing otherwise. Training and evaluation need a checkout with the data beside it."""
    root = Path(root) if root is not None else data_root()
    wanted = files() if paths is None else {p: files()[p] for p in paths}
    missing = [p for p in wanted if not (root / p).is_file()]
    if missing:
        raise InputError(f"training and evaluation need the shared clips: {len(missing)} of {len(wanted)} are missing "
                         f"under {root} (e.g. {missing[0]}); set $LIPDUB_DATA or pass --data to the data folder")
    changed = [p for p, meta in wanted.items() if file_sha256(root / p) != meta["sha256"]]
    if changed:
        raise InputError(f"{', '.join(changed)} under {root} differ from training/dataset.json (sha256): not the clips "
                         "the models were trained on")
    return root
