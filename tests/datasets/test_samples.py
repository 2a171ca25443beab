import pydicom
import torch
from pydicom.data import get_testdata_file

from invsolve.datasets import CT_SMALL_PIXEL_MM, ct_small_slice


def test_ct_small_slice_is_in_hounsfield_units_with_the_files_spacing():
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert [float(v) for v in dataset.PixelSpacing] == [CT_SMALL_PIXEL_MM, CT_SMALL_PIXEL_MM]
    image = ct_small_slice()
    assert image.shape == (1, 128, 128) and image.dtype == torch.float32
    stored = torch.from_numpy(dataset.pixel_array.astype("float32"))
    assert torch.equal(image[0], float(dataset.RescaleSlope) * stored + float(dataset.RescaleIntercept))
    assert -1000 <= image.min() and image.max() < 2000  # tissue and bone, in HU
