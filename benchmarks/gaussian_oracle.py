"""Samplers against the exact Gaussian posterior: the figures of README's accuracy table.

Run by hand: ``python benchmarks/gaussian_oracle.py [--seeds 3]``.  Prints JSON:
for each problem seed, the RMS posterior std, the pseudo-inverse's distance to the
posterior mean, and each estimate's RMS error (and spread) against the exact answer.
"""

from __future__ import annotations

import argparse
import json

import torch

import invsolve
from invsolve.operators import GaussianNoise, Mask, random_pixel_mask
from invsolve.priors import GaussianPrior


def rms(x: torch.Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


def one_problem(seed: int, size: int = 12, noise_std: float = 0.05, steps: int = 1000) -> dict:
    prior = GaussianPrior.squared_exponential((1, size, size), length_scale=1.5, std=1.0, mean=0.3)
    operator = Mask(random_pixel_mask((size, size), missing_fraction=0.5, seed=seed))
    y = GaussianNoise(noise_std)(operator(prior.sample_exact(1, seed=seed + 1)), seed=seed + 2)
    mean, cov = invsolve.gaussian_posterior(prior, operator, y, noise_std)
    std = rms(cov.diagonal().sqrt())
    common = dict(noise_std=noise_std, steps=steps, seed=0, progress=False)
    single = invsolve.reconstruct(y, operator, prior, "red-diff", **common)
    averaged = invsolve.reconstruct(y, operator, prior, "red-diff", n_samples=64, **common)
    dps = invsolve.reconstruct(y, operator, prior, "dps", n_samples=256, **common)
    return {
        "problem_seed": seed,
        "rms_posterior_std": std,
        "pinv_error": rms(operator.pinv(y) - mean),
        "red_diff_single_error": rms(single.image - mean),
        "red_diff_mean_of_64_error": rms(averaged.image - mean),
        "red_diff_run_spread": float(averaged.std.mean()),
        "dps_mean_of_256_error": rms(dps.image - mean),
        "dps_std_ratio": rms(dps.std) / std,
        "seconds": {"red_diff": single.info["seconds"], "dps_256": dps.info["seconds"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="number of problem seeds (default: %(default)s)")
    args = parser.parse_args()
    print(json.dumps([one_problem(seed) for seed in range(args.seeds)], indent=2))


if __name__ == "__main__":
    main()
