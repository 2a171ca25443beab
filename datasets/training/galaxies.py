"""Conditional training sources of galaxies: items ``{"image", "condition"}``.

Source ``"galaxy-world"`` (:class:`GalaxyWorldDataset`) renders the synthetic
galaxy world of :mod:`invsolve.datasets.galaxy_world`; its condition is each
galaxy's Galaxy Zoo 2 morphology vector (37 vote fractions,
:data:`~invsolve.datasets.morphology.MORPHOLOGY`).  Source
``"galaxy-catalog"`` (:class:`GalaxyCatalogDataset`) reads real galaxies:
the images of a catalogue of :mod:`invsolve.datasets.galaxy_zoo` (GZ2 with its
image mapping, the Kaggle challenge, Galaxy10 DECaLS, FITS cutouts), each
conditioned on its morphology vector or on chosen catalogue columns or FITS
header keywords.  The options are documented in :mod:`invsolve.datasets.training`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invsolve._checks import check_int

from ..galaxy_world import (
    DEFAULT_CLASS_FREQUENCIES,
    RENDERERS,
    class_frequencies,
    morphology_of,
    random_galaxy,
    render_galaxy,
)
from ..morphology import MORPHOLOGY
from .base import TrainingDataset

__all__ = ["GalaxyWorldDataset", "GalaxyCatalogDataset"]


class GalaxyWorldDataset(TrainingDataset):
    """Rendered galaxies with their morphology vectors (:func:`~invsolve.datasets.galaxy_world.random_galaxy`).

    Item ``i`` is the galaxy of seed ``seed + i``, rendered by
    :func:`~invsolve.datasets.galaxy_world.render_galaxy` (noise seeded the
    same way) and conditioned on :func:`~invsolve.datasets.galaxy_world.morphology_of`.
    Rendering takes ~50 ms a stamp, so a training run sets ``cache = true``
    (all stamps rendered once, at construction) and augments them with
    ``flip`` and ``rot90``, which keep the morphology.  The declared value
    range is ``(−0.15, 1.15)``: stamps have a noise-free peak of 1 and sky
    noise of at most 0.03.

    Parameters
    ----------
    length : int
        Number of galaxies, ``>= 1``.
    size : (H, W)
        Stamp size, square, ``>= 16`` pixels of 0.396″.
    frequencies : mapping, optional
        Class weights ``{class: weight}`` (default
        :data:`~invsolve.datasets.galaxy_world.DEFAULT_CLASS_FREQUENCIES`,
        the dust-lane early type at 2 %).
    renderer : {"auto", "galsim", "astropy"}
        galsim when installed, else the astropy fallback.
    flip, rot90, seed, value_range, cache
        See :class:`TrainingDataset`; ``seed`` is also the galaxies' base seed.
    """

    source = "galaxy-world"

    def __init__(
        self,
        *,
        length: int,
        size: Sequence[int] = (64, 64),
        frequencies: Mapping[str, float] | None = None,
        renderer: str = "auto",
        flip: bool = False,
        rot90: bool = False,
        seed: int = 0,
        value_range: Sequence[float] | None = None,
        cache: bool = False,
    ) -> None:
        super().__init__(
            size=size, resize=None, channels=None, flip=flip, rot90=rot90, seed=seed,
            value_range=value_range, cache=cache,
        )
        self._length = check_int(length, "length")
        if len(self._size) != 2 or self._size[0] != self._size[1]:
            raise ValueError(f"size must be square [H, H] for galaxy stamps, got {list(self._size)}")
        class_frequencies(frequencies)  # validates
        self._frequencies = dict(DEFAULT_CLASS_FREQUENCIES if frequencies is None else frequencies)
        if renderer not in RENDERERS:
            raise ValueError(f"renderer must be one of {', '.join(RENDERERS)}, got {renderer!r}")
        self._renderer = renderer
        if self._declared_range is None:
            self._measured_range = (-0.15, 1.15)
        self._settle({(1, *self._size): "galaxy 0"})

    def __len__(self) -> int:
        return self._length

    @property
    def condition_size(self) -> int:
        return len(MORPHOLOGY)

    @property
    def condition_names(self) -> list[str]:
        return list(MORPHOLOGY.names)

    def _galaxy(self, index: int) -> Any:
        return random_galaxy(self._seed + index, frequencies=self._frequencies)

    def _load(self, index: int, generator: torch.Generator | None) -> torch.Tensor:
        stamp = render_galaxy(self._galaxy(index), self._size[0], seed=self._seed + index, renderer=self._renderer)
        return torch.from_numpy(stamp)

    def _condition(self, index: int) -> torch.Tensor:
        return torch.from_numpy(morphology_of(self._galaxy(index)))

    def _name(self, index: int) -> str:
        return f"galaxy {index} (seed {self._seed + index})"

    def _config(self) -> dict[str, Any]:
        return {"length": self._length, "frequencies": self._frequencies, "renderer": self._renderer}


class GalaxyCatalogDataset(TrainingDataset):
    """Galaxy images of a catalogue, each with its condition.

    Item ``i`` is row ``i`` of the catalogue (of the rows ``query``
    selects): its image (:func:`~invsolve.datasets.galaxy_zoo.catalog_image`,
    resized to ``size`` by ``resize``) and its condition.

    Parameters
    ----------
    path : path-like
        The catalogue (:func:`~invsolve.datasets.galaxy_zoo.read_catalog`).
    kind : {"auto", "hart16", "kaggle", "galaxy10", "fits"}
        Its kind (recognised from the file by default).
    images, mapping : path-like, optional
        The image folder (hart16, kaggle) and the GZ2 objid → asset_id mapping (hart16).
    query : str, optional
        Keep only the rows it selects (:func:`~invsolve.datasets.galaxy_zoo.select_rows`).
    condition : "morphology" or list of str
        ``"morphology"`` (default): the 37 vote fractions.  A list of names:
        those numeric catalogue columns (e.g. ``["label"]`` of Galaxy10, or
        ``["redshift"]``), in that order; FITS cutouts have a column per
        numeric header keyword (:func:`~invsolve.datasets.galaxy_zoo.read_fits_cutouts`).
    size, resize, channels, flip, rot90, seed, value_range, cache, zoom
        See :class:`TrainingDataset`.
    """

    source = "galaxy-catalog"

    def __init__(
        self,
        *,
        path: str | os.PathLike,
        kind: str = "auto",
        images: str | os.PathLike | None = None,
        mapping: str | os.PathLike | None = None,
        query: str | None = None,
        condition: str | Sequence[str] = "morphology",
        size: Sequence[int] | None = None,
        resize: str | None = None,
        channels: int | None = None,
        flip: bool = False,
        rot90: bool = False,
        seed: int = 0,
        value_range: Sequence[float] | None = None,
        cache: bool = False,
        zoom: Sequence[float] | None = None,
    ) -> None:
        from ..galaxy_zoo import read_catalog, select_rows

        super().__init__(size=size, resize=resize, channels=channels, flip=flip, rot90=rot90, seed=seed,
                         value_range=value_range, cache=cache, zoom=zoom)
        table = read_catalog(path, kind=kind, mapping=mapping, images=images)
        if "image" not in table.colnames:
            raise ValueError(f"the catalogue {path} has no images: give images = the image folder"
                             + (" and mapping = the GZ2 image-name mapping" if table.meta["source"] == "hart16" else ""))
        if query is not None:
            table = table[select_rows(table, query)]
            if len(table) == 0:
                raise ValueError(f"query {query!r} selects none of the rows of {path}")
        self._table = table
        self._options = {"path": str(Path(path).resolve()), "kind": table.meta["source"], "query": query,
                         "images": None if images is None else str(Path(images).resolve()),
                         "mapping": None if mapping is None else str(Path(mapping).resolve())}
        self._condition_spec = condition if condition == "morphology" else list(condition)
        self._conditions = self._read_conditions(table, self._condition_spec)
        # every image is read once here, so that a damaged file fails now, not in the middle of training;
        # with cache = true those reads fill the cache
        layouts: dict[tuple[int, ...], str] = {}
        loaded = []
        for index in range(len(self)):
            image = self._load(index, None)
            layouts.setdefault(tuple(image.shape), self._name(index))
            if self._cache:
                loaded.append(image)
        self._settle(layouts, loaded if self._cache else None)

    @staticmethod
    def _read_conditions(table: Any, spec: str | list[str]) -> torch.Tensor:
        if spec == "morphology":
            return torch.as_tensor(np.asarray(table["morphology"], dtype=np.float32))
        if not spec or not all(isinstance(name, str) for name in spec):
            raise ValueError(f'condition must be "morphology" or a non-empty list of column names, got {spec!r}')
        columns = []
        for name in spec:
            if name in table.colnames and np.asarray(table[name]).ndim == 1:
                values = np.asarray(table[name], dtype=np.float64)
            else:
                from ..galaxy_zoo import _numeric_columns

                numeric = _numeric_columns(table)
                raise ValueError(f"condition column {name!r} is not in the catalogue; numeric columns: "
                                 f"{', '.join(numeric)} (or \"morphology\" for the 37 vote fractions)")
            if not np.isfinite(values).all():
                raise ValueError(f"condition column {name!r} holds {int((~np.isfinite(values)).sum())} missing or "
                                 "non-finite values")
            columns.append(values)
        return torch.as_tensor(np.stack(columns, axis=1), dtype=torch.float32)

    def __len__(self) -> int:
        return len(self._table)

    @property
    def condition_size(self) -> int:
        return int(self._conditions.shape[1])

    @property
    def condition_names(self) -> list[str]:
        return list(MORPHOLOGY.names) if self._condition_spec == "morphology" else list(self._condition_spec)

    def _load(self, index: int, generator: torch.Generator | None) -> torch.Tensor:
        from ..galaxy_zoo import catalog_image

        return torch.from_numpy(catalog_image(self._table, index))

    def _condition(self, index: int) -> torch.Tensor:
        return self._conditions[index].clone()

    def _name(self, index: int) -> str:
        return f"row {index} of {self._options['path']} (id {self._table['id'][index]})"

    def _config(self) -> dict[str, Any]:
        return {**{k: v for k, v in self._options.items() if v is not None}, "condition": self._condition_spec}

    def _facts(self) -> dict[str, Any]:
        return {"rows": len(self._table)}

