"""Process memory: hand freed C-heap memory back to the system between stages, and log what the process holds."""

from __future__ import annotations

import logging

log = logging.getLogger("lipdub")


_LIBC: list = []


def trim_heap() -> None:
    """Hand the C heap's free memory back to the system: glibc keeps what threads freed in their arenas (the speech
    analysis and tracking leave hundreds of MB there, rendering frame-sized buffers)."""
    if not _LIBC:
        try:
            import ctypes

            _LIBC.append(ctypes.CDLL("libc.so.6").malloc_trim)
        except (OSError, AttributeError):  # not glibc
            _LIBC.append(None)
    if _LIBC[0] is not None:
        _LIBC[0](0)


def log_memory(stage: str) -> None:
    """After a stage: trim the heap (see trim_heap) and log the process's memory (debug)."""
    trim_heap()
    if not log.isEnabledFor(logging.DEBUG):
        return
    try:
        with open("/proc/self/status") as fh:
            vals = {k: int(v.split()[0]) // 1024 for k, v in (line.split(":", 1) for line in fh)
                    if k in ("VmRSS", "VmHWM")}
    except (OSError, ValueError):
        return
    log.debug("memory after %s: RSS %s MB, peak %s MB", stage, vals.get("VmRSS"), vals.get("VmHWM"))
