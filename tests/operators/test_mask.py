import pytest
import torch

from invsolve.operators import GaussianNoise, Mask, box_mask, dot_test, random_pixel_mask, stroke_mask

GENERATORS = {
    "pixels": lambda seed: random_pixel_mask((32, 40), missing_fraction=0.3, seed=seed),
    "boxes": lambda seed: box_mask((32, 40), n_boxes=2, seed=seed),
    "strokes": lambda seed: stroke_mask((32, 40), n_strokes=3, seed=seed),
}


@pytest.mark.parametrize("name", list(GENERATORS))
def test_generators_are_seeded_boolean_and_partial(name):
    make = GENERATORS[name]
    first, again, other = make(0), make(0), make(1)
    assert first.dtype == torch.bool and first.shape == (32, 40)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert 0 < int(first.sum()) < first.numel()


def test_random_pixel_mask_hides_the_exact_fraction():
    mask = random_pixel_mask((20, 30), missing_fraction=0.25, seed=3)
    assert int((~mask).sum()) == round(0.25 * 600)
    assert bool(random_pixel_mask((4, 4), 0.0, seed=0).all())
    assert not bool(random_pixel_mask((4, 4), 1.0, seed=0).any())


def test_box_mask_hides_rectangles_of_the_requested_size():
    mask = box_mask((40, 40), n_boxes=1, size_range=(0.25, 0.25), seed=5)
    rows = (~mask).any(dim=1).nonzero().squeeze(1)
    cols = (~mask).any(dim=0).nonzero().squeeze(1)
    assert len(rows) == 10 and len(cols) == 10
    assert int((~mask).sum()) == 100  # a filled 10×10 rectangle
    assert rows.diff().eq(1).all() and cols.diff().eq(1).all()


def test_stroke_mask_widths_follow_the_brush():
    thin = stroke_mask((64, 64), n_strokes=2, width_range=(0.02, 0.02), seed=0)
    thick = stroke_mask((64, 64), n_strokes=2, width_range=(0.12, 0.12), seed=0)
    assert int((~thick).sum()) > 2 * int((~thin).sum())
    assert bool((thick <= thin).all())  # same strokes, wider brush covers a superset
    assert bool(stroke_mask((16, 16), n_strokes=0, seed=0).all())


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: random_pixel_mask((8,), 0.5), r"shape must be a pair \(H, W\) of ints, got \(8,\)"),
        (lambda: random_pixel_mask((8, 8), 1.5), r"missing_fraction must lie in \[0, 1\], got 1.5"),
        (lambda: box_mask((8, 8), size_range=(0.5, 0.2)), "size_range must be"),
        (lambda: box_mask((8, 8), n_boxes=-1), "n_boxes must be an int >= 0, got -1"),
        (lambda: stroke_mask((8, 8), max_vertices=0), "max_vertices must be an int >= 1, got 0"),
        (lambda: stroke_mask((8, 8), width_range=(0.2, 0.1)), "width_range must be"),
    ],
)
def test_generator_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_mask_operator_keeps_observed_pixels_and_is_a_projection():
    mask = random_pixel_mask((8, 8), missing_fraction=0.5, seed=0)
    op = Mask(mask, in_shape=(3, 8, 8))
    x = torch.randn(2, 3, 8, 8)
    y = op(x)
    assert torch.equal(y[:, :, mask], x[:, :, mask])
    assert bool((y[:, :, ~mask] == 0).all())
    assert torch.equal(op(y), y)
    assert op.observed_fraction == pytest.approx(0.5)
    assert op.norm() == pytest.approx(1.0)
    assert dot_test(op) < 1e-14


def test_mask_operator_on_volumes():
    mask = torch.rand(4, 6, 6, generator=torch.Generator().manual_seed(0)) > 0.5
    op = Mask(mask)
    assert op.in_shape == (1, 4, 6, 6)
    assert dot_test(op) < 1e-14


def test_mask_operator_errors():
    with pytest.raises(ValueError, match="only 0 and 1"):
        Mask(torch.full((4, 4), 0.5))
    with pytest.raises(ValueError, match="does not broadcast"):
        Mask(torch.ones(4, 4, dtype=torch.bool), in_shape=(1, 4, 5))
    with pytest.raises(TypeError, match="mask must be a torch.Tensor"):
        Mask([[1, 0]])


def test_gaussian_noise_is_seeded_with_the_right_std():
    clean = torch.zeros(4, 1, 64, 64, dtype=torch.float64)
    noise = GaussianNoise(0.3)
    noisy = noise(clean, seed=1)
    assert torch.equal(noisy, noise(clean, seed=1))
    assert float(noisy.std()) == pytest.approx(0.3, rel=0.02)
    complex_noisy = noise(clean.to(torch.complex128), seed=1)
    assert float(complex_noisy.real.std()) == pytest.approx(0.3, rel=0.02)
    assert float(complex_noisy.imag.std()) == pytest.approx(0.3, rel=0.02)
    assert torch.allclose(noise.negative_log_likelihood(noisy, clean), (noisy**2).sum((1, 2, 3)) / (2 * 0.09))
    with pytest.raises(ValueError, match="std must be a finite number >= 0, got -1"):
        GaussianNoise(-1)
