"""Ultrasound files: channel data and B-mode frames in, dehazing results out (HDF5 with provenance).

* :func:`read_ultrasound_hdf5` — channel data and acquisition parameters from
  the two HDF5 layouts of the field: PICMUS (Liebgott et al., "Plane-Wave
  Imaging Challenge in Medical Ultrasound", IEEE IUS 2016; group
  ``/US/US_DATASET0000`` with ``data/real``, ``data/imag`` shaped ``(tx, el,
  ax)``, ``angles``, ``probe_geometry`` ``(3, el)``, ``sampling_frequency``,
  ``sound_speed``, ``modulation_frequency``, ``initial_time``) and zea's
  (``data/raw_data`` ``(frames, tx, ax, el, ch)`` and/or ``data/image``,
  ``scan/*`` with ``probe_geometry`` ``(el, 3)``, ``sampling_frequency``,
  ``center_frequency``, …), told apart by their groups.
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

from .checks import check_hdf5_dataset, dicom_image, open_hdf5, reading

__all__ = ["UltrasoundAcquisition", "read_ultrasound_hdf5", "BModeCine", "read_bmode_dicom", "write_ultrasound_hdf5"]

#: ITU-R BT.601 luma weights of R, G, B
_LUMA = (0.299, 0.587, 0.114)
#: DICOM's code of centimetres for an ultrasound region's physical units (PS3.3 C.8.5.5.1.15)
_CENTIMETRES = 3


#: the PICMUS group of one acquisition
_PICMUS_GROUP = "US/US_DATASET0000"
#: speed of sound assumed where a zea file states none, m/s
_SOFT_TISSUE = 1540.0


@dataclass(frozen=True)
class UltrasoundAcquisition:
    """Channel data (and/or beamformed images) with what is needed to beamform them, SI units.

    Attributes
    ----------
    channel_data : torch.Tensor or None
        ``(frames, transmits, axial samples, elements)``: real RF, or complex
        I/Q where the file holds a quadrature part.
    image : torch.Tensor or None
        zea's ``data/image`` ``(frames, …)`` as stored (``None`` for PICMUS).
    sampling_frequency, center_frequency, sound_speed : float
        Hz, Hz, m/s (PICMUS's ``modulation_frequency`` is its centre frequency).
    angles : torch.Tensor
        Transmit (polar) angles ``(transmits,)``, radians.
    probe_geometry : torch.Tensor
        Element positions ``(elements, 3)``, m.
    initial_times : torch.Tensor
        Time of the first sample of each transmit ``(transmits,)``, s.
    layout : str
        ``"picmus"`` or ``"zea"``.
    source : str
        The file.
    """

    channel_data: torch.Tensor | None
    image: torch.Tensor | None
    sampling_frequency: float
    center_frequency: float
    sound_speed: float
    angles: torch.Tensor
    probe_geometry: torch.Tensor
    initial_times: torch.Tensor
    layout: str
    source: str


def _dataset(group: Any, key: str, source: str, required: bool = True) -> np.ndarray | None:
    """``group[key]`` as an array, checked; a clear error (or ``None``) when it is missing."""
    if key not in group:
        if required:
            held = ", ".join(sorted(group.keys())) or "nothing"
            raise ValueError(f"{source} lacks the dataset {group.name.rstrip('/')}/{key} (the group holds: {held})")
        return None
    item = group[key]
    check_hdf5_dataset(item, f"{source}:{item.name}")
    return np.asarray(item[()])


def _scalar(value: np.ndarray, name: str, source: str) -> float:
    flat = np.asarray(value, dtype=np.float64).reshape(-1)
    if flat.size != 1 or not np.isfinite(flat[0]):
        raise ValueError(f"{source}: {name} must be one finite number, got {value!r}")
    return float(flat[0])


def _tensor(array: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.from_numpy(np.array(array, copy=True)).to(dtype)  # a copy: read-only views (broadcasts) stay untouched


def read_ultrasound_hdf5(path: str | os.PathLike, what: str | None = None) -> UltrasoundAcquisition:
    """Channel data and acquisition parameters from a PICMUS or zea HDF5 file (module docstring).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        Not an HDF5 file; neither layout; a required dataset missing (the
        message names it and what the group holds); shapes that disagree
        (data against angles or elements); a multi-track zea file.
    """
    opened = open_hdf5(path, what)
    with opened as file:
        source = f"{what} {file.filename}" if what else str(file.filename)
        if _PICMUS_GROUP in file:
            return _read_picmus(file[_PICMUS_GROUP], source)
        if "tracks" in file:
            raise ValueError(f"{source} is a multi-track zea file; read one track's data/ and scan/ (not supported yet)")
        if "data" in file and "scan" in file:
            return _read_zea(file, source)
        raise ValueError(
            f"{source} is neither a PICMUS file (group /{_PICMUS_GROUP}) nor a zea file (groups /data and /scan); "
            f"it holds: {', '.join(sorted(file.keys())) or 'nothing'}"
        )


def _read_picmus(group: Any, source: str) -> UltrasoundAcquisition:
    real = _dataset(group, "data/real", source)
    imag = _dataset(group, "data/imag", source, required=False)
    angles = np.asarray(_dataset(group, "angles", source), dtype=np.float64).reshape(-1)
    geometry = np.asarray(_dataset(group, "probe_geometry", source), dtype=np.float64)
    if real.ndim != 3 or real.shape[0] != angles.size:
        raise ValueError(f"{source}: data/real must be (transmits, elements, samples) with {angles.size} transmits, got {real.shape}")
    if geometry.shape != (3, real.shape[1]):
        raise ValueError(f"{source}: probe_geometry must be (3, {real.shape[1]}) for {real.shape[1]} elements, got {geometry.shape}")
    data = real.astype(np.float64)
    if imag is not None and np.any(imag):
        data = data + 1j * imag.astype(np.float64)
    channel = torch.from_numpy(np.ascontiguousarray(np.swapaxes(data, 1, 2)[None]))  # (1, tx, ax, el)
    initial = _dataset(group, "initial_time", source, required=False)
    return UltrasoundAcquisition(
        channel_data=channel,
        image=None,
        sampling_frequency=_scalar(_dataset(group, "sampling_frequency", source), "sampling_frequency", source),
        center_frequency=_scalar(_dataset(group, "modulation_frequency", source), "modulation_frequency", source),
        sound_speed=_scalar(_dataset(group, "sound_speed", source), "sound_speed", source),
        angles=_tensor(angles),
        probe_geometry=_tensor(geometry.T),
        initial_times=_tensor(np.broadcast_to(np.asarray(0.0 if initial is None else initial, dtype=np.float64).reshape(-1), angles.shape)),
        layout="picmus",
        source=source,
    )


def _read_zea(file: Any, source: str) -> UltrasoundAcquisition:
    data, scan = file["data"], file["scan"]
    raw = _dataset(data, "raw_data", source, required=False)
    image = _dataset(data, "image", source, required=False)
    if raw is None and image is None:
        raise ValueError(f"{source} lacks data/raw_data and data/image: a zea file needs one of them")
    geometry = np.asarray(_dataset(scan, "probe_geometry", source), dtype=np.float64)
    channel = None
    if raw is not None:
        if raw.ndim != 5 or raw.shape[-1] not in (1, 2):
            raise ValueError(f"{source}: data/raw_data must be (frames, transmits, samples, elements, 1 or 2), got {raw.shape}")
        if geometry.shape != (raw.shape[3], 3):
            raise ValueError(f"{source}: scan/probe_geometry must be ({raw.shape[3]}, 3), got {geometry.shape}")
        values = raw.astype(np.float64)
        channel = torch.from_numpy(np.ascontiguousarray(values[..., 0] + 1j * values[..., 1] if raw.shape[-1] == 2 else values[..., 0]))
    transmits = raw.shape[1] if raw is not None else 1
    angles = _dataset(scan, "polar_angles", source, required=False)
    initial = _dataset(scan, "initial_times", source, required=False)
    speed = _dataset(scan, "sound_speed", source, required=False)
    return UltrasoundAcquisition(
        channel_data=channel,
        image=None if image is None else _tensor(image),
        sampling_frequency=_scalar(_dataset(scan, "sampling_frequency", source), "scan/sampling_frequency", source),
        center_frequency=_scalar(_dataset(scan, "center_frequency", source), "scan/center_frequency", source),
        sound_speed=_SOFT_TISSUE if speed is None else _scalar(speed, "scan/sound_speed", source),
        angles=_tensor(np.zeros(transmits) if angles is None else np.asarray(angles, dtype=np.float64).reshape(-1)),
        probe_geometry=_tensor(geometry),
        initial_times=_tensor(np.zeros(transmits) if initial is None else np.asarray(initial, dtype=np.float64).reshape(-1)),
        layout="zea",
        source=source,
    )


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
