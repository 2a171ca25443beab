"""Image quality metrics: per batch item, and fastMRI's per-volume definitions.

Two families, which differ in what they average over and in the default
data range:

=========================  ==========================  ===================================
function                   unit                        default data range
=========================  ==========================  ===================================
``rmse``, ``nmse``,        each batch item             ``max − min`` of each reference
``psnr``, ``ssim``         ``(B, ...) -> (B,)``        item (``psnr``, ``ssim``)
``fastmri_nmse``,          one volume of slices        ``gt.max()`` over the whole volume
``fastmri_psnr``,          ``(..., H, W) -> ()``       (fastMRI's ``maxval``)
``fastmri_ssim``
=========================  ==========================  ===================================

The ``fastmri_*`` functions reproduce ``fastmri/evaluate.py`` of the fastMRI
challenge (Zbontar et al., "fastMRI: An Open Dataset and Benchmarks for
Accelerated MRI", arXiv:1811.08839, 2018), including its argument order
``(gt, pred)``; the others take ``(image, reference)`` like the rest of the
package.  ``nmse`` of a batch item equals ``fastmri_nmse`` of that item; PSNR
and SSIM agree when the item is the volume and its minimum is 0 (magnitude
images), or when ``data_range`` is given.

SSIM is the structural similarity of Wang et al. ("Image quality
assessment: from error visibility to structural similarity", IEEE TIP 13(4),
2004) computed as ``skimage.metrics.structural_similarity`` does by default:
a uniform ``7 × 7`` window on each 2-D slice, ``K1 = 0.01``, ``K2 = 0.03``,
sample covariances (scaled by ``NP / (NP − 1)``, ``NP = 49``), and the mean of
the SSIM map without the ``(7 − 1) / 2``-pixel border.

Every function refuses (``TypeError``/``ValueError`` naming the argument) inputs
that are not floating tensors, empty, of different shapes or devices, or hold
NaN/Inf, and a score that is undefined for the data: a reference of zero norm
(NMSE), a constant reference without ``data_range`` (PSNR, SSIM) or a volume
whose maximum is not positive without ``maxval`` (fastMRI's PSNR and SSIM).
PSNR is ``+inf`` for an image equal to its reference (zero error), as in
``skimage.metrics.peak_signal_noise_ratio``; any other score that is not finite
(magnitudes that over- or underflow float64, in which the sums run) is refused.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from invsolve._checks import check_finite, check_int, check_positive, check_tensor

__all__ = ["psnr", "nmse", "rmse", "ssim", "fastmri_nmse", "fastmri_psnr", "fastmri_ssim"]


def _check_pair(first: object, second: object, names: tuple[str, str], allow_complex: bool) -> None:
    """Both floating tensors of one shape and device, non-empty and finite."""
    for value, name in zip((first, second), names):
        check_tensor(value, name, allow_complex=allow_complex)
    if first.shape != second.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have one shape, got {tuple(first.shape)} and {tuple(second.shape)}")
    if first.device != second.device:
        raise ValueError(f"{names[0]} and {names[1]} must be on one device, got {first.device} and {second.device}")
    if first.numel() == 0:
        raise ValueError(f"{names[0]} and {names[1]} must not be empty, got shape {tuple(first.shape)}")
    for value, name in zip((first, second), names):
        check_finite(value, name)


def _flat_pair(image: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, N)`` float64 (complex128) views of a checked pair of batched images."""
    _check_pair(image, reference, ("image", "reference"), allow_complex=True)
    if image.dim() < 2:
        raise ValueError(f"image must be batched (B, ...), got shape {tuple(image.shape)}")
    dtype = torch.complex128 if image.is_complex() or reference.is_complex() else torch.float64
    return image.reshape(image.shape[0], -1).to(dtype), reference.reshape(reference.shape[0], -1).to(dtype)


def _result_dtype(image: torch.Tensor) -> torch.dtype:
    """The real dtype of ``image``: what the per-item metrics return."""
    return image.real.dtype if image.is_complex() else image.dtype


def _data_range(reference: torch.Tensor, data_range: float | None, name: str) -> torch.Tensor:
    """Per-item data range ``(B,)``: ``data_range``, or max − min of each flattened reference item (never 0)."""
    if data_range is not None:
        value = check_positive(data_range, "data_range")
        return torch.full((reference.shape[0],), value, dtype=torch.float64, device=reference.device)
    real = reference.real
    peak = real.amax(dim=1) - real.amin(dim=1)
    constant = (peak == 0).nonzero()
    if constant.numel():
        raise ValueError(
            f"data_range must be given for a constant {name}: item {int(constant[0])} has max − min = 0, which "
            "leaves the score undefined; pass data_range (the range of values the images can take)"
        )
    return peak


def _finite_score(score: torch.Tensor, name: str, exact: torch.Tensor | None = None) -> torch.Tensor:
    """``score``, or ``ValueError`` where it is not finite (``+inf`` allowed where ``exact``, a zero error)."""
    valid = torch.isfinite(score)
    if exact is not None:
        valid = valid | (exact & (score == torch.inf))
    if not bool(valid.all()):
        raise ValueError(
            f"{name} is not finite for these inputs: their magnitudes (or data_range/maxval) over- or underflow "
            "float64; rescale the images"
        )
    return score


def rmse(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Root-mean-square error per batch item, ``(B,)``, in the images' units."""
    x, ref = _flat_pair(image, reference)
    return _finite_score(((x - ref).abs() ** 2).mean(dim=1).sqrt(), "rmse").to(_result_dtype(image))


def nmse(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Normalised mean squared error ``‖x − ref‖² / ‖ref‖²`` per batch item, ``(B,)``.

    Over everything in the item (all channels and slices); for an item that
    is a whole volume this is fastMRI's NMSE (:func:`fastmri_nmse`).  A
    reference item of zero norm is refused (``ValueError``).
    """
    x, ref = _flat_pair(image, reference)
    energy = (ref.abs() ** 2).sum(dim=1)
    zero = (energy == 0).nonzero()
    if zero.numel():
        raise ValueError(f"reference must have a non-zero norm in every item for NMSE, item {int(zero[0])} is all zeros")
    return _finite_score(((x - ref).abs() ** 2).sum(dim=1) / energy, "nmse").to(_result_dtype(image))


def psnr(image: torch.Tensor, reference: torch.Tensor, data_range: float | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per batch item, ``(B,)``.

    ``PSNR = 20·log10(data_range) − 10·log10(MSE)``; ``data_range`` defaults
    to ``max(ref) − min(ref)`` of each reference image (a constant reference
    needs it given).  ``+inf`` for an item equal to its reference.
    fastMRI's convention (``data_range = gt.max()`` over a volume) is
    :func:`fastmri_psnr`.
    """
    x, ref = _flat_pair(image, reference)
    mse = ((x - ref).abs() ** 2).mean(dim=1)
    peak = _data_range(ref, data_range, "reference")
    return _finite_score(20 * torch.log10(peak) - 10 * torch.log10(mse), "psnr", mse == 0).to(_result_dtype(image))


def ssim(
    image: torch.Tensor,
    reference: torch.Tensor,
    data_range: float | None = None,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Structural similarity per batch item, ``(B,)``, averaged over its 2-D slices.

    Parameters
    ----------
    image, reference : torch.Tensor
        Real images ``(B, C, H, W)`` or volumes ``(B, C, D, H, W)``; every
        ``(H, W)`` slice of an item is compared, and the item's SSIM is the
        mean over its slices.  ``H, W >= win_size``.
    data_range : float, optional
        Dynamic range ``L`` in the constants ``(K L)²``; default
        ``max(ref) − min(ref)`` of each reference item (a constant reference
        needs it given).
    win_size : int
        Side of the uniform window, odd, ``>= 3``.
    k1, k2 : float
        SSIM constants, ``> 0``.

    Returns
    -------
    torch.Tensor
        ``(B,)`` in the dtype of ``image``; 1 for identical images.
    """
    x, ref = _ssim_inputs(image, reference, "image", "reference", min_dims=3, win_size=win_size)
    batch = x.shape[0]
    peak = _data_range(ref.reshape(batch, -1), data_range, "reference")
    slices = x[0, ..., 0, 0].numel()
    scores = _mean_ssim(
        x.reshape(-1, *x.shape[-2:]), ref.reshape(-1, *x.shape[-2:]), peak.repeat_interleave(slices), win_size, k1, k2
    )
    return _finite_score(scores.reshape(batch, slices).mean(dim=1), "ssim").to(image.dtype)


def fastmri_nmse(gt: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """fastMRI's NMSE of one volume, ``‖gt − pred‖² / ‖gt‖²``, a 0-d float64 tensor.

    Parameters
    ----------
    gt, pred : torch.Tensor
        Ground truth and reconstruction of one volume, same shape (any;
        fastMRI's is ``(slices, H, W)``); real or complex; ``gt`` not all zero.
    """
    gt, pred = _volume_pair(gt, pred, allow_complex=True)
    energy = (gt.abs() ** 2).sum()
    if energy == 0:
        raise ValueError("gt must have a non-zero norm for NMSE, got all zeros")
    return _finite_score(((gt - pred).abs() ** 2).sum() / energy, "fastmri_nmse")


def fastmri_psnr(gt: torch.Tensor, pred: torch.Tensor, maxval: float | None = None) -> torch.Tensor:
    """fastMRI's PSNR of one volume in dB, a 0-d float64 tensor.

    ``10·log10(maxval² / MSE)`` with the MSE over the whole volume and
    ``maxval = gt.max()`` unless given (``skimage.metrics.peak_signal_noise_ratio``
    with ``data_range=maxval``); ``+inf`` for ``pred`` equal to ``gt``.

    Parameters
    ----------
    gt, pred : torch.Tensor
        Real ground truth and reconstruction of one volume, same shape.
    maxval : float, optional
        Data range; default the maximum of ``gt``, which must then be > 0.
    """
    gt, pred = _volume_pair(gt, pred)
    peak = _volume_peak(gt, maxval)
    mse = ((gt - pred) ** 2).mean()
    return _finite_score(10 * torch.log10(peak**2 / mse), "fastmri_psnr", mse == 0)


def fastmri_ssim(
    gt: torch.Tensor, pred: torch.Tensor, maxval: float | None = None, win_size: int = 7
) -> torch.Tensor:
    """fastMRI's SSIM of one volume: the mean over slices of the 2-D SSIM, a 0-d float64 tensor.

    Each slice uses ``skimage.metrics.structural_similarity`` defaults (see
    the module notes) with ``data_range = maxval``, by default ``gt.max()``
    over the whole volume, not per slice.

    Parameters
    ----------
    gt, pred : torch.Tensor
        Real ground truth and reconstruction, ``(slices, H, W)``; any leading
        axes are slices (``(H, W)`` is one slice).  ``H, W >= win_size``.
    maxval : float, optional
        Data range; default the maximum of ``gt``, which must then be > 0.
    win_size : int
        Side of the uniform window, odd, ``>= 3``.
    """
    gt, pred = _ssim_inputs(gt, pred, "gt", "pred", min_dims=2, win_size=win_size)
    peak = _volume_peak(gt, maxval)
    gt, pred = gt.reshape(-1, *gt.shape[-2:]), pred.reshape(-1, *pred.shape[-2:])
    return _finite_score(_mean_ssim(pred, gt, peak.expand(gt.shape[0]), win_size, 0.01, 0.03).mean(), "fastmri_ssim")


def _volume_peak(gt: torch.Tensor, maxval: float | None) -> torch.Tensor:
    """fastMRI's ``maxval``: given (> 0), else ``gt.max()``, which must be > 0."""
    if maxval is not None:
        return torch.tensor(check_positive(maxval, "maxval"), dtype=torch.float64, device=gt.device)
    peak = gt.max()
    if not peak > 0:
        raise ValueError(
            f"maxval must be given when gt.max() is not > 0 (fastMRI's default data range is gt.max()), "
            f"got gt.max() = {float(peak):g}"
        )
    return peak


def _volume_pair(gt: torch.Tensor, pred: torch.Tensor, allow_complex: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    _check_pair(gt, pred, ("gt", "pred"), allow_complex)
    dtype = torch.complex128 if gt.is_complex() or pred.is_complex() else torch.float64
    return gt.to(dtype), pred.to(dtype)


def _ssim_inputs(
    first: torch.Tensor, second: torch.Tensor, name_first: str, name_second: str, min_dims: int, win_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The checked pair in float64, with ``win_size`` odd, >= 3 and no larger than a slice."""
    for value, name in ((first, name_first), (second, name_second)):
        check_tensor(value, name, allow_complex=False)
    if first.shape != second.shape:
        raise ValueError(
            f"{name_first} and {name_second} must have one shape, got {tuple(first.shape)} and {tuple(second.shape)}"
        )
    if first.dim() < min_dims:
        layout = "(B, C, H, W) or (B, C, D, H, W)" if min_dims == 3 else "(slices, H, W) or (H, W)"
        raise ValueError(f"{name_first} must be shaped {layout}, got {tuple(first.shape)}")
    win_size = check_int(win_size, "win_size", 3)
    if win_size % 2 == 0:
        raise ValueError(f"win_size must be odd, got {win_size}")
    height, width = first.shape[-2:]
    if height < win_size or width < win_size:
        raise ValueError(f"each slice must be at least win_size × win_size = {win_size} × {win_size}, got {height} × {width}")
    _check_pair(first, second, (name_first, name_second), allow_complex=False)
    return first.to(torch.float64), second.to(torch.float64)


def _mean_ssim(
    x: torch.Tensor, y: torch.Tensor, data_range: torch.Tensor, win_size: int, k1: float, k2: float
) -> torch.Tensor:
    """Mean SSIM of each pair of slices ``(N, H, W)``, ``(N,)``, with per-slice ``data_range`` ``(N,)`` > 0.

    ``win_size`` was checked by :func:`_ssim_inputs`.
    """
    height, width = x.shape[-2:]
    k1, k2 = check_positive(k1, "k1"), check_positive(k2, "k2")
    n = x.shape[0]
    kernel = torch.full((1, 1, win_size, win_size), 1.0 / win_size**2, dtype=torch.float64, device=x.device)
    # One valid convolution of the five moments: the border skimage crops is never computed.
    moments = torch.stack([x, y, x * x, y * y, x * y]).reshape(5 * n, 1, height, width)
    ux, uy, uxx, uyy, uxy = F.conv2d(moments, kernel).reshape(5, n, height - win_size + 1, width - win_size + 1)
    cov_norm = win_size**2 / (win_size**2 - 1)
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    peak = data_range.to(device=x.device, dtype=torch.float64).reshape(n, 1, 1)
    c1, c2 = (k1 * peak) ** 2, (k2 * peak) ** 2
    ssim_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return ssim_map.mean(dim=(-2, -1))
