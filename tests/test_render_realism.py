"""What keeps a dubbed mouth looking like the speaker's own (issue 21): mouths filmed near the frame they are drawn
over, the filmed frame's expression (width, corner lift) kept. Synthetic atlases and tracks; the face topology comes
from a real track (skips without ../shared/data)."""

import cv2
import numpy as np
import pytest

from lipdub import face, motion, render
from lipdub.core.landmarks import INNER_LOWER, INNER_UPPER
from lipdub.render import selection, speaker
from lipdub.render.interior import split_rows
from lipdub.render.live import LiveAppearance


# ------------------------------------------------------------------------------------------------ proximity

def _flat_atlas(n=300, fps=30.0, best=7):
    """n entries of nearly the same mouth, one of them (`best`) an exact fit: without a reason to vary, selection
    would draw that one mouth all over the clip."""
    rng = np.random.default_rng(3)
    desc = np.stack([0.5 + rng.uniform(0.02, 0.05, n), np.zeros(n)], 1)
    desc[best, 0] = 0.5
    return desc, np.arange(n), np.arange(n) / fps


def test_selection_without_times_draws_one_mouth_all_over():
    # the case the proximity cost is for: the same entry comes back for the whole 10 s
    desc, seq, _ = _flat_atlas()
    want = np.tile([0.5, 0.0], (300, 1))
    sel = render.select_frames(desc, np.zeros((300, 2)), seq, want, np.zeros((300, 2)), jump_cost=0.05)
    assert np.bincount(sel).max() > 250


def test_selection_draws_mouths_filmed_near_the_frame():
    desc, seq, times = _flat_atlas()
    want = np.tile([0.5, 0.0], (300, 1))
    sel = render.select_frames(desc, np.zeros((300, 2)), seq, want, np.zeros((300, 2)), jump_cost=0.05,
                               atlas_time=times, want_time=times)
    # every mouth was filmed within the proximity window of the frame it is drawn over ...
    assert np.abs(times[sel] - times).max() <= selection.PROXIMITY_SECONDS
    # ... so no entry is reused across the clip: the frames drawing one entry span at most two windows
    for a in np.unique(sel):
        used = times[sel == a]
        assert used.max() - used.min() <= 2 * selection.PROXIMITY_SECONDS
    assert len(np.unique(sel)) > 50


def test_proximity_never_beats_a_fitting_mouth():
    # a far but fitting mouth against near ones that are clearly wrong: the fit wins (the cost is bounded)
    times = np.arange(300) / 30.0
    desc = np.stack([np.full(300, 0.1), np.zeros(300)], 1)
    desc[280, 0] = 0.9  # the only open mouth, filmed 9 s after the frames that want it
    want = np.tile([0.9, 0.0], (20, 1))
    sel = render.select_frames(desc, np.zeros((300, 2)), np.arange(300), want, np.zeros((20, 2)),
                               jump_cost=0.05, atlas_time=times, want_time=times[:20])
    assert np.all(sel == 280)


def test_proximity_cost_is_bounded_and_grows_with_distance():
    d = np.array([0.0, 0.5, 1.0, 2.0, 10.0]) * selection.PROXIMITY_SECONDS
    c = selection.proximity_cost(d, 0.0)
    assert c[0] == 0 and np.all(np.diff(c) >= 0) and c[-1] == selection.PROXIMITY_WEIGHT


# ------------------------------------------------------------------------------------------------ expression

@pytest.fixture(scope="module")
def topology():
    """A real canonical face (MediaPipe topology) from the shared clip."""
    from conftest import require_data
    from lipdub import media
    import itertools

    path = require_data("video/hdtf_katiehill_8s.mp4") / "video/hdtf_katiehill_8s.mp4"
    info = media.probe_video(path)
    track = face.track_frames(lambda: itertools.islice(media.iter_frames(path), 0, 6), info.width, info.height, 6,
                              info.fps)
    return face.canonical_shape(track)


def _smiling_track(can, n=60, widen=0.0, lift=0.0, fps=30.0):
    """n frames of one face (100 px per canonical unit) whose second half smiles: mouth corners `widen` further
    apart and `lift` higher (canonical units), the lip points next to them half as much. The opening wobbles a
    little, as a speaking mouth does."""
    shapes = np.repeat(can[None].astype(np.float64), n, 0)
    rng = np.random.default_rng(0)
    for k in range(n):
        for up, lo in render.INNER_PAIRS:
            shapes[k, lo, 1] = shapes[k, up, 1] + 0.02 + 0.01 * rng.random()
    for left, right, share in ((61, 291, 1.0), (78, 308, 1.0), (146, 375, 0.5), (185, 409, 0.5)):
        shapes[n // 2:, left, 0] -= share * widen / 2
        shapes[n // 2:, right, 0] += share * widen / 2
        shapes[n // 2:, [left, right], 1] -= share * lift
    lms = (shapes * 100 + [200, 120, 0]).astype(np.float32)
    return face.FaceTrack(np.arange(n) / fps, lms, np.ones(n, bool), 400, 400)


def _renderer(track, can):
    return _renderer_on(track, can, np.random.default_rng(1).integers(60, 200, (400, 400, 3), dtype=np.uint8))


def _renderer_on(track, can, img):
    """A renderer whose atlas holds every frame of `track`, each cut from the image `img`."""
    pose = face.estimate_pose(track, can)
    atlas = render.Atlas(can, float(np.median(pose.scale)))
    for i in range(len(track)):
        assert atlas.add(i, img, track.landmarks[i], (pose.scale[i], pose.rotation[i], pose.translation[i]))
    return render.Renderer(atlas, track, pose)


def _speech(n, width=0.0):
    return motion.MouthTrack(np.arange(n) / 30.0, np.full(n, 0.3, np.float32), np.full(n, width, np.float32),
                             np.zeros(n, bool))


def test_wanted_width_follows_the_filmed_smile(topology):
    track = _smiling_track(topology, widen=0.12)
    r = _renderer(track, topology)
    n = len(track)
    _, width = r.wanted(_speech(n), np.arange(n))
    neutral, smiling = np.median(width[: n // 2 - 15]), np.median(width[n // 2 + 15:])
    assert smiling - neutral == pytest.approx(0.12, abs=0.03)
    # the speech's own spreading still comes on top (around its mean: the fit holds the speaker's average width)
    speech = _speech(n, width=1.0)
    speech.width[::2] = -1.0
    _, spread = r.wanted(speech, np.arange(n))
    assert np.all(spread[1::2] > width[1::2]) and np.all(spread[::2] < width[::2])
    # without the filmed frames (live, a bare call) the width is the rest width with the speech's
    _, bare = r.wanted(_speech(n))
    assert np.ptp(bare) == 0


def test_the_dubbed_width_varies_as_much_as_the_speaker_rounds_and_spreads(topology):
    # a speaker whose width moves from frame to frame (rounding, spreading) by sd 0.03 of the face at any opening:
    # the speech's spreading reaches as far (the fixed share alone moved the dub's width half as much as filmed)
    n = 150
    shapes = np.repeat(topology[None].astype(np.float64), n, 0)
    jitter = np.random.default_rng(3).normal(0, 0.03, n)
    for left, right, share in ((61, 291, 1.0), (78, 308, 1.0), (146, 375, 0.5), (185, 409, 0.5)):
        shapes[:, left, 0] -= share * jitter / 2
        shapes[:, right, 0] += share * jitter / 2
    track = face.FaceTrack(np.arange(n) / 30.0, (shapes * 100 + [200, 120, 0]).astype(np.float32), np.ones(n, bool),
                           400, 400)
    r = _renderer(track, topology)
    speech = _speech(n)
    speech.width[:] = np.random.default_rng(4).normal(0, 0.15, n)  # MouthTrack.width's typical spread
    _, width = r.wanted(speech, np.arange(n))
    _, _, (a, b), _ = r.filmed_expression()
    fast = width - a - b * 0.3 * r.model.open_max - r.filmed_expression()[0]
    assert np.std(fast) == pytest.approx(0.03, rel=0.3)
    assert abs(np.mean(fast)) < 0.005  # around the speaker's own width
    # a speaker whose width stays put keeps the fixed share
    assert r.width_gain() > 2.0 and _renderer(_smiling_track(topology), topology).width_gain() == 1.0


def test_selection_keeps_the_filmed_corner_lift(topology):
    # the smile only lifts the corners (no widening), so the width cannot tell the entries apart: only the lift can
    track = _smiling_track(topology, lift=0.04)
    r = _renderer(track, topology)
    r.filmed = None  # no proximity: as with a profile's atlas, which is not filmed in this clip
    n = len(track)
    entry_lift = render.corner_lift(r.norm)
    assert entry_lift[n // 2:].mean() - entry_lift[: n // 2].mean() == pytest.approx(0.04, abs=0.01)
    _, _, sel = r.plan(np.arange(n), _speech(n))
    lifted = entry_lift[sel] > entry_lift[: n // 2].mean() + 0.02
    assert lifted[n // 2 + 15:].all() and not lifted[: n // 2 - 15].any()


def _dropping_corners_track(can, gaps, drops):
    """A track of the topology's face, frame k's inner lips parted by gaps[k] and its mouth corners (with the lip
    points next to them half as much) dropped by drops[k] (canonical units)."""
    n = len(gaps)
    shapes = np.repeat(can[None].astype(np.float64), n, 0)
    for k in range(n):
        for up, lo in render.INNER_PAIRS:
            shapes[k, lo, 1] = shapes[k, up, 1] + gaps[k]
        for left, right, share in ((61, 291, 1.0), (78, 308, 1.0), (146, 375, 0.5), (185, 409, 0.5)):
            shapes[k, [left, right], 1] += share * drops[k]
    lms = (shapes * 100 + [200, 120, 0]).astype(np.float32)
    return face.FaceTrack(np.arange(n) / 30.0, lms, np.ones(n, bool), 400, 400)


def test_the_filmed_lift_is_kept_over_its_fit_on_the_opening(topology):
    # a speaker whose corners drop as the mouth opens (no smile): the lift's fit on the opening carries it all, and
    # what is left over the fit (the expression) is flat; a smile in the second half lifts what is left by its lift
    n = 90
    gaps = 0.02 + 0.08 * np.random.default_rng(5).random(n)
    drops = 0.3 * gaps
    drops[n // 2:] -= 0.02
    track = _dropping_corners_track(topology, gaps, drops)
    filmed = speaker.filmed_mouth(track, face.estimate_pose(track, topology), 0.5)
    assert filmed.lift_fit[1] < -0.2  # the corners sit lower against the upper lip's middle as the mouth opens
    resid = filmed.lift
    assert np.ptp(resid[5: n // 2 - 20]) < 0.005 and np.ptp(resid[n // 2 + 20: -5]) < 0.005
    assert np.median(resid[n // 2 + 20:]) - np.median(resid[: n // 2 - 20]) == pytest.approx(0.02, abs=0.006)


def test_open_mouths_are_drawn_from_mouths_with_their_openings_corners(topology):
    # the corners drop as the mouth opens: shut mouths (even frames) at lift 0, open ones (odd) 0.03 lower, one open
    # mouth (frame 31) only half as low. Raw, the speaker's median lift asked of every mouth picked that one for all
    # the open frames wanted (an untypical mouth at its opening: on small faces, a thin dark gap); over the lift's
    # fit on the opening, the typical open mouths are drawn
    n = 60
    gaps = np.where(np.arange(n) % 2 == 1, 0.10, 0.01)
    drops = np.where(np.arange(n) % 2 == 1, 0.03, 0.0)
    drops[31] = 0.015
    track = _dropping_corners_track(topology, gaps, drops)
    r = _renderer(track, topology)
    r.filmed = None  # no proximity
    want = motion.MouthTrack(np.arange(n) / 30.0, np.full(n, 0.10 / r.model.open_max, np.float32),
                             np.zeros(n, np.float32), np.zeros(n, bool))
    open_c, _, sel = r.plan(np.arange(n), want)
    assert np.allclose(open_c, 0.10, atol=0.005) and np.all(sel % 2 == 1)  # open mouths drawn
    assert np.mean(sel == 31) < 0.2


def test_small_openings_are_matched_closely():
    # a barely parted mouth is wanted; the atlas holds one mouth more open (it would need its lip line redrawn) with
    # the right width, and one as barely parted a little narrower: the stretched opening axis takes the second
    from lipdub.render.selection import SMALL_OPEN_STRETCH, small_open_axis

    entries = np.array([[0.035, 0.50], [0.005, 0.46]])
    want = np.array([[0.005, 0.50]])
    scale = np.array([1 / 0.2, 3 / 0.5])

    def pick(transform):
        return int(render.select_frames(transform(entries) * scale, np.zeros((2, 2)), np.array([0, 5]),
                                        transform(want) * scale, np.zeros((1, 2)))[0])

    assert SMALL_OPEN_STRETCH > 0
    assert pick(lambda d: d) == 0  # on the plain axis the wider match wins ...
    assert pick(small_open_axis) == 1  # ... stretched, the barely parted one
    # above a parted mouth the axis is only shifted: open mouths compare as before
    d = small_open_axis(np.array([[0.1, 0.5], [0.2, 0.5]]))
    assert d[1, 0] - d[0, 0] == pytest.approx(0.1)


def test_squeeze_cost_charges_small_openings_drawn_from_much_more_open_mouths():
    lo, hi = selection.SQUEEZE_FADE
    want = 0.03
    free = (want + selection.SQUEEZE_FLOOR) * np.exp(selection.SQUEEZE_TOLERANCE) - selection.SQUEEZE_FLOOR
    filmed = np.array([0.0, want, free - 1e-4, free + 0.01, 0.08, 0.15])
    c = selection.squeeze_cost(filmed, want)
    assert np.all(c[:3] == 0)  # drawn more open than filmed, or squeezed within the tolerance: free
    assert np.all(np.diff(c[2:]) > 0)  # then it grows with the squeeze
    # the ratio, not the difference: the same 0.05 squeeze costs a parted mouth and nothing to an open one
    assert selection.squeeze_cost(0.08, 0.03) > 0.1 and selection.squeeze_cost(0.20, 0.15) == 0
    # fading out over the wanted openings of SQUEEZE_FADE: open mouths keep their choice
    mid = (lo + hi) / 2
    fade = selection.squeeze_cost(0.3, np.array([lo, mid, hi]))
    excess = np.log((0.3 + selection.SQUEEZE_FLOOR) / (mid + selection.SQUEEZE_FLOOR)) - selection.SQUEEZE_TOLERANCE
    assert fade[0] > 0 and fade[1] == pytest.approx(0.5 * selection.SQUEEZE_WEIGHT * excess ** 2) and fade[2] == 0


def test_small_openings_are_drawn_from_mouths_near_their_opening():
    # a parted mouth is wanted; the atlas holds a mouth filmed more than twice as open at the wanted width, and one
    # about as parted, narrower: by descriptors alone the open one wins, squeezed; told the openings, the parted one
    from lipdub.render.selection import small_open_axis

    entries = np.array([[0.09, 0.50], [0.04, 0.44]])
    want = np.array([[0.035, 0.50]])
    scale = np.array([1 / 0.2, 3 / 0.5])

    def pick(**openings):
        return int(render.select_frames(small_open_axis(entries) * scale, np.zeros((2, 2)), np.array([0, 5]),
                                        small_open_axis(want) * scale, np.zeros((1, 2)), **openings)[0])

    assert pick() == 0
    assert pick(atlas_open=entries[:, 0], want_open=want[:, 0]) == 1


# ------------------------------------------------------------------------------------------------ live selection
# LiveAppearance.choose takes the same match term greedily, small openings matched closely (proximity and the filmed
# expression were tried live and not kept: docs/RESULTS.md, Live mode with a profile).

def _two_mouths(topology, gaps, narrow):
    """A two-frame track of the topology's face: its inner lips parted by `gaps` (canonical), the second mouth
    `narrow` narrower at its corners."""
    shapes = np.repeat(topology[None].astype(np.float64), 2, 0)
    for k, gap in enumerate(gaps):
        for up, lo in render.INNER_PAIRS:
            shapes[k, lo, 1] = shapes[k, up, 1] + gap
    shapes[1, [61, 78], 0] += narrow / 2
    shapes[1, [291, 308], 0] -= narrow / 2
    return face.FaceTrack(np.arange(2) / 30.0, (shapes * 100 + [200, 120, 0]).astype(np.float32), np.ones(2, bool),
                          400, 400)


def test_live_selection_matches_small_openings_closely(topology):
    from lipdub.render.interior import CLOSED_LINE_OPENING

    # two entries: one parted wider than a barely parted mouth with the wanted width, one shut a little narrower
    track = _two_mouths(topology, (0.035, 0.0), narrow=0.06)
    desc = render.descriptors(_renderer(track, topology).norm)
    model = render.MouthModel(topology, 0.2, float(desc[0, 1]))  # the open entry has the rest width exactly
    # premise: on the plain opening axis the open entry is nearer a shut mouth at rest width
    scale = selection.descriptor_scale(model)
    plain = (((desc - [0.0, model.rest_width]) * scale) ** 2).sum(1)
    assert plain[0] < plain[1] and desc[0, 0] < CLOSED_LINE_OPENING[1]
    app = LiveAppearance(_renderer(track, topology).atlas, model, grow=False)
    app.render(np.full((400, 400, 3), 128, np.uint8), track.landmarks[0], 0.0, 0.0)
    assert app.prev == 1  # the stretched axis: the shut one


def test_live_selection_charges_squeezed_mouths(topology):
    # a parted mouth wanted at the rest width: an entry filmed more than twice as open at that width, one about as
    # parted, narrower; live's greedy choice takes the open one by descriptors, the parted one told the opening
    from lipdub.render.selection import small_open_axis

    track = _two_mouths(topology, (0.09, 0.04), narrow=0.1)
    r = _renderer(track, topology)
    desc = render.descriptors(r.norm)
    wanted = np.array([[0.875 * float(desc[1, 0]), float(desc[0, 1])]])
    model = render.MouthModel(topology, 0.2, float(desc[0, 1]))
    app = LiveAppearance(r.atlas, model, grow=False)
    app.render(np.full((400, 400, 3), 128, np.uint8), track.landmarks[0], 0.0, 0.0)  # indexes the atlas

    def choose(**opening):
        app.prev = None
        return app.choose(small_open_axis(wanted)[0] * selection.descriptor_scale(model), app._pose_feat[0],
                          **opening)

    assert desc[0, 0] > 2 * desc[1, 0] and choose() == 0
    assert choose(want_open=float(wanted[0, 0])) == 1


# ------------------------------------------------------------------------------------------------------ interior

def test_a_mouth_opened_past_its_source_keeps_its_upper_teeth_whole(topology):
    # a filmed mouth whose upper teeth fill 70 % of its gap (dark below them), drawn twice as open: the jaw's split
    # runs where the teeth end, so no part of them rides down with the lower lip. Split midway, the teeth's lower
    # part sat over the lower lip as a bright bar (39 % of the bottom 30 % of the opening white; now under 5 %)
    ppu, gap = 200.0, 0.1
    shape = topology.astype(np.float64).copy()
    for up, lo in render.INNER_PAIRS:
        shape[lo, 1] = shape[up, 1] + gap
    lms = (shape * ppu + [300, 150, 0]).astype(np.float32)[None]
    track = face.FaceTrack(np.zeros(1), lms, np.ones(1, bool), 600, 500)
    img = np.full((500, 600, 3), (200, 150, 130), np.uint8)
    ring = np.round(lms[0, INNER_UPPER + INNER_LOWER[::-1][1:-1], :2]).astype(np.int32)
    inside = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(inside, [ring], 1)
    top = np.interp(np.arange(600), lms[0, INNER_UPPER, 0], lms[0, INNER_UPPER, 1])
    rows = np.arange(500)[:, None]
    teeth = rows < top[None, :] + 0.7 * gap * ppu
    img[(inside > 0) & teeth] = 235
    img[(inside > 0) & ~teeth] = 25
    r = _renderer_on(track, topology, img)
    # the split found on the filmed mouth: where its teeth end, not midway
    cols = np.arange(260, 340)
    up = np.interp(cols, lms[0, INNER_UPPER, 0], lms[0, INNER_UPPER, 1])
    share = (split_rows(img[:, 260:340], up, up + gap * ppu) - up) / (gap * ppu)
    assert np.all((share > 0.65) & (share < 0.85))
    out = r.render_frame(img.copy(), 0, 0, 2 * float(r.atlas_open[0]), float(r.model.rest_width))
    dst = r._target(0, 0, 2 * float(r.atlas_open[0]), float(r.model.rest_width), None)
    up_d = np.interp(cols, dst[render.INNER_UPPER_POS, 0], dst[render.INNER_UPPER_POS, 1])
    lo_d = np.interp(cols, dst[render.INNER_LOWER_POS, 0], dst[render.INNER_LOWER_POS, 1])
    bottom = (rows >= (lo_d - 0.3 * (lo_d - up_d))[None, :]) & (rows < (lo_d - 3)[None, :])
    grey = out[:, 260:340].astype(np.float32).mean(2)
    assert bottom.sum() > 100 and (grey[bottom] > 150).mean() < 0.05
    upper = (rows > (up_d + 2)[None, :]) & (rows < (up_d + 0.6 * gap * ppu)[None, :])
    assert (grey[upper] > 150).mean() > 0.8  # the teeth themselves are still there, under the upper lip
