"""RF frames of point-scatterer scenes: pymust as the reference, a torch convolution model for volume.

Both simulate a 0° plane-wave transmission from the whole array and
delay-and-sum (DAS) reception at a fixed F-number on an :class:`ImagingGrid`,
and return beamformed RF frames ``(B, 1, n_axial, n_lateral)``.

* :func:`simulate_rf_pymust` — the MUST toolbox's ``simus`` (Garcia,
  "SIMUS: an open-source simulator for medical ultrasound imaging", Comput.
  Methods Programs Biomed. 218, 2022) and its ``dasmtx`` beamformer, through
  ``pymust`` (an optional extra).  A few seconds per small scene on a CPU.
* :class:`ConvolutionSimulator` — what pymust does not offer: a batched,
  differentiable torch model fast enough for training sets.  The scatterers
  are spread on the grid (bilinear weights) and convolved with the DAS
  point-spread function at the grid's central depth, computed once from the
  same physics: the probe's two-way pulse (:meth:`Probe.pulse_echo`) summed
  over the receive elements within ``depth / F#``, each delayed by its path
  difference and weighted as MUST weighs it (element directivity
  ``sinc(k w/2 · sin θ)``, obliquity ``cos θ``, 2D spreading ``1/√r``).  The
  PSF is taken as depth-invariant (exact at a fixed F-number in the Fresnel
  approximation while the aperture ``depth/F#`` fits on the array).

Checked against each other on the same scenes (``tests/operators/
test_ultrasound_simulation.py``): speckle size along both axes and the envelope's
SNR agree within 10 %.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from invsolve._checks import check_finite, check_positive, check_tensor
from invsolve._random import make_generator

from .probe import Probe

__all__ = ["ImagingGrid", "Scatterers", "scatterers_from_map", "simulate_rf_pymust", "ConvolutionSimulator"]

#: oversampling of the pulse when it is read at the elements' path differences
_PULSE_OVERSAMPLING = 16


@dataclass(frozen=True)
class ImagingGrid:
    """The beamforming grid: depths at the probe's axial sample spacing, lateral lines centred on the array.

    Parameters
    ----------
    probe : Probe
    depth : (float, float)
        First and last depth, m (rows ``depth[0] + k · probe.axial_spacing`` up to ``depth[1]``).
    width : float
        Lateral extent, m, centred on the array's axis.
    lateral_spacing : float, optional
        Distance between lines, m; default a quarter wavelength.
    """

    probe: Probe
    depth: tuple[float, float]
    width: float
    lateral_spacing: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.probe, Probe):
            raise TypeError(f"probe must be an invsolve Probe, got {type(self.probe).__name__}")
        start, stop = (check_positive(value, "depth") for value in self.depth)
        if not stop > start:
            raise ValueError(f"depth must be (start, stop) with stop > start > 0, m, got {self.depth!r}")
        check_positive(self.width, "width")
        if self.lateral_spacing is not None:
            check_positive(self.lateral_spacing, "lateral_spacing")

    @property
    def line_spacing(self) -> float:
        """Distance between two lateral lines, m."""
        return self.lateral_spacing if self.lateral_spacing is not None else self.probe.wavelength / 4

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_axial, n_lateral)``."""
        rows = math.floor((self.depth[1] - self.depth[0]) / self.probe.axial_spacing) + 1
        return rows, max(1, math.floor(self.width / self.line_spacing) + 1)

    def depths(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Row depths ``(n_axial,)``, m."""
        return self.depth[0] + torch.arange(self.shape[0], dtype=dtype) * self.probe.axial_spacing

    def lateral(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Line positions ``(n_lateral,)``, m, centred on 0."""
        count = self.shape[1]
        return (torch.arange(count, dtype=dtype) - (count - 1) / 2) * self.line_spacing


@dataclass(frozen=True)
class Scatterers:
    """Point scatterers in the imaging plane: lateral ``x`` and depth ``z`` (m), reflection ``amplitude``; all ``(N,)``."""

    x: torch.Tensor
    z: torch.Tensor
    amplitude: torch.Tensor

    def __post_init__(self) -> None:
        for name in ("x", "z", "amplitude"):
            value = check_tensor(getattr(self, name), name, allow_complex=False)
            if value.dim() != 1 or value.shape != self.x.shape:
                raise ValueError(f"x, z and amplitude must be 1-D of one length, got {name} shaped {tuple(value.shape)}")
            check_finite(value, name)


def scatterers_from_map(
    echogenicity: torch.Tensor, grid: ImagingGrid, per_cell: float = 10.0, margin: float = 2e-3, seed: int | torch.Generator | None = None
) -> Scatterers:
    """Scatterers at uniform random positions with Gaussian amplitudes scaled by an echogenicity map.

    Parameters
    ----------
    echogenicity : torch.Tensor
        ``(n_axial, n_lateral)`` on ``grid``, non-negative (0 anechoic, 1
        background); read at each scatterer by bilinear interpolation, and
        its edge values extended over the margin.
    per_cell : float
        Scatterers per square wavelength; about 10 gives fully developed speckle.
    margin : float
        Scatterers also fill this band (m) around the grid, so that the frame's
        edges see a complete neighbourhood.
    seed : int, torch.Generator or None

    Returns
    -------
    Scatterers
        float64.
    """
    echogenicity = check_tensor(echogenicity, "echogenicity", allow_complex=False)
    if tuple(echogenicity.shape) != grid.shape:
        raise ValueError(f"echogenicity must be shaped like the grid {grid.shape}, got {tuple(echogenicity.shape)}")
    check_finite(echogenicity, "echogenicity")
    if bool((echogenicity < 0).any()):
        raise ValueError("echogenicity must be non-negative (0 anechoic, 1 background)")
    check_positive(per_cell, "per_cell")
    generator = make_generator(seed, "cpu")
    lateral, depths = grid.lateral(), grid.depths()
    x0, x1 = float(lateral[0]) - margin, float(lateral[-1]) + margin
    z0, z1 = float(depths[0]) - margin, float(depths[-1]) + margin
    count = max(1, round(per_cell * (x1 - x0) * (z1 - z0) / grid.probe.wavelength**2))
    x = x0 + (x1 - x0) * torch.rand(count, dtype=torch.float64, generator=generator)
    z = z0 + (z1 - z0) * torch.rand(count, dtype=torch.float64, generator=generator)
    amplitude = torch.randn(count, dtype=torch.float64, generator=generator)
    # the map at each scatterer: grid_sample's coordinates are -1..1 over the first and last centres
    points = torch.stack([(x - lateral[0]) / (lateral[-1] - lateral[0]), (z - depths[0]) / (depths[-1] - depths[0])], -1)
    level = F.grid_sample(
        echogenicity.to(torch.float64)[None, None], (2 * points - 1)[None, None], align_corners=True, padding_mode="border"
    )[0, 0, 0]
    return Scatterers(x, z, amplitude * level)


def simulate_rf_pymust(scatterers: Scatterers, grid: ImagingGrid, fnumber: float = 1.5) -> torch.Tensor:
    """The beamformed RF frame of ``scatterers`` by pymust: ``simus`` (0° plane wave, 2D) then ``dasmtx``.

    Needs ``pymust`` (``pip install invsolve[ultrasound]``) and a probe that
    ``pymust.getparam`` knows (``grid.probe.name``).

    Returns
    -------
    torch.Tensor
        ``(1, 1, n_axial, n_lateral)`` float64.
    """
    try:
        import pymust
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError("simulate_rf_pymust needs pymust (pip install invsolve[ultrasound])") from None
    import numpy as np

    if not isinstance(scatterers, Scatterers):
        raise TypeError(f"scatterers must be invsolve Scatterers, got {type(scatterers).__name__}")
    check_positive(fnumber, "fnumber")
    probe = grid.probe
    try:
        param = pymust.getparam(probe.name)
    except Exception:  # pymust raises a bare error for unknown names
        raise ValueError(f"pymust does not know probe {probe.name!r}; use Probe.from_pymust(NAME) or PROBES") from None
    param.fs, param.c, param.fnumber, param.TXnow = probe.sampling_frequency, probe.sound_speed, fnumber, probe.excitation_cycles
    delays = pymust.txdelay(param, 0)
    rf, _ = pymust.simus(scatterers.x.numpy(), scatterers.z.numpy(), scatterers.amplitude.numpy(), delays, param)
    lateral, depths = np.meshgrid(grid.lateral().numpy(), grid.depths().numpy())
    matrix = pymust.dasmtx(rf, lateral, depths, delays, param)
    frame = np.real(matrix @ rf.flatten(order="F")).reshape(lateral.shape, order="F")
    return torch.from_numpy(np.ascontiguousarray(frame))[None, None]


class ConvolutionSimulator:
    """Beamformed RF as scatterers convolved with the DAS point-spread function (module docstring).

    Parameters
    ----------
    grid : ImagingGrid
    fnumber : float
        Receive F-number of the DAS beamformer, ``> 0``.
    """

    def __init__(self, grid: ImagingGrid, fnumber: float = 1.5) -> None:
        if not isinstance(grid, ImagingGrid):
            raise TypeError(f"grid must be an ImagingGrid, got {type(grid).__name__}")
        self.grid, self.fnumber = grid, check_positive(fnumber, "fnumber")
        self.psf = self._point_spread()

    def _point_spread(self) -> torch.Tensor:
        """The DAS response at a pixel (grid's central depth) to a unit scatterer ``a`` rows deeper and ``l`` lines
        to the side: ``psf[centre + a, centre + l]``, unit peak.  The image of one scatterer is this flipped."""
        grid, probe = self.grid, self.grid.probe
        depth = sum(grid.depth) / 2
        fine_probe = dataclasses.replace(probe, sampling_frequency=probe.sampling_frequency * _PULSE_OVERSAMPLING)
        pulse = fine_probe.pulse_echo()
        half_pulse = (pulse.numel() - 1) // 2
        elements = (torch.arange(probe.elements, dtype=torch.float64) - (probe.elements - 1) / 2) * probe.pitch
        aperture = min(depth / self.fnumber, probe.aperture)
        receive = elements[elements.abs() <= aperture / 2 + 1e-12]
        if receive.numel() == 0:
            receive = elements[elements.abs().argmin()].reshape(1)
        # lateral support: a few main lobes; axial: the pulse
        lateral_half = math.ceil(4 * probe.wavelength * self.fnumber / grid.line_spacing)
        offsets = torch.arange(-lateral_half, lateral_half + 1, dtype=torch.float64) * grid.line_spacing
        axial_half = math.ceil(half_pulse / _PULSE_OVERSAMPLING) + 2
        shifts = torch.arange(-axial_half, axial_half + 1, dtype=torch.float64) * probe.axial_spacing
        to_pixel = torch.sqrt(receive**2 + depth**2)  # (E,)
        to_scatterer = torch.sqrt((receive[None, :] - offsets[:, None]) ** 2 + depth**2)  # (X, E)
        sine = (receive[None, :] - offsets[:, None]) / to_scatterer
        wavenumber = 2 * math.pi * probe.centre_frequency / probe.sound_speed
        argument = wavenumber * probe.width_of_element / 2 * sine
        directivity = torch.where(argument == 0, torch.ones_like(argument), torch.sin(argument) / argument)
        weights = directivity * torch.sqrt(1 - sine**2) / torch.sqrt(to_scatterer)
        # a scatterer deeper by s arrives 2s/c later; element e hears it (r_scatterer - r_pixel)/c later
        delay = 2 * shifts[:, None, None] / probe.sound_speed + (to_scatterer - to_pixel)[None] / probe.sound_speed
        position = half_pulse - delay * fine_probe.sampling_frequency  # fractional index into the pulse
        lower = position.floor()
        fraction = position - lower
        index = lower.to(torch.int64)
        padded = F.pad(pulse, (1, 2))  # zero outside the pulse
        read = lambda i: padded[(i + 1).clamp(0, padded.numel() - 1)]  # noqa: E731
        values = torch.lerp(read(index), read(index + 1), fraction)
        psf = (values * weights[None]).sum(-1)
        return psf / psf.abs().max()

    def __call__(self, scatterers: Scatterers) -> torch.Tensor:
        """The RF frame ``(1, 1, n_axial, n_lateral)`` float64 of ``scatterers``."""
        if not isinstance(scatterers, Scatterers):
            raise TypeError(f"scatterers must be invsolve Scatterers, got {type(scatterers).__name__}")
        grid = self.grid
        rows, columns = grid.shape
        pad_rows, pad_columns = (n // 2 + 1 for n in self.psf.shape)
        height, width = rows + 2 * pad_rows, columns + 2 * pad_columns
        lateral0, depth0 = float(grid.lateral()[0]), grid.depth[0]
        row = (scatterers.z - depth0) / grid.probe.axial_spacing + pad_rows
        column = (scatterers.x - lateral0) / grid.line_spacing + pad_columns
        spread = torch.zeros(height * width, dtype=torch.float64)
        lower_row, lower_column = row.floor(), column.floor()
        for row_offset, row_weight in ((0, 1 - (row - lower_row)), (1, row - lower_row)):
            for column_offset, column_weight in ((0, 1 - (column - lower_column)), (1, column - lower_column)):
                r = lower_row.to(torch.int64) + row_offset
                c = lower_column.to(torch.int64) + column_offset
                inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
                spread.index_add_(0, (r * width + c)[inside], (scatterers.amplitude * row_weight * column_weight)[inside])
        return self.convolve(spread.reshape(1, 1, height, width))[..., pad_rows : pad_rows + rows, pad_columns : pad_columns + columns]

    def convolve(self, scatter_map: torch.Tensor) -> torch.Tensor:
        """A scatterer map on the grid ``(B, 1, H, W)`` convolved with the PSF (same size, zero outside)."""
        scatter_map = check_tensor(scatter_map, "scatter_map", allow_complex=False)
        if scatter_map.dim() != 4 or scatter_map.shape[1] != 1:
            raise ValueError(f"scatter_map must be (B, 1, H, W), got {tuple(scatter_map.shape)}")
        # conv2d correlates: out[p] = Σ_k map[p + k] psf[k], the response at p to scatterers at p + k
        kernel = self.psf.to(scatter_map)[None, None]
        return F.conv2d(scatter_map, kernel, padding=tuple(n // 2 for n in self.psf.shape))

    def from_map(self, echogenicity: torch.Tensor, seed: int | torch.Generator | None = None) -> torch.Tensor:
        """RF frames of random scenes with these echogenicity maps ``(B, 1, n_axial, n_lateral)``: the fast path.

        Each grid cell holds one Gaussian scatterer of variance
        ``echogenicity²`` (fully developed speckle needs several scatterers
        per resolution cell; the grid has ~16 per square wavelength).
        """
        echogenicity = check_tensor(echogenicity, "echogenicity", allow_complex=False)
        if echogenicity.dim() != 4 or tuple(echogenicity.shape[1:]) != (1, *self.grid.shape):
            raise ValueError(f"echogenicity must be (B, 1, {self.grid.shape[0]}, {self.grid.shape[1]}), got {tuple(echogenicity.shape)}")
        check_finite(echogenicity, "echogenicity")
        generator = make_generator(seed, "cpu")
        noise = torch.randn(echogenicity.shape, dtype=torch.float64, generator=generator).to(echogenicity)
        return self.convolve(noise * echogenicity)
