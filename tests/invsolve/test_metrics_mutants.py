"""Behaviour of invsolve/metrics.py that the metric tests left open (surviving mutants,
benchmarks/mutation.py): complex and mixed inputs, float64 accumulation of float32 images,
per-item normalisation, boundaries of the window and of the constant-reference checks,
and the exact wording of the refusals (each names its argument)."""

import math

import numpy as np
import pytest
import torch

from invsolve.metrics import fastmri_nmse, fastmri_psnr, fastmri_ssim, nmse, psnr, rmse, ssim


def _pair(shape=(2, 1, 9, 9), dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    reference = torch.rand(shape, dtype=torch.float64, generator=generator)
    image = reference + 0.1 * torch.randn(shape, dtype=torch.float64, generator=generator)
    return image.to(dtype), reference.to(dtype)


def test_complex_images_count_both_parts_and_give_real_scores():
    reference = torch.complex(torch.rand(2, 1, 4, 4, dtype=torch.float64), torch.rand(2, 1, 4, 4, dtype=torch.float64))
    image = reference + 0.1j  # an error in the imaginary part only
    torch.testing.assert_close(rmse(image, reference), torch.full((2,), 0.1, dtype=torch.float64))
    expected = 16 * 0.01 / (reference.abs() ** 2).sum(dim=(1, 2, 3))
    torch.testing.assert_close(nmse(image, reference), expected)
    assert rmse(image.to(torch.complex64), reference.to(torch.complex64)).dtype == torch.float32


def test_a_real_image_against_a_complex_reference_keeps_the_imaginary_part():
    reference = torch.complex(torch.ones(1, 3), torch.full((1, 3), 2.0)).to(torch.complex128)
    image = torch.ones(1, 3, dtype=torch.float64)
    torch.testing.assert_close(rmse(image, reference), torch.tensor([2.0], dtype=torch.float64))
    torch.testing.assert_close(rmse(reference, image), torch.tensor([2.0], dtype=torch.float64))


def test_float32_images_are_compared_in_float64():
    """Squares of 1e20 overflow float32 but not float64, in which the module says the sums run."""
    reference = torch.full((1, 1, 4, 4), 1e20, dtype=torch.float32)
    image = reference * 1.5
    error = rmse(image, reference)
    assert error.dtype == torch.float32
    torch.testing.assert_close(error, torch.tensor([5e19]))
    torch.testing.assert_close(nmse(image, reference), torch.tensor([0.25]))


def test_unbatched_pairs_of_vectors_and_single_pixels():
    image, reference = torch.tensor([[1.0, 2.0, 4.0]], dtype=torch.float64), torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    torch.testing.assert_close(rmse(image, reference), torch.tensor([1 / math.sqrt(3)], dtype=torch.float64))
    torch.testing.assert_close(rmse(torch.ones(1, 1), torch.zeros(1, 1)), torch.ones(1))
    with pytest.raises(ValueError, match=r"^image must be batched \(B, \.\.\.\), got shape \(3,\)$"):
        rmse(torch.ones(3), torch.ones(3))


def test_nmse_normalises_each_item_by_its_own_reference():
    reference = torch.stack([torch.ones(4, dtype=torch.float64), torch.full((4,), 2.0, dtype=torch.float64)])
    image = reference + 1.0
    torch.testing.assert_close(nmse(image, reference), torch.tensor([1.0, 0.25], dtype=torch.float64))
    unit = torch.tensor([[1.0, 0.0]], dtype=torch.float64)  # energy exactly 1
    torch.testing.assert_close(nmse(unit * 2, unit), torch.tensor([1.0], dtype=torch.float64))


def test_a_reference_whose_range_is_exactly_one_needs_no_data_range():
    reference = torch.tensor([[0.0, 1.0, 0.5, 0.25]], dtype=torch.float64)
    image = reference + 0.1
    torch.testing.assert_close(psnr(image, reference), torch.tensor([20.0], dtype=torch.float64))


def test_psnr_of_an_exact_match_is_infinite():
    image, reference = _pair()
    assert bool((psnr(reference, reference) == math.inf).all())
    assert float(fastmri_psnr(reference[0, 0], reference[0, 0])) == math.inf


def test_refusals_name_the_offending_item():
    reference = torch.stack([torch.rand(5, dtype=torch.float64), torch.full((5,), 3.0, dtype=torch.float64)])
    with pytest.raises(ValueError, match=r"^data_range must be given for a constant reference: item 1 has max − min = 0"):
        psnr(reference + 0.1, reference)
    reference[1] = 0.0
    with pytest.raises(ValueError, match=r"^reference must have a non-zero norm in every item for NMSE, item 1 is all zeros$"):
        nmse(reference + 0.1, reference)
    with pytest.raises(ValueError, match=r"^gt must have a non-zero norm for NMSE, got all zeros$"):
        fastmri_nmse(torch.zeros(3, 3), torch.ones(3, 3))


def test_fastmri_scores_need_maxval_when_the_volume_is_not_positive():
    gt = -torch.rand(2, 8, 8, dtype=torch.float64)
    for function in (fastmri_psnr, fastmri_ssim):
        with pytest.raises(ValueError, match=r"^maxval must be given when gt\.max\(\) is not > 0"):
            function(gt, gt + 0.1)
        assert math.isfinite(float(function(gt, gt + 0.1, maxval=1.0)))


@pytest.mark.parametrize("function", [fastmri_psnr, fastmri_ssim])
def test_fastmri_psnr_and_ssim_refuse_complex_volumes(function):
    gt = torch.rand(2, 8, 8, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"^pred must be a floating-point tensor, got dtype torch\.complex128$"):
        function(gt, gt.to(torch.complex128))


def test_ssim_windows_of_three_and_nine_and_the_window_checks():
    image, reference = _pair((1, 1, 12, 12))
    for win in (3, 9):
        expected = ssim(image, reference, win_size=win)
        peak = float(np.ptp(reference.numpy()))
        torch.testing.assert_close(fastmri_ssim(reference[0], image[0], maxval=peak, win_size=win), expected[0])
    with pytest.raises(ValueError, match=r"^win_size must be odd, got 4$"):
        ssim(image, reference, win_size=4)
    with pytest.raises(ValueError, match=r"^win_size must be an int >= 3, got 1$"):
        ssim(image, reference, win_size=1)
    with pytest.raises(ValueError, match=r"^k1 must be a finite number > 0, got 0$"):
        ssim(image, reference, k1=0)
    with pytest.raises(ValueError, match=r"^k2 must be a finite number > 0, got 0$"):
        ssim(image, reference, k2=0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda a, b: rmse(a, b[..., :-1]), r"^image and reference must have one shape, got \(2, 1, 9, 9\) and \(2, 1, 9, 8\)$"),
        (lambda a, b: ssim(a, b[..., :-1]), r"^image and reference must have one shape, got \(2, 1, 9, 9\) and \(2, 1, 9, 8\)$"),
        (lambda a, b: rmse(a[:0], b[:0]), r"^image and reference must not be empty, got shape \(0, 1, 9, 9\)$"),
        (lambda a, b: fastmri_nmse(a[0, 0], b[0, 0, :-1]), r"^gt and pred must have one shape, got \(9, 9\) and \(8, 9\)$"),
        (lambda a, b: psnr(a, b, data_range=0), r"^data_range must be a finite number > 0, got 0$"),
        (lambda a, b: ssim(a, b, data_range=-1.0), r"^data_range must be a finite number > 0, got -1\.0$"),
        (lambda a, b: fastmri_psnr(a[0], b[0], maxval=0), r"^maxval must be a finite number > 0, got 0$"),
        (lambda a, b: ssim(a[..., :5, :], b[..., :5, :]), r"^each slice must be at least win_size × win_size = 7 × 7, got 5 × 9$"),
        (lambda a, b: ssim(a[0, 0], b[0, 0]), r"^image must be shaped \(B, C, H, W\) or \(B, C, D, H, W\), got \(9, 9\)$"),
        (lambda a, b: fastmri_ssim(a[0, 0, 0], b[0, 0, 0]), r"^gt must be shaped \(slices, H, W\) or \(H, W\), got \(9,\)$"),
    ],
)
def test_refusals_say_what_was_expected_and_given(call, message):
    image, reference = _pair()
    with pytest.raises(ValueError, match=message):
        call(image, reference)


@pytest.mark.parametrize("bad", ["image", "reference"])
def test_non_finite_inputs_are_refused_by_name(bad):
    image, reference = _pair()
    pair = {"image": image, "reference": reference}
    pair[bad] = pair[bad].clone()
    pair[bad][0, 0, 0, 0] = math.nan
    with pytest.raises(ValueError, match=rf"^{bad} "):
        rmse(pair["image"], pair["reference"])
    with pytest.raises(TypeError, match=rf"^{bad} must be a floating-point or complex tensor"):
        rmse(*[value.to(torch.int64) if name == bad else value for name, value in pair.items()])


HUGE = 1e200  # squares overflow float64


@pytest.mark.parametrize(
    "name, call",
    [
        ("rmse", lambda a, b: rmse(a, b)),
        ("nmse", lambda a, b: nmse(a, b)),
        ("psnr", lambda a, b: psnr(a, b)),
        ("ssim", lambda a, b: ssim(a, b)),
        ("fastmri_nmse", lambda a, b: fastmri_nmse(b[0, 0], a[0, 0])),
        ("fastmri_psnr", lambda a, b: fastmri_psnr(b[0, 0], a[0, 0])),
        ("fastmri_ssim", lambda a, b: fastmri_ssim(b[0, 0], a[0, 0])),
    ],
)
def test_scores_that_overflow_float64_are_refused_by_name(name, call):
    image, reference = _pair((1, 1, 8, 8))
    message = (
        rf"^{name} is not finite for these inputs: their magnitudes \(or data_range/maxval\) over- or underflow "
        r"float64; rescale the images$"
    )
    with pytest.raises(ValueError, match=message):
        call(image * HUGE, reference)


def test_constant_references_need_a_data_range_for_psnr_and_ssim():
    image, reference = _pair((2, 1, 8, 8))
    reference[1] = 0.5
    for function in (psnr, ssim):
        with pytest.raises(ValueError, match=(
            r"^data_range must be given for a constant reference: item 1 has max − min = 0, which leaves the score "
            r"undefined; pass data_range \(the range of values the images can take\)$"
        )):
            function(image, reference)
        assert bool(torch.isfinite(function(image, reference, data_range=1.0)).all())


def test_inputs_on_two_devices_are_refused():
    with pytest.raises(ValueError, match=r"^image and reference must be on one device, got cpu and meta$"):
        rmse(torch.zeros(1, 2), torch.zeros(1, 2, device="meta"))
    with pytest.raises(ValueError, match=r"^gt and pred must be on one device, got meta and cpu$"):
        fastmri_nmse(torch.zeros(2, 2, device="meta"), torch.zeros(2, 2))


def test_fastmri_nmse_of_complex_and_mixed_volumes():
    gt = torch.complex(torch.rand(2, 4, 4, dtype=torch.float64), torch.rand(2, 4, 4, dtype=torch.float64))
    energy = float((gt.abs() ** 2).sum())
    assert float(fastmri_nmse(gt, gt + 0.1j)) == pytest.approx(32 * 0.01 / energy)
    real = gt.real.clone()
    assert float(fastmri_nmse(real, gt)) == pytest.approx(float((gt.imag**2).sum()) / float((real**2).sum()))
    assert float(fastmri_nmse(gt, real)) == pytest.approx(float((gt.imag**2).sum()) / energy)


def test_float32_volumes_are_compared_in_float64():
    gt = torch.full((1, 4, 4), 1e20, dtype=torch.float32)
    assert float(fastmri_nmse(gt, gt * 1.5)) == pytest.approx(0.25)
    assert float(fastmri_nmse(gt * 1.5, gt)) == pytest.approx(0.25 / 2.25)


def test_float32_images_give_float32_psnr_and_ssim_computed_in_float64():
    image, reference = _pair((2, 1, 9, 9))
    for function in (psnr, ssim):
        single = function(image.float(), reference.float())
        assert single.dtype == torch.float32
        torch.testing.assert_close(single, function(image.float().double(), reference.float().double()).float())


def test_ssim_refuses_complex_input_before_looking_at_shapes():
    image = torch.zeros(1, 1, 9, 9, dtype=torch.complex64)
    with pytest.raises(TypeError, match=r"^image must be a floating-point tensor, got dtype torch\.complex64$"):
        ssim(image, torch.zeros(1, 1, 9, 8))
    with pytest.raises(TypeError, match=r"^reference must be a floating-point tensor, got dtype torch\.complex64$"):
        ssim(torch.zeros(1, 1, 9, 9), image[..., :8])


def test_ssim_of_large_float32_images_runs_in_float64():
    """The moments x², y², xy of 1e20-sized images overflow float32; SSIM is scale-free when
    the data range scales with the images."""
    image, reference = _pair((1, 1, 9, 9))
    big = ssim(image.float() * 1e20, reference.float() * 1e20, data_range=1e20)
    torch.testing.assert_close(big, ssim(image.float(), reference.float(), data_range=1.0))
    big = fastmri_ssim(reference[0].float() * 1e20, image[0].float() * 1e20, maxval=1e20)
    torch.testing.assert_close(big, fastmri_ssim(reference[0].float(), image[0].float(), maxval=1.0))
