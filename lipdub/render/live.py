"""Live rendering: the mouths a stream draws from and the online choice among them, and blinks for a photo."""

from __future__ import annotations

import threading

import numpy as np
from scipy.spatial import cKDTree

from lipdub import face as F
from lipdub import motion
from lipdub.core.landmarks import STABLE
from lipdub.motion import expression
from lipdub.render import compose
from lipdub.render.atlas import Atlas
from lipdub.render.mouth import MouthModel, corner_lift
from lipdub.render.renderer import EXPRESSION_WEIGHT, Renderer
from lipdub.render.selection import (JUMP_COST, POSE_WEIGHT, descriptor_scale, match_cost, proximity_cost,
                                     search_space, small_open_axis, squared_distance, transition_cost, with_time)
from lipdub.render.warp import FaceWarper, close_eyes_for_blink


ATLAS_STRIDE = 2  # every 2nd tracked frame joins the stream's own atlas


ATLAS_MAX = 4000  # entries (~3 min at stride 2, ~60 MB of JPEG crops); later frames only render


REINDEX_EVERY = 25  # atlas entries between re-reads of its descriptors


MIN_OPEN_MAX = 0.16  # canonical wide-open gap asked of the stream's own atlas at least (see _steady_amplitude)


def _pose_of(canonical: np.ndarray, lms: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    return F.umeyama(canonical[STABLE], lms[STABLE].astype(np.float64))


class LiveAppearance:
    """The mouths drawn in live mode and the online choice among them.

    Offline dubs choose atlas entries by Viterbi over the whole clip; live frames cannot wait for the future, so each
    frame takes the cheapest of the k nearest entries given the one before (continuing a real run of frames costs
    nothing, holding costs a little, jumping costs more): the same costs (render.selection), decided greedily.

    `entry_time` (A,), for a video file's atlas prepared beforehand: when each entry was filmed (seconds of the file;
    a profile's entries far from all). The frames then say when they were filmed (render's `filmed_time`) and
    selection adds what offline has from the filmed clip: proximity, and the filmed expression (width and corner
    lift, Renderer.filmed_expression over the prepared entries, which are the file's frames at the atlas stride)."""

    def __init__(self, atlas: Atlas | None = None, model: MouthModel | None = None,
                 region: str = "lower", grow: bool = True, colour_gain: bool = False,
                 entry_time: np.ndarray | None = None):
        self.atlas, self.model, self.region = atlas, model, region
        self.entry_time = None if entry_time is None else np.asarray(entry_time, np.float64)
        self._near = None
        self._expr = None  # Renderer.filmed_expression of the prepared entries (_expression)
        self.grow = grow and atlas is None  # a profile's atlas is complete; the stream's grows
        self.colour = compose.ColourMatcher(gain=colour_gain)
        self.renderer: Renderer | None = None
        self._slot = None
        self._indexed = 0
        self._tree = None
        self.prev: int | None = None
        self._lock = threading.Lock()
        self.still = False  # a photo source: one entry is all there is

    # --- the stream's own atlas ------------------------------------------------------------------------------
    def offer(self, index: int, rgb: np.ndarray, lms: np.ndarray) -> None:
        """A tracked frame of the stream (tracker thread): every ATLAS_STRIDE-th joins the atlas while it grows."""
        if not self.grow or index % ATLAS_STRIDE:
            return
        with self._lock:
            if self.atlas is None:
                one = F.FaceTrack(np.zeros(1), lms[None], np.ones(1, bool), rgb.shape[1], rgb.shape[0])
                canonical = F.canonical_shape(one)
                scale = _pose_of(canonical, lms)[0]
                self.atlas = Atlas(canonical, scale)
            elif self.atlas.n >= ATLAS_MAX or (self.still and self.atlas.n):
                return
        pose = _pose_of(self.atlas.canonical, lms)
        with self._lock:
            self.atlas.add(index // ATLAS_STRIDE, rgb, lms, pose)

    # --- rendering ----------------------------------------------------------------------------------------------
    def _ensure_renderer(self, width: int, height: int) -> bool:
        with self._lock:
            if self.atlas is None or self.atlas.n == 0:
                return False
            n = self.atlas.n
            if self.renderer is None:
                self._slot = F.FaceTrack(np.zeros(1), np.zeros((1, 478, 3), np.float32), np.ones(1, bool),
                                         width, height)
                pose = F.Pose(np.ones(1), np.eye(3)[None].copy(), np.zeros((1, 3)))
                self._expr = self._expression()
                self.renderer = Renderer(self.atlas, self._slot, pose=pose, model=self.model,
                                         colour=self.colour, region=self.region, expression=self._expr)
                self._steady_amplitude()
                self._reindex(n)
            elif n - self._indexed >= REINDEX_EVERY or (n != self._indexed and n < 100):
                self.renderer.index_atlas()
                self._steady_amplitude()
                self._reindex(n)
        return True

    def _steady_amplitude(self) -> None:
        """The stream's own atlas starts empty, so its estimate of how wide this speaker opens (offline: the whole
        clip's 97th percentile, at least 0.09) keeps changing as frames arrive, and the dub's amplitude with it; the
        floor for short clips (0.16) holds it steady through the first seconds and for speakers who barely open
        (measured: r against the real speaker 0.54 → 0.68 on the CNN case, the same on the others)."""
        if self.grow and not self.still:
            self.renderer.model.open_max = max(self.renderer.model.open_max, MIN_OPEN_MAX)

    def _expression(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Renderer.filmed_expression of the prepared file's frames, per own entry (in entry_time order): measured
        on the entries' canonical landmarks (the atlas's frame, a profile's too), so the pose is the identity."""
        if self.entry_time is None:
            return None
        own = np.flatnonzero(self.entry_time > -1e3)
        own = own[np.argsort(self.entry_time[own], kind="stable")]
        if len(own) < 2:
            return None
        self._own_entries = own
        n = len(own)
        track = F.FaceTrack(self.entry_time[own], self.atlas.norm[own].astype(np.float32), np.ones(n, bool), 1, 1)
        pose = F.Pose(np.ones(n), np.broadcast_to(np.eye(3), (n, 3, 3)).copy(), np.zeros((n, 3)))
        return Renderer(self.atlas, track, pose, model=self.model).filmed_expression()

    def filmed_index(self, filmed_time: float | None) -> int | None:
        """The prepared entry (in filmed_expression's order) filmed nearest `filmed_time`; None outside them."""
        if filmed_time is None or self._expr is None:
            return None
        times = self.entry_time[self._own_entries]
        if not times[0] - 0.5 <= filmed_time <= times[-1] + 0.5:
            return None
        return int(np.argmin(np.abs(times - filmed_time)))

    def _reindex(self, n: int) -> None:
        r = self.renderer
        self._desc_scale = descriptor_scale(r.model)
        # small openings matched closely, as offline (Renderer.plan); with the filmed expression, corner lift too
        self._desc = small_open_axis(r.atlas_desc) * self._desc_scale
        expr = self._expr
        if expr is not None:
            self._desc = np.concatenate([self._desc, EXPRESSION_WEIGHT * corner_lift(r.norm)[:, None]], 1)
            self._typical_lift = float(np.median(expr[1]))
        self._pose_feat = self.atlas.pose_feat.astype(np.float64)
        self._seq = self.atlas.seq
        self._blur = r.blur_cost()
        feats = search_space(self._desc, self._pose_feat, POSE_WEIGHT)
        self._tree = cKDTree(feats)
        if self.entry_time is not None and len(self.entry_time) == n:
            self._near = cKDTree(with_time(feats, self.entry_time))
        self._indexed = n

    def choose(self, want: np.ndarray, pose_feat: np.ndarray, k: int = 16, jump_cost: float = JUMP_COST,
               filmed_time: float | None = None) -> int:
        """The atlas entry for this frame (see the class doc; the costs are render.selection's). `filmed_time`:
        when the frame drawn over was filmed, on entry_time's clock (proximity)."""
        n = len(self._desc)
        if n == 1:
            return 0
        query = search_space(want, pose_feat, POSE_WEIGHT)
        _, idx = self._tree.query(query, k=min(k, n))
        cand = np.atleast_1d(idx)
        near = self._near is not None and filmed_time is not None
        if near:  # as offline, a second search with time as one more axis finds fitting mouths filmed nearby
            _, idx_t = self._near.query(with_time(query[None], [filmed_time])[0], k=min(k, n))
            cand = np.unique(np.concatenate([cand, np.atleast_1d(idx_t)]))
        if self.prev is not None and self.prev < n:
            # the entries that continue or hold the previous one are always candidates
            follow = np.flatnonzero((self._seq - self._seq[self.prev] >= 0) & (self._seq - self._seq[self.prev] <= 2))
            cand = np.unique(np.concatenate([cand, follow[:4]]))
        cost = match_cost(squared_distance(self._desc[cand], self._pose_feat[cand], want, pose_feat, POSE_WEIGHT),
                          self._blur[cand])
        if near:
            cost = cost + proximity_cost(self.entry_time[cand], filmed_time)
        if self.prev is not None and self.prev < n:
            cost = cost + transition_cost(self._seq[cand] - self._seq[self.prev], jump_cost)
        a = int(cand[int(np.argmin(cost))])
        self.prev = a
        return a

    def render(self, rgb: np.ndarray, lms: np.ndarray | None, opening: float, width: float,
               filmed_time: float | None = None) -> tuple[np.ndarray, bool]:
        """rgb with the mouth at `opening`/`width` (MouthTrack units), or unchanged when there is no face.
        `filmed_time`: when this frame was filmed on entry_time's clock (a prepared file's; else None)."""
        if lms is None or not self._ensure_renderer(rgb.shape[1], rgb.shape[0]):
            self.colour.reset()
            self.prev = None
            return rgb, False
        r = self.renderer
        r.track.landmarks[0] = lms
        s, rot, t = _pose_of(r.canonical, lms)
        r.pose.scale[0], r.pose.rotation[0], r.pose.translation[0] = s, rot, t
        src = self.filmed_index(filmed_time)
        # with the filmed frame's expression, as offline: its width at this opening and its corner lift
        open_c, width_c = r.wanted(motion.MouthTrack(np.zeros(1), np.float32([opening]), np.float32([width]),
                                                     np.zeros(1, bool)), None if src is None else np.array([src]))
        want = small_open_axis(np.array([[open_c[0], width_c[0]]]))[0] * self._desc_scale
        if len(self._desc[0]) > len(want):  # the corner-lift axis; a frame past the prepared ones: the typical lift
            lift = self._typical_lift if src is None else float(self._expr[1][src])
            want = np.append(want, EXPRESSION_WEIGHT * lift)
        opening_c = float(open_c[0])
        a = self.choose(want, rot[:2, 2], filmed_time=filmed_time)
        # no lock: the renderer reads its own snapshot of the atlas arrays, and the tracker thread only appends
        # (list appends and reads are atomic in CPython), so atlas growth never waits for a render
        return r.render_frame(rgb, 0, a, opening_c, float(width_c[0])), True


class Blinks:
    """Blinks for a still photo (a video blinks by itself), drawn as the stream goes: every 2–8 s."""

    def __init__(self, canonical: np.ndarray, seed: int = 0):
        self.canonical = canonical
        self.warper = FaceWarper(canonical)
        self._onsets = expression.blink_onsets(np.random.default_rng(seed), np.inf)
        self._recent = [next(self._onsets)]

    def amount(self, t: float) -> float:
        while self._recent[-1] < t + 1.0:
            self._recent.append(next(self._onsets))
        self._recent = [a for a in self._recent if a > t - 1.0] or self._recent[-1:]
        return float(max(expression.blink_shape(np.array([t]), a)[0] for a in self._recent))

    def apply(self, rgb: np.ndarray, lms: np.ndarray, t: float) -> np.ndarray:
        b = self.amount(t)
        if b <= 0.01:
            return rgb
        s, rot, tr = _pose_of(self.canonical, lms)
        motion_now = expression.FaceMotion(np.zeros(1), np.zeros((1, 3), np.float32), np.float32([b]),
                                           np.zeros(1, np.float32))
        off = expression.frame_offsets(motion_now, 0, self.canonical, None, blinks=True)
        moved = lms.astype(np.float64) + s * off @ rot.T
        out = self.warper.warp(rgb, (s, rot, tr), lms.astype(np.float64), moved, None)
        return close_eyes_for_blink(out, moved, b, s)
