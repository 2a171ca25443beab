"""DPIR: plug-and-play image restoration with the diffusion prior as its denoiser.

Zhang, Li, Zuo, Zhang, Van Gool & Timofte, "Plug-and-Play Image Restoration
with Deep Denoiser Prior", IEEE TPAMI 44(10), 2022 (arXiv:2008.13751),
Sec. 4 and Algorithm 1.

Half-quadratic splitting with a denoiser whose noise level falls from
``σ_1`` to ``σ_K`` over ``K`` iterations, evenly on a log scale.  Starting
from ``z₀`` (the middle of the prior's range), iteration ``k``

1. solves the data subproblem ``x_k = argmin_x ‖y − A x‖² + ρ_k‖x − z_{k−1}‖²``
   with ``ρ_k = λσ_n²/σ_k²`` (``σ_n``: measurement noise; ``σ_k`` in the
   prior's network units, converted with its normalisation scale), warm-started
   at ``z_{k−1}``;
2. denoises it: ``z_k = E[x₀ | x₀ + σ_k ε = x_k]``, the diffusion prior's
   Tweedie estimate at the time where its noise level is ``σ_k``
   (:func:`~invsolve.samplers.diffusion.denoise_at_level`).

The result is ``z_K``: one network evaluation per iteration, and no random
draw — a point estimate, not a posterior sample.  With an exact Gaussian
prior the denoiser is the proximal map of ``½(x − μ)ᵀΣ⁻¹(x − μ)`` at
weight ``σ_k²``, so the iterations minimise
``½‖y − Ax‖² + (λσ_n²/2)(x − μ)ᵀΣ⁻¹(x − μ)`` as ``σ_k → 0``: with ``λ = 1``
they reach the posterior mean (tested against
:func:`invsolve.oracle.gaussian_posterior`); ``λ < 1`` trusts the data
more than the prior.

Unlike DDS and DiffPIR, which move the diffusion state ``x_t`` and only
correct its clean estimate, DPIR hands the data-consistent image itself to
the denoiser at a noise level chosen for it, so it needs no start from pure
noise: the ``ct-sparse`` preset, swept on validation phantoms, starts it at
``σ_1 = 0.05``, and on held-out phantoms it is the most accurate method here
(README, "The samplers against the classical methods").

Defaults: the paper's ``σ_1 = 49/255`` on ``[0, 1]`` images (``0.384`` in the
prior's ``[−1, 1]`` units), ``λ = 0.23`` (its deblurring setting), the
schedule's lowest level as ``σ_K`` (the paper ends at the measurement
noise, which for a linear inverse problem has no image-domain level),
an exact data subproblem (closed form where the operator has one, else
conjugate gradients to convergence), 100 iterations (the paper's 8–40 suit
its fast-converging blind denoiser; a diffusion denoiser conditioned on its
level needs more).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from invsolve._checks import check_int, check_positive
from invsolve.priors import DiffusionPrior

from .base import Report, Sampler, register_sampler
from .diffusion import data_consistent, denoise_at_level, time_at_level
from .problem import Problem

__all__ = ["DPIR"]


@register_sampler
@dataclass
class DPIR(Sampler):
    """Plug-and-play half-quadratic splitting with an annealed diffusion denoiser (Zhang et al. 2022).

    Parameters
    ----------
    regularization : float
        ``λ > 0``: the prior's weight in the data subproblem,
        ``ρ_k = λσ_n²/σ_k²``.
    highest_level : float
        ``σ_1 > 0``: the first denoiser's noise level, network units (the
        prior's range is ``[−1, 1]``).
    lowest_level : float or None
        ``σ_K``, below ``highest_level``; ``None`` takes the lowest level
        the prior's schedule covers (``σ_0/α_0``).
    cg_iterations : int or None
        Conjugate-gradient iterations of the data subproblem, ``>= 1``;
        ``None`` solves it exactly.
    """

    name = "dpir"
    default_steps = 100
    min_steps = 2
    draws_samples = False
    deterministic = True

    regularization: float = 0.23
    highest_level: float = 2 * 49 / 255
    lowest_level: float | None = None
    cg_iterations: int | None = None

    def __post_init__(self) -> None:
        check_positive(self.regularization, "regularization")
        check_positive(self.highest_level, "highest_level")
        if self.lowest_level is not None:
            check_positive(self.lowest_level, "lowest_level")
            if self.lowest_level >= self.highest_level:
                raise ValueError(
                    f"lowest_level must be below highest_level = {self.highest_level!r}, got {self.lowest_level!r}"
                )
        if self.cg_iterations is not None:
            check_int(self.cg_iterations, "cg_iterations", minimum=1)

    def noise_levels(self, prior: DiffusionPrior, steps: int) -> torch.Tensor:
        """The denoiser's ``steps`` noise levels, float64, log-evenly from ``σ_1`` down to ``σ_K``.

        Raises
        ------
        ValueError
            If a level lies outside the prior schedule's range, or the
            schedule's floor is not below ``highest_level``.
        """
        floor, ceiling = prior.schedule.noise_ratio_range()
        lowest = floor if self.lowest_level is None else self.lowest_level
        if not floor * (1 - 1e-9) <= lowest < self.highest_level <= ceiling:
            raise ValueError(
                f"dpir's noise levels must satisfy {floor:.4g} <= lowest_level < highest_level <= {ceiling:.4g} "
                f"(the levels the prior's {prior.schedule.name} schedule covers, network units), got lowest_level="
                f"{lowest!r}, highest_level={self.highest_level!r}"
            )
        return torch.logspace(math.log10(self.highest_level), math.log10(lowest), steps, dtype=torch.float64)

    def check(self, problem: Problem, prior: DiffusionPrior, steps: int, start_time: float | None) -> None:
        super().check(problem, prior, steps, start_time)
        self.noise_levels(prior, self.min_steps)

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
        levels = self.noise_levels(prior, steps).tolist()
        scale = prior.normalization.scale
        estimate = torch.zeros(problem.batch_size, *prior.image_shape, dtype=prior.dtype, device=prior.device)
        with torch.no_grad():
            for index, level in enumerate(tqdm(levels, desc=self.name, disable=not progress)):
                # ρ_k per squared network unit, converted to physical units by s²
                weight = self.regularization * problem.noise_std**2 / (level * scale) ** 2
                consistent = data_consistent(problem, prior, estimate, weight, self.cg_iterations)
                estimate = denoise_at_level(prior, consistent, level, problem.condition)
                report(index, len(levels), time_at_level(prior.schedule, level), consistent, estimate)
        return prior.to_physical(estimate)
