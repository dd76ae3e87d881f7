import csv
import json
import re

import numpy as np
import pytest

from lipdub.apps import visemes as export
from lipdub.errors import ParameterError

from conftest import require_data

JFK = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


@pytest.fixture(scope="module")
def jfk_outputs(tmp_path_factory):
    data = require_data("audio/en_jfk_11s.wav")
    d = tmp_path_factory.mktemp("visemes")
    outs = [d / "cues.tsv", d / "curves.csv", d / "curves.json", d / "plot.png"]
    export.export(data / "audio/en_jfk_11s.wav", outs, transcript=JFK, fps=30)
    return outs


def test_tsv_follows_rhubarbs_format(jfk_outputs):
    lines = jfk_outputs[0].read_text().splitlines()
    assert all(re.fullmatch(r"\d+\.\d{2}\t[A-HX]", line) for line in lines)
    times = [float(line.split("\t")[0]) for line in lines]
    shapes = [line.split("\t")[1] for line in lines]
    assert times[0] == 0.0 and shapes[0] == "X" and shapes[-1] == "X"
    assert all(b > a for a, b in zip(times, times[1:]))
    assert all(a != b for a, b in zip(shapes, shapes[1:]))  # no repeated cue
    assert 10.0 < times[-1] <= 11.0  # the final rest starts when the speech ends (about 10.5 s)
    # "my", "Americans", "ask not what your country ... for you": bilabials, wide vowels, rounded and lip-teeth
    assert {"A", "C", "F", "G"} <= set(shapes)


def test_csv_loads_as_a_table_with_blendshapes(jfk_outputs):
    with open(jfk_outputs[1], newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 330  # 11 s at 30 fps
    assert {"time", "opening", "width", "closed", *export.BLENDSHAPES} <= set(rows[0])
    jaw = np.array([float(r["jawOpen"]) for r in rows])
    assert jaw.min() >= 0 and jaw.max() <= 1 and jaw.max() > 0.4
    # silence before "And": its voice starts at 0.31 s; the lips part onset_lead (0.2 s) + MotionParams.advance (0.04 s)
    # ahead, so frame 0 catches only the smoothed foot of that parting
    assert float(rows[0]["jawOpen"]) < 0.1 * jaw.max()
    assert any(float(r["mouthClose"]) > 0 for r in rows)  # a p/b/m inside speech


def test_json_has_cues_phones_and_frames(jfk_outputs):
    doc = json.loads(jfk_outputs[2].read_text())
    assert doc["method"] == "forced-alignment"
    assert doc["mouthCues"][0]["start"] == 0.0
    assert all(c["end"] >= c["start"] for c in doc["mouthCues"])
    assert len(doc["frames"]) == 330 and any(p[0] == "M" for p in doc["phones"])


def test_plot_is_a_png(jfk_outputs):
    data = jfk_outputs[3].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_unknown_format_is_refused(tmp_path):
    data = require_data("audio/en_jfk_11s.wav")
    with pytest.raises(ParameterError):
        export.export(data / "audio/en_jfk_11s.wav", [tmp_path / "x.mp3"])
    assert not list(tmp_path.iterdir())
