"""Training images from image files and medical volumes, read with MONAI.

Sources ``"image-folder"`` (:class:`ImageFolderDataset`: PNG, JPEG, TIFF and
``.npy`` files) and ``"volumes"`` (:class:`VolumeSliceDataset`: slices of NIfTI
files and DICOM series); the options are documented in
:mod:`invsolve.datasets.training`.  Every file is checked when the dataset is
built (:mod:`invsolve.datasets.io.checks`: headers, and data lengths against
what the headers declare), and a read that fails later names the file.  MONAI,
PIL, nibabel and pydicom are imported inside the functions that use them.
"""

from __future__ import annotations

import logging
import numbers
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invsolve._checks import check_int

from ..io.checks import COPY_AGAIN, describe_error, dicom_series, nifti_shape, npy_header, reading
from .base import TrainingDataset, check_number, check_value_range, digest, existing_path, find_files

__all__ = ["ImageFolderDataset", "VolumeSliceDataset"]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy")
_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_DICOM_SUFFIX = ".dcm"
# PIL modes kept as read, with their channel counts; every other mode is converted to RGB
# (palette, CMYK, YCbCr, ...) except bilevel "1", which becomes "L".
_PIL_CHANNELS = {"L": 1, "I": 1, "F": 1, "I;16": 1, "I;16L": 1, "I;16B": 1, "LA": 2, "RGB": 3, "RGBA": 4}


class ImageFolderDataset(TrainingDataset):
    """PNG, JPEG, TIFF and ``.npy`` images in a folder (recursive, sorted by path).

    Image files are read with MONAI ``LoadImage`` and ``PILReader`` (without
    its default transpose), so rows and columns are as stored: row 0 is the
    top of the picture.  Grey images give one channel, grey + alpha two, RGB
    three, RGBA four; palette, CMYK and other PIL modes are converted to RGB
    and bilevel images to grey.  16-bit PNG/TIFF and float TIFF keep their
    values.  ``.npy`` arrays (numpy, no pickles) are ``(H, W)`` or
    channel-first ``(C, H, W)``, any real dtype.

    Build-time checks: every image header is read (PIL), PNG files are
    verified (every chunk present, CRCs right: a truncated PNG is refused
    here), and ``.npy`` files must hold the bytes their header declares.
    JPEG and TIFF data are only decoded when an item is read; a failure then
    names the file.

    Parameters
    ----------
    path : str or os.PathLike
        The folder.
    size, resize, channels, flip, rot90, seed, value_range, cache, zoom
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
        zoom: Sequence[float] | None = None,
    ) -> None:
        super().__init__(
            size=size, resize=resize, channels=channels, flip=flip, rot90=rot90, seed=seed,
            value_range=value_range, cache=cache, zoom=zoom,
        )
        self._root = existing_path(path, "path")
        if not self._root.is_dir():
            raise ValueError(f"path must be a folder of images for source 'image-folder', got the file {self._root}")
        self._files = find_files(self._root, _IMAGE_SUFFIXES)
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
            with reading(file):
                array = np.load(file, allow_pickle=False).astype(np.float32)
            return torch.from_numpy(array if array.ndim == 3 else array[None])
        if self._loader is None:
            from monai.data import PILReader

            self._loader = _monai_loader(PILReader(converter=_pil_convert, reverse_indexing=False))
        with reading(file):
            array = self._loader(file)
        return torch.from_numpy(np.ascontiguousarray(array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)))

    def _name(self, index: int) -> str:
        return str(self._files[index])

    def _config(self) -> dict[str, Any]:
        return {"path": str(self._root)}

    def _facts(self) -> dict[str, Any]:
        return {"num_files": len(self._files), "files_sha256": digest(self._root, self._files)}

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
        A ``.nii``/``.nii.gz`` file, a ``.dcm`` file (a volume of one slice), a
        folder holding one DICOM series (``*.dcm`` files), or a folder searched
        recursively for NIfTI files and DICOM series (every folder that directly
        holds ``*.dcm`` files is one series; all its files must share one
        ``SeriesInstanceUID``, and a folder of several series is refused with
        the list of them).  Volumes are taken in sorted path order.
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
    size, resize, channels, flip, rot90, seed, value_range, cache, zoom
        See :class:`TrainingDataset`.

    Notes
    -----
    Every file is checked when the dataset is built, without decoding a
    volume: DICOM headers (one series per folder, one image size, distinct
    ``InstanceNumber``) and the pixel-data length against ``Rows × Columns ×
    BitsAllocated / 8``; NIfTI headers and the data bytes they declare (for
    ``.nii.gz``, a complete gzip stream); see :mod:`invsolve.datasets.io.checks`.
    A truncated file is refused here, naming it.

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
        zoom: Sequence[float] | None = None,
    ) -> None:
        window_range = None if window is None else check_value_range(window, "window")
        super().__init__(
            size=size, resize=resize, channels=channels, flip=flip, rot90=rot90, seed=seed,
            value_range=value_range if value_range is not None else window_range, cache=cache, zoom=zoom,
        )
        integer = isinstance(axis, numbers.Integral) and not isinstance(axis, bool)
        if axis != "none" and not (integer and axis in (0, 1, 2)):
            raise ValueError(f"axis must be 0, 1, 2 or \"none\" (whole volumes), got {axis!r}")
        self._axis = axis
        self._window = window_range
        self._slices = None if slices is None else _check_slice_range(slices)
        self._step = check_int(step, "step")
        self._threshold = None if empty_threshold is None else check_number(empty_threshold, "empty_threshold")
        self._min_foreground = check_number(min_foreground, "min_foreground")
        if not 0.0 <= self._min_foreground < 1.0:
            raise ValueError(f"min_foreground must be a fraction in [0, 1), got {min_foreground!r}")
        if axis == "none":
            defaults = {"slices": (slices, None), "step": (step, 1), "empty_threshold": (empty_threshold, None)}
            given = [name for name, (value, default) in defaults.items() if value != default]
            if given:
                names = ", ".join(given)
                raise ValueError(f"{names} select slices and do not apply with axis = \"none\" (whole volumes)")
        self._root = existing_path(path, "path")
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
        """The NIfTI files, DICOM series folders and single DICOM files, in order."""
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
        with reading(path):
            array = loader(path)
        if array.ndim == 2:
            array = array[..., None]  # a DICOM series of one file
        array = array.reshape(array.shape[:3]) if array.ndim == 4 and array.shape[3] == 1 else array
        if array.shape != shape:
            raise ValueError(
                f"{path}: read a volume of shape {array.shape}, but its header said {shape} when the dataset was "
                "built; did the files change? Build the dataset again"
            )
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
        return {"num_volumes": len(names), "volumes_sha256": digest(self._root, names)}

    def _transient(self) -> tuple[str, ...]:
        return ("_nifti_loader", "_dicom_loader", "_volume")


# -- helpers -----------------------------------------------------------------------
def _check_slice_range(value: object) -> tuple[int, int]:
    message = f"slices must be a pair [start, stop) of ints (negative counts from the end), got {value!r}"
    try:
        start, stop = value
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in (start, stop)):
        raise TypeError(message)
    return int(start), int(stop)


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
    """``(C, H, W)`` of an image file from its header (PIL; PNG files verified) or ``.npy`` header."""
    if file.suffix.lower() == ".npy":
        shape, dtype = npy_header(file)
        if len(shape) not in (2, 3) or not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
            raise ValueError(f"{file}: expected a real (H, W) or (C, H, W) array, found {dtype} {shape}")
        if np.issubdtype(dtype, np.complexfloating):
            raise ValueError(f"{file}: expected real values, found dtype {dtype}")
        return shape if len(shape) == 3 else (1, *shape)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            mode, (width, height), kind = image.mode, image.size, image.format
            if kind == "PNG":
                image.verify()  # reads every chunk and checks its CRC, without decompressing
    except UnidentifiedImageError:
        message = f"{file}: not an image PIL can read"
        raise ValueError(f"{message}; remove it from the folder, or convert it to PNG") from None
    except (OSError, SyntaxError, ValueError) as error:  # PIL's errors for truncated or damaged files
        raise ValueError(f"{file}: a damaged image file ({describe_error(error)}); {COPY_AGAIN}") from None
    channels = _PIL_CHANNELS.get(mode, 1 if mode == "1" else 3)
    return (channels, height, width)


def _is_nifti(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(_NIFTI_SUFFIXES)


def _find_volumes(root: Path) -> list[tuple[Path, tuple[int, int, int]]]:
    """NIfTI files, DICOM series folders and single DICOM files under ``root``, with their ``(i, j, k)`` shapes."""
    if root.is_file():
        if _is_nifti(root):
            return [(root, _nifti_shape(root))]
        if root.name.lower().endswith(_DICOM_SUFFIX):
            return [(root, _dicom_shape(root))]
        raise ValueError(
            f"path: {root} is neither a NIfTI file (.nii, .nii.gz) nor a DICOM file (.dcm); pass one of those, a "
            "folder holding one DICOM series, or a folder to search for NIfTI files and DICOM series"
        )
    volumes = find_files(root, _NIFTI_SUFFIXES)
    volumes += sorted({file.parent for file in find_files(root, (_DICOM_SUFFIX,))})
    if not volumes:
        raise ValueError(f"path: folder {root} holds no NIfTI files (.nii, .nii.gz) and no DICOM series (*.dcm)")
    return [(volume, _nifti_shape(volume) if _is_nifti(volume) else _dicom_shape(volume)) for volume in sorted(volumes)]


def _nifti_shape(file: Path) -> tuple[int, int, int]:
    shape = nifti_shape(file)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        fix = "split it into 3D files (e.g. with fslsplit)" if len(shape) > 3 else (
            "put 2D images in an image folder (source = \"image-folder\", e.g. as .npy files)"
        )
        raise ValueError(f"{file}: expected a 3D volume, found shape {shape}; {fix}")
    return shape


def _dicom_shape(path: Path) -> tuple[int, int, int]:
    """``(columns, rows, slices)`` of the DICOM series in the folder ``path`` (or of the one file ``path``)."""
    images = dicom_series(path)
    for image in images:
        if image.frames != 1 or image.samples_per_pixel != 1:
            raise ValueError(
                f"{image.path}: only single-frame, single-sample (grey) DICOM images are supported, found "
                f"NumberOfFrames {image.frames} and SamplesPerPixel {image.samples_per_pixel}; convert the file "
                "to NIfTI (e.g. with dcm2niix) and pass that"
            )
    return (images[0].columns, images[0].rows, len(images))
