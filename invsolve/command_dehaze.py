"""``invsolve dehaze``: tissue and haze of a user's ultrasound frames, written as HDF5 with a PNG preview.

Two input domains, each with its pair of priors and its preset (:data:`DOMAINS`):

* **RF** — beamformed RF, depth along the rows: ``(H, W)`` or ``(frames, H, W)``
  in a ``.npy`` file or an HDF5 dataset (``--dataset``; by default zea's
  ``data/beamformed_data``, ``(frames, H, W, 1)``, or the file's only
  dataset), dehazed with ``us-tissue``/``us-haze`` as ``y = x + γh`` (``--gamma``
  required).  The frames should be sampled like the priors' training data —
  an axial sample every eighth of a wavelength (``f_s = 4 f_c``) and lateral
  lines half a wavelength apart — since the priors know speckle of that size
  in pixels.  Channel data — PICMUS files and zea files with
  ``data/raw_data`` (:func:`~invsolve.datasets.io.read_ultrasound_hdf5`) — are
  beamformed first onto exactly that grid
  (:func:`~invsolve.operators.ultrasound.beamform_plane_waves`, pymust's
  delay-and-sum at F# 1.5, transmits compounded; rows from the first recorded
  depth to the last, lines across the array), and the grid is written with
  the result.  I/Q data are refused (the priors model the oscillating signal).
* **B-mode** — an ultrasound DICOM image or cine (``.dcm``,
  :func:`~invsolve.datasets.io.read_bmode_dicom`): grey levels in ``[0, 1]``,
  dehazed at their own pixel size with ``us-tissue-bmode``/``us-haze-bmode`` as
  ``y = x + h`` (no ``--gamma``: the haze prior learnt what haze adds).

The work is :func:`invsolve.dehaze` with the settings of the domain's preset
(``us-dehaze``, ``us-dehaze-bmode``; :mod:`invsolve.presets`) unless
``--steps``, ``--samples`` or ``--set`` say otherwise.  Written together
(staged, then renamed; nothing is left if anything fails): ``OUT``
(``.h5``/``.hdf5``: ``tissue``, ``haze`` and with several samples
``tissue_std``, each ``(frames, H, W)`` in the input's units, plus provenance
attributes) and ``<stem>.png`` (the first frame before and after and the
haze — B-mode images relative to the input's peak for RF, grey levels for
DICOM — and the tissue's standard deviation).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from invsolve._checks import check_output_file

__all__ = ["dehaze_file"]

#: HDF5 datasets of beamformed RF tried, in order, when --dataset is not given (zea's first)
_RF_DATASETS = ("data/beamformed_data",)
#: datasets of channel data, which are beamformed before dehazing
_CHANNEL_DATASETS = ("US/US_DATASET0000/data/real", "data/raw_data")
#: per input domain: the default priors, the preset of their settings, and the units of the results
DOMAINS = {
    "rf": {"priors": ("us-tissue", "us-haze"), "preset": "us-dehaze",
           "units": "the input's RF units; tissue + gamma * haze explains the input"},
    "bmode": {"priors": ("us-tissue-bmode", "us-haze-bmode"), "preset": "us-dehaze-bmode",
              "units": "grey levels in [0, 1] as the input's; tissue + haze explains the input"},
}
#: the pixel of us-tissue/us-haze in wavelengths, (axial, lateral): f_s = 4 f_c, lines λ/2 apart
#: (configs/us-tissue.toml); channel data are beamformed onto it
PRIOR_PIXEL_WAVELENGTHS = (1 / 8, 1 / 2)
#: receive F-number of that beamforming (the training data's)
_FNUMBER = 1.5
_OUTPUT_SUFFIXES = (".h5", ".hdf5")


def _holds_channel_data(path: Path, dataset: str | None) -> bool:
    """Whether ``path`` is an HDF5 file of channel data and no beamformed RF (and no dataset was named)."""
    if dataset is not None or not path.name.lower().endswith((".h5", ".hdf5")):
        return False
    from invsolve.datasets.io.checks import open_hdf5

    with open_hdf5(path, "--input") as file:
        return any(key in file for key in _CHANNEL_DATASETS) and not any(key in file for key in _RF_DATASETS)


def _steps(start: float, stop: float, step: float) -> torch.Tensor:
    """``start, start + step, …`` up to ``stop`` included (to rounding), float64."""
    count = math.floor((stop - start) / step + 1e-9) + 1
    return start + step * torch.arange(max(count, 0), dtype=torch.float64)


def _beamformed(path: Path) -> tuple[torch.Tensor, dict[str, Any]]:
    """The channel data of a PICMUS or zea file beamformed onto the priors' grid: frames ``(F, H, W)`` and the grid."""
    from invsolve.datasets.io.ultrasound import read_ultrasound_hdf5
    from invsolve.operators.ultrasound import beamform_plane_waves

    acquisition = read_ultrasound_hdf5(path, "--input")
    data = acquisition.channel_data
    if data.is_complex():
        raise ValueError(f"--input {path} holds I/Q channel data: the dehazing priors model real RF; give RF channel data")
    speed, centre = acquisition.sound_speed, acquisition.center_frequency
    wavelength = speed / centre
    axial, lateral_step = (fraction * wavelength for fraction in PRIOR_PIXEL_WAVELENGTHS)
    first = speed * float(acquisition.initial_times.max()) / 2
    last = speed * (float(acquisition.initial_times.min()) + (data.shape[2] - 1) / acquisition.sampling_frequency) / 2
    depths = _steps(max(first, axial), last, axial)
    x = acquisition.probe_geometry[:, 0]
    lateral = _steps(float(x.min()), float(x.max()), lateral_step)
    frames = beamform_plane_waves(
        data, sampling_frequency=acquisition.sampling_frequency, centre_frequency=centre, sound_speed=speed,
        element_positions=acquisition.probe_geometry, angles=acquisition.angles, initial_times=acquisition.initial_times,
        depths=depths, lateral=lateral, fnumber=_FNUMBER,
    )
    grid = {"depth_m": depths, "lateral_m": lateral, "beamformed": f"{acquisition.layout} channel data, F# {_FNUMBER}, "
            f"{data.shape[1]} transmit(s) compounded"}
    return frames[:, 0], grid


def _frames(data: torch.Tensor, source: str, frames: str | None) -> torch.Tensor:
    """The RF frames ``(F, 1, H, W)`` float64 of an array read from the input."""
    if data.is_complex():
        raise ValueError(
            f"--input {source} holds complex (I/Q) data: the dehazing priors model real RF; give the RF frames"
        )
    if data.dim() == 4 and data.shape[-1] == 1:  # zea's (frames, z, x, 1)
        data = data[..., 0]
    if data.dim() == 4 and data.shape[-1] == 2:
        raise ValueError(f"--input {source} holds I/Q pairs (last axis 2): the dehazing priors model real RF")
    if data.dim() == 2:
        data = data[None]
    if data.dim() != 3:
        raise ValueError(
            f"--input {source} must hold RF frames (H, W) or (frames, H, W), depth along H; got shape {tuple(data.shape)}"
        )
    if frames is not None:
        start, sep, stop = frames.partition(":")
        try:
            chosen = slice(int(start) if start else None, int(stop) if stop else None) if sep else slice(int(start), int(start) + 1)
        except ValueError:
            raise ValueError(f"--frames must be K or START:STOP (frame numbers from 0), got {frames!r}") from None
        count = data.shape[0]
        data = data[chosen]
        if data.shape[0] == 0:
            raise ValueError(f"--frames {frames} selects no frame of the {count} in --input {source}")
    return data[:, None].to(torch.float64)


def _read_dicom(path: Path) -> tuple[torch.Tensor, str]:
    """Grey frames ``(F, H, W)`` in ``[0, 1]`` of an ultrasound DICOM image or cine."""
    from invsolve.datasets.io.ultrasound import read_bmode_dicom

    cine = read_bmode_dicom(path, "--input")
    return cine.frames.reshape(-1, *cine.frames.shape[-2:]), cine.source


def dehaze_file(
    input: str,
    out: str,
    gamma: float | None = None,
    *,
    dataset: str | None = None,
    frames: str | None = None,
    tissue_prior: str | None = None,
    haze_prior: str | None = None,
    steps: int | None = None,
    samples: int | None = None,
    settings: Sequence[str] = (),
    seed: int = 0,
    noise_std: float | None = None,
    dynamic_range: float = 60.0,
    progress: bool = True,
) -> dict[str, Any]:
    """Dehaze the frames of ``input`` and write ``out`` and its PNG (module docstring).

    Parameters
    ----------
    input, out : str
        The RF, channel-data or DICOM file and the HDF5 file to write (``.h5``/``.hdf5``).
    gamma : float, optional
        RF: the haze level ``γ`` in ``[0, 1]`` of ``y = x + γh`` (required).
        DICOM: not given (the grey-level model is ``y = x + h``).
    dataset, frames : str, optional
        The HDF5 dataset; frames ``K`` or ``START:STOP``.
    tissue_prior, haze_prior : str, optional
        Embedded names or checkpoint paths (default: the domain's pair, :data:`DOMAINS`).
    steps, samples : int, optional
        Override the preset's.
    settings : sequence of str
        ``KEY=VALUE`` hyperparameters of ``"joint-dehaze"``.
    seed : int
    noise_std : float, optional
        Noise of the normalised frames (default: the preset's).
    dynamic_range : float
        Of the PNG's B-mode images of RF, dB.
    progress : bool

    Returns
    -------
    dict
        What was read, the settings used, and the files written.
    """
    from invsolve.command_reconstruct import load_prior_option, parse_hyperparameters
    from invsolve.datasets.io.ultrasound import write_ultrasound_hdf5
    from invsolve.dehazing import bmode_against, dehaze, dehaze_grey_levels
    from invsolve.files import save_png
    from invsolve.measurement_files import read_array
    from invsolve.output_files import StagedFiles
    from invsolve.presets import PRESETS

    target = check_output_file(out, "--out")
    if not target.name.lower().endswith(_OUTPUT_SUFFIXES):
        raise ValueError(f"--out must be an HDF5 file (.h5 or .hdf5), got {out!r}")
    preview = target.with_suffix(".png")
    check_output_file(preview, "the PNG preview")
    source = Path(input)
    if not source.exists():
        raise FileNotFoundError(f"--input {source} does not exist")
    domain = "bmode" if source.is_dir() or source.name.lower().endswith(".dcm") else "rf"
    if domain == "bmode":
        if gamma is not None:
            raise ValueError(
                "--gamma applies to RF input: B-mode frames (DICOM) are dehazed with the grey-level model y = x + h, "
                "whose haze prior learnt the haze's level; omit --gamma"
            )
        gamma = 1.0
    elif gamma is None:
        raise ValueError("--gamma is required for RF input: the haze level gamma in [0, 1] of y = x + gamma*h")
    elif not 0 <= gamma <= 1:
        raise ValueError(f"--gamma must be in [0, 1] (the haze level of y = x + gamma*h), got {gamma!r}")
    grid: dict[str, Any] = {}
    if domain == "bmode":
        data, described = _read_dicom(source)
    elif _holds_channel_data(source, dataset):
        data, grid = _beamformed(source)
        described = f"{source} (beamformed)"
    else:
        read = read_array(source, "--input", dataset=dataset, prefer=_RF_DATASETS, allow_fastmri=False)
        data, described = read.data, read.source
    image = _frames(data, described, frames)
    choice = DOMAINS[domain]
    hyperparameters = {**PRESETS[choice["preset"]].samplers["joint-dehaze"], **parse_hyperparameters(settings)}
    preset_steps, preset_samples = hyperparameters.pop("steps"), hyperparameters.pop("n_samples")
    chosen_steps = preset_steps if steps is None else steps
    chosen_samples = preset_samples if samples is None else samples
    if noise_std is not None:
        hyperparameters["noise_std"] = noise_std
    tissue, tissue_name = load_prior_option(tissue_prior or choice["priors"][0])
    haze, haze_name = load_prior_option(haze_prior or choice["priors"][1])
    options = {"steps": chosen_steps, "n_samples": chosen_samples, "seed": seed, "progress": progress, **hyperparameters}
    if domain == "bmode":
        result = dehaze_grey_levels(image, tissue, haze, **options)
    else:
        result = dehaze(image, tissue, haze, gamma, **options)
    used = {"steps": chosen_steps, "n_samples": chosen_samples, **hyperparameters}
    arrays = {"tissue": result.tissue[:, 0], "haze": result.haze[:, 0]}
    arrays.update({key: value for key, value in grid.items() if key != "beamformed"})
    if result.tissue_std is not None:
        arrays["tissue_std"] = result.tissue_std[:, 0]
    attrs = {
        "input": described,
        "gamma": gamma,
        **({"beamformed": grid["beamformed"]} if grid else {}),
        "tissue_prior": tissue_name,
        "haze_prior": haze_name,
        "sampler": "joint-dehaze",
        "settings_json": json.dumps(used, sort_keys=True),
        "seed": seed,
        "units": choice["units"],
    }
    parts = (image, result.tissue, result.haze)
    if domain == "rf":
        images = [bmode_against(part[:1], image[:1], dynamic_range) for part in parts]
        windows: list[tuple[float, float] | None] = [(-dynamic_range, 0.0)] * 3
        units = ["dB"] * 3
        haze_title = f"haze h (input = tissue + {gamma:g} h)"
    else:
        images = [part[:1] for part in parts]
        windows, units = [(0.0, 1.0), (0.0, 1.0), (-0.5, 0.5)], ["grey level"] * 3
        haze_title = "haze h (input = tissue + h)"
    titles = ["input (hazy)", "dehazed tissue", haze_title]
    colormaps = ["gray"] * 3
    if result.tissue_std is not None:
        images.append(result.tissue_std[:1])
        titles.append(f"tissue std ({chosen_samples} samples)")
        windows.append(None)
        units.append("RF units" if domain == "rf" else "grey level")
        colormaps.append("magma")
    staged = StagedFiles()
    try:
        staged.write(target, lambda path: write_ultrasound_hdf5(path, arrays, attrs))
        staged.write(preview, lambda path: save_png(path, images, titles, windows, unit=units, colormap=colormaps,
                                                  figure_title=f"{source.name}: frame 0 of {image.shape[0]}"))
        staged.commit()
    except BaseException:
        staged.discard()
        raise
    return {
        "input": described,
        "domain": domain,
        **({"beamformed": grid["beamformed"]} if grid else {}),
        "frames": image.shape[0],
        "frame_shape": list(image.shape[-2:]),
        "gamma": gamma,
        "priors": [tissue_name, haze_name],
        "settings": used,
        "patches_per_frame": result.info["patches_per_frame"],
        "files": [os.fspath(target), os.fspath(preview)],
    }
