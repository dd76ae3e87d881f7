"""Wide shots (issue 22): a dub of a face shrunk to ~70 px in a frame of the same size follows the driving speaker
about as well as the same dub at full size (bench/wide_shot.py; skipped without the shared clips)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench import wide_shot
from training import evaluate


@pytest.mark.slow
def test_a_70_px_face_dub_keeps_r_within_0_1_of_full_size(tmp_path):
    from conftest import require_data

    data = require_data("video/woman_bluebg_7s.mp4", "video/german_anchor_20s.mp4")
    case = evaluate.CASES["woman_bluebg"]
    small = tmp_path / "small.mp4"
    wide_shot.shrink(data / case.video, small, 70.0 / wide_shot.face_width(data / case.video), case.video_range)
    assert 60 <= wide_shot.face_width(small) <= 80
    short = dataclasses.replace(case, clip_range=(0.0, 4.0))  # 4 s keeps the test under a minute
    full = evaluate.run_case(short, data)
    shrunk = evaluate.run_case(dataclasses.replace(short, video=str(Path(small))), data)
    assert shrunk["dub_valid"] == shrunk["dub_frames"]  # the small face is tracked in every dubbed frame
    assert full["r"] > 0.4 and shrunk["r"] > full["r"] - 0.1
