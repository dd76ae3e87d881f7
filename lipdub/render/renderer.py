"""renderer: output frames in order, each with a real mouth from the atlas warped onto the frame's head pose at the
wanted opening and width (where the chosen one is less open, an interior at its filmed size: its own teeth moved
apart by the jaw, or the clip's most open mouth's).

Articulation is applied to what the filmed frame shows: the wanted width is the filmed speaker's own at the wanted
opening plus the frame's expression (a smile widens), and selection prefers mouths with the frame's corner lift and,
from the clip's own atlas, mouths filmed around it (render.selection's proximity cost). Only the lips and what shows
between them are the atlas mouth's: the skin around them is the frame's own, moved with the new mouth."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple

import cv2
import numpy as np

from lipdub import face, media, motion
from lipdub.core.landmarks import JAW, OUTER_LOWER, OUTER_UPPER, UPPER_EDGE
from lipdub.errors import InputError
from lipdub.render import compose, speaker
from lipdub.render.atlas import Atlas, fill_atlas_in_halves, pose_features
from lipdub.render.interior import (CLOSED_LINE_OPENING, GAP_GAIN_MIN, GapMatch, darken_gap, gap_lightness,
                                    inner_lip_mask, pull_inner_lips, soften_lip_line, split_rows, split_window,
                                    synthetic_cavity)
from lipdub.render.mouth import (CONTROL, INNER_LOWER_POS, INNER_UPPER_POS, JAW_POS, LIPS_POS,
                                 OUTER_LIPS_POS, OUTER_RING, UPPER_EDGE_POS, MouthModel, build_mouth_model, corner_lift,
                                 descriptors, target_shape)
from lipdub.render.selection import (JUMP_COST, POSE_WEIGHT, blur_cost, descriptor_scale, select_frames,
                                     small_open_axis)


EXPRESSION_WEIGHT = 8.0  # descriptor scale of corner lift (canonical units): a smile's 0.02 costs 0.026
# the speech's rounding and spreading (MouthTrack.width) widens the mouth by WIDTH_SHARE of its rest width times
# the speaker's gain (Renderer.width_gain; with the share alone dubbed widths varied half as much as filmed ones)
WIDTH_SHARE, WIDTH_GAIN_MAX = 0.12, 3.0
SPEECH_WIDTH_SD = 0.15  # the typical spread of MouthTrack.width over speech (0.13-0.16 on five dubs)
FRAME_SKIN = True  # the skin around the drawn lips from the frame itself (Renderer._draw)


class Drawn(NamedTuple):
    """A mouth drawn for one frame (Renderer.draw), to be put in by Renderer.finish: the frame's box it was drawn in
    and that box's RGB (None for an RGB frame, drawn on the whole frame), the roi (frame pixels; None when the box is
    empty), the patch and its alpha, and the frame's own skin for it (compose.with_frame_skin)."""
    box: tuple[int, int, int, int]
    canvas: np.ndarray | None
    roi: tuple[int, int, int, int] | None
    patch: np.ndarray | None
    alpha: np.ndarray | None
    skin: tuple[np.ndarray, np.ndarray] | None = None


class Renderer:
    """Renders output frames in order: mouths from an atlas (the clip's own, or an actor profile's) warped onto the
    target track's head pose at the wanted opening and width."""

    def __init__(self, atlas: Atlas, track: face.FaceTrack, pose: face.Pose | None = None,
                 model: MouthModel | None = None, colour: compose.ColourMatcher | None = None, region: str = "lower",
                 filmed: tuple[np.ndarray, np.ndarray] | None = None,
                 expression: tuple[np.ndarray, np.ndarray] | None = None, rest: float | None = None):
        """`filmed`, for an atlas cut from this very clip: when each atlas entry and each source frame was filmed
        (seconds), so selection prefers mouths filmed around the frame they are drawn over (own_times()). `pauses`
        (set before planning; per track frame) marks the frames filmed in a pause of the clip's own sound."""
        if atlas.n == 0:
            raise InputError("the mouth atlas is empty: no usable face frames to draw mouths from")
        self.atlas, self.track = atlas, track
        self.canonical = atlas.canonical
        self.pose = pose if pose is not None else face.estimate_pose(track, self.canonical)
        self.warper = atlas.warper
        self._own_model = model is None
        self.model = model
        self.index_atlas()
        self._edge_pos = UPPER_EDGE_POS
        self.colour = colour or compose.ColourMatcher()
        self.region = region
        self.prev_j: int | None = None
        self.filmed = filmed
        self._expression = expression
        self._rest = rest
        self.gap = GapMatch(self.atlas)  # how dark a squeezed mouth's gap is drawn
        self._filmed_open: np.ndarray | None = None  # per track frame, canonical (filmed_expression)
        self._width_fast: float | None = None  # the filmed width's frame-to-frame spread (filmed_expression)
        self.pauses: np.ndarray | None = None

    def index_atlas(self) -> None:
        """(Re)read the atlas's descriptors: after entries were added (live mode grows its atlas as frames come)."""
        self.norm = self.atlas.norm
        if self._own_model:
            self.model = build_mouth_model(self.canonical, self.norm, np.ones(len(self.norm), bool))
        self.atlas_desc = descriptors(self.norm)
        self.atlas_open = self.atlas_desc[:, 0]
        self.donor = int(np.argmax(self.atlas_open))  # the most open mouth: interior donor

    @classmethod
    def for_video(cls, video: Path, info: media.VideoInfo, track: face.FaceTrack,
                  progress: Callable[[str, int, int], None] | None = None, budget_bytes: int = 300 << 20):
        """The clip as its own appearance source."""
        canonical = face.canonical_shape(track)
        pose = face.estimate_pose(track, canonical)
        atlas = Atlas(canonical, float(np.median(pose.scale[track.valid])), filmed=True)
        stride = cls.own_stride(track, atlas, budget_bytes)
        fill_atlas_in_halves(atlas, video, track, pose, stride=stride, progress=progress, scaled_to=info.scaled_to)
        if atlas.n == 0:
            raise InputError(f"could not build a mouth atlas from {video}; is the face too small or turned away?")
        return cls(atlas, track, pose, filmed=own_times(atlas, track, budget_bytes))

    @staticmethod
    def own_stride(track: face.FaceTrack, atlas: Atlas, budget_bytes: int) -> int:
        """Every how many frames the clip's own atlas takes one, to stay within `budget_bytes`."""
        return max(1, int(np.ceil(int(track.valid.sum()) * atlas.bytes_per_entry() / budget_bytes)))

    def filmed_expression(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The filmed track's expression, per frame: (width offset, lift offset) over the fits (a, b) of its mouth
        width and corner lift against its opening (value = a + b × opening: how this speaker's mouth widens and its
        corners drop as it opens), both offsets as a running median over EXPRESSION_SECONDS (speaker.filmed_mouth):
        speech moves them back and forth, what stays is the expression (a smile widens and lifts); then the two
        fits, width's and lift's. A retargeted renderer keeps its filmed track's."""
        if self._expression is None:
            filmed = speaker.filmed_mouth(self.track, self.pose, self.model.rest_width)
            self._expression = filmed.offset, filmed.lift, filmed.fit, filmed.lift_fit
            self._filmed_open, self._width_fast = filmed.opening, filmed.width_fast
        return self._expression

    def rest_opening(self) -> float:
        """How far this speaker's lips are apart at rest (canonical units; 0 = closed), from the filmed track: the
        lower quartile of its openings in its filmed pauses (`pauses`), or without enough of them a low percentile of
        all its openings (a speaker who never shuts the lips while talking does not rest shut either). Silences of the new speech rest
        there (MouthTrack.rest), so they show this speaker's resting mouths, not a closed one it never shows."""
        if self._rest is None:
            self.filmed_expression()
            self._rest = speaker.rest_opening(self._filmed_open, self.track.times, self.pauses)
        return self._rest

    def use_rest(self, rest: float) -> None:
        """Rest at this opening (canonical units) from now on: live mode knows its speaker's rest from the mouths
        prepared before the session or seen so far, not from its one-frame track."""
        self._rest = float(rest)

    def width_gain(self) -> float:
        """How much more than WIDTH_SHARE this speaker's mouth rounds and spreads in speech: the filmed width's
        frame-to-frame spread (its residual over the running median) over the speech term's typical spread, within
        1..WIDTH_GAIN_MAX (1 without a filmed track to measure)."""
        self.filmed_expression()
        if not self._width_fast:
            return 1.0
        typical = self.model.rest_width * WIDTH_SHARE * SPEECH_WIDTH_SD
        return float(np.clip(self._width_fast / typical, 1.0, WIDTH_GAIN_MAX))

    def wanted(self, mouth: motion.MouthTrack, source: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Canonical opening and width per output frame. Given `source` (the filmed frame each output frame
        shows), the width is the filmed speaker's own at that opening plus that frame's expression
        (filmed_expression), with the speech's rounding and spreading on top as far as this speaker rounds and
        spreads (width_gain); else the rest width with the speech's at WIDTH_SHARE."""
        m = self.model
        opening = mouth.opening * m.open_max
        if mouth.rest is not None and self.rest_opening() > 0:
            # the larger of the speech's opening and the speaker's rest (faded in and out around a silence)
            opening = np.maximum(opening, mouth.rest * self.rest_opening())
        if self.region == "lips":  # lips part without the jaw: only as far as lips alone can open
            opening = np.minimum(opening, 0.07)
        width = m.rest_width * (1 + WIDTH_SHARE * mouth.width)
        if source is None:
            return opening, width
        resid, _, (a, b), _ = self.filmed_expression()
        # around the speech's mean: the fit holds the speaker's average width (a mean at the gain narrowed every mouth)
        spread = m.rest_width * WIDTH_SHARE * self.width_gain() * (mouth.width - float(np.mean(mouth.width)))
        return opening, a + b * opening + resid[np.minimum(source, len(resid) - 1)] + spread

    def plan(self, schedule: np.ndarray, mouth: motion.MouthTrack, teeth: np.ndarray | None = None,
             teeth_weight: float = 0.25, source: np.ndarray | None = None, drawn: motion.MouthTrack | None = None):
        """Wanted canonical opening/width per output frame and the atlas entry to draw each from. `teeth`
        (per output frame, atlas teeth units) makes selection match teeth visibility too. `schedule`: this
        renderer's track frame per output frame; `source` (default `schedule`): the filmed frame it shows.
        `drawn`: the mouth drawn where it is not `mouth`, which chooses the entries (pipeline.offline._plan_motion)."""
        m, source = self.model, schedule if source is None else source
        open_c, width_c = self.wanted(mouth, source)
        scale = descriptor_scale(m)
        # the filmed frame's expression: entries whose corners sit as far over the speaker's lift at their opening
        # (a smile keeps smiling; any lift falls as the mouth opens); small openings matched closely (small_open_axis)
        _, lift, _, (la, lb) = self.filmed_expression()
        lift = lift[np.minimum(source, len(lift) - 1)]
        entry_lift = corner_lift(self.norm) - la - lb * self.atlas_open
        desc = np.concatenate([small_open_axis(self.atlas_desc) * scale, EXPRESSION_WEIGHT * entry_lift[:, None]], 1)
        want = np.concatenate([small_open_axis(np.stack([open_c, width_c], 1)) * scale,
                               EXPRESSION_WEIGHT * lift[:, None]], 1)
        if teeth is not None:
            t_scale = teeth_weight / max(float(np.percentile(self.atlas.teeth, 90)), 1e-3)
            desc = np.concatenate([desc, self.atlas.teeth[:, None] * t_scale], 1)
            want = np.concatenate([want, np.asarray(teeth, np.float64)[:, None] * t_scale], 1)
        sel = select_frames(desc, self.atlas.pose_feat.astype(np.float64), self.atlas.seq, want,
                            pose_features(self.pose, np.minimum(schedule, len(self.track) - 1)),
                            jump_cost=JUMP_COST, pose_weight=POSE_WEIGHT, atlas_cost=self.blur_cost(),
                            atlas_open=self.atlas_open, want_open=open_c, **self._times(source))
        return (open_c, width_c, sel) if drawn is None else (*self.wanted(drawn, source), sel)

    def _times(self, source: np.ndarray) -> dict:
        """select_frames' proximity arguments for output frames showing filmed frames `source`."""
        if self.filmed is None:
            return {}
        entry_time, frame_time = self.filmed
        return {"atlas_time": entry_time, "want_time": frame_time[np.minimum(source, len(frame_time) - 1)]}

    def blur_cost(self) -> np.ndarray:
        """Per-entry selection penalty: atlas frames blurrier than the atlas's typical frame (motion blur ghosts the
        lips); on a mixed atlas (render.foreign) the profile's mouths cost more than the shot's own."""
        cost = blur_cost(self.atlas.sharpness, self.atlas_open, int(getattr(self.atlas, "n_foreign", 0)))
        extra = getattr(self.atlas, "entry_cost", None)
        return cost if extra is None else cost + extra

    def retarget(self, track: face.FaceTrack) -> "Renderer":
        """The same atlas and mouth model drawing onto another track (landmarks moved by head motion or expression)."""
        out = Renderer(self.atlas, track, model=self.model, colour=self.colour, region=self.region,
                       filmed=self.filmed, expression=self.filmed_expression(), rest=self.rest_opening())
        out._width_fast = self._width_fast
        return out

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

    def interior(self, patch: np.ndarray, j: int, dst: np.ndarray, roi, detail, width: float, s: int, a: int,
                 box: tuple[int, int, int, int]) -> np.ndarray:
        """What shows between the lips of atlas entry a drawn at control points `dst` (more open than a), from entry
        s's interior at its filmed size, as a jaw moves rigid teeth: s's upper teeth stay under the upper lip, its
        lower ones ride with the lower lip, a shaded cavity opens between them; where the mouth is less open than
        s, the two rows overlap (squashing s's interior drew thin teeth in a dark slot). Only inside `box` (x0, y0,
        x1, y1 in roi pixels: where the caller blends it in); each pixel there as the whole roi's would have it."""
        n_ctrl = len(CONTROL)
        bx0, by0, bx1, by1 = box
        s_open = float(self.atlas_open[s])
        if s_open < 0.02:  # no interior filmed (a closed-mouth photo)
            return synthetic_cavity(patch, dst[:n_ctrl], roi, float(self.pose.scale[j]), teeth=True)[by0:by1, bx0:bx1]
        # s drawn at its own opening in a's shape, so its inner lips sit where a's would
        dst_u = self._target(j, a, s_open, width, None)
        # per column: where s's interior splits (render.interior.split_rows: where its upper teeth end), and how far
        # the upper and the lower lip move from there to the wanted mouth (the lower most at the centre, nothing at
        # the corners, so the gap opens as a lens)
        x0, y0 = roi[:2]
        h, w = patch.shape[:2]
        cols = np.arange(w, dtype=np.float32) + x0
        up_u, lo_u = dst_u[INNER_UPPER_POS], dst_u[INNER_LOWER_POS]
        up_d, lo_d = dst[INNER_UPPER_POS], dst[INNER_LOWER_POS]
        order = np.argsort(lo_u[:, 0])
        top = np.interp(cols, lo_u[order, 0], up_u[order, 1]) - y0
        bottom = np.interp(cols, lo_u[order, 0], lo_u[order, 1]) - y0
        drop = np.interp(cols, lo_u[order, 0], lo_d[order, 1] - lo_u[order, 1], left=0.0, right=0.0)
        slide = np.interp(cols, lo_u[order, 0], lo_d[order, 0] - lo_u[order, 0], left=0.0, right=0.0)  # a tilted jaw
        order = np.argsort(up_u[:, 0])
        lift = np.interp(cols, up_u[order, 0], up_d[order, 1] - up_u[order, 1])
        # s is warped only where it is read: split_rows' window, and the box's pixels moved by the jaw (a linear
        # sample's 2x2 neighbours; reads past the roi take its edge, which the grown box then reaches)
        used = np.zeros((h, w), bool)
        ok, r0, r1 = split_window(top, bottom, h)
        if ok.any():
            on = np.flatnonzero(ok)
            used[r0:r1, on[0]:on[-1] + 1] = True
        c = slice(bx0, bx1)
        dx = int(np.ceil(np.abs(slide[c]).max())) + 2
        dy = int(np.ceil(max(np.abs(drop[c]).max(), np.abs(lift[c]).max()))) + 2
        used[max(by0 - dy, 0):by1 + dy, max(bx0 - dx, 0):bx1 + dx] = True
        image, _ = self.atlas.stored(s)
        teeth = self.warper.warp(image, self.atlas.stored_points(s, self.atlas.src_controls[s]), dst_u, roi,
                                 detail, used=used)[0]
        meet = split_rows(teeth, top, bottom)
        # the upper half shows s's rows above its meeting line, the lower half those below: a cavity between them
        # where the mouth opens past s; where it closes past s the two overlap, and there the brighter is in front
        # (teeth before the dark mouth behind them, as a closing jaw slides the lower teeth behind the upper)
        u_end, l_start = meet + lift, meet + drop
        rows = np.arange(by0, by1, dtype=np.float32)[:, None]
        bh, bw = by1 - by0, bx1 - bx0
        map_x = np.broadcast_to((np.arange(bx0, bx1) - slide[c]).astype(np.float32)[None, :], (bh, bw)).copy()
        map_y = np.broadcast_to((rows - drop[None, c]).astype(np.float32), (bh, bw)).copy()
        teeth_low = cv2.remap(teeth, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        up_x = np.broadcast_to(np.arange(bx0, bx1, dtype=np.float32)[None, :], (bh, bw))
        up_y = np.broadcast_to((rows - lift[None, c]).astype(np.float32), (bh, bw))
        teeth_up = cv2.remap(teeth, up_x, up_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # the cavity is shaded over what shows between the teeth: dark under the upper teeth, the tongue below
        cavity = synthetic_cavity(patch, dst[:n_ctrl], roi, float(self.pose.scale[j]), teeth=False,
                                  visible=(u_end, np.maximum(l_start, u_end)))[by0:by1, bx0:bx1]
        inner = inner_lip_mask(dst_u[:n_ctrl], roi)
        mask_l = cv2.remap(inner, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        mask_u = cv2.remap(inner, up_x, up_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        fade = max(1.5, 0.012 * float(self.pose.scale[j]))  # teeth edges fade into the cavity, no cut line
        mask_u = mask_u * np.clip((u_end[None, c] - rows) / fade + 0.5, 0, 1)
        mask_l = mask_l * np.clip((rows - l_start[None, c]) / fade + 0.5, 0, 1)
        luma = [cv2.cvtColor(t, cv2.COLOR_RGB2GRAY).astype(np.float32) for t in (teeth_up, teeth_low)]
        upper_front = np.clip((luma[0] - luma[1]) / 16.0 + 0.5, 0, 1)
        mask_u, mask_l = (mask_u * (1 - mask_l * (1 - upper_front)), mask_l * (1 - mask_u * upper_front))
        # OpenCV's per-pixel blends: native code without the GIL, a fifth of numpy's float64 arithmetic here
        mask_u, mask_l = mask_u.astype(np.float32), mask_l.astype(np.float32)
        out = cv2.blendLinear(teeth_low, cavity, mask_l, 1.0 - mask_l)
        return cv2.blendLinear(teeth_up, out, mask_u, 1.0 - mask_u)

    def _target(self, j: int, a: int, opening: float, width: float, offsets: np.ndarray | None) -> np.ndarray:
        """Frame-j positions of the control points for atlas entry a drawn at this opening and width."""
        shape = target_shape(self.model, self.norm[a], opening, width)
        if offsets is not None:
            shape = shape + offsets
        return self._to_frame(j, shape)

    def frame_planar(self, k: int, j: int, frame: "media.PlanarFrame", plan) -> tuple["media.PlanarFrame", bool]:
        """frame() on a decoded YUV frame, changed in place: only the box the mouth is drawn in goes to RGB and back,
        and only the pixels the drawing changed are written, so the rest stays exactly as decoded."""
        return self.finish(j, frame, self.draw(k, j, frame, plan))

    def draw(self, k: int, j: int, frame, plan) -> Drawn | None:
        """The mouth of output frame k over source frame j (an RGB array or a PlanarFrame), not yet put in: changes
        no state of the renderer, so a second thread may draw the next frames while finish() completes this one
        (only one drawing thread: the atlas's crop cache is not shared). None where the frame has no speaker."""
        open_c, width_c, sel = plan
        if j >= len(self.track) or not self.track.valid[j]:
            return None
        a, opening, width = int(sel[k]), float(open_c[k]), float(width_c[k])
        dst = self._target(j, a, opening, width, None)
        if isinstance(frame, np.ndarray):
            return Drawn((0, 0, frame.shape[1], frame.shape[0]), None,
                         *self._draw(frame.shape, j, a, opening, width, dst, frame))
        # everything drawing reads or writes lies in this roi (see render_frame), and the frame's own skin is read
        # from where it was filmed
        own = self._frame_controls(j)
        box = frame.box(compose.region_of_interest(np.concatenate([dst, own]), frame.width, frame.height, margin=2),
                        pad=2)
        if box[2] <= box[0] or box[3] <= box[1]:
            return Drawn(box, None, None, None, None)
        canvas = frame.rgb(box)
        return Drawn(box, canvas, *self._draw(frame.shape, j, a, opening, width, dst, canvas, box[:2], own))

    def finish(self, j: int, frame, drawn: Drawn | None) -> tuple:
        """Put a drawn mouth into its frame, in frame order (colour matching is smoothed from frame to frame):
        (the frame, whether it has the speaker). A PlanarFrame is changed in place, an RGB array copied."""
        if not self._enter(j) or drawn is None:
            return frame, False
        if drawn.roi is None:
            return frame, True
        if drawn.canvas is None:
            return self._put(frame, drawn.roi, drawn.patch, drawn.alpha, skin=drawn.skin), True
        (x0, y0, _, _), (rx0, ry0, rx1, ry1) = drawn.box, drawn.roi
        roi = rx0 - x0, ry0 - y0, rx1 - x0, ry1 - y0  # in the box
        self._put(drawn.canvas, roi, drawn.patch, drawn.alpha, inplace=True, skin=drawn.skin)
        frame.put_blend(drawn.box, drawn.canvas, drawn.roi, drawn.alpha)
        return frame, True

    def _put(self, frame: np.ndarray, roi, patch: np.ndarray, alpha: np.ndarray, inplace: bool = False,
             skin: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """The drawn patch colour-matched to the frame (measured before the frame's own skin goes in, which would
        hide the drawn texture's drift), given the frame's skin and blended into its roi."""
        x0, y0, x1, y1 = roi
        patch = compose.with_frame_skin(self.colour(patch, frame[y0:y1, x0:x1], alpha), skin)
        return compose.blend(frame, patch, alpha, roi, inplace=inplace)

    def _frame_controls(self, j: int) -> np.ndarray:
        """Frame j's own control points (frame px): its filmed lower face and the skull-fixed rings."""
        ctrl = self.pose.to_frame(j, self.warper.control_points(self.canonical))[:, :2]
        ctrl[:len(CONTROL)] = self.track.landmarks[j, CONTROL, :2]
        return ctrl

    def render_frame(self, frame: np.ndarray, j: int, a: int, opening: float, width: float,
                     offsets: np.ndarray | None = None, dst: np.ndarray | None = None,
                     inplace: bool = False, planar: "media.PlanarFrame | None" = None) -> np.ndarray:
        """Frame j with atlas entry a drawn at this opening and width; reads and writes only inside the roi of
        the control points `dst` (computed when not given) with a 2-pixel margin. `planar`, the same frame as
        decoded, gets the drawn pixels written back in place, as finish() does (the rest stays as decoded)."""
        if dst is None:
            dst = self._target(j, a, opening, width, offsets)
        roi, patch, alpha, skin = self._draw(frame.shape, j, a, opening, width, dst, frame)
        out = self._put(frame, roi, patch, alpha, inplace=inplace, skin=skin)
        if planar is not None:
            box = planar.box(roi)
            planar.put_blend(box, out[box[1]:box[3], box[0]:box[2]], roi, alpha)
        return out

    def _draw(self, shape: tuple, j: int, a: int, opening: float, width: float, dst: np.ndarray,
              pixels: np.ndarray | None = None, origin: tuple[int, int] = (0, 0), held: np.ndarray | None = None
              ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray, tuple | None]:
        """(roi, patch, alpha, skin) of atlas entry a drawn onto control points `dst` of a frame of this shape, and
        the frame's own skin moved to it (from `pixels`, the frame's RGB at `origin`, holding its control points
        `held`; None without pixels); changes no state."""
        atlas = self.atlas
        n_ctrl = len(CONTROL)
        src = atlas.src_controls[a].astype(np.float64)
        src_open = float(self.atlas_open[a])
        # (a closed source has no teeth to cover: pulling its lips apart only folds them into a hard seam)
        squeeze = max(1 - opening / 0.04, 1 - opening / src_open) if src_open > 0.02 else 0.0
        if squeeze > 0:
            # a mouth closing over its source: the lips cover the teeth instead of teeth being squeezed onto
            # the lips (MediaPipe's inner contour often sits on the teeth' edge, not the lip's)
            src[:n_ctrl] = pull_inner_lips(src[:n_ctrl], 0.35 * min(squeeze, 1.0))
        h, w = shape[:2]
        scale = self.pose.scale[j]
        roi = compose.region_of_interest(dst, w, h, margin=2)
        lips = dst[LIPS_POS]
        margin = 0.08 * scale
        detail = (int(lips[:, 0].min() - margin), int(lips[:, 1].min() - margin),
                  int(lips[:, 0].max() + margin) + 1, int(lips[:, 1].max() + margin) + 1)
        if self.region == "lips":
            # lips and a little skin around them (grown outer lip contours of the frame and of the new mouth): the
            # jaw and chin outside stay as filmed (moving them with fixed neighbours would fold the mesh)
            lips_now = self.track.landmarks[j, OUTER_UPPER + OUTER_LOWER, :2]
            both = np.concatenate([dst[OUTER_LIPS_POS], lips_now])
            centre = both.mean(0)
            hull = centre + 1.35 * (both - centre)
            alpha = compose.feathered_mask(hull, roi, feather=0.06 * scale)
        else:
            hull = np.concatenate([dst[JAW_POS],
                                   self.track.landmarks[j, JAW, :2],
                                   self.track.landmarks[j, UPPER_EDGE, :2]])
            alpha = compose.feathered_mask(hull, roi, feather=0.12 * scale)
        put = alpha > 0  # what of the drawing is put in (finish); the lips' drawing reads a little around them
        from_frame = None
        if pixels is not None and FRAME_SKIN:
            # the skin around the lips is the frame's own, moved with the jaw: a held or warped atlas mouth would
            # carry another frame's grain and stubble (or a still one), the detector's clearest tell
            held = self._frame_controls(j) if held is None else held
            bx, by, bw, bh = cv2.boundingRect(put.view(np.uint8))
            if bw:  # only where the mouth is put in (the warp leaves the rest of its skin image 0: never read)
                from_frame = pixels, held - np.asarray(origin, np.float64), (bx, by, bx + bw, by + bh)
        used = put.copy()
        grow = 8 + int(margin)
        used[max(0, detail[1] - roi[1] - grow):max(0, detail[3] - roi[1] + grow),
             max(0, detail[0] - roi[0] - grow):max(0, detail[2] - roi[0] + grow)] = True
        image, _ = atlas.stored(a)  # (the crop's affine to it composed into the mesh's: one resampling)
        warped, cover, *moved = self.warper.warp(image, atlas.stored_points(a, src), dst, roi, detail,
                                                 also=from_frame, used=used)
        touch, part = CLOSED_LINE_OPENING
        if squeeze > 0 and opening < part:
            # a shut or barely parted mouth drawn from an open one: its lip line needs redrawing
            soften_lip_line(warped, dst[:n_ctrl], roi, float(scale),
                            min(1.0, squeeze) * float(np.clip((part - opening) / (part - touch), 0, 1)),
                            gap_px=opening * float(scale))
        lack = opening - src_open
        # the chosen mouth is the interior donor itself (a photo's only mouth): its teeth split along the jaw as soon
        # as the mouth opens past it, in full (half-blended with the stretched mouth they showed a grey bar)
        only = a == self.donor and lack > 0
        if opening > 0.05 and (lack > 0.2 * opening or only):
            # the chosen mouth is less open than asked: stretched, its teeth smear, so the opening shows a real
            # interior split along the jaw: the chosen mouth's own while it is at least half as open (the same
            # teeth as the stretched mouth, so the ramp shows no second set), else the clip's most open mouth's
            # (a half blend of two different interiors drew a grey row of teeth); from 0.4 to 0.5 of the opening
            # the two cross-fade: both sets of teeth sit under the upper lip at their filmed size and nearly coincide
            weight = 1.0 if only else float(np.clip((lack / opening - 0.2) / 0.15, 0.0, 1.0))
            k = 1.0 if only else float(np.clip((src_open / opening - 0.4) / 0.1, 0.0, 1.0))
            m = (inner_lip_mask(dst[:n_ctrl], roi) * weight).astype(np.float32)
            bx, by, bw, bh = cv2.boundingRect((m > 0).view(np.uint8))
            if bw:  # the interior is drawn where it is blended in (elsewhere the blend keeps warped as it is)
                box = (bx, by, bx + bw, by + bh)
                inside = self.interior(warped, j, dst, roi, detail, width, a, a, box) if k > 0 else None
                if k < 1:
                    donor = self.interior(warped, j, dst, roi, detail, width, self.donor, a, box)
                    inside = donor if inside is None else cv2.addWeighted(inside, k, donor, 1.0 - k, 0.0)
                r, c = slice(by, by + bh), slice(bx, bx + bw)
                warped[r, c] = cv2.blendLinear(inside, warped[r, c], m[r, c], 1.0 - m[r, c])
        if 0 < opening < src_open:  # drawn less open than filmed: its gap as dark as the speaker's there
            drawn = gap_lightness(warped, dst[:n_ctrl] - np.asarray(roi[:2], np.float64))
            gain = min(self.gap.target(a, opening, self.atlas_open) / drawn, 1.0) if drawn > 0 else 1.0
            if gain < 1.0:  # (nan compares false: unmeasured gaps stay as drawn)
                warped = darken_gap(warped, dst[:n_ctrl], roi, max(gain, GAP_GAIN_MIN))
        alpha *= cover.astype(np.float32) / 255.0
        skin = None
        if moved:
            skin = (moved[0], compose.lip_weight(dst[OUTER_RING], roi, float(scale)))
        # what is put in, colour matched and blended is the box where alpha > 0 (about half the roi: its ring lies
        # outside the mask); every step there is per pixel, or reads its pixels in the same order (the colour's band)
        bx, by, bw, bh = cv2.boundingRect((alpha > 0).view(np.uint8))
        if bw:
            r, c = slice(by, by + bh), slice(bx, bx + bw)
            roi = (roi[0] + c.start, roi[1] + r.start, roi[0] + c.stop, roi[1] + r.stop)
            warped, alpha = warped[r, c], alpha[r, c]
            skin = None if skin is None else (skin[0][r, c], skin[1][r, c])
        return roi, warped, alpha, skin


def own_times(atlas: Atlas, track: face.FaceTrack, budget_bytes: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Renderer's `filmed` for the clip's own atlas (entry seq × stride is its frame), None when the atlas does not
    fit the track (then selection goes without proximity)."""
    frames = atlas.seq.astype(np.int64) * Renderer.own_stride(track, atlas, budget_bytes)
    if not len(frames) or frames.max() >= len(track):
        return None
    return track.times[frames].astype(np.float64), track.times.astype(np.float64)
