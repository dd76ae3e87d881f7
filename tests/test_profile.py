"""Actor profiles: build from footage, save/load, info, and dubbing another shot of the actor with it."""

import subprocess
import sys

import numpy as np
import pytest

import lipdub
from lipdub.render import compose
from training import evaluate
from lipdub import media, render
from lipdub import profile as profiles
from lipdub.errors import InputError

from conftest import require_data

CNN = "video/cnn_anchor_71s.mp4"


def _cut(src, start, end, out, audio=True):
    """A piece of `src` with its own audio (footage for a profile must carry the actor's voice)."""
    evaluate.cut_video(src, start, end, out, with_audio=audio)
    return out


@pytest.fixture(scope="module")
def cnn_parts(tmp_path_factory):
    data = require_data(CNN)
    d = tmp_path_factory.mktemp("profile")
    footage = _cut(data / CNN, 0.0, 12.0, d / "footage.mp4")
    shot = _cut(data / CNN, 50.0, 58.0, d / "shot.mp4", audio=False)
    speech = d / "speech.wav"
    evaluate.cut_audio(data / CNN, 30.0, 38.0, speech)
    prof = profiles.build([footage])
    path = prof.save(d / "anchor.lipdub")
    return {"dir": d, "footage": footage, "shot": shot, "speech": speech, "profile": prof, "path": path,
            "data": data}


def test_profile_holds_the_footage_and_learns_articulation(cnn_parts):
    prof = cnn_parts["profile"]
    assert prof.meta["frames"] == 300 and prof.atlas.n >= 250  # a frontal anchor: nearly every frame usable
    assert prof.meta["sources"][0]["name"] == "footage.mp4"
    # the articulation was scored on held-out halves of the footage and something was learned per phone
    sc = prof.articulation.scores
    assert sc["chosen"] in ("generic", "linear", "ridge") and sc["frames"] > 100
    assert len(prof.articulation.phone_width) >= 5
    # atlas entries carry geometry that matches their crops
    crop = prof.atlas.crop(0)
    assert crop.shape == (prof.atlas.size[1], prof.atlas.size[0], 3)
    ctrl = prof.atlas.src_controls[0]
    assert (ctrl[:, 0].min() > -5) and ctrl[:, 0].max() < crop.shape[1] + 5


def test_profile_file_round_trip_and_info(cnn_parts):
    prof, path = cnn_parts["profile"], cnn_parts["path"]
    loaded = profiles.load(path)
    assert loaded.atlas.n == prof.atlas.n
    assert loaded.atlas.jpeg[5] == prof.atlas.jpeg[5]
    assert np.array_equal(loaded.atlas.norm, prof.atlas.norm) and np.array_equal(loaded.atlas.seq, prof.atlas.seq)
    assert loaded.model.open_max == pytest.approx(prof.model.open_max)
    assert loaded.articulation.gain == pytest.approx(prof.articulation.gain)
    assert loaded.articulation.phone_width == prof.articulation.phone_width
    text = subprocess.run([sys.executable, "-m", "lipdub", "profile", "info", str(path)], capture_output=True,
                          text=True, check=True).stdout
    assert "0.20 min" in text and "frames" in text and "frames per mouth opening" in text


def test_dub_with_profile_follows_the_speech(cnn_parts):
    p = cnn_parts
    out = p["dir"] / "dub_profile.mp4"
    report = lipdub.dub(p["shot"], p["speech"], out, profile=str(p["path"]))
    assert report.appearance == "profile:anchor.lipdub"
    info = media.probe_video(out)
    assert abs(info.n_frames - 200) <= 1 and (info.width, info.height) == (512, 512)
    # re-tracked mouth of the dub against what the anchor really did with this audio (30–38 s)
    t_truth, truth = evaluate.mouth_curve(p["data"] / CNN, 30.0, 38.0)
    t_dub, got = evaluate.mouth_curve(out, cache=False)
    r, lag, _ = evaluate.pearson_at_best_lag(evaluate.resample(t_dub, got, t_truth), truth, 3)
    assert r > 0.45 and abs(lag) <= 1


def test_profile_dub_without_a_usable_shot_atlas_draws_the_profile_alone(cnn_parts, monkeypatch):
    """A profile dub mixes the shot's own mouths in (render.foreign); a shot whose own atlas cannot be built is
    dubbed from the profile alone, as before, while a dub without a profile still fails with that error."""
    from lipdub.pipeline import offline

    def no_atlas(*args, **kwargs):
        raise InputError("could not build a mouth atlas")

    monkeypatch.setattr(offline, "own_renderer", no_atlas)
    p = cnn_parts
    short = _cut(p["shot"], 0.0, 2.0, p["dir"] / "short.mp4", audio=False)
    speech = p["dir"] / "speech2.wav"
    evaluate.cut_audio(p["speech"], 0.0, 2.0, speech)
    report = lipdub.dub(short, speech, p["dir"] / "profile_alone.mp4", profile=str(p["path"]))
    assert report.faces_rendered > 40
    with pytest.raises(InputError, match="mouth atlas"):
        lipdub.dub(short, speech, p["dir"] / "no_profile.mp4")


def test_live_dub_with_profile_follows_the_speech(cnn_parts, monkeypatch):
    """Live mode draws the anchor's mouths from the profile and, for a video file, from the shot's own mouths
    prepared beforehand, mixed as an offline profile dub mixes them (render.foreign); it follows his real mouth as
    an offline dub does."""
    from lipdub.apps import live
    from lipdub.render.foreign import MixedAtlas
    from lipdub.render.live import LiveAppearance

    p = cnn_parts
    out = p["dir"] / "live_profile.mp4"
    chosen, atlases = [], []
    choose = LiveAppearance.choose

    def spy(self, *args, **kw):
        atlases.append(self.atlas)
        chosen.append(choose(self, *args, **kw))
        return chosen[-1]

    monkeypatch.setattr(LiveAppearance, "choose", spy)
    report = live.run(str(p["shot"]), str(p["speech"]), out, profile=str(p["path"]), realtime=False)
    assert report.frames == 200 and report.rendered == 200
    atlas = atlases[0]
    assert isinstance(atlas, MixedAtlas) and atlas.n_foreign == p["profile"].atlas.n < atlas.n
    assert np.mean(np.array(chosen) >= atlas.n_foreign) > 0.5  # the shot's own mouths serve most frames
    t_truth, truth = evaluate.mouth_curve(p["data"] / CNN, 30.0, 38.0)
    t_dub, got = evaluate.mouth_curve(out, cache=False)
    r, lag, _ = evaluate.pearson_at_best_lag(evaluate.resample(t_dub, got, t_truth), truth, 3)
    assert r > 0.45 and abs(lag) <= 2  # measured 0.66 (offline profile dub test: > 0.45)


def test_profile_dubs_another_framing(cnn_parts):
    """The same profile on the shot cropped to its centre and scaled up: no rebuild, mouth still moves."""
    import cv2

    p = cnn_parts
    src = media.probe_video(p["shot"])
    reframed = p["dir"] / "reframed.mp4"
    with media.VideoWriter(reframed, 640, 640, src.fps, crf=14) as w:
        for fr in media.iter_frames(p["shot"]):
            w.write(cv2.resize(fr.rgb[51:461, 51:461], (640, 640), interpolation=cv2.INTER_CUBIC))
    out = p["dir"] / "dub_reframed.mp4"
    lipdub.dub(reframed, p["speech"], out, profile=str(p["path"]))
    _, got = evaluate.mouth_curve(out, cache=False)
    _, orig = evaluate.mouth_curve(reframed, cache=False)
    assert np.nanstd(got) > 0.5 * np.nanstd(orig)  # the dubbed mouth moves like speech, not frozen
    assert media.probe_video(out).width == 640


def test_long_footage_is_thinned_to_the_memory_budget(cnn_parts):
    prof = profiles.build([cnn_parts["footage"]], budget_bytes=80 * cnn_parts["profile"].atlas.bytes_per_entry())
    assert prof.meta["stride"] >= 3 and prof.atlas.n <= 100
    # thinned entries still form runs: consecutive sequence numbers
    assert np.mean(np.diff(prof.atlas.seq) == 1) > 0.8


def test_bad_profile_files_are_refused(tmp_path, cnn_parts):
    junk = tmp_path / "junk.lipdub"
    junk.write_bytes(b"not a profile at all")
    with pytest.raises(InputError, match="cannot read profile"):
        profiles.load(junk)
    truncated = tmp_path / "cut.lipdub"
    truncated.write_bytes(cnn_parts["path"].read_bytes()[:5000])
    with pytest.raises(InputError):
        profiles.load(truncated)
    with pytest.raises(InputError, match="not found"):
        profiles.load(tmp_path / "missing.lipdub")
    res = subprocess.run([sys.executable, "-m", "lipdub", "-q", "dub", str(cnn_parts["shot"]),
                          str(cnn_parts["speech"]), "-o", str(tmp_path / "o.mp4"), "--profile", str(junk)],
                         capture_output=True, text=True)
    assert res.returncode == 3 and res.stderr.count("\n") == 1 and "profile" in res.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_profile_build_refuses_photos_and_missing_files(tmp_path):
    data = require_data("images/woman_frontal.png")
    with pytest.raises(InputError, match="still image"):
        profiles.build([data / "images/woman_frontal.png"])
    with pytest.raises(InputError, match="not found"):
        profiles.build([tmp_path / "nope.mp4"])


def test_gain_colour_matcher_undoes_a_lighting_change():
    rng = np.random.default_rng(0)
    target = rng.integers(90, 160, (40, 40, 3)).astype(np.uint8)
    patch = (target * 0.7).astype(np.uint8)  # the same skin under dimmer light
    alpha = compose.feathered_mask(np.array([[2, 2], [38, 2], [38, 38], [2, 38]], float), (0, 0, 40, 40), 10)
    fixed = compose.ColourMatcher(smoothing=0.0, gain=True)(patch, target, alpha)
    assert np.abs(fixed.astype(int) - target.astype(int)).mean() < 2.0


def test_selection_matches_teeth_when_asked():
    # two groups of atlas frames with the same opening, with and without teeth; asking for teeth picks the former
    desc = np.stack([np.full(40, 0.5), np.zeros(40)], 1)
    teeth = np.r_[np.zeros(20), np.ones(20)]
    atlas = np.concatenate([desc, teeth[:, None]], 1)
    want = np.array([[0.5, 0.0, 1.0]] * 10)
    sel = render.select_frames(atlas, np.zeros((40, 2)), np.arange(40), want, np.zeros((10, 2)), k=8)
    assert (sel >= 20).all()


def test_shot_level_raises_a_profile_learned_more_closed_and_never_lowers_it():
    footage = np.random.default_rng(0).uniform(0.0, 0.04, 300)  # the footage's openings, median ~0.02
    assert profiles.shot_level(footage, footage * 1.2) == pytest.approx(1.2, abs=1e-6)
    assert profiles.shot_level(footage, footage * 3.0) == profiles.SHOT_LEVEL_MAX  # within bounds
    # a shot more closed than the footage may show the actor listening: the articulation as learned
    assert profiles.shot_level(footage, footage * 0.5) == 1.0
    assert profiles.shot_level(footage, footage[:5] * 2.0) == 1.0  # too few mouths to say
    # footage half spent listening (lips together) against a shot of speech at the same level: the upper quantile
    # reads speech in both (their medians differ 2-fold)
    rng = np.random.default_rng(1)
    speech, listening = rng.uniform(0.06, 0.12, 200), rng.uniform(0.0, 0.01, 200)
    assert np.median(rng.uniform(0.06, 0.12, 300)) / np.median(np.r_[speech, listening]) > profiles.SHOT_LEVEL_MAX
    assert profiles.shot_level(np.r_[speech, listening], rng.uniform(0.06, 0.12, 300)) < 1.2


def test_articulation_level_raises_speech_and_keeps_closures_and_silences():
    from lipdub import motion

    opening = np.array([0.0, 0.2, 0.4, 0.3, 0.5, 1.0, 0.0], np.float32)
    closed = np.array([0, 0, 0, 1, 0, 0, 0], bool)  # a bilabial: the lips touch however open the speech around it
    mouth = motion.MouthTrack(np.arange(7) / 25.0, opening, np.zeros(7, np.float32), closed)
    art = profiles.Articulation(gain=0.9, offset=-0.05)
    learned, raised = art.apply(mouth, None).opening, art.apply(mouth, None, level=1.4).opening
    speaking = (opening > 0) & ~closed
    assert np.allclose(raised[speaking], np.clip(1.4 * learned[speaking], 0, 1.2))
    assert (raised[speaking] > learned[speaking]).all()
    assert np.array_equal(raised[~speaking], opening[~speaking])


def _atlas_of_openings(gaps: np.ndarray):
    """A stand-in profile atlas whose canonical landmarks have these inner-lip gaps."""
    from types import SimpleNamespace

    from lipdub.render.mouth import INNER_PAIRS

    norm = np.zeros((len(gaps), 478, 3))
    for _, lo in INNER_PAIRS:
        norm[:, lo, 1] = gaps
    return SimpleNamespace(norm=norm)


def test_a_profile_dub_draws_at_the_shot_s_level_where_the_shot_opens_wider_chosen_at_the_footage_s():
    from types import SimpleNamespace

    from test_motion_model import speech

    from lipdub.options import DubOptions
    from lipdub.pipeline import offline

    s, info, opts = speech(), SimpleNamespace(fps=25.0), DubOptions()
    gaps = np.random.default_rng(1).uniform(0.0, 0.06, 200)  # the footage's mouths
    actor = SimpleNamespace(articulation=profiles.Articulation(), atlas=_atlas_of_openings(gaps))
    assert np.allclose(render.descriptors(actor.atlas.norm)[:, 0], gaps)  # premise: the stand-in's openings
    _, learned, _, none = offline._plan_motion(s, [0] * 75, info, 3.0, opts, actor)
    _, same, _, equal = offline._plan_motion(s, [0] * 75, info, 3.0, opts, actor, shot_open=gaps)
    _, chosen_by, _, wider = offline._plan_motion(s, [0] * 75, info, 3.0, opts, actor, shot_open=1.25 * gaps)
    assert none is None and equal is None  # nothing drawn other than chosen
    speaking = (learned.opening > 0) & ~learned.closed
    assert speaking.sum() > 20
    assert np.array_equal(same.opening, learned.opening)
    assert np.array_equal(chosen_by.opening, learned.opening)  # entries chosen at the footage's level
    assert np.allclose(wider.opening[speaking], np.clip(1.25 * learned.opening[speaking], 0, 1.2), atol=1e-5)
    assert np.array_equal(wider.opening[~speaking], learned.opening[~speaking])


def test_a_plan_draws_its_drawn_mouth_from_the_entries_chosen_for_its_mouth():
    from dataclasses import replace

    from test_render import _renderer_over

    from lipdub import motion

    renderer, _ = _renderer_over("video/hdtf_katiehill_8s.mp4", 50)
    n = 50
    schedule = np.arange(n)
    speech = 0.05 + 0.12 * np.sin(np.arange(n) / 3.0) ** 2  # openings among the clip's own (0.03-0.23 canonical)
    mouth = motion.MouthTrack(np.arange(n) / 25.0, (speech / renderer.model.open_max).astype(np.float32),
                              np.zeros(n, np.float32), np.zeros(n, bool))
    wider = replace(mouth, opening=np.clip(mouth.opening * 1.3, 0, 1.2).astype(np.float32))
    open_m, width_m, sel_m = renderer.plan(schedule, mouth)
    open_w, width_w, sel_w = renderer.plan(schedule, wider)
    open_d, width_d, sel_d = renderer.plan(schedule, mouth, drawn=wider)
    assert not np.array_equal(sel_m, sel_w)  # premise: the wider mouth alone chooses other entries
    assert np.array_equal(sel_d, sel_m)
    assert np.array_equal(open_d, open_w) and np.array_equal(width_d, width_w)
    assert not np.array_equal(open_d, open_m)
