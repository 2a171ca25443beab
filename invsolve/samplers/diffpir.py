"""DiffPIR: diffusion models for plug-and-play image restoration.

Zhu, Zhang, Liang, Cao, Wen, Timofte & Van Gool, "Denoising Diffusion
Models for Plug-and-Play Image Restoration", CVPR 2023 workshops
(arXiv:2305.08995), Algorithm 1.

Half-quadratic splitting inside the reverse diffusion.  At each step, from
``x_t``:

1. the Tweedie estimate ``x̂₀ = E[x₀ | x_t]``;
2. the data subproblem ``x̂₀' = argmin_x ‖y − A x‖² + ρ_t‖x − x̂₀‖²`` with
   ``ρ_t = λσ_n²/σ̄_t²``, where ``σ_n`` is the measurement noise and
   ``σ̄_t = σ_t/α_t`` the noise level of ``x_t/α_t`` (network units),
   solved exactly: in closed form for masks and single-coil Cartesian MRI,
   by conjugate gradients otherwise.  Noise-free data (``σ_n = 0``) make it
   a projection onto ``{x : Ax = y}``;
3. the effective noise ``ε̂ = (x_t − α_t x̂₀')/σ_t`` and the re-noised
   ``x_s = α_s x̂₀' + σ_s(√(1 − ζ)·ε̂ + √ζ·ε)``.

The data subproblem is solved in physical units (the weight is converted
with the prior's normalisation scale).  Defaults: ``λ = 7`` (the paper's
and deepinv's), ``ζ = 0.3`` (the paper's Gaussian-deblurring setting; it
uses up to 1.0 for random inpainting), 100 steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from invsolve._checks import check_positive, check_unit_interval
from invsolve._random import randn_like
from invsolve.priors import DiffusionPrior

from .base import Report, Sampler, register_sampler
from .diffusion import alpha_sigma_at, data_consistent, initial_state
from .problem import Problem

__all__ = ["DiffPIR"]


@register_sampler
@dataclass
class DiffPIR(Sampler):
    """Diffusion plug-and-play image restoration (Zhu et al. 2023).

    Parameters
    ----------
    regularization : float
        ``λ > 0``: the prior's weight in the data subproblem,
        ``ρ_t = λσ_n²/σ̄_t²``.
    zeta : float
        ``ζ ∈ [0, 1]``: the share of fresh noise when re-noising (0: DDIM-like,
        deterministic; 1: all fresh noise).
    """

    name = "diffpir"
    default_steps = 100
    min_steps = 2
    draws_samples = True
    takes_start_time = True

    regularization: float = 7.0
    zeta: float = 0.3

    def __post_init__(self) -> None:
        check_positive(self.regularization, "regularization")
        check_unit_interval(self.zeta, "zeta")

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
        scale = prior.normalization.scale
        pairs = prior.schedule.reverse_steps(steps, start)
        with torch.no_grad():
            for index, (t, s) in enumerate(tqdm(pairs, desc=self.name, disable=not progress)):
                x0_hat = prior.denoise(x, t, problem.condition)
                alpha_t, sigma_t = alpha_sigma_at(prior, t)
                # ρ_t per squared network unit, converted to physical units by s²
                weight = self.regularization * problem.noise_std**2 * (alpha_t / sigma_t) ** 2 / scale**2
                x0_hat = data_consistent(problem, prior, x0_hat, weight)
                report(index, len(pairs), t, x, x0_hat)
                if s is None:  # the last pair: the loop ends here (so the progress bar reaches 100 %)
                    x = x0_hat
                    continue
                eps_hat = (x - alpha_t * x0_hat) / sigma_t
                alpha_s, sigma_s = alpha_sigma_at(prior, s)
                fresh = randn_like(x, generator)
                x = alpha_s * x0_hat + sigma_s * ((1 - self.zeta) ** 0.5 * eps_hat + self.zeta**0.5 * fresh)
        return prior.to_physical(x)
