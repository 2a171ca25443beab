"""Ramp filters and angular weights shared by 2D FBP (:mod:`.fbp`) and FDK (:mod:`.cone`).

Both reconstructions filter every detector row with a windowed ramp and
backproject with one weight per view; this module holds what they share:

* the filter names (:data:`FBP_FILTERS`, with aliases) and the checks of
  ``filter`` and ``frequency_scaling``;
* :func:`filter_response`: the band-limited ramp of Kak & Slaney times the
  window, on the ``rfft`` grid of a zero-padded row (:func:`padded_length`);
* :func:`angle_cell_widths`: the angular width of each view, on a line (a
  partial scan, ODL's partition cells) or on a circle (a full orbit).

References
----------
A. C. Kak and M. Slaney, *Principles of Computerized Tomographic Imaging*,
IEEE Press, 1988, section 3.3 (the band-limited ramp).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "FBP_FILTERS",
    "check_filter_name",
    "check_frequency_scaling",
    "padded_length",
    "filter_response",
    "angle_cell_widths",
    "largest_angle_gap",
]

#: Names of the FBP filters (windows applied to the ramp), as accepted by
#: :class:`.FilteredBackProjection` and :meth:`.ConeBeamTransform.fbp`;
#: matching is case-insensitive and ``_``, spaces and ``-`` are
#: interchangeable.  Aliases: ``"ramp"``/``"ramlak"`` for Ram-Lak,
#: ``"hanning"`` for Hann.
FBP_FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")

_ALIASES = {
    "ram-lak": "ram-lak",
    "ramlak": "ram-lak",
    "ramp": "ram-lak",
    "shepp-logan": "shepp-logan",
    "shepplogan": "shepp-logan",
    "cosine": "cosine",
    "hamming": "hamming",
    "hann": "hann",
    "hanning": "hann",
}


def check_filter_name(value: object, name: str = "filter") -> str:
    """The canonical name (one of :data:`FBP_FILTERS`) of the filter ``value``.

    Raises ``TypeError`` for a non-string and ``ValueError`` for an unknown
    name; ``name`` is the argument's name in the messages.
    """
    known = ", ".join(FBP_FILTERS)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {known}, got {value!r}")
    key = value.strip().lower().replace("_", "-").replace(" ", "-")
    if key not in _ALIASES:
        raise ValueError(f"{name} must be one of {known} (case-insensitive), got {value!r}")
    return _ALIASES[key]


def check_frequency_scaling(value: object) -> float:
    """``frequency_scaling`` as a float in ``(0, 1]``: the cutoff relative to the Nyquist frequency."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"frequency_scaling must be a number in (0, 1], got {value!r}")
    number = float(value)
    if not (0.0 < number <= 1.0):
        raise ValueError(
            f"frequency_scaling must be in (0, 1] (a cutoff relative to the Nyquist frequency), got {value!r}"
        )
    return number


def padded_length(n: int) -> int:
    """FFT length for rows of ``n`` samples: the next power of two ``>= 2n - 1``.

    Zero-padded to this length, the FFT's circular convolution of a row with
    the ramp kernel equals the linear one (no wrap-around).
    """
    return 1 << max(0, (2 * n - 2).bit_length())


def filter_response(name: str, cutoff: float, length: int) -> torch.Tensor:
    """The filter (ramp × window) at the ``rfft`` frequencies of ``length`` samples.

    The ramp is the transform of Kak & Slaney's band-limited kernel in units
    of one sample: ``1/4`` at 0, ``-1/(πn)²`` at odd ``n`` and 0 at even
    ``n != 0``, taken periodically with ``|n| <= length/2``; its transform is
    ``≈ |k|`` (cycles per sample) with a small positive value at ``k = 0``,
    so the DC gain is right.  Divide by the sample spacing for the response
    per unit length.

    The window is evaluated at ``ν``, the frequency relative to Nyquist (0.5
    cycles per sample), stretched to ``[0, cutoff]`` and zero above it:
    Ram-Lak 1, Shepp-Logan ``sinc(ν/2c)``, cosine ``cos(πν/2c)``, Hamming
    ``0.54 + 0.46 cos(πν/c)``, Hann ``cos²(πν/2c)`` (ODL's ``fbp_op``).

    Parameters
    ----------
    name : str
        One of :data:`FBP_FILTERS` (canonical, see :func:`check_filter_name`).
    cutoff : float
        ``frequency_scaling`` ``c`` in ``(0, 1]``.
    length : int
        Number of samples of the (padded) rows.

    Returns
    -------
    torch.Tensor, float64, shape (length // 2 + 1,)
    """
    index = torch.arange(length, dtype=torch.float64)
    distance = torch.minimum(index, length - index)
    kernel = torch.where(
        distance % 2 == 1, -1.0 / (math.pi * distance.clamp_min(1)) ** 2, torch.zeros_like(distance)
    )
    kernel[0] = 0.25
    ramp = torch.fft.rfft(kernel).real

    nu = torch.fft.rfftfreq(length, dtype=torch.float64) / 0.5
    phase = math.pi * nu / (2 * cutoff)
    if name == "ram-lak":
        window = torch.ones_like(nu)
    elif name == "shepp-logan":
        window = torch.sinc(nu / (2 * cutoff))  # sin(πν/2c) / (πν/2c)
    elif name == "cosine":
        window = torch.cos(phase)
    elif name == "hamming":
        window = 0.54 + 0.46 * torch.cos(2 * phase)
    else:  # hann
        window = torch.cos(phase) ** 2
    return ramp * torch.where(nu <= cutoff, window, torch.zeros_like(window))


def angle_cell_widths(angles: torch.Tensor, period: float | None = None) -> torch.Tensor:
    """Width of each view's angular cell (radians), in the angles' order.

    The rule: the sorted angles partition the scan at the midpoints between
    neighbours, so a view's cell is half the gap to the previous angle plus
    half the gap to the next; repeated angles share a cell.  What lies
    beyond the first and last angle depends on ``period``:

    * ``None`` (a line; ODL's ``nonuniform_partition``): the first and last
      cells extend by half the gap to their only neighbour, so the widths
      sum to the range the views cover.  Right for parallel beam over
      ``[0, π)`` and for partial scans (limited angle, short scans), whose
      coverage the sum measures.  A single angle gets width 1 (as
      :meth:`.Geometry2D.to_odl`).
    * ``P`` (a circle): the angles are taken modulo ``P`` and the last and
      first are neighbours across the wrap, so the widths always sum to
      ``P``.  Right for a full orbit (``P = 2π``, as FDK assumes), where the
      first and last views border each other.  A single angle gets width
      ``P``.

    Both give ``P / n`` for ``n`` equally spaced views over a full period.

    Parameters
    ----------
    angles : torch.Tensor, shape (n,)
        Angles in radians, any order.
    period : float, optional
        Period of the scan on a circle; ``None`` for a line.

    Returns
    -------
    torch.Tensor, float64, shape (n,)
    """
    values = angles.detach().to("cpu", torch.float64).reshape(-1)
    if period is None and values.numel() == 1:
        return torch.ones(1, dtype=torch.float64)
    order, gaps = _sorted_gaps(values, period)
    if period is None:
        before, after = torch.cat([gaps[:1], gaps]), torch.cat([gaps, gaps[-1:]])
    else:
        before, after = torch.roll(gaps, 1), gaps
    widths = torch.empty_like(values)
    widths[order] = (before + after) / 2
    return widths


def largest_angle_gap(angles: torch.Tensor, period: float) -> float:
    """Largest gap (radians) between neighbouring angles on the circle of ``period``."""
    return float(_sorted_gaps(angles.detach().to("cpu", torch.float64).reshape(-1), period)[1].max())


def _sorted_gaps(values: torch.Tensor, period: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort order of ``values`` and the gap from each sorted angle to the next.

    On a line (``period=None``) there are ``n - 1`` gaps; on a circle the
    values are wrapped into ``[0, period)`` and the ``n``-th gap closes the
    circle from the last angle to the first.
    """
    if period is None:
        ordered, order = torch.sort(values)
        return order, ordered[1:] - ordered[:-1]
    ordered, order = torch.sort(values.remainder(period))
    return order, torch.diff(ordered, append=ordered[:1] + period)
