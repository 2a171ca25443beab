"""The forward model of a measurement file, at the prior's image size: ``invsolve reconstruct``'s set-up.

:func:`prepare_ct` and :func:`prepare_mri` turn a measurement
(:func:`~invsolve.measurement_files.read_array`) and a prior into what
:func:`invsolve.reconstruct` needs (:class:`Prepared`): the operator at the
prior's image size, the measurement checked against the operator's
``out_shape``, the noise level, and how to turn the result into the image
written (units, magnitude, scaling).  The command that writes the outputs is
:mod:`invsolve.command_reconstruct`, whose docstring states the array
conventions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invsolve.measurement_files import ArrayFile, drop_leading_ones, read_array, read_npy, select_plane

__all__ = ["Prepared", "prepare_ct", "prepare_mri"]

#: millimetres per length unit of attenuation priors (unit "1/mm", "1/cm", "1/m")
_MM_PER_LENGTH = {"mm": 1.0, "cm": 10.0, "m": 1000.0}
_MASK_SPEC = re.compile(r"(random|equispaced|poisson):([0-9.]+):([0-9.]+)")


@dataclass
class Prepared:
    """A measurement ready for :func:`invsolve.reconstruct`, and how to write its result.

    Attributes
    ----------
    y : torch.Tensor
        ``(1, *operator.out_shape)``.
    operator : LinearOperator
        Takes the prior's images.
    noise_std : float
        In ``y``'s units.
    finish : callable
        ``Reconstruction -> (mean, std or None)``, ``(H, W)`` images (``(S, H, W)``
        volumes for a slice-augmented sampler) in :attr:`unit`.
    unit : str
        Unit of the written images.
    spacing : tuple of float or None
        Millimetres per pixel (voxel) of the written images along each axis, where known.
    details : dict
        What was chosen or estimated, for the summary.
    """

    y: torch.Tensor
    operator: Any
    noise_std: float
    finish: Callable[[Any], tuple[torch.Tensor, torch.Tensor | None]]
    unit: str
    spacing: tuple[float, ...] | None
    details: dict[str, Any] = field(default_factory=dict)


def _image_size(prior: Any, name: str, channels: tuple[int, ...], operator: str) -> tuple[int, int]:
    shape = tuple(prior.image_shape)
    if len(shape) != 3 or shape[0] not in channels:
        kinds = " or ".join(f"({c}, H, W)" for c in channels)
        raise ValueError(
            f"--operator {operator} needs a prior of 2-D images shaped {kinds}; prior {name} has image shape {shape}"
        )
    return shape[1], shape[2]


def _length_unit(unit: str) -> str | None:
    """``"mm"`` for ``"1/mm"`` (also cm, m); ``None`` for a unit that is not an inverse length."""
    match = re.fullmatch(r"\s*1\s*/\s*(mm|cm|m)\s*", unit or "")
    return match.group(1) if match else None


def _angles_from_file(path: str) -> torch.Tensor:
    """Projection angles in degrees from a text file (whitespace or commas) or a 1-D ``.npy``, in radians."""
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"--angles-file {source} does not exist")
    try:
        if source.name.lower().endswith(".npy"):
            values = read_npy(source, "--angles-file")
        else:
            values = np.loadtxt(source, delimiter=None if "," not in source.read_text() else ",", ndmin=1)
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise ValueError(f"--angles-file {source}: cannot read angles in degrees ({error})") from None
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0 or not np.isfinite(values).all():
        raise ValueError(f"--angles-file {source} must hold finite angles in degrees, found {values.size} values")
    return torch.from_numpy(np.deg2rad(values))


def prepare_ct(
    measurement: ArrayFile,
    prior: Any,
    prior_name: str,
    *,
    views: int | None = None,
    angles_file: str | None = None,
    angle_range: float | None = None,
    pixel_mm: float | None = None,
    noise_std: float | None = None,
    incident_flux: float | None = None,
    hu: bool = False,
    slice_index: int | None = None,
    volume: bool = False,
) -> Prepared:
    """Parallel-beam CT at the prior's image size; with ``volume``, of every slice of a volume.

    The image is the prior's ``(H, W)`` grid of ``pixel_mm`` pixels (default:
    the spacing the file states for its detector axis, else 1 mm), centred on
    the rotation axis; the detector has the default of
    :class:`~invsolve.operators.ct.ParallelBeam2D`, one pixel of the image's
    size per pixel across the image diagonal, ``ceil(√(H² + W²))`` pixels.
    The views are ``views`` angles spread evenly over ``[0, angle_range)``
    degrees (180 by default; less is limited-angle CT) or those of
    ``angles_file``.  The sinogram must be ``(views, detector)`` post-log line
    integrals (dimensionless).  With ``volume`` (a slice-augmented sampler such
    as ``dds-3d``) it is ``(slices, views, detector)``, every slice scanned alike
    (:class:`~invsolve.operators.SliceStack`), and the result a ``(slices, H, W)``
    volume whose slice spacing is taken equal to the pixel spacing.

    Noise: ``noise_std`` (post-log standard deviation), or from
    ``incident_flux`` the root-mean-square of
    :meth:`PoissonNoise(incident_flux).variance(y) <invsolve.operators.PoissonNoise.variance>`.

    The result is in the prior's unit (1/mm for ``ct-ellipses``), or in HU
    with ``hu`` (the posterior std scaled by ``1000/μ_water``).
    """
    from invsolve.operators import PoissonNoise, SliceStack
    from invsolve.operators.ct import (
        MU_WATER_PER_MM,
        ParallelBeam2D,
        RayTransform,
        attenuation_to_hounsfield,
        uniform_angles,
    )

    height, width = _image_size(prior, prior_name, (1,), "ct-parallel")
    unit = prior.normalization.unit
    length = _length_unit(unit)
    if hu and length is None:
        raise ValueError(f"--hu converts attenuation (1/mm, 1/cm or 1/m) to HU, but prior {prior_name}'s unit is {unit!r}")
    if (views is None) == (angles_file is None):
        raise ValueError("--operator ct-parallel needs the projection angles: give --views N or --angles-file FILE, not both")
    if angles_file is not None:
        if angle_range is not None:
            raise ValueError("--angle-range applies with --views, not with --angles-file (whose angles are explicit)")
        angles = _angles_from_file(angles_file)
        described = f"{angles.numel()} views from {angles_file}"
    else:
        if isinstance(views, bool) or not isinstance(views, int) or views < 1:
            raise ValueError(f"--views must be a positive integer, got {views!r}")
        degrees = 180.0 if angle_range is None else float(angle_range)
        if not 0 < degrees <= 360:
            raise ValueError(f"--angle-range must be in (0, 360] degrees, got {angle_range!r}")
        angles = uniform_angles(views, 0.0, math.radians(degrees))
        described = f"{views} views over {degrees:g}°"
    if pixel_mm is not None and not (math.isfinite(pixel_mm) and pixel_mm > 0):
        raise ValueError(f"--pixel-mm must be a positive number, got {pixel_mm!r}")
    spacing = float(pixel_mm) if pixel_mm is not None else (measurement.spacing[1] if measurement.spacing else 1.0)
    spacing_source = "--pixel-mm" if pixel_mm is not None else ("the input file" if measurement.spacing else "default")
    mm_per_length = _MM_PER_LENGTH[length] if length is not None else 1.0
    extent = (height * spacing / mm_per_length, width * spacing / mm_per_length)
    operator = RayTransform(ParallelBeam2D((height, width), angles, extent=extent))

    if measurement.data.is_complex():
        raise ValueError(f"{measurement.source}: a CT sinogram must be real, found complex data")
    if volume:
        data = _whole_measurement(measurement, slice_index, 3)
        if data.dim() != 3:
            raise ValueError(
                f"{measurement.source} holds an array of shape {tuple(data.shape)}; a slice-augmented sampler needs "
                "the sinograms of a volume, (slices, views, detector)"
            )
        operator = SliceStack(operator, n_slices=data.shape[0])
        sinogram, expected = data, (data.shape[0], *operator.out_shape[2:])
    else:
        sinogram = select_plane(measurement.data, 2, measurement.source, slice_index, True, "(views, detector)")
        expected = tuple(operator.out_shape[1:])
    if tuple(sinogram.shape) != expected:
        plane = expected[-2:]
        transposed = " (transposed? rows must be views)" if tuple(sinogram.shape[-2:]) == plane[::-1] else ""
        layout = "(slices, views, detector)" if volume else "(views, detector)"
        raise ValueError(
            f"{measurement.source} holds a sinogram of shape {tuple(sinogram.shape)}, but --operator ct-parallel needs "
            f"{layout} = {expected}: {described}, and {plane[1]} detector pixels = ceil(√({height}² + "
            f"{width}²)) for the {height}×{width} image of prior {prior_name}{transposed}"
        )
    y = sinogram.to(torch.float32)[None, None]
    expected = expected[-2:]  # (views, detector) for the summary

    if noise_std is not None and incident_flux is not None:
        raise ValueError("give the CT noise level once: --noise-std or --incident-flux, not both")
    if noise_std is not None:
        if not (math.isfinite(noise_std) and noise_std >= 0):
            raise ValueError(f"--noise-std must be a number >= 0, got {noise_std!r}")
        sigma, noise_source = float(noise_std), "--noise-std"
    elif incident_flux is not None:
        variance = PoissonNoise(incident_flux).variance(y.double())
        sigma = float(variance.mean().sqrt())
        if not math.isfinite(sigma):
            raise ValueError(
                f"--incident-flux {incident_flux:g} expects no photons behind the largest line integral "
                f"({float(y.max()):.3g}); give --noise-std instead"
            )
        noise_source = f"PoissonNoise({incident_flux:g}).variance(y), root mean square"
    else:
        raise ValueError(
            "--operator ct-parallel needs the noise level: --noise-std SIGMA (post-log standard deviation) or "
            "--incident-flux I0 (photons per detector pixel and view without an object)"
        )

    mu_water = MU_WATER_PER_MM * mm_per_length

    def finish(result: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        mean = result.image[0, 0].detach().to(torch.float64)
        std = None if result.std is None else result.std[0, 0].detach().to(torch.float64)
        if hu:
            mean = attenuation_to_hounsfield(mean, mu_water)
            std = None if std is None else std * (1000.0 / mu_water)
        return mean, std

    details = {
        "angles": described,
        "detector_pixels": expected[1],
        "pixel_mm": spacing,
        "pixel_mm_from": spacing_source,
        "noise_std": sigma,
        "noise_std_from": noise_source,
    }
    pixel_spacing = (spacing, spacing, spacing) if volume else (spacing, spacing)
    return Prepared(y, operator, sigma, finish, "HU" if hu else unit, pixel_spacing, details)


def _mask_option(value: str, shape: tuple[int, ...], seed: int) -> tuple[torch.Tensor, str]:
    """``--mask``: a mask file, or ``random:R:C`` / ``equispaced:R:C`` (2D: acceleration R, centre fraction C)
    or ``poisson:R:C`` (3D k-space ``shape = (D, H, W)``: a Poisson-disc phase-encode plane)."""
    from invsolve.operators.mri import equispaced_fraction_mask, poisson_disc_mask, random_mask

    match = _MASK_SPEC.fullmatch(value.strip())
    if match:
        kind, acceleration, centre = match.group(1), float(match.group(2)), float(match.group(3))
        if (kind == "poisson") != (len(shape) == 3):
            wanted = "poisson:R:C (a phase-encode plane)" if len(shape) == 3 else "random:R:C or equispaced:R:C (columns)"
            raise ValueError(f"--mask {value} does not fit {len(shape)}D k-space: use {wanted}, or a mask file")
        if kind == "poisson":
            plane = poisson_disc_mask(shape[1:], acceleration, center_fraction=centre, seed=seed)
            return plane, f"Poisson disc on the phase-encode plane, {acceleration:g}x, centre {centre:g}"
        function = random_mask if kind == "random" else equispaced_fraction_mask
        return function(shape[1], centre, acceleration, seed=seed), f"{kind} columns, {acceleration:g}x, centre {centre:g}"
    mask = read_array(value, "--mask", allow_fastmri=False).data
    if mask.is_complex():
        raise ValueError(f"--mask {value} must hold 0/1 values, found complex data")
    while mask.dim() > 1 and mask.shape[0] == 1:
        mask = mask[0]
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"--mask {value} must hold 0/1 (or bool) values only")
    return mask.to(torch.bool), f"from {value}"


def _whole_measurement(measurement: ArrayFile, slice_index: int | None, ndim: int) -> torch.Tensor:
    """All of a measurement for a slice-augmented sampler (``--slice`` refused), down to ``ndim`` axes."""
    if slice_index is not None:
        raise ValueError(
            f"--slice picks one slice for a 2D sampler; a slice-augmented sampler reconstructs all of {measurement.source}"
        )
    return drop_leading_ones(measurement.data, ndim)


def _kspace_volume(measurement: ArrayFile, slice_index: int | None, resize: bool) -> tuple[torch.Tensor, tuple[int, ...]]:
    """The ``(coils, D, H, W)`` complex64 k-space of a 3D acquisition and its spatial shape, or one clear error."""
    source = measurement.source
    data = _whole_measurement(measurement, slice_index, 4)
    if resize:
        raise ValueError(
            "--resize crops 2D k-space; for a volume, give k-space whose slices along the sampler's axis are the "
            "prior's image size"
        )
    if data.dim() == 3:
        data = data[None]
    if data.dim() != 4:
        raise ValueError(
            f"{source} holds an array of shape {tuple(measurement.data.shape)}; a slice-augmented sampler needs the "
            "k-space of a 3D acquisition, (coils, D, H, W) or (D, H, W) for one coil"
        )
    return data.to(torch.complex64), tuple(data.shape[1:])


def prepare_mri(
    measurement: ArrayFile,
    prior: Any,
    prior_name: str,
    *,
    mask: str | None = None,
    resize: bool = False,
    noise_std: float | None = None,
    seed: int = 0,
    slice_index: int | None = None,
    slice_axis: int | None = None,
) -> Prepared:
    """Cartesian multi-coil MRI at the prior's image size; with ``slice_axis``, a 3D acquisition.

    The measurement is complex k-space ``(coils, H, W)`` (``(H, W)`` is one
    coil; ``(slices, coils, H, W)`` needs ``slice_index``), ``H`` the read-out
    and ``W`` the phase-encode axis, fastMRI's centred layout.  The sampling
    mask is ``mask`` (a file with ``(W,)`` or ``(H, W)`` 0/1 values, or
    ``random:R:C`` / ``equispaced:R:C`` to undersample fully sampled data
    with fastMRI's masks), else the file's ``mask``, else the columns that
    hold non-zero k-space; k-space outside it is set to zero.

    The noise level (per real component) is ``noise_std``, else estimated
    from the k-space corners (:func:`invsolve.mri_prior.estimate_kspace_noise`).
    If the k-space is larger than the prior's images, ``resize`` crops its
    centre to the prior's size: a lower-resolution image of the same field
    of view; without it that is an error.  Coil maps come from ESPIRiT
    (:func:`invsolve.mri_prior.calibrated_coil_maps`).  The data are scaled so
    that the 99.9th percentile of the CG-SENSE magnitude sits at the top of the
    prior's window; a one-channel (magnitude) prior sees the image through
    ``RealAsComplex`` with the phase of the calibration lines, a two-channel
    prior through ``ComplexAsChannels``.  The written image is the magnitude
    of the mean, in the k-space's units; the std that of the sample magnitudes.

    With ``slice_axis`` (the ``axis`` of a slice-augmented sampler such as
    ``dds-3d``, along which the prior sees the volume's slices) the
    measurement is the k-space of a 3D Cartesian acquisition, ``(coils, D, H,
    W)`` (``(D, H, W)`` is one coil), Fourier-encoded along all three axes: the
    read-out ``D`` fully sampled, the phase-encode plane ``(H, W)``
    undersampled.  The mask is ``mask`` (a file with ``(H, W)`` or ``(D, H, W)``
    0/1 values, or ``poisson:R:C`` to undersample fully sampled data with a
    variable-density Poisson-disc mask, :func:`~invsolve.operators.mri.poisson_disc_mask`),
    else the file's ``mask``, else the non-zero k-space.  Coil maps are the
    low-resolution maps of the calibration box
    (:func:`~invsolve.operators.mri.estimate_coil_maps`; ESPIRiT here is 2D);
    the volume must already be the prior's slice size along the sampler's
    ``axis`` (no ``resize``).  fastMRI files hold 2D multi-slice k-space (each
    slice encoded on its own) and are refused: they are not 3D acquisitions.
    """
    from invsolve.mri_prior import (
        calibrated_coil_maps,
        calibration_lines,
        estimate_kspace_noise,
        prior_view,
        prior_window,
    )
    from invsolve.operators.mri import CartesianMRI, estimate_coil_maps

    size = _image_size(prior, prior_name, (1, 2), "mri")
    data = measurement.data
    if not data.is_complex():
        raise ValueError(f"{measurement.source}: --operator mri needs complex k-space, found real data ({data.dtype})")
    volume = slice_axis is not None
    if volume:
        kspace, full = _kspace_volume(measurement, slice_index, resize)
        slices = tuple(n for axis, n in enumerate(full) if axis != slice_axis)
        if slices != size:
            raise ValueError(
                f"the k-space volume {'×'.join(map(str, full))} has slices of {slices[0]}×{slices[1]} along axis "
                f"{slice_axis}, but prior {prior_name} reconstructs {size[0]}×{size[1]} images; set the sampler's axis "
                "(--set axis=N) to the axis whose slices the prior knows, or give k-space of the prior's size"
            )
        size = full
    else:
        if data.dim() == 2:
            data = data[None]
        kspace = select_plane(data, 3, measurement.source, None if measurement.fastmri else slice_index,
                        not measurement.fastmri, "(coils, H, W) k-space")
        kspace = kspace.to(torch.complex64)
        full = tuple(kspace.shape[-2:])

    if mask is not None:
        sampling, mask_source = _mask_option(mask, full, seed)
    elif measurement.mask is not None:
        sampling, mask_source = measurement.mask.to(torch.bool), "the file's mask"
    elif volume:
        sampling, mask_source = (kspace != 0).any(dim=0), "the non-zero k-space"
        if bool((sampling == sampling[:1]).all()):  # the same plane at every read-out position
            sampling, mask_source = sampling[0], "the non-zero k-space (phase-encode plane)"
    else:
        sampling, mask_source = (kspace != 0).any(dim=0).any(dim=0), "the non-zero k-space columns"
    allowed = (full[1:], full) if volume else ((full[1],), full)
    if tuple(sampling.shape) not in allowed:
        layouts = " or ".join(str(shape) for shape in allowed)
        raise ValueError(
            f"the sampling mask ({mask_source}) has shape {tuple(sampling.shape)}, but the k-space "
            f"{'×'.join(map(str, full))} needs {layouts}"
        )
    if not bool(sampling.any()):
        raise ValueError(f"the sampling mask ({mask_source}) samples nothing")
    try:
        calibration_lines(sampling)
    except ValueError:
        raise ValueError(
            f"the sampling mask ({mask_source}) does not sample the k-space centre; coil maps and the image phase "
            "need fully sampled calibration lines through it"
        ) from None
    kspace = kspace * sampling

    if noise_std is not None:
        if not (math.isfinite(noise_std) and noise_std >= 0):
            raise ValueError(f"--noise-std must be a number >= 0, got {noise_std!r}")
        sigma, noise_source = float(noise_std), "--noise-std"
    else:
        sigma = estimate_kspace_noise(kspace, sampling)
        noise_source = "k-space corners (median absolute deviation)"

    spacing = measurement.spacing
    if spacing is not None and len(spacing) != len(full):
        spacing = None
    if full != size:
        if not resize:
            raise ValueError(
                f"the k-space is {full[0]}×{full[1]} but prior {prior_name} reconstructs {size[0]}×{size[1]} images; "
                f"pass --resize to crop the central {size[0]}×{size[1]} k-space (a lower-resolution image of the same "
                "field of view), or use a prior trained at the data's size"
            )
        if full[0] < size[0] or full[1] < size[1]:
            raise ValueError(
                f"--resize crops k-space, but the k-space {full[0]}×{full[1]} is smaller than prior {prior_name}'s "
                f"{size[0]}×{size[1]} images"
            )
        top, left = full[0] // 2 - size[0] // 2, full[1] // 2 - size[1] // 2
        kspace = kspace[:, top : top + size[0], left : left + size[1]]
        columns = slice(left, left + size[1])
        sampling = sampling[columns] if sampling.dim() == 1 else sampling[top : top + size[0], columns]
        if spacing is not None:
            spacing = (spacing[0] * full[0] / size[0], spacing[1] * full[1] / size[1])

    coils = kspace.shape[0]
    if coils == 1:
        maps, maps_method = None, "single coil"
    elif volume:
        maps, maps_method = estimate_coil_maps(kspace, sampling), "low-resolution (calibration box, 3D)"
    else:
        maps, maps_method = calibrated_coil_maps(kspace, sampling)
    operator = CartesianMRI(sampling, maps, shape=size)
    y = kspace[None]
    view = prior_view(y, operator, prior, sampling)

    def finish(result: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        mean = view.to_image(result.image)[0].abs()
        std = None
        if result.samples is not None and result.std is not None:
            std = view.to_image(result.samples[0]).abs().std(dim=0)
        return mean, std

    details = {
        "kspace": list(full),
        "image": list(size),
        "resized": full != size,
        "coils": coils,
        "mask": mask_source,
        "acceleration": float(operator.acceleration),
        "coil_maps": maps_method,
        "noise_std": sigma,
        "noise_std_from": noise_source,
        "intensity_scale": view.scale,
        "prior_window_top": prior_window(prior)[1],
        "prior_sees": (
            "magnitude (RealAsComplex, calibration phase)" if view.channels == 1 else "real and imaginary channels"
        ),
    }
    if measurement.slice_index is not None:
        details["slice"] = measurement.slice_index
    return Prepared(y * view.scale, view.operator, sigma * view.scale, finish, "k-space a.u.", spacing, details)
