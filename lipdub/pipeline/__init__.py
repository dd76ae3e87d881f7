"""pipeline: orchestration only. The offline dub runs the stages in order (media → face → speech → motion → render →
compose → media) as named steps (offline.py); each stage's result is a plain value, and tracks and mouth atlases are
cached as files a later dub reuses (caches.py, lipdub.face.cached).

Public interface: `dub(video, audio, output, options, progress) -> DubReport` (`audio`: one voice, or several each
driving its own face: conversation.py), `DubOptions`, `load_track` (a video's face track through the cache), the
atlas cache (`own_renderer`, `load_cached_atlas`, `save_cached_atlas`), long
speech in pieces (speech_pieces.py), resumable and scale-out rendering in pieces (pieces.py), the --speaker auto
prediction (speaker.py) and the live engine (live.py).
"""

from lipdub.options import DubOptions
from lipdub.pipeline.caches import (ATLAS_CACHE_VERSION, OWN_ATLAS_BYTES, load_cached_atlas, load_track,
                                    own_renderer, save_cached_atlas, track_fingerprint)
from lipdub.pipeline.conversation import dub
from lipdub.pipeline.pieces import WARM_UP, render_in_pieces
from lipdub.core.progress import Progress
from lipdub.pipeline.report import DubReport
from lipdub.pipeline.speech_pieces import SPEECH_PIECE, SPEECH_SLACK, count_samples, join_speech, speech_in_pieces

__all__ = ["ATLAS_CACHE_VERSION", "DubOptions", "DubReport", "OWN_ATLAS_BYTES", "Progress", "SPEECH_PIECE",
           "SPEECH_SLACK", "WARM_UP", "count_samples", "dub", "join_speech", "load_cached_atlas", "load_track",
           "own_renderer", "render_in_pieces", "save_cached_atlas", "speech_in_pieces", "track_fingerprint"]
