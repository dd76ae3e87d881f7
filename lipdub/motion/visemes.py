"""Viseme targets and phone classes, and the one dominance kernel both the rules and the learned model's inputs use.

Coarticulation follows Cohen & Massaro's dominance model: every phone pulls the mouth towards its viseme target with a
dominance that decays away from the phone's centre, so transitions anticipate the next sound and weak consonants
(t, k, h) borrow the shape of their neighbouring vowels.
"""

from __future__ import annotations

import numpy as np

from lipdub.speech.posteriors import PHONE_CLASSES, phone_class

# viseme targets: (opening 0..1 of the speaker's wide-open, width change -1 (rounded) .. +1 (spread), dominance).
# The learned opening model's inputs are named in motion.features.FEATURE_LABELS, not read off this table: editing it
# changes the rules and the dominance blend, never the order of the model's input columns.
VISEMES = {
    "SIL": (0.0, 0.0, 0.6),
    "P": (0.0, 0.0, 6.0), "B": (0.0, 0.0, 6.0), "M": (0.0, 0.0, 6.0),
    "F": (0.08, -0.05, 3.0), "V": (0.08, -0.05, 3.0),
    "TH": (0.22, 0.05, 1.2), "DH": (0.22, 0.05, 1.0),
    "T": (0.25, 0.1, 0.5), "D": (0.25, 0.1, 0.5), "N": (0.22, 0.1, 0.5), "L": (0.3, 0.0, 0.5),
    "S": (0.12, 0.3, 1.2), "Z": (0.12, 0.3, 1.0),
    "K": (0.35, 0.0, 0.35), "G": (0.35, 0.0, 0.35), "NG": (0.3, 0.0, 0.35), "HH": (0.45, 0.0, 0.2),
    "CH": (0.18, -0.5, 1.5), "JH": (0.18, -0.5, 1.5), "SH": (0.18, -0.5, 1.5), "ZH": (0.18, -0.5, 1.5),
    "R": (0.22, -0.4, 0.9), "W": (0.1, -0.8, 2.0), "Y": (0.2, 0.3, 0.8),
    "AA": (0.95, 0.0, 1.0), "AE": (0.8, 0.25, 1.0), "AH": (0.65, 0.0, 0.9), "AO": (0.8, -0.35, 1.0),
    "AW": (0.8, -0.2, 1.0), "AY": (0.8, 0.1, 1.0), "EH": (0.6, 0.25, 0.9), "ER": (0.35, -0.4, 0.9),
    "EY": (0.5, 0.35, 0.9), "IH": (0.38, 0.3, 0.8), "IY": (0.26, 0.5, 0.9), "OW": (0.55, -0.6, 1.0),
    "OY": (0.6, -0.45, 1.0), "UH": (0.32, -0.5, 0.9), "UW": (0.2, -0.8, 1.1),
}
BILABIALS = {"P", "B", "M"}

# The live model's phone classes (PHONE_CLASSES, phone_class: its classifier's outputs) are defined in
# speech.posteriors, which sums hama's posteriors into them
BILABIAL_CLASS = 1
CLASS_WIDTH = np.array([np.mean([VISEMES[p][1] for p in group]) for group in PHONE_CLASSES])  # viseme table's width


def viseme_target(label: str) -> tuple[float, float, float]:
    return VISEMES.get(label.upper().rstrip("012"), (0.3, 0.0, 0.5))


def dominance(t: np.ndarray, centre: float, half: float, weight: float, tight: bool) -> np.ndarray:
    """A phone's dominance at times `t`: `weight` flat over the phone (centre ± half), exponential decay outside;
    anticipation reaches further than carry-over. Bilabials (`tight`) shut fast and let go fast: strong but
    short-reaching."""
    dist = np.abs(t - centre) - half
    reach = np.where(t < centre, 0.035 if tight else 0.09, 0.025 if tight else 0.06)
    return weight * np.exp(-np.maximum(dist, 0.0) / reach)


def phone_curves(phones, duration: float, hop: float = 0.01, lead: float = 0.02):
    """Dominance-blended opening/width at `hop` resolution plus a mask of bilabial closure centres."""
    n = max(1, int(np.ceil(duration / hop)))
    t = (np.arange(n) + 0.5) * hop
    num_o, num_w, den = np.zeros(n), np.zeros(n), np.full(n, 1e-6)
    closure = np.zeros(n, bool)
    for ph in phones:
        o, w, dom = viseme_target(ph.label)
        centre = 0.5 * (ph.start + ph.end) - lead  # lips move slightly ahead of the sound
        half = max(0.5 * (ph.end - ph.start), 0.02)
        d = dominance(t, centre, half, dom, ph.label.upper() in BILABIALS)
        num_o += d * o
        num_w += d * w
        den += d
        if ph.label.upper() in BILABIALS:
            closure |= np.abs(t - centre) <= max(half * 0.5, 0.02)
    return t, num_o / den, num_w / den, closure
