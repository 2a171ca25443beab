"""Measurement, reference and mask files for ``invsolve reconstruct``, read by their extension.

``.npy``; ``.h5``/``.hdf5`` (a fastMRI file with ``kspace`` and optionally
``mask`` and its ISMRMRD header, read with the fastMRI reader of
:mod:`invsolve.datasets.io.fastmri`, or a plain dataset); ``.nii``/``.nii.gz``
(nibabel); ``.dcm`` or a folder holding one DICOM series (pydicom) — each with
the pixel spacing where the file states it (:class:`ArrayFile`).  Every file is
opened and checked by :mod:`invsolve.datasets.io.checks` first (headers, and
data lengths against what the headers declare), so a truncated or damaged file
gives one error naming it and saying what to do.  Arrays keep the index order
the file stores; :func:`select_plane` picks one 2-D plane of a stack and says
clearly when a file holds the wrong number of axes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invsolve.datasets.io.checks import (
    COPY_AGAIN,
    check_hdf5_dataset,
    describe_error,
    dicom_series,
    nifti_shape,
    npy_header,
    open_hdf5,
)

__all__ = [
    "INPUT_FORMATS", "REFERENCE_DATASETS", "ArrayFile", "drop_leading_ones", "read_array", "read_npy", "select_plane"
]

INPUT_FORMATS = ".npy, .h5/.hdf5, .nii/.nii.gz, a .dcm file or a folder holding one DICOM series"
#: preferred datasets of an HDF5 reference image
REFERENCE_DATASETS = ("reconstruction", "reconstruction_rss", "reconstruction_esc", "target")


@dataclass
class ArrayFile:
    """An array read from a file, with what the file says about it.

    Attributes
    ----------
    data : torch.Tensor
        float64 or complex64/complex128, as stored (slice axis first when there is one).
    source : str
        The file name, for messages.
    spacing : (float, float) or None
        Millimetres per pixel along the last two axes, where the file states it.
    mask : torch.Tensor or None
        A fastMRI file's bool ``(W,)`` sampling mask.
    fastmri : bool
        Whether ``data`` is one slice of a fastMRI file's k-space, ``(coils, H, W)``.
    slice_index : int or None
        The slice taken from a fastMRI file.
    """

    data: torch.Tensor
    source: str
    spacing: tuple[float, float] | None = None
    mask: torch.Tensor | None = None
    fastmri: bool = False
    slice_index: int | None = None


def read_array(
    path: str | os.PathLike,
    what: str = "--input",
    *,
    dataset: str | None = None,
    slice_index: int | None = None,
    prefer: Sequence[str] = (),
    allow_fastmri: bool = True,
    refuse_fastmri: str | None = None,
) -> ArrayFile:
    """Read one array from a file chosen by its extension.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy``; ``.h5``/``.hdf5``; ``.nii``/``.nii.gz``; a ``.dcm`` file or a folder
        of the ``.dcm`` files of one series (ordered by ``InstanceNumber``).
    what : str
        How messages name the file (``"--input"``, ``"--reference"``).
    dataset : str, optional
        The HDF5 dataset to read.  Default: a fastMRI file's ``kspace`` (when
        ``allow_fastmri``), else the first of ``prefer`` present, else the
        file's only dataset.
    slice_index : int, optional
        For fastMRI files: the slice to read (needed when there are several).
    prefer : sequence of str
        HDF5 datasets to pick, in order, when ``dataset`` is not given.
    allow_fastmri : bool
        Read an HDF5 file holding ``kspace`` as a fastMRI file.
    refuse_fastmri : str, optional
        With ``allow_fastmri``: refuse such a file instead, with this reason.

    Returns
    -------
    ArrayFile

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        For an unknown extension, a file the reader cannot parse (corrupt,
        truncated, another format), a folder holding several DICOM series (the
        message lists them), a missing or ambiguous dataset, a non-numeric or
        non-finite array.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    name = path.name.lower()
    if dataset is not None and not name.endswith((".h5", ".hdf5")):
        raise ValueError(f"--dataset names an HDF5 dataset, but {what} {path} is not an .h5/.hdf5 file")
    if path.is_dir() or name.endswith(".dcm"):
        result = _read_dicom(path, what)
    elif name.endswith(".npy"):
        result = ArrayFile(_as_tensor(read_npy(path, what), path, what), str(path))
    elif name.endswith((".h5", ".hdf5")):
        result = _read_hdf5(path, what, dataset, slice_index, tuple(prefer), allow_fastmri, refuse_fastmri)
    elif name.endswith((".nii", ".nii.gz")):
        result = _read_nifti(path, what)
    else:
        raise ValueError(f"{what} {path}: unknown file type; expected {INPUT_FORMATS}")
    if not bool(torch.isfinite(result.data).all()):
        raise ValueError(f"{what} {path}: the array holds NaN or infinite values")
    return result


def read_npy(path: Path, what: str) -> np.ndarray:
    """A ``.npy`` array (no pickles), its header and length checked first; errors name ``what`` and ``path``."""
    npy_header(path, what)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"{what} {path}: cannot read the .npy file ({describe_error(error)}); {COPY_AGAIN}") from None


def _as_tensor(array: Any, path: Path, what: str) -> torch.Tensor:
    """A numeric array as float64, or complex64/complex128 as stored."""
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.complexfloating):
        dtype = np.complex128 if array.dtype == np.complex128 else np.complex64
        return torch.from_numpy(np.ascontiguousarray(array, dtype=dtype))
    if array.dtype == np.bool_ or np.issubdtype(array.dtype, np.number):
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))
    raise ValueError(f"{what} {path}: expected a numeric array, found dtype {array.dtype}")


def _read_hdf5(
    path: Path,
    what: str,
    dataset: str | None,
    slice_index: int | None,
    prefer: tuple[str, ...],
    allow_fastmri: bool,
    refuse_fastmri: str | None,
) -> ArrayFile:
    import h5py

    with open_hdf5(path, what) as file:
        names: list[str] = []
        file.visititems(lambda key, item: names.append(key) if isinstance(item, h5py.Dataset) else None)
        if not (allow_fastmri and "kspace" in names and dataset in (None, "kspace")):
            if dataset is None:
                chosen = [key for key in prefer if key in names]
                if chosen:
                    dataset = chosen[0]
                elif len(names) == 1:
                    dataset = names[0]
                elif not names:
                    raise ValueError(f"{what} {path}: the HDF5 file holds no dataset")
                else:
                    raise ValueError(
                        f"{what} {path} holds several datasets ({', '.join(sorted(names))}); name one with --dataset"
                    )
            if dataset not in names:
                held = ", ".join(sorted(names)) or "none"
                raise ValueError(f"{what} {path} has no dataset {dataset!r}; it holds: {held}")
            item = file[dataset]
            check_hdf5_dataset(item, f"{what} {path}:{dataset}")
            data = _as_tensor(item[()], path, what)
            spacing = _spacing_attribute(item.attrs) or _spacing_attribute(file.attrs)
            return ArrayFile(data, f"{path}:{dataset}", spacing)
    if refuse_fastmri is not None:
        raise ValueError(f"{what} {path} is a fastMRI file: {refuse_fastmri}")
    return _read_fastmri(path, what, slice_index)


def _spacing_attribute(attrs: Mapping[str, Any]) -> tuple[float, float] | None:
    """``spacing_mm`` (two numbers) or ``pixel_mm`` (one or two) of an HDF5 object, if present and positive."""
    for key in ("spacing_mm", "pixel_mm"):
        if key in attrs:
            values = np.atleast_1d(np.asarray(attrs[key], dtype=np.float64)).tolist()
            values = values * 2 if len(values) == 1 else values[-2:]
            if len(values) == 2 and all(math.isfinite(v) and v > 0 for v in values):
                return (values[0], values[1])
    return None


def _read_fastmri(path: Path, what: str, slice_index: int | None) -> ArrayFile:
    """One k-space slice of a fastMRI file, with its mask and the pixel spacing of its encoded field of view."""
    from invsolve.datasets.io.fastmri import FastMRISliceDataset

    slices = FastMRISliceDataset(path, require_header=False)
    count = len(slices)
    if slice_index is None:
        if count > 1:
            raise ValueError(f"{what} {path} holds {count} slices; choose one with --slice K (0 to {count - 1})")
        slice_index = 0
    if not 0 <= slice_index < count:
        raise ValueError(f"--slice must be between 0 and {count - 1} for {path} ({count} slices), got {slice_index}")
    sample = slices[slice_index]
    kspace = sample["kspace"]
    header = slices.headers[0]
    # the field of view is that of the encoded k-space: it gives the spacing only of an image of that size
    whole = header is not None and header.encoding_size[:2] == tuple(kspace.shape[-2:])
    return ArrayFile(
        kspace,
        f"{path}:kspace[{slice_index}]",
        header.pixel_mm if whole else None,
        mask=sample["mask"],
        fastmri=True,
        slice_index=slice_index,
    )


def _read_nifti(path: Path, what: str) -> ArrayFile:
    import nibabel

    nifti_shape(path, what)
    try:
        image = nibabel.load(path)
        array = np.asarray(image.dataobj)
        zooms = [float(f"{z:.7g}") for z in image.header.get_zooms()]
        unit = image.header.get_xyzt_units()[0]
    except Exception as error:  # nibabel raises many types for unreadable files
        message = f"{what} {path}: nibabel cannot read its data ({describe_error(error)})"
        raise ValueError(f"{message}; {COPY_AGAIN}") from None
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim == 3:  # slices along the last axis, first here
        array = np.moveaxis(array, -1, 0)
        zooms = zooms[:2]
    factor = {"meter": 1000.0, "micron": 1e-3}.get(unit, 1.0)  # "mm" and "unknown" are taken as mm
    spacing = (zooms[0] * factor, zooms[1] * factor) if len(zooms) >= 2 and all(z > 0 for z in zooms[:2]) else None
    return ArrayFile(_as_tensor(array, path, what), str(path), spacing)


def _read_dicom(path: Path, what: str) -> ArrayFile:
    """A ``.dcm`` file, ``(H, W)`` (``(frames, H, W)`` if multi-frame), or a series folder stacked in slice order."""
    if path.is_dir() and not any(f.is_file() and f.name.lower().endswith(".dcm") for f in path.iterdir()):
        raise ValueError(f"{what} {path} is a folder without .dcm files; expected {INPUT_FORMATS}")
    images = dicom_series(path, what)
    planes = [_dicom_pixels(image.path, what) for image in images]
    if len({plane.shape for plane in planes}) > 1:
        found = ", ".join(f"{image.path.name}: {plane.shape}" for image, plane in zip(images, planes))
        raise ValueError(f"{what} {path}: the DICOM files hold arrays of different shapes ({found})")
    values = planes[0] if path.is_file() else np.stack(planes)
    return ArrayFile(torch.from_numpy(values), str(path), images[0].pixel_spacing)


def _dicom_pixels(path: Path, what: str) -> np.ndarray:
    """A DICOM file's pixels in its stored units after the rescale (``slope · stored + intercept``), float64."""
    import pydicom

    try:
        dataset = pydicom.dcmread(path)
        stored = dataset.pixel_array.astype(np.float64)
        slope = float(getattr(dataset, "RescaleSlope", 1.0))
        intercept = float(getattr(dataset, "RescaleIntercept", 0.0))
    except Exception as error:  # pydicom raises many types for pixels it cannot decode
        raise ValueError(
            f"{what} {path}: pydicom cannot decode its pixels ({describe_error(error)}); for compressed pixel data "
            f"install the decoder the message names (e.g. pip install pylibjpeg pylibjpeg-libjpeg "
            f"pylibjpeg-openjpeg), otherwise {COPY_AGAIN}"
        ) from None
    return slope * stored + intercept


def select_plane(
    data: torch.Tensor, dims: int, source: str, slice_index: int | None, strict: bool, layout: str
) -> torch.Tensor:
    """``data`` reduced to ``dims`` axes: leading axes of length 1 dropped, a slice taken from one more axis."""
    while data.dim() > dims and data.shape[0] == 1 and (data.dim() > dims + 1 or slice_index is None or not strict):
        data = data[0]
    if data.dim() == dims:
        if strict and slice_index is not None:
            raise ValueError(f"--slice applies to files with several slices; {source} holds one {layout} array")
        return data
    if data.dim() == dims + 1:
        count = data.shape[0]
        if slice_index is None:
            raise ValueError(f"{source} holds {count} slices shaped {tuple(data.shape[1:])}; choose one with --slice K")
        if not 0 <= slice_index < count:
            raise ValueError(f"--slice must be between 0 and {count - 1} for {source}, got {slice_index}")
        return data[slice_index]
    raise ValueError(f"{source} holds an array of shape {tuple(data.shape)}; expected {layout} (or slices of them)")


def drop_leading_ones(array: torch.Tensor, ndim: int) -> torch.Tensor:
    """``array`` without its leading axes of length 1, down to ``ndim`` axes (a volume stored with batch axes)."""
    while array.dim() > ndim and array.shape[0] == 1:
        array = array[0]
    return array
