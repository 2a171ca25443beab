"""The sweeps behind `invsolve.presets`: each sampler's settings per task, chosen on a validation split.

``--task ct-sparse``: the scan of ``invsolve demo`` (16 parallel-beam views over 180°,
10⁵ photons, post-log) of the four *validation* phantoms of
``benchmarks/ct_demo_tuning.py`` (seeds 2 000 000..2 000 003; the test phantoms of
``benchmarks/samplers.py`` and the demo's images are never used), the embedded
``ct-ellipses`` prior, a Gaussian likelihood at the data's RMS post-log noise level.
For each sampler a small grid of settings; each run draws ``--samples`` samples and is
scored by the mean PSNR (2000 HU) of their mean over the phantoms. Prints one JSON line
per run and, last, the best setting per sampler, which is what the preset holds.
(RED-Diff's preset comes from ``benchmarks/ct_demo_tuning.py``, which sweeps it.)

    python benchmarks/sweep_presets.py --task ct-sparse [--sampler dds]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics

import invsolve
from invsolve.demo import ct_demo_prior, ct_demo_scan, ct_demo_scores, held_out_phantoms
from invsolve.operators import PoissonNoise

VALIDATION_SEED = 2_000_000
INCIDENT_FLUX = 1e5
#: task → sampler → (grid of hyperparameters incl. steps, samples per run)
GRIDS = {
    "ct-sparse": {
        "dds": ({"steps": [50, 100], "cg_iterations": [5, 10]}, 4),
        "dps": ({"steps": [250], "step_size": [0.03, 0.1, 0.3]}, 1),
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(GRIDS), default="ct-sparse")
    parser.add_argument("--sampler", action="append", help="sampler(s) of the task's grid (default all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    truth = held_out_phantoms(4, VALIDATION_SEED)
    operator, y = ct_demo_scan(truth, 16, seed=1)
    noise_std = float(PoissonNoise(INCIDENT_FLUX).variance(y).mean().sqrt())
    prior = ct_demo_prior()
    best = {}
    for sampler, (grid, samples) in GRIDS[args.task].items():
        if args.sampler and sampler not in args.sampler:
            continue
        for values in itertools.product(*grid.values()):
            settings = dict(zip(grid, values))
            result = invsolve.reconstruct(
                y, operator, prior, sampler, noise_std=noise_std, n_samples=samples, seed=args.seed,
                progress=False, **settings,
            )
            entry = {
                "task": args.task,
                "sampler": sampler,
                "settings": settings,
                "samples": samples,
                "psnr_db": statistics.fmean(ct_demo_scores(result.image, truth)["psnr_db"]),
                "network_evaluations": result.info["network_evaluations"] * samples,
                "seconds": result.info["seconds"],
            }
            if samples > 1:
                entry["single_sample_psnr_db"] = statistics.fmean(ct_demo_scores(result.samples[:, 0], truth)["psnr_db"])
            print(json.dumps(entry), flush=True)
            if sampler not in best or entry["psnr_db"] > best[sampler]["psnr_db"]:
                best[sampler] = entry
    print(json.dumps({"best": best}, indent=2))


if __name__ == "__main__":
    main()
