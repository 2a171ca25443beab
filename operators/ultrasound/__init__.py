"""Ultrasound: the probe, RF simulation, signal processing and haze.

:mod:`.probe` holds the transducer and its pulse (:class:`Probe`, presets
copied from the MUST toolbox), :mod:`.simulation` beamformed RF of scatterer
scenes (pymust as the reference, a torch convolution model for volume),
:mod:`.beamforming` delay-and-sum of plane-wave channel data (pymust),
:mod:`.phantoms` echogenicity scenes (layers, cysts, lesions, a beating
cavity), :mod:`.signal` μ-law companding, envelope detection, log-compressed
B-mode and time-gain compensation, :mod:`.haze` the chest-wall haze model and
the measurement ``y = x + γ·h`` on the stacked pair of tissue and haze
(Stevens et al., IEEE TMI 2024), :mod:`.scenes` random hazy scenes for
training, tuning and evaluation.  RF frames are ``(B, C, n_axial,
n_lateral)``: depth along the rows.
"""

from .beamforming import beamform_plane_waves
from .haze import HazyMeasurement, add_haze, simulate_haze
from .phantoms import EchoPhantom, echo_phantom
from .probe import PROBES, Probe
from .scenes import DISPLAY_DECIMATION, SPLITS, HazyScene, evaluation_grid, random_hazy_scene, split_seeds
from .signal import (
    MU_LAW,
    analytic_signal,
    bmode,
    decimated_envelope,
    envelope,
    grey_levels,
    log_compress,
    mu_law_compress,
    mu_law_expand,
    mu_law_slope,
    normalize_rf,
    time_gain_compensation,
)
from .simulation import ConvolutionSimulator, ImagingGrid, Scatterers, scatterers_from_map, simulate_rf_pymust

__all__ = [
    "Probe",
    "PROBES",
    "ImagingGrid",
    "Scatterers",
    "scatterers_from_map",
    "simulate_rf_pymust",
    "ConvolutionSimulator",
    "beamform_plane_waves",
    "EchoPhantom",
    "echo_phantom",
    "HazyMeasurement",
    "simulate_haze",
    "add_haze",
    "HazyScene",
    "random_hazy_scene",
    "SPLITS",
    "split_seeds",
    "evaluation_grid",
    "DISPLAY_DECIMATION",
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
