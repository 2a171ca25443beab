"""Every sampler against the classical baselines on CT, in one run: PSNR, SSIM, network evaluations, time.

Tasks (``--task``, repeatable; default all CT tasks):

* ``ct-sparse-8``, ``ct-sparse-16``, ``ct-sparse-32`` — parallel beam over 180° with 8, 16
  or 32 views;
* ``ct-limited-90`` — 32 views over 90° only;

each the scan of ``invsolve demo`` (CT_small's 84.7 mm field of view, 10⁵ photons per
detector pixel, post-log) of four *test* random-ellipse phantoms (seeds 3 000 000…,
never used for training, tuning or the demo) and of pydicom's real ``CT_small.dcm``
averaged to 64² (outside the prior's training data). Baselines: FBP (Hann) and TV
(PDHG, 300 iterations, the demo's weight). Diffusion samplers use the embedded
``ct-ellipses`` prior (in 1/mm), a Gaussian likelihood at the data's RMS post-log noise
level, and their paper defaults except where the CT tuning benchmark found a default
unusable (DPS ζ′ = 0.1, RED-Diff's demo settings); samplers that draw samples report
the mean of ``--samples`` draws (the posterior-mean estimate), with NFE counted over all
of them. PSNR and SSIM are over 2000 HU (air to dense bone), as in the demo.

Prints one JSON line per (task, method) and a summary; ``--plot FILE.png`` draws PSNR
against NFE for the phantoms of each task.

    python benchmarks/samplers.py --task ct-sparse-16 --samples 4 --plot samplers.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import invsolve
from invsolve.datasets import CT_SMALL_PIXEL_MM, ct_small_slice
from invsolve.demo import ct_demo_prior, ct_demo_scores, held_out_phantoms
from invsolve.operators import PoissonNoise
from invsolve.operators.ct import (
    ParallelBeam2D,
    RayTransform,
    fbp,
    hounsfield_to_attenuation,
    limited_angle_angles,
    sparse_view_angles,
)
from invsolve.samplers import get_sampler

#: task → projection angles (radians)
TASKS = {
    "ct-sparse-8": lambda: sparse_view_angles(8),
    "ct-sparse-16": lambda: sparse_view_angles(16),
    "ct-sparse-32": lambda: sparse_view_angles(32),
    "ct-limited-90": lambda: limited_angle_angles(32, 0.0, torch.pi / 2),
}
#: sampler → (steps, hyperparameters)
SAMPLERS = {
    "red-diff": (1000, {"obs_weight": 0.01, "regularization": 0.25}),
    "dps": (250, {"step_size": 0.1}),
    "dds": (100, {}),
    "diffpir": (100, {}),
    "daps": (50, {}),
    "pnp-dm": (100, {}),
}
TEST_SEED = 3_000_000
INCIDENT_FLUX = 1e5
TV_WEIGHT = 1e-2
FIELD_OF_VIEW_MM = 128 * CT_SMALL_PIXEL_MM


def images() -> torch.Tensor:
    """``(5, 1, 64, 64)`` attenuation maps in 1/mm: four test phantoms and CT_small.dcm."""
    ct_small = hounsfield_to_attenuation(torch.nn.functional.adaptive_avg_pool2d(ct_small_slice()[None], (64, 64)))
    return torch.cat([held_out_phantoms(4, TEST_SEED), ct_small])


def scores(image: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """Mean PSNR/SSIM over the phantoms and those of CT_small (the last image)."""
    per_image = ct_demo_scores(image, truth)
    return {
        "phantoms_psnr_db": statistics.fmean(per_image["psnr_db"][:-1]),
        "phantoms_ssim": statistics.fmean(per_image["ssim"][:-1]),
        "ct_small_psnr_db": per_image["psnr_db"][-1],
        "ct_small_ssim": per_image["ssim"][-1],
    }


def run_task(task: str, samplers: list[str], samples: int, seed: int) -> list[dict]:
    truth = images()
    operator = RayTransform(ParallelBeam2D((64, 64), TASKS[task](), extent=FIELD_OF_VIEW_MM))
    y = PoissonNoise(INCIDENT_FLUX)(operator(truth), seed=seed)
    noise_std = float(PoissonNoise(INCIDENT_FLUX).variance(y).mean().sqrt())
    records = []

    def record(method: str, image: torch.Tensor, seconds: float, nfe: int, extra: dict | None = None) -> None:
        entry = {"task": task, "method": method, "network_evaluations": nfe, "seconds": seconds, **scores(image, truth), **(extra or {})}
        records.append(entry)
        print(json.dumps(entry), flush=True)

    started = time.perf_counter()
    record("fbp", fbp(y, operator, filter="hann"), time.perf_counter() - started, 0)
    started = time.perf_counter()
    tv = invsolve.tv_reconstruct(y, operator, TV_WEIGHT, iterations=300, progress=False)
    record("tv", tv, time.perf_counter() - started, 0)
    prior = ct_demo_prior()
    for name in samplers:
        steps, settings = SAMPLERS[name]
        draws = samples if get_sampler(name).draws_samples else 1
        result = invsolve.reconstruct(
            y, operator, prior, name, noise_std=noise_std, steps=steps, n_samples=draws, seed=seed,
            progress=False, **settings,
        )
        nfe = get_sampler(name, **settings).network_evaluations(steps) * draws
        extra = {"samples": draws, "settings": {"steps": steps, **settings}}
        if draws > 1:
            extra["single_sample_phantoms_psnr_db"] = scores(result.samples[:, 0], truth)["phantoms_psnr_db"]
        record(name, result.image, result.info["seconds"], nfe, extra)
    return records


def plot(records: list[dict], path: str) -> None:
    import matplotlib.pyplot as plt

    from invsolve.files import atomic_write

    tasks = sorted({entry["task"] for entry in records})
    figure, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 4), squeeze=False)
    for axis, task in zip(axes[0], tasks):
        for entry in (e for e in records if e["task"] == task):
            nfe = max(entry["network_evaluations"], 1)
            axis.scatter(nfe, entry["phantoms_psnr_db"], label=entry["method"])
            axis.annotate(entry["method"], (nfe, entry["phantoms_psnr_db"]), fontsize=8)
        axis.set_xscale("log")
        axis.set_xlabel("network evaluations (classical methods at 1)")
        axis.set_ylabel("PSNR on test phantoms (dB, 2000 HU)")
        axis.set_title(task)
    figure.tight_layout()
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(TASKS), action="append", help="task(s) (default all)")
    parser.add_argument("--sampler", choices=sorted(SAMPLERS), action="append", help="sampler(s) (default all)")
    parser.add_argument("--samples", type=int, default=4, help="draws averaged per sampler (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", help="write a PSNR-against-NFE plot to this PNG")
    args = parser.parse_args()
    records = []
    for task in args.task or list(TASKS):
        records += run_task(task, args.sampler or list(SAMPLERS), args.samples, args.seed)
    if args.plot:
        plot(records, args.plot)


if __name__ == "__main__":
    main()
