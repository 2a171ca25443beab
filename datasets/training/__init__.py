"""Training images for diffusion priors: torch ``Dataset`` sources and a config factory.

Every dataset here yields float32 tensors shaped ``(C, H, W)`` (2D items) or
``(C, D, H, W)`` (3D items: phantoms of a 3D ``size``, HDF5 layouts ``NDHW`` and
``NCDHW``, whole volumes with ``axis = "none"``), all of one shape, so the default
``DataLoader`` collate stacks them into ``(B, C, *spatial)``.  Build one from the
``[data]`` section of a training config with :func:`training_dataset`::

    [data]
    source = "image-folder"
    path = "photos"
    size = [64, 64]
    resize = "area"
    flip = true

Sources
-------
``"image-folder"`` (:class:`ImageFolderDataset`)
    PNG, JPEG, TIFF (MONAI ``LoadImage`` with ``PILReader``) and ``.npy`` files
    (numpy) in a folder, searched recursively, in sorted order.
``"volumes"`` (:class:`VolumeSliceDataset`)
    NIfTI files (``NibabelReader``) and DICOM series (``PydicomReader``) cut
    into 2D slices along one axis, with an optional slice range, empty-slice
    skipping and an intensity window.
``"fastmri"`` (:class:`FastMRITargetDataset`)
    The magnitude targets (``reconstruction_rss``/``reconstruction_esc``) of
    fastMRI HDF5 files, read through :class:`~invsolve.datasets.io.fastmri.FastMRISliceDataset`.
``"fits"`` (:class:`FITSCutoutDataset`)
    Images or cutouts (fixed or random) of FITS image HDUs, read with ``astropy.io.fits``.
``"hdf5"`` (:class:`HDF5ArrayDataset`)
    Images stacked along the first axis of one HDF5 dataset.
``"phantoms"`` (:class:`PhantomDataset`)
    Random-ellipse phantoms generated on the fly, item ``i`` from seed ``seed + i``.
``"ct-synthetic"`` (:class:`SyntheticCTDataset`)
    Synthetic CT body cross-sections (:func:`~invsolve.datasets.synthetic_ct_slices`)
    generated on the fly, item ``i`` the slice of index ``i`` of seed ``seed``,
    in the attenuation units of the ``"phantoms"`` CT recipe (1 a.u. = 2·μ_water).
``"ultrasound-rf"`` (:class:`UltrasoundRFDataset`)
    Random patches of simulated beamformed RF (tissue or haze,
    :func:`~invsolve.operators.ultrasound.random_hazy_scene`), μ-law
    companded, for the dehazing priors.
``"ultrasound-bmode"`` (:class:`UltrasoundBModeDataset`)
    The same scenes as B-mode grey levels (tissue, or what the haze adds to
    them), for the dehazing priors of displayed images.
``"galaxy-world"`` (:class:`GalaxyWorldDataset`)
    Rendered galaxies of the synthetic galaxy world
    (:mod:`invsolve.datasets.galaxy_world`), conditional: each item is
    ``{"image", "condition"}`` with the galaxy's 37 Galaxy Zoo 2 vote fractions.
``"galaxy-catalog"`` (:class:`GalaxyCatalogDataset`)
    The images of a galaxy catalogue (GZ2 with its image mapping, the Kaggle
    challenge, Galaxy10 DECaLS, FITS cutouts; :mod:`invsolve.datasets.galaxy_zoo`),
    conditional: the 37 vote fractions, or chosen catalogue columns / FITS
    header keywords.

Conditional sources
-------------------
A source whose :attr:`TrainingDataset.condition_size` is not ``None`` yields
``{"image": (C, H, W), "condition": (K,)}`` dicts (the default ``DataLoader``
collate stacks them into a dict of batches); :meth:`TrainingDataset.image`
gives the image alone.  Flips and rotations change the image, never the
condition.  A ``[prior.conditioning]`` table in a training config trains a
conditional prior on them (:mod:`invsolve.priors.trainer`).

Common options
--------------
``size``, ``resize``
    Item size ``[H, W]`` (or ``[D, H, W]``) and how source images of another
    size reach it: ``"area"`` (mean over pixel blocks, for shrinking),
    ``"bilinear"`` (2D, antialiased when shrinking), ``"trilinear"`` (3D) or
    ``"center-crop"`` (the central window; sources must be at least that
    large).  Without ``size`` all source images must share one size.
``channels``
    Expected channel count; a source whose images have another count is an error.
``flip``, ``rot90``, ``seed``
    Random flips of every spatial axis and rotations by multiples of 90° in
    the ``(H, W)`` plane (which needs ``H == W``); :func:`augment_image`
    applies them to any image.
``value_range``
    ``[low, high]`` declared instead of measured (see below).
``cache``
    Read every item once at construction and keep them in memory (as one
    tensor, shared copy-on-write with ``DataLoader`` worker processes).
``zoom`` (sources whose items are files)
    ``[low, high]`` with ``0 < low <= high <= 1``: shrink each item by a random
    factor in that range and place it at a random position on a canvas filled
    with ``value_range``'s low end — the object at the scales and positions of
    scans with larger fields of view than the training files (e.g.
    ``[0.45, 1.0]`` for one template brain that fills its slices, while
    patients' scans show the head at many sizes).

Reproducibility contract
------------------------
Item ``i`` of epoch ``e`` is a pure function of ``(i, e, seed)`` and the source
files.  Its random numbers (flips, rotations, zoom, random crops) come from a
generator seeded with ``numpy.random.SeedSequence((seed, e, i, stream))``,
never from global random state, so a trainer that resumes from a checkpoint
gets the same tensors bit for bit, in any ``DataLoader`` worker and in any
order.  ``dataset[i]`` uses the epoch last given to :meth:`TrainingDataset.set_epoch`;
``dataset[(i, e)]`` names the epoch explicitly.  Worker processes hold copies
of the dataset, so a ``set_epoch`` call reaches them only if they are started
after it (the default, ``persistent_workers=False``); :class:`EpochSampler`
yields ``(i, e)`` pairs and works in both cases, and its shuffled order is
itself a pure function of ``(seed, e)``.

Intensities
-----------
Images are returned in their stored units (8-bit grey levels, Hounsfield
units after the DICOM rescale, FITS values after ``BSCALE``/``BZERO``,
fastMRI magnitudes); nothing is normalised here, the prior's normalisation
does that.  Every dataset has a ``value_range``: the window or the range a
source declares, or else the minimum and maximum of the source pixels, measured
once on first use.  Resizing (convex weights) and cropping keep every item
within it.  :meth:`TrainingDataset.describe` gives a JSON-serialisable record
of the dataset for checkpoints.

Heavy readers (MONAI, nibabel, pydicom, h5py, astropy, PIL) are imported
inside the functions that use them, so importing this package stays light.
This package imports neither operators nor priors.

Modules
-------
:mod:`.base`
    :class:`TrainingDataset` (per-item seeding, resizing, augmentation),
    :class:`EpochSampler` and the checks and file helpers the sources share.
:mod:`.images`
    ``"image-folder"`` and ``"volumes"``: image files and DICOM/NIfTI volumes, read with MONAI.
:mod:`.arrays`
    ``"fastmri"``, ``"fits"`` and ``"hdf5"``: arrays in HDF5 and FITS files.
:mod:`.generated`
    ``"phantoms"`` and ``"ct-synthetic"``: images generated on the fly.
:mod:`.ultrasound`
    ``"ultrasound-rf"`` and ``"ultrasound-bmode"``: simulated ultrasound scenes.
:mod:`.galaxies`
    ``"galaxy-world"`` and ``"galaxy-catalog"``: rendered and catalogued galaxies
    with their conditions.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .arrays import FastMRITargetDataset, FITSCutoutDataset, HDF5ArrayDataset
from .base import EpochSampler, TrainingDataset, augment_image
from .galaxies import GalaxyCatalogDataset, GalaxyWorldDataset
from .generated import PhantomDataset, SyntheticCTDataset
from .images import ImageFolderDataset, VolumeSliceDataset
from .ultrasound import UltrasoundBModeDataset, UltrasoundRFDataset

__all__ = [
    "TRAINING_SOURCES",
    "TrainingDataset",
    "ImageFolderDataset",
    "VolumeSliceDataset",
    "FastMRITargetDataset",
    "FITSCutoutDataset",
    "HDF5ArrayDataset",
    "PhantomDataset",
    "SyntheticCTDataset",
    "UltrasoundRFDataset",
    "UltrasoundBModeDataset",
    "GalaxyWorldDataset",
    "GalaxyCatalogDataset",
    "EpochSampler",
    "augment_image",
    "training_dataset",
]

_SOURCES: dict[str, type[TrainingDataset]] = {
    cls.source: cls
    for cls in (
        ImageFolderDataset,
        VolumeSliceDataset,
        FastMRITargetDataset,
        FITSCutoutDataset,
        HDF5ArrayDataset,
        PhantomDataset,
        SyntheticCTDataset,
        UltrasoundRFDataset,
        UltrasoundBModeDataset,
        GalaxyWorldDataset,
        GalaxyCatalogDataset,
    )
}
TRAINING_SOURCES: tuple[str, ...] = tuple(_SOURCES)


def training_dataset(config: Mapping[str, Any], *, root: str | os.PathLike | None = None) -> TrainingDataset:
    """Build a training dataset from a config section (the ``[data]`` table of a training TOML file).

    Parameters
    ----------
    config : mapping
        ``source`` (one of :data:`TRAINING_SOURCES`) and the keyword arguments
        of that source's class, by the same names: ``path``, ``size``,
        ``resize``, ``flip``, ... (package docstring).  Pairs are lists, as TOML gives them.
    root : str or os.PathLike, optional
        Folder that a relative ``path`` is relative to, e.g. the config file's
        folder; by default the working directory.

    Returns
    -------
    TrainingDataset
        Items float32 ``(C, H, W)`` or ``(C, D, H, W)``.

    Raises
    ------
    ValueError
        No or an unknown ``source``, a key the source does not take (the
        message lists the allowed keys), a missing required key, values out of
        range, images that do not fit the size options (the message explains
        ``size`` and ``resize``).
    TypeError
        ``config`` not a mapping, a value of the wrong type.
    FileNotFoundError
        ``path`` does not exist (the message names it).

    Examples
    --------
    >>> data = training_dataset({"source": "phantoms", "length": 100, "size": [32, 32], "flip": True})
    >>> data[0].shape, data.describe()["num_items"]
    (torch.Size([1, 32, 32]), 100)
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a mapping (a TOML table), got {type(config).__name__}")
    source = config.get("source")
    if source not in _SOURCES:
        what = "has no 'source' key" if "source" not in config else f"has source = {source!r}"
        raise ValueError(f"config {what}; expected source = one of {', '.join(map(repr, TRAINING_SOURCES))}")
    cls = _SOURCES[source]
    parameters = inspect.signature(cls).parameters
    allowed = sorted(parameters)
    for key in config:
        if key != "source" and key not in parameters:
            raise ValueError(f"unknown key {key!r} for source {source!r}; allowed keys: source, {', '.join(allowed)}")
    missing = [name for name, parameter in parameters.items() if parameter.default is inspect.Parameter.empty
               and name not in config]
    if missing:
        raise ValueError(f"source {source!r} needs the key(s) {', '.join(map(repr, missing))}; allowed keys: "
                         f"source, {', '.join(allowed)}")
    arguments = {key: value for key, value in config.items() if key != "source"}
    if "path" in arguments and root is not None and isinstance(arguments["path"], (str, os.PathLike)):
        arguments["path"] = Path(root) / arguments["path"]
    return cls(**arguments)
