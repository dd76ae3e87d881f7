"""Rigid geometry shared by the stages: a per-frame similarity transform (head pose) and its least-squares fit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Pose:
    """Per-frame similarity transform: frame_point = scale * R @ canonical_point + t."""

    scale: np.ndarray  # (T,)
    rotation: np.ndarray  # (T, 3, 3)
    translation: np.ndarray  # (T, 3)

    def to_frame(self, i: int, pts: np.ndarray) -> np.ndarray:
        return self.scale[i] * pts @ self.rotation[i].T + self.translation[i]

    def to_canonical(self, i: int, pts: np.ndarray) -> np.ndarray:
        return ((pts - self.translation[i]) @ self.rotation[i]) / self.scale[i]


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity dst ≈ s R src + t (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    u, d, vt = np.linalg.svd(cov)
    sign = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    scale = float((d * sign).sum() / xs.var(0).sum())
    return scale, rot, mu_d - scale * rot @ mu_s
