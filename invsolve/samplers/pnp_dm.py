"""PnP-DM: split Gibbs sampling with a diffusion prior.

Wu, Sun, Chen, Zhang, Yue & Bouman, "Principled Probabilistic Imaging using
Diffusion Models as Plug-and-Play Priors", NeurIPS 2024 (arXiv:2405.18782),
Algorithm 1.

The posterior ``p(x | y) ∝ p(x)·p(y | x)`` is augmented with a copy ``z``
coupled to ``x`` by ``exp(−‖x − z‖²/(2ρ²))``; Gibbs sampling alternates

1. the likelihood step ``z ~ ∝ exp(−‖y − A·phys(z)‖²/(2σ_n²) − ‖z − x‖²/(2ρ²))``,
   a Gaussian drawn exactly by perturb-and-solve
   (:meth:`~invsolve.operators.GaussianLikelihood.sample_proximal`: closed
   form for masks and single-coil MRI, converged conjugate gradients
   otherwise);
2. the prior step ``x ~ p(x | z) ∝ p(x)·exp(−‖x − z‖²/(2ρ²))``: the posterior
   of a denoising problem at noise level ``ρ``, which is what reverse
   diffusion started at the time ``t*`` with ``σ_{t*}/α_{t*} = ρ`` from
   ``x_{t*} = α_{t*}·z`` samples (ancestral steps down to ``t = 0``).

The ``x``-marginal of the augmented target is the posterior under the
likelihood with noise covariance ``σ_n²I + ρ²s²AAᴴ``, so the sampler is
exact as ``ρ → 0`` (asymptotically exact), and on a Gaussian prior with
converged prior steps its stationary law is known in closed form.  The
coupling is annealed, ``ρ_k = max(ρ_0·d^k, ρ_min)``, to mix quickly
before it tightens.  Defaults follow the paper (``ρ_0 = 10``, ``d = 0.9``)
with ``ρ_min = 0.05`` (network units: DDPM's linear schedule has no noise
level below 0.01, whose variance a prior step cannot draw), 10 denoising
steps per prior step (:func:`~invsolve.samplers.diffusion.sample_denoising_posterior`)
and 100 Gibbs iterations (1000 network evaluations); the output is the
last ``x``.  Split Gibbs moves weakly measured directions by about ``ρ``
per iteration, so a small ``ρ_min`` needs more iterations to mix (the
README's oracle section).  PnP-DM needs ``noise_std > 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from invsolve._checks import check_finite_number, check_int, check_positive
from invsolve.priors import DiffusionPrior

from .base import Report, Sampler, register_sampler
from .diffusion import sample_denoising_posterior, time_at_level
from .problem import Problem

__all__ = ["PnPDM"]


@register_sampler
@dataclass
class PnPDM(Sampler):
    """Plug-and-play split Gibbs sampling with a diffusion prior (Wu et al. 2024).

    Parameters
    ----------
    rho_start : float
        ``ρ_0``, the first coupling std (network units).
    rho_min : float
        ``ρ_min``, the final coupling std; at least the lowest noise level of
        the prior's schedule.
    decay : float
        ``d ∈ (0, 1]``, the factor by which ``ρ`` shrinks per iteration.
    denoise_steps : int
        Ancestral steps of each prior step (network evaluations per Gibbs
        iteration).
    """

    name = "pnp-dm"
    default_steps = 100
    min_steps = 1
    draws_samples = True
    needs_noise = True

    rho_start: float = 10.0
    rho_min: float = 0.05
    decay: float = 0.9
    denoise_steps: int = 10

    def __post_init__(self) -> None:
        check_positive(self.rho_start, "rho_start")
        check_positive(self.rho_min, "rho_min")
        if self.rho_min > self.rho_start:
            raise ValueError(f"rho_min must not exceed rho_start ({self.rho_start}), got {self.rho_min}")
        if not 0 < check_finite_number(self.decay, "decay") <= 1:
            raise ValueError(f"decay must lie in (0, 1], got {self.decay!r}")
        check_int(self.denoise_steps, "denoise_steps")

    def network_evaluations(self, steps: int) -> int:
        return steps * self.denoise_steps

    def couplings(self, steps: int) -> list[float]:
        """The annealed ``ρ_k`` of a run of ``steps`` Gibbs iterations (network units)."""
        return [max(self.rho_start * self.decay**k, self.rho_min) for k in range(steps)]

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
        lowest, highest = schedule.noise_ratio_range()
        if self.rho_min < lowest:
            raise ValueError(
                f"rho_min must be at least the lowest noise level of the prior's {schedule.name} schedule, "
                f"{lowest:.4g} (network units), got {self.rho_min}"
            )
        scale = prior.normalization.scale
        with torch.no_grad():
            x = prior.to_network(problem.operator.pinv(problem.y).real).to(prior.dtype)
            for index, rho in enumerate(tqdm(self.couplings(steps), desc=self.name, disable=not progress)):
                rho = min(rho, highest)
                # likelihood step, in physical units: coupling precision 1/(sρ)²
                z = problem.sample_proximal(prior.to_physical(x), 1.0 / (scale * rho) ** 2, generator)
                z = prior.to_network(z).to(x.dtype)
                # prior step: a draw from p(x | z), reverse diffusion from the level ρ
                x = sample_denoising_posterior(prior, z, rho, self.denoise_steps, generator, problem.condition)
                report(index, steps, time_at_level(schedule, rho), z, x)
        return prior.to_physical(x)
