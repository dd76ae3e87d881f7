"""hama's whole output per hop, in 32 numbers: the log of each hop's smoothed token distribution projected on its
principal axes (an asset fitted on the training clips' audio by `make train`).

The 12 phone-class sums (speech.posteriors) lose which of a class's tokens hama finds likely and the runners-up of
the others; the projections keep much of it. The offline opening model reads them beside the class posteriors (held
out, 10 folds of speakers: docs/RESULTS.md, "The recogniser's whole output"). The analysis (speech.analysis) and
training (training.clips.clip_tokens) compute the per-hop token probabilities and their projections with the same
functions here, so a dub and the model's training read the same numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from lipdub.core.assets import ASSETS, card_path, file_sha256
from lipdub.core.constants import HOP_SECONDS, SR
from lipdub.errors import DependencyError
from lipdub.speech import recognise
from lipdub.speech.posteriors import HOPS_PER_FRAME, smoothed_at

AXES_PATH = ASSETS / "token_axes.npz"
N_COMPONENTS = 32  # held out 8 / 16 / 32 / 64 components: +0.005 / +0.007 / +0.010 / +0.011 over the class sums
FLOOR = 1e-4  # added before the log: tokens hama rules out differ little from one another
FIT_EVERY = 4  # the axes are fitted on every 4th hop: the same axes, a quarter of the work
PROJECT_BLOCK = 4096  # hops projected at a time (TokenAxes.project)


def unheard(n_hops: int) -> np.ndarray:
    """(n_hops, tokens) token probabilities of hops no recogniser heard (pauses between the chunks it ran on): all
    blank, as hama's own output on silence nearly is."""
    out = np.zeros((n_hops, len(recognise.token_phones())), np.float32)
    out[:, recognise.blank_token()] = 1.0
    return out


def place(hop_tokens: np.ndarray, first_hop: int, probs: np.ndarray) -> None:
    """Write hama's token probabilities `probs` (one row per 20 ms frame) of audio starting at hop `first_hop` into
    `hop_tokens` (one row per hop): each frame on the two hops it covers. Hops past the chunk's frames keep theirs."""
    rows = np.repeat(probs, HOPS_PER_FRAME, axis=0)[:max(0, len(hop_tokens) - first_hop)]
    hop_tokens[first_hop:first_hop + len(rows)] = rows


def chunk_tokens(x: np.ndarray, chunks, n_hops: int) -> np.ndarray:
    """(n_hops, tokens) hama run on each chunk (a, b) of hops of prepared 16 kHz audio `x`, blank elsewhere: what the
    analysis keeps when a transcript made recognition unnecessary, and what training computes for its clips (on the
    chunks recognition hears: speech.analysis.recognition_chunks)."""
    out = unheard(n_hops)
    for a, b in chunks:
        place(out, a, recognise.frame_posteriors(x[int(a * HOP_SECONDS * SR):int(b * HOP_SECONDS * SR)], SR))
    return out


def frame_components(axes: "TokenAxes", probs: np.ndarray) -> np.ndarray:
    """(frames, components) the projections of one chunk's hama frames `probs` heard alone, one row per frame: what
    the chunk's hops get in chunk_tokens (unheard, all blank, on either side) projected, each frame's first hop (its
    second has the same value: the smoothing reaches whole frames). A live stream's recognition windows
    (speech.stream.StreamingPosteriors) are projected so."""
    pad = HOPS_PER_FRAME  # one blank frame either side: the smoothing's reach
    hop_tokens = unheard(len(probs) * HOPS_PER_FRAME + 2 * pad)
    place(hop_tokens, pad, probs)
    return axes.project(hop_tokens)[pad:pad + len(probs) * HOPS_PER_FRAME:HOPS_PER_FRAME]


def log_smoothed(hop_tokens: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """(hops, tokens) float32 log of each hop's token distribution averaged with one hama frame either side (of the
    hops `rows` only, when given)."""
    rows = np.arange(len(hop_tokens)) if rows is None else rows
    return np.log(smoothed_at(hop_tokens, rows) + FLOOR).astype(np.float32)


@dataclass(frozen=True)
class TokenAxes:
    """The principal axes of log_smoothed token distributions: `mean` (tokens,), `axes` (tokens, components)."""

    mean: np.ndarray
    axes: np.ndarray

    def project(self, hop_tokens: np.ndarray) -> np.ndarray:
        """(hops, components) float32 projections of per-hop token probabilities (SpeechTrack.components), of
        log_smoothed's rows PROJECT_BLOCK hops at a time: whole, its float64 smoothing of an hour's 191 tokens
        (audio analysed whole, with a transcript) would take GBs; the values are the same."""
        out = np.empty((len(hop_tokens), self.axes.shape[1]), np.float32)
        for a in range(0, len(hop_tokens), PROJECT_BLOCK):
            rows = np.arange(a, min(a + PROJECT_BLOCK, len(hop_tokens)))
            out[rows] = (log_smoothed(hop_tokens, rows) - self.mean) @ self.axes
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean.astype(np.float32), "axes": self.axes.astype(np.float32)}


def fit_axes(hop_tokens: list[np.ndarray], k: int = N_COMPONENTS) -> TokenAxes:
    """The first `k` principal axes of the log_smoothed distributions of every hop of the clips' `hop_tokens`."""
    rows = np.concatenate([log_smoothed(t) for t in hop_tokens])
    mean = rows.mean(0)
    _, _, vt = np.linalg.svd(rows[::FIT_EVERY] - mean, full_matrices=False)
    return TokenAxes(mean, vt[:k].T)


@lru_cache(maxsize=2)
def load_axes(path: str = str(AXES_PATH)) -> TokenAxes:
    """The shipped axes, checked against their card (sha256, components); DependencyError saying what to do if not."""
    p = Path(path)
    fix = "reinstall lipdub, or rebuild the asset with its card (make train)"
    try:
        with np.load(p) as z:
            axes = TokenAxes(z["mean"].astype(np.float32), z["axes"].astype(np.float32))
        card = json.loads(card_path(p).read_text(encoding="utf-8"))
    except (OSError, KeyError, ValueError) as exc:
        raise DependencyError(f"the token axes {p} or their card are missing or unreadable ({exc}); {fix}") from exc
    if card.get("sha256") != file_sha256(p):
        raise DependencyError(f"{p} is not the file its card {card_path(p).name} describes; {fix}")
    if axes.axes.shape != (len(recognise.token_phones()), N_COMPONENTS) or axes.mean.shape != axes.axes.shape[:1]:
        raise DependencyError(f"{p} holds axes of shape {axes.axes.shape}, the code reads "
                              f"{(len(recognise.token_phones()), N_COMPONENTS)}; {fix}")
    return axes
