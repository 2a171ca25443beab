"""Readers and writers for the file formats of the applications (installed as ``invsolve.datasets.io``).

* :mod:`.fastmri` — fastMRI HDF5 k-space files, slice datasets and submission files.
* :mod:`.ultrasound` — PICMUS and zea channel data, B-mode DICOM frames and cines, and HDF5
  results with provenance.
* :mod:`.checks` — checked openers and build-time integrity checks of DICOM, NIfTI,
  HDF5, FITS and ``.npy`` files, shared by the training datasets and ``invsolve reconstruct``.

The names of :mod:`.fastmri` and :mod:`.ultrasound` are loaded on first use, so that importing
:mod:`.checks` (which imports its readers inside its functions) does not import h5py.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ISMRMRD_NAMESPACE",
    "FastMRIHeader",
    "FastMRIVolume",
    "FastMRISliceDataset",
    "collate_fastmri_slices",
    "read_fastmri_volume",
    "write_fastmri_volume",
    "write_fastmri_reconstruction",
    "UltrasoundAcquisition",
    "read_ultrasound_hdf5",
    "BModeCine",
    "read_bmode_dicom",
    "write_ultrasound_hdf5",
]
_ULTRASOUND = ("UltrasoundAcquisition", "read_ultrasound_hdf5", "BModeCine", "read_bmode_dicom", "write_ultrasound_hdf5")


def __getattr__(name: str) -> Any:
    if name in _ULTRASOUND:
        from . import ultrasound

        return getattr(ultrasound, name)
    if name in __all__:
        from . import fastmri

        return getattr(fastmri, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
