"""invsolve.dehaze: whole frames through patches, the two-prior sampler and stitching (issue 13, point 3)."""

from __future__ import annotations

import pytest
import torch

import invsolve
from invsolve.operators.ultrasound import mu_law_expand
from invsolve.priors import GaussianPrior


def _priors(std: float = 0.3):
    tissue = GaussianPrior.squared_exponential((1, 8, 8), length_scale=0.7, std=std)
    haze = GaussianPrior.squared_exponential((1, 8, 8), length_scale=3.0, std=std)
    return tissue, haze


def _frames(gamma: float, scale: float = 250.0):
    """Hazy RF (2, 1, 12, 20) in arbitrary units from companded Gaussian fields, and its parts."""
    generator = torch.Generator().manual_seed(0)
    tissue = mu_law_expand((0.3 * torch.randn(2, 1, 12, 20, dtype=torch.float64, generator=generator)).clamp(-1, 1))
    smooth = torch.nn.functional.avg_pool2d(torch.randn(2, 1, 16, 24, dtype=torch.float64, generator=generator), 5, 1)
    haze = mu_law_expand((0.6 * smooth).clamp(-1, 1))
    return scale * (tissue + gamma * haze), scale * tissue, scale * haze


def test_frames_larger_than_a_patch_are_dehazed_and_explain_the_data():
    gamma = 0.3
    hazy, _, _ = _frames(gamma)
    tissue_prior, haze_prior = _priors()
    result = invsolve.dehaze(
        hazy, tissue_prior, haze_prior, gamma, noise_std=1e-4, overlap=4, steps=100, n_samples=2, progress=False, tau=0.6
    )
    assert result.tissue.shape == result.haze.shape == result.tissue_std.shape == (2, 1, 12, 20)
    assert result.info["patches_per_frame"] == 2 * 4 and result.info["patch"] == [8, 8]  # rows at 0, 4; columns at 0, 4, 8, 12
    explained = result.tissue + gamma * result.haze
    # in the input's units (the frames' scale undone). Measured 8.0 %: PiGDM linearises the companding at the
    # Tweedie estimate, and at the frames' peaks (companded values near 1, slope 5.5) its step is inexact
    assert float((explained - hazy).norm()) < 0.12 * float(hazy.norm())
    assert float(result.tissue_std.max()) > 0
    # without haze in the model (γ = 0) the tissue is the data itself
    plain = invsolve.dehaze(hazy, tissue_prior, haze_prior, 0.0, noise_std=1e-4, overlap=4, steps=100, progress=False, tau=0.6)
    assert plain.tissue_std is None
    assert float((plain.tissue - hazy).norm()) < 0.02 * float(hazy.norm())  # measured 0.6 %


def test_bad_frames_are_refused_before_sampling():
    tissue_prior, haze_prior = _priors()
    with pytest.raises(ValueError, match=r"rf must be frames \(B, 1, H, W\)"):
        invsolve.dehaze(torch.zeros(12, 20), tissue_prior, haze_prior, 0.2, progress=False)
    with pytest.raises(ValueError, match=r"the frame \(6×20\) is smaller than a patch \(8×8\) in height"):
        invsolve.dehaze(torch.ones(1, 1, 6, 20), tissue_prior, haze_prior, 0.2, progress=False)
    with pytest.raises(ValueError, match="gamma must be"):
        invsolve.dehaze(torch.ones(1, 1, 12, 20), tissue_prior, haze_prior, 1.5, progress=False)
    with pytest.raises(ValueError, match=r"frame\(s\) \[0\] of rf are all zeros"):
        invsolve.dehaze(torch.zeros(1, 1, 12, 20), tissue_prior, haze_prior, 0.2, progress=False)
    with pytest.raises(ValueError, match="rf must be finite"):
        invsolve.dehaze(torch.full((1, 1, 12, 20), float("nan")), tissue_prior, haze_prior, 0.2, progress=False)
    with pytest.raises(ValueError, match="one spatial shape"):
        invsolve.dehaze(torch.ones(1, 1, 12, 20), tissue_prior, GaussianPrior.squared_exponential((1, 4, 4), 1.0), 0.2)


# -- scoring and the classical baseline ----------------------------------------------------
def _scene():
    from invsolve.operators.ultrasound import PROBES, ConvolutionSimulator, ImagingGrid, random_hazy_scene, split_seeds

    probe = PROBES["P4-2v"]
    simulator = ConvolutionSimulator(ImagingGrid(probe, (0.005, 0.015), 0.010, lateral_spacing=probe.wavelength / 2))
    return random_hazy_scene(simulator, split_seeds(simulator, "validation", 1)[0])


def test_bmode_against_the_clean_peak_and_scores_that_fall_with_the_haze():
    from invsolve.dehazing import bmode_against, dehazing_scores
    from invsolve.operators.ultrasound import bmode

    scene = _scene()
    clean = bmode_against(scene.tissue, scene.tissue)
    torch.testing.assert_close(clean, bmode(scene.tissue))  # the clean frame is its own reference
    halved = bmode_against(scene.tissue / 2, scene.tissue)
    inside = clean > -50
    torch.testing.assert_close(halved[inside], clean[inside] - 20 * torch.log10(torch.tensor(2.0, dtype=torch.float64)))
    # on a display's coarser rows: the grey levels of the same frames, in dB
    from invsolve.operators.ultrasound import grey_levels

    torch.testing.assert_close(bmode_against(scene.tissue, scene.tissue, 60.0, 4), 60 * (grey_levels(scene.tissue, 60.0, None, 4) - 1))
    coarse = dehazing_scores(bmode_against(scene.hazy(0.3), scene.tissue, 60.0, 4), scene, 60.0, 4)
    assert coarse["gcnr"] is not None and 10 < coarse["psnr_db"] < 60
    scores = [dehazing_scores(bmode_against(scene.hazy(gamma), scene.tissue), scene) for gamma in (0.1, 0.3, 1.0)]
    assert scores[0]["psnr_db"] > scores[1]["psnr_db"] > scores[2]["psnr_db"]
    assert scores[0]["gcnr"] > scores[2]["gcnr"]  # haze fills the cysts
    assert 0 < scores[2]["gcnr"] <= 1


def test_non_local_means_smooths_the_speckle_of_the_bmode_image():
    from invsolve.dehazing import bmode_against
    from invsolve.operators.ultrasound import envelope

    scene = _scene()
    peak = envelope(scene.tissue).amax()
    plain = invsolve.nlm_bmode(scene.tissue, 0.0, reference=peak)
    torch.testing.assert_close(plain, bmode_against(scene.tissue, scene.tissue))
    smooth = invsolve.nlm_bmode(scene.tissue, 6.0, reference=peak)
    assert smooth.shape == plain.shape and float(smooth.min()) >= -60 and float(smooth.max()) <= 0
    background = scene.phantom.background
    assert float(smooth[0, 0][background].std()) < 0.7 * float(plain[0, 0][background].std())
    with pytest.raises(ValueError, match=r"rf must be frames \(B, 1, H, W\)"):
        invsolve.nlm_bmode(scene.tissue[0], 1.0)
    with pytest.raises(ValueError, match="strength"):
        invsolve.nlm_bmode(scene.tissue, -1.0)


def test_frames_already_in_the_priors_units_are_not_rescaled():
    """B-mode grey levels (normalize=False, mu=None): the frames are sampled as given and the parts explain them."""
    tissue_prior, haze_prior = _priors()
    generator = torch.Generator().manual_seed(1)
    grey = 0.4 + 0.1 * torch.randn(1, 1, 12, 20, dtype=torch.float64, generator=generator)
    result = invsolve.dehaze(grey, tissue_prior, haze_prior, 1.0, mu=None, normalize=False, noise_std=1e-3, overlap=4,
                             steps=100, progress=False, tau=0.6)
    assert result.info["frame_scale"] == [1.0]
    assert float((result.tissue + result.haze - grey).norm()) < 0.05 * float(grey.norm())
    doubled = invsolve.dehaze(2 * grey, tissue_prior, haze_prior, 1.0, mu=None, normalize=False, noise_std=1e-3,
                              overlap=4, steps=100, progress=False, tau=0.6)
    assert not torch.allclose(doubled.tissue, 2 * result.tissue)  # no per-frame scale undoes a change of units
