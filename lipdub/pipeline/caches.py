"""What the pipeline keeps in the cache besides face tracks (lipdub.face.cached): the clip's own mouth atlas, cut
along its face track and keyed by the same face choice."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
from pathlib import Path

import numpy as np

from lipdub import face, media, render
from lipdub.core.progress import Progress
from lipdub.face import cached
from lipdub.options import OPTIONS, DubOptions
from lipdub.pipeline.speaker import mouth_from_sound
from lipdub.render.interior import GAP_MEASURE_VERSION

log = logging.getLogger("lipdub")

# The clip's own mouth atlas: by Atlas.bytes_per_entry's estimate (real JPEGs come out ~25 % smaller). 200 MB hold
# ~2,300 frames of a face at the atlas's largest scale (90 s at 25 fps, every frame); longer clips give every 2nd,
# 3rd... frame. Was 300 MB: lowered so a 1080p hour renders within 1 GB beside x264's ~180 MB.
OWN_ATLAS_BYTES = 200 << 20

ATLAS_CACHE_VERSION = 3  # 2: entries store the region as filmed (render.atlas.Atlas.filmed); 3: with gap lightness


def _choice_key(opts: DubOptions) -> dict:
    """What the face choice also depends on: --speaker auto compares the faces with the --motion-model's mouth
    (the default model keeps the cache keys it always had)."""
    if opts.speaker == "auto" and opts.motion_model != OPTIONS["motion_model"].default:
        return {"motion_model": opts.motion_model}
    return {}


def load_track(video: Path, info: media.VideoInfo, opts: DubOptions, progress: Progress | None) -> face.FaceTrack:
    """The face track of `video` for the face choice in `opts`, through the cache (see lipdub.face.cached)."""
    return cached.load_track(video, info, opts.face_index, opts.face_box, opts.speaker, opts.cache, progress,
                             functools.partial(mouth_from_sound, motion_model=opts.motion_model),
                             key=_choice_key(opts))


def passes_read_once(video: Path, info: media.VideoInfo, opts: DubOptions):
    """A context for load_track and own_renderer: where the video is still to be tracked, its survey's decoded frames
    are kept (media.frames_held, when they fit) and the tracking and atlas passes read them instead of decoding
    again. Nothing is kept when the track comes from the cache (the atlas alone reads the video once)."""
    tracked = opts.cache and cached.track_file(video, info, opts.face_index, opts.face_box, opts.speaker,
                                               _choice_key(opts)).is_file()
    return contextlib.nullcontext() if tracked else media.frames_held(video, info)


def track_fingerprint(track: face.FaceTrack) -> str:
    h = hashlib.sha256(np.ascontiguousarray(track.valid).data)
    h.update(face.take_rows(track.landmarks, np.arange(0, len(track), 97)).data)  # a sample: an hour's is 500 MB
    return h.hexdigest()


def own_renderer(video: Path, info: media.VideoInfo, track: face.FaceTrack, opts: DubOptions,
                 progress: Progress | None) -> render.Renderer:
    """The clip as its own appearance source, its atlas from the cache when this video was prepared before with
    the same face track (building it reads the whole video again, from the tracking's frames where
    passes_read_once kept them)."""
    cache_file = cached.cache_file("atlases", video, opts.face_index, opts.face_box, opts.speaker,
                                   atlas_bytes=OWN_ATLAS_BYTES, version=ATLAS_CACHE_VERSION,
                                   **cached.scaled_key(info), **_choice_key(opts))
    fingerprint = track_fingerprint(track) if opts.cache else ""
    atlas = load_cached_atlas(cache_file, fingerprint, stored=True) if opts.cache else None
    if atlas is not None:
        log.info("mouth atlas from cache %s", cache_file)
        renderer = render.Renderer(atlas, track, face.estimate_pose(track, atlas.canonical),
                                   filmed=render.own_times(atlas, track, OWN_ATLAS_BYTES))
        renderer.gap.remember(load_cached_gaps(cache_file))
        return renderer
    renderer = render.Renderer.for_video(video, info, track, progress, budget_bytes=OWN_ATLAS_BYTES)
    if opts.cache:
        save_cached_atlas(cache_file, renderer.atlas, {"track_fingerprint": np.array(fingerprint),
                                                       **gap_arrays(renderer.gap.measured(renderer.atlas_open))})
        # the crops just written are read from the file from now on: out of memory before the render (4K, 71 s:
        # 117 MB)
        saved = load_cached_atlas(cache_file, fingerprint, stored=True)
        if saved is not None and saved.n == renderer.atlas.n:
            renderer.atlas.jpeg = saved.jpeg
    return renderer


def load_cached_atlas(cache_file: Path, fingerprint: str | None = None, stored: bool = False
                      ) -> render.Atlas | None:
    """The atlas kept in `cache_file`; None when there is none, it is damaged or stale, or (given `fingerprint`) it
    was cut along another face track: the caller builds it again. `stored`: its crops stay in the file and are read
    when decoded (render.atlas.StoredCrops), for an atlas that is only drawn from, never grown."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as z:
            if fingerprint is None or str(z["track_fingerprint"]) == fingerprint:
                return render.Atlas.from_arrays(z, path=cache_file if stored else None)
    except Exception:  # stale or damaged cache
        pass
    return None


def gap_arrays(measured: dict[int, float]) -> dict[str, np.ndarray]:
    """Entries' gap lightness (render.interior.GapMatch.measured) as the atlas cache's arrays."""
    entries = np.array(sorted(measured), np.int64)
    return {"gap_entries": entries, "gap_lightness": np.array([measured[a] for a in entries], np.float64),
            "gap_version": np.array(GAP_MEASURE_VERSION)}


def load_cached_gaps(cache_file: Path) -> dict[int, float]:
    """The entries' gap lightness kept with a cached atlas; none from an archive without them or measured by another
    GAP_MEASURE_VERSION (the renderer measures them when it needs them)."""
    try:
        with np.load(cache_file, allow_pickle=False) as z:
            if "gap_version" not in z.files or int(z["gap_version"]) != GAP_MEASURE_VERSION:
                return {}
            return dict(zip(z["gap_entries"].tolist(), z["gap_lightness"].tolist()))
    except Exception:  # damaged or replaced meanwhile: measured again
        return {}


def save_cached_atlas(cache_file: Path, atlas: render.Atlas, extra: dict | None = None) -> None:
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        atlas.save(cache_file, extra)
    except OSError as exc:  # a read-only or full cache must not stop the dub
        log.warning("could not cache the mouth atlas: %s", exc)
