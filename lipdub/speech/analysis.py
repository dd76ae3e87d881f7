"""`analyse`: voice activity, acoustic jaw/loudness and phones (aligned to a transcript when one is given).

Phones come from, in order of preference:
- a transcript: pocketsphinx forced alignment; English words from cmudict (unknown words through espeak-ng), other
  languages through espeak-ng IPA mapped to en-us phones ("forced-alignment" / "forced-alignment-espeak");
- no transcript: hama's recognised phone words force-aligned by pocketsphinx ("hama+align"), else pocketsphinx
  allphone decoding ("allphone"); if nothing works, phones = [] ("acoustic-only"; jaw and loudness still valid).
Audio longer than 30 s is processed in chunks cut at pauses (one long alignment drifts). With a transcript, a cheap
word-level alignment of the whole file first decides which words fall in which chunk.
"""

from __future__ import annotations

import logging
from math import gcd

import numpy as np

from lipdub.core.constants import HOP_SECONDS, SR
from lipdub.core.resample import resample_poly
from lipdub.errors import DependencyError, ParameterError
from lipdub.speech import align, g2p, posteriors, recognise, silero, tokens, vad
from lipdub.speech.acoustic import frame_rms, jaw_opening, log_mel, loudness as loudness_curve, n_frames
from lipdub.speech.align import PHONE_BIAS, Seg
from lipdub.speech.track import Phone, SpeechTrack

log = logging.getLogger(__name__)

MAX_CHUNK = 30.0
MIN_CHUNK = 10.0
_RANK = {"forced-alignment": 0, "forced-alignment-espeak": 0, "hama+align": 1, "allphone": 2, "acoustic-only": 3}


def prepare_audio(audio, sr: int) -> np.ndarray:
    """Mono float32 16 kHz audio in [-1, 1] from mono or (samples, channels) audio of any rate and dtype."""
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise ParameterError(f"sample rate must be a positive integer, got {sr!r}")
    a = np.asarray(audio)
    if a.ndim == 2:
        a = a.mean(axis=int(np.argmin(a.shape)))
    if a.ndim != 1:
        raise ParameterError(f"audio must be mono (1-D) or (samples, channels), got shape {a.shape}")
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / float(max(abs(np.iinfo(a.dtype).min), np.iinfo(a.dtype).max))
    a = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if sr != SR and a.size:
        g = gcd(int(sr), SR)
        a = resample_poly(a, SR // g, int(sr) // g).astype(np.float32)
    return np.clip(a, -1.0, 1.0)


# ---------------------------------------------------------------------------------------------------------- chunks
def plan_chunks(pause: np.ndarray, score: np.ndarray, allowed: np.ndarray | None = None,
                max_len: float = MAX_CHUNK, min_len: float = MIN_CHUNK, hop: float = HOP_SECONDS
                ) -> list[tuple[int, int]]:
    """Split frames [0, N) into chunks of at most `max_len` s, cutting in the longest pause (True in `pause`) found
    between `min_len` and `max_len` into the chunk, else at the frame of lowest `score`. Cuts only at `allowed`."""
    n = pause.size
    max_f, min_f = int(round(max_len / hop)), int(round(min_len / hop))
    if allowed is None:
        allowed = np.ones(n, bool)
    chunks, start = [], 0
    runs = vad.segments(pause & allowed)
    while n - start > max_f:
        lo, hi = start + min_f, start + max_f
        best, best_len = None, 0
        for a, b in runs:
            ca, cb = max(a, lo), min(b, hi)
            if cb > ca and b - a >= best_len:
                best, best_len = (ca + cb) // 2, b - a
        if best is None:
            window = np.where(allowed[lo:hi], score[lo:hi], np.inf)
            best = lo + int(np.argmin(window)) if np.isfinite(window).any() else hi
        chunks.append((start, best))
        start = best
    chunks.append((start, n))
    return chunks


# ------------------------------------------------------------------------------------------------------- phones
def _transcript_tokens(words: list[str], language: str | None) -> tuple[list[str], str]:
    """Dictionary tokens for the transcript words, and the method name."""
    english = language is None or language.lower().replace("_", "-").split("-")[0] == "en"
    if english:
        tokens: list[str | None] = [align.dictionary_token(w, None) for w in words]
        missing = [i for i, t in enumerate(tokens) if t is None]
        if missing:
            if g2p.espeak_available():
                prons = g2p.g2p([words[i] for i in missing], "en-us")
                for i, pron in zip(missing, prons):
                    tokens[i] = align.dictionary_token(None, pron)
            else:
                log.warning("espeak-ng missing: %d word(s) not in cmudict are left out of the alignment", len(missing))
        return [t for t in tokens if t], "forced-alignment"
    prons = g2p.g2p(words, language)
    return [t for t in (align.dictionary_token(None, p) for p in prons) if t], "forced-alignment-espeak"


def _shift(segs: list[Seg], offset: float) -> list[Seg]:
    return [Seg(s.label, s.start + offset, s.end + offset) for s in segs]


def _recognise_chunk(audio: np.ndarray) -> tuple[list[Seg] | None, str, np.ndarray | None]:
    """No transcript: hama words force-aligned, else allphone; and hama's frame posteriors of the same pass (None when
    hama failed)."""
    try:
        words, probs = recognise.recognise_with_posteriors(audio, SR)
    except Exception as exc:  # hama missing or failing: fall through to allphone
        log.warning("hama phone recognition failed (%s); trying pocketsphinx allphone", exc)
        words, probs = [], None
    if words:
        tokens = [t for t in (align.dictionary_token(None, w.phones) for w in words) if t]
        segs = align.align_phones(audio, tokens)
        if segs:
            return segs, "hama+align", probs
        log.info("aligning hama's phones failed; trying allphone")
    segs = align.allphone(audio)
    if segs:
        return segs, "allphone", probs
    return None, "acoustic-only", probs


def _word_chunks(audio: np.ndarray, tokens: list[str], voiced: np.ndarray, rms: np.ndarray
                 ) -> list[tuple[int, int, list[str]]]:
    """Chunks ≤ 30 s with the transcript tokens each one holds, decided by a whole-file word-level alignment."""
    n = voiced.size
    if n * HOP_SECONDS <= MAX_CHUNK:
        return [(0, n, tokens)]
    words = align.align_words(audio, tokens)
    if words is None:
        log.warning("whole-file word alignment failed; splitting the transcript by voiced time")
        chunks = plan_chunks(~voiced, rms)
        cum = np.concatenate([[0], np.cumsum(voiced)])
        total = max(int(cum[-1]), 1)
        out, k = [], 0
        for a, b in chunks:
            k2 = len(tokens) if b == n else int(round(len(tokens) * cum[b] / total))
            out.append((a, b, tokens[k:k2]))
            k = k2
        return out
    in_word = np.zeros(n, bool)
    spans = [w for w in words if w.label != "<sil>" and not w.label.startswith("+")]
    for w in spans:
        in_word[int(round(w.start / HOP_SECONDS)) : int(round(w.end / HOP_SECONDS))] = True
    allowed = ~in_word
    allowed[[int(round(w.start / HOP_SECONDS)) for w in spans if int(round(w.start / HOP_SECONDS)) < n]] = True
    chunks = plan_chunks(~voiced & ~in_word, rms, allowed)
    mids = np.array([(w.start + w.end) / 2 for w in spans])
    out = []
    for a, b in chunks:
        sel = np.flatnonzero((mids >= a * HOP_SECONDS) & (mids < b * HOP_SECONDS)) if b < n \
            else np.flatnonzero(mids >= a * HOP_SECONDS)
        out.append((a, b, [tokens[i] for i in sel]))
    if sum(len(t) for _, _, t in out) != len(tokens):  # alignment returned a different word count: keep order
        log.warning("word alignment lost words; aligning the file in one piece")
        return [(0, n, tokens)]
    return out


def _finalise(segs: list[Seg], voiced: np.ndarray, duration: float) -> list[Phone]:
    """Bias-correct, turn phones outside speech into SIL, trim phones reaching into silence, tile [0, duration]."""
    n = voiced.size
    out: list[Phone] = []

    def emit(label: str, start: float, end: float) -> None:
        start, end = max(0.0, min(start, duration)), max(0.0, min(end, duration))
        if out:
            start = max(start, out[-1].end)
            if start > out[-1].end + 1e-9:
                emit_gap = Phone("SIL", out[-1].end, start)
                out.append(emit_gap)
        elif start > 1e-9:
            out.append(Phone("SIL", 0.0, start))
        if end - start < 1e-6:
            return
        if label == "SIL" and out and out[-1].label == "SIL":
            out[-1].end = end
        else:
            out.append(Phone(label, start, end))

    trim = 3  # frames of silence (30 ms) before a phone's edge is moved to the speech boundary
    for s in sorted(segs, key=lambda s: s.start):
        start, end = s.start + PHONE_BIAS, s.end + PHONE_BIAS
        label = s.label
        if label != "SIL":
            a = min(max(int(np.floor(start / HOP_SECONDS + 1e-6)), 0), n)
            b = min(max(int(np.ceil(end / HOP_SECONDS - 1e-6)), a), n)
            v = voiced[a:b]
            if v.size == 0 or v.mean() < 0.25:
                label = "SIL"
            else:
                idx = np.flatnonzero(v)
                if idx[0] >= trim:
                    start = (a + idx[0]) * HOP_SECONDS
                if v.size - 1 - idx[-1] >= trim:
                    end = (a + idx[-1] + 1) * HOP_SECONDS
        emit(label, start, end)
    if out and out[-1].end < duration - 1e-6:
        emit("SIL", out[-1].end, duration)
    # merge SIL neighbours created by relabelling
    merged: list[Phone] = []
    for p in out:
        if merged and p.label == "SIL" and merged[-1].label == "SIL":
            merged[-1].end = p.end
        else:
            merged.append(p)
    return merged


# ------------------------------------------------------------------------------------------------------ analyse
def analyse(audio: np.ndarray, sr: int = SR, transcript: str | None = None, language: str | None = None,
            pronunciations: list[list[str]] | None = None) -> SpeechTrack:
    """Analyse speech audio (mono float, any rate; 16 kHz expected) into a `SpeechTrack`.

    `pronunciations` (ARPAbet phones per word) replaces the transcript's dictionary/G2P lookup when the exact
    pronunciation is known, as for speech synthesised by espeak-ng (`lipdub say`)."""
    if language is not None and not isinstance(language, str):
        raise ParameterError(f"language must be a language code such as 'en' or 'es', got {language!r}")
    language = (language.strip() or None) if language is not None else None
    if language is not None:
        g2p.espeak_voice(language)  # validates the tag (ParameterError)
    if transcript is not None and not isinstance(transcript, str):
        raise ParameterError(f"transcript must be text, got {type(transcript).__name__}")
    x = prepare_audio(audio, sr)
    duration = x.size / SR
    n = n_frames(x.size, SR, HOP_SECONDS)
    voiced = vad.detect_voice(x, HOP_SECONDS)[:n]
    rms = frame_rms(x, SR, HOP_SECONDS)
    jaw = jaw_opening(x, voiced, SR, HOP_SECONDS, rms=rms)
    loud = loudness_curve(rms)
    track = SpeechTrack(duration, HOP_SECONDS, voiced, jaw, loud, [], "acoustic-only", language,
                        log_mel(x, SR, HOP_SECONDS)[:n])
    if n == 0:
        return _heard_nothing(track, n)

    try:
        segs, methods, hop_tokens = _phones(x, transcript, language, voiced, rms, pronunciations)
    except DependencyError as exc:  # pocketsphinx/espeak-ng broken: the acoustic cues still drive the mouth
        log.warning("phone analysis unavailable (%s); using the acoustic jaw only", exc)
        return _heard_nothing(track, n)
    _keep_tokens(track, hop_tokens)
    if not methods:
        return track
    track.method = max(methods, key=lambda m: _RANK[m])
    track.phones = _finalise(segs, voiced, duration)
    if not any(p.label != "SIL" for p in track.phones):
        track.phones, track.method = [], "acoustic-only"
    return track


def _keep_tokens(track: SpeechTrack, hop_tokens: np.ndarray | None) -> None:
    """Keep hama's per-hop token probabilities in `track` as what the models read: the phone-class sums
    (`posteriors`) and the projections on the shipped axes (`components`); None (hama failed): neither."""
    track.posteriors = track.components = None
    if hop_tokens is None:
        return
    track.posteriors = posteriors.class_posteriors(hop_tokens)
    try:
        track.components = tokens.load_axes().project(hop_tokens)
    except DependencyError as exc:  # the research model will say what is missing; the permissive one needs none
        log.warning("hama's token components are unavailable (%s)", exc)


def _heard_nothing(track: SpeechTrack, n_hops: int) -> SpeechTrack:
    """`track` with the tokens of audio no recogniser heard (all blank; the class posteriors silence() if hama cannot
    be loaded): an analysis that ran no recognition."""
    _keep_tokens(track, _unheard(n_hops))
    if track.posteriors is None:  # hama missing: no recogniser heard anything
        track.posteriors = posteriors.silence(n_hops)
    return track


def _unheard(n_hops: int) -> np.ndarray | None:
    """speech.tokens.unheard(n_hops), or None when hama cannot be loaded (its token list is hama's)."""
    try:
        return tokens.unheard(n_hops)
    except Exception as exc:  # hama missing or failing: the phones and acoustics still drive the mouth
        log.warning("hama's token list is unavailable (%s)", exc)
        return None


def _phones(x: np.ndarray, transcript: str | None, language: str | None, voiced: np.ndarray, rms: np.ndarray,
            pronunciations: list[list[str]] | None) -> tuple[list[Seg], list[str], np.ndarray | None]:
    """Raw phone spans (seconds, not bias-corrected), the method used for each chunk that produced phones, and hama's
    token probabilities per hop from its passes over the voiced chunks (speech.tokens; None if hama failed on one)."""
    hop_tokens = _unheard(voiced.size)
    words = g2p.tokenize(transcript) if transcript else []
    segs: list[Seg] = []
    methods: list[str] = []
    if words and not pronunciations:
        english = language is None or language.lower().replace("_", "-").split("-")[0] == "en"
        if not english and not g2p.espeak_available():
            log.warning("espeak-ng is not installed: ignoring the %s transcript and recognising phones", language)
            words = []
    if words or pronunciations:
        if pronunciations:
            dict_tokens = [t for t in (align.dictionary_token(None, list(p)) for p in pronunciations) if t]
            text_method = "forced-alignment-espeak"
        else:
            dict_tokens, text_method = _transcript_tokens(words, language)
        for a, b, toks in _word_chunks(x, dict_tokens, voiced, rms):
            chunk = x[int(a * HOP_SECONDS * SR) : int(b * HOP_SECONDS * SR)]
            got = align.align_phones(chunk, toks) if toks else None
            method = text_method
            if got is None and voiced[a:b].any():
                log.warning("forced alignment failed for %.1f–%.1f s; recognising phones there", a * HOP_SECONDS,
                            b * HOP_SECONDS)
                got, method, _ = _recognise_chunk(chunk)  # the posteriors come from the pass below
            if got:
                segs += _shift(got, a * HOP_SECONDS)
                methods.append(method)
        # recognition did not run: one more hama pass, on the chunks it would have heard (the same posteriors)
        try:
            hop_tokens = tokens.chunk_tokens(x, recognition_chunks(voiced, rms), voiced.size)
        except Exception as exc:  # hama missing or failing: the phones above still drive the mouth
            log.warning("hama's phone posteriors are unavailable (%s)", exc)
            hop_tokens = None
    else:
        for a, b in recognition_chunks(voiced, rms):
            got, method, probs = _recognise_chunk(x[int(a * HOP_SECONDS * SR) : int(b * HOP_SECONDS * SR)])
            if probs is None:
                hop_tokens = None
            elif hop_tokens is not None:
                tokens.place(hop_tokens, a, probs)
            if got:
                segs += _shift(got, a * HOP_SECONDS)
                methods.append(method)
    return segs, methods, hop_tokens


def recognition_chunks(voiced: np.ndarray, rms: np.ndarray) -> list[tuple[int, int]]:
    """The chunks (hops) hama hears without a transcript: at most 30 s, cut in pauses, each with speech."""
    return [(a, b) for a, b in plan_chunks(~voiced, rms) if voiced[a:b].any()]


def release_models() -> None:
    """Let go of the speech stage's cached models (recogniser, aligner, voice activity: ~50 MB); they load again on
    the next analysis."""
    import gc

    for cached in (recognise._model, align._align_decoder, silero.batch_model):
        cached.cache_clear()
    gc.collect()
