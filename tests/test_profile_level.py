import numpy as np
import pytest

from bench import profile_level
from lipdub import profile as profiles


def test_the_level_is_held_at_one_inside_and_restored_after():
    footage = np.linspace(0.01, 0.06, 100)
    assert profiles.shot_level(footage, 1.3 * footage) == pytest.approx(1.3)
    with profile_level.level_held_at_one():
        assert profiles.shot_level(footage, 1.3 * footage) == 1.0
    assert profiles.shot_level(footage, 1.3 * footage) == pytest.approx(1.3)


def test_levels_are_recorded_and_the_originals_restored():
    footage = np.linspace(0.01, 0.06, 100)
    plans, levels = [], []
    plan, level = profile_level.render.Renderer.plan, profiles.shot_level
    with profile_level.recorded(plans, levels):
        got = profiles.shot_level(footage, 1.2 * footage)
    assert levels == [got] and got == pytest.approx(1.2)
    assert profile_level.render.Renderer.plan is plan and profiles.shot_level is level


def test_curve_sync_finds_a_late_curve_and_ignores_scale():
    fps = 25.0
    t = np.arange(200) / fps
    truth = np.sin(t * 5.0) + 0.3 * np.sin(t * 13.0)
    late = np.r_[np.zeros(2), truth[:-2]] * 3.0 + 1.0  # two frames late, other units
    assert profile_level.curve_sync(late, fps, (t, truth)) > 0.99
    assert profile_level.curve_sync(np.cos(t * 2.1), fps, (t, truth)) < 0.5


def test_summary_is_the_mean_over_windows_per_variant():
    rows = [{"variant": "level1", "r": 0.8, "amp": 0.9}, {"variant": "level1", "r": 0.7, "amp": 1.1},
            {"variant": "none", "r": 0.6, "amp": 1.2, "level": 1.0}]
    got = profile_level.summary(rows)
    assert got["level1"] == {"r": 0.75, "amp": 1.0, "windows": 2}
    assert got["none"] == {"r": 0.6, "amp": 1.2, "level": 1.0, "windows": 1}


def test_variants_set_the_level_and_the_placebo_and_restore_both():
    from lipdub.render import selection

    footage = np.linspace(0.01, 0.06, 100)
    seconds = selection.PROXIMITY_SECONDS
    with profile_level.variant_context("level1_placebo"):
        assert profiles.shot_level(footage, 1.3 * footage) == 1.0
        assert selection.PROXIMITY_SECONDS == profile_level.PLACEBO_PROXIMITY_SECONDS != seconds
    with profile_level.variant_context("shot_placebo"):
        assert profiles.shot_level(footage, 1.3 * footage) == pytest.approx(1.3)
        assert selection.PROXIMITY_SECONDS == profile_level.PLACEBO_PROXIMITY_SECONDS
    with profile_level.variant_context("shot"):
        assert selection.PROXIMITY_SECONDS == seconds
    assert selection.PROXIMITY_SECONDS == seconds
    assert profiles.shot_level(footage, 1.3 * footage) == pytest.approx(1.3)
