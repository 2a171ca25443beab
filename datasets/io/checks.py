"""Checked openers and cheap integrity checks for the files the datasets and ``invsolve reconstruct`` read.

A truncated or damaged file should be refused when a dataset is built, with an
error that names the file and says what to do, and not many items later with a
library message that names neither.  The checks here read headers only and
compare the number of data bytes a header declares with the bytes the file
holds, so they cost a few kilobytes of reading per file, never a decode:

DICOM (:func:`dicom_image`, :func:`dicom_series`)
    The header parses (pydicom, pixel data deferred); ``Rows``, ``Columns`` and
    the pixel data are present; uncompressed pixel data declares at least
    ``Rows × Columns × SamplesPerPixel × NumberOfFrames × BitsAllocated / 8``
    bytes and the file holds them; compressed (encapsulated) pixel data ends
    with its delimiter.  A folder holds one series (one ``SeriesInstanceUID``),
    its images share one size and are ordered by ``InstanceNumber``.
NIfTI (:func:`nifti_shape`)
    The header parses (nibabel); a ``.nii`` file holds the ``vox_offset +
    voxels × bytes per voxel`` bytes its header declares; a ``.nii.gz`` stream
    decompresses to them and ends properly (the gzip trailer's length is
    compared first; only when it differs is the stream decompressed to find
    where it ends).
HDF5 (:func:`open_hdf5`, :func:`check_hdf5_dataset`)
    h5py opens the file (HDF5 compares the file's length with the end address
    stored in its superblock, so truncation is found here); a dataset's shape
    and dtype are readable and its compression filters are available.
FITS (:func:`open_fits`)
    astropy parses every header; each HDU's data (``|BITPIX| / 8 × GCOUNT ×
    (PCOUNT + NAXIS1 × … × NAXISn)`` bytes) lies inside the file; no extension
    header is cut short after the last HDU; ``.gz`` streams are complete, as for NIfTI.
``.npy`` (:func:`npy_header`)
    The header parses, holds no Python objects, and the file holds
    ``header + prod(shape) × itemsize`` bytes.

Every error is a ``ValueError`` (``FileNotFoundError`` for a missing path)
whose message starts with the file (after ``what``, e.g. ``"--input"``, when
given) and ends with what to do.  The readers (pydicom, nibabel, h5py,
astropy) are imported inside the functions that use them.
"""

from __future__ import annotations

import gzip
import importlib
import math
import os
import struct
import warnings
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "COPY_AGAIN",
    "DicomImage",
    "dicom_image",
    "dicom_series",
    "nifti_shape",
    "npy_header",
    "open_hdf5",
    "check_hdf5_dataset",
    "open_fits",
    "reading",
    "describe_error",
]

#: the fix for a truncated or damaged file
COPY_AGAIN = "the file is incomplete or damaged: copy or download it again (its size must match the original's)"
_DICOM_SUFFIX = ".dcm"
# DICOM elements longer than this are not read by the header check (only their length and position).
_DICOM_DEFER_BYTES = 1024
# The pixel-data elements: tag -> (keyword, bits per sample when fixed by the element).
_PIXEL_TAGS = {
    0x7FE00010: ("PixelData", None),
    0x7FE00008: ("FloatPixelData", 32),
    0x7FE00009: ("DoubleFloatPixelData", 64),
}
_UNDEFINED_LENGTH = 0xFFFFFFFF
_DEFLATED = "1.2.840.10008.1.2.1.99"
_GZIP_CHUNK = 1 << 16
# Series listed by name in the error for a folder of several DICOM series.
_LISTED_SERIES = 6


def describe_error(error: BaseException) -> str:
    """``"Type: message"`` of a library error on one line (some libraries put newlines in messages)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _name(path: Path, what: str | None) -> str:
    return f"{what} {path}" if what else str(path)


def _existing_file(path: str | os.PathLike, what: str | None, kind: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{_name(path, what)} does not exist")
    if path.is_dir():
        raise ValueError(f"{_name(path, what)}: expected {kind} file, found a folder")
    return path


@contextmanager
def reading(path: str | os.PathLike, what: str | None = None) -> Iterator[None]:
    """Turn a reader's error inside the block into a ``ValueError`` naming ``path`` and the fix.

    For reads after the checks of this module passed (an item of a dataset):
    such a failure means that the file changed or is damaged where no header
    check looks (e.g. corrupt compressed data).
    """
    try:
        yield
    except (OSError, ValueError, EOFError, RuntimeError, KeyError, TypeError, zlib.error) as error:
        if isinstance(error, FileNotFoundError):
            raise FileNotFoundError(f"{_name(Path(path), what)} does not exist any more (moved or deleted?)") from None
        message = f"{_name(Path(path), what)}: reading it failed ({describe_error(error)}); {COPY_AGAIN}"
        raise ValueError(f"{message}, and rebuild the dataset if the file was changed on purpose") from None


# -- gzip streams ------------------------------------------------------------------
def _check_gzip_stream(path: Path, name: str, needed: int, complete: int | None = None) -> None:
    """Check that the gzip stream of ``path`` is complete and decompresses to at least ``needed`` bytes.

    The trailer's ISIZE (the decompressed length modulo 2³²) is compared with
    ``complete`` (the whole length the headers imply, default ``needed``)
    first: a truncated file ends in compressed data, whose last four bytes
    match by chance only (≈ 2⁻³²).  When they differ (truncation, several gzip
    members, extra bytes), the stream is decompressed to find out.
    """
    complete = needed if complete is None else complete
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() >= 18:  # the smallest gzip member: 10-byte header, 8-byte trailer
            handle.seek(-4, os.SEEK_END)
            if struct.unpack("<I", handle.read(4))[0] == complete % (1 << 32):
                return
    length = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(_GZIP_CHUNK):
                length += len(chunk)
    except EOFError:
        raise ValueError(
            f"{name}: the gzip stream ends before its end marker, after about {length} of the {needed} "
            f"decompressed bytes the headers declare; {COPY_AGAIN}"
        ) from None
    except (OSError, zlib.error) as error:
        message = f"{name}: the gzip data is corrupt after about {length} decompressed bytes ({describe_error(error)})"
        raise ValueError(f"{message}; {COPY_AGAIN}") from None
    if length < needed:
        raise ValueError(f"{name}: decompresses to {length} bytes, but its headers declare {needed}; {COPY_AGAIN}")


# -- DICOM -------------------------------------------------------------------------
@dataclass(frozen=True)
class DicomImage:
    """What the header of one DICOM image file says (see :func:`dicom_image`).

    Attributes
    ----------
    path : pathlib.Path
        The file.
    series_uid, series_description : str
        ``SeriesInstanceUID`` and ``SeriesDescription`` (``""`` when absent).
    series_number, instance_number : int or None
        ``SeriesNumber`` and ``InstanceNumber`` (the slice order), ``None`` when absent or empty.
    rows, columns, frames, samples_per_pixel : int
        ``Rows``, ``Columns``, ``NumberOfFrames`` (1 when absent) and ``SamplesPerPixel`` (1 when absent).
    pixel_spacing : (float, float) or None
        ``PixelSpacing`` in mm: between rows, between columns.
    """

    path: Path
    series_uid: str
    series_description: str
    series_number: int | None
    instance_number: int | None
    rows: int
    columns: int
    frames: int
    samples_per_pixel: int
    pixel_spacing: tuple[float, float] | None


def dicom_image(path: str | os.PathLike, what: str | None = None) -> DicomImage:
    """Read and check the header of one DICOM image file, without decoding its pixels.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    what : str, optional
        How messages name the file (e.g. ``"--input"``), before its path.

    Returns
    -------
    DicomImage

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Not a DICOM file; a header cut short; no ``Rows``/``Columns``; no pixel
        data; fewer pixel-data bytes declared or present than the image size
        needs; compressed pixel data without its end delimiter.
    """
    import pydicom

    path = _existing_file(path, what, "a DICOM (.dcm)")
    name = _name(path, what)
    size = path.stat().st_size
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dataset = pydicom.dcmread(path, defer_size=_DICOM_DEFER_BYTES)
    except pydicom.errors.InvalidDicomError as error:
        raise ValueError(
            f"{name}: not a DICOM file ({describe_error(error)}); pass DICOM files with the standard file header "
            "(128-byte preamble and 'DICM', as scanners and PACS export them)"
        ) from None
    except Exception as error:  # pydicom raises many types for damaged headers
        raise ValueError(f"{name}: pydicom cannot read its header ({describe_error(error)}); {COPY_AGAIN}") from None
    notes = "; ".join(dict.fromkeys(" ".join(str(w.message).split()) for w in caught))
    notes = f" (pydicom: {notes})" if notes else ""
    pixels = next(((tag, *_PIXEL_TAGS[tag]) for tag in _PIXEL_TAGS if tag in dataset), None)
    if pixels is None:
        raise ValueError(
            f"{name}: holds no pixel data{notes}; if it is an image, the file ends before its pixels ({size} "
            f"bytes in all): {COPY_AGAIN}; if it is not an image (a DICOMDIR, report, plan or structure set), "
            "move it out of the folder"
        )
    tag, keyword, float_bits = pixels
    try:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        samples = int(dataset.get("SamplesPerPixel", 1) or 1)
        bits = float_bits or int(dataset.BitsAllocated)
    except AttributeError as error:
        message = f"{name}: an image needs Rows, Columns and BitsAllocated ({describe_error(error)})"
        raise ValueError(f"{message}; {COPY_AGAIN}") from None
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: a damaged image header ({describe_error(error)}); {COPY_AGAIN}") from None
    if min(rows, columns, frames, samples, bits) <= 0:
        raise ValueError(
            f"{name}: the header declares an empty image (Rows {rows}, Columns {columns}, NumberOfFrames {frames}, "
            f"SamplesPerPixel {samples}, BitsAllocated {bits}); {COPY_AGAIN}"
        )
    element = dataset.get_item(tag, keep_deferred=True)
    syntax = str(getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", "") or "")
    if element.length != _UNDEFINED_LENGTH:  # native (uncompressed) pixel data
        if element.value is not None:
            present = len(element.value)
        elif syntax == _DEFLATED:  # positions refer to the inflated stream, not to the file
            present = element.length
        else:  # deferred: its bytes lie at value_tell in the file
            present = min(element.length, max(0, size - element.value_tell))
        if present < element.length:
            raise ValueError(
                f"{name}: {keyword} declares {element.length} bytes from byte {element.value_tell}, but the file "
                f"ends {element.length - present} bytes short of them ({size} bytes in all); {COPY_AGAIN}"
            )
        expected = math.ceil(rows * columns * samples * frames * bits / 8)
        if element.length < expected:
            raise ValueError(
                f"{name}: {keyword} holds {element.length} bytes, but Rows × Columns × SamplesPerPixel × "
                f"NumberOfFrames × BitsAllocated / 8 = {rows} × {columns} × {samples} × {frames} × {bits} / 8 "
                f"needs {expected}; {COPY_AGAIN}"
            )
    spacing = dataset.get("PixelSpacing")
    try:
        spacing = (float(spacing[0]), float(spacing[1])) if spacing is not None and len(spacing) == 2 else None
    except (TypeError, ValueError):
        spacing = None
    return DicomImage(
        path=path,
        series_uid=str(dataset.get("SeriesInstanceUID", "") or ""),
        series_description=str(dataset.get("SeriesDescription", "") or ""),
        series_number=_optional_int(dataset.get("SeriesNumber")),
        instance_number=_optional_int(dataset.get("InstanceNumber")),
        rows=rows,
        columns=columns,
        frames=frames,
        samples_per_pixel=samples,
        pixel_spacing=spacing,
    )


def dicom_series(path: str | os.PathLike, what: str | None = None) -> list[DicomImage]:
    """The checked headers of one DICOM series, in slice order.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.dcm`` file (a series of one image) or a folder directly holding
        the ``*.dcm`` files of one series (any case of the suffix).
    what : str, optional
        How messages name the path (e.g. ``"--input"``).

    Returns
    -------
    list of DicomImage
        Every file checked by :func:`dicom_image`, sorted by ``InstanceNumber``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        A file failing :func:`dicom_image`; a folder without ``.dcm`` files; a
        folder holding several series (the message lists each series' UID,
        description and number of files); images of different sizes; a series
        of several files with a missing or repeated ``InstanceNumber``.
    """
    path = Path(path)
    name = _name(path, what)
    if not path.exists():
        raise FileNotFoundError(f"{name} does not exist")
    if path.is_file():
        if not path.name.lower().endswith(_DICOM_SUFFIX):
            raise ValueError(f"{name}: expected a DICOM .dcm file or a folder of them")
        return [dicom_image(path, what)]
    files = sorted(f for f in path.iterdir() if f.is_file() and f.name.lower().endswith(_DICOM_SUFFIX))
    if not files:
        raise ValueError(
            f"{name}: the folder holds no .dcm files; pass a folder holding one DICOM series, or a .dcm file"
        )
    images = [dicom_image(file, what) for file in files]
    series: dict[str, list[DicomImage]] = {}
    for image in images:
        series.setdefault(image.series_uid, []).append(image)
    if len(series) > 1:
        listed = [_series_phrase(uid, members) for uid, members in list(series.items())[:_LISTED_SERIES]]
        if len(series) > _LISTED_SERIES:
            listed.append(f"and {len(series) - _LISTED_SERIES} more")
        raise ValueError(
            f"{name}: the folder holds {len(series)} DICOM series ({'; '.join(listed)}), but a series folder must "
            "hold one; move each series' files into a folder of its own and pass that folder (or pass one .dcm file)"
        )
    sizes = {(image.rows, image.columns): image.path.name for image in images}
    if len(sizes) > 1:
        found = ", ".join(f"{r}×{c} ({file})" for (r, c), file in sizes.items())
        raise ValueError(
            f"{name}: the DICOM images have different sizes (rows × columns: {found}); the images of a series share "
            "one size: move the odd ones out of the folder"
        )
    if len(images) == 1:
        return images
    seen: dict[int, Path] = {}
    for image in images:
        if image.instance_number is None:
            raise ValueError(
                f"{image.path}: has no InstanceNumber, which orders the slices of a series of several files; "
                "pass the files one by one, or convert the series to NIfTI (e.g. with dcm2niix)"
            )
        if image.instance_number in seen:
            raise ValueError(
                f"{image.path} and {seen[image.instance_number]} have the same InstanceNumber "
                f"{image.instance_number}: two copies of one slice, or two series in one folder; keep one of them"
            )
        seen[image.instance_number] = image.path
    return sorted(images, key=lambda image: image.instance_number)


def _series_phrase(uid: str, members: Sequence[DicomImage]) -> str:
    first = members[0]
    label = f" {first.series_description!r}" if first.series_description else ""
    number = f" (SeriesNumber {first.series_number})" if first.series_number is not None else ""
    count = f"{len(members)} file{'s' if len(members) != 1 else ''}"
    return f"SeriesInstanceUID {uid or '(none)'}{label}{number}: {count}, e.g. {first.path.name}"


def _optional_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- NIfTI -------------------------------------------------------------------------
def nifti_shape(path: str | os.PathLike, what: str | None = None) -> tuple[int, ...]:
    """Check a ``.nii``/``.nii.gz`` file's header and data length; return its array shape.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    what : str, optional
        How messages name the file (e.g. ``"--input"``).

    Returns
    -------
    tuple of int
        The shape nibabel reads (``(X, Y, Z)``, ``(X, Y, Z, T)``, …).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        nibabel cannot parse the header, or the file (the decompressed stream
        for ``.gz``) is shorter than ``vox_offset + voxels × bytes per voxel``.
    """
    import nibabel

    path = _existing_file(path, what, "a NIfTI (.nii, .nii.gz)")
    name = _name(path, what)
    try:
        image = nibabel.load(path)
        proxy = image.dataobj
        shape, offset, dtype = tuple(int(n) for n in proxy.shape), int(proxy.offset), np.dtype(proxy.dtype)
    except nibabel.filebasedimages.ImageFileError as error:
        raise ValueError(
            f"{name}: not a NIfTI file nibabel can read ({describe_error(error)}); pass .nii or .nii.gz files, "
            f"or, if it is one, {COPY_AGAIN}"
        ) from None
    except Exception as error:  # nibabel raises many types for damaged headers
        message = f"{name}: nibabel cannot read its NIfTI header ({describe_error(error)})"
        raise ValueError(f"{message}; {COPY_AGAIN}") from None
    expected = offset + math.prod(shape) * dtype.itemsize
    if path.name.lower().endswith(".gz"):
        _check_gzip_stream(path, name, expected)
    elif path.stat().st_size < expected:
        raise ValueError(
            f"{name}: holds {path.stat().st_size} bytes, but its header declares {math.prod(shape)} voxels "
            f"({'×'.join(map(str, shape))}) of {dtype} from byte {offset}, {expected} bytes; {COPY_AGAIN}"
        )
    return shape


# -- .npy --------------------------------------------------------------------------
def npy_header(path: str | os.PathLike, what: str | None = None) -> tuple[tuple[int, ...], np.dtype]:
    """Check a ``.npy`` file's header and length; return the array's shape and dtype.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        No ``.npy`` header, a damaged one, an array of Python objects (which
        needs pickles), or fewer data bytes than ``prod(shape) × itemsize``.
    """
    path = _existing_file(path, what, "a NumPy .npy")
    name = _name(path, what)
    with open(path, "rb") as handle:
        if handle.read(6) != b"\x93NUMPY":
            raise ValueError(
                f"{name}: not a NumPy .npy file (no .npy header; corrupt or another format); "
                "save arrays with numpy.save"
            )
        handle.seek(0)
        try:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        except (ValueError, OSError, EOFError) as error:
            raise ValueError(f"{name}: the .npy header is damaged ({describe_error(error)}); {COPY_AGAIN}") from None
        offset = handle.tell()
    if dtype.hasobject:
        raise ValueError(f"{name}: holds Python objects (dtype {dtype}), which need pickles; save a numeric array")
    expected = offset + math.prod(shape) * dtype.itemsize
    if path.stat().st_size < expected:
        raise ValueError(
            f"{name}: holds {path.stat().st_size} bytes, but its header declares a {dtype} array of shape "
            f"{tuple(shape)}, {expected} bytes; {COPY_AGAIN}"
        )
    return tuple(shape), dtype


# -- HDF5 --------------------------------------------------------------------------
@contextmanager
def open_hdf5(path: str | os.PathLike, what: str | None = None) -> Iterator[Any]:
    """Open an HDF5 file read-only with h5py and close it after the block.

    The one HDF5 opener of the package (fastMRI files, HDF5 training arrays,
    measurement files).  h5py's ``OSError`` when opening (not HDF5, truncated,
    locked, not closed by its writer) and while reading inside the block
    becomes a ``ValueError`` naming the file and the fix.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is a folder, or h5py cannot open or read it.
    """
    import h5py

    path = _existing_file(path, what, "an HDF5 (.h5)")
    name = _name(path, what)
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        message = f"{name}: not a readable HDF5 file ({describe_error(error)})"
        raise ValueError(f"{message}; {_hdf5_fix(str(error))}") from None
    try:
        yield file
    except OSError as error:
        raise ValueError(f"{name}: reading the HDF5 file failed ({describe_error(error)}); {COPY_AGAIN}") from None
    finally:
        file.close()


def _hdf5_fix(message: str) -> str:
    """What to do about an h5py open error, by its HDF5 message."""
    if "truncated file" in message:
        return f"it is truncated: {COPY_AGAIN}"
    if "signature not found" in message:
        return f"expected an HDF5 file (.h5, .hdf5); if it is one, {COPY_AGAIN}"
    if "lock" in message:
        return "the file system refuses HDF5's file lock: set the environment variable HDF5_USE_FILE_LOCKING=FALSE"
    if "consistency flags" in message or "already open" in message:
        return "another program is writing it or did not close it: let it finish, or clear the flag with h5clear -s"
    return f"check that it is an HDF5 file; if it is, {COPY_AGAIN}"


def check_hdf5_dataset(dataset: Any, source: str) -> None:
    """Check that an HDF5 dataset's shape and dtype are readable and its filters available.

    Parameters
    ----------
    dataset : h5py.Dataset
        The dataset, in a file opened with :func:`open_hdf5`.
    source : str
        How messages name it (file and dataset).

    Raises
    ------
    ValueError
        Its shape or dtype cannot be read, or it is compressed with an HDF5
        filter this h5py does not have (after trying to import ``hdf5plugin``,
        which registers the common ones).
    """
    import h5py

    try:
        dataset.shape, dataset.dtype  # noqa: B018 - reading them is the check
        plist = dataset.id.get_create_plist()
        filters = [plist.get_filter(i) for i in range(plist.get_nfilters())]
    except (OSError, ValueError, TypeError, KeyError) as error:
        message = f"{source}: the dataset's shape, type or layout cannot be read ({describe_error(error)})"
        raise ValueError(f"{message}; {COPY_AGAIN}") from None
    missing = [(code, label) for code, _, _, label in filters if not h5py.h5z.filter_avail(code)]
    if missing:
        try:
            importlib.import_module("hdf5plugin")  # registers the common compression filters with HDF5
        except ImportError:
            pass
        missing = [(code, label) for code, label in missing if not h5py.h5z.filter_avail(code)]
    if missing:
        names = ", ".join(f"{label.decode(errors='replace') or 'unnamed'} (id {code})" for code, label in missing)
        raise ValueError(
            f"{source}: is compressed with the HDF5 filter {names}, which this h5py cannot decode; "
            "pip install hdf5plugin (it is imported automatically), or rewrite the file without that compression"
        )


# -- FITS --------------------------------------------------------------------------
@contextmanager
def open_fits(path: str | os.PathLike, what: str | None = None) -> Iterator[Any]:
    """Open a FITS file (optionally ``.gz``) with astropy, check it, and close it after the block.

    Every HDU header must parse, every HDU's data must lie inside the file (the
    decompressed stream for ``.gz``, which must also be complete), and no
    extension header may be cut short after the last HDU (astropy drops such
    an HDU silently).  Wrap reads of the data in :func:`reading`.

    Yields
    ------
    astropy.io.fits.HDUList
        Opened with ``memmap=False``.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        astropy cannot parse it, or a check fails.
    """
    from astropy.io import fits

    path = _existing_file(path, what, "a FITS")
    name = _name(path, what)
    try:
        hdus = fits.open(path, memmap=False)
    except Exception as error:  # astropy raises OSError, ValueError, ... for damaged files
        raise ValueError(
            f"{name}: astropy cannot open it as FITS ({describe_error(error)}); pass FITS files (.fits, .fit, .fts, "
            f"optionally .gz); if it is one, {COPY_AGAIN}"
        ) from None
    with hdus:
        try:
            infos = [(hdus.fileinfo(i), hdu) for i, hdu in enumerate(hdus)]
            extents = [(int(info["datLoc"]), int(hdu.size), int(info["datSpan"]), hdu.name) for info, hdu in infos]
        except Exception as error:  # headers after the first are parsed here, lazily
            raise ValueError(f"{name}: a FITS header is damaged ({describe_error(error)}); {COPY_AGAIN}") from None
        start, size, span, _ = extents[-1]
        if path.name.lower().endswith(".gz"):
            _check_gzip_stream(path, name, start + size, start + span)
        else:
            _check_fits_length(path, name, extents)
        yield hdus


def _check_fits_length(path: Path, name: str, extents: Sequence[tuple[int, int, int, str]]) -> None:
    """Each HDU's data inside the file, and no extension header cut short after the last one."""
    length = path.stat().st_size
    for index, (start, size, _, label) in enumerate(extents):
        if start + size > length:
            raise ValueError(
                f"{name}: HDU {index} ({label}) declares {size} data bytes (|BITPIX|/8 × GCOUNT × (PCOUNT + "
                f"NAXIS1 × … × NAXISn)) from byte {start}, but the file ends at byte {length}; {COPY_AGAIN}"
            )
    start, _, span, _ = extents[-1]
    if length > start + span:
        with open(path, "rb") as handle:
            handle.seek(start + span)
            if handle.read(8) == b"XTENSION":
                raise ValueError(
                    f"{name}: an extension header begins at byte {start + span} but is cut short (the file ends at "
                    f"byte {length}); {COPY_AGAIN}"
                )
