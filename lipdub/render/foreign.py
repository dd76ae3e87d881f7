"""foreign: an actor profile's mouths made to belong to the shot, mixed with the shot's own mouths.

A profile's mouths were filmed elsewhere (other light, colour, lens, codec), and a detector tells them from the shot's
own far more easily (docs/RESULTS.md, Realism with an actor profile). So a dub with a profile draws from both atlases
in one selection (mixed_renderer): the shot's own entries, and the profile's matched to the shot first (ShotLook:
scaled to the shot's crop size, the lower face given the shot's Lab mean and spread, then blurred or given grain until
its fine detail matches, the lips given the shot's lip colour, spread and detail on their own). A profile entry costs
FOREIGN_COST more, about a jump, so the shot's own mouths serve wherever one fits and the profile fills in what the
shot never shows (a wider opening, teeth).
The mixed atlas lives in the profile's canonical frame: the shot's own entries are measured again in it, their warp
rings placed again from its face (rings_in_frame) and their teeth counted in its units (teeth_ratio). A live session
mixes the same way (live_mixed_atlas), from the shot's own atlas prepared beforehand, which keeps no track.
"""

from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np

from lipdub.core.geometry import Pose, umeyama
from lipdub.core.landmarks import STABLE
from lipdub.face import FaceTrack, estimate_pose
from lipdub.render.atlas import IDENTITY, Atlas
from lipdub.render.compose import ColourMatcher
from lipdub.render.mouth import (CONTROL, INNER_RING, OUTER_RING, MouthModel, build_mouth_model,
                                 descriptors)
from lipdub.render.renderer import Renderer

FOREIGN_COST = 0.05  # a profile mouth costs this more than the shot's own (a jump's cost: render.selection)
FAR = 1e4  # seconds: a profile mouth counts as filmed far from every frame (the proximity cost's maximum)
SAMPLE = 48  # entries of each atlas the look statistics are measured on
TEETH_SHOWN = 0.3  # teeth visibility (atlas units) above which an opening bin shows teeth
SIGMAS = (0.0, 0.4, 0.6, 0.8, 1.0, 1.3, 1.7)  # blurs tried to match fine detail
# the lips' own match (after the skin's): their Lab spread scaled within LIP_GAIN about their centre (deviations
# beyond LIP_REACH spreads count as that far: the teeth and skin the soft lip mask reaches are not pushed away), the
# centre moved by at most LIP_SHIFT_MAX levels, their fine detail scaled by an unsharp mask of one of LIP_DETAIL
# amounts (-1: a σ=1 blur)
LIP_GAIN = (0.7, 1.4)  # as the skin's gain: 2.0 also amplified a profile's lip highlights (vx11)
LIP_REACH = 2.5
LIP_SHIFT_MAX = 30.0
LIP_ROUNDS = 2  # the lips' match measured as drawn and asked again this many times
LIP_DETAIL = tuple(np.round(np.arange(-0.8, 2.01, 0.1), 2))


def _masks(crop: np.ndarray, ctrl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lower face, lips) masks of a crop from its control points (crop pixels)."""
    h, w = crop.shape[:2]
    face = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(face, cv2.convexHull(np.round(ctrl[: len(CONTROL)]).astype(np.int32)), 1)
    lips = np.zeros((h, w), np.uint8)
    cv2.fillPoly(lips, [np.round(ctrl[OUTER_RING]).astype(np.int32)], 1)
    cv2.fillPoly(lips, [np.round(ctrl[INNER_RING]).astype(np.int32)], 0)
    return face > 0, lips > 0


def _detail(grey: np.ndarray, mask: np.ndarray) -> float:
    """Fine detail (grain and sharpness together): std of the grey crop minus its σ=1 blur, inside `mask`."""
    hp = grey - cv2.GaussianBlur(grey, (0, 0), 1.0)
    return float(hp[mask].std()) if mask.any() else 0.0


def _centre_spread(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel median and half the 16-84 % range of (N, C) values: a lip mask's edge pixels (skin, the dark
    gap) move neither much."""
    lo, mid, hi = np.percentile(x, (16, 50, 84), axis=0)
    return mid, np.maximum((hi - lo) / 2, 0.5)


def _scaled_points(pts: np.ndarray, f: float) -> np.ndarray:
    """Crop-pixel points of a crop resized by f (pixel centres stay centres)."""
    pts = pts.astype(np.float64)
    return pts if abs(f - 1) < 1e-3 else (pts + 0.5) * f - 0.5


def teeth_ratio(open_o: np.ndarray, teeth_o: np.ndarray, open_p: np.ndarray, teeth_p: np.ndarray,
                bins: int = 6) -> float:
    """How much teeth the profile's footage shows per unit of the shot's at the same opening (median per bin of the
    shot's openings, weighted by the shot's entries). Teeth visibility is measured against the lips' lightness, so
    another light or camera shows the same teeth as more or less: the profile's wanted teeth and the shot's entries
    must be compared in one unit, or selection takes profile mouths for their teeth alone."""
    if len(open_o) < 2 * bins or len(open_p) < 2 * bins:
        return 1.0
    edges = np.quantile(open_o, np.linspace(0, 1, bins + 1))
    num = den = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        o, p = (open_o >= lo) & (open_o <= hi), (open_p >= lo) & (open_p <= hi)
        if p.sum() < 5 or o.sum() < 5:
            continue
        med_o = float(np.median(teeth_o[o]))
        if med_o < TEETH_SHOWN:  # closed or lip-covered: no teeth to compare
            continue
        num += o.sum() * float(np.median(teeth_p[p]))
        den += o.sum() * med_o
    return float(np.clip(num / den, 0.5, 2.0)) if den > 0 else 1.0


def rings_in_frame(src_controls: np.ndarray, norm: np.ndarray, warper) -> np.ndarray:
    """`src_controls` (A, N, 2 crop pixels) with their skull-fixed outer ring placed again from `warper`'s canonical
    face. An entry's crop is an affine image of its canonical landmarks (the head pose, then the crop's similarity),
    fitted on the lip and jaw points; the ring is put where that map takes the warper's ring. The shot's own entries
    drawn in the profile's frame need this: their rings came from the shot's canonical face while the frame they
    are drawn onto gets the profile's, and the mismatch bent the lower face's geometry on every frame."""
    out = src_controls.astype(np.float64).copy()
    n = len(CONTROL)
    ring = warper.control_points(warper.canonical)[n:, :3]
    ring_h = np.concatenate([ring, np.ones((len(ring), 1))], 1)
    for a in range(len(out)):
        x = np.concatenate([norm[a][CONTROL].astype(np.float64), np.ones((n, 1))], 1)
        coef, *_ = np.linalg.lstsq(x, out[a, :n], rcond=None)
        out[a, n:] = ring_h @ coef
    return out


def _sample(n: int) -> np.ndarray:
    """Up to SAMPLE entry indices spread evenly over an atlas of n."""
    return np.unique(np.linspace(0, n - 1, min(n, SAMPLE)).round().astype(int)) if n > 0 else np.zeros(0, int)


class ShotLook:
    """How a profile crop is changed to look filmed in the shot: scale, Lab mean/spread of the lower face, the lips'
    own colour and spread, and fine detail (the lower face's, then the lips'), each measured on a sample of both
    atlases. The lips are matched on their own: another shot's light, make-up or gloss moves them differently from
    the skin (vx11's profile lips came out lighter, flatter and smoother than the shot's after the skin's match)."""

    def __init__(self, profile: Atlas, own: Atlas):
        self.factor = own.scale / profile.scale
        stats = {}
        for name, atlas, idx, f in (("own", own, _sample(own.n), 1.0),
                                    ("profile", profile, _sample(profile.n), self.factor)):
            faces, lips, greys, masks, samples = [], [], [], [], []
            for a in idx:
                crop, ctrl = self._scaled(atlas.crop(a), atlas.src_controls[a], f)
                face, lip = _masks(crop, ctrl)
                lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32)
                faces.append(lab[face & ~lip])
                lips.append(lab[lip])
                greys.append(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32))
                masks.append((cv2.erode(face.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0,
                              cv2.erode(lip.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0))
                samples.append((crop, ctrl, lip))
            skin = np.concatenate(faces) if faces else np.zeros((0, 3), np.float32)
            lip = np.concatenate(lips) if lips else np.zeros((0, 3), np.float32)
            stats[name] = (skin, lip, greys, masks, samples)
        skin_o, lip_o, grey_o, mask_o, _ = stats["own"]
        skin_p, lip_p, grey_p, mask_p, sample_p = stats["profile"]
        self.sigma, self.grain, self.lip_detail = 0.0, 0.0, 0.0
        self.lip_gain, self.lip_move = np.ones(3, np.float32), np.zeros(3, np.float32)
        self.lip_centre, self.lip_reach = np.zeros(3, np.float32), np.zeros(3, np.float32)
        self.ok = len(skin_o) > 100 and len(skin_p) > 100
        if not self.ok:
            return
        mu_o, mu_p = skin_o.mean(0), skin_p.mean(0)
        self.gain = np.clip(skin_o.std(0) / np.maximum(skin_p.std(0), 1e-3), 0.7, 1.4)
        self.shift = mu_o - self.gain * mu_p
        # fine detail: the blur that brings the profile's down to the shot's, or grain that brings it up
        want = float(np.median([_detail(g, m[0]) for g, m in zip(grey_o, mask_o)]))
        have = [float(np.median([_detail(self._look_grey(g, s), m[0]) for g, m in zip(grey_p, mask_p)]))
                for s in SIGMAS]
        if have[0] > want:
            self.sigma = SIGMAS[int(np.argmin(np.abs(np.array(have) - want)))]
        else:  # high-pass keeps ~0.76 of white noise's variance (σ=1 Gaussian)
            self.grain = float(min(4.0, np.sqrt(max(want ** 2 - have[0] ** 2, 0.0) / 0.76)))
        # the lips after the skin's transfer still differ (gloss, lipstick, another white balance on red): their own
        # centre and spread, faded in over the lip mask
        if len(lip_o) > 50 and len(lip_p) > 50:
            c_o, s_o = _centre_spread(lip_o)
            c_p, s_p = _centre_spread(lip_p * self.gain + self.shift)
            self.lip_centre, self.lip_reach = c_p.astype(np.float32), (LIP_REACH * s_p).astype(np.float32)
            gain, move = s_o / s_p, c_o - c_p
            for _ in range(LIP_ROUNDS):
                self.lip_gain = np.clip(gain, *LIP_GAIN).astype(np.float32)
                self.lip_move = np.clip(move, -LIP_SHIFT_MAX, LIP_SHIFT_MAX).astype(np.float32)
                # the soft mask changes the lips' edge less: measured as drawn, the rest asked again
                drawn = [cv2.cvtColor(np.clip(self._toned(c, k, lp)[0] + 0.5, 0, 255).astype(np.uint8),
                                      cv2.COLOR_RGB2LAB)[lp] for c, k, lp in sample_p]
                c_d, s_d = _centre_spread(np.concatenate(drawn).astype(np.float32))
                gain, move = gain * s_o / s_d, move + c_o - c_d
        # then the lips' own detail (the skin's blur or grain can leave them smoother or grainier than the shot's)
        want_lip = np.median([_detail(g, m[1]) for g, m in zip(grey_o, mask_o) if m[1].any()] or [0.0])
        toned = [(self._toned(c, k, lp), m[1]) for (c, k, lp), m in zip(sample_p, mask_p) if m[1].any()]
        if want_lip > 0 and toned:
            greys = [(cv2.cvtColor(t, cv2.COLOR_RGB2GRAY), (hp * soft)[..., 0], m) for (t, hp, soft), m in toned]
            grain = 0.76 * self.grain ** 2
            got = [np.sqrt(np.median([_detail(g + k * h, m) for g, h, m in greys]) ** 2 + grain) for k in LIP_DETAIL]
            self.lip_detail = float(LIP_DETAIL[int(np.argmin(np.abs(np.array(got) - want_lip)))])

    @staticmethod
    def _scaled(crop: np.ndarray, ctrl: np.ndarray, f: float) -> tuple[np.ndarray, np.ndarray]:
        if abs(f - 1) < 1e-3:
            return crop, ctrl.astype(np.float64)
        h, w = crop.shape[:2]
        size = (max(2, int(round(w * f))), max(2, int(round(h * f))))
        interp = cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC
        return cv2.resize(crop, size, interpolation=interp), _scaled_points(ctrl, f)

    @staticmethod
    def _look_grey(grey: np.ndarray, sigma: float) -> np.ndarray:
        return cv2.GaussianBlur(grey, (0, 0), sigma) if sigma > 0 else grey

    def _toned(self, crop: np.ndarray, ctrl: np.ndarray, lips: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A scaled crop's colours matched (skin, then lips over the soft lip mask) and blurred by `sigma`, as float
        RGB; its grey high-pass (the grey crop less its σ=1 blur) and the soft lip mask, each (H, W, 1). `lips`: the
        crop's lip mask (_masks) where the caller has it already."""
        lab = cv2.cvtColor(crop, cv2.COLOR_RGB2LAB).astype(np.float32) * self.gain + self.shift
        if lips is None:
            _, lips = _masks(crop, ctrl)
        soft = cv2.GaussianBlur(lips.astype(np.float32), (0, 0), max(1.0, 0.01 * crop.shape[1]))[..., None]
        spread = np.clip(lab - self.lip_centre, -self.lip_reach, self.lip_reach) * (self.lip_gain - 1)
        lab += soft * (spread + self.lip_move)
        out = cv2.cvtColor(np.clip(lab + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)
        if self.sigma > 0:
            out = cv2.GaussianBlur(out, (0, 0), self.sigma)
        grey = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)  # the lips' detail is changed in luma only, as grain is added
        return out, (grey - cv2.GaussianBlur(grey, (0, 0), 1.0))[..., None], soft

    def apply(self, crop: np.ndarray, ctrl: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The profile crop (RGB) and its control points as if filmed in the shot; the same seed gives the same
        grain, so an entry drawn twice looks the same."""
        crop, ctrl = self._scaled(crop, ctrl, self.factor)
        if not self.ok:
            return crop, ctrl
        out, hp, soft = self._toned(crop, ctrl)
        if self.lip_detail:
            out += self.lip_detail * soft * hp
        if self.grain > 0:
            out += np.random.default_rng(seed).normal(0.0, self.grain, out.shape[:2]).astype(np.float32)[..., None]
        return np.clip(out + 0.5, 0, 255).astype(np.uint8), ctrl


class MixedAtlas(Atlas):
    """The profile's entries (first `n_foreign`, drawn through a ShotLook) followed by the shot's own, in the
    profile's canonical frame: one atlas for selection and drawing. `entry_cost`: selection's extra cost per entry
    (FOREIGN_COST on the profile's; the Renderer adds it to its blur cost)."""

    n_foreign: int
    look: ShotLook
    entry_cost: np.ndarray
    teeth_ratio: float  # the profile's teeth visibility per unit of the shot's (teeth_ratio())

    def stored(self, a: int) -> tuple[np.ndarray, np.ndarray]:
        """A profile entry as its looked crop; the shot's own as stored."""
        if int(a) >= self.n_foreign:
            return super().stored(a)
        return self.crop(a), IDENTITY

    def stored_points(self, a: int, pts: np.ndarray) -> np.ndarray:
        if int(a) >= self.n_foreign:
            return super().stored_points(a, pts)
        return np.asarray(pts, np.float64)[..., :2]

    def crop(self, a: int) -> np.ndarray:
        a = int(a)
        if a >= self.n_foreign:
            return super().crop(a)
        img = self._looked.get(a)
        if img is None:
            img = self.look.apply(super().crop(a), self._raw_controls[a], seed=a)[0]
            self._looked[a] = img
            while len(self._looked) > 32:
                self._looked.popitem(last=False)
        else:
            self._looked.move_to_end(a)
        return img


def mixed_atlas(profile: Atlas, own: Atlas, track: FaceTrack, pose: Pose, own_frames: np.ndarray) -> MixedAtlas:
    """One atlas of the profile's mouths (matched to the shot) and the shot's own. The shot's entries are measured
    again in the profile's canonical frame from their track frames (`own_frames`) and `pose` (the track against the
    profile's canonical face), as the profile's own were: canonical faces of two shots can differ by a large turn."""
    f = np.asarray(own_frames, np.int64)
    norm_o = ((track.landmarks[f].astype(np.float64) - pose.translation[f][:, None]) @ pose.rotation[f]
              ) / pose.scale[f][:, None, None]
    return _mix(profile, own, norm_o, pose.rotation[f][:, :2, 2])


def live_mixed_atlas(profile: Atlas, own: Atlas, rotation: np.ndarray | None = None) -> MixedAtlas:
    """mixed_atlas for a live session, whose own atlas was prepared beforehand and keeps no track: each own entry is
    measured again in the profile's canonical frame from its canonical landmarks and `rotation` (A, 3, 3: its head
    rotation against the own atlas's canonical face; in_profile_frame)."""
    norm_o, feat_o = in_profile_frame(profile.canonical, own.norm, own.pose_feat, rotation)
    return _mix(profile, own, norm_o, feat_o)


def live_mouth_model(profile: MouthModel, mixed: MixedAtlas) -> MouthModel:
    """The mouth model of a live session drawing from `mixed`: the profile's opening amplitude (how wide the actor
    opens, as offline), the shot's own rest width measured in the profile's frame. Offline the width comes from the
    filmed frame (Renderer.filmed_expression); live has none, and the profile's rest width (another footage) made
    every own mouth narrower or wider: 9 % narrower on vx11, 7 % on stLi."""
    own = build_mouth_model(mixed.canonical, mixed.norm[mixed.n_foreign:], np.ones(mixed.n - mixed.n_foreign, bool))
    return MouthModel(profile.canonical, profile.open_max, own.rest_width)


def in_profile_frame(canonical: np.ndarray, norm: np.ndarray, pose_feat: np.ndarray,
                     rotation: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Canonical landmarks (A, 478, 3) of an atlas and its pose features, measured again against `canonical`.
    An entry's landmarks are a similarity image of the filmed ones, so fitting `canonical` to them gives what
    fitting it to the filmed frame gives, and the head's rotation against `canonical` is the entry's `rotation`
    followed by that fit's. Without `rotation` it is rebuilt from the pose features as if the head had no twist
    about the face normal: off by about the twist × the turn between the two canonical faces (0.03 for a 14° turn,
    up to 0.22 on a shot whose canonical face is 41° off its profile's)."""
    out = np.empty(norm.shape, np.float64)
    feat = np.empty((len(norm), 2), np.float64)
    for a in range(len(norm)):
        x = norm[a].astype(np.float64)
        s, rot, t = umeyama(canonical[STABLE], x[STABLE])
        out[a] = ((x - t) @ rot) / s
        if rotation is not None:
            filmed = rotation[a].astype(np.float64)
        else:  # the smallest rotation taking the canonical normal (0, 0, 1) to the entry's (Rodrigues)
            c = np.array([*pose_feat[a], 0.0], np.float64)
            c[2] = np.sqrt(max(1.0 - c[0] ** 2 - c[1] ** 2, 0.0))
            k = np.array([[0.0, 0.0, c[0]], [0.0, 0.0, c[1]], [-c[0], -c[1], 0.0]])
            filmed = np.eye(3) + k + k @ k / (1.0 + c[2])
        feat[a] = (filmed @ rot)[:2, 2]
    return out, feat


def _mix(profile: Atlas, own: Atlas, norm_o: np.ndarray, feat_o: np.ndarray) -> MixedAtlas:
    """The mixed atlas from the shot's own entries' canonical landmarks and pose features in the profile's frame."""
    look = ShotLook(profile, own)
    out = MixedAtlas(profile.canonical, profile.scale)
    out.look, out.n_foreign = look, profile.n
    out._looked = OrderedDict()
    p, o = profile.arrays(), own.arrays()
    # the shot's teeth in the profile's units: the articulation's wanted teeth are in those
    ratio = teeth_ratio(descriptors(norm_o)[:, 0], o["teeth"].astype(np.float64),
                        descriptors(p["norm"].astype(np.float64))[:, 0], p["teeth"].astype(np.float64))
    # blur_cost compares an entry's sharpness with the atlas median: each source against its own (crop scales differ)
    sharp_p = p["sharpness"].astype(np.float64)
    sharp_o = o["sharpness"].astype(np.float64)
    if len(sharp_p) and len(sharp_o) and np.median(sharp_p) > 0:
        sharp_p = sharp_p * np.median(sharp_o) / np.median(sharp_p)
    seq_o = o["seq"].astype(np.int64) + (int(p["seq"].max()) + 10 if len(p["seq"]) else 0)
    arrays = {"src_controls": np.concatenate([_scaled_points(p["src_controls"], look.factor).astype(np.float32),
                                              rings_in_frame(o["src_controls"], norm_o, out.warper
                                                             ).astype(np.float32)]),
              "norm": np.concatenate([p["norm"].astype(np.float32), norm_o.astype(np.float32)]),
              "seq": np.concatenate([p["seq"].astype(np.int64), seq_o]),
              "pose_feat": np.concatenate([p["pose_feat"], feat_o]).astype(np.float32),
              "sharpness": np.concatenate([sharp_p, sharp_o]),
              "teeth": np.concatenate([p["teeth"], o["teeth"] * ratio]).astype(np.float64),
              "lip_lab": np.concatenate([p["lip_lab"], o["lip_lab"]]).astype(np.float32),
              # a profile entry's stored image is its crop (profile atlases keep crops; MixedAtlas.crop reads it so)
              "to_stored": np.concatenate([np.tile(IDENTITY, (profile.n, 1, 1)), o["to_stored"]]).astype(np.float32)}
    out._raw_controls = p["src_controls"]
    out.jpeg = list(profile.jpeg) + list(own.jpeg)
    out.teeth_ratio = ratio
    out._use_arrays(arrays)
    out.entry_cost = np.where(np.arange(out.n) < profile.n, FOREIGN_COST, 0.0)
    return out


def mixed_renderer(profile: Atlas, model: MouthModel, track: FaceTrack, own: Renderer | None,
                   region: str = "lower") -> Renderer:
    """The renderer of a dub with an actor profile onto `track`: the profile's mouths (matched to the shot) and the
    shot's own (`own`: the clip's own renderer), the shot's own preferred and, among them, those filmed near the
    frame drawn over (proximity, as without a profile); the profile's alone (colour matched by gain) where the shot
    has no atlas of its own or its frames are not known."""
    if own is None or own.filmed is None:
        return Renderer(profile, track, model=model, colour=ColourMatcher(gain=True), region=region)
    entry_time, frame_time = own.filmed
    frames = np.clip(np.searchsorted(frame_time, entry_time), 0, len(track) - 1)
    pose = estimate_pose(track, profile.canonical)
    atlas = mixed_atlas(profile, own.atlas, track, pose, frames)
    filmed = np.concatenate([np.full(profile.n, -FAR), entry_time]), frame_time
    return Renderer(atlas, track, pose, model=model, region=region, filmed=filmed)

