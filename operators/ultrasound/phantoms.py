"""Echogenicity phantoms for ultrasound scenes: layers, cysts, lesions, a heart-like cavity with a moving wall.

An echogenicity map gives the RMS reflection amplitude of the tissue at each
point of an :class:`~.simulation.ImagingGrid` (1 is background speckle, 0 an
anechoic cyst or blood pool); :func:`~.simulation.scatterers_from_map` turns it
into point scatterers for pymust, :meth:`~.simulation.ConvolutionSimulator.from_map`
into RF directly.  The scenes are the kind the dehazing study images (Stevens et
al., IEEE TMI 2024): superficial layers of skin, fat and muscle (where haze comes
from), anechoic cysts and hyperechoic lesions (whose contrast gCNR measures) and
a cardiac cavity — a blood pool inside a brighter myocardial wall — whose size
follows the cardiac cycle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from invsolve._checks import check_int, check_unit_interval
from invsolve._random import make_generator, uniform_number

from .simulation import ImagingGrid

__all__ = ["EchoPhantom", "echo_phantom"]


@dataclass(frozen=True)
class EchoPhantom:
    """An echogenicity map and the regions the contrast metrics compare.

    Attributes
    ----------
    echogenicity : torch.Tensor
        ``(n_axial, n_lateral)`` float64, ``>= 0``.
    cysts : torch.Tensor
        Boolean ``(n_axial, n_lateral)``: inside the anechoic cysts.
    background : torch.Tensor
        Boolean: a ring of plain background around each cyst (the reference
        region of gCNR and contrast), clear of every other structure.
    cavity : torch.Tensor
        Boolean: the blood pool of the cardiac cavity (empty without one).
    """

    echogenicity: torch.Tensor
    cysts: torch.Tensor
    background: torch.Tensor
    cavity: torch.Tensor


def echo_phantom(
    grid: ImagingGrid,
    *,
    layers: int = 3,
    cysts: int = 2,
    lesions: int = 1,
    cavity: bool = False,
    cardiac_phase: float = 0.0,
    seed: int | torch.Generator | None = None,
) -> EchoPhantom:
    """A random scene on ``grid`` (module docstring).

    Parameters
    ----------
    grid : ImagingGrid
    layers : int
        Superficial layers (``>= 0``) filling the top fifth of the depth range,
        each with its own echogenicity in ``[0.3, 2]`` and a wavy lower boundary.
    cysts, lesions : int
        Anechoic discs (echogenicity 0) and hyperechoic ellipses (2 to 4),
        ``>= 0`` each, below the layers, radii 4–9 % of the shorter side.
    cavity : bool
        A cardiac cavity in the lower half: an elliptic blood pool
        (echogenicity 0.05) inside a myocardial wall (1.5).
    cardiac_phase : float
        Position in the cardiac cycle, ``[0, 1]``: the cavity is widest at 0
        and 1 (end-diastole) and 30 % narrower at 0.5 (end-systole), its wall
        thickening as it contracts (the wall's area is kept).
    seed : int, torch.Generator or None
        Random source (the same seed draws the same scene at every phase, so a
        sequence of phases is one beating heart).

    Returns
    -------
    EchoPhantom
    """
    if not isinstance(grid, ImagingGrid):
        raise TypeError(f"grid must be an ImagingGrid, got {type(grid).__name__}")
    layers = check_int(layers, "layers", minimum=0)
    cysts = check_int(cysts, "cysts", minimum=0)
    lesions = check_int(lesions, "lesions", minimum=0)
    cardiac_phase = check_unit_interval(cardiac_phase, "cardiac_phase")
    generator = make_generator(seed, "cpu")
    z = grid.depths()[:, None]
    x = grid.lateral()[None, :]
    top, bottom = grid.depth
    left, right = float(x.min()), float(x.max())
    side = min(bottom - top, right - left)
    echogenicity = torch.ones(grid.shape, dtype=torch.float64)
    occupied = torch.zeros(grid.shape, dtype=torch.bool)

    layer_bottom = top + 0.2 * (bottom - top)
    upper = torch.full_like(x, top)
    for index in range(layers):
        depth = top + (index + 1) / layers * (layer_bottom - top)
        amplitude = 0.1 * (layer_bottom - top) / max(layers, 1)
        period = uniform_number(generator, 0.5, 1.5)  # of the frame's width
        wave = depth + amplitude * torch.sin(2 * math.pi * x / period / (right - left) + uniform_number(generator, 0, 6.3))
        band = (z >= upper) & (z < wave)
        echogenicity[band] = uniform_number(generator, 0.3, 2.0)
        occupied |= band
        upper = wave
    occupied |= z < layer_bottom + 0.05 * side

    cavity_mask = torch.zeros(grid.shape, dtype=torch.bool)
    if cavity:
        centre_z, centre_x = top + 0.7 * (bottom - top), uniform_number(generator, -0.1, 0.1) * (right - left)
        radius_x, radius_z = 0.25 * (right - left), 0.18 * (bottom - top)
        squeeze = 1 - 0.3 * (1 - math.cos(2 * math.pi * cardiac_phase)) / 2
        inner_x, inner_z = radius_x * squeeze, radius_z * squeeze
        wall = 0.25 * min(radius_x, radius_z)
        outer_area = (radius_x + wall) * (radius_z + wall) - radius_x * radius_z + inner_x * inner_z
        grow = math.sqrt(outer_area / ((radius_x + wall) * (radius_z + wall)))
        outer_x, outer_z = (radius_x + wall) * grow, (radius_z + wall) * grow
        outer = ((x - centre_x) / outer_x) ** 2 + ((z - centre_z) / outer_z) ** 2 <= 1
        cavity_mask = ((x - centre_x) / inner_x) ** 2 + ((z - centre_z) / inner_z) ** 2 <= 1
        echogenicity[outer] = 1.5
        echogenicity[cavity_mask] = 0.05
        # kept clear at its diastolic (largest) extent, so that every phase places the same cysts and lesions
        diastolic_x, diastolic_z = 1.15 * (radius_x + wall), 1.15 * (radius_z + wall)
        occupied |= ((x - centre_x) / diastolic_x) ** 2 + ((z - centre_z) / diastolic_z) ** 2 <= 1

    cyst_mask = torch.zeros(grid.shape, dtype=torch.bool)
    background = torch.zeros(grid.shape, dtype=torch.bool)
    placed = []
    for kind in ["cyst"] * cysts + ["lesion"] * lesions:
        for _ in range(200):  # rejection sampling of a free spot
            radius = uniform_number(generator, 0.04, 0.09) * side
            centre_z = uniform_number(generator, layer_bottom + 3 * radius, bottom - 2 * radius)
            centre_x = uniform_number(generator, left + 2 * radius, right - 2 * radius)
            distance = torch.sqrt((x - centre_x) ** 2 + (z - centre_z) ** 2)
            ring = (distance > 1.5 * radius) & (distance <= 2.5 * radius)
            if not bool((occupied & (distance <= 2.5 * radius)).any()):
                break
        else:
            raise ValueError(
                f"cannot place {cysts} cysts and {lesions} lesions on a {grid.shape[0]}×{grid.shape[1]} grid without "
                "overlap; ask for fewer, or a larger grid"
            )
        if kind == "cyst":
            inside = distance <= radius
            echogenicity[inside] = 0.0
            cyst_mask |= inside
            placed.append(ring)
        else:
            stretch = uniform_number(generator, 0.6, 1.0)
            inside = ((x - centre_x) / radius) ** 2 + ((z - centre_z) / (radius * stretch)) ** 2 <= 1
            echogenicity[inside] = uniform_number(generator, 2.0, 4.0)
        occupied |= distance <= 2.5 * radius
    for ring in placed:
        background |= ring
    background &= ~cyst_mask & (echogenicity == 1.0)
    return EchoPhantom(echogenicity, cyst_mask, background, cavity_mask)
