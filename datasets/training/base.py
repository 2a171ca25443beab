"""The base of the training datasets: :class:`TrainingDataset`, :class:`EpochSampler` and shared helpers.

:class:`TrainingDataset` holds what every source shares: the common options
(``size``, ``resize``, ``channels``, ``flip``, ``rot90``, ``seed``,
``value_range``, ``cache``; ``zoom`` where a source offers it), the
per-item seeding of the reproducibility contract
(:mod:`invsolve.datasets.training`), resizing, augmentation and
:meth:`~TrainingDataset.describe`.  The argument checks and file helpers used
by several source modules are public here.
"""

from __future__ import annotations

import abc
import hashlib
import inspect
import math
import numbers
import os
from collections.abc import Iterator, Mapping, Sequence, Sized
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, Sampler

from invsolve._checks import check_finite_number, check_int, check_range, check_shape

__all__ = [
    "TrainingDataset",
    "augment_image",
    "EpochSampler",
    "check_number",
    "check_value_range",
    "existing_path",
    "find_files",
    "digest",
]

_RESIZE_RULES = ("area", "bilinear", "trilinear", "center-crop")
_SIZE_LAYOUTS = (("H", "W"), ("D", "H", "W"))
# Streams of the per-item generators (the last SeedSequence entry).
_AUGMENT_STREAM = 0
_SOURCE_STREAM = 1
_ORDER_STREAM = 2
_ZOOM_STREAM = 3


def _item_generator(seed: int, epoch: int, index: int, stream: int) -> torch.Generator:
    """A CPU generator seeded from ``SeedSequence((seed, epoch, index, stream))``."""
    high, low = np.random.SeedSequence((seed, epoch, index, stream)).generate_state(2, np.uint32)
    return torch.Generator().manual_seed((int(high) << 32) | int(low))


def augment_image(
    image: torch.Tensor, generator: torch.Generator, *, flip: bool = True, rot90: bool = True
) -> torch.Tensor:
    """Random flips of every spatial axis and a rotation by ``k·90°`` in the ``(H, W)`` plane.

    The augmentation of the training sources, reusable elsewhere (``invsolve
    augment`` applies it to generated galaxies, whose morphology it keeps).
    The draws are always made, in this order — one flip bit per spatial axis,
    then ``k`` uniform in 0..3 — so that the same generator state gives the
    same result whatever is switched off.

    Parameters
    ----------
    image : torch.Tensor
        ``(C, *spatial)``; ``rot90`` needs ``H == W``.
    generator : torch.Generator
        CPU generator of the draws.
    flip, rot90 : bool
        Which augmentations to apply.

    Returns
    -------
    torch.Tensor
        The augmented image, contiguous, same shape.
    """
    ndim = image.dim() - 1
    flips = torch.randint(0, 2, (ndim,), generator=generator)
    turns = int(torch.randint(0, 4, (1,), generator=generator))
    if flip:
        axes = [1 + axis for axis in range(ndim) if flips[axis]]
        image = image.flip(axes) if axes else image
    if rot90:
        if image.shape[-1] != image.shape[-2]:
            raise ValueError(f"rot90 needs square images (H == W), got shape {tuple(image.shape)}")
        image = torch.rot90(image, turns, dims=(-2, -1))
    return image.contiguous()


class TrainingDataset(Dataset, abc.ABC):
    """Base class of the training-image datasets (contract: :mod:`invsolve.datasets.training`).

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
    zoom : (float, float), optional
        Field-of-view augmentation ``(low, high)``, ``0 < low <= high <= 1``:
        each item is shrunk by a factor drawn uniformly from that range and
        placed at a uniformly drawn position on a canvas of the item size filled
        with ``value_range``'s low end (the background of a CT or MRI slice), so
        that the prior sees the object at the scales and positions of scans with
        larger fields of view.  Sources whose items are files offer it.
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
        zoom: Sequence[float] | None = None,
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
        self._declared_range = None if value_range is None else check_value_range(value_range, "value_range")
        self._zoom = None if zoom is None else _check_zoom(zoom)
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

    def item(self, index: int, epoch: int) -> torch.Tensor | dict[str, torch.Tensor]:
        """Item ``index`` as augmented in ``epoch``: a pure function of ``(index, epoch, seed)``.

        Returns
        -------
        torch.Tensor or dict
            float32 ``(C, H, W)`` or ``(C, D, H, W)``, shape :attr:`shape`; for a
            conditional source (:attr:`condition_size` not ``None``) the dict
            ``{"image": that tensor, "condition": float32 (condition_size,)}``
            (the condition is not augmented: flips and rotations keep it).
        """
        image = self.image(index, epoch)
        if self.condition_size is None:
            return image
        return {"image": image, "condition": self._condition(self._check_index(index))}

    def image(self, index: int, epoch: int) -> torch.Tensor:
        """The image of :meth:`item` alone, float32 ``(C, *spatial)``."""
        index = self._check_index(index)
        epoch = check_int(epoch, "epoch", 0)
        if self._cached is not None:
            image = self._cached[index].clone()
        else:
            generator = _item_generator(self._seed, epoch, index, _SOURCE_STREAM) if self._random_source else None
            image = self._fit(self._load(index, generator), index)
        if self._zoom is not None:
            image = self._zoom_out(image, _item_generator(self._seed, epoch, index, _ZOOM_STREAM))
        if not (self._flip or self._rot90):
            return image
        return augment_image(image, _item_generator(self._seed, epoch, index, _AUGMENT_STREAM),
                             flip=self._flip, rot90=self._rot90)

    @property
    def condition_size(self) -> int | None:
        """Length of the conditioning vector of every item; ``None`` for an unconditional source."""
        return None

    @property
    def condition_names(self) -> list[str] | None:
        """Names of the conditioning vector's entries (``None`` when unconditional or unnamed)."""
        return None

    def _condition(self, index: int) -> torch.Tensor:
        """Conditioning vector of item ``index``, float32 ``(condition_size,)`` (conditional sources)."""
        raise NotImplementedError(f"source {self.source!r} is unconditional")

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of items."""

    def __getitem__(self, index: int | tuple[int, int]) -> torch.Tensor | dict[str, torch.Tensor]:
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
            **({} if self.condition_size is None else
               {"condition_size": self.condition_size, "condition_names": self.condition_names}),
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
        low, high = math.inf, -math.inf
        for index in range(len(self)):
            image = self._load(index, None)
            low, high = min(low, float(image.min())), max(high, float(image.max()))
        return low, high

    def _settle(self, layouts: Mapping[tuple[int, ...], str], loaded: Sequence[torch.Tensor] | None = None) -> None:
        """Fix the item shape from the source shapes found, check the options, fill the cache.

        ``layouts`` maps each distinct source shape ``(C, *spatial)`` to the
        name of one image that has it; ``loaded``, every source image already
        read (by a source that reads them all to check them), fills the cache
        without reading them again.
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
            sources = loaded if loaded is not None else (self._load(index, None) for index in range(len(self)))
            fitted, low, high = [], math.inf, -math.inf
            for index, image in enumerate(sources):  # the range of the source pixels, as without the cache
                low, high = min(low, float(image.min())), max(high, float(image.max()))
                fitted.append(self._fit(image, index))
            self._cached = torch.stack(fitted)
            self._measured_range = (low, high)
        if self._zoom is not None and self._declared_range is None and self._measured_range is None:
            self._measured_range = self._scan_range()  # zoom's background: measured here, not in every worker

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
            "zoom": None if self._zoom is None else list(self._zoom),
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

    def _zoom_out(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``image`` shrunk by a random factor of the ``zoom`` range, at a random place on a background canvas.

        Area resampling (convex weights) keeps the item within :attr:`value_range`.
        The draws — the factor, then one offset per spatial axis — are always made.
        """
        low, high = self._zoom
        scale = low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))
        spatial = tuple(image.shape[1:])
        shrunk = tuple(max(1, round(scale * length)) for length in spatial)
        offsets = [int(torch.randint(0, length - small + 1, (1,), generator=generator))
                   for length, small in zip(spatial, shrunk)]
        if shrunk == spatial:
            return image
        canvas = torch.full_like(image, self.value_range[0])
        window = tuple(slice(offset, offset + small) for offset, small in zip(offsets, shrunk))
        canvas[(slice(None), *window)] = F.interpolate(image[None], size=shrunk, mode="area")[0]
        return canvas

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


# -- helpers -----------------------------------------------------------------------
def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def check_number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return check_finite_number(value, name)


def check_value_range(value: object, name: str) -> tuple[float, float]:
    low, high = check_range(value, name, lower=-math.inf)
    if not low < high:
        raise ValueError(f"{name} must be a pair (low, high) with low < high, got {value!r}")
    return low, high


def _check_zoom(value: object) -> tuple[float, float]:
    low, high = check_range(value, "zoom", lower=0.0, upper=1.0)
    if low == 0.0:
        raise ValueError(f"zoom must be a pair (low, high) with 0 < low <= high <= 1 (shrink factors), got {value!r}")
    return low, high


def existing_path(path: object, name: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str), got {path!r}")
    resolved = Path(path).expanduser().absolute()
    if not resolved.exists():
        raise FileNotFoundError(f"{name}: {resolved} does not exist")
    return resolved


def find_files(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    """Files under ``folder`` (recursive) whose names end in one of ``suffixes`` (any case), sorted."""
    return sorted(file for file in folder.rglob("*") if file.is_file() and file.name.lower().endswith(tuple(suffixes)))


def digest(root: Path, files: Sequence[Path]) -> str:
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
