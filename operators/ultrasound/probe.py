"""The ultrasound probe and pulse that every other ultrasound module reads.

A :class:`Probe` holds what sets the sampling and the resolution of RF data:
centre frequency, fractional bandwidth, RF sampling rate, speed of sound,
number of elements and their pitch.  Presets copy the values of the MUST
toolbox's ``getparam`` (Garcia, "SIMUS: an open-source simulator for medical
ultrasound imaging", Comput. Methods Programs Biomed. 218, 2022), so that the
torch models here and ``pymust`` (the toolbox's Python port, an optional
extra) describe the same transducer; :meth:`Probe.from_pymust` reads any
probe ``pymust.getparam`` knows.

RF frames are tensors ``(B, C, n_axial, n_lateral)``: fast time (depth) along
the rows, image lines along the columns.  Axial sample ``k`` lies at depth
``k · c / (2 f_s)`` (two-way travel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from invsolve._checks import check_int, check_positive

__all__ = ["Probe", "PROBES"]


@dataclass(frozen=True)
class Probe:
    """An ultrasound transducer and its RF sampling.

    Parameters
    ----------
    centre_frequency : float
        Centre frequency ``f_c`` of the pulse, Hz.
    fractional_bandwidth : float
        Pulse-echo −6 dB bandwidth as a fraction of ``f_c`` (0.74 for 74 %), in ``(0, 2)``.
    sampling_frequency : float
        RF sampling rate ``f_s``, Hz; at least twice the highest frequency of
        the pulse, ``f_c (1 + bandwidth/2)``.
    sound_speed : float
        Speed of sound ``c``, m/s (1540 in soft tissue).
    elements : int
        Number of elements.
    pitch : float
        Element pitch, m.
    excitation_cycles : float
        Length of the transmitted sine burst in periods of ``f_c`` (MUST's ``TXnow``, default 1).
    element_width : float, optional
        Width of one element, m (pitch minus kerf; sets its directivity); default the pitch.
    name : str
        How the probe is named in messages and files.
    """

    centre_frequency: float
    fractional_bandwidth: float
    sampling_frequency: float
    sound_speed: float = 1540.0
    elements: int = 64
    pitch: float = 3e-4
    excitation_cycles: float = 1.0
    element_width: float | None = None
    name: str = "custom"

    def __post_init__(self) -> None:
        check_positive(self.centre_frequency, "centre_frequency")
        check_positive(self.fractional_bandwidth, "fractional_bandwidth")
        if not self.fractional_bandwidth < 2:
            raise ValueError(f"fractional_bandwidth must be in (0, 2) (a fraction of f_c), got {self.fractional_bandwidth!r}")
        check_positive(self.sampling_frequency, "sampling_frequency")
        check_positive(self.sound_speed, "sound_speed")
        check_int(self.elements, "elements")
        check_positive(self.pitch, "pitch")
        check_positive(self.excitation_cycles, "excitation_cycles")
        if self.element_width is not None and not 0 < check_positive(self.element_width, "element_width") <= self.pitch:
            raise ValueError(f"element_width must be in (0, pitch = {self.pitch:g}] m, got {self.element_width!r}")
        highest = self.centre_frequency * (1 + self.fractional_bandwidth / 2)
        if self.sampling_frequency < 2 * highest:
            raise ValueError(
                f"sampling_frequency {self.sampling_frequency:g} Hz is below twice the pulse's highest frequency "
                f"{highest:g} Hz (f_c (1 + bandwidth/2)): the RF would alias"
            )

    @classmethod
    def from_pymust(cls, name: str, sampling_factor: float = 4.0) -> Probe:
        """The probe ``pymust.getparam(name)`` describes, sampled at ``sampling_factor · f_c``.

        Needs the optional ``pymust``; MUST's own default rate is 4 ``f_c``.
        """
        try:
            import pymust
        except ImportError:  # pragma: no cover - depends on the installation
            raise ImportError("Probe.from_pymust needs pymust (pip install pymust)") from None
        param = pymust.getparam(name)
        return cls(
            centre_frequency=float(param.fc),
            fractional_bandwidth=float(param.bandwidth) / 100,
            sampling_frequency=check_positive(sampling_factor, "sampling_factor") * float(param.fc),
            sound_speed=float(getattr(param, "c", None) or 1540.0),
            elements=int(param.Nelements),
            pitch=float(param.pitch),
            excitation_cycles=float(getattr(param, "TXnow", None) or 1.0),
            element_width=float(param.width),
            name=name,
        )

    @property
    def wavelength(self) -> float:
        """``c / f_c``, m."""
        return self.sound_speed / self.centre_frequency

    @property
    def axial_spacing(self) -> float:
        """Depth between two RF samples, ``c / (2 f_s)``, m."""
        return self.sound_speed / (2 * self.sampling_frequency)

    @property
    def width_of_element(self) -> float:
        """:attr:`element_width`, or the pitch where it is not given, m."""
        return self.element_width if self.element_width is not None else self.pitch

    @property
    def aperture(self) -> float:
        """Width of the array, ``elements · pitch``, m."""
        return self.elements * self.pitch

    def pulse_echo(self, samples: int | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The two-way (pulse-echo) waveform sampled at ``f_s``, MUST's model, unit peak.

        As in MUST's ``getpulse`` (Garcia 2022), the spectrum is the excitation —
        a sine of :attr:`excitation_cycles` periods at ``f_c``, whose spectrum is
        ``i[sinc(T(ω − ω_c)/2) − sinc(T(ω + ω_c)/2)]`` with ``T = cycles/f_c`` —
        times the probe's pulse-echo response, a generalised normal window
        ``exp(−(|ω − ω_c| / (ω_B / 2 / (ln 2)^{1/p}))^p)``, ``ω_B = B ω_c``,
        ``p = ln 126 / ln(2ω_c/ω_B)``, which is −6 dB at ``ω_c ± ω_B/2``.  It is
        synthesised on a fine frequency grid (FFT of 64× the pulse's length) and
        sampled at ``f_s``; ``samples`` defaults to where the waveform exceeds
        1/1023 of its peak (MUST's cut), centred on the peak of its envelope.

        Returns
        -------
        torch.Tensor
            ``(samples,)``.
        """
        fc, fs = self.centre_frequency, self.sampling_frequency
        duration = self.excitation_cycles / fc + 16 / (self.fractional_bandwidth * fc)
        length = 64 * max(64, math.ceil(duration * fs))
        frequency = torch.fft.rfftfreq(length, d=1 / fs, dtype=torch.float64)
        omega, omega_c = 2 * math.pi * frequency, 2 * math.pi * fc
        period = self.excitation_cycles / fc
        excitation = torch.sinc(period * (omega - omega_c) / (2 * math.pi)) - torch.sinc(period * (omega + omega_c) / (2 * math.pi))
        omega_b = self.fractional_bandwidth * omega_c
        power = math.log(126) / math.log(2 * omega_c / omega_b)
        response = torch.exp(-(((omega - omega_c).abs() / (omega_b / 2 / math.log(2) ** (1 / power))) ** power))
        # time-reversed, as MUST's getpulse reads it out
        waveform = torch.fft.fftshift(torch.fft.irfft(1j * excitation * response, n=length)).flip(0)
        waveform = waveform / waveform.abs().max()
        centre = int(torch.fft.ifft(torch.fft.fft(waveform) * _analytic_weights(length)).abs().argmax())
        if samples is None:
            significant = (waveform.abs() > 1 / 1023).nonzero().flatten()
            half = int(max(centre - significant[0], significant[-1] - centre))
            samples = 2 * half + 1
        samples = check_int(samples, "samples")
        start = centre - (samples - 1) // 2
        index = torch.arange(start, start + samples)
        inside = (index >= 0) & (index < length)
        pulse = torch.zeros(samples, dtype=torch.float64)
        pulse[inside] = waveform[index[inside]]
        return pulse.to(dtype)


def _analytic_weights(n: int) -> torch.Tensor:
    """Weights that turn an FFT into that of the analytic signal (positive frequencies doubled)."""
    weights = torch.zeros(n, dtype=torch.complex128)
    weights[0] = 1
    weights[1 : (n + 1) // 2] = 2
    if n % 2 == 0:
        weights[n // 2] = 1
    return weights


#: probes of MUST's ``getparam`` (values copied; ``Probe.from_pymust`` reads them from pymust itself)
PROBES = {
    # cardiac phased array (Verasonics P4-2v): the haze of the dehazing study is cardiac
    "P4-2v": Probe(2.72e6, 0.74, 4 * 2.72e6, 1540.0, 64, 3.0e-4, element_width=2.5e-4, name="P4-2v"),
    # linear array (Verasonics L11-5v)
    "L11-5v": Probe(7.6e6, 0.77, 4 * 7.6e6, 1540.0, 128, 3.0e-4, element_width=2.7e-4, name="L11-5v"),
}
