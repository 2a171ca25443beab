"""Coil sensitivity maps from the fully sampled k-space centre.

:func:`simulated_coil_maps` draws smooth sensitivities of a coil array for
simulations.  Two estimators: :func:`espirit_maps` (ESPIRiT, the standard; Uecker et al.
2014) and :func:`estimate_coil_maps`, the low-resolution method (McKenzie et al., "Self-calibrating parallel
imaging with automatic coil sensitivity extraction", Magn. Reson. Med.
47:529-538, 2002): keep only the calibration region of each coil's k-space,
transform to low-resolution coil images ``I_c`` and divide by their
root-sum-of-squares, ``S_c = I_c / sqrt(Σ_c |I_c|²)``.  The same
normalisation starts fastMRI's End-to-End VarNet sensitivity model (Sriram
et al., MICCAI 2020).  The maps satisfy ``Σ_c |S_c|² = 1`` wherever the
signal is above ``threshold``, so that SENSE with them is an isometry on
fully sampled data there.
"""

from __future__ import annotations

import math

import torch

from invsolve._checks import check_int, check_nonnegative, check_tensor

from .cartesian import rss
from .fft import ifft_centered
from .masks import center_runs, _fit_mask, check_center_lines

__all__ = ["espirit_maps", "estimate_coil_maps", "simulated_coil_maps"]


def simulated_coil_maps(
    shape: tuple[int, int], coils: int, dtype: torch.dtype = torch.complex128, device: torch.device | str | None = None
) -> torch.Tensor:
    """Smooth complex sensitivities of ``coils`` receive coils on a ring around the image.

    Coil ``c`` sits at angle ``2πc / coils`` on a circle of radius 1.3 (the
    image spans ``[-1, 1]²``); its magnitude is a Gaussian bump
    ``exp(−d² / 1.2)`` of the distance ``d`` to it, its phase the coil's angle
    plus the linear ramp ``0.5x − 0.3y``.  The maps are scaled so that the
    largest root-sum-of-squares is 1, as for fully sampled data with
    unit-norm (ESPIRiT-like) maps.  A simple stand-in for a phased-array head
    coil: enough to test SENSE, coil-map estimation and reconstructions.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)`` in pixels.
    coils : int
        Number of coils, ≥ 1.

    Returns
    -------
    torch.Tensor
        Complex ``(coils, H, W)``.
    """
    check_int(coils, "coils", minimum=1)
    if len(shape) != 2 or not all(isinstance(n, int) and n >= 1 for n in shape):
        raise ValueError(f"shape must be (H, W) with positive ints, got {shape!r}")
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    axes = [torch.linspace(-1, 1, n, dtype=real, device=device) for n in shape]
    yy, xx = torch.meshgrid(*axes, indexing="ij")
    angles = 2 * math.pi * torch.arange(coils, dtype=real, device=device)[:, None, None] / coils
    bump = torch.exp(-((xx - 1.3 * torch.cos(angles)) ** 2 + (yy - 1.3 * torch.sin(angles)) ** 2) / 1.2)
    maps = bump * torch.exp(1j * (angles + 0.5 * xx - 0.3 * yy))
    return (maps / maps.abs().pow(2).sum(0, keepdim=True).sqrt().amax()).to(dtype)


def estimate_coil_maps(kspace: torch.Tensor, mask: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Coil maps ``(coils, *spatial)`` from the calibration region of one acquisition.

    Parameters
    ----------
    kspace : torch.Tensor
        Complex k-space of one acquisition, ``(coils, H, W)`` or
        ``(coils, D, H, W)``, centred layout (zero frequency at ``n // 2``).
    mask : torch.Tensor
        The sampling mask, broadcastable to the spatial shape.  The
        calibration region is, per mask axis, the run of sampled k-space
        through the centre (:func:`~.masks.check_center_lines`); axes the mask
        broadcasts over are fully sampled and used whole.
    threshold : float
        Maps are set to zero where the low-resolution root-sum-of-squares is
        at most ``threshold`` times its maximum (background), ``>= 0``.

    Returns
    -------
    torch.Tensor
        Complex maps of ``kspace``'s shape, ready for
        :class:`~.cartesian.CartesianMRI`.

    Raises
    ------
    ValueError
        If the mask has no fully sampled centre (the message says so), or
        the shapes do not fit.
    """
    check_tensor(kspace, "kspace")
    if kspace.dim() not in (3, 4):
        raise ValueError(
            f"kspace must be shaped (coils, H, W) or (coils, D, H, W) (one acquisition), got {tuple(kspace.shape)}"
        )
    spatial = tuple(kspace.shape[1:])
    mask = _fit_mask(mask, spatial)
    threshold = check_nonnegative(threshold, "threshold")
    calibration = torch.ones(spatial, dtype=torch.bool, device=kspace.device)
    offset = len(spatial) - mask.dim()
    for axis, (start, stop) in enumerate(center_runs(mask)):
        if mask.shape[axis] == 1:
            continue
        keep = torch.zeros(spatial[offset + axis], dtype=torch.bool, device=kspace.device)
        keep[start:stop] = True
        calibration &= keep.reshape((-1,) + (1,) * (len(spatial) - offset - axis - 1))
    low = ifft_centered(kspace * (calibration & mask.to(kspace.device)), len(spatial))
    magnitude = rss(low, dim=0)
    floor = threshold * float(magnitude.max())
    signal = magnitude > floor if floor > 0 else magnitude > 0
    return torch.where(signal, low / torch.where(signal, magnitude, 1), 0)


def espirit_maps(
    kspace: torch.Tensor,
    mask: torch.Tensor,
    calib_size: int = 24,
    kernel_size: int = 6,
    threshold: float = 0.02,
    crop: float = 0.95,
) -> torch.Tensor:
    """ESPIRiT coil sensitivity maps (Uecker et al. 2014) from 2D multi-coil k-space.

    1. The calibration block (the fully sampled centre of k-space, at most
       ``calib_size`` wide per axis) is cut into all ``k × k`` patches across
       coils; the right singular vectors of their matrix above
       ``threshold · σ_max`` are the calibration kernels.
    2. Zero-padded to the image size and inverse-Fourier transformed, the
       kernels give at every pixel a ``coils × coils`` matrix whose top
       eigenvalue is ≈ 1 where the object is, with the coil sensitivities as
       its eigenvector (up to a phase).
    3. Maps are zero where that eigenvalue is below ``crop``; the phase of
       the first coil is removed.

    Eigenvectors have unit norm over coils, so the SENSE combination of fully
    sampled coil images, ``Σ_c conj(S_c) I_c``, has the magnitude of their
    root-sum-of-squares where the maps are non-zero.

    Parameters
    ----------
    kspace : torch.Tensor
        Complex k-space ``(coils, H, W)`` or a batch of slices
        ``(B, coils, H, W)``, centred layout (zero frequency at ``n // 2``).
    mask : torch.Tensor
        Sampling mask broadcastable to ``(H, W)``, e.g. ``(W,)`` columns; the
        calibration block lies inside its fully sampled centre
        (:func:`~.masks.check_center_lines`).
    calib_size : int
        Largest calibration width per axis (24 in the paper).
    kernel_size : int
        Side ``k`` of the calibration kernels (6 in the paper).
    threshold : float
        Singular values below ``threshold · σ_max`` are dropped (0.02 in the
        paper).
    crop : float
        Maps are zero where the top eigenvalue is below ``crop``.

    Returns
    -------
    torch.Tensor
        Maps shaped like ``kspace``, unit norm over coils where non-zero.
    """
    check_tensor(kspace, "kspace")
    if not kspace.is_complex():
        raise TypeError(f"kspace must be complex, got dtype {kspace.dtype}")
    single = kspace.dim() == 3
    if single:
        kspace = kspace[None]
    if kspace.dim() != 4:
        raise ValueError(f"kspace must be shaped (coils, H, W) or (B, coils, H, W), got {tuple(kspace.shape)}")
    batch, coils, height, width = kspace.shape
    kernel = check_int(kernel_size, "kernel_size", 1)
    calib = check_int(calib_size, "calib_size", kernel + 1)
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    try:
        plane = torch.broadcast_to(mask.to(torch.bool).cpu(), (height, width))
    except RuntimeError:
        raise ValueError(f"mask must broadcast to the k-space plane {(height, width)}, got shape {tuple(mask.shape)}") from None
    centre_rows, centre_cols = check_center_lines(plane, min_lines=kernel + 1)
    rows, cols = min(calib, centre_rows), min(calib, centre_cols)
    if not 0 < threshold < 1 or not 0 <= crop < 1:
        raise ValueError(f"threshold must be in (0, 1) and crop in [0, 1), got {threshold!r} and {crop!r}")

    top, left = height // 2 - rows // 2, width // 2 - cols // 2
    calibration = kspace[:, :, top : top + rows, left : left + cols]
    patches = calibration.unfold(2, kernel, 1).unfold(3, kernel, 1)  # (B, coils, pr, pc, k, k)
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(batch, -1, coils * kernel * kernel)
    _, singular, right = torch.linalg.svd(patches, full_matrices=False)
    # Singular values are sorted: the kept kernels are a prefix, at most `count` long.
    keep = singular >= threshold * singular[:, :1]  # (B, r)
    count = int(keep.sum(dim=1).max())
    kernels = (right[:, :count] * keep[:, :count, None]).reshape(batch, count, coils, kernel, kernel)

    padded = kspace.new_zeros(batch, kernels.shape[1], coils, height, width)
    r0, c0 = height // 2 - kernel // 2, width // 2 - kernel // 2
    padded[..., r0 : r0 + kernel, c0 : c0 + kernel] = kernels
    # Scaled so that the signal eigenvalue is 1 (unitary transform of a k×k kernel).
    images = ifft_centered(padded) * (math.sqrt(height * width) / kernel)
    vectors = images.permute(0, 3, 4, 2, 1)  # (B, H, W, coils, kernels)
    gram = vectors @ vectors.conj().transpose(-1, -2)  # (B, H, W, coils, coils)
    maps, eigenvalue = _top_eigenvectors(gram)
    maps = maps * torch.exp(-1j * torch.angle(maps[..., :1]))
    maps = maps * (eigenvalue > crop)
    maps = maps.permute(0, 3, 1, 2).contiguous()
    return maps[0] if single else maps


def _top_eigenvectors(gram: torch.Tensor, iterations: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """Top eigenpair of many small Hermitian PSD matrices by power iteration.

    ``gram`` is ``(..., n, n)``; returns unit eigenvectors ``(..., n)`` and
    eigenvalues ``(..., 1)``.  ESPIRiT's matrices have one eigenvalue near 1
    and the rest well below, so the iteration converges in a few dozen steps;
    it is many times faster than a batched ``eigh`` over every pixel.
    """
    vector = gram.sum(dim=-1)  # start: Gram · ones, inside the dominant direction's span
    vector = vector / torch.linalg.vector_norm(vector, dim=-1, keepdim=True).clamp_min(1e-30)
    for _ in range(iterations):
        vector = (gram @ vector[..., None])[..., 0]
        vector = vector / torch.linalg.vector_norm(vector, dim=-1, keepdim=True).clamp_min(1e-30)
    eigenvalue = (vector.conj()[..., None, :] @ gram @ vector[..., None])[..., 0].real
    return vector, eigenvalue
