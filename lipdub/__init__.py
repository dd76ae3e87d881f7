"""lipdub: audio-driven video dubbing on a CPU.

    import lipdub
    lipdub.dub("speaker.mp4", "new_speech.wav", "dubbed.mp4", transcript="...", language="en")
"""

from lipdub.core import VERSION as __version__
from lipdub.errors import DependencyError, InputError, LipdubError, OutputError, ParameterError
from lipdub.pipeline import DubOptions, DubReport
from lipdub.pipeline import dub as _run


def dub(video, audio, output, progress=None, **options) -> DubReport:
    """Dub `video` (or a photo) with `audio` into `output`; options as in `lipdub dub --help`
    (transcript, language, length, strength, face_index, face_box, speaker, crf, preset, repeatable, cache, profile).
    Returns a DubReport."""
    try:
        opts = DubOptions(**options)
    except TypeError as exc:
        raise ParameterError(f"unknown option for lipdub.dub: {exc}") from None
    return _run(video, audio, output, opts, progress=progress)


__all__ = ["dub", "DubOptions", "DubReport", "LipdubError", "ParameterError", "InputError", "OutputError",
           "DependencyError", "__version__"]
