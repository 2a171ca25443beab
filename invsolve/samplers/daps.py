"""DAPS: decoupled annealing posterior sampling.

Zhang, Chu, Berner, Sun, Zheng, Yue, Song & Katsaggelos, "Improving
Diffusion Inverse Problem Solving with Decoupled Noise Annealing", CVPR 2025
(arXiv:2407.01521), Algorithm 1.

The prior is used as a variance-exploding denoiser, ``z = x₀ + σ·ε``
(network units; a variance-preserving prior is called at the time where
``σ_t/α_t = σ``).  Over noise levels ``σ_max = σ_1 > … > σ_N = σ_min``
(Karras et al.'s ρ = 7 spacing):

1. ``x̂₀``: a few Euler steps of the probability-flow ODE
   ``dz/dσ = (z − D(z, σ))/σ`` from ``z`` at ``σ_i`` down to the schedule's
   lowest level, then one denoising call;
2. Langevin dynamics on ``x₀`` for the potential
   ``‖x₀ − x̂₀‖²/(2r_i²) + ‖y − A·phys(x₀)‖²/(2σ_n²)`` with ``r_i = r·σ_i``:
   ``x₀ ← x₀ − η∇U(x₀) + √(2η)·ξ``;
3. ``z = x₀ + σ_{i+1}·ε``: decoupled re-noising.

The output is the last ``x₀``.  The Langevin step is set from the
potential's curvature bound ``L = 1/r_i² + (s‖A‖/σ_n)²`` (``s`` the
normalisation scale) as ``η = step/L``, so that one value of ``step`` is
stable for every operator and unit; the paper's fixed learning rate
assumes images in ``[-1, 1]`` and its own operators.  Defaults: the paper's
DAPS-1K (``σ_max = 100``, ``σ_min = 0.1``, 5 ODE steps, 200 levels = 1000
network evaluations, ``r_i = σ_i``) with 50 Langevin steps of
``step = 0.5``.  DAPS needs ``noise_std > 0``: the likelihood enters as a
density.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from invsolve._checks import check_int, check_positive
from invsolve._random import randn_like
from invsolve.priors import DiffusionPrior

from .base import Report, Sampler, register_sampler
from .diffusion import alpha_sigma_at, denoise_at_level, initial_state, karras_levels, time_at_level
from .problem import Problem

__all__ = ["DAPS"]


@register_sampler
@dataclass
class DAPS(Sampler):
    """Decoupled annealing posterior sampling (Zhang et al. 2025).

    Parameters
    ----------
    sigma_max, sigma_min : float
        Highest and lowest annealing noise level (network units); clipped to
        the levels the prior's schedule covers.  A warm start (``start_time``)
        begins at its own level instead of ``sigma_max``.
    ode_steps : int
        Denoiser calls per level for ``x̂₀`` (Euler steps of the
        probability-flow ODE, then one denoising call).
    langevin_steps : int
        Langevin iterations on ``x₀`` per level (operator calls, no network).
    step : float
        Langevin step as a fraction of ``1/L``, the inverse curvature bound.
    r_scale : float
        ``r_i = r_scale·σ_i``, the assumed std of ``x₀`` around ``x̂₀``.
    """

    name = "daps"
    default_steps = 200
    min_steps = 2
    draws_samples = True
    takes_start_time = True
    needs_noise = True

    sigma_max: float = 100.0
    sigma_min: float = 0.1
    ode_steps: int = 5
    langevin_steps: int = 50
    step: float = 0.5
    r_scale: float = 1.0

    def __post_init__(self) -> None:
        check_positive(self.sigma_max, "sigma_max")
        check_positive(self.sigma_min, "sigma_min")
        if self.sigma_min >= self.sigma_max:
            raise ValueError(f"sigma_min must be below sigma_max ({self.sigma_max}), got {self.sigma_min}")
        check_int(self.ode_steps, "ode_steps")
        check_int(self.langevin_steps, "langevin_steps", minimum=0)
        check_positive(self.step, "step")
        if self.step >= 2:
            raise ValueError(f"step must be below 2 (Langevin is unstable beyond 2/L), got {self.step}")
        check_positive(self.r_scale, "r_scale")

    def network_evaluations(self, steps: int) -> int:
        return steps * self.ode_steps

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
        schedule = prior.schedule
        lowest, _ = schedule.noise_ratio_range()
        x_t, start = initial_state(problem, prior, start_time, generator)
        top = float(schedule.noise_ratio(start))
        alpha_start, _ = alpha_sigma_at(prior, start)
        z = x_t / alpha_start  # variance-exploding view: z = x₀ + σ·ε
        if start_time is None:
            high = min(self.sigma_max, top)
            z = z * (high / top)  # pure noise at σ_max
        else:
            high = top  # the warm start's own noise level
        levels = karras_levels(high, max(self.sigma_min, lowest), steps).tolist()
        scale = prior.normalization.scale
        data_curvature = (scale * problem.operator.norm() / problem.noise_std) ** 2
        x0 = z
        with torch.no_grad():
            for index, level in enumerate(tqdm(levels, desc=self.name, disable=not progress)):
                x0_hat = self._ode_estimate(prior, z, level, lowest, problem.condition)
                r = self.r_scale * level
                eta = self.step / (1 / r**2 + data_curvature)
                x0 = x0_hat
                for _ in range(self.langevin_steps):
                    gradient = (x0 - x0_hat) / r**2 + scale * problem.grad(prior.to_physical(x0)).to(x0.dtype)
                    x0 = x0 - eta * gradient + (2 * eta) ** 0.5 * randn_like(x0, generator)
                report(index, len(levels), time_at_level(schedule, level), z, x0)
                if index + 1 < len(levels):
                    z = x0 + levels[index + 1] * randn_like(x0, generator)
        return prior.to_physical(x0)

    def _ode_estimate(
        self, prior: DiffusionPrior, z: torch.Tensor, level: float, lowest: float, condition: torch.Tensor | None
    ) -> torch.Tensor:
        """``x̂₀`` by Euler steps of the probability-flow ODE from ``level`` to the lowest level."""
        grid = karras_levels(level, lowest, self.ode_steps).tolist() if self.ode_steps > 1 else [level]
        for here, there in zip(grid[:-1], grid[1:]):
            denoised = denoise_at_level(prior, z, here, condition)
            z = z + (there - here) * (z - denoised) / here
        return denoise_at_level(prior, z, grid[-1], condition)
