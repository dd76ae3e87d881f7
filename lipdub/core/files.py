"""The one way lipdub writes a file: into a temporary file beside the target, renamed over it only once complete.

A reader (or a crash, Ctrl-C, a full disk) never sees a half-written output, and the input a user names as output is
never touched until the new file is whole."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


def publish(tmp: str | Path, path: str | Path) -> None:
    """Move a finished temporary file into place with ordinary permissions (mkstemp creates it 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """A fresh temporary path in `path`'s folder, `.STEM.XXXXXXXX.SUFFIX` (the suffix `suffix` when given), the names
    media.VideoWriter's temporaries have too, so one rule finds what a killed run left (apps.batch); when the block
    ends without an error it replaces `path`, else it is removed."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix if suffix is None else suffix,
                               dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        publish(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_atomically(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary path, then move it over `path`; returns `path`."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data, indent: int | None = 1) -> Path:
    return write_text(path, json.dumps(data, indent=indent, default=str))
