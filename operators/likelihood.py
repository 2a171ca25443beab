"""The data term of a reconstruction: an operator bundled with its noise model.

A :class:`GaussianLikelihood` describes ``y = A x + n`` with white Gaussian
noise ``n`` of standard deviation ``σ`` (per real component for complex
data, as :class:`~invsolve.operators.GaussianNoise` draws it).  Everything a
sampler needs from the data lives here, in the physical units of ``x`` and
``y`` (never in a prior's normalised range):

* :meth:`~GaussianLikelihood.residual` ``y − Ax``, :meth:`~GaussianLikelihood.nll`
  ``‖y − Ax‖²/(2σ²)`` and its gradient :meth:`~GaussianLikelihood.grad`;
* :meth:`~GaussianLikelihood.least_squares`, ``argmin ½‖y − Ax‖² + (w/2)‖x − z‖²``,
  the data-consistency step of DDS and DiffPIR and, through
  :meth:`~GaussianLikelihood.prox`, the proximal map of the negative
  log-likelihood;
* :meth:`~GaussianLikelihood.sample_proximal`, an exact draw from
  ``∝ exp(−nll(x) − (ρ/2)‖x − z‖²)``, the likelihood step of split Gibbs
  samplers (PnP-DM).

Least-squares steps use the operator's closed form where it has one (masks,
single-coil Cartesian MRI, and those composed with
:class:`~invsolve.operators.ComplexAsChannels`) and the batched conjugate
gradients :func:`~invsolve.operators.cg` otherwise (docs/design.md).
"""

from __future__ import annotations

import torch

from invsolve._checks import (
    check_batched_shape,
    check_compute_dtype,
    check_int,
    check_nonnegative,
    check_same_device,
    check_tensor,
)
from invsolve._random import randn_like

from .base import LinearOperator
from .cg import cg

__all__ = ["GaussianLikelihood"]

#: iterations and relative tolerance of a least-squares step solved to convergence
_SOLVE_ITERATIONS = 200
_SOLVE_TOL = 1e-7


class GaussianLikelihood:
    """``p(y | x) ∝ exp(−‖y − A x‖² / (2σ²))``: the operator and its noise, in physical units.

    Parameters
    ----------
    operator : LinearOperator
        The forward model ``A`` on images ``(B, *in_shape)``.
    noise_std : float
        ``σ >= 0`` in ``y``'s units; for complex data, per real component.
        ``σ = 0`` (noise-free data) is allowed for the least-squares steps,
        which then become projections onto ``{x : Ax = y}``; :meth:`nll`,
        :meth:`grad` and :meth:`sample_proximal` need ``σ > 0``.

    Examples
    --------
    >>> from invsolve.operators import GaussianLikelihood, Mask, random_pixel_mask
    >>> A = Mask(random_pixel_mask((32, 32), missing_fraction=0.5, seed=0))
    >>> likelihood = GaussianLikelihood(A, noise_std=0.05)
    >>> x = likelihood.prox(z, rho=10.0, y=y)   # argmin ‖y − Ax‖²/(2σ²) + 5‖x − z‖²
    """

    def __init__(self, operator: LinearOperator, noise_std: float) -> None:
        if not isinstance(operator, LinearOperator):
            raise TypeError(f"operator must be an invsolve LinearOperator, got {type(operator).__name__}")
        self.operator = operator
        self.noise_std = check_nonnegative(noise_std, "noise_std")

    def __repr__(self) -> str:
        return f"GaussianLikelihood({self.operator.describe()}, noise_std={self.noise_std:g})"

    @property
    def in_shape(self) -> tuple[int, ...]:
        """Shape of one image, ``(C, *spatial)``."""
        return self.operator.in_shape

    @property
    def out_shape(self) -> tuple[int, ...]:
        """Shape of one measurement."""
        return self.operator.out_shape

    def check_measurement(self, y: torch.Tensor, name: str = "y") -> None:
        """Raise one clear error unless ``y`` is a batch of this operator's measurements."""
        check_tensor(y, name)
        check_compute_dtype(y, name)
        check_batched_shape(y, self.out_shape, f"{name} (measurements of {self.operator.describe()})")
        check_same_device(y, self.operator.device, name)

    def _require_noise(self, what: str) -> float:
        if self.noise_std == 0:
            raise ValueError(
                f"{what} needs noise_std > 0 (the likelihood of noise-free data is degenerate), got noise_std=0"
            )
        return self.noise_std

    def residual(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``y − A x``, shaped like ``y``, over the measured entries only.

        Entries the operator never writes (a mask's hidden pixels, unsampled
        k-space) are zero whatever ``y`` holds there (:meth:`LinearOperator.measured`),
        so noise a simulation added to the whole array does not enter the
        norm (DPS's step size) or the negative log-likelihood.
        """
        return self.operator._measured(y) - self.operator(x)

    def nll(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood ``‖y − A x‖²/(2σ²)`` per batch item (up to a constant), ``(B,)``."""
        sigma = self._require_noise("nll")
        residual = self.residual(x, y)
        return residual.abs().square().reshape(residual.shape[0], -1).sum(dim=1) / (2 * sigma**2)

    def grad(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``∇ₓ nll = −Aᴴ(y − A x)/σ²``, shaped like ``x`` (real for real images)."""
        sigma = self._require_noise("grad")
        return -_real_like(self.operator.adjoint(self.residual(x, y)), x) / sigma**2

    def least_squares(
        self,
        z: torch.Tensor,
        weight: float,
        y: torch.Tensor,
        x0: torch.Tensor | None = None,
        iterations: int | None = None,
    ) -> torch.Tensor:
        """``argmin_x ½‖y − A x‖² + (w/2)‖x − z‖²`` for every batch item.

        Written as ``x = z + d`` with ``(AᴴA + wI) d = Aᴴ(y − A z)``; with
        ``w = 0`` the minimum-norm ``d`` gives the point of ``{x : Ax = y}``
        (or of the least-squares set) nearest to ``z``.

        Parameters
        ----------
        z : torch.Tensor
            Anchor images ``(B, *in_shape)`` in physical units.
        weight : float
            ``w >= 0`` in ``y``'s squared units per squared image unit.
        y : torch.Tensor
            Measurements ``(B, *out_shape)``.
        x0 : torch.Tensor, optional
            Warm start of the conjugate gradients (default ``z``).
        iterations : int, optional
            Conjugate-gradient iterations (each one ``AᴴA``), e.g. DDS's 5;
            ``None`` solves to convergence (relative residual 1e-7), in
            closed form where the operator has one.  An explicit count
            always runs CG, so that truncation acts the same on every
            operator.

        Returns
        -------
        torch.Tensor
            ``(B, *in_shape)``, physical units.
        """
        weight = check_nonnegative(weight, "weight")
        rhs = _real_like(self.operator.adjoint(self.residual(z, y)), z)
        if iterations is None:
            solved = self.operator._solve_normal(rhs, weight)
            if solved is not None:
                return z + _real_like(solved, z)
            iterations, tol = _SOLVE_ITERATIONS, _SOLVE_TOL
        else:
            iterations, tol = check_int(iterations, "iterations", minimum=0), 0.0
        start = None if x0 is None else x0 - z

        def matvec(v: torch.Tensor) -> torch.Tensor:
            return _real_like(self.operator.normal(v), v) + weight * v

        return z + cg(matvec, rhs, start, iterations=iterations, tol=tol)

    def prox(
        self,
        z: torch.Tensor,
        rho: float,
        y: torch.Tensor,
        x0: torch.Tensor | None = None,
        iterations: int | None = None,
    ) -> torch.Tensor:
        """Proximal map ``argmin_x ‖y − A x‖²/(2σ²) + (ρ/2)‖x − z‖²``, ``(B, *in_shape)``.

        ``ρ >= 0`` in inverse squared image units.  With ``σ = 0`` the data
        are a hard constraint and the result is the point of
        ``{x : Ax = y}`` nearest to ``z``.  See :meth:`least_squares` for
        ``x0`` and ``iterations``.
        """
        rho = check_nonnegative(rho, "rho")
        return self.least_squares(z, rho * self.noise_std**2, y, x0=x0, iterations=iterations)

    def sample_proximal(
        self, z: torch.Tensor, rho: float, y: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """An exact draw from ``∝ exp(−‖y − Ax‖²/(2σ²) − (ρ/2)‖x − z‖²)``, ``(B, *in_shape)``.

        Perturb-and-solve (Papandreou & Yuille, "Gaussian sampling by local
        perturbations", NeurIPS 2010): perturb the anchor, ``z + ρ^{-1/2}ξ``,
        and the data, ``y + σζ``, then return the exact :meth:`prox` of the
        perturbed pair.  The result is Gaussian with mean ``prox(z)`` and
        covariance ``(AᴴA/σ² + ρI)⁻¹``, exactly when the solve is exact (the
        closed form, or CG to a relative residual of 1e-7).

        Parameters
        ----------
        z : torch.Tensor
            Anchor ``(B, *in_shape)``, physical units.
        rho : float
            ``ρ > 0``, the precision of the Gaussian coupling to ``z``.
        y : torch.Tensor
            Measurements ``(B, *out_shape)``.
        generator : torch.Generator or None
            Source of the two perturbations.
        """
        sigma = self._require_noise("sample_proximal")
        rho = check_nonnegative(rho, "rho")
        if rho == 0:
            raise ValueError("rho must be > 0 for sample_proximal (the draw is improper without a coupling), got 0")
        anchor = z + randn_like(z, generator) / rho**0.5
        data = y + sigma * randn_like(y, generator)
        return self.prox(anchor, rho, data)


def _real_like(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``value`` in ``like``'s domain: its real part when ``like`` is a real image."""
    return value.real if value.is_complex() and not like.is_complex() else value
