"""Where measurements and training images come from (installed as ``invsolve.datasets``).

This package imports neither operators nor priors.  Synthetic phantoms (Shepp–Logan,
random ellipses), real sample images, training datasets for priors (image
folders, DICOM/NIfTI volumes, fastMRI targets, FITS cutouts, HDF5 arrays,
phantoms) and, in :mod:`.io`, fastMRI HDF5 reading and writing.
"""

from .ct_synthetic import synthetic_ct_slices
from .phantoms import ellipsoid_phantom, random_ellipse_phantoms, shepp_logan, shepp_logan_ellipsoids
from .samples import CT_SMALL_PIXEL_MM, ct_small_slice, synthetic_mr_phase, t1_brain_slice
from .training import (
    TRAINING_SOURCES,
    EpochSampler,
    FastMRITargetDataset,
    FITSCutoutDataset,
    HDF5ArrayDataset,
    ImageFolderDataset,
    PhantomDataset,
    SyntheticCTDataset,
    TrainingDataset,
    VolumeSliceDataset,
    training_dataset,
)

__all__ = [
    "ct_small_slice",
    "CT_SMALL_PIXEL_MM",
    "t1_brain_slice",
    "synthetic_mr_phase",
    "shepp_logan",
    "shepp_logan_ellipsoids",
    "ellipsoid_phantom",
    "random_ellipse_phantoms",
    "synthetic_ct_slices",
    "TRAINING_SOURCES",
    "TrainingDataset",
    "ImageFolderDataset",
    "VolumeSliceDataset",
    "FastMRITargetDataset",
    "FITSCutoutDataset",
    "HDF5ArrayDataset",
    "PhantomDataset",
    "SyntheticCTDataset",
    "EpochSampler",
    "training_dataset",
]
