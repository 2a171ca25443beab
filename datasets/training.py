"""Training images for diffusion priors: torch ``Dataset`` sources and a config factory.

Every dataset here yields float32 tensors shaped ``(C, H, W)`` (2D items) or
``(C, D, H, W)`` (3D items: phantoms of a 3D ``size``, HDF5 layouts ``NDHW`` and
``NCDHW``, whole volumes with ``axis = "none"``), all of one shape, so the default
``DataLoader`` collate stacks them into ``(B, C, *spatial)``.  Build one from the
``[data]`` section of a training config with :func:`training_dataset`::

    [data]
    source = "image-folder"
    path = "photos"
    size = [64, 64]
    resize = "area"
    flip = true

Sources
-------
``"image-folder"`` (:class:`ImageFolderDataset`)
    PNG, JPEG, TIFF (MONAI ``LoadImage`` with ``PILReader``) and ``.npy`` files
    (numpy) in a folder, searched recursively, in sorted order.
``"volumes"`` (:class:`VolumeSliceDataset`)
    NIfTI files (``NibabelReader``) and DICOM series (``PydicomReader``) cut
    into 2D slices along one axis, with an optional slice range, empty-slice
    skipping and an intensity window.
``"fastmri"`` (:class:`FastMRITargetDataset`)
    The magnitude targets (``reconstruction_rss``/``reconstruction_esc``) of
    fastMRI HDF5 files, read through :class:`~invsolve.datasets.io.fastmri.FastMRISliceDataset`.
``"fits"`` (:class:`FITSCutoutDataset`)
    Images or cutouts (fixed or random) of FITS image HDUs, read with ``astropy.io.fits``.
``"hdf5"`` (:class:`HDF5ArrayDataset`)
    Images stacked along the first axis of one HDF5 dataset.
``"phantoms"`` (:class:`PhantomDataset`)
    Random-ellipse phantoms generated on the fly, item ``i`` from seed ``seed + i``.
``"ct-synthetic"`` (:class:`SyntheticCTDataset`)
    Synthetic CT body cross-sections (:func:`~invsolve.datasets.synthetic_ct_slices`)
    generated on the fly, item ``i`` the slice of index ``i`` of seed ``seed``,
    in the attenuation units of the ``"phantoms"`` CT recipe (1 a.u. = 2·μ_water).

Common options
--------------
``size``, ``resize``
    Item size ``[H, W]`` (or ``[D, H, W]``) and how source images of another
    size reach it: ``"area"`` (mean over pixel blocks, for shrinking),
    ``"bilinear"`` (2D, antialiased when shrinking), ``"trilinear"`` (3D) or
    ``"center-crop"`` (the central window; sources must be at least that
    large).  Without ``size`` all source images must share one size.
``channels``
    Expected channel count; a source whose images have another count is an error.
``flip``, ``rot90``, ``seed``
    Random flips of every spatial axis and rotations by multiples of 90° in
    the ``(H, W)`` plane (which needs ``H == W``).
``value_range``
    ``[low, high]`` declared instead of measured (see below).
``cache``
    Read every item once at construction and keep them in memory (as one
    tensor, shared copy-on-write with ``DataLoader`` worker processes).

Reproducibility contract
------------------------
Item ``i`` of epoch ``e`` is a pure function of ``(i, e, seed)`` and the source
files.  Its random numbers (flips, rotations, random crops) come from a
generator seeded with ``numpy.random.SeedSequence((seed, e, i, stream))``,
never from global random state, so a trainer that resumes from a checkpoint
gets the same tensors bit for bit, in any ``DataLoader`` worker and in any
order.  ``dataset[i]`` uses the epoch last given to :meth:`TrainingDataset.set_epoch`;
``dataset[(i, e)]`` names the epoch explicitly.  Worker processes hold copies
of the dataset, so a ``set_epoch`` call reaches them only if they are started
after it (the default, ``persistent_workers=False``); :class:`EpochSampler`
yields ``(i, e)`` pairs and works in both cases, and its shuffled order is
itself a pure function of ``(seed, e)``.

Intensities
-----------
Images are returned in their stored units (8-bit grey levels, Hounsfield
units after the DICOM rescale, FITS values after ``BSCALE``/``BZERO``,
fastMRI magnitudes); nothing is normalised here, the prior's normalisation
does that.  Every dataset has a ``value_range``: the window or the range a
source declares, or else the minimum and maximum of the source pixels, measured
once on first use.  Resizing (convex weights) and cropping keep every item
within it.  :meth:`TrainingDataset.describe` gives a JSON-serialisable record
of the dataset for checkpoints.

Heavy readers (MONAI, nibabel, pydicom, h5py, astropy, PIL) are imported
inside the functions that use them, so importing this module stays light.
This module imports neither operators nor priors.
"""

from __future__ import annotations

import abc
import bisect
import hashlib
import inspect
import logging
import math
import numbers
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from invsolve._checks import check_finite_number, check_int, check_range, check_shape

from .ct_synthetic import CT_SYNTHETIC_REGIONS, synthetic_ct_slices
from .phantoms import random_ellipse_phantoms

__all__ = [
    "TRAINING_SOURCES",
    "TrainingDataset",
    "ImageFolderDataset",
    "VolumeSliceDataset",
    "FastMRITargetDataset",
    "FITSCutoutDataset",
    "HDF5ArrayDataset",
    "PhantomDataset",
    "SyntheticCTDataset",
    "EpochSampler",
    "training_dataset",
]

_RESIZE_RULES = ("area", "bilinear", "trilinear", "center-crop")
_SIZE_LAYOUTS = (("H", "W"), ("D", "H", "W"))
# Streams of the per-item generators (the last SeedSequence entry).
_AUGMENT_STREAM = 0
_SOURCE_STREAM = 1
_ORDER_STREAM = 2
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")
_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_DICOM_SUFFIX = ".dcm"
# PIL modes kept as read, with their channel counts; every other mode is converted to RGB
# (palette, CMYK, YCbCr, ...) except bilevel "1", which becomes "L".
_PIL_CHANNELS = {"L": 1, "I": 1, "F": 1, "I;16": 1, "I;16L": 1, "I;16B": 1, "LA": 2, "RGB": 3, "RGBA": 4}
_HDF5_LAYOUTS = {3: "NHW", 4: "NCHW", 5: "NCDHW"}
_HDF5_ALL_LAYOUTS = ("NHW", "NCHW", "NHWC", "NDHW", "NCDHW")
# Elements read per block when scanning an HDF5 dataset's range (64 MiB of float32).
_HDF5_SCAN_ELEMENTS = 1 << 24
# Draws of a random FITS crop before giving up on finding one without NaN.
_MAX_CROP_DRAWS = 100


def _item_generator(seed: int, epoch: int, index: int, stream: int) -> torch.Generator:
    """A CPU generator seeded from ``SeedSequence((seed, epoch, index, stream))``."""
    high, low = np.random.SeedSequence((seed, epoch, index, stream)).generate_state(2, np.uint32)
    return torch.Generator().manual_seed((int(high) << 32) | int(low))


class TrainingDataset(Dataset, abc.ABC):
    """Base class of the training-image datasets (module docstring: contract).

    Subclasses read their sources, then call :meth:`_settle` with the shapes
    found, and implement :meth:`_load` (one source image, before resizing),
    :meth:`_name` (an item's file, for messages) and :meth:`_config`.

    Parameters
    ----------
    size : (H, W) or (D, H, W), optional
        Spatial size of the items; by default the sources' common size.
    resize : {"area", "bilinear", "trilinear", "center-crop"}, optional
        How source images of another size are brought to ``size``.
    channels : int, optional
        Expected number of channels ``C``.
    flip : bool
        Random flip of each spatial axis with probability 1/2.
    rot90 : bool
        Random rotation by ``k · 90°``, ``k`` uniform in 0..3, in the ``(H, W)``
        plane; needs ``H == W``.
    seed : int
        Seed of the augmentations (and of random crops), ``>= 0``.
    value_range : (float, float), optional
        Declared ``(low, high)``, ``low < high``, instead of the measured range.
    cache : bool
        Keep all items (resized, not augmented) in memory, read at construction.
    """

    source: ClassVar[str]
    # Whether _load draws random numbers (random crops): such items cannot be cached.
    _random_source: bool = False

    def __init__(
        self,
        *,
        size: Sequence[int] | None,
        resize: str | None,
        channels: int | None,
        flip: bool,
        rot90: bool,
        seed: int,
        value_range: Sequence[float] | None,
        cache: bool,
    ) -> None:
        self._size = None if size is None else check_shape(size, "size", *_SIZE_LAYOUTS)
        if resize is not None and resize not in _RESIZE_RULES:
            raise ValueError(f"resize must be one of {', '.join(map(repr, _RESIZE_RULES))}, got {resize!r}")
        if resize is not None and size is None:
            raise ValueError(f"resize = {resize!r} needs a target size: set size = [H, W] (or [D, H, W])")
        self._resize = resize
        self._channels = check_int(channels, "channels", optional=True)
        self._flip = _check_bool(flip, "flip")
        self._rot90 = _check_bool(rot90, "rot90")
        self._seed = check_int(seed, "seed", 0)
        self._cache = _check_bool(cache, "cache")
        if self._cache and self._random_source:
            raise ValueError(f"cache = true cannot be used with the random crops of source {self.source!r}")
        self._declared_range = None if value_range is None else _check_value_range(value_range, "value_range")
        self._measured_range: tuple[float, float] | None = None
        self._cached: torch.Tensor | None = None
        self._shape: tuple[int, ...] = ()
        self.epoch = 0

    # -- the public interface ------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of every item, ``(C, H, W)`` or ``(C, D, H, W)``."""
        return self._shape

    @property
    def value_range(self) -> tuple[float, float]:
        """``(low, high)``: declared, or the minimum and maximum of the source pixels.

        The measurement reads every source image once, on first use (or at
        construction with ``cache``), and is kept.
        """
        if self._declared_range is not None:
            return self._declared_range
        if self._measured_range is None:
            self._measured_range = self._scan_range()
        return self._measured_range

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch used by ``dataset[i]`` (``>= 0``)."""
        self.epoch = check_int(epoch, "epoch", 0)

    def item(self, index: int, epoch: int) -> torch.Tensor:
        """Item ``index`` as augmented in ``epoch``: a pure function of ``(index, epoch, seed)``.

        Returns
        -------
        torch.Tensor
            float32 ``(C, H, W)`` or ``(C, D, H, W)``, shape :attr:`shape`.
        """
        index = self._check_index(index)
        epoch = check_int(epoch, "epoch", 0)
        if self._cached is not None:
            image = self._cached[index].clone()
        else:
            generator = _item_generator(self._seed, epoch, index, _SOURCE_STREAM) if self._random_source else None
            image = self._fit(self._load(index, generator), index)
        return self._augment(image, index, epoch)

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of items."""

    def __getitem__(self, index: int | tuple[int, int]) -> torch.Tensor:
        """``dataset[i]`` (epoch :attr:`epoch`) or ``dataset[(i, epoch)]``; see :meth:`item`."""
        if isinstance(index, tuple):
            if len(index) != 2:
                raise TypeError(f"index must be an int or a pair (index, epoch), got {index!r}")
            return self.item(*index)
        return self.item(index, self.epoch)

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable record of the dataset, for checkpoints.

        Returns
        -------
        dict
            ``source``; ``config``, the validated options (absolute paths),
            from which :func:`training_dataset` rebuilds the dataset;
            ``num_items``; ``shape`` ``[C, *spatial]``; ``value_range``
            ``[low, high]``; and what the source adds (file counts and a
            SHA-256 of the file names and sizes).
        """
        config = {**self._config(), **self._common_config()}
        return {
            "source": self.source,
            "config": {"source": self.source, **config},
            "num_items": len(self),
            "shape": list(self.shape),
            "value_range": list(self.value_range),
            **self._facts(),
        }

    # -- for subclasses ----------------------------------------------------------
    @abc.abstractmethod
    def _load(self, index: int, generator: torch.Generator | None) -> torch.Tensor:
        """Source image of item ``index``, float32 ``(C, *spatial)``, before resizing.

        ``generator`` is the item's source-stream generator for sources that
        draw random numbers (``_random_source``), else ``None``.
        """

    @abc.abstractmethod
    def _name(self, index: int) -> str:
        """Where item ``index`` comes from (file and position), for messages."""

    @abc.abstractmethod
    def _config(self) -> dict[str, Any]:
        """The source's own validated options (JSON values), for :meth:`describe`."""

    def _facts(self) -> dict[str, Any]:
        """Extra JSON entries of :meth:`describe` (file counts, digests)."""
        return {}

    def _scan_range(self) -> tuple[float, float]:
        """Minimum and maximum over all source images (reads each once)."""
        if self._cached is not None:
            return float(self._cached.min()), float(self._cached.max())
        low, high = math.inf, -math.inf
        for index in range(len(self)):
            image = self._load(index, None)
            low, high = min(low, float(image.min())), max(high, float(image.max()))
        return low, high

    def _settle(self, layouts: Mapping[tuple[int, ...], str]) -> None:
        """Fix the item shape from the source shapes found, check the options, fill the cache.

        ``layouts`` maps each distinct source shape ``(C, *spatial)`` to the
        name of one image that has it.
        """
        counts = sorted({shape[0] for shape in layouts})
        if len(counts) > 1:
            examples = "; ".join(f"{name}: {shape[0]}" for shape, name in layouts.items())
            raise ValueError(f"the source images have different channel counts {counts} ({examples})")
        channels = counts[0]
        if self._channels is not None and channels != self._channels:
            name = next(iter(layouts.values()))
            raise ValueError(f"channels = {self._channels} was expected, but the images have {channels} (e.g. {name})")
        spatial = {shape[1:]: name for shape, name in layouts.items()}
        ndims = {len(shape) for shape in spatial}
        if len(ndims) > 1:
            examples = "; ".join(f"{name}: {_format(shape)}" for shape, name in spatial.items())
            raise ValueError(f"the source images mix 2D and 3D shapes ({examples})")
        ndim = ndims.pop()
        if self._size is None:
            if len(spatial) > 1:
                examples = "; ".join(f"{name}: {_format(shape)}" for shape, name in list(spatial.items())[:4])
                raise ValueError(
                    f"the source images have {len(spatial)} different sizes ({examples}); set size = "
                    f"{_size_hint(ndim)} and a resize rule: resize = \"area\" (mean over pixel blocks, for "
                    f"shrinking), \"{'bilinear' if ndim == 2 else 'trilinear'}\" (interpolation) or "
                    "\"center-crop\" (the central window; images must be at least that large)"
                )
            target = next(iter(spatial))
        else:
            target = self._check_size(ndim, spatial)
        if self._rot90 and target[-1] != target[-2]:
            raise ValueError(f"rot90 = true needs square items (H == W), got size {_format(target)}")
        self._shape = (channels, *target)
        if self._cache:
            self._cached = torch.stack([self._fit(self._load(index, None), index) for index in range(len(self))])

    # -- internals -------------------------------------------------------------------
    def _common_config(self) -> dict[str, Any]:
        """The common options as given (JSON values; ``None`` entries left out)."""
        common = {
            "size": None if self._size is None else list(self._size),
            "resize": self._resize,
            "channels": self._channels,
            "flip": self._flip,
            "rot90": self._rot90,
            "seed": self._seed,
            "value_range": None if self._declared_range is None else list(self._declared_range),
            "cache": self._cache,
        }
        allowed = inspect.signature(type(self)).parameters
        return {key: value for key, value in common.items() if value is not None and key in allowed}

    def _check_size(self, ndim: int, spatial: Mapping[tuple[int, ...], str]) -> tuple[int, ...]:
        size = self._size
        if len(size) != ndim:
            raise ValueError(f"size must have {ndim} entries for {ndim}D images {_size_hint(ndim)}, got {list(size)}")
        different = [(shape, name) for shape, name in spatial.items() if shape != size]
        if different and self._resize is None:
            shape, name = different[0]
            raise ValueError(
                f"{name} is {_format(shape)}, not size = {list(size)}; set resize = \"area\" (mean over pixel "
                f"blocks, for shrinking), \"{'bilinear' if ndim == 2 else 'trilinear'}\" (interpolation) or "
                "\"center-crop\" (the central window)"
            )
        wrong_rule = {2: "trilinear", 3: "bilinear"}[ndim]
        if self._resize == wrong_rule:
            right = "bilinear" if ndim == 2 else "trilinear"
            raise ValueError(f"resize = {wrong_rule!r} does not apply to {ndim}D images; use {right!r}")
        if self._resize == "center-crop":
            for shape, name in different:
                if any(have < want for have, want in zip(shape, size)):
                    raise ValueError(
                        f"resize = \"center-crop\" needs images of at least size = {list(size)}, but {name} is "
                        f"{_format(shape)}; use \"area\" or \"{'bilinear' if ndim == 2 else 'trilinear'}\" instead"
                    )
        return size

    def _fit(self, image: torch.Tensor, index: int) -> torch.Tensor:
        """Resize or crop a source image to :attr:`shape`; check it is finite."""
        if not bool(torch.isfinite(image).all()):
            bad = int((~torch.isfinite(image)).sum())
            raise ValueError(f"{self._name(index)} holds {bad} NaN or infinite values; training images must be finite")
        if image.shape[0] != self._shape[0]:
            raise ValueError(
                f"{self._name(index)} has {image.shape[0]} channels, expected {self._shape[0]} (did the file change?)"
            )
        target = self._shape[1:]
        spatial = tuple(image.shape[1:])
        if spatial == target:
            return image
        if self._resize is None:
            found = f"{self._name(index)} is {_format(spatial)}"
            raise ValueError(f"{found}, expected {_format(target)} (did the file change?)")
        if self._resize == "center-crop":
            window = tuple(slice((have - want) // 2, (have - want) // 2 + want) for have, want in zip(spatial, target))
            return image[(slice(None), *window)].contiguous()
        if self._resize == "area":
            return F.interpolate(image[None], size=target, mode="area")[0]
        antialias = self._resize == "bilinear"
        return F.interpolate(image[None], size=target, mode=self._resize, align_corners=False, antialias=antialias)[0]

    def _augment(self, image: torch.Tensor, index: int, epoch: int) -> torch.Tensor:
        """Flips and 90° rotations drawn from the ``(seed, epoch, index)`` generator."""
        if not (self._flip or self._rot90):
            return image
        generator = _item_generator(self._seed, epoch, index, _AUGMENT_STREAM)
        ndim = image.dim() - 1
        flips = torch.randint(0, 2, (ndim,), generator=generator)
        turns = int(torch.randint(0, 4, (1,), generator=generator))
        if self._flip:
            axes = [1 + axis for axis in range(ndim) if flips[axis]]
            image = image.flip(axes) if axes else image
        if self._rot90:
            image = torch.rot90(image, turns, dims=(-2, -1))
        return image.contiguous()

    def _check_index(self, index: int) -> int:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        length = len(self)
        if not -length <= index < length:
            raise IndexError(f"index {index} is out of range for {length} items")
        return int(index) % length

    def __getstate__(self) -> dict[str, Any]:
        """Pickled state without per-process readers and caches (see ``_transient``)."""
        state = dict(self.__dict__)
        for key in self._transient():
            state[key] = None
        return state

    def _transient(self) -> tuple[str, ...]:
        """Attributes rebuilt in each process (readers, open-file caches)."""
        return ()


class ImageFolderDataset(TrainingDataset):
    """PNG, JPEG, TIFF and ``.npy`` images in a folder (recursive, sorted by path).

    Image files are read with MONAI ``LoadImage`` and ``PILReader`` (without
    its default transpose), so rows and columns are as stored: row 0 is the
    top of the picture.  Grey images give one channel, grey + alpha two, RGB
    three, RGBA four; palette, CMYK and other PIL modes are converted to RGB
    and bilevel images to grey.  16-bit PNG/TIFF and float TIFF keep their
    values.  ``.npy`` arrays (numpy, no pickles) are ``(H, W)`` or
    channel-first ``(C, H, W)``, any real dtype.

    Parameters
    ----------
    path : str or os.PathLike
        The folder.
    size, resize, channels, flip, rot90, seed, value_range, cache
        See :class:`TrainingDataset`.

    Examples
    --------
    >>> data = ImageFolderDataset("photos", size=(64, 64), resize="area", flip=True)  # doctest: +SKIP
    >>> data[0].shape  # doctest: +SKIP
    torch.Size([3, 64, 64])
    """

    source = "image-folder"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        size: Sequence[int] | None = None,
        resize: str | None = None,
        channels: int | None = None,
        flip: bool = False,
        rot90: bool = False,
        seed: int = 0,
        value_range: Sequence[float] | None = None,
        cache: bool = False,
    ) -> None:
        super().__init__(
            size=size, resize=resize, channels=channels, flip=flip, rot90=rot90, seed=seed,
            value_range=value_range, cache=cache,
        )
        self._root = _existing_path(path, "path")
        if not self._root.is_dir():
            raise ValueError(f"path must be a folder of images for source 'image-folder', got the file {self._root}")
        self._files = _find_files(self._root, _IMAGE_SUFFIXES)
        if not self._files:
            kinds = "/".join(_IMAGE_SUFFIXES)
            raise ValueError(f"path: folder {self._root} holds no {kinds} files (searched recursively)")
        self._loader = None
        layouts: dict[tuple[int, ...], str] = {}
        for file in self._files:
            layouts.setdefault(_image_file_shape(file), str(file))
        self._settle(layouts)

    def __len__(self) -> int:
        return len(self._files)

    @property
    def files(self) -> tuple[Path, ...]:
        """The image files, in item order."""
        return tuple(self._files)

    def _load(self, index: int, generator: torch.Generator | None) -> torch.Tensor:
        file = self._files[index]
        if file.suffix.lower() == ".npy":
            array = np.load(file, allow_pickle=False).astype(np.float32)
            return torch.from_numpy(array if array.ndim == 3 else array[None])
        if self._loader is None:
            from monai.data import PILReader

            self._loader = _monai_loader(PILReader(converter=_pil_convert, reverse_indexing=False))
        array = self._loader(file)
        return torch.from_numpy(np.ascontiguousarray(array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)))

    def _name(self, index: int) -> str:
        return str(self._files[index])

    def _config(self) -> dict[str, Any]:
        return {"path": str(self._root)}

    def _facts(self) -> dict[str, Any]:
        return {"num_files": len(self._files), "files_sha256": _digest(self._root, self._files)}

    def _transient(self) -> tuple[str, ...]:
        return ("_loader",)


class VolumeSliceDataset(TrainingDataset):
    """2D slices (or whole volumes) of NIfTI files and DICOM series.

    Orientation
    -----------
    A volume is the array ``V[i, j, k]`` of its voxels in stored index order,
    without any reorientation: for NIfTI, nibabel's array (MONAI
    ``NibabelReader``); for DICOM, ``i`` the column, ``j`` the row and ``k``
    the slice ordered by ``InstanceNumber`` (MONAI ``PydicomReader`` returns
    exactly this ``(columns, rows, slices)`` array, with ``RescaleSlope`` and
    ``RescaleIntercept`` applied, e.g. Hounsfield units for CT).  Slicing
    along ``axis`` keeps the other two axes ``p < q`` as the image's rows
    (``q``) and columns (``p``): ``axis = 2`` gives ``V[:, :, s].T``, which for
    DICOM is the stored ``pixel_array`` of slice ``s`` (row 0 at the top);
    ``axis = 1`` gives ``V[:, s, :].T`` (rows along ``k``) and ``axis = 0``
    gives ``V[s].T`` (rows along ``k``, columns along ``j``).  ``axis =
    "none"`` yields whole volumes ``(1, D, H, W) = V.transpose(2, 1, 0)``,
    consistent with ``axis = 2``.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.nii``/``.nii.gz`` file, a folder holding one DICOM series
        (``*.dcm`` files), or a folder searched recursively for NIfTI files and
        DICOM series (every folder that directly holds ``*.dcm`` files is one
        series; all its files must share one ``SeriesInstanceUID``).
        Volumes are taken in sorted path order.
    axis : {0, 1, 2, "none"}
        Axis of ``V`` to slice along (default 2), or ``"none"`` for whole volumes.
    slices : (int, int), optional
        Range ``[start, stop)`` of slice indices along ``axis``, with Python's
        slicing rules (negative counts from the end, clipped to each volume).
    step : int
        Keep every ``step``-th slice of the range (default 1).
    window : (float, float), optional
        Clip intensities to ``[low, high]`` (e.g. ``[-1000, 1000]`` HU); then
        also the declared value range.
    empty_threshold : float, optional
        Skip empty slices: a slice is kept when more than ``min_foreground``
        of its pixels (after clipping) exceed this value.  Reads every volume
        once at construction.
    min_foreground : float
        Fraction in ``[0, 1)`` for ``empty_threshold`` (default 0: one pixel suffices).
    size, resize, channels, flip, rot90, seed, value_range, cache
        See :class:`TrainingDataset`.

    Notes
    -----
    Items read their whole volume; the last volume read is kept per process,
    so consecutive slices of one volume are cheap but random access across
    many volumes re-reads files.  Use ``cache = true`` when the slices fit in
    memory.  Multi-frame DICOM files and 4D NIfTI files are not supported.
    """

    source = "volumes"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        axis: int | str = 2,
        slices: Sequence[int] | None = None,
        step: int = 1,
        window: Sequence[float] | None = None,
        empty_threshold: float | None = None,
        min_foreground: float = 0.0,
        size: Sequence[int] | None = None,
        resize: str | None = None,
        channels: int | None = None,
        flip: bool = False,
        rot90: bool = False,
        seed: int = 0,
        value_range: Sequence[float] | None = None,
        cache: bool = False,
    ) -> None:
        window_range = None if window is None else _check_value_range(window, "window")
        super().__init__(
            size=size, resize=resize, channels=channels, flip=flip, rot90=rot90, seed=seed,
            value_range=value_range if value_range is not None else window_range, cache=cache,
        )
        integer = isinstance(axis, numbers.Integral) and not isinstance(axis, bool)
        if axis != "none" and not (integer and axis in (0, 1, 2)):
            raise ValueError(f"axis must be 0, 1, 2 or \"none\" (whole volumes), got {axis!r}")
        self._axis = axis
        self._window = window_range
        self._slices = None if slices is None else _check_slice_range(slices)
        self._step = check_int(step, "step")
        self._threshold = None if empty_threshold is None else _check_number(empty_threshold, "empty_threshold")
        self._min_foreground = _check_number(min_foreground, "min_foreground")
        if not 0.0 <= self._min_foreground < 1.0:
            raise ValueError(f"min_foreground must be a fraction in [0, 1), got {min_foreground!r}")
        if axis == "none":
            defaults = {"slices": (slices, None), "step": (step, 1), "empty_threshold": (empty_threshold, None)}
            given = [name for name, (value, default) in defaults.items() if value != default]
            if given:
                names = ", ".join(given)
                raise ValueError(f"{names} select slices and do not apply with axis = \"none\" (whole volumes)")
        self._root = _existing_path(path, "path")
        self._volumes = _find_volumes(self._root)
        self._nifti_loader = None
        self._dicom_loader = None
        self._volume: tuple[int, np.ndarray] | None = None
        self._items: list[tuple[int, int]] = []
        layouts: dict[tuple[int, ...], str] = {}
        for number, (volume, shape) in enumerate(self._volumes):
            selected = self._select(number, shape)
            self._items.extend((number, index) for index in selected)
            if selected:
                layouts.setdefault((1, *self._image_shape(shape)), str(volume))
        if not self._items:
            raise ValueError(
                f"no slices selected from the {len(self._volumes)} volumes under {self._root} "
                f"(slices = {slices!r}, step = {step}, empty_threshold = {empty_threshold!r}, "
                f"min_foreground = {min_foreground!r})"
            )
        self._settle(layouts)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def volumes(self) -> tuple[Path, ...]:
        """The NIfTI files and DICOM series folders, in order."""
        return tuple(volume for volume, _ in self._volumes)

    def _image_shape(self, shape: tuple[int, int, int]) -> tuple[int, ...]:
        if self._axis == "none":
            return shape[::-1]
        return tuple(n for axis, n in enumerate(shape) if axis != self._axis)[::-1]

    def _select(self, number: int, shape: tuple[int, int, int]) -> list[int]:
        """Slice indices kept from volume ``number``."""
        if self._axis == "none":
            return [0]
        start, stop = self._slices if self._slices is not None else (None, None)
        chosen = list(range(*slice(start, stop, self._step).indices(shape[self._axis])))
        if self._threshold is None or not chosen:
            return chosen
        volume = self._read(number)
        others = tuple(axis for axis in range(3) if axis != self._axis)
        foreground = (volume > self._threshold).mean(axis=others)
        return [index for index in chosen if foreground[index] > self._min_foreground]

    def _read(self, number: int) -> np.ndarray:
        """Volume ``number`` as float32 ``V[i, j, k]``, clipped to the window; the last one is kept."""
        if self._volume is not None and self._volume[0] == number:
            return self._volume[1]
        path, shape = self._volumes[number]
        if _is_nifti(path):
            if self._nifti_loader is None:
                from monai.data import NibabelReader

                self._nifti_loader = _monai_loader(NibabelReader())
            loader = self._nifti_loader
        else:
            if self._dicom_loader is None:
                from monai.data import PydicomReader

                self._dicom_loader = _monai_loader(PydicomReader(fname_regex=r"(?i).*\.dcm$"))
            loader = self._dicom_loader
        array = loader(path)
        if array.ndim == 2:
            array = array[..., None]  # a DICOM series of one file
        array = array.reshape(array.shape[:3]) if array.ndim == 4 and array.shape[3] == 1 else array
        if array.shape != shape:
            raise ValueError(f"{path}: read a volume of shape {array.shape}, expected {shape} from its header")
        if self._window is not None:
            array = np.clip(array, *self._window)
        self._volume = (number, array)
        return array

    def _load(self, index: int, generator: torch.Generator | None) -> torch.Tensor:
        number, position = self._items[index]
        volume = self._read(number)
        image = volume.transpose(2, 1, 0) if self._axis == "none" else np.take(volume, position, axis=self._axis).T
        return torch.from_numpy(np.ascontiguousarray(image))[None]

    def _name(self, index: int) -> str:
        number, position = self._items[index]
        where = "" if self._axis == "none" else f" [axis {self._axis}, slice {position}]"
        return f"{self._volumes[number][0]}{where}"

    def _config(self) -> dict[str, Any]:
        config = {
            "path": str(self._root),
            "axis": self._axis,
            "slices": None if self._slices is None else list(self._slices),
            "step": self._step,
            "window": None if self._window is None else list(self._window),
            "empty_threshold": self._threshold,
            "min_foreground": self._min_foreground,
        }
        return {key: value for key, value in config.items() if value is not None}

    def _common_config(self) -> dict[str, Any]:
        common = super()._common_config()
        if self._window is not None and common.get("value_range") == list(self._window):
            del common["value_range"]  # declared by the window, not by the user
        return common

    def _facts(self) -> dict[str, Any]:
        names = [volume for volume, _ in self._volumes]
        return {"num_volumes": len(names), "volumes_sha256": _digest(self._root, names)}

    def _transient(self) -> tuple[str, ...]:
        return ("_nifti_loader", "_dicom_loader", "_volume")


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
    size, resize, channels, flip, rot90, seed, value_range, cache
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
    ) -> None:
        from .io.fastmri import FastMRISliceDataset

        super().__init__(
            size=size, resize=resize, channels=channels, flip=flip, rot90=rot90, seed=seed,
            value_range=value_range, cache=cache,
        )
        if target_key is not None and (not isinstance(target_key, str) or not target_key):
            raise TypeError(f"target_key must be a non-empty string or None, got {target_key!r}")
        self._target_key = target_key
        self._root = _existing_path(path, "path")
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
        return {"num_files": len(files), "files_sha256": _digest(self._root, files)}


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
        drawn uniformly per item and epoch (see the module's contract).
    nan : "error", "skip" or float
        Non-finite pixels (NaN, ±inf) in a cutout: an error naming the file
        (default); ``"skip"``: leave out fixed cutouts that hold one, and draw
        random crops again (up to 100 times); a number: replace them by it.
    size, resize, channels, flip, rot90, seed, value_range, cache
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
    ) -> None:
        self._crops = check_int(random_crops, "random_crops", optional=True)
        self._random_source = self._crops is not None
        super().__init__(
            size=size, resize=resize, channels=channels, flip=flip, rot90=rot90, seed=seed,
            value_range=value_range, cache=cache,
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
        self._root = _existing_path(path, "path")
        files = _find_files(self._root, _FITS_SUFFIXES) if self._root.is_dir() else [self._root]
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
        return {"num_files": len(self._files), "files_sha256": _digest(self._root, self._files)}


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
    size, resize, channels, flip, rot90, seed, value_range, cache
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
    ) -> None:
        import h5py

        super().__init__(
            size=size, resize=resize, channels=channels, flip=flip, rot90=rot90, seed=seed,
            value_range=value_range, cache=cache,
        )
        if not isinstance(key, str) or not key:
            raise TypeError(f"key must be the non-empty name of an HDF5 dataset, got {key!r}")
        if layout is not None and layout not in _HDF5_ALL_LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(map(repr, _HDF5_ALL_LAYOUTS))}, got {layout!r}")
        self._path = _existing_path(path, "path")
        self._key = key
        try:
            file = h5py.File(self._path, "r")
        except OSError as error:
            raise ValueError(f"{self._path}: expected an HDF5 file, but h5py cannot open it ({error})") from None
        with file:
            if key not in file or not isinstance(file[key], h5py.Dataset):
                datasets = []
                file.visititems(lambda name, node: datasets.append(name) if isinstance(node, h5py.Dataset) else None)
                raise ValueError(
                    f"{self._path}: key = {key!r} is not a dataset in the file; its datasets are {datasets}"
                )
            dataset = file[key]
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
        import h5py

        with h5py.File(self._path, "r") as file:
            block = file[self._key][index : index + 1]
        return torch.from_numpy(np.ascontiguousarray(self._arrange(block)[0]))

    def _scan_range(self) -> tuple[float, float]:
        import h5py

        if self._cached is not None:
            return super()._scan_range()
        low, high = math.inf, -math.inf
        with h5py.File(self._path, "r") as file:
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
        return {"num_files": 1, "files_sha256": _digest(self._path.parent, [self._path])}


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
        self._texture = _check_number(texture, "texture")
        self._max_frequency = _check_number(max_frequency, "max_frequency")
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
        low, high = _check_value_range(window, "window")
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


class EpochSampler(Sampler):
    """Yields ``(index, epoch)`` pairs in an order that is a pure function of ``(seed, epoch)``.

    Pass it as ``DataLoader(dataset, sampler=EpochSampler(dataset, seed=...))``:
    every item then carries its epoch to the worker that makes it, so the
    augmentations are reproducible with ``persistent_workers=True`` too, and
    ``start`` resumes an epoch in the middle.

    Parameters
    ----------
    length : int or sized
        Number of items, or the dataset.
    seed : int
        Seed of the shuffled order, ``>= 0``.
    shuffle : bool
        A random permutation per epoch (default) or ``0, 1, 2, …``.
    epoch : int
        The first epoch, ``>= 0``.
    start : int
        Position in the epoch's order to start at (items already consumed), ``>= 0``.
    """

    def __init__(
        self, length: int | Sized, *, seed: int = 0, shuffle: bool = True, epoch: int = 0, start: int = 0
    ) -> None:
        self.length = check_int(len(length) if isinstance(length, Sized) else length, "length")
        self.seed = check_int(seed, "seed", 0)
        self.shuffle = _check_bool(shuffle, "shuffle")
        self.set_epoch(epoch, start)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate over ``epoch`` next, from position ``start`` of its order."""
        self.epoch = check_int(epoch, "epoch", 0)
        self.start = check_int(start, "start", 0)
        if self.start > self.length:
            raise ValueError(f"start must be at most the length {self.length}, got {start}")

    def order(self, epoch: int) -> torch.Tensor:
        """The item order of ``epoch``, an int64 permutation of ``0..length-1``."""
        if not self.shuffle:
            return torch.arange(self.length)
        return torch.randperm(self.length, generator=_item_generator(self.seed, epoch, 0, _ORDER_STREAM))

    def __len__(self) -> int:
        return self.length - self.start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        for index in self.order(epoch)[self.start :].tolist():
            yield index, epoch


_SOURCES: dict[str, type[TrainingDataset]] = {
    cls.source: cls
    for cls in (
        ImageFolderDataset,
        VolumeSliceDataset,
        FastMRITargetDataset,
        FITSCutoutDataset,
        HDF5ArrayDataset,
        PhantomDataset,
        SyntheticCTDataset,
    )
}
TRAINING_SOURCES: tuple[str, ...] = tuple(_SOURCES)


def training_dataset(config: Mapping[str, Any], *, root: str | os.PathLike | None = None) -> TrainingDataset:
    """Build a training dataset from a config section (the ``[data]`` table of a training TOML file).

    Parameters
    ----------
    config : mapping
        ``source`` (one of :data:`TRAINING_SOURCES`) and the keyword arguments
        of that source's class, by the same names: ``path``, ``size``,
        ``resize``, ``flip``, ... (module docstring).  Pairs are lists, as TOML gives them.
    root : str or os.PathLike, optional
        Folder that a relative ``path`` is relative to, e.g. the config file's
        folder; by default the working directory.

    Returns
    -------
    TrainingDataset
        Items float32 ``(C, H, W)`` or ``(C, D, H, W)``.

    Raises
    ------
    ValueError
        No or an unknown ``source``, a key the source does not take (the
        message lists the allowed keys), a missing required key, values out of
        range, images that do not fit the size options (the message explains
        ``size`` and ``resize``).
    TypeError
        ``config`` not a mapping, a value of the wrong type.
    FileNotFoundError
        ``path`` does not exist (the message names it).

    Examples
    --------
    >>> data = training_dataset({"source": "phantoms", "length": 100, "size": [32, 32], "flip": True})
    >>> data[0].shape, data.describe()["num_items"]
    (torch.Size([1, 32, 32]), 100)
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping (a TOML table), got {type(config).__name__}")
    source = config.get("source")
    if source not in _SOURCES:
        what = "has no 'source' key" if "source" not in config else f"has source = {source!r}"
        raise ValueError(f"config {what}; expected source = one of {', '.join(map(repr, TRAINING_SOURCES))}")
    cls = _SOURCES[source]
    parameters = inspect.signature(cls).parameters
    allowed = sorted(parameters)
    for key in config:
        if key != "source" and key not in parameters:
            raise ValueError(f"unknown key {key!r} for source {source!r}; allowed keys: source, {', '.join(allowed)}")
    missing = [name for name, parameter in parameters.items() if parameter.default is inspect.Parameter.empty
               and name not in config]
    if missing:
        raise ValueError(f"source {source!r} needs the key(s) {', '.join(map(repr, missing))}; allowed keys: "
                         f"source, {', '.join(allowed)}")
    arguments = {key: value for key, value in config.items() if key != "source"}
    if "path" in arguments and root is not None and isinstance(arguments["path"], (str, os.PathLike)):
        arguments["path"] = Path(root) / arguments["path"]
    return cls(**arguments)


# -- helpers -----------------------------------------------------------------------
def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def _check_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return check_finite_number(value, name)


def _check_value_range(value: object, name: str) -> tuple[float, float]:
    low, high = check_range(value, name, lower=-math.inf)
    if not low < high:
        raise ValueError(f"{name} must be a pair (low, high) with low < high, got {value!r}")
    return low, high


def _check_slice_range(value: object) -> tuple[int, int]:
    message = f"slices must be a pair [start, stop) of ints (negative counts from the end), got {value!r}"
    try:
        start, stop = value
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in (start, stop)):
        raise TypeError(message)
    return int(start), int(stop)


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


def _existing_path(path: object, name: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str), got {path!r}")
    resolved = Path(path).expanduser().absolute()
    if not resolved.exists():
        raise FileNotFoundError(f"{name}: {resolved} does not exist")
    return resolved


def _find_files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    """Files under ``folder`` (recursive) whose names end in one of ``suffixes`` (any case), sorted."""
    return sorted(file for file in folder.rglob("*") if file.is_file() and file.name.lower().endswith(tuple(suffixes)))


def _digest(root: Path, files: Sequence[Path]) -> str:
    """SHA-256 of the relative names and byte sizes of ``files`` (folders: of their files)."""
    hasher = hashlib.sha256()
    for file in files:
        members = sorted(file.iterdir()) if file.is_dir() else [file]
        for member in members:
            hasher.update(f"{member.relative_to(root).as_posix()}\t{member.stat().st_size}\n".encode())
    return hasher.hexdigest()


def _format(shape: Sequence[int]) -> str:
    return "×".join(map(str, shape))


def _size_hint(ndim: int) -> str:
    return "[H, W]" if ndim == 2 else "[D, H, W]"


def _monai_loader(reader: Any) -> Callable[[Path], np.ndarray]:
    """A function reading one file or DICOM folder with MONAI ``LoadImage`` and ``reader``, as float32.

    ``LoadImage`` registers every default reader when it is built, and the GPU
    DICOM reader then logs and warns that nvImageCodec is missing, which is
    expected on a CPU and silenced here.  Reading PIL images makes torch warn
    that their arrays are read-only; the arrays are copied, so that is silenced too.
    """
    from monai.transforms import LoadImage

    logger = logging.getLogger("monai.data.nvimgcodec_pydicom_plugin")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader", category=UserWarning)
            loader = LoadImage(reader=reader, image_only=True, dtype=np.float32)
    finally:
        logger.setLevel(level)

    def load(path: Path) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable", category=UserWarning)
            return loader(str(path)).as_tensor().numpy().astype(np.float32, copy=True)

    return load


def _pil_convert(image: Any) -> Any:
    """PIL modes without a channel count of their own -> RGB (bilevel -> L)."""
    if image.mode in _PIL_CHANNELS:
        return image
    return image.convert("L" if image.mode == "1" else "RGB")


def _image_file_shape(file: Path) -> tuple[int, ...]:
    """``(C, H, W)`` of an image file from its header (PIL) or ``.npy`` header."""
    if file.suffix.lower() == ".npy":
        try:
            array = np.load(file, mmap_mode="r", allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"{file}: expected a .npy array without pickles ({error})") from None
        if array.ndim not in (2, 3) or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise ValueError(f"{file}: expected a real (H, W) or (C, H, W) array, found {array.dtype} {array.shape}")
        if np.iscomplexobj(array):
            raise ValueError(f"{file}: expected real values, found dtype {array.dtype}")
        return array.shape if array.ndim == 3 else (1, *array.shape)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            mode, (width, height) = image.mode, image.size
    except UnidentifiedImageError:
        raise ValueError(f"{file}: not an image PIL can read") from None
    channels = _PIL_CHANNELS.get(mode, 1 if mode == "1" else 3)
    return (channels, height, width)


def _is_nifti(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(_NIFTI_SUFFIXES)


def _find_volumes(root: Path) -> list[tuple[Path, tuple[int, int, int]]]:
    """NIfTI files and DICOM series folders under ``root``, with their ``(i, j, k)`` shapes."""
    if root.is_file():
        if not _is_nifti(root):
            raise ValueError(f"path: {root} is neither a NIfTI file (.nii, .nii.gz) nor a folder")
        return [(root, _nifti_shape(root))]
    volumes = _find_files(root, _NIFTI_SUFFIXES)
    volumes += sorted({file.parent for file in _find_files(root, (_DICOM_SUFFIX,))})
    if not volumes:
        raise ValueError(f"path: folder {root} holds no NIfTI files (.nii, .nii.gz) and no DICOM series (*.dcm)")
    return [(volume, _nifti_shape(volume) if _is_nifti(volume) else _dicom_shape(volume)) for volume in sorted(volumes)]


def _nifti_shape(file: Path) -> tuple[int, int, int]:
    import nibabel

    try:
        shape = nibabel.load(file).shape
    except Exception as error:  # nibabel raises several types for unreadable files
        raise ValueError(f"{file}: nibabel cannot read it as NIfTI ({type(error).__name__}: {error})") from None
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise ValueError(f"{file}: expected a 3D volume, found shape {shape}")
    return tuple(int(n) for n in shape)


def _dicom_shape(folder: Path) -> tuple[int, int, int]:
    """``(columns, rows, slices)`` of the DICOM series in ``folder``, checked from the file headers."""
    import pydicom

    tags = ["Rows", "Columns", "InstanceNumber", "SeriesInstanceUID", "NumberOfFrames", "SamplesPerPixel"]
    sizes, numbers_seen, series = set(), {}, set()
    for file in sorted(f for f in folder.iterdir() if f.is_file() and f.name.lower().endswith(_DICOM_SUFFIX)):
        try:
            header = pydicom.dcmread(file, stop_before_pixels=True, specific_tags=tags)
        except pydicom.errors.InvalidDicomError as error:
            raise ValueError(f"{file}: not a DICOM file ({error})") from None
        if "Rows" not in header or "Columns" not in header:
            raise ValueError(f"{file}: a DICOM image needs Rows and Columns")
        if int(header.get("NumberOfFrames", 1) or 1) != 1 or int(header.get("SamplesPerPixel", 1)) != 1:
            raise ValueError(f"{file}: only single-frame, single-sample (grey) DICOM images are supported")
        number = header.get("InstanceNumber")
        if number is None:
            raise ValueError(f"{file}: a DICOM series needs InstanceNumber to order its slices")
        if int(number) in numbers_seen:
            raise ValueError(f"{file} and {numbers_seen[int(number)]} have the same InstanceNumber {int(number)}")
        numbers_seen[int(number)] = file
        sizes.add((int(header.Columns), int(header.Rows)))
        series.add(str(header.get("SeriesInstanceUID", "")))
    if len(series) > 1:
        raise ValueError(f"{folder}: holds files of {len(series)} DICOM series; put each series in its own folder")
    if len(sizes) > 1:
        raise ValueError(f"{folder}: the DICOM images have different sizes (columns, rows) {sorted(sizes)}")
    columns, rows = sizes.pop()
    return (columns, rows, len(numbers_seen))


def _read_fits(file: Path, hdu: int | str | None) -> tuple[int, np.ndarray]:
    """Index of the chosen image HDU of ``file`` and its data as float32 ``(H, W)``."""
    from astropy.io import fits

    try:
        hdus = fits.open(file, memmap=False)
    except OSError as error:
        raise ValueError(f"{file}: astropy cannot open it as FITS ({error})") from None
    with hdus:
        if hdu is None:
            images = [i for i, h in enumerate(hdus) if h.is_image and h.data is not None and h.data.ndim == 2]
            if not images:
                raise ValueError(f"{file}: holds no HDU with a 2D image ({[h.name for h in hdus]})")
            number = images[0]
        else:
            try:
                number = hdus.index_of(hdu)
                chosen = hdus[number]
            except (KeyError, IndexError):
                raise ValueError(f"{file}: has no HDU {hdu!r}; its HDUs are {[h.name for h in hdus]}") from None
            if not chosen.is_image or chosen.data is None or chosen.data.ndim != 2:
                shape = None if not chosen.is_image or chosen.data is None else chosen.data.shape
                raise ValueError(
                    f"{file}: HDU {hdu!r} must hold a 2D image, found {type(chosen).__name__} of shape {shape}"
                )
        return number, np.asarray(hdus[number].data, dtype=np.float32)
