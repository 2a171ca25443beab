"""Independent priors on groups of channels: one state for several unknowns (tissue and haze).

Ultrasound dehazing (Stevens et al., "Dehazing Ultrasound using Diffusion
Models", IEEE TMI 43(10), 2024) models the clean tissue ``x`` and the haze ``h``
with two diffusion priors and samples them jointly from ``y = x + γh``.  Here
the pair is one state ``[x, h]`` (channels stacked) with the product prior
``p(x, h) = p(x) p(h)``: its denoiser is each prior's denoiser on its own
channels (the posterior mean of independent unknowns factorises), so every
sampler of the package runs on it unchanged, with the measurement operator on
the stack (:class:`invsolve.operators.ultrasound.HazyMeasurement`).  The parts
share one noise schedule (their reverse processes run in step) and one
normalization (the samplers' step sizes read one scale).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .base import DiffusionPrior
from .gaussian import GaussianPrior

__all__ = ["StackedPrior"]


class StackedPrior(DiffusionPrior):
    """The product of ``priors``, each on its own channels: ``p(x₁, x₂, …) = Π p_k(x_k)``.

    Parameters
    ----------
    priors : sequence of DiffusionPrior
        At least two unconditional priors with images of one spatial shape,
        one noise schedule and one normalization; the stacked image has their
        channels in order, ``(C₁ + C₂ + …, *spatial)``.

    Raises
    ------
    TypeError, ValueError
        For fewer than two priors, a conditional one, or parts whose spatial
        shapes, schedules or normalizations differ (one message naming which).
    """

    def __init__(self, priors: Sequence[DiffusionPrior]) -> None:
        priors = list(priors)
        if len(priors) < 2:
            raise ValueError(f"StackedPrior needs at least two priors, got {len(priors)}")
        for index, prior in enumerate(priors):
            if not isinstance(prior, DiffusionPrior):
                raise TypeError(f"priors[{index}] must be an invsolve DiffusionPrior, got {type(prior).__name__}")
            if prior.conditional:
                raise ValueError(f"priors[{index}] is conditional; a stacked prior takes unconditional parts")
        first = priors[0]
        for index, prior in enumerate(priors[1:], start=1):
            if prior.image_shape[1:] != first.image_shape[1:]:
                raise ValueError(
                    f"the parts must share one spatial shape: priors[0] has images {first.image_shape}, "
                    f"priors[{index}] {prior.image_shape}"
                )
            if prior.schedule != first.schedule:
                raise ValueError(
                    f"the parts must share one noise schedule (their reverse processes run in step): priors[0] has "
                    f"{first.schedule.to_config()}, priors[{index}] {prior.schedule.to_config()}"
                )
            if prior.normalization != first.normalization:
                raise ValueError(
                    f"the parts must share one normalization (the samplers read one scale): priors[0] has "
                    f"{first.normalization}, priors[{index}] {prior.normalization}"
                )
        channels = [prior.image_shape[0] for prior in priors]
        super().__init__(first.schedule, (sum(channels), *first.image_shape[1:]), first.prediction, first.normalization)
        self.parts = nn.ModuleList(priors)
        self.channels = channels

    def predict(
        self, x_t: torch.Tensor, t: torch.Tensor | float, condition: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x̂₀, ε̂)`` of every part on its channels, stacked (one network call per part)."""
        if condition is not None:
            raise ValueError(f"condition must be None for a StackedPrior, got a {type(condition).__name__}")
        if x_t.dim() < 2 or x_t.shape[1] != sum(self.channels):
            raise ValueError(f"x_t must be (B, {sum(self.channels)}, ...) for this stacked prior, got {tuple(x_t.shape)}")
        estimates = [part.predict(piece, t) for part, piece in zip(self.parts, x_t.split(self.channels, dim=1))]
        return tuple(torch.cat(parts, dim=1) for parts in zip(*estimates))

    def split(self, images: torch.Tensor) -> list[torch.Tensor]:
        """``(B, C₁ + C₂ + …, …)`` → the parts ``[(B, C₁, …), (B, C₂, …), …]``."""
        return list(images.split(self.channels, dim=1))

    def as_gaussian(self) -> GaussianPrior:
        """The one Gaussian this is when every part is Gaussian: stacked means, block-diagonal covariance.

        Its closed-form posterior (:func:`invsolve.gaussian_posterior`) is the
        oracle of samplers run on this stacked prior.
        """
        if not all(isinstance(part, GaussianPrior) for part in self.parts):
            kinds = ", ".join(type(part).__name__ for part in self.parts)
            raise TypeError(f"as_gaussian needs Gaussian parts, got {kinds}")
        mean = torch.cat([part.mean for part in self.parts], dim=0)
        cov = torch.block_diag(*(part.cov for part in self.parts))
        return GaussianPrior(mean, cov, schedule=self.schedule, normalization=self.normalization)
