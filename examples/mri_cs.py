"""Accelerated multi-coil MRI of a real brain slice: zero-filled vs CG-SENSE vs TV vs a diffusion prior.

dipy's ``t1_coronal_slice.npy`` (a 256×256 T1-weighted brain slice) gets a
smooth synthetic phase and 8 simulated receive coils (smooth complex
sensitivities around the head), is transformed to k-space with fastMRI's
centred orthonormal FFT, receives complex Gaussian noise, and is undersampled
with fastMRI random column masks at 4× (8 % centre) and 8× (4 % centre).
Coil maps are estimated from the undersampled data by ESPIRiT.  Writes
``mri_cs.png`` (one row per acceleration: the sampled k-space with the
unsampled columns marked, the truth and each reconstruction, magnitude over
the truth's maximum) and ``metrics.json`` with fastMRI's NMSE, PSNR and SSIM
of the magnitude images.

The embedded ``mri-brain`` diffusion prior is 64×64, so the diffusion
columns use the same acquisition at 64² (``mri_cs_64.png``,
``metrics.json["diffusion_64"]``): the slice area-averaged to 64², 8 coils,
the same noise and mask rules on 64 columns.  The prior knows magnitude
images, so the operator is ``CartesianMRI @ RealAsComplex`` with the phase of
a low-resolution SENSE reconstruction of the calibration lines; intensities
are scaled so that the 99.9th percentile of the CG-SENSE magnitude matches
the prior's window (120 a.u.), and back.  DDS with the settings of preset
``mri-cartesian`` (100 steps, 2 CG iterations) draws 4 samples; the column is
their mean.  Coil maps at 64²: ESPIRiT with 3×3 kernels where
the centre has ≥ 4 lines (4×), the low-resolution method otherwise (8×: 3 lines).

Run: ``python examples/mri_cs.py [--out mri-cs] [--no-progress] [--no-diffusion]``
(needs ``dipy``, part of the ``examples`` extra).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

import invsolve
from invsolve import cg_sense, tv_reconstruct
from invsolve.files import save_json, save_png
from invsolve.metrics import fastmri_nmse, fastmri_psnr, fastmri_ssim
from invsolve.datasets import t1_brain_slice
from invsolve.mri_prior import calibration_lines, prior_view
from invsolve.operators import ComplexAsChannels, GaussianNoise, channels_to_complex
from invsolve.operators.mri import (
    CartesianMRI,
    espirit_maps,
    estimate_coil_maps,
    fft_centered,
    random_mask,
    rss,
    simulated_coil_maps,
)
from invsolve.presets import PRESETS
from invsolve.priors import pretrained

COILS = 8
NOISE_STD = 2e-3  # per real component of k-space (the image peaks at 1)
SETTINGS = {4: 0.08, 8: 0.04}  # acceleration: centre fraction (fastMRI's pairs)
TV_WEIGHT = 2e-3  # λ per unit of TV; best of 5e-4..8e-3 on the 4× case
PRIOR_SIZE = 64  # the embedded mri-brain prior's image size
PRESET = "mri-cartesian"  # DDS: 100 steps, 2 CG iterations, the mean of 4 samples (invsolve.presets)
#: the reconstructions' names in the figures
LABELS = {"zero_filled": "zero-filled", "cg_sense": "CG-SENSE", "tv_sense": "TV-SENSE", "dds_mri_brain": "DDS + mri-brain"}


def scores_of(reference: torch.Tensor, image: torch.Tensor) -> dict[str, float]:
    """fastMRI's NMSE, PSNR and SSIM of a magnitude image against the reference."""
    return {
        "nmse": float(fastmri_nmse(reference, image)),
        "psnr_db": float(fastmri_psnr(reference, image)),
        "ssim": float(fastmri_ssim(reference, image)),
    }


def figure_row(
    y: torch.Tensor, mask: torch.Tensor, reference: torch.Tensor, results: dict, scores: dict, acceleration: int
) -> dict[str, list]:
    """One row of a figure, as ``save_png``'s per-image arguments.

    The sampled k-space (``log₁₀`` of its coil root-sum-of-squares, window
    from the decade of the noise level to that of the peak, unsampled
    columns marked), the truth and each reconstruction as magnitude over the
    truth's maximum (window 0 to 1).  ``y`` is ``(1, coils, H, W)``, ``mask``
    ``(W,)``, ``reference`` and ``results`` ``(H, W)`` magnitudes.
    """
    kspace = y[0].abs().square().sum(0).sqrt()
    peak = float(reference.max())
    others = len(results) + 1
    return {
        "images": [kspace.clamp_min(NOISE_STD / 100).log10(), reference / peak]
        + [image / peak for image in results.values()],
        "titles": [f"k-space at {acceleration}×", "truth"]
        + [f"{LABELS[name]}  {scores[name]['psnr_db']:.1f} dB" for name in results],
        "value_range": [(math.floor(math.log10(NOISE_STD)), math.ceil(math.log10(float(kspace.max()))))]
        + [(0.0, 1.0)] * others,
        "unit": ["log₁₀ k-space magnitude"] + ["magnitude / truth's maximum"] * others,
        "measured": [mask.expand_as(kspace)] + [None] * others,
    }


def save_figure(path: Path, rows: list[dict[str, list]], figure_title: str) -> None:
    """Save the rows of :func:`figure_row` as one PNG."""
    merged = {key: [entry for row in rows for entry in row[key]] for key in rows[0]}
    save_png(
        path, merged.pop("images"), merged.pop("titles"), columns=len(rows[0]["images"]), figure_title=figure_title,
        **merged,
    )


def diffusion_at_prior_size(tv_iterations: int, progress: bool) -> tuple[dict, list[dict[str, list]]]:
    """The acquisition at 64², reconstructed by zero filling, CG-SENSE, TV and DDS with ``mri-brain``."""
    prior = pretrained("mri-brain")
    size = (PRIOR_SIZE, PRIOR_SIZE)
    coil_images = simulated_coil_maps(size, COILS) * t1_brain_slice(PRIOR_SIZE)
    full_kspace = GaussianNoise(NOISE_STD)(fft_centered(coil_images), seed=0)
    reference = rss(coil_images)[0]
    metrics, rows = {}, []
    for acceleration, centre in SETTINGS.items():
        mask = random_mask(PRIOR_SIZE, centre, acceleration, seed=acceleration)
        y = full_kspace * mask
        # ESPIRiT with 3×3 kernels needs 4 calibration lines; 8× at 64² has 3
        lines = int(calibration_lines(mask).sum())
        maps = espirit_maps(y[0], mask, kernel_size=3) if lines >= 4 else estimate_coil_maps(y[0], mask)
        operator = CartesianMRI(mask, maps)
        sense = cg_sense(y, operator, iterations=30)
        tv = tv_reconstruct(
            y, operator @ ComplexAsChannels(operator.in_shape), TV_WEIGHT, iterations=tv_iterations,
            nonnegative=False, progress=progress,
        )
        # the prior sees the magnitude with the phase of a low-resolution SENSE image of the calibration
        # lines, the data scaled to put the CG-SENSE magnitude's 99.9th percentile at the window top (120 a.u.)
        view = prior_view(y, operator, prior, mask)
        diffusion = invsolve.reconstruct(
            y * view.scale,
            view.operator,
            prior,
            "dds",
            noise_std=NOISE_STD * view.scale,
            preset=PRESET,
            max_batch=4,
            progress=progress,
        )
        results = {
            "zero_filled": operator.rss(y)[0],
            "cg_sense": sense.abs()[0],
            "tv_sense": channels_to_complex(tv).abs()[0],
            "dds_mri_brain": view.to_image(diffusion.image).abs(),
        }
        scores = {name: scores_of(reference, image) for name, image in results.items()}
        metrics[acceleration] = {"coil_maps": "espirit" if lines >= 4 else "low-resolution", **scores}
        rows.append(figure_row(y, mask, reference, results, scores, acceleration))
    return metrics, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="mri-cs", help="output folder (default: %(default)s)")
    parser.add_argument("--tv-iterations", type=int, default=300)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--no-diffusion", action="store_true", help="skip the 64² diffusion-prior columns")
    args = parser.parse_args()

    truth = t1_brain_slice()
    shape = tuple(truth.shape[-2:])
    maps = simulated_coil_maps(shape, COILS)
    coil_images = maps * truth
    full_kspace = GaussianNoise(NOISE_STD)(fft_centered(coil_images), seed=0)
    # fastMRI's target: the root-sum-of-squares of the fully sampled (here noiseless) coil images,
    # which is also what SENSE with unit-norm (ESPIRiT) maps reconstructs.
    reference = rss(coil_images)[0]

    rows = []
    metrics: dict = {"image": "dipy t1_coronal_slice", "coils": COILS, "noise_std": NOISE_STD, "accelerations": {}}
    for acceleration, centre in SETTINGS.items():
        mask = random_mask(shape[1], centre, acceleration, seed=acceleration)
        y = full_kspace * mask
        estimated_maps = espirit_maps(y[0], mask)
        operator = CartesianMRI(mask, estimated_maps)
        results = {
            "zero_filled": operator.rss(y)[0],
            "cg_sense": cg_sense(y, operator, iterations=30).abs()[0],
            "tv_sense": channels_to_complex(
                tv_reconstruct(
                    y,
                    operator @ ComplexAsChannels(operator.in_shape),
                    TV_WEIGHT,
                    iterations=args.tv_iterations,
                    nonnegative=False,
                    progress=not args.no_progress,
                )
            ).abs()[0],
        }
        scores = {name: scores_of(reference, image) for name, image in results.items()}
        metrics["accelerations"][acceleration] = {
            "center_fraction": centre,
            "sampled_fraction": float(mask.float().mean()),
            **scores,
        }
        rows.append(figure_row(y, mask, reference, results, scores, acceleration))
    out = Path(args.out)
    save_figure(out / "mri_cs.png", rows, "8-coil MRI of a T1 brain slice, 256², ESPIRiT maps: magnitude, fastMRI PSNR")
    if not args.no_diffusion:
        by_acceleration, rows = diffusion_at_prior_size(args.tv_iterations, not args.no_progress)
        metrics["diffusion_64"] = {
            "prior": "mri-brain",
            "sampler": f"dds, preset {PRESET}",
            "settings": PRESETS[PRESET].samplers["dds"],
            "accelerations": by_acceleration,
        }
        save_figure(
            out / "mri_cs_64.png", rows, "The same scan at 64²: baselines and DDS with the mri-brain prior, fastMRI PSNR"
        )
    save_json(out / "metrics.json", metrics)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
