"""Where the live (causal) motion loses to the offline one: the offline opening model's recipe taken one step at a time
towards what a stream knows, every step scored leave-one-speaker-out on the 14 filmed clips (motion alone).

    .venv/bin/python bench/causal_gap.py [--look 0.15]

Each step refits the offline opening MLP (training.fit.fit_mlp) on the other speakers' clips with that step's
inputs and scores the held-out clip through that step's post-processing:

  offline        the shipped recipe: decoded phones (dominance), clip-standardised log-mel ±120 ms, jaw, loudness,
                 voicing; motion.mouth_track (p/b/m shut, phone silences rest, 0.2 s onset lead, 0.8 s pause bridge)
  streamed       the decoded phones replaced, as inputs, by hama's streamed posteriors (every PHONE_STEP on the last
                 PHONE_WINDOW, read as live mode reads them at the look-ahead); post-processing still uses the phones
  no phones      post-processing without the decoded phones (no forced closures, no phone silences)
  lead           the onset lead cut to the look-ahead
  running norm   log-mel, loudness and voice activity as the stream computes them (running normalisation)
  bridge 0.3     pauses bridged only up to 0.3 s
  causal         everything causal: log-mel, loudness and voice taps within the look-ahead, the mouth speaks where voice
                 was heard within the last 0.3 s or is heard within the look-ahead (less the voice detector's lag),
                 no symmetric smoothing
The live system itself (bench/motion_eval.py --heldout, causal columns) scores about what the last step does.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.motion_eval import AUDIO_OF, SELF_CLIPS, SPEAKER
from lipdub import motion
from lipdub.motion import offline as motion_offline
from lipdub.core.constants import HOP_SECONDS
from training import evaluate
from training.clips import analyse_clip, clip_audio
from training.fit import fit_mlp
from training.train_causal import PHONE_STEP, PHONE_WINDOW, mel_prior, phone_runs, stream_features

HANGOVER = 0.3  # s: the causal mouth keeps talking this long after the voice was last heard


class Clip:
    def __init__(self, name, rel, rng, data: Path, look: int):
        self.name, self.group = name, SPEAKER[name]
        self.times, self.truth = evaluate.mouth_curve(data / rel, *(rng or (None, None)))
        self.audio = clip_audio(data / AUDIO_OF[rel], rng)
        self.speech = analyse_clip(data / AUDIO_OF[rel], rng)
        n = len(self.speech.voiced)
        self.streamed = motion.streamed_posteriors(phone_runs(self.audio, PHONE_STEP, PHONE_WINDOW), np.arange(n),
                                                   look)

    def running(self, prior):
        """The speech analysis with the stream's running-normalised log-mel, loudness and voice activity."""
        mel, loud, m, voiced = stream_features(self.audio, prior)
        sp = self.speech
        n = len(sp.voiced)
        m = min(m, n)
        mm, ll, vv = np.zeros_like(sp.mel), np.zeros(n, np.float32), np.zeros(n, bool)
        mm[:m], ll[:m], vv[:m] = mel[:m], loud[:m], voiced[:m]
        return replace(sp, mel=mm, loudness=ll, voiced=vv, jaw=np.zeros(n, np.float32))


def heldout_models(clips, samples: dict):
    """(clip, opening MLP fitted on the other speakers' frames) for every clip; `samples`: name -> (x, y) at frames."""
    for c in clips:
        train = [k.name for k in clips if k.group != c.group]
        yield c, fit_mlp(np.concatenate([samples[k][0] for k in train]), np.concatenate([samples[k][1] for k in train]))


def frame_samples(c: Clip, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of hop features `x` at the clip's filmed frames, and the opening there as a fraction of its wide-open."""
    at = np.clip(np.round(c.times / HOP_SECONDS).astype(int), 0, len(x) - 1)
    ok = np.isfinite(c.truth)
    return x[at[ok]], (c.truth / np.nanpercentile(c.truth, 97))[ok]


def offline_step(clips, use_phones_in: bool, use_phones_after: bool, running: bool, prior, **params) -> list[float]:
    """LOSO r of the offline recipe; features = model_features (dominance dropped unless use_phones_in) + streamed
    posteriors (unless use_phones_in); post-processing = motion.mouth_track with `params`."""
    nd = len(motion.FEATURE_LABELS)
    speech = {}
    for c in clips:
        sp = c.running(prior) if running else c.speech
        speech[c.name] = sp if use_phones_after else replace(sp, phones=[])

    streamed_of = {id(speech[c.name]): c.streamed for c in clips}  # by identity: the cached analyses stay untouched
    original = motion.model_features

    def features(sp, start=0, stop=None, mel_context=motion.MEL_CONTEXT, posterior_taps=(), component_taps=()):
        base = original(sp, start, stop, mel_context, posterior_taps, component_taps)
        if use_phones_in:
            return base
        stop = len(sp.voiced) if stop is None else min(stop, len(sp.voiced))
        return np.concatenate([base[:, nd:], streamed_of[id(sp)][start:stop]], 1)

    # mouth_track's learned opening reads the step's features (motion.offline holds its own name for the function)
    motion.model_features = motion_offline.model_features = features
    try:
        samples = {c.name: frame_samples(c, features(speech[c.name])) for c in clips}
        rows = []
        for c, model in heldout_models(clips, samples):
            track = motion.mouth_track(speech[c.name], c.times, params=motion.MotionParams(model=model, **params))
            rows.append(evaluate.pearson_at_best_lag(track.opening, c.truth)[0])
        return rows
    finally:
        motion.model_features = motion_offline.model_features = original


def causal_step(clips, prior, look: int) -> list[float]:
    """LOSO r of a fully causal version of the same recipe."""
    taps = tuple(t for t in (-12, -8, -4, 0, 4, 8, 12) if t < look) + (look,)
    lag = motion.VAD_MARGIN  # hops: the voice detector's window ends this much after the mel's
    feats, voiced_of = {}, {}
    for c in clips:
        mel, loud, n, voiced = stream_features(c.audio, prior)
        hops = np.arange(n)
        v = np.asarray(voiced, float)
        cols = [mel[np.clip(hops + t, 0, n - 1)] for t in taps] + [loud[np.clip(hops + t, 0, n - 1), None] for t in taps]
        cols += [v[np.clip(hops + t, 0, n - 1), None] for t in (-6, -3, 0, max(0, look - lag))]
        cols.append(c.streamed[:n] if len(c.streamed) >= n else np.pad(c.streamed, ((0, n - len(c.streamed)), (0, 0))))
        feats[c.name], voiced_of[c.name] = np.concatenate(cols, 1), np.asarray(voiced, bool)
    rows = []
    for c, model in heldout_models(clips, {c.name: frame_samples(c, feats[c.name]) for c in clips}):
        opening = np.clip(model.predict(feats[c.name]), 0, 1.2)
        v = voiced_of[c.name]
        idx = np.arange(len(v))
        last = np.maximum.accumulate(np.where(v, idx, -10 ** 6))
        upcoming = np.minimum.accumulate(np.where(v, idx, 10 ** 7)[::-1])[::-1]
        speaking = (idx - last <= HANGOVER / HOP_SECONDS) | (upcoming - idx <= max(0, look - lag))
        opening = np.where(speaking, opening, 0.0)
        # a frame is the mean over its exposure (±2 hops at 25 fps): within the look-ahead
        at = np.clip(np.round(c.times / HOP_SECONDS).astype(int), 0, len(opening) - 1)
        rows.append(evaluate.pearson_at_best_lag(motion.exposure_mean(opening, at, 2), c.truth)[0])
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(evaluate.default_data_dir()))
    ap.add_argument("--look", type=float, default=0.15, help="look-ahead in s (0.10 = live mode's default)")
    args = ap.parse_args()
    look = int(round(args.look / HOP_SECONDS))
    clips = [Clip(name, rel, rng, Path(args.data), look) for name, (rel, rng) in SELF_CLIPS.items()]
    prior = mel_prior(clips)
    lead = min(0.2, look * HOP_SECONDS)
    steps = [("offline", dict(use_phones_in=True, use_phones_after=True, running=False)),
             ("streamed", dict(use_phones_in=False, use_phones_after=True, running=False)),
             ("no phones", dict(use_phones_in=False, use_phones_after=False, running=False)),
             ("lead", dict(use_phones_in=False, use_phones_after=False, running=False, onset_lead=lead)),
             ("running norm", dict(use_phones_in=False, use_phones_after=False, running=True, onset_lead=lead)),
             ("bridge 0.3", dict(use_phones_in=False, use_phones_after=False, running=True, onset_lead=lead,
                                 pause_bridge=0.3))]
    print(f"look-ahead {args.look:.2f} s; streamed phones every {PHONE_STEP} s on {PHONE_WINDOW} s; leave one speaker "
          f"out, r at the best lag\n{'step':14s} {'mean':>6s}  " + " ".join(f"{c.name[:8]:>8s}" for c in clips))
    for label, kw in steps + [("causal", None)]:
        rows = causal_step(clips, prior, look) if kw is None else offline_step(clips, prior=prior, **kw)
        print(f"{label:14s} {np.mean(rows):6.3f}  " + " ".join(f"{r:8.3f}" for r in rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
