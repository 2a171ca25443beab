"""invsolve.mri_prior.prior_view: the operator and scale that let an image prior reconstruct k-space."""

from types import SimpleNamespace

import pytest
import torch

from invsolve import cg_sense
from invsolve.mri_prior import calibration_phase, prior_view, window_scale
from invsolve.operators import channels_to_complex, complex_to_channels
from invsolve.operators.mri import CartesianMRI, fft_centered, random_mask, simulated_coil_maps
from invsolve.priors import Normalization

SIZE = 16


def fake_prior(channels: int) -> SimpleNamespace:
    """What prior_view reads of a prior: its image shape and its window (0..120 a.u.)."""
    return SimpleNamespace(image_shape=(channels, SIZE, SIZE), normalization=Normalization.from_range(0.0, 120.0))


@pytest.fixture
def acquisition():
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 1, SIZE, SIZE, generator=generator, dtype=torch.float64) + 0.5
    phase = torch.linspace(-1, 1, SIZE, dtype=torch.float64)[None, :] * torch.ones(SIZE, 1, dtype=torch.float64)
    truth = image * torch.exp(0.7j * phase)
    maps = simulated_coil_maps((SIZE, SIZE), 4)
    mask = random_mask(SIZE, 0.25, 2, seed=1)
    operator = CartesianMRI(mask, maps)
    return truth, operator, mask, operator(truth)


def test_magnitude_prior_sees_the_real_image_with_the_calibration_phase(acquisition):
    truth, operator, mask, y = acquisition
    view = prior_view(y, operator, fake_prior(1), mask)
    assert view.channels == 1
    assert view.scale == pytest.approx(window_scale(cg_sense(y, operator, iterations=30), 120.0))
    real_image = (truth.abs() * view.scale).to(torch.float64)
    phase = calibration_phase(y, mask, operator.coil_maps)
    expected = operator(truth.abs() * torch.exp(1j * phase)) * view.scale
    torch.testing.assert_close(view.operator(real_image), expected)
    torch.testing.assert_close(view.to_image(real_image), truth.abs()[:, 0])


def test_two_channel_prior_reproduces_the_data_exactly(acquisition):
    truth, operator, mask, y = acquisition
    view = prior_view(y, operator, fake_prior(2), mask)
    assert view.channels == 2
    channels = complex_to_channels(truth) * view.scale
    torch.testing.assert_close(view.operator(channels), y * view.scale)
    torch.testing.assert_close(view.to_image(channels), channels_to_complex(channels)[:, 0] / view.scale)
    torch.testing.assert_close(view.to_image(channels), truth[:, 0])


def test_a_prior_with_three_channels_is_refused(acquisition):
    _, operator, mask, y = acquisition
    with pytest.raises(ValueError, match="1 .magnitude. or 2"):
        prior_view(y, operator, fake_prior(3), mask)


def test_simulated_coil_maps_are_smooth_and_peak_at_unit_rss():
    maps = simulated_coil_maps((32, 24), 6)
    assert maps.shape == (6, 32, 24) and maps.dtype == torch.complex128
    root_sum_of_squares = maps.abs().pow(2).sum(0).sqrt()
    assert float(root_sum_of_squares.max()) == pytest.approx(1.0)
    assert float(root_sum_of_squares.min()) > 0.1  # every pixel is seen by some coil
    # smooth: neighbouring pixels differ by a few percent of the peak at most
    assert float((maps[:, 1:] - maps[:, :-1]).abs().max()) < 0.1
    # the coils differ: their k-space energy sits near the centre but they are not multiples of each other
    assert float((maps[0] / maps[1]).abs().std()) > 0.1
    assert fft_centered(maps).abs()[:, 16, 12].gt(0).all()
    with pytest.raises(ValueError, match="coils"):
        simulated_coil_maps((8, 8), 0)
    with pytest.raises(ValueError, match="shape"):
        simulated_coil_maps((8,), 2)
