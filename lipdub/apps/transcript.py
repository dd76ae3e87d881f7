"""--transcript (and `lipdub say`'s TEXT) take the text itself or the path of a text file."""

from __future__ import annotations

from pathlib import Path

from lipdub.errors import InputError


def read_transcript(value: str | None) -> str | None:
    """--transcript takes the text itself or the path of a text file."""
    if value is None:
        return None
    p = Path(value)
    try:
        if len(value) < 4096 and p.suffix.lower() in (".txt", ".lab", ".srt", "") and p.is_file():
            return p.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:  # a file we may not read, a name too long for the file system: say so
        if p.is_file():
            raise InputError(f"cannot read the transcript file {p} ({exc.strerror}); "
                             "check its permissions or pass the text itself") from None
    return value
