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


def test_t1_brain_slice_is_dipys_slice_with_a_smooth_phase():
    import numpy as np
    import pytest

    dipy_data = pytest.importorskip("dipy.data")
    from invsolve.datasets import t1_brain_slice

    stored = torch.from_numpy(np.load(dipy_data.get_fnames(name="t1_coronal_slice"))).double()
    image = t1_brain_slice()
    assert image.shape == (1, 1, 256, 256) and image.dtype == torch.complex128
    torch.testing.assert_close(image.abs()[0, 0], stored)
    angle = torch.angle(image[0, 0])[stored > 0]
    assert float(angle.abs().max()) < 1.5 + 1e-9  # |0.6x − 0.4y + 0.5xy| ≤ 1.5 on [-1, 1]²
    small = t1_brain_slice(64)
    assert small.shape == (1, 1, 64, 64)
    # area averaging keeps the mean magnitude
    assert float(small.abs().mean()) == pytest.approx(float(stored.mean()), rel=1e-12)
    with pytest.raises(ValueError, match="size"):
        t1_brain_slice(0)


def test_synthetic_mr_phase_is_the_stated_polynomial():
    import pytest

    from invsolve.datasets import synthetic_mr_phase

    phase = synthetic_mr_phase(3)  # x, y in {-1, 0, 1}; rows along y, columns along x
    assert phase.shape == (3, 3) and phase.dtype == torch.float64
    assert float(phase[0, 0]) == pytest.approx(-0.6 + 0.4 + 0.5)
    assert float(phase[0, 2]) == pytest.approx(0.6 + 0.4 - 0.5)
    assert float(phase[2, 0]) == pytest.approx(-0.6 - 0.4 - 0.5)
    assert float(phase[1, 1]) == 0.0
    with pytest.raises(ValueError, match="size must be a positive int"):
        synthetic_mr_phase(0)
