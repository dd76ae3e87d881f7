"""render: real mouths from the clip itself, chosen and warped to the wanted shape.

The clip is its own appearance source. While tracking, every usable frame's lower face is stored pose-normalised in an
atlas (a crop plus its landmarks). For each output frame a dynamic-programming pass picks an atlas frame whose mouth is
close to the wanted one (favouring runs of consecutive real frames), then a piecewise-affine warp moves it onto the
target frame's head pose with the lip contour exactly at the wanted shape. Where the chosen mouth is less open than
asked, the interior (teeth, tongue) comes from the clip's most open frame.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from scipy.spatial import Delaunay

from lipdub.render import compose
from lipdub import media, motion
from lipdub.motion import expression as _expression
from lipdub import face as F
from lipdub.errors import InputError

LIPS = sorted(set(F.OUTER_UPPER + F.OUTER_LOWER + F.INNER_UPPER + F.INNER_LOWER))
# nose base and upper cheeks: the top edge of the replaced region
UPPER_EDGE = [2, 97, 326, 98, 327, 129, 358, 203, 423, 36, 266, 205, 425, 50, 280, 187, 411, 147, 376, 123, 352]
LOWER_FACE = [57, 287, 43, 273, 106, 335, 182, 406, 83, 313, 18, 200, 199, 175, 32, 262, 140, 369, 171, 396,
              208, 428, 214, 434, 212, 432, 202, 422, 210, 430, 169, 394, 135, 364, 138, 367, 192, 416, 207, 427,
              216, 436, 204, 424, 194, 418, 201, 421, 164, 167, 393, 165, 391, 92, 322, 186, 410]
CONTROL = sorted(set(LIPS + F.JAW + UPPER_EDGE + LOWER_FACE))
INNER_PAIRS = list(zip(F.INNER_UPPER[1:-1], F.INNER_LOWER[1:-1]))  # vertically opposite inner-lip points
OUTER_PAIRS = list(zip(F.OUTER_UPPER[1:-1], F.OUTER_LOWER[1:-1]))


# --------------------------------------------------------------------------------------------------- mouth geometry

@dataclass
class MouthModel:
    """The speaker's mouth in canonical units (eye-corner distance = 1)."""

    canonical: np.ndarray  # (478, 3) mean face
    open_max: float  # inner-lip gap of the speaker's wide-open mouth
    rest_width: float  # corner-to-corner width at rest

    def __post_init__(self):
        c = self.canonical
        xs = np.array([c[u, 0] for u, _ in INNER_PAIRS])
        half = max(0.5 * abs(c[308, 0] - c[78, 0]), 1e-3)
        # gap profile of an opening mouth whose source is closed: widest at the centre, zero at the corners
        self.closed_profile = np.clip(1 - ((xs - 0.5 * (c[78, 0] + c[308, 0])) / half) ** 2, 0, 1) ** 0.9
        self.jaw_weight = self._jaw_weight()

    def _jaw_weight(self) -> np.ndarray:
        """How much each point follows a jaw drop (0 skull .. ~0.85 chin), from its canonical position."""
        c = self.canonical
        mc = 0.5 * (c[13] + c[14])
        corner_y = 0.5 * (c[61, 1] + c[291, 1])
        half_jaw = 0.5 * (c[F.JAW, 0].max() - c[F.JAW, 0].min())
        dx = np.abs(c[:, 0] - mc[0]) / half_jaw
        below = np.clip((c[:, 1] - corner_y) / 0.12, 0.0, 1.0)
        w = 0.85 * np.clip(1 - dx ** 1.5, 0, 1) * below
        return w


def descriptors(norm: np.ndarray) -> np.ndarray:
    """(…, 478, 3) canonical landmarks → (…, 2): inner opening, mouth width."""
    gap = np.mean([norm[..., lo, 1] - norm[..., up, 1] for up, lo in INNER_PAIRS[3:6]], axis=0)
    width = np.linalg.norm(norm[..., 61, :2] - norm[..., 291, :2], axis=-1)
    return np.stack([np.maximum(gap, 0.0), width], axis=-1)


def build_mouth_model(canonical: np.ndarray, norm: np.ndarray, valid: np.ndarray) -> MouthModel:
    d = descriptors(norm[valid]) if valid.any() else np.zeros((0, 2))
    if len(d) >= 100 and np.percentile(d[:, 0], 95) > 0.06:
        # seconds of speech show how wide this speaker opens (some anchors barely do: asking for more than they
        # ever show gives oversized, painted mouths)
        open_max = float(np.clip(np.percentile(d[:, 0], 97), 0.09, 0.45))
    elif len(d) >= 10 and np.percentile(d[:, 0], 95) > 0.08:
        open_max = float(np.clip(np.percentile(d[:, 0], 97), 0.16, 0.45))
    else:  # a photo or a clip that never opens: a typical speaker's wide-open mouth
        open_max = 0.26
    closed = d[d[:, 0] < 0.04, 1] if len(d) else np.zeros(0)
    rest_width = float(np.median(closed)) if len(closed) >= 3 else float(np.median(d[:, 1])) if len(d) else 0.9
    return MouthModel(canonical, open_max, rest_width)


def target_shape(model: MouthModel, source: np.ndarray, opening: float, width: float) -> np.ndarray:
    """Move `source` (478,3 canonical) so its inner-lip gap is `opening` and its width `width` (canonical units).

    Each inner-lip pair gets exactly the wanted gap (keeping the source's gap profile when it has one); the outer
    lower lip follows its inner partner; chin and jaw follow the centre of the lower lip through jaw_weight."""
    out = source.astype(np.float64).copy()
    ups = [u for u, _ in INNER_PAIRS]
    los = [l for _, l in INNER_PAIRS]
    src_gap = source[los, 1] - source[ups, 1]
    centre_gap = max(float(descriptors(source)[0]), 0.0)
    if centre_gap > 0.03:
        profile = np.clip(src_gap, 0, None) / centre_gap
    else:
        profile = model.closed_profile
    want = opening * profile
    raise_up = 0.08 * (want - np.clip(src_gap, 0, None))  # the upper lip lifts a little as the mouth opens
    out[ups, 1] -= raise_up
    new_lo = out[ups, 1] + want
    drop = new_lo - source[los, 1]
    centre_drop = float(drop[len(drop) // 2])
    jaw = model.jaw_weight * centre_drop
    jaw[LIPS] = 0.0
    out[:, 1] += jaw
    out[los, 1] = new_lo
    outer_lo = [l for _, l in OUTER_PAIRS]
    out[outer_lo, 1] = source[outer_lo, 1] + 0.9 * drop
    outer_up = [u for u, _ in OUTER_PAIRS]
    out[outer_up, 1] -= 0.7 * raise_up
    for corner in (61, 291, 78, 308):
        out[corner, 1] += 0.3 * centre_drop
    # width: corners and nearby lip/cheek points slide horizontally, fading with vertical distance
    cur_w = float(np.linalg.norm(out[61, :2] - out[291, :2]))
    dw = width - cur_w
    mc = 0.5 * (out[13] + out[14])
    rel = np.clip((out[:, 0] - mc[0]) / max(0.5 * cur_w, 1e-3), -1.3, 1.3)
    fall = np.exp(-((out[:, 1] - mc[1]) / 0.22) ** 2) * np.exp(-np.maximum(np.abs(rel) - 1, 0) / 0.3)
    fall *= np.clip((out[:, 1] - model.canonical[2, 1]) / 0.08, 0.0, 1.0)  # nothing above the nose base moves
    out[:, 0] += 0.5 * dw * rel * fall
    return out


# --------------------------------------------------------------------------------------------------- atlas

JPEG_PARAMS = [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
ATLAS_FIELDS = ("src_controls", "norm", "seq", "pose_feat", "sharpness", "teeth", "lip_lab")


class Atlas:
    """Pose-normalised lower-face crops of real frames: the appearance source of rendering.

    Crops are kept as JPEG (quality 95, 4:4:4: ~45 dB, a tenth of the raw size) and decoded on demand, so minutes of
    footage fit in memory. Per entry: control points in crop pixels, pose-free landmarks, a sequence number
    (consecutive real frames have consecutive numbers, so selection can prefer runs), head-pose features, mouth
    sharpness and teeth visibility. The same class is the clip's own atlas and an actor profile's."""

    def __init__(self, canonical: np.ndarray, px_per_unit: float):
        self.canonical = np.asarray(canonical, np.float64)
        self.scale = float(np.clip(px_per_unit, 40.0, 260.0))
        c = self.canonical
        lower = c[F.JAW + UPPER_EDGE + [1]]
        x0, x1 = lower[:, 0].min() - 0.3, lower[:, 0].max() + 0.3
        y0, y1 = c[[1, 4]][:, 1].min() - 0.25, c[F.CHIN, 1] + 0.45
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
            shapes = {"src_controls": (0, len(CONTROL) + len(F.JAW) + len(UPPER_EDGE), 2), "norm": (0, 478, 3),
                      "pose_feat": (0, 2), "lip_lab": (0, 3)}
            for k, shape in shapes.items():
                if not len(self._rows[k]):
                    self._arrays[k] = np.zeros(shape, np.float32)
        return self._arrays

    def canonical_to_crop(self, pts: np.ndarray) -> np.ndarray:
        return (pts[..., :2] - self.origin) * self.scale

    def bytes_per_entry(self) -> int:
        return self.size[0] * self.size[1] * 3 // 9 + 478 * 3 * 4 + 600

    def add(self, seq: int, rgb: np.ndarray, landmarks: np.ndarray, pose: tuple) -> bool:
        """Store one frame's lower face, upright and scaled by a 2D similarity on the skull points.

        pose = (scale, rotation, translation) of this frame against the atlas canonical (face.Pose terms)."""
        src = landmarks[F.STABLE, :2].astype(np.float64)
        dst = self.canonical_to_crop(self.canonical[F.STABLE])
        m, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
        if m is None:
            return False
        # cubic here and in the final remap: two linear resamplings in a row visibly soften lips and teeth
        crop = cv2.warpAffine(rgb, m, self.size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        scale, rot, trans = pose
        norm = ((landmarks.astype(np.float64) - trans) @ rot) / scale
        # control points: the frame's own landmarks, plus the skull-fixed outer ring placed by the head pose
        ctrl = scale * self.warper.control_points(norm) @ rot.T + trans
        ctrl = ctrl[:, :2]
        ctrl[: len(CONTROL)] = landmarks[CONTROL, :2]
        ctrl = ctrl @ m[:, :2].T + m[:, 2]
        pts = landmarks[:, :2] @ m[:, :2].T + m[:, 2]
        ok, buf = cv2.imencode(".jpg", crop, JPEG_PARAMS)
        if not ok:
            return False
        sharpness = mouth_sharpness(crop, pts)
        teeth, lip_lab = teeth_visibility(crop, pts, self.scale)
        with self._lock:
            rows = self._rows
            rows["src_controls"].append(ctrl.astype(np.float32))
            rows["norm"].append(norm.astype(np.float32))
            rows["seq"].append(int(seq))
            rows["pose_feat"].append(rot[:2, 2].astype(np.float32))  # face normal in the image: sin(yaw), sin(pitch)
            rows["sharpness"].append(sharpness)
            rows["teeth"].append(teeth)
            rows["lip_lab"].append(lip_lab)
            self.jpeg.append(buf.tobytes())  # last: `n` counts only complete entries
            self._arrays = None
        return True

    def merge(self, other: "Atlas") -> None:
        """Append another atlas's entries (same canonical face and scale: halves filled on two threads)."""
        with self._lock:
            for k in ATLAS_FIELDS:
                self._rows[k] += other._rows[k]
            self.jpeg += other.jpeg
            self._arrays = None

    def crop(self, a: int) -> np.ndarray:
        """Decoded crop of entry a (RGB; a small cache keeps the current run's frames)."""
        a = int(a)
        img = self._decoded.get(a)
        if img is None:
            img = cv2.imdecode(np.frombuffer(self.jpeg[a], np.uint8), cv2.IMREAD_UNCHANGED)
            self._decoded[a] = img
            if len(self._decoded) > 32:
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
        out._arrays = {k: arr[k][idx] for k in ATLAS_FIELDS}
        out._rows = {k: list(v) for k, v in out._arrays.items()}
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
        path = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            write_npz(tmp, {**self.to_arrays(with_jpeg=False), **(extra or {})}, {"atlas_jpeg": self.jpeg})
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def from_arrays(cls, z, prefix: str = "atlas_") -> "Atlas":
        atlas = cls(z[f"{prefix}canonical"], float(z[f"{prefix}geometry"][0]))
        lengths = z[f"{prefix}jpeg_lengths"]
        # crops are read one by one from the archive (never the whole byte array plus its pieces in memory)
        with z.zip.open(f"{prefix}jpeg.npy") as fh:
            version = np.lib.format.read_magic(fh)
            shape, _, _ = np.lib.format._read_array_header(fh, version)
            if shape != (int(lengths.sum()),):
                raise ValueError("crop data and crop lengths disagree")
            atlas.jpeg = [fh.read(int(n)) for n in lengths]
        if any(len(b) != n for b, n in zip(atlas.jpeg, lengths)):
            raise ValueError("crop data is truncated")
        atlas._arrays = {k: np.asarray(z[f"{prefix}{k}"]) for k in ATLAS_FIELDS}
        atlas._rows = {k: list(v) for k, v in atlas._arrays.items()}
        return atlas


def write_npz(path, arrays: dict, byte_chunks: dict) -> None:
    """np.load-compatible archive, with each of `byte_chunks` (lists of bytes) written as one uint8 array piece by
    piece: an atlas's JPEG crops are never joined in memory."""
    import zipfile

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
    lips = pts[F.OUTER_UPPER + F.OUTER_LOWER]
    (x0, y0), (x1, y1) = np.floor(lips.min(0)).astype(int), np.ceil(lips.max(0)).astype(int)
    gray = cv2.cvtColor(crop[max(y0, 0):y1, max(x0, 0):x1], cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_32F).var()) if gray.size else 0.0


def teeth_visibility(crop: np.ndarray, pts: np.ndarray, px_per_unit: float) -> tuple[float, np.ndarray]:
    """Visible teeth area (canonical units², ×100): pixels inside the inner lip contour that are lighter and less red
    than the lips themselves (teeth are bright and grey-white; tongue is red, the cavity dark). Also returns the
    lips' median LAB colour (a hand or microphone over the mouth changes it)."""
    inner = np.round(inner_polygon(pts)).astype(np.int32)
    outer = np.round(np.concatenate([pts[F.OUTER_UPPER], pts[F.OUTER_LOWER[::-1][1:-1]]])).astype(np.int32)
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


# --------------------------------------------------------------------------------------------------- selection

def select_frames(atlas_desc: np.ndarray, atlas_pose: np.ndarray, atlas_seq: np.ndarray,
                  want: np.ndarray, want_pose: np.ndarray, k: int = 24, jump_cost: float = 0.6,
                  pose_weight: float = 1.0, atlas_cost: np.ndarray | None = None) -> np.ndarray:
    """Viterbi over the k best atlas candidates per output frame (unit selection).

    atlas_desc (A,D) and want (T,D) are weighted descriptors (opening, width, teeth…); atlas_cost (A,) is a per-entry
    penalty (blur); continuing to the next real frame (next sequence number) costs nothing, holding a frame costs a
    little, any other jump costs `jump_cost`. Candidates come from a k-d tree, so the cost grows with log(A), not A:
    minutes of profile footage stay cheap."""
    from scipy.spatial import cKDTree

    T, A = len(want), len(atlas_desc)
    if A == 1:
        return np.zeros(T, np.int64)
    w = np.sqrt(pose_weight)
    feats = np.concatenate([atlas_desc, w * atlas_pose], 1)
    query = np.concatenate([want, w * want_pose], 1)
    extra = atlas_cost if atlas_cost is not None else np.zeros(A)
    # the k nearest by descriptor, then re-ranked with the per-entry penalty among 2k; a block of output frames at a
    # time (an hour's 2k-wide temporaries took ~200 MB)
    kq, k = min(A, 2 * k), min(k, A)
    tree = cKDTree(feats)
    cand, cost = np.zeros((T, k), np.int64), np.zeros((T, k))
    for t0 in range(0, T, 8192):
        dist, idx = tree.query(query[t0:t0 + 8192], k=kq)
        dist, idx = dist.reshape(-1, kq), idx.reshape(-1, kq)
        full = dist ** 2 + extra[idx]
        order = np.argsort(full, axis=1)[:, :k]
        cand[t0:t0 + 8192] = np.take_along_axis(idx, order, 1)
        cost[t0:t0 + 8192] = np.take_along_axis(full, order, 1)
    acc = cost[0].copy()
    back = np.zeros((T, k), np.int64)
    for t in range(1, T):
        step = atlas_seq[cand[t]][None, :] - atlas_seq[cand[t - 1]][:, None]
        trans = np.full((k, k), jump_cost)
        trans[(step >= 1) & (step <= 2)] = 0.0
        trans[step == 0] = 0.15 * jump_cost
        tot = acc[:, None] + trans
        back[t] = np.argmin(tot, axis=0)
        acc = tot[back[t], np.arange(k)] + cost[t]
    path = np.zeros(T, np.int64)
    j = int(np.argmin(acc))
    for t in range(T - 1, -1, -1):
        path[t] = cand[t, j]
        j = back[t, j]
    return path


# --------------------------------------------------------------------------------------------------- warping

class TriangleMesh:
    """Piecewise-affine warp over a fixed Delaunay triangulation of a point set (canonical positions)."""

    def __init__(self, points: np.ndarray):
        pts = np.asarray(points, np.float64)[:, :2]
        self.triangles = Delaunay(pts).simplices.astype(np.int32)
        # drop sliver triangles spanning concave outlines
        a, b, cc = pts[self.triangles[:, 0]], pts[self.triangles[:, 1]], pts[self.triangles[:, 2]]
        area = 0.5 * np.abs((b[:, 0] - a[:, 0]) * (cc[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (cc[:, 0] - a[:, 0]))
        self.triangles = self.triangles[area > 1e-5]

    def warp(self, src_img: np.ndarray, src_pts: np.ndarray, dst_pts: np.ndarray, roi: tuple[int, int, int, int],
             detail: tuple[int, int, int, int] | None = None, step: int | None = None):
        """Pixels of src_img moved so src_pts land on dst_pts, inside roi (x0,y0,x1,y1) of the destination.

        The map is piecewise affine and continuous except where a triangle collapses (closing lips), so it is built
        at half resolution on large regions and upsampled; inside `detail` (the lips, destination coordinates) it is
        built at full resolution so the lip line stays sharp. Returns (warped roi image, coverage mask uint8)."""
        x0, y0, x1, y1 = roi
        h, w = y1 - y0, x1 - x0
        tri = self.triangles
        d = dst_pts[tri] - np.array([x0, y0], np.float64)  # (M,3,2)
        s = src_pts[tri].astype(np.float64)
        # affine per triangle: src = A @ [x, y, 1]
        m = np.concatenate([d, np.ones((len(tri), 3, 1))], axis=2)  # (M,3,3)
        det = np.linalg.det(m)
        ok = np.abs(det) > 1.0  # |det| = twice the area in pixels: collapsed triangles would sample wildly
        affine = np.zeros((len(tri), 3, 2))
        affine[ok] = np.linalg.solve(m[ok], s[ok])
        coefs = affine.reshape(len(tri), 6).astype(np.float32)
        if step is None:
            step = 2 if h * w > 120 * 120 else 1
        map_x, map_y, covered = _affine_maps(d[ok], np.flatnonzero(ok), coefs, 0, 0, w, h, step)
        out = cv2.remap(src_img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if detail is not None:
            # the lips: exact full-resolution map and cubic sampling (lip lines and teeth stay crisp)
            dx0, dy0 = max(0, detail[0] - x0), max(0, detail[1] - y0)
            dx1, dy1 = min(w, detail[2] - x0), min(h, detail[3] - y0)
            if dx1 > dx0 and dy1 > dy0:
                if step > 1:
                    fx, fy, fc = _affine_maps(d[ok], np.flatnonzero(ok), coefs, dx0, dy0, dx1 - dx0, dy1 - dy0, 1)
                    covered[dy0:dy1, dx0:dx1] = fc
                else:
                    fx = np.ascontiguousarray(map_x[dy0:dy1, dx0:dx1])
                    fy = np.ascontiguousarray(map_y[dy0:dy1, dx0:dx1])
                out[dy0:dy1, dx0:dx1] = cv2.remap(src_img, fx, fy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        return out, covered.astype(np.uint8) * 255


class MeshWarper(TriangleMesh):
    """Piecewise-affine warp over a fixed triangulation of the lower-face control points (+ an outer ring)."""

    def __init__(self, canonical: np.ndarray, ring_offset: float = 0.35):
        self.canonical = canonical
        c2 = canonical[CONTROL, :2]
        centre = 0.5 * (canonical[13, :2] + canonical[14, :2])
        jaw = canonical[F.JAW, :2]
        direction = jaw - centre
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        self.ring = np.concatenate([canonical[F.JAW], np.zeros((len(F.JAW), 0))], axis=1).copy()
        self.ring[:, :2] = jaw + ring_offset * direction  # fixed to the skull: the neck stretches under a jaw drop
        upper = canonical[UPPER_EDGE, :2]
        self.ring_up = canonical[UPPER_EDGE].copy()
        self.ring_up[:, 1] -= 0.12  # above the top edge, so the mesh covers the whole feathered mask
        super().__init__(np.concatenate([c2, self.ring[:, :2], self.ring_up[:, :2]]))
        del upper

    def control_points(self, shape: np.ndarray) -> np.ndarray:
        """(N,3) canonical control points for a 478-point canonical shape (ring fixed to the skull)."""
        return np.concatenate([shape[CONTROL], self.ring, self.ring_up])


FACE_OVAL = [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176,
             149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109]
NOSE = [168, 6, 197, 195, 5, 4, 1, 2, 98, 327, 129, 358, 48, 278]


class FaceWarper:
    """Moves the whole face (and, for head motion, the hair around it) in a frame: eyes, brows, cheeks and lids to
    new landmark positions, and optionally the head by a small 3D rotation.

    The mesh joins the face landmarks to two rings around the face oval: the inner one (hair, ears) follows the head,
    the outer one is fixed to the frame, so the background and body stay still and the warp is continuous (no
    tearing). Ring points outside the frame are pinned, so nothing is dragged in from beyond the frame edge."""

    POINTS = sorted(set(FACE_OVAL + NOSE + F.JAW + F.OUTER_UPPER + F.OUTER_LOWER + F.STABLE +
                        [33, 133, 263, 362] + _expression.UPPER_FACE))

    def __init__(self, canonical: np.ndarray, hair: float = 1.35, fixed: float = 2.1):
        c = np.asarray(canonical, np.float64)
        self.canonical = c
        centre = c[FACE_OVAL].mean(0)
        oval = c[FACE_OVAL]
        self.hair = centre + hair * (oval - centre)
        self.fixed = centre + fixed * (oval - centre)
        # how much of the head's motion the hair ring takes: all above the eyes, little at the chin (the neck)
        eye_y, chin_y = c[[33, 263], 1].mean(), c[F.CHIN, 1]
        self.follow = np.clip(1 - (oval[:, 1] - eye_y) / max(chin_y - eye_y, 1e-3) * 0.7, 0.25, 1.0)
        self.mesh = TriangleMesh(np.concatenate([c[self.POINTS, :2], self.hair[:, :2], self.fixed[:, :2]]))

    def pivot(self, pose: tuple) -> np.ndarray:
        """The neck joint in frame coordinates: behind the face, below the chin."""
        scale, rot, trans = pose
        c = self.canonical
        p = np.array([c[FACE_OVAL, 0].mean(), c[F.CHIN, 1] + 0.25, c[FACE_OVAL, 2].mean() + 0.9])
        return scale * rot @ p + trans

    def warp(self, frame: np.ndarray, pose: tuple, src: np.ndarray, dst: np.ndarray,
             head: np.ndarray | None = None) -> np.ndarray:
        """frame with landmarks `src` (478,3 frame px) moved to `dst`; `head` (3x3) additionally turns the hair ring
        about the neck (dst already includes the head's motion for the face itself)."""
        scale, rot, trans = pose
        h, w = frame.shape[:2]
        hair_src = scale * self.hair @ rot.T + trans
        fixed_src = scale * self.fixed @ rot.T + trans
        hair_dst = hair_src.copy()
        if head is not None:
            piv = self.pivot(pose)
            moved = (hair_src - piv) @ head.T + piv
            hair_dst = hair_src + self.follow[:, None] * (moved - hair_src)
        inside = (hair_src[:, 0] > 1) & (hair_src[:, 0] < w - 2) & (hair_src[:, 1] > 1) & (hair_src[:, 1] < h - 2)
        hair_dst[~inside] = hair_src[~inside]
        s_pts = np.concatenate([src[self.POINTS, :2], hair_src[:, :2], fixed_src[:, :2]])
        d_pts = np.concatenate([dst[self.POINTS, :2], hair_dst[:, :2], fixed_src[:, :2]])
        # the fixed ring is clipped to the frame: the warp leaves the frame's edge where it is
        d_pts[-len(self.fixed):] = np.clip(d_pts[-len(self.fixed):], [0, 0], [w - 1, h - 1])
        s_pts[-len(self.fixed):] = d_pts[-len(self.fixed):]
        x0, y0 = np.floor(np.maximum(d_pts.min(0), 0)).astype(int)
        x1, y1 = np.ceil(np.minimum(d_pts.max(0) + 1, [w, h])).astype(int)
        if x1 - x0 < 4 or y1 - y0 < 4:
            return frame
        # the face warp is smooth (a few pixels of motion): on large photos its map is built coarser
        step = int(np.clip(np.sqrt((x1 - x0) * (y1 - y0)) / 300, 2, 4))
        warped, cover = self.mesh.warp(frame, s_pts, d_pts, (x0, y0, x1, y1), step=step)
        out = frame.copy()
        np.copyto(out[y0:y1, x0:x1], warped, where=(cover > 0)[..., None])
        return out


def close_eyes(frame: np.ndarray, landmarks: np.ndarray, amount: float, px_per_unit: float) -> np.ndarray:
    """A closing eye after the lid warp: what is left of the eye between the (moved) lids is filled from the lid
    skin around it, and the lash line is drawn along the lid's edge; `amount` 0..1 blends it in."""
    out = frame
    h, w = frame.shape[:2]
    grow = max(1, int(round(0.012 * px_per_unit)))
    for upper, lower, corners in ((_expression.RIGHT_UPPER_LID, _expression.RIGHT_LOWER_LID, (33, 133)),
                                  (_expression.LEFT_UPPER_LID, _expression.LEFT_LOWER_LID, (263, 362))):
        lid = np.concatenate([landmarks[[corners[0]], :2], landmarks[upper, :2], landmarks[[corners[1]], :2]])
        poly = np.concatenate([lid, landmarks[lower[::-1], :2]])
        x0, y0 = np.floor(poly.min(0)).astype(int) - 4 * grow
        x1, y1 = np.ceil(poly.max(0)).astype(int) + 4 * grow
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 < 4 or y1 - y0 < 3:
            continue
        patch = np.ascontiguousarray(out[y0:y1, x0:x1])
        mask = np.zeros(patch.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(poly - [x0, y0]).astype(np.int32)], 255)
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=grow)
        filled = cv2.inpaint(patch, mask, 3, cv2.INPAINT_TELEA)
        lash = np.percentile(patch.reshape(-1, 3), 5, axis=0) * 0.8
        line = filled.copy()
        cv2.polylines(line, [np.round((lid - [x0, y0]) * 4).astype(np.int32)], False, tuple(float(v) for v in lash),
                      thickness=max(1, grow), lineType=cv2.LINE_AA, shift=2)
        soft = cv2.GaussianBlur(mask, (0, 0), grow).astype(np.float32)[..., None] / 255.0 * amount
        mixed = (patch * (1 - soft) + line * soft + 0.5).astype(np.uint8)
        if out is frame:
            out = frame.copy()
        out[y0:y1, x0:x1] = mixed
    return out


def _affine_maps(corners: np.ndarray, ids: np.ndarray, coefs: np.ndarray, x0: int, y0: int, w: int, h: int,
                 step: int):
    """remap maps for the w x h window at (x0, y0) of a piecewise-affine warp (triangles `corners`, affines `coefs`
    indexed by `ids`), computed every `step` pixels and upsampled."""
    pad = step - 1  # one coarse cell of margin: cv2.resize clamps at the edges, margins keep those exact
    hs, ws = -(-h // step) + 2 * pad, -(-w // step) + 2 * pad
    idx = np.full((hs, ws), -1, np.int32)
    offset = (step - 1) / 2 - pad * step  # window coordinate of coarse pixel 0's centre
    lo, hi = corners.min(axis=1), corners.max(axis=1)
    inside = (hi[:, 0] >= x0 - step) & (lo[:, 0] <= x0 + w + step) & (hi[:, 1] >= y0 - step) & \
        (lo[:, 1] <= y0 + h + step)  # only triangles that reach this window
    polys = np.round((corners[inside] - np.array([x0, y0]) - offset) / step * 16).astype(np.int32)
    for t, poly in zip(ids[inside], polys):
        cv2.fillConvexPoly(idx, poly, int(t), lineType=cv2.LINE_8, shift=4)
    # collapsed triangles (a closing mouth) leave hairline cracks: give them a neighbouring triangle's affine
    holes = idx < 0
    if holes.any():
        grown = cv2.dilate((idx + 1).astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32) - 1
        idx[holes] = grown[holes]
    covered = idx >= 0
    if step > 1:  # extend affines past the edge so bilinear upsampling never mixes in an undefined map
        grown = cv2.dilate((idx + 1).astype(np.float32), np.ones((3, 3), np.uint8), iterations=2)
        idx = np.where(covered, idx, grown.astype(np.int32) - 1)
    c = coefs[np.maximum(idx, 0)]  # (hs,ws,6): ax ay a1 bx by b1
    xs = np.arange(ws, dtype=np.float32)[None, :] * step + offset + x0
    ys = np.arange(hs, dtype=np.float32)[:, None] * step + offset + y0
    map_x = c[..., 0] * xs + c[..., 2] * ys + c[..., 4]
    map_y = c[..., 1] * xs + c[..., 3] * ys + c[..., 5]
    if step > 1:
        size = (ws * step, hs * step)
        m = pad * step
        map_x = cv2.resize(map_x, size, interpolation=cv2.INTER_LINEAR)[m:m + h, m:m + w]
        map_y = cv2.resize(map_y, size, interpolation=cv2.INTER_LINEAR)[m:m + h, m:m + w]
        covered = cv2.resize(covered.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)[m:m + h, m:m + w] > 0
    return np.ascontiguousarray(map_x, np.float32), np.ascontiguousarray(map_y, np.float32), covered


_INNER_TO_OUTER = [(CONTROL.index(i), CONTROL.index(o)) for i, o in
                   zip(F.INNER_UPPER[1:-1] + F.INNER_LOWER[1:-1], F.OUTER_UPPER[1:-1] + F.OUTER_LOWER[1:-1])]


def pull_inner_lips(control: np.ndarray, amount: float) -> np.ndarray:
    """Move the inner-lip control points `amount` of the way towards the outer contour (control-point order)."""
    out = control.copy()
    for i, o in _INNER_TO_OUTER:
        out[i] = control[i] + amount * (control[o] - control[i])
    return out


_INNER_RING = [CONTROL.index(i) for i in F.INNER_UPPER + F.INNER_LOWER[::-1][1:-1]]
_OUTER_RING = [CONTROL.index(i) for i in F.OUTER_UPPER + F.OUTER_LOWER[::-1][1:-1]]
# positions within the control points, looked up once rather than on every frame
_INNER_UPPER_POS = [CONTROL.index(i) for i in F.INNER_UPPER]
_INNER_LOWER_POS = [CONTROL.index(i) for i in F.INNER_LOWER]
_LIPS_POS = [CONTROL.index(i) for i in LIPS]
_OUTER_LIPS_POS = [CONTROL.index(i) for i in F.OUTER_UPPER + F.OUTER_LOWER]
_JAW_POS = [CONTROL.index(i) for i in F.JAW]


def _rounded(poly: np.ndarray, iterations: int = 2, closed: bool = True) -> np.ndarray:
    """Chaikin corner cutting: the 20-point lip contour becomes a smooth outline instead of a polygon; an open
    polyline (`closed=False`) keeps its end points."""
    for _ in range(iterations):
        nxt = np.roll(poly, -1, axis=0) if closed else poly[1:]
        cut = np.stack([0.75 * poly[:len(nxt)] + 0.25 * nxt, 0.25 * poly[:len(nxt)] + 0.75 * nxt], 1).reshape(-1, 2)
        poly = cut if closed else np.concatenate([poly[:1], cut, poly[-1:]])
    return poly


LIP_LINE_DEPTH = (0.25, 0.5)  # a closed lip line is this much darker than the lips: middle, corners
CLOSED_LINE_OPENING = (0.02, 0.04)  # canonical gaps: squeezed lips below the first touch, above the second part


def soften_lip_line(patch: np.ndarray, control: np.ndarray, roi: tuple[int, int, int, int], px_per_unit: float,
                    amount: float, gap_px: float = 0.0) -> np.ndarray:
    """Lips shut over an open source meet along a hard, pixel-stepped line (the collapsed gap takes its
    neighbours' maps pixel by pixel, and strips of the source's teeth survive in it): blur a thin band along the
    line and draw the soft, dark line that closed lips show there (`gap_px` wide when they are barely parted).
    `amount` 0..1; patch is changed in place and returned."""
    if amount <= 0:
        return patch
    x0, y0 = roi[:2]
    line = 0.5 * (control[_INNER_UPPER_POS, :2] + control[_INNER_LOWER_POS, :2]) - [x0, y0]
    line = _rounded(line, closed=False)
    half = max(3.0, 0.04 * px_per_unit + gap_px)
    bx0, by0 = np.maximum(np.floor(line.min(0) - half).astype(int), 0)
    bx1, by1 = np.minimum(np.ceil(line.max(0) + half).astype(int) + 1, patch.shape[1::-1])
    if bx1 - bx0 < 3 or by1 - by0 < 3:
        return patch
    sub = patch[by0:by1, bx0:bx1].astype(np.float32)
    pts = np.round((line - [bx0, by0]) * 16).astype(np.int32)

    def stroke(thickness: float, sigma: float) -> np.ndarray:
        m = np.zeros(sub.shape[:2], np.uint8)
        cv2.polylines(m, [pts], False, 255, thickness=max(1, int(round(thickness))), lineType=cv2.LINE_AA, shift=4)
        m = cv2.GaussianBlur(m.astype(np.float32), (0, 0), sigma)
        return m / max(float(m.max()), 1e-6)

    band = stroke(max(2.0, 0.02 * px_per_unit + gap_px), max(0.8, 0.006 * px_per_unit))
    crease = stroke(max(1.0, gap_px), max(0.6, 0.003 * px_per_unit))
    lips = sub[(band > 0.3) & (crease < 0.2)]
    lip_colour = np.median(lips, axis=0) if len(lips) else np.median(sub.reshape(-1, 3), axis=0)
    soft = cv2.GaussianBlur(sub, (0, 0), max(0.8, 0.005 * px_per_unit))
    a = (amount * band)[..., None]
    sub = sub * (1 - a) + soft * a
    # the line itself is painted (whatever the squeezed source left there, teeth included): a dark shade of the
    # lips' colour, deepest at the corners, lighter where filmed closed lips press together in the middle
    xs = np.arange(sub.shape[1], dtype=np.float32) + bx0
    rel = (xs - 0.5 * (line[0, 0] + line[-1, 0])) / max(0.5 * abs(line[-1, 0] - line[0, 0]), 1.0)
    depth = LIP_LINE_DEPTH[0] + (LIP_LINE_DEPTH[1] - LIP_LINE_DEPTH[0]) * np.clip(np.abs(rel), 0, 1) ** 2
    target = lip_colour[None, None, :] * (1 - depth)[None, :, None]
    c = (amount * crease)[..., None]
    sub = sub * (1 - c) + target * c
    patch[by0:by1, bx0:bx1] = np.clip(sub + 0.5, 0, 255).astype(np.uint8)
    return patch


def inner_lip_mask(control: np.ndarray, roi: tuple[int, int, int, int]) -> np.ndarray:
    """float32 mask of the mouth opening (inside the inner lip contour, corners rounded) in roi, soft-edged."""
    x0, y0, x1, y1 = roi
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    poly = np.round((_rounded(control[_INNER_RING, :2]) - [x0, y0]) * 16).astype(np.int32)
    cv2.fillPoly(mask, [poly], 255, lineType=cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(mask, (5, 5), 0).astype(np.float32) / 255.0


def synthetic_cavity(patch: np.ndarray, control: np.ndarray, roi: tuple[int, int, int, int],
                     px_per_unit: float | None = None, teeth: bool = True,
                     visible: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """A mouth interior for faces whose footage never shows one (a closed-mouth photo): a shaded cavity tinted like
    the lips, with a tongue towards the bottom and, when `teeth`, a row of upper teeth under the upper lip (and the
    lower teeth's edges once the mouth is wide open), lit like the face and receding into shadow at the sides."""
    # only the lips' box matters (the result is used inside the inner lip contour): on a large photo the whole
    # lower-face window would cost a quarter second a frame
    full = patch
    rx0, ry0, rx1, ry1 = roi
    outer = control[_OUTER_RING, :2]
    bx0, by0 = np.maximum(np.floor(outer.min(0)).astype(int) - 3, [rx0, ry0])
    bx1, by1 = np.minimum(np.ceil(outer.max(0)).astype(int) + 4, [rx1, ry1])
    if bx1 - bx0 < 2 or by1 - by0 < 2:
        return full.copy()
    patch = full[by0 - ry0:by1 - ry0, bx0 - rx0:bx1 - rx0]
    roi = (bx0, by0, bx1, by1)
    x0, y0, x1, y1 = roi
    h, w = patch.shape[:2]
    lips = np.zeros((h, w), np.uint8)
    cv2.fillPoly(lips, [np.round(control[_OUTER_RING, :2] - [x0, y0]).astype(np.int32)], 255)
    inner = inner_lip_mask(control, roi) > 0.5
    ring = (lips > 0) & ~inner
    tint = np.median(patch[ring], axis=0).astype(np.float32) if ring.any() else np.array([150, 70, 70], np.float32)
    grey = float(np.ptp(np.median(patch.reshape(-1, 3), axis=0))) < 4  # a black-and-white picture stays grey
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    up = control[_INNER_UPPER_POS, :2] - [x0, y0]
    lo = control[_INNER_LOWER_POS, :2] - [x0, y0]
    order = np.argsort(up[:, 0])
    y_up = np.interp(xs[0], up[order, 0], up[order, 1])[None, :]  # upper inner lip per column
    order = np.argsort(lo[:, 0])
    y_lo = np.interp(xs[0], lo[order, 0], lo[order, 1])[None, :]
    gap = np.maximum(y_lo - y_up, 1.0)
    depth = np.clip((ys - y_up) / gap, 0, 1)  # 0 under the upper lip .. 1 at the lower lip
    if visible is not None:  # (top, bottom) rows per roi column of what shows between the real teeth
        top, bottom = (np.asarray(v, np.float32)[bx0 - rx0:bx1 - rx0][None, :] + ry0 - y0 for v in visible)
        depth = np.clip((ys - top) / np.maximum(bottom - top, 1.0), 0, 1)
    shade = (0.14 + 0.30 * depth ** 1.5)[..., None]
    tongue = np.array([1.0, 1.0, 1.0] if grey else [1.0, 0.75, 0.75], np.float32)  # redder than the lips' tint
    out = tint[None, None, :] * tongue * shade
    if teeth and px_per_unit:
        left, right = control[CONTROL.index(78), :2] - [x0, y0], control[CONTROL.index(308), :2] - [x0, y0]
        cx, half = 0.5 * (left[0] + right[0]), max(0.5 * abs(right[0] - left[0]), 1.0)
        rel = (xs - cx) / half  # -1 .. 1 corner to corner
        light = float(np.clip(np.mean(tint) / 140.0, 0.55, 1.15))
        enamel = np.array([226, 226, 226] if grey else [232, 226, 212], np.float32) * light
        # crowns: about 0.05 face units tall, never more than 55 % of the gap; darker away from the front
        crown = np.minimum(0.05 * px_per_unit, 0.55 * gap)
        in_upper = np.clip((y_up + crown - ys) / 1.5, 0, 1) * (ys >= y_up - 1)
        lower_crown = np.minimum(0.03 * px_per_unit, np.maximum(gap - 0.11 * px_per_unit, 0) * 0.5)
        in_lower = np.clip((ys - (y_lo - lower_crown)) / 1.5, 0, 1) * (ys <= y_lo + 1)
        recede = np.clip(1 - 0.65 * np.abs(rel) ** 1.6, 0.2, 1)
        # gaps between teeth: incisors ~0.085 units wide, then narrower towards the canines
        edges = np.array([0.0, 0.085, 0.155, 0.215, 0.265, 0.31]) * px_per_unit
        dist = np.min(np.abs(np.abs(xs - cx)[..., None] - edges[None, None, :]), axis=-1)
        seam = 1 - 0.25 * np.exp(-(dist / max(0.006 * px_per_unit, 0.6)) ** 2)
        # a little shade under the lip and towards the biting edge
        top_shadow = np.clip((ys - y_up) / max(0.012 * px_per_unit, 1.0), 0.55, 1.0)
        t_up = (enamel * (recede * seam * top_shadow)[..., None])
        t_lo = enamel * 0.8 * (recede * seam)[..., None]
        m_up = (in_upper * np.clip(1.3 - np.abs(rel), 0, 1))[..., None]
        m_lo = (in_lower * np.clip(1.2 - np.abs(rel), 0, 1))[..., None]
        out = out * (1 - m_up) + t_up * m_up
        out = out * (1 - m_lo) + t_lo * m_lo
    out = cv2.GaussianBlur(np.clip(out, 0, 255).astype(np.float32), (0, 0), 0.6)
    result = full.copy()
    result[by0 - ry0:by1 - ry0, bx0 - rx0:bx1 - rx0] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return result


def inner_polygon(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points[F.INNER_UPPER], points[F.INNER_LOWER[::-1][1:-1]]])[:, :2]


# --------------------------------------------------------------------------------------------------- renderer

def _pose_features(pose: F.Pose, idx: np.ndarray) -> np.ndarray:
    # direction of the face normal in the image: sin(yaw), sin(pitch)
    return pose.rotation[idx][:, :2, 2]


def fill_atlas(atlas: Atlas, video: Path, track: F.FaceTrack, pose: F.Pose, seq_offset: int = 0,
               keep: np.ndarray | None = None, stride: int = 1,
               progress: Callable[[str, int, int], None] | None = None, start: int = 0,
               stop: int | None = None) -> int:
    """Add `video`'s usable frames in [start, stop) (valid, and `keep` where given; every `stride`-th) to the atlas;
    returns the number added. Sequence numbers continue runs of kept frames, so selection prefers playing them in
    order."""
    added = 0
    stop = len(track) if stop is None else min(stop, len(track))
    for fr in media.iter_frames(video, start):
        i = fr.index
        if i >= stop:
            break
        if track.valid[i] and i % stride == 0 and (keep is None or keep[i]):
            added += atlas.add(seq_offset + i // stride, fr.rgb, track.landmarks[i],
                               (pose.scale[i], pose.rotation[i], pose.translation[i]))
        if progress:
            progress("atlas", i + 1, len(track))
    return added


def fill_atlas_in_halves(atlas: Atlas, video: Path, track: F.FaceTrack, pose: F.Pose, seq_offset: int = 0,
                         keep: np.ndarray | None = None, stride: int = 1,
                         progress: Callable[[str, int, int], None] | None = None) -> int:
    """fill_atlas on two threads, one per half of the video (decoding, warping and JPEG coding run in native code
    without the GIL); short clips on one."""
    from concurrent.futures import ThreadPoolExecutor

    if len(track) < 50:
        return fill_atlas(atlas, video, track, pose, seq_offset, keep, stride, progress)
    second = Atlas(atlas.canonical, atlas.scale)
    mid = len(track) // 2
    with ThreadPoolExecutor(1, thread_name_prefix="lipdub-atlas") as pool:
        job = pool.submit(fill_atlas, second, video, track, pose, seq_offset, keep, stride, None, mid)
        added = fill_atlas(atlas, video, track, pose, seq_offset, keep, stride, progress, stop=mid)
        added += job.result()
    atlas.merge(second)
    return added


class Renderer:
    """Renders output frames in order: mouths from an atlas (the clip's own, or an actor profile's) warped onto the
    target track's head pose at the wanted opening and width."""

    def __init__(self, atlas: Atlas, track: F.FaceTrack, pose: F.Pose | None = None, model: MouthModel | None = None,
                 colour: compose.ColourMatcher | None = None, region: str = "lower"):
        if atlas.n == 0:
            raise InputError("the mouth atlas is empty: no usable face frames to draw mouths from")
        self.atlas, self.track = atlas, track
        self.canonical = atlas.canonical
        self.pose = pose if pose is not None else F.estimate_pose(track, self.canonical)
        self.warper = atlas.warper
        self._own_model = model is None
        self.model = model
        self.index_atlas()
        self._edge_pos = [CONTROL.index(i) for i in UPPER_EDGE]
        self.colour = colour or compose.ColourMatcher()
        self.region = region
        self.prev_j: int | None = None

    def index_atlas(self) -> None:
        """(Re)read the atlas's descriptors: after entries were added (live mode grows its atlas as frames come)."""
        self.norm = self.atlas.norm
        if self._own_model:
            self.model = build_mouth_model(self.canonical, self.norm, np.ones(len(self.norm), bool))
        self.atlas_desc = descriptors(self.norm)
        self.atlas_open = self.atlas_desc[:, 0]
        self.donor = int(np.argmax(self.atlas_open))  # the most open mouth: interior donor
        self.donor_src = self.atlas.src_controls[self.donor].astype(np.float64)

    @classmethod
    def for_video(cls, video: Path, info: media.VideoInfo, track: F.FaceTrack,
                  progress: Callable[[str, int, int], None] | None = None, budget_bytes: int = 300 << 20):
        """The clip as its own appearance source."""
        canonical = F.canonical_shape(track)
        pose = F.estimate_pose(track, canonical)
        atlas = Atlas(canonical, float(np.median(pose.scale[track.valid])))
        stride = max(1, int(np.ceil(int(track.valid.sum()) * atlas.bytes_per_entry() / budget_bytes)))
        fill_atlas_in_halves(atlas, video, track, pose, stride=stride, progress=progress)
        if atlas.n == 0:
            raise InputError(f"could not build a mouth atlas from {video}; is the face too small or turned away?")
        return cls(atlas, track, pose)

    def wanted(self, mouth: motion.MouthTrack) -> tuple[np.ndarray, np.ndarray]:
        """Canonical opening and width per output frame."""
        m = self.model
        opening = mouth.opening * m.open_max
        if self.region == "lips":  # lips part without the jaw: only as far as lips alone can open
            opening = np.minimum(opening, 0.07)
        return opening, m.rest_width * (1 + 0.12 * mouth.width)

    def plan(self, schedule: np.ndarray, mouth: motion.MouthTrack, teeth: np.ndarray | None = None,
             teeth_weight: float = 0.25):
        """Wanted canonical opening/width per output frame and the atlas entry to draw each from. `teeth`
        (per output frame, atlas teeth units) makes selection match teeth visibility too."""
        m = self.model
        open_c, width_c = self.wanted(mouth)
        scale = np.array([1 / m.open_max, 3 / m.rest_width])
        desc = self.atlas_desc * scale
        want = np.stack([open_c, width_c], 1) * scale
        if teeth is not None:
            t_scale = teeth_weight / max(float(np.percentile(self.atlas.teeth, 90)), 1e-3)
            desc = np.concatenate([desc, self.atlas.teeth[:, None] * t_scale], 1)
            want = np.concatenate([want, np.asarray(teeth, np.float64)[:, None] * t_scale], 1)
        sel = select_frames(desc, self.atlas.pose_feat.astype(np.float64), self.atlas.seq, want,
                            _pose_features(self.pose, np.minimum(schedule, len(self.track) - 1)),
                            jump_cost=0.05, pose_weight=2.0, atlas_cost=self.blur_cost())
        return open_c, width_c, sel

    def blur_cost(self) -> np.ndarray:
        """Penalty for atlas frames blurrier than the atlas's typical frame (motion blur ghosts the lips)."""
        sharp = self.atlas.sharpness.astype(np.float64)
        typical = float(np.median(sharp)) if len(sharp) else 0.0
        if typical <= 0:
            return np.zeros(len(sharp))
        return 0.3 * np.clip(1 - sharp / typical, 0, 1) ** 2

    def retarget(self, track: F.FaceTrack) -> "Renderer":
        """The same atlas and mouth model drawing onto another track (landmarks moved by head motion or expression)."""
        return Renderer(self.atlas, track, model=self.model, colour=self.colour, region=self.region)

    def frame(self, k: int, j: int, frame: np.ndarray, plan, offsets: np.ndarray | None = None
              ) -> tuple[np.ndarray, bool]:
        """Output frame k drawn over source frame j; frames without the speaker pass through untouched. `offsets`
        (478,3 canonical) move the wanted face (an emotion's mouth corners)."""
        open_c, width_c, sel = plan
        if not self._enter(j):
            return frame, False
        return self.render_frame(frame, j, int(sel[k]), float(open_c[k]), float(width_c[k]), offsets), True

    def _enter(self, j: int) -> bool:
        """Whether source frame j has the speaker to draw on; keeps colour smoothing to runs of the same shot."""
        if j >= len(self.track) or not self.track.valid[j]:
            self.colour.reset()
            self.prev_j = None
            return False
        if self.prev_j is not None and abs(j - self.prev_j) > 1:
            self.colour.reset()  # a loop jump: the lighting may differ
        self.prev_j = j
        return True

    def _to_frame(self, j: int, shape: np.ndarray) -> np.ndarray:
        dst = self.pose.to_frame(j, self.warper.control_points(shape))[:, :2]
        # the top edge stays exactly where this frame has it, so the seam lines up with the unchanged cheeks
        dst[self._edge_pos] = self.track.landmarks[j, UPPER_EDGE, :2]
        return dst

    def interior(self, patch: np.ndarray, j: int, dst: np.ndarray, roi, detail, opening: float, width: float,
                 whole_when_close: bool = True):
        """Mouth interior for a target opening wider than the chosen atlas mouth."""
        d, n_ctrl = self.donor, len(CONTROL)
        donor_open = float(self.atlas_open[d])
        if whole_when_close and donor_open >= 0.85 * opening:  # the clip has a mouth this open: use it whole
            return self.warper.warp(self.atlas.crop(d), self.donor_src, dst, roi, detail)[0]
        # wider than the clip ever opens (a photo, a mumbler): the donor's upper teeth stay under the upper lip,
        # its lower teeth ride down with the jaw, and the gap between them is a dark cavity
        if donor_open < 0.02:
            return synthetic_cavity(patch, dst[:n_ctrl], roi, float(self.pose.scale[j]), teeth=True)
        dst_u = self._to_frame(j, target_shape(self.model, self.norm[d], donor_open, width))
        teeth = self.warper.warp(self.atlas.crop(d), self.donor_src, dst_u, roi, detail)[0]
        # per column: where the donor's teeth meet (midway between its inner lips, following the smile's curve) and
        # how far the jaw drops there (most at the centre, nothing at the corners), so the gap opens as a lens
        x0, y0 = roi[:2]
        h, w = teeth.shape[:2]
        cols = np.arange(w, dtype=np.float32) + x0
        up_u, lo_u, lo_d = (dst_u[_INNER_UPPER_POS], dst_u[_INNER_LOWER_POS], dst[_INNER_LOWER_POS])
        order = np.argsort(lo_u[:, 0])
        meet = np.interp(cols, lo_u[order, 0], 0.5 * (up_u[order, 1] + lo_u[order, 1])) - y0
        drop = np.interp(cols, lo_u[order, 0], np.maximum(lo_d[order, 1] - lo_u[order, 1], 0.0), left=0.0, right=0.0)
        slide = np.interp(cols, lo_u[order, 0], lo_d[order, 0] - lo_u[order, 0], left=0.0, right=0.0)  # a tilted jaw
        rows = np.arange(h, dtype=np.float32)[:, None]
        map_x = np.broadcast_to((np.arange(w) - slide).astype(np.float32)[None, :], (h, w)).copy()
        map_y = np.broadcast_to((rows - drop[None, :]).astype(np.float32), (h, w)).copy()
        teeth_low = cv2.remap(teeth, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # the cavity is shaded over what shows between the teeth: dark under the upper teeth, the tongue below
        cavity = synthetic_cavity(patch, dst[:n_ctrl], roi, float(self.pose.scale[j]), teeth=False,
                                  visible=(meet, meet + drop))
        mask_u = inner_lip_mask(dst_u[:n_ctrl], roi)
        mask_l = cv2.remap(mask_u, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        fade = max(1.5, 0.012 * float(self.pose.scale[j]))  # teeth edges fade into the cavity, no cut line
        mask_u = (mask_u * np.clip((meet[None, :] - rows) / fade + 0.5, 0, 1)).astype(np.float32)
        mask_l = (mask_l * np.clip((rows - meet[None, :] - drop[None, :]) / fade + 0.5, 0, 1)).astype(np.float32)
        # OpenCV's per-pixel blends: native code without the GIL, a fifth of numpy's float64 arithmetic here
        out = cv2.blendLinear(teeth, cavity, mask_u, 1.0 - mask_u)
        return cv2.blendLinear(teeth_low, out, mask_l, 1.0 - mask_l)

    def _target(self, j: int, a: int, opening: float, width: float, offsets: np.ndarray | None) -> np.ndarray:
        """Frame-j positions of the control points for atlas entry a drawn at this opening and width."""
        shape = target_shape(self.model, self.norm[a], opening, width)
        if offsets is not None:
            shape = shape + offsets
        return self._to_frame(j, shape)

    def frame_planar(self, k: int, j: int, frame: "media.PlanarFrame", plan) -> tuple["media.PlanarFrame", bool]:
        """frame() on a decoded YUV frame, changed in place: only the box the mouth is drawn in goes to RGB and back,
        and only the pixels the drawing changed are written, so the rest stays exactly as decoded."""
        open_c, width_c, sel = plan
        if not self._enter(j):
            return frame, False
        a, opening, width = int(sel[k]), float(open_c[k]), float(width_c[k])
        dst = self._target(j, a, opening, width, None)
        # everything render_frame reads or writes lies in this roi (see there)
        box = frame.box(compose.region_of_interest(dst, frame.width, frame.height, margin=2), pad=2)
        x0, y0, x1, y1 = box
        if x1 <= x0 or y1 <= y0:
            return frame, True
        canvas = np.empty((frame.height, frame.width, 3), np.uint8)  # only the box is ever filled or read
        canvas[y0:y1, x0:x1] = frame.rgb(box)
        self.render_frame(canvas, j, a, opening, width, dst=dst, inplace=True)
        (rx0, ry0, rx1, ry1), alpha = self._drawn
        changed = np.zeros((y1 - y0, x1 - x0), bool)
        changed[ry0 - y0:ry1 - y0, rx0 - x0:rx1 - x0] = alpha > 0  # where the blend took anything of the patch
        frame.put_rgb(box, canvas[y0:y1, x0:x1], changed)
        return frame, True

    def render_frame(self, frame: np.ndarray, j: int, a: int, opening: float, width: float,
                     offsets: np.ndarray | None = None, dst: np.ndarray | None = None,
                     inplace: bool = False) -> np.ndarray:
        """Frame j with atlas entry a drawn at this opening and width; reads and writes only inside the roi of
        the control points `dst` (computed when not given) with a 2-pixel margin."""
        atlas = self.atlas
        if dst is None:
            dst = self._target(j, a, opening, width, offsets)
        n_ctrl = len(CONTROL)
        src = atlas.src_controls[a].astype(np.float64)
        src_open = float(self.atlas_open[a])
        # (a closed source has no teeth to cover: pulling its lips apart only folds them into a hard seam)
        squeeze = max(1 - opening / 0.04, 1 - opening / src_open) if src_open > 0.02 else 0.0
        if squeeze > 0:
            # a mouth closing over its source: the lips cover the teeth instead of teeth being squeezed onto
            # the lips (MediaPipe's inner contour often sits on the teeth' edge, not the lip's)
            src[:n_ctrl] = pull_inner_lips(src[:n_ctrl], 0.35 * min(squeeze, 1.0))
        h, w = frame.shape[:2]
        scale = self.pose.scale[j]
        roi = compose.region_of_interest(dst, w, h, margin=2)
        lips = dst[_LIPS_POS]
        margin = 0.08 * scale
        detail = (int(lips[:, 0].min() - margin), int(lips[:, 1].min() - margin),
                  int(lips[:, 0].max() + margin) + 1, int(lips[:, 1].max() + margin) + 1)
        warped, cover = self.warper.warp(atlas.crop(a), src, dst, roi, detail)
        touch, part = CLOSED_LINE_OPENING
        if squeeze > 0 and opening < part:
            # a shut or barely parted mouth drawn from an open one: its lip line needs redrawing
            soften_lip_line(warped, dst[:n_ctrl], roi, float(scale),
                            min(1.0, squeeze) * float(np.clip((part - opening) / (part - touch), 0, 1)),
                            gap_px=opening * float(scale))
        lack = opening - self.atlas_open[a]
        # the chosen mouth is the interior donor itself (a photo's only mouth): its teeth split along the jaw as soon
        # as the mouth opens past it, in full (half-blended with the stretched mouth they showed a grey bar)
        own = a == self.donor and lack > 0
        if opening > 0.05 and (lack > 0.2 * opening or own):
            # the chosen mouth is less open than asked: a stretched interior looks smeared, so the opening shows
            # the clip's most open mouth: real teeth and tongue, anchored to the lips
            # a steep ramp: half-blended interiors show two sets of teeth (ghosting)
            weight = 1.0 if own else float(np.clip((lack / opening - 0.2) / 0.15, 0.0, 1.0))
            interior = self.interior(warped, j, dst, roi, detail, opening, width, whole_when_close=not own)
            m = (inner_lip_mask(dst[:n_ctrl], roi) * weight).astype(np.float32)
            warped = cv2.blendLinear(interior, warped, m, 1.0 - m)
        if self.region == "lips":
            # lips and a little skin around them (grown outer lip contours of the frame and of the new mouth): the
            # jaw and chin outside stay as filmed (moving them with fixed neighbours would fold the mesh)
            lips_now = self.track.landmarks[j, F.OUTER_UPPER + F.OUTER_LOWER, :2]
            both = np.concatenate([dst[_OUTER_LIPS_POS], lips_now])
            centre = both.mean(0)
            hull = centre + 1.35 * (both - centre)
            alpha = compose.feathered_mask(hull, roi, feather=0.06 * scale)
        else:
            hull = np.concatenate([dst[_JAW_POS],
                                   self.track.landmarks[j, F.JAW, :2],
                                   self.track.landmarks[j, UPPER_EDGE, :2]])
            alpha = compose.feathered_mask(hull, roi, feather=0.12 * scale)
        alpha *= cover.astype(np.float32) / 255.0
        x0, y0, x1, y1 = roi
        warped = self.colour(warped, frame[y0:y1, x0:x1], alpha)
        self._drawn = roi, alpha
        return compose.blend(frame, warped, alpha, roi, inplace=inplace)
