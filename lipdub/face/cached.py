"""Face tracks through the cache: a video tracked once is read back on every later dub with the same face choice.

The cache file is keyed by the video's identity (path, size, modification time), TRACK_VERSION and the face choice
(face_index, face_box, and the speaker mode where it is not the default); what is cut along a track (the clip's mouth
atlas) is keyed the same way (`cache_file`). The prediction --speaker auto compares faces with (`mouth_from_sound`)
comes from the caller: the face stage never imports speech or motion.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lipdub.core.progress import Progress
from lipdub import media
from lipdub.core.cache import cache_dir
from lipdub.core.constants import SR
from lipdub.errors import InputError
from lipdub.face.speaker import MouthFromSound
from lipdub.face.track import FaceTrack, cache_key
from lipdub.face.tracking import track_frames

log = logging.getLogger("lipdub")



def cache_file(kind: str, video: Path, face_index: int | None = None, face_box=None, speaker: str = "largest",
               **more) -> Path:
    """Where the cache keeps `kind` ("tracks", "atlases") for this video and face choice."""
    keyed = {"face_index": face_index, "face_box": face_box, **more}
    if speaker != "largest":  # the default keeps the cache keys it always had
        keyed["speaker"] = speaker
    return cache_dir() / kind / f"{cache_key(video, **keyed)}.npz"


def scaled_key(info: media.VideoInfo) -> dict:
    """What a cache key adds for a photo read at another size than its own (nothing otherwise: the keys stay)."""
    return {} if info.scaled_to is None else {"size": info.scaled_to}


def track_file(video: Path, info: media.VideoInfo, face_index: int | None = None, face_box=None,
               speaker: str = "largest", key: dict | None = None) -> Path:
    """Where the cache keeps the face track load_track gives for these arguments."""
    return cache_file("tracks", video, face_index, face_box, speaker, **scaled_key(info), **(key or {}))


def load_track(video: Path, info: media.VideoInfo, face_index: int | None = None, face_box=None,
               speaker: str = "largest", cache: bool = True, progress: Progress | None = None,
               mouth_from_sound: MouthFromSound | None = None, key: dict | None = None) -> FaceTrack:
    """The speaker's face track in `video`: from the cache when it was tracked before with the same face choice,
    else tracked (and cached when `cache`). `mouth_from_sound` is needed with speaker="auto" only; `key` adds what
    else the choice depends on (the caller's motion model behind `mouth_from_sound`) to the cache key."""
    path = track_file(video, info, face_index, face_box, speaker, key)
    if cache and path.is_file():
        try:
            track = FaceTrack.load(path)
            log.info("face track from cache %s", path)
            return track
        except Exception:  # stale or damaged cache: track again
            pass
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress:
            progress("track", done[0], info.n_frames)

    own_audio = None
    if speaker == "auto" and info.has_audio and not info.is_image:
        try:
            own_audio = media.video_audio(video, SR)
        except InputError as exc:  # a damaged sound track only costs the automatic choice, not the dub
            log.warning("--speaker auto: cannot read the sound of %s (%s)", video, exc)
    scaled_to = info.scaled_to
    threads = media.beside_decoder_threads(info.width, info.height)  # the two halves decode side by side
    track = track_frames(lambda: media.iter_frames(video, scaled_to=scaled_to, threads=threads), info.width,
                         info.height, info.n_frames, info.fps, face_index=face_index, face_box_hint=face_box,
                         progress=tick, frames_from=lambda start: media.iter_frames(video, start, scaled_to, threads),
                         workers=2,
                         speaker=speaker, audio=own_audio, mouth_from_sound=mouth_from_sound)
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            track.save(path)
        except OSError as exc:  # a read-only cache must not stop the dub
            log.warning("could not cache the face track: %s", exc)
    return track
