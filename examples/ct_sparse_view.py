"""Sparse-view CT of a real slice: filtered backprojection against total variation.

pydicom's bundled ``CT_small.dcm`` (128×128, 0.66 mm pixels) is converted from
Hounsfield units to linear attenuation, projected in a parallel-beam geometry
with 8, 16 and 32 views over 180°, corrupted with Poisson photon noise
(10⁵ photons per detector pixel), and reconstructed with filtered
backprojection (Hann window) and with TV-regularised least squares.  Writes
``ct_sparse_view.png`` (one row per view count) and ``metrics.json``.

Run: ``python examples/ct_sparse_view.py [--out ct-sparse-view] [--no-progress]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from invsolve import tv_reconstruct
from invsolve.datasets import CT_SMALL_PIXEL_MM, ct_small_slice
from invsolve.files import save_json, save_png
from invsolve.metrics import psnr, rmse
from invsolve.operators import PoissonNoise
from invsolve.operators.ct import (
    ParallelBeam2D,
    RayTransform,
    attenuation_to_hounsfield,
    fbp,
    hounsfield_to_attenuation,
    sparse_view_angles,
)

VIEWS = (8, 16, 32)
TV_WEIGHT = 2e-2  # λ in (line integral)² per unit of TV (1/mm × pixels); best of 1e-3..4e-2 on 16 views
DISPLAY_HU = (-200.0, 300.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="ct-sparse-view", help="output folder (default: %(default)s)")
    parser.add_argument("--tv-iterations", type=int, default=300)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    truth_hu = ct_small_slice()[None].double()  # (1, 1, 128, 128)
    truth = hounsfield_to_attenuation(truth_hu)
    size = truth.shape[-1]
    noise = PoissonNoise(incident_flux=1e5)
    images, titles, metrics = [], [], {"image": "pydicom CT_small.dcm", "incident_flux": 1e5, "views": {}}
    for n_views in VIEWS:
        geometry = ParallelBeam2D((size, size), sparse_view_angles(n_views), extent=size * CT_SMALL_PIXEL_MM)
        operator = RayTransform(geometry)
        y = noise(operator(truth), seed=n_views)
        reconstructions = {
            "fbp": fbp(y, operator, filter="hann"),
            "tv": tv_reconstruct(y, operator, TV_WEIGHT, iterations=args.tv_iterations, progress=not args.no_progress),
        }
        metrics["views"][n_views] = {}
        row = [truth_hu]
        for name, mu in reconstructions.items():
            hu = attenuation_to_hounsfield(mu)
            metrics["views"][n_views][name] = {
                "psnr_db": float(psnr(hu, truth_hu, data_range=2000.0)),
                "rmse_hu": float(rmse(hu, truth_hu)),
            }
            row.append(hu)
        images += row
        scores = metrics["views"][n_views]
        titles += [
            "truth",
            f"FBP, {n_views} views  {scores['fbp']['psnr_db']:.1f} dB",
            f"TV, {n_views} views  {scores['tv']['psnr_db']:.1f} dB",
        ]
    out = Path(args.out)
    save_png(
        out / "ct_sparse_view.png",
        images,
        titles,
        value_range=DISPLAY_HU,
        columns=3,
        figure_title="Sparse-view CT of CT_small.dcm, 10⁵ photons; PSNR over 2000 HU",
        unit="HU",
    )
    save_json(out / "metrics.json", metrics)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
