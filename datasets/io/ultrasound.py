"""Ultrasound files: B-mode DICOM frames and cines in, dehazing results out (HDF5 with provenance).

* :func:`read_bmode_dicom` — an ultrasound DICOM image or multi-frame cine
  (``Modality`` US; monochrome, RGB or YBR colour) as grey frames in
  ``[0, 1]``: the luminance ``Y`` (ITU-R BT.601) of colour data, read as stored
  for YBR; the frame time; and the pixel spacing of the first ultrasound region
  (``SequenceOfUltrasoundRegions``, DICOM PS3.3 C.8.5.5) when its physical
  units are centimetres and its box lies inside the frame.
* :func:`write_ultrasound_hdf5` — named arrays and attributes in one HDF5 file,
  written atomically (:func:`invsolve.files.atomic_write`), with the package
  version and the time of writing as provenance.

pydicom decodes the pixels; the checks of :func:`~.checks.dicom_image` run
first, so a file without pixel data gets one clear error before any decoding.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from invsolve.files import atomic_write

from .checks import dicom_image, reading

__all__ = ["BModeCine", "read_bmode_dicom", "write_ultrasound_hdf5"]

#: ITU-R BT.601 luma weights of R, G, B
_LUMA = (0.299, 0.587, 0.114)
#: DICOM's code of centimetres for an ultrasound region's physical units (PS3.3 C.8.5.5.1.15)
_CENTIMETRES = 3


@dataclass(frozen=True)
class BModeCine:
    """Grey B-mode frames read from a DICOM file.

    Attributes
    ----------
    frames : torch.Tensor
        ``(n_frames, H, W)`` float64 in ``[0, 1]`` (full scale of the stored bits).
    frame_time_ms : float or None
        ``FrameTime``: milliseconds between frames.
    spacing_mm : (float, float) or None
        Millimetres per pixel between rows and between columns, from the
        first ultrasound region (``None`` when the file gives none usable).
    source : str
        The file.
    """

    frames: torch.Tensor
    frame_time_ms: float | None
    spacing_mm: tuple[float, float] | None
    source: str


def _region_spacing(dataset: Any, rows: int, columns: int) -> tuple[float, float] | None:
    regions = getattr(dataset, "SequenceOfUltrasoundRegions", None)
    if not regions:
        return None
    region = regions[0]
    try:
        inside = int(region.RegionLocationMaxX1) < columns and int(region.RegionLocationMaxY1) < rows
        centimetres = int(region.PhysicalUnitsXDirection) == _CENTIMETRES == int(region.PhysicalUnitsYDirection)
        spacing = (10 * float(region.PhysicalDeltaY), 10 * float(region.PhysicalDeltaX))
    except (AttributeError, TypeError, ValueError):
        return None
    return spacing if inside and centimetres and min(spacing) > 0 else None


def read_bmode_dicom(path: str | os.PathLike, what: str | None = None) -> BModeCine:
    """The grey frames of an ultrasound DICOM image or cine (module docstring).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Not a DICOM file, no pixel data (the header checks of
        :func:`~.checks.dicom_image`), or a photometric interpretation other
        than monochrome, RGB or YBR.
    """
    import pydicom
    from pydicom.pixels import pixel_array

    header = dicom_image(path, what)
    name = f"{what} {header.path}" if what else str(header.path)
    with reading(header.path, what):
        dataset = pydicom.dcmread(header.path)
        interpretation = str(getattr(dataset, "PhotometricInterpretation", "MONOCHROME2")).upper()
        stored = pixel_array(dataset, raw=interpretation.startswith("YBR"))
    if interpretation.startswith("YBR"):
        grey = stored[..., 0].astype(np.float64)  # Y as stored
    elif interpretation == "RGB":
        grey = np.tensordot(stored.astype(np.float64), np.asarray(_LUMA), axes=([-1], [0]))
    elif interpretation in ("MONOCHROME1", "MONOCHROME2"):
        grey = stored.astype(np.float64)
    else:
        raise ValueError(f"{name}: photometric interpretation {interpretation!r} is not monochrome, RGB or YBR")
    full_scale = float(2 ** int(getattr(dataset, "BitsStored", 8)) - 1)
    grey = grey / full_scale
    if interpretation == "MONOCHROME1":  # 0 is white
        grey = 1.0 - grey
    frames = torch.from_numpy(np.ascontiguousarray(grey.reshape(-1, header.rows, header.columns)))
    frame_time = getattr(dataset, "FrameTime", None)
    return BModeCine(
        frames=frames,
        frame_time_ms=float(frame_time) if frame_time not in (None, "") else None,
        spacing_mm=_region_spacing(dataset, header.rows, header.columns),
        source=str(header.path),
    )


def write_ultrasound_hdf5(path: str | os.PathLike, arrays: Mapping[str, Any], attrs: Mapping[str, Any] | None = None) -> Path:
    """Write ``arrays`` (name → tensor or array) and ``attrs`` to one HDF5 file, atomically.

    The file's attributes are ``attrs`` plus ``software`` (the package and its
    version) and ``created_utc``; nothing is left at ``path`` if writing fails.

    Raises
    ------
    ValueError
        For no arrays, or an array name that is empty or holds ``/``.
    """
    import h5py

    from invsolve import __version__

    if not arrays:
        raise ValueError("write_ultrasound_hdf5 needs at least one array")
    for key in arrays:
        if not isinstance(key, str) or not key or "/" in key:
            raise ValueError(f"array names must be non-empty strings without '/', got {key!r}")
    provenance = {
        **(attrs or {}),
        "software": f"invsolve {__version__}",
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }

    def write(temporary: Path) -> None:
        with h5py.File(temporary, "w") as file:
            for key, value in arrays.items():
                data = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
                file.create_dataset(key, data=data)
            for key, value in provenance.items():
                file.attrs[key] = value

    return atomic_write(path, write)
