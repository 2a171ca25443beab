"""RED-Diff: variational posterior mean by regularisation by denoising.

Mardani, Song, Kautz & Vahdat, "A Variational Perspective on Solving Inverse
Problems with Diffusion Models", ICLR 2024 (arXiv:2305.04391), Algorithm 1.

The image estimate ``μ`` (network range) starts at the pseudo-inverse
``A⁺y`` and is optimised with Adam.  At each step a noise level ``t`` is
visited from high to low, ``x_t = α_t μ + σ_t ε`` is formed, the denoiser is
called once *without* backpropagation, and the loss

    ½·mean|y − Aμ|² (in network units)  +  λ·w(t)·mean(sg[ε̂(x_t) − ε] · μ)

is minimised, with the SNR weighting ``w(t) = σ_t/α_t`` of the paper's code
("linear").  With that weighting the regulariser's gradient is
``λ(μ − x̂₀(x_t))``: RED with the diffusion denoiser.  Defaults are those of
the authors' code (NVlabs/RED-diff, ``_configs/algo/reddiff.yaml``): λ = 0.25,
lr = 0.1, Adam betas (0.9, 0.99), observation weight 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from invsolve._checks import check_nonnegative, check_positive
from invsolve._random import randn_like
from invsolve.priors import DiffusionPrior

from .base import Report, Sampler, register_sampler
from .problem import Problem

__all__ = ["RedDiff"]

#: the paper code's options for w(t) as a function of 1/SNR = σ_t/α_t
_WEIGHTINGS = {
    "linear": lambda r: r,
    "sqrt": math.sqrt,
    "square": lambda r: r * r,
    "log": lambda r: math.log1p(r),
    "trunc_linear": lambda r: min(r, 1.0),
    "const": lambda r: 1.0,
}


@register_sampler
@dataclass
class RedDiff(Sampler):
    """RED-Diff (Mardani et al. 2024).

    Parameters
    ----------
    lr : float
        Adam learning rate (network units per step).
    regularization : float
        ``λ``, the weight of the denoising regulariser (the code's
        ``grad_term_weight``).
    weighting : str
        ``w(t)`` as a function of ``σ_t/α_t``: "linear" (default),
        "sqrt", "square", "log", "trunc_linear" or "const".
    obs_weight : float
        Weight of the data term.
    adam_betas : tuple of float
        Adam's ``(β₁, β₂)``.

    Notes
    -----
    RED-Diff returns a point estimate; ``noise_std`` does not enter its
    update (the paper folds it into ``λ``).  On a Gaussian problem its fixed
    point is a posterior mean whose effective noise level is set by ``λ``.
    Repeated runs differ by optimiser noise, not by posterior uncertainty:
    :func:`invsolve.reconstruct` reports their spread as ``run_spread``,
    never as a posterior ``std``.
    """

    name = "red-diff"
    default_steps = 100
    draws_samples = False

    lr: float = 0.1
    regularization: float = 0.25
    weighting: str = "linear"
    obs_weight: float = 1.0
    adam_betas: tuple[float, float] = (0.9, 0.99)

    def __post_init__(self) -> None:
        check_positive(self.lr, "lr")
        check_nonnegative(self.regularization, "regularization")
        check_nonnegative(self.obs_weight, "obs_weight")
        if self.weighting not in _WEIGHTINGS:
            raise ValueError(f"weighting must be one of {', '.join(_WEIGHTINGS)}, got {self.weighting!r}")

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
        weighting = _WEIGHTINGS[self.weighting]
        times = prior.schedule.sampling_times(steps)
        alphas, sigmas = prior.schedule.alpha_sigma(times)
        scale = prior.normalization.scale
        with torch.no_grad():
            start = prior.to_network(problem.operator.pinv(problem.y)).to(prior.dtype)
        mu = start.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([mu], lr=self.lr, betas=tuple(self.adam_betas))
        with torch.enable_grad():
            for index, (t, alpha, sigma) in enumerate(
                tqdm(zip(times.tolist(), alphas.tolist(), sigmas.tolist()), total=len(times), desc=self.name, disable=not progress)
            ):
                noise = randn_like(mu, generator)
                with torch.no_grad():
                    eps_hat = prior.eps(alpha * mu + sigma * noise, t, problem.condition)
                # the data residual in network units keeps lr and λ independent of physical units
                residual = problem.residual(prior.to_physical(mu)) / scale
                loss_obs = 0.5 * per_item_mean(residual.abs() ** 2).sum()
                loss_reg = per_item_mean((eps_hat - noise) * mu).sum()
                loss = self.obs_weight * loss_obs + self.regularization * weighting(sigma / alpha) * loss_reg
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                report(index, steps, t, mu, mu)
        return prior.to_physical(mu.detach())


def per_item_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean over all but the batch dimension, shape ``(B,)``."""
    return values.reshape(values.shape[0], -1).mean(dim=1)
