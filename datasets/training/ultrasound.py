"""Training patches of simulated ultrasound: RF (μ-law companded) or B-mode grey levels, tissue or haze.

Source ``"ultrasound-rf"`` (:class:`UltrasoundRFDataset`) is the data of the
dehazing priors ``us-tissue`` and ``us-haze`` (Stevens et al., "Dehazing
Ultrasound using Diffusion Models", IEEE TMI 2024, train one prior on clean
tissue RF and one on haze); source ``"ultrasound-bmode"``
(:class:`UltrasoundBModeDataset`) that of their B-mode variants
``us-tissue-bmode`` and ``us-haze-bmode``, for frames that come as displayed
images (DICOM), where the haze is what it adds to the grey levels — the
image-domain model ``y = x + h`` of Stevens, Nolan & van Sloun, "Semantic
Diffusion Posterior Sampling for Cardiac Ultrasound Dehazing" (2025).
Scenes come from :func:`~invsolve.operators.ultrasound.random_hazy_scene` on
one imaging grid; items are random patches of them, so a few hundred
simulated frames give many distinct training images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from invsolve._checks import check_int, check_positive, check_range
from invsolve.operators.ultrasound import (
    PROBES,
    ConvolutionSimulator,
    HazyScene,
    ImagingGrid,
    decimated_envelope,
    grey_levels,
    mu_law_compress,
    random_hazy_scene,
)

from .base import TrainingDataset, check_number

__all__ = ["UltrasoundRFDataset", "UltrasoundBModeDataset", "COMPONENTS"]

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
        rows, columns = self._frame_shape(grid.shape)
        if len(patch) != 2 or patch[0] > rows or patch[1] > columns:
            raise ValueError(f"size must be a patch [h, w] within the frames' {rows}×{columns} pixels, got {list(patch)}")
        self._settle({(1, *patch): "a patch"})

    def __len__(self) -> int:
        return self._length

    def _frame(self, scene: int) -> torch.Tensor:
        """Scene ``scene``'s component ``(rows, columns)`` float32 in the dataset's units."""
        if scene not in self._frames:
            seed = self._seed + scene
            self._frames[scene] = self._render(random_hazy_scene(self._simulator, seed), seed)[0, 0].to(torch.float32)
        return self._frames[scene]

    def _frame_shape(self, grid_shape: tuple[int, int]) -> tuple[int, int]:
        """The frames' ``(rows, columns)`` on a grid of ``grid_shape``."""
        return grid_shape

    def _render(self, scene: HazyScene, seed: int) -> torch.Tensor:
        """The item's component of the scene of ``seed`` ``(1, 1, rows, columns)`` (class docstring's units)."""
        frame = (getattr(scene, self._component) / scene.tissue.abs().max()).clamp(-1.0, 1.0)
        return mu_law_compress(frame, self._mu) if self._mu > 0 else frame

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
        shape = self._frame_shape(grid.shape)
        pixel = [grid.probe.axial_spacing * grid.shape[0] / shape[0], grid.line_spacing]
        return {
            "grid_shape": list(shape),
            "pixel_m": pixel,
            "patch_m": [self.shape[1] * pixel[0], self.shape[2] * pixel[1]],
            "scenes_in_memory_mb": math.prod(shape) * 4 * self._scenes / 2**20,
        }


class UltrasoundBModeDataset(UltrasoundRFDataset):
    """Random patches of the B-mode images of simulated scenes, as grey levels (module docstring).

    Like :class:`UltrasoundRFDataset`, with the RF frames turned into what a
    scanner displays: the envelope (:func:`~invsolve.operators.ultrasound.envelope`)
    averaged over ``axial_decimation`` rows (B-mode needs no RF sampling
    rate), log-compressed over ``dynamic_range`` dB below the clean tissue's
    peak, and mapped to grey levels ``1 + dB / dynamic_range`` in ``[0, 1]``
    (:func:`~invsolve.operators.ultrasound.grey_levels`).
    The tissue items are those grey levels; the haze items are what the haze
    adds to them, ``grey(tissue + γ·haze) − grey(tissue)`` in ``[−1, 1]``, at a
    level ``γ`` drawn per scene from ``gamma`` — so that a frame of grey levels
    is ``y = x + h``.

    Parameters
    ----------
    length, size, component, probe, depth, width, lateral_spacing, fnumber, scenes, mirror, seed
        As in :class:`UltrasoundRFDataset` (``size`` in decimated pixels).
    dynamic_range : float
        dB, ``> 0``.
    axial_decimation : int
        Rows averaged into one, ``>= 1``.
    gamma : (float, float)
        The range of the scenes' haze levels, within ``[0, 1]``.
    """

    source = "ultrasound-bmode"

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
        dynamic_range: float = 60.0,
        axial_decimation: int = 4,
        gamma: Sequence[float] = (0.1, 0.5),
        mirror: bool = True,
        seed: int = 0,
    ) -> None:
        self._dynamic_range = check_positive(dynamic_range, "dynamic_range")
        self._decimation = check_int(axial_decimation, "axial_decimation")
        self._gamma = check_range(gamma, "gamma", lower=0.0, upper=1.0)
        super().__init__(
            length=length, size=size, component=component, probe=probe, depth=depth, width=width,
            lateral_spacing=lateral_spacing, fnumber=fnumber, scenes=scenes, mu=0.0, mirror=mirror, seed=seed,
        )

    def _frame_shape(self, grid_shape: tuple[int, int]) -> tuple[int, int]:
        return grid_shape[0] // self._decimation, grid_shape[1]

    def _grey(self, rf: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return grey_levels(rf, self._dynamic_range, reference, self._decimation)

    def _render(self, scene: HazyScene, seed: int) -> torch.Tensor:
        reference = decimated_envelope(scene.tissue, self._decimation).amax()
        clean = self._grey(scene.tissue, reference)
        if self._component == "tissue":
            return clean
        # the scene's haze level: a pure function of its seed, drawn from a stream of its own
        gamma = float(np.random.default_rng([seed, 1]).uniform(*self._gamma))
        return self._grey(scene.hazy(gamma), reference) - clean

    def _config(self) -> dict[str, Any]:
        config = super()._config()
        del config["mu"]
        return {**config, "dynamic_range": self._dynamic_range, "axial_decimation": self._decimation, "gamma": list(self._gamma)}
