"""DDS: decomposed diffusion sampling.

Chung, Lee & Ye, "Decomposed Diffusion Sampler for Accelerating Large-Scale
Inverse Problems", ICLR 2024 (arXiv:2303.05754), Algorithm 1.

DDIM with stochasticity ``η`` from pure noise.  At each step the Tweedie
estimate ``x̂₀ = E[x₀ | x_t]`` is moved towards the data by a few
conjugate-gradient iterations on

    ‖y − A x‖² + γ‖x − x̂₀‖²,

warm-started at ``x̂₀`` (the Krylov subspace of ``AᴴA`` at ``x̂₀`` stays on the
clean-image manifold's tangent space for few iterations, the paper's
argument), and the corrected ``x̂₀'`` is re-noised with DDIM using the
network's ``ε̂``.  The solve runs in physical units through
:meth:`~invsolve.samplers.Problem.least_squares`; ``γ`` is given relative
to ``‖A‖²``, so that one value suits operators of any norm.  Defaults:
``η = 0.85`` and 5 CG iterations (the paper's settings for CT and MRI),
``γ = 0`` (its noiseless setting, where early-stopped CG is the only
regulariser), 50 steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from invsolve._checks import check_int, check_nonnegative, check_unit_interval
from invsolve.priors import DiffusionPrior

from .base import Report, Sampler, register_sampler
from .diffusion import data_consistent, ddim_step, initial_state
from .problem import Problem

__all__ = ["DDS"]


@register_sampler
@dataclass
class DDS(Sampler):
    """Decomposed diffusion sampling (Chung, Lee & Ye 2024).

    Parameters
    ----------
    eta : float
        DDIM stochasticity in ``[0, 1]`` (0: deterministic, 1: ancestral).
    cg_iterations : int
        Conjugate-gradient iterations per step (each one ``AᴴA``), ``>= 0``.
    gamma : float
        ``γ/‖A‖²``, the weight of ``‖x − x̂₀‖²`` against ``‖y − Ax‖²``
        relative to the operator's squared norm, ``>= 0``.
    """

    name = "dds"
    default_steps = 50
    min_steps = 2
    draws_samples = True
    takes_start_time = True

    eta: float = 0.85
    cg_iterations: int = 5
    gamma: float = 0.0

    def __post_init__(self) -> None:
        check_unit_interval(self.eta, "eta")
        check_int(self.cg_iterations, "cg_iterations", minimum=0)
        check_nonnegative(self.gamma, "gamma")

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
        weight = self.gamma * problem.operator.norm() ** 2 if self.gamma > 0 else 0.0
        pairs = prior.schedule.reverse_steps(steps, start)
        with torch.no_grad():
            for index, (t, s) in enumerate(tqdm(pairs, desc=self.name, disable=not progress)):
                x0_hat, eps_hat = prior.predict(x, t, problem.condition)
                x0_hat = data_consistent(problem, prior, x0_hat, weight, self.cg_iterations)
                x = ddim_step(prior, x0_hat, eps_hat, s, t, self.eta, generator)
                report(index, len(pairs), t, x, x0_hat)
        return prior.to_physical(x)
