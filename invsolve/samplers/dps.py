"""DPS: diffusion posterior sampling.

Chung, Kim, Mccann, Klasky & Ye, "Diffusion Posterior Sampling for General
Noisy Inverse Problems", ICLR 2023 (arXiv:2209.14687), Algorithm 1.

Ancestral (DDPM) sampling where every step is followed by a gradient step on
the measurement residual through the denoiser:

    x_{s} = DDPM-step(x_t, x̂₀(x_t)) − ζ ∇_{x_t} ‖y − A x̂₀(x_t)‖,

with the *unsquared* norm (so the effective step is ζ/‖residual‖ on the
squared loss, as in the paper's ζ_i = ζ'/‖y − A x̂₀‖).  The gradient
backpropagates through the denoiser.  The default ζ = 1.0 is the authors'
code default (``condition_methods.py``); their inpainting config uses 0.5.

The approximation p(y | x_t) ≈ p(y | x̂₀(x_t)) makes DPS biased: its samples
do not follow the exact posterior even for a Gaussian prior (the README
gives the measured error).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from invsolve._checks import check_nonnegative
from invsolve.priors import DiffusionPrior

from .base import Report, Sampler, register_sampler
from .diffusion import initial_state
from .problem import Problem

__all__ = ["DPS"]


@register_sampler
@dataclass
class DPS(Sampler):
    """Diffusion posterior sampling (Chung et al. 2023).

    Parameters
    ----------
    step_size : float
        ``ζ'``, the scale of the measurement gradient (network units).
    """

    name = "dps"
    default_steps = 1000
    draws_samples = True
    takes_start_time = True

    step_size: float = 1.0

    def __post_init__(self) -> None:
        check_nonnegative(self.step_size, "step_size")

    def _run(
        self,
        problem: Problem,
        prior: DiffusionPrior,
        steps: int,
        generator: torch.Generator | None,
        report: Report,
        start_time: float | None,
        progress: bool,
    ) -> torch.Tensor:
        x, start = initial_state(problem, prior, start_time, generator)
        batch, scale = problem.batch_size, prior.normalization.scale
        pairs = prior.schedule.reverse_steps(steps, start)
        with torch.enable_grad():
            for index, (t, s) in enumerate(tqdm(pairs, desc=self.name, disable=not progress)):
                x = x.detach().requires_grad_(True)
                x0_hat = prior.denoise(x, t, problem.condition)
                residual = problem.residual(prior.to_physical(x0_hat)) / scale
                distance = torch.linalg.vector_norm(residual.reshape(batch, -1), dim=1)
                (gradient,) = torch.autograd.grad(distance.sum(), x)
                with torch.no_grad():
                    x = prior.ancestral_step(x, x0_hat.detach(), t, s, generator) - self.step_size * gradient
                report(index, len(pairs), t, x, x0_hat)
        return prior.to_physical(x.detach())
