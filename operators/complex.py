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

Magnitude with the phase kept
-----------------------------
A prior trained on magnitude images (as fastMRI's are) needs a phase from
elsewhere, e.g. the phase of a low-resolution or zero-filled reconstruction:
``mag, phase = magnitude_phase(x)`` splits an image and
``from_magnitude(mag, phase)`` rebuilds it.  For a fixed phase ``φ``,
``m ↦ A(m e^{iφ})`` is linear in the real magnitude ``m``, but the model
ignores the error of ``φ``; the real/imaginary channels need no such
assumption and are the package's default.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from invsolve._checks import check_int, check_tensor

from .base import LinearOperator

__all__ = ["ComplexAsChannels", "complex_to_channels", "channels_to_complex", "magnitude_phase", "from_magnitude"]


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


def _check_batched(x: torch.Tensor, name: str) -> None:
    if x.dim() < 2:
        raise ValueError(f"{name} must be batched (B, C, *spatial), got shape {tuple(x.shape)}")
