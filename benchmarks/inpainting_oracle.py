"""Why RED-Diff and DPS land where they do in ``invsolve demo inpainting``.

Run by hand: ``python benchmarks/inpainting_oracle.py [--draws 8]`` (about 3 minutes on
2 cores).  Prints JSON and records it in ``benchmarks/results/inpainting_oracle.json``.

The demo inpaints CT_small.dcm (32², 60 % of the pixels and a rectangle hidden, 10 HU of
noise) with a stationary Gaussian prior fitted to the observed pixels, so the exact
posterior is known.  Two of its numbers need explaining: RED-Diff lands far from the
exact posterior mean, and the DPS mean scores *higher* than the exact posterior mean
against the truth.  This script measures:

1. ``demo``: the demo's own problem, with every estimate's RMS error against the truth
   and its distance from the exact posterior mean, per region (observed pixels,
   scattered hidden pixels, the hidden rectangle), in HU and in posterior standard
   deviations; and how far each estimate departs from the prior mean inside the
   rectangle (DPS's bias carries observed values deeper into it than the prior's
   2-pixel correlation allows).
2. ``prior_draws``: the same scan of ``--draws`` truths drawn from the prior itself.  The
   exact posterior mean minimises the expected squared error for such truths, so a
   sampler that beats it *on average here* would be a bug; on CT_small, a truth the
   prior does not describe, it can be beaten by a biased estimate.
3. ``red_diff_settings``: RED-Diff with the paper's settings (100 steps, Adam lr 0.1) and
   with 1000 steps at lr 0.01, to separate optimiser noise from the method's bias.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

import torch

from _recording import results_path, run_metadata, save_run
from invsolve.demo import inpainting_problem, region_errors
from invsolve.oracle import gaussian_posterior
from invsolve.reconstruct import reconstruct

_RED_DIFF_SETTINGS = {"paper (100 steps, lr 0.1)": {}, "1000 steps, lr 0.01": {"steps": 1000, "lr": 0.01}}


def rms(values: torch.Tensor) -> float:
    return float(values.pow(2).mean().sqrt())


def estimates(problem, seed: int, dps_samples: int, red_diff_settings: dict) -> dict[str, torch.Tensor]:
    """The exact posterior mean and std, DPS's mean and RED-Diff with each of ``red_diff_settings``."""
    mean, covariance = gaussian_posterior(problem.prior, problem.operator, problem.y, problem.noise_std)
    found = {"exact_mean": mean, "exact_std": covariance.diagonal().sqrt().reshape(mean.shape)}
    common = dict(noise_std=problem.noise_std, seed=seed, progress=False)
    found["dps_mean"] = reconstruct(problem.y, problem.operator, problem.prior, "dps", n_samples=dps_samples, **common).image
    for label, settings in red_diff_settings.items():
        found[f"red_diff: {label}"] = reconstruct(problem.y, problem.operator, problem.prior, "red-diff", **common, **settings).image
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="image side, as the demo (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="the demo's seed (default: %(default)s)")
    parser.add_argument("--dps-samples", type=int, default=16, help="DPS samples per mean (default: %(default)s)")
    parser.add_argument("--draws", type=int, default=8, help="truths drawn from the prior (default: %(default)s)")
    parser.add_argument("--out", help="record the JSON here (default: benchmarks/results/inpainting_oracle[.<options>].json)")
    args = parser.parse_args()
    path = results_path("inpainting_oracle", parser, args)
    metadata = run_metadata()

    problem = inpainting_problem(args.size, args.seed)
    found = estimates(problem, args.seed, args.dps_samples, _RED_DIFF_SETTINGS)
    exact_mean, exact_std = found.pop("exact_mean"), found.pop("exact_std")
    box = problem.regions["hidden_box"]
    prior_mean = float(problem.prior.to_physical(problem.prior.mean_network.reshape(1, *problem.prior.image_shape)).mean())
    demo = {
        name: {
            "by_region": region_errors(image, problem, exact_mean, exact_std),
            "box_departure_from_prior_mean_hu": rms(image[0, 0][box] - prior_mean),
        }
        for name, image in {"exact_mean": exact_mean, **found}.items()
    }

    draws = problem.prior.sample_exact(args.draws, seed=args.seed + 1000)
    errors: dict[str, list[float]] = {}
    for index in range(args.draws):
        drawn = inpainting_problem(args.size, args.seed, truth=draws[index : index + 1], prior=problem.prior)
        estimated = estimates(drawn, args.seed + index, args.dps_samples, {"paper (100 steps, lr 0.1)": {}})
        estimated.pop("exact_std")
        for name, image in estimated.items():
            errors.setdefault(name, []).append(rms(image - drawn.truth))
    prior_draws = {
        name: {"rmse_hu": values, "mean_rmse_hu": statistics.fmean(values)} for name, values in errors.items()
    }
    exact = errors["exact_mean"]
    for name, values in errors.items():
        prior_draws[name]["draws_where_exact_mean_is_closer"] = sum(e < v for e, v in zip(exact, values))

    results = {
        "settings": {"size": args.size, "seed": args.seed, "dps_samples": args.dps_samples, "draws": args.draws},
        "prior_mean_hu": prior_mean,
        "demo": demo,
        "prior_draws": prior_draws,
    }
    print(json.dumps(results, indent=2))
    save_run(path, metadata, results)
    print(f"recorded in {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
