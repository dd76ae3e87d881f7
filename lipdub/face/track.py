"""FaceTrack, the speaker's face in every frame, and its storage: in RAM, or on disk for long videos; saved as .npz."""

from __future__ import annotations

import mmap
import tempfile
import threading
import time
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lipdub.core.cache import cache_key as core_cache_key
from lipdub.core.files import atomic_path

TRACK_VERSION = 4  # bump when tracking or smoothing changes so stale caches are ignored (4: exact YUV colour)


@dataclass
class FaceTrack:
    """The speaker's face in every frame of one video, in pixel coordinates of the displayed frame."""

    times: np.ndarray  # (T,) seconds
    landmarks: np.ndarray  # (T, 478, 3) float32: x, y in pixels; z in the same pixel scale
    valid: np.ndarray  # (T,) bool: the speaker's face was found
    width: int
    height: int
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)

    def save(self, path: str | Path) -> None:
        """An .npz file (np.load reads it); the landmarks are written in blocks, so a long track held on disk
        (landmark_array) is never loaded whole."""
        path = Path(path)
        lm = self.landmarks
        with atomic_path(path, suffix=".tmp.npz") as tmp, \
                zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, arr in (("times", self.times), ("valid", self.valid),
                              ("size", np.array([self.width, self.height])), ("version", np.array(TRACK_VERSION)),
                              ("meta", np.array(repr(self.meta)))):
                with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)
            with zf.open("landmarks.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(
                    np.dtype("<f4")), "fortran_order": False, "shape": tuple(lm.shape)})
                for a in range(0, len(lm), BLOCK):
                    fh.write(np.ascontiguousarray(lm[a:a + BLOCK], dtype="<f4").tobytes())
                    release_pages(lm)

    @classmethod
    def load(cls, path: str | Path) -> "FaceTrack":
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != TRACK_VERSION:
                raise ValueError("stale track version")
            w, h = (int(v) for v in z["size"])
            with z.zip.open("landmarks.npy") as fh:  # read in blocks into a landmark_array (on disk when long)
                version = np.lib.format.read_magic(fh)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(fh)
                if fortran or len(shape) != 3 or shape[1:] != (478, 3):
                    raise ValueError("unexpected landmark array")
                lm = landmark_array(shape[0])
                for a in range(0, shape[0], BLOCK):
                    b = min(shape[0], a + BLOCK)
                    lm[a:b] = np.frombuffer(fh.read((b - a) * 478 * 3 * dtype.itemsize), dtype).reshape(b - a, 478, 3)
                    release_pages(lm)
            return cls(z["times"], lm, z["valid"].astype(bool), w, h)


def cache_key(path: str | Path, **options) -> str:
    """The cache key of `path` for face tracks and what is cut along them (TRACK_VERSION keys them)."""
    return core_cache_key(path, TRACK_VERSION, **options)


# --------------------------------------------------------------------------------------------------- storage
# A track's landmarks take 478 x 3 x 4 bytes a frame: 516 MB for an hour at 25 fps. Longer tracks than RAM_BYTES are
# kept in a disk-backed array (a memory map of an unlinked temporary file): memory use then stays flat with the
# video's length. The kernel counts the pages a process touched in a file map as its resident memory until they are
# given back, so a background thread gives them back (madvise DONTNEED: the data stays in the file and the page cache)
# every RELEASE_SECONDS, and code that sweeps a whole track does so in BLOCKs and gives them back after each.

RAM_BYTES = 64 << 20  # landmark arrays up to this size stay in RAM (~11,700 frames, 7.8 min at 25 fps)
BLOCK = 2048  # frames per block in whole-track sweeps
RELEASE_SECONDS = 0.5


def landmark_array(n: int) -> np.ndarray:
    """A zeroed (n, 478, 3) float32 array: in RAM up to RAM_BYTES, else a memory map of an unlinked temporary
    file whose touched pages are given back to the system regularly (see above)."""
    if n * 478 * 3 * 4 <= RAM_BYTES:
        return np.zeros((n, 478, 3), np.float32)
    with tempfile.TemporaryFile(prefix="lipdub-landmarks-") as fh:  # the map keeps the data after the file closes
        arr = np.memmap(fh, dtype=np.float32, mode="w+", shape=(n, 478, 3))
    PageReleaser.watch(arr)
    return arr


def release_pages(arr) -> None:
    """Give back the resident pages of a disk-backed landmark array (no-op for arrays in RAM)."""
    mm = getattr(arr, "_mmap", None)
    if mm is not None:
        try:
            mm.madvise(mmap.MADV_DONTNEED)
        except (ValueError, OSError, AttributeError):  # closed, or no madvise on this platform
            pass


def take_rows(arr, rows) -> np.ndarray:
    """arr[rows] (a copy) for a sparse sample of frames: read a few at a time with the pages given back in between,
    since each read of a disk-backed array maps megabytes of the kernel's read-ahead around it (a sample spread over
    an hour's track maps all 540 MB of it in one fancy-indexing read)."""
    rows = np.asarray(rows, np.int64)
    if getattr(arr, "_mmap", None) is None:
        return arr[rows]
    out = np.empty((len(rows),) + arr.shape[1:], arr.dtype)
    for a in range(0, len(rows), 16):
        out[a:a + 16] = arr[rows[a:a + 16]]
        release_pages(arr)
    return out


class PageReleaser:
    """One daemon thread that calls release_pages on every live disk-backed landmark array twice a second."""

    _arrays: "list" = []
    _lock = threading.Lock()
    _thread = None

    @classmethod
    def watch(cls, arr: np.ndarray) -> None:
        with cls._lock:
            cls._arrays.append(weakref.ref(arr))
            if cls._thread is None:
                cls._thread = threading.Thread(target=cls._run, name="lipdub-pages", daemon=True)
                cls._thread.start()

    @classmethod
    def _run(cls) -> None:
        while True:
            time.sleep(RELEASE_SECONDS)
            with cls._lock:
                alive = [a for a in (r() for r in cls._arrays) if a is not None]
                cls._arrays[:] = [r for r in cls._arrays if r() is not None]
            for a in alive:
                release_pages(a)
            del alive
