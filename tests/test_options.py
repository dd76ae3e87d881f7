"""The dub-option registry (lipdub.options.DUB_OPTIONS) is the one declaration of every dub option: DubOptions, the
command line, a batch CSV's options column, the web form and the README's table all follow it, and every option's
check refuses a bad value with a ParameterError that names the option."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from lipdub import face, media, motion, options
from lipdub.apps import cli
from lipdub.apps.batch import jobs as batch_jobs
from lipdub.apps.web import jobs as webjobs
from lipdub.errors import ParameterError
from lipdub.motion import expression
from lipdub.options import DUB_OPTIONS, OPTIONS, DubOptions

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- options:begin -->", "<!-- options:end -->"

# One bad value per option (a new option needs one here too).
BAD = {"transcript": 5, "language": ["en"], "length": "forever", "strength": 3.5, "face_index": -1,
       "face_box": (0, 0, 0, 10), "speaker": "loudest", "max_size": 12, "crf": 52, "preset": "warp9",
       "repeatable": "yes", "resume": 2, "piece_seconds": 0.1, "pieces": "3/2", "cache": "no", "save_alignment": 7, "alignment": 1.5,
       "frames_sha256": "yes", "region": "body", "emotion": "bored", "emotion_strength": -0.5, "profile": 3,
       "speech_track": "phones",
       "speakers": 4, "speaker_face": ("spk0",), "mix": 2.5, "motion_model": "commercial"}


def _flags(parser) -> set[str]:
    return {s for a in parser._actions for s in a.option_strings}


def _command(name: str):
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    return sub.choices[name]


def test_dub_options_are_the_registry():
    fields = dataclasses.fields(DubOptions)
    assert [f.name for f in fields] == [o.name for o in DUB_OPTIONS]
    assert [f.default for f in fields] == [o.default for o in DUB_OPTIONS]
    DubOptions().validate()


def test_readme_table_is_generated_from_the_registry():
    text = README.read_text(encoding="utf-8")
    assert BEGIN in text and END in text, (
        f"README.md lacks the option table: put the output of `python -m lipdub.options --markdown` between the "
        f"lines {BEGIN} and {END}")
    table = text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert table == options.markdown_table(), (
        "README.md's option table is out of date: replace it with `python -m lipdub.options --markdown`")


def test_the_command_line_takes_exactly_the_registry_options():
    registry = {o.cli for o in options.cli_options()}
    own = {"-h", "--help", "-q", "--quiet", "--debug", "-o", "--output", "--outfile", "--face", "--audio"}
    assert _flags(_command("dub")) - own == registry
    args = _command("dub").parse_args(["v.mp4", "a.wav"])
    assert options.from_args(args) == DubOptions()  # every default as the registry says
    say_own = {"-h", "--help", "-q", "--quiet", "--debug", "-o", "--output", "--video", "--voice", "--speed",
               "--language"}
    assert _flags(_command("say")) - say_own == registry - {"--transcript", "--alignment", "--language"}


def test_a_batch_row_takes_exactly_the_registry_options(tmp_path):
    assert _flags(batch_jobs._options_parser()) == {o.cli for o in options.cli_options()}
    values = batch_jobs.parse_options("--crf 20 --no-cache --face-box 1,2,3,4", tmp_path)
    assert set(values) == {o.name for o in DUB_OPTIONS} - {"speech_track"}
    assert values["crf"] == 20 and values["cache"] is False and values["face_box"] == [1, 2, 3, 4]
    with pytest.raises(ParameterError, match="--region"):
        batch_jobs.parse_options("--region body", tmp_path)


def test_the_web_form_sets_registry_options_with_their_defaults():
    assert set(webjobs.FORM_OPTIONS) <= set(OPTIONS)
    request = webjobs.Request()
    for name in webjobs.FORM_OPTIONS:
        if hasattr(request, name) and name not in ("transcript", "language"):  # text fields: "" = none
            assert getattr(request, name) == OPTIONS[name].default, name


@pytest.mark.parametrize("option", DUB_OPTIONS, ids=lambda o: o.name)
def test_every_check_refuses_a_bad_value_naming_the_option(option):
    assert set(BAD) == set(OPTIONS), "give every option a bad value in BAD"
    option.check(option.default)
    with pytest.raises(ParameterError, match=re.escape(option.label)):
        option.check(BAD[option.name])
    with pytest.raises(ParameterError, match=re.escape(option.label)):
        DubOptions(**{option.name: BAD[option.name]}).validate()


def test_choices_are_the_stages_own():
    assert OPTIONS["length"].choices is media.POLICIES
    assert OPTIONS["preset"].choices is media.X264_PRESETS
    assert OPTIONS["speaker"].choices is face.SPEAKER_MODES
    assert OPTIONS["region"].choices is expression.REGIONS
    assert OPTIONS["emotion"].choices is expression.EMOTIONS
    assert OPTIONS["motion_model"].choices is motion.MODEL_CHOICES
