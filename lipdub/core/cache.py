"""The one cache: face tracks, mouth atlases, evaluation truth; files under $LIPDUB_CACHE (default
~/.cache/lipdub), keyed by the input file's identity (path, size, modification time) and the options that shape them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("LIPDUB_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"),
                                                         "lipdub")
    return Path(base)


def cache_key(path: str | Path, version: int, /, **options) -> str:
    """A short key of the file at `path` as it is now, the `version` of what is cached and the `options`."""
    p = Path(path).resolve()
    st = p.stat()
    text = f"{p}|{st.st_size}|{st.st_mtime_ns}|v{version}|{sorted(options.items())}"
    return hashlib.sha1(text.encode()).hexdigest()[:20]
