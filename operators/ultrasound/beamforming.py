"""Delay-and-sum beamforming of plane-wave channel data with pymust, onto a grid of given depths and lines.

Channel data — one RF trace per element for each transmitted plane wave, as
PICMUS and zea files hold them — become beamformed RF frames here, the input
of dehazing.  The delay-and-sum itself is the MUST toolbox's ``dasmtx``
(Garcia, Comput. Methods Programs Biomed. 218, 2022; through ``pymust``, an
optional extra): a sparse matrix per transmit that maps the traces to the
grid's pixels, with the receive aperture set by an F-number; the frames of
all transmits are summed (coherent compounding, Montaldo et al., "Coherent
plane-wave compounding for very high frame rate ultrasonography", IEEE
TUFFC 56, 2009).  Written by hand here is only the bookkeeping pymust leaves
to its caller: a linear array's parameters from element positions, each
transmit's delays and start time, and the compounding.
"""

from __future__ import annotations

import math

import torch

from invsolve._checks import check_finite, check_positive, check_tensor

__all__ = ["beamform_plane_waves"]


def beamform_plane_waves(
    channel_data: torch.Tensor,
    *,
    sampling_frequency: float,
    centre_frequency: float,
    sound_speed: float,
    element_positions: torch.Tensor,
    angles: torch.Tensor,
    initial_times: torch.Tensor,
    depths: torch.Tensor,
    lateral: torch.Tensor,
    fnumber: float = 1.5,
) -> torch.Tensor:
    """Beamformed RF frames of plane-wave channel data (module docstring).

    Parameters
    ----------
    channel_data : torch.Tensor
        Real RF ``(frames, transmits, samples, elements)``.
    sampling_frequency, centre_frequency, sound_speed : float
        Hz, Hz, m/s.
    element_positions : torch.Tensor
        ``(elements, 3)`` m: a linear array along x, evenly spaced, at y = z = 0
        (pymust places it centred on x = 0, as PICMUS and zea files do).
    angles : torch.Tensor
        Plane-wave angles ``(transmits,)``, radians.
    initial_times : torch.Tensor
        Time of each transmit's first sample ``(transmits,)``, s.
    depths, lateral : torch.Tensor
        The grid's rows and lines ``(H,)`` and ``(W,)``, m (x = 0 at the array's centre).
    fnumber : float
        Receive F-number, ``> 0``.

    Returns
    -------
    torch.Tensor
        ``(frames, 1, H, W)`` float64, the transmits compounded.

    Raises
    ------
    ImportError
        Without pymust.
    ValueError
        For complex or non-finite data, shapes that disagree, or elements
        that are not an evenly spaced line along x.
    """
    try:
        import pymust
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError("beamforming channel data needs pymust (pip install invsolve[ultrasound])") from None
    import numpy as np

    channel_data = check_tensor(channel_data, "channel_data", allow_complex=False)
    if channel_data.dim() != 4:
        raise ValueError(f"channel_data must be (frames, transmits, samples, elements), got shape {tuple(channel_data.shape)}")
    check_finite(channel_data, "channel_data")
    frames, transmits, samples, elements = channel_data.shape
    positions = torch.as_tensor(element_positions, dtype=torch.float64)
    angles = torch.as_tensor(angles, dtype=torch.float64).reshape(-1)
    starts = torch.as_tensor(initial_times, dtype=torch.float64).reshape(-1)
    if positions.shape != (elements, 3):
        raise ValueError(f"element_positions must be ({elements}, 3) for {elements} elements, got {tuple(positions.shape)}")
    if angles.numel() != transmits or starts.numel() != transmits:
        raise ValueError(f"angles and initial_times need one value per transmit ({transmits}), got {angles.numel()} and {starts.numel()}")
    steps = positions[1:, 0] - positions[:-1, 0]
    pitch = float(steps.mean()) if elements > 1 else 0.0
    if elements < 2 or pitch <= 0 or bool((steps - pitch).abs().max() > 1e-3 * pitch) or bool(positions[:, 1:].abs().max() > 1e-9):
        raise ValueError("element_positions must describe a linear array: evenly spaced along x, increasing, at y = z = 0")
    check_positive(fnumber, "fnumber")
    param = pymust.utils.Param()
    param.fs, param.fc, param.c = float(sampling_frequency), float(centre_frequency), float(sound_speed)
    param.pitch, param.Nelements, param.fnumber = pitch, elements, float(fnumber)
    param.width = pitch  # element width: only the directivity of an "optimal" F-number uses it, not a given one
    lateral_grid, depth_grid = np.meshgrid(lateral.double().numpy(), depths.double().numpy())
    traces = channel_data.double().numpy()
    compounded = np.zeros((frames, *lateral_grid.shape))
    for transmit in range(transmits):
        param.t0 = np.array([float(starts[transmit])])  # pymust reshapes it
        delays = pymust.txdelay(param, float(angles[transmit]))
        matrix = pymust.dasmtx(np.array([samples, elements]), lateral_grid, depth_grid, delays, param)
        block = traces[:, transmit].transpose(1, 2, 0).reshape(samples * elements, frames, order="F")
        compounded += np.real(matrix @ block).T.reshape(frames, *lateral_grid.shape, order="F")
    if not math.isfinite(float(np.abs(compounded).max(initial=0.0))):
        raise ValueError("beamforming produced non-finite values: check the acquisition parameters")
    return torch.from_numpy(compounded)[:, None]
