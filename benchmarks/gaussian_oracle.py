"""Every sampler against the exact posterior of a Gaussian prior, on every oracle problem.

For each sampler and each of the `invsolve.oracle.ORACLE_PROBLEMS` it runs on
(`oracle_problems_for`: "mask": 12×12 inpainting, "ct": an 8×8 12-view ray
transform, "mri": fully sampled single-coil MRI of a complex 8×8 image; the
two-prior sampler "joint-dehaze" on "haze": two 8×8 unknowns from their sum) this draws many samples (or runs,
for the point estimator RED-Diff) with the settings of the oracle tests
(`invsolve.oracle.ORACLE_SETTINGS`) and prints one JSON line each with
`invsolve.oracle.oracle_moments`: the error of the sample mean and the spread
of the samples against the exact posterior, the total variance and the
variance along the posterior's leading eigenvectors.  These are the figures
of the README's oracle table; tests/invsolve/test_sampler_oracle.py holds the
same runs to them.  The records are also written, with the run's metadata,
to ``benchmarks/results/gaussian_oracle.json`` (see ``benchmarks/_recording.py``).

    python benchmarks/gaussian_oracle.py                       # all samplers, all problems (~3 min)
    python benchmarks/gaussian_oracle.py --sampler dds --seed 1
"""

from __future__ import annotations

import argparse
import json
import sys

from _recording import results_path, run_metadata, save_run
from invsolve.oracle import ORACLE_PROBLEMS, ORACLE_SETTINGS, oracle_problems_for, run_oracle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sampler", choices=sorted(ORACLE_SETTINGS), action="append", help="sampler(s) (default all)")
    parser.add_argument("--problem", choices=ORACLE_PROBLEMS, action="append", help="problem(s) (default all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samplers (the problems are fixed)")
    parser.add_argument("--out", help="record the JSON here (default: benchmarks/results/gaussian_oracle[.<options>].json)")
    args = parser.parse_args()
    path = results_path("gaussian_oracle", parser, args)
    metadata = run_metadata()
    samplers, problems = args.sampler or list(ORACLE_SETTINGS), args.problem or list(ORACLE_PROBLEMS)
    recorded = {"settings": {"samplers": samplers, "problems": problems, "seed": args.seed}, "records": []}
    for sampler in samplers:
        for problem_name in (name for name in problems if name in oracle_problems_for(sampler)):
            record = run_oracle(sampler, problem_name, args.seed)
            print(json.dumps(record), flush=True)
            recorded["records"].append(record)
    save_run(path, metadata, recorded)
    print(f"recorded in {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
