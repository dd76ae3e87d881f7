"""Actor profiles: one actor learned from their own footage, reused to dub any shot of them.

A profile is a single versioned file (`actor.lipdub`, a NumPy archive) holding
- the actor's pose-normalised lower-face atlas: every usable footage frame (frontal enough, sharp, mouth not covered)
  as a JPEG crop with its landmarks, mouth descriptors, teeth visibility and head pose;
- the actor's mouth-shape space: rest width, wide-open opening, mean face;
- the actor's articulation, learned from the footage's own audio against the filmed mouth: a calibration of the
  generic opening model (gain, offset and a small ridge correction on the audio features) and per-phone width and
  teeth visibility. Each learned part is kept only if it predicts the footage better than the generic model on held-out
  halves of the footage (two-fold, in time); `lipdub profile info` prints those scores.

Dubbing with a profile draws the mouths from the profile's atlas instead of the shot itself (the shot only gives head
pose and the frame to paint into) and turns the new audio into this actor's mouth motion.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from lipdub import face as F
from lipdub import media, motion, render, speech
from lipdub.errors import InputError, OutputError, ParameterError

log = logging.getLogger("lipdub")

FORMAT = "lipdub-profile"
VERSION = 1
MAX_YAW_PITCH = 0.45  # sin of the head's turn/tilt beyond which a frame is not frontal enough (~27°)
BUDGET_BYTES = 320 << 20
RIDGE_LAMBDAS = (30.0, 100.0, 300.0, 1000.0, 3000.0)  # regularisation tried (held-out halves choose)  # atlas size in memory; longer footage is thinned evenly beyond it

Progress = Callable[[str, int, int], None]


# ---------------------------------------------------------------------------------------------------- articulation

@dataclass
class Articulation:
    """This actor's mouth as a function of speech, relative to the generic motion model.

    opening' = offset + gain * opening + features @ ridge   (where the generic track speaks; closures stay shut)
    width'   = per-phone mean width of the actor where seen often enough, else the generic width
    teeth    = per-phone mean teeth visibility of the actor (drives atlas selection)"""

    gain: float = 1.0
    offset: float = 0.0
    ridge: np.ndarray | None = None  # (F + 1,) correction on motion.model_features at frame times; [0] = bias
    phone_width: dict = field(default_factory=dict)  # label -> mean width in motion units (-1 round .. +1 spread)
    phone_teeth: dict = field(default_factory=dict)  # label -> mean teeth visibility (atlas units)
    teeth_by_opening: np.ndarray | None = None  # (B,) mean teeth visibility per opening bin (0..1.2)
    scores: dict = field(default_factory=dict)  # held-out r of each variant on the footage

    def apply(self, mouth: motion.MouthTrack, speech_track) -> motion.MouthTrack:
        """The generic mouth track turned into this actor's."""
        o = mouth.opening.astype(np.float64)
        speaking = (o > 0) & ~mouth.closed
        adj = self.offset + self.gain * o
        if self.ridge is not None:
            x = frame_features(speech_track, mouth.times)
            adj = adj + x @ self.ridge[1:] + self.ridge[0]
        o = np.where(speaking, np.clip(adj, 0.0, 1.2), o)
        w = mouth.width.astype(np.float64)
        if self.phone_width:
            labels = phone_labels(speech_track, mouth.times)
            actor_w = np.array([self.phone_width.get(lab, np.nan) for lab in labels])
            w = np.where(np.isfinite(actor_w) & speaking, 0.5 * w + 0.5 * np.nan_to_num(actor_w), w)
        return motion.MouthTrack(mouth.times, o.astype(np.float32), np.clip(w, -1, 1).astype(np.float32),
                                 mouth.closed)

    def teeth(self, mouth: motion.MouthTrack, speech_track) -> np.ndarray | None:
        """Wanted teeth visibility per frame: the actor's per-phone mean, scaled by how open the mouth is."""
        if self.teeth_by_opening is None:
            return None
        bins = len(self.teeth_by_opening)
        by_open = self.teeth_by_opening[np.clip((mouth.opening / 1.2 * bins).astype(int), 0, bins - 1)]
        if not self.phone_teeth:
            return by_open
        labels = phone_labels(speech_track, mouth.times)
        base = float(np.mean(list(self.phone_teeth.values()))) or 1e-6
        factor = np.array([self.phone_teeth.get(lab, base) / base for lab in labels])
        return by_open * np.clip(factor, 0.3, 2.5)

    def to_arrays(self) -> dict:
        return {"art_json": np.array(json.dumps({
            "gain": self.gain, "offset": self.offset, "phone_width": self.phone_width,
            "phone_teeth": self.phone_teeth, "scores": self.scores})),
            "art_ridge": self.ridge if self.ridge is not None else np.zeros(0),
            "art_teeth_by_opening": self.teeth_by_opening if self.teeth_by_opening is not None else np.zeros(0)}

    @classmethod
    def from_arrays(cls, z) -> "Articulation":
        d = json.loads(str(z["art_json"]))
        ridge = np.asarray(z["art_ridge"], np.float64)
        tbo = np.asarray(z["art_teeth_by_opening"], np.float64)
        return cls(float(d["gain"]), float(d["offset"]), ridge if ridge.size else None, dict(d["phone_width"]),
                   dict(d["phone_teeth"]), tbo if tbo.size else None, dict(d.get("scores", {})))


def frame_features(speech_track, times: np.ndarray) -> np.ndarray:
    """The learned model's audio features, sampled at frame times (zeros past the audio's end)."""
    x = motion.model_features(speech_track)
    idx = np.round(np.asarray(times) / speech_track.hop).astype(int)
    out = x[np.clip(idx, 0, len(x) - 1)]
    out[(idx < 0) | (idx >= len(x))] = 0.0
    return out


def phone_labels(speech_track, times: np.ndarray) -> list[str]:
    """Phone label at each time ('' where none)."""
    phones = speech_track.phones
    starts = np.array([p.start for p in phones]) if phones else np.zeros(0)
    out = []
    for t in np.asarray(times, np.float64):
        k = int(np.searchsorted(starts, t, side="right")) - 1
        out.append(phones[k].label.upper().rstrip("012") if 0 <= k < len(phones) and t < phones[k].end else "")
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def learn_articulation(samples: list[dict], open_max: float) -> Articulation:
    """Fit the actor's articulation from footage samples.

    samples: per clip {"speech": SpeechTrack, "times": (T,), "opening": (T,) filmed canonical opening (NaN where no
    face), "width": (T,) filmed canonical width, "teeth": (T,) teeth visibility (NaN where unknown)}."""
    gen, real, feats, labels, widths, teeth, halves = [], [], [], [], [], [], []
    rest_w = []
    for s in samples:
        mouth = motion.mouth_track(s["speech"], s["times"])
        ok = np.isfinite(s["opening"])
        speaking = (mouth.opening > 0) & ~mouth.closed & ok
        if speaking.sum() < 25:
            continue
        gen.append(mouth.opening[speaking].astype(np.float64))
        real.append(s["opening"][speaking] / open_max)
        feats.append(frame_features(s["speech"], s["times"])[speaking])
        labels += [lab for lab, k in zip(phone_labels(s["speech"], s["times"]), speaking) if k]
        widths.append(s["width"][speaking])
        teeth.append(s["teeth"][speaking])
        idx = np.flatnonzero(speaking)
        halves.append((idx >= np.median(idx)).astype(int))
        rest = s["width"][ok & (s["opening"] < 0.03)]
        rest_w.append(rest)
    art = Articulation()
    if not gen:
        log.warning("the footage's speech is too short to learn this actor's articulation; using the generic one")
        return art
    g, y, x = np.concatenate(gen), np.concatenate(real), np.concatenate(feats)
    half = np.concatenate(halves)
    w_all, t_all = np.concatenate(widths), np.concatenate(teeth)
    labels = np.array(labels)

    def fit(train, variant):
        gain, off = np.polyfit(g[train], y[train], 1)
        ridge = None
        if variant.startswith("ridge"):
            ridge_lambda = float(variant[5:])
            resid = y[train] - (off + gain * g[train])
            xm = x[train].mean(0)
            xs = x[train].std(0) + 1e-6
            z = (x[train] - xm) / xs
            wz = np.linalg.solve(z.T @ z + ridge_lambda * np.eye(z.shape[1]), z.T @ (resid - resid.mean()))
            w = wz / xs
            ridge = np.concatenate([[resid.mean() - xm @ w], w])
        return gain, off, ridge

    def predict(params, test):
        gain, off, ridge = params
        p = off + gain * g[test]
        if ridge is not None:
            p = p + x[test] @ ridge[1:] + ridge[0]
        return np.clip(p, 0, 1.2)

    scores = {"generic": np.mean([_pearson(g[half == h], y[half == h]) for h in (0, 1)])}
    variants = ["linear"] + [f"ridge{lam:g}" for lam in RIDGE_LAMBDAS]
    for variant in variants:
        rs = []
        for h in (0, 1):
            rs.append(_pearson(predict(fit(half != h, variant), half == h), y[half == h]))
        scores[variant] = float(np.mean(rs))
    best = max(scores, key=lambda v: scores[v])
    if best != "generic":
        art.gain, art.offset, art.ridge = fit(np.ones(len(g), bool), best)
    ridge_best = max((v for v in scores if v.startswith("ridge")), key=lambda v: scores[v])
    art.scores = {"generic": round(float(scores["generic"]), 4), "linear": round(float(scores["linear"]), 4),
                  "ridge": round(float(scores[ridge_best]), 4), "chosen": best, "frames": int(len(g))}

    # per-phone width (motion units: relative change of the rest width / 0.12) and teeth
    rest = float(np.median(np.concatenate(rest_w))) if sum(len(r) for r in rest_w) >= 10 else float(np.median(w_all))
    w_units = (w_all / max(rest, 1e-6) - 1) / 0.12
    for lab in set(labels) - {"", "SIL"}:
        sel = labels == lab
        if sel.sum() >= 8:
            art.phone_width[lab] = round(float(np.clip(np.median(w_units[sel]), -1, 1)), 4)
            tt = t_all[sel]
            tt = tt[np.isfinite(tt)]
            if len(tt) >= 5:
                art.phone_teeth[lab] = round(float(np.mean(tt)), 4)
    ok_t = np.isfinite(t_all)
    if ok_t.sum() >= 30:
        bins = 12
        b = np.clip((y[ok_t] / 1.2 * bins).astype(int), 0, bins - 1)
        means = np.array([t_all[ok_t][b == i].mean() if (b == i).sum() >= 3 else np.nan for i in range(bins)])
        # fill empty bins from their neighbours, teeth never shrink as the mouth opens further
        valid = np.isfinite(means)
        means = np.interp(np.arange(bins), np.flatnonzero(valid), means[valid]) if valid.any() else None
        art.teeth_by_opening = None if means is None else np.maximum.accumulate(means)
    return art


# ---------------------------------------------------------------------------------------------------- profile

@dataclass
class Profile:
    atlas: render.Atlas
    model: render.MouthModel
    articulation: Articulation
    meta: dict

    def info(self) -> str:
        m, a, art = self.meta, self.atlas, self.articulation
        lines = [f"lipdub actor profile v{m.get('version')}, built {m.get('created', '?')} by lipdub "
                 f"{m.get('lipdub', '?')}"]
        rejected = ", ".join(f"{why} {n}" for why, n in m.get("rejected", {}).items() if n) or "none"
        lines.append(f"footage: {len(m.get('sources', []))} clip(s), {m.get('seconds', 0) / 60:.2f} min, "
                     f"{m.get('frames', 0)} frames tracked, {a.n} kept in the atlas (rejected: {rejected})")
        for s in m.get("sources", []):
            lines.append(f"  {s['name']}: {s['seconds']:.1f} s, {s['kept']} of {s['frames']} frames kept")
        d = render.descriptors(a.norm) if a.n else np.zeros((0, 2))
        if len(d):
            op = d[:, 0] / self.model.open_max
            hist = np.histogram(np.clip(op, 0, 1.2), bins=[0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.21])[0]
            lines.append("frames per mouth opening (fraction of wide-open): " + ", ".join(
                f"{lo:.1f}-{hi:.1f}: {n}" for lo, hi, n in zip([0, .1, .3, .5, .7, .9], [.1, .3, .5, .7, .9, 1.2],
                                                               hist)))
            teeth = a.teeth
            lines.append(f"teeth visible in {np.mean(teeth > 0.5) * 100:.0f}% of atlas frames; "
                         f"head turn range sin(yaw) {a.pose_feat[:, 0].min():+.2f}..{a.pose_feat[:, 0].max():+.2f}")
        lines.append(f"mouth shape: wide-open {self.model.open_max:.3f}, rest width {self.model.rest_width:.3f} "
                     "(eye-corner distance = 1)")
        sc = art.scores
        if sc:
            lines.append(f"articulation: {sc.get('chosen')} (held-out r on the footage: generic "
                         f"{sc.get('generic', 0):.3f}, linear {sc.get('linear', 0):.3f}, ridge {sc.get('ridge', 0):.3f}; "
                         f"{sc.get('frames', 0)} speaking frames), {len(art.phone_width)} phones with own width/teeth")
        else:
            lines.append("articulation: generic (the footage had too little speech to learn from)")
        size = m.get("bytes")
        if size:
            lines.append(f"size: {size / 1e6:.1f} MB")
        return "\n".join(lines)

    def save(self, path) -> Path:
        path = Path(path)
        if path.suffix == "":
            path = path.with_suffix(".lipdub")
        if not path.resolve().parent.is_dir():
            raise OutputError(f"cannot write the profile: folder {path.parent} does not exist")
        arrays = self.atlas.to_arrays(with_jpeg=False)
        arrays.update(self.articulation.to_arrays())
        arrays["model"] = np.array([self.model.open_max, self.model.rest_width])
        arrays["meta"] = np.array(json.dumps(self.meta))
        arrays["format"] = np.array(FORMAT)
        arrays["version"] = np.array(VERSION)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.resolve().parent)
        os.close(fd)
        try:
            render.write_npz(tmp, arrays, {"atlas_jpeg": self.atlas.jpeg})
            media.publish(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise OutputError(f"cannot write the profile {path}: {exc.strerror or exc}") from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.meta["bytes"] = path.stat().st_size
        return path


def load(path) -> Profile:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"profile {path} not found; build one with `lipdub profile build FOOTAGE... -o {path}`")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "format" not in z.files or str(z["format"]) != FORMAT:
                raise InputError(f"{path} is not a lipdub actor profile")
            if int(z["version"]) != VERSION:
                raise InputError(f"{path} is a version {int(z['version'])} profile; this lipdub reads version "
                                 f"{VERSION}: rebuild it with `lipdub profile build`")
            atlas = render.Atlas.from_arrays(z)
            art = Articulation.from_arrays(z)
            open_max, rest_width = (float(v) for v in z["model"])
            meta = json.loads(str(z["meta"]))
    except InputError:
        raise
    except Exception as exc:  # a truncated or foreign file
        raise InputError(f"cannot read profile {path} ({type(exc).__name__}: {exc}); rebuild it") from exc
    meta["bytes"] = path.stat().st_size
    return Profile(atlas, render.MouthModel(atlas.canonical, open_max, rest_width), art, meta)


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
    from concurrent.futures import ThreadPoolExecutor

    from lipdub.pipeline import DubOptions, load_track

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
        samples, _ = media.load_audio(paths[k], 16000)
        return speech.analyse(samples, 16000) if len(samples) >= 1600 else None

    tracks = []
    with ThreadPoolExecutor(1, thread_name_prefix="lipdub-speech") as pool:
        futures = [pool.submit(analyse, k) for k in range(len(paths))]
        for p, info in zip(paths, infos):
            tracks.append(load_track(p, info, DubOptions(cache=cache), progress))
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

    # quality: drop motion-blurred mouths and mouths whose lip colour is off (a hand, a microphone in front)
    sharp = atlas.sharpness
    blurred = sharp < 0.35 * np.median(sharp)
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
    from lipdub.core import VERSION as __version__

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
