"""The one progress protocol: a long stage reports `progress(stage, done, total)` ("track", 120, 500); the CLI shows
bars, the web app streams events, tests count calls. total 0 means unknown (a live stream)."""

from typing import Callable

Progress = Callable[[str, int, int], None]  # (stage, done, total)
