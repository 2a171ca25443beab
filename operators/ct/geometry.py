"""Acquisition geometries of 2D computed tomography.

A geometry says where the image lies in space and which lines the scanner
integrates along.  The conventions are those of ODL's tomography package
(``odl.applications.tomo``), so that :meth:`Geometry2D.to_odl` gives the same
measurement model:

* The image is an ``(H, W)`` array; the first array axis is the physical
  ``x`` axis and the second is ``y`` (as in ODL's ``uniform_discr``).  Pixel
  ``[i, j]`` is the cell centred at ``x_i = x_min + (i + 1/2) dx``,
  ``y_j = y_min + (j + 1/2) dy``; the image is centred at the origin.
* An angle ``θ`` rotates the scanner counter-clockwise about the origin.  At
  ``θ = 0`` the detector lies on the ``+y`` side and its axis points along
  ``+x``; at angle ``θ`` both are rotated by ``R(θ) = [[cos θ, -sin θ],
  [sin θ, cos θ]]``.  Detector coordinates ``u`` increase along the rotated
  axis ``(cos θ, sin θ)``; detector pixel ``k`` of ``n`` is centred at
  ``u_k = (k + 1/2 - n/2) Δu``.
* Parallel beam: the ray of detector coordinate ``u`` is the line
  ``{p : p · (cos θ, sin θ) = u}``, so the transform is the Radon transform.
* Fan beam (flat detector): the source sits at ``r_s (sin θ, -cos θ)``, the
  detector line passes through ``r_d (-sin θ, cos θ)``, and the ray of ``u``
  joins the source to ``r_d (-sin θ, cos θ) + u (cos θ, sin θ)``.

Lengths are physical (millimetres, or the unit of ``extent``); angles are
radians.  The default ``extent`` makes the image span ``[-1, 1]²``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from invsolve._checks import (
    check_extent,
    check_finite_number,
    check_int,
    check_nonnegative,
    check_positive,
    check_shape,
)

#: the most detector pixels a geometry may have (a default count from a tiny
#: ``detector_spacing`` would otherwise allocate without bound)
MAX_DETECTOR_PIXELS = 1 << 24

__all__ = [
    "Geometry2D",
    "ParallelBeam2D",
    "FanBeam2D",
    "uniform_angles",
    "sparse_view_angles",
    "limited_angle_angles",
]


def uniform_angles(n_angles: int, start: float, stop: float) -> torch.Tensor:
    """``n_angles`` equally spaced angles: the cell midpoints of ``[start, stop)``.

    The midpoints are what ODL's ``uniform_partition(start, stop, n)`` uses,
    so a geometry built from these angles matches ODL's exactly.

    Parameters
    ----------
    n_angles : int
        Number of angles, at least 1.
    start, stop : float
        Angular range in radians, ``start < stop``.

    Returns
    -------
    torch.Tensor
        Float64 tensor of shape ``(n_angles,)``, radians.
    """
    count = check_int(n_angles, "n_angles")
    low, high = check_finite_number(start, "start"), check_finite_number(stop, "stop")
    if not high > low:
        raise ValueError(f"stop must be greater than start, got start={start!r}, stop={stop!r}")
    step = (high - low) / count
    return low + step * (torch.arange(count, dtype=torch.float64) + 0.5)


def sparse_view_angles(n_views: int, full_range: float = math.pi) -> torch.Tensor:
    """``n_views`` equally spaced views over a full scan ``[0, full_range)``.

    Use ``full_range=π`` (the default) for parallel beam and ``2π`` for fan
    beam, whose data are redundant only over ``π + 2·(fan angle)``.

    Returns
    -------
    torch.Tensor
        Float64 tensor of shape ``(n_views,)``, radians.
    """
    return uniform_angles(n_views, 0.0, full_range)


def limited_angle_angles(n_views: int, start: float, stop: float) -> torch.Tensor:
    """``n_views`` equally spaced views over a limited range ``[start, stop)``.

    For example ``limited_angle_angles(60, 0, 2π/3)`` misses a 60° wedge of a
    parallel-beam scan.

    Returns
    -------
    torch.Tensor
        Float64 tensor of shape ``(n_views,)``, radians.
    """
    return uniform_angles(n_views, start, stop)


class Geometry2D:
    """Common part of 2D geometries: image grid, angles and flat detector.

    Parameters
    ----------
    image_shape : (H, W)
        Image size in pixels; axis 0 is ``x``, axis 1 is ``y``.
    angles : array-like or torch.Tensor, shape (n_angles,)
        Projection angles in radians, any finite values in any order.
    n_detector : int
        Number of detector pixels.
    detector_spacing : float
        Detector pixel size ``Δu`` (physical length on the detector).
    extent : float or (float, float), optional
        Physical side lengths ``(L_x, L_y)`` of the image, centred at the
        origin; a single number gives a square.  Default ``(2, 2)``: the
        image spans ``[-1, 1]²``.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        angles: Any,
        n_detector: int,
        detector_spacing: float,
        extent: float | Sequence[float] | None = None,
    ) -> None:
        self.image_shape = check_shape(image_shape, "image_shape", ("H", "W"))
        self.extent = check_extent(extent, 2)
        self.angles = check_angles(angles)
        self.n_detector = check_int(n_detector, "n_detector")
        if self.n_detector > MAX_DETECTOR_PIXELS:
            raise ValueError(f"n_detector must be at most {MAX_DETECTOR_PIXELS}, got {n_detector!r}")
        self.detector_spacing = check_positive(detector_spacing, "detector_spacing")

    # -- derived quantities ----------------------------------------------------------
    @property
    def n_angles(self) -> int:
        """Number of projection angles."""
        return int(self.angles.numel())

    @property
    def pixel_size(self) -> tuple[float, float]:
        """Physical pixel size ``(dx, dy)``."""
        return (self.extent[0] / self.image_shape[0], self.extent[1] / self.image_shape[1])

    @property
    def min_pt(self) -> tuple[float, float]:
        """Lower corner ``(x_min, y_min)`` of the image domain."""
        return (-self.extent[0] / 2, -self.extent[1] / 2)

    @property
    def sinogram_shape(self) -> tuple[int, int]:
        """Shape ``(n_angles, n_detector)`` of one sinogram."""
        return (self.n_angles, self.n_detector)

    @property
    def object_radius(self) -> float:
        """Radius of the disc inscribed in the image (the field of view)."""
        return min(self.extent) / 2

    def detector_coordinates(self, dtype: torch.dtype = torch.float64, device=None) -> torch.Tensor:
        """Centres ``u_k`` of the detector pixels, shape ``(n_detector,)``, physical units."""
        count = self.n_detector
        index = torch.arange(count, dtype=dtype, device=device)
        return (index + (0.5 - count / 2)) * self.detector_spacing

    def rays(self, angles: torch.Tensor, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        """Every ray of the given views as a point and a unit direction.

        Parameters
        ----------
        angles : torch.Tensor, shape (n,)
            Angles in radians (a chunk of :attr:`angles`), on the target device.
        dtype : torch.dtype
            Floating dtype of the result.

        Returns
        -------
        points, directions : torch.Tensor, each shape (n, n_detector, 2)
            A point on each ray and its unit direction, ``(x, y)`` components.
        """
        raise NotImplementedError

    def _odl_geometry(self, odl_tomo, angle_partition, detector_partition):
        raise NotImplementedError

    def to_odl(self):
        """The equivalent ODL objects ``(reco_space, geometry)``.

        ODL is imported here only (importing it changes process-wide SciPy
        settings).  The reco space is float32, like ODL's ``astra_cpu``
        backend expects.
        """
        import odl
        from odl.applications import tomo

        reco_space = odl_reco_space(self.min_pt, self.image_shape)
        half_width = self.n_detector * self.detector_spacing / 2
        detector_partition = odl.uniform_partition(-half_width, half_width, self.n_detector)
        return reco_space, self._odl_geometry(tomo, odl_angle_partition(self.angles), detector_partition)

    def _check_coverage(self, covered_radius: float) -> None:
        radius = self.object_radius
        if covered_radius < radius * (1 - 1e-9):
            warnings.warn(
                f"the detector ({self.n_detector} pixels of {self.detector_spacing:g}) covers only a "
                f"disc of radius {covered_radius:.4g} about the rotation centre, smaller than the "
                f"radius {radius:.4g} of the disc inscribed in the image (extent {self.extent}); "
                "rays miss part of the object (truncated projections). Increase n_detector or "
                "detector_spacing.",
                stacklevel=3,
            )

    def _describe_common(self) -> str:
        return (
            f"image_shape={self.image_shape}, extent={self.extent}, n_angles={self.n_angles}, "
            f"n_detector={self.n_detector}, detector_spacing={self.detector_spacing:g}"
        )


class ParallelBeam2D(Geometry2D):
    """2D parallel-beam geometry (ODL's ``Parallel2dGeometry``).

    Parameters
    ----------
    image_shape : (H, W)
        Image size in pixels; axis 0 is ``x``, axis 1 is ``y``.
    angles : array-like or torch.Tensor, shape (n_angles,)
        Projection angles in radians, e.g. :func:`sparse_view_angles` (over
        ``[0, π)``) or :func:`limited_angle_angles`.
    n_detector : int, optional
        Number of detector pixels.  Default: enough to cover the image's
        diagonal at the default spacing.
    detector_spacing : float, optional
        Detector pixel size, physical units.  Default: the smaller pixel side.
    extent : float or (float, float), optional
        Physical side lengths of the image; default ``(2, 2)`` (``[-1, 1]²``).

    Warns
    -----
    UserWarning
        If the detector is narrower than the disc inscribed in the image.

    Examples
    --------
    >>> geometry = ParallelBeam2D((64, 64), sparse_view_angles(30))
    >>> geometry.sinogram_shape
    (30, 91)
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        angles: Any,
        n_detector: int | None = None,
        detector_spacing: float | None = None,
        extent: float | Sequence[float] | None = None,
    ) -> None:
        shape, sides = check_shape(image_shape, "image_shape", ("H", "W")), check_extent(extent, 2)
        spacing = min(s / n for s, n in zip(sides, shape)) if detector_spacing is None else detector_spacing
        spacing = check_positive(spacing, "detector_spacing")
        if n_detector is None:
            n_detector = _default_detector_count(math.hypot(*sides), spacing)
        super().__init__(shape, angles, n_detector, spacing, sides)
        self._check_coverage(self.n_detector * self.detector_spacing / 2)

    def rays(self, angles: torch.Tensor, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        angles = angles.to(torch.float64)
        cos, sin = torch.cos(angles)[:, None], torch.sin(angles)[:, None]
        u = self.detector_coordinates(torch.float64, angles.device)[None, :]
        points = torch.stack([u * cos, u * sin], dim=-1)
        directions = torch.stack([-sin, cos], dim=-1).expand(-1, self.n_detector, -1)
        return points.to(dtype), directions.to(dtype)

    def _odl_geometry(self, odl_tomo, angle_partition, detector_partition):
        return odl_tomo.Parallel2dGeometry(angle_partition, detector_partition)

    def __repr__(self) -> str:
        return f"ParallelBeam2D({self._describe_common()})"


class FanBeam2D(Geometry2D):
    """2D fan-beam geometry with a flat detector (ODL's ``FanBeamGeometry``).

    Parameters
    ----------
    image_shape : (H, W)
        Image size in pixels; axis 0 is ``x``, axis 1 is ``y``.
    angles : array-like or torch.Tensor, shape (n_angles,)
        Source angles in radians, e.g. ``sparse_view_angles(n, 2 * math.pi)``.
    src_radius : float
        Distance from the source to the rotation centre; must exceed the
        radius of the circle circumscribing the image.
    det_radius : float
        Distance from the rotation centre to the detector line, ``>= 0``.
    n_detector : int, optional
        Number of detector pixels.  Default: enough to cover the fan that
        contains the whole image at the default spacing.
    detector_spacing : float, optional
        Detector pixel size on the detector, physical units.  Default: the
        smaller pixel side magnified to the detector,
        ``min(dx, dy) · (src_radius + det_radius) / src_radius``.
    extent : float or (float, float), optional
        Physical side lengths of the image; default ``(2, 2)`` (``[-1, 1]²``).

    Warns
    -----
    UserWarning
        If the fan does not cover the disc inscribed in the image.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        angles: Any,
        src_radius: float,
        det_radius: float,
        n_detector: int | None = None,
        detector_spacing: float | None = None,
        extent: float | Sequence[float] | None = None,
    ) -> None:
        shape, sides = check_shape(image_shape, "image_shape", ("H", "W")), check_extent(extent, 2)
        self.src_radius = check_positive(src_radius, "src_radius")
        self.det_radius = check_nonnegative(det_radius, "det_radius")
        corner_radius = math.hypot(*sides) / 2
        if self.src_radius <= corner_radius:
            raise ValueError(
                f"src_radius must exceed the radius {corner_radius:.4g} of the circle around the "
                f"image (extent {sides}) so that the source stays outside it, got {src_radius!r}"
            )
        magnification = (self.src_radius + self.det_radius) / self.src_radius
        if detector_spacing is None:
            detector_spacing = min(s / n for s, n in zip(sides, shape)) * magnification
        spacing = check_positive(detector_spacing, "detector_spacing")
        if n_detector is None:
            half_angle = math.asin(corner_radius / self.src_radius)
            half_width = (self.src_radius + self.det_radius) * math.tan(half_angle)
            n_detector = _default_detector_count(2 * half_width, spacing)
        super().__init__(shape, angles, n_detector, spacing, sides)
        half_width = self.n_detector * self.detector_spacing / 2
        distance = self.src_radius + self.det_radius
        self._check_coverage(self.src_radius * half_width / math.hypot(distance, half_width))

    def rays(self, angles: torch.Tensor, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
        angles = angles.to(torch.float64)
        cos, sin = torch.cos(angles)[:, None], torch.sin(angles)[:, None]
        u = self.detector_coordinates(torch.float64, angles.device)[None, :]
        source = torch.stack([self.src_radius * sin, -self.src_radius * cos], dim=-1)
        detector = torch.stack(
            [-self.det_radius * sin + u * cos, self.det_radius * cos + u * sin], dim=-1
        )
        offset = detector - source
        directions = offset / torch.linalg.vector_norm(offset, dim=-1, keepdim=True)
        points = source.expand(-1, self.n_detector, -1)
        return points.to(dtype), directions.to(dtype)

    def _odl_geometry(self, odl_tomo, angle_partition, detector_partition):
        return odl_tomo.FanBeamGeometry(
            angle_partition, detector_partition, src_radius=self.src_radius, det_radius=self.det_radius
        )

    def __repr__(self) -> str:
        return (
            f"FanBeam2D({self._describe_common()}, src_radius={self.src_radius:g}, "
            f"det_radius={self.det_radius:g})"
        )


# -- shared with .cone -------------------------------------------------------------------
def _default_detector_count(width: float, spacing: float) -> int:
    """Pixels of ``spacing`` that cover ``width`` (at least one); ``ValueError`` naming ``detector_spacing`` if too many."""
    count = width / spacing
    if not count <= MAX_DETECTOR_PIXELS:
        raise ValueError(
            f"detector_spacing {spacing:g} is too small for the {width:g} wide detector the image needs: "
            f"that takes more than {MAX_DETECTOR_PIXELS} pixels; give a larger detector_spacing or n_detector"
        )
    return max(1, math.ceil(count - 1e-9))


def check_angles(angles: Any) -> torch.Tensor:
    """Angles in radians as a contiguous float64 CPU tensor of shape ``(n,)``, ``n >= 1``.

    A scalar becomes one angle; raises ``TypeError`` for something that is
    not an array of real numbers, ``ValueError`` for an empty or
    multidimensional array and for NaN or infinite values.
    """
    if isinstance(angles, (str, bytes)):
        raise TypeError(f"angles must be an array of radians, got {angles!r}")
    try:
        values = torch.as_tensor(angles)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"angles must be an array of radians, got {type(angles).__name__} ({error})") from None
    if values.is_complex() or values.dtype == torch.bool:
        raise TypeError(f"angles must be real numbers (radians), got dtype {values.dtype}")
    values = values.detach().to("cpu", torch.float64)
    if values.dim() == 0:
        values = values.reshape(1)
    if values.dim() != 1 or values.numel() == 0:
        raise ValueError(f"angles must be a non-empty 1-D array of radians, got shape {tuple(values.shape)}")
    finite = torch.isfinite(values)
    if not bool(finite.all()):
        raise ValueError(f"angles must be finite, got {int((~finite).sum())} NaN or infinite values")
    return values.contiguous()


def odl_reco_space(min_pt: Sequence[float], shape: Sequence[int], max_pt: Sequence[float] | None = None):
    """ODL's float32 ``uniform_discr`` of ``shape`` cells over the box from ``min_pt`` to ``max_pt`` (default ``-min_pt``)."""
    import odl

    max_pt = [-v for v in min_pt] if max_pt is None else max_pt
    return odl.uniform_discr(list(min_pt), list(max_pt), list(shape), dtype="float32")


def odl_angle_partition(angles: torch.Tensor):
    """ODL's ``nonuniform_partition`` of sorted ``angles`` (cells between midpoints).

    A single angle gets the cell of width 1 centred on it, the width that
    :func:`~.filters.angle_cell_widths` gives it.
    """
    import odl

    values = angles.numpy()
    if values.size > 1 and not (values[1:] > values[:-1]).all():
        raise ValueError(
            "to_odl() needs the angles in increasing order (ODL's partitions are sorted, and its sinogram rows "
            f"follow them); got {values.tolist()}: build the geometry with sorted angles to pair it with ODL"
        )
    if values.size == 1:
        return odl.nonuniform_partition(values, min_pt=values[0] - 0.5, max_pt=values[0] + 0.5)
    return odl.nonuniform_partition(values)
