"""Ultrasound: the probe, RF signal processing and haze.

:mod:`.probe` holds the transducer and its pulse (:class:`Probe`, presets
copied from the MUST toolbox), :mod:`.signal` μ-law companding, envelope
detection, log-compressed B-mode and time-gain compensation, :mod:`.haze`
the chest-wall haze model and the measurement ``y = x + γ·h`` on the
stacked pair of tissue and haze (Stevens et al., IEEE TMI 2024).  RF frames
are ``(B, C, n_axial, n_lateral)``: depth along the rows.
"""

from .haze import HazyMeasurement, simulate_haze
from .probe import PROBES, Probe
from .signal import (
    MU_LAW,
    analytic_signal,
    bmode,
    envelope,
    log_compress,
    mu_law_compress,
    mu_law_expand,
    normalize_rf,
    time_gain_compensation,
)

__all__ = [
    "Probe",
    "PROBES",
    "HazyMeasurement",
    "simulate_haze",
    "MU_LAW",
    "mu_law_compress",
    "mu_law_expand",
    "normalize_rf",
    "analytic_signal",
    "envelope",
    "log_compress",
    "bmode",
    "time_gain_compensation",
]
