"""blend: more mouths than were filmed (issue 21, item 4). On a short clip the few filmed mouths come back as the same
pixels; here each drawn mouth may take a varying share of a second atlas entry of the same shape ("partner"), warped
onto the same control points, so a recurring shape is not drawn the same way twice.

The partner path is a second Viterbi over the atlas (render.selection.select_frames) asking for the selected
entry's own shape and the frame's pose, kept away from the selected entry's filmed moment, so it follows a filmed
run of its own (it moves as filmed). The share varies slowly over time, fades to nothing where the partner path
jumps (no pop) and where the partner fits the selected shape worse; in the picture it is taken only where the two
warped mouths agree and never between the lips (teeth and tongue are the selected entry's alone: no ghosted teeth)."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from lipdub.render.interior import inner_lip_mask
from lipdub.render.selection import JUMP_COST, select_frames, squared_distance

PARTNER_SHARE = 0.5  # the most of the partner a drawn mouth takes (an even mix, where the two agree)
SHARE_PERIOD_S = 2.3  # the share rises and falls over this long (a recurring shape comes back mixed differently)
AVOID_STEPS = 6  # partners filmed within this many atlas entries of the selected one show the same moment
FADE_FRAMES = 4  # the share fades out over this many frames either side of a partner jump
AGREE_LEVELS = 20.0  # grey-level difference at which the two warped mouths disagree fully (the selected alone shows)
AGREE_BLUR = 0.03  # the partner's shading is taken over this much blur (canonical units: eye-corner distances)
MIN_SHARE = 0.02  # below this no partner is drawn (saves its warp)


class Plan(NamedTuple):
    """Per output frame: the wanted canonical opening and width, the atlas entry drawn, and the partner entry mixed
    into it with its share (render.blend; None: none)."""
    opening: np.ndarray
    width: np.ndarray
    sel: np.ndarray
    partner: np.ndarray | None = None
    share: np.ndarray | None = None

    def draws(self, k: int) -> tuple[int, float, float, tuple[int, float] | None]:
        """Output frame k's (entry, opening, width, (partner, share) or None)."""
        mixed = None
        if self.partner is not None and self.share is not None and self.share[k] >= MIN_SHARE:
            mixed = int(self.partner[k]), float(self.share[k])
        return int(self.sel[k]), float(self.opening[k]), float(self.width[k]), mixed


def partner_path(desc: np.ndarray, pose_feat: np.ndarray, seq: np.ndarray, sel: np.ndarray, want_pose: np.ndarray,
                 cost: np.ndarray, jump_cost: float, pose_weight: float, times: dict) -> np.ndarray:
    """Per output frame, a partner atlas entry for the selected `sel`: as like it as the atlas has (its descriptors
    `desc`, the frame's pose `want_pose`), from another filmed moment (AVOID_STEPS), continuing a filmed run where
    it can; `times`: select_frames' proximity arguments, as the selection had them. Where only the selected moment fits,
    the partner comes from it (partner_share gives it no share)."""
    return select_frames(desc, pose_feat, seq, desc[sel], want_pose, jump_cost=jump_cost, pose_weight=pose_weight,
                         atlas_cost=cost, avoid=seq[sel].astype(np.int64), avoid_within=AVOID_STEPS, **times)


def partner_share(desc: np.ndarray, pose_feat: np.ndarray, seq: np.ndarray, sel: np.ndarray, partner: np.ndarray,
                  frame_seconds: float, pose_weight: float) -> np.ndarray:
    """(T,) share of the partner in each drawn mouth: PARTNER_SHARE × how well it fits the selected shape × a slow
    wave over time, faded out around the partner path's jumps."""
    T = len(sel)
    if T == 0:
        return np.zeros(0)
    d2 = squared_distance(desc[partner], pose_feat[partner], desc[sel], pose_feat[sel], pose_weight)
    fit = np.clip(1 - d2 / JUMP_COST, 0, 1)  # a partner as far off as a jump costs adds nothing
    fit[np.abs(seq[partner].astype(np.int64) - seq[sel]) <= AVOID_STEPS] = 0.0
    wave = 0.5 + 0.5 * np.sin(2 * np.pi * np.arange(T) * frame_seconds / SHARE_PERIOD_S)
    return PARTNER_SHARE * fit * wave * jump_fade(seq[partner].astype(np.int64))


def jump_fade(seq_path: np.ndarray) -> np.ndarray:
    """(T,) 0 on both frames of every jump of a path of atlas sequence numbers (anything but a hold or the next one
    or two filmed frames), rising linearly to 1 FADE_FRAMES frames away from it."""
    T = len(seq_path)
    step = np.diff(seq_path)
    jumps = np.flatnonzero((step < 0) | (step > 2))  # between frame i and i + 1
    if not len(jumps):
        return np.ones(T)
    frames = np.arange(T)[:, None]
    dist = np.minimum(np.abs(frames - jumps[None, :]), np.abs(frames - jumps[None, :] - 1)).min(1)
    return np.clip(dist / FADE_FRAMES, 0, 1)


def mix(warped: np.ndarray, other: np.ndarray, share: float, inner_controls: np.ndarray, roi, blur_px: float
        ) -> np.ndarray:
    """`warped` (the selected entry drawn) with `share` of `other`'s (the partner drawn onto the same control points)
    shading: the two's difference blurred over `blur_px` is added, so the selected entry's fine detail (lip lines,
    grain) stays as sharp as filmed; only where the two agree in grey level and outside the inner lips
    (`inner_controls`: the lower face's control points in frame pixels)."""
    a, b = warped.astype(np.float32), other.astype(np.float32)
    shade = cv2.GaussianBlur(b - a, (0, 0), blur_px)
    disagree = np.abs(cv2.cvtColor(shade, cv2.COLOR_RGB2GRAY))
    weight = share * np.clip(1 - disagree / AGREE_LEVELS, 0, 1) * (1 - inner_lip_mask(inner_controls, roi))
    return np.clip(a + weight[..., None].astype(np.float32) * shade + 0.5, 0, 255).astype(np.uint8)


def repeats(sel: np.ndarray, frame_seconds: float, seconds: float = 2.0) -> float:
    """Share of output frames drawing an atlas entry already drawn 2 frames to `seconds` earlier (a hold of the
    frame just before is not counted): how often a short clip shows the same filmed mouth again."""
    sel = np.asarray(sel)
    window = max(2, int(round(seconds / frame_seconds)))
    return float(np.mean([sel[k] in sel[max(0, k - window):max(0, k - 1)] for k in range(len(sel))])) if len(sel) else 0.0


def plan_stats(plan: Plan, frame_seconds: float) -> dict:
    """What a plan draws (a dub's report): repeats(), the share of frames with a partner mixed in, the mean share."""
    out = {"repeats": round(repeats(plan.sel, frame_seconds), 3), "mixed": 0.0, "share": 0.0}
    if plan.share is not None and len(plan.share):
        out["mixed"] = round(float(np.mean(plan.share >= MIN_SHARE)), 3)
        out["share"] = round(float(np.mean(plan.share)), 3)
    return out
