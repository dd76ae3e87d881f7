"""pocketsphinx (en-us acoustic model): forced alignment of a word/pronunciation sequence, and allphone decoding.

Forced alignment runs `set_align_text` → decode (word level) → `set_alignment` → decode again (phone level), with
`bestpath=False` and wide beams (narrow beams end in "impossible duration"). Every alignment or decoding gets a
fresh decoder: a reused one answers differently depending on what it decoded before, and the same audio must give
the same phones in any process (batch workers run many jobs each). Decoding is guarded by a lock. Frame times are
10 ms; phone starts come ~9 ms early (corrected by the caller through `PHONE_BIAS`).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from lipdub.errors import DependencyError
from lipdub.speech.g2p import ARPABET

log = logging.getLogger(__name__)

FRAME = 0.01
PHONE_BIAS = 0.009  # pocketsphinx phone starts are ~9 ms early on clean speech
_lock = threading.RLock()


@dataclass
class Seg:
    """A labelled span in seconds relative to the audio passed in."""

    label: str
    start: float
    end: float


def _ps():
    try:
        import pocketsphinx
    except ImportError as exc:  # pragma: no cover - the venv always has it
        raise DependencyError("pocketsphinx is not installed; run `make venv`") from exc
    return pocketsphinx


def _new_align_decoder(dictionary: str | None = None):
    ps = _ps()
    # Beams are effectively open: espeak-mapped or recognised pronunciations score poorly on the en-us model and
    # get pruned to "no alignment" at 1e-80 (measured on 7 s of Spanish); the cost is ~15 % more time.
    words = {} if dictionary is None else {"dict": dictionary}  # (dict=None would be no dictionary, not cmudict)
    return ps.Decoder(lm=None, bestpath=False, beam=1e-300, wbeam=1e-280, pbeam=1e-300, loglevel="FATAL", **words)


@lru_cache(maxsize=1)
def _align_decoder():
    """The dictionary: cmudict look-ups, and where pronunciation entries are registered (never decodes)."""
    return _new_align_decoder()


def _decoder_for(tokens: list[str]):
    """A fresh decoder whose dictionary holds `tokens` alone. One decoder reused across alignments gives results
    that depend on what it aligned before (measured: the same audio and words aligned differently after another
    clip's analysis), so every alignment gets its own: the result depends on the audio and words alone. Its
    dictionary starts empty (loading all of cmudict took ~0.09 s of the ~0.1 s a decoder cost) and gets the words
    an alignment reads: cmudict's pronunciations of the tokens, alternates included, added as cmudict lists them,
    then the pronunciation entries, sorted (the same phones and times as a decoder holding all of cmudict:
    tests/test_speech.py)."""
    d = _new_align_decoder(os.devnull)
    full = _align_decoder()
    entries = []
    for word in dict.fromkeys(t for t in tokens if not t.startswith("lipdub-")):
        k, name = 1, word
        while (phones := full.lookup_word(name)) is not None:  # the word, then word(2), word(3), ...
            entries.append((name, phones))
            k += 1
            name = f"{word}({k})"
    entries += [(name, " ".join(p.upper() for p in name[len("lipdub-"):].split("-")))
                for name in sorted({t for t in tokens if t.startswith("lipdub-")})]
    for k, (name, phones) in enumerate(entries):
        d.add_word(name, phones, k == len(entries) - 1)
    return d


def _allphone_decoder():  # a fresh one per call (~0.1 s), for the same reason as _decoder_for
    ps = _ps()
    return ps.Decoder(lm=None, allphone=ps.get_model_path("en-us/en-us-phone.lm.bin"), lw=2.0, pip=0.3,
                      beam=1e-20, pbeam=1e-20, bestpath=False, loglevel="FATAL")


def to_pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(np.asarray(audio, np.float32), -1, 1) * 32767).astype("<i2").tobytes()


def dictionary_token(word: str | None, phones: list[str] | None) -> str | None:
    """Name of a dictionary entry for `word` (cmudict) or for a pronunciation (added as a temporary entry).

    With `phones` given, the entry is named after the pronunciation (`lipdub-ow-l-aa`), so adding it is idempotent.
    Returns None when neither gives a usable entry.
    """
    with _lock:
        d = _align_decoder()
        if phones is None:
            if word and " " not in word and d.lookup_word(word) is not None:
                return word
            return None
        phones = [p for p in phones if p in ARPABET]
        if not phones:
            return None
        name = "lipdub-" + "-".join(p.lower() for p in phones)
        if d.lookup_word(name) is None:
            d.add_word(name, " ".join(phones), True)
        return name


def _decode(d, pcm: bytes) -> None:
    d.start_utt()
    d.process_raw(pcm, full_utt=True)
    d.end_utt()


def _word_pass(d, pcm: bytes, tokens: list[str]) -> bool:
    """First alignment pass (words); True when pocketsphinx found a path through the whole text."""
    d.set_align_text(" ".join(tokens))
    _decode(d, pcm)
    return d.hyp() is not None


def align_words(audio: np.ndarray, tokens: list[str]) -> list[Seg] | None:
    """Word-level forced alignment (first pass only): word and '<sil>' spans, or None on failure."""
    if not tokens:
        return None
    pcm = to_pcm16(audio)
    with _lock:
        d = _decoder_for(tokens)
        try:
            if not _word_pass(d, pcm, tokens):
                return None
            return [Seg(s.word, s.start_frame * FRAME, (s.end_frame + 1) * FRAME) for s in d.seg()]
        except RuntimeError as exc:
            log.debug("word alignment failed: %s", exc)
            return None


def align_phones(audio: np.ndarray, tokens: list[str]) -> list[Seg] | None:
    """Phone-level forced alignment of dictionary tokens; SIL spans included; None on failure.

    Times are raw pocketsphinx frame times (not bias-corrected).
    """
    if not tokens:
        return None
    pcm = to_pcm16(audio)
    with _lock:
        d = _decoder_for(tokens)
        try:
            if not _word_pass(d, pcm, tokens):
                return None
            d.set_alignment()
            _decode(d, pcm)
            al = d.get_alignment()
        except RuntimeError as exc:
            log.debug("phone alignment failed: %s", exc)
            return None
        if al is None:
            return None
        out = []
        for p in al.phones():
            label = p.name if p.name in ARPABET else "SIL"
            out.append(Seg(label, p.start * FRAME, (p.start + p.duration) * FRAME))
    if not any(s.label != "SIL" for s in out):
        return None
    return out


def allphone(audio: np.ndarray) -> list[Seg] | None:
    """Phone recognition with pocketsphinx's en-us phone language model (weak, but needs no text)."""
    pcm = to_pcm16(audio)
    with _lock:
        d = _allphone_decoder()
        try:
            _decode(d, pcm)
            segs = [Seg(s.word if s.word in ARPABET else "SIL", s.start_frame * FRAME, (s.end_frame + 1) * FRAME)
                    for s in d.seg()]
        except RuntimeError as exc:
            log.debug("allphone decoding failed: %s", exc)
            return None
    if not any(s.label != "SIL" for s in segs):
        return None
    return segs
