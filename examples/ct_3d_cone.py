"""Sparse-view cone-beam CT of a 3D phantom with a 2D diffusion prior: FDK against the slice-augmented DDS.

A random-ellipsoid volume (64×64×S voxels of 1.32 mm, attenuation in 1/mm, the
distribution whose slices the embedded ``ct-ellipses`` prior was trained on;
test seed 3 000 000) is scanned by a circular cone-beam scanner with few views
over 360° and 10⁵ photons per detector pixel.  It is reconstructed by FDK and by
``dds-3d``: the 2D prior on every axial slice (``axis=2``: the volume's axes are
``x, y, z``), the slices coupled by TV along ``z`` (λ, ρ from the validation sweep
of ``benchmarks/recon_3d.py``), several posterior samples.  Writes:

* ``dds3d_mean.nii.gz``, ``dds3d_std.nii.gz``, ``fdk.nii.gz`` — volumes in HU with the
  voxel spacing in the NIfTI affine (mm);
* ``orthogonal_slices.png`` — axial, coronal and sagittal slices of the truth, FDK,
  the posterior mean and its per-voxel std (own scale, HU);
* ``metrics.json`` — PSNR and SSIM over the volume, network evaluations, seconds.

Run: ``python examples/ct_3d_cone.py [--out ct-3d-cone] [--slices 32] [--views 8] [--samples 4]
[--no-progress]`` (about 3 minutes on 2 CPU cores at the defaults); ``--quick`` for a
seconds-long smoke run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import invsolve
from invsolve.demo import cone_beam_demo_scan
from invsolve.files import atomic_write, save_json, save_png
from invsolve.metrics import psnr, ssim
from invsolve.operators.ct import MU_WATER_PER_MM, attenuation_to_hounsfield
from invsolve.output_files import write_image
from invsolve.priors import pretrained

SIDE = 64  # the prior's slices are 64×64
TEST_SEED = 3_000_000
TV_WEIGHT, RHO = 4e-4, 5e-3  # validation sweep of benchmarks/recon_3d.py (docs/benchmarks/sweep_recon_3d.jsonl)
DISPLAY_HU = (-1000.0, 1000.0)


def orthogonal(volume: torch.Tensor) -> list[torch.Tensor]:
    """Axial (middle z), coronal (middle y) and sagittal (middle x) slices of ``(1, 1, X, Y, Z)``."""
    body = volume[0, 0]
    x, y, z = (n // 2 for n in body.shape)
    return [body[:, :, z], body[:, y, :], body[x, :, :]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="ct-3d-cone", help="output folder (default: %(default)s)")
    parser.add_argument("--slices", type=int, default=32, help="axial slices (default: %(default)s)")
    parser.add_argument("--views", type=int, default=8, help="views over 360° (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=4, help="posterior samples (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=50, help="dds-3d steps (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="8 slices, 10 steps, 2 samples: a smoke run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args()
    if args.quick:
        args.slices, args.steps, args.samples = 8, 10, 2
    out = Path(args.out)

    truth, operator, y, noise_std = cone_beam_demo_scan(args.slices, args.views, TEST_SEED, SIDE)
    started = time.perf_counter()
    fdk = operator.fbp(y)
    fdk_seconds = time.perf_counter() - started
    result = invsolve.reconstruct(
        y, operator, pretrained("ct-ellipses"), "dds-3d", axis=2, tv_weight=TV_WEIGHT, rho=RHO,
        noise_std=noise_std, steps=args.steps, n_samples=args.samples, seed=0, progress=not args.no_progress,
    )
    window = float(truth.max() - truth.min())

    def scores(volume: torch.Tensor) -> dict[str, float]:
        return {"psnr_db": float(psnr(volume, truth, data_range=window)), "ssim": float(ssim(volume, truth, data_range=window))}

    hounsfield = {name: attenuation_to_hounsfield(volume) for name, volume in (("truth", truth), ("fdk", fdk), ("mean", result.image))}
    std_hu = result.std * 1000.0 / MU_WATER_PER_MM
    spacing = tuple(float(size) for size in operator.geometry.voxel_size)  # isotropic: CT_small's field over 64 voxels
    for name, volume in (("dds3d_mean", hounsfield["mean"]), ("dds3d_std", std_hu), ("fdk", hounsfield["fdk"])):
        atomic_write(out / f"{name}.nii.gz", lambda tmp, v=volume: write_image(tmp, ".nii.gz", v[0, 0], spacing, name, {}))
    metrics = {
        "volume": f"random ellipsoids, {SIDE}×{SIDE}×{args.slices} voxels of {spacing[0]:.3f} mm, seed {TEST_SEED}",
        "views": args.views,
        "fdk": {**scores(fdk), "seconds": fdk_seconds},
        "dds3d_mean": {
            **scores(result.image),
            "samples": args.samples,
            "network_evaluations_per_slice": result.info["network_evaluations"] * args.samples,
            "seconds": result.info["seconds"],
            "mean_std_hu": float(std_hu.mean()),
        },
    }
    save_json(out / "metrics.json", metrics)
    rows = [orthogonal(hounsfield["truth"]), orthogonal(hounsfield["fdk"]), orthogonal(hounsfield["mean"]), orthogonal(std_hu)]
    images = [image for row in zip(*rows) for image in row]
    names = ["truth", f"FDK, {metrics['fdk']['psnr_db']:.1f} dB", f"dds-3d mean of {args.samples}, "
             f"{metrics['dds3d_mean']['psnr_db']:.1f} dB", "dds-3d posterior std"]
    titles = [f"{view}: {name}" for view in ("axial", "coronal", "sagittal") for name in names]
    top = float(std_hu.max())
    save_png(
        out / "orthogonal_slices.png", images, titles, value_range=[DISPLAY_HU, DISPLAY_HU, DISPLAY_HU, (0.0, top)] * 3,
        columns=4, figure_title=f"Cone beam, {args.views} views: orthogonal slices",
        unit=["HU", "HU", "HU", "HU (std)"] * 3, colormap=["gray", "gray", "gray", "magma"] * 3,
    )
    print(metrics)


if __name__ == "__main__":
    main()
