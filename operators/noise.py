"""Measurement noise models."""

from __future__ import annotations

import torch

from invsolve._checks import check_nonnegative, check_tensor
from invsolve._random import make_generator, randn_like

__all__ = ["GaussianNoise"]


class GaussianNoise:
    """Additive white Gaussian noise ``y = Ax + σ·n``, ``n ~ N(0, I)``.

    For complex measurements the real and imaginary parts each get variance
    ``σ²`` (so ``E|n|² = 2σ²``).

    Parameters
    ----------
    std : float
        Standard deviation ``σ`` in the measurement's units (``>= 0``).
    """

    def __init__(self, std: float) -> None:
        self.std = check_nonnegative(std, "std")

    def __call__(self, clean: torch.Tensor, seed: int | torch.Generator | None = None) -> torch.Tensor:
        """Return ``clean`` plus noise drawn with ``seed`` (an int or a generator on ``clean``'s device)."""
        check_tensor(clean, "clean")
        if self.std == 0:
            return clean.clone()
        generator = make_generator(seed, clean.device)
        return clean + self.std * randn_like(clean, generator)

    def negative_log_likelihood(self, y: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
        """``‖y − predicted‖² / (2σ²)`` per batch item (up to a constant), shape ``(B,)``."""
        if self.std == 0:
            raise ValueError("the likelihood of noise with std 0 is degenerate; use std > 0")
        residual = (y - predicted).abs() ** 2
        return residual.reshape(residual.shape[0], -1).sum(dim=1) / (2 * self.std**2)

    def __repr__(self) -> str:
        return f"GaussianNoise(std={self.std})"
