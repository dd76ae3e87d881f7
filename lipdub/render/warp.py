"""warp: the whole face moved in a frame (expression, blinks, a small head turn), and eyes closed over by a blink."""

from __future__ import annotations

import cv2
import numpy as np

from lipdub.core.landmarks import (CHIN, FACE_OVAL, JAW, LEFT_LOWER_LID, LEFT_UPPER_LID, NOSE, OUTER_LOWER, OUTER_UPPER,
                                   RIGHT_LOWER_LID, RIGHT_UPPER_LID, STABLE, UPPER_FACE)
from lipdub.render.mesh import TriangleMesh


class FaceWarper:
    """Moves the whole face (and, for head motion, the hair around it) in a frame: eyes, brows, cheeks and lids to
    new landmark positions, and optionally the head by a small 3D rotation.

    The mesh joins the face landmarks to two rings around the face oval: the inner one (hair, ears) follows the head,
    the outer one is fixed to the frame, so the background and body stay still and the warp is continuous (no
    tearing). Ring points outside the frame are pinned, so nothing is dragged in from beyond the frame edge."""

    POINTS = sorted(set(FACE_OVAL + NOSE + JAW + OUTER_UPPER + OUTER_LOWER + STABLE +
                        [33, 133, 263, 362] + UPPER_FACE))

    def __init__(self, canonical: np.ndarray, hair: float = 1.35, fixed: float = 2.1):
        c = np.asarray(canonical, np.float64)
        self.canonical = c
        centre = c[FACE_OVAL].mean(0)
        oval = c[FACE_OVAL]
        self.hair = centre + hair * (oval - centre)
        self.fixed = centre + fixed * (oval - centre)
        # how much of the head's motion the hair ring takes: all above the eyes, little at the chin (the neck)
        eye_y, chin_y = c[[33, 263], 1].mean(), c[CHIN, 1]
        self.follow = np.clip(1 - (oval[:, 1] - eye_y) / max(chin_y - eye_y, 1e-3) * 0.7, 0.25, 1.0)
        self.mesh = TriangleMesh(np.concatenate([c[self.POINTS, :2], self.hair[:, :2], self.fixed[:, :2]]))

    def pivot(self, pose: tuple) -> np.ndarray:
        """The neck joint in frame coordinates: behind the face, below the chin."""
        scale, rot, trans = pose
        c = self.canonical
        p = np.array([c[FACE_OVAL, 0].mean(), c[CHIN, 1] + 0.25, c[FACE_OVAL, 2].mean() + 0.9])
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
    for upper, lower, corners in ((RIGHT_UPPER_LID, RIGHT_LOWER_LID, (33, 133)),
                                  (LEFT_UPPER_LID, LEFT_LOWER_LID, (263, 362))):
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


BLINK_CLOSING = 0.2  # a blink deeper than this also closes the eye over (lids alone leave a slit); full at 0.8


def close_eyes_for_blink(frame: np.ndarray, landmarks: np.ndarray, blink: float, px_per_unit: float) -> np.ndarray:
    """After the lid warp of a blink `blink` deep (0..1): close_eyes() past BLINK_CLOSING, blended in up to 0.8."""
    if blink > BLINK_CLOSING:
        return close_eyes(frame, landmarks, min(1.0, (blink - BLINK_CLOSING) / 0.6), px_per_unit)
    return frame
