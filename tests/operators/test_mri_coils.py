"""ESPIRiT coil maps on synthetic multi-coil data with known sensitivities."""

import math

import pytest
import torch

from invsolve.operators.mri import (
    espirit_maps,
    estimate_coil_maps,
    fft_centered,
    ifft_centered,
    random_mask,
    rss,
)

SIZE, COILS = 48, 6


@pytest.fixture(scope="module")
def acquisition():
    axis = torch.linspace(-1, 1, SIZE, dtype=torch.float64)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    inside = (xx / 0.7) ** 2 + (yy / 0.8) ** 2 < 1
    image = inside * (1 + 0.3 * torch.cos(3 * xx)) * torch.exp(1j * (0.5 * xx + 0.3 * yy))
    maps = []
    for c in range(COILS):
        angle = 2 * math.pi * c / COILS
        bump = torch.exp(-((xx - 1.2 * math.cos(angle)) ** 2 + (yy - 1.2 * math.sin(angle)) ** 2) / 1.5)
        maps.append(bump * torch.exp(1j * (angle + 0.4 * xx)))
    maps = torch.stack(maps)
    maps = maps / maps.abs().pow(2).sum(0, keepdim=True).sqrt()
    kspace = fft_centered(maps * image)
    return kspace, maps, inside


def subspace_agreement(estimate, truth):
    """|⟨Ŝ(r), S(r)⟩| / (‖Ŝ(r)‖‖S(r)‖) per pixel: 1 when equal up to a phase."""
    inner = (estimate.conj() * truth).sum(0).abs()
    return inner / (estimate.abs().pow(2).sum(0).sqrt() * truth.abs().pow(2).sum(0).sqrt()).clamp_min(1e-12)


def test_espirit_recovers_the_sensitivities(acquisition):
    kspace, maps, inside = acquisition
    mask = random_mask(SIZE, center_fraction=0.5, acceleration=2, seed=0)
    estimate = espirit_maps(kspace, mask)
    # measured: min 0.99990 inside the object (a flip or conjugation gives < 0.9)
    assert float(subspace_agreement(estimate, maps)[inside].min()) > 0.999
    # unit norm over coils where non-zero, so SENSE combination = RSS there
    coil_images = ifft_centered(kspace)
    combined = (estimate.conj() * coil_images).sum(0)
    root_sum_of_squares = rss(coil_images, dim=0)[0]
    relative = (combined.abs() - root_sum_of_squares)[inside].abs().max() / root_sum_of_squares.max()
    assert float(relative) < 1e-3  # measured 1e-4


def test_espirit_is_batched_over_slices(acquisition):
    kspace, _, _ = acquisition
    mask = torch.ones(SIZE, dtype=torch.bool)
    both = espirit_maps(torch.stack([kspace, 2 * kspace]), mask)
    assert both.shape == (2, COILS, SIZE, SIZE)
    assert torch.allclose(both[0], espirit_maps(kspace, mask), atol=1e-8)
    assert torch.allclose(both[1], both[0], atol=1e-8)  # maps do not depend on the scale


def test_espirit_beats_the_low_resolution_estimate_at_the_edges(acquisition):
    kspace, maps, inside = acquisition
    mask = random_mask(SIZE, center_fraction=0.25, acceleration=2, seed=0)
    espirit = subspace_agreement(espirit_maps(kspace, mask), maps)[inside]
    low_resolution = subspace_agreement(estimate_coil_maps(kspace, mask), maps)[inside]
    assert float(espirit.min()) > float(low_resolution.min())


def test_espirit_errors(acquisition):
    kspace, _, _ = acquisition
    no_centre = torch.ones(SIZE, dtype=torch.bool)
    no_centre[SIZE // 2] = False
    with pytest.raises(ValueError, match="fully sampled centre lines"):
        espirit_maps(kspace, no_centre)
    narrow = torch.zeros(SIZE, dtype=torch.bool)
    narrow[SIZE // 2 - 2 : SIZE // 2 + 2] = True
    with pytest.raises(ValueError, match="at least 7 fully sampled centre lines"):
        espirit_maps(kspace, narrow)
    with pytest.raises(TypeError, match="kspace must be complex"):
        espirit_maps(kspace.real, no_centre)
    with pytest.raises(ValueError, match=r"mask must broadcast to the k-space plane \(48, 48\)"):
        espirit_maps(kspace, torch.ones(5, dtype=torch.bool))
    with pytest.raises(ValueError, match="threshold must be in"):
        espirit_maps(kspace, torch.ones(SIZE, dtype=torch.bool), threshold=2.0)
