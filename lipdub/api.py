"""Python API: `lipdub.dub(video, audio, output, **options)`."""

from __future__ import annotations

from .errors import ParameterError


def dub(video, audio, output, progress=None, **options):
    """Dub `video` (or a photo) with `audio` into `output`; options as in `lipdub dub --help`
    (transcript, language, length, strength, face_index, face_box, speaker, crf, preset, repeatable, cache, profile).
    Returns a DubReport."""
    from .pipeline import DubOptions, dub as run

    try:
        opts = DubOptions(**options)
    except TypeError as exc:
        raise ParameterError(f"unknown option for lipdub.dub: {exc}") from None
    return run(video, audio, output, opts, progress=progress)
