"""Seeded Cartesian undersampling masks for MRI.

Two 1-D column masks reproduce the sampling of the fastMRI data set (Zbontar
et al., "fastMRI: An Open Dataset and Benchmarks for Accelerated MRI",
arXiv:1811.08839, 2018; ``fastmri.data.subsample``) formula for formula:

* :func:`random_mask` (fastMRI's ``RandomMaskFunc``): a centred block of
  ``num_low = round(num_cols · center_fraction)`` fully sampled low-frequency
  columns starting at ``pad = (num_cols − num_low + 1) // 2``, and every other
  column kept independently with probability
  ``(num_cols / acceleration − num_low) / (num_cols − num_low)``, so that the
  *expected* number of columns is ``num_cols / acceleration``.
* :func:`equispaced_fraction_mask` (fastMRI's ``EquispacedMaskFractionFunc``):
  the same centre block plus the columns ``round(offset + i · a')`` below
  ``num_cols − 1``, with the adjusted spacing
  ``a' = acceleration · (num_low − num_cols) / (num_low · acceleration − num_cols)``
  chosen so that the overall fraction is ``1 / acceleration``, and a random
  ``offset`` in ``[0, round(a'))``.

Both accept lists of centre fractions and accelerations, of which one pair is
drawn uniformly per call (fastMRI's ``MaskFunc.choose_acceleration``).  The
random numbers come from ``torch`` rather than NumPy, so masks follow fastMRI's
distribution but not its exact random stream.

:func:`poisson_disc_mask` is a 2-D variable-density Poisson-disc pattern for
the two phase-encode axes of a 3-D acquisition (Vasanawala et al., "Practical
parallel imaging compressed sensing MRI", ISBI 2011): a fully sampled
calibration box in the centre, and outside it samples kept at least a radius
apart that grows linearly with the distance from the box (so the density
decreases outwards); the slope is searched until the acceleration is within
the relative tolerance ``tol`` of the target.

All masks are boolean, ``True`` where k-space is sampled, with the zero
frequency at index ``n // 2`` of each axis (the centred layout of
:func:`~invsolve.operators.mri.fft.fft_centered`).  :func:`check_center_lines`
finds (and insists on) the fully sampled centre that calibration needs.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

from invsolve._checks import check_int, check_positive, check_shape
from invsolve._random import make_generator

__all__ = ["random_mask", "equispaced_fraction_mask", "poisson_disc_mask", "check_center_lines"]

Numbers = float | Sequence[float]

#: darts per unit of ``r²`` in :func:`poisson_disc_mask`: every grid point is a
#: dart where ``r ≤ √8``, a fixed random fraction ``8 / r²`` of them beyond
_DART_DENSITY = 8.0


def random_mask(
    num_cols: int,
    center_fraction: Numbers,
    acceleration: Numbers,
    seed: int | torch.Generator | None = None,
    *,
    allow_any_combination: bool = False,
) -> torch.Tensor:
    """Random column mask with a fully sampled centre (fastMRI's ``RandomMaskFunc``).

    Parameters
    ----------
    num_cols : int
        Number of phase-encode columns (the last k-space axis, ``W``).
    center_fraction : float or sequence of float
        Fraction of columns in the fully sampled centre block, in ``(0, 1)``;
        ``round(num_cols · center_fraction)`` columns.  A sequence gives the
        choices of which one is drawn per call.
    acceleration : float or sequence of float
        Target acceleration ``R >= 1``: the expected number of sampled
        columns is ``num_cols / R``.  A sequence pairs with ``center_fraction``.
    seed : int or torch.Generator, optional
        Seed (or generator) of the choice of pair and of the columns.
    allow_any_combination : bool
        Draw the centre fraction and the acceleration independently instead of
        as pairs (then the two sequences may differ in length).

    Returns
    -------
    torch.Tensor
        Boolean ``(num_cols,)``, ``True`` for sampled columns; it broadcasts
        along the last axis of k-space ``(..., H, W)``.

    Raises
    ------
    ValueError
        For ``acceleration < 1``, a centre fraction outside ``(0, 1)``, or a
        centre block larger than ``num_cols / acceleration`` columns.
    """
    num_cols = check_int(num_cols, "num_cols")
    generator = make_generator(seed)
    fraction, accel = _choose_pair(center_fraction, acceleration, allow_any_combination, generator)
    num_low = round(num_cols * fraction)
    if num_low > num_cols / accel:
        raise _too_many_low(num_cols, fraction, accel, num_low)
    uniform = torch.rand(num_cols, generator=generator, dtype=torch.float64)
    if num_low < num_cols:
        probability = (num_cols / accel - num_low) / (num_cols - num_low)
        mask = uniform < probability
    else:
        mask = torch.zeros(num_cols, dtype=torch.bool)
    pad = (num_cols - num_low + 1) // 2
    mask[pad : pad + num_low] = True
    return mask


def equispaced_fraction_mask(
    num_cols: int,
    center_fraction: Numbers,
    acceleration: Numbers,
    seed: int | torch.Generator | None = None,
    *,
    offset: int | None = None,
    allow_any_combination: bool = False,
) -> torch.Tensor:
    """Equispaced column mask with overall fraction ``1/R`` (fastMRI's ``EquispacedMaskFractionFunc``).

    The centre block is that of :func:`random_mask`; the other columns are
    ``round(offset + i · a')`` for ``offset + i · a' < num_cols − 1``, with the
    adjusted spacing ``a' = R (num_low − num_cols) / (num_low R − num_cols)``.
    As in fastMRI, rounding may make the spacing uneven by one column.

    Parameters
    ----------
    num_cols : int
        Number of phase-encode columns.
    center_fraction : float or sequence of float
        Fraction of columns in the centre block, in ``(0, 1)``.
    acceleration : float or sequence of float
        Target acceleration ``R >= 1``.
    seed : int or torch.Generator, optional
        Seed (or generator) of the choice of pair and of the offset.
    offset : int, optional
        First equispaced column, in ``[0, round(a'))``; drawn uniformly when
        omitted.
    allow_any_combination : bool
        Draw the centre fraction and the acceleration independently.

    Returns
    -------
    torch.Tensor
        Boolean ``(num_cols,)``, ``True`` for sampled columns.

    Raises
    ------
    ValueError
        For ``acceleration < 1``, a centre fraction outside ``(0, 1)``, a
        centre block of ``num_cols / R`` columns or more (``R > 1``), or an
        offset outside ``[0, round(a'))``.
    """
    num_cols = check_int(num_cols, "num_cols")
    generator = make_generator(seed)
    fraction, accel = _choose_pair(center_fraction, acceleration, allow_any_combination, generator)
    num_low = round(num_cols * fraction)
    if accel > 1 and num_low >= num_cols / accel:
        raise _too_many_low(num_cols, fraction, accel, num_low, strict=True)
    mask = torch.zeros(num_cols, dtype=torch.bool)
    if num_low < num_cols:
        spacing = accel * (num_low - num_cols) / (num_low * accel - num_cols)
        if offset is None:
            offset = int(torch.randint(0, round(spacing), (1,), generator=generator))
        else:
            offset = check_int(offset, "offset", 0)
            if offset >= round(spacing):
                raise ValueError(
                    f"offset must lie in [0, round(a')) = [0, {round(spacing)}) for the adjusted "
                    f"spacing a' = {spacing:.6g}, got {offset}"
                )
        count = max(math.ceil((num_cols - 1 - offset) / spacing), 0)
        positions = offset + spacing * torch.arange(count, dtype=torch.float64)
        mask[torch.round(positions).long()] = True
    pad = (num_cols - num_low + 1) // 2
    mask[pad : pad + num_low] = True
    return mask


def poisson_disc_mask(
    shape: Sequence[int],
    acceleration: float,
    center_fraction: float | Sequence[float] = 0.08,
    seed: int | torch.Generator | None = None,
    *,
    crop_corners: bool = True,
    tol: float = 0.02,
    max_iterations: int = 40,
) -> torch.Tensor:
    """Variable-density Poisson-disc mask on a 2-D phase-encode plane.

    Meant for 3-D Cartesian acquisitions, whose readout axis is fully sampled
    and whose two phase-encode axes ``(k_1, k_2)`` are undersampled.

    Construction:

    1. A calibration box of ``max(round(n · center_fraction), 1)`` entries
       per axis, placed like fastMRI's centre block (starting at
       ``(n − n_low + 1) // 2``), is fully sampled.
    2. Every other point ``p`` gets the normalised distance ``ρ(p) ∈ [0, 1]``
       from the box (per axis, divided by its largest value) and the radius
       ``r(p) = max(1, s · ρ(p))`` in pixels of the longer axis: k-space is
       fully sampled out to ``ρ = 1/s`` and the density falls off like
       ``1/(s ρ)²`` beyond.  With ``crop_corners`` the points with ``ρ > 1``
       (outside the ellipse inscribed in the plane) are never sampled.
    3. Variable-radius dart throwing (Cook, "Stochastic sampling in computer
       graphics", ACM TOG 1986) in one seeded random order: a dart ``p`` is
       kept unless a kept point ``q`` lies closer than ``min(r(p), r(q))``.
       The darts are every grid point where ``r ≤ √8`` and a fixed random
       fraction ``8 / r²`` of the points beyond, so that the work grows with
       the size of the plane, not with ``r²``.  The sequential rule is
       evaluated in parallel rounds (a dart is kept once it precedes all its
       undecided conflicting neighbours; Blelloch, Fineman and Shun, "Greedy
       sequential maximal independent set and matching are parallel on
       average", SPAA 2012), which gives exactly the sequential result.  Like
       Bridson's algorithm ("Fast Poisson disk sampling in arbitrary
       dimensions", SIGGRAPH sketches 2007), which tries a fixed number of
       candidates around each sample, it saturates the plane up to the
       finite number of darts.
    4. The slope ``s`` is found by bisection (after doubling from 2) until
       the number of samples is within the relative tolerance ``tol`` (or
       one sample) of ``n_1 · n_2 / R``; the random order is the same for
       every ``s``.  About 0.1 s for a 256 × 256 plane.

    Parameters
    ----------
    shape : (n_1, n_2)
        Size of the phase-encode plane.
    acceleration : float
        Target acceleration over the whole plane, ``>= 1``.
    center_fraction : float or (float, float)
        Side of the calibration box as a fraction of each axis, in ``(0, 1)``.
    seed : int or torch.Generator, optional
        Seed (or generator) of the random order.
    crop_corners : bool
        Never sample outside the inscribed ellipse (then accelerations below
        about ``4/π`` cannot be reached).
    tol : float
        Accepted relative deviation of the number of samples from
        ``n_1 · n_2 / R`` (about that of the acceleration), ``> 0``; on small
        planes a deviation of one sample is always accepted.
    max_iterations : int
        Budget of slope evaluations.

    Returns
    -------
    torch.Tensor
        Boolean ``(n_1, n_2)``.  For :class:`~invsolve.operators.mri.CartesianMRI`
        volumes ``(D, H, W)`` with the readout along ``D``, it broadcasts over
        ``D`` as it is; for a readout along ``H`` use ``mask[:, None, :]``.

    Raises
    ------
    ValueError
        For an acceleration outside what the calibration box and the crop
        allow, bad fractions or ``tol``, or when ``max_iterations`` slopes do
        not reach ``tol`` (the message gives the closest acceleration found).
    """
    n1, n2 = check_shape(shape, "shape", ("n_1", "n_2"))
    accel = _check_acceleration(acceleration, "acceleration")
    if isinstance(center_fraction, numbers.Real):
        fractions = (center_fraction, center_fraction)
    else:
        expected = f"center_fraction must be a number or a pair (f_1, f_2), got {center_fraction!r}"
        if isinstance(center_fraction, (str, bytes)):
            raise TypeError(expected)
        try:
            fractions = tuple(center_fraction)
        except TypeError:
            raise TypeError(expected) from None
        if len(fractions) != 2:
            raise ValueError(expected)
    fractions = tuple(_check_fraction(f, "center_fraction") for f in fractions)
    tol = check_positive(tol, "tol")
    max_iterations = check_int(max_iterations, "max_iterations")

    rho = []
    box = []
    for n, fraction in zip((n1, n2), fractions):
        num_low = max(round(n * fraction), 1)
        pad = (n - num_low + 1) // 2
        index = torch.arange(n, dtype=torch.float64)
        outside = torch.clamp(torch.maximum(pad - index, index - (pad + num_low - 1)), min=0)
        rho.append(outside / outside.max() if outside.max() > 0 else outside)
        box.append((index >= pad) & (index < pad + num_low))
    rho_grid = torch.sqrt(rho[0][:, None] ** 2 + rho[1][None, :] ** 2)
    calibration = box[0][:, None] & box[1][None, :]
    region = rho_grid <= 1 if crop_corners else torch.ones(n1, n2, dtype=torch.bool)
    region |= calibration
    total = n1 * n2
    lowest, highest = total / int(region.sum()), total / int(calibration.sum())
    if accel < lowest * (1 - tol):
        hint = "; pass crop_corners=False" if crop_corners else ""
        raise ValueError(
            f"acceleration must be at least {lowest:.4g} for this plane (every point of the sampled "
            f"region kept){hint}, got {accel:g}"
        )
    if accel >= highest:
        raise ValueError(
            f"acceleration must be below {highest:.4g}, the acceleration of the calibration box "
            f"alone ({int(calibration.sum())} of {total} points), got {accel:g}; lower center_fraction"
        )

    generator = make_generator(seed)
    rank = torch.empty(total, dtype=torch.long)
    rank[torch.randperm(total, generator=generator)] = torch.arange(total)
    dart = torch.rand(total, generator=generator, dtype=torch.float64)
    candidates = (region & ~calibration).reshape(-1)
    longest = max(n1, n2)
    scale = (longest / n1, longest / n2)

    target = total / accel
    # Accepted sample counts: within tol of the target, or within one sample (small planes).
    slack = max(tol * target, 1.0)

    def sample(slope: float) -> tuple[torch.Tensor, int]:
        radius = torch.clamp(slope * rho_grid, min=1).reshape(-1)
        darts = candidates & (dart * radius**2 < _DART_DENSITY)
        kept = _dart_throwing(radius, darts, rank, (n1, n2), scale)
        mask = calibration | kept.reshape(n1, n2)
        return mask, int(mask.sum())

    best_mask, best_count = sample(1.0)
    low, high, slope = 1.0, None, 2.0
    for _ in range(max_iterations):
        if abs(best_count - target) <= slack:
            return best_mask
        mask, count = sample(slope)
        if abs(count - target) < abs(best_count - target):
            best_mask, best_count = mask, count
        if count > target:
            low = slope
        else:
            high = slope
        slope = 2 * slope if high is None else (low + high) / 2
    if abs(best_count - target) <= slack:
        return best_mask
    raise ValueError(
        f"poisson_disc_mask could not reach acceleration {accel:g} within the relative tol={tol:g} in "
        f"{max_iterations} iterations (closest: {total / best_count:.4g}); raise tol or max_iterations"
    )


def check_center_lines(mask: torch.Tensor, min_lines: int = 1) -> tuple[int, ...]:
    """Widths of the fully sampled k-space centre; raise if there is none.

    Along each axis of ``mask`` the width is the length of the run of
    sampled entries through the centre index ``n // 2`` (the zero frequency in
    the centred layout), measured on the line through the centre.  Axes of
    length 1 are broadcast, i.e. fully sampled, and report 1.

    Parameters
    ----------
    mask : torch.Tensor
        Boolean or 0/1 mask, e.g. ``(W,)`` columns or an ``(n_1, n_2)`` plane.
    min_lines : int
        Smallest acceptable width along every axis longer than 1.

    Returns
    -------
    tuple of int
        One width per axis of ``mask``.  For a fastMRI column mask the width
        is at least ``round(num_cols · center_fraction)`` (more when columns
        next to the centre block were sampled as well).

    Raises
    ------
    ValueError
        If the zero frequency is not sampled or a width is below ``min_lines``.
    """
    mask = _as_bool_mask(mask, "mask")
    min_lines = check_int(min_lines, "min_lines")
    widths = []
    for axis, (start, stop) in enumerate(center_runs(mask)):
        width = stop - start
        if mask.shape[axis] > 1 and width < min_lines:
            raise ValueError(
                f"mask must have at least {min_lines} fully sampled centre lines along axis {axis}, "
                f"got {width}"
            )
        widths.append(width)
    return tuple(widths)


def center_runs(mask: torch.Tensor) -> list[tuple[int, int]]:
    """Per axis, the half-open index range ``[start, stop)`` of the sampled run through the centre.

    The run is taken on the line through the centre index ``n // 2`` of every
    other axis (see :func:`check_center_lines`).

    Raises
    ------
    ValueError
        If ``mask`` is 0-d or its centre (the zero frequency) is not sampled.
    """
    mask = _as_bool_mask(mask, "mask")
    if mask.dim() == 0:
        raise ValueError("mask must have at least one axis, got a 0-d tensor")
    centre = tuple(n // 2 for n in mask.shape)
    if not bool(mask[centre]):
        raise ValueError(
            f"mask has no fully sampled centre lines: the zero frequency at index {centre} is not "
            "sampled; calibration (coil maps, require_center=True) needs a centre block, e.g. "
            "random_mask(..., center_fraction=0.08, ...)"
        )
    runs = []
    for axis, n in enumerate(mask.shape):
        index = list(centre)
        index[axis] = slice(None)
        line = mask[tuple(index)].to(torch.int64)
        c = n // 2
        left = int(torch.cumprod(line[: c + 1].flip(0), 0).sum())
        right = int(torch.cumprod(line[c:], 0).sum())
        runs.append((c - left + 1, c + right))
    return runs


# -- helpers -------------------------------------------------------------------------


def _dart_throwing(
    radius: torch.Tensor,
    candidates: torch.Tensor,
    rank: torch.Tensor,
    shape: tuple[int, int],
    scale: tuple[float, float],
) -> torch.Tensor:
    """Greedy variable-radius dart throwing in the order ``rank``, in parallel rounds.

    Candidates ``p`` and ``q`` conflict when their scaled distance is below
    ``min(radius[p], radius[q])``.  Each round keeps every undecided point
    that comes first among its undecided conflicting neighbours and discards
    those neighbours; this reproduces the sequential pass exactly.  Returns
    the flat boolean mask of kept candidates.
    """
    n1, n2 = shape
    index = candidates.nonzero().squeeze(1)
    kept = torch.zeros(n1 * n2, dtype=torch.bool)
    if index.numel() == 0:
        return kept
    r = radius[index]
    reach = math.ceil(float(r.max()))
    half1, half2 = math.ceil(reach / scale[0]), math.ceil(reach / scale[1])
    # Candidates in a padded grid, so that neighbours never wrap around an edge.
    width = n2 + 2 * half2
    local = torch.full(((n1 + 2 * half1) * width,), -1, dtype=torch.long)
    padded = (index // n2 + half1) * width + (index % n2 + half2)
    local[padded] = torch.arange(index.numel())
    d1, d2 = torch.meshgrid(torch.arange(0, half1 + 1), torch.arange(-half2, half2 + 1), indexing="ij")
    d1, d2 = d1.reshape(-1), d2.reshape(-1)
    distance = torch.sqrt((d1 * scale[0]) ** 2 + (d2 * scale[1]) ** 2)
    forward = (d1 > 0) | (d2 > 0)  # half of the neighbourhood: each pair is seen once
    step = (d1 * width + d2)[forward]
    distance = distance[forward]
    # Pairs (p, q) with q within r(p) of p; candidates grouped by ceil(r) so that
    # each looks only as far as its own radius.
    level = torch.ceil(r).long()
    first_points, second_points = [], []
    for bound in torch.unique(level).tolist():
        members = (level == bound).nonzero().squeeze(1)
        near = distance < bound
        offsets, lengths = step[near], distance[near]
        if offsets.numel() == 0:
            continue
        chunk = max(1, (1 << 20) // offsets.numel())
        for start in range(0, members.numel(), chunk):
            who = members[start : start + chunk]
            neighbour = local[padded[who, None] + offsets[None, :]]
            limit = torch.minimum(r[who, None], r[neighbour.clamp(min=0)])
            i, j = ((neighbour >= 0) & (lengths[None, :] < limit)).nonzero(as_tuple=True)
            first_points.append(who[i])
            second_points.append(neighbour[i, j])
    if first_points:
        u, v = torch.cat(first_points), torch.cat(second_points)
    else:
        u = v = torch.zeros(0, dtype=torch.long)
    order = rank[index]
    alive = torch.ones(index.numel(), dtype=torch.bool)
    chosen = torch.zeros(index.numel(), dtype=torch.bool)
    never = torch.iinfo(torch.long).max
    while bool(alive.any()):
        live = alive[u] & alive[v]
        u, v = u[live], v[live]
        first = torch.full_like(order, never)
        first.scatter_reduce_(0, u, order[v], "amin")
        first.scatter_reduce_(0, v, order[u], "amin")
        winners = alive & (order < first)
        chosen |= winners
        alive &= ~winners
        alive[v[winners[u]]] = False
        alive[u[winners[v]]] = False
    kept[index[chosen]] = True
    return kept


def _as_bool_mask(mask: object, name: str) -> torch.Tensor:
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype == torch.bool:
        return mask
    if mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"{name} must be boolean or hold only 0 and 1, got dtype {mask.dtype} with other values")
    return mask.to(torch.bool)


def _fit_mask(mask: object, spatial: tuple[int, ...]) -> torch.Tensor:
    """``mask`` as a boolean tensor after checking that it broadcasts to ``spatial``."""
    mask = _as_bool_mask(mask, "mask")
    try:
        fits = mask.dim() <= len(spatial) and torch.broadcast_shapes(mask.shape, spatial) == torch.Size(spatial)
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the image shape {spatial}")
    return mask


def _check_fraction(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in (0, 1), got {value!r}")
    number = float(value)
    if not 0.0 < number < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
    return number


def _check_acceleration(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number >= 1, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 1.0:
        raise ValueError(f"{name} must be a finite number >= 1, got {value!r}")
    return number


def _as_choices(value: Numbers, name: str, check) -> list[float]:
    if isinstance(value, numbers.Real):
        return [check(value, name)]
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a number or a sequence of numbers, got {value!r}")
    try:
        values = list(value)
    except TypeError:
        raise TypeError(f"{name} must be a number or a sequence of numbers, got {value!r}") from None
    if not values:
        raise ValueError(f"{name} must not be empty")
    return [check(v, f"{name}[{i}]") for i, v in enumerate(values)]


def _choose_pair(
    center_fraction: Numbers, acceleration: Numbers, allow_any_combination: bool, generator: torch.Generator
) -> tuple[float, float]:
    """fastMRI's ``MaskFunc.choose_acceleration``: a uniformly drawn (fraction, acceleration)."""
    fractions = _as_choices(center_fraction, "center_fraction", _check_fraction)
    accelerations = _as_choices(acceleration, "acceleration", _check_acceleration)
    if allow_any_combination:
        i = int(torch.randint(len(fractions), (1,), generator=generator))
        j = int(torch.randint(len(accelerations), (1,), generator=generator))
        return fractions[i], accelerations[j]
    if len(fractions) != len(accelerations):
        raise ValueError(
            f"center_fraction and acceleration must have one length (they are drawn as pairs), got "
            f"{len(fractions)} and {len(accelerations)}; or pass allow_any_combination=True"
        )
    i = int(torch.randint(len(fractions), (1,), generator=generator))
    return fractions[i], accelerations[i]


def _too_many_low(num_cols: int, fraction: float, accel: float, num_low: int, strict: bool = False) -> ValueError:
    bound = "fewer than" if strict else "at most"
    return ValueError(
        f"center_fraction={fraction:g} keeps {num_low} of {num_cols} columns in the centre, but acceleration "
        f"{accel:g} allows {bound} num_cols / acceleration = {num_cols / accel:.4g}; lower center_fraction "
        "or acceleration"
    )
