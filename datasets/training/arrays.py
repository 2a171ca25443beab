"""Training images from arrays in HDF5 and FITS files.

Sources ``"fastmri"`` (:class:`FastMRITargetDataset`: fastMRI magnitude
targets), ``"fits"`` (:class:`FITSCutoutDataset`: images or cutouts of FITS
HDUs) and ``"hdf5"`` (:class:`HDF5ArrayDataset`: images stacked in one HDF5
dataset); the options are documented in :mod:`invsolve.datasets.training`.
Files are opened and checked through :mod:`invsolve.datasets.io.checks` (HDF5:
h5py opens it, so truncation is found, and the datasets' filters are
available; FITS: every HDU's data lies inside the file, no header is cut short,
``.gz`` streams are complete) when the dataset is built, and a read that fails
later names the file.  h5py and astropy are imported inside the functions that use them.
"""

from __future__ import annotations

import bisect
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invsolve._checks import check_int, check_shape

from ..io.checks import check_hdf5_dataset, open_fits, open_hdf5, reading
from .base import TrainingDataset, digest, existing_path, find_files

__all__ = ["FastMRITargetDataset", "FITSCutoutDataset", "HDF5ArrayDataset"]

_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
_HDF5_LAYOUTS = {3: "NHW", 4: "NCHW", 5: "NCDHW"}
_HDF5_ALL_LAYOUTS = ("NHW", "NCHW", "NHWC", "NDHW", "NCDHW")
# Elements read per block when scanning an HDF5 dataset's range (64 MiB of float32).
_HDF5_SCAN_ELEMENTS = 1 << 24
# Draws of a random FITS crop before giving up on finding one without NaN.
_MAX_CROP_DRAWS = 100


class FastMRITargetDataset(TrainingDataset):
    """Magnitude targets of fastMRI files, ``(1, H', W')`` per slice.

    Reads through :class:`~invsolve.datasets.io.fastmri.FastMRISliceDataset`
    (one per file, validated once); every file must hold a target dataset,
    so test and challenge files are refused.  The declared value range is
    ``(0, max)`` over the files' ``max`` attributes (the targets are
    magnitudes) when every file has one, else it is measured.

    Parameters
    ----------
    path : str or os.PathLike
        A fastMRI ``.h5`` file or a folder of them (not recursive, sorted by name).
    target_key : str, optional
        ``"reconstruction_rss"`` or ``"reconstruction_esc"`` (or another
        dataset name); by default the multi-coil or single-coil target of each file.
    size, resize, channels, flip, rot90, seed, value_range, cache, zoom
        See :class:`TrainingDataset`.

    Notes
    -----
    ``FastMRISliceDataset`` reads a slice's k-space along with its target, so
    each item costs one k-space slice read; ``cache = true`` avoids repeating it.
    """

    source = "fastmri"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        target_key: str | None = None,
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
        from ..io.fastmri import FastMRISliceDataset

        super().__init__(
            size=size, resize=resize, channels=channels, flip=flip, rot90=rot90, seed=seed,
            value_range=value_range, cache=cache, zoom=zoom,
        )
        if target_key is not None and (not isinstance(target_key, str) or not target_key):
            raise TypeError(f"target_key must be a non-empty string or None, got {target_key!r}")
        self._target_key = target_key
        self._root = existing_path(path, "path")
        files = sorted(self._root.glob("*.h5")) if self._root.is_dir() else [self._root]
        if not files:
            raise ValueError(f"path: folder {self._root} holds no fastMRI .h5 files")
        self._files = [FastMRISliceDataset(file, target_key=target_key, require_header=False) for file in files]
        self._ends = list(np.cumsum([len(slices) for slices in self._files]).tolist())
        layouts: dict[tuple[int, ...], str] = {}
        maxima = []
        for file, slices in zip(files, self._files):
            sample = slices[0]
            if sample["target"] is None:
                raise ValueError(
                    f"{file}: has no target dataset (reconstruction_rss or reconstruction_esc; a test or "
                    "challenge file?); training needs reference images, or name one with target_key"
                )
            layouts.setdefault((1, *sample["target"].shape), str(file))
            maxima.append(sample["max"])
        if self._declared_range is None and all(isinstance(value, numbers.Real) for value in maxima):
            self._measured_range = (0.0, float(max(maxima)))
        self._settle(layouts)

    def __len__(self) -> int:
        return self._ends[-1]

    def _locate(self, index: int) -> tuple[int, int]:
        which = bisect.bisect_right(self._ends, index)
        return which, index - (self._ends[which - 1] if which else 0)

    def _load(self, index: int, generator: torch.Generator | None) -> torch.Tensor:
        which, position = self._locate(index)
        return self._files[which][position]["target"][None]

    def _name(self, index: int) -> str:
        which, position = self._locate(index)
        return f"{self._files[which].files[0]} [slice {position}]"

    def _config(self) -> dict[str, Any]:
        config = {"path": str(self._root), "target_key": self._target_key}
        return {key: value for key, value in config.items() if value is not None}

    def _facts(self) -> dict[str, Any]:
        files = [slices.files[0] for slices in self._files]
        return {"num_files": len(files), "files_sha256": digest(self._root, files)}


class FITSCutoutDataset(TrainingDataset):
    """Images or cutouts of FITS image HDUs (``astropy.io.fits``).

    Arrays are as astropy returns them, ``data[y, x]`` with ``BSCALE``/``BZERO``
    applied: row 0 is the first FITS row (``y = 1``, the bottom of an image
    displayed with ``origin="lower"``).  Every file is read once at
    construction to check the HDU, the cutouts and missing values, and to
    measure the value range.

    Parameters
    ----------
    path : str or os.PathLike
        A FITS file (``.fits``, ``.fit``, ``.fts``, optionally ``.gz``) or a
        folder searched recursively for them (sorted by path).
    hdu : int or str, optional
        The HDU, by index or ``EXTNAME``; by default the first HDU holding a 2D image.
    cutout : (int, int), optional
        ``(h, w)`` cutout size; by default the whole image.
    centre : (int, int), optional
        ``(row, column)`` of the fixed cutout's centre, 0-based array indices
        (rows ``[row − h//2, row − h//2 + h)``); by default the image centre.
    random_crops : int, optional
        Instead of a fixed cutout, this many crops per image, at positions
        drawn uniformly per item and epoch (see the contract in :mod:`invsolve.datasets.training`).
    nan : "error", "skip" or float
        Non-finite pixels (NaN, ±inf) in a cutout: an error naming the file
        (default); ``"skip"``: leave out fixed cutouts that hold one, and draw
        random crops again (up to 100 times); a number: replace them by it.
    size, resize, channels, flip, rot90, seed, value_range, cache, zoom
        See :class:`TrainingDataset` (``cache`` only without ``random_crops``).

    Notes
    -----
    Each item reads its whole HDU again; for fixed cutouts, ``cache = true``
    reads every file once.
    """

    source = "fits"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        hdu: int | str | None = None,
        cutout: Sequence[int] | None = None,
        centre: Sequence[int] | None = None,
        random_crops: int | None = None,
        nan: str | float = "error",
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
        self._crops = check_int(random_crops, "random_crops", optional=True)
        self._random_source = self._crops is not None
        super().__init__(
            size=size, resize=resize, channels=channels, flip=flip, rot90=rot90, seed=seed,
            value_range=value_range, cache=cache, zoom=zoom,
        )
        if hdu is not None and (isinstance(hdu, bool) or not isinstance(hdu, (numbers.Integral, str))):
            raise TypeError(f"hdu must be an HDU index (int), an EXTNAME (str) or None, got {hdu!r}")
        self._hdu = hdu
        self._cutout = None if cutout is None else check_shape(cutout, "cutout", ("h", "w"))
        self._centre = None if centre is None else _check_pixel(centre, "centre")
        if self._crops is not None and (self._cutout is None or self._centre is not None):
            raise ValueError("random_crops needs cutout = [h, w] and no centre (crops are placed at random)")
        if self._centre is not None and self._cutout is None:
            raise ValueError("centre needs cutout = [h, w]")
        self._nan = _check_nan_rule(nan)
        self._root = existing_path(path, "path")
        files = find_files(self._root, _FITS_SUFFIXES) if self._root.is_dir() else [self._root]
        if not files:
            raise ValueError(f"path: folder {self._root} holds no FITS files ({', '.join(_FITS_SUFFIXES)})")
        self._files: list[Path] = []
        self._hdus: list[int] = []
        self._corners: list[tuple[int, int]] = []
        self._image_shapes: list[tuple[int, int]] = []
        low, high = math.inf, -math.inf
        for file in files:
            number, data = _read_fits(file, hdu)
            region, corner = self._region(file, data)
            finite = np.isfinite(region)
            if not finite.all():
                if self._nan == "error":
                    raise ValueError(
                        f"{file}: the {'image' if self._cutout is None else 'cutout region'} holds "
                        f"{int((~finite).sum())} NaN or infinite pixels; set nan = \"skip\" or nan = <value>"
                    )
                if self._nan == "skip" and self._crops is None:
                    continue
                if self._nan != "skip":
                    low, high = min(low, self._nan), max(high, self._nan)
            if finite.any():
                low, high = min(low, float(region[finite].min())), max(high, float(region[finite].max()))
            self._files.append(file)
            self._hdus.append(number)
            self._corners.append(corner)
            self._image_shapes.append(data.shape)
        if not self._files:
            raise ValueError(f"every cutout under {self._root} holds NaN or infinite pixels (nan = \"skip\")")
        if self._declared_range is None:
            self._measured_range = (low, high)
        if self._cutout is not None:
            layouts = {(1, *self._cutout): str(self._files[0])}
        else:
            layouts = {}
            for file, shape in zip(self._files, self._image_shapes):
                layouts.setdefault((1, *shape), str(file))
        self._settle(layouts)

    def _region(self, file: Path, data: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """The pixels items of ``file`` may use and the fixed cutout's corner (``(0, 0)`` otherwise)."""
        if self._cutout is None:
            return data, (0, 0)
        height, width = data.shape
        h, w = self._cutout
        if h > height or w > width:
            raise ValueError(f"{file}: cutout = {list(self._cutout)} is larger than the image ({height}×{width})")
        if self._crops is not None:
            return data, (0, 0)
        if self._centre is None:
            top, left = (height - h) // 2, (width - w) // 2
        else:
            top, left = self._centre[0] - h // 2, self._centre[1] - w // 2
            if top < 0 or left < 0 or top + h > height or left + w > width:
                raise ValueError(
                    f"{file}: a {h}×{w} cutout centred at centre = {list(self._centre)} spans rows "
                    f"[{top}, {top + h}) and columns [{left}, {left + w}), outside the {height}×{width} image"
                )
        return data[top : top + h, left : left + w], (top, left)

    def __len__(self) -> int:
        return len(self._files) * (self._crops or 1)

    def _load(self, index: int, generator: torch.Generator | None) -> torch.Tensor:
        which = index // (self._crops or 1)
        file = self._files[which]
        _, data = _read_fits(file, self._hdus[which])
        if self._cutout is None:
            region = data
        elif self._crops is None:
            (top, left), (h, w) = self._corners[which], self._cutout
            region = data[top : top + h, left : left + w]
        else:
            region = self._random_crop(file, data, generator)
        if self._nan != "error" and self._nan != "skip":
            region = np.where(np.isfinite(region), region, np.float32(self._nan))
        return torch.from_numpy(np.ascontiguousarray(region, dtype=np.float32))[None]

    def _random_crop(self, file: Path, data: np.ndarray, generator: torch.Generator) -> np.ndarray:
        (height, width), (h, w) = data.shape, self._cutout
        for _ in range(_MAX_CROP_DRAWS):
            top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
            left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
            region = data[top : top + h, left : left + w]
            if self._nan != "skip" or np.isfinite(region).all():
                return region
        raise ValueError(
            f"{file}: no {h}×{w} crop without NaN found in {_MAX_CROP_DRAWS} random draws (nan = \"skip\")"
        )

    def _name(self, index: int) -> str:
        which = index // (self._crops or 1)
        return f"{self._files[which]} [HDU {self._hdus[which]}]"

    def _config(self) -> dict[str, Any]:
        config = {
            "path": str(self._root),
            "hdu": self._hdu,
            "cutout": None if self._cutout is None else list(self._cutout),
            "centre": None if self._centre is None else list(self._centre),
            "random_crops": self._crops,
            "nan": self._nan,
        }
        return {key: value for key, value in config.items() if value is not None}

    def _facts(self) -> dict[str, Any]:
        return {"num_files": len(self._files), "files_sha256": digest(self._root, self._files)}


class HDF5ArrayDataset(TrainingDataset):
    """Images stacked along the first axis of one HDF5 dataset.

    The file is opened for each item and closed again, so no HDF5 handle
    crosses a ``DataLoader`` worker boundary.

    Parameters
    ----------
    path : str or os.PathLike
        The HDF5 file.
    key : str
        Path of the dataset inside the file, e.g. ``"images"`` or ``"train/x"``.
    layout : {"NHW", "NCHW", "NHWC", "NDHW", "NCDHW"}, optional
        Axes of the dataset (``N`` items); by default ``NHW`` for 3 axes,
        ``NCHW`` for 4 and ``NCDHW`` for 5.
    size, resize, channels, flip, rot90, seed, value_range, cache, zoom
        See :class:`TrainingDataset`.
    """

    source = "hdf5"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        key: str,
        layout: str | None = None,
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
        import h5py

        super().__init__(
            size=size, resize=resize, channels=channels, flip=flip, rot90=rot90, seed=seed,
            value_range=value_range, cache=cache, zoom=zoom,
        )
        if not isinstance(key, str) or not key:
            raise TypeError(f"key must be the non-empty name of an HDF5 dataset, got {key!r}")
        if layout is not None and layout not in _HDF5_ALL_LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(map(repr, _HDF5_ALL_LAYOUTS))}, got {layout!r}")
        self._path = existing_path(path, "path")
        self._key = key
        with open_hdf5(self._path) as file:
            if key not in file or not isinstance(file[key], h5py.Dataset):
                datasets = []
                file.visititems(lambda name, node: datasets.append(name) if isinstance(node, h5py.Dataset) else None)
                raise ValueError(
                    f"{self._path}: key = {key!r} is not a dataset in the file; its datasets are {datasets}"
                )
            dataset = file[key]
            check_hdf5_dataset(dataset, f"{self._path}:{key}")
            shape, dtype = dataset.shape, dataset.dtype
        if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating) or dtype == np.bool_):
            raise TypeError(f"{self._path}:{key} must hold real numbers, found dtype {dtype}")
        self._layout = layout if layout is not None else _HDF5_LAYOUTS.get(len(shape))
        if self._layout is None or len(self._layout) != len(shape):
            raise ValueError(
                f"{self._path}:{key} has shape {shape}; expected {'/'.join(_HDF5_ALL_LAYOUTS)} "
                f"(layout = {layout!r})"
            )
        if shape[0] == 0:
            raise ValueError(f"{self._path}:{key} holds no images (shape {shape})")
        self._length = shape[0]
        item = dict(zip(self._layout[1:], shape[1:]))
        spatial = tuple(item[axis] for axis in "DHW" if axis in item)
        self._settle({(item.get("C", 1), *spatial): f"{self._path}:{key}"})

    def __len__(self) -> int:
        return self._length

    def _arrange(self, block: np.ndarray) -> np.ndarray:
        """``(n, *item axes)`` in the file's layout -> ``(n, C, *spatial)`` float32."""
        block = block.astype(np.float32)
        if "C" not in self._layout:
            return block[:, None]
        return np.moveaxis(block, -1, 1) if self._layout == "NHWC" else block

    def _load(self, index: int, generator: torch.Generator | None) -> torch.Tensor:
        with open_hdf5(self._path) as file:
            block = file[self._key][index : index + 1]
        return torch.from_numpy(np.ascontiguousarray(self._arrange(block)[0]))

    def _scan_range(self) -> tuple[float, float]:
        if self._cached is not None:
            return super()._scan_range()
        low, high = math.inf, -math.inf
        with open_hdf5(self._path) as file:
            dataset = file[self._key]
            step = max(1, _HDF5_SCAN_ELEMENTS // max(1, math.prod(dataset.shape[1:])))
            for start in range(0, self._length, step):
                block = dataset[start : start + step]
                low, high = min(low, float(block.min())), max(high, float(block.max()))
        return low, high

    def _name(self, index: int) -> str:
        return f"{self._path}:{self._key}[{index}]"

    def _config(self) -> dict[str, Any]:
        return {"path": str(self._path), "key": self._key, "layout": self._layout}

    def _facts(self) -> dict[str, Any]:
        return {"num_files": 1, "files_sha256": digest(self._path.parent, [self._path])}


# -- helpers -----------------------------------------------------------------------
def _check_pixel(value: object, name: str) -> tuple[int, int]:
    message = f"{name} must be a pair [row, column] of ints >= 0, got {value!r}"
    try:
        row, column = value
    except (TypeError, ValueError):
        raise ValueError(message) from None
    return check_int(row, f"{name}[0]", 0), check_int(column, f"{name}[1]", 0)


def _check_nan_rule(value: object) -> str | float:
    if value in ("error", "skip"):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"nan must be \"error\", \"skip\" or a finite number to replace NaN by, got {value!r}")
    return float(value)


def _read_fits(file: Path, hdu: int | str | None) -> tuple[int, np.ndarray]:
    """Index of the chosen image HDU of ``file`` and its data as float32 ``(H, W)``.

    The file is checked by :func:`~invsolve.datasets.io.checks.open_fits`
    (headers, data lengths, complete ``.gz`` streams) before its data is read.
    """
    with open_fits(file) as hdus:
        shapes = [tuple(h.shape) if h.is_image and h.shape else None for h in hdus]  # from the headers
        names = [h.name for h in hdus]
        if hdu is None:
            images = [i for i, shape in enumerate(shapes) if shape is not None and len(shape) == 2]
            if not images:
                raise ValueError(
                    f"{file}: holds no HDU with a 2D image (its HDUs: {names}, shapes {shapes}); cut cubes into "
                    "2D planes first"
                )
            number = images[0]
        else:
            try:
                number = hdus.index_of(hdu)
                chosen = hdus[number]
            except (KeyError, IndexError):
                raise ValueError(f"{file}: has no HDU {hdu!r}; its HDUs are {names}") from None
            if shapes[number] is None or len(shapes[number]) != 2:
                raise ValueError(
                    f"{file}: HDU {hdu!r} must hold a 2D image, found {type(chosen).__name__} of shape {shapes[number]}"
                )
        with reading(file):
            return number, np.asarray(hdus[number].data, dtype=np.float32)
