"""Where measurements and training images come from (installed as ``invsolve.datasets``).

This package imports neither operators nor priors.  Synthetic phantoms (Shepp–Logan,
random ellipses) and real sample images are here; readers for DICOM/NIfTI,
fastMRI HDF5, FITS and ultrasound HDF5 files arrive with the issues that need
them.
"""

from .phantoms import ellipsoid_phantom, random_ellipse_phantoms, shepp_logan, shepp_logan_ellipsoids
from .samples import ct_small_slice

__all__ = [
    "ct_small_slice",
    "shepp_logan",
    "shepp_logan_ellipsoids",
    "ellipsoid_phantom",
    "random_ellipse_phantoms",
]
