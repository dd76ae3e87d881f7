"""atlas: the appearance source of rendering, pose-normalised lower-face crops of real frames, and how it is filled.

An atlas is the clip's own (filled from the video while dubbing) or an actor profile's (saved inside the profile)."""

from __future__ import annotations

import os
import struct
import threading
import zipfile
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from lipdub import face, media
from lipdub.core.files import atomic_path
from lipdub.core.landmarks import CHIN, JAW, OUTER_LOWER, OUTER_UPPER, STABLE, UPPER_EDGE
from lipdub.render.interior import inner_polygon
from lipdub.render.mesh import MeshWarper
from lipdub.render.mouth import CONTROL

JPEG_PARAMS = [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
# to_stored: per entry, the affine (2x3) from crop pixels to the pixels of the image it stores (identity: the crop
# itself; else the region of the frame as filmed, see Atlas.filmed)
ATLAS_FIELDS = ("src_controls", "norm", "seq", "pose_feat", "sharpness", "teeth", "lip_lab", "to_stored")
IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
# a filmed region is stored where it is at most this much larger (linear) than the crop: a face filmed far larger
# than the atlas's largest scale (a 4K close-up) keeps its smaller crop (memory, JPEG time, the atlas budget)
FILMED_MAX_ENLARGEMENT = 1.25
LIP_WINDOW_MARGIN = 4  # crop px around the lips of the window that entry statistics are measured on


DECODED_BYTES = 64 << 20  # decoded crops kept for the current run of frames (Atlas.crop)

class Atlas:
    """Pose-normalised lower-face crops of real frames: the appearance source of rendering.

    Crops are kept as JPEG (quality 95, 4:4:4: ~45 dB, a tenth of the raw size) and decoded on demand, so minutes of
    footage fit in memory. With `filmed`, an entry stores the region of the frame its crop covers as filmed and the
    affine from crop pixels to it (`to_stored`): drawing composes that affine into its mesh warp (Atlas.stored), so a
    drawn mouth is resampled once, not twice (a crop's own cubic warp softens lips and teeth a little, and cost ~4.5 ms
    an entry); crop() still gives the pose-normalised crop. Per entry: control points in crop pixels, pose-free landmarks, a sequence number
    (consecutive real frames have consecutive numbers, so selection can prefer runs), head-pose features, mouth
    sharpness and teeth visibility. The same class is the clip's own atlas and an actor profile's."""

    def __init__(self, canonical: np.ndarray, px_per_unit: float, filmed: bool = False):
        self.filmed = filmed
        self.canonical = np.asarray(canonical, np.float64)
        self.scale = float(np.clip(px_per_unit, 40.0, 260.0))
        c = self.canonical
        lower = c[JAW + UPPER_EDGE + [1]]
        x0, x1 = lower[:, 0].min() - 0.3, lower[:, 0].max() + 0.3
        y0, y1 = c[[1, 4]][:, 1].min() - 0.25, c[CHIN, 1] + 0.45
        self.origin = np.array([x0, y0])
        self.size = (int(np.ceil((x1 - x0) * self.scale)), int(np.ceil((y1 - y0) * self.scale)))  # w, h
        self.warper = MeshWarper(self.canonical)
        self.jpeg: list[bytes] = []
        self._rows: dict[str, list] = {k: [] for k in ATLAS_FIELDS}
        self._arrays: dict[str, np.ndarray] | None = None
        self._decoded: "OrderedDict[int, np.ndarray]" = OrderedDict()
        # live mode grows an atlas on one thread while another renders from it: entries appear whole or not at all
        self._lock = threading.RLock()

    @property
    def n(self) -> int:
        return len(self.jpeg)

    def __getattr__(self, name):
        if name in ATLAS_FIELDS:
            return self.arrays()[name]
        raise AttributeError(name)

    def arrays(self) -> dict[str, np.ndarray]:
        with self._lock:
            return self._stacked()

    def _stacked(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            self._arrays = {k: np.asarray(v) for k, v in self._rows.items()}
            # rows become views of the stacked arrays: the per-row copies are let go (half the memory)
            self._rows = {k: list(v) for k, v in self._arrays.items()}
            shapes = {"src_controls": (0, len(CONTROL) + len(JAW) + len(UPPER_EDGE), 2), "norm": (0, 478, 3),
                      "pose_feat": (0, 2), "lip_lab": (0, 3), "to_stored": (0, 2, 3)}
            for k, shape in shapes.items():
                if not len(self._rows[k]):
                    self._arrays[k] = np.zeros(shape, np.float32)
        return self._arrays

    def _use_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Entries given as stacked arrays (a file, a selection, a mixed atlas); rows are views of them."""
        self._arrays = arrays
        self._rows = {k: list(v) for k, v in arrays.items()}

    def canonical_to_crop(self, pts: np.ndarray) -> np.ndarray:
        return (pts[..., :2] - self.origin) * self.scale

    def bytes_per_entry(self) -> int:
        return self.size[0] * self.size[1] * 3 // 9 + 478 * 3 * 4 + 600

    def add(self, seq: int, image, landmarks: np.ndarray, pose: tuple) -> bool:
        """Store one frame's lower face (`image`: an RGB frame, or a media.Frame of which only the region the crop
        samples is converted), upright and scaled by a 2D similarity on the skull points.

        pose = (scale, rotation, translation) of this frame against the atlas canonical (face.Pose terms)."""
        return self.put(self.entry(seq, image, landmarks, pose))

    def entry(self, seq: int, image, landmarks: np.ndarray, pose: tuple) -> tuple | None:
        """add's entry, not stored (None where the frame gives none): changes nothing, so several threads may cut
        entries at once; put() stores them in order."""
        src = landmarks[STABLE, :2].astype(np.float64)
        dst = self.canonical_to_crop(self.canonical[STABLE])
        m, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
        if m is None:
            return None
        filmed = self.filmed and np.sqrt(abs(np.linalg.det(m[:, :2]))) >= 1 / FILMED_MAX_ENLARGEMENT
        rgb, shifted = sampled_region(image, m, self.size, whole=not filmed)
        scale, rot, trans = pose
        norm = ((landmarks.astype(np.float64) - trans) @ rot) / scale
        # control points: the frame's own landmarks, plus the skull-fixed outer ring placed by the head pose
        ctrl = scale * self.warper.control_points(norm) @ rot.T + trans
        ctrl = ctrl[:, :2]
        ctrl[: len(CONTROL)] = landmarks[CONTROL, :2]
        ctrl = ctrl @ m[:, :2].T + m[:, 2]
        pts = landmarks[:, :2] @ m[:, :2].T + m[:, 2]
        if filmed:  # the statistics on the crop's window around the lips alone (the pixels they read)
            stored, to_stored = rgb, cv2.invertAffineTransform(shifted)
            lips = pts[OUTER_UPPER + OUTER_LOWER]
            x0, y0 = np.maximum(np.floor(lips.min(0)).astype(int) - LIP_WINDOW_MARGIN, 0)
            x1, y1 = np.minimum(np.ceil(lips.max(0)).astype(int) + LIP_WINDOW_MARGIN, self.size)
            window = shifted.copy()
            window[:, 2] -= (x0, y0)
            measured = cv2.warpAffine(rgb, window, (max(int(x1 - x0), 1), max(int(y1 - y0), 1)),
                                      flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            at = pts - (x0, y0)
        else:  # cubic here and in the final remap: two linear resamplings in a row visibly soften lips and teeth
            stored = measured = cv2.warpAffine(rgb, shifted, self.size, flags=cv2.INTER_CUBIC,
                                               borderMode=cv2.BORDER_REPLICATE)
            to_stored, at = IDENTITY, pts
        ok, buf = cv2.imencode(".jpg", stored, JPEG_PARAMS)
        if not ok:
            return None
        sharpness = mouth_sharpness(measured, at)
        teeth, lip_lab = teeth_visibility(measured, at, self.scale)
        # face normal in the image: sin(yaw), sin(pitch)
        return (ctrl.astype(np.float32), norm.astype(np.float32), int(seq), rot[:2, 2].astype(np.float32), sharpness,
                teeth, lip_lab, np.asarray(to_stored, np.float32), buf.tobytes())

    def put(self, entry: tuple | None) -> bool:
        """Store an entry() (False for None)."""
        if entry is None:
            return False
        with self._lock:
            for k, v in zip(ATLAS_FIELDS, entry):
                self._rows[k].append(v)
            self._crops_in_memory().append(entry[-1])  # last: `n` counts only complete entries
            self._arrays = None
        return True

    def merge(self, other: "Atlas") -> None:
        """Append another atlas's entries (same canonical face and scale: halves filled on two threads)."""
        with self._lock:
            for k in ATLAS_FIELDS:
                self._rows[k] += other._rows[k]
            self._crops_in_memory().extend(other.jpeg)
            self._arrays = None

    def _crops_in_memory(self) -> list:
        """The crops as a list that can grow: crops left in a file (StoredCrops) are read into memory first."""
        if not isinstance(self.jpeg, list):
            self.jpeg = list(self.jpeg)
        return self.jpeg

    def crop(self, a: int) -> np.ndarray:
        """The pose-normalised crop of entry a (RGB; self.size): its stored image, warped where it is the region as
        filmed."""
        a = int(a)
        img, to_stored = self._decode(a), self.to_stored[a]  # (not stored(): a subclass may draw that from crop())
        if np.array_equal(to_stored, IDENTITY):
            return img
        return cv2.warpAffine(img, cv2.invertAffineTransform(to_stored), self.size, flags=cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_REPLICATE)

    def stored(self, a: int) -> tuple[np.ndarray, np.ndarray]:
        """(image, to_stored) of entry a: its decoded image (RGB; a small cache keeps the current run's frames) and
        the affine from crop pixels to its pixels (stored_points)."""
        return self._decode(int(a)), self.to_stored[int(a)]

    def stored_points(self, a: int, pts: np.ndarray) -> np.ndarray:
        """Crop pixel coordinates `pts` (..., 2) of entry a in its stored image's pixels (float64)."""
        m = self.to_stored[int(a)].astype(np.float64)
        return np.asarray(pts, np.float64)[..., :2] @ m[:, :2].T + m[:, 2]

    def _decode(self, a: int) -> np.ndarray:
        img = self._decoded.get(a)
        if img is None:
            img = cv2.imdecode(np.frombuffer(self.jpeg[a], np.uint8), cv2.IMREAD_UNCHANGED)
            self._decoded[a] = img
            # 32 crops, and never over DECODED_BYTES: a 4K close-up's crop is ~9 MB (32 of them: 300 MB)
            while len(self._decoded) > 1 and (len(self._decoded) > 32 or
                                              len(self._decoded) * img.nbytes > DECODED_BYTES):
                self._decoded.popitem(last=False)
        else:
            self._decoded.move_to_end(a)
        return img

    def select(self, keep: np.ndarray) -> "Atlas":
        """A new atlas with only the entries where `keep` is True."""
        out = Atlas.__new__(Atlas)
        out.__dict__.update({k: v for k, v in self.__dict__.items() if k not in ("jpeg", "_rows", "_decoded",
                                                                                "_arrays", "_lock")})
        out._lock = threading.RLock()
        idx = np.flatnonzero(keep)
        out.jpeg = [self.jpeg[i] for i in idx]
        arr = self.arrays()
        out._use_arrays({k: arr[k][idx] for k in ATLAS_FIELDS})
        out._decoded = OrderedDict()
        return out

    # files: an atlas is part of an actor profile
    def to_arrays(self, prefix: str = "atlas_", with_jpeg: bool = True) -> dict[str, np.ndarray]:
        """Everything as named arrays; the crops as one byte array `jpeg` (left out with with_jpeg=False, for
        writers that stream `self.jpeg` instead of joining it in memory)."""
        lengths = np.array([len(b) for b in self.jpeg], np.int64)
        out = {f"{prefix}{k}": v for k, v in self.arrays().items()}
        out.update({f"{prefix}jpeg_lengths": lengths, f"{prefix}canonical": self.canonical,
                    f"{prefix}geometry": np.array([self.scale])})
        if with_jpeg:
            out[f"{prefix}jpeg"] = np.frombuffer(b"".join(self.jpeg), np.uint8) if self.jpeg else np.zeros(0, np.uint8)
        return out

    def save(self, path, extra: dict | None = None) -> None:
        """Write the atlas (and `extra` arrays) to `path` atomically, as an .npz archive."""
        with atomic_path(path, suffix=".tmp") as tmp:
            write_npz(tmp, {**self.to_arrays(with_jpeg=False), **(extra or {})}, {"atlas_jpeg": self.jpeg})

    @classmethod
    def from_arrays(cls, z, prefix: str = "atlas_", path=None) -> "Atlas":
        """The atlas in the open archive `z`; given the archive's `path`, its crops stay in the file (StoredCrops)
        where it stores them uncompressed, else they are read into memory."""
        atlas = cls(z[f"{prefix}canonical"], float(z[f"{prefix}geometry"][0]))
        lengths = z[f"{prefix}jpeg_lengths"]
        # crops are read one by one from the archive (never the whole byte array plus its pieces in memory)
        with z.zip.open(f"{prefix}jpeg.npy") as fh:
            version = np.lib.format.read_magic(fh)
            shape, _, _ = np.lib.format._read_array_header(fh, version)
            if shape != (int(lengths.sum()),):
                raise ValueError("crop data and crop lengths disagree")
            stored = StoredCrops.of(path, z.zip.getinfo(f"{prefix}jpeg.npy"), fh.tell(), lengths) if path else None
            atlas.jpeg = stored if stored is not None else [fh.read(int(n)) for n in lengths]
        if stored is None and any(len(b) != n for b, n in zip(atlas.jpeg, lengths)):
            raise ValueError("crop data is truncated")
        names = set(z.files)
        arrays = {k: np.asarray(z[f"{prefix}{k}"]) for k in ATLAS_FIELDS if f"{prefix}{k}" in names}
        if "to_stored" not in arrays:  # written before filmed regions: every entry stores its crop
            arrays["to_stored"] = np.tile(IDENTITY, (len(lengths), 1, 1))
        atlas._use_arrays(arrays)
        atlas.filmed = bool(len(arrays["to_stored"]) and not np.all(arrays["to_stored"] == IDENTITY))
        return atlas


class StoredCrops:
    """An atlas's JPEG crops left in its uncompressed archive and read one at a time (os.pread) when decoded, so that
    they take no memory: 117 MB for 71 s of a 4K clip, up to ~150 MB for a 1080p hour (the budget's estimate). Reads
    go through a descriptor opened once, so the file replaced in the cache (atomically: a new inode) or removed
    meanwhile still reads the same."""

    def __init__(self, fd: int, starts: np.ndarray, lengths: np.ndarray):
        self._fd, self._starts, self._lengths = fd, starts, lengths

    @classmethod
    def of(cls, path, info: zipfile.ZipInfo, header: int, lengths: np.ndarray) -> "StoredCrops | None":
        """The crops of archive member `info` of `path` (npy `header` bytes, then the crops back to back); None
        where the member is compressed or its size disagrees."""
        if (info.compress_type != zipfile.ZIP_STORED or info.file_size != header + int(lengths.sum())
                or not hasattr(os, "pread")):  # (no pread on Windows: the crops are read into memory there)
            return None
        fd = os.open(path, os.O_RDONLY)
        local = os.pread(fd, 30, info.header_offset)  # the local header: its name and extra field lengths
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            os.close(fd)
            return None
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = info.header_offset + 30 + name_len + extra_len + header
        lengths = np.asarray(lengths, np.int64)
        return cls(fd, start + np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64), lengths)

    def __len__(self) -> int:
        return len(self._lengths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n = int(self._lengths[i])
        data = os.pread(self._fd, n, int(self._starts[i]))
        if len(data) != n:
            raise ValueError("crop data is truncated")
        return data

    def __iter__(self):
        return (self[k] for k in range(len(self)))

    def __del__(self):
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None


def write_npz(path, arrays: dict, byte_chunks: dict) -> None:
    """np.load-compatible archive, with each of `byte_chunks` (lists of bytes) written as one uint8 array piece by
    piece: an atlas's JPEG crops are never joined in memory. Writes `path` itself: callers wrap it in an atomic
    write (Atlas.save, a profile's save)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)
        for name, chunks in byte_chunks.items():
            total = sum(len(c) for c in chunks)
            header = {"descr": "|u1", "fortran_order": False, "shape": (total,)}
            with zf.open(name + ".npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array_header_1_0(fh, header)
                for c in chunks:
                    fh.write(c)


def mouth_sharpness(crop: np.ndarray, pts: np.ndarray) -> float:
    """Laplacian variance over the lips: motion-blurred frames make ghosted lips, selection avoids them."""
    lips = pts[OUTER_UPPER + OUTER_LOWER]
    (x0, y0), (x1, y1) = np.floor(lips.min(0)).astype(int), np.ceil(lips.max(0)).astype(int)
    gray = cv2.cvtColor(crop[max(y0, 0):y1, max(x0, 0):x1], cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var()) if gray.size else 0.0


def teeth_visibility(crop: np.ndarray, pts: np.ndarray, px_per_unit: float) -> tuple[float, np.ndarray]:
    """Visible teeth area (canonical units², ×100): pixels inside the inner lip contour that are lighter and less red
    than the lips themselves (teeth are bright and grey-white; tongue is red, the cavity dark). Also returns the
    lips' median LAB colour (a hand or microphone over the mouth changes it)."""
    inner = np.round(inner_polygon(pts)).astype(np.int32)
    outer = np.round(np.concatenate([pts[OUTER_UPPER], pts[OUTER_LOWER[::-1][1:-1]]])).astype(np.int32)
    x0, y0 = np.maximum(outer.min(0) - 2, 0)
    x1, y1 = outer.max(0) + 3
    none = np.zeros(3, np.float32)
    if x1 <= x0 or y1 <= y0:
        return 0.0, none
    box = crop[y0:y1, x0:x1]
    lab = cv2.cvtColor(box, cv2.COLOR_RGB2LAB).astype(np.int16)
    m_in = np.zeros(box.shape[:2], np.uint8)
    m_out = np.zeros(box.shape[:2], np.uint8)
    cv2.fillPoly(m_in, [inner - [x0, y0]], 1)
    cv2.fillPoly(m_out, [outer - [x0, y0]], 1)
    lips = (m_out > 0) & (m_in == 0)
    if lips.sum() < 10:
        return 0.0, none
    lip_lab = np.median(lab[lips], axis=0).astype(np.float32)
    if m_in.sum() < 3:
        return 0.0, lip_lab
    l_lip, a_lip = lip_lab[0], lip_lab[1]
    # off the inner lip edge (lip pixels), then: lit (teeth in the mouth's shadow are often no lighter than the
    # lips, but far lighter than the cavity) and clearly less red than the lips (tongue and gums are as red)
    m_in = cv2.erode(m_in, np.ones((3, 3), np.uint8), iterations=max(1, int(round(0.012 * px_per_unit))))
    inside = lab[m_in > 0]
    teeth = (inside[:, 0] > 0.7 * l_lip) & (inside[:, 1] < a_lip - 4)
    return float(teeth.sum()) / px_per_unit ** 2 * 100.0, lip_lab


def sampled_region(image, m: np.ndarray, size: tuple[int, int], whole: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of `image` (an RGB array or a media.Frame) that warpAffine(image, m, size) samples, and `m` shifted
    to them: the box the crop's corners map back to, grown by the cubic kernel's reach. The warp gives the same
    crop from it (a box cut at the frame's edge keeps that edge, so BORDER_REPLICATE repeats the same pixels).
    `whole`: an RGB array is given back whole (nothing to convert; the warp reads only the box anyway)."""
    if isinstance(image, np.ndarray):
        if whole:
            return image, m
        h, w = image.shape[:2]
    else:
        h, w = image.height, image.width
    w_out, h_out = size
    corners = np.array([[0, 0], [w_out, 0], [0, h_out], [w_out, h_out]], np.float64)
    inv = cv2.invertAffineTransform(m)
    src = corners @ inv[:, :2].T + inv[:, 2]
    x0, y0 = (max(0, int(np.floor(v)) - 4) for v in src.min(0))
    x1, y1 = min(w, int(np.ceil(src[:, 0].max())) + 5), min(h, int(np.ceil(src[:, 1].max())) + 5)
    if x1 - x0 < 2 or y1 - y0 < 2:  # the crop lies off the frame: the whole frame, as before
        return (image if isinstance(image, np.ndarray) else image.rgb), m
    shifted = m.copy()
    shifted[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
    if isinstance(image, np.ndarray):
        return image[y0:y1, x0:x1], shifted
    return image.rgb_box((x0, y0, x1, y1)), shifted


def pose_features(pose: face.Pose, idx: np.ndarray) -> np.ndarray:
    """Head-pose features of frames `idx`: the face normal's direction in the image, sin(yaw) and sin(pitch)."""
    return pose.rotation[idx][:, :2, 2]


def fill_atlas(atlas: Atlas, video: Path, track: face.FaceTrack, pose: face.Pose, seq_offset: int = 0,
               keep: np.ndarray | None = None, stride: int = 1,
               progress: Callable[[str, int, int], None] | None = None, start: int = 0,
               stop: int | None = None, scaled_to: tuple[int, int] | None = None, threads: int = 0) -> int:
    """Add `video`'s usable frames in [start, stop) (valid, and `keep` where given; every `stride`-th) to the atlas;
    returns the number added. Sequence numbers continue runs of kept frames, so selection prefers playing them in
    order. `threads`: decoding threads (media.iter_frames)."""
    added = 0
    stop = len(track) if stop is None else min(stop, len(track))
    for fr in media.iter_frames(video, start, scaled_to, threads):
        i = fr.index
        if i >= stop:
            break
        if track.valid[i] and i % stride == 0 and (keep is None or keep[i]):
            added += atlas.add(seq_offset + i // stride, fr, track.landmarks[i],
                               (pose.scale[i], pose.rotation[i], pose.translation[i]))
        if progress:
            progress("atlas", i + 1, len(track))
    return added


def fill_atlas_in_halves(atlas: Atlas, video: Path, track: face.FaceTrack, pose: face.Pose, seq_offset: int = 0,
                         keep: np.ndarray | None = None, stride: int = 1,
                         progress: Callable[[str, int, int], None] | None = None,
                         scaled_to: tuple[int, int] | None = None) -> int:
    """fill_atlas on two threads (decoding, warping and JPEG coding run in native code without the GIL); short
    clips on one. Up to 1080p one decoder feeds both (fill_atlas_beside); larger frames are read by two decoders,
    one per half of the video (media.shared_decoder). `scaled_to`: a photo read at that
    size (media.iter_frames)."""
    if len(track) < 50:
        return fill_atlas(atlas, video, track, pose, seq_offset, keep, stride, progress, scaled_to=scaled_to)
    if media.shared_decoder(track.width, track.height):
        return fill_atlas_beside(atlas, video, track, pose, seq_offset, keep, stride, progress, scaled_to)
    second = Atlas(atlas.canonical, atlas.scale)
    mid = len(track) // 2
    threads = media.beside_decoder_threads(track.width, track.height)
    with ThreadPoolExecutor(1, thread_name_prefix="lipdub-atlas") as pool:
        job = pool.submit(fill_atlas, second, video, track, pose, seq_offset, keep, stride, None, mid, None, scaled_to,
                          threads)
        added = fill_atlas(atlas, video, track, pose, seq_offset, keep, stride, progress, stop=mid, scaled_to=scaled_to,
                           threads=threads)
        added += job.result()
    atlas.merge(second)
    return added


AHEAD = 4  # frames whose entries are being cut while the decoder reads on (each holds a decoded frame)


def fill_atlas_beside(atlas: Atlas, video: Path, track: face.FaceTrack, pose: face.Pose, seq_offset: int = 0,
                      keep: np.ndarray | None = None, stride: int = 1,
                      progress: Callable[[str, int, int], None] | None = None,
                      scaled_to: tuple[int, int] | None = None) -> int:
    """fill_atlas with one decoder and the entries cut on two threads, stored in frame order: the same atlas as
    fill_atlas gives."""
    added = 0
    pending: deque = deque()
    with ThreadPoolExecutor(2, thread_name_prefix="lipdub-atlas") as pool:
        try:
            for fr in media.iter_frames(video, 0, scaled_to):
                i = fr.index
                if i >= len(track):
                    break
                if track.valid[i] and i % stride == 0 and (keep is None or keep[i]):
                    pending.append(pool.submit(atlas.entry, seq_offset + i // stride, fr, track.landmarks[i],
                                               (pose.scale[i], pose.rotation[i], pose.translation[i])))
                    if len(pending) > AHEAD:
                        added += atlas.put(pending.popleft().result())
                if progress:
                    progress("atlas", i + 1, len(track))
            while pending:
                added += atlas.put(pending.popleft().result())
        finally:
            for job in pending:  # an error: drop what is still queued
                job.cancel()
    return added
