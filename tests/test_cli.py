"""The command line's parsing: global options anywhere, the commands it has (and the one it no longer has)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lipdub.apps import cli

LIPDUB = Path(__file__).resolve().parents[1] / "lipdub"


@pytest.mark.parametrize("argv", [
    ["-q", "dub", "v.mp4", "a.wav", "-o", "o.mp4"],
    ["dub", "v.mp4", "a.wav", "-o", "o.mp4", "-q"],
    ["dub", "-q", "v.mp4", "a.wav", "-o", "o.mp4"],
    ["batch", "jobs.csv", "--quiet"],
    ["profile", "build", "clip.mp4", "-o", "actor.lipdub", "-q"],
])
def test_quiet_before_or_after_the_command(argv):
    args = cli.build_parser().parse_args(argv)
    assert args.quiet is True and args.debug is False


@pytest.mark.parametrize("argv", [
    ["--debug", "say", "v.mp4", "hello", "-o", "o.mp4"],
    ["say", "v.mp4", "hello", "-o", "o.mp4", "--debug"],
    ["visemes", "a.wav", "-o", "cues.tsv", "--debug"],
])
def test_debug_before_or_after_the_command(argv):
    args = cli.build_parser().parse_args(argv)
    assert args.debug is True and args.quiet is False


def test_without_global_options_they_are_off():
    args = cli.build_parser().parse_args(["live", "--video", "v.mp4", "--audio", "a.wav", "-o", "o.mp4"])
    assert args.quiet is False and args.debug is False


def test_quiet_after_the_command_reaches_the_command(tmp_path, capsys):
    code = cli.main(["dub", str(tmp_path / "missing.mp4"), str(tmp_path / "missing.wav"), "-o",
                     str(tmp_path / "o.mp4"), "-q"])
    err = capsys.readouterr().err
    assert "unrecognized arguments" not in err
    assert code == 3 and "not found" in err  # the dub ran and refused the missing input


def test_eval_is_not_a_command_and_nothing_mentions_it(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.build_parser().parse_args(["eval"])
    assert exc.value.code == 2
    mentions = [str(p) for p in LIPDUB.rglob("*.py") if "lipdub eval" in p.read_text(encoding="utf-8")]
    assert not mentions, f"`lipdub eval` is gone (python -m training.evaluate): {mentions}"


@pytest.mark.parametrize("asked", [False, True])
def test_dub_prints_the_frames_digest_only_when_asked(tmp_path, capsys, monkeypatch, asked):
    from lipdub.pipeline.report import DubReport

    seen = []

    def fake_dub(video, audio, output, opts, progress=None):  # the option reaches the dub; its digest is printed
        seen.append(opts.frames_sha256)
        digest = "ab" * 32 if opts.frames_sha256 else None
        return DubReport(Path(output), 1, 25.0, 0.04, 1, "test", frames_sha256=digest)

    monkeypatch.setattr(cli, "dub", fake_dub)
    argv = ["dub", "v.mp4", "a.wav", "-o", str(tmp_path / "o.mp4"), "-q"] + (["--frames-sha256"] if asked else [])
    assert cli.main(argv) == 0
    assert seen == [asked]
    assert capsys.readouterr().out == (f"frames sha256 {'ab' * 32}\n" if asked else "")
