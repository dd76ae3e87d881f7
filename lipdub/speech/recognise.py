"""Phone recognition without a transcript: hama's waveform CTC model (English phones, IPA, numpy only).

For other languages it still yields a phone-like string with usable timing. Spans are coarse (CTC is peaky) and
run ~70 ms late; the caller force-aligns the recognised words with pocketsphinx for precise boundaries.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from lipdub.core.constants import SR
from lipdub.speech.g2p import ipa_to_arpabet

log = logging.getLogger(__name__)

HAMA_DELAY = 0.07  # hama spans start ~70 ms after the phone
_lock = threading.Lock()


@dataclass
class RecognisedWord:
    phones: list[str]  # ARPAbet
    start: float  # seconds, delay-corrected, relative to the audio passed in
    end: float
    spans: list[tuple[str, float, float]] = field(default_factory=list)  # per-phone (ARPAbet, start, end)


@lru_cache(maxsize=1)
def _model():
    import hama

    return hama.ASRModel()


POSTERIOR_FRAME = 0.02  # s: hama emits one distribution per 320 samples


def token_phones() -> list[str]:
    """Per hama output token: its first ARPAbet phone, or '' for blank, word boundary and other non-phones."""
    tokens = _model().decoder_tokens
    return [(ipa_to_arpabet(t) or [""])[0] if not t.startswith("<") else "" for t in tokens]


def blank_token() -> int:
    """The index of hama's CTC blank among its output tokens."""
    return int(_model().blank_id)


def _run(audio: np.ndarray) -> tuple[np.ndarray, int]:
    """hama's (frames, tokens) log-probabilities of one 16 kHz float32 waveform, and how many frames are valid."""
    with _lock:
        model = _model()
        log_probs, lengths = model.session.run(
            [model._log_probs_output_name, model._out_lengths_output_name],
            {model._waveform_input_name: audio.reshape(1, -1),
             model._waveform_lengths_input_name: np.array([audio.size], np.int64)})
    return log_probs[0], int(np.asarray(lengths).reshape(-1)[0])


def _probabilities(log_probs: np.ndarray, valid: int) -> np.ndarray:
    lp = np.asarray(log_probs[:valid], np.float64)
    p = np.exp(lp - lp.max(1, keepdims=True))
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def frame_posteriors(audio: np.ndarray, sr: int = SR) -> np.ndarray:
    """(frames, tokens) hama's per-frame token probabilities (one frame per 20 ms from the start of `audio`), before
    CTC decoding: soft evidence of the phones even where the decoder would emit nothing yet."""
    audio = np.asarray(audio, np.float32).reshape(-1)
    if audio.size < sr // 10:
        return np.zeros((0, len(_model().decoder_tokens)), np.float32)
    return _probabilities(*_run(audio))


def recognise(audio: np.ndarray, sr: int = SR) -> list[RecognisedWord]:
    """hama's phone words for 16 kHz `audio`, mapped to ARPAbet; [] when nothing was recognised."""
    return recognise_with_posteriors(audio, sr)[0]


def recognise_with_posteriors(audio: np.ndarray, sr: int = SR) -> tuple[list[RecognisedWord], np.ndarray]:
    """(recognise's words, frame_posteriors) of 16 kHz `audio` from one hama pass: the analysis keeps both."""
    if sr != SR:
        raise ValueError(f"hama's phone recognition takes {SR} Hz audio, got {sr} Hz")
    audio = np.clip(np.asarray(audio, np.float32).reshape(-1), -1.0, 1.0)  # as hama's transcribe_waveform
    if audio.size < sr // 10:
        return [], np.zeros((0, len(_model().decoder_tokens)), np.float32)
    log_probs, valid = _run(audio)
    model = _model()
    # hama's own decoding of these log-probabilities (transcribe_waveform runs the same two steps)
    result = model._decode_single(log_probs, valid)
    spans = model.phoneme_spans(result)
    return _words(model, result, spans, len(audio) / sr), _probabilities(log_probs, valid)


def _words(model, result, spans, total: float) -> list[RecognisedWord]:
    """The recognised phones grouped into words (hama's word-boundary token), delay-corrected, in ARPAbet."""
    wb = model.decode_cfg.word_boundary_token
    blank = model.blank_id
    frame = POSTERIOR_FRAME
    # word boundaries: a <wb> emission separates words; recover them from the frame token stream
    words: list[RecognisedWord] = []
    cur: list[tuple[str, float, float]] = []
    boundary_frames = set()
    prev = -1
    for i, tok in enumerate(result.frame_token_ids):
        if tok != prev and tok != blank and model.decoder_tokens[tok] == wb:
            boundary_frames.add(i)
        prev = tok

    def flush():
        if cur:
            phones = [p for p, _, _ in cur]
            words.append(RecognisedWord(phones, cur[0][1], cur[-1][2], list(cur)))
            cur.clear()

    bounds = sorted(boundary_frames)
    bi = 0
    for sp in spans:
        while bi < len(bounds) and bounds[bi] <= sp.start_frame:
            flush()
            bi += 1
        arpa = ipa_to_arpabet(sp.phoneme)
        if not arpa:
            continue
        start = max(0.0, sp.start_frame * frame - HAMA_DELAY)
        # CTC spans run until the next emission: cap a phone at 250 ms (the rest is silence or a held sound)
        end = min(total, max(start + 0.02, min(sp.end_frame * frame - HAMA_DELAY, start + 0.25)))
        step = (end - start) / len(arpa)
        for j, p in enumerate(arpa):
            cur.append((p, start + j * step, start + (j + 1) * step))
    flush()
    return words
