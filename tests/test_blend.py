"""render.blend: a partner mouth mixed into the selected one (issue 21 item 4). Generated data only."""

import numpy as np
import pytest

from lipdub import render
from lipdub.render import blend
from lipdub.render.interior import inner_lip_mask
from lipdub.render.mouth import CONTROL, INNER_LOWER_POS, INNER_UPPER_POS


def test_avoided_entries_are_not_chosen_while_others_fit():
    # entries 0..29 are one filmed run; the wanted shape is entry 10's own: without `avoid` the run itself is taken
    n = 60
    desc = np.stack([np.linspace(0, 1, n) % 0.5, np.zeros(n)], 1)  # 0..29 and 30..59 film the same shapes
    want = desc[5:25]
    args = (desc, np.zeros((n, 2)), np.arange(n), want, np.zeros((20, 2)))
    plain = render.select_frames(*args, jump_cost=0.05)
    assert (plain < 30).all()
    away = render.select_frames(*args, jump_cost=0.05, avoid=np.arange(5, 25), avoid_within=6)
    assert (np.abs(away - np.arange(5, 25)) > 6).all()
    assert np.abs(desc[away, 0] - want[:, 0]).max() < 0.05  # ... the other run's same shapes


def test_jump_fade_is_zero_at_jumps_and_one_away_from_them():
    path = np.r_[np.arange(10), np.arange(40, 60)]  # one jump between frames 9 and 10
    fade = blend.jump_fade(path)
    assert fade[9] == 0 and fade[10] == 0
    assert fade[0] == 1 and fade[-1] == 1
    assert np.all(np.diff(fade[10:]) >= 0) and np.all(np.diff(fade[:10]) <= 0)
    assert np.array_equal(blend.jump_fade(np.r_[np.arange(5), 4, 4, 5, 7]), np.ones(9))  # holds and skips: no jump


def test_partner_from_the_selected_moment_gets_no_share():
    n = 100
    desc = np.zeros((n, 2))
    pose = np.zeros((n, 2))
    seq = np.arange(n)
    sel = np.arange(20, 60)
    share_near = blend.partner_share(desc, pose, seq, sel, sel + 2, 0.04, 1.0)
    share_far = blend.partner_share(desc, pose, seq, sel, sel - 20, 0.04, 1.0)
    assert np.all(share_near == 0)
    assert share_far.max() > 0.8 * blend.PARTNER_SHARE and share_far.max() <= blend.PARTNER_SHARE
    # a partner a jump's cost away from the selected shape adds nothing
    far_shape = desc.copy()
    far_shape[:40, 0] = 1.0
    assert np.all(blend.partner_share(far_shape, pose, seq, sel + 20, sel - 20, 0.04, 1.0) == 0)


def _mouth_controls():
    """Lower-face control points (frame px) with an open inner lip contour around (50, 50)."""
    pts = np.zeros((len(CONTROL), 2))
    pts[:] = (50.0, 50.0)
    xs = np.linspace(30, 70, len(INNER_UPPER_POS))
    pts[INNER_UPPER_POS] = np.stack([xs, 50 - 10 * np.sin(np.linspace(0, np.pi, len(xs)))], 1)
    xs = np.linspace(30, 70, len(INNER_LOWER_POS))
    pts[INNER_LOWER_POS] = np.stack([xs, 50 + 10 * np.sin(np.linspace(0, np.pi, len(xs)))], 1)
    return pts


def test_mix_blends_where_the_mouths_agree_and_never_between_the_lips():
    roi = (0, 0, 100, 100)
    ctrl = _mouth_controls()
    inner = inner_lip_mask(ctrl, roi) > 0.5
    assert inner[50, 50] and not inner[10, 10]
    warped = np.full((100, 100, 3), 100, np.uint8)
    other = np.full((100, 100, 3), 110, np.uint8)  # close: mixed
    other[:, 80:] = 250  # far off (a different tooth, a shadow): the selected alone shows
    out = blend.mix(warped, other, 0.5, ctrl, roi, 1.0)
    assert out[10, 10, 0] == pytest.approx(100 + 0.5 * 10 * (1 - 10 / blend.AGREE_LEVELS), abs=1)
    assert out[50, 50, 0] == 100  # between the lips: the selected entry's teeth alone
    assert out[10, 95, 0] == 100
    assert np.array_equal(blend.mix(warped, other, 0.0, ctrl, roi, 1.0), warped)


def test_repeats_counts_an_entry_drawn_again_within_the_window():
    assert blend.repeats(np.arange(50), 0.04) == 0.0
    assert blend.repeats(np.full(50, 3), 0.04) == pytest.approx(48 / 50)  # frames 0, 1: nothing 2+ frames before
    back = np.r_[np.arange(10), np.arange(10)]  # the same run again straight after
    assert blend.repeats(back, 0.04) == pytest.approx(10 / 20)
    assert blend.repeats(back, 0.04, seconds=0.2) == 0.0  # 10 frames back lies outside a 5-frame window


def test_plan_draws_partner_or_the_selected_alone():
    plan = blend.Plan(np.array([0.1, 0.2]), np.array([0.5, 0.5]), np.array([3, 4]), np.array([9, 10]),
                      np.array([0.3, 0.0]))
    assert plan.draws(0) == (3, 0.1, 0.5, (9, 0.3))
    assert plan.draws(1) == (4, 0.2, 0.5, None)
    assert blend.Plan(plan.opening, plan.width, plan.sel).draws(0)[3] is None
