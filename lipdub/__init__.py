"""lipdub: audio-driven video dubbing on a CPU.

    import lipdub
    lipdub.dub("speaker.mp4", "new_speech.wav", "dubbed.mp4", transcript="...", language="en")

The public API: `dub` and `say` (dub options as keywords: lipdub.options.DUB_OPTIONS), `DubOptions`, `DubReport`,
`LiveDubber` (a stream dubbed as it arrives), `run_batch` (a CSV of dubs), `load_profile` / `build_profile` (actor
profiles), the error classes and `__version__`. The names load on first use, so `import lipdub` stays light; the
stages (lipdub.media, lipdub.render…) load the same way.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from lipdub.core import VERSION as __version__
from lipdub.errors import DependencyError, InputError, LipdubError, OutputError, ParameterError

if TYPE_CHECKING:
    from lipdub.apps.api import dub, say
    from lipdub.apps.batch import run_batch
    from lipdub.options import DubOptions
    from lipdub.pipeline import DubReport
    from lipdub.pipeline.live import LiveDubber
    from lipdub.profile import build as build_profile, load as load_profile

_LAZY = {"dub": ("lipdub.apps.api", "dub"), "say": ("lipdub.apps.api", "say"),
         "DubOptions": ("lipdub.options", "DubOptions"), "DubReport": ("lipdub.pipeline", "DubReport"),
         "LiveDubber": ("lipdub.pipeline.live", "LiveDubber"), "run_batch": ("lipdub.apps.batch", "run_batch"),
         "load_profile": ("lipdub.profile", "load"), "build_profile": ("lipdub.profile", "build")}


def __getattr__(name: str):
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = globals()[name] = getattr(importlib.import_module(module), attribute)
        return value
    if not name.startswith("_"):  # a stage: lipdub.media, lipdub.render…
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = ["dub", "say", "DubOptions", "DubReport", "LiveDubber", "run_batch", "load_profile", "build_profile",
           "LipdubError", "ParameterError", "InputError", "OutputError", "DependencyError", "__version__"]
