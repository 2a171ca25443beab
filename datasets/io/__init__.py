"""Readers and writers for the file formats of the applications (installed as ``invsolve.datasets.io``).

* :mod:`.fastmri` — fastMRI HDF5 k-space files, slice datasets and submission files.
"""

from .fastmri import (
    ISMRMRD_NAMESPACE,
    FastMRIHeader,
    FastMRISliceDataset,
    FastMRIVolume,
    collate_fastmri_slices,
    read_fastmri_volume,
    write_fastmri_reconstruction,
    write_fastmri_volume,
)

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
