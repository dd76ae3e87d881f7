"""Process memory: hand freed C-heap memory back to the system between stages, and log what the process holds."""

from __future__ import annotations

import logging

log = logging.getLogger("lipdub")


_LIBC: list = []
# glibc's mallopt parameters, and the largest mmap threshold it accepts on 64-bit systems (half its 64 MB arena heaps)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MAX_MMAP_THRESHOLD = 32 << 20
HELD_FREE_BYTES = 256 << 20  # free memory an arena keeps at its top before handing it back (per arena)


def _libc():
    if not _LIBC:
        try:
            import ctypes

            _LIBC.append(ctypes.CDLL("libc.so.6"))
            _LIBC[0].malloc_trim, _LIBC[0].mallopt  # noqa: B018 (not glibc without them)
        except (OSError, AttributeError):  # not glibc
            _LIBC[:] = [None]
    return _LIBC[0]


def trim_heap() -> None:
    """Hand the C heap's free memory back to the system: glibc keeps what threads freed in their arenas (the speech
    analysis and tracking leave hundreds of MB there, rendering frame-sized buffers)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def keep_freed_frames() -> bool:
    """Let glibc reuse the frame-sized buffers a stream frees, instead of unmapping them and faulting fresh zeroed
    pages in for the next frame: blocks up to MAX_MMAP_THRESHOLD come from the arenas, which keep up to
    HELD_FREE_BYTES free. A live session allocates and frees several frame-sized arrays per frame on each of its
    threads; without this about a tenth of its CPU time was the kernel's (docs/RESULTS.md, Live mode). For the rest
    of the process (its memory stays at its peak; trim_heap still hands it back). False where the C library is not
    glibc (nothing changed)."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MAX_MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD,
                                                                                          HELD_FREE_BYTES))


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
