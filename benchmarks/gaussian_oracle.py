"""Every sampler against the exact posterior of a Gaussian prior, on every oracle problem.

For each sampler and each of `invsolve.oracle.ORACLE_PROBLEMS` ("mask": 12×12
inpainting, "ct": an 8×8 12-view ray transform, "mri": fully sampled
single-coil MRI of a complex 8×8 image) this draws many samples (or runs,
for the point estimator RED-Diff) with the settings of the oracle tests and
prints, as JSON:

* ``mean_error``: RMS error of the sample mean to the exact posterior mean,
  in units of the RMS posterior std (Monte-Carlo floor ``1/√n``);
* ``spread_ratio``: RMS per-pixel std of the samples over the exact one
  (1 for an exact sampler; for RED-Diff the spread of runs, optimiser noise);
* ``trace_ratio`` and ``top_variance_ratios``: the samples' total variance and
  their variance along the three leading eigenvectors of the exact posterior
  covariance, over the exact values (PnP-DM's exactness test);
* ``max_mean_z``: the largest per-pixel |mean error| in standard errors.

PnP-DM runs on priors with the EDM schedule (noise levels down to 0.002, so
that its coupling can get small; DDPM's linear schedule stops at 0.01).

    python benchmarks/gaussian_oracle.py                 # all samplers, all problems
    python benchmarks/gaussian_oracle.py --sampler dds   # one sampler
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

import invsolve
from invsolve.oracle import ORACLE_PROBLEMS, oracle_problem
from invsolve.priors import EDMSchedule

#: sampler → (keyword arguments of reconstruct, number of samples); the settings of the oracle tests
SETTINGS: dict[str, tuple[dict, int]] = {
    "red-diff": ({"steps": 1000}, 64),
    "dps": ({"steps": 1000}, 256),
    "dds": ({"steps": 50}, 512),
    "diffpir": ({"steps": 100}, 512),
    "daps": ({"steps": 100}, 256),
    "pnp-dm": ({"steps": 200, "rho_start": 1.0, "denoise_steps": 10}, 1000),
}
#: PnP-DM's final coupling per problem: small enough that its bias is below the
#: Monte-Carlo error, large enough to mix in 200 iterations (see README)
PNP_DM_RHO_MIN = {"mask": 0.05, "ct": 0.03, "mri": 0.02}


def moments(samples: torch.Tensor, mean: torch.Tensor, cov: torch.Tensor) -> dict[str, float | list[float]]:
    """Sample moments ``(n, *shape)`` against the exact ``mean`` and ``cov``."""
    n = samples.shape[0]
    flat = samples.reshape(n, -1).to(torch.float64)
    exact_std = cov.diagonal().sqrt()
    sample_mean = flat.mean(0)
    error = sample_mean - mean.reshape(-1)
    rms_std = float(exact_std.pow(2).mean().sqrt())
    sample_cov = torch.cov(flat.T)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    top = eigenvectors[:, -3:]
    return {
        "mean_error": float(error.pow(2).mean().sqrt()) / rms_std,
        "max_mean_z": float((error / (exact_std / math.sqrt(n))).abs().max()),
        "spread_ratio": float(sample_cov.diagonal().mean().sqrt()) / rms_std,
        "trace_ratio": float(sample_cov.trace() / cov.trace()),
        "top_variance_ratios": ((top.T @ sample_cov @ top).diagonal() / eigenvalues[-3:]).tolist(),
    }


def run(sampler: str, problem_name: str, seed: int = 0) -> dict:
    """One sampler on one oracle problem with the test settings."""
    settings, n = SETTINGS[sampler]
    settings = dict(settings)
    schedule = None
    if sampler == "pnp-dm":
        schedule = EDMSchedule()
        settings["rho_min"] = PNP_DM_RHO_MIN[problem_name]
    problem = oracle_problem(problem_name, schedule)
    started = time.perf_counter()
    result = invsolve.reconstruct(
        problem.y,
        problem.operator,
        problem.prior,
        sampler,
        noise_std=problem.noise_std,
        n_samples=n,
        max_batch=n,
        seed=seed,
        progress=False,
        **settings,
    )
    record = {
        "sampler": sampler,
        "problem": problem_name,
        "n_samples": n,
        "settings": settings,
        "network_evaluations_per_sample": result.info["network_evaluations"],
        "seconds": time.perf_counter() - started,
        **moments(result.samples[0], problem.mean, problem.cov),
    }
    if sampler == "red-diff":
        single = (result.samples[0, 0] - problem.mean[0]).pow(2).mean().sqrt()
        record["single_run_error"] = float(single) / float(problem.std.pow(2).mean().sqrt())
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sampler", choices=sorted(SETTINGS), action="append", help="sampler(s) to run (default all)")
    parser.add_argument("--problem", choices=ORACLE_PROBLEMS, action="append", help="problem(s) (default all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for sampler in args.sampler or list(SETTINGS):
        for problem_name in args.problem or ORACLE_PROBLEMS:
            print(json.dumps(run(sampler, problem_name, args.seed)), flush=True)


if __name__ == "__main__":
    main()
