"""Meeting multi-coil MRI data with an image prior: calibration, phase, intensity, noise.

The recipe shared by ``examples/mri_cs.py`` and ``invsolve reconstruct
--operator mri``:

1. :func:`calibration_lines` — the fully sampled k-space centre of a mask;
2. :func:`calibrated_coil_maps` — coil maps by ESPIRiT from those lines;
3. :func:`calibration_phase` — the phase of a low-resolution SENSE image of
   the calibration lines, for a magnitude (one-channel) prior seen through
   ``CartesianMRI(...) @ RealAsComplex(shape, phase)``;
4. :func:`window_scale` — the factor that brings the data to the prior's
   training window: the 99.9th percentile of the CG-SENSE magnitude is put at
   the top of the window (:func:`prior_window`), and the reconstruction is
   divided by the same factor afterwards;
5. :func:`estimate_kspace_noise` — the noise level from the k-space corners
   when the user does not give it;
6. :func:`prior_view` — steps 3 and 4 together: the operator from the
   prior's images to the scaled k-space, and the way back.

Priors are reached only through their ``normalization`` and ``image_shape``
(no import of :mod:`invsolve.priors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from invsolve._checks import check_tensor
from invsolve.baselines import cg_sense
from invsolve.operators import ComplexAsChannels, LinearOperator, RealAsComplex, channels_to_complex
from invsolve.operators.mri import (
    CartesianMRI,
    check_center_lines,
    espirit_maps,
    estimate_coil_maps,
    ifft_centered,
    rss,
)
from invsolve.operators.mri.masks import center_runs

__all__ = [
    "calibration_lines",
    "calibration_phase",
    "calibrated_coil_maps",
    "prior_window",
    "window_scale",
    "estimate_kspace_noise",
    "PriorView",
    "prior_view",
]

#: the quantile of the CG-SENSE magnitude put at the top of a prior's window
WINDOW_QUANTILE = 0.999


def calibration_lines(mask: torch.Tensor) -> torch.Tensor:
    """The run of sampled k-space through the centre of ``mask``, as a mask of the same shape.

    Along each axis of the mask the run is the longest interval of sampled
    entries that contains the zero frequency at index ``n // 2`` (for a
    fastMRI column mask ``(W,)``: the calibration columns); for a 2-D mask the
    result is the rectangle of those runs.

    Parameters
    ----------
    mask : torch.Tensor
        Boolean (or 0/1) sampling mask, ``(W,)`` columns or an ``(H, W)`` plane,
        whose centre is sampled.

    Returns
    -------
    torch.Tensor
        A mask of ``mask``'s shape and dtype, true on the calibration region only.

    Raises
    ------
    ValueError
        If the zero frequency is not sampled (no calibration region).
    """
    runs = center_runs(mask)  # validates the mask, and its centre being sampled
    lines = torch.zeros_like(mask)
    lines[tuple(slice(start, stop) for start, stop in runs)] = True
    return lines


def calibrated_coil_maps(kspace: torch.Tensor, mask: torch.Tensor, coverage: float = 0.95) -> tuple[torch.Tensor, str]:
    """Coil maps from the calibration lines of one undersampled acquisition.

    ESPIRiT (:func:`~invsolve.operators.mri.espirit_maps`) with ``k × k``
    kernels, trying ``k = min(6, lines − 1)`` down to 3 for the narrowest
    calibration width ``lines``: ESPIRiT sets maps to zero where its top
    eigenvalue is below 0.95, and on small or noisy calibration data large
    kernels zero out parts of the object.  The first ``k`` whose maps are
    non-zero on at least ``coverage`` of the object — the pixels where the
    low-resolution image of the calibration lines exceeds 10 % of its
    maximum — is used.  With fewer than 4 calibration lines, or when no
    kernel covers the object, the low-resolution method
    (:func:`~invsolve.operators.mri.estimate_coil_maps`) is used instead.

    Parameters
    ----------
    kspace : torch.Tensor
        Complex k-space ``(coils, H, W)``, unsampled entries zero.
    mask : torch.Tensor
        Sampling mask broadcastable to ``(H, W)``, e.g. ``(W,)`` columns.
    coverage : float
        Fraction of the object the ESPIRiT maps must cover, in ``(0, 1]``.

    Returns
    -------
    maps : torch.Tensor
        Complex ``(coils, H, W)``.
    method : str
        How they were computed, e.g. ``"espirit (6x6 kernels, 26 calibration lines)"``.
    """
    check_tensor(kspace, "kspace")
    if kspace.dim() != 3:
        raise ValueError(f"kspace must be shaped (coils, H, W), got {tuple(kspace.shape)}")
    plane = torch.broadcast_to(mask.to(torch.bool).cpu(), tuple(kspace.shape[-2:]))
    lines = min(check_center_lines(plane))
    if lines < 4:
        return estimate_coil_maps(kspace, mask), f"low-resolution ({lines} calibration lines, too few for ESPIRiT)"
    low = rss(ifft_centered(kspace * calibration_lines(plane).to(kspace.device)), dim=0)[0]
    obj = low >= 0.1 * low.max()
    for kernel in range(min(6, lines - 1), 2, -1):
        maps = espirit_maps(kspace, mask, kernel_size=kernel)
        covered = float((maps.abs().sum(dim=0) > 0)[obj].float().mean())
        if covered >= coverage:
            return maps, f"espirit ({kernel}x{kernel} kernels, {lines} calibration lines)"
    return (
        estimate_coil_maps(kspace, mask),
        f"low-resolution (ESPIRiT maps left part of the object empty with {lines} calibration lines)",
    )


def calibration_phase(
    kspace: torch.Tensor, mask: torch.Tensor, coil_maps: torch.Tensor | None, iterations: int = 10
) -> torch.Tensor:
    """The phase of a low-resolution SENSE image of the calibration lines.

    Only the k-space inside :func:`calibration_lines` is kept, and CG-SENSE
    (``iterations`` steps from zero) reconstructs it with ``coil_maps``; its
    phase is smooth and is the fixed phase map of
    :class:`~invsolve.operators.RealAsComplex` for a magnitude prior.

    Parameters
    ----------
    kspace : torch.Tensor
        Complex k-space ``(B, coils, H, W)`` or ``(B, coils, D, H, W)`` (the
        measurement ``y``; only its calibration lines are used).
    mask : torch.Tensor
        Its sampling mask, e.g. ``(W,)`` columns or an ``(H, W)`` phase-encode plane.
    coil_maps : torch.Tensor or None
        Complex ``(coils, *spatial)``; ``None`` for single-coil data.
    iterations : int
        CG-SENSE iterations.

    Returns
    -------
    torch.Tensor
        Real ``(1, *spatial)`` phase in radians, of the first item of the batch.
    """
    check_tensor(kspace, "kspace")
    lines = calibration_lines(mask)
    operator = CartesianMRI(lines, coil_maps, shape=tuple(kspace.shape[2:]))
    return torch.angle(cg_sense(kspace * lines, operator, iterations=iterations))[0]


def prior_window(prior: Any) -> tuple[float, float]:
    """The physical interval a prior's network range ``[-1, 1]`` maps to, ``(low, high)``.

    ``prior`` is any object with a ``normalization`` (a
    :class:`~invsolve.priors.Normalization`), e.g. ``(0, 120)`` a.u. for
    ``mri-brain``.
    """
    normalization = prior.normalization
    return normalization.offset - normalization.scale, normalization.offset + normalization.scale


def window_scale(image: torch.Tensor, window_top: float, quantile: float = WINDOW_QUANTILE) -> float:
    """The factor that puts the ``quantile`` of ``|image|`` at ``window_top``.

    Multiply the measurement (and its noise level) by the factor before
    reconstructing with the prior, and divide the reconstruction by it.

    Parameters
    ----------
    image : torch.Tensor
        A reconstruction of the data, e.g. CG-SENSE; real or complex, any shape.
    window_top : float
        The top of the prior's window (:func:`prior_window`), ``> 0``.
    quantile : float
        Which quantile of the magnitude; default 0.999 (robust to a few hot pixels).

    Raises
    ------
    ValueError
        If that quantile is zero (an empty image) or the window top not positive.
    """
    check_tensor(image, "image")
    if not window_top > 0:
        raise ValueError(f"window_top must be positive, got {window_top!r}")
    level = float(torch.quantile(image.abs().flatten(), quantile))
    if not level > 0:
        raise ValueError(f"the image is empty: the {quantile:g} quantile of its magnitude is {level!r}")
    return window_top / level


def estimate_kspace_noise(kspace: torch.Tensor, mask: torch.Tensor, fraction: float = 0.125) -> float:
    """The noise standard deviation per real component from the corners of k-space.

    Far from the centre k-space holds little signal, so its sampled entries
    are mostly noise.  The corners are the entries in the outer ``fraction``
    of rows (both ends of the read-out axis ``H``) *and* of columns (both
    ends of ``W``) that the mask samples — of every axis for a volume
    ``(D, H, W)`` —; if the mask samples none there, all its sampled entries
    in the outer rows (the first spatial axis) are used.  The estimate is
    the median absolute value of their real and imaginary parts divided by
    0.6745 (the median of ``|N(0, 1)|``), which a few signal entries barely
    move.  Exact zeros (padding, unsampled entries) are ignored.

    Parameters
    ----------
    kspace : torch.Tensor
        Complex ``(coils, H, W)`` or ``(coils, D, H, W)``.
    mask : torch.Tensor
        Sampling mask broadcastable to the spatial shape.
    fraction : float
        Width of each border, as a fraction of the axis, in ``(0, 0.5)``.

    Returns
    -------
    float
        Estimated standard deviation, in k-space units.

    Raises
    ------
    ValueError
        If fewer than 64 corner values are available.
    """
    check_tensor(kspace, "kspace")
    if kspace.dim() not in (3, 4) or not kspace.is_complex():
        raise ValueError(
            f"kspace must be complex and shaped (coils, H, W) or (coils, D, H, W), got {kspace.dtype} {tuple(kspace.shape)}"
        )
    if not 0 < fraction < 0.5:
        raise ValueError(f"fraction must be in (0, 0.5), got {fraction!r}")
    spatial = tuple(kspace.shape[1:])
    sampled = torch.broadcast_to(mask.to(torch.bool).to(kspace.device), spatial)

    def border(axis: int) -> torch.Tensor:
        n = spatial[axis]
        edge = max(1, int(n * fraction))
        keep = torch.zeros(n, dtype=torch.bool, device=kspace.device)
        keep[:edge] = True
        keep[n - edge :] = True
        return keep.reshape((n,) + (1,) * (len(spatial) - axis - 1))

    rows = sampled & border(0)
    corners = rows
    for axis in range(1, len(spatial)):
        corners = corners & border(axis)
    if not bool(corners.any()):
        corners = rows
    values = kspace[:, corners]
    values = values[values != 0]
    parts = torch.cat([values.real, values.imag]).abs().to(torch.float64)
    if parts.numel() < 64:
        raise ValueError(
            f"cannot estimate the noise from the k-space corners: only {parts.numel()} sampled values there; "
            "give the noise level explicitly"
        )
    return float(parts.median()) / 0.6744897501960817


@dataclass(frozen=True)
class PriorView:
    """How a prior sees one multi-coil acquisition (:func:`prior_view`).

    Attributes
    ----------
    operator : LinearOperator
        From the prior's images ``(N, C, H, W)`` to k-space ``(N, coils, H, W)``:
        ``CartesianMRI @ RealAsComplex`` (``C = 1``, magnitude prior, fixed
        calibration phase) or ``CartesianMRI @ ComplexAsChannels`` (``C = 2``).
    scale : float
        The k-space was multiplied by it (and so must its noise level) to put
        the image in the prior's window.
    channels : int
        The prior's image channels, 1 or 2.
    """

    operator: LinearOperator
    scale: float
    channels: int

    def to_image(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` images of the prior → float64/complex128 ``(N, H, W)`` in the k-space's own units.

        Real for a magnitude prior (the phase is the fixed calibration phase),
        complex for a two-channel prior; ``.abs()`` is the magnitude image.
        """
        images = images.detach().to(torch.float64)
        values = images[:, 0] if self.channels == 1 else channels_to_complex(images)[:, 0]
        return values / self.scale


def prior_view(kspace: torch.Tensor, operator: LinearOperator, prior: Any, mask: torch.Tensor) -> PriorView:
    """The operator and intensity scale that let ``prior`` reconstruct ``kspace``.

    The scale puts the 99.9th percentile of a 30-iteration CG-SENSE magnitude
    at the top of the prior's window (:func:`window_scale`).  A one-channel
    prior sees a real image with the phase of the calibration lines
    (:func:`calibration_phase`); a two-channel prior real and imaginary parts.

    Parameters
    ----------
    kspace : torch.Tensor
        Complex ``(1, coils, H, W)``, unsampled entries zero.
    operator : LinearOperator
        The complex acquisition, e.g. ``CartesianMRI(mask, maps)``, with
        ``in_shape == (1, H, W)``.
    prior : object
        With ``image_shape`` ``(C, H, W)``, ``C`` 1 or 2, and a ``normalization``.
    mask : torch.Tensor
        The sampling mask (for the calibration lines).

    Returns
    -------
    PriorView
        Reconstruct ``kspace * view.scale`` with ``view.operator`` and noise
        level ``noise_std * view.scale``; map results back with
        :meth:`PriorView.to_image`.
    """
    channels = int(prior.image_shape[0])
    if channels not in (1, 2):
        raise ValueError(f"an MRI prior has 1 (magnitude) or 2 (real, imaginary) channels, got {channels}")
    maps = getattr(operator, "coil_maps", None)
    scale = window_scale(cg_sense(kspace, operator, iterations=30), prior_window(prior)[1])
    if channels == 1:
        embedding = RealAsComplex(operator.in_shape, calibration_phase(kspace, mask, maps))
    else:
        embedding = ComplexAsChannels(operator.in_shape)
    return PriorView(operator @ embedding, scale, channels)
