"""Closed-form posterior of a Gaussian prior under a linear operator and Gaussian noise."""

from __future__ import annotations

import torch

from invsolve._checks import check_positive
from invsolve.operators import LinearOperator
from invsolve.priors import GaussianPrior

__all__ = ["gaussian_posterior"]


def gaussian_posterior(
    prior: GaussianPrior, operator: LinearOperator, y: torch.Tensor, noise_std: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact posterior ``N(μ_post, Σ_post)`` of ``x ~ N(μ, Σ)`` given ``y = Ax + σn``.

    ``Σ_post = (Σ⁻¹ + AᴴA/σ²)⁻¹`` and ``μ_post = Σ_post(Σ⁻¹μ + Aᴴy/σ²)``,
    evaluated in the equivalent form that never inverts ``Σ``:
    ``K = ΣAᴴ(AΣAᴴ + σ²I)⁻¹``, ``μ_post = μ + K(y − Aμ)``,
    ``Σ_post = Σ − KAΣ``.  Float64 throughout; for small problems (the
    operator is made dense).

    Parameters
    ----------
    prior : GaussianPrior
    operator : LinearOperator
    y : torch.Tensor
        Measurements ``(B, *operator.out_shape)``.
    noise_std : float
        ``σ > 0`` in ``y``'s units.

    Returns
    -------
    mean : torch.Tensor
        ``(B, *operator.in_shape)``.
    cov : torch.Tensor
        ``(n, n)``, the same for every batch item.
    """
    sigma = check_positive(noise_std, "noise_std")
    a = operator.to_dense(torch.float64).cpu()
    cov = prior.cov.cpu()
    mean = prior.mean.reshape(-1).cpu()
    observations = y.reshape(y.shape[0], -1).cpu()
    observations = observations.to(torch.complex128 if observations.is_complex() else torch.float64)
    a_cov = a @ cov.to(a.dtype)
    innovation_cov = a_cov @ a.conj().T + sigma**2 * torch.eye(a.shape[0], dtype=a.dtype)
    gain = torch.linalg.solve(innovation_cov, a_cov).conj().T  # Σ Aᴴ (AΣAᴴ + σ²I)⁻¹
    post_mean = mean + (observations - mean.to(a.dtype) @ a.T) @ gain.T
    post_cov = cov - (gain @ a_cov).real
    post_cov = 0.5 * (post_cov + post_cov.T)
    return post_mean.real.reshape(y.shape[0], *operator.in_shape), post_cov
