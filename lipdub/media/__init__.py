"""Video/audio I/O, in-process with PyAV: probing, streaming decode, bounded random access, atomic H.264+AAC writing.

Conventions:
- Frame indices are 0-based in presentation order of the frames the decoder actually produces.
- `rotation` is the display-matrix rotation in counter-clockwise degrees, normalised to 0/90/180/270; frames are
  returned upright (np.rot90 applied). EXIF orientation of JPEG/WebP photos arrives the same way. Mirrored
  orientations (EXIF 2/4/5/7) are treated as their rotation only: PyAV exposes only the rotation component.
- Width/height are stored pixels after rotation; a non-square sample aspect ratio is not resampled.
- Colours: YUV is read in its tagged matrix and range; untagged, as BT.709 when the frame is HD (>= 1280 wide or
  >= 720 high), else BT.601 (what players assume). Output is limited range in the source's matrix (BT.601 or BT.709;
  BT.709 for anything else) and tagged so; reading and writing use the same exact matrices (media.colour).

Modules:
- probe: `open_input` (one local media file, nothing it names), `probe_video` → `VideoInfo`, `is_image_path`,
  `photo_size` (a photo's output size under --max-size), `stream_starts`, `check_output_path`; the low-level
  `video_stream` and `decode_frames`
- frames: `Frame`, `PlanarFrame` (YUV as decoded), `blend` (an in-between frame), `iter_frames`
  (`beside_decoder_threads`, `shared_decoder`; `frames_held` (held): the first pass's decoded frames read by the
  passes after it, or where they do not fit, its FrameIndex to seek by), `FrameReader` (random access), `photo_rgb` (a large photo decoded once and scaled down to its output
  size)
- colour: which matrix a frame is in (`matrix_of`) and the RGB <-> YUV conversions
- audio: `load_audio`, `audio_blocks`, `video_audio`, `AudioFile`, and the AAC track a written video carries
- writing: `VideoWriter`, `join_segments` (temporary file beside the output, moved over it when complete)
- background: `BackgroundWriter` (encoding on a second thread)
- schedule: `output_schedule`, `POLICIES` (which source frame each output frame shows)
- retime: `fit_schedule`, `FitPlan` (--length fit: new phrases where the original's were, pauses absorbing the rest)
- mixing: `mix` (several voices as one sound track)
- sources: live sources (files at real-time pace, pipes, capture devices)
"""

from lipdub.core.files import publish
from lipdub.media.audio import AAC_SR, AudioFile, audio_blocks, load_audio, video_audio
from lipdub.media.frames import (Frame, FrameReader, PlanarFrame, beside_decoder_threads, blend, iter_frames,
                                 passes_as_decoded, photo_rgb, shared_decoder, to_rgb)
from lipdub.media.held import frames_held
from lipdub.media.probe import (IMAGE_FPS, IMAGE_SUFFIXES, VIDEO_OUT_SUFFIXES, VideoInfo, check_output_path,
                                decode_frames, input_options, is_image_path, open_input, photo_size, probe_video,
                                quarter_turns, stream_starts, video_stream)
from lipdub.media.mixing import mix
from lipdub.media.retime import FitPlan, fit_schedule
from lipdub.media.schedule import POLICIES, output_schedule
from lipdub.media.writing import X264_PRESETS, VideoWriter, join_segments

__all__ = [
    "AAC_SR", "AudioFile", "FitPlan", "Frame", "FrameReader", "IMAGE_FPS", "IMAGE_SUFFIXES", "POLICIES", "PlanarFrame",
    "blend", "fit_schedule", "frames_held", "mix",
    "VIDEO_OUT_SUFFIXES", "VideoInfo", "VideoWriter", "X264_PRESETS", "audio_blocks", "check_output_path",
    "beside_decoder_threads", "decode_frames", "input_options", "is_image_path", "iter_frames", "join_segments",
    "load_audio", "open_input",
    "output_schedule", "passes_as_decoded", "photo_rgb", "photo_size", "probe_video", "publish", "quarter_turns",
    "shared_decoder", "stream_starts", "to_rgb", "video_audio", "video_stream",
]
