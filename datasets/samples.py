"""Real sample images that install offline with the package's dependencies.

* :func:`ct_small_slice` — pydicom's bundled ``CT_small.dcm``, a 128×128 CT
  slice (0.66 mm pixels), in Hounsfield units.
* :func:`t1_brain_slice` — dipy's ``t1_coronal_slice.npy``, a 256×256
  T1-weighted brain slice, with a smooth synthetic phase (needs ``dipy``, the
  ``examples`` extra).
"""

from __future__ import annotations

import numpy as np
import torch

from .io.checks import reading

__all__ = ["ct_small_slice", "CT_SMALL_PIXEL_MM", "t1_brain_slice", "synthetic_mr_phase"]

#: the pixel spacing of ``CT_small.dcm`` in mm (its PixelSpacing, the same along rows and columns)
CT_SMALL_PIXEL_MM = 0.661468


def ct_small_slice() -> torch.Tensor:
    """pydicom's ``CT_small.dcm`` as a ``(1, 128, 128)`` float32 tensor in HU.

    Rows run top to bottom and columns left to right as stored in the DICOM
    file (``pixel_array[row, column]``); the rescale slope and intercept are
    applied (``HU = slope · stored + intercept``).
    """
    import pydicom
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm")
    if path is None:
        raise FileNotFoundError("pydicom's test file CT_small.dcm is not installed with this pydicom; reinstall pydicom")
    with reading(path):
        dataset = pydicom.dcmread(path)
        stored = dataset.pixel_array.astype(np.float32)
    hounsfield = float(dataset.RescaleSlope) * stored + float(dataset.RescaleIntercept)
    return torch.from_numpy(hounsfield)[None]


def t1_brain_slice(size: int | None = None) -> torch.Tensor:
    """dipy's T1 coronal brain slice with a smooth phase, complex128 ``(1, 1, H, W)``.

    The magnitude is ``t1_coronal_slice.npy`` (256×256, intensities up to
    ~130 a.u.).  MR images are complex and their phase varies slowly (B0
    inhomogeneity, receive phase); the slice has none, so a fixed smooth one
    is added (:func:`synthetic_mr_phase`), which magnitude-only reconstructions
    must handle.

    Parameters
    ----------
    size : int, optional
        Area-average the magnitude and the phase separately to ``size × size``
        (e.g. 64 for the embedded ``mri-brain`` prior); default the full 256².

    Raises
    ------
    ImportError
        Without dipy (``pip install "invsolve[examples]"``).
    """
    try:
        from dipy.data import get_fnames
    except ImportError:
        raise ImportError('t1_brain_slice needs dipy: pip install "invsolve[examples]" (or pip install dipy)') from None
    path = get_fnames(name="t1_coronal_slice")
    with reading(path):
        magnitude = torch.from_numpy(np.load(path, allow_pickle=False)).to(torch.float64)[None, None]
    phase = synthetic_mr_phase(magnitude.shape[-1])[None, None]
    if size is not None:
        if not (isinstance(size, int) and 1 <= size <= magnitude.shape[-1]):
            raise ValueError(f"size must be an int in [1, {magnitude.shape[-1]}], got {size!r}")
        magnitude = torch.nn.functional.adaptive_avg_pool2d(magnitude, size)
        phase = torch.nn.functional.adaptive_avg_pool2d(phase, size)
    return magnitude * torch.exp(1j * phase)


def synthetic_mr_phase(size: int) -> torch.Tensor:
    """A smooth MR image phase, ``0.6x − 0.4y + 0.5xy`` radians on ``[-1, 1]²``, float64 ``(size, size)``.

    Rows run along ``y``, columns along ``x``; the phase stays within ±1.5 rad.
    Multiply a magnitude image by ``exp(1j * phase)`` to simulate the slowly
    varying phase of real MR images.
    """
    if not (isinstance(size, int) and size >= 1):
        raise ValueError(f"size must be a positive int, got {size!r}")
    axis = torch.linspace(-1, 1, size, dtype=torch.float64)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return 0.6 * xx - 0.4 * yy + 0.5 * xx * yy
