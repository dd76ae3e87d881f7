"""Train the live (causal) motion model (lipdub/assets/motion_model_causal.npz and its card, motion.StreamingMotion).

    python -m training.train_causal [--no-heldout] [--dry-run] [--out PATH] [--sources video|permissive|all]
                                    [--folds K] [--looks 0.1] [--no-components]
                                                                             (`make train-causal`: --no-heldout)

Per look-ahead: a phone-class classifier on streaming log-mel (labels: the offline analysis' phones, also on the
audio-only clips of training/dataset.json) and an opening MLP on the filmed mouths, the long clips also as streams
started again every 6 s (RESTART_EVERY; `--no-restarts`: without), and (the research model, AUDIO_TEACHER;
`--no-teacher`: without) on the offline model's mouth every 20 ms of the audio-only clips; reports leave-one-speaker-out
r at 0.05/0.10/0.15 s look-ahead beside the offline held-out model (run `python -m training.train_motion` first: it
writes those, and they are the held-out teachers; `--folds` fits each fold's teacher itself). As with the offline
model, a file holding exactly the fitted arrays is left unchanged, and one with other arrays is only replaced with
--replace (otherwise the new model goes to build/assets/). Not yet checked against the shipped file (a full fit
takes long on a shared CPU). `--sources permissive` fits the same recipe on the
permissively licensed clips alone (GRID's filmed clips, each GRID speaker its own group; the public-domain JFK
sample) into lipdub/assets/motion_model_causal_permissive.npz (--motion-model permissive in live mode). The research
live model's opening MLP also reads hama's streamed token components (speech.tokens, on the shipped axes;
--no-components: without); the permissive one never does (the axes were fitted on research-only audio).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from lipdub import media, motion
from lipdub.core.constants import HOP_SECONDS
from lipdub.speech.acoustic import log_mel
from lipdub.speech.posteriors import token_classes
from lipdub.speech.stream import StreamingFeatures, StreamingPosteriors
from lipdub.speech.tokens import load_axes
from lipdub.speech.track import Phone
from training import evaluate
from training.clips import analyse_clip, clip_material
from training.fit import fit_mlp, fit_softmax, opening_curve
from training.manifest import HELD_OUT_CAUSAL_DIR, HELD_OUT_DIR, SOURCES, data_root, filmed_clips, heldout_dir, \
    require_data, training_clips
from training.train_motion import REBUILT, TAPS as OFFLINE_TAPS, add_training_arguments, fitter_from, load_samples, \
    publish_model

LOSO_DIR, CAUSAL_LOSO_DIR = HELD_OUT_DIR, HELD_OUT_CAUSAL_DIR
# the live opening model's own curve (training.fit.opening_curve on its training rows; motion.StreamingMotion applies
# it through OpeningModel.bounded). Off: with it the rendered live dubs fell 0.651 -> 0.637 (GRID most) and the
# live-offline gap beside the offline curve was -0.083 (docs/RESULTS.md, Motion alone, stop 35). Kept off the quiet
# openings (fit.CURVE_START, stop 36) it raised them 0.651 -> 0.675, the gap -0.035 beside the offline curve so kept
# off; off while the offline curve is (held out 0.693, amp 1.39)
LIVE_OPENING_CURVE = False
# --sources → where the model goes. The shipped live model learns from the video/ clips: held out over 2 speaker
# folds at 0.10 s, every filmed clip scored, adding the 55 train/ clips lowered r from 0.482 to 0.458 (0.480 -> 0.455
# on the train/ clips themselves; docs/RESULTS.md "Live (causal) motion"), so that fit is not shipped.
MODEL_OF = {"video": motion.CAUSAL_MODEL_PATH, "permissive": motion.PERMISSIVE_CAUSAL_MODEL_PATH,
            "all": REBUILT / "motion_model_causal_all.npz"}


@dataclass
class CausalClip:
    """One clip's training material: its audio and offline analysis, and the filmed truth at frame times."""

    group: str  # speaker group (held out together)
    audio: np.ndarray
    speech: object
    times: np.ndarray | None = None  # None: an audio-only clip (phone classifier material only)
    truth: np.ndarray | None = None
    truth_scale: float | None = None  # the wide-open mouth the truth is a fraction of (None: its own 97th pct)
    restart_of: str | None = None  # a piece of this clip, streamed as if the stream started there (not scored)

    def target(self) -> np.ndarray:
        scale = self.truth_scale if self.truth_scale is not None else np.nanpercentile(self.truth, 97)
        return self.truth / scale


# A live stream's first seconds score lower than the same audio mid-stream (held out, the same 3 s windows: 0.500 at
# a stream's start, 0.545 mid-stream): the long clips also train the live model as streams that start again every
# RESTART_EVERY s, from RESTART_FIRST s on, RESTART_PIECE s each (24 pieces). Held out, the five live cross-dubs
# 0.467 -> 0.484 (bench/live.py, one case per held-out model); motion alone at 0.10 s 0.476 -> 0.480, at 0.15 s
# 0.496 -> 0.477; the shipped model's live cross-dubs 0.629 -> 0.626.
RESTART_FIRST, RESTART_EVERY, RESTART_PIECE = 3.0, 6.0, 3.0


def restarted_pieces(name: str, clip: CausalClip) -> dict[str, CausalClip]:
    """The pieces of a filmed clip streamed as fresh streams: audio, phones, voicing, truth over each span, from 0."""
    pieces = {}
    duration = len(clip.audio) / 16000
    sp = clip.speech
    start = RESTART_FIRST
    while start + RESTART_PIECE <= duration + 1e-6:
        end = start + RESTART_PIECE
        a, b = int(round(start / sp.hop)), int(round(end / sp.hop))
        phones = [Phone(ph.label, max(ph.start, start) - start, min(ph.end, end) - start)
                  for ph in sp.phones if ph.end > start and ph.start < end]
        speech = replace(sp, duration=end - start, voiced=sp.voiced[a:b], jaw=sp.jaw[a:b],
                         loudness=sp.loudness[a:b], phones=phones, mel=None if sp.mel is None else sp.mel[a:b],
                         posteriors=None if getattr(sp, "posteriors", None) is None else sp.posteriors[a:b])
        keep = (clip.times >= start) & (clip.times < end)
        pieces[f"{name}@{start:g}"] = CausalClip(
            clip.group, clip.audio[int(start * 16000):int(end * 16000)], speech, clip.times[keep] - start,
            clip.truth[keep], float(np.nanpercentile(clip.truth, 97)), name)
        start += RESTART_EVERY
    return pieces


def fold_group(speaker: str, sources: str = "video") -> str:
    """The live model's hold-out and cross-fitting group: the speaker, but the GRID speakers as one corpus, as the
    shipped live model was fitted (its folds follow these groups; per speaker, make train-causal would not reproduce
    it). The permissive model learns from GRID alone: its groups are the speakers."""
    return "grid" if speaker.startswith("grid") and sources != "permissive" else speaker


def load_causal_clips(data: Path, restarts: bool = True, sources: str = "video", every_filmed: bool = False
                      ) -> dict[str, CausalClip]:
    """The training material of the `sources` clips (with `every_filmed`, every filmed clip too, to be scored)."""
    clips = {}
    learn = training_clips("causal", sources)
    for clip in (c for c in (filmed_clips() if every_filmed else learn) if c.filmed):
        name, rng = clip.name, clip.range
        times, truth, speech = clip_material(data, clip, evaluate.mouth_curve)
        audio, sr = media.load_audio(data / clip.audio_path, 16000)  # a paired sound file where the video has none
        if rng is not None:
            audio = audio[int(rng[0] * sr):int(rng[1] * sr)]
        clips[name] = CausalClip(fold_group(clip.speaker, sources), audio, speech, times, truth)
        print(f"loaded {name}: {np.isfinite(truth).sum()} frames, {clips[name].speech.method}", flush=True)
    if restarts:
        for name in list(clips):
            pieces = restarted_pieces(name, clips[name])
            clips.update(pieces)
        print(f"restarted streams: {sum(c.restart_of is not None for c in clips.values())} pieces of "
              f"{RESTART_PIECE:g} s", flush=True)
    for clip in (c for c in learn if not c.filmed):
        rel = clip.path
        if (data / rel).is_file():
            audio, _ = media.load_audio(data / rel, 16000)
            clips[clip.name] = CausalClip(clip.speaker, audio, analyse_clip(data / rel, None))
            print(f"loaded {rel} (audio only)", flush=True)
    return clips


def mel_prior(clips) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of raw log-mel over the training audio: where the running normalisation starts."""
    raw = np.concatenate([log_mel(c.audio, standardise=False) for c in clips])
    return raw.mean(0).astype(np.float64), raw.std(0).astype(np.float64)


def stream_features(audio: np.ndarray, prior) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Running-normalised log-mel, loudness and voice activity of every hop, exactly as the live stream computes
    them."""
    f = StreamingFeatures(prior)
    f.push(audio)
    n = f.finish()
    return f.mel, f.loudness, n, f.voiced


def phone_labels(speech, n: int) -> np.ndarray:
    """The offline analysis' phone class at every hop (by the hop's centre)."""
    labels = np.zeros(n, int)
    t = (np.arange(n) + 0.5) * speech.hop
    for ph in speech.phones:
        labels[(t >= ph.start) & (t < ph.end)] = motion.phone_class(ph.label)
    return labels


PHONE_STEP, PHONE_WINDOW = 0.08, 0.75  # s: streamed hama posteriors (speech.stream.StreamingPosteriors)


def phone_runs(audio: np.ndarray, step: float = PHONE_STEP, window: float = PHONE_WINDOW, components: bool = True
               ) -> StreamingPosteriors:
    """Every streamed phone recognition of a clip, as the live stream makes them (~1 min of CPU per 2 min audio),
    with their token components (the shipped axes) unless `components` is False."""
    phones = StreamingPosteriors(token_classes(), step, window, keep_all=True,
                                 axes=load_axes() if components else None)
    phones.push(audio)
    phones.finish()
    return phones


def teacher_opening(clip: CausalClip, teacher: motion.OpeningModel) -> np.ndarray:
    """The offline mouth (motion.mouth_track, its default motion, with the `teacher` opening model) at every 10 ms
    hop of a clip."""
    n = len(clip.speech.voiced)
    params = motion.MotionParams(model=teacher)
    return motion.mouth_track(clip.speech, np.arange(n) * HOP_SECONDS, params=params).opening


def fold_teacher(samples: dict, unheard: set[str]) -> motion.OpeningModel:
    """The offline model of the shipped recipe (training.train_motion, TEACHER_NETS nets) fitted on the filmed clips
    of `samples` (train_motion.load_samples) outside the speaker groups `unheard`: a held-out fold's teacher."""
    group = {c.name: fold_group(c.speaker) for c in filmed_clips()}
    fit = fitter_from(samples, posterior_taps=OFFLINE_TAPS, component_taps=OFFLINE_TAPS, learned_lags=True)
    return fit([n for n in samples if group[n] not in unheard], TEACHER_NETS)


# s where the opening MLP reads the streamed token components (speech.tokens), those of the streamed posteriors.
# Held out (2 speaker folds, 69 clips, 0.10 s, motion alone; docs/RESULTS.md, Live (causal) motion, "The recogniser's
# whole output, streamed"): none 0.439, taps -0.04..0.08 0.448, these 0.452 (better on 44 of 69). The permissive
# model never reads them (--no-components is implied): the token axes were fitted on research-only audio.
COMPONENT_TAPS = motion.STREAMED_TAPS


# the live opening MLP's passes over its rows. Held out (2 speaker folds, 69 clips, 0.10 s, motion alone, python -m
# training.train_causal --dry-run --folds 2 --looks 0.1 --epochs N): 0.439 at 30, 0.445 at 120 (better on 40 of 69);
# not kept: rendered in-sample (bench.live --skip-speed) live fell 0.643 -> 0.632, the live gap -0.036 -> -0.047
OPENING_EPOCHS = 30
# each net's rate brought down linearly to 0 over those passes, as the offline model's (train_motion.OPENING_DECAY),
# per --sources: with both, rendered in-sample (bench.live --skip-speed) live 0.649 -> 0.673, gap -0.038 -> -0.037
# (RESULTS, stop 40). Not the permissive live model: held out (its GRID speakers left out one at a time) the fall
# took it 0.554 / 0.588 / 0.605 -> 0.545 / 0.575 / 0.587 at 0.05 / 0.10 / 0.15 s, 1 of 11 clips higher at 0.10 s
# (RESULTS, Live (causal) motion, stop 41)
OPENING_DECAY = {"video": True, "all": True, "permissive": False}
TEACHER_EVERY = 2  # hops: the teacher's targets are read every 20 ms (neighbours are near-duplicates)
# The audio-only clips (no filmed mouth) also teach the live opening MLP: the offline model's mouth every
# TEACHER_EVERY hops, from a model that never heard them (shipped: the shipped offline model; held out: one fitted
# outside the fold). The offline model reads the whole utterance, the live one learns what of it the stream can
# tell. Held out (2 speaker folds, the 14 video/ clips, 0.10 s; docs/RESULTS.md, Live (causal) motion, stop 36):
# 0.430 -> 0.483 (split 0), 0.470 -> 0.503 (split 1), mean |lag| 1.71/1.29 -> 1.07 frames. Research model only: the
# teacher learned from research-only footage.
AUDIO_TEACHER = False
TEACHER_NETS = 2  # nets of a held-out fold's teacher (fold_teacher; the offline screens' held-out models)


def fit_causal(clips: list[CausalClip], looks=motion.CAUSAL_LOOKAHEADS, folds: int = 2, members: int = 3,
               hidden: int = 24, runs: dict | None = None, teacher: motion.OpeningModel | None = None,
               epochs: int | None = None, component_taps=(), decay: bool = True) -> motion.CausalModel:
    """Per look-ahead: the phone classifier on every hop of every clip, the opening MLP on the filmed frames
    (`decay`: its rate brought down to 0 over its passes, OPENING_DECAY).
    The opening MLP is trained on posteriors the classifier gives for clips it did not train on (cross-fitting over
    `folds`), so it learns how far unseen speakers' posteriors can be trusted. With `runs` (id(clip) → phone_runs)
    the opening MLP also reads voice activity and the streamed phone posteriors the live stream would have had.
    With a `teacher` (an offline opening model that never heard the held-out speakers) the opening MLP also learns
    the offline mouth at every TEACHER_EVERY hops of the audio-only clips with runs (AUDIO_TEACHER). (Taught on
    every clip, the filmed ones too, ~10× the filmed frames, held out motion alone at 0.10 s rose 0.476 -> 0.502,
    but the shipped model's live cross-dubs fell 0.629 -> 0.545: it fitted the filmed speakers less.) With
    `component_taps` (and runs that keep components) the opening
    MLP also reads the streamed token components there. (Each filmed frame learned from the inputs 3 hops before
    it, to undo the live mouth's lateness: held out the mean lag +1.78 -> +1.48 frames but r 0.448 -> 0.437; not
    kept.)"""
    prior = mel_prior([c for c in clips if c.restart_of is None])
    feats = [stream_features(c.audio, prior) for c in clips]
    labels = [phone_labels(c.speech, n) for c, (_, _, n, _) in zip(clips, feats)]
    phones, opening, targets = {}, {}, {}
    groups = sorted({c.group for c in clips})
    fold_of = np.array([groups.index(c.group) % folds for c in clips])  # a speaker's clips share a fold
    for look in looks:
        taps = motion.causal_taps(look)
        xs = [motion.causal_features(m, loud, np.arange(n), taps, 0, n - 1) for m, loud, n, _ in feats]
        phones[look] = fit_softmax(np.concatenate(xs), np.concatenate(labels), len(motion.PHONE_CLASSES))
        held_post: list = [None] * len(clips)
        for k in range(folds):
            clf = fit_softmax(np.concatenate([x for x, f in zip(xs, fold_of) if f != k]),
                              np.concatenate([y for y, f in zip(labels, fold_of) if f != k]),
                              len(motion.PHONE_CLASSES))
            for i in np.flatnonzero(fold_of == k):
                held_post[i] = motion.softmax(clf.predict(xs[i]))
        rows_x, rows_y = [], []
        for c, x, post, (_, _, _, voiced) in zip(clips, xs, held_post, feats):
            distil = teacher is not None and runs is not None and id(c) in runs and c.truth is None
            if c.truth is None and not distil:
                continue
            n = len(x)
            full = motion.causal_opening_inputs(x, post, voiced, None if runs is None else runs[id(c)], look,
                                                component_taps if runs is not None else ())
            if c.truth is not None:
                at = np.clip(np.round(c.times / HOP_SECONDS).astype(int), 0, n - 1)
                ok = np.isfinite(c.truth)
                rows_x.append(full[at[ok]])
                rows_y.append(c.target()[ok])
            if distil:
                if id(c) not in targets:
                    targets[id(c)] = teacher_opening(c, teacher)
                at = np.arange(0, min(n, len(targets[id(c)])), TEACHER_EVERY)
                rows_x.append(full[at])
                rows_y.append(targets[id(c)][at])
        x, y = np.concatenate(rows_x), np.concatenate(rows_y)
        opening[look] = fit_mlp(x, y, members, hidden, epochs=epochs or OPENING_EPOCHS, decay=decay)
        if LIVE_OPENING_CURVE:  # the offline model's kind of curve, fitted on these rows (the engine applies it)
            opening[look].arrays.update(opening_curve(np.clip(opening[look].predict(x), *motion.OPENING_LIMITS), y))
    if runs is None:
        return motion.CausalModel(phones, opening, prior)
    some = next(iter(runs.values()))  # every clip's runs share one step and window
    return motion.CausalModel(phones, opening, prior, phone_step=some.step_samples / 16000,
                              phone_window=some.window_samples / 16000, component_taps=tuple(component_taps))


def loso_causal(clips: dict[str, CausalClip], looks=(0.05, 0.1, 0.15), runs: dict | None = None,
                distil: bool = False, sources: str = "video", epochs: int | None = None, component_taps=()
                ) -> list[list[float]]:
    """Every filmed clip scored by a causal model that never heard its speaker, next to the offline model that
    never heard it (training/train_motion.py --sources writes those): rows of r at the best lag."""
    offline_dir = heldout_dir("permissive" if sources == "permissive" else "all")
    causal_dir = CAUSAL_LOSO_DIR if sources == "video" else CAUSAL_LOSO_DIR.with_name(f"{CAUSAL_LOSO_DIR.name}_{sources}")
    causal_dir.mkdir(parents=True, exist_ok=True)
    print(f"\n{'held-out clip':18s} {'offline':>8s} " + " ".join(f"{'causal ' + str(v):>12s}" for v in looks)
          + "   (leave one speaker out: r at the best lag)")
    rows = []
    for group in sorted({c.group for c in clips.values() if c.truth is not None}):
        held = offline_dir / f"{group}.npz"
        offline = motion.load_opening_model(held) if held.is_file() else None
        model = fit_causal([c for c in clips.values() if c.group != group],
                           sorted({int(round(v / HOP_SECONDS)) for v in looks}), runs=runs,
                           teacher=offline if distil else None, epochs=epochs, component_taps=component_taps,
                           decay=OPENING_DECAY[sources])
        model.save(causal_dir / f"{group}.npz")
        for name, c in clips.items():
            if c.group != group or c.truth is None or c.restart_of is not None:
                continue
            off = motion.mouth_track(c.speech, c.times, params=motion.MotionParams(model=offline) if offline else None)
            res = [evaluate.pearson_at_best_lag(off.opening, c.truth)[0]]
            res += [evaluate.pearson_at_best_lag(motion.causal_mouth_track(c.audio, c.times, v, model=model).opening,
                                                 c.truth)[0] for v in looks]
            rows.append(res)
            print(f"{name:18s} " + " ".join(f"{r:8.3f}    " for r in res), flush=True)
    print(f"{'mean':18s} " + " ".join(f"{r:8.3f}    " for r in np.mean(rows, 0)))
    print(f"held-out causal models: {causal_dir}; offline column: {offline_dir}")
    return rows


def fold_split(clips: dict[str, CausalClip], folds: int, split: int = 0) -> list[np.ndarray]:
    """The speaker groups of the filmed clips split at random (seed `split`) into `folds` (folds_causal's folds)."""
    groups = sorted({c.group for c in clips.values() if c.truth is not None})
    return np.array_split(np.random.default_rng(split).permutation(groups), folds)


def folds_causal(clips: dict[str, CausalClip], learn: set[str], folds: int, looks=(0.1,), runs: dict | None = None,
                 epochs: int | None = None, component_taps=(), split: int = 0, samples: dict | None = None,
                 decay: bool = True) -> list[list[float]]:
    """Held out over speaker folds: the speaker groups of every loaded filmed clip are split at random (seeded) into
    `folds`; each fold's clips are scored by a causal model fitted on the `learn` clips (and their restarted pieces)
    of the other folds. A full leave-one-speaker-out over 50+ groups takes a day on a shared CPU; the same folds for
    every recipe (`--sources`) score the same clips with models that never heard them. Rows: r at the best lag; the
    best lags (frames, > 0: the live mouth late) are summarised after them. `split` seeds the split (a second
    split checks that a recipe's gain is not one split's luck). With `samples` (train_motion.load_samples) each fold's
    audio-only clips are taught by an offline model fitted outside the fold (fold_teacher)."""
    print(f"\n{'held-out clip':32s} " + " ".join(f"{'causal ' + str(v):>12s}" for v in looks)
          + f"   ({folds} speaker folds: r at the best lag)")
    rows, lags = [], []
    for fold in fold_split(clips, folds, split):
        held = set(fold)
        train = [c for name, c in clips.items() if c.group not in held and (c.restart_of or name) in learn]
        model = fit_causal(train, sorted({int(round(v / HOP_SECONDS)) for v in looks}), runs=runs, epochs=epochs,
                           component_taps=component_taps, decay=decay,
                           teacher=None if samples is None else fold_teacher(samples, held))
        for name, c in clips.items():
            if c.group not in held or c.truth is None or c.restart_of is not None:
                continue
            best = [evaluate.pearson_at_best_lag(motion.causal_mouth_track(c.audio, c.times, v, model=model).opening,
                                                 c.truth) for v in looks]
            rows.append([b[0] for b in best])
            lags.append([b[1] for b in best])
            print(f"{name:32s} " + " ".join(f"{r:8.3f} {lag:+3d}" for r, lag, _ in best), flush=True)
    print(f"{'mean of ' + str(len(rows)) + ' clips':32s} " + " ".join(f"{r:8.3f}    " for r in np.mean(rows, 0)))
    print(f"{'lag: mean, mean |lag|':32s} " + " ".join(f"{m:+6.2f} {a:4.2f}" for m, a in
                                                          zip(np.mean(lags, 0), np.mean(np.abs(lags), 0))))
    return rows


def teaches(sources: str, no_teacher: bool = False, no_phones: bool = False) -> bool:
    """Whether the audio-only clips teach the live model the offline model's mouth (AUDIO_TEACHER): the research
    model's recipe only (the offline model learned from research-only footage), and only with the streamed phones
    (the teacher's rows need the clips' runs)."""
    return AUDIO_TEACHER and sources == "video" and not no_teacher and not no_phones


def main(argv: list[str] | None = None) -> int:
    """Train the causal (live) model; report leave-one-speaker-out next to the offline model."""
    ap = argparse.ArgumentParser(prog="python -m training.train_causal", description=__doc__.split("\n")[0])
    add_training_arguments(ap, None)
    ap.add_argument("--sources", choices=SOURCES, default="video",
                    help="learn from the filmed clips of video/ (default; motion_model_causal.npz), the permissively "
                         "licensed ones only (motion_model_causal_permissive.npz) or all clips (not shipped: "
                         "build/assets/motion_model_causal_all.npz); the audio-only clips too, but for permissive")
    ap.add_argument("--no-phones", action="store_true",
                    help="without streamed phone recognition (the opening reads log-mel and posteriors only)")
    ap.add_argument("--no-components", action="store_true",
                    help=f"without the streamed token components the opening MLP reads at {COMPONENT_TAPS} s (never "
                         "read with --sources permissive: the token axes were fitted on research-only audio)")
    ap.add_argument("--no-teacher", action="store_true",
                    help="without the offline model's mouth on the audio-only clips (AUDIO_TEACHER; never with "
                         "--sources permissive: the offline model learned from research-only footage)")
    ap.add_argument("--no-restarts", action="store_true",
                    help="without the long clips' restarted pieces (see RESTART_EVERY)")
    ap.add_argument("--folds", type=int, default=0, metavar="K",
                    help="held out over K speaker folds, every filmed clip scored (folds_causal), instead of leave "
                         "one speaker out over the learned clips")
    ap.add_argument("--looks", default="0.05,0.1,0.15", help="look-aheads (s) of the held-out report")
    ap.add_argument("--epochs", type=int, default=None,
                    help=f"passes of the opening MLP over its rows (default {OPENING_EPOCHS})")
    ap.add_argument("--split", type=int, default=0, help="with --folds: the seed of the random split of the speakers")
    args = ap.parse_args(argv)
    looks = tuple(float(v) for v in args.looks.split(","))
    teach = teaches(args.sources, args.no_teacher, args.no_phones)
    missing = [g for g in sorted({c.speaker for c in filmed_clips()}) if not (LOSO_DIR / f"{g}.npz").is_file()]
    if teach and missing and not args.no_heldout and not args.folds:
        print(f"no held-out offline models for {', '.join(missing)} in {LOSO_DIR}: run python -m training.train_motion "
              "first, or add --no-teacher", file=sys.stderr)
        return 2
    every = args.folds > 0 and not args.no_heldout
    fold_teachers = every and teach  # each fold's teacher learns from the filmed clips outside it
    needed = [p for c in training_clips("causal", args.sources) + (filmed_clips() if every or fold_teachers else [])
              for p in dict.fromkeys((c.path, c.audio_path))]
    data = require_data(Path(args.data) if args.data else data_root(), list(dict.fromkeys(needed)))
    clips = load_causal_clips(data, restarts=not args.no_restarts, sources=args.sources, every_filmed=every)
    learn = {c.name for c in training_clips("causal", args.sources)}
    learned = [c for name, c in clips.items() if (c.restart_of or name) in learn]
    runs = None
    taps = () if args.no_components or args.no_phones or args.sources == "permissive" else COMPONENT_TAPS
    if not args.no_phones:
        # every learned clip's streamed phones: the filmed clips' for their truth, the audio-only clips' for the teacher
        runs = {id(c): phone_runs(c.audio, components=bool(taps)) for c in learned
                if c.truth is not None or teach}
        print(f"streamed phones of {len(runs)} clips (every {PHONE_STEP} s, {PHONE_WINDOW} s window)", flush=True)
    held_out = None
    if not args.no_heldout and args.folds:
        rows = folds_causal(clips, learn, args.folds, looks, runs, args.epochs, taps, args.split,
                            load_samples(data, axes=load_axes()) if fold_teachers else None,
                            decay=OPENING_DECAY[args.sources])
        held_out = {"metric": f"Pearson r at the best lag, {args.folds} speaker folds (motion alone, every filmed "
                              f"clip scored by a model that never heard its speaker)",
                    **{f"causal_{v}s": float(r) for v, r in zip(looks, np.mean(rows, 0))}, "clips": len(rows),
                    "measured_by": f"python -m training.train_causal --folds {args.folds} --looks {args.looks} "
                                   f"--split {args.split}"}
    elif not args.no_heldout:
        rows = loso_causal(clips, looks, runs=runs, distil=teach, sources=args.sources, epochs=args.epochs,
                           component_taps=taps)
        held_out = {"metric": "Pearson r at the best lag, leave one speaker out (motion alone, filmed clips)",
                    **{"offline" if i == 0 else f"causal_{v}s": float(r)
                       for i, (v, r) in enumerate(zip((None, *looks), np.mean(rows, 0)))},
                    "measured_by": "python -m training.train_causal"}
    if not args.dry_run:
        model = fit_causal(learned, runs=runs, teacher=motion.load_model() if teach else None,
                           epochs=args.epochs, component_taps=taps, decay=OPENING_DECAY[args.sources])
        publish_model(model, model.arrays(), Path(args.out or MODEL_OF[args.sources]), "causal", held_out,
                      args.replace, args.sources)
    return 0


if __name__ == "__main__":
    sys.exit(main())
