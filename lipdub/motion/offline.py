"""Offline motion: the whole utterance's phones and acoustics → the wanted mouth at every output frame.

The learned opening model (or, without log-mel, the dominance-blended viseme rules) drives the opening; bilabials
(p, b, m) are then forced fully shut at their centre, and the mouth rests wherever voice activity says there is no
speech: the track's opening is 0 there and `rest` says how much of the speaker's own rest mouth each frame shows at
least (rendering knows that mouth: closed for most speakers, parted for those who never shut their lips).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import binary_closing, binary_dilation, distance_transform_edt, gaussian_filter1d

from lipdub.errors import ParameterError
from lipdub.motion.features import model_features
from lipdub.motion.models import OPENING_LIMITS, OpeningModel, load_model
from lipdub.motion.visemes import phone_curves

STRENGTH_RANGE = (0.0, 3.0)  # articulation strength: 0 = still, 1 = natural


def check_strength(strength) -> float:
    """The articulation strength as a number, or a ParameterError that gives the range (the one check of it: dubs,
    live sessions, `visemes` and the motion functions all call this)."""
    try:
        value = float(strength)
    except (TypeError, ValueError):
        raise ParameterError(f"--strength must be a number, got {strength!r}") from None
    if not np.isfinite(value) or not STRENGTH_RANGE[0] <= value <= STRENGTH_RANGE[1]:
        raise ParameterError(f"--strength must be between 0 and 3 (1 = natural), got {strength}")
    return value


@dataclass
class MouthTrack:
    """Per output frame: the wanted mouth, relative to the speaker (rendering turns it into landmarks)."""

    times: np.ndarray  # (T,) seconds
    opening: np.ndarray  # (T,) 0 closed .. 1 the speaker's wide-open
    width: np.ndarray  # (T,) -1 rounded .. +1 spread, 0 = rest
    closed: np.ndarray  # (T,) bool: lips must touch (bilabial or silence)
    # (T,) 0..1: how much of the speaker's rest mouth the frame shows at least (1 in a silence, fading over
    # MotionParams.rest_ramp into the speech; 0 on a bilabial closure). None: none (the rest is the closed mouth)
    rest: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.times)


FEATURE_BLOCK = 8 * 4096  # hops per block of features (a multiple of predict's chunk: the same arithmetic)


def learned_opening(speech, model: OpeningModel) -> np.ndarray:
    """The model's opening at every hop, its features built a block at a time: an hour of speech has 360,000 hops,
    and all their features at once took ~1 GB (the phone dominance alone ~250 MB)."""
    n = len(speech.voiced)
    if model.reach:  # a temporal model: each block's features with `reach` hops of the neighbours' on each side
        m = model.reach
        blocks = [model.predict_hops(model_features(speech, max(0, a - m), a + FEATURE_BLOCK + m, model.mel_context,
                                                    model.posterior_taps, model.component_taps),
                                     a - max(0, a - m), min(n, a + FEATURE_BLOCK) - max(0, a - m))
                  for a in range(0, n, FEATURE_BLOCK)]
    else:
        blocks = [model.predict(model_features(speech, a, a + FEATURE_BLOCK, model.mel_context, model.posterior_taps,
                                            model.component_taps))
                  for a in range(0, n, FEATURE_BLOCK)]
    opening = np.concatenate(blocks) if blocks else np.zeros(0)
    bounded = getattr(model, "bounded", None)  # the screens' wrappers of a model have no curve
    return np.clip(opening, *OPENING_LIMITS) if bounded is None else bounded(opening)


@dataclass
class MotionParams:
    """Knobs of the motion model; defaults are tuned on the shared clips' own audio vs. filmed mouths
    (bench/motion_eval.py)."""

    acoustic_weight: float = 0.35  # how much loudness/jaw modulates the phone-driven opening
    lead: float = 0.02  # s: lips lead the sound
    smooth: float = 0.02  # s: Gaussian inertia of the jaw
    pause_bridge: float = 0.8  # s: pauses shorter than this belong to the utterance (the mouth may stay open)
    pause_open: float = 0.0  # fixed opening held through such pauses; 0 = what the learned model predicts
    force_closures: bool = True  # p/b/m shut the lips completely
    # s: the mouth parts this long before the voice starts (speakers part their lips and breathe in first). Held out
    # (bench/all_pairs.py --heldout, 62 pairs): r 0.600 without, 0.632 with 0.2 s; motion alone 0.549 -> 0.583
    # (0.603 at 0.3 s, gained mostly on GRID speakers, who open wide before speaking: 0.2 s is kept)
    onset_lead: float = 0.2
    # a long phone silence where voice activity covers more than this share is speech the phones missed (man_kitchen:
    # the mouth is open 0.74 of its widest there): the learned model drives it. Held out motion alone 0.583 -> 0.610
    missed_speech: float = 0.3
    # s: voice activity runs on past the last phone and starts before the first (hysteresis, padding, gap closing);
    # in a silence that opens or closes the audio, that much next to the recognised speech is not counted as missed
    # speech (jfk: applause after the last word kept the mouth open 0.7 of its widest to the end)
    edge_margin: float = 0.15
    # s: the finished mouth is sampled this much ahead of each frame's time (> 0: earlier mouth). Held out (models
    # that never heard the speaker), the mouth ran late: over 69 filmed clips of 60 speakers the mean lag of best
    # correlation is +0.84 frames at 0, -0.13 at 0.04 s; cross-validation over speakers chose 0.03-0.04 (+0.09);
    # r 0.647 -> 0.648, r at lag 0 0.523 -> 0.543 (python -m training.train_motion --dry-run --lags)
    advance: float = 0.04
    rest_ramp: float = 0.2  # s: the speaker's rest mouth fades in and out over this much of the speech next to it
    # s: the opening grows linearly from 0 over this much on either side of a bilabial closure (lips ease into and out
    # of contact instead of snapping shut from wide open). Held out (5 folds x 2 nets, docs/RESULTS.md "Timing taken
    # from the sound itself; closures eased in"): r 0.681 -> 0.683 at 0.04 s, 44 of 69 clips higher; 0.08 s loses
    # (0.680).
    closure_ramp: float = 0.04
    learned: bool = True  # use the learned opening model when it and log-mel features are available
    model: "OpeningModel | None" = None  # override the shipped model (training, experiments)


def mouth_track(speech, frame_times: np.ndarray, strength: float = 1.0, acoustic_weight: float | None = None,
                params: MotionParams | None = None) -> MouthTrack:
    """Sample the wanted mouth at `frame_times` (seconds on the audio's clock)."""
    check_strength(strength)
    prm = params or MotionParams()
    if acoustic_weight is not None:
        prm = replace(prm, acoustic_weight=acoustic_weight)

    hop = speech.hop
    n = len(speech.voiced)
    voiced = np.asarray(speech.voiced, bool)
    jaw = np.asarray(speech.jaw, np.float64)
    jaw_opening = np.clip(jaw, 0, 1) * 0.85  # the acoustic jaw alone, where no phones are known
    phones = [p for p in speech.phones if p.label.upper() != "SIL"]
    if phones:
        _, opening, width, closure = phone_curves(speech.phones, n * hop, hop, prm.lead)
        opening, width, closure = opening[:n], width[:n], closure[:n]
        # loudness modulates emphasis; phones decide shape and closures
        aw = prm.acoustic_weight
        opening = opening * ((1 - aw) + aw * 1.6 * np.clip(jaw, 0, 1))
    else:  # no phones recognised: the acoustic jaw curve alone (no closures from acoustics)
        opening, width, closure = jaw_opening, np.zeros(n), np.zeros(n, bool)
    model = prm.model if prm.model is not None else (load_model() if prm.learned else None)
    if model is not None and getattr(speech, "mel", None) is not None and len(speech.mel):
        opening = learned_opening(speech, model)
    else:
        model = None
    if not prm.force_closures:
        closure = np.zeros(n, bool)

    # silence: the mouth rests closed; short pauses inside speech keep a relaxed opening; ramps, no snapping
    hard_silence = np.zeros(n, bool)
    if phones:
        # voice activity fires on breaths and background noise too: where the phones say a long silence, it is one,
        # unless the voice fills much of it: then the recogniser missed speech (laughter, mumbling, another language)
        t = (np.arange(n) + 0.5) * hop
        for p in speech.phones:
            at_end = p.start <= 0 or p.end >= n * hop - 0.01
            # pauses inside speech shorter than pause_bridge stay natural (speakers often pause open-mouthed);
            # leading and trailing silence always rests
            if p.label.upper() == "SIL" and (at_end or p.end - p.start >= max(prm.pause_bridge, 0.3)):
                lo = p.start + 0.05 if p.start > 0 else -1.0
                hi = p.end - 0.05 if p.end < n * hop - 0.01 else np.inf
                span = (t >= lo) & (t < hi)
                # whether the voice fills it is judged away from the recognised speech: in a silence that opens or
                # closes the audio, voice activity's overhang next to that speech is no missed speech
                edge = max(prm.edge_margin, 0.05) if at_end else 0.05
                judged = (t >= (p.start + edge if p.start > 0 else -1.0)) & \
                    (t < (p.end - edge if p.end < n * hop - 0.01 else np.inf))
                if not judged.any():
                    judged = span
                if span.any() and voiced[judged].mean() > prm.missed_speech:
                    if model is None:  # no phones there to drive the rules: the acoustic jaw does
                        opening = np.where(span, jaw_opening, opening)
                    continue
                hard_silence |= span
        voiced = voiced & ~hard_silence
    speaking = binary_dilation(voiced, iterations=3)
    opening_model = opening
    lead_hops = int(round(prm.onset_lead / hop))
    if lead_hops > 0:
        # the mouth does what the model says from onset_lead before each onset of speech (a ramp from closed over
        # that time scored lower: 0.562 vs 0.583 held out)
        for a in np.flatnonzero(speaking[1:] & ~speaking[:-1]) + 1:
            speaking[max(0, a - lead_hops):a] = True
    opening = np.where(speaking, opening, 0.0)
    bridge = int(round(prm.pause_bridge / hop))
    if bridge > 0:
        # a pause shorter than pause_bridge is part of the utterance: the mouth does what the model says there
        # (speakers breathe with their mouth open); only longer silences rest closed
        bridged = binary_closing(np.pad(speaking, bridge), np.ones(bridge, bool))[bridge:-bridge] & ~speaking
        bridged &= ~hard_silence
        if model is not None and prm.pause_open <= 0:
            opening = np.where(bridged, opening_model, opening)
        else:
            opening = np.where(bridged, prm.pause_open, opening)
        speaking = speaking | bridged
    if prm.smooth > 0:
        opening = gaussian_filter1d(opening, prm.smooth / hop)
    # the rest's share: 1 in a silence, fading over rest_ramp into the speech on either side (the onset lead, where
    # the model may start from closed, and the last word), so that a rest parted wider than the speech's edges
    # does not dip to closed on its way (rendering draws the larger of the speech's opening and the faded rest)
    rest = (~speaking).astype(np.float64)
    ramp = int(round(prm.rest_ramp / hop))
    if ramp > 0 and rest.any() and not rest.all():
        rest = np.clip(1.0 - distance_transform_edt(speaking) / (ramp + 1), 0.0, 1.0)
    if prm.smooth > 0:
        rest = gaussian_filter1d(rest, prm.smooth / hop)
    width = gaussian_filter1d(np.where(speaking, width, 0.0), 3.0)
    opening[closure] = 0.0
    ramp = int(round(prm.closure_ramp / hop))
    if ramp > 0 and closure.any():
        opening *= np.clip(distance_transform_edt(~closure) / (ramp + 1), 0.0, 1.0)
    rest[closure] = 0.0
    shut = closure | ~speaking

    # sample at frame times: average over each frame's exposure, but a closure anywhere in it wins
    frame_times = np.asarray(frame_times, np.float64)
    idx = np.clip(np.round((frame_times + prm.advance) / hop).astype(int), 0, n - 1)
    o = opening[idx]
    w = width[idx]
    r = rest[idx]
    shut_f = shut[idx]
    if len(frame_times) > 1:
        span = max(1, int(round(np.median(np.diff(frame_times)) / hop / 2)))
        o = exposure_mean(opening, idx, span)
        r = exposure_mean(rest, idx, span)
        has_closure = exposure_mean(closure.astype(np.float64), idx, span) > 0
        # no frame shows the audio before the first frame's advanced time: a closure there (a "b" at the very
        # start) shows on the first frame
        has_closure[0] |= bool(closure[:max(idx[0] - span, 0)].any())
        o[has_closure] = 0.0
        r[has_closure] = 0.0  # a bilabial stays fully shut, whatever the rest
        shut_f = shut_f | has_closure
    after = frame_times >= n * hop  # past the end of the audio (--length video): the mouth rests
    o[after], w[after], r[after], shut_f = 0.0, 0.0, 1.0, shut_f | after
    o = np.clip(o * strength, 0.0, 1.2)
    w = np.clip(w * strength, -1.0, 1.0)
    # strength 0 keeps the mouth still: the rest fades with it below 1 (above, the speech alone grows)
    r = np.clip(r, 0.0, 1.0) * min(strength, 1.0)
    return MouthTrack(frame_times, o.astype(np.float32), w.astype(np.float32), shut_f, r.astype(np.float32))


def exposure_mean(values: np.ndarray, centres: np.ndarray, span: int) -> np.ndarray:
    """Mean of `values` (hops) over [centre - span, centre + span] for each centre, clipped to the array: what a
    frame exposed over that time shows."""
    last = len(values) - 1
    lo, hi = np.clip(centres - span, 0, last), np.clip(centres + span, 0, last)
    cs = np.concatenate([[0.0], np.cumsum(values)])
    return (cs[hi + 1] - cs[lo]) / (hi + 1 - lo)

