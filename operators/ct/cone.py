"""3D cone-beam CT: circular-orbit geometry, Joseph projector and FDK.

Conventions
-----------
Identical to ODL's ``odl.applications.tomo.ConeBeamGeometry`` with its default
axes and a flat detector, so that :meth:`ConeBeam3D.to_odl` describes the same
scanner:

* The volume is a tensor ``(B, C, D, H, W)`` whose three spatial axes are the
  physical axes ``(x, y, z)`` in this order, exactly the array axes of ODL's
  ``uniform_discr``: voxel ``[i, j, k]`` is centred at
  ``(x_min + (i + 1/2) dx, y_min + (j + 1/2) dy, z_min + (k + 1/2) dz)`` and the
  volume is centred at the origin (at height ``z_center`` on the rotation
  axis for a slab of a taller volume, :meth:`ConeBeam3D.slab`).  So
  ``D = N_x``, ``H = N_y``, ``W = N_z``.
* The rotation axis is ``+z``.  The angle ``θ`` rotates the scanner
  counter-clockwise about it by ``R(θ)`` (the 2D rotation in ``(x, y)``, ``z``
  fixed).  At ``θ = 0`` the source is at ``(0, -r_s, 0)``, the detector centre
  at ``(0, r_d, 0)``, and the detector axes are ``e_u = (1, 0, 0)`` and
  ``e_v = (0, 0, 1)``; at angle ``θ`` the source is at
  ``r_s (sin θ, -cos θ, 0)`` (as in the 2D fan beam of :mod:`.geometry`), the
  detector centre at ``r_d (-sin θ, cos θ, 0)`` and ``e_u = (cos θ, sin θ, 0)``,
  ``e_v = (0, 0, 1)``.
* Projections are tensors ``(B, C, n_angles, n_u, n_v)``, the array layout of
  ODL's cone-beam ray transform: ``n_u`` pixels along ``e_u`` (across the
  rotation axis) and ``n_v`` along ``e_v`` (along the rotation axis).  Pixel
  ``[a, k, m]`` is centred at ``u_k = (k + 1/2 - n_u/2) Δu``,
  ``v_m = (m + 1/2 - n_v/2) Δv`` on the detector of angle ``a``.  A detector
  *row* (fixed ``v``) is therefore ``y[..., m]``; the central row of a
  detector with odd ``n_v`` is a fan-beam sinogram ``(n_angles, n_u)`` laid out
  like those of :class:`.FanBeam2D`.
* The ray of pixel ``(u, v)`` is the line through the source and the detector
  point ``r_d (-sin θ, cos θ, 0) + u e_u + v e_v``; the transform integrates
  along the whole line, in physical units (length × volume value).

Lengths are physical (the unit of ``extent``); angles are radians.

References
----------
P. M. Joseph, "An improved algorithm for reprojecting rays through pixel
images", IEEE Trans. Med. Imaging 1(3):192-196, 1982.

L. A. Feldkamp, L. C. Davis and J. W. Kress, "Practical cone-beam algorithm",
J. Opt. Soc. Am. A 1(6):612-619, 1984.

A. C. Kak and M. Slaney, *Principles of Computerized Tomographic Imaging*,
IEEE Press, 1988, sections 3.3-3.6 (ramp filter, fan-beam weights).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from invsolve._checks import (
    check_extent,
    check_finite,
    check_finite_number,
    check_int,
    check_nonnegative,
    check_positive,
    check_positive_tuple,
    check_shape,
)

from ..base import KernelOperator
from .filters import (
    angle_cell_widths,
    check_filter_name,
    check_frequency_scaling,
    filter_response,
    largest_angle_gap,
    padded_length,
)
from .geometry import check_angles, odl_angle_partition, odl_reco_space

if TYPE_CHECKING:  # ODL is imported only where it is used (it changes process-wide SciPy settings)
    import odl

    from .odl_operator import OdlRayTransform

__all__ = ["ConeBeam3D", "ConeBeamTransform"]

# Interpolation samples (rays × samples per ray × batch) per chunk of detector
# columns; bounds the index and weight tensors of one chunk (about 40 bytes a
# sample in float32).
_SAMPLES_PER_CHUNK = 1 << 21


class ConeBeam3D:
    """Cone-beam geometry: circular source orbit about ``z``, flat detector.

    The equivalent of ODL's ``ConeBeamGeometry`` with its default axes and no
    pitch (see the module docstring for every convention).

    Parameters
    ----------
    volume_shape : (N_x, N_y, N_z)
        Volume size in voxels; the spatial tensor axes ``(D, H, W)`` are
        ``(x, y, z)``.
    angles : array-like or torch.Tensor, shape (n_angles,)
        Source angles in radians, any finite values in any order, e.g.
        ``sparse_view_angles(n, 2 * math.pi)`` for a full scan.
    src_radius : float
        Distance from the source to the rotation axis; must exceed the radius
        of the vertical cylinder around the volume, so that the source stays
        outside it at every angle.
    det_radius : float
        Distance from the rotation axis to the detector plane, ``>= 0``.
    detector_shape : (n_u, n_v), optional
        Detector pixels across (``u``) and along (``v``) the rotation axis.
        Default: enough to see the whole volume from every angle at the
        default spacing.
    detector_spacing : float or (float, float), optional
        Detector pixel size ``(Δu, Δv)`` on the detector, physical units.
        Default: voxel size magnified to the detector,
        ``(min(dx, dy), dz) · (src_radius + det_radius) / src_radius``.
    extent : float or (float, float, float), optional
        Physical side lengths ``(L_x, L_y, L_z)`` of the volume, centred at
        the origin; one number gives a cube.  Default ``(2, 2, 2)``: the
        volume spans ``[-1, 1]³``.
    z_center : float
        Height of the volume's centre on the rotation axis (physical units);
        default 0, the volume centred on the orbit's plane.  Nonzero for the
        slabs of a volume split over processes (:meth:`slab`).

    Warns
    -----
    UserWarning
        If the detector is too narrow for the rays to cover the disc inscribed
        in the volume's ``(x, y)`` cross-section (truncated projections).

    Examples
    --------
    >>> from invsolve.operators.ct import sparse_view_angles
    >>> geometry = ConeBeam3D((32, 32, 32), sparse_view_angles(90, 2 * math.pi), 4.0, 2.0)
    >>> geometry.projection_shape
    (90, 49, 50)
    """

    def __init__(
        self,
        volume_shape: Sequence[int],
        angles: Any,
        src_radius: float,
        det_radius: float,
        detector_shape: Sequence[int] | None = None,
        detector_spacing: float | Sequence[float] | None = None,
        extent: float | Sequence[float] | None = None,
        z_center: float = 0.0,
    ) -> None:
        self.volume_shape = check_shape(volume_shape, "volume_shape", ("N_x", "N_y", "N_z"))
        self.extent = check_extent(extent, 3)
        self.z_center = check_finite_number(z_center, "z_center")
        self.angles = check_angles(angles)
        self.src_radius = check_positive(src_radius, "src_radius")
        self.det_radius = check_nonnegative(det_radius, "det_radius")
        cylinder = math.hypot(self.extent[0], self.extent[1]) / 2
        if self.src_radius <= cylinder:
            raise ValueError(
                f"src_radius must exceed the radius {cylinder:.4g} of the vertical cylinder around the "
                f"volume (extent {self.extent}) so that the source stays outside the volume, "
                f"got {src_radius!r}"
            )
        dx, dy, dz = self.voxel_size
        magnification = self.distance / self.src_radius
        if detector_spacing is None:
            detector_spacing = (min(dx, dy) * magnification, dz * magnification)
        self.detector_spacing = check_positive_tuple(detector_spacing, "detector_spacing", ("du", "dv"))
        if detector_shape is None:
            # The cylinder's silhouette across the axis, and the top and bottom
            # faces seen from the closest point of the cylinder (most magnified).
            half_width = self.distance * cylinder / math.sqrt(self.src_radius**2 - cylinder**2)
            half_height = self.distance * max(abs(self.min_pt[2]), abs(self.max_pt[2])) / (self.src_radius - cylinder)
            detector_shape = (
                math.ceil(2 * half_width / self.detector_spacing[0] - 1e-9),
                math.ceil(2 * half_height / self.detector_spacing[1] - 1e-9),
            )
        self.detector_shape = check_shape(detector_shape, "detector_shape", ("n_u", "n_v"))
        self._check_coverage()

    # -- derived quantities ----------------------------------------------------------
    @property
    def n_angles(self) -> int:
        """Number of source angles."""
        return int(self.angles.numel())

    @property
    def distance(self) -> float:
        """Source-to-detector distance ``src_radius + det_radius``."""
        return self.src_radius + self.det_radius

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        """Physical voxel size ``(dx, dy, dz)``."""
        return tuple(side / n for side, n in zip(self.extent, self.volume_shape))

    @property
    def min_pt(self) -> tuple[float, float, float]:
        """Lower corner ``(x_min, y_min, z_min)`` of the volume."""
        return (-self.extent[0] / 2, -self.extent[1] / 2, self.z_center - self.extent[2] / 2)

    @property
    def max_pt(self) -> tuple[float, float, float]:
        """Upper corner ``(x_max, y_max, z_max)`` of the volume."""
        return (self.extent[0] / 2, self.extent[1] / 2, self.z_center + self.extent[2] / 2)

    def slab(self, start: int, stop: int) -> ConeBeam3D:
        """The same scanner and detector seeing only the voxel slices ``[start, stop)`` along ``z``.

        Line integrals add up along a ray, and Joseph's interpolation is
        linear in the voxel values with zeros outside the volume, so the
        projections of a volume are the sum of its slabs' projections — to
        rounding, including the rays that cross a slab boundary between two
        voxel centres (each slab contributes its side of the interpolation).
        This is what lets a cone-beam volume be split over processes
        (:class:`invsolve.slabs.SummedOverSlabs`).

        Parameters
        ----------
        start, stop : int
            Slices ``0 <= start < stop <= N_z`` of this volume.

        Returns
        -------
        ConeBeam3D
            Volume ``(N_x, N_y, stop - start)`` with this geometry's voxel
            size, centred at the slab's height; the angles, radii and the
            detector (shape and spacing) of this geometry.
        """
        total = self.volume_shape[2]
        start = check_int(start, "start", minimum=0)
        stop = check_int(stop, "stop", minimum=1)
        if not start < stop <= total:
            raise ValueError(f"a slab needs 0 <= start < stop <= {total} (the volume's N_z), got [{start}, {stop})")
        dz = self.voxel_size[2]
        return ConeBeam3D(
            (*self.volume_shape[:2], stop - start),
            self.angles,
            self.src_radius,
            self.det_radius,
            self.detector_shape,
            self.detector_spacing,
            extent=(*self.extent[:2], (stop - start) * dz),
            z_center=self.min_pt[2] + (start + stop) / 2 * dz,
        )

    @property
    def projection_shape(self) -> tuple[int, int, int]:
        """Shape ``(n_angles, n_u, n_v)`` of one set of projections."""
        return (self.n_angles, *self.detector_shape)

    @property
    def object_radius(self) -> float:
        """Radius of the disc inscribed in the volume's ``(x, y)`` cross-section."""
        return min(self.extent[:2]) / 2

    def detector_coordinates(
        self, dtype: torch.dtype = torch.float64, device: torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel centres on the detector: ``u`` of shape ``(n_u,)`` and ``v`` of shape ``(n_v,)``."""
        coordinates = []
        for count, spacing in zip(self.detector_shape, self.detector_spacing):
            index = torch.arange(count, dtype=dtype, device=device)
            coordinates.append((index + (0.5 - count / 2)) * spacing)
        return coordinates[0], coordinates[1]

    def _angles_or_default(self, angles: torch.Tensor | None) -> torch.Tensor:
        return self.angles if angles is None else torch.as_tensor(angles, dtype=torch.float64).reshape(-1)

    def source_positions(self, angles: torch.Tensor | None = None) -> torch.Tensor:
        """Source positions, shape ``(n, 3)``, for ``angles`` (default: :attr:`angles`)."""
        theta = self._angles_or_default(angles)
        radius = self.src_radius
        return torch.stack([radius * theta.sin(), -radius * theta.cos(), torch.zeros_like(theta)], dim=-1)

    def detector_centers(self, angles: torch.Tensor | None = None) -> torch.Tensor:
        """Detector centres (ODL's ``det_refpoint``), shape ``(n, 3)``."""
        theta = self._angles_or_default(angles)
        radius = self.det_radius
        return torch.stack([-radius * theta.sin(), radius * theta.cos(), torch.zeros_like(theta)], dim=-1)

    def detector_axes(self, angles: torch.Tensor | None = None) -> torch.Tensor:
        """Unit detector axes ``(e_u, e_v)`` per angle, shape ``(n, 2, 3)``."""
        theta = self._angles_or_default(angles)
        zero, one = torch.zeros_like(theta), torch.ones_like(theta)
        e_u = torch.stack([theta.cos(), theta.sin(), zero], dim=-1)
        e_v = torch.stack([zero, zero, one], dim=-1)
        return torch.stack([e_u, e_v], dim=1)

    def detector_positions(self, angles: torch.Tensor | None = None) -> torch.Tensor:
        """Centres of all detector pixels in space, shape ``(n, n_u, n_v, 3)``."""
        centers = self.detector_centers(angles)
        axes = self.detector_axes(angles)
        u, v = self.detector_coordinates()
        return (
            centers[:, None, None, :]
            + u[None, :, None, None] * axes[:, None, None, 0, :]
            + v[None, None, :, None] * axes[:, None, None, 1, :]
        )

    def rays(self, angles: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Every ray as its source point and unit direction towards the detector.

        Returns
        -------
        points, directions : torch.Tensor, each shape (n, n_u, n_v, 3), float64
            The source of each ray and the unit vector from it to the pixel.
        """
        targets = self.detector_positions(angles)
        sources = self.source_positions(angles)[:, None, None, :].expand_as(targets)
        offsets = targets - sources
        return sources, offsets / torch.linalg.vector_norm(offsets, dim=-1, keepdim=True)

    def to_odl(self):
        """The equivalent ODL objects ``(reco_space, geometry)``.

        ``reco_space`` is a float32 ``uniform_discr`` of shape ``volume_shape``
        over the volume; ``geometry`` an ``odl.applications.tomo``
        ``ConeBeamGeometry`` with this geometry's angles, detector partition
        and radii, whose projections have shape :attr:`projection_shape`.
        ODL is imported here only (importing it changes process-wide SciPy
        settings).  ODL has no CPU backend for 3D ray transforms.
        """
        import odl
        from odl.applications import tomo

        reco_space = odl_reco_space(self.min_pt, self.volume_shape, self.max_pt)
        half = [n * s / 2 for n, s in zip(self.detector_shape, self.detector_spacing)]
        detector_partition = odl.uniform_partition([-h for h in half], half, list(self.detector_shape))
        geometry = tomo.ConeBeamGeometry(
            odl_angle_partition(self.angles), detector_partition, src_radius=self.src_radius, det_radius=self.det_radius
        )
        return reco_space, geometry

    def _check_coverage(self) -> None:
        half_width = self.detector_shape[0] * self.detector_spacing[0] / 2
        covered = self.src_radius * half_width / math.hypot(self.distance, half_width)
        if covered < self.object_radius * (1 - 1e-9):
            warnings.warn(
                f"the detector ({self.detector_shape[0]} pixels of {self.detector_spacing[0]:g} across the "
                f"axis) covers only a disc of radius {covered:.4g} about the rotation axis, smaller than "
                f"the radius {self.object_radius:.4g} of the disc inscribed in the volume (extent "
                f"{self.extent}); rays miss part of the object (truncated projections). Increase "
                "detector_shape[0] or detector_spacing.",
                stacklevel=3,
            )

    def __repr__(self) -> str:
        return (
            f"ConeBeam3D(volume_shape={self.volume_shape}, extent={self.extent}, z_center={self.z_center:g}, "
            f"n_angles={self.n_angles}, "
            f"src_radius={self.src_radius:g}, det_radius={self.det_radius:g}, "
            f"detector_shape={self.detector_shape}, detector_spacing={self.detector_spacing})"
        )


class ConeBeamTransform(KernelOperator):
    """Cone-beam ray transform ``A`` by Joseph's method: volumes to projections.

    Discrete model: a ray whose direction crosses the ``x`` planes fastest
    (``|d_x|/dx >= |d_y|/dy``) visits every plane ``x = x_i``, reads the
    volume there by bilinear interpolation in ``(y, z)`` and weights the sum
    by the ray length between two planes, ``dx/|d_x|`` (Joseph 1982, in 3D);
    likewise with ``x`` and ``y`` exchanged.  The volume is zero outside its
    voxels' centres' hull plus one voxel of linear fall-off, as in 2D.

    Parameters
    ----------
    geometry : ConeBeam3D
        The scanner.
    channels : int
        Number of volume channels ``C``; each is projected independently.
    columns_per_chunk : int, optional
        Detector columns (pairs of an angle and a ``u`` pixel, all ``n_v``
        rows each) processed at once; default: as many as keep one chunk near
        two million interpolation samples for the given batch.

    Shapes
    ------
    * volume ``x``: ``(B, C, N_x, N_y, N_z)`` (ODL's array axes ``x, y, z``).
    * projections ``y``: ``(B, C, n_angles, n_u, n_v)`` (ODL's layout), line
      integrals in physical units (length × volume value).

    Raises
    ------
    ValueError
        If some ray crosses the ``z`` planes faster than both the ``x`` and
        the ``y`` planes (``|d_z|/dz > max(|d_x|/dx, |d_y|/dy)``): Joseph's
        sampling along ``z`` is not implemented.  With cubic voxels this needs
        a cone half-angle above 35° (rays along a diagonal of ``(x, y)``);
        clinical and micro-CT cone beams stay below about 20°.

    Notes
    -----
    All rays of one detector column (one angle, one ``u``) lie in a vertical
    plane through the source, so they cross each ``x`` (or ``y``) plane at the
    same ``y`` (or ``x``); only the height differs.  The forward therefore
    gathers, per column and plane, the two ``z`` lines next to the crossing
    and interpolates them laterally, then reads every ray's height from that
    profile by linear interpolation — exactly bilinear interpolation in the
    plane.  The adjoint scatters the same weights at the same indices
    (:meth:`torch.Tensor.scatter_add_`, :meth:`torch.Tensor.index_add_`), so it
    is the exact transpose (``dot_test`` ≈ 1e-16 in float64).  Both directions
    support autograd: the gradient of one is the other.  Memory is
    ``O(volume + projections + one chunk)``; the only Python loop runs over
    chunks of detector columns; the same code runs on CPU and CUDA, in the
    input's dtype.

    Examples
    --------
    >>> from invsolve.operators.ct import sparse_view_angles
    >>> geometry = ConeBeam3D((32, 32, 32), sparse_view_angles(90, 2 * math.pi), 4.0, 2.0)
    >>> A = ConeBeamTransform(geometry)
    >>> A(torch.ones(1, 1, 32, 32, 32)).shape
    torch.Size([1, 1, 90, 49, 50])
    """

    def __init__(self, geometry: ConeBeam3D, channels: int = 1, columns_per_chunk: int | None = None) -> None:
        if not isinstance(geometry, ConeBeam3D):
            raise TypeError(f"geometry must be a ConeBeam3D, got {type(geometry).__name__}")
        channels = check_int(channels, "channels")
        columns_per_chunk = check_int(columns_per_chunk, "columns_per_chunk", optional=True)
        super().__init__((channels, *geometry.volume_shape), (channels, *geometry.projection_shape))
        self.geometry = geometry
        self.columns_per_chunk = columns_per_chunk
        self.register_buffer("angles", geometry.angles.clone(), persistent=False)
        self._check_cone_angle()

    # -- KernelOperator interface -------------------------------------------------------
    def _kernel_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._project(x)

    def _kernel_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self._backproject(y)

    def describe(self) -> str:
        return f"ConeBeamTransform{self.in_shape}->{self.out_shape}"

    def extra_repr(self) -> str:
        return f"geometry={self.geometry!r}, channels={self.in_shape[0]}"

    def fbp(self, y: torch.Tensor, filter_type: str = "ram-lak", frequency_scaling: float = 1.0) -> torch.Tensor:
        """FDK reconstruction (Feldkamp, Davis & Kress 1984) for a full circular scan.

        With ``R = src_radius``, ``D = src_radius + det_radius``:

        1. cosine pre-weighting ``p · D / sqrt(D² + u² + v²)``;
        2. ramp filtering of every detector row along ``u``, on the detector
           scaled to the rotation axis (spacing ``Δu·R/D``), by the band-limited
           Ram-Lak kernel (Kak & Slaney, section 3.3) times a window, zero-padded to
           avoid wrap-around;
        3. backprojection ``f(x) = ½ Σ_θ Δθ (R / (R - s))² q_θ(u(x), v(x))``,
           where ``s = x·(sin θ, -cos θ, 0)`` is the depth of ``x`` towards the
           source, ``(u(x), v(x))`` the detector point of the ray through
           ``x`` (bilinear interpolation, zero off the detector) and ``Δθ`` the
           angular width of each view (half the gaps to its neighbours on the
           circle, :func:`~.filters.angle_cell_widths` with period ``2π``;
           ``2π/n_angles`` for equally spaced views).

        In the plane of the orbit this is fan-beam FBP; elsewhere it is an
        approximation whose cone-beam artefacts grow with the cone angle.

        Parameters
        ----------
        y : torch.Tensor, shape (B, C, n_angles, n_u, n_v)
            Projections (line integrals, physical units), finite, float32 or
            float64.
        filter_type : str
            Window applied to the ramp, one of :data:`~.filters.FBP_FILTERS`
            (``"ram-lak"``, ``"shepp-logan"``, ``"cosine"``, ``"hamming"``,
            ``"hann"``; case-insensitive, with the aliases that
            :class:`~.fbp.FilteredBackProjection` accepts).
        frequency_scaling : float in (0, 1]
            Relative cut-off: frequencies above ``frequency_scaling`` times
            the Nyquist frequency are set to zero and the window is stretched
            to end there (ODL's ``fbp_op`` convention).

        Returns
        -------
        torch.Tensor, shape (B, C, N_x, N_y, N_z)
            The reconstruction in the units of the volume (line integral per
            length); differentiable in ``y``.

        Warns
        -----
        UserWarning
            If the angles leave a gap wider than twice the mean spacing of a
            full scan (short or limited scans need other weights).
        """
        self._check_measurement(y)
        check_finite(y, "y")
        name = check_filter_name(filter_type, "filter_type")
        scaling = check_frequency_scaling(frequency_scaling)
        geometry = self.geometry
        full = 2 * math.pi
        largest = largest_angle_gap(self.angles, full)
        if largest > 2 * full / geometry.n_angles * (1 + 1e-9):
            warnings.warn(
                f"FDK assumes a full 2π circular scan with roughly even spacing; the angles leave a gap "
                f"of {largest:.4g} rad (mean {full / geometry.n_angles:.4g}), so the reconstruction is biased. "
                "Short and limited scans need other weights.",
                stacklevel=2,
            )
        weights = angle_cell_widths(self.angles, period=full)
        radius, distance = geometry.src_radius, geometry.distance
        u, v = geometry.detector_coordinates(torch.float64, y.device)
        cosine = distance / torch.sqrt(distance**2 + u[:, None] ** 2 + v[None, :] ** 2)
        weighted = y * cosine.to(y.dtype)
        filtered = _filter_rows(weighted, geometry.detector_spacing[0] * radius / distance, name, scaling)
        return _fdk_backproject(filtered, geometry, self.angles.to(y.device), weights.to(y.device))

    # -- geometry of the columns ---------------------------------------------------------
    def _check_cone_angle(self) -> None:
        geometry = self.geometry
        dx, dy, dz = geometry.voxel_size
        horizontal = self._horizontal(geometry.angles[:, None], torch.arange(geometry.detector_shape[0])[None, :])
        rate = torch.maximum(horizontal[0].abs() / dx, horizontal[1].abs() / dy)
        v_max = (geometry.detector_shape[1] - 1) / 2 * geometry.detector_spacing[1]
        if v_max / dz > float(rate.min()) * (1 + 1e-12):
            raise ValueError(
                f"the cone is too wide for {geometry!r}: the outer detector rows (|v| = {v_max:.4g}) see "
                "rays that cross the z planes faster than the x and y planes, and Joseph's sampling "
                "along z is not implemented; use fewer detector rows, a larger src_radius or "
                "thicker voxels along z"
            )

    def _horizontal(self, angles: torch.Tensor, u_index: torch.Tensor):
        """Horizontal source-to-column vectors and source positions, float64.

        ``angles`` and ``u_index`` (detector pixel indices along ``u``) are
        broadcast against each other; returns ``(h_x, h_y, s_x, s_y)`` of the
        broadcast shape.
        """
        geometry = self.geometry
        n_u = geometry.detector_shape[0]
        theta = angles.to(torch.float64)
        sin, cos = theta.sin(), theta.cos()
        u = (u_index.to(torch.float64) + (0.5 - n_u / 2)) * geometry.detector_spacing[0]
        source_x, source_y = geometry.src_radius * sin, -geometry.src_radius * cos
        column_x = -geometry.det_radius * sin + u * cos
        column_y = geometry.det_radius * cos + u * sin
        return column_x - source_x, column_y - source_y, source_x, source_y

    def _chunks(self, batch: int):
        n_columns = self.geometry.n_angles * self.geometry.detector_shape[0]
        if self.columns_per_chunk is None:
            nx, ny, nz = self.geometry.volume_shape
            per_column = max(nx, ny) * (self.geometry.detector_shape[1] + nz + 3) * max(batch, 1)
            step = max(1, _SAMPLES_PER_CHUNK // per_column)
        else:
            step = self.columns_per_chunk
        for start in range(0, n_columns, step):
            yield start, min(start + step, n_columns)

    def _plan(self, start: int, stop: int, dtype: torch.dtype, device: torch.device):
        """Indices and weights of the detector columns ``start:stop`` (flat over angle, u).

        Returns
        -------
        line : torch.Tensor, int64, shape (K·M,)
            Index of the lower lateral neighbour's ``z`` line in the padded
            volume, for each column and plane (``M = max(N_x, N_y)`` planes).
        upper_line : torch.Tensor, int64, shape (K·M,)
            Index of the upper lateral neighbour's line.
        lateral : torch.Tensor, shape (K·M, 1)
            Weight of the upper lateral neighbour.
        height : torch.Tensor, int64, shape (K·M, n_v)
            Index of the lower ``z`` neighbour of each ray's sample in the
            padded ``z`` line (the upper one is next to it).
        upper : torch.Tensor, shape (K·M, n_v)
            Weight of the upper ``z`` neighbour.
        step : torch.Tensor, shape (K, n_v)
            Ray length between two sampled planes, physical units.
        """
        geometry = self.geometry
        nx, ny, nz = geometry.volume_shape
        dx, dy, dz = geometry.voxel_size
        x0, y0, z0 = (low + d / 2 for low, d in zip(geometry.min_pt, geometry.voxel_size))
        n_u, n_v = geometry.detector_shape
        planes = max(nx, ny)
        side = planes + 3
        columns = torch.arange(start, stop, device=device)
        angles = self.angles.to(device)[columns // n_u]
        h_x, h_y, s_x, s_y = self._horizontal(angles[:, None], (columns % n_u)[:, None])
        along_x = h_x.abs() * dy >= h_y.abs() * dx  # columns whose rays visit every x plane
        h_main = torch.where(along_x, h_x, h_y)
        spacing = torch.where(along_x, *_scalars((dx, dy), torch.float64, device))
        sample = torch.arange(planes, device=device, dtype=torch.float64)
        # Fraction of the way from the source to the detector column at each plane.
        fraction = (torch.where(along_x, x0 - s_x, y0 - s_y) + spacing * sample) / h_main
        crossing = torch.where(
            along_x, (s_y - y0 + fraction * h_y) / dy, (s_x - x0 + fraction * h_x) / dx
        )
        other_size = torch.where(along_x, *_scalars((ny, nx), torch.float64, device))
        crossing = torch.minimum(crossing.clamp_min(-1.0), other_size)
        lower = torch.floor(crossing)
        side_stride, unit_stride = _scalars((side, 1), torch.int64, device)
        main_stride = torch.where(along_x, side_stride, unit_stride)
        lateral_stride = torch.where(along_x, unit_stride, side_stride)
        sample_index = torch.arange(planes, device=device, dtype=torch.int64)
        line = (side + 1) + sample_index * main_stride + lower.to(torch.int64) * lateral_stride
        # Heights of the rays at each plane in the padded z line (voxel k at
        # k + 1), clamped into [0, N_z + 1] so that truncation is the floor.
        _, v = geometry.detector_coordinates(dtype, device)
        height = torch.addcmul(
            torch.full((), 1 - z0 / dz, dtype=dtype, device=device),
            fraction.to(dtype)[:, :, None],
            (v / dz)[None, None, :],
        )
        height = height.clamp_(0.0, float(nz + 1)).reshape(-1, n_v)
        length = torch.sqrt(h_x**2 + h_y**2 + v.to(torch.float64)[None, :] ** 2)
        step = (spacing / h_main.abs()) * length
        return (
            line.reshape(-1),
            (line + lateral_stride).reshape(-1),
            (crossing - lower).to(dtype).reshape(-1, 1),
            height.to(torch.int64),
            torch.frac(height),
            step.to(dtype),
        )

    def _padded_lines(self, batch: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        nz = self.geometry.volume_shape[2]
        side = max(self.geometry.volume_shape[:2]) + 3
        return torch.zeros(batch, side * side, nz + 3, dtype=dtype, device=device)

    # -- kernels -----------------------------------------------------------------------
    def _project(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, nx, ny, nz = x.shape
        n_batch = batch * channels
        side = max(nx, ny) + 3
        lines = self._padded_lines(n_batch, x.dtype, x.device)
        lines.view(n_batch, side, side, nz + 3)[:, 1 : nx + 1, 1 : ny + 1, 1 : nz + 1] = x.reshape(
            n_batch, nx, ny, nz
        )
        n_angles, n_u, n_v = self.geometry.projection_shape
        out = x.new_empty(n_batch, n_angles * n_u, n_v)
        planes = max(nx, ny)
        for start, stop in self._chunks(n_batch):
            line, upper_line, lateral, height, upper, step = self._plan(start, stop, x.dtype, x.device)
            profile = torch.lerp(lines.index_select(1, line), lines.index_select(1, upper_line), lateral)
            height = height.expand(n_batch, -1, -1)
            # The upper z neighbours are read through the profile shifted by one.
            values = torch.lerp(profile.gather(2, height), profile[..., 1:].gather(2, height), upper)
            out[:, start:stop] = values.view(n_batch, stop - start, planes, n_v).sum(2) * step
        return out.reshape(batch, channels, n_angles, n_u, n_v)

    def _backproject(self, y: torch.Tensor) -> torch.Tensor:
        batch, channels, n_angles, n_u, n_v = y.shape
        n_batch = batch * channels
        nx, ny, nz = self.geometry.volume_shape
        side = max(nx, ny) + 3
        planes = max(nx, ny)
        lines = self._padded_lines(n_batch, y.dtype, y.device)
        projections = y.reshape(n_batch, n_angles * n_u, n_v)
        for start, stop in self._chunks(n_batch):
            line, upper_line, lateral, height, upper, step = self._plan(start, stop, y.dtype, y.device)
            count = stop - start
            weighted = (projections[:, start:stop] * step)[:, :, None, :]
            high = weighted * upper.view(count, planes, n_v)
            low = (weighted - high).view(n_batch, count * planes, n_v)
            height = height.expand(n_batch, -1, -1)
            profile = y.new_zeros(n_batch, count * planes, nz + 3)
            profile.scatter_add_(2, height, low)
            profile[..., 1:].scatter_add_(2, height, high.view(n_batch, count * planes, n_v))
            high = profile * lateral
            lines.index_add_(1, line, profile - high)
            lines.index_add_(1, upper_line, high)
        volume = lines.view(n_batch, side, side, nz + 3)[:, 1 : nx + 1, 1 : ny + 1, 1 : nz + 1]
        return volume.reshape(batch, channels, nx, ny, nz)

    def as_odl_operator(self, proj_space: odl.DiscretizedSpace | None = None) -> OdlRayTransform:
        """This transform as a linear ODL operator whose adjoint is exact in ODL's spaces.

        ODL weights its inner products by cell size (voxel volume; angle cell
        × detector pixel area), invsolve's :meth:`adjoint` is the plain
        transpose; the operator's ``adjoint`` rescales it so that
        ``⟨Ax, y⟩_Y = ⟨x, A*y⟩_X`` in ODL's spaces (:mod:`.odl_operator`).
        Imports ODL.  The forward runs on this transform's device, so it gives
        ODL a 3D ray transform without ASTRA's CUDA backend.

        Parameters
        ----------
        proj_space : odl.DiscretizedSpace, optional
            The range; default: the one ODL's own ray transform builds.

        Returns
        -------
        OdlRayTransform
            Domain ``geometry.to_odl()[0]`` (volumes ``(N_x, N_y, N_z)``),
            range projections ``(n_angles, n_u, n_v)``; needs one channel.
        """
        from .odl_operator import OdlRayTransform

        return OdlRayTransform(self, proj_space)


# -- FDK ---------------------------------------------------------------------------------
def _filter_rows(projections: torch.Tensor, spacing: float, name: str, scaling: float) -> torch.Tensor:
    """Ramp-filter ``projections`` (…, n_u, n_v) along ``u`` with sample spacing ``spacing``.

    The filter is :func:`~.filters.filter_response` (the band-limited ramp
    of Kak & Slaney times the window) divided by ``spacing``; the rows are
    zero-padded to :func:`~.filters.padded_length`, so the circular
    convolution is a linear one.  The result approximates
    ``∫ p(u') h(u - u') du'``.
    """
    n_u = projections.shape[-2]
    length = padded_length(n_u)
    response = (filter_response(name, scaling, length) / spacing).to(projections.device, projections.dtype)
    spectrum = torch.fft.rfft(projections, n=length, dim=-2)
    return torch.fft.irfft(spectrum * response[:, None], n=length, dim=-2)[..., :n_u, :]


def _fdk_backproject(
    filtered: torch.Tensor, geometry: ConeBeam3D, angles: torch.Tensor, widths: torch.Tensor
) -> torch.Tensor:
    """Distance-weighted backprojection ``½ Σ Δθ (R/(R - s))² q(u(x), v(x))``.

    ``filtered`` is ``(B, C, n_angles, n_u, n_v)``; returns ``(B, C, N_x, N_y, N_z)``.
    """
    batch, channels, n_angles, n_u, n_v = filtered.shape
    n_batch = batch * channels
    nx, ny, nz = geometry.volume_shape
    dtype, device = filtered.dtype, filtered.device
    radius, distance = geometry.src_radius, geometry.distance
    du, dv = geometry.detector_spacing
    # Zero-padded rows: one zero before, two after, along u and v.
    rows = F.pad(filtered.reshape(n_batch, n_angles, n_u, n_v), (1, 2, 1, 2))
    rows = rows.reshape(n_batch, n_angles * (n_u + 3), n_v + 3)
    centres = [
        low + size * (torch.arange(n, dtype=torch.float64, device=device) + 0.5)
        for low, size, n in zip(geometry.min_pt, geometry.voxel_size, geometry.volume_shape)
    ]
    x, y = centres[0][:, None].expand(nx, ny).reshape(-1), centres[1][None, :].expand(nx, ny).reshape(-1)
    z = centres[2].to(dtype)
    volume = filtered.new_zeros(n_batch, nx * ny, nz)
    per_view = nx * ny * (n_v + nz + 3) * max(n_batch, 1)
    step = max(1, _SAMPLES_PER_CHUNK // per_view)
    for start in range(0, n_angles, step):
        theta = angles[start : start + step, None].to(torch.float64)
        sin, cos = theta.sin(), theta.cos()
        # Distance from the source to the voxel column along the central ray.
        source_distance = radius - (x * sin - y * cos)
        magnification = distance / source_distance
        across = (x * cos + y * sin) * magnification / du + (n_u / 2 - 0.5)
        across = across.clamp(-1.0, float(n_u))
        lower = torch.floor(across)
        view = torch.arange(start, start + len(theta), device=device)[:, None]
        line = (view * (n_u + 3) + lower.to(torch.int64) + 1).reshape(-1)
        profile = torch.lerp(
            rows.index_select(1, line), rows.index_select(1, line + 1), (across - lower).to(dtype).reshape(1, -1, 1)
        )
        # Position on the padded v axis, clamped into [0, n_v + 1] so that truncation is the floor.
        height = torch.addcmul(
            torch.full((), n_v / 2 + 0.5, dtype=dtype, device=device),
            (magnification / dv).to(dtype).reshape(-1, 1),
            z[None, :],
        ).clamp_(0.0, float(n_v + 1))
        index = height.to(torch.int64).expand(n_batch, -1, -1)
        values = torch.lerp(profile.gather(2, index), profile[..., 1:].gather(2, index), torch.frac(height))
        weight = (widths[start : start + step, None] / 2) * (radius / source_distance) ** 2
        values = values.view(n_batch, len(theta), nx * ny, nz) * weight.to(dtype)[None, :, :, None]
        volume += values.sum(1)
    return volume.reshape(batch, channels, nx, ny, nz)


def _scalars(values: Sequence[float], dtype: torch.dtype, device: torch.device) -> list[torch.Tensor]:
    """Zero-dimensional tensors of ``values`` (for :func:`torch.where` in a set dtype)."""
    return [torch.tensor(value, dtype=dtype, device=device) for value in values]
