import numpy as np
import pytest

from lipdub.render import compose
from lipdub import face, render


def _tracked_start(n: int):
    """(path, track, canonical face, pose) of the first n frames of a shared HDTF clip (skips without the data)."""
    import itertools

    from conftest import require_data
    from lipdub import media

    path = require_data("video/hdtf_katiehill_8s.mp4") / "video/hdtf_katiehill_8s.mp4"
    info = media.probe_video(path)
    track = face.track_frames(lambda: itertools.islice(media.iter_frames(path), 0, n), info.width, info.height, n,
                              info.fps)
    can = face.canonical_shape(track)
    return path, track, can, face.estimate_pose(track, can)


@pytest.fixture(scope="module")
def canonical():
    # a plausible canonical face: MediaPipe's mesh topology is needed, so build one from a real track
    _, track, can, pose = _tracked_start(12)
    return can, face.normalised_landmarks(track, pose)


@pytest.mark.parametrize("opening", [0.0, 0.08, 0.2, 0.35])
def test_target_shape_has_exactly_the_wanted_opening(canonical, opening):
    can, norm = canonical
    model = render.MouthModel(can, 0.25, 0.6)
    for src in (norm[0], can):
        shape = render.target_shape(model, src, opening, 0.62)
        got_open, got_width = render.descriptors(shape)
        assert got_open == pytest.approx(opening, abs=2e-3)
        assert got_width == pytest.approx(0.62, abs=0.01)
        # the skull does not move, the chin follows a jaw drop
        assert np.allclose(shape[face.STABLE], src[face.STABLE], atol=1e-3)
        drop = opening - render.descriptors(src)[0]
        assert np.sign(shape[face.CHIN, 1] - src[face.CHIN, 1]) == pytest.approx(np.sign(drop), abs=0.5)


def test_closed_mouth_has_touching_lips(canonical):
    can, norm = canonical
    shape = render.target_shape(render.MouthModel(can, 0.25, 0.6), norm[0], 0.0, 0.6)
    gaps = [shape[lo, 1] - shape[up, 1] for up, lo in render.INNER_PAIRS]
    assert np.allclose(gaps, 0.0, atol=1e-6)


def test_selection_prefers_runs_of_real_frames():
    # atlas: 40 frames whose opening rises and falls; the wanted curve is the same shape shifted in time
    frames = np.arange(40)
    desc = np.stack([np.sin(frames / 6.0), np.zeros(40)], 1)
    pose = np.zeros((40, 2))
    want = desc[10:30] + 0.01
    sel = render.select_frames(desc, pose, frames, want, np.zeros((20, 2)), k=10, jump_cost=0.05)
    steps = np.diff(sel)
    assert np.all((steps >= 1) & (steps <= 2))  # one continuous run of real frames, no jumps
    assert np.abs(desc[sel, 0] - want[:, 0]).mean() < 0.05


def test_selection_matches_openings_when_jumps_are_cheap():
    rng = np.random.default_rng(1)
    desc = np.stack([rng.uniform(0, 1, 60), np.zeros(60)], 1)
    want = np.stack([rng.uniform(0, 1, 30), np.zeros(30)], 1)
    sel = render.select_frames(desc, np.zeros((60, 2)), np.arange(60), want, np.zeros((30, 2)), jump_cost=0.0)
    best = np.argmin(np.abs(desc[:, 0][None] - want[:, 0][:, None]), axis=1)
    assert np.allclose(desc[sel, 0], desc[best, 0])


def test_identity_warp_reproduces_the_image(canonical):
    can, _ = canonical
    warper = render.MeshWarper(can)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (300, 300, 3), dtype=np.uint8)
    pts = warper.control_points(can)[:, :2] * 100 + [150, 40]
    roi = compose.region_of_interest(pts, 300, 300, 0)
    out, cover = warper.warp(img, pts, pts, roi)
    x0, y0, x1, y1 = roi
    inside = cover > 0
    assert inside.mean() > 0.5
    diff = np.abs(out.astype(int) - img[y0:y1, x0:x1].astype(int))[inside]
    assert np.percentile(diff, 99) <= 1


def test_blend_leaves_pixels_outside_the_mask_identical():
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    patch = np.full((60, 80, 3), 200, np.uint8)
    hull = np.array([[50, 40], [110, 40], [110, 90], [50, 90]], float)
    roi = (40, 30, 120, 90)
    alpha = compose.feathered_mask(hull, roi, feather=8)
    out = compose.blend(frame, patch, alpha, roi)
    assert alpha.max() == pytest.approx(1.0) and alpha.min() == 0.0
    changed = np.any(out != frame, axis=2)
    # nothing outside the hull changes
    assert not changed[:40].any() and not changed[91:].any() and not changed[:, :50].any()
    assert changed[60:70, 75:85].all()
    assert frame is not out


def test_colour_matcher_removes_a_constant_shift():
    base = np.full((40, 40, 3), 120, np.uint8)
    patch = np.full((40, 40, 3), 150, np.uint8)
    alpha = compose.feathered_mask(np.array([[2, 2], [38, 2], [38, 38], [2, 38]], float), (0, 0, 40, 40), 10)
    fixed = compose.ColourMatcher(smoothing=0.0)(patch, base, alpha)
    assert np.abs(fixed.astype(int) - 120).max() <= 3


def _renderer_over(relative: str, n_frames: int):
    """A renderer whose atlas is the first `n_frames` frames of a shared clip or photo, drawing onto them."""
    from conftest import require_data
    from lipdub import media
    import itertools

    path = require_data(relative) / relative
    info = media.probe_video(path)
    decoded = list(itertools.islice(media.iter_frames(path), 0, n_frames))
    track = face.track_frames(lambda: iter(decoded), info.width, info.height, len(decoded), info.fps)
    frames = [f.rgb for f in decoded]
    can = face.canonical_shape(track)
    pose = face.estimate_pose(track, can)
    atlas = render.Atlas(can, float(np.median(pose.scale)))
    for i, rgb in enumerate(frames):
        atlas.add(i, rgb, track.landmarks[i], (pose.scale[i], pose.rotation[i], pose.translation[i]))
    return render.Renderer(atlas, track, pose), frames


@pytest.fixture(scope="module")
def open_mouths():
    """A renderer over the first 50 frames of a real clip, all with the mouth open (0.03–0.23 canonical)."""
    return _renderer_over("video/hdtf_katiehill_8s.mp4", 50)


def _lip_line_stats(renderer, frame, j, a, opening):
    """Along the drawn lip line (a band 0.02 face units wide): 95th percentile of the brightness gradient, and how
    many of its pixels are white (teeth left between shut lips: bright and grey, where lips and their highlights
    are red)."""
    import cv2

    width = float(renderer.model.rest_width)
    out = renderer.render_frame(frame.copy(), j, a, opening, width)
    dst = renderer._target(j, a, opening, width, None)
    line = 0.5 * (dst[render.INNER_UPPER_POS] + dst[render.INNER_LOWER_POS])
    band = np.zeros(out.shape[:2], np.uint8)
    cv2.polylines(band, [np.round(line * 16).astype(np.int32)], False, 255,
                  thickness=max(2, int(0.02 * renderer.pose.scale[j])), shift=4)
    lips = np.zeros_like(band)
    cv2.fillPoly(lips, [np.round(dst[render.OUTER_RING]).astype(np.int32)], 255)
    grey = out.astype(np.float32).mean(2)
    grad = np.zeros_like(grey)
    grad[:-1] += np.abs(np.diff(grey, axis=0))
    grad[:, :-1] += np.abs(np.diff(grey, axis=1))
    on = (band > 0) & (cv2.erode(lips, np.ones((5, 5), np.uint8)) > 0)  # not the skin beyond the corners
    rgb = out[on].astype(np.float32)
    white = (rgb.min(1) > 0.8 * rgb.max(1)) & (rgb.max(1) > 140)
    return np.percentile(grad[on], 95), float(white.mean())


@pytest.mark.parametrize("opening", [0.0, 0.015])
def test_lips_shut_over_an_open_source_meet_along_a_soft_line(open_mouths, opening):
    # an open source squeezed shut used to leave a pixel-stepped seam with strips of teeth in it (measured before
    # the lip line was redrawn: gradient 158–214, white 2.3–21 % of the line; after: 36–57 and at most 0.7 %)
    renderer, frames = open_mouths
    j = int(np.argmin(renderer.atlas_open))
    wide = np.flatnonzero(renderer.atlas_open > 0.1)
    assert len(wide) >= 3
    for a in wide[np.argsort(renderer.atlas_open[wide])][[0, len(wide) // 2, -1]]:
        gradient, teeth = _lip_line_stats(renderer, frames[j], j, int(a), opening)
        assert gradient < 80, (renderer.atlas_open[a], gradient)
        assert teeth < 0.015, (renderer.atlas_open[a], teeth)


def _white_share(renderer, frame, j, a, opening):
    """Share of the drawn opening's height that is teeth (bright, low-chroma) in the middle half of its columns."""
    width = float(renderer.model.rest_width)
    out = renderer.render_frame(frame.copy(), j, a, opening, width)
    dst = renderer._target(j, a, opening, width, None)
    x0, y0 = np.floor(dst[render.OUTER_RING].min(0)).astype(int) - 2
    x1, y1 = np.ceil(dst[render.OUTER_RING].max(0)).astype(int) + 2
    inside = render.inner_lip_mask(dst[:len(render.CONTROL)], (x0, y0, x1, y1)) > 0.5
    px = out[y0:y1, x0:x1].astype(np.float32)
    white = (px.min(2) > 0.75 * px.max(2)) & (px.max(2) > 120) & inside
    cols = np.flatnonzero(inside.any(0))
    mid = slice((3 * cols[0] + cols[-1]) // 4, (cols[0] + 3 * cols[-1]) // 4)
    return white[:, mid].sum() / max(inside[:, mid].sum(), 1)


@pytest.mark.parametrize("share", [0.4, 0.55])
def test_a_mouth_less_open_than_the_interior_donor_shows_its_teeth_at_their_filmed_size(open_mouths, share):
    # a nearly shut mouth drawn open takes its interior from the clip's most open mouth: its upper teeth stay their
    # filmed size under the upper lip, in front of the lower ones. Before, the whole interior was squashed into the
    # opening: thin teeth in a dark slot (teeth 0.48 of the opening's height at both shares; now 0.75–0.78)
    renderer, frames = open_mouths
    d, a = int(renderer.donor), int(np.argmin(renderer.atlas_open))
    assert renderer.atlas_open[a] < 0.4 * share * renderer.atlas_open[d]  # the donor fills the whole opening
    assert _white_share(renderer, frames[d], d, d, float(renderer.atlas_open[d])) > 0.5  # premise: it shows teeth
    assert _white_share(renderer, frames[d], d, a, share * float(renderer.atlas_open[d])) > 0.65


def test_the_interior_drawn_in_a_box_is_the_whole_rois_there(open_mouths):
    """Renderer.interior draws only the box the caller blends it into (the inner lips' mask), with s warped only
    where that box and the split's rows read it: each pixel is the one the whole roi's interior has there."""
    import cv2

    from lipdub.render import compose
    from lipdub.render.mouth import LIPS_POS

    renderer, frames = open_mouths
    width = float(renderer.model.rest_width)
    d, a = int(renderer.donor), int(np.argmin(renderer.atlas_open))
    checked = 0
    for j, opening in ((d, 1.3 * float(renderer.atlas_open[d])), (a, 0.8 * float(renderer.atlas_open[d])),
                       (3, 0.3)):
        dst = renderer._target(j, a, opening, width, None)
        h, w = frames[j].shape[:2]
        roi = compose.region_of_interest(dst, w, h, margin=2)
        lips, margin = dst[LIPS_POS], 0.08 * renderer.pose.scale[j]
        detail = (int(lips[:, 0].min() - margin), int(lips[:, 1].min() - margin),
                  int(lips[:, 0].max() + margin) + 1, int(lips[:, 1].max() + margin) + 1)
        patch = np.ascontiguousarray(frames[j][roi[1]:roi[3], roi[0]:roi[2]])
        m = render.inner_lip_mask(dst[:len(render.CONTROL)], roi)
        bx, by, bw, bh = cv2.boundingRect((m > 0).view(np.uint8))
        assert 0 < bw * bh < 0.5 * patch.shape[0] * patch.shape[1]  # premise: the box is a small part of the roi
        for s in (a, d):
            for window in (detail, None):  # (without the lips' window, s is warped only where `used` says)
                whole = renderer.interior(patch, j, dst, roi, window, width, s, a,
                                          (0, 0, patch.shape[1], patch.shape[0]))
                boxed = renderer.interior(patch, j, dst, roi, window, width, s, a, (bx, by, bx + bw, by + bh))
                assert np.array_equal(boxed, whole[by:by + bh, bx:bx + bw])
                checked += 1
    assert checked == 12


@pytest.fixture(scope="module")
def smiling_photo():
    """A renderer over one photo whose smile shows both rows of teeth (its only mouth is the interior donor)."""
    renderer, frames = _renderer_over("images/obama_portrait.jpg", 1)
    return renderer, frames[0]


def _dark_gap_heights(renderer, rgb, opening):
    """Dark pixels (the cavity) per column inside the drawn inner lips: at the centre, and a third of the way out."""
    width = float(renderer.model.rest_width)
    out = renderer.render_frame(rgb.copy(), 0, 0, opening, width)
    dst = renderer._target(0, 0, opening, width, None)
    x0, y0 = np.floor(dst[render.OUTER_RING].min(0)).astype(int) - 2
    x1, y1 = np.ceil(dst[render.OUTER_RING].max(0)).astype(int) + 2
    inside = render.inner_lip_mask(dst[:len(render.CONTROL)], (x0, y0, x1, y1)) > 0.5
    dark = (out[y0:y1, x0:x1].astype(np.float32).mean(2) < 70) & inside
    cols = np.flatnonzero(inside.any(0))
    centre, third = (cols[0] + cols[-1]) // 2, (cols[-1] - cols[0]) // 3
    heights = dark.sum(0).astype(float)
    return heights[centre - 2:centre + 3].mean(), 0.5 * (heights[centre - third - 2:centre - third + 3].mean()
                                                         + heights[centre + third - 2:centre + third + 3].mean())


def test_a_photo_smile_opens_between_its_teeth_along_the_lips(smiling_photo):
    # opened past the photo's own mouth, its upper teeth stay under the lip and the lower ones ride down with the
    # jaw. Before: a quarter wider was a grey half-blend of stretched and split teeth (no dark gap: 0 px), and
    # wider still a flat bar as high at the sides as in the middle (ratio 0.98); now 5.8 px, and a lens (0.79)
    renderer, rgb = smiling_photo
    own = float(renderer.atlas_open[0])
    assert 0.08 < own < 0.25  # the photo shows teeth: its mouth counts as open
    centre, _ = _dark_gap_heights(renderer, rgb, own / 0.75)
    assert centre >= 3
    centre, side = _dark_gap_heights(renderer, rgb, 2 * own)
    assert centre >= 10 and side / centre < 0.9


@pytest.mark.parametrize("kind", ["sd-untagged", "sd-bt601", "hd-untagged", "hd-bt709"])
def test_a_self_dub_keeps_the_colour_of_the_redrawn_region(tmp_path, monkeypatch, kind):
    """A clip dubbed with its own audio, each frame's own mouth redrawn (so the content is what was there), keeps the
    mean Y, U and V of the redrawn lower face and of the untouched top within half a level of the source, whatever
    its colour tags (python -m bench.colour --own measures every kind).
    Untagged HD read as BT.601 in the mouth's box came out ~3 levels darker and bluer; FFmpeg's YUV to RGB, ~1 darker."""
    from conftest import require_data
    from bench import colour

    require_data(colour.SD, colour.HD)
    monkeypatch.setenv("LIPDUB_CACHE", str(tmp_path / "cache"))
    r = colour.self_dub(kind, tmp_path, 20, own=True)
    assert r["frames"] >= 15
    assert max(np.abs(r["box"]).max(), abs(r["lips"]), np.abs(r["top"]).max()) < 0.5, r


def test_atlas_crop_from_a_frame_box_equals_the_whole_frame_warp(tmp_path):
    # building the atlas converts only the region a crop samples: the crop must be the one the whole frame gives,
    # inside the frame and where the crop runs over its edges (BORDER_REPLICATE)
    import cv2
    from lipdub import media
    from lipdub.render.atlas import sampled_region

    rng = np.random.default_rng(3)
    path = tmp_path / "noise.mp4"
    with media.VideoWriter(path, 320, 240, 25) as wr:
        for _ in range(2):
            wr.write(cv2.GaussianBlur(rng.integers(0, 256, (240, 320, 3), np.uint8), (5, 5), 1.5))
    whole = next(media.iter_frames(path)).rgb
    for angle, scale, tx, ty in ((0.0, 1.0, -40, -30), (0.3, 1.7, -250, -120), (-0.2, 0.8, 30, 20),
                                 (0.1, 1.2, -420, -300)):
        c, s = scale * np.cos(angle), scale * np.sin(angle)
        m = np.array([[c, -s, tx], [s, c, ty]], np.float64)
        frame = next(media.iter_frames(path))
        rgb, shifted = sampled_region(frame, m, (150, 110))
        assert rgb.shape[0] * rgb.shape[1] <= whole.shape[0] * whole.shape[1]
        got = cv2.warpAffine(rgb, shifted, (150, 110), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        ref = cv2.warpAffine(whole, m, (150, 110), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
        assert np.array_equal(got, ref), (angle, scale, tx, ty)


def test_atlas_keeps_few_large_decoded_crops():
    # a 4K close-up's crops are ~9 MB each: the decoded-crop cache is bounded in bytes, not only in count
    import cv2
    from collections import OrderedDict
    from lipdub.render.atlas import DECODED_BYTES, Atlas

    def atlas_of(side: int) -> Atlas:
        a = Atlas.__new__(Atlas)  # only what decoding (crop(), stored()) uses
        img = np.random.default_rng(0).integers(0, 256, (side, side, 3), np.uint8)
        a.jpeg, a._decoded = [cv2.imencode(".jpg", img)[1].tobytes()] * 40, OrderedDict()
        return a

    small, large = atlas_of(64), atlas_of(1800)
    for i in range(40):
        assert small._decode(i).shape == (64, 64, 3) and large._decode(i).shape == (1800, 1800, 3)
    assert len(small._decoded) == 32
    assert 1 <= len(large._decoded) < 32
    assert sum(c.nbytes for c in large._decoded.values()) <= DECODED_BYTES


class _Reader:
    """As media.FrameReader: source frames by index, each a copy."""

    def __init__(self, frames):
        self.frames = frames

    def get(self, j):
        assert self.frames[j] is not None, f"frame {j} was read after its last read"
        return self.frames[j].copy()

    def take(self, j):  # the frame itself; reading it again fails the test
        frame, self.frames[j] = self.frames[j], None
        assert frame is not None, f"frame {j} was read after its last read"
        return frame


class _Sink:
    def __init__(self):
        self.frames = []

    def write(self, frame):
        self.frames.append(frame.i420.copy() if hasattr(frame, "i420") else frame.copy())


@pytest.mark.parametrize("planar", [False, True])
def test_frames_drawn_ahead_are_the_frames_drawn_in_turn(open_mouths, planar):
    # the dub draws mouths frames ahead on a second thread and puts them in in order: the result must be exactly
    # that of drawing each frame in turn (colour smoothing carries from frame to frame, so order matters)
    from lipdub import media
    from lipdub.media.colour import BT709, rgb_to_i420
    from lipdub.pipeline.rendering import AHEAD, FrameDrawer, render_frames

    renderer, rgb = open_mouths
    frames = [media.PlanarFrame(rgb_to_i420(f, BT709), f.shape[1], f.shape[0]) for f in rgb] if planar else rgb
    n = len(frames)
    plan = (np.linspace(0.0, 0.3, n), np.full(n, float(renderer.model.rest_width)), (np.arange(n) * 7) % n)
    schedule = np.r_[np.arange(n), np.arange(n)[::-1]]  # a loop back: colour smoothing restarts on the jump
    plan = tuple(np.r_[p, p[::-1]] for p in plan)

    def run(render_one):
        renderer.colour.reset()
        renderer.prev_j = None
        sink = _Sink()
        faces = render_frames(range(len(schedule)), schedule, _Reader(frames), render_one, sink, None)
        return faces, sink.frames

    in_turn = renderer.frame_planar if planar else renderer.frame
    faces, want = run(lambda k, j, f: in_turn(k, j, f, plan))
    got_faces, got = run(FrameDrawer(lambda k, j, f: renderer.draw(k, j, f, plan), renderer.finish))
    assert AHEAD >= 1 and got_faces == faces == len(schedule)
    assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))
    assert not np.array_equal(want[0], (frames[0].i420 if planar else frames[0]))  # a mouth was drawn


def test_last_reads_mark_each_frames_last_read():
    from lipdub.pipeline.rendering import last_reads

    rng = np.random.default_rng(3)
    schedules = [np.arange(6), np.r_[np.arange(6), np.arange(6)[::-1]], np.array([0, 0, 1, 1, 1, 2]),
                 np.array([0.0, 0.5, 1.0, 1.25, 3.0, 2.5]), np.zeros(0)]
    schedules += [rng.integers(0, 9, 30) + rng.choice([0.0, 0.0, 0.3], 30) for _ in range(50)]
    for schedule in schedules:
        reads = [[int(s)] + ([int(s) + 1] if s > int(s) else []) for s in schedule]
        want = [not any(int(s) in later for later in reads[k + 1:]) for k, s in enumerate(schedule)]
        assert last_reads(schedule).tolist() == want, schedule


@pytest.mark.parametrize("schedule", [np.arange(8), np.r_[np.arange(8), np.arange(8)[::-1]],
                                      np.array([0, 0.5, 1, 2, 2, 3.5, 5, 7])])
def test_frames_taken_at_their_last_read_are_the_frames_copied(schedule):
    # the dub takes each source frame from the reader at its last read instead of copying it: the same frames come
    # out, and (the stub reader fails otherwise) no frame is read after it was taken
    from lipdub.pipeline.rendering import FrameDrawer, last_reads, render_frames

    frames = [np.full((4, 6, 3), 10 * i, np.uint8) for i in range(8)]

    def draw(k, j, frame):
        return k

    def finish(j, frame, k):
        frame[0, 0] = k  # in place, as putting a mouth in
        return frame, True

    out = []
    for last in (None, last_reads(schedule)):
        sink = _Sink()
        render_frames(range(len(schedule)), schedule, _Reader([f.copy() for f in frames]), FrameDrawer(draw, finish),
                      sink, None, last)
        out.append(sink.frames)
    assert len(out[0]) == len(schedule) and all(np.array_equal(a, b) for a, b in zip(*out))


def test_an_error_while_drawing_ahead_stops_the_render():
    from lipdub.pipeline.rendering import FrameDrawer, render_frames

    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(20)]

    def draw(k, j, frame):
        if k == 9:
            raise ValueError("cannot draw frame 9")
        return k

    sink = _Sink()
    with pytest.raises(ValueError, match="frame 9"):
        render_frames(range(20), np.arange(20), _Reader(frames), FrameDrawer(draw, lambda j, f, d: (f, True)), sink,
                      None)
    assert len(sink.frames) == 9 and all(f[0, 0, 0] == i for i, f in enumerate(sink.frames))  # none after it


@pytest.mark.parametrize("height,ahead", [(64, True), (2160, False)])
def test_only_frames_up_to_a_size_are_drawn_ahead(height, ahead):
    # a 4K frame is drawn in turn: each frame ahead holds a decoded frame, and the 4K dub's memory is what is short
    import threading

    from lipdub.pipeline.rendering import AHEAD_BYTES, FrameDrawer, render_frames

    frames = [np.zeros((height, 3840 * height // 2160, 3), np.uint8) for _ in range(4)]
    assert (frames[0].nbytes <= AHEAD_BYTES) == ahead
    where = []

    def draw(k, j, frame):
        where.append(threading.current_thread() is threading.main_thread())
        return k

    sink = _Sink()
    render_frames(range(4), np.arange(4), _Reader(frames), FrameDrawer(draw, lambda j, f, d: (f, True)), sink, None)
    assert len(sink.frames) == 4 and where == [not ahead] * 4


def test_atlas_cut_beside_one_decoder_equals_one_thread():
    """fill_atlas_beside (one decoder, entries cut on two threads, stored in frame order) makes the same atlas as
    fill_atlas on one thread: the same entries, bytes for bytes."""
    from lipdub.render.atlas import Atlas, fill_atlas, fill_atlas_beside

    path, track, can, pose = _tracked_start(30)
    keep = np.ones(30, bool)
    keep[[4, 17]] = False
    atlases = [Atlas(can, float(np.median(pose.scale))) for _ in range(2)]
    added = [fill(a, path, track, pose, 5, keep, 2) for fill, a in zip((fill_atlas, fill_atlas_beside), atlases)]
    assert added[0] == added[1] == atlases[1].n == 14  # every 2nd of 30 (15), frame 4 left out (17 is odd)
    assert atlases[0].jpeg == atlases[1].jpeg
    for k, v in atlases[0].arrays().items():
        assert np.array_equal(v, atlases[1].arrays()[k]), k


def test_atlas_crops_read_from_its_archive(tmp_path):
    """An atlas loaded with its crops left in its cache file (StoredCrops) reads the same bytes as one loaded into
    memory, keeps reading them after the file is replaced or removed (one descriptor), and grows as a list."""
    import os

    from lipdub.pipeline.caches import load_cached_atlas, save_cached_atlas
    from lipdub.render.atlas import Atlas, StoredCrops, fill_atlas

    path, track, can, pose = _tracked_start(12)
    atlas = Atlas(can, float(np.median(pose.scale)))
    fill_atlas(atlas, path, track, pose, 0, np.ones(12, bool), 1)
    file = tmp_path / "atlas.npz"
    save_cached_atlas(file, atlas, {"track_fingerprint": np.array("x")})
    held, stored = load_cached_atlas(file, "x"), load_cached_atlas(file, "x", stored=True)
    assert isinstance(stored.jpeg, StoredCrops) and isinstance(held.jpeg, list) and stored.n == held.n == 12
    assert list(stored.jpeg) == held.jpeg == atlas.jpeg and stored.jpeg[2:5] == atlas.jpeg[2:5]
    tmp = tmp_path / "new.npz"
    tmp.write_bytes(b"another atlas")
    os.replace(tmp, file)  # as the cache replaces a file
    assert [stored.jpeg[i] for i in (11, 0, 5)] == [atlas.jpeg[i] for i in (11, 0, 5)]
    file.unlink()
    assert np.array_equal(stored.crop(3), atlas.crop(3))
    for k, v in atlas.arrays().items():
        assert np.array_equal(v, stored.arrays()[k]), k
    stored.merge(held)  # grown: in memory from then on
    assert isinstance(stored.jpeg, list) and stored.jpeg == atlas.jpeg * 2

def test_the_skin_around_a_drawn_mouth_is_the_frames_own(open_mouths, monkeypatch):
    # an atlas mouth held or warped over other frames used to carry its own frame's grain and stubble (or a still
    # copy of it): the detector's clearest tell. The skin around the lips now comes from the frame drawn over.
    from lipdub.render import renderer as renderer_module

    renderer, frames = open_mouths
    j, a = 5, 35
    opening, width = (float(v) for v in render.descriptors(renderer.norm[j]))
    dst = renderer._target(j, a, opening, width, None)
    roi, _, alpha, skin = renderer._draw(frames[j].shape, j, a, opening, width, dst, frames[j])
    x0, y0, x1, y1 = roi
    skin_only = (alpha > 0.9) & (skin[1] < 0.01)  # drawn, and away from the lips
    assert skin_only.sum() > 500

    def error(out):
        return np.abs(out[y0:y1, x0:x1].astype(float) - frames[j][y0:y1, x0:x1])[skin_only].mean()

    renderer.colour.reset()
    own = renderer.render_frame(frames[j].copy(), j, a, opening, width)
    monkeypatch.setattr(renderer_module, "FRAME_SKIN", False)
    renderer.colour.reset()
    atlas_skin = renderer.render_frame(frames[j].copy(), j, a, opening, width)
    assert error(own) < 0.5 * error(atlas_skin), (error(own), error(atlas_skin))
    # the lips are still the atlas mouth's
    lips = skin[1] > 0.99
    assert lips.sum() > 200
    assert np.abs(own[y0:y1, x0:x1][lips].astype(int) - atlas_skin[y0:y1, x0:x1][lips]).max() <= 1


def test_the_lips_rim_stays_thin_when_the_wanted_opening_leaves_the_frames_own(open_mouths):
    # a rim grown with the change of opening showed the drawn frame's skin around the lips, which the detector told
    # apart (bench.realism_profile own mouths 0.58 without it, 0.61 with it): the frame's own skin starts SKIN_RIM
    # past the drawn lips at any opening
    import cv2

    renderer, frames = open_mouths
    j, a = 5, 35
    own, width = (float(v) for v in render.descriptors(renderer.norm[j]))
    scale = float(renderer.pose.scale[j])

    def reach(opening):
        """how far past the drawn outer lips the drawn mouth weighs at least half, frame px"""
        dst = renderer._target(j, a, opening, width, None)
        roi, _, _, skin = renderer._draw(frames[j].shape, j, a, opening, width, dst, frames[j])
        outside = np.full(skin[1].shape, 255, np.uint8)
        cv2.fillPoly(outside, [np.round(dst[render.OUTER_RING] - roi[:2]).astype(np.int32)], 0)
        return float(cv2.distanceTransform(outside, cv2.DIST_L2, 3)[skin[1] > 0.5].max())

    far = own + 0.12 if own < 0.1 else own - 0.12
    assert reach(far) <= compose.SKIN_RIM * scale + 2, (reach(far), compose.SKIN_RIM * scale)
    assert abs(reach(far) - reach(own)) <= 1.5, (reach(far), reach(own))


def test_sharpness_is_judged_against_mouths_of_the_same_opening():
    # a shut or barely parted mouth has little detail between its lips (no teeth against a dark gap): against the
    # whole atlas's median it counted as blurred and selection drew small openings from squeezed toothy mouths
    from lipdub.render import selection

    rng = np.random.default_rng(0)
    opening = np.r_[rng.uniform(0.0, 0.05, 40), rng.uniform(0.12, 0.2, 80)]  # a speaker mostly filmed open
    sharp = np.where(opening < 0.1, 60.0, 300.0) * rng.uniform(0.9, 1.1, len(opening))
    sharp[[5, 70]] *= 0.3  # one motion-blurred mouth in each group
    cost = selection.blur_cost(sharp, opening)
    assert cost[5] > 0.1 and cost[70] > 0.1  # still penalised against their peers
    small = np.delete(np.arange(40), 5)
    assert cost[small].max() < 0.01
    assert selection.blur_cost(sharp)[small].min() > 0.1  # the check can fail: judged against the atlas's median
    assert np.allclose(selection.typical_sharpness(sharp, opening)[:40], np.median(sharp[:40]), rtol=0.15)


def test_a_mouth_squeezed_from_a_more_open_one_shows_the_speakers_gap_lightness(open_mouths, monkeypatch):
    # a mouth drawn less open than it was filmed kept the lit teeth of its wider gap (stNg: 129 grey against the
    # filmed 119 at his rest): its gap is darkened to the speaker's own lightness at the drawn opening
    from lipdub.render import interior
    from lipdub.render import renderer as renderer_module

    renderer, frames = open_mouths
    j = int(np.argmin(renderer.atlas_open))
    width = float(renderer.model.rest_width)

    def drawn_lightness(a, opening, gain_min):
        monkeypatch.setattr(renderer_module, "GAP_GAIN_MIN", gain_min)
        renderer.colour.reset()
        out = renderer.render_frame(frames[j].copy(), j, a, opening, width)
        dst = renderer._target(j, a, opening, width, None)
        return interior.gap_lightness(out, dst[:len(render.CONTROL)])

    tried = 0
    for a in np.argsort(renderer.atlas_open)[::-1][:12]:
        a = int(a)
        opening = 0.4 * float(renderer.atlas_open[a])
        kept, want = drawn_lightness(a, opening, 1.0), renderer.gap.target(a, opening, renderer.atlas_open)
        darkened = drawn_lightness(a, opening, interior.GAP_GAIN_MIN)
        assert darkened <= kept + 1e-6  # never lightened
        if not kept > want + 0.05:  # drawn no lighter than the speaker's gap
            continue
        tried += 1
        assert abs(darkened - want) < 0.5 * abs(kept - want), (a, darkened, kept, want)
    assert tried >= 3
    # drawn at its own opening, an entry keeps its gap
    a = int(np.argmax(renderer.atlas_open))
    assert drawn_lightness(a, float(renderer.atlas_open[a]), 1.0) == drawn_lightness(a, float(renderer.atlas_open[a]),
                                                                                    interior.GAP_GAIN_MIN)


def test_gap_lightness_measured_before_gives_the_same_targets(open_mouths, tmp_path, monkeypatch):
    """The entries' gap lightness kept with a cached atlas (GapMatch.measured, through the cache's arrays) gives a
    renderer that remembers them the same targets as one that measures them, without measuring those entries again;
    an archive without them, or measured by another GAP_MEASURE_VERSION, gives none."""
    from lipdub.pipeline import caches
    from lipdub.render import interior

    renderer, _ = open_mouths
    atlas, openings = renderer.atlas, renderer.atlas_open
    fresh = interior.GapMatch(atlas)
    sample = fresh.measured(openings)
    assert len(sample) == min(atlas.n, interior.GAP_SAMPLE)
    asked = [(a, f * float(openings[a])) for a in range(atlas.n) for f in (0.3, 0.7)]
    want = np.array([fresh.target(a, o, openings) for a, o in asked])
    assert np.isfinite(want).sum() > len(want) // 2
    file = tmp_path / "atlas.npz"
    caches.save_cached_atlas(file, atlas, {"track_fingerprint": np.array("x"), **caches.gap_arrays(sample)})
    back = caches.load_cached_gaps(file)
    assert list(back) == sorted(sample) and np.array_equal([back[a] for a in sorted(sample)],
                                                           [sample[a] for a in sorted(sample)], equal_nan=True)
    calls = []
    real = interior.stored_gap_lightness
    monkeypatch.setattr(interior, "stored_gap_lightness", lambda at, a: calls.append(a) or real(at, a))
    kept = interior.GapMatch(atlas)
    kept.remember(back)
    assert np.array_equal([kept.target(a, o, openings) for a, o in asked], want, equal_nan=True)
    assert not set(calls) & set(sample)  # (only entries drawn that were not sampled are measured)
    caches.save_cached_atlas(tmp_path / "old.npz", atlas, {"track_fingerprint": np.array("x")})
    assert caches.load_cached_gaps(tmp_path / "old.npz") == {} and caches.load_cached_gaps(tmp_path / "no.npz") == {}
    monkeypatch.setattr(caches, "GAP_MEASURE_VERSION", interior.GAP_MEASURE_VERSION + 1)
    assert caches.load_cached_gaps(file) == {}


def test_a_filmed_atlas_stores_the_region_and_draws_it_in_one_resampling(tmp_path):
    """Atlas(filmed=True) stores the region of the frame each crop covers, as filmed: its crop() is the crop the
    normalised atlas stores, its statistics the same, and a mesh warp of the stored region through stored_points
    draws what a warp of the crop draws (one resampling instead of two). A face filmed much larger than the atlas's
    scale keeps its crop; an archive written before the field loads as crops."""
    import cv2

    from lipdub.pipeline.caches import load_cached_atlas, save_cached_atlas
    from lipdub.render.atlas import FILMED_MAX_ENLARGEMENT, IDENTITY, Atlas, fill_atlas, write_npz

    path, track, can, pose = _tracked_start(8)
    scale = float(np.median(pose.scale))
    crops, filmed = Atlas(can, scale), Atlas(can, scale, filmed=True)
    for atlas in (crops, filmed):
        fill_atlas(atlas, path, track, pose, 0, np.ones(8, bool), 1)
    assert filmed.n == crops.n == 8
    assert all(np.array_equal(crops.to_stored[a], IDENTITY) for a in range(8))
    for k in ("src_controls", "norm", "seq", "pose_feat", "lip_lab"):
        assert np.array_equal(getattr(filmed, k), getattr(crops, k)), k
    assert np.allclose(filmed.sharpness, crops.sharpness, rtol=0.02) and np.allclose(filmed.teeth, crops.teeth,
                                                                                      rtol=0.02, atol=0.05)
    x0, y0, x1, y1 = 10, 10, 170, 150
    dst_shift = np.array([12.0, 9.0])
    for a in range(8):
        image, to_stored = filmed.stored(a)
        assert not np.array_equal(to_stored, IDENTITY) and image.shape[:2] != crops.crop(a).shape[:2]
        crop = filmed.crop(a)  # (JPEG, then a cubic warp either way: the same up to JPEG's noise)
        assert crop.shape == crops.crop(a).shape
        assert np.abs(crop.astype(int) - crops.crop(a)).mean() < 2.0
        src = crops.src_controls[a].astype(np.float64)
        dst = src * 1.05 + dst_shift  # a mouth drawn a little larger and moved
        one = filmed.warper.warp(image, filmed.stored_points(a, src), dst, (x0, y0, x1, y1))[0]
        two = crops.warper.warp(crops.crop(a), src, dst, (x0, y0, x1, y1))[0]
        cover = filmed.warper.warp(image, filmed.stored_points(a, src), dst, (x0, y0, x1, y1))[1] > 0
        assert np.abs(one.astype(int) - two)[cover].mean() < 3.0, a

    far = Atlas(can, scale / (FILMED_MAX_ENLARGEMENT + 0.25), filmed=True)
    fill_atlas(far, path, track, pose, 0, np.ones(8, bool), 1)
    assert far.n == 8 and all(np.array_equal(far.to_stored[a], IDENTITY) for a in range(8))

    file = tmp_path / "atlas.npz"
    save_cached_atlas(file, filmed, {"track_fingerprint": np.array("x")})
    back = load_cached_atlas(file, "x", stored=True)
    assert back.filmed and np.array_equal(back.to_stored, filmed.to_stored)
    assert np.array_equal(back.crop(3), filmed.crop(3))
    old = {k: v for k, v in crops.to_arrays(with_jpeg=False).items() if k != "atlas_to_stored"}
    write_npz(tmp_path / "old.npz", {**old, "track_fingerprint": np.array("x")}, {"atlas_jpeg": crops.jpeg})
    before = load_cached_atlas(tmp_path / "old.npz", "x")
    assert not before.filmed and np.array_equal(before.to_stored, crops.to_stored)
    assert np.array_equal(before.crop(2), crops.crop(2)) and cv2 is not None
