import math

import numpy as np
import pytest
import torch

from invsolve.metrics import fastmri_nmse, fastmri_psnr, fastmri_ssim, nmse, psnr, rmse, ssim


def volume_pair(shape=(3, 12, 14), noise=0.1, seed=0):
    generator = torch.Generator().manual_seed(seed)
    gt = torch.rand(shape, dtype=torch.float64, generator=generator)
    return gt, gt + noise * torch.randn(shape, dtype=torch.float64, generator=generator)


def ssim_by_definition(x, y, data_range, win=7, k1=0.01, k2=0.03):
    """Mean SSIM of two 2-D arrays, window by window (skimage's defaults, written out)."""
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    values = []
    for i in range(x.shape[0] - win + 1):
        for j in range(x.shape[1] - win + 1):
            a, b = x[i : i + win, j : j + win].ravel(), y[i : i + win, j : j + win].ravel()
            mu_a, mu_b = a.mean(), b.mean()
            var_a, var_b = a.var(ddof=1), b.var(ddof=1)  # sample (co)variances: NP / (NP − 1)
            cov = ((a - mu_a) * (b - mu_b)).sum() / (a.size - 1)
            values.append(((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return float(np.mean(values))


def test_nmse_equals_fastmris_over_the_whole_volume():
    gt, pred = volume_pair()
    expected = np.linalg.norm(gt.numpy() - pred.numpy()) ** 2 / np.linalg.norm(gt.numpy()) ** 2
    assert math.isclose(float(fastmri_nmse(gt, pred)), expected, rel_tol=1e-12)
    # per-item nmse of a batch of one volume is the same number
    assert math.isclose(float(nmse(pred[None], gt[None])[0]), expected, rel_tol=1e-12)
    complex_gt = torch.complex(gt, gt.flip(0))
    assert math.isclose(float(fastmri_nmse(complex_gt, complex_gt * 1.1)), 0.01, rel_tol=1e-12)


def test_fastmri_psnr_uses_the_volume_maximum():
    gt, pred = volume_pair()
    gt = gt + 0.5  # minimum ≠ 0: the two conventions differ
    pred = pred + 0.5
    mse = float(((gt - pred) ** 2).mean())
    expected = 10 * math.log10(float(gt.max()) ** 2 / mse)
    assert math.isclose(float(fastmri_psnr(gt, pred)), expected, rel_tol=1e-12)
    assert math.isclose(float(fastmri_psnr(gt, pred, maxval=2.0)), 10 * math.log10(4 / mse), rel_tol=1e-12)
    # the per-item psnr keeps its max − min default, and agrees once the range is given
    per_item = float(psnr(pred[None], gt[None])[0])
    assert math.isclose(per_item, 10 * math.log10(float(gt.max() - gt.min()) ** 2 / mse), rel_tol=1e-12)
    assert math.isclose(float(psnr(pred[None], gt[None], data_range=float(gt.max()))[0]), expected, rel_tol=1e-12)


@pytest.mark.parametrize("shape", [(7, 7), (9, 10), (12, 8)])
def test_ssim_matches_the_windowed_definition(shape):
    gt, pred = volume_pair((2, *shape), noise=0.2, seed=1)
    data_range = float(gt.max())
    expected = np.mean([ssim_by_definition(gt[i].numpy(), pred[i].numpy(), data_range) for i in range(2)])
    assert math.isclose(float(fastmri_ssim(gt, pred)), expected, rel_tol=1e-10)
    assert math.isclose(float(ssim(pred[None], gt[None], data_range=data_range)[0]), expected, rel_tol=1e-10)


def test_ssim_data_range_is_the_volume_maximum_not_per_slice():
    gt, pred = volume_pair((2, 10, 10), noise=0.2, seed=2)
    gt[1] *= 0.2
    pred[1] *= 0.2  # a dim slice: per-slice ranges would weigh it differently
    volume_max = float(gt.max())
    expected = np.mean([ssim_by_definition(gt[i].numpy(), pred[i].numpy(), volume_max) for i in range(2)])
    per_slice = np.mean([ssim_by_definition(gt[i].numpy(), pred[i].numpy(), float(gt[i].max())) for i in range(2)])
    assert math.isclose(float(fastmri_ssim(gt, pred)), expected, rel_tol=1e-10)
    assert not math.isclose(expected, per_slice, rel_tol=1e-3)


def test_ssim_properties_and_batching():
    gt, pred = volume_pair((2, 3, 10, 11), noise=0.1)
    assert torch.allclose(ssim(gt, gt), torch.ones(2, dtype=torch.float64))
    scores = ssim(pred, gt)
    assert scores.shape == (2,) and bool((scores < 1).all())
    # each item's score is the mean over its slices, with the item's max − min range
    for b in range(2):
        data_range = float(gt[b].max() - gt[b].min())
        assert math.isclose(float(scores[b]), float(fastmri_ssim(gt[b], pred[b], maxval=data_range)), rel_tol=1e-12)
    fixed = ssim(pred, gt, data_range=1.0)
    volume = ssim(pred.reshape(1, 2, 3, 10, 11), gt.reshape(1, 2, 3, 10, 11), data_range=1.0)
    assert math.isclose(float(volume[0]), float(fixed.mean()), rel_tol=1e-12)
    assert ssim(pred.float(), gt.float()).dtype == torch.float32
    # a single (H, W) slice is a volume of one slice
    assert math.isclose(float(fastmri_ssim(gt[0, 0], pred[0, 0])), float(fastmri_ssim(gt[0, :1], pred[0, :1])), rel_tol=1e-12)


def test_fastmri_ssim_equals_skimage_structural_similarity():
    metrics = pytest.importorskip("skimage.metrics")
    gt, pred = volume_pair((3, 20, 24), noise=0.15, seed=3)
    data_range = float(gt.max())
    expected = np.mean(
        [metrics.structural_similarity(gt[i].numpy(), pred[i].numpy(), data_range=data_range) for i in range(3)]
    )
    assert math.isclose(float(fastmri_ssim(gt, pred)), expected, rel_tol=1e-10)


def test_existing_per_item_metrics_are_unchanged():
    gt, pred = volume_pair((2, 1, 6, 6))
    flat_error = (pred - gt).reshape(2, -1)
    assert torch.allclose(rmse(pred, gt), flat_error.pow(2).mean(1).sqrt())
    peak = gt.reshape(2, -1).amax(1) - gt.reshape(2, -1).amin(1)
    assert torch.allclose(psnr(pred, gt), 20 * torch.log10(peak) - 10 * torch.log10(flat_error.pow(2).mean(1)))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: fastmri_ssim(torch.zeros(2, 8, 8), torch.zeros(2, 8, 9)), ValueError, r"gt and pred must have one shape, got \(2, 8, 8\) and \(2, 8, 9\)"),
        (lambda: fastmri_ssim(torch.zeros(2, 6, 8), torch.zeros(2, 6, 8)), ValueError, "at least win_size × win_size = 7 × 7, got 6 × 8"),
        (lambda: fastmri_ssim(torch.zeros(8), torch.zeros(8)), ValueError, r"gt must be shaped \(slices, H, W\) or \(H, W\), got \(8,\)"),
        (lambda: fastmri_ssim(torch.zeros(8, 8), torch.zeros(8, 8), win_size=6), ValueError, "win_size must be odd, got 6"),
        (lambda: fastmri_ssim(torch.zeros(8, 8, dtype=torch.complex64), torch.zeros(8, 8)), TypeError, "gt must be a floating-point tensor"),
        (lambda: fastmri_psnr(torch.ones(8, 8), torch.zeros(8, 8), maxval=0), ValueError, "maxval must be a finite number > 0, got 0"),
        (lambda: fastmri_nmse(torch.ones(3), torch.ones(4)), ValueError, "gt and pred must have one shape"),
        (lambda: ssim(torch.zeros(8, 8), torch.zeros(8, 8)), ValueError, r"image must be shaped \(B, C, H, W\) or \(B, C, D, H, W\), got \(8, 8\)"),
        (lambda: ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), data_range=-1), ValueError, "data_range must be a finite number > 0"),
    ],
)
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
