"""Hyperparameters of ``invsolve demo`` (sparse-view CT): TV weight and RED-Diff settings.

The demo's TV weight and RED-Diff settings are the best PSNR of this grid
on four held-out random-ellipse phantoms (seeds 2 000 000..2 000 003) in
the demo's own scan (:func:`invsolve.demo.ct_demo_scan`), not on the images
the demo shows.  Run by hand:
``python benchmarks/ct_demo_tuning.py [--views 16] [--steps 1000]``.
Prints JSON: mean PSNR (over 2000 HU) and SSIM of FBP, of each TV weight,
of each RED-Diff setting and of DPS at a few step sizes (the sampler the
demo does not use: it scores below RED-Diff here), with seconds; and records
it in ``benchmarks/results/ct_demo_tuning.json`` (see
``benchmarks/_recording.py``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time

import torch

import invsolve
from _recording import results_path, run_metadata, save_run
from invsolve.demo import ct_demo_prior, ct_demo_scan, ct_demo_scores, held_out_phantoms
from invsolve.operators.ct import fbp

TV_WEIGHTS = (3e-3, 1e-2, 3e-2)
OBS_WEIGHTS = (0.003, 0.01, 0.03, 0.1)
REGULARIZATIONS = (0.25, 1.0)
DPS_STEP_SIZES = (0.03, 0.1, 0.3)


def scores(image: torch.Tensor, truth: torch.Tensor, seconds: float) -> dict:
    """Mean PSNR and SSIM of the demo's scoring over the phantoms, with the seconds taken."""
    per_image = ct_demo_scores(image, truth)
    return {
        "psnr_db": statistics.fmean(per_image["psnr_db"]),
        "ssim": statistics.fmean(per_image["ssim"]),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1000, help="RED-Diff steps (default: %(default)s)")
    parser.add_argument("--dps-steps", type=int, default=500, help="DPS steps (default: %(default)s)")
    parser.add_argument("--out", help="record the JSON here (default: benchmarks/results/ct_demo_tuning[.<options>].json)")
    args = parser.parse_args()
    path = results_path("ct_demo_tuning", parser, args)
    metadata = run_metadata()
    truth = held_out_phantoms(4, 2_000_000)
    operator, y = ct_demo_scan(truth, args.views, seed=1)
    prior = ct_demo_prior()
    fbp_scores = scores(fbp(y, operator, filter="hann"), truth, 0.0)
    results = {
        "views": args.views,
        "steps": args.steps,
        "dps_steps": args.dps_steps,
        "fbp": fbp_scores,
        "tv": {},
        "red_diff": [],
        "dps": [],
    }
    for weight in TV_WEIGHTS:
        start = time.perf_counter()
        image = invsolve.tv_reconstruct(y, operator, weight, iterations=300, progress=False)
        results["tv"][weight] = scores(image, truth, time.perf_counter() - start)
    for obs_weight, regularization in itertools.product(OBS_WEIGHTS, REGULARIZATIONS):
        settings = dict(obs_weight=obs_weight, regularization=regularization)
        result = invsolve.reconstruct(y, operator, prior, "red-diff", steps=args.steps, seed=0, progress=False, **settings)
        results["red_diff"].append({**settings, **scores(result.image, truth, result.info["seconds"])})
        print(json.dumps(results["red_diff"][-1]), flush=True)
    for step_size in DPS_STEP_SIZES:
        result = invsolve.reconstruct(y, operator, prior, "dps", steps=args.dps_steps, seed=0, progress=False, step_size=step_size)
        results["dps"].append({"step_size": step_size, **scores(result.image, truth, result.info["seconds"])})
        print(json.dumps(results["dps"][-1]), flush=True)
    best = max(results["red_diff"], key=lambda entry: entry["psnr_db"])
    results["best"] = {"tv_weight": max(results["tv"], key=lambda w: results["tv"][w]["psnr_db"]), "red_diff": best}
    print(json.dumps(results, indent=2))
    save_run(path, metadata, results)
    print(f"recorded in {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
