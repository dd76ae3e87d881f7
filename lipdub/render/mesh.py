"""mesh: piecewise-affine warps over a fixed triangulation (the lower face's control points, or any point set)."""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from lipdub.core.landmarks import JAW, UPPER_EDGE
from lipdub.render.mouth import CONTROL

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
             detail: tuple[int, int, int, int] | None = None, step: int | None = None,
             also: tuple | None = None, used: np.ndarray | None = None):
        """Pixels of src_img moved so src_pts land on dst_pts, inside roi (x0,y0,x1,y1) of the destination.

        The map is piecewise affine and continuous except where a triangle collapses (closing lips), so it is built
        at half resolution on large regions and upsampled; inside `detail` (the lips, destination coordinates) it is
        built at full resolution so the lip line stays sharp. Returns (warped roi image, coverage mask uint8), and
        with `also` = (a second image, its points, a window x0, y0, x1, y1 of the roi) that image moved onto the same
        dst_pts as well inside the window (elsewhere the first image's), sampled cubic (a frame's own skin: linear
        sampling at a half-pixel shift keeps half its grain). With `used` (bool, the roi's shape: the pixels the
        caller reads), both images are drawn only in bands of rows around those pixels (and the lips' window), the
        same values there; elsewhere they are 0 (the second image outside its window too: nothing reads it there).
        Each band is drawn straight into the output (OpenCV writes into the view), none copied."""
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
        lips = None
        if detail is not None:
            dx0, dy0 = max(0, detail[0] - x0), max(0, detail[1] - y0)
            dx1, dy1 = min(w, detail[2] - x0), min(h, detail[3] - y0)
            lips = (dx0, dy0, dx1, dy1) if dx1 > dx0 and dy1 > dy0 else None
        if used is None:
            bands, (mx0, my0) = None, (0, 0)  # the maps' origin in the roi
            map_x, map_y, covered, raster = _affine_maps(d[ok], np.flatnonzero(ok), coefs, 0, 0, w, h, step)
            out = _remap_around(src_img, map_x, map_y, lips)  # (the lips' window is drawn below)
        else:
            # the maps only in the box of the bands and the lips (about 40 % of the roi: the mesh's outer ring is
            # never read), the same values there (_affine_maps' window); the coverage of the whole roi
            raster = _triangle_raster(d[ok], np.flatnonzero(ok), 0, 0, w, h, step)
            covered = _coverage(raster[1], step, w, h)
            bands = _bands(used, () if lips is None else (lips[1], lips[3]))
            out = np.zeros((h, w) + src_img.shape[2:], src_img.dtype)
            box = _box_of(bands + ([] if lips is None else [(lips[1], lips[3], lips[0], lips[2])]))
            if box is not None:
                mx0, my0, mx1, my1 = box
                map_x, map_y = _affine_maps(d[ok], np.flatnonzero(ok), coefs, 0, 0, w, h, step, raster, box)[:2]
                hole = None if lips is None else (lips[0] - mx0, lips[1] - my0, lips[2] - mx0, lips[3] - my0)
                _remap_around(src_img, map_x, map_y, hole,
                              [(r0 - my0, r1 - my0, c0 - mx0, c1 - mx0) for r0, r1, c0, c1 in bands],
                              out[my0:my1, mx0:mx1])
        if lips is not None:
            # the lips: exact full-resolution map and cubic sampling (lip lines and teeth stay crisp)
            if step > 1:
                fx, fy, fc, _ = _affine_maps(d[ok], np.flatnonzero(ok), coefs, dx0, dy0, dx1 - dx0, dy1 - dy0, 1)
                covered[dy0:dy1, dx0:dx1] = fc
            else:
                r, c = slice(dy0 - my0, dy1 - my0), slice(dx0 - mx0, dx1 - mx0)
                fx, fy = map_x[r, c], map_y[r, c]
            cv2.remap(src_img, fx, fy, cv2.INTER_CUBIC, out[dy0:dy1, dx0:dx1], borderMode=cv2.BORDER_REPLICATE)
        second = None
        if also is not None:  # the same triangles: their raster is reused, only the affines differ
            affine2 = np.zeros((len(tri), 3, 2))
            affine2[ok] = np.linalg.solve(m[ok], also[1][tri][ok].astype(np.float64))
            wx0, wy0, wx1, wy1 = (int(v) for v in also[2])
            mx, my = _affine_maps(d[ok], np.flatnonzero(ok), affine2.reshape(len(tri), 6).astype(np.float32),
                                  0, 0, w, h, step, raster, (wx0, wy0, wx1, wy1))[:2]
            if bands is None:
                second = out.copy()
                cv2.remap(also[0], mx, my, cv2.INTER_CUBIC, second[wy0:wy1, wx0:wx1], borderMode=cv2.BORDER_REPLICATE)
            else:  # (outside the window nothing reads it: 0 there, not a copy of the first image)
                second = np.zeros_like(out)
            for r0, r1, c0, c1 in bands or ():  # (each pixel from its own map entries: the same values)
                r0, r1, c0, c1 = max(r0, wy0), min(r1, wy1), max(c0, wx0), min(c1, wx1)
                if r1 > r0 and c1 > c0:
                    r, c = slice(r0 - wy0, r1 - wy0), slice(c0 - wx0, c1 - wx0)
                    cv2.remap(also[0], mx[r, c], my[r, c], cv2.INTER_CUBIC, second[r0:r1, c0:c1],
                              borderMode=cv2.BORDER_REPLICATE)
        if second is not None:
            return out, covered.view(np.uint8) * np.uint8(255), second
        return out, covered.view(np.uint8) * np.uint8(255)


class MeshWarper(TriangleMesh):
    """Piecewise-affine warp over a fixed triangulation of the lower-face control points (+ an outer ring)."""

    def __init__(self, canonical: np.ndarray, ring_offset: float = 0.35):
        self.canonical = canonical
        c2 = canonical[CONTROL, :2]
        centre = 0.5 * (canonical[13, :2] + canonical[14, :2])
        jaw = canonical[JAW, :2]
        direction = jaw - centre
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        self.ring = np.concatenate([canonical[JAW], np.zeros((len(JAW), 0))], axis=1).copy()
        self.ring[:, :2] = jaw + ring_offset * direction  # fixed to the skull: the neck stretches under a jaw drop
        self.ring_up = canonical[UPPER_EDGE].copy()
        self.ring_up[:, 1] -= 0.12  # above the top edge, so the mesh covers the whole feathered mask
        super().__init__(np.concatenate([c2, self.ring[:, :2], self.ring_up[:, :2]]))

    def control_points(self, shape: np.ndarray) -> np.ndarray:
        """(N,3) canonical control points for a 478-point canonical shape (ring fixed to the skull)."""
        return np.concatenate([shape[CONTROL], self.ring, self.ring_up])


def _affine_maps(corners: np.ndarray, ids: np.ndarray, coefs: np.ndarray, x0: int, y0: int, w: int, h: int,
                 step: int, raster: tuple | None = None, used: tuple | None = None):
    """remap maps for the w x h window at (x0, y0) of a piecewise-affine warp (triangles `corners`, affines `coefs`
    indexed by `ids`), computed every `step` pixels and upsampled; and the raster of which triangle covers each
    coarse pixel, which a second warp onto the same triangles passes back as `raster` to skip drawing them again.
    With `used` = (ux0, uy0, ux1, uy1) in the window, the maps of that part alone (the same values), no coverage."""
    if raster is None:
        raster = _triangle_raster(corners, ids, x0, y0, w, h, step)
    idx, covered = raster
    pad = step - 1
    hs, ws = idx.shape
    offset = (step - 1) / 2 - pad * step
    xs = np.arange(ws, dtype=np.float32)[None, :] * step + offset + x0
    ys = np.arange(hs, dtype=np.float32)[:, None] * step + offset + y0
    m = pad * step
    rows, cols = slice(0, hs), slice(0, ws)
    if used is not None:
        # the coarse cells the used part interpolates from, one more each side (the upsampling reads one neighbour);
        # its rows alone are upsampled, at the full width (OpenCV's resize may round a column by where it falls in
        # its vector loop, which the width decides)
        ux0, uy0, ux1, uy1 = used
        rows, cols = slice(uy0, uy1), slice(ux0, ux1)
        if step > 1:
            rows = slice(max(0, (uy0 + m) // step - 1), min(hs, (uy1 - 1 + m) // step + 2))
            cols = slice(max(0, (ux0 + m) // step - 1), min(ws, (ux1 - 1 + m) // step + 2))
    # src x = ax x + ay y + a1, src y = bx x + by y + b1; each coefficient looked up on its own (contiguous planes,
    # half the time of one (hs, ws, 6) gather) into one scratch plane, summed in place in the same order and type
    # (float64 where the window's origin is a numpy integer, cast to float32 at the end)
    dtype = np.result_type(coefs, xs, ys)
    coefs = coefs.astype(dtype, copy=False)
    idx, xs, ys = idx[rows, cols].astype(np.intp), xs[:, cols], ys[rows]  # (take casts int32 indices at each call)
    maps, term = [], np.empty(idx.shape, dtype)
    for a, b, c in ((0, 2, 4), (1, 3, 5)):
        out = np.take(coefs[:, a], idx) * xs
        out += np.multiply(np.take(coefs[:, b], idx, out=term), ys, out=term)
        out += np.take(coefs[:, c], idx, out=term)
        maps.append(out)
    if used is not None:
        if step == 1:
            return tuple(p.astype(np.float32, copy=False) for p in maps) + (None, raster)
        full = [np.zeros((rows.stop - rows.start, ws), dtype) for _ in maps]  # (columns nothing used reads)
        for f, p in zip(full, maps):
            f[:, cols] = p
        size = (ws * step, (rows.stop - rows.start) * step)
        r, c = m + uy0 - rows.start * step, m + ux0
        mx, my = (cv2.resize(f, size, interpolation=cv2.INTER_LINEAR)[r:r + uy1 - uy0, c:c + ux1 - ux0] for f in full)
        return mx.astype(np.float32, copy=False), my.astype(np.float32, copy=False), None, raster
    map_x, map_y = maps
    if step > 1:  # (row-strided views of the upsampled maps: OpenCV reads them without a copy)
        size = (ws * step, hs * step)
        map_x = cv2.resize(map_x, size, interpolation=cv2.INTER_LINEAR)[m:m + h, m:m + w]
        map_y = cv2.resize(map_y, size, interpolation=cv2.INTER_LINEAR)[m:m + h, m:m + w]
    return (map_x.astype(np.float32, copy=False), map_y.astype(np.float32, copy=False),
            _coverage(covered, step, w, h), raster)


def _coverage(covered: np.ndarray, step: int, w: int, h: int) -> np.ndarray:
    """The w x h window's coverage (bool) from the coarse raster's (_triangle_raster)."""
    if step == 1:
        return covered
    m = (step - 1) * step
    size = (covered.shape[1] * step, covered.shape[0] * step)
    return cv2.resize(covered.view(np.uint8), size, interpolation=cv2.INTER_NEAREST)[m:m + h, m:m + w] > 0


def _box_of(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) around (row0, row1, col0, col1) boxes; None without any."""
    if not boxes:
        return None
    rows0, rows1, cols0, cols1 = zip(*boxes)
    return min(cols0), min(rows0), max(cols1), max(rows1)


def _remap_around(img: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, hole: tuple | None,
                  bands: list | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """cv2.remap (linear) of the whole maps but the window `hole` (x0, y0, x1, y1), left unset for the caller to
    fill: each pixel depends on its own map entries alone, so the bands give the same pixels. With `bands` (row0,
    row1, col0, col1 boxes, none across the hole's top or bottom row) only those, less the hole; the rest is 0, or,
    into `out` (the maps' shape: drawn in place, no band copied), as `out` had it."""
    if hole is None and bands is None:
        return cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    h, w = map_x.shape
    if bands is None:
        hx0, hy0, hx1, hy1 = hole
        out = np.empty((h, w) + img.shape[2:], img.dtype)
        boxes = [(0, hy0, 0, w), (hy1, h, 0, w), (hy0, hy1, 0, hx0), (hy0, hy1, hx1, w)]
    else:
        out = np.zeros((h, w) + img.shape[2:], img.dtype) if out is None else out
        boxes = bands
        if hole is not None:
            hx0, hy0, hx1, hy1 = hole
            boxes = []
            for r0, r1, c0, c1 in bands:
                if r0 >= hy0 and r1 <= hy1:  # the hole's rows: each side of it
                    boxes += [(r0, r1, c0, min(c1, hx0)), (r0, r1, max(c0, hx1), c1)]
                else:
                    boxes.append((r0, r1, c0, c1))
    for r0, r1, c0, c1 in boxes:
        if r1 > r0 and c1 > c0:
            cv2.remap(img, map_x[r0:r1, c0:c1], map_y[r0:r1, c0:c1], cv2.INTER_LINEAR, out[r0:r1, c0:c1],
                      borderMode=cv2.BORDER_REPLICATE)
    return out


def _bands(used: np.ndarray, cuts: tuple = (), rows: int = 16) -> list[tuple[int, int, int, int]]:
    """(row0, row1, col0, col1) boxes of at most `rows` rows, none across a row in `cuts`, that together hold every
    True pixel of `used`: a face's convex mask fills ~80 % of its bands, ~60 % of its box."""
    on = np.flatnonzero(used.any(1))
    if not len(on):
        return []
    edges = sorted(set(range(int(on[0]), int(on[-1]) + 1, rows)) | {int(c) for c in cuts if on[0] < c <= on[-1]})
    out = []
    for r0, r1 in zip(edges, edges[1:] + [int(on[-1]) + 1]):
        cols = np.flatnonzero(used[r0:r1].any(0))  # (one pass over the band: half the time of each row's ends)
        if len(cols):
            out.append((r0, r1, int(cols[0]), int(cols[-1]) + 1))
    return out


def _triangle_raster(corners: np.ndarray, ids: np.ndarray, x0: int, y0: int, w: int, h: int, step: int):
    """(index of the triangle covering each coarse pixel, whether it is covered) for _affine_maps."""
    pad = step - 1  # one coarse cell of margin: cv2.resize clamps at the edges, margins keep those exact
    hs, ws = -(-h // step) + 2 * pad, -(-w // step) + 2 * pad
    # int16 where the indices fit (any mesh of under 32,767 triangles): OpenCV dilates it without a float copy
    small = not len(ids) or int(ids.max()) < np.iinfo(np.int16).max
    idx = np.full((hs, ws), -1, np.int16 if small else np.int32)
    offset = (step - 1) / 2 - pad * step  # window coordinate of coarse pixel 0's centre
    lo, hi = corners.min(axis=1), corners.max(axis=1)
    inside = (hi[:, 0] >= x0 - step) & (lo[:, 0] <= x0 + w + step) & (hi[:, 1] >= y0 - step) & \
        (lo[:, 1] <= y0 + h + step)  # only triangles that reach this window
    polys = np.round((corners[inside] - np.array([x0, y0]) - offset) / step * 16).astype(np.int32)
    fill, line = cv2.fillConvexPoly, cv2.LINE_8  # (positional arguments, a list: a quarter less per call)
    for t, poly in zip(ids[inside].tolist(), list(polys)):
        fill(idx, poly, t, line, 4)
    # collapsed triangles (a closing mouth) leave hairline cracks: give them a neighbouring triangle's affine
    holes = idx < 0
    if holes.any():
        grown = _dilated(idx + 1, 1) - 1
        idx[holes] = grown[holes]
    covered = idx >= 0
    if step > 1:  # extend affines past the edge so bilinear upsampling never mixes in an undefined map
        idx = np.where(covered, idx, _dilated(idx + 1, 2) - 1)
    np.maximum(idx, 0, out=idx)
    return idx, covered


def _dilated(index: np.ndarray, iterations: int) -> np.ndarray:
    """The largest of each 3x3 neighbourhood of an integer raster (OpenCV dilates int16, not int32: through float32,
    exact for these integers)."""
    if index.dtype == np.int16:
        return cv2.dilate(index, np.ones((3, 3), np.uint8), iterations=iterations)
    return cv2.dilate(index.astype(np.float32), np.ones((3, 3), np.uint8), iterations=iterations).astype(np.int32)
