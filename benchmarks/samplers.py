"""Every sampler against the classical baselines on CT and MRI, in one run: PSNR, SSIM, network evaluations, time.

Tasks (``--task``, repeatable; default all):

* ``ct-sparse-8``, ``ct-sparse-16``, ``ct-sparse-32`` — parallel beam over 180° with 8, 16
  or 32 views;
* ``ct-limited-90`` — 32 views over 90° only;

  each the scan of ``invsolve demo`` (CT_small's 84.7 mm field of view, 10⁵ photons per
  detector pixel, post-log) of four *test* random-ellipse phantoms (seeds 3 000 000…,
  never used for training, tuning or the demo) and of pydicom's real ``CT_small.dcm``
  averaged to 64² (outside the prior's training data). Baselines: FBP (Hann) and TV
  (PDHG, 300 iterations, the demo's weight). Prior: the embedded ``ct-ellipses`` (in
  1/mm, ``--ct-prior`` for another), a Gaussian likelihood at the data's RMS post-log
  noise level. PSNR and SSIM over 2000 HU (air to dense bone), as in the demo.

* ``mri-4x``, ``mri-8x`` — dipy's T1 brain slice (:func:`invsolve.datasets.t1_brain_slice`,
  smooth phase) at 64², 8 simulated coils, complex Gaussian k-space noise (σ = 2·10⁻³,
  the image peaks at 1), fastMRI random column masks (8 % / 4 % centre) — the 64²
  acquisition of ``examples/mri_cs.py``, but with the coil maps known (normalised to unit
  root-sum-of-squares at every pixel), so that every method sees the same, exact
  forward model and the table compares reconstructions, not coil-map estimates (at 64²
  the 3-5 calibration lines make ESPIRiT maps crop the object; the example shows that
  case). Baselines: zero filling (RSS), CG-SENSE (30
  iterations), TV-SENSE (PDHG, 300 iterations, λ = 2·10⁻³ as in the example). Prior: the
  embedded ``mri-brain`` (magnitude), seen through :func:`invsolve.mri_prior.prior_view`.
  fastMRI's PSNR and SSIM of the magnitude against the fully sampled RSS image.

Sampler settings come from the task's validated preset (:mod:`invsolve.presets`:
``ct-sparse``, ``ct-limited``, ``mri-cartesian``; steps, samples averaged and
hyperparameters), else the sampler's paper defaults with ``--samples`` draws; each
record says which. Samplers that draw samples report the mean of their draws (the
posterior-mean estimate), with NFE counted over all of them.

``--set KEY=VALUE`` replaces a setting of every sampler run (e.g. ``--set steps=50``), and
``--start-time T`` starts the samplers that take a start time from the task's TV image
(MRI: TV-SENSE in the prior's view, :func:`view_tv`) diffused to ``T``
("Come-Closer-Diffuse-Faster", Chung, Sim & Ye, CVPR 2022).

Prints one JSON line per (task, method); ``--plot FILE.png`` draws PSNR against NFE for
each task (test phantoms for CT); ``--records A.jsonl B.jsonl --plot FILE.png`` draws
the saved output of earlier runs without running anything.

    python benchmarks/samplers.py --task ct-sparse-16 --task mri-8x --plot samplers.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

import invsolve
from invsolve.command_reconstruct import parse_hyperparameters
from invsolve.datasets import CT_SMALL_PIXEL_MM, ct_small_slice, t1_brain_slice
from invsolve.demo import ct_demo_scores, held_out_phantoms
from invsolve.metrics import fastmri_psnr, fastmri_ssim
from invsolve.mri_prior import prior_view
from invsolve.operators import ComplexAsChannels, GaussianNoise, PoissonNoise, channels_to_complex
from invsolve.operators.ct import (
    ParallelBeam2D,
    RayTransform,
    fbp,
    hounsfield_to_attenuation,
    limited_angle_angles,
    sparse_view_angles,
)
from invsolve.operators.mri import CartesianMRI, fft_centered, random_mask, rss, simulated_coil_maps
from invsolve.presets import PRESETS
from invsolve.priors import load_prior, pretrained
from invsolve.samplers import available_samplers, get_sampler


@dataclass(frozen=True)
class CTTask:
    """A parallel-beam scan: its projection angles (radians) and the preset tuned for it."""

    angles: Callable[[], torch.Tensor]
    preset: str


@dataclass(frozen=True)
class MRITask:
    """A Cartesian multi-coil acquisition: acceleration, centre fraction, preset."""

    acceleration: int
    center_fraction: float
    preset: str


TASKS: dict[str, CTTask | MRITask] = {
    "ct-sparse-8": CTTask(lambda: sparse_view_angles(8), "ct-sparse"),
    "ct-sparse-16": CTTask(lambda: sparse_view_angles(16), "ct-sparse"),
    "ct-sparse-32": CTTask(lambda: sparse_view_angles(32), "ct-sparse"),
    "ct-limited-90": CTTask(lambda: limited_angle_angles(32, 0.0, torch.pi / 2), "ct-limited"),
    "mri-4x": MRITask(4, 0.08, "mri-cartesian"),
    "mri-8x": MRITask(8, 0.04, "mri-cartesian"),
}
TEST_SEED = 3_000_000
INCIDENT_FLUX = 1e5
CT_TV_WEIGHT = 1e-2
FIELD_OF_VIEW_MM = 128 * CT_SMALL_PIXEL_MM
MRI_SIZE = 64
MRI_COILS = 8
MRI_NOISE_STD = 2e-3
MRI_TV_WEIGHT = 2e-3
TV_ITERATIONS = 300


def sampler_settings(name: str, preset: str, samples: int) -> tuple[dict, str]:
    """``{"steps", "n_samples", **hyperparameters}`` of ``name`` for a task, and where they come from."""
    if preset in PRESETS and name in PRESETS[preset].samplers:
        return dict(PRESETS[preset].samplers[name]), f"preset {preset}"
    sampler = get_sampler(name)
    return {"steps": sampler.default_steps, "n_samples": samples if sampler.draws_samples else 1}, "paper defaults"


class Recorder:
    """Collects and prints the JSON records of one task."""

    def __init__(self, task: str, score: Callable[[torch.Tensor], dict[str, float]]) -> None:
        self.task, self.score, self.records = task, score, []

    def __call__(self, method: str, image: torch.Tensor, seconds: float, nfe: int, **extra) -> None:
        entry = {"task": self.task, "method": method, "network_evaluations": nfe, "seconds": seconds,
                 **self.score(image), **extra}
        self.records.append(entry)
        print(json.dumps(entry), flush=True)


def run_samplers(record: Recorder, y, operator, prior, noise_std: float, samplers, preset: str, samples: int,
                 seed: int, to_image: Callable[[torch.Tensor], torch.Tensor], overrides: dict | None = None,
                 start: dict | None = None) -> None:
    """Reconstruct with every sampler and record the mean of its draws (mapped by ``to_image``).

    ``overrides`` replace settings of the preset (or paper defaults); ``start``
    (``{"start_time", "start_image"}``) warm-starts the samplers that take a start time.
    """
    for name in samplers:
        settings, source = sampler_settings(name, preset, samples)
        if overrides:
            settings, source = {**settings, **overrides}, f"{source}, with {overrides}"
        warm = start if start and get_sampler(name).takes_start_time else {}
        result = invsolve.reconstruct(y, operator, prior, name, noise_std=noise_std, seed=seed, progress=False,
                                      **warm, **settings)
        steps, draws = settings.pop("steps"), settings.pop("n_samples")
        nfe = get_sampler(name, **settings).network_evaluations(steps) * draws
        extra = {"samples": draws, "settings": {"steps": steps, **settings}, "settings_from": source}
        if warm:
            extra["start"] = {"time": warm["start_time"], "image": "the task's TV reconstruction"}
        if draws > 1:
            extra["single_sample_psnr_db"] = record.score(to_image(result.samples[:, 0]))["psnr_db"]
        record(name, to_image(result.image), result.info["seconds"], nfe, **extra)


def ct_images() -> torch.Tensor:
    """``(5, 1, 64, 64)`` attenuation maps in 1/mm: four test phantoms and CT_small.dcm."""
    ct_small = hounsfield_to_attenuation(torch.nn.functional.adaptive_avg_pool2d(ct_small_slice()[None], (64, 64)))
    return torch.cat([held_out_phantoms(4, TEST_SEED), ct_small])


def run_ct_task(name: str, task: CTTask, samplers: list[str], samples: int, seed: int, prior,
                overrides: dict | None = None, start_time: float | None = None) -> list[dict]:
    truth = ct_images()

    def score(image: torch.Tensor) -> dict[str, float]:
        per_image = ct_demo_scores(image, truth)
        return {
            "psnr_db": statistics.fmean(per_image["psnr_db"][:-1]),
            "ssim": statistics.fmean(per_image["ssim"][:-1]),
            "ct_small_psnr_db": per_image["psnr_db"][-1],
            "ct_small_ssim": per_image["ssim"][-1],
        }

    record = Recorder(name, score)
    operator = RayTransform(ParallelBeam2D((64, 64), task.angles(), extent=FIELD_OF_VIEW_MM))
    y = PoissonNoise(INCIDENT_FLUX)(operator(truth), seed=seed)
    noise_std = float(PoissonNoise(INCIDENT_FLUX).variance(y).mean().sqrt())
    started = time.perf_counter()
    record("fbp", fbp(y, operator, filter="hann"), time.perf_counter() - started, 0)
    started = time.perf_counter()
    tv = invsolve.tv_reconstruct(y, operator, CT_TV_WEIGHT, iterations=TV_ITERATIONS, progress=False)
    record("tv", tv, time.perf_counter() - started, 0)
    start = None if start_time is None else {"start_time": start_time, "start_image": tv}
    run_samplers(record, y, operator, prior, noise_std, samplers, task.preset, samples, seed, lambda image: image,
                 overrides, start)
    return record.records


def mri_scan(
    image: torch.Tensor, task: MRITask, mask_seed: int, noise_seed: int
) -> tuple[torch.Tensor, CartesianMRI, torch.Tensor, torch.Tensor]:
    """The ``MRI_COILS``-coil acquisition of a complex ``(1, 1, H, W)`` image with known coil maps.

    The maps (:func:`simulated_coil_maps`) are normalised to unit root-sum-of-squares at
    every pixel, so the fully sampled RSS image — the reference — is ``|image|``; k-space
    gets complex noise of ``MRI_NOISE_STD`` and the task's fastMRI random column mask.

    Returns
    -------
    y, operator, mask, reference
        Undersampled k-space ``(1, coils, H, W)``, ``CartesianMRI(mask, maps)``, the
        ``(W,)`` mask and the ``(1, H, W)`` RSS reference.
    """
    maps = simulated_coil_maps(tuple(image.shape[-2:]), MRI_COILS)
    maps = maps / rss(maps[None], dim=1)[0]
    coil_images = maps * image
    kspace = GaussianNoise(MRI_NOISE_STD)(fft_centered(coil_images), seed=noise_seed)
    mask = random_mask(image.shape[-1], task.center_fraction, task.acceleration, seed=mask_seed)
    return kspace * mask, CartesianMRI(mask, maps), mask, rss(coil_images)[0]


def view_tv(y: torch.Tensor, view) -> torch.Tensor:
    """TV-SENSE in the prior's view (the real image ``view.operator`` takes; the weight scaled with the data):
    what ``--start-time`` starts the MRI samplers from."""
    return invsolve.tv_reconstruct(y * view.scale, view.operator, MRI_TV_WEIGHT * view.scale, iterations=TV_ITERATIONS,
                                   nonnegative=False, progress=False)


def run_mri_task(name: str, task: MRITask, samplers: list[str], samples: int, seed: int, prior,
                 overrides: dict | None = None, start_time: float | None = None) -> list[dict]:
    y, operator, mask, reference = mri_scan(t1_brain_slice(MRI_SIZE), task, task.acceleration, seed)

    def score(magnitude: torch.Tensor) -> dict[str, float]:
        return {"psnr_db": float(fastmri_psnr(reference, magnitude)), "ssim": float(fastmri_ssim(reference, magnitude))}

    record = Recorder(name, score)
    started = time.perf_counter()
    record("zero-filled", operator.rss(y)[0], time.perf_counter() - started, 0)
    started = time.perf_counter()
    record("cg-sense", invsolve.cg_sense(y, operator, iterations=30).abs()[0], time.perf_counter() - started, 0)
    started = time.perf_counter()
    tv = invsolve.tv_reconstruct(y, operator @ ComplexAsChannels(operator.in_shape), MRI_TV_WEIGHT,
                                 iterations=TV_ITERATIONS, nonnegative=False, progress=False)
    record("tv-sense", channels_to_complex(tv).abs()[0], time.perf_counter() - started, 0)
    view = prior_view(y, operator, prior, mask)
    start = None if start_time is None else {"start_time": start_time, "start_image": view_tv(y, view)}
    run_samplers(record, y * view.scale, view.operator, prior, MRI_NOISE_STD * view.scale, samplers, task.preset,
                 samples, seed, lambda images: view.to_image(images)[:1].abs(), overrides, start)
    return record.records


def plot(records: list[dict], path: str) -> None:
    import matplotlib.pyplot as plt

    from invsolve.files import atomic_write

    tasks = list(dict.fromkeys(entry["task"] for entry in records))
    columns = min(3, len(tasks))
    rows = -(-len(tasks) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 4 * rows), squeeze=False)
    colours = plt.get_cmap("tab10").colors  # one colour per sampler in every panel
    for axis, task in zip(axes.flat, tasks):
        for entry in (e for e in records if e["task"] == task):
            nfe = max(entry["network_evaluations"], 1)
            if entry["network_evaluations"] == 0:  # a classical method: a level to beat, across the plot
                axis.axhline(entry["psnr_db"], color="grey", linestyle="--", linewidth=0.8)
                axis.annotate(entry["method"], (1, entry["psnr_db"]), fontsize=8, color="grey", xytext=(3, 3),
                              textcoords="offset points")
                continue
            axis.scatter(nfe, entry["psnr_db"], color=colours[available_samplers().index(entry["method"]) % 10])
            axis.annotate(entry["method"], (nfe, entry["psnr_db"]), fontsize=8, xytext=(3, 3), textcoords="offset points")
        axis.set_xscale("log")
        axis.set_xlim(1, 2e4)
        axis.set_xlabel("network evaluations, all samples (dashed: classical methods)")
        axis.set_ylabel("PSNR (dB)" + (", test phantoms, 2000 HU" if task.startswith("ct") else ", fastMRI"))
        axis.set_title(task)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(tasks):]:
        axis.set_visible(False)
    figure.tight_layout()
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=list(TASKS), action="append", help="task(s) (default all)")
    parser.add_argument("--sampler", choices=available_samplers(), action="append", help="sampler(s) (default all)")
    parser.add_argument("--samples", type=int, default=4, help="draws averaged without a preset (default %(default)s)")
    parser.add_argument("--ct-prior", help="a prior checkpoint for the CT tasks (default the embedded ct-ellipses)")
    parser.add_argument("--mri-prior", help="a prior checkpoint for the MRI tasks (default the embedded mri-brain)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="a sampler setting over the preset's (e.g. --set cg_iterations=2; repeatable)")
    parser.add_argument("--start-time", type=float,
                        help="samplers that take a start time start there from the task's TV (TV-SENSE) image")
    parser.add_argument("--plot", help="write a PSNR-against-NFE plot to this PNG")
    parser.add_argument("--records", nargs="+", metavar="JSONL",
                        help="with --plot: plot the JSON lines of earlier runs instead of running")
    args = parser.parse_args()
    if args.records:
        if not args.plot:
            parser.error("--records needs --plot")
        lines = [line for path in args.records for line in open(path, encoding="utf-8")]
        plot([json.loads(line) for line in lines if line.startswith("{")], args.plot)
        return
    try:  # read as `invsolve reconstruct --set` reads them
        overrides = parse_hyperparameters(args.overrides)
    except ValueError as error:
        parser.error(str(error))
    samplers = args.sampler or available_samplers()
    records = []
    for name in args.task or list(TASKS):
        task = TASKS[name]
        if isinstance(task, CTTask):
            prior = load_prior(args.ct_prior) if args.ct_prior else pretrained("ct-ellipses")
            records += run_ct_task(name, task, samplers, args.samples, args.seed, prior, overrides, args.start_time)
        else:
            prior = load_prior(args.mri_prior) if args.mri_prior else pretrained("mri-brain")
            records += run_mri_task(name, task, samplers, args.samples, args.seed, prior, overrides, args.start_time)
    if args.plot:
        plot(records, args.plot)


if __name__ == "__main__":
    main()
