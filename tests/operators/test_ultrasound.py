"""Ultrasound probe, RF signal processing and haze (operators/ultrasound, issue 13 point 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from invsolve.operators import dot_test
from invsolve.operators.ultrasound import (
    MU_LAW,
    PROBES,
    HazyMeasurement,
    Probe,
    add_haze,
    decimated_envelope,
    grey_levels,
    analytic_signal,
    bmode,
    envelope,
    log_compress,
    mu_law_compress,
    mu_law_expand,
    mu_law_slope,
    normalize_rf,
    simulate_haze,
    time_gain_compensation,
)

P4 = PROBES["P4-2v"]


# -- probe ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PROBES))
def test_the_pulse_s_spectrum_lies_in_the_probe_s_band(name):
    probe = PROBES[name]
    pulse = probe.pulse_echo(samples=1025)  # zero-padded: a fine spectrum
    spectrum = torch.fft.rfft(pulse).abs()
    frequencies = torch.fft.rfftfreq(1025, d=1 / probe.sampling_frequency)
    # a one-cycle burst's spectrum leans to low frequencies: the peak lies in the lower half of the band
    peak = float(frequencies[int(spectrum.argmax())]) / probe.centre_frequency
    assert 1 - probe.fractional_bandwidth / 2 < peak <= 1.0
    above = frequencies[spectrum >= spectrum.max() / 2]  # −6 dB in amplitude
    # the one-cycle excitation widens nothing: the band is at most the probe's pulse-echo bandwidth
    assert 0.6 < float(above.max() - above.min()) / (probe.fractional_bandwidth * probe.centre_frequency) <= 1.0
    assert float(pulse.abs().max()) == pytest.approx(1.0)
    short = probe.pulse_echo()
    assert short.numel() % 2 == 1 and float(short[[0, -1]].abs().max()) < 0.01


@pytest.mark.parametrize("name", sorted(PROBES))
def test_the_pulse_is_must_s(name):
    """pymust's getpulse (1 ns sampling), read at f_s about its envelope's peak: the same waveform."""
    pymust = pytest.importorskip("pymust")
    from scipy.signal import hilbert

    probe = PROBES[name]
    pulse = probe.pulse_echo()
    reference, _ = pymust.getpulse(pymust.getparam(name), 2)
    peak = int(np.abs(hilbert(reference)).argmax())
    times = peak * 1e-9 + (np.arange(pulse.numel()) - (pulse.numel() - 1) // 2) / probe.sampling_frequency
    resampled = np.interp(times, np.arange(reference.size) * 1e-9, reference, left=0.0, right=0.0)
    assert np.allclose(pulse.numpy(), resampled / np.abs(resampled).max(), atol=0.02)


def test_probe_geometry_and_its_checks():
    assert P4.axial_spacing == pytest.approx(1540 / (2 * 4 * 2.72e6))
    assert P4.wavelength == pytest.approx(1540 / 2.72e6)
    assert P4.aperture == pytest.approx(64 * 3e-4)
    with pytest.raises(ValueError, match="below twice the pulse's highest frequency"):
        Probe(5e6, 0.6, 12e6)
    with pytest.raises(ValueError, match=r"fractional_bandwidth must be in \(0, 2\)"):
        Probe(5e6, 2.5, 50e6)
    with pytest.raises(ValueError, match="centre_frequency must be a finite number > 0"):
        Probe(-1.0, 0.5, 50e6)


def test_the_presets_are_pymust_s_probes():
    pytest.importorskip("pymust")
    for name, probe in PROBES.items():
        assert Probe.from_pymust(name) == probe


# -- companding, envelope, B-mode, TGC -----------------------------------------------------
def test_mu_law_is_g711_s_curve_and_expand_inverts_it():
    x = torch.linspace(-1, 1, 2001, dtype=torch.float64)
    y = mu_law_compress(x)
    assert float(mu_law_compress(torch.tensor([0.5], dtype=torch.float64))) == pytest.approx(math.log(1 + 127.5) / math.log(256))
    assert torch.allclose(y[[0, 1000, -1]], torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64), atol=1e-12)
    assert bool((y.diff() > 0).all())  # increasing
    assert torch.allclose(mu_law_expand(y), x, atol=1e-12)
    assert torch.equal(mu_law_expand(torch.tensor([1.5, -2.0])), torch.tensor([1.0, -1.0]))  # clipped first
    assert MU_LAW == 255
    # the slope is the derivative of the expansion
    inside = torch.linspace(-0.99, 0.99, 11, dtype=torch.float64, requires_grad=True)
    (derivative,) = torch.autograd.grad(mu_law_expand(inside).sum(), inside)
    assert torch.allclose(mu_law_slope(inside.detach()), derivative)
    with pytest.raises(ValueError, match="normalised to \\[-1, 1\\] before companding"):
        mu_law_compress(torch.tensor([0.5, 1.2]))
    with pytest.raises(ValueError, match="rf must be finite, got 1 NaN"):
        mu_law_compress(torch.tensor([0.5, float("nan")]))


def test_normalize_rf_scales_each_frame_to_unit_peak():
    rf = torch.randn(3, 1, 20, 10, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 5.0, 0.1])[:, None, None, None]
    normalised, scale = normalize_rf(rf)
    assert torch.allclose(normalised.abs().amax(dim=(1, 2, 3)), torch.ones(3))
    assert torch.allclose(normalised * scale, rf)
    rf[1] = 0
    with pytest.raises(ValueError, match=r"frame\(s\) \[1\] of rf are all zeros"):
        normalize_rf(rf)


@pytest.mark.parametrize("length", [64, 65])
def test_the_analytic_signal_is_scipy_s(length):
    from scipy.signal import hilbert

    rf = torch.randn(2, 1, length, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(length))
    expected = hilbert(rf.numpy(), axis=-2)
    assert np.allclose(analytic_signal(rf).numpy(), expected, atol=1e-12)
    assert np.allclose(analytic_signal(rf, dim=-1).numpy(), hilbert(rf.numpy(), axis=-1), atol=1e-12)


def test_the_envelope_of_a_gaussian_pulse_is_its_gaussian():
    fc, fs, sigma_t = 5e6, 40e6, 1.5e-7
    t = (torch.arange(257, dtype=torch.float64) - 128) / fs
    gaussian = torch.exp(-0.5 * (t / sigma_t) ** 2)
    found = envelope((gaussian * torch.cos(2 * math.pi * fc * t))[None, None, :, None])[0, 0, :, 0]
    assert torch.allclose(found, gaussian, atol=1e-5)  # 1.1e-6: the spectrum's tail below zero frequency
    # a broadband pulse whose spectrum reaches below zero frequency is not (Bedrosian's theorem)
    broad = torch.exp(-0.5 * (t / 3e-8) ** 2)
    assert float((envelope((broad * torch.cos(2 * math.pi * fc * t))[None, None, :, None])[0, 0, :, 0] - broad).abs().max()) > 1e-3


def test_log_compression_spans_the_dynamic_range():
    amplitude = torch.tensor([[[[1.0, 0.1], [0.01, 1e-6]]]], dtype=torch.float64)
    image = log_compress(amplitude, dynamic_range=50)
    assert torch.allclose(image, torch.tensor([[[[0.0, -20.0], [-40.0, -50.0]]]], dtype=torch.float64))
    assert torch.allclose(log_compress(amplitude, 60, reference=10.0)[0, 0, 0], torch.tensor([-20.0, -40.0], dtype=torch.float64))
    rf = torch.randn(2, 1, 64, 16, generator=torch.Generator().manual_seed(1))
    b = bmode(rf, dynamic_range=40)
    assert b.shape == rf.shape and float(b.max()) == 0.0 and float(b.min()) >= -40
    with pytest.raises(ValueError, match="amplitude must be non-negative"):
        log_compress(-amplitude)
    with pytest.raises(ValueError, match="a frame holds no signal"):
        log_compress(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="dynamic_range must be a finite number > 0"):
        log_compress(amplitude, dynamic_range=0)


def test_grey_levels_are_the_bmode_image_on_a_display_s_scale():
    rf = torch.randn(2, 1, 40, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(grey_levels(rf), 1 + bmode(rf) / 60)
    coarse = grey_levels(rf, 40.0, axial_decimation=4)
    assert coarse.shape == (2, 1, 10, 6) and float(coarse.amax()) == 1.0 and float(coarse.amin()) >= 0.0
    averaged = envelope(rf).reshape(2, 1, 10, 4, 6).mean(3)
    torch.testing.assert_close(decimated_envelope(rf, 4), averaged)
    torch.testing.assert_close(coarse, 1 + log_compress(averaged, 40.0) / 40)
    assert decimated_envelope(rf[..., :39, :], 4).shape == (2, 1, 9, 6)  # a partial block is dropped
    with pytest.raises(ValueError, match="axial_decimation must be an int >= 1"):
        grey_levels(rf, axial_decimation=0)


def test_time_gain_compensation_undoes_tissue_attenuation():
    depth = torch.arange(200, dtype=torch.float64) * P4.axial_spacing  # m
    alpha, f = 0.5, P4.centre_frequency
    attenuated = 10 ** (-2 * alpha * (f / 1e6) * depth * 100 / 20)
    rf = attenuated[None, None, :, None].expand(1, 1, 200, 3)
    compensated = time_gain_compensation(rf, f, P4.axial_spacing, attenuation=alpha)
    assert torch.allclose(compensated, torch.ones_like(rf))
    assert torch.equal(time_gain_compensation(rf, f, P4.axial_spacing, attenuation=0.0), rf)
    with pytest.raises(ValueError, match="attenuation must be a number >= 0"):
        time_gain_compensation(rf, f, P4.axial_spacing, attenuation=-1)


# -- haze ----------------------------------------------------------------------------------
def test_the_hazy_measurement_adds_gamma_times_the_haze_with_an_exact_adjoint():
    operator = HazyMeasurement((1, 8, 6), 0.3)
    assert operator.in_shape == (2, 8, 6) and operator.out_shape == (1, 8, 6)
    pair = torch.randn(2, 2, 8, 6, dtype=torch.float64)
    assert torch.allclose(operator(pair), pair[:, :1] + 0.3 * pair[:, 1:])
    assert dot_test(operator) < 1e-14
    assert dot_test(HazyMeasurement((3, 4, 4), 1.0)) < 1e-14
    for gamma in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="gamma must be"):
            HazyMeasurement((1, 8, 6), gamma)


def test_add_haze_mixes_frames_of_one_shape_at_a_level_in_the_unit_interval():
    tissue, haze = torch.randn(2, 1, 8, 6, dtype=torch.float64), torch.randn(2, 1, 8, 6, dtype=torch.float64)
    torch.testing.assert_close(add_haze(tissue, haze, 0.2), tissue + 0.2 * haze)
    torch.testing.assert_close(add_haze(tissue, haze, 0.2), HazyMeasurement((1, 8, 6), 0.2)(torch.cat([tissue, haze], 1)))
    with pytest.raises(ValueError, match=r"tissue and haze must be frames of one shape, got \(2, 1, 8, 6\) and \(2, 1, 8, 5\)"):
        add_haze(tissue, haze[..., :5], 0.2)
    for gamma in (-0.1, 1.5):
        with pytest.raises(ValueError, match="gamma must be"):
            add_haze(tissue, haze, gamma)
    broken = haze.clone()
    broken[0, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="haze"):
        add_haze(tissue, broken, 0.2)
    with pytest.raises(TypeError, match="tissue"):
        add_haze(tissue.to(torch.complex128), haze, 0.2)


def test_reverberation_repeats_a_superficial_echo_at_multiples_of_its_depth():
    tissue = torch.zeros(1, 1, 100, 8, dtype=torch.float64)
    tissue[0, 0, 5, 3] = 1.0  # a bright reflector in the superficial fifth
    tissue[0, 0, 60, 3] = 1.0  # a deep one, which does not reverberate
    haze = simulate_haze(tissue, P4, superficial_depth=0.2, orders=3, decay=0.5, lateral_spread=0, clutter_weight=0, seed=0)
    rows = haze[0, 0, :, 3].nonzero().flatten().tolist()
    assert rows == [25, 45, 65]  # 5 + k · 20
    amplitudes = haze[0, 0, rows, 3]
    assert torch.allclose(amplitudes[1:] / amplitudes[:-1], torch.full((2,), 0.5, dtype=torch.float64))


def test_haze_is_at_the_tissue_s_level_reproducible_and_in_the_probe_s_band():
    tissue = torch.randn(2, 1, 256, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 0.2
    haze = simulate_haze(tissue, P4, seed=7)
    assert torch.allclose(haze.square().mean(dim=(2, 3)).sqrt(), tissue.square().mean(dim=(2, 3)).sqrt())
    assert torch.equal(haze, simulate_haze(tissue, P4, seed=7))
    assert not torch.equal(haze, simulate_haze(tissue, P4, seed=8))
    # clutter alone (no superficial echoes to reverberate): centred on the probe's frequency
    quiet = tissue.clone()
    quiet[..., :60, :] = 0
    clutter = simulate_haze(quiet, P4, superficial_depth=0.2, seed=1)
    power = torch.fft.rfft(clutter, dim=2).abs().square().mean(dim=(0, 1, 3))
    frequencies = torch.fft.rfftfreq(256, d=1 / P4.sampling_frequency)
    centroid = float((power * frequencies).sum() / power.sum())
    assert centroid == pytest.approx(P4.centre_frequency, rel=0.1)


@pytest.mark.parametrize(
    "tissue, kwargs, error, message",
    [
        (torch.zeros(8, 8), {}, ValueError, r"tissue must be RF frames \(B, C, n_axial, n_lateral\)"),
        (torch.zeros(1, 1, 8, 8), {}, ValueError, "a tissue frame is all zeros"),
        (torch.ones(1, 1, 8, 8), {"superficial_depth": 1.0}, ValueError, r"superficial_depth must be in \(0, 1\)"),
        (torch.ones(1, 1, 8, 8), {"decay": 1.5}, ValueError, "decay must be"),
        (torch.ones(1, 1, 8, 8), {"orders": 0}, ValueError, "orders must be an int >= 1"),
        (torch.ones(1, 1, 8, 8), {"clutter_correlation": 0.0}, ValueError, r"clutter_correlation must be in \(0, 1\]"),
        (torch.ones(1, 1, 8, 8), {"probe": "P4-2v"}, TypeError, "probe must be an invsolve Probe"),
    ],
)
def test_bad_haze_arguments(tissue, kwargs, error, message):
    arguments = {"probe": P4, **kwargs}
    with pytest.raises(error, match=message):
        simulate_haze(tissue, **arguments)
