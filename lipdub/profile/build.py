"""Building a profile: every footage clip tracked (beside its own speech analysis), its usable frames (frontal
enough, sharp, mouth not covered) kept in one pose-normalised atlas within a memory budget, and the actor's
articulation learned from the footage's audio."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from lipdub.core.progress import Progress
from lipdub.core.constants import SR
from lipdub import face as F
from lipdub import media, render, speech
from lipdub.core import VERSION as __version__
from lipdub.errors import InputError, ParameterError
from lipdub.face.cached import load_track
from lipdub.profile.articulation import Articulation, learn_articulation
from lipdub.profile.file import FORMAT, VERSION, Profile
from lipdub.render.selection import typical_sharpness

log = logging.getLogger("lipdub")

MAX_YAW_PITCH = 0.45  # sin of the head's turn/tilt beyond which a frame is not frontal enough (~27°)
BUDGET_BYTES = 320 << 20  # atlas size in memory; longer footage is thinned evenly beyond it



def _subsample(track: F.FaceTrack, n: int) -> F.FaceTrack:
    idx = np.flatnonzero(track.valid)
    idx = idx[:: max(1, len(idx) // max(n, 1))]
    return F.FaceTrack(track.times[idx], track.landmarks[idx], track.valid[idx], track.width, track.height)


def _concat_tracks(tracks: Sequence[F.FaceTrack]) -> F.FaceTrack:
    return F.FaceTrack(np.concatenate([t.times for t in tracks]), np.concatenate([t.landmarks for t in tracks]),
                       np.concatenate([t.valid for t in tracks]), tracks[0].width, tracks[0].height)


def build(footage: Sequence, progress: Progress | None = None, cache: bool = True, learn: bool = True,
          budget_bytes: int = BUDGET_BYTES) -> Profile:
    """Track every footage clip, keep its usable frames in one atlas and learn the actor's articulation."""
    paths = [Path(p) for p in footage]
    if not paths:
        raise ParameterError("give at least one footage clip of the actor")
    for p in paths:
        if not p.is_file():
            raise InputError(f"footage file not found: {p}")
    t0 = time.perf_counter()
    infos = [media.probe_video(p) for p in paths]
    for p, info in zip(paths, infos):
        if info.is_image:
            raise InputError(f"{p} is a still image; a profile learns from video footage of the actor")

    # tracking (two threads) and the footage's own speech analysis overlap
    speeches: list = [None] * len(paths)

    def analyse(k: int):
        if not learn or not infos[k].has_audio:
            return None
        samples, _ = media.load_audio(paths[k], SR)
        return speech.analyse(samples, SR) if len(samples) >= 1600 else None

    tracks = []
    with ThreadPoolExecutor(1, thread_name_prefix="lipdub-speech") as pool:
        futures = [pool.submit(analyse, k) for k in range(len(paths))]
        for p, info in zip(paths, infos):
            tracks.append(load_track(p, info, cache=cache, progress=progress))
        speeches = [f.result() for f in futures]
    t_track = time.perf_counter() - t0
    if not any(t.valid.any() for t in tracks):
        raise InputError("no face found in the footage; give clips where the actor's face is visible")

    canonical = F.canonical_shape(_concat_tracks([_subsample(t, 400 // len(tracks) + 1) for t in tracks
                                                  if t.valid.any()]))
    poses = [F.estimate_pose(t, canonical) for t in tracks]
    scales = np.concatenate([ps.scale[t.valid] for ps, t in zip(poses, tracks)])
    atlas = render.Atlas(canonical, float(np.median(scales)))
    n_usable = 0
    keeps, rejected = [], {"no face": 0, "turned away": 0}
    for t, ps in zip(tracks, poses):
        feat = ps.rotation[:, :2, 2]
        frontal = np.all(np.abs(feat) < MAX_YAW_PITCH, axis=1)
        keep = t.valid & frontal
        rejected["no face"] += int((~t.valid).sum())
        rejected["turned away"] += int((t.valid & ~frontal).sum())
        keeps.append(keep)
        n_usable += int(keep.sum())
    stride = max(1, int(np.ceil(n_usable * atlas.bytes_per_entry() / budget_bytes)))
    if stride > 1:
        log.warning("footage is long: keeping every %d. frame in the profile (memory budget %d MB)", stride,
                    budget_bytes >> 20)
    sources, samples, seq_offset, frames_total = [], [], 0, 0
    entry_clip, filmed = [], []
    for k, (p, keep) in enumerate(zip(paths, keeps)):
        t, ps = tracks[k], poses[k]
        before = atlas.n
        render.fill_atlas_in_halves(atlas, p, t, ps, seq_offset, keep, stride, progress)
        entry_clip += [k] * (atlas.n - before)
        seq_offset += len(t) // stride + 10  # no run continues across clips
        frames_total += len(t)
        sources.append({"name": p.name, "frames": len(t), "seconds": round(len(t) / infos[k].fps, 3),
                        "kept": atlas.n - before})
        # what articulation learning needs of this clip, then its track is let go (memory stays bounded by the
        # atlas budget, not by minutes of footage)
        d = render.descriptors(F.normalised_landmarks(t, ps)) if learn else np.zeros((len(t), 2))
        filmed.append((np.where(t.valid, d[:, 0], np.nan), d[:, 1], t.times - (t.times[0] if len(t) else 0.0)))
        tracks[k] = poses[k] = None
    if atlas.n == 0:
        raise InputError("no usable frames in the footage (faces too turned away); give frontal footage")
    t_atlas = time.perf_counter() - t0 - t_track

    # quality: drop motion-blurred mouths (against the mouths of the same opening: a shut mouth shows less detail
    # than an open one) and mouths whose lip colour is off (a hand, a microphone in front)
    sharp = atlas.sharpness
    blurred = sharp < 0.35 * typical_sharpness(sharp, render.descriptors(atlas.norm)[:, 0])
    covered = _occluded(atlas)
    keep_entries = ~(blurred | covered)
    rejected["blurred"] = int(blurred.sum())
    rejected["mouth covered"] = int((covered & ~blurred).sum())
    if keep_entries.sum() >= 10:
        entry_clip = np.array(entry_clip)[keep_entries]
        atlas = atlas.select(keep_entries)
        for k, s in enumerate(sources):
            s["kept"] = int((entry_clip == k).sum())
    model = render.build_mouth_model(canonical, atlas.norm, np.ones(atlas.n, bool))

    art = Articulation()
    if learn:
        # filmed opening/width per footage frame (pose-free), teeth where the frame is in the atlas
        seq = atlas.seq
        offset = 0
        for k, (opening, width, times) in enumerate(filmed):
            n = len(opening)
            if speeches[k] is not None:
                teeth = np.full(n, np.nan)
                mine = (seq >= offset) & (seq < offset + n // stride + 1)
                frames = (seq[mine] - offset) * stride
                ok = frames < n
                teeth[frames[ok]] = atlas.teeth[mine][ok]
                samples.append({"speech": speeches[k], "times": times, "opening": opening, "width": width,
                                "teeth": teeth})
            offset += n // stride + 10
        art = learn_articulation(samples, model.open_max)
    meta = {"format": FORMAT, "version": VERSION, "lipdub": __version__,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"), "sources": sources, "frames": frames_total,
            "seconds": round(sum(s["seconds"] for s in sources), 3), "stride": stride, "rejected": rejected,
            "build_seconds": round(time.perf_counter() - t0, 2), "track_seconds": round(t_track, 2),
            "atlas_seconds": round(t_atlas, 2)}
    return Profile(atlas, model, art, meta)


def _occluded(atlas: render.Atlas) -> np.ndarray:
    """Entries whose lip colour is far from the actor's typical lips (robust z-score in LAB): a hand or a
    microphone in front of the mouth."""
    cols = atlas.lip_lab.astype(np.float64)
    med = np.median(cols, axis=0)
    mad = np.median(np.abs(cols - med), axis=0) * 1.4826 + 2.0
    return (np.abs(cols - med) / mad).max(axis=1) > 6.0
