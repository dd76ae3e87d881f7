"""A dub rendered in pieces: resumable after a kill (--resume), or shared among workers (--pieces i/n, scale-out)."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

from lipdub import media
from lipdub.core.files import write_text
from lipdub.media.background import BackgroundWriter
from lipdub.options import DubOptions
from lipdub.pipeline.rendering import frame_reader, render_frames, source

log = logging.getLogger("lipdub")

WARM_UP = 8  # frames rendered (not written) before each piece, so colour smoothing enters it as it left the last


def render_in_pieces(video: Path, audio: Path, output: Path, info, opts: DubOptions, schedule, render_one,
                     renderer, progress, planar: bool = False) -> tuple[int, str | None]:
    """Render the output in pieces of `opts.piece_seconds`, each encoded on its own into a folder beside the output,
    then joined with the audio. A piece already there (from a killed run of the same dub) is kept, so the run
    continues where it stopped; every piece starts from the same state either way (colour smoothing warmed up over
    the frames before it), so a resumed dub equals an uninterrupted one. With opts.frames_sha256 each piece records
    its frames' digest and the whole dub's is the digest of theirs (None when a piece kept from an earlier run was
    rendered without one); the option does not change the pieces, so it is not part of their key."""
    work = output.parent / f".{output.name}.lipdub-parts"
    key_src = {"video": _stat_key(video), "audio": _stat_key(audio), "frames": len(schedule),
               "options": {k: v for k, v in vars(opts).items() if k not in ("resume", "cache", "save_alignment",
                                                                         "speech_track", "pieces", "frames_sha256")}}
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True, default=str).encode()).hexdigest()[:24]
    manifest = work / "manifest.json"
    if work.is_dir():
        try:
            same = json.loads(manifest.read_text())["key"] == key
        except (OSError, ValueError, KeyError):
            same = False
        if not same:  # another dub's pieces: start over
            shutil.rmtree(work, ignore_errors=True)
    work.mkdir(exist_ok=True)
    if not manifest.is_file():  # (written atomically: workers of one scale-out dub share the folder)
        write_text(manifest, json.dumps({"key": key, "inputs": key_src}, default=str))
    n_out = len(schedule)
    per = max(1, int(round(opts.piece_seconds * info.fps)))
    pieces = [(k0, min(k0 + per, n_out)) for k0 in range(0, n_out, per)]
    mine = None
    if opts.pieces:
        i, n = (int(v) for v in opts.pieces.split("/"))
        mine = {c for c in range(len(pieces)) if c % n == i}
    faces, digests = 0, []
    # each piece warms up on the frames before it
    with frame_reader(video, info, schedule, back=WARM_UP, planar=planar) as reader:
        for c, (k0, k1) in enumerate(pieces):
            if mine is not None and c not in mine:
                continue
            part, meta = work / f"part{c:05d}.mp4", work / f"part{c:05d}.json"
            if part.is_file() and meta.is_file():
                try:
                    done = json.loads(meta.read_text())
                    faces += int(done["faces"])
                    digests.append(done["digest"] or None)  # (written "" before the digest was optional)
                    if progress:
                        progress("render", k1, n_out)
                    continue
                except (OSError, ValueError, KeyError):
                    pass  # a damaged record: render the piece again
            if renderer is not None:
                renderer.colour.reset()
                renderer.prev_j = None
            for k in range(max(0, k0 - WARM_UP), k0):
                render_one(k, *source(reader, schedule, k))
            with media.VideoWriter(part, info.width, info.height, info.fps, crf=opts.crf, preset=opts.preset,
                                   segment=True, matrix=info.matrix) as writer, \
                    BackgroundWriter(writer, digest=opts.frames_sha256) as sink:
                n_faces = render_frames(range(k0, k1), schedule, reader, render_one, sink, progress)
            write_text(meta, json.dumps({"faces": n_faces, "digest": sink.digest}))
            faces += n_faces
            digests.append(sink.digest)
    if mine is not None:  # a share of a scale-out dub: the final run joins
        return faces, None
    media.join_segments([work / f"part{c:05d}.mp4" for c in range(len(pieces))], output, info.fps, audio)
    shutil.rmtree(work, ignore_errors=True)
    if not opts.frames_sha256:
        return faces, None
    if None in digests:
        log.warning("no frames_sha256: %d of the %d pieces were rendered by a run not asked for it",
                    digests.count(None), len(digests))
        return faces, None
    return faces, hashlib.sha256("".join(digests).encode()).hexdigest()


def _stat_key(path: Path) -> list:
    st = Path(path).stat()
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]
