"""Where complex images meet real-valued priors.

Diffusion priors denoise real tensors; MRI operators act on complex images.
The package's one conversion puts the real and imaginary parts side by side
as channels:

    real (B, 2C, *spatial) = [Re x_1 … Re x_C, Im x_1 … Im x_C]  ↔  complex x (B, C, *spatial).

:func:`complex_to_channels` and :func:`channels_to_complex` are the plain
functions, and :class:`ComplexAsChannels` is the same map as a
:class:`~invsolve.operators.LinearOperator`, so that

    A = CartesianMRI(mask, ...) @ ComplexAsChannels((1, H, W))

is a real-domain operator on ``(B, 2, H, W)`` images that
:func:`invsolve.reconstruct` accepts with a two-channel prior.  Under the
real inner product ``Re⟨·,·⟩`` the map is orthogonal: its adjoint
``z ↦ [Re z, Im z]`` is its inverse.

Real images with a known phase
------------------------------
A prior trained on magnitude images (as fastMRI's and ``mri-brain`` are)
sees one real channel.  :class:`RealAsComplex` embeds it as the complex
image ``m·e^{iφ}`` with a fixed phase map ``φ`` (zero by default), so that

    A = CartesianMRI(mask, ...) @ RealAsComplex((1, H, W), phase)

is a real-domain operator on ``(B, 1, H, W)`` images that
:func:`invsolve.reconstruct` accepts with a one-channel prior.  The phase
comes from elsewhere, e.g. the phase of a low-resolution reconstruction of
the fully sampled k-space centre (:func:`magnitude_phase` splits an image,
:func:`from_magnitude` rebuilds it).  For a fixed ``φ`` the map is linear in
``m`` and exact; the model ignores the error of ``φ``, and where the true
image has phase structure finer than ``φ`` it cannot fit the data (the
real/imaginary channels need no such assumption).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from invsolve._checks import check_finite, check_int, check_tensor

from .base import LinearOperator

__all__ = [
    "ComplexAsChannels",
    "RealAsComplex",
    "complex_to_channels",
    "channels_to_complex",
    "magnitude_phase",
    "from_magnitude",
]


def complex_to_channels(x: torch.Tensor) -> torch.Tensor:
    """Complex ``(B, C, *spatial)`` → real ``(B, 2C, *spatial)``: real parts, then imaginary parts.

    A real ``x`` is taken as having zero imaginary part.
    """
    check_tensor(x, "x")
    _check_batched(x, "x")
    if not x.is_complex():
        return torch.cat([x, torch.zeros_like(x)], dim=1)
    return torch.cat([x.real, x.imag], dim=1)


def channels_to_complex(x: torch.Tensor) -> torch.Tensor:
    """Real ``(B, 2C, *spatial)`` → complex ``(B, C, *spatial)``, the inverse of :func:`complex_to_channels`."""
    check_tensor(x, "x", allow_complex=False)
    _check_batched(x, "x")
    if x.shape[1] % 2:
        raise ValueError(
            f"x must have an even number of channels (real parts, then imaginary parts), got shape {tuple(x.shape)}"
        )
    half = x.shape[1] // 2
    return torch.complex(x[:, :half], x[:, half:])


def magnitude_phase(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a complex image into magnitude ``|x|`` and phase ``angle(x)`` in radians, both real, ``x``'s shape."""
    check_tensor(x, "x")
    return x.abs(), torch.angle(x)


def from_magnitude(magnitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """Complex image ``magnitude · e^{i·phase}`` (phase in radians; shapes broadcast)."""
    check_tensor(magnitude, "magnitude", allow_complex=False)
    check_tensor(phase, "phase", allow_complex=False)
    return torch.polar(*torch.broadcast_tensors(magnitude, phase.to(magnitude.dtype)))


class ComplexAsChannels(LinearOperator):
    """Real images ``(B, 2C, *spatial)`` as complex images ``(B, C, *spatial)``.

    Parameters
    ----------
    shape : sequence of int
        Shape ``(C, *spatial)`` of one *complex* image (the operator's
        ``out_shape``); ``in_shape`` is ``(2C, *spatial)``.

    Notes
    -----
    ``complex_domain=False``, ``complex_range=True``.  The operator is an
    isometry onto the complex images, so ``normal`` is the identity and
    ``pinv`` equals ``adjoint``.

    Examples
    --------
    >>> from invsolve.operators.mri import CartesianMRI, random_mask
    >>> mask = random_mask(32, 0.08, 4, seed=0)
    >>> A = CartesianMRI(mask, shape=(32, 32)) @ ComplexAsChannels((1, 32, 32))
    >>> A.in_shape, A.complex_domain
    ((2, 32, 32), False)
    """

    def __init__(self, shape: Sequence[int]) -> None:
        try:
            channels, *spatial = shape
        except (TypeError, ValueError):
            raise ValueError(f"shape must be a sequence (C, *spatial) of ints, got {shape!r}") from None
        channels = check_int(channels, "shape[0] (channels)")
        super().__init__((2 * channels, *spatial), (channels, *spatial), complex_domain=False, complex_range=True)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return channels_to_complex(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return complex_to_channels(y)

    unitary = True

    def _normal(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _solve_normal(self, rhs: torch.Tensor, damping: float) -> torch.Tensor:
        return rhs / (1 + damping)

    _pinv = _adjoint


class RealAsComplex(LinearOperator):
    """Real images ``m`` ``(B, C, *spatial)`` as the complex images ``m·e^{iφ}`` of the same shape.

    Parameters
    ----------
    shape : sequence of int
        Image shape ``(C, *spatial)``, the same for ``in_shape`` (real) and
        ``out_shape`` (complex).
    phase : torch.Tensor, optional
        Fixed phase map ``φ`` in radians, real and finite, broadcastable to
        ``shape`` (e.g. ``(H, W)`` or ``(1, H, W)``); default 0 (the real
        image itself).

    Notes
    -----
    ``complex_domain=False``, ``complex_range=True``.  Under the real inner
    product the adjoint is ``z ↦ Re(e^{−iφ}z)`` and, since ``|e^{iφ}| = 1``,
    ``AᴴA = I`` (an isometry, so ``pinv`` equals ``adjoint``); it is not onto
    the complex images (the imaginary part relative to ``φ`` is never
    produced), so a composition solves its least-squares steps by conjugate
    gradients.

    Examples
    --------
    >>> from invsolve.operators.mri import CartesianMRI, random_mask
    >>> mask = random_mask(64, 0.08, 4, seed=0)
    >>> A = CartesianMRI(mask, shape=(64, 64)) @ RealAsComplex((1, 64, 64))
    >>> A.in_shape, A.complex_domain
    ((1, 64, 64), False)
    """

    def __init__(self, shape: Sequence[int], phase: torch.Tensor | None = None) -> None:
        super().__init__(shape, shape, complex_domain=False, complex_range=True)
        if phase is None:
            phase = torch.zeros(())
        else:
            check_tensor(phase, "phase", allow_complex=False)
            check_finite(phase, "phase")
            try:
                broadcast = torch.broadcast_shapes(phase.shape, self.in_shape)
            except RuntimeError:
                broadcast = None
            if broadcast != torch.Size(self.in_shape):
                raise ValueError(
                    f"phase must broadcast to the image shape {self.in_shape}, got shape {tuple(phase.shape)}"
                )
        self.register_buffer("phase", phase.to(torch.float64))

    def _rotation(self, value: torch.Tensor) -> torch.Tensor:
        real = value.real.dtype if value.is_complex() else value.dtype
        return torch.polar(torch.ones((), dtype=real, device=value.device), self.phase.to(real))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._rotation(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return (y * self._rotation(y).conj()).real

    def _normal(self, x: torch.Tensor) -> torch.Tensor:
        return x

    _pinv = _adjoint


def _check_batched(x: torch.Tensor, name: str) -> None:
    if x.dim() < 2:
        raise ValueError(f"{name} must be batched (B, C, *spatial), got shape {tuple(x.shape)}")
