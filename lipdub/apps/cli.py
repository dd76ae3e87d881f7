"""Command line: `lipdub dub`, `lipdub batch`, `lipdub say`, `lipdub live`, `lipdub app`, `lipdub profile`,
`lipdub demo`, `lipdub visemes`. Thin: parsing, progress and errors only."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time

from lipdub import options, profile as profiles
from lipdub.apps import live
from lipdub.apps.batch import run_batch
from lipdub.apps.demo import run_demo
from lipdub.apps.say import say as say_text
from lipdub.apps.transcript import read_transcript
from lipdub.apps.visemes import export as export_visemes
from lipdub.apps.web.app import serve
from lipdub.errors import LipdubError, ParameterError
from lipdub.pipeline import dub
from lipdub.pipeline.live import LIVE_REGIONS


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one `lipdub: error:` line (exit code 2), like every other error."""

    def error(self, message: str):
        self.exit(2, f"lipdub: error: {message}; see `{self.prog} --help`\n")


class ProgressBar:
    """One tqdm bar per stage, with ETA; silent with --quiet."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bars: dict = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            for other in self.bars.values():
                other.close()
            bar = self.bars[stage] = tqdm(total=total, desc=f"{stage:>6}", unit="frame", leave=True,
                                          dynamic_ncols=True, file=sys.stderr)
        if total != bar.total:
            bar.total = total
        bar.update(done - bar.n)

    def close(self) -> None:
        """Finish every bar; a later stage starts a new one."""
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def dub_options(args: argparse.Namespace, **overrides):
    """DubOptions from the registry's options as parsed (shared by `dub` and `say`); --transcript read here."""
    if getattr(args, "transcript", None) is not None and "transcript" not in overrides:
        overrides["transcript"] = read_transcript(args.transcript)
    return options.from_args(args, **overrides)


def _global_options(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """-q and --debug, before or after the command: a command's parser leaves them unset unless given there."""
    default = False if top else argparse.SUPPRESS
    parser.add_argument("-q", "--quiet", action="store_true", default=default, help="no progress bar")
    parser.add_argument("--debug", action="store_true", default=default, help="show tracebacks and debug logs")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="lipdub", description="Re-animate a speaker's mouth to new speech.")
    _global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True)

    def command(subparsers, name: str, **kw) -> argparse.ArgumentParser:
        p = subparsers.add_parser(name, **kw)
        _global_options(p)
        return p

    d = command(sub, "dub", help="dub VIDEO (or a photo) with AUDIO; several voices: each drives its own face",
                description="Dub VIDEO with AUDIO. A conversation: several voices, each bound to a face with "
                            "voice.wav@N (N as --face-index: faces ranked by size x time on screen, 0 = the largest "
                            "persistent face, 1 the next...) or voice.wav@x,y,w,h (a box around the face, pixels of "
                            "the displayed frame); each face speaks its voice and rests while it is silent; the "
                            "output carries the voices' mix (or --mix FILE). Or one mixed track with --speakers "
                            "map.rttm --speaker-face LABEL=N ...",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("video", nargs="?", help="video or photo of the speaker(s)")
    d.add_argument("audio", nargs="*", metavar="AUDIO",
                   help="the new speech (any audio or video file); several: voice.wav@N or voice.wav@x,y,w,h each")
    d.add_argument("-o", "--output", "--outfile", dest="output", help="output video (.mp4, .mov, .mkv)")
    d.add_argument("--face", dest="video_alias", metavar="VIDEO", help="same as VIDEO (Wav2Lip-compatible)")
    d.add_argument("--audio", dest="audio_alias", metavar="AUDIO", help="same as AUDIO (Wav2Lip-compatible)")
    options.add_arguments(d)

    b = command(sub, "batch", help="dub every row of a CSV (video, audio, transcript, options, output)")
    b.add_argument("csv", nargs="?", metavar="JOBS.csv",
                   help="one job per row: video, audio, transcript, options, output (paths relative to the CSV)")
    b.add_argument("--out-dir", help="folder for outputs, reports and the summary (default: the CSV's folder)")
    b.add_argument("--retries", type=int, default=1, help="retries of a failed job (default 1)")
    b.add_argument("--workers", type=int, help="jobs at a time (default 1; with --ray: 2 on a local instance, "
                                               "as many as the cluster takes otherwise)")
    b.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run the jobs as Ray tasks: on the cluster at ADDRESS (e.g. auto, ray://head:10001), or on "
                        "a local Ray instance when no address is given (needs `pip install ray`)")
    b.add_argument("--force", action="store_true", help="run finished jobs again too")
    b.add_argument("--split-seconds", type=float, default=120.0,
                   help="jobs with at least this much audio render in 10 s pieces (resumable; spread over the "
                        "workers with --ray); 0 = never (default 120)")

    say = command(sub, "say", help="make the face in a video or photo say typed text (offline speech, espeak-ng)")
    say.add_argument("source", metavar="VIDEO_OR_PROFILE",
                     help="video or photo of the speaker, or an actor profile (.lipdub) together with --video")
    say.add_argument("text", help="what to say (text, or a .txt file)")
    say.add_argument("-o", "--output", required=True, help="output video (.mp4, .mov, .mkv)")
    say.add_argument("--video", help="with a .lipdub profile as SOURCE: the shot of the actor to dub")
    say.add_argument("--voice", help="espeak-ng voice, e.g. en-us, en-gb, en-us+f3, es, fr (`espeak-ng --voices`); "
                                     "default: the language's")
    say.add_argument("--language", help="language of the text, e.g. en, es, fr, de (default: the voice's, else en)")
    say.add_argument("--speed", type=int, default=150, help="words per minute (default 150)")
    options.add_arguments(say, exclude=("transcript", "alignment", "language"))

    lv = command(sub, "live", help="dub a stream as it arrives: video and voice from files, pipes or devices")
    lv.add_argument("--video", required=True, metavar="SOURCE",
                    help="video file or photo (played at real-time pace), a named pipe, - (standard input) "
                         "or a camera (/dev/video0)")
    lv.add_argument("--audio", required=True, metavar="SOURCE",
                    help="audio file (real-time pace), a named pipe, - (standard input) or a microphone "
                         "(alsa:default, pulse:default)")
    lv.add_argument("-o", "--output", help="write the dubbed stream to this file (.mp4, .mkv)")
    lv.add_argument("--preview", type=int, metavar="PORT",
                    help="show the dubbed picture live at http://127.0.0.1:PORT/ (0 picks a free port)")
    options.add_argument(lv, "profile", help="an actor profile: the actor's own mouths")
    options.add_argument(lv, "region", choices=list(LIVE_REGIONS), help="what moves (default lower)")
    options.add_argument(lv, "strength")
    options.add_argument(lv, "motion_model")
    lv.add_argument("--lookahead", type=float, default=0.1,
                    help="seconds of speech the mouth may wait for (0..0.15, default 0.1): less delay, less accuracy")
    lv.add_argument("--fast", action="store_true",
                    help="read file sources as fast as the machine goes instead of at real-time pace")
    lv.add_argument("--seconds", type=float, help="stop after this many seconds of stream")
    options.add_argument(lv, "crf", default=20.0, help="H.264 quality of --output (default 20)")
    options.add_argument(lv, "preset", default="superfast", help="x264 preset of --output (default superfast)")
    lv.add_argument("--no-prepare", action="store_true",
                    help="a video file's mouths are normally prepared from its first minute before the session "
                         "starts (cached; with --profile, mixed with its mouths); with this the session starts at "
                         "once and takes them from the stream as it plays (its first seconds have few), or from the "
                         "profile alone")

    app = command(sub, "app", help="the web app: upload, dub, compare and download in a browser (needs gradio)")
    app.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the "
                          "network, without any login)")
    app.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    app.add_argument("--max-upload-mb", type=float, default=500.0, help="largest upload accepted (default 500 MB)")
    app.add_argument("--work-dir", help="folder for uploads and jobs (default: a private temporary folder, removed "
                                        "when the app stops)")

    demo = command(sub, "demo", help="dub the embedded default: a portrait saying a synthesised sentence")
    demo.add_argument("-o", "--output", default="out/demo.mp4")

    vis = command(sub, "visemes", help="the mouth track of AUDIO without video: Rhubarb TSV, CSV, JSON, PNG plot")
    vis.add_argument("audio", help="speech (any audio or video file)")
    vis.add_argument("-o", "--output", action="append", required=True,
                     help="cues.tsv (Rhubarb mouth cues), curves.csv / curves.json (per-frame parameters and "
                          "ARKit-style blendshapes) or plot.png; repeat -o for several")
    options.add_argument(vis, "transcript", help="what the audio says (text, or a .txt file)")
    options.add_argument(vis, "language", help="language of the audio (default: English)")
    vis.add_argument("--fps", type=float, default=100.0, help="frame rate of the per-frame curves (default 100)")
    options.add_argument(vis, "strength")
    options.add_argument(vis, "motion_model")

    prof = command(sub, "profile", help="actor profiles: learn an actor from their footage")
    psub = prof.add_subparsers(dest="profile_command", required=True)
    pb = command(psub, "build", help="build a profile from footage of one actor (any number of clips)")
    pb.add_argument("footage", nargs="+", help="video clips of the actor speaking (their own audio is used too)")
    pb.add_argument("-o", "--output", required=True, help="profile file to write (e.g. actor.lipdub)")
    pb.add_argument("--no-cache", action="store_true", help="do not read or write the face-track cache")
    pi = command(psub, "info", help="what a profile holds: minutes, frames, mouth-shape coverage")
    pi.add_argument("profile", help="a .lipdub profile")

    return parser


def _dub(args, progress) -> int:
    video = args.video or args.video_alias
    audio = args.audio or ([args.audio_alias] if args.audio_alias else [])
    if not video or not audio or not args.output:
        raise ParameterError("usage: lipdub dub VIDEO AUDIO -o OUT.mp4 (or --face VIDEO --audio AUDIO --outfile OUT)")
    opts = dub_options(args)
    t = time.perf_counter()
    report = dub(video, audio if len(audio) > 1 else audio[0], args.output, opts, progress=progress)
    progress.close()
    if not args.quiet:
        print(f"wrote {report.output}: {report.frames} frames at {report.fps:.3f} fps ({report.duration:.2f} s), "
              f"mouth rendered on {report.faces_rendered} frames, speech: {report.speech_method}, "
              f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
        for v in report.voices:
            doubt = v["overlap_frames"] + v["doubtful_frames"]
            print(f"  {v['voice']}: {v['face']}, mouth drawn on {v['frames_rendered']} frames"
                  + (f", {doubt} frame(s) left as filmed (faces overlap or look different)" if doubt else ""),
                  file=sys.stderr)
        fit = report.retiming
        if fit:
            for p in fit["phrases"]:
                print(f"  phrase {p['phrase']}: new {p['new'][0]:.2f}-{p['new'][1]:.2f} s on the original's "
                      f"{p['original'][0]:.2f}-{p['original'][1]:.2f} s, shift {p['shift']:+.2f} s", file=sys.stderr)
            print(f"  pauses: {fit['held']} frame(s) held, {fit['dropped']} dropped"
                  + "".join(f"; {note}" for note in fit["notes"]), file=sys.stderr)
        if report.mix_gain is not None and report.mix_gain < 1:
            print(f"  the voices overlap: their mix is scaled by {report.mix_gain:.2f} so it does not clip",
                  file=sys.stderr)
    if report.frames_sha256 is not None:  # asked for (--frames-sha256): a result, on stdout even with -q
        print(f"frames sha256 {report.frames_sha256}")
    return 0


def _batch(args) -> int:
    csv_path, ray = args.csv, args.ray
    if csv_path is None and ray is not None and ray.lower().endswith(".csv"):  # `lipdub batch --ray jobs.csv`
        csv_path, ray = ray, "local"
    if csv_path is None:
        raise ParameterError("usage: lipdub batch JOBS.csv [--out-dir DIR] [--retries N] [--workers N] "
                             "[--ray [ADDRESS]]")

    def show(entry: dict, done: int, total: int) -> None:
        if args.quiet:
            return
        what = entry["status"] if entry["status"] != "failed" else f"FAILED: {entry['error']}"
        attempts = f", {entry['attempts']} attempts" if (entry["attempts"] or 1) > 1 else ""
        seconds = f" ({entry['wall_seconds']:.1f} s{attempts})" if entry["status"] != "skipped" else ""
        print(f"[{done}/{total}] row {entry['row']}: {entry['output']}: {what}{seconds}", file=sys.stderr)

    try:
        summary = run_batch(csv_path, args.out_dir, retries=args.retries, workers=args.workers, ray=ray,
                            force=args.force, on_job=show, split_seconds=args.split_seconds or None)
    except KeyboardInterrupt as exc:
        print("lipdub: interrupted; finished jobs keep their outputs and reports, run the batch again to go on",
              file=sys.stderr)
        return 128 + (exc.args[0] if exc.args else 2)
    c = summary.data["counts"]
    if not args.quiet:
        print(f"batch: {c['ok']} done, {c['skipped']} skipped (already done), {c['failed']} failed of {c['total']} "
              f"in {summary.data['wall_seconds']:.1f} s; summary: {summary.path}", file=sys.stderr)
    return 1 if summary.failed else 0


def _say(args, progress) -> int:
    text = read_transcript(args.text) or ""
    t = time.perf_counter()
    report, track = say_text(args.source, text, args.output, voice=args.voice, language=args.language, speed=args.speed,
                        video=args.video, options=dub_options(args, language=None), progress=progress)
    progress.close()
    if not args.quiet:
        closures = sum(p.label in ("P", "B", "M") for p in track.phones)
        print(f"wrote {report.output}: {report.frames} frames ({report.duration:.2f} s), {closures} lip closures "
              f"(p/b/m), {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return 0


def _live(args, progress) -> int:
    def preparing(stage: str, done: int, total: int) -> None:
        if stage == "prepare":
            progress(stage, done, total)
        else:  # the session has started: the preparation bar is finished
            progress.close()

    def announce(url: str) -> None:
        if not args.quiet:
            print(f"lipdub: live preview at {url} (the picture; the sound goes to --output)", file=sys.stderr)

    report = live.run(args.video, args.audio, args.output, profile=args.profile, region=args.region,
                      strength=args.strength, lookahead=args.lookahead, realtime=not args.fast,
                      preview_port=args.preview, crf=args.crf, preset=args.preset, max_seconds=args.seconds,
                      announce=announce, prepare=not args.no_prepare, progress=preparing,
                      motion_model=args.motion_model)
    if not args.quiet:
        where = f"wrote {report.output}: " if report.output else ""
        print(f"{where}{report.summary()}", file=sys.stderr)
        if report.late_frames:
            print(f"lipdub: {report.late_frames} frames came out more than 0.5 s behind real time: this machine "
                  "is too slow for this stream live (smaller frames, --region lips or a faster --preset help)",
                  file=sys.stderr)
    return 0


def _interrupt_on(signum, frame):
    raise KeyboardInterrupt(signum)


def main(argv: list[str] | None = None) -> int:
    """The command line. SIGTERM (a job scheduler, `kill`) ends a command like Ctrl-C: temporary files are removed and
    no output is left half-written; the exit status is 128 + the signal's number."""
    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt_on)
    try:
        return _main(argv)
    except KeyboardInterrupt as exc:  # a signal that arrived outside the command's own handlers
        return 128 + (exc.args[0] if exc.args else signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="lipdub: %(message)s")
    logging.getLogger("lipdub").setLevel(logging.DEBUG if args.debug else logging.WARNING)
    progress = ProgressBar(enabled=not args.quiet and sys.stderr.isatty())
    try:
        if args.command == "dub":
            return _dub(args, progress)
        if args.command == "say":
            return _say(args, progress)
        if args.command == "batch":
            return _batch(args)
        if args.command == "live":
            return _live(args, progress)
        if args.command == "app":
            serve(args.host, args.port, args.max_upload_mb, args.work_dir)
            return 0
        if args.command == "demo":
            out = run_demo(args.output, progress=progress)
            progress.close()
            print(f"wrote {out}", file=sys.stderr)
            return 0
        if args.command == "profile":
            if args.profile_command == "build":
                prof = profiles.build(args.footage, progress=progress, cache=not args.no_cache)
                path = prof.save(args.output)
                progress.close()
                if not args.quiet:
                    print(prof.info(), file=sys.stderr)
                    print(f"wrote {path} in {prof.meta['build_seconds']:.1f} s", file=sys.stderr)
                return 0
            print(profiles.load(args.profile).info())
            return 0
        if args.command == "visemes":
            written = export_visemes(args.audio, args.output, transcript=read_transcript(args.transcript),
                             language=args.language, fps=args.fps, strength=args.strength,
                                       motion_model=args.motion_model)
            if not args.quiet:
                print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
            return 0
    except LipdubError as exc:
        progress.close()
        if args.debug:
            raise
        print(f"lipdub: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        progress.close()
        print("lipdub: interrupted; no output was written", file=sys.stderr)
        return 128 + (exc.args[0] if exc.args else 2)
    except Exception as exc:  # an unexpected failure still ends in one line, not a traceback
        progress.close()
        if args.debug:
            raise
        print(f"lipdub: internal error: {type(exc).__name__}: {exc} (run with --debug for details; please report it)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
