"""Centred orthonormal Fourier transforms with fastMRI's conventions.

fastMRI (Zbontar et al., "fastMRI: An Open Dataset and Benchmarks for
Accelerated MRI", arXiv:1811.08839, 2018) stores k-space with the zero
frequency in the middle of the array (index ``n // 2`` on an axis of length
``n``) and the image with its centre at ``n // 2`` too.  Its ``fft2c`` is
``fftshift(fft2(ifftshift(x)))`` with ``norm="ortho"``; ``ifft2c`` swaps the
transform for the inverse one.  Both are unitary and each is the other's
adjoint and inverse for even and odd sizes alike.  The functions here are the
same maps over the last ``ndim`` axes (2 for slices, 3 for volumes) or over
any chosen axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["fft_centered", "ifft_centered"]


def _axes(x: torch.Tensor, ndim: int | None, dims: Sequence[int] | None, name: str) -> tuple[int, ...]:
    if dims is not None:
        return tuple(dims)
    if ndim not in (1, 2, 3):
        raise ValueError(f"ndim must be 1, 2 or 3 (the number of transformed trailing axes), got {ndim!r}")
    if x.dim() < ndim:
        raise ValueError(f"{name} must have at least {ndim} dimensions for ndim={ndim}, got shape {tuple(x.shape)}")
    return tuple(range(-ndim, 0))


def fft_centered(x: torch.Tensor, ndim: int = 2, *, dims: Sequence[int] | None = None) -> torch.Tensor:
    """Centred unitary DFT ``fftshift(fftn(ifftshift(x)))``, fastMRI's ``fft2c``.

    Parameters
    ----------
    x : torch.Tensor
        Real or complex image, ``(..., H, W)`` for ``ndim=2`` or
        ``(..., D, H, W)`` for ``ndim=3``.
    ndim : int
        Number of trailing axes transformed (1, 2 or 3).
    dims : sequence of int, optional
        Transform exactly these axes instead of the trailing ``ndim``.

    Returns
    -------
    torch.Tensor
        Complex k-space of ``x``'s shape, zero frequency at index ``n // 2``.
    """
    axes = _axes(x, ndim, dims, "x")
    if not axes:
        return x if x.is_complex() else x.to(torch.promote_types(x.dtype, torch.complex64))
    shifted = torch.fft.ifftshift(x, dim=axes)
    return torch.fft.fftshift(torch.fft.fftn(shifted, dim=axes, norm="ortho"), dim=axes)


def ifft_centered(k: torch.Tensor, ndim: int = 2, *, dims: Sequence[int] | None = None) -> torch.Tensor:
    """Centred unitary inverse DFT ``fftshift(ifftn(ifftshift(k)))``, fastMRI's ``ifft2c``.

    The exact inverse and adjoint of :func:`fft_centered` on the same axes.

    Parameters
    ----------
    k : torch.Tensor
        Complex k-space, zero frequency at index ``n // 2`` of each axis.
    ndim : int
        Number of trailing axes transformed (1, 2 or 3).
    dims : sequence of int, optional
        Transform exactly these axes instead of the trailing ``ndim``.

    Returns
    -------
    torch.Tensor
        Complex image of ``k``'s shape.
    """
    axes = _axes(k, ndim, dims, "k")
    if not axes:
        return k if k.is_complex() else k.to(torch.promote_types(k.dtype, torch.complex64))
    shifted = torch.fft.ifftshift(k, dim=axes)
    return torch.fft.fftshift(torch.fft.ifftn(shifted, dim=axes, norm="ortho"), dim=axes)
