"""--resume: a dub killed half-way continues from its last finished piece and equals an uninterrupted dub."""

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest

import lipdub
from training import evaluate
from lipdub import media

from conftest import require_data, write_cut

VIDEO = "video/hdtf_katiehill_8s.mp4"
AUDIO = "audio/en_jfk_11s.wav"


def _frame_hashes(path):
    return [hashlib.sha256(fr.rgb.tobytes()).hexdigest() for fr in media.iter_frames(path)]


def test_killed_dub_resumes_to_the_same_output(tmp_path, caplog):
    data = require_data(VIDEO, AUDIO)
    audio = tmp_path / "jfk5.wav"
    evaluate.cut_audio(data / AUDIO, 0.0, 5.0, audio)
    whole, resumed = tmp_path / "whole.mp4", tmp_path / "resumed.mp4"
    report = lipdub.dub(data / VIDEO, audio, whole, resume=True, piece_seconds=1.0)
    assert report.frames == 125 and not (tmp_path / ".whole.mp4.lipdub-parts").exists()
    assert report.frames_sha256 is None  # not asked for

    # the same dub in another process, killed once two pieces are finished
    code = (f"import lipdub; lipdub.dub({str(data / VIDEO)!r}, {str(audio)!r}, {str(resumed)!r}, resume=True, "
            "piece_seconds=1.0)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ))
    work = tmp_path / ".resumed.mp4.lipdub-parts"
    deadline = time.time() + 240
    while not (work / "part00001.json").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.fail("the dub finished before it could be killed; make the pieces shorter")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not resumed.exists()  # never a partial output
    finished = sorted(p.name for p in work.glob("part*.json"))
    assert 2 <= len(finished) < 5

    # the digest asked for only now: the pieces the killed run rendered have none, so the dub has none either
    with caplog.at_level("WARNING", logger="lipdub"):
        again = lipdub.dub(data / VIDEO, audio, resumed, resume=True, piece_seconds=1.0, frames_sha256=True)
    assert again.frames_sha256 is None and any("no frames_sha256" in r.getMessage() for r in caplog.records)
    assert not work.exists()
    assert _frame_hashes(resumed) == _frame_hashes(whole)
    info = media.probe_video(resumed)
    assert info.n_frames == 125 and info.has_audio
    a, _ = media.load_audio(resumed, 16000)
    assert abs(len(a) / 16000 - 5.0) < 0.05


def test_pieces_of_another_dub_are_not_reused(tmp_path):
    data = require_data(VIDEO, AUDIO)
    audio = tmp_path / "jfk3.wav"
    evaluate.cut_audio(data / AUDIO, 0.0, 3.0, audio)
    out = tmp_path / "out.mp4"
    work = tmp_path / ".out.mp4.lipdub-parts"
    work.mkdir()
    (work / "manifest.json").write_text('{"key": "someone else"}')
    (work / "part00000.mp4").write_bytes(b"junk")
    (work / "part00000.json").write_text('{"faces": 0, "digest": "x"}')
    report = lipdub.dub(data / VIDEO, audio, out, resume=True, piece_seconds=1.0)
    assert report.faces_rendered == report.frames == 75
    assert media.probe_video(out).n_frames == 75


def test_hd_dub_resumed_from_its_pieces_equals_uninterrupted(tmp_path, monkeypatch):
    """HD frames go through the render stage as YUV (media.PlanarFrame): a dub continued from its first finished
    pieces (each warmed up on the frames before it) equals an uninterrupted one, frame for frame."""
    data = require_data("video/face_gap_23s.mov", "audio/es_spanish1_5s.wav")
    cut = write_cut(data / "video/face_gap_23s.mov", tmp_path / "cut.mp4", 90)
    with media.FrameReader(cut, planar=True) as r:
        assert isinstance(r.get(0), media.PlanarFrame)  # this clip takes the YUV path
    audio = data / "audio/es_spanish1_5s.wav"
    whole = lipdub.dub(cut, audio, tmp_path / "whole.mp4", resume=True, piece_seconds=1.0, frames_sha256=True)
    assert len(whole.frames_sha256) == 64

    def killed(*args, **kwargs):  # every piece is finished, the join never happens
        raise RuntimeError("killed before the join")

    out = tmp_path / "resumed.mp4"
    with monkeypatch.context() as m:
        m.setattr(media, "join_segments", killed)
        with pytest.raises(RuntimeError):
            lipdub.dub(cut, audio, out, resume=True, piece_seconds=1.0, frames_sha256=True)
    work = tmp_path / ".resumed.mp4.lipdub-parts"
    records = sorted(work.glob("part*.json"))
    assert len(records) == 5 and not out.exists()
    for record in records[2:]:  # as if killed after two pieces
        record.unlink()
        record.with_suffix(".mp4").unlink()
    resumed = lipdub.dub(cut, audio, out, resume=True, piece_seconds=1.0, frames_sha256=True)
    assert resumed.frames_sha256 == whole.frames_sha256
    assert _frame_hashes(out) == _frame_hashes(tmp_path / "whole.mp4")
