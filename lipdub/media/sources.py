"""Live sources: a media file (played at real-time pace), a named pipe (FIFO) or "-" (standard input), or a capture
device: /dev/videoN (v4l2) for pictures, "alsa:NAME" or "pulse:NAME" for sound."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import av
import numpy as np

from lipdub.errors import InputError
from lipdub.media.frames import PlanarFrame, iter_frames, passes_as_decoded, to_rgb
from lipdub.media.probe import IMAGE_FPS, decode_frames, input_options, is_image_path, open_input, quarter_turns, \
    video_stream


AUDIO_CHUNK = 0.02  # s: what a microphone callback delivers


def _open_source(source: str, kind: str):
    """(container, is_live_device). Files go through open_input (file protocol only, no playlists); pipes and
    devices are opened with the same protocol whitelist."""
    opts = input_options()
    try:
        if source == "-":
            return av.open(sys.stdin.buffer, "r", container_options=opts), False
        if kind == "audio" and source.startswith(("alsa:", "pulse:")):
            fmt, _, name = source.partition(":")
            return av.open(name or "default", "r", format=fmt), True
        p = Path(source)
        if p.exists() and stat.S_ISCHR(os.stat(p).st_mode) and kind == "video":
            return av.open(str(p), "r", format="v4l2"), True
        if p.exists() and stat.S_ISFIFO(os.stat(p).st_mode):
            return av.open(os.path.abspath(p), "r", container_options=opts), False
    except (av.FFmpegError, OSError, ValueError) as e:
        raise InputError(f"cannot open the {kind} source {source} ({e}); check that the device or pipe exists "
                         "and delivers a media stream") from None
    return open_input(source, kind), False


def video_source(source: str, loop: bool = True, planar: bool = False):
    """Yields (rgb, fps, still, decoded) for each frame; a file loops from its start while `loop` (a shorter clip
    under a longer voice), a photo repeats forever (the caller stops it). With `planar`, `decoded` is the frame as
    decoded (PlanarFrame) where it can pass to the encoder as it is (passes_as_decoded), else None."""
    if source not in ("-",) and is_image_path(source):
        rgb = next(iter_frames(source)).rgb
        while True:
            yield rgb, IMAGE_FPS, True, None
    first = True
    while True:
        c, device = _open_source(source, "video")
        try:
            s = video_stream(c, source)
            fps = float(s.average_rate or s.guessed_rate or IMAGE_FPS)
            n = 0
            for f in decode_frames(c, s):
                n += 1
                decoded = PlanarFrame.from_av(f) if planar and passes_as_decoded(f) else None
                yield to_rgb(f, quarter_turns(f)), fps, False, decoded
        finally:
            c.close()
        if first and n == 0:
            raise InputError(f"the video source {source} delivered no frames; pass a video with pictures")
        first = False
        if not loop or device or source == "-" or not Path(source).is_file():
            return


def audio_source(source: str, chunk: float = AUDIO_CHUNK):
    """Yields ((n, channels) float32, sr) chunks of `chunk` seconds (the last may be shorter)."""
    c, _ = _open_source(source, "audio")
    try:
        if not c.streams.audio:
            raise InputError(f"{source} has no audio track; pass a file, pipe or device with sound")
        s = c.streams.audio[0]
        resampler = None
        pending = np.zeros((0, 1), np.float32)
        size = None
        for f in decode_frames(c, s):
            if resampler is None:
                layout = "mono" if f.layout.nb_channels == 1 else "stereo"
                resampler = av.AudioResampler(format="flt", layout=layout, rate=f.sample_rate)
                sr = f.sample_rate
                size = max(1, int(round(chunk * sr)))
                pending = np.zeros((0, 1 if layout == "mono" else 2), np.float32)
            for r in resampler.resample(f):
                x = r.to_ndarray().reshape(-1, pending.shape[1])
                pending = np.concatenate([pending, x])
                while len(pending) >= size:
                    yield np.clip(np.nan_to_num(pending[:size]), -1, 1), sr
                    pending = pending[size:]
        if resampler is None:
            raise InputError(f"the audio source {source} holds no decodable sound; pass another file")
        for r in resampler.resample(None):
            pending = np.concatenate([pending, r.to_ndarray().reshape(-1, pending.shape[1])])
        if len(pending):
            yield np.clip(np.nan_to_num(pending), -1, 1), sr
    finally:
        c.close()
