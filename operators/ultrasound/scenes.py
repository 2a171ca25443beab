"""Random hazy scenes: tissue RF and its haze, drawn from one seed.

One function, :func:`random_hazy_scene`, draws the scenes that the dehazing
priors are trained on (``invsolve.datasets.training``, sources
``"ultrasound-rf"`` and ``"ultrasound-bmode"``), that their hyperparameters are tuned on and that the
example and the benchmark evaluate: a random echogenicity phantom
(:func:`~.phantoms.echo_phantom`: superficial layers, cysts, lesions and, in
half of the scenes, a cardiac cavity at a random phase) simulated with the
convolution model (:class:`~.simulation.ConvolutionSimulator`), and chest-wall
haze for it (:func:`~.haze.simulate_haze`) with randomly drawn reverberation
and clutter settings.  Scenes of different seeds are independent, so seed
ranges make disjoint splits (:data:`SPLITS`): the priors learn scenes from
seed 0, settings are tuned on scenes from seed 10 000 and results are
reported on scenes from seed 20 000 (:func:`split_seeds` picks those with a
cyst, on :func:`evaluation_grid`).

Ranges drawn (uniform): 1–4 layers, 0–3 cysts, 0–2 lesions (fewer if they do
not fit the grid), a cavity with probability ½ at phase in ``[0, 1]``;
reverberating depth 0.15–0.25 of the frame (the phantom's layers fill its top
fifth), 2–4 orders decaying by 0.4–0.8, lateral smear 1–4 lines, clutter weight
0.3–1.5 with correlation length 0.05–0.3 of the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from invsolve._checks import check_int
from invsolve._random import make_generator, uniform_number

from .haze import add_haze, simulate_haze
from .phantoms import EchoPhantom, echo_phantom
from .probe import PROBES
from .simulation import ConvolutionSimulator, ImagingGrid

__all__ = ["HazyScene", "random_hazy_scene", "SPLITS", "split_seeds", "evaluation_grid", "DISPLAY_DECIMATION"]

#: first seed of each split of scenes
SPLITS = {"train": 0, "validation": 10_000, "test": 20_000}
#: rows of the RF grid averaged into one displayed row, as the B-mode priors learnt them (configs/us-*-bmode.toml)
DISPLAY_DECIMATION = 4


def evaluation_grid() -> ImagingGrid:
    """The grid of the tuning and test frames (benchmarks/ultrasound_dehaze.py, examples/ultrasound_dehaze.py).

    P4-2v, depth 5–25 mm at the probe's axial sample spacing, 18 mm wide with
    lines half a wavelength apart — the pixel size the priors learnt — 283×64.
    """
    probe = PROBES["P4-2v"]
    return ImagingGrid(probe, (0.005, 0.025), 0.018, lateral_spacing=probe.wavelength / 2)


@dataclass(frozen=True)
class HazyScene:
    """A simulated frame, its haze and the phantom it came from.

    Attributes
    ----------
    tissue : torch.Tensor
        Clean beamformed RF ``(1, 1, n_axial, n_lateral)`` float64, arbitrary units.
    haze : torch.Tensor
        Haze ``h`` of the same shape at the tissue's RMS: ``tissue + γ·haze`` is the hazy frame at level ``γ``.
    phantom : EchoPhantom
        The echogenicity map and the regions of the contrast metrics.
    """

    tissue: torch.Tensor
    haze: torch.Tensor
    phantom: EchoPhantom

    def hazy(self, gamma: float) -> torch.Tensor:
        """The hazy frame ``tissue + γ·haze`` (:func:`~.haze.add_haze`)."""
        return add_haze(self.tissue, self.haze, gamma)


def _integer(generator: torch.Generator, low: int, high: int) -> int:
    """Uniform integer in ``[low, high]``."""
    return int(torch.randint(low, high + 1, (), generator=generator))


@dataclass(frozen=True)
class _ScenePlan:
    """What one seed draws: the phantom, the speckle's seed, the haze's settings and seed."""

    phantom: EchoPhantom
    speckle_seed: int
    haze_settings: dict[str, float | int]
    haze_seed: int


def _plan(grid: ImagingGrid, seed: int) -> _ScenePlan:
    generator = make_generator(seed, "cpu")
    layers, cysts, lesions = _integer(generator, 1, 4), _integer(generator, 0, 3), _integer(generator, 0, 2)
    cavity = bool(torch.rand((), generator=generator) < 0.5)
    phase = uniform_number(generator, 0.0, 1.0)
    phantom_seed, speckle_seed, haze_seed = (int(value) for value in torch.randint(0, 2**62, (3,), generator=generator))
    haze_settings = {
        "superficial_depth": uniform_number(generator, 0.15, 0.25),
        "orders": _integer(generator, 2, 4),
        "decay": uniform_number(generator, 0.4, 0.8),
        "lateral_spread": uniform_number(generator, 1.0, 4.0),
        "clutter_weight": uniform_number(generator, 0.3, 1.5),
        "clutter_correlation": uniform_number(generator, 0.05, 0.3),
    }
    while True:
        try:
            phantom = echo_phantom(grid, layers=layers, cysts=cysts, lesions=lesions, cavity=cavity, cardiac_phase=phase, seed=phantom_seed)
            return _ScenePlan(phantom, speckle_seed, haze_settings, haze_seed)
        except ValueError:  # the regions do not fit the grid: drop a lesion, then a cyst, then the cavity
            if lesions:
                lesions -= 1
            elif cysts:
                cysts -= 1
            elif cavity:
                cavity = False
            else:
                raise


def _check_simulator(simulator: object) -> ConvolutionSimulator:
    if not isinstance(simulator, ConvolutionSimulator):
        raise TypeError(f"simulator must be a ConvolutionSimulator, got {type(simulator).__name__}")
    return simulator


def random_hazy_scene(simulator: ConvolutionSimulator, seed: int) -> HazyScene:
    """The scene of ``seed`` on the simulator's grid (module docstring).

    Parameters
    ----------
    simulator : ConvolutionSimulator
        Sets the probe and the grid.
    seed : int
        ``>= 0``; the same seed gives the same scene on every machine.

    Returns
    -------
    HazyScene
    """
    simulator = _check_simulator(simulator)
    plan = _plan(simulator.grid, check_int(seed, "seed", minimum=0))
    tissue = simulator.from_map(plan.phantom.echogenicity[None, None], seed=plan.speckle_seed)
    haze = simulate_haze(tissue, simulator.grid.probe, **plan.haze_settings, seed=plan.haze_seed)
    return HazyScene(tissue, haze, plan.phantom)


def split_seeds(simulator: ConvolutionSimulator, split: str, count: int, *, with_cyst: bool = True) -> list[int]:
    """The first ``count`` seeds of ``split`` whose scene on the simulator's grid has an anechoic cyst.

    Parameters
    ----------
    simulator : ConvolutionSimulator
    split : {"train", "validation", "test"}
    count : int
        ``>= 1``.
    with_cyst : bool
        Skip scenes without a cyst (gCNR compares a cyst with its surroundings); ``False`` takes consecutive seeds.

    Returns
    -------
    list of int
    """
    simulator = _check_simulator(simulator)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(map(repr, SPLITS))}, got {split!r}")
    count = check_int(count, "count")
    seeds, seed = [], SPLITS[split]
    while len(seeds) < count:
        if not with_cyst or bool(_plan(simulator.grid, seed).phantom.cysts.any()):
            seeds.append(seed)
        seed += 1
    return seeds
