"""Cartesian MRI: undersampled centred Fourier transform, single-coil or SENSE.

The forward model of multi-coil Cartesian MRI (Pruessmann et al., "SENSE:
Sensitivity encoding for fast MRI", Magn. Reson. Med. 42:952-962, 1999) is

    y_c = M ⊙ F(S_c ⊙ x),    c = 1 … n_coils,

with the image ``x``, the coil sensitivity maps ``S_c``, the centred unitary
Fourier transform ``F`` of fastMRI (:func:`~.fft.fft_centered`) and a binary
sampling mask ``M``; single-coil MRI is the case ``n_coils = 1``, ``S_1 = 1``.
Layout (fastMRI's, Zbontar et al. 2018, with a complex dtype instead of a
trailing real/imaginary axis):

==========  =====================  =========================
            2D slices              3D volumes
==========  =====================  =========================
image x     ``(B, 1, H, W)``       ``(B, 1, D, H, W)``
coil maps   ``(coils, H, W)``      ``(coils, D, H, W)``
k-space y   ``(B, coils, H, W)``   ``(B, coils, D, H, W)``
==========  =====================  =========================

In 2D, ``H`` is the fully sampled readout and ``W`` the phase encode, so a
fastMRI column mask is shaped ``(W,)``.  In 3D the mask usually lives on the
two phase-encode axes; with the readout along ``D`` a 2-D ``(H, W)`` mask (e.g.
:func:`~.masks.poisson_disc_mask`) broadcasts as it is.  Any mask that
broadcasts to the spatial shape is accepted (e.g. ``(D, 1, W)`` for a readout
along ``H``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from invsolve._checks import check_finite, check_shape, check_tensor

from ..base import LinearOperator
from .fft import fft_centered, ifft_centered
from .masks import _as_bool_mask, _fit_mask, check_center_lines

__all__ = ["CartesianMRI", "rss"]


class CartesianMRI(LinearOperator):
    """Undersampled Cartesian MRI, ``y = M ⊙ F(S_c x)``, on complex images.

    Parameters
    ----------
    mask : torch.Tensor
        Boolean or 0/1 sampling mask, ``True`` where k-space is sampled; its
        shape must broadcast to the spatial shape ``(H, W)`` / ``(D, H, W)``
        (e.g. a ``(W,)`` column mask, an ``(H, W)`` plane).
    coil_maps : torch.Tensor, optional
        Complex coil sensitivities ``(coils, H, W)`` or ``(coils, D, H, W)``
        (SENSE).  Omitted: single-coil MRI.
    shape : (H, W) or (D, H, W), optional
        Spatial image shape.  Needed when neither the coil maps nor the mask
        give it (a 1-D column mask without coil maps); must agree with both.
    require_center : bool
        Check with :func:`~.masks.check_center_lines` that the mask samples the
        k-space centre (a calibration region).

    Notes
    -----
    ``complex_domain`` and ``complex_range`` are ``True``.  Images and
    k-space may be ``complex64`` or ``complex128`` (real images are treated as
    complex); coil maps are cast to the precision of each input.  ``normal``
    applies ``Σ_c S_c* Fₐ⁻¹ M Fₐ (S_c x)`` with ``Fₐ`` only over the axes along
    which the mask varies (the other axes of ``F`` cancel), in one pass over
    the coils.  Single-coil ``pinv`` is the zero-filled reconstruction
    ``F⁻¹ M y`` (``F`` is unitary and ``M`` a projection); SENSE ``pinv``
    uses conjugate gradients (the base class).

    Examples
    --------
    >>> import torch
    >>> from invsolve.operators.mri import CartesianMRI, random_mask
    >>> mask = random_mask(64, center_fraction=0.08, acceleration=4, seed=0)
    >>> A = CartesianMRI(mask, shape=(64, 64))          # (B, 1, 64, 64) -> (B, 1, 64, 64)
    >>> x = torch.randn(2, 1, 64, 64, dtype=torch.complex64)
    >>> image = A.pinv(A(x))                           # zero-filled
    """

    def __init__(
        self,
        mask: torch.Tensor,
        coil_maps: torch.Tensor | None = None,
        *,
        shape: Sequence[int] | None = None,
        require_center: bool = False,
    ) -> None:
        mask = _as_bool_mask(mask, "mask")
        if coil_maps is not None:
            check_tensor(coil_maps, "coil_maps")
            if coil_maps.dim() not in (3, 4):
                raise ValueError(
                    f"coil_maps must be shaped (coils, H, W) or (coils, D, H, W), got {tuple(coil_maps.shape)}"
                )
            check_finite(coil_maps, "coil_maps")
            spatial = tuple(coil_maps.shape[1:])
            if shape is not None and tuple(shape) != spatial:
                raise ValueError(f"shape {tuple(shape)} disagrees with the coil maps' spatial shape {spatial}")
        elif shape is not None:
            spatial = check_shape(shape, "shape", ("H", "W"), ("D", "H", "W"))
        elif mask.dim() in (2, 3):
            spatial = tuple(mask.shape)
        else:
            raise ValueError(
                f"the image shape is unknown: pass shape=(H, W) or (D, H, W) (or coil_maps) with a mask "
                f"of shape {tuple(mask.shape)}"
            )
        mask = _fit_mask(mask, spatial)
        if require_center:
            check_center_lines(mask)
        n_coils = 1 if coil_maps is None else coil_maps.shape[0]
        super().__init__((1, *spatial), (n_coils, *spatial), complex_domain=True, complex_range=True)
        self.ndim = len(spatial)
        full_mask = mask.reshape((1,) * (self.ndim - mask.dim()) + tuple(mask.shape))
        if coil_maps is not None:
            full_mask = full_mask.to(coil_maps.device)
        self.register_buffer("mask", full_mask)
        # Spatial axes (counted from the end) along which the mask varies.
        self._mask_dims = tuple(axis - self.ndim for axis, n in enumerate(full_mask.shape) if n > 1)
        if coil_maps is not None:
            coil_maps = coil_maps if coil_maps.is_complex() else coil_maps.to(coil_maps.dtype.to_complex())
        self.register_buffer("coil_maps", coil_maps)

    @property
    def n_coils(self) -> int:
        """Number of receive coils (1 for single-coil MRI)."""
        return self.out_shape[0]

    @property
    def acceleration(self) -> float:
        """Undersampling factor: k-space points per sampled point."""
        sampled = int(self.mask.sum()) * (torch.Size(self.in_shape[1:]).numel() // self.mask.numel())
        return torch.Size(self.in_shape[1:]).numel() / sampled if sampled else float("inf")

    def _maps(self, value: torch.Tensor) -> torch.Tensor:
        dtype = value.dtype if value.is_complex() else torch.promote_types(value.dtype, torch.complex64)
        return self.coil_maps.to(dtype)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x if self.coil_maps is None else x * self._maps(x)
        return fft_centered(images, self.ndim) * self.mask

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        images = ifft_centered(y * self.mask, self.ndim)
        if self.coil_maps is None:
            return images
        return (images * self._maps(y).conj()).sum(dim=1, keepdim=True)

    def _normal(self, x: torch.Tensor) -> torch.Tensor:
        images = x if self.coil_maps is None else x * self._maps(x)
        images = ifft_centered(fft_centered(images, dims=self._mask_dims) * self.mask, dims=self._mask_dims)
        if self.coil_maps is None:
            return images
        return (images * self._maps(x).conj()).sum(dim=1, keepdim=True)

    def _solve_normal(self, rhs: torch.Tensor, damping: float) -> torch.Tensor | None:
        # Single coil: AᴴA = F⁻¹MF with F over the axes along which the mask varies.
        if self.coil_maps is not None:
            return None
        spectrum = fft_centered(rhs, dims=self._mask_dims)
        unsampled = spectrum / damping if damping > 0 else torch.zeros_like(spectrum)
        return ifft_centered(torch.where(self.mask, spectrum / (1 + damping), unsampled), dims=self._mask_dims)

    def _measured(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.mask

    def _pinv(self, y: torch.Tensor) -> torch.Tensor:
        if self.coil_maps is None:
            return self._adjoint(y)
        return super()._pinv(y)

    def zero_filled(self, y: torch.Tensor) -> torch.Tensor:
        """Coil images of the zero-filled k-space, ``F⁻¹(M ⊙ y)``.

        Parameters
        ----------
        y : torch.Tensor
            k-space ``(B, coils, *spatial)``.

        Returns
        -------
        torch.Tensor
            Complex ``(B, coils, *spatial)``, one image per coil (the coil maps
            are not applied).
        """
        self._check_measurement(y)
        return ifft_centered(y * self.mask, self.ndim)

    def rss(self, y: torch.Tensor) -> torch.Tensor:
        """fastMRI's zero-filled magnitude baseline: :func:`rss` of :meth:`zero_filled`.

        Returns
        -------
        torch.Tensor
            Real ``(B, 1, *spatial)``; for one coil, ``|F⁻¹(M ⊙ y)|``.
        """
        return rss(self.zero_filled(y), dim=1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, coils={self.n_coils}, acceleration={self.acceleration:.3g}"


def rss(images: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Root-sum-of-squares coil combination, fastMRI's ``rss``/``rss_complex``.

    Parameters
    ----------
    images : torch.Tensor
        Real or complex coil images, e.g. ``(B, coils, *spatial)``.
    dim : int
        Coil axis.

    Returns
    -------
    torch.Tensor
        ``sqrt(Σ_c |images_c|²)``, real, with ``dim`` kept as size 1.
    """
    check_tensor(images, "images")
    return torch.sqrt((images.abs() ** 2).sum(dim=dim, keepdim=True))
