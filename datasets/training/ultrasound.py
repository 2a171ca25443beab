"""Training patches of simulated ultrasound RF: tissue or haze, μ-law companded.

Source ``"ultrasound-rf"`` (:class:`UltrasoundRFDataset`), the data of the
dehazing priors ``us-tissue`` and ``us-haze`` (Stevens et al., "Dehazing
Ultrasound using Diffusion Models", IEEE TMI 2024, train one prior on clean
tissue RF and one on haze).  Scenes come from
:func:`~invsolve.operators.ultrasound.random_hazy_scene` on one imaging grid;
items are random patches of them, so a few hundred simulated frames give
many distinct training images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from invsolve._checks import check_int, check_positive
from invsolve.operators.ultrasound import (
    PROBES,
    ConvolutionSimulator,
    ImagingGrid,
    mu_law_compress,
    random_hazy_scene,
)

from .base import TrainingDataset, check_number

__all__ = ["UltrasoundRFDataset", "COMPONENTS"]

#: what an item shows: the clean tissue RF or the haze
COMPONENTS = ("tissue", "haze")


class UltrasoundRFDataset(TrainingDataset):
    """Random patches of simulated beamformed RF frames (module docstring).

    Scene ``k`` is ``random_hazy_scene(simulator, seed + k)``; item ``i``
    is a patch of scene ``i mod scenes`` at a position drawn from the
    item's generator (a pure function of ``(i, epoch, seed)``, see
    :mod:`invsolve.datasets.training`), mirrored laterally with probability
    ½ when ``mirror`` is set.  Scenes are simulated when first used and kept
    (``scenes × n_axial × n_lateral`` float32).

    Units: both components are divided by the peak ``|RF|`` of the scene's
    clean tissue, the units in which the dehazing model ``y = x + γh`` holds
    with the haze at the tissue's RMS; haze values beyond ±1 (spiky clutter,
    under 0.3 % of the samples on the default grid) are clipped to ±1.  Then
    the patch is μ-law companded (``mu > 0``) or left linear (``mu = 0``);
    the value range is ``[−1, 1]`` either way.

    Parameters
    ----------
    length : int
        Number of items, ``>= 1``.
    size : (h, w)
        Patch size, pixels (axial, lateral), within the grid's shape.
    component : {"tissue", "haze"}
        What the items show.
    probe : str
        A name of :data:`~invsolve.operators.ultrasound.PROBES`.
    depth : (float, float)
        The grid's first and last depth, m.
    width : float
        The grid's lateral extent, m.
    lateral_spacing : float
        Distance between lateral lines, in wavelengths.
    fnumber : float
        Receive F-number of the beamformer.
    scenes : int
        Number of simulated scenes, ``>= 1``.
    mu : float
        μ of the companding, ``0`` for none.
    mirror : bool
        Mirror patches laterally at random (the scenes' statistics are left–right symmetric; depth is not).
    seed : int
        Seed of scene 0 and of the patch positions.
    """

    source = "ultrasound-rf"
    _random_source = True

    def __init__(
        self,
        *,
        length: int,
        size: Sequence[int],
        component: str = "tissue",
        probe: str = "P4-2v",
        depth: Sequence[float] = (0.005, 0.040),
        width: float = 0.036,
        lateral_spacing: float = 0.5,
        fnumber: float = 1.5,
        scenes: int = 256,
        mu: float = 255.0,
        mirror: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(
            size=size, resize=None, channels=None, flip=False, rot90=False, seed=seed,
            value_range=(-1.0, 1.0), cache=False,
        )
        self._length = check_int(length, "length")
        if component not in COMPONENTS:
            raise ValueError(f"component must be one of {', '.join(map(repr, COMPONENTS))}, got {component!r}")
        if probe not in PROBES:
            raise ValueError(f"probe must be one of {', '.join(map(repr, PROBES))}, got {probe!r}")
        if not isinstance(mirror, bool):
            raise TypeError(f"mirror must be true or false, got {mirror!r}")
        self._component, self._probe_name, self._mirror = component, probe, mirror
        self._scenes = check_int(scenes, "scenes")
        self._mu = check_number(mu, "mu")
        if self._mu < 0:
            raise ValueError(f"mu must be >= 0 (0: no companding), got {mu!r}")
        spacing = check_positive(lateral_spacing, "lateral_spacing")
        probe_model = PROBES[probe]
        grid = ImagingGrid(probe_model, tuple(depth), width, lateral_spacing=spacing * probe_model.wavelength)
        self._grid_options = {"depth": [float(value) for value in depth], "width": float(width), "lateral_spacing": spacing}
        self._simulator = ConvolutionSimulator(grid, fnumber)
        self._frames: dict[int, torch.Tensor] = {}
        patch = tuple(self._size) if self._size is not None else ()
        if len(patch) != 2 or patch[0] > grid.shape[0] or patch[1] > grid.shape[1]:
            raise ValueError(f"size must be a patch [h, w] within the grid's {grid.shape[0]}×{grid.shape[1]} pixels, got {list(patch)}")
        self._settle({(1, *patch): "a patch"})

    def __len__(self) -> int:
        return self._length

    def _frame(self, scene: int) -> torch.Tensor:
        """Scene ``scene``'s component ``(n_axial, n_lateral)`` float32 in the module's units."""
        if scene not in self._frames:
            simulated = random_hazy_scene(self._simulator, self._seed + scene)
            peak = simulated.tissue.abs().max()
            frame = (getattr(simulated, self._component) / peak).clamp(-1.0, 1.0)
            if self._mu > 0:
                frame = mu_law_compress(frame, self._mu)
            self._frames[scene] = frame[0, 0].to(torch.float32)
        return self._frames[scene]

    def _load(self, index: int, generator: torch.Generator | None) -> torch.Tensor:
        frame = self._frame(index % self._scenes)
        height, width = self.shape[1:]
        if generator is None:  # the scene's central patch (value-range scans)
            top, left = (frame.shape[0] - height) // 2, (frame.shape[1] - width) // 2
            mirrored = False
        else:
            top = int(torch.randint(0, frame.shape[0] - height + 1, (), generator=generator))
            left = int(torch.randint(0, frame.shape[1] - width + 1, (), generator=generator))
            mirrored = self._mirror and bool(torch.rand((), generator=generator) < 0.5)
        patch = frame[top : top + height, left : left + width]
        return (patch.flip(-1) if mirrored else patch)[None].clone()

    def _name(self, index: int) -> str:
        return f"a patch of simulated scene {index % self._scenes} (seed {self._seed + index % self._scenes})"

    def _config(self) -> dict[str, Any]:
        return {
            "length": self._length,
            "component": self._component,
            "probe": self._probe_name,
            **self._grid_options,
            "fnumber": self._simulator.fnumber,
            "scenes": self._scenes,
            "mu": self._mu,
            "mirror": self._mirror,
        }

    def _facts(self) -> dict[str, Any]:
        grid = self._simulator.grid
        return {
            "grid_shape": list(grid.shape),
            "pixel_m": [grid.probe.axial_spacing, grid.line_spacing],
            "patch_m": [self.shape[1] * grid.probe.axial_spacing, self.shape[2] * grid.line_spacing],
            "scenes_in_memory_mb": math.prod(grid.shape) * 4 * self._scenes / 2**20,
        }
