"""render.mesh's and render.compose's shortcuts give the same bytes as the whole computation they stand for (a dub's
frames must not change when drawing does less)."""

import cv2
import numpy as np
import pytest

from lipdub.render import compose, mesh


def _geometry(rng, w: int, h: int):
    """A random triangulated point set over a w x h window and affines moving it a little."""
    pts = np.concatenate([rng.uniform([0, 0], [w, h], (40, 2)), [[0, 0], [w, 0], [0, h], [w, h]]])
    tri = mesh.TriangleMesh(pts).triangles
    dst = pts[tri]
    coefs = np.zeros((len(tri), 6), np.float32)  # src x = ax x + ay y + a1, src y = bx x + by y + b1
    coefs[:, 0] = coefs[:, 3] = 1 + rng.uniform(-0.1, 0.1, len(tri))
    coefs[:, 1:3] = rng.uniform(-0.1, 0.1, (len(tri), 2))
    coefs[:, 4:] = rng.uniform(-5, 5, (len(tri), 2))
    return dst, np.arange(len(tri)), coefs


@pytest.mark.parametrize("step", [1, 2])
def test_maps_of_a_used_window_are_those_of_the_whole(step):
    rng = np.random.default_rng(step)
    for _ in range(20):
        w, h = int(rng.integers(20, 400)), int(rng.integers(20, 400))
        dst, ids, coefs = _geometry(rng, w, h)
        mx, my, _, raster = mesh._affine_maps(dst, ids, coefs, 0, 0, w, h, step)
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1))
        ux, uy, cover, _ = mesh._affine_maps(dst, ids, coefs, 0, 0, w, h, step, raster, (x0, y0, x1, y1))
        assert cover is None and ux.dtype == uy.dtype == np.float32
        assert np.array_equal(ux, mx[y0:y1, x0:x1]) and np.array_equal(uy, my[y0:y1, x0:x1])


def _raster_as_written_before(corners, ids, x0, y0, w, h, step):
    """mesh._triangle_raster as it was before its int16 raster (int32, dilated through float32)."""
    pad = step - 1
    hs, ws = -(-h // step) + 2 * pad, -(-w // step) + 2 * pad
    idx = np.full((hs, ws), -1, np.int32)
    offset = (step - 1) / 2 - pad * step
    lo, hi = corners.min(axis=1), corners.max(axis=1)
    inside = (hi[:, 0] >= x0 - step) & (lo[:, 0] <= x0 + w + step) & (hi[:, 1] >= y0 - step) & \
        (lo[:, 1] <= y0 + h + step)
    polys = np.round((corners[inside] - np.array([x0, y0]) - offset) / step * 16).astype(np.int32)
    for t, poly in zip(ids[inside].tolist(), polys):
        cv2.fillConvexPoly(idx, poly, t, lineType=cv2.LINE_8, shift=4)
    holes = idx < 0
    if holes.any():
        grown = cv2.dilate((idx + 1).astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32) - 1
        idx[holes] = grown[holes]
    covered = idx >= 0
    if step > 1:
        grown = cv2.dilate((idx + 1).astype(np.float32), np.ones((3, 3), np.uint8), iterations=2)
        idx = np.where(covered, idx, grown.astype(np.int32) - 1)
    np.maximum(idx, 0, out=idx)
    return idx, covered


@pytest.mark.parametrize("step", [1, 2])
def test_the_triangle_raster_is_the_one_drawn_in_int32(step):
    """The raster drawn and dilated in int16 (and in int32 past int16's indices) is the int32 one, triangles that
    collapse (a closing mouth's cracks) and windows that cut the mesh included."""
    rng = np.random.default_rng(10 + step)
    for k in range(20):
        w, h = int(rng.integers(20, 300)), int(rng.integers(20, 300))
        dst, ids, _ = _geometry(rng, w, h)
        flat = rng.random(len(dst)) < 0.2
        dst[flat, 2] = dst[flat, 1]  # some collapse to a line
        x0, y0 = int(rng.integers(-20, w // 2)), int(rng.integers(-20, h // 2))
        for first in (0, 40000):  # int16 indices, then indices only int32 holds
            args = (dst, ids + first, x0, y0, w - max(x0, 0), h - max(y0, 0), step)
            idx, covered = mesh._triangle_raster(*args)
            want_idx, want_covered = _raster_as_written_before(*args)
            assert idx.dtype == (np.int16 if first == 0 else np.int32)
            assert np.array_equal(idx, want_idx) and np.array_equal(covered, want_covered)
            assert (~covered).any() and covered.any()


def test_remap_around_a_hole_gives_the_whole_remap_elsewhere():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (300, 320, 3), np.uint8)
    for _ in range(20):
        w, h = int(rng.integers(20, 300)), int(rng.integers(20, 280))
        dst, ids, coefs = _geometry(rng, w, h)
        mx, my = mesh._affine_maps(dst, ids, coefs, 0, 0, w, h, 2)[:2]
        whole = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1))
        out = mesh._remap_around(img, mx, my, (x0, y0, x1, y1))
        outside = np.ones((h, w), bool)
        outside[y0:y1, x0:x1] = False
        assert np.array_equal(out[outside], whole[outside])


def test_dilate_ellipse_sets_the_pixels_cv2_dilate_sets():
    rng = np.random.default_rng(4)
    shapes = []
    for _ in range(300):  # sparse, dense, empty and full masks, small and larger elements
        h, w = (int(v) for v in rng.integers(1, 90, 2))
        share = rng.choice([0.0, 0.002, 0.02, 0.2, 0.6, 1.0])
        shapes.append(((rng.random((h, w)) < share) * 255, int(rng.integers(1, 60))))
    for _ in range(40):  # filled polygons like the lips' contour (non-convex: the cupid's bow)
        hard = np.zeros((int(rng.integers(40, 200)), int(rng.integers(40, 260))), np.uint8)
        pts = rng.uniform([0, 0], hard.shape[::-1], (int(rng.integers(3, 20)), 2))
        cv2.fillPoly(hard, [np.round(pts * 16).astype(np.int32)], 255, lineType=cv2.LINE_8, shift=4)
        shapes.append((hard, int(rng.integers(1, 45))))
    for mask, radius in shapes:
        mask = mask.astype(np.uint8)
        element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        assert np.array_equal(compose.dilate_ellipse(mask, radius), cv2.dilate(mask, element) > 0)


def _feathered_whole(hull_points, roi, feather):
    """compose.feathered_mask computed over the whole roi, as it was before it kept to the hull's box."""
    x0, y0, x1, y1 = roi
    hard = np.zeros((y1 - y0, x1 - x0), np.uint8)
    hull = cv2.convexHull(np.round((hull_points[:, :2] - [x0, y0]) * 16).astype(np.int32))
    cv2.fillConvexPoly(hard, hull, 255, lineType=cv2.LINE_8, shift=4)
    alpha = np.clip(cv2.distanceTransform(hard, cv2.DIST_L2, 3) / max(feather, 1.0), 0.0, 1.0)
    return (alpha * alpha * (3 - 2 * alpha)).astype(np.float32)


def test_feathered_mask_in_the_hulls_box_is_that_of_the_whole_roi():
    rng = np.random.default_rng(5)
    for _ in range(200):
        w, h = int(rng.integers(5, 400)), int(rng.integers(5, 300))
        roi = (int(rng.integers(0, 50)), int(rng.integers(0, 50)))
        roi = roi + (roi[0] + w, roi[1] + h)
        # hulls inside the roi, touching or crossing its edges, tiny or outside it
        pts = rng.uniform([roi[0] - 20, roi[1] - 20], [roi[2] + 20, roi[3] + 20], (int(rng.integers(1, 12)), 2))
        if rng.random() < 0.3:
            pts = pts[:1] + rng.uniform(-2, 2, pts.shape)
        feather = float(rng.uniform(0.5, 60))
        assert np.array_equal(compose.feathered_mask(pts, roi, feather), _feathered_whole(pts, roi, feather))


def test_a_warp_drawn_where_it_is_used_is_the_whole_warp_there():
    rng = np.random.default_rng(7)
    img, own = (rng.integers(0, 256, (260, 300, 3), np.uint8) for _ in range(2))
    for _ in range(20):
        w, h = int(rng.integers(30, 280)), int(rng.integers(30, 240))
        pts = np.concatenate([rng.uniform([0, 0], [w, h], (30, 2)), [[0, 0], [w, 0], [0, h], [w, h]]])
        warper = mesh.TriangleMesh(pts)
        x0, y0 = int(rng.integers(0, 20)), int(rng.integers(0, 20))
        roi = (x0, y0, x0 + w, y0 + h)
        dst = pts + [x0, y0]
        src, held = (pts + rng.uniform(-6, 6, pts.shape) for _ in range(2))
        lx, ly = int(rng.integers(x0, x0 + w - 5)), int(rng.integers(y0, y0 + h - 5))
        detail = (lx, ly, lx + int(rng.integers(2, 60)), ly + int(rng.integers(2, 40)))
        used = np.zeros((h, w), np.uint8)  # a convex mask, as the face's hull is
        hull = cv2.convexHull(rng.uniform([0, 0], [w, h], (6, 2)).astype(np.int32))
        cv2.fillConvexPoly(used, hull, 1)
        used = used > 0
        rows, cols = np.flatnonzero(used.any(1)), np.flatnonzero(used.any(0))
        if not len(rows):
            continue
        also = (own, held, (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1))
        for step in (None, 1, 2):  # (None: 2 on large regions; the maps are drawn in the used box alone)
            whole = warper.warp(img, src, dst, roi, detail, step, also=also)
            part = warper.warp(img, src, dst, roi, detail, step, also=also, used=used)
            for a, b in zip(whole, part):
                assert np.array_equal(a[used], b[used])
            assert np.array_equal(whole[1], part[1])  # the coverage is the whole roi's
            alone = warper.warp(img, src, dst, roi, detail, step, used=used)  # (no second image)
            assert np.array_equal(alone[0][used], whole[0][used]) and np.array_equal(alone[1], whole[1])


def test_bands_hold_each_row_span_of_the_used_pixels():
    """_bands (one pass over each band's rows) gives the boxes of each band's rows' first and last used pixels."""
    rng = np.random.default_rng(11)
    for _ in range(200):
        h, w = int(rng.integers(1, 120)), int(rng.integers(1, 120))
        used = np.zeros((h, w), np.uint8)
        if rng.random() < 0.8:  # convex as a face's hull, or scattered pixels
            cv2.fillConvexPoly(used, cv2.convexHull(rng.uniform([0, 0], [w, h], (5, 2)).astype(np.int32)), 1)
        else:
            used = (rng.random((h, w)) < 0.05).astype(np.uint8)
        used = used > 0
        cuts = tuple(int(c) for c in rng.integers(0, h + 1, int(rng.integers(0, 3))))
        bands = mesh._bands(used, cuts)
        rows = np.flatnonzero(used.any(1))
        if not len(rows):
            assert bands == []
            continue
        covered = np.zeros_like(used)
        for r0, r1, c0, c1 in bands:
            assert 0 < r1 - r0 <= 16 and not any(r0 < c < r1 for c in cuts)
            on = [np.flatnonzero(row) for row in used[r0:r1] if row.any()]
            assert on and c0 == min(o[0] for o in on) and c1 == max(o[-1] for o in on) + 1
            covered[r0:r1, c0:c1] = True
        assert not (used & ~covered).any() and bands[0][0] == rows[0] and bands[-1][1] == rows[-1] + 1


def test_remap_around_draws_its_bands_into_the_array_given():
    rng = np.random.default_rng(12)
    img = rng.integers(0, 256, (200, 220, 3), np.uint8)
    w, h = 180, 150
    dst, ids, coefs = _geometry(rng, w, h)
    mx, my = mesh._affine_maps(dst, ids, coefs, 0, 0, w, h, 2)[:2]
    bands = [(0, 16, 10, 90), (16, 30, 0, 180), (30, 46, 40, 60), (100, 150, 5, 175)]
    hole = (50, 16, 120, 30)
    want = mesh._remap_around(img, mx, my, hole, bands)
    canvas = np.full((h + 10, w + 20, 3), 7, np.uint8)
    view = canvas[4:4 + h, 9:9 + w]
    assert mesh._remap_around(img, mx, my, hole, bands, view) is view
    drawn = want.any(2)
    assert np.array_equal(view[drawn], want[drawn])
    assert (view[~drawn] == 7).all() and (canvas[:4] == 7).all() and (canvas[:, :9] == 7).all()


def test_a_used_warps_second_image_is_drawn_in_its_window_alone():
    """As the renderer asks: the frame's skin moved inside the put box alone, used reaching past it (the lips'
    window grown): the whole warp's values in the window's used pixels, 0 outside the window."""
    rng = np.random.default_rng(13)
    img, own = (rng.integers(1, 256, (260, 300, 3), np.uint8) for _ in range(2))
    for _ in range(10):
        w, h = int(rng.integers(80, 280)), int(rng.integers(80, 240))
        pts = np.concatenate([rng.uniform([0, 0], [w, h], (30, 2)), [[0, 0], [w, 0], [0, h], [w, h]]])
        warper = mesh.TriangleMesh(pts)
        roi = (0, 0, w, h)
        src, held = (pts + rng.uniform(-6, 6, pts.shape) for _ in range(2))
        window = (w // 4, h // 4, 3 * w // 4, 3 * h // 4)
        detail = (w // 3, h // 3, w // 2, h // 2)
        used = np.zeros((h, w), bool)
        used[h // 5:4 * h // 5, w // 5:4 * w // 5] = True
        also = (own, held, window)
        whole = warper.warp(img, src, pts, roi, detail, 2, also=also)
        part = warper.warp(img, src, pts, roi, detail, 2, also=also, used=used)
        inside = np.zeros((h, w), bool)
        inside[window[1]:window[3], window[0]:window[2]] = True
        assert np.array_equal(part[0][used], whole[0][used])
        assert np.array_equal(part[2][used & inside], whole[2][used & inside])
        assert not part[2][~inside].any() and whole[2][used & ~inside].any()
