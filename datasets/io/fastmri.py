"""Read and write fastMRI HDF5 files (Zbontar et al. 2018, arXiv:1811.08839).

Layout of a fastMRI file, as read by fastMRI's ``fastmri.data.mri_data.SliceDataset``:

``kspace``
    complex64, ``(slices, coils, H, W)`` for multi-coil data and ``(slices, H, W)``
    for single-coil data.  ``H`` is the read-out axis, ``W`` the phase-encode axis.
``reconstruction_rss`` / ``reconstruction_esc``
    float32 ``(slices, H', W')`` targets (usually 320×320): root-sum-of-squares for
    multi-coil files, the emulated single-coil image for single-coil files.  Absent
    in test and challenge files.
``mask``
    ``(W,)`` sampling mask of the phase-encode columns, only in test and challenge
    files (their k-space is already undersampled).
``ismrmrd_header``
    the ISMRMRD XML header (namespace ``http://www.ismrm.org/ISMRMRD``).  fastMRI reads
    ``encoding/encodedSpace/matrixSize``, ``encoding/reconSpace/matrixSize`` and
    ``encoding/encodingLimits/kspace_encoding_step_1`` (``center``, ``maximum``) from it.
file attributes
    ``acquisition``, ``max`` (maximum of the target volume, the data range of fastMRI's
    SSIM/PSNR), ``norm``, ``patient_id``; test files add ``acceleration`` and
    ``num_low_frequency``.

Conventions shared with the MRI operators: k-space is complex64 shaped
``(coils, H, W)`` per slice (single-coil files get a coil axis of 1), volumes are
``(slices, coils, H, W)``, masks are bool ``(W,)`` along the last axis.

Why h5py and not MONAI's ``FastMRIReader``: that reader loads every dataset and
attribute of a file in full (no slice-wise access), returns an all-zero mask shaped
like the k-space when a file has none, does not parse the ISMRMRD header (so no
padding) and checks nothing.  The volume reader and the slice dataset here share one
h5py code path that validates each file once and then reads single slices lazily,
opening the file per item so that no handle crosses a DataLoader worker boundary.
"""

from __future__ import annotations

import bisect
import itertools
import math
import numbers
import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from invsolve._checks import check_finite, check_int, check_shape, check_tensor
from invsolve.files import atomic_write

from .checks import check_hdf5_dataset, open_hdf5

__all__ = [
    "ISMRMRD_NAMESPACE",
    "FastMRIHeader",
    "FastMRIVolume",
    "FastMRISliceDataset",
    "collate_fastmri_slices",
    "read_fastmri_volume",
    "write_fastmri_volume",
    "write_fastmri_reconstruction",
]

ISMRMRD_NAMESPACE = "http://www.ismrm.org/ISMRMRD"

_MULTI_COIL_TARGET = "reconstruction_rss"
_SINGLE_COIL_TARGET = "reconstruction_esc"
_SUBMISSION_SIZE = (320, 320)


@dataclass(frozen=True)
class FastMRIHeader:
    """The numbers fastMRI takes from a file's ISMRMRD header.

    Parameters
    ----------
    encoding_size : (int, int, int)
        ``encoding/encodedSpace/matrixSize`` ``(x, y, z)``: read-out, phase-encode and
        slice-encode sizes of the encoded k-space (``y`` is the k-space width ``W``).
    recon_size : (int, int, int)
        ``encoding/reconSpace/matrixSize`` ``(x, y, z)``, the reconstructed image size.
    center : int
        ``encodingLimits/kspace_encoding_step_1/center``: index of the k-space centre
        among the acquired phase-encode lines.
    maximum : int
        ``encodingLimits/kspace_encoding_step_1/maximum``: index of the last acquired
        phase-encode line.
    fov_mm : (float, float, float), optional
        ``encoding/encodedSpace/fieldOfView_mm`` ``(x, y, z)`` in mm: the field of view
        of the encoded k-space (``z`` is the slice thickness and may be 0); ``None``
        when the header has none.

    Notes
    -----
    fastMRI's padding rule: the acquired lines occupy columns
    ``[padding_left, padding_right)`` of the k-space, with
    ``padding_left = encoding_size[1] // 2 - center`` and
    ``padding_right = padding_left + maximum + 1``; the columns outside are zero
    padding, never acquired, and a sampling mask must not count them.
    """

    encoding_size: tuple[int, int, int]
    recon_size: tuple[int, int, int]
    center: int
    maximum: int
    fov_mm: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "encoding_size", check_shape(self.encoding_size, "encoding_size", ("x", "y", "z")))
        object.__setattr__(self, "recon_size", check_shape(self.recon_size, "recon_size", ("x", "y", "z")))
        object.__setattr__(self, "center", check_int(self.center, "center", 0))
        object.__setattr__(self, "maximum", check_int(self.maximum, "maximum", 0))
        if self.fov_mm is not None:
            object.__setattr__(self, "fov_mm", _check_fov(self.fov_mm))

    @property
    def pixel_mm(self) -> tuple[float, float] | None:
        """Pixel size in mm, ``fov_mm / encoding_size`` along ``(x, y)`` (``None`` without a field of view).

        It is the pixel size of the image of the whole encoded k-space (read-out,
        phase-encode), i.e. of a k-space of ``encoding_size[:2]``.
        """
        if self.fov_mm is None:
            return None
        return (self.fov_mm[0] / self.encoding_size[0], self.fov_mm[1] / self.encoding_size[1])

    @property
    def padding_left(self) -> int:
        """First acquired phase-encode column, ``encoding_size[1] // 2 - center``."""
        return self.encoding_size[1] // 2 - self.center

    @property
    def padding_right(self) -> int:
        """One past the last acquired column, ``padding_left + maximum + 1``."""
        return self.padding_left + self.maximum + 1

    def acquired_columns(self, width: int) -> torch.Tensor:
        """Bool ``(width,)`` tensor, ``True`` on the acquired columns ``[padding_left, padding_right)``.

        Raises ``ValueError`` if those columns do not lie within ``[0, width)``.
        """
        width = check_int(width, "width")
        self._check_padding(width, "the k-space")
        columns = torch.zeros(width, dtype=torch.bool)
        columns[self.padding_left : self.padding_right] = True
        return columns

    @classmethod
    def from_xml(cls, xml: str | bytes, source: str = "ismrmrd_header") -> FastMRIHeader:
        """Parse an ISMRMRD XML header the way fastMRI's ``et_query`` does.

        The encoded field of view (``encoding/encodedSpace/fieldOfView_mm``), which
        fastMRI does not read, is optional: ``fov_mm`` is ``None`` without it.

        Raises ``ValueError`` naming ``source`` if the text is not XML, an element (in
        the ISMRMRD namespace) is missing or not an integer, or a field of view that is
        present is not three numbers (x, y > 0, z >= 0).
        """
        try:
            root = ElementTree.fromstring(xml)
        except ElementTree.ParseError as error:
            message = f"{source}: expected an ISMRMRD XML header, but it does not parse as XML ({error})"
            raise ValueError(message) from None

        def find(*names: str) -> ElementTree.Element | None:
            query = "." + "".join(f"//ismrmrd:{name}" for name in names)
            return root.find(query, {"ismrmrd": ISMRMRD_NAMESPACE})

        def number(kind: type, *names: str) -> int | float:
            element = find(*names)
            where = "/".join(names)
            if element is None:
                raise ValueError(
                    f"{source}: the ISMRMRD header has no element {where} in the namespace {ISMRMRD_NAMESPACE}"
                )
            try:
                return kind((element.text or "").strip())
            except ValueError:
                expected = "an integer" if kind is int else "a number"
                message = f"{source}: ISMRMRD element {where} must be {expected}, found {element.text!r}"
                raise ValueError(message) from None

        encoded = ("encoding", "encodedSpace", "matrixSize")
        recon = ("encoding", "reconSpace", "matrixSize")
        limits = ("encoding", "encodingLimits", "kspace_encoding_step_1")
        fov = ("encoding", "encodedSpace", "fieldOfView_mm")
        encoding_size = tuple(number(int, *encoded, axis) for axis in "xyz")
        recon_size = tuple(number(int, *recon, axis) for axis in "xyz")
        center, maximum = number(int, *limits, "center"), number(int, *limits, "maximum")
        fov_mm = tuple(number(float, *fov, axis) for axis in "xyz") if find(*fov) is not None else None
        try:
            return cls(encoding_size, recon_size, center, maximum, fov_mm)
        except ValueError as error:
            raise ValueError(f"{source}: invalid ISMRMRD header value ({error})") from None

    def to_xml(self) -> str:
        """A minimal ISMRMRD XML header holding just the fields fastMRI reads (and the encoded field of view).

        It is not a complete ISMRMRD header (no recon field of view, trajectory or
        experimental conditions); to keep a scanner's full header, pass its XML text
        to :func:`write_fastmri_volume` instead.
        """

        def triple(tag: str, values: Sequence[int | float]) -> str:
            return f"<{tag}>" + "".join(f"<{a}>{v!r}</{a}>" for a, v in zip("xyz", values)) + f"</{tag}>"

        fov = "" if self.fov_mm is None else triple("fieldOfView_mm", self.fov_mm)
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<ismrmrdHeader xmlns="{ISMRMRD_NAMESPACE}"><encoding>'
            f"<encodedSpace>{triple('matrixSize', self.encoding_size)}{fov}</encodedSpace>"
            f"<reconSpace>{triple('matrixSize', self.recon_size)}</reconSpace>"
            "<encodingLimits><kspace_encoding_step_1>"
            f"<minimum>0</minimum><maximum>{self.maximum}</maximum><center>{self.center}</center>"
            "</kspace_encoding_step_1></encodingLimits>"
            "</encoding></ismrmrdHeader>\n"
        )

    def _check_padding(self, width: int, source: str) -> None:
        if not 0 <= self.padding_left <= self.padding_right <= width:
            raise ValueError(
                f"{source}: the ISMRMRD header puts the acquired columns at "
                f"[{self.padding_left}, {self.padding_right}) (encoding y = {self.encoding_size[1]}, "
                f"center = {self.center}, maximum = {self.maximum}), outside the k-space width {width}"
            )


@dataclass(frozen=True, eq=False)
class FastMRIVolume:
    """One fastMRI file read into memory (see :func:`read_fastmri_volume`).

    Attributes
    ----------
    path : pathlib.Path
        The file read.
    kspace : torch.Tensor
        complex64 ``(slices, coils, H, W)``; ``coils = 1`` for single-coil files.
    target : torch.Tensor or None
        float32 ``(slices, H', W')`` reference images, ``None`` if the file has none.
    target_key : str or None
        The dataset ``target`` was read from.
    mask : torch.Tensor or None
        bool ``(W,)`` sampling mask (test and challenge files), else ``None``.
    header : FastMRIHeader or None
        Parsed ISMRMRD header; ``None`` only if the file has none and it was not required.
    header_xml : str or None
        The header's XML text, to write it back unchanged.
    attrs : dict
        File attributes (``acquisition``, ``max``, ``norm``, ``patient_id``, …) as Python values.
    single_coil : bool
        Whether the file stores single-coil k-space ``(slices, H, W)``.
    """

    path: Path
    kspace: torch.Tensor
    target: torch.Tensor | None
    target_key: str | None
    mask: torch.Tensor | None
    header: FastMRIHeader | None
    header_xml: str | None
    attrs: dict[str, Any]
    single_coil: bool


@dataclass(frozen=True)
class _FileInfo:
    """What one validation pass learns about a file; small enough to pickle to workers."""

    path: Path
    num_slices: int
    coils: int
    height: int
    width: int
    single_coil: bool
    target_key: str | None
    mask: torch.Tensor | None
    header: FastMRIHeader | None
    header_xml: str | None
    attrs: dict[str, Any]


def read_fastmri_volume(
    path: str | os.PathLike, *, target_key: str | None = None, require_header: bool = True
) -> FastMRIVolume:
    """Read a whole fastMRI HDF5 file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.h5`` file in the fastMRI layout (module docstring).
    target_key : str, optional
        Dataset holding the reference images.  By default ``reconstruction_rss`` for
        multi-coil and ``reconstruction_esc`` for single-coil files, and the target is
        ``None`` when the file has no such dataset (test files); a key given here must exist.
    require_header : bool
        If true (default, as in fastMRI), a file without ``ismrmrd_header`` is an error;
        otherwise its ``header`` is ``None``.  A header that is present is always parsed.

    Returns
    -------
    FastMRIVolume
        ``kspace`` complex64 ``(slices, coils, H, W)``, ``target`` float32
        ``(slices, H', W')`` or ``None``, ``mask`` bool ``(W,)`` or ``None``, the header
        and the file attributes.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        Not a readable HDF5 file (or truncated), a dataset compressed with an HDF5
        filter h5py lacks, missing ``kspace``, wrong shapes, a mask
        whose length is not the k-space width, a malformed or missing header.
    TypeError
        ``kspace`` not complex, target not real floating point, mask not bool or 0/1.
    """
    target_key = _check_target_key(target_key)
    with open_hdf5(path) as file:
        source = str(path)
        info = _inspect(file, source, target_key, require_header)
        if info.target_key is None and target_key is not None:
            raise ValueError(f"{source}: expected a target dataset {target_key!r}, found datasets {sorted(file)}")
        kspace = _as_kspace(file["kspace"][()], info.single_coil)
        target = _as_target(file[info.target_key][()]) if info.target_key is not None else None
    return FastMRIVolume(
        path=info.path,
        kspace=kspace,
        target=target,
        target_key=info.target_key,
        mask=info.mask,
        header=info.header,
        header_xml=info.header_xml,
        attrs=info.attrs,
        single_coil=info.single_coil,
    )


class FastMRISliceDataset(Dataset):
    """The slices of one or more fastMRI files as a torch ``Dataset``.

    Indices run over all slices of all files, file by file in the order given (a
    folder's ``*.h5`` files sorted by name).  Every file is validated once here;
    ``__getitem__`` then opens the file, reads one slice and closes it again, so the
    dataset holds no open HDF5 handle and works with ``DataLoader(num_workers > 0)``.

    Parameters
    ----------
    paths_or_folder : str, os.PathLike or sequence of them
        A folder (its ``*.h5`` files, not recursive), one file, or a list of files.
    transform : callable, optional
        Applied to each sample dict before it is returned.
    target_key : str, optional
        As in :func:`read_fastmri_volume`; files without the dataset give
        ``target = None``, but at least one file must have a key given here.
    require_header : bool
        As in :func:`read_fastmri_volume`.

    Notes
    -----
    A sample is a dict with

    * ``"kspace"``: complex64 ``(coils, H, W)``,
    * ``"target"``: float32 ``(H', W')`` or ``None``,
    * ``"mask"``: bool ``(W,)`` or ``None``,
    * ``"file"``: the file name, ``"slice"``: the slice index in that file,
    * ``"max"``: the file's ``max`` attribute (``None`` if absent),
    * ``"padding_left"``, ``"padding_right"``: the acquired columns (``None`` without a header),
    * ``"attrs"``: all file attributes.

    PyTorch's default collate function cannot batch ``None``; batch samples with
    :func:`collate_fastmri_slices`, or use ``batch_size=None``.
    """

    def __init__(
        self,
        paths_or_folder: str | os.PathLike | Sequence[str | os.PathLike],
        transform: Callable[[dict[str, Any]], Any] | None = None,
        target_key: str | None = None,
        *,
        require_header: bool = True,
    ) -> None:
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {type(transform).__name__}")
        key = _check_target_key(target_key)
        infos = []
        for path in _list_files(paths_or_folder):
            with open_hdf5(path) as file:
                infos.append(_inspect(file, str(path), key, require_header))
        if key is not None and all(info.target_key is None for info in infos):
            raise ValueError(f"target_key {key!r} is in none of the {len(infos)} files, e.g. {infos[0].path}")
        self.transform = transform
        self._files = tuple(infos)
        self._ends = list(itertools.accumulate(info.num_slices for info in infos))

    @property
    def files(self) -> tuple[Path, ...]:
        """The files, in index order."""
        return tuple(info.path for info in self._files)

    @property
    def headers(self) -> tuple[FastMRIHeader | None, ...]:
        """The files' parsed ISMRMRD headers, in index order (``None`` for a file without one)."""
        return tuple(info.header for info in self._files)

    def __len__(self) -> int:
        return self._ends[-1]

    def __getitem__(self, index: int) -> Any:
        if isinstance(index, bool) or not isinstance(index, numbers.Integral):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        length = len(self)
        if not -length <= index < length:
            raise IndexError(f"index {index} is out of range for {length} slices")
        index = int(index) % length
        which = bisect.bisect_right(self._ends, index)
        info = self._files[which]
        slice_index = index - (self._ends[which - 1] if which else 0)
        with open_hdf5(info.path) as file:
            kspace = _as_kspace(file["kspace"][slice_index][None], info.single_coil)[0]
            target = _as_target(file[info.target_key][slice_index][None])[0] if info.target_key else None
        header = info.header
        sample = {
            "kspace": kspace,
            "target": target,
            "mask": None if info.mask is None else info.mask.clone(),
            "file": info.path.name,
            "slice": slice_index,
            "max": info.attrs.get("max"),
            "padding_left": None if header is None else header.padding_left,
            "padding_right": None if header is None else header.padding_right,
            "attrs": dict(info.attrs),
        }
        return sample if self.transform is None else self.transform(sample)


def collate_fastmri_slices(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Batch samples of :class:`FastMRISliceDataset` (a ``collate_fn`` for ``DataLoader``).

    ``"kspace"`` is stacked to ``(B, coils, H, W)``, ``"target"`` to ``(B, H', W')`` and
    ``"mask"`` to ``(B, W)``; each stays ``None`` if it is ``None`` in every sample.  All
    other entries become lists of length ``B``.

    Raises ``ValueError`` if shapes differ between samples or ``None`` is mixed with
    tensors (naming the files).
    """
    if len(samples) == 0:
        raise ValueError("collate_fastmri_slices needs at least one sample, got none")
    names = [f"{sample.get('file')}[{sample.get('slice')}]" for sample in samples]
    batch: dict[str, Any] = {}
    for key in samples[0]:
        values = [sample[key] for sample in samples]
        if key not in ("kspace", "target", "mask"):
            batch[key] = values
        elif all(value is None for value in values):
            batch[key] = None
        elif any(value is None for value in values):
            missing = [name for name, value in zip(names, values) if value is None]
            raise ValueError(f"cannot batch {key!r}: it is None for {missing} but a tensor for others")
        else:
            shapes = {tuple(value.shape) for value in values}
            if len(shapes) > 1:
                listed = ", ".join(f"{name}: {tuple(v.shape)}" for name, v in zip(names, values))
                raise ValueError(f"cannot batch {key!r} of different shapes ({listed}); crop or pad in a transform")
            batch[key] = torch.stack(values)
    return batch


def write_fastmri_volume(
    path: str | os.PathLike,
    kspace: torch.Tensor,
    *,
    single_coil: bool = False,
    mask: torch.Tensor | None = None,
    header: FastMRIHeader | str | None = None,
    target: torch.Tensor | None = None,
    target_key: str | None = None,
    attrs: Mapping[str, str | int | float] | None = None,
) -> Path:
    """Write a file in the fastMRI layout, atomically (temporary file + ``os.replace``).

    Parameters
    ----------
    path : str or os.PathLike
        Output ``.h5`` file; its folder is created if needed.
    kspace : torch.Tensor
        complex ``(slices, coils, H, W)``, stored as complex64.
    single_coil : bool
        Store single-coil k-space ``(slices, H, W)`` (requires ``coils = 1``).
    mask : torch.Tensor, optional
        bool ``(W,)``, stored as the ``mask`` dataset (as in test files).
    header : FastMRIHeader or str, optional
        The ISMRMRD header, as parsed numbers (stored with :meth:`FastMRIHeader.to_xml`)
        or as XML text (stored unchanged after checking that it parses).  By default a
        header for fully acquired k-space: ``encoding_size = (H, W, 1)``, ``recon_size``
        the target's ``(H', W', 1)`` (``(H, W, 1)`` without target), ``center = W // 2``,
        ``maximum = W - 1``, hence no padding.
    target : torch.Tensor, optional
        Real ``(slices, H', W')`` reference images, stored as float32.
    target_key : str, optional
        Dataset name for ``target``; ``reconstruction_esc`` for single-coil and
        ``reconstruction_rss`` for multi-coil files by default.
    attrs : mapping, optional
        File attributes (``acquisition``, ``max``, ``norm``, ``patient_id``, ``acceleration``,
        ``num_low_frequency``, …), each a string or a number.  If a target is given and
        ``max`` is not, ``max`` is set to the target's maximum, as in fastMRI's files.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    kspace = check_tensor(kspace, "kspace")
    if not kspace.is_complex():
        raise TypeError(f"kspace must be a complex tensor, got dtype {kspace.dtype}")
    if kspace.dim() != 4:
        raise ValueError(f"kspace must have shape (slices, coils, H, W), got {tuple(kspace.shape)}")
    slices, coils, height, width = kspace.shape
    if single_coil and coils != 1:
        raise ValueError(f"single_coil=True needs kspace with 1 coil, got shape {tuple(kspace.shape)}")
    mask_array = None
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            found = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise TypeError(f"mask must be a bool tensor, got {found}")
        if tuple(mask.shape) != (width,):
            raise ValueError(f"mask must have shape (W,) = ({width},) like the k-space width, got {tuple(mask.shape)}")
        mask_array = mask.detach().cpu().numpy()
    target_array = None
    if target is not None:
        target = check_tensor(target, "target", allow_complex=False)
        if target.dim() != 3 or target.shape[0] != slices:
            raise ValueError(f"target must have shape ({slices}, H', W'), one per slice, got {tuple(target.shape)}")
        target_array = target.detach().cpu().to(torch.float32).numpy()
    key = _check_target_key(target_key) or (_SINGLE_COIL_TARGET if single_coil else _MULTI_COIL_TARGET)
    if key in ("kspace", "mask", "ismrmrd_header"):
        raise ValueError(f"target_key must not name another fastMRI dataset, got {key!r}")
    if header is None:
        recon = (height, width, 1) if target is None else (target.shape[1], target.shape[2], 1)
        header = FastMRIHeader((height, width, 1), recon, center=width // 2, maximum=width - 1)
    if isinstance(header, FastMRIHeader):
        xml = header.to_xml()
    elif isinstance(header, str):
        xml = header
        header = FastMRIHeader.from_xml(xml, "header")
    else:
        raise TypeError(f"header must be a FastMRIHeader, an XML string or None, got {type(header).__name__}")
    header._check_padding(width, "header")
    attributes = _check_attrs(attrs)
    if target_array is not None and "max" not in attributes:
        attributes["max"] = float(target_array.max())
    kspace_array = kspace.detach().cpu().to(torch.complex64).numpy()
    if single_coil:
        kspace_array = kspace_array[:, 0]

    def write(temporary: Path) -> None:
        with h5py.File(temporary, "w") as file:
            file.create_dataset("kspace", data=kspace_array)
            if target_array is not None:
                file.create_dataset(key, data=target_array)
            if mask_array is not None:
                file.create_dataset("mask", data=mask_array)
            file.create_dataset("ismrmrd_header", data=xml, dtype=h5py.string_dtype("utf-8"))
            file.attrs.update(attributes)

    return atomic_write(path, write)


def write_fastmri_reconstruction(
    path: str | os.PathLike,
    reconstruction: torch.Tensor,
    *,
    crop_size: tuple[int, int] = _SUBMISSION_SIZE,
) -> Path:
    """Write reconstructed images in the fastMRI submission layout, atomically.

    The file holds one dataset, ``reconstruction``: float32 ``(slices, 320, 320)``.
    Name it like the input file it reconstructs (fastMRI matches them by name).

    Parameters
    ----------
    path : str or os.PathLike
        Output ``.h5`` file; its folder is created if needed.
    reconstruction : torch.Tensor
        Real ``(slices, H, W)`` images (magnitudes) with ``H, W >= crop_size``.
    crop_size : (int, int)
        Stored size; larger images are centre-cropped like fastMRI's ``center_crop``,
        keeping rows ``[(H - h) // 2, (H - h) // 2 + h)`` and likewise columns.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    reconstruction = check_tensor(reconstruction, "reconstruction", allow_complex=False)
    crop_h, crop_w = check_shape(crop_size, "crop_size", ("h", "w"))
    if reconstruction.dim() != 3:
        raise ValueError(f"reconstruction must have shape (slices, H, W), got {tuple(reconstruction.shape)}")
    height, width = reconstruction.shape[1:]
    if height < crop_h or width < crop_w:
        raise ValueError(
            f"reconstruction images must be at least {crop_h}x{crop_w} to be cropped to the "
            f"submission size, got {height}x{width}"
        )
    check_finite(reconstruction, "reconstruction")
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    cropped = reconstruction[:, top : top + crop_h, left : left + crop_w]
    array = cropped.detach().cpu().to(torch.float32).numpy()

    def write(temporary: Path) -> None:
        with h5py.File(temporary, "w") as file:
            file.create_dataset("reconstruction", data=array)

    return atomic_write(path, write)


def _inspect(file: h5py.File, source: str, target_key: str | None, require_header: bool) -> _FileInfo:
    """Validate a fastMRI file's layout without reading its k-space or target."""
    if "kspace" not in file or not isinstance(file["kspace"], h5py.Dataset):
        raise ValueError(f"{source}: expected a 'kspace' dataset (fastMRI layout), found {sorted(file)}")
    kspace = file["kspace"]
    check_hdf5_dataset(kspace, f"{source}:kspace")
    if not np.issubdtype(kspace.dtype, np.complexfloating):
        raise TypeError(f"{source}: 'kspace' must be complex (complex64), found dtype {kspace.dtype}")
    if kspace.ndim not in (3, 4) or 0 in kspace.shape:
        raise ValueError(
            f"{source}: 'kspace' must be (slices, coils, H, W) or single-coil (slices, H, W), "
            f"found shape {kspace.shape}"
        )
    single_coil = kspace.ndim == 3
    num_slices, height, width = kspace.shape[0], kspace.shape[-2], kspace.shape[-1]
    key = target_key or (_SINGLE_COIL_TARGET if single_coil else _MULTI_COIL_TARGET)
    if key in file:
        target = file[key]
        if not isinstance(target, h5py.Dataset) or target.ndim != 3 or target.shape[0] != num_slices:
            found = target.shape if isinstance(target, h5py.Dataset) else "a group"
            expected = f"({num_slices}, H', W') like the k-space slices"
            raise ValueError(f"{source}: '{key}' must have shape {expected}, found {found}")
        check_hdf5_dataset(target, f"{source}:{key}")
        if not np.issubdtype(target.dtype, np.floating):
            raise TypeError(f"{source}: '{key}' must be real floating point (float32), found dtype {target.dtype}")
    else:
        key = None
    header, xml = None, None
    if "ismrmrd_header" in file:
        xml = _header_text(file["ismrmrd_header"], source)
        header = FastMRIHeader.from_xml(xml, f"{source} ismrmrd_header")
        header._check_padding(width, source)
    elif require_header:
        raise ValueError(
            f"{source}: expected an 'ismrmrd_header' dataset (fastMRI layout), found {sorted(file)}; "
            "pass require_header=False to read files without one"
        )
    return _FileInfo(
        path=Path(source),
        num_slices=num_slices,
        coils=1 if single_coil else kspace.shape[1],
        height=height,
        width=width,
        single_coil=single_coil,
        target_key=key,
        mask=_read_mask(file, source, width) if "mask" in file else None,
        header=header,
        header_xml=xml,
        attrs={name: _python_value(value) for name, value in file.attrs.items()},
    )


def _header_text(dataset: h5py.Dataset | h5py.Group, source: str) -> str:
    """The XML text of an ``ismrmrd_header`` dataset (a scalar string, bytes or str)."""
    value = dataset[()] if isinstance(dataset, h5py.Dataset) and dataset.shape == () else None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    found = dataset.dtype if isinstance(dataset, h5py.Dataset) else "a group"
    shape = f" shaped {dataset.shape}" if isinstance(dataset, h5py.Dataset) else ""
    raise ValueError(f"{source}: 'ismrmrd_header' must be a scalar XML string, found {found}{shape}")


def _read_mask(file: h5py.File, source: str, width: int) -> torch.Tensor:
    dataset = file["mask"]
    if not isinstance(dataset, h5py.Dataset) or dataset.shape != (width,):
        found = dataset.shape if isinstance(dataset, h5py.Dataset) else "a group"
        raise ValueError(f"{source}: 'mask' must have shape ({width},) like the k-space width, found {found}")
    values = dataset[()]
    if values.dtype != np.bool_:
        numeric = np.issubdtype(values.dtype, np.integer) or np.issubdtype(values.dtype, np.floating)
        if not numeric or not np.isin(values, (0, 1)).all():
            raise TypeError(f"{source}: 'mask' must be bool or 0/1 values, found dtype {values.dtype}")
    return torch.from_numpy(values.astype(np.bool_))


def _as_kspace(values: np.ndarray, single_coil: bool) -> torch.Tensor:
    """``(slices, [coils,] H, W)`` complex array -> complex64 ``(slices, coils, H, W)`` tensor."""
    tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.complex64))
    return tensor[:, None] if single_coil else tensor


def _as_target(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))


def _python_value(value: Any) -> Any:
    """HDF5 attribute -> plain Python value (numpy scalars unwrapped, bytes decoded)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _check_fov(value: object) -> tuple[float, float, float]:
    message = f"fov_mm must be a triple (x, y, z) of mm with x, y > 0 and z >= 0, got {value!r}"
    try:
        x, y, z = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(z) and x > 0 and y > 0 and z >= 0):
        raise ValueError(message)
    return (x, y, z)


def _check_target_key(target_key: object) -> str | None:
    if target_key is not None and (not isinstance(target_key, str) or not target_key):
        raise TypeError(f"target_key must be a non-empty string or None, got {target_key!r}")
    return target_key


def _check_attrs(attrs: Mapping[str, Any] | None) -> dict[str, str | int | float]:
    if attrs is None:
        return {}
    if not isinstance(attrs, Mapping):
        raise TypeError(f"attrs must be a mapping of names to strings or numbers, got {type(attrs).__name__}")
    checked: dict[str, str | int | float] = {}
    for name, value in attrs.items():
        if not isinstance(name, str):
            raise TypeError(f"attrs keys must be strings, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, (str, numbers.Real)):
            raise TypeError(f"attrs[{name!r}] must be a string or a number, got {value!r}")
        if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) and not math.isfinite(value):
            raise ValueError(f"attrs[{name!r}] must be finite, got {value!r}")
        checked[name] = value.item() if isinstance(value, np.generic) else value
    return checked


def _list_files(paths_or_folder: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """A folder's ``*.h5`` files (sorted), one file, or a list of files (existence checked later)."""
    if isinstance(paths_or_folder, (str, os.PathLike)):
        path = Path(paths_or_folder)
        if not path.exists():
            raise FileNotFoundError(f"paths_or_folder: {path} does not exist")
        if not path.is_dir():
            return [path]
        files = sorted(path.glob("*.h5"))
        if not files:
            raise ValueError(f"paths_or_folder: folder {path} holds no .h5 files")
        return files
    if not isinstance(paths_or_folder, Sequence):
        raise TypeError(f"paths_or_folder must be a path or a sequence of paths, got {type(paths_or_folder).__name__}")
    files = []
    for i, entry in enumerate(paths_or_folder):
        if not isinstance(entry, (str, os.PathLike)):
            raise TypeError(f"paths_or_folder[{i}] must be a path, got {entry!r}")
        files.append(Path(entry))
    if not files:
        raise ValueError("paths_or_folder is an empty sequence; expected at least one fastMRI file")
    return files
