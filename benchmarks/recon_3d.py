"""3D sparse-view CT from the 2D prior ``ct-ellipses``: dds-3d, slice-wise DDS, 3D TV and mbir in one run.

Run by hand::

    python benchmarks/recon_3d.py [--slices 64] [--views 8] [--methods dds-3d slice-dds tv-3d mbir]
                                  [--mbir-steps 1000] [--slice-batch 16 64] [--split validation|test]

The volume is a random-ellipsoid phantom ``(1, 1, S, 64, 64)`` in 1/mm (the
distribution whose 2D slices ``ct-ellipses`` was trained on), scanned slice by
slice by a parallel-beam ray transform (``SliceStack``, CT_small's 84.7 mm field
of view, ``--views`` views over 180°) with Poisson noise of 10⁵ photons.
Phantom seeds: ``--split validation`` uses 2 000 000 + k (tune there),
``--split test`` 3 000 000 + k (report there; never tuned on).

Methods (each in a fresh process, so that its peak resident memory is its own):

* ``dds-3d`` — the slice-augmented DDS, 50 steps, with ``--tv-weight``, ``--rho`` and
  ``--cg-iterations``;
* ``slice-dds`` — the same sampler without TV (λ = 0): DDS on every slice alone,
  the same prior and budget;
* ``tv-3d`` — 3D total variation alone (``tv_reconstruct`` on the volume, ``--tv3d-weight``);
* ``mbir`` — DiffusionMBIR's predictor–corrector, ``--mbir-steps`` steps, its one CG
  iteration per data step.

The defaults of ``--tv-weight`` (4·10⁻⁴), ``--rho`` (5·10⁻³), ``--cg-iterations`` (5) and
``--tv3d-weight`` (3·10⁻³) are the best of a sweep on the validation split (8 slices, 8
views; docs/benchmarks/sweep_recon_3d.jsonl).

Prints one JSON line per method (PSNR and SSIM over the volume in its own
range, network evaluations per slice, wall time, the process's peak RSS and the
largest RSS while the reconstruction ran, polled from /proc) and records the run
in ``benchmarks/results/recon_3d[.<options>].json``.  ``--slice-batch`` with
several values reruns ``dds-3d`` at each, for the memory-against-batch figure.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import threading
import time
from typing import Any

import torch

from _recording import results_path, run_metadata, save_run

SPLITS = {"validation": 2_000_000, "test": 3_000_000}
METHODS = ("dds-3d", "slice-dds", "tv-3d", "mbir")
IMAGE = 64
DDS_STEPS = 50
TV_ITERATIONS = 300


def make_problem(slices: int, views: int, seed: int):
    """Truth volume (1/mm), its slice-stacked parallel-beam operator, noisy sinograms and their noise std."""
    from invsolve.datasets import CT_SMALL_PIXEL_MM
    from invsolve.demo import held_out_phantoms
    from invsolve.operators import PoissonNoise, SliceStack
    from invsolve.operators.ct import ParallelBeam2D, RayTransform, sparse_view_angles

    truth = held_out_phantoms(1, seed, (slices, IMAGE, IMAGE))  # ct-ellipses' distribution, 1/mm
    geometry = ParallelBeam2D((IMAGE, IMAGE), sparse_view_angles(views), extent=128 * CT_SMALL_PIXEL_MM)
    operator = SliceStack(RayTransform(geometry), n_slices=slices)
    noise = PoissonNoise(1e5)
    y = noise(operator(truth), seed=seed + 1)
    return truth, operator, y, float(noise.variance(y).mean().sqrt())


class ResidentPeak:
    """The largest resident set size while the ``with`` block runs (polled from /proc, every 20 ms), in MB.

    ``ru_maxrss`` keeps the high-water mark of the whole process, which here is the phantom's
    generation (a point-in-ellipsoid test over the whole grid), not the reconstruction.
    """

    def __enter__(self) -> ResidentPeak:
        self.peak_mb, self._running = self._current_mb(), True
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._running = False
        self._thread.join()

    def _poll(self) -> None:
        while self._running:
            self.peak_mb = max(self.peak_mb, self._current_mb())
            time.sleep(0.02)

    @staticmethod
    def _current_mb() -> float:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def run_method(method: str, args: argparse.Namespace, slice_batch: int) -> dict[str, Any]:
    """One method on the chosen split's first phantom, in this (fresh) process."""
    import invsolve
    from invsolve.metrics import psnr, ssim
    from invsolve.priors import pretrained

    torch.set_num_threads(args.threads)
    truth, operator, y, noise_std = make_problem(args.slices, args.views, SPLITS[args.split])
    prior = None if method == "tv-3d" else pretrained("ct-ellipses")
    gc.collect()
    with ResidentPeak() as watch:
        at_start = watch.peak_mb
        started = time.perf_counter()
        if method == "tv-3d":
            image = invsolve.tv_reconstruct(y, operator, args.tv3d_weight, iterations=TV_ITERATIONS, progress=False)
            evaluations, settings = 0, {"weight": args.tv3d_weight, "iterations": TV_ITERATIONS}
        else:
            sampler = "mbir" if method == "mbir" else "dds-3d"
            settings = {
                "steps": args.mbir_steps if method == "mbir" else DDS_STEPS,
                "tv_weight": 0.0 if method == "slice-dds" else args.tv_weight,
                "rho": args.rho,
                "cg_iterations": args.cg_iterations if method != "mbir" else 1,
                "slice_batch": slice_batch,
            }
            result = invsolve.reconstruct(
                y, operator, prior, sampler, noise_std=noise_std, seed=0, progress=False, **settings
            )
            image, evaluations = result.image, result.info["network_evaluations"]
        seconds = time.perf_counter() - started
    window = float(truth.max() - truth.min())
    return {
        "method": method,
        "settings": settings,
        "psnr_db": float(psnr(image, truth, data_range=window)),
        "ssim": float(ssim(image, truth, data_range=window)),
        "network_evaluations_per_slice": evaluations,
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "reconstruction_peak_rss_mb": watch.peak_mb,
        "rss_before_reconstruction_mb": at_start,
    }


def measure(method: str, args: argparse.Namespace, slice_batch: int) -> dict[str, Any]:
    """:func:`run_method` in a fresh process; raises if it fails."""
    command = [sys.executable, __file__, "--one", method, "--slice-batch", str(slice_batch)]
    for key in ("slices", "views", "split", "tv_weight", "rho", "cg_iterations", "tv3d_weight", "mbir_steps", "threads"):
        command += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=64, help="slices of the 64×64×S volume (default: %(default)s)")
    parser.add_argument("--views", type=int, default=8, help="views over 180° (default: %(default)s)")
    parser.add_argument("--split", choices=sorted(SPLITS), default="test", help="phantom seeds (default: %(default)s)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS[:3]), help="(default: %(default)s)")
    parser.add_argument("--tv-weight", type=float, default=4e-4, help="dds-3d's and mbir's relative λ (default: %(default)s)")
    parser.add_argument("--rho", type=float, default=5e-3, help="their relative ρ (default: %(default)s)")
    parser.add_argument("--cg-iterations", type=int, default=5, help="dds-3d's CG iterations (default: %(default)s)")
    parser.add_argument("--tv3d-weight", type=float, default=3e-3, help="3D TV's weight (default: %(default)s)")
    parser.add_argument("--mbir-steps", type=int, default=1000, help="(default: %(default)s)")
    parser.add_argument("--slice-batch", type=int, nargs="+", default=[16], help="(default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    parser.add_argument("--out", help="record the JSON here (default: benchmarks/results/recon_3d[.<options>].json)")
    parser.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_method(args.one, args, args.slice_batch[0])))
        return
    path = results_path("recon_3d", parser, args)
    metadata = run_metadata()
    records = []
    for method in args.methods:
        for slice_batch in args.slice_batch if method == "dds-3d" else args.slice_batch[:1]:
            record = measure(method, args, slice_batch)
            print(json.dumps(record), flush=True)
            records.append(record)
            save_run(path, metadata, {"settings": vars(args), "records": records}, complete=False)
    save_run(path, metadata, {"settings": vars(args), "records": records})
    print(f"recorded in {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
