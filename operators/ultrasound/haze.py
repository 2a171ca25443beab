"""Haze in cardiac ultrasound: a model of it, and the measurement ``y = x + γ·h`` on the stacked pair.

Haze is clutter from the chest wall: sound reverberating between the
transducer and the superficial layers (skin, fat, muscle, ribs) returns late
and is drawn over deeper tissue, and multipath scattering adds a diffuse,
slowly varying fog (Lediju et al., "Sources of reverberation clutter in
ultrasound imaging", Ultrasonic Imaging 32, 2010; Stevens et al.,
"Dehazing Ultrasound using Diffusion Models", IEEE TMI 43(10), 2024, whose
measurement model ``y = x + h`` this module follows with a level ``γ``).

:func:`simulate_haze` draws haze for given tissue RF:

* **reverberation** — the echoes of the superficial region (depths above
  ``superficial_depth``) repeated ``orders`` times at multiples of the
  region's depth (a round trip between probe and layer each time), each
  order ``decay`` times weaker and smeared laterally (the repeated paths
  spread across lines);
* **clutter** — white noise band-passed along depth by the probe's
  pulse-echo waveform (it is acoustic, at the probe's frequencies) under a
  smooth positive envelope: a Gaussian random field with correlation lengths
  of a good fraction of the frame;

mixed as ``reverberation + clutter_weight · clutter`` and scaled to the RMS
of the tissue frame, so that ``γ`` is the haze-to-tissue amplitude ratio;
:func:`add_haze` mixes given tissue and haze frames at a level ``γ``.
:class:`HazyMeasurement` is the linear map from the stacked pair
``[x, h]`` to ``y``; the two-prior sampler reconstructs both from it.
"""

from __future__ import annotations

import math

import torch

from invsolve._checks import check_finite, check_int, check_nonnegative, check_shape, check_tensor, check_unit_interval
from invsolve._random import make_generator

from ..base import LinearOperator
from .probe import Probe

__all__ = ["HazyMeasurement", "simulate_haze", "add_haze"]


class HazyMeasurement(LinearOperator):
    """``y = x + γ·h`` from the stacked pair ``[x, h]``: tissue and haze as channels of one image.

    Parameters
    ----------
    shape : (C, H, W)
        Shape of one tissue (and one haze) frame.
    gamma : float
        Haze level ``γ`` in ``[0, 1]``.

    Shapes
    ------
    * input ``(B, 2C, H, W)``: channels ``[:C]`` tissue, ``[C:]`` haze;
    * output ``(B, C, H, W)``.

    The adjoint is ``y ↦ [y, γ y]``.
    """

    def __init__(self, shape: tuple[int, int, int], gamma: float) -> None:
        channels, height, width = check_shape(shape, "shape", ("C", "H", "W"))
        self.gamma = check_unit_interval(gamma, "gamma")
        super().__init__((2 * channels, height, width), (channels, height, width))

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        tissue, haze = x.chunk(2, dim=1)
        return tissue + self.gamma * haze

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return torch.cat([y, self.gamma * y], dim=1)

    def describe(self) -> str:
        return f"HazyMeasurement(gamma={self.gamma:g}){self.in_shape}->{self.out_shape}"


def _smooth(noise: torch.Tensor, lengths: tuple[float, float]) -> torch.Tensor:
    """``noise`` low-passed by a Gaussian of standard deviations ``lengths`` samples (axial, lateral), via the FFT."""
    height, width = noise.shape[-2:]
    fy = torch.fft.fftfreq(height, dtype=noise.dtype, device=noise.device)[:, None]
    fx = torch.fft.rfftfreq(width, dtype=noise.dtype, device=noise.device)[None, :]
    response = torch.exp(-2 * math.pi**2 * ((fy * lengths[0]) ** 2 + (fx * lengths[1]) ** 2))
    return torch.fft.irfft2(torch.fft.rfft2(noise) * response, s=(height, width))


def _rms(values: torch.Tensor) -> torch.Tensor:
    return values.square().mean(dim=(-2, -1), keepdim=True).sqrt()


def simulate_haze(
    tissue: torch.Tensor,
    probe: Probe,
    *,
    superficial_depth: float = 0.2,
    orders: int = 3,
    decay: float = 0.6,
    lateral_spread: float = 2.0,
    clutter_weight: float = 1.0,
    clutter_correlation: float = 0.15,
    seed: int | torch.Generator | None = None,
) -> torch.Tensor:
    """Haze for the RF frames ``tissue``, at the tissue's RMS (module docstring).

    Parameters
    ----------
    tissue : torch.Tensor
        Clean RF ``(B, C, n_axial, n_lateral)``, axial sample 0 at the probe.
    probe : Probe
        Sets the clutter's frequency band (its pulse-echo waveform at ``f_s``).
    superficial_depth : float
        Depth of the reverberating layers as a fraction of the frame's depth, in ``(0, 1)``.
    orders : int
        Reverberation orders (replicas), ``>= 1``.
    decay : float
        Amplitude ratio of one order to the previous, in ``[0, 1]``.
    lateral_spread : float
        Lateral smear of the first order (Gaussian standard deviation, lines),
        growing with the order, ``>= 0``.
    clutter_weight : float
        Weight of the diffuse clutter against the reverberation (each at unit RMS first), ``>= 0``.
    clutter_correlation : float
        Correlation length of the clutter's envelope, as a fraction of each side of the frame, in ``(0, 1]``.
    seed : int, torch.Generator or None
        Random source (drawn on the CPU, so a seed gives the same haze on every device).

    Returns
    -------
    torch.Tensor
        Haze shaped like ``tissue``, each frame and channel at the RMS of the tissue's.

    Raises
    ------
    ValueError
        For a tissue frame that is not ``(B, C, H, W)``, holds NaN/Inf or is
        all zeros, or a parameter outside its range.
    """
    tissue = check_tensor(tissue, "tissue", allow_complex=False)
    if tissue.dim() != 4:
        raise ValueError(f"tissue must be RF frames (B, C, n_axial, n_lateral), got shape {tuple(tissue.shape)}")
    check_finite(tissue, "tissue")
    if not isinstance(probe, Probe):
        raise TypeError(f"probe must be an invsolve Probe, got {type(probe).__name__}")
    if not 0 < superficial_depth < 1:
        raise ValueError(f"superficial_depth must be in (0, 1) (a fraction of the frame's depth), got {superficial_depth!r}")
    orders = check_int(orders, "orders")
    decay = check_unit_interval(decay, "decay")
    lateral_spread = check_nonnegative(lateral_spread, "lateral_spread")
    clutter_weight = check_nonnegative(clutter_weight, "clutter_weight")
    if not 0 < clutter_correlation <= 1:
        raise ValueError(f"clutter_correlation must be in (0, 1], got {clutter_correlation!r}")
    level = _rms(tissue)
    if bool((level == 0).any()):
        raise ValueError("a tissue frame is all zeros: haze is scaled to the tissue's RMS, which must be positive")
    generator = make_generator(seed, "cpu")
    height, width = tissue.shape[-2:]
    dtype, device = tissue.dtype, tissue.device

    # reverberation: the superficial echoes, repeated at multiples of the layers' depth
    layer = max(1, round(superficial_depth * height))
    superficial = tissue.clone()
    superficial[..., layer:, :] = 0
    reverberation = torch.zeros_like(tissue)
    for order in range(1, orders + 1):
        shift = order * layer
        if shift >= height:
            break
        replica = torch.zeros_like(tissue)
        replica[..., shift:, :] = superficial[..., : height - shift, :]
        if lateral_spread > 0:
            replica = _smooth(replica, (0.0, lateral_spread * order))
        reverberation += decay**order * replica

    # clutter: band-passed noise under a smooth positive envelope
    white = torch.randn(tissue.shape, dtype=torch.float64, generator=generator).to(device, dtype)
    pulse = probe.pulse_echo().to(device, dtype)
    band = torch.nn.functional.conv1d(
        white.movedim(-2, -1).reshape(-1, 1, height), pulse.flip(0)[None, None], padding=pulse.numel() // 2
    )[..., :height]
    band = band.reshape(*tissue.shape[:-2], width, height).movedim(-1, -2)
    field = torch.randn(tissue.shape, dtype=torch.float64, generator=generator).to(device, dtype)
    shape = _smooth(field, (clutter_correlation * height, clutter_correlation * width)).abs()
    clutter = band * shape

    haze = _unit_rms(reverberation) + clutter_weight * _unit_rms(clutter)
    return haze / _rms(haze).clamp_min(torch.finfo(dtype).tiny) * level


def _unit_rms(values: torch.Tensor) -> torch.Tensor:
    """``values`` over their RMS per frame and channel (zero stays zero)."""
    rms = _rms(values)
    return torch.where(rms > 0, values / rms.clamp_min(torch.finfo(values.dtype).tiny), values)


def add_haze(tissue: torch.Tensor, haze: torch.Tensor, gamma: float) -> torch.Tensor:
    """The hazy frames ``tissue + γ·haze``.

    Parameters
    ----------
    tissue, haze : torch.Tensor
        Real RF frames of one shape ``(..., n_axial, n_lateral)``, one dtype and device.
    gamma : float
        Haze level in ``[0, 1]``.

    Raises
    ------
    ValueError
        For frames of different shapes, NaN/Inf values, or ``γ`` outside ``[0, 1]``.
    """
    tissue = check_tensor(tissue, "tissue", allow_complex=False)
    haze = check_tensor(haze, "haze", allow_complex=False)
    if tissue.shape != haze.shape:
        raise ValueError(f"tissue and haze must be frames of one shape, got {tuple(tissue.shape)} and {tuple(haze.shape)}")
    check_finite(tissue, "tissue")
    check_finite(haze, "haze")
    gamma = check_unit_interval(gamma, "gamma")
    return tissue + gamma * haze
