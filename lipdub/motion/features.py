"""The learned models' inputs, each column named: the feature schema a model file's card must match.

Offline (motion.offline, OpeningModel): per 10 ms hop, each phone class's share of the dominance-blended mouth (what is
said), log-mel at MEL_CONTEXT hops around it (how it sounds), then jaw, loudness and voicing; a model trained with them
(its file's `posterior_taps`) also reads hama's phone-class posteriors (speech.posteriors) at those taps.
Live (motion.causal, CausalModel): per look-ahead, the phone classifier reads running-normalised log-mel and loudness
at causal_taps(look); the opening model reads the same, the classifier's posteriors at POSTERIOR_TAPS and, when the
model streams phones, voice activity and hama's streamed phone posteriors at STREAMED_TAPS, and when it reads them
(its file's `component_taps`), the streamed token components (speech.tokens) at those taps.
"""

from __future__ import annotations

import numpy as np

from lipdub.core.constants import HOP_SECONDS
from lipdub.errors import InputError
from lipdub.motion.visemes import BILABIALS, PHONE_CLASSES, dominance, viseme_target
from lipdub.speech.posteriors import smoothed_at
from lipdub.speech.recognise import POSTERIOR_FRAME
from lipdub.speech.tokens import N_COMPONENTS

# ------------------------------------------------------------------------------------------ offline model inputs
MEL_CONTEXT = (-12, -8, -4, 0, 4, 8, 12)  # hops
MEL_BANDS = 26  # speech.acoustic.log_mel's bands
# The dominance columns, in the order the shipped model was trained with (it was sorted(viseme table) then): named
# here so that editing the viseme table cannot silently reorder the model's inputs.
FEATURE_LABELS = ("AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH",
                  "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "SIL", "T", "TH", "UH",
                  "UW", "V", "W", "Y", "Z", "ZH")
ACOUSTIC_COLUMNS = ("jaw", "loudness", "voiced")
# s around a hop's centre where the shipped offline model reads the phone-class posteriors: hama's most likely class
# agrees best with the aligned phones' 0.04 s later, and these are the log-mel's ±120 ms around that (held out, 10
# folds of speakers: 0.654 -> 0.666; docs/RESULTS.md, Phone posteriors)
OFFLINE_POSTERIOR_TAPS = (-0.04, 0.0, 0.04, 0.08, 0.12)


def offline_feature_names(mel_context=MEL_CONTEXT, posterior_taps=(), component_taps=()) -> list[str]:
    """The offline model's input columns in order (model_features builds them so)."""
    return ([f"dominance:{label}" for label in FEATURE_LABELS]
            + [f"mel{off:+d}:{band}" for off in mel_context for band in range(MEL_BANDS)] + list(ACOUSTIC_COLUMNS)
            + [f"posterior{tap:+.2f}:{cls}" for tap in posterior_taps for cls in CLASS_NAMES + ("other",)]
            + [f"component{tap:+.2f}:{k}" for tap in component_taps for k in range(N_COMPONENTS)])


NO_POSTERIORS = ("the speech track has no phone posteriors, which the motion model was trained with (a speech track "
                 "saved by an older lipdub, or the phone recogniser hama failed: see the warning above); analyse the "
                 "audio again (drop --alignment, or save it again with --save-alignment), or choose "
                 "--motion-model permissive")


NO_COMPONENTS = ("the speech track has no token components (hama's whole output, projected), which the motion model "
                 "was trained with (a speech track saved by an older lipdub, or hama or the token axes failed: see the "
                 "warning above); analyse the audio again (drop --alignment, or save it again with "
                 "--save-alignment), or choose --motion-model permissive")


def component_columns(components: np.ndarray, hops: np.ndarray, taps) -> np.ndarray:
    """(len(hops), len(taps) · components) the token components (speech.tokens: one row per hop, already smoothed
    before their log) at each hop + tap (s); zeros outside the audio."""
    components = np.asarray(components)
    cols = []
    for tap in taps:
        rows = np.asarray(hops) + int(round(tap / HOP_SECONDS))
        ok = (rows >= 0) & (rows < len(components))
        block = np.zeros((len(rows), components.shape[1]))
        block[ok] = components[rows[ok]]
        cols.append(block)
    return np.concatenate(cols, 1) if cols else np.zeros((len(hops), 0))


def posterior_columns(post: np.ndarray, hops: np.ndarray, taps) -> np.ndarray:
    """(len(hops), len(taps) · columns) the phone-class posteriors `post` (speech.posteriors: one row per hop) at each
    hop + tap (s), smoothed over ±1 of hama's 20 ms frames as the live model reads them (CTC is peaky); zeros
    outside the audio."""
    cols = [smoothed_at(post, np.asarray(hops) + int(round(tap / HOP_SECONDS))) for tap in taps]
    return np.concatenate(cols, 1) if cols else np.zeros((len(hops), 0))


def dominance_features(phones, n: int, hop: float, lead: float = 0.02, start: int = 0, stop: int | None = None
                       ) -> np.ndarray:
    """(stop - start, len(FEATURE_LABELS)): each phone class's share of the dominance-blended mouth at hops
    [start, stop) of n (default: all); any range gives the same numbers as those rows of the whole."""
    stop = n if stop is None else min(stop, n)
    m = max(0, stop - start)
    t = (np.arange(start, start + m) + 0.5) * hop
    feats = np.zeros((m, len(FEATURE_LABELS)))
    den = np.full(m, 1e-6)
    column = {label: i for i, label in enumerate(FEATURE_LABELS)}
    # a phone's weight exp(-dist / reach) is exactly 0.0 in float64 beyond 746 reaches (67 s at the widest): each
    # phone only touches the hops within that, the same numbers at a fraction of the work on long audio
    span = 746 * 0.09 + hop
    for ph in phones:
        centre = 0.5 * (ph.start + ph.end) - lead
        half = max(0.5 * (ph.end - ph.start), 0.02)
        lo, hi = max(0, int((centre - half - span) / hop)), min(n, int((centre + half + span) / hop) + 1)
        lo, hi = max(lo, start) - start, min(hi, stop) - start
        if hi <= lo:
            continue
        label = ph.label.upper().rstrip("012")
        _, _, dom = viseme_target(label)
        d = dominance(t[lo:hi], centre, half, dom, label in BILABIALS)
        if label in column:
            feats[lo:hi, column[label]] += d
        den[lo:hi] += d
    return feats / den[:, None]


def model_features(speech, start: int = 0, stop: int | None = None, mel_context=MEL_CONTEXT, posterior_taps=(),
                   component_taps=()) -> np.ndarray:
    """(N, F) features of the learned opening model at hops [start, stop) of `speech` (default: all); columns as
    offline_feature_names(mel_context, posterior_taps, component_taps) (a model file names its own taps:
    OpeningModel.mel_context, .posterior_taps, .component_taps)."""
    n = len(speech.voiced)
    stop = n if stop is None else min(stop, n)
    mel = np.asarray(speech.mel, np.float32)[:n]
    idx = np.arange(start, stop)

    def mel_at(rows: np.ndarray) -> np.ndarray:  # rows past the analysed spectrum are silence (zeros)
        rows = np.clip(rows, 0, n - 1)
        out = np.zeros((len(rows), mel.shape[1]), np.float32)
        inside = rows < len(mel)
        out[inside] = mel[rows[inside]]
        return out

    context = [mel_at(idx + off) for off in mel_context]
    acoustic = np.stack([speech.jaw[start:stop], speech.loudness[start:stop],
                         np.asarray(speech.voiced[start:stop], np.float32)], 1)
    dominance_part = dominance_features(speech.phones, n, speech.hop, start=start, stop=stop)
    parts = [dominance_part] + context + [acoustic]
    if len(posterior_taps):
        if getattr(speech, "posteriors", None) is None:
            raise InputError(NO_POSTERIORS)
        parts.append(posterior_columns(speech.posteriors, idx, posterior_taps))
    if len(component_taps):
        if getattr(speech, "components", None) is None:
            raise InputError(NO_COMPONENTS)
        parts.append(component_columns(speech.components, idx, component_taps))
    return np.concatenate(parts, 1)


# ------------------------------------------------------------------------------------------ live model inputs
CAUSAL_PAST = (-24, -16, -10, -6, -3, 0)  # hops of log-mel context before the frame
CAUSAL_FUTURE = (3, 6, 10, 15)  # hops after it, used as far as the look-ahead allows
CAUSAL_LOOKAHEADS = (0, 5, 10, 15)  # hops: one trained model set per look-ahead
POSTERIOR_TAPS = (-6, -3, 0)  # hops: the classifier's own look-ahead already reaches the limit, so only the past
STREAMED_TAPS = (-0.08, -0.04, 0.0, 0.04, 0.08, 0.12)  # s around a hop's centre where hama's posteriors are read
VAD_MARGIN = 2  # hops: the silero window holding a hop's centre ends up to 37 ms later, i.e. 2 hops before the mel
CLASS_NAMES = tuple("+".join(group) for group in PHONE_CLASSES)


def causal_taps(look_hops: int) -> tuple[int, ...]:
    return CAUSAL_PAST + tuple(f for f in CAUSAL_FUTURE if f <= look_hops)


def classifier_feature_names(look_hops: int) -> list[str]:
    """The live phone classifier's input columns at a look-ahead (causal_features builds them so)."""
    taps = causal_taps(look_hops)
    return [f"mel{tap:+d}:{band}" for tap in taps for band in range(MEL_BANDS)] + [f"loudness{tap:+d}" for tap in taps]


def opening_feature_names(look_hops: int, streamed_phones: bool, component_taps=()) -> list[str]:
    """The live opening model's input columns at a look-ahead (causal_opening_inputs builds them so)."""
    names = classifier_feature_names(look_hops)
    names += [f"posterior{tap:+d}:{cls}" for tap in POSTERIOR_TAPS for cls in CLASS_NAMES]
    if streamed_phones:
        names += ["voiced_now", "since_voiced"]
        for tap in STREAMED_TAPS:
            names += [f"streamed{tap:+.2f}:{cls}" for cls in CLASS_NAMES + ("other",)] + [f"streamed{tap:+.2f}:reached"]
        names += [f"streamed_component{tap:+.2f}:{k}" for tap in component_taps for k in range(N_COMPONENTS)]
    return names


def causal_features(mel: np.ndarray, loudness: np.ndarray, hops: np.ndarray, taps: tuple[int, ...], first: int,
                    last: int | None) -> np.ndarray:
    """(len(hops), len(taps) · 27) classifier inputs: log-mel and loudness at hop + tap, taps clamped to [0, last]
    (`last` None: every tap exists). `mel`/`loudness` rows start at absolute hop `first`."""
    idx = hops[:, None] + np.asarray(taps)[None, :]
    idx = np.maximum(idx, 0) if last is None else np.clip(idx, 0, last)
    idx = idx - first
    return np.concatenate([mel[idx].reshape(len(hops), -1), loudness[idx]], 1)


def posterior_features(post: np.ndarray, hops: np.ndarray, first: int) -> np.ndarray:
    """(len(hops), len(POSTERIOR_TAPS) · classes): class posteriors at hop + tap (clamped at hop 0); `post` rows
    start at absolute hop `first`."""
    idx = np.maximum(hops[:, None] + np.asarray(POSTERIOR_TAPS)[None, :], 0) - first
    return post[idx].reshape(len(hops), -1)



def ready_sample(hop, look: int):
    """Audio samples needed before hop `hop` is final at `look` hops of look-ahead (its log-mel window's end)."""
    return 160 * (np.asarray(hop) + look) + 400


def _streamed_frames(phones, hops: np.ndarray, look: int, taps):
    """For ascending `hops`: per run r of `phones` that the hops use (the newest complete when a hop's own features
    were) and per tap j, (r, rows of `hops` using it, j, the run's frame at hop + tap for those rows)."""
    run = phones.run_for(ready_sample(hops, look))
    for r in np.unique(run):
        sel = np.flatnonzero(run == r)
        t0 = phones.runs[int(r)][0]
        centre = (hops[sel] + 0.5) * HOP_SECONDS
        for j, tap in enumerate(taps):
            yield int(r), sel, j, np.round((centre + tap - t0) / POSTERIOR_FRAME - 0.5).astype(int)


def streamed_posteriors(phones, hops: np.ndarray, look: int) -> np.ndarray:
    """(len(hops), len(STREAMED_TAPS) · (classes + 1)) hama's class posteriors (smoothed over ±1 frame: CTC is peaky)
    around ascending `hops`, each from the newest run of `phones` (a speech.stream.StreamingPosteriors) that was
    complete when the hop's own features were; per tap one more column says whether that run reached it. What the
    live stream knows of the phones around the hop at that moment, and the same numbers in training."""
    width = phones.n_classes + 1
    out = np.zeros((len(hops), len(STREAMED_TAPS) * width))
    smoothed: dict[int, np.ndarray] = {}
    for r, sel, j, frame in _streamed_frames(phones, hops, look, STREAMED_TAPS):
        probs = phones.runs[r][1]
        if not len(probs):
            continue
        if r not in smoothed:
            smooth = probs.astype(np.float64)
            smooth[1:] += probs[:-1]
            smooth[:-1] += probs[1:]
            smoothed[r] = smooth / 3.0
        ok = (frame >= 0) & (frame < len(probs))
        out[sel[ok], j * width:j * width + phones.n_classes] = smoothed[r][frame[ok]]
        out[sel, (j + 1) * width - 1] = ok
    return out


def streamed_components(phones, hops: np.ndarray, look: int, taps) -> np.ndarray:
    """(len(hops), len(taps) · components) the token components of the same runs as streamed_posteriors at hop + tap
    (s; taps among STREAMED_TAPS, whose `reached` columns say where a run ended); zeros (the axes' mean) where the
    run did not reach. `phones` must keep components (StreamingPosteriors with token axes)."""
    out = np.zeros((len(hops), len(taps) * N_COMPONENTS))
    for r, sel, j, frame in _streamed_frames(phones, hops, look, taps):
        comps = phones.components[r]
        ok = (frame >= 0) & (frame < len(comps))
        out[sel[ok], j * N_COMPONENTS:(j + 1) * N_COMPONENTS] = comps[frame[ok]]
    return out


def voice_features(voiced_now: np.ndarray, last_voiced: np.ndarray, hops: np.ndarray) -> np.ndarray:
    """(len(hops), 2): voice activity at the newest hop it is known for, and seconds since the last voiced hop
    (clipped to [-0.2, 1.5]): lets the opening model learn how speakers' mouths settle in pauses."""
    since = np.clip((hops - np.asarray(last_voiced, np.float64)) * HOP_SECONDS, -0.2, 1.5)
    return np.stack([np.asarray(voiced_now, np.float64), since], 1)


def last_voiced_hops(voiced: np.ndarray, upto: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a whole stream's voice activity: (the last voiced hop <= each `upto` clamped to the stream, or -1e9;
    whether that hop is voiced), as the live engine knows them."""
    voiced = np.asarray(voiced, bool)
    if not voiced.size:
        return np.full(len(upto), -(10 ** 9)), np.zeros(len(upto), bool)
    upto = np.asarray(upto)
    at = np.clip(upto, 0, voiced.size - 1)
    last = np.maximum.accumulate(np.where(voiced, np.arange(voiced.size), -(10 ** 9)))
    return np.where(upto >= 0, last[at], -(10 ** 9)), voiced[at] & (upto >= 0)


def causal_opening_inputs(x: np.ndarray, post: np.ndarray, voiced: np.ndarray | None, phones, look: int,
                          component_taps=()) -> np.ndarray:
    """The opening model's inputs at every hop of a whole stream, as the live engine builds them hop by hop:
    classifier inputs `x` (causal_features), class posteriors `post`, and with `phones` (StreamingPosteriors, all
    runs kept) voice activity `voiced`, the streamed phone posteriors and the streamed token components at
    `component_taps`. Training uses this (tests check the engine against it)."""
    hops = np.arange(len(x))
    parts = [x, posterior_features(post, hops, 0)]
    if phones is not None:
        last_voiced, voiced_now = last_voiced_hops(voiced, hops + look - VAD_MARGIN)
        parts += [voice_features(voiced_now, last_voiced, hops), streamed_posteriors(phones, hops, look)]
        if len(component_taps):
            parts.append(streamed_components(phones, hops, look, component_taps))
    return np.concatenate(parts, 1)
