"""An exact Gaussian prior: the oracle every sampler is checked against.

For ``x ~ N(μ, Σ)`` and ``x_t = α x + σ_t ε`` the posterior mean is linear,

    E[x | x_t] = μ + αΣ(α²Σ + σ_t² I)⁻¹ (x_t − αμ),

so the "denoiser" is exact at every noise level.  With the eigendecomposition
``Σ = U diag(λ) Uᵀ`` (computed once) it costs two matrix products per call:
``E[x | x_t] = μ + U diag(αλ / (α²λ + σ²)) Uᵀ (x_t − αμ)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from invsolve._checks import check_finite, check_finite_number, check_nonnegative, check_positive, check_shape, check_tensor
from invsolve._random import make_generator

from .base import DiffusionPrior, Normalization
from .gaussian_fit import LowRankGaussian
from .schedule import DiscreteVPSchedule, NoiseSchedule

__all__ = ["GaussianPrior"]


class GaussianPrior(DiffusionPrior):
    """Gaussian prior ``N(mean, cov)`` with an exact denoiser.

    Parameters
    ----------
    mean : torch.Tensor
        Mean image ``(C, *spatial)`` in physical units.
    cov : torch.Tensor
        Covariance ``(n, n)`` with ``n = mean.numel()``, symmetric positive
        semi-definite, in physical units squared.
    schedule : NoiseSchedule, optional
        Diffusion schedule the samplers see (default: DDPM linear).
    normalization : Normalization, optional
        Physical ↔ network map; the distribution is the same, only the
        coordinates change.

    Notes
    -----
    Tensors are stored in float64; calls compute in the dtype of ``x_t``.
    """

    def __init__(
        self,
        mean: torch.Tensor,
        cov: torch.Tensor,
        schedule: NoiseSchedule | None = None,
        normalization: Normalization | None = None,
    ) -> None:
        check_tensor(mean, "mean", allow_complex=False)
        check_tensor(cov, "cov", allow_complex=False)
        if mean.dim() < 2 or mean.numel() == 0:
            raise ValueError(f"mean must be a non-empty image shaped (C, *spatial), got shape {tuple(mean.shape)}")
        n = mean.numel()
        if cov.shape != (n, n):
            raise ValueError(f"cov must have shape ({n}, {n}) for a mean of shape {tuple(mean.shape)}, got {tuple(cov.shape)}")
        check_finite(mean, "mean")
        check_finite(cov, "cov")
        cov = cov.to(torch.float64)
        if not torch.allclose(cov, cov.T, rtol=1e-10, atol=1e-12 * float(cov.abs().max())):
            raise ValueError("cov must be symmetric")
        super().__init__(
            schedule if schedule is not None else DiscreteVPSchedule.linear(),
            mean.shape,
            prediction="x0",
            normalization=normalization,
        )
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)
        if float(eigenvalues.min()) < -1e-10 * float(eigenvalues.max()):
            raise ValueError(f"cov must be positive semi-definite, its smallest eigenvalue is {float(eigenvalues.min()):.3g}")
        scale = self.normalization.scale
        # Network coordinates: x_net = (x − offset) / scale.
        self.register_buffer("mean_network", self.normalization.to_network(mean.to(torch.float64)).reshape(-1))
        self.register_buffer("eigenvalues", eigenvalues.clamp_min(0) / scale**2)
        self.register_buffer("eigenvectors", eigenvectors)

    @classmethod
    def squared_exponential(
        cls,
        image_shape: Sequence[int],
        length_scale: float,
        std: float = 1.0,
        mean: float = 0.0,
        jitter: float = 1e-6,
        **kwargs,
    ) -> GaussianPrior:
        """Stationary prior with covariance ``std²·exp(−d²/(2ℓ²)) + jitter·std²·I``.

        ``d`` is the distance in pixels between two pixels of the same channel;
        channels are independent.

        Parameters
        ----------
        image_shape : (C, *spatial)
            Image shape with one to three spatial axes, every size >= 1.
        length_scale : float
            Correlation length ``ℓ`` in pixels.
        std : float
            Marginal standard deviation (physical units).
        mean : float
            Constant mean (physical units).
        jitter : float
            Relative diagonal loading that keeps the covariance well conditioned.
        **kwargs
            Passed to the constructor (``schedule``, ``normalization``).
        """
        check_positive(length_scale, "length_scale")
        check_positive(std, "std")
        mean = check_finite_number(mean, "mean")
        jitter = check_nonnegative(jitter, "jitter")
        shape = check_shape(image_shape, "image_shape", ("C", "H", "W"), ("C", "D", "H", "W"), ("C", "N"))
        channels, spatial = shape[0], shape[1:]
        axes = [torch.arange(n, dtype=torch.float64) for n in spatial]
        coords = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(spatial))
        distance_sq = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1)
        block = std**2 * (torch.exp(-distance_sq / (2 * length_scale**2)) + jitter * torch.eye(len(coords), dtype=torch.float64))
        cov = torch.block_diag(*([block] * channels))
        return cls(torch.full(shape, float(mean), dtype=torch.float64), cov, **kwargs)

    @property
    def mean(self) -> torch.Tensor:
        """Prior mean ``(C, *spatial)`` in physical units."""
        return self.to_physical(self.mean_network.reshape(self.image_shape))

    @property
    def cov(self) -> torch.Tensor:
        """Prior covariance ``(n, n)`` in physical units squared."""
        u = self.eigenvectors
        return (u * self.eigenvalues) @ u.T * self.normalization.scale**2

    @property
    def gaussian_fit(self) -> LowRankGaussian:
        """This prior's own distribution as a full-rank :class:`LowRankGaussian`, network units.

        Exact, not fitted: ``components`` are the eigenvectors (as rows),
        ``variances`` the eigenvalues and ``residual_variance`` is 0, in
        float64 on the prior's device.  Built from the buffers on every
        access (nothing is stored twice; a checkpoint does not hold it).
        """
        fit = LowRankGaussian(self.image_shape, self.eigenvalues.numel(), dtype=torch.float64).to(self.device)
        fit.mean.copy_(self.mean_network.reshape(self.image_shape))
        fit.components.copy_(self.eigenvectors.T)
        fit.variances.copy_(self.eigenvalues)
        return fit

    def set_gaussian_fit(self, fit: LowRankGaussian | None) -> None:
        """Refused: a :class:`GaussianPrior`'s :attr:`gaussian_fit` is its own exact distribution."""
        raise TypeError(
            "a GaussianPrior's gaussian_fit is its own exact distribution (mean and eigendecomposition); "
            "it cannot be set"
        )

    def network_output(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Exact ``E[x₀ | x_t]`` in network range (this prior predicts x₀)."""
        dtype = x_t.dtype
        alpha, sigma = (v.to(dtype) for v in self.schedule.alpha_sigma(t.to(torch.float64)))
        u = self.eigenvectors.to(dtype)
        eigenvalues = self.eigenvalues.to(dtype)
        mean = self.mean_network.to(dtype)
        flat = x_t.reshape(x_t.shape[0], -1)
        alpha_col, sigma_col = alpha[:, None], sigma[:, None]
        coefficients = (flat - alpha_col * mean) @ u  # (B, n) in the eigenbasis
        gain = alpha_col * eigenvalues / (alpha_col**2 * eigenvalues + sigma_col**2)
        return (mean + (coefficients * gain) @ u.T).reshape(x_t.shape)

    @torch.no_grad()
    def sample_exact(self, n: int, seed: int | torch.Generator | None = None) -> torch.Tensor:
        """``n`` exact draws ``μ + Σ^½ ξ``, shaped ``(n, *image_shape)`` in physical units.

        ``Σ^½ = U√λUᵀ`` is the symmetric square root, which is unique: it does
        not depend on the basis that the eigensolver picks inside a repeated
        eigenvalue (stationary priors on a grid have many), which changes with
        the LAPACK build and the number of threads.  A seed therefore gives the
        same draws on every machine (``U√λ ξ`` with ``ξ`` in the eigenbasis would
        not).
        """
        generator = make_generator(seed, "cpu")
        pixels = self.eigenvectors.shape[0]
        xi = torch.randn(int(n), pixels, dtype=torch.float64, generator=generator).to(self.device)
        draws = self.mean_network + ((xi @ self.eigenvectors) * self.eigenvalues.sqrt()) @ self.eigenvectors.T
        return self.to_physical(draws.reshape(int(n), *self.image_shape))

    def log_prob_noisy(self, x_t: torch.Tensor, t: float) -> torch.Tensor:
        """``log p_t(x_t)`` of the noisy marginal ``N(αμ, α²Σ + σ²I)`` in network range, ``(B,)``.

        Used to check :meth:`score` against autograd.
        """
        alpha, sigma = (float(v) for v in self.schedule.alpha_sigma(torch.tensor(float(t), dtype=torch.float64)))
        variances = alpha**2 * self.eigenvalues + sigma**2
        flat = x_t.reshape(x_t.shape[0], -1).to(torch.float64)
        coefficients = (flat - alpha * self.mean_network) @ self.eigenvectors
        quadratic = (coefficients**2 / variances).sum(dim=1)
        return -0.5 * (quadratic + torch.log(variances).sum() + len(variances) * math.log(2 * math.pi))

