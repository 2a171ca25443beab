"""Image quality metrics: fidelity per batch item, fastMRI's per-volume definitions, and ultrasound contrast.

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

Ultrasound contrast and speckle, on envelope (or B-mode) images ``(B, ..., H,
W)`` with boolean region masks ``(H, W)``, per batch item:
``gcnr`` (Rodriguez-Molares et al., "The Generalized Contrast-to-Noise
Ratio: A Formal Definition for Lesion Detectability", IEEE TUFFC 67(4),
2020: one minus the overlap of the two regions' histograms), ``contrast_ratio``
(``20 log10(μ_in/μ_out)`` dB), ``cnr`` (``|μ_in − μ_out| / √(σ_in² + σ_out²)``),
``ks_statistic`` (``scipy.stats.ks_2samp`` of a region's values against
reference values, e.g. the same region of the clean frame) and
``speckle_fwhm`` (the full widths at half maximum of the envelope's
autocovariance along the two axes: the speckle's size, Wagner et al.,
"Statistics of speckle in ultrasound B-scans", IEEE TSU 30(3), 1983).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from invsolve._checks import check_finite, check_int, check_positive, check_tensor

__all__ = [
    "psnr",
    "nmse",
    "rmse",
    "ssim",
    "fastmri_nmse",
    "fastmri_psnr",
    "fastmri_ssim",
    "gcnr",
    "contrast_ratio",
    "cnr",
    "ks_statistic",
    "speckle_fwhm",
]


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


# -- ultrasound contrast and speckle --------------------------------------------------------


def _region_values(image: object, masks: dict[str, object]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``image`` as ``(B, N_pixels)`` float64 and each mask as a flat boolean index of its last two axes."""
    image = check_tensor(image, "image", allow_complex=False)
    if image.dim() < 3:
        raise ValueError(f"image must be batched (B, ..., H, W), got shape {tuple(image.shape)}")
    check_finite(image, "image")
    plane = tuple(image.shape[-2:])
    flat = image.reshape(image.shape[0], -1, *plane).to(torch.float64)
    indices = []
    for name, mask in masks.items():
        if not isinstance(mask, torch.Tensor):
            raise TypeError(f"{name} must be a boolean torch.Tensor mask, got {type(mask).__name__}")
        if mask.dtype != torch.bool:
            raise TypeError(f"{name} must be a boolean mask, got {mask.dtype}")
        if tuple(mask.shape) != plane:
            raise ValueError(f"{name} must be shaped like the image's last two axes {plane}, got {tuple(mask.shape)}")
        if int(mask.sum()) < 2:
            raise ValueError(f"{name} must select at least 2 pixels, got {int(mask.sum())}")
        indices.append(mask.to(image.device))
    return flat, indices


def _select(flat: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The masked pixels of every channel of every item: ``(B, n)``."""
    return flat[:, :, mask].reshape(flat.shape[0], -1)


def gcnr(image: torch.Tensor, inside: torch.Tensor, outside: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Generalised contrast-to-noise ratio ``1 − Σ_k min(p_in(k), p_out(k))``, per batch item, in ``[0, 1]``.

    The two regions' values are binned on ``bins`` common bins spanning both
    regions' range (per item); 1 means the histograms do not overlap (a
    perfectly detectable lesion), 0 that they are identical.  Invariant to any
    increasing map of the values, so envelope or B-mode give the same number
    up to binning.

    Parameters
    ----------
    image : torch.Tensor
        ``(B, ..., H, W)`` real.
    inside, outside : torch.Tensor
        Boolean ``(H, W)`` masks of the two regions (e.g. a cyst and the background around it).
    bins : int
        Number of histogram bins, ``>= 2``.

    Returns
    -------
    torch.Tensor
        ``(B,)`` float64.
    """
    flat, (first, second) = _region_values(image, {"inside": inside, "outside": outside})
    bins = check_int(bins, "bins", minimum=2)
    a, b = _select(flat, first), _select(flat, second)
    low = torch.minimum(a.amin(1), b.amin(1))[:, None]
    span = (torch.maximum(a.amax(1), b.amax(1))[:, None] - low).clamp_min(torch.finfo(torch.float64).tiny)

    def histogram(values: torch.Tensor) -> torch.Tensor:
        index = ((values - low) / span * bins).floor().clamp(0, bins - 1).to(torch.int64)
        counts = torch.zeros(values.shape[0], bins, dtype=torch.float64, device=values.device)
        counts.scatter_add_(1, index, torch.ones_like(values))
        return counts / values.shape[1]

    return 1 - torch.minimum(histogram(a), histogram(b)).sum(1)


def contrast_ratio(image: torch.Tensor, inside: torch.Tensor, outside: torch.Tensor) -> torch.Tensor:
    """``20 log10(μ_in / μ_out)`` in dB per batch item, for envelope (linear amplitude) images ``(B, ..., H, W)``.

    Raises
    ------
    ValueError
        If a region's mean is not positive (a log-compressed B-mode image in
        dB is negative: use the envelope).
    """
    flat, (first, second) = _region_values(image, {"inside": inside, "outside": outside})
    mean_in, mean_out = _select(flat, first).mean(1), _select(flat, second).mean(1)
    if not bool(((mean_in > 0) & (mean_out > 0)).all()):
        raise ValueError("contrast_ratio needs positive region means: give the envelope (linear amplitude), not dB")
    return 20 * torch.log10(mean_in / mean_out)


def cnr(image: torch.Tensor, inside: torch.Tensor, outside: torch.Tensor) -> torch.Tensor:
    """Contrast-to-noise ratio ``|μ_in − μ_out| / √(σ_in² + σ_out²)`` per batch item, ``(B,)``.

    Raises
    ------
    ValueError
        If both regions are constant (the ratio is undefined).
    """
    flat, (first, second) = _region_values(image, {"inside": inside, "outside": outside})
    a, b = _select(flat, first), _select(flat, second)
    spread = (a.var(1) + b.var(1)).sqrt()
    if bool((spread == 0).any()):
        raise ValueError("cnr is undefined where both regions are constant (no speckle, no noise)")
    return (a.mean(1) - b.mean(1)).abs() / spread


def ks_statistic(image: torch.Tensor, region: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-sample Kolmogorov–Smirnov statistic of a region's values against reference values, per batch item.

    ``scipy.stats.ks_2samp`` (two-sided, exact or asymptotic as SciPy
    chooses): the largest distance between the two empirical distribution
    functions, 0 for the same distribution.  Use it on the speckle of a
    homogeneous region against the same region of the clean frame (how well
    dehazing restores the speckle's statistics).

    Parameters
    ----------
    image : torch.Tensor
        ``(B, ..., H, W)`` real.
    region : torch.Tensor
        Boolean ``(H, W)`` mask.
    reference : torch.Tensor
        Reference values: ``(B, ..., H, W)`` like ``image`` (its values in
        ``region`` are taken, item by item), or a 1-D sample shared by every item.

    Returns
    -------
    statistic, pvalue : torch.Tensor
        ``(B,)`` float64 each.
    """
    from scipy.stats import ks_2samp

    flat, (mask,) = _region_values(image, {"region": region})
    values = _select(flat, mask).cpu().numpy()
    reference = check_tensor(reference, "reference", allow_complex=False)
    check_finite(reference, "reference")
    if reference.dim() == 1:
        if reference.numel() < 2:
            raise ValueError(f"reference must hold at least 2 values, got {reference.numel()}")
        samples = [reference.detach().to(torch.float64).cpu().numpy()] * len(values)
    elif reference.shape == image.shape:
        reference_flat, (mask,) = _region_values(reference, {"region": region})
        samples = list(_select(reference_flat, mask).cpu().numpy())
    else:
        raise ValueError(
            f"reference must be shaped like image {tuple(image.shape)} or be a 1-D sample, got {tuple(reference.shape)}"
        )
    results = [ks_2samp(sample, other) for sample, other in zip(values, samples)]
    statistic = torch.tensor([float(result.statistic) for result in results], dtype=torch.float64)
    pvalue = torch.tensor([float(result.pvalue) for result in results], dtype=torch.float64)
    return statistic, pvalue


def speckle_fwhm(envelope: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """Speckle size: FWHM of the autocovariance of the envelope along the two axes, in pixels, per batch item.

    The envelope inside ``region`` (default: the whole frame) is made zero
    mean (outside it zero), its autocovariance computed by FFT (zero-padded, so
    not circular) and normalised to 1 at zero lag; the widths at which its
    profiles through zero lag along the axial (``H``) and lateral (``W``) axes
    fall to 0.5 are found by linear interpolation.  Multiply by the pixel
    spacing for lengths.  For channels, the mean autocovariance is used.

    Parameters
    ----------
    envelope : torch.Tensor
        ``(B, ..., H, W)`` real (envelope, not log-compressed).
    region : torch.Tensor, optional
        Boolean ``(H, W)`` mask of a homogeneous speckle region.

    Returns
    -------
    torch.Tensor
        ``(B, 2)`` float64: axial and lateral FWHM in pixels.

    Raises
    ------
    ValueError
        If the region is constant.
    """
    plane = tuple(check_tensor(envelope, "envelope", allow_complex=False).shape[-2:])
    mask = torch.ones(plane, dtype=torch.bool) if region is None else region
    flat, (mask,) = _region_values(envelope, {"region": mask})
    weights = mask.to(torch.float64)
    count = weights.sum()
    mean = (flat * weights).sum(dim=(-2, -1), keepdim=True) / count
    centred = (flat - mean) * weights
    height, width = plane
    spectrum = torch.fft.rfft2(centred, s=(2 * height, 2 * width))
    covariance = torch.fft.irfft2(spectrum.abs().square(), s=(2 * height, 2 * width)).mean(1)  # (B, 2H, 2W)
    zero = covariance[:, :1, :1]
    if bool((zero <= 0).any()):
        raise ValueError("speckle_fwhm needs an envelope that varies inside the region, got a constant one")
    covariance = covariance / zero
    return torch.stack([_half_width(covariance[:, :height, 0]), _half_width(covariance[:, 0, :width])], dim=1) * 2


def _half_width(profile: torch.Tensor) -> torch.Tensor:
    """Lag (interpolated) at which each row of ``profile`` (starting at 1 at lag 0) first falls to 0.5.

    It always does within the row: at the largest lag ``n − 1`` only the two
    end values pair up, and ``x₀ x_{n−1} <= (x₀² + x_{n−1}²)/2 <= ½ Σ x²``.
    """
    first = (profile <= 0.5).to(torch.int64).argmax(dim=1)
    rows = torch.arange(profile.shape[0], device=profile.device)
    before, after = profile[rows, first - 1], profile[rows, first]
    return (first - 1).to(torch.float64) + (before - 0.5) / (before - after)
