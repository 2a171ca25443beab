"""RF signal processing: μ-law companding, envelope detection, B-mode, time-gain compensation.

Frames are tensors ``(..., n_axial, n_lateral)``: fast time (depth) along
the second-to-last axis.  Every function is batched torch, the same code on
CPU and CUDA; SciPy's ``scipy.signal.hilbert`` computes the same analytic
signal in NumPy only (and is the reference the tests hold :func:`envelope`
to), so it is not on this hot path.

References
----------
ITU-T Recommendation G.711, "Pulse code modulation (PCM) of voice
frequencies", 1988 (μ-law, μ = 255).

T. S. W. Stevens et al., "Dehazing Ultrasound using Diffusion Models",
IEEE Trans. Med. Imaging 43(10), 2024: diffusion priors on μ-law companded
RF normalised to [−1, 1].

A. V. Oppenheim and R. W. Schafer, *Discrete-Time Signal Processing*, 3rd
ed., 2010, §12.4 (the discrete analytic signal).
"""

from __future__ import annotations

import math

import torch

from invsolve._checks import check_finite, check_int, check_positive, check_tensor

__all__ = [
    "MU_LAW",
    "mu_law_compress",
    "mu_law_expand",
    "mu_law_slope",
    "normalize_rf",
    "analytic_signal",
    "envelope",
    "log_compress",
    "bmode",
    "grey_levels",
    "decimated_envelope",
    "time_gain_compensation",
]

#: μ of the companding (G.711's value, used by the dehazing study)
MU_LAW = 255.0


def _check_real(value: object, name: str) -> torch.Tensor:
    tensor = check_tensor(value, name, allow_complex=False)
    if not tensor.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {tensor.dtype}")
    return tensor


def _check_mu(mu: float) -> float:
    return check_positive(mu, "mu")


def mu_law_compress(rf: torch.Tensor, mu: float = MU_LAW) -> torch.Tensor:
    """``sign(x) · ln(1 + μ|x|) / ln(1 + μ)`` of RF normalised to ``[−1, 1]`` (:func:`normalize_rf`).

    Companding spreads the RF's large dynamic range over ``[−1, 1]``: weak
    echoes (haze, speckle in dark regions) get more of the range than a
    linear scale gives them.

    Raises
    ------
    ValueError
        If ``rf`` holds NaN/Inf or values outside ``[−1, 1]``.
    """
    rf = _check_real(rf, "rf")
    mu = _check_mu(mu)
    check_finite(rf, "rf")
    largest = float(rf.detach().abs().max()) if rf.numel() else 0.0
    if largest > 1 + 1e-6:
        raise ValueError(f"rf must be normalised to [-1, 1] before companding (normalize_rf), its largest |value| is {largest:.4g}")
    return torch.sign(rf) * torch.log1p(mu * rf.abs()) / math.log1p(mu)


def mu_law_expand(companded: torch.Tensor, mu: float = MU_LAW) -> torch.Tensor:
    """The inverse of :func:`mu_law_compress`: ``sign(y) · ((1 + μ)^|y| − 1) / μ``.

    Values outside ``[−1, 1]`` (a sampler's output may overshoot) are
    clipped to it first.
    """
    companded = _check_real(companded, "companded")
    mu = _check_mu(mu)
    clipped = companded.clamp(-1.0, 1.0)
    return torch.sign(clipped) * torch.expm1(clipped.abs() * math.log1p(mu)) / mu


def mu_law_slope(companded: torch.Tensor, mu: float = MU_LAW) -> torch.Tensor:
    """``d/dy`` of :func:`mu_law_expand` at ``companded``: ``ln(1 + μ)/μ · (1 + μ)^|y|`` (``|y|`` clipped to 1).

    How much an RF value moves per unit of companded value: 0.022 at 0 and
    5.5 at ±1 for μ = 255 — the scale on which a companded estimate's
    uncertainty is seen in RF.
    """
    companded = _check_real(companded, "companded")
    mu = _check_mu(mu)
    return math.log1p(mu) / mu * torch.exp(companded.abs().clamp(max=1.0) * math.log1p(mu))


def normalize_rf(rf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each frame divided by its largest ``|value|``: ``(normalised, scale)``, ``rf = normalised · scale``.

    Parameters
    ----------
    rf : torch.Tensor
        ``(B, ..., n_axial, n_lateral)``; each batch item is one frame.

    Returns
    -------
    normalised : torch.Tensor
        Shaped like ``rf``, in ``[−1, 1]``.
    scale : torch.Tensor
        ``(B, 1, …, 1)``, broadcastable against ``rf``.

    Raises
    ------
    ValueError
        If a frame is all zeros, or ``rf`` holds NaN/Inf.
    """
    rf = _check_real(rf, "rf")
    check_finite(rf, "rf")
    if rf.dim() < 3:
        raise ValueError(f"rf must be frames (B, ..., n_axial, n_lateral), got shape {tuple(rf.shape)}")
    scale = rf.abs().amax(dim=tuple(range(1, rf.dim())), keepdim=True)
    if bool((scale == 0).any()):
        raise ValueError(f"frame(s) {(scale.flatten() == 0).nonzero().flatten().tolist()} of rf are all zeros")
    return rf / scale, scale


def analytic_signal(rf: torch.Tensor, dim: int = -2) -> torch.Tensor:
    """The analytic signal ``x + i H{x}`` along ``dim`` (default: the axial axis), complex.

    The discrete construction of ``scipy.signal.hilbert``: the FFT along
    ``dim``, negative frequencies zeroed, positive ones doubled (DC and, for
    even lengths, Nyquist kept), inverse FFT.
    """
    rf = _check_real(rf, "rf")
    n = rf.shape[dim]
    spectrum = torch.fft.fft(rf, dim=dim)
    weights = torch.zeros(n, dtype=rf.dtype, device=rf.device)
    weights[0] = 1
    weights[1 : (n + 1) // 2] = 2
    if n % 2 == 0:
        weights[n // 2] = 1
    shape = [1] * rf.dim()
    shape[dim] = n
    return torch.fft.ifft(spectrum * weights.reshape(shape), dim=dim)


def envelope(rf: torch.Tensor, dim: int = -2) -> torch.Tensor:
    """``|x + i H{x}|``: the echo amplitude along ``dim`` (default: the axial axis), shaped like ``rf``."""
    return analytic_signal(rf, dim).abs()


def log_compress(amplitude: torch.Tensor, dynamic_range: float = 60.0, reference: torch.Tensor | float | None = None) -> torch.Tensor:
    """``20 log10(amplitude / reference)`` clipped to ``[−dynamic_range, 0]`` dB.

    Parameters
    ----------
    amplitude : torch.Tensor
        Non-negative envelope ``(B, ..., n_axial, n_lateral)``.
    dynamic_range : float
        Displayed range in dB, ``> 0``.
    reference : torch.Tensor or float, optional
        The 0 dB level; default each frame's maximum (so each frame peaks at 0 dB).

    Raises
    ------
    ValueError
        For negative or non-finite amplitudes, a frame without signal, a
        non-positive reference or dynamic range.
    """
    amplitude = _check_real(amplitude, "amplitude")
    check_finite(amplitude, "amplitude")
    dynamic_range = check_positive(dynamic_range, "dynamic_range")
    if bool((amplitude < 0).any()):
        raise ValueError("amplitude must be non-negative (an envelope); got negative values")
    if reference is None:
        dims = tuple(range(1, amplitude.dim())) if amplitude.dim() > 2 else tuple(range(amplitude.dim()))
        reference = amplitude.amax(dim=dims, keepdim=True)
    reference = torch.as_tensor(reference, dtype=amplitude.dtype, device=amplitude.device)
    if not bool((reference > 0).all()):
        raise ValueError("the 0 dB reference must be positive: a frame holds no signal")
    floor = 10 ** (-dynamic_range / 20)
    ratio = (amplitude / reference).clamp(min=floor, max=1.0)
    return 20 * torch.log10(ratio)


def bmode(rf: torch.Tensor, dynamic_range: float = 60.0) -> torch.Tensor:
    """The B-mode image in dB, ``[−dynamic_range, 0]``: :func:`log_compress` of :func:`envelope`."""
    return log_compress(envelope(rf), dynamic_range)


def grey_levels(
    rf: torch.Tensor, dynamic_range: float = 60.0, reference: torch.Tensor | float | None = None, axial_decimation: int = 1
) -> torch.Tensor:
    """The B-mode image as a scanner displays it: grey levels ``1 + dB / dynamic_range`` in ``[0, 1]``.

    The envelope is averaged over ``axial_decimation`` rows first (a display
    needs no RF sampling rate), then log-compressed (:func:`log_compress`,
    ``reference`` the 0 dB envelope level, default each frame's maximum
    after averaging).

    Returns
    -------
    torch.Tensor
        ``(B, ..., n_axial // axial_decimation, n_lateral)``.
    """
    return 1.0 + log_compress(decimated_envelope(rf, axial_decimation), dynamic_range, reference) / dynamic_range


def decimated_envelope(rf: torch.Tensor, axial_decimation: int) -> torch.Tensor:
    """:func:`envelope` averaged over blocks of ``axial_decimation`` rows (a last partial block is dropped)."""
    axial_decimation = check_int(axial_decimation, "axial_decimation")
    amplitude = envelope(rf)
    if axial_decimation == 1:
        return amplitude
    shape = amplitude.shape
    rows = shape[-2] // axial_decimation
    blocks = amplitude[..., : rows * axial_decimation, :].reshape(*shape[:-2], rows, axial_decimation, shape[-1])
    return blocks.mean(-2)


def time_gain_compensation(
    rf: torch.Tensor, probe_frequency: float, axial_spacing: float, attenuation: float = 0.5
) -> torch.Tensor:
    """Undo the two-way attenuation of soft tissue: multiply sample ``k`` by ``10^(2 α f z_k / 20)``.

    Parameters
    ----------
    rf : torch.Tensor
        ``(..., n_axial, n_lateral)``, sample 0 at depth 0.
    probe_frequency : float
        Frequency at which the attenuation is evaluated (the centre frequency), Hz.
    axial_spacing : float
        Depth between two axial samples, m (:attr:`Probe.axial_spacing`).
    attenuation : float
        ``α`` in dB/(cm·MHz), ``>= 0``; 0.5 is typical of soft tissue.

    Returns
    -------
    torch.Tensor
        Shaped like ``rf``.
    """
    rf = _check_real(rf, "rf")
    check_positive(probe_frequency, "probe_frequency")
    check_positive(axial_spacing, "axial_spacing")
    if not (math.isfinite(attenuation) and attenuation >= 0):
        raise ValueError(f"attenuation must be a number >= 0 dB/(cm·MHz), got {attenuation!r}")
    depth_cm = torch.arange(rf.shape[-2], dtype=rf.dtype, device=rf.device) * (axial_spacing * 100)
    gain_db = 2 * attenuation * (probe_frequency / 1e6) * depth_cm
    return rf * (10 ** (gain_db / 20))[:, None]
