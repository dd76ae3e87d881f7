"""Phone-class posteriors: hama's per-frame token probabilities summed into the phone classes, per 10 ms hop.

The offline opening model (motion.features) reads them beside the 1-best phones: on a voice it never heard, the
recogniser's runners-up still say something of the mouth. The analysis keeps them in `SpeechTrack.posteriors`; the
training clips get theirs from the same analysis, so a dub and the model's training read the same numbers.
The live phone classifier and hama's streamed posteriors (speech.stream) use the same classes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lipdub.core.constants import HOP_SECONDS
from lipdub.speech.recognise import POSTERIOR_FRAME, token_phones

# The live model's phone classes (its classifier's outputs): visemes that look alike grouped together.
PHONE_CLASSES = (("SIL",), ("P", "B", "M"), ("F", "V"), ("TH", "DH"), ("T", "D", "N", "L"), ("S", "Z"),
                 ("K", "G", "NG", "HH"), ("CH", "JH", "SH", "ZH"), ("R", "W", "ER"), ("Y", "IY", "IH", "EY"),
                 ("AA", "AE", "AH", "AO", "AW", "AY", "EH"), ("OW", "OY", "UH", "UW"))
OTHER = len(PHONE_CLASSES)  # the column of blank, word boundary and hama's other non-phone tokens
N_COLUMNS = OTHER + 1
HOPS_PER_FRAME = int(round(POSTERIOR_FRAME / HOP_SECONDS))  # hama emits one distribution per 2 hops


def phone_class(label: str) -> int:
    """Index into PHONE_CLASSES (unknown labels count as t/d/n/l, the commonest consonants)."""
    label = label.upper().rstrip("012")
    for k, group in enumerate(PHONE_CLASSES):
        if label in group:
            return k
    return 4


@lru_cache(maxsize=1)
def token_classes() -> np.ndarray:
    """Column of each hama output token: its phone class, or OTHER for blank, word boundary and other non-phones."""
    return np.array([phone_class(p) if p else OTHER for p in token_phones()])


def class_posteriors(probs: np.ndarray, token_class: np.ndarray | None = None) -> np.ndarray:
    """(frames, classes) token probabilities (frames, tokens) summed into the columns `token_class` gives each token
    (default token_classes())."""
    token_class = token_classes() if token_class is None else np.asarray(token_class, int)
    grouped = np.zeros((len(probs), int(token_class.max()) + 1), np.float32)
    np.add.at(grouped.T, token_class, np.asarray(probs).T)
    return grouped


def silence(n_hops: int) -> np.ndarray:
    """(n_hops, N_COLUMNS) posteriors of hops no recogniser heard (pauses between the chunks it ran on): all OTHER,
    as hama's own output on silence (blank) nearly is."""
    out = np.zeros((n_hops, N_COLUMNS), np.float32)
    out[:, OTHER] = 1.0
    return out


def smoothed_at(post: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(len(rows), columns) float64 rows of per-hop probabilities `post` averaged with those one hama frame (20 ms)
    either side, zeros beyond the audio; rows outside the audio are zeros (CTC is peaky: the offline and live models
    read posteriors so, and speech.tokens smooths the token distributions so before its log)."""
    post = np.asarray(post)
    n = len(post)
    rows = np.asarray(rows)

    def at(r: np.ndarray) -> np.ndarray:
        ok = (r >= 0) & (r < n)
        out = np.zeros((len(r), post.shape[1]))
        out[ok] = post[r[ok]]
        return out
    smooth = (at(rows - HOPS_PER_FRAME) + at(rows) + at(rows + HOPS_PER_FRAME)) / 3.0
    smooth[(rows < 0) | (rows >= n)] = 0.0
    return smooth
