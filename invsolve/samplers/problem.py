"""What a sampler is asked to solve: measurements, their likelihood, an optional condition and start image."""

from __future__ import annotations

from collections.abc import Callable

import torch

from invsolve._checks import check_finite, check_tensor
from invsolve.operators import GaussianLikelihood, LinearOperator
from invsolve.priors import DiffusionPrior

__all__ = ["Problem", "check_operator_fits_prior"]


def check_operator_fits_prior(operator: LinearOperator, prior: DiffusionPrior) -> None:
    """Raise one clear error unless ``operator`` takes the prior's images (shape, real domain, device)."""
    if not isinstance(prior, DiffusionPrior):
        raise TypeError(f"prior must be an invsolve DiffusionPrior, got {type(prior).__name__}")
    if tuple(prior.image_shape) != tuple(operator.in_shape):
        raise ValueError(
            f"the prior's image shape {prior.image_shape} does not fit the operator, whose images are "
            f"shaped {operator.in_shape}"
        )
    if operator.complex_domain:
        raise ValueError(
            f"{operator.describe()} acts on complex images; compose it with "
            f"invsolve.operators.ComplexAsChannels({operator.in_shape}) (operator @ ComplexAsChannels(...)) "
            "so that it takes the prior's real image with real and imaginary parts as channels"
        )
    if operator.device is not None and operator.device != prior.device:
        raise ValueError(f"the operator is on {operator.device} but the prior is on {prior.device}")


class Problem:
    """Measurements ``y``, their likelihood and what the prior is conditioned on.

    The data term stays in physical units: the likelihood's operator maps
    images in the units of ``prior.to_physical`` to measurements in ``y``'s
    units.  Samplers reach the data only through this object, which binds
    ``y`` to the likelihood's methods (docs/design.md, "Problem").

    Parameters
    ----------
    y : torch.Tensor or None
        Measurements ``(B, *likelihood.out_shape)``, finite.  ``None`` only
        without a likelihood (conditional generation).
    likelihood : GaussianLikelihood or None
        Operator plus noise model; ``None`` for sampling the prior (or the
        conditional prior) without data.
    condition : torch.Tensor, optional
        Passed to every call of a conditional prior (class labels ``(B,)``,
        vectors ``(B, size)`` or images ``(B, size, *spatial)``); its first
        axis is the batch.
    start_image : torch.Tensor, optional
        An estimate of the image to start from, ``(B, *likelihood.in_shape)``,
        physical units, real, finite, on ``y``'s device: samplers that take a
        ``start_time`` begin at ``α_t·x + σ_t·ε`` with this ``x`` (e.g. a TV
        or FBP reconstruction) instead of their own start (docs/design.md,
        "Warm starts").

    Examples
    --------
    >>> from invsolve.operators import GaussianLikelihood
    >>> problem = Problem(y, GaussianLikelihood(A, noise_std=0.05))
    >>> x = problem.prox(z, rho=10.0)       # the likelihood's prox with y bound
    """

    def __init__(
        self,
        y: torch.Tensor | None,
        likelihood: GaussianLikelihood | None,
        condition: torch.Tensor | None = None,
        start_image: torch.Tensor | None = None,
    ) -> None:
        if likelihood is not None and not isinstance(likelihood, GaussianLikelihood):
            raise TypeError(f"likelihood must be an invsolve GaussianLikelihood or None, got {type(likelihood).__name__}")
        if likelihood is None:
            if y is not None:
                raise ValueError("y was given without a likelihood: pass the likelihood that explains it")
            if condition is None:
                raise ValueError("a problem needs measurements with a likelihood, or a condition to generate from")
        else:
            if y is None:
                raise ValueError(f"y must be a tensor of measurements of {likelihood.operator.describe()}, got None")
            likelihood.check_measurement(y)
            check_finite(y, "y")
        if condition is not None:
            if not isinstance(condition, torch.Tensor):
                raise TypeError(f"condition must be a torch.Tensor or None, got {type(condition).__name__}")
            if condition.dim() < 1 or condition.shape[0] < 1 or (y is not None and condition.shape[0] != y.shape[0]):
                expected = f"batch size {y.shape[0]} like y" if y is not None else "a batch axis first, B >= 1"
                raise ValueError(f"condition must have {expected}, got shape {tuple(condition.shape)}")
            if condition.is_floating_point() or condition.is_complex():
                check_finite(condition, "condition")
        if start_image is not None:
            if likelihood is None:
                raise ValueError("start_image needs measurements: a start image is an estimate of what y measured")
            check_tensor(start_image, "start_image", allow_complex=False)
            expected = (y.shape[0], *likelihood.operator.in_shape)
            if tuple(start_image.shape) != expected:
                raise ValueError(
                    f"start_image must be shaped {expected} (the batch of y, then the operator's images), "
                    f"got {tuple(start_image.shape)}"
                )
            if start_image.device != y.device:
                raise ValueError(f"start_image is on {start_image.device} but y is on {y.device}")
            check_finite(start_image, "start_image")
        self.y = y
        self.likelihood = likelihood
        self.condition = condition
        self.start_image = start_image

    def repeat(self, count: int) -> Problem:
        """The same problem with every item repeated ``count`` times in a row (item-major)."""
        y = None if self.y is None else self.y.repeat_interleave(count, dim=0)
        condition = None if self.condition is None else self.condition.repeat_interleave(count, dim=0)
        start = None if self.start_image is None else self.start_image.repeat_interleave(count, dim=0)
        return Problem(y, self.likelihood, condition, start)

    @property
    def batch_size(self) -> int:
        """Number of independent problems ``B``."""
        return self.y.shape[0] if self.y is not None else self.condition.shape[0]

    @property
    def operator(self) -> LinearOperator:
        """The likelihood's forward operator (a clear error when there is no likelihood)."""
        return self._require_likelihood().operator

    @property
    def noise_std(self) -> float:
        """The likelihood's noise standard deviation, in ``y``'s units."""
        return self._require_likelihood().noise_std

    def _require_likelihood(self) -> GaussianLikelihood:
        if self.likelihood is None:
            raise ValueError("this sampler needs measurements: the problem has no likelihood (conditional generation only)")
        return self.likelihood

    def check_prior(
        self,
        prior: DiffusionPrior,
        check_operator: Callable[[LinearOperator, DiffusionPrior], None] = check_operator_fits_prior,
    ) -> None:
        """Raise one clear error if ``prior`` cannot be combined with this problem.

        ``check_operator`` says whether the likelihood's operator takes the
        prior's images: by default they must be its images, a slice-augmented
        sampler asks for the slices of its volumes instead.
        """
        if self.likelihood is not None:
            check_operator(self.likelihood.operator, prior)
            if self.y.device != prior.device:
                raise ValueError(f"y is on {self.y.device} but the prior is on {prior.device}")
        elif not isinstance(prior, DiffusionPrior):
            raise TypeError(f"prior must be an invsolve DiffusionPrior, got {type(prior).__name__}")
        if self.condition is not None and not prior.conditional:
            raise ValueError(
                f"a condition was given but the {type(prior).__name__} is unconditional; "
                "pass condition=None or a conditional prior"
            )

    # -- the likelihood with y bound ----------------------------------------------
    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``y − A x`` (physical units)."""
        return self._require_likelihood().residual(x, self.y)

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """``‖y − A x‖²/(2σ²)`` per item, ``(B,)``."""
        return self._require_likelihood().nll(x, self.y)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """``∇ₓ nll``, shaped like ``x``."""
        return self._require_likelihood().grad(x, self.y)

    def least_squares(
        self, z: torch.Tensor, weight: float, x0: torch.Tensor | None = None, iterations: int | None = None
    ) -> torch.Tensor:
        """:meth:`GaussianLikelihood.least_squares` with this problem's ``y``."""
        return self._require_likelihood().least_squares(z, weight, self.y, x0=x0, iterations=iterations)

    def prox(
        self, z: torch.Tensor, rho: float, x0: torch.Tensor | None = None, iterations: int | None = None
    ) -> torch.Tensor:
        """:meth:`GaussianLikelihood.prox` with this problem's ``y``."""
        return self._require_likelihood().prox(z, rho, self.y, x0=x0, iterations=iterations)

    def sample_proximal(self, z: torch.Tensor, rho: float, generator: torch.Generator | None) -> torch.Tensor:
        """:meth:`GaussianLikelihood.sample_proximal` with this problem's ``y``."""
        return self._require_likelihood().sample_proximal(z, rho, self.y, generator)
