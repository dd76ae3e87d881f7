"""A conversation: two faces side by side, two voices taking turns, each face dubbed with its own voice.

The composite (built at test time in a temporary folder, never stored, by bench.conversation) puts hdtf_katiehill
(left, face 1) beside hdtf_radio34 (right, face 0: its face is ~8 % larger), 6 s of each. The voices are cut from the
clips' own sound, so the mouth each voice came from is filmed: the left voice is katiehill's audio at 3–6 s, spoken at
0–3 s (where the left face was filmed saying something else), then 3 s of silence; the right voice is 3 s of silence,
then radio34's audio at 0–3 s, spoken at 3–6 s. The dub is re-tracked per face and each face's mouth opening is
compared with the filmed mouth of its voice (Pearson r at the best lag within ±5 frames, the evaluation's) and, while
the other face speaks, with its own speaking spread.
"""

import numpy as np
import pytest

import lipdub
from lipdub import media
from lipdub.apps import cli
from lipdub.core.constants import SR
from lipdub.media.mixing import HEADROOM, mix
from lipdub.options import DubOptions
from lipdub.speech import rttm

from bench.conversation import LEFT, RIGHT, TURN, build_scene, measure_turns, write_wav
from conftest import require_data

FPS = 25  # the two clips'



@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    data = require_data(LEFT, RIGHT)
    return build_scene(tmp_path_factory.mktemp("conversation"), data)


def _check_turns(scene, out):
    """Each face follows its own voice's filmed mouth and rests while the other speaks; returns the numbers."""
    measured = measure_turns(scene, out)
    for side, m in measured.items():
        assert m["tracked"] > 0.95, f"{side} face lost in the dub"
        assert m["r"] >= 0.5, (side, m)
        assert m["r"] > m["r_frames"], f"{side}: the dub follows the filmed frames, not its voice: {m}"
        assert m["rest_spread"] <= 0.3, f"{side} face does not rest while the other speaks: {m}"
        assert m["rest_mean"] < 0.25, f"{side} face is not closed at rest: {m}"
    return measured


def test_two_voices_each_drive_their_own_face(scene):
    out = scene["dir"] / "dub_two_voices.mp4"
    code = cli.main(["dub", str(scene["video"]), f"{scene['left']}@1", f"{scene['right']}@0", "-o", str(out), "-q"])
    assert code == 0 and out.is_file()
    print("r, r against the frames' own mouth, rest/speaking spread:", _check_turns(scene, out))
    # the output's sound is the two voices' mix, at their own levels (they take turns: no gain)
    sound = media.load_audio(out, SR)[0]
    want = scene["left_samples"] + scene["right_samples"]
    n = min(len(sound), len(want))
    assert np.corrcoef(sound[:n], want[:n])[0, 1] > 0.95
    assert 0.8 < np.std(sound[:n]) / np.std(want[:n]) < 1.25


def test_one_mixed_track_with_an_rttm_speaker_map(scene):
    out = scene["dir"] / "dub_rttm.mp4"
    report = lipdub.dub(scene["video"], scene["mixed"], out, speakers=str(scene["rttm"]),
                        speaker_face=("kate=1", "radio=0"))
    assert [v["voice"] for v in report.voices] == ["speaker kate", "speaker radio"]
    assert all(v["frames_rendered"] == 2 * TURN for v in report.voices)
    print("RTTM: r, r against the frames' own mouth, rest/speaking spread:", _check_turns(scene, out))


def test_after_a_cut_to_other_people_the_faces_stay_as_filmed(scene):
    """At 4 s the two clips swap sides (a cut): each bound face's place now shows the other person. Those frames are
    left as filmed, with a warning, instead of giving a person the other's voice."""
    data = require_data(LEFT, RIGHT)
    video = scene["dir"] / "cut.mp4"
    with media.VideoWriter(video, 1024, 512, FPS, crf=18) as w:
        for a, b in zip(media.iter_frames(data / LEFT), media.iter_frames(data / RIGHT)):
            if a.index >= 2 * TURN:
                break
            w.write(np.concatenate([a.rgb, b.rgb] if a.index < 100 else [b.rgb, a.rgb], axis=1))
    out = scene["dir"] / "dub_cut.mp4"
    report = lipdub.dub(video, [f"{scene['left']}@1", f"{scene['right']}@0"], out)
    for v in report.voices:
        assert v["shot_changes"] == [100] and v["doubtful_frames"] == 50, v
        assert v["frames_rendered"] == 100, v  # drawn up to the cut only
    with media.FrameReader(out) as dubbed, media.FrameReader(video) as filmed:
        for j in (60, 110, 140):  # before the cut a mouth is drawn; after it the frames are as filmed (up to the
            # encoder's noise): the largest change of a 16x16 block tells
            diff = np.abs(dubbed.get(j).astype(np.float32) - filmed.get(j).astype(np.float32)).mean(axis=2)
            blocks = diff[:512 // 16 * 16].reshape(32, 16, 64, 16).mean(axis=(1, 3))
            assert (blocks.max() > 8) if j < 100 else (blocks.max() < 5), (j, blocks.max())


@pytest.mark.parametrize("case", ["face_not_there", "voice_longer_than_video", "label_unbound", "same_index",
                                  "same_face_twice"])
def test_bad_conversations_fail_clearly_with_no_output(scene, case, capsys):
    d, v = scene["dir"], scene["video"]
    out = d / f"bad_{case}.mp4"
    args = {
        "face_not_there": [f"{scene['left']}@1", f"{scene['right']}@5"],
        "voice_longer_than_video": [f"{write_wav(d / 'long.wav', np.zeros(7 * SR))}@1", f"{scene['right']}@0",
                                    "--length", "video"],
        "label_unbound": [str(scene["mixed"]), "--speakers", str(scene["rttm"]), "--speaker-face", "kate=1"],
        "same_index": [f"{scene['left']}@0", f"{scene['right']}@0"],
        # a box around the face that index 0 names: found once both are tracked
        "same_face_twice": [f"{scene['left']}@0", f"{scene['right']}@560,40,420,440"],
    }[case]
    code = cli.main(["dub", str(v), *args, "-o", str(out), "-q"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert not out.exists() and not list(d.glob(f".bad_{case}*"))
    assert err.startswith("lipdub: error: ") and err.count("\n") == 1
    assert {"face_not_there": "not there", "voice_longer_than_video": "--length video",
            "label_unbound": "--speaker-face radio=", "same_index": "overlapping faces",
            "same_face_twice": "same face"}[case] in err, err


# ------------------------------------------------------------------------------------------- without test media


def test_rttm_turns_cut_a_mixed_track_per_speaker(tmp_path):
    path = tmp_path / "m.rttm"
    path.write_text(";; comment\nSPKR-INFO x 1 <NA> <NA> <NA> unknown a <NA> <NA>\n"
                    "SPEAKER x 1 1.0 1.0 <NA> <NA> b <NA> <NA>\nSPEAKER x 1 0.0 1.5 <NA> <NA> a <NA> <NA>\n")
    turns = rttm.read_rttm(path)
    assert rttm.labels(turns) == ["a", "b"] and turns[0] == rttm.Turn("x", 0.0, 1.5, "a")
    x = np.ones(3 * SR, np.float32)
    a, b = rttm.cut_for(x, SR, turns, "a"), rttm.cut_for(x, SR, turns, "b")
    # a keeps its own turn, the overlap (both speak) and the stretch nobody speaks in; b's own turn is silenced
    assert a[:int(1.5 * SR)].min() == 1 and a[int(1.55 * SR):int(1.97 * SR)].max() == 0 and a[int(2.1 * SR):].min() == 1
    assert b[:int(0.97 * SR)].max() == 0 and b[SR:2 * SR].min() == 1
    ramp = a[int(1.97 * SR):2 * SR]  # no click: a fade back in at the end of the silenced turn
    assert 0 < ramp[len(ramp) // 2] < 1 and np.all(np.diff(ramp) >= 0)
    bad = tmp_path / "bad.rttm"
    bad.write_text("SPEAKER x 1 zero 1.0 <NA> <NA> a <NA> <NA>\n")
    with pytest.raises(lipdub.InputError, match="line 1"):
        rttm.read_rttm(bad)
    bad.write_text("SPEAKER x 1 0 1 <NA> <NA> a <NA> <NA>\nSPEAKER y 1 0 1 <NA> <NA> b <NA> <NA>\n")
    with pytest.raises(lipdub.InputError, match="2 recordings"):
        rttm.read_rttm(bad)


def test_the_mix_keeps_levels_and_never_clips():
    a, b = np.full(100, 0.3, np.float32), np.full(60, -0.2, np.float32)
    out, gain = mix([a, b])
    assert gain == 1.0 and np.allclose(out[:60], 0.1) and np.allclose(out[60:], 0.3)
    loud, gain = mix([np.full(10, 0.8, np.float32), np.full(10, 0.7, np.float32)])
    assert gain == pytest.approx(HEADROOM / 1.5) and np.abs(loud).max() <= HEADROOM + 1e-6


def test_voice_bindings_parse():
    from lipdub.options import split_voice

    assert split_voice("a.wav@2") == ("a.wav", 2)
    assert split_voice("a.wav@10,20,30,40.5") == ("a.wav", (10.0, 20.0, 30.0, 40.5))
    assert split_voice("a.wav") == ("a.wav", None)
    assert split_voice("me@home.wav") == ("me@home.wav", None)  # not a binding: part of the name
    with pytest.raises(lipdub.ParameterError, match="--speakers"):
        DubOptions(speaker_face=("a=1",)).validate()
    with pytest.raises(lipdub.ParameterError, match="twice"):
        DubOptions(speakers="m.rttm", speaker_face=("a=1", "a=2")).validate()


def test_a_batch_row_takes_a_voices_column(tmp_path):
    from lipdub.apps.batch.jobs import read_jobs

    for name in ("v.mp4", "a.wav", "b.wav", "m.wav", "map.rttm"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "jobs.csv").write_text(
        "video,audio,voices,options,output\n"
        'v.mp4,,"a.wav@1 b.wav@10,20,30,40",,two.mp4\n'
        "v.mp4,m.wav,,--speakers map.rttm --speaker-face s0=0 --speaker-face s1=1,rttm.mp4\n"
        "v.mp4,a.wav,b.wav@0,,both.mp4\n")
    two, mapped, both = read_jobs(tmp_path / "jobs.csv")
    assert two.error is None and two.voices == [f"{tmp_path}/a.wav@1", f"{tmp_path}/b.wav@10,20,30,40"]
    assert mapped.error is None and mapped.dub["speakers"] == str(tmp_path / "map.rttm")
    assert mapped.dub["speaker_face"] == ["s0=0", "s1=1"]
    assert "keep one" in both.error


def test_the_web_app_dubs_a_conversation(scene, tmp_path):
    import os
    import shutil

    from lipdub.apps.web import jobs as webjobs

    studio = webjobs.Studio(tmp_path / "app", max_upload_mb=50)

    def upload(path):
        folder = studio.uploads / os.urandom(8).hex()
        folder.mkdir(parents=True)
        return str(shutil.copy(path, folder / path.name))

    video, left, right = upload(scene["video"]), upload(scene["left"]), upload(scene["right"])
    refused = list(webjobs.run(studio, webjobs.Request(video=video, audio=left, voices=[right], faces="1")))[-1]
    assert not refused.ok and "one face per voice" in refused.message
    done = list(webjobs.run(studio, webjobs.Request(video=video, audio=left, voices=[right], faces="1 0")))[-1]
    assert done.ok, done.message
    assert [v["face"] for v in done.report["voices"]] == ["face 1", "face 0"]
    assert done.output.is_file() and done.plot is None


def test_segments_split_at_shot_changes_losses_and_crossings():
    from lipdub.face.identity import _segments

    valid = np.ones(40, bool)
    valid[10:13] = False  # a 3-frame loss: the same face (under `lost`)
    valid[20:30] = False  # a 10-frame loss: what comes after may be someone else
    assert _segments(valid, np.array([35]), lost=5) == [(0, 20), (30, 35), (35, 40)]


def test_two_faces_that_cross_and_come_out_swapped_are_left_as_filmed():
    """Synthetic: two faces (a pink and a brown patch) cross; after the crossing each track follows the other person.
    The frames of the crossing and those after it are in doubt for both tracks; before it, none."""
    from types import SimpleNamespace

    from lipdub.face.identity import appearance_doubts, overlaps
    from lipdub.face.track import FaceTrack

    n, fps = 60, 25.0
    rng = np.random.default_rng(1)
    grid = rng.uniform(-40, 40, (478, 2))

    def track(xs):
        lms = np.zeros((n, 478, 3), np.float32)
        lms[:, :, :2] = grid[None] + np.stack([xs, np.full(n, 100.0)], axis=1)[:, None]
        return FaceTrack(np.arange(n) / fps, lms, np.ones(n, bool), 400, 200)

    a_x = np.r_[np.full(20, 100.0), np.linspace(100, 300, 10), np.full(30, 300.0)]  # left to right
    b_x = a_x[::-1].copy()  # right to left: they meet at frames 24-25
    tracks = [track(a_x), track(b_x)]
    pink, brown = (230, 170, 160), (140, 90, 60)

    def frames():
        for i in range(n):
            rgb = np.full((200, 400, 3), 20, np.uint8)
            # the people really move the other way: each track's position holds the other person after frame 25
            for x, colour in ((a_x[i] if i < 25 else b_x[i], pink), (b_x[i] if i < 25 else a_x[i], brown)):
                rgb[55:145, int(x) - 45:int(x) + 45] = colour
            yield SimpleNamespace(index=i, rgb=rgb)

    crossing = overlaps(tracks)
    assert crossing[0].any() and not crossing[0][:20].any()
    doubts, measured = appearance_doubts(tracks, frames(), fps, crossing)
    for d, m in zip(doubts, measured):
        after = np.flatnonzero(~crossing[0] & (np.arange(n) > 25))
        assert not d[:20].any(), m  # before the crossing: as tracked
        assert d[after].all(), m  # after it: someone else, left as filmed
