"""Network evaluations saved by the analytic warm start, per sampler, on sparse-view CT.

Samplers that start from pure noise (DDS, DiffPIR, DPS, DAPS) can start at
``start_time`` from a draw of the closed-form posterior of the prior's
Gaussian fit (mean image and 64 principal components of its training data,
stored in the checkpoint; Wang & Vastola 2023).  This script measures what
that saves on the scan of ``invsolve demo`` (16 parallel-beam views, 10⁵
photons) of the four *validation* phantoms of
``benchmarks/ct_demo_tuning.py`` (seeds 2 000 000..2 000 003, never the
demo's images) with the embedded ``ct-ellipses`` prior:

* for each sampler, a full run (``start_time`` 1, its base step count) and
  warm runs at ``start_time`` t with ``round(steps·t)`` steps;
* at each t also a *cold* run with the same reduced step count from pure
  noise, so that a saving is credited to the warm start only when it beats
  simply taking fewer steps;
* ``saved_network_evaluations``: the base budget minus the smallest warm
  budget whose mean PSNR is within 0.1 dB of the full run (0 if none is).

Prints one JSON line per run, then a JSON summary per sampler, and records
every run and summary in ``benchmarks/results/warm_start.json`` (see
``benchmarks/_recording.py``; rewritten after each sampler, ``complete``
false until the last).

    python benchmarks/warm_start.py [--views 16] [--sampler dds ...] [--start-times 0.5 0.3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

import torch

import invsolve
from _recording import results_path, run_metadata, save_run
from invsolve.demo import ct_demo_prior, ct_demo_scan, ct_demo_scores, held_out_phantoms
from invsolve.operators import PoissonNoise
from invsolve.samplers import get_sampler

#: sampler → (base steps, hyperparameters); DPS's step size is its best on these phantoms
#: (benchmarks/ct_demo_tuning.py: the default 1.0 diverges with ‖A‖ ≈ 40)
BASE = {
    "dds": (50, {}),
    "diffpir": (100, {}),
    "dps": (250, {"step_size": 0.1}),
    "daps": (50, {}),
}
START_TIMES = (0.8, 0.6, 0.5, 0.4, 0.3, 0.2)
#: the incident flux of the demo's scan (invsolve.demo)
INCIDENT_FLUX = 1e5


def mean_psnr(image: torch.Tensor, truth: torch.Tensor) -> float:
    return statistics.fmean(ct_demo_scores(image, truth)["psnr_db"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=16)
    parser.add_argument("--sampler", choices=sorted(BASE), action="append", help="sampler(s) (default all)")
    parser.add_argument(
        "--start-times", type=float, nargs="+", default=list(START_TIMES), help="warm start times (default: %(default)s)"
    )
    parser.add_argument("--out", help="record the JSON here (default: benchmarks/results/warm_start[.<options>].json)")
    args = parser.parse_args()
    if not all(0 < start_time < 1 for start_time in args.start_times):
        parser.error(f"--start-times must lie in (0, 1), got {args.start_times}")
    path = results_path("warm_start", parser, args)
    metadata = run_metadata()
    samplers = args.sampler or list(BASE)
    recorded = {
        "settings": {"views": args.views, "samplers": samplers, "start_times": args.start_times},
        "runs": [],
        "summary": {},
    }
    truth = held_out_phantoms(4, 2_000_000)
    operator, y = ct_demo_scan(truth, args.views, seed=1)
    # one noise level for the Gaussian likelihood: the RMS post-log std of these data
    noise_std = float(PoissonNoise(INCIDENT_FLUX).variance(y).mean().sqrt())
    prior = ct_demo_prior()
    summary = recorded["summary"]
    for sampler in samplers:
        base_steps, settings = BASE[sampler]
        nfe = get_sampler(sampler, **settings).network_evaluations

        def run(steps: int, start_time: float | None) -> dict:
            result = invsolve.reconstruct(
                y, operator, prior, sampler, noise_std=noise_std, steps=steps, start_time=start_time,
                seed=0, progress=False, **settings,
            )
            record = {
                "sampler": sampler,
                "start_time": start_time,
                "steps": steps,
                "network_evaluations": nfe(steps),
                "psnr_db": mean_psnr(result.image, truth),
                "seconds": result.info["seconds"],
            }
            print(json.dumps(record), flush=True)
            recorded["runs"].append(record)
            return record

        full = run(base_steps, None)
        warm, cold = [], []
        for start_time in args.start_times:
            steps = max(get_sampler(sampler).min_steps, round(base_steps * start_time))
            warm.append(run(steps, start_time))
            cold.append(run(steps, None))
        good = [entry for entry in warm if entry["psnr_db"] >= full["psnr_db"] - 0.1]
        cold_good = [entry for entry in cold if entry["psnr_db"] >= full["psnr_db"] - 0.1]
        cheapest = min(good, key=lambda entry: entry["network_evaluations"]) if good else None
        cheapest_cold = min(cold_good, key=lambda entry: entry["network_evaluations"]) if cold_good else None
        summary[sampler] = {
            "full": full,
            "noise_std": noise_std,
            "cheapest_warm_within_0.1_db": cheapest,
            "cheapest_cold_within_0.1_db": cheapest_cold,
            "saved_network_evaluations": full["network_evaluations"] - cheapest["network_evaluations"] if cheapest else 0,
            "saved_beyond_fewer_cold_steps": (
                (cheapest_cold["network_evaluations"] if cheapest_cold else full["network_evaluations"])
                - (cheapest["network_evaluations"] if cheapest else full["network_evaluations"])
            ),
            "warm": [(entry["start_time"], entry["network_evaluations"], round(entry["psnr_db"], 2)) for entry in warm],
            "cold": [(entry["network_evaluations"], round(entry["psnr_db"], 2)) for entry in cold],
        }
        print(json.dumps({"summary": sampler, **summary[sampler]}), flush=True)
        save_run(path, metadata, recorded, complete=sampler == samplers[-1])
    print(f"recorded in {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
