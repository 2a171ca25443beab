"""Where measurements and training images come from (installed as ``invsolve.datasets``).

This package imports neither operators nor priors.  Readers for DICOM/NIfTI,
fastMRI HDF5, FITS and ultrasound HDF5 files and synthetic phantoms arrive
with the issues that need them.
"""

from .samples import ct_small_slice

__all__ = ["ct_small_slice"]
