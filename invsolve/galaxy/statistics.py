"""Astronomers' measurements of generated galaxies: morphology statistics and a memorisation check.

:func:`morphology_statistics`
    Morphology of each image with ``statmorph`` (Rodriguez-Gomez et al.,
    MNRAS 483, 4140, 2019) on a ``photutils`` segmentation: Gini and M20
    (Lotz, Primack & Madau, AJ 128, 163, 2004), concentration, asymmetry and
    smoothness (the CAS system, Conselice, ApJS 147, 1, 2003) and the index of
    a fitted Sérsic profile.
:func:`compare_statistics`
    Real against generated, one statistic at a time: medians, two-sample
    Kolmogorov–Smirnov and Anderson–Darling tests.  Run it per class (the rows
    of one morphology query) to compare classes.
:func:`nearest_training_distance`
    Each generated image's distance to its nearest training image, set against
    the training set's own nearest-neighbour distances (after Somepalli et al.,
    "Diffusion Art or Digital Forgery?", CVPR 2023).

The images must be sky-subtracted fluxes (background 0, as statmorph expects;
it flags a non-zero background with ``flag = 2``): outputs of a generator that
works in ``[-1, 1]`` or ``[0, 1]`` must be mapped back to flux first.  Pass the
PSF: statmorph's Sérsic fit convolves its model with it; without it a compact
profile's index comes out far too low (n = 4, r_eff = 5 px, PSF σ = 1 px: fitted
n ≈ 1.6–1.7 without the PSF, 3.3–3.8 with it).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from invsolve._checks import check_int, check_nonnegative, check_positive

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["MORPHOLOGY_COLUMNS", "morphology_statistics", "compare_statistics", "nearest_training_distance"]

#: the float columns of :func:`morphology_statistics`' table, in order
MORPHOLOGY_COLUMNS = ("gini", "m20", "concentration", "asymmetry", "smoothness", "sersic_n")

_INSTALL_HINT = 'pip install "invsolve[galaxy]"'
_STATMORPH_INVALID = -99.0  # statmorph's value for a quantity it could not measure
_UNMEASURED = (math.nan,) * len(MORPHOLOGY_COLUMNS) + (-1, -1)


def _as_array(value: object, name: str, min_ndim: int) -> np.ndarray | torch.Tensor:
    """Check a numpy array or torch tensor of real numbers: at least ``min_ndim`` dims, non-empty, finite."""
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
        finite = bool(torch.isfinite(value).all()) if value.is_floating_point() else True
    elif isinstance(value, np.ndarray):
        if value.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers, got dtype {value.dtype}")
        finite = bool(np.isfinite(value).all()) if value.dtype.kind == "f" else True
    else:
        raise TypeError(f"{name} must be a numpy.ndarray or torch.Tensor, got {type(value).__name__}")
    shape = tuple(value.shape)
    if len(shape) < min_ndim:
        raise ValueError(f"{name} must have at least {min_ndim} dimensions, got shape {shape}")
    if math.prod(shape) == 0:
        raise ValueError(f"{name} must not be empty, got shape {shape}")
    if not finite:
        raise ValueError(f"{name} must be finite, got NaN or infinite entries")
    return value


def _image_stack(images: object, name: str = "images") -> np.ndarray:
    """``(N, H, W)``, ``(N, 1, H, W)`` or ``(N, 3, H, W)`` -> float64 ``(N, H, W)`` (3 channels: their mean)."""
    value = _as_array(images, name, 3)
    array = value.detach().cpu().double().numpy() if isinstance(value, torch.Tensor) else value.astype(np.float64)
    if array.ndim == 4 and array.shape[1] in (1, 3):
        return array.mean(axis=1)
    if array.ndim != 3:
        raise ValueError(f"{name} must be shaped (N, H, W), (N, 1, H, W) or (N, 3, H, W), got shape {array.shape}")
    return array


def _background_rms(image: np.ndarray) -> float:
    """Sigma-clipped standard deviation of the border pixels (the whole image when the border is small)."""
    from astropy.stats import sigma_clipped_stats

    height, width = image.shape
    border = max(2, min(height, width) // 8)
    frame = np.ones(image.shape, dtype=bool)
    frame[border:height - border, border:width - border] = False
    pixels = image[frame] if frame.sum() >= 64 else image.ravel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, _, std = sigma_clipped_stats(pixels, sigma=3.0, maxiters=10)
    return float(std)


def _central_label(segmap: np.ndarray) -> int:
    """Label of the segment holding the labelled pixel nearest the image centre."""
    rows, cols = np.nonzero(segmap)
    centre_row, centre_col = (segmap.shape[0] - 1) / 2, (segmap.shape[1] - 1) / 2
    nearest = np.argmin((rows - centre_row) ** 2 + (cols - centre_col) ** 2)
    return int(segmap[rows[nearest], cols[nearest]])


def _measure(image, statmorph, detect_sources, gain, psf, snr_threshold, npixels) -> tuple:
    """One image's ``(gini, m20, C, A, S, n, flag, flag_sersic)``; NaN and -1 when nothing is measured."""
    from scipy.ndimage import gaussian_filter

    rms = _background_rms(image)
    if not (math.isfinite(rms) and rms > 0):
        return _UNMEASURED
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # photutils' NoDetectionsWarning, statmorph's flag warnings
        segments = detect_sources(gaussian_filter(image, 1.0), snr_threshold * rms, npixels)
        if segments is None or segments.nlabels == 0:
            return _UNMEASURED
        label = _central_label(segments.data)
        morph = statmorph.SourceMorphology(image, segments, label, gain=gain, psf=psf)
        values = [float(getattr(morph, column)) for column in MORPHOLOGY_COLUMNS]
    values = [math.nan if (v == _STATMORPH_INVALID or not math.isfinite(v)) else v for v in values]
    return (*values, int(morph.flag), int(morph.flag_sersic))


def morphology_statistics(
    images: np.ndarray | torch.Tensor,
    *,
    gain: float = 1.0,
    psf: np.ndarray | torch.Tensor | None = None,
    snr_threshold: float = 1.5,
    npixels: int = 5,
    progress: bool = False,
) -> Table:
    """Measure Gini, M20, concentration, asymmetry, smoothness and Sérsic index of each image with statmorph.

    Per image: the background rms is the sigma-clipped (3σ) standard deviation
    of the border pixels (a frame ``max(2, min(H, W) // 8)`` pixels wide; the
    whole image when that frame has fewer than 64 pixels); the image, smoothed
    by a Gaussian of σ = 1 px, is segmented with
    ``photutils.segmentation.detect_sources`` at ``snr_threshold × rms`` (the
    rms of the unsmoothed image, as in statmorph's tutorial) and ``npixels``
    connected pixels, without deblending; the segment holding the labelled pixel
    nearest the image centre is measured by ``statmorph.SourceMorphology`` (the
    object ``statmorph.source_morphology`` returns for that label), the other
    segments being masked as neighbours.  References: Rodriguez-Gomez et al.
    2019 (MNRAS 483, 4140; statmorph), Lotz et al. 2004 (AJ 128, 163; Gini,
    M20), Conselice 2003 (ApJS 147, 1; CAS).

    Parameters
    ----------
    images : numpy.ndarray or torch.Tensor, shape (N, H, W) or (N, 1, H, W)
        Sky-subtracted flux images of one band (any flux unit; background level
        0).  Three-channel images ``(N, 3, H, W)`` are measured on the mean of
        their channels, a single pseudo-band.
    gain : float, default 1.0
        Electrons per flux unit, > 0: statmorph's per-pixel noise is
        ``sqrt(|image| / gain + sky variance)``.
    psf : array of shape (h, w), optional
        The point-spread function in pixels (statmorph normalises it to unit
        sum), convolved with the Sérsic model of the fit.  Without it the Sérsic
        index of a compact profile is strongly underestimated.
    snr_threshold : float, default 1.5
        Detection threshold in units of the background rms, > 0.
    npixels : int, default 5
        Minimum number of connected pixels of a detected segment, >= 1.
    progress : bool, default False
        Show a tqdm progress bar.

    Returns
    -------
    astropy.table.Table
        N rows, in the order of ``images``.  Float64 columns ``gini``, ``m20``,
        ``concentration``, ``asymmetry``, ``smoothness``, ``sersic_n`` (all
        dimensionless; NaN when statmorph could not measure the quantity); int64 ``flag`` (statmorph's
        0 good, 1 suspect, 2 bad, 4 catastrophic; -1 not measured: no source
        above the threshold, no positive background rms, or statmorph raised)
        and ``flag_sersic`` (0 good fit, 1 suspect, 4 catastrophic, -1 not
        measured).  An error in one image leaves that row unmeasured and does
        not stop the others.  ``meta`` records the settings.

    Raises
    ------
    ImportError
        When statmorph or photutils is missing.
    TypeError, ValueError
        For images that are not a real array of the shapes above, are empty or
        hold NaN/Inf, and for a gain, snr_threshold or npixels out of range.
    """
    stack = _image_stack(images)
    gain = check_positive(gain, "gain")
    snr_threshold = check_positive(snr_threshold, "snr_threshold")
    npixels = check_int(npixels, "npixels", 1)
    if psf is not None:
        psf = _as_array(psf, "psf", 2)
        psf = psf.detach().cpu().double().numpy() if isinstance(psf, torch.Tensor) else psf.astype(np.float64)
        if psf.ndim != 2 or not psf.sum() > 0:
            raise ValueError(f"psf must be a 2-D array with a positive sum, got shape {psf.shape}, sum {psf.sum()!r}")
    try:
        import statmorph
        from photutils.segmentation import detect_sources
    except ImportError as error:
        raise ImportError(f"morphology_statistics needs statmorph and photutils: {_INSTALL_HINT} ({error})") from error
    from astropy.table import Table

    rows = []
    for image in tqdm(stack, desc="statmorph", disable=not progress):
        try:
            rows.append(_measure(image, statmorph, detect_sources, gain, psf, snr_threshold, npixels))
        except Exception:  # noqa: BLE001 - one bad stamp must not stop the catalogue
            rows.append(_UNMEASURED)
    columns = list(zip(*rows))
    table = Table(
        [np.asarray(c, dtype=np.float64) for c in columns[:-2]] + [np.asarray(c, dtype=np.int64) for c in columns[-2:]],
        names=(*MORPHOLOGY_COLUMNS, "flag", "flag_sersic"),
    )
    table.meta.update(gain=gain, snr_threshold=snr_threshold, npixels=npixels, psf=psf is not None)
    return table


def _column(table: object, column: str, name: str) -> np.ndarray:
    """``table[column]`` as a float64 vector, with a ``ValueError`` naming ``name`` when it is missing."""
    try:
        values = table[column]  # type: ignore[index]
    except (KeyError, ValueError, IndexError):
        available = list(getattr(table, "colnames", None) or getattr(table, "keys", list)())
        raise ValueError(f"{name} must have a column {column!r}, got columns {available}") from None
    except TypeError:
        raise TypeError(f"{name} must be a table indexable by column name, got {type(table).__name__}") from None
    return np.asarray(values, dtype=np.float64).ravel()


def _usable(table: object, column: str, name: str, good_flags_only: bool) -> np.ndarray:
    """Finite values of ``column``; with ``good_flags_only``, rows of flag 0 (and flag_sersic 0 for sersic_*)."""
    values = _column(table, column, name)
    keep = np.isfinite(values)
    if good_flags_only:
        keep &= _column(table, "flag", name) == 0
        if column.startswith("sersic"):
            keep &= _column(table, "flag_sersic", name) == 0
    return values[keep]


def compare_statistics(
    real: Any,
    generated: Any,
    *,
    columns: Sequence[str] = ("gini", "m20", "concentration", "asymmetry", "sersic_n"),
    good_flags_only: bool = True,
) -> dict[str, dict[str, float | int | str | None]]:
    """Compare the distributions of morphology statistics of real and generated images, one statistic at a time.

    Parameters
    ----------
    real, generated : astropy.table.Table or mapping of column name to values
        Tables such as :func:`morphology_statistics` returns (a dict of arrays
        or a pandas DataFrame also works), e.g. the rows of one class each.
    columns : sequence of str
        The statistics to compare.
    good_flags_only : bool, default True
        Use only rows with statmorph ``flag == 0`` (and, for ``sersic_*``
        columns, ``flag_sersic == 0``, statmorph's advice for the fit);
        non-finite values are always dropped.

    Returns
    -------
    dict
        ``{column: {...}}``, per column: ``n_real``, ``n_generated`` (rows
        used), ``median_real``, ``median_generated``, ``ks_statistic``,
        ``ks_pvalue`` (``scipy.stats.ks_2samp``, two-sided), ``ad_statistic``,
        ``ad_pvalue`` (``scipy.stats.anderson_ksamp``; p capped to [0.001,
        0.25], its warning silenced) and ``reason``: None, or why values are
        None (fewer than 2 usable rows in either set: every test value; all
        values identical: the Anderson–Darling ones).  Floats, ints, strings
        and None only: ``json.dumps`` takes it as is.

    Raises
    ------
    TypeError, ValueError
        For a table that is not indexable by column name or lacks a column
        (``flag``/``flag_sersic`` included when ``good_flags_only``).
    """
    from scipy.stats import anderson_ksamp, ks_2samp

    if isinstance(columns, str):
        columns = (columns,)
    if not isinstance(columns, Sequence) or not columns or not all(isinstance(c, str) for c in columns):
        raise TypeError(f"columns must be a non-empty sequence of column names, got {columns!r}")
    if not isinstance(good_flags_only, (bool, np.bool_)):
        raise TypeError(f"good_flags_only must be a bool, got {good_flags_only!r}")
    result: dict[str, dict[str, float | int | str | None]] = {}
    for column in columns:
        a = _usable(real, column, "real", bool(good_flags_only))
        b = _usable(generated, column, "generated", bool(good_flags_only))
        entry: dict[str, float | int | str | None] = {
            "n_real": int(a.size), "n_generated": int(b.size),
            "median_real": float(np.median(a)) if a.size else None,
            "median_generated": float(np.median(b)) if b.size else None,
            "ks_statistic": None, "ks_pvalue": None, "ad_statistic": None, "ad_pvalue": None, "reason": None,
        }
        if a.size < 2 or b.size < 2:
            entry["reason"] = f"fewer than 2 usable rows (real {a.size}, generated {b.size})"
        else:
            ks = ks_2samp(a, b)
            entry.update(ks_statistic=float(ks.statistic), ks_pvalue=float(ks.pvalue))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "p-value capped" and API-transition warnings
                    ad = anderson_ksamp([a, b])
                entry.update(ad_statistic=float(ad.statistic), ad_pvalue=float(ad.pvalue))
            except ValueError as error:  # e.g. every value identical
                entry["reason"] = f"anderson_ksamp: {error}"
        result[column] = entry
    return result


def _flat(value: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``(N, ...)`` -> ``(N, D)`` tensor, sharing memory where possible."""
    if isinstance(value, np.ndarray) and value.dtype.kind != "f":
        value = value.astype(np.float64)
    tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    return tensor.detach().reshape(tensor.shape[0], -1)


def _standardised(rows: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Each row minus its mean, divided by its norm, in float64 (a constant row becomes the zero vector)."""
    rows = rows.to(device=device, dtype=torch.float64)
    rows = rows - rows.mean(dim=1, keepdim=True)
    norm = torch.linalg.vector_norm(rows, dim=1, keepdim=True)
    return rows / torch.where(norm > 0, norm, torch.ones_like(norm))


def _nearest(queries: torch.Tensor, training: torch.Tensor, batch_size: int, exclude_self: bool):
    """Distance to, and index of, the nearest row of ``training`` for each row of ``queries``."""
    device = queries.device
    distances, indices = [], []
    for start in range(0, queries.shape[0], batch_size):
        query = _standardised(queries[start:start + batch_size], device)
        best = torch.full((query.shape[0],), math.inf, dtype=torch.float64, device=device)
        best_index = torch.zeros(query.shape[0], dtype=torch.int64, device=device)
        for offset in range(0, training.shape[0], batch_size):
            block = torch.cdist(query, _standardised(training[offset:offset + batch_size], device))
            if exclude_self:  # row start+i of queries is row start+i of training: mask it by index
                rows = torch.arange(query.shape[0], device=device)
                own = rows + start - offset
                inside = (own >= 0) & (own < block.shape[1])
                block[rows[inside], own[inside]] = math.inf
            value, index = block.min(dim=1)
            better = value < best
            best = torch.where(better, value, best)
            best_index = torch.where(better, index + offset, best_index)
        distances.append(best)
        indices.append(best_index)
    return torch.cat(distances).cpu().numpy(), torch.cat(indices).cpu().numpy()


def nearest_training_distance(
    generated: np.ndarray | torch.Tensor,
    training: np.ndarray | torch.Tensor,
    *,
    batch_size: int = 256,
    duplicate_threshold: float | None = None,
) -> dict[str, Any]:
    """Memorisation check: each generated image's distance to its nearest training image.

    Every image is flattened and standardised (minus its mean, over its norm),
    so distances are between unit vectors, ``sqrt(2 - 2 × correlation)`` in
    [0, 2], blind to flux scale and offset: a rescaled, shifted copy of a
    training image is at distance 0.  A constant image becomes the zero vector
    (distance 1 from any non-constant image, 0 from another constant one).  Pixel-space version of Somepalli et
    al., "Diffusion Art or Digital Forgery?" (CVPR 2023).

    With no held-out set, the reference scale is the training set's own
    nearest-neighbour distance (each training image to its nearest *other* one;
    self-matches are excluded by index, so two identical training images are at
    distance 0).  A generator drawing new images from the training distribution
    puts its samples about as far from the training set as training images are
    from each other; a memorising one puts them much closer.

    ``torch.cdist`` in float64, ``batch_size`` rows against ``batch_size`` rows
    at a time (memory ``O(batch_size × (batch_size + D))``), on the device of
    ``generated`` if it is a tensor, else the CPU; the training self-distances
    cost ``M² D`` operations.

    Parameters
    ----------
    generated : numpy.ndarray or torch.Tensor, shape (N, ...)
        Generated images, e.g. ``(N, C, H, W)``; any per-image shape.
    training : numpy.ndarray or torch.Tensor, shape (M, ...)
        Training images of the same per-image shape, ``M >= 2``.
    batch_size : int, default 256
        Rows per block of the distance computation, >= 1.
    duplicate_threshold : float, optional
        Distance below which a generated image is a near-duplicate.  Default:
        the 1st percentile of ``training_nn_distance`` (at least 1e-6, so exact
        copies count even when the training set has duplicates of its own):
        closer to a training image than 99 % of training images are to their
        nearest neighbour.  Relative to the data, it needs no unit or tuning per
        data set; but a non-memorising generator still puts about 1 % of its
        samples below it, so compare ``near_duplicates`` with
        ``summary["chance_fraction"] × N``, not with 0.

    Returns
    -------
    dict
        ``distance`` (N,) float64 in [0, 2]; ``nearest_index`` (N,) int64, rows
        of ``training``; ``training_nn_distance`` (M,) float64 (numpy arrays);
        ``near_duplicates`` (int, distances below the threshold);
        ``duplicate_threshold`` (float, the one used); ``summary``, a JSON-able
        dict: ``n_generated``, ``n_training``, ``median_distance``,
        ``min_distance``, ``median_training_nn_distance``,
        ``median_distance_ratio`` (the two medians' ratio: about 1 without
        memorisation, ≪ 1 with it), ``duplicate_threshold``,
        ``near_duplicates``, ``near_duplicate_fraction`` and
        ``chance_fraction`` (the fraction of training nearest-neighbour
        distances below the threshold: the rate expected without memorisation).

    Raises
    ------
    TypeError, ValueError
        For non-real, empty or non-finite inputs, different per-image shapes,
        fewer than 2 training images, a batch_size < 1 or a negative threshold.
    """
    generated = _as_array(generated, "generated", 2)
    training = _as_array(training, "training", 2)
    if tuple(generated.shape[1:]) != tuple(training.shape[1:]):
        raise ValueError(
            f"generated and training must have the same per-image shape, got generated {tuple(generated.shape)} "
            f"and training {tuple(training.shape)}"
        )
    if training.shape[0] < 2:
        raise ValueError(f"training must hold at least 2 images, got shape {tuple(training.shape)}")
    batch_size = check_int(batch_size, "batch_size", 1)
    if duplicate_threshold is not None:
        duplicate_threshold = check_nonnegative(duplicate_threshold, "duplicate_threshold")
    queries, reference = _flat(generated), _flat(training)
    distance, nearest_index = _nearest(queries, reference, batch_size, exclude_self=False)
    training_nn, _ = _nearest(reference, reference, batch_size, exclude_self=True)
    if duplicate_threshold is None:
        duplicate_threshold = max(float(np.percentile(training_nn, 1.0)), 1e-6)
    near_duplicates = int((distance < duplicate_threshold).sum())
    median, median_nn = float(np.median(distance)), float(np.median(training_nn))
    summary = {
        "n_generated": int(distance.size), "n_training": int(training_nn.size),
        "median_distance": median, "min_distance": float(distance.min()),
        "median_training_nn_distance": median_nn,
        "median_distance_ratio": median / median_nn if median_nn > 0 else None,
        "duplicate_threshold": duplicate_threshold, "near_duplicates": near_duplicates,
        "near_duplicate_fraction": near_duplicates / distance.size,
        "chance_fraction": float((training_nn < duplicate_threshold).mean()),
    }
    return {
        "distance": distance, "nearest_index": nearest_index.astype(np.int64), "training_nn_distance": training_nn,
        "near_duplicates": near_duplicates, "duplicate_threshold": duplicate_threshold, "summary": summary,
    }
