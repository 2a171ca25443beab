"""Training images generated on the fly: random-ellipse phantoms and synthetic CT slices.

Sources ``"phantoms"`` (:class:`PhantomDataset`) and ``"ct-synthetic"``
(:class:`SyntheticCTDataset`); the options are documented in
:mod:`invsolve.datasets.training`.  Item ``i`` is a pure function of ``i`` and
the seed, so nothing is read from disk.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch

from invsolve._checks import check_int, check_range

from ..ct_synthetic import CT_SYNTHETIC_REGIONS, synthetic_ct_slices
from ..phantoms import random_ellipse_phantoms
from .base import TrainingDataset, check_number, check_value_range

__all__ = ["PhantomDataset", "SyntheticCTDataset"]


class PhantomDataset(TrainingDataset):
    """Random-ellipse phantoms generated on the fly (:func:`~invsolve.datasets.random_ellipse_phantoms`).

    Item ``i`` is ``random_ellipse_phantoms(1, size, seed=seed + i, ...)[0]``:
    the same image in every process and after every restart, whatever the
    declared ``length``.  The declared value range is the generator's bound
    ``(0, high · (1 + texture))`` for ``ellipse_values = (low, high)``.

    Parameters
    ----------
    length : int
        Number of items, ``>= 1``.
    size : (H, W) or (D, H, W)
        Shape of the phantoms.
    n_ellipses, texture, max_frequency
        As in :func:`~invsolve.datasets.random_ellipse_phantoms`.
    ellipse_values : (float, float)
        Its ``value_range``: the ellipses' attenuation values.
    ellipse_axes : (float, float)
        Its ``axis_range``: the ellipses' semi-axes in reference units.
    flip, rot90, seed, value_range
        See :class:`TrainingDataset`; ``seed`` is also the phantoms' base seed.
    """

    source = "phantoms"

    def __init__(
        self,
        *,
        length: int,
        size: Sequence[int],
        n_ellipses: int | Sequence[int] = (10, 30),
        ellipse_values: Sequence[float] = (0.1, 1.0),
        ellipse_axes: Sequence[float] = (0.02, 0.4),
        texture: float = 0.15,
        max_frequency: float = 3.0,
        flip: bool = False,
        rot90: bool = False,
        seed: int = 0,
        value_range: Sequence[float] | None = None,
    ) -> None:
        super().__init__(
            size=size, resize=None, channels=None, flip=flip, rot90=rot90, seed=seed,
            value_range=value_range, cache=False,
        )
        self._length = check_int(length, "length")
        self._n_ellipses = tuple(n_ellipses) if isinstance(n_ellipses, list) else n_ellipses
        self._values = check_range(ellipse_values, "ellipse_values", lower=0.0)
        self._axes = check_range(ellipse_axes, "ellipse_axes", lower=0.0)
        self._texture = check_number(texture, "texture")
        self._max_frequency = check_number(max_frequency, "max_frequency")
        # The generator checks the remaining options; one phantom validates them here.
        first = self._load(0, None)
        if self._declared_range is None:
            self._measured_range = (0.0, self._values[1] * (1.0 + self._texture))
        self._settle({tuple(first.shape): "phantom 0"})

    def __len__(self) -> int:
        return self._length

    def _load(self, index: int, generator: torch.Generator | None) -> torch.Tensor:
        return random_ellipse_phantoms(
            1,
            self._size,
            n_ellipses=self._n_ellipses,
            value_range=self._values,
            axis_range=self._axes,
            texture=self._texture,
            max_frequency=self._max_frequency,
            seed=self._seed + index,
        )[0]

    def _name(self, index: int) -> str:
        return f"phantom {index} (seed {self._seed + index})"

    def _config(self) -> dict[str, Any]:
        n_ellipses = self._n_ellipses if isinstance(self._n_ellipses, numbers.Integral) else list(self._n_ellipses)
        return {
            "length": self._length,
            "n_ellipses": n_ellipses,
            "ellipse_values": list(self._values),
            "ellipse_axes": list(self._axes),
            "texture": self._texture,
            "max_frequency": self._max_frequency,
        }


class SyntheticCTDataset(TrainingDataset):
    """Synthetic CT body cross-sections generated on the fly, as attenuation in a.u.

    Item ``i`` is slice ``i`` of :func:`~invsolve.datasets.synthetic_ct_slices`
    for ``seed`` (``synthetic_ct_slices(1, size, seed, start=i, ...)[0]``):
    the same image in every process and after every restart, whatever the
    declared ``length``.  Its Hounsfield units are clipped to ``window`` and
    converted to the attenuation units of the ``"phantoms"`` CT recipe,
    ``a.u. = (HU + 1000) / 2000``: 0 is air (−1000 HU), 0.5 water (0 HU), 1
    dense bone (+1000 HU), i.e. 1 a.u. = 2·μ_water
    (:data:`~invsolve.operators.ct.MU_WATER_PER_MM`), never negative.  The
    declared value range is the window's, in a.u. (``(0, 1.3)`` by default).

    Parameters
    ----------
    length : int
        Number of items, ``>= 1``.
    size : (H, W)
        Shape of the slices.
    window : (float, float)
        ``[low, high]`` in HU, ``-1000 <= low < high``: the slices are clipped
        to it (default ``[-1000, 1600]``, the generator's whole range).
    fill, pixel_mm, regions, contrast, texture, supersample
        As in :func:`~invsolve.datasets.synthetic_ct_slices`.
    flip, rot90, seed, value_range
        See :class:`TrainingDataset`; ``seed`` is also the slices' seed.
    """

    source = "ct-synthetic"

    def __init__(
        self,
        *,
        length: int,
        size: Sequence[int],
        window: Sequence[float] = (-1000.0, 1600.0),
        fill: Sequence[float] | None = None,
        pixel_mm: float | None = None,
        regions: Sequence[str] = CT_SYNTHETIC_REGIONS,
        contrast: float = 0.3,
        texture: float = 1.0,
        supersample: int = 4,
        flip: bool = False,
        rot90: bool = False,
        seed: int = 0,
        value_range: Sequence[float] | None = None,
    ) -> None:
        super().__init__(
            size=size, resize=None, channels=None, flip=flip, rot90=rot90, seed=seed,
            value_range=value_range, cache=False,
        )
        self._length = check_int(length, "length")
        low, high = check_value_range(window, "window")
        if low < -1000.0:
            raise ValueError(f"window must be [low, high] in HU with -1000 <= low < high (air: -1000), got {window!r}")
        self._window = (low, high)
        self._options = {
            "fill": None if fill is None else list(fill),
            "pixel_mm": pixel_mm,
            "regions": [regions] if isinstance(regions, str) else list(regions),
            "contrast": contrast,
            "texture": texture,
            "supersample": supersample,
        }
        # The generator checks its options; one slice validates them here.
        first = self._load(0, None)
        if self._declared_range is None:
            self._measured_range = (_hounsfield_to_units(low), _hounsfield_to_units(high))
        self._settle({tuple(first.shape): "slice 0"})

    def __len__(self) -> int:
        return self._length

    def _load(self, index: int, generator: torch.Generator | None) -> torch.Tensor:
        options = {key: value for key, value in self._options.items() if value is not None}
        hounsfield = synthetic_ct_slices(1, self._size, self._seed, start=index, **options)[0]
        return _hounsfield_to_units(hounsfield.clamp(*self._window))

    def _name(self, index: int) -> str:
        return f"synthetic CT slice {index} (seed {self._seed})"

    def _config(self) -> dict[str, Any]:
        options = {key: value for key, value in self._options.items() if value is not None}
        return {"length": self._length, "window": list(self._window), **options}


def _hounsfield_to_units(hounsfield: Any) -> Any:
    """HU -> the CT recipes' attenuation units, ``(HU + 1000) / 2000`` clipped at 0 (float or tensor)."""
    if isinstance(hounsfield, torch.Tensor):
        return ((hounsfield + 1000.0) / 2000.0).clamp_min(0.0)
    return max(0.0, (hounsfield + 1000.0) / 2000.0)
