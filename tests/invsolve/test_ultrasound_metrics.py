"""Ultrasound contrast and speckle metrics in invsolve.metrics (issue 13, point 2)."""

from __future__ import annotations

import math

import pytest
import torch

from invsolve.metrics import cnr, contrast_ratio, gcnr, ks_statistic, speckle_fwhm


def _halves(height: int = 16, width: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    inside = torch.zeros(height, width, dtype=torch.bool)
    inside[:, : width // 2] = True
    return inside, ~inside


def test_gcnr_is_one_minus_the_histogram_overlap():
    inside, outside = _halves()
    generator = torch.Generator().manual_seed(0)
    image = torch.empty(3, 1, 16, 16, dtype=torch.float64)
    image[0] = torch.rand(1, 16, 16, generator=generator)                       # one distribution: ~0
    large_inside, large_outside = _halves(64, 64)
    same = torch.rand(1, 1, 64, 64, generator=generator, dtype=torch.float64)
    assert float(gcnr(same, large_inside, large_outside, bins=16)[0]) < 0.1  # 2048 values each: small histogram noise
    image[1, :, inside] = 2 + torch.rand(128, generator=generator, dtype=torch.float64)  # disjoint: 1
    image[1, :, outside] = torch.rand(128, generator=generator, dtype=torch.float64)
    image[2, :, inside] = torch.linspace(0, 1, 128, dtype=torch.float64)        # uniform on [0, 1] against
    image[2, :, outside] = torch.linspace(0.5, 1.5, 128, dtype=torch.float64)   # [0.5, 1.5]: overlap 1/2
    scores = gcnr(image, inside, outside, bins=64)
    assert float(scores[0]) < 0.5  # 128 values on 64 bins: the histograms' noise alone leaves ~0.3
    assert float(scores[1]) == 1.0
    assert float(scores[2]) == pytest.approx(0.5, abs=0.03)
    # invariant to an increasing map of the values (envelope or dB)
    assert torch.allclose(gcnr(torch.log(image[2:] + 1), inside, outside, bins=64), scores[2:], atol=0.05)


def test_contrast_ratio_and_cnr_of_known_regions():
    inside, outside = _halves()
    image = torch.ones(2, 1, 16, 16, dtype=torch.float64)
    image[:, :, inside] = 2.0
    assert torch.allclose(contrast_ratio(image, inside, outside), torch.full((2,), 20 * math.log10(2), dtype=torch.float64))
    noisy = image.clone()
    noisy[:, :, 0::2, :] += 0.5  # each region: values x and x + 0.5 in equal numbers
    variance = 0.25**2 * 128 / 127  # of {x, x + 0.5}, half and half, unbiased
    expected = 1.0 / math.sqrt(2 * variance)
    assert torch.allclose(cnr(noisy, inside, outside), torch.full((2,), expected, dtype=torch.float64))
    with pytest.raises(ValueError, match="cnr is undefined where both regions are constant"):
        cnr(image, inside, outside)
    with pytest.raises(ValueError, match="give the envelope \\(linear amplitude\\), not dB"):
        contrast_ratio(-image, inside, outside)


def test_ks_statistic_is_scipy_s_two_sample_test():
    from scipy.stats import ks_2samp

    inside, _ = _halves()
    generator = torch.Generator().manual_seed(1)
    image = torch.randn(2, 1, 16, 16, dtype=torch.float64, generator=generator)
    reference = torch.randn(2, 1, 16, 16, dtype=torch.float64, generator=generator) * 2
    statistic, pvalue = ks_statistic(image, inside, reference)
    for item in range(2):
        expected = ks_2samp(image[item, 0][inside].numpy(), reference[item, 0][inside].numpy())
        assert float(statistic[item]) == pytest.approx(expected.statistic)
        assert float(pvalue[item]) == pytest.approx(expected.pvalue)
    same, _ = ks_statistic(image, inside, image)
    assert torch.equal(same, torch.zeros(2, dtype=torch.float64))
    shared, _ = ks_statistic(image, inside, image[0, 0][inside])  # a 1-D sample for every item
    assert float(shared[0]) == 0.0 and float(shared[1]) > 0
    with pytest.raises(ValueError, match="reference must be shaped like image"):
        ks_statistic(image, inside, reference[0])


@pytest.mark.parametrize("sigma", [(1.5, 1.0), (3.0, 2.0)])
def test_speckle_fwhm_measures_the_correlation_length(sigma):
    """White noise blurred by a Gaussian of std s has a Gaussian autocovariance of std s√2: FWHM 2√(2 ln 2)·s√2."""
    generator = torch.Generator().manual_seed(2)
    noise = torch.randn(2, 1, 256, 256, dtype=torch.float64, generator=generator)
    fy = torch.fft.fftfreq(256, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(256, dtype=torch.float64)[None, :]
    response = torch.exp(-2 * math.pi**2 * ((fy * sigma[0]) ** 2 + (fx * sigma[1]) ** 2))
    field = torch.fft.irfft2(torch.fft.rfft2(noise) * response, s=(256, 256))
    expected = torch.tensor(sigma, dtype=torch.float64) * math.sqrt(2) * 2 * math.sqrt(2 * math.log(2))
    measured = speckle_fwhm(field)
    assert measured.shape == (2, 2)
    assert torch.allclose(measured, expected.expand(2, 2), rtol=0.1)
    region = torch.zeros(256, 256, dtype=torch.bool)
    region[64:192, 32:224] = True
    assert torch.allclose(speckle_fwhm(field, region), expected.expand(2, 2), rtol=0.15)


def test_bad_regions_are_refused():
    inside, outside = _halves()
    image = torch.rand(1, 1, 16, 16)
    with pytest.raises(TypeError, match="inside must be a boolean mask"):
        gcnr(image, inside.float(), outside)
    with pytest.raises(ValueError, match=r"outside must be shaped like the image's last two axes \(16, 16\)"):
        gcnr(image, inside, outside[:8])
    with pytest.raises(ValueError, match="inside must select at least 2 pixels"):
        cnr(image, torch.zeros(16, 16, dtype=torch.bool), outside)
    with pytest.raises(ValueError, match=r"image must be batched \(B, ..., H, W\)"):
        gcnr(image[0, 0], inside, outside)
    with pytest.raises(ValueError, match="needs an envelope that varies"):
        speckle_fwhm(torch.ones(1, 1, 16, 16))
