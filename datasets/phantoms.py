"""Synthetic phantoms: modified Shepp–Logan (2D and 3D) and seeded random ellipses.

Coordinates
-----------
The conventions are those of ODL's phantoms and of :mod:`invsolve.operators.ct`:
array axis ``k`` of an image is the physical coordinate ``k`` (axis 0 is ``x``,
axis 1 is ``y``, axis 2 is ``z``).  An image of shape ``(n_0, …, n_{d-1})``
with side lengths ``extent = (L_0, …)`` is centred at the origin, and pixel
``i`` along axis ``k`` is the cell centred at ``-L_k/2 + (i + 1/2)·L_k/n_k``.
Phantoms are defined in the reference cube ``[-1, 1]^d``; the default
``extent`` of 2 makes that cube fill the image.  Pass the ``extent`` of a CT
geometry to get the same physical object on that geometry's pixel grid.

Each pixel takes the phantom's value at its centre (point sampling, as ODL
does).  ODL's ``ellipsoid_phantom`` maps the outermost pixel *centres* (not the
image edges) to ``±1``, so ODL's phantom on ``n`` pixels per axis is this
module's phantom with ``extent = 2n/(n − 1)``: one pixel smaller than the image,
which changes only pixels near ellipse edges.

Units
-----
Values are linear attenuation coefficients in units of 1 / (half the side of
the reference cube).  With lengths in the same unit (an image spanning
``[-1, 1]^d``, the default here and of the CT geometries), the line integrals
of a ray transform are dimensionless optical depths ``p`` and ``exp(-p)`` is
the transmitted fraction of the beam (Beer–Lambert), which is what
:class:`~invsolve.operators.noise.PoissonNoise` expects.  The modified
Shepp–Logan phantom takes values 0 (air, ventricles), 0.2 (brain), 0.3
(tumours) and 1 (skull); its largest line integral is about 0.52.  For
realistic photon statistics scale it: water attenuates about 0.019 /mm, i.e.
1.9 per half side of a 20 cm field of view, so a factor of about 10 makes the
brain (0.2) water-like.

Every function evaluates all ellipses at all pixels at once (chunked to bound
memory), in float64 on the requested device, and returns float32 unless told
otherwise.  This module imports neither operators nor priors.

References
----------
L. A. Shepp and B. F. Logan, "The Fourier reconstruction of a head section",
IEEE Trans. Nucl. Sci. 21(3):21–43, 1974.
P. Toft, "The Radon Transform: Theory and Implementation", PhD thesis, Technical
University of Denmark, 1996 (the modified, higher-contrast intensities).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

from invsolve._checks import check_extent, check_int, check_nonnegative, check_range, check_shape
from invsolve._random import make_generator

__all__ = [
    "shepp_logan",
    "shepp_logan_ellipsoids",
    "ellipsoid_phantom",
    "random_ellipse_phantoms",
]

# Shepp & Logan's ellipses as tabulated by ODL (odl.core.phantom.transmission):
# value, semi-axes along x and y, centre (x, y), rotation in degrees.
_SHEPP_LOGAN_2D = (
    (2.00, 0.6900, 0.9200, 0.0000, 0.0000, 0.0),
    (-0.98, 0.6624, 0.8740, 0.0000, -0.0184, 0.0),
    (-0.02, 0.1100, 0.3100, 0.2200, 0.0000, -18.0),
    (-0.02, 0.1600, 0.4100, -0.2200, 0.0000, 18.0),
    (0.01, 0.2100, 0.2500, 0.0000, 0.3500, 0.0),
    (0.01, 0.0460, 0.0460, 0.0000, 0.1000, 0.0),
    (0.01, 0.0460, 0.0460, 0.0000, -0.1000, 0.0),
    (0.01, 0.0460, 0.0230, -0.0800, -0.6050, 0.0),
    (0.01, 0.0230, 0.0230, 0.0000, -0.6060, 0.0),
    (0.01, 0.0230, 0.0460, 0.0600, -0.6050, 0.0),
)
# ODL's 3D extension: value, semi-axes (x, y, z), centre (x, y, z), Euler
# angles (phi, theta, psi) in degrees.
_SHEPP_LOGAN_3D = (
    (2.00, 0.6900, 0.9200, 0.810, 0.0000, 0.0000, 0.00, 0.0, 0.0, 0.0),
    (-0.98, 0.6624, 0.8740, 0.780, 0.0000, -0.0184, 0.00, 0.0, 0.0, 0.0),
    (-0.02, 0.1100, 0.3100, 0.220, 0.2200, 0.0000, 0.00, -18.0, 0.0, 0.0),
    (-0.02, 0.1600, 0.4100, 0.280, -0.2200, 0.0000, 0.00, 18.0, 0.0, 0.0),
    (0.01, 0.2100, 0.2500, 0.410, 0.0000, 0.3500, 0.00, 0.0, 0.0, 0.0),
    (0.01, 0.0460, 0.0460, 0.050, 0.0000, 0.1000, 0.00, 0.0, 0.0, 0.0),
    (0.01, 0.0460, 0.0460, 0.050, 0.0000, -0.1000, 0.00, 0.0, 0.0, 0.0),
    (0.01, 0.0460, 0.0230, 0.050, -0.0800, -0.6050, 0.00, 0.0, 0.0, 0.0),
    (0.01, 0.0230, 0.0230, 0.020, 0.0000, -0.6060, 0.00, 0.0, 0.0, 0.0),
    (0.01, 0.0230, 0.0460, 0.020, 0.0600, -0.6050, 0.00, 0.0, 0.0, 0.0),
)
# Toft's modified intensities (same ellipses, higher contrast).
_MODIFIED_VALUES = (1.0, -0.8, -0.2, -0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1)

# Entries of the largest intermediate (batch × ellipses × pixels × dims,
# float64) evaluated at once: 64 MiB.
_CHUNK_ELEMENTS = 1 << 23
# Number of random plane waves summed into the texture of random phantoms.
_TEXTURE_WAVES = 6
# Random ellipses stay inside the ball of this radius (reference units), so
# the whole object lies inside the disc inscribed in the default image.
_OBJECT_RADIUS = 0.95
# Axes of the accepted image shapes.
_LAYOUTS = (("H", "W"), ("D", "H", "W"))


def shepp_logan_ellipsoids(ndim: int, modified: bool = True) -> torch.Tensor:
    """The Shepp–Logan ellipses (2D) or ellipsoids (3D) in ODL's row format.

    Parameters
    ----------
    ndim : {2, 3}
        Dimension of the phantom.
    modified : bool
        Toft's modified intensities (default) instead of Shepp & Logan's.

    Returns
    -------
    torch.Tensor
        Float64 table of 10 rows.  2D rows are ``(value, a_x, a_y, x_0, y_0,
        θ)``, 3D rows ``(value, a_x, a_y, a_z, x_0, y_0, z_0, φ, ϑ, ψ)``:
        additive value, semi-axes and centre in reference units, angles in
        radians (see :func:`ellipsoid_phantom`).
    """
    if isinstance(ndim, bool) or ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 or 3, got {ndim!r}")
    table = torch.tensor(_SHEPP_LOGAN_2D if ndim == 2 else _SHEPP_LOGAN_3D, dtype=torch.float64)
    angles = slice(5, 6) if ndim == 2 else slice(7, 10)
    table[:, angles] = torch.deg2rad(table[:, angles])
    if modified:
        table[:, 0] = torch.tensor(_MODIFIED_VALUES, dtype=torch.float64)
    return table


def shepp_logan(
    shape: Sequence[int],
    *,
    modified: bool = True,
    extent: float | Sequence[float] | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The (modified) Shepp–Logan head phantom in 2D or 3D.

    Parameters
    ----------
    shape : (H, W) or (D, H, W)
        Number of pixels along axes ``x``, ``y`` (and ``z``).
    modified : bool
        Toft's modified intensities, values in ``[0, 1]`` (default), or Shepp
        & Logan's original ones, values in ``[0, 2]``.
    extent : float or sequence of float, optional
        Physical side lengths of the image in reference units; default 2 (the
        image spans ``[-1, 1]^d``).  ``2n/(n − 1)`` reproduces ODL's
        ``odl.core.phantom.shepp_logan(space, modified)`` on ``n`` pixels.
    dtype : torch.dtype
        Floating dtype of the result (default float32).
    device : torch.device or str, optional
        Device of the result.

    Returns
    -------
    torch.Tensor
        ``(1, 1, H, W)`` or ``(1, 1, D, H, W)``: a batch of one single-channel
        image of attenuation coefficients (see the module's units).

    Notes
    -----
    The ellipses are ODL's: the 2D table of Shepp & Logan (1974) and ODL's 3D
    extension (:func:`shepp_logan_ellipsoids`).  Overlapping ellipses add;
    the rounding residue of ``1 − 0.8 − 0.2`` (about ``-6e-17``) inside the
    ventricles is set to 0 so that the phantom is nowhere negative.

    Examples
    --------
    >>> shepp_logan((64, 64)).shape
    torch.Size([1, 1, 64, 64])
    """
    dims = check_shape(shape, "shape", *_LAYOUTS)
    phantom = ellipsoid_phantom(
        dims, shepp_logan_ellipsoids(len(dims), modified), extent=extent, dtype=torch.float64, device=device
    )
    return phantom.clamp_min(0).to(_check_dtype(dtype))


def ellipsoid_phantom(
    shape: Sequence[int],
    ellipsoids: torch.Tensor | Sequence[Sequence[float]],
    *,
    extent: float | Sequence[float] | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Sum of constant ellipses (2D) or ellipsoids (3D), in ODL's row format.

    A point ``p`` lies in an ellipse with centre ``c``, semi-axes ``a`` and
    rotation ``R`` if ``Σ_k ((R (p − c))_k / a_k)² <= 1``.  In 2D,
    ``R = [[cos θ, sin θ], [−sin θ, cos θ]]``: the ellipse's first axis is
    turned counter-clockwise by ``θ`` from ``x``.  In 3D, ``R`` is ODL's
    Euler-angle matrix of ``(φ, ϑ, ψ)``, which reduces to the 2D one in the
    ``xy`` plane for ``ϑ = ψ = 0``.

    Parameters
    ----------
    shape : (H, W) or (D, H, W)
        Number of pixels along axes ``x``, ``y`` (and ``z``).
    ellipsoids : torch.Tensor or sequence of rows
        ``(K, 6)`` rows ``(value, a_x, a_y, x_0, y_0, θ)`` in 2D or
        ``(K, 10)`` rows ``(value, a_x, a_y, a_z, x_0, y_0, z_0, φ, ϑ, ψ)``
        in 3D; lengths in reference units, angles in radians, semi-axes > 0.
    extent : float or sequence of float, optional
        Physical side lengths of the image in reference units; default 2.
    dtype : torch.dtype
        Floating dtype of the result (default float32).
    device : torch.device or str, optional
        Device of the result.

    Returns
    -------
    torch.Tensor
        ``(1, 1, *shape)``, the sum of each ellipse's value over the pixels
        whose centres it contains.
    """
    dims = check_shape(shape, "shape", *_LAYOUTS)
    ndim = len(dims)
    width = 6 if ndim == 2 else 10
    table = torch.as_tensor(ellipsoids, dtype=torch.float64)
    if table.dim() != 2 or table.shape[1] != width:
        raise ValueError(
            f"ellipsoids must be a table of shape (K, {width}) for a {ndim}D shape, got {tuple(table.shape)}"
        )
    if not bool(torch.isfinite(table).all()):
        raise ValueError("ellipsoids must hold finite numbers only")
    axes = table[:, 1 : 1 + ndim]
    if not bool((axes > 0).all()):
        raise ValueError(f"the semi-axes (columns 1..{ndim}) of ellipsoids must be > 0, got {axes.tolist()}")
    centres = table[:, 1 + ndim : 1 + 2 * ndim]
    rotations = _rotation_2d(table[:, 5]) if ndim == 2 else _rotation_3d(*table[:, 7:10].unbind(dim=1))
    dtype = _check_dtype(dtype)
    points = _grid(dims, check_extent(extent, ndim), device)
    inside = _inside_chunks(points, centres[None], rotations[None], axes[None] ** -2)
    values = table[None, :, 0].to(points.device)
    total = torch.zeros(1, points.shape[0], dtype=torch.float64, device=points.device)
    for chunk, hits in inside:
        total += torch.einsum("bkp,bk->bp", hits.to(torch.float64), values[:, chunk])
    return total.reshape(1, 1, *dims).to(dtype)


def random_ellipse_phantoms(
    n: int,
    shape: Sequence[int],
    *,
    n_ellipses: int | tuple[int, int] = (10, 30),
    value_range: tuple[float, float] = (0.1, 1.0),
    axis_range: tuple[float, float] = (0.02, 0.4),
    texture: float = 0.15,
    max_frequency: float = 3.0,
    extent: float | Sequence[float] | None = None,
    seed: int | torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A batch of seeded random-ellipse phantoms (2D or 3D) with smooth texture.

    Each phantom is painted from ``K`` random ellipses (``K`` drawn per
    phantom from ``n_ellipses``), largest first, so that a later (smaller)
    ellipse replaces what lies under it: a piecewise-constant image with
    varied attenuation and small details on top of large structures, in the
    spirit of the random-ellipse training sets of learned CT (e.g. Adler &
    Öktem, "Learned primal-dual reconstruction", IEEE TMI 37(6), 2018).
    Every ellipse lies inside the ball of radius 0.95 (reference units);
    outside all ellipses the value is 0 (air).  The image is then multiplied
    by ``1 + texture · m(p)``, where ``m`` is a random smooth field in
    ``[-1, 1]``: a weighted mean of six plane waves with random directions,
    phases and frequencies of at most ``max_frequency`` cycles across the
    reference cube.

    Parameters
    ----------
    n : int
        Number of phantoms (batch size), ``>= 1``.
    shape : (H, W) or (D, H, W)
        Number of pixels along axes ``x``, ``y`` (and ``z``).
    n_ellipses : int or (int, int)
        Number of ellipses per phantom, or an inclusive range to draw it from
        uniformly; ``>= 1``.
    value_range : (float, float)
        Range of the ellipses' attenuation values, ``0 <= low <= high``,
        drawn uniformly.
    axis_range : (float, float)
        Range of the semi-axes in reference units, ``0 < low <= high <= 0.95``,
        drawn uniformly and independently per axis.
    texture : float
        Relative amplitude of the smooth modulation, in ``[0, 1)``.
    max_frequency : float
        Highest texture frequency in cycles per reference side (2 units),
        ``>= 0``.
    extent : float or sequence of float, optional
        Physical side lengths of the image in reference units; default 2.
    seed : int or torch.Generator, optional
        Seed or CPU generator.  All parameters are drawn on the CPU, so a seed
        gives the same phantoms on every device.
    dtype : torch.dtype
        Floating dtype of the result (default float32).
    device : torch.device or str, optional
        Device of the result.

    Returns
    -------
    torch.Tensor
        ``(n, 1, H, W)`` or ``(n, 1, D, H, W)`` attenuation coefficients, each
        0 or in ``[low·(1 − texture), high·(1 + texture)]``.

    Examples
    --------
    >>> x = random_ellipse_phantoms(8, (64, 64), seed=0)
    >>> x.shape
    torch.Size([8, 1, 64, 64])
    """
    count = check_int(n, "n")
    dims = check_shape(shape, "shape", *_LAYOUTS)
    ndim = len(dims)
    low_k, high_k = _check_count_range(n_ellipses)
    low_v, high_v = check_range(value_range, "value_range", lower=0.0)
    low_a, high_a = check_range(axis_range, "axis_range", lower=0.0, upper=_OBJECT_RADIUS)
    if low_a <= 0:
        raise ValueError(f"axis_range must have a lower end > 0, got {axis_range!r}")
    texture = float(texture)
    if not 0.0 <= texture < 1.0:
        raise ValueError(f"texture must lie in [0, 1), got {texture!r}")
    max_frequency = check_nonnegative(max_frequency, "max_frequency")
    dtype = _check_dtype(dtype)
    sides = check_extent(extent, ndim)

    generator = make_generator(seed)

    def uniform(low: float, high: float, *size: int) -> torch.Tensor:
        return low + (high - low) * torch.rand(*size, generator=generator, dtype=torch.float64)

    # Ellipse parameters, (n, K_max, ...): unused slots are masked out below.
    k_max = high_k
    counts = torch.randint(low_k, high_k + 1, (count,), generator=generator)
    axes = uniform(low_a, high_a, count, k_max, ndim)
    direction = torch.randn(count, k_max, ndim, generator=generator, dtype=torch.float64)
    direction = direction / torch.linalg.vector_norm(direction, dim=-1, keepdim=True).clamp_min(1e-12)
    # Uniform in the ball that keeps the ellipse inside radius 0.95.
    room = _OBJECT_RADIUS - axes.amax(dim=-1, keepdim=True)
    centres = direction * room * uniform(0.0, 1.0, count, k_max, 1) ** (1.0 / ndim)
    if ndim == 2:
        rotations = _rotation_2d(uniform(0.0, math.pi, count, k_max))
    else:
        rotations = _random_rotation_3d(generator, count, k_max)
    values = uniform(low_v, high_v, count, k_max)
    # Texture: plane waves cos(π f·p + φ) (f in cycles per 2 units), mean-weighted.
    wave_dirs = torch.randn(count, _TEXTURE_WAVES, ndim, generator=generator, dtype=torch.float64)
    wave_dirs = wave_dirs / torch.linalg.vector_norm(wave_dirs, dim=-1, keepdim=True).clamp_min(1e-12)
    frequencies = wave_dirs * uniform(0.0, max_frequency, count, _TEXTURE_WAVES, 1)
    phases = uniform(0.0, 2 * math.pi, count, _TEXTURE_WAVES)
    weights = uniform(0.0, 1.0, count, _TEXTURE_WAVES) + 1e-3
    weights = weights / weights.sum(dim=1, keepdim=True)

    # Largest first; unused slots last (they never paint).
    active = torch.arange(k_max)[None, :] < counts[:, None]
    size = torch.where(active, axes.prod(dim=-1), torch.tensor(-1.0, dtype=torch.float64))
    order = torch.argsort(size, dim=1, descending=True)
    active = torch.gather(active, 1, order)

    def sort(tensor: torch.Tensor) -> torch.Tensor:
        index = order.reshape(*order.shape, *([1] * (tensor.dim() - 2))).expand_as(tensor)
        return torch.gather(tensor, 1, index)

    axes, centres, rotations, values = sort(axes), sort(centres), sort(rotations), sort(values)

    points = _grid(dims, sides, device)
    to = lambda tensor: tensor.to(points.device)  # noqa: E731
    values, active = to(values), to(active)
    painted = torch.zeros(count, points.shape[0], dtype=torch.float64, device=points.device)
    for batch in _batch_chunks(count, points.shape[0] * ndim):
        inside = _inside_chunks(points, to(centres[batch]), to(rotations[batch]), to(axes[batch]) ** -2)
        for chunk, hits in inside:
            hits = hits & active[batch, chunk, None]
            k = hits.shape[1]
            # Index of the last ellipse in this chunk that contains each pixel.
            last = (k - 1) - torch.flip(hits, dims=[1]).to(torch.uint8).argmax(dim=1)
            top = torch.gather(values[batch, chunk], 1, last)
            painted[batch] = torch.where(hits.any(dim=1), top, painted[batch])
        phase = torch.einsum("pd,bwd->bwp", points, math.pi * to(frequencies[batch])) + to(phases[batch])[..., None]
        modulation = torch.einsum("bwp,bw->bp", torch.cos(phase), to(weights[batch]))
        painted[batch] = painted[batch] * (1 + texture * modulation)
    return painted.reshape(count, 1, *dims).to(dtype)


# -- geometry ------------------------------------------------------------------------
def _grid(dims: tuple[int, ...], sides: tuple[float, ...], device: torch.device | str | None) -> torch.Tensor:
    """Pixel centres, ``(prod(dims), ndim)`` float64, axis order of the array."""
    axes = [
        (torch.arange(count, dtype=torch.float64, device=device) + 0.5) * (side / count) - side / 2
        for count, side in zip(dims, sides)
    ]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(dims))


def _rotation_2d(theta: torch.Tensor) -> torch.Tensor:
    """``[[cos θ, sin θ], [−sin θ, cos θ]]`` for every angle, shape ``(*θ.shape, 2, 2)``."""
    cos, sin = torch.cos(theta), torch.sin(theta)
    return torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)


def _rotation_3d(phi: torch.Tensor, theta: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
    """ODL's Euler-angle matrix (``odl.core.phantom.geometric``), ``(*φ.shape, 3, 3)``."""
    cphi, sphi = torch.cos(phi), torch.sin(phi)
    ctheta, stheta = torch.cos(theta), torch.sin(theta)
    cpsi, spsi = torch.cos(psi), torch.sin(psi)
    rows = [
        [cpsi * cphi - ctheta * sphi * spsi, cpsi * sphi + ctheta * cphi * spsi, spsi * stheta],
        [-spsi * cphi - ctheta * sphi * cpsi, -spsi * sphi + ctheta * cphi * cpsi, cpsi * stheta],
        [stheta * sphi, -stheta * cphi, ctheta],
    ]
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def _random_rotation_3d(generator: torch.Generator, *size: int) -> torch.Tensor:
    """Uniformly distributed rotations from normalised Gaussian quaternions, ``(*size, 3, 3)``."""
    quaternion = torch.randn(*size, 4, generator=generator, dtype=torch.float64)
    w, x, y, z = (quaternion / torch.linalg.vector_norm(quaternion, dim=-1, keepdim=True)).unbind(-1)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def _batch_chunks(count: int, per_item: int) -> list[slice]:
    """Slices of the batch whose points × dims stay within the memory budget."""
    step = max(1, _CHUNK_ELEMENTS // max(per_item, 1))
    return [slice(start, min(start + step, count)) for start in range(0, count, step)]


def _inside_chunks(points: torch.Tensor, centres: torch.Tensor, rotations: torch.Tensor, inverse_sq_axes: torch.Tensor):
    """Yield ``(ellipse slice, inside)`` with ``inside`` of shape ``(b, k, P)``.

    ``points`` is ``(P, d)``; ``centres``, ``inverse_sq_axes`` are ``(b, K, d)``
    and ``rotations`` ``(b, K, d, d)``.  A pixel is inside if
    ``Σ_k (R (p − c))_k² / a_k² <= 1``, evaluated in ODL's order of operations.
    """
    batch, total, ndim = centres.shape
    n_points = points.shape[0]
    step = max(1, _CHUNK_ELEMENTS // max(batch * n_points * ndim, 1))
    device = points.device
    for start in range(0, total, step):
        chunk = slice(start, min(start + step, total))
        offset = points[None, None] - centres[:, chunk, None, :].to(device)  # (b, k, P, d)
        rotated = torch.einsum("bkpj,bkij->bkpi", offset, rotations[:, chunk].to(device))
        radius = torch.einsum("bkpi,bki->bkp", rotated.square(), inverse_sq_axes[:, chunk].to(device))
        yield chunk, radius <= 1


# -- validation ----------------------------------------------------------------------
def _check_dtype(dtype: torch.dtype) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    return dtype


def _check_count_range(value: int | tuple[int, int]) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    try:
        low, high = pair
    except (TypeError, ValueError):
        raise ValueError(f"n_ellipses must be an int >= 1 or a pair (low, high), got {value!r}") from None
    low, high = check_int(low, "n_ellipses"), check_int(high, "n_ellipses")
    if low > high:
        raise ValueError(f"n_ellipses must be (low, high) with low <= high, got {value!r}")
    return low, high
