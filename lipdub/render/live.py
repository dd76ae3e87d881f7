"""Live rendering: the mouths a stream draws from and the online choice among them, and blinks for a photo."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
from scipy.spatial import cKDTree

from lipdub import face as F
from lipdub import motion
from lipdub.core.landmarks import STABLE
from lipdub.media.frames import PlanarFrame
from lipdub.motion import expression
from lipdub.render import compose
from lipdub.render.atlas import Atlas
from lipdub.render.mouth import MouthModel, descriptors
from lipdub.render.renderer import Renderer
from lipdub.render.selection import (JUMP_COST, POSE_WEIGHT, descriptor_scale, match_cost, search_space,
                                     small_open_axis, squared_distance, squeeze_cost, transition_cost)
from lipdub.render.speaker import EXPRESSION_SECONDS, opening_fit, resting
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
    nothing, holding costs a little, jumping costs more): the same costs (render.selection), decided greedily, small
    openings matched closely as offline (small_open_axis, squeeze_cost). Offline's proximity and filmed-expression
    terms were tried live on a video file's prepared atlas and not kept (docs/RESULTS.md, Live mode with a profile)."""

    def __init__(self, atlas: Atlas | None = None, model: MouthModel | None = None,
                 region: str = "lower", grow: bool = True, colour_gain: bool = False, fps: float = 25.0):
        self.atlas, self.model, self.region = atlas, model, region
        self.grow = grow and atlas is None  # a profile's atlas is complete; the stream's grows
        self.colour = compose.ColourMatcher(gain=colour_gain)
        self.renderer: Renderer | None = None
        self._slot = None
        self._indexed = 0
        self._tree = None
        self.prev: int | None = None
        self._lock = threading.Lock()
        self.still = False  # a photo source: one entry is all there is
        # the live frame's own expression: its filmed width over the speaker's fit, the last EXPRESSION_SECONDS
        self._width_offsets: deque[float] = deque(maxlen=max(1, int(round(EXPRESSION_SECONDS * fps))))
        self._width_fit: np.ndarray | None = None

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
                self.renderer = Renderer(self.atlas, self._slot, pose=pose, model=self.model,
                                                colour=self.colour, region=self.region)
                self._steady_amplitude()
                self._reindex(n)
            elif n - self._indexed >= REINDEX_EVERY or (n != self._indexed and n < 100):
                self.renderer.index_atlas()
                self._steady_amplitude()
                self._reindex(n)
        return True

    def _rest(self) -> float:
        """How this speaker rests (canonical opening; 0 = closed), which the new speech's silences show: a prepared
        video file's rest, measured on its tracked frames and their pauses before the session (`rest_opening` of
        the atlas, pipeline.live.prepare_atlas); for a stream's own atlas the low percentile of the openings seen
        so far (render.speaker.resting: closed until it holds REST_MIN_FRAMES mouths); closed for a profile's
        atlas without the shot's (its footage's rests are another shot's) and for a photo."""
        known = getattr(self.atlas, "rest_opening", None)
        if known is not None:
            return float(known)
        if self.grow and not self.still:
            return resting(self.renderer.atlas_open)
        return 0.0

    def _steady_amplitude(self) -> None:
        """The stream's own atlas starts empty, so its estimate of how wide this speaker opens (offline: the whole
        clip's 97th percentile, at least 0.09) keeps changing as frames arrive, and the dub's amplitude with it; the
        floor for short clips (0.16) holds it steady through the first seconds and for speakers who barely open
        (measured: r against the real speaker 0.54 → 0.68 on the CNN case, the same on the others)."""
        if self.grow and not self.still:
            self.renderer.model.open_max = max(self.renderer.model.open_max, MIN_OPEN_MAX)

    def _reindex(self, n: int) -> None:
        r = self.renderer
        self._desc_scale = descriptor_scale(r.model)
        self._desc = small_open_axis(r.atlas_desc) * self._desc_scale
        self._open = r.atlas_open
        self._pose_feat = self.atlas.pose_feat.astype(np.float64)
        self._seq = self.atlas.seq
        self._blur = r.blur_cost()
        self._tree = cKDTree(search_space(self._desc, self._pose_feat, POSE_WEIGHT))
        self._indexed = n
        r.use_rest(self._rest())
        # the speaker's width against the opening (speaker.opening_fit, as offline's filmed_expression) over the
        # shot's own mouths where a profile's are mixed in (its footage widens otherwise)
        own = r.atlas_desc[getattr(self.atlas, "n_foreign", 0):]
        self._width_fit = opening_fit(own[:, 0], own[:, 1], 1.0) if len(own) else None

    def wanted_width(self, lms: np.ndarray, pose: tuple[float, np.ndarray, np.ndarray], opening: float,
                     width: float) -> float:
        """Canonical width for a live frame at canonical `opening`: as offline's source-aware width
        (Renderer.wanted), this speaker's own width at that opening (the atlas's fit) plus the live frame's
        expression (its filmed width over the fit, a trailing running median over EXPRESSION_SECONDS: causal where
        offline's is centred); offline's speech spread (width_gain) is left out, as it needs the whole speech's
        mean. `width` (the rest width plus the speech term) is kept until the atlas is first indexed."""
        if self._width_fit is None:
            return width
        s, rot, t = pose
        filmed = descriptors((lms.astype(np.float64) - t) @ rot / s)  # the frame's mouth in canonical units
        a, b = self._width_fit
        self._width_offsets.append(float(filmed[1] - a - b * filmed[0]))
        return float(a + b * opening + np.median(self._width_offsets))

    def choose(self, want: np.ndarray, pose_feat: np.ndarray, k: int = 16, jump_cost: float = JUMP_COST,
               want_open: float | None = None) -> int:
        """The atlas entry for this frame (see the class doc; the costs are render.selection's); `want_open` (the
        canonical opening wanted) adds squeeze_cost."""
        n = len(self._desc)
        if n == 1:
            return 0
        _, idx = self._tree.query(search_space(want, pose_feat, POSE_WEIGHT), k=min(k, n))
        cand = np.atleast_1d(idx)
        if self.prev is not None and self.prev < n:
            # the entries that continue or hold the previous one are always candidates
            follow = np.flatnonzero((self._seq - self._seq[self.prev] >= 0) & (self._seq - self._seq[self.prev] <= 2))
            cand = np.unique(np.concatenate([cand, follow[:4]]))
        cost = match_cost(squared_distance(self._desc[cand], self._pose_feat[cand], want, pose_feat, POSE_WEIGHT),
                          self._blur[cand])
        if want_open is not None:
            cost = cost + squeeze_cost(self._open[cand], want_open)
        if self.prev is not None and self.prev < n:
            cost = cost + transition_cost(self._seq[cand] - self._seq[self.prev], jump_cost)
        a = int(cand[int(np.argmin(cost))])
        self.prev = a
        return a

    def render(self, rgb: np.ndarray, lms: np.ndarray | None, opening: float, width: float, rest: float = 0.0,
               planar: PlanarFrame | None = None) -> tuple[np.ndarray, bool]:
        """rgb with the mouth at `opening`/`width` and at least `rest` of the speaker's rest opening (MouthTrack
        units), or unchanged when there is no face; `planar` (the frame as decoded) gets the drawn pixels too."""
        if lms is None or not self._ensure_renderer(rgb.shape[1], rgb.shape[0]):
            self.colour.reset()
            self.prev = None
            return rgb, False
        r = self.renderer
        r.track.landmarks[0] = lms
        s, rot, t = _pose_of(r.canonical, lms)
        r.pose.scale[0], r.pose.rotation[0], r.pose.translation[0] = s, rot, t
        open_c, width_c = r.wanted(motion.MouthTrack(np.zeros(1), np.float32([opening]), np.float32([width]),
                                                     np.zeros(1, bool), np.float32([rest])))
        opening_c = float(open_c[0])
        width_c = self.wanted_width(lms, (s, rot, t), opening_c, float(width_c[0]))
        want = small_open_axis(np.array([[opening_c, width_c]]))[0] * self._desc_scale
        a = self.choose(want, rot[:2, 2], want_open=opening_c)
        # no lock: the renderer reads its own snapshot of the atlas arrays, and the tracker thread only appends
        # (list appends and reads are atomic in CPython), so atlas growth never waits for a render
        return r.render_frame(rgb, 0, a, opening_c, width_c, planar=planar), True


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
