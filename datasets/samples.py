"""Real sample images that install offline with the package's dependencies.

* :func:`ct_small_slice` — pydicom's bundled ``CT_small.dcm``, a 128×128 CT
  slice (0.66 mm pixels), in Hounsfield units.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["ct_small_slice", "CT_SMALL_PIXEL_MM"]

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
        raise FileNotFoundError("pydicom's test file CT_small.dcm is not installed with this pydicom")
    dataset = pydicom.dcmread(path)
    stored = dataset.pixel_array.astype(np.float32)
    hounsfield = float(dataset.RescaleSlope) * stored + float(dataset.RescaleIntercept)
    return torch.from_numpy(hounsfield)[None]
