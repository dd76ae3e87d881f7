"""Writing: H.264 + AAC into a temporary file beside the output, moved over it only when complete (VideoWriter), and
joining pieces written separately into one video without re-encoding (join_segments)."""

from __future__ import annotations

import math
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np

from lipdub.core.constants import SR
from lipdub.core.files import atomic_path, publish
from lipdub.errors import OutputError, ParameterError
from lipdub.media.audio import AAC_SR, AudioFile, AudioTrack, muxable_audio
from lipdub.media.colour import BT709, MPEG_RANGE, SMPTE170M, rgb_to_i420, rgb_to_yuv, to_levels, writable_matrix
from lipdub.media.frames import PlanarFrame
from lipdub.media.probe import LARGE_FRAME, VIDEO_OUT_SUFFIXES

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
# The default preset (lipdub.options) lightened, as x264 is ~40 % of a prepared dub's CPU: no 8x8 partitions in
# B-frames (P-frames keep theirs) and the diamond motion search cut x264's CPU by 17-26 % on dubs' and filmed frames
# of 512² to 720p (9 % at 1080x1920) for files ~2-3 % larger at the same luma PSNR, and bench.realism did not rise
# (0.549 -> 0.541 over 18 clips, as many up as down); leaving out the P-frames' 8x8 partitions too rose it on all
# four clips stop 32 tried (docs/RESULTS.md, Speed, issue 23, stops 32 and 42). Any other preset is x264's own.
TUNED_PRESET = "veryfast"
TUNED_PRESET_PARAMS = ("partitions=p8x8,i8x8,i4x4", "me=dia")


def _as_rate(fps) -> Fraction:
    """Exact frame rate: NTSC-style x/1.001 rates become N*1000/1001, others the closest fraction (den <= 1001)."""
    if isinstance(fps, Fraction):
        return fps
    f = float(fps)
    ntsc = round(f * 1.001)
    if ntsc >= 1 and abs(f - ntsc * 1000 / 1001) < 1e-3 and abs(f - ntsc) > 1e-3:
        return Fraction(ntsc * 1000, 1001)
    return Fraction(f).limit_denominator(1001)


class VideoWriter:
    """H.264 + AAC writer that replaces the destination atomically in close().

    Pixel format: yuv420p when width and height are both even; otherwise yuv444p, because H.264 4:2:0 cannot code
    an odd size (its cropping works in 2-pixel units) and the output must keep the source resolution. yuv444p
    (High 4:4:4 profile) plays in FFmpeg-based players (VLC, mpv) but not in browsers or QuickTime.
    Audio is muxed progressively as frames arrive and ends exactly at n_frames/fps (zero-padded or trimmed); `audio`
    is an array ((N,) or (C, N) at `audio_sr`) or an audio file's path, streamed from the file (long sound tracks).
    Colours: limited range in `matrix` (FFmpeg's code: BT.709, or BT.601 for a source in it, so that its frames pass
    as decoded and players read both alike), tagged so; RGB frames are converted as media.colour reads them back.
    """

    def __init__(self, path, width: int, height: int, fps: float, audio=None,
                 audio_sr: int = SR, crf: float = 16, preset: str = "veryfast", repeatable: bool = False,
                 segment: bool = False, matrix: int = BT709):
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_OUT_SUFFIXES:
            raise OutputError(f"cannot write {self.path.suffix!r} files; name the output .mp4, .mov, .mkv or .m4v")
        if int(width) < 1 or int(height) < 1:
            raise ParameterError(f"video size must be positive, got {width}x{height}")
        if not fps or float(fps) <= 0 or not math.isfinite(float(fps)):
            raise ParameterError(f"frame rate must be positive, got {fps!r}")
        if not 0 <= float(crf) <= 51:
            raise ParameterError(f"crf must be between 0 and 51, got {crf}")
        if preset not in X264_PRESETS:
            raise ParameterError(f"unknown x264 preset {preset!r}; use one of: {', '.join(X264_PRESETS)}")
        self.width, self.height, self.rate = int(width), int(height), _as_rate(fps)
        self.n_frames = 0
        self.matrix = writable_matrix(int(matrix))
        self._audio = muxable_audio(audio, audio_sr)
        self._container = None
        try:
            fd, tmp = tempfile.mkstemp(suffix=self.path.suffix, prefix=f".{self.path.stem}.", dir=self.path.parent)
        except OSError as e:
            raise OutputError(f"cannot create a file in {self.path.parent} ({e.strerror}); "
                              "check that the folder exists and is writable") from None
        os.close(fd)
        self._tmp = Path(tmp)
        try:
            opts = {"movflags": "+faststart"} if self.path.suffix.lower() != ".mkv" else {}
            self._container = av.open(tmp, "w", options=opts)
            v = self._container.add_stream("libx264", rate=self.rate)
            v.width, v.height = self.width, self.height
            v.pix_fmt = "yuv420p" if self.width % 2 == 0 and self.height % 2 == 0 else "yuv444p"
            cc = v.codec_context
            cc.colorspace = cc.color_primaries = self.matrix
            cc.color_trc = BT709 if self.matrix == BT709 else SMPTE170M  # (the same curve)
            cc.color_range = MPEG_RANGE
            v.options = {"crf": f"{float(crf):g}", "preset": str(preset)}
            params = list(TUNED_PRESET_PARAMS) if preset == TUNED_PRESET else []
            if repeatable or segment:  # with x264's macroblock-tree rate control the same frames do not always
                # encode to the same stream (measured, with one encoder thread too); without it they do, ~1.5x larger
                params.append("mbtree=0")
            if segment:  # a piece of a longer video (resumable dubs): no B-frames, so decode order = display order
                # and pieces join by shifting timestamps
                params.append("bframes=0")
            if self.width * self.height > LARGE_FRAME:  # x264 keeps ~15 frames of its own (with their half-pel
                # planes) for look-ahead and B-frames: at 4K 580 MB, 420 MB with look-ahead 5, 360 MB with 2 and one
                # B-frame (measured, veryfast crf 18, 200 frames: luma PSNR 51.80 -> 51.64 dB at a 2 % smaller file)
                params += ["rc-lookahead=2"] + ([] if segment else ["bframes=1"])
            if params:
                v.options = {**v.options, "x264-params": ":".join(params)}
            self._v = v
            self._a = AudioTrack(self._container, self._audio) if self._audio is not None else None
        except av.FFmpegError as e:
            self.abort()
            raise OutputError(f"cannot start writing {self.path} ({e}); check the preset/crf and disk space") from None
        except BaseException:
            self.abort()
            raise

    def write(self, rgb: "np.ndarray | PlanarFrame") -> None:
        if self._container is None:
            raise OutputError(f"{self.path}: writer is already closed")
        if isinstance(rgb, PlanarFrame):
            if ((rgb.width, rgb.height) == (self.width, self.height) and self._v.pix_fmt == "yuv420p"
                    and writable_matrix(rgb.colorspace) in self._same_matrix()):
                return self._encode(i420_frame(rgb.i420))
            rgb = rgb.rgb()
        rgb = np.asarray(rgb)
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ParameterError(f"frame must be uint8 of shape {(self.height, self.width, 3)}, "
                                 f"got {rgb.dtype} {rgb.shape}")
        if self._v.pix_fmt == "yuv420p":
            self._encode(i420_frame(rgb_to_i420(rgb, self.matrix)))
        else:
            yuv = np.ascontiguousarray(to_levels(rgb_to_yuv(rgb, self.matrix)).transpose(2, 0, 1))
            self._encode(av.VideoFrame.from_ndarray(yuv, format="yuv444p"))

    def encode_audio_ahead(self, frames: int, stop: Callable[[], bool] | None = None) -> None:
        """Encode the sound of the first `frames` video frames now (until `stop()` says to stop), before those frames
        come: a dub does it while it waits for its speech analysis, when a core would idle. The file is the same
        (AudioTrack.encode_ahead); `frames` must not pass the number of frames the video will have."""
        if self._a is None or self._container is None:
            return
        try:
            self._a.encode_ahead(round(frames * AAC_SR / self.rate), stop)
        except av.FFmpegError as e:
            raise OutputError(f"encoding the sound of {self.path} failed ({e}); is the audio file readable?") from None

    def _same_matrix(self) -> tuple[int, ...]:
        return (BT709,) if self.matrix == BT709 else (5, SMPTE170M)

    def _encode(self, f) -> None:
        f.pts, f.time_base = self.n_frames, 1 / self.rate
        try:
            self._mux(self._v.encode(f))
            self.n_frames += 1
            self._send_audio(final=False)
        except av.FFmpegError as e:
            raise OutputError(f"encoding {self.path} failed ({e}); check disk space and the encoder options") from None

    def _send_audio(self, final: bool):
        if self._a is not None:
            self._mux(self._a.packets(round(self.n_frames * AAC_SR / self.rate), final))

    def _mux(self, packets):
        for p in packets:
            self._container.mux(p)

    def close(self) -> None:
        if self._container is None:
            return
        try:
            if self.n_frames == 0:
                raise OutputError(f"no frames were written to {self.path}; nothing to save")
            self._mux(self._v.encode(None))
            self._send_audio(final=True)
            self._container.close()
            self._container = None
            publish(self._tmp, self.path)
        except (av.FFmpegError, OSError) as e:
            self.abort()
            raise OutputError(f"could not write {self.path} ({e}); check free disk space and permissions") from None
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # the file is discarded anyway
                pass
            self._container = None
        if isinstance(self._audio, AudioFile):
            self._audio.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):
        if getattr(self, "_container", None) is not None:
            self.abort()


def i420_frame(i420: np.ndarray):
    """A yuv420p VideoFrame over the pixels of `i420` (H * 3/2 rows, even sides) without copying them: x264 copies
    the picture it is given before encode() returns, and a copy here cost 0.7 ms per 720p frame (measured)."""
    if i420.shape[0] % 6:
        # PyAV 18 derives the height as rows // 6 * 4: a height that is not a multiple of 4 (a 98x66 photo) would be
        # cut to the next lower one and the chroma planes read from the wrong rows; from_ndarray copies them right
        return av.VideoFrame.from_ndarray(i420, format="yuv420p")
    return av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(i420), format="yuv420p")


def join_segments(segments: list, path, fps: float, audio=None, audio_sr: int = SR) -> int:
    """Write the video pieces `segments` (VideoWriter(segment=True) files, in order) one after the other into `path`
    without re-encoding, with `audio` (array or file path, as VideoWriter's) muxed alongside; atomic like VideoWriter.
    Returns the number of frames."""
    path = Path(path)
    rate = _as_rate(fps)
    audio = muxable_audio(audio, audio_sr)
    try:
        with atomic_path(path) as tmp:
            opts = {"movflags": "+faststart"} if path.suffix.lower() != ".mkv" else {}
            out = av.open(str(tmp), "w", options=opts)
            try:
                frames = _join_into(out, segments, path, rate, audio)
                out.close()
            except BaseException:
                try:
                    out.close()
                except Exception:  # discarded anyway
                    pass
                raise
        return frames
    except (av.FFmpegError, OSError) as e:
        raise OutputError(f"could not write {path} ({e}); check free disk space and permissions") from None
    finally:
        if isinstance(audio, AudioFile):
            audio.close()


def _join_into(out, segments: list, path: Path, rate: Fraction, audio) -> int:
    """join_segments' muxing into the open container `out`; returns the number of frames."""
    frames = 0
    v_out = a_out = None
    for seg in segments:
        with av.open(str(seg)) as c:
            s_in = c.streams.video[0]
            if v_out is None:
                v_out = out.add_stream_from_template(s_in)
                a_out = AudioTrack(out, audio) if audio is not None else None
            tb = s_in.time_base
            shift = int(round(frames / rate / tb))  # this piece starts where the previous ones end
            n = 0
            for pkt in c.demux(s_in):
                if pkt.dts is None:
                    continue
                pkt.pts += shift
                pkt.dts += shift
                pkt.stream = v_out
                out.mux(pkt)
                n += 1
            frames += n
            if a_out is not None:
                out.mux(list(a_out.packets(round(frames * AAC_SR / rate), final=False)))
    if v_out is None or frames == 0:
        raise OutputError(f"no frames to write to {path}")
    if a_out is not None:
        out.mux(list(a_out.packets(round(frames * AAC_SR / rate), final=True)))
    return frames
