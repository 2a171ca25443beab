"""The sweeps behind `invsolve.presets`: each sampler's settings per task, chosen on a validation split.

Every task is scored on validation images that no test, demo, example or README figure
uses; the criterion is the mean PSNR of the mean of each run's samples. Prints one JSON
line per run and, last, the best setting per sampler, which is what the preset holds.

* ``ct-sparse`` — the scan of ``invsolve demo`` (16 parallel-beam views over 180°, 10⁵
  photons, post-log) of the four *validation* phantoms of
  ``benchmarks/ct_demo_tuning.py`` (seeds 2 000 000..2 000 003; the test phantoms of
  ``benchmarks/samplers.py`` use 3 000 000.. and the demo its own), prior ``ct-ellipses``,
  PSNR over 2000 HU. (RED-Diff's preset comes from ``benchmarks/ct_demo_tuning.py``.)
* ``ct-sparse-8`` — the same phantoms and scan at 8 views, DDS from noise or from the TV
  image (a grid entry ``start_time``, as for ``ct-synthetic``), DiffPIR from the TV
  image with all fresh noise at every step, and PnP-DM and DAPS from noise at their paper
  defaults (what the learned posterior itself scores: README, "Why 8 views and MRI 8×
  miss their targets").
* ``ct-limited`` — the same phantoms, 32 views over 90°.
* ``mri-cartesian`` — four axial slices of the Colin27 template (``ch2better.nii.gz``
  of Debian's mricron-data; slices 110, 130, 150, 170 along the volume's axis 2 — the
  ``mri-brain`` prior learnt coronal slices, axis 1), area-averaged to 64², scaled to
  peak 0.9, with the smooth phase of :func:`invsolve.datasets.t1_brain_slice`, 8 known
  coil maps (unit root-sum-of-squares), complex noise σ = 2·10⁻³, fastMRI random
  column masks at 4× (8 % centre) and 8× (4 % centre) — the acquisition of
  ``benchmarks/samplers.py``; fastMRI PSNR of the magnitude, mean over the 8 cases. A
  grid's ``start_time`` starts from TV-SENSE in the prior's view (:func:`view_tv`).
* ``ct-synthetic`` — four validation slices of the synthetic CT family that ``ct-synthetic``
  was trained on (:func:`invsolve.datasets.synthetic_ct_slices`, seed 2 000 000; the prior
  learnt seed 0), its recipe's field-of-view range, the 16-view scan of ``ct-sparse``, prior
  ``ct-synthetic``; a grid entry ``start_time`` starts the sampler from the TV image
  (``benchmarks/samplers.py``'s weight) diffused to that time (``null``: from noise).
  What real CT slices (``CT_small.dcm`` in ``benchmarks/samplers.py``) are tuned on.
* ``inpainting`` — the validation phantoms with 60 % of the pixels and one box hidden
  (the mask family of ``invsolve demo inpainting``), 10 HU of Gaussian noise, prior
  ``ct-ellipses``, PSNR over 2000 HU.

    python benchmarks/sweep_presets.py --task mri-cartesian [--sampler dds] [--fix steps=100]
        [--mri-prior CHECKPOINT] [--zoom 0.6] [--ct-prior CHECKPOINT]

``--zoom`` shrinks the MRI validation brains onto the centre of the field of view
(the scale of scans whose field of view is larger than the brain); ``--fix KEY=VALUE``
runs one value of a grid entry; ``--ct-prior`` scores another prior of the ellipse
phantoms on their tasks (``configs/ct-ellipses-large.toml``'s, against ``ct-ellipses``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

import invsolve
from invsolve.datasets import synthetic_mr_phase
from invsolve.demo import ct_demo_prior, ct_demo_scores, held_out_phantoms
from invsolve.metrics import fastmri_psnr
from invsolve.mri_prior import prior_view
from invsolve.operators import GaussianNoise, LinearOperator, Mask, PoissonNoise, box_mask, random_pixel_mask
from invsolve.operators.ct import (
    MU_WATER_PER_MM,
    ParallelBeam2D,
    RayTransform,
    limited_angle_angles,
    sparse_view_angles,
)
from invsolve.priors import load_prior, pretrained
# the sibling benchmark: the scans of its test tasks, here of validation images
from samplers import (CT_TV_WEIGHT, FIELD_OF_VIEW_MM, INCIDENT_FLUX, MRI_NOISE_STD, TASKS, TV_ITERATIONS, MRITask,
                      mri_scan, view_tv)

VALIDATION_SEED = 2_000_000
COLIN27 = "/usr/share/mricron/templates/ch2better.nii.gz"
CT_SYNTHETIC_RECIPE = Path(__file__).resolve().parents[1] / "configs" / "ct-synthetic.toml"
COLIN27_SLICES = (110, 130, 150, 170)
INPAINTING_NOISE_HU = 10.0

#: task → sampler → (grid of settings incl. steps and n_samples)
GRIDS = {
    "ct-sparse": {
        "dds": {"steps": [50, 100], "cg_iterations": [5, 10], "n_samples": [4]},
        "dps": {"steps": [250], "step_size": [0.03, 0.1, 0.3], "n_samples": [1]},
        "dpir": {"steps": [50, 100, 200], "regularization": [0.01, 0.03, 0.1, 0.3],
                 "highest_level": [0.05, 0.1, 0.15, 0.25], "cg_iterations": [30], "n_samples": [1]},
    },
    "ct-sparse-8": {
        # does a start from TV carry the 16-view gains to 8 views? (README, targets of issue 10)
        "dds": {"start_time": [None, 0.05, 0.1, 0.2, 0.3], "steps": [50], "cg_iterations": [2, 5], "eta": [1.0],
                "n_samples": [4]},
        # fresh noise at every step (ζ = 1) from TV: the denoiser sees the noise it was trained for, not streaks
        # (20 steps: all the discrete schedule has below t = 0.02)
        "diffpir": {"start_time": [0.02, 0.05, 0.1, 0.2], "steps": [20], "regularization": [0.1, 0.3, 1.0, 7.0],
                    "zeta": [1.0], "n_samples": [4]},
        # from noise at the paper defaults: do samplers built differently agree on the learned posterior?
        "pnp-dm": {"steps": [100], "n_samples": [4]},
        "daps": {"steps": [200], "n_samples": [4]},
    },
    "ct-limited": {
        "dds": {"steps": [100], "cg_iterations": [5, 10, 20, 40], "n_samples": [4]},
        "dpir": {"steps": [100], "regularization": [0.03, 0.1, 0.3], "highest_level": [0.15, 0.5, 1.5],
                 "cg_iterations": [30], "n_samples": [1]},
    },
    "mri-cartesian": {
        # start_time 0.05 leaves 50 of the schedule's steps, so it is run with --fix steps=50 (README)
        "dds": {"start_time": [None, 0.1, 0.2], "steps": [50, 100], "cg_iterations": [1, 2, 5, 10], "n_samples": [4]},
        "diffpir": {"steps": [100], "regularization": [1.0, 7.0, 30.0], "n_samples": [4]},
        "dpir": {"steps": [100], "regularization": [0.03, 0.1, 0.3, 1.0, 3.0, 10.0], "highest_level": [0.1, 0.25, 0.5],
                 "cg_iterations": [30], "n_samples": [1]},
    },
    "ct-synthetic": {
        # run as start_time × cg_iterations at η 0.85, 4 samples, then η × n_samples at the best (README)
        "dds": {"start_time": [None, 0.05, 0.1, 0.15, 0.2], "steps": [50], "cg_iterations": [1, 2, 5],
                "eta": [0.85, 1.0], "n_samples": [4, 8]},
    },
    "inpainting": {
        "dds": {"steps": [50, 100], "cg_iterations": [5], "n_samples": [4]},
        "diffpir": {"steps": [100], "regularization": [1.0, 7.0, 30.0], "n_samples": [4]},
        "dpir": {"steps": [100], "regularization": [0.03, 0.1, 0.3, 1.0], "highest_level": [0.25, 0.5, 1.0],
                 "n_samples": [1]},
    },
}


@dataclass
class Case:
    """One validation problem: measurement, operator, noise level, prior, and a scorer of the result."""

    y: torch.Tensor
    operator: LinearOperator
    noise_std: float
    prior: object
    score: Callable[[torch.Tensor], float]  # reconstruct()'s image → PSNR (dB)
    start_image: torch.Tensor | None = None  # what a grid's start_time starts from
    label: str = ""  # the group a case is also scored in (MRI: its acceleration)


def label_means(cases: list[Case], scores: list[float]) -> dict[str, float]:
    """Mean score per case label, where the cases carry more than one (MRI: ``{"4x": …, "8x": …}``)."""
    labels = sorted({case.label for case in cases})
    if len(labels) < 2:
        return {}
    return {label: statistics.fmean(score for case, score in zip(cases, scores) if case.label == label)
            for label in labels}


def ct_case(task: str, truth: torch.Tensor, angles: torch.Tensor, prior) -> Case:
    """The demo's scan of ``truth`` (1/mm) at ``angles``; prints the TV baseline, which is also the start image."""
    operator = RayTransform(ParallelBeam2D((64, 64), angles, extent=FIELD_OF_VIEW_MM))
    y = PoissonNoise(INCIDENT_FLUX)(operator(truth), seed=1)
    noise_std = float(PoissonNoise(INCIDENT_FLUX).variance(y).mean().sqrt())
    tv = invsolve.tv_reconstruct(y, operator, CT_TV_WEIGHT, iterations=TV_ITERATIONS, progress=False)
    print(json.dumps({"task": task, "method": "tv", "psnr_db": statistics.fmean(ct_demo_scores(tv, truth)["psnr_db"])}),
          flush=True)
    return Case(y, operator, noise_std, prior, lambda image: statistics.fmean(ct_demo_scores(image, truth)["psnr_db"]),
                tv)


def synthetic_ct_truth() -> torch.Tensor:
    """``(4, 1, 64, 64)`` validation slices of the ``ct-synthetic`` family, 1/mm."""
    from invsolve.datasets import synthetic_ct_slices
    from invsolve.operators.ct import hounsfield_to_attenuation

    fill = tomllib.loads(CT_SYNTHETIC_RECIPE.read_text(encoding="utf-8"))["data"]["fill"]
    return hounsfield_to_attenuation(synthetic_ct_slices(4, (64, 64), seed=VALIDATION_SEED, fill=fill)).float()


def inpainting_cases(prior) -> list[Case]:
    truth = held_out_phantoms(4, VALIDATION_SEED)
    observed = random_pixel_mask((64, 64), missing_fraction=0.6, seed=1) & box_mask(
        (64, 64), n_boxes=1, size_range=(0.25, 0.3), seed=2
    )
    operator = Mask(observed).to(truth.dtype)
    noise_std = INPAINTING_NOISE_HU * MU_WATER_PER_MM / 1000  # 10 HU in 1/mm
    y = GaussianNoise(noise_std)(operator(truth), seed=3)
    return [Case(y, operator, noise_std, prior,
                 lambda image: statistics.fmean(ct_demo_scores(image, truth)["psnr_db"]))]


def ellipse_prior(args: argparse.Namespace):
    """The prior of the ellipse-phantom tasks: ``--ct-prior`` if given, else the embedded ``ct-ellipses``."""
    return load_prior(args.ct_prior) if args.ct_prior else ct_demo_prior()


def colin27_slices(zoom: float = 1.0) -> torch.Tensor:
    """``(4, 64, 64)`` complex validation slices (see the module docstring).

    ``zoom < 1`` shrinks each slice by that factor (area averaging) onto the
    centre of an empty 64² field of view: the brain as a scan with a larger field
    of view shows it.
    """
    import nibabel

    volume = torch.from_numpy(nibabel.load(COLIN27).get_fdata()).float()
    planes = torch.stack([volume[:, :, index].T for index in COLIN27_SLICES])[:, None]
    magnitude = torch.nn.functional.adaptive_avg_pool2d(planes, 64).double()
    if zoom < 1:
        side = round(64 * zoom)
        start = (64 - side) // 2
        shrunk = torch.nn.functional.interpolate(magnitude, size=(side, side), mode="area")
        magnitude = torch.zeros_like(magnitude)
        magnitude[..., start:start + side, start:start + side] = shrunk
    magnitude = magnitude / magnitude.amax(dim=(-2, -1), keepdim=True) * 0.9
    return (magnitude * torch.exp(1j * synthetic_mr_phase(64)))[:, 0]


def mri_cases(prior_file: str | None = None, zoom: float = 1.0) -> list[Case]:
    prior = load_prior(prior_file) if prior_file else pretrained("mri-brain")
    cases = []
    for index, image in enumerate(colin27_slices(zoom)):
        for task in (task for task in TASKS.values() if isinstance(task, MRITask)):
            mask_seed = 100 + 10 * index + task.acceleration
            y, operator, mask, reference = mri_scan(image[None, None], task, mask_seed, noise_seed=index)
            view = prior_view(y, operator, prior, mask)
            cases.append(Case(
                y * view.scale, view.operator, MRI_NOISE_STD * view.scale, prior,
                lambda image, view=view, reference=reference: float(
                    fastmri_psnr(reference, view.to_image(image)[:1].abs())
                ),
                view_tv(y, view),
                f"{task.acceleration}x",
            ))
    tv_scores = [case.score(case.start_image) for case in cases]
    print(json.dumps({"task": "mri-cartesian", "method": "tv-sense", "psnr_db": statistics.fmean(tv_scores),
                      "psnr_db_by_label": label_means(cases, tv_scores)}), flush=True)
    return cases


#: task → its validation cases, from the command-line arguments
CASES = {
    "ct-sparse": lambda args: [ct_case("ct-sparse", held_out_phantoms(4, VALIDATION_SEED), sparse_view_angles(16),
                                       ellipse_prior(args))],
    "ct-sparse-8": lambda args: [ct_case("ct-sparse-8", held_out_phantoms(4, VALIDATION_SEED), sparse_view_angles(8),
                                         ellipse_prior(args))],
    "ct-limited": lambda args: [ct_case("ct-limited", held_out_phantoms(4, VALIDATION_SEED),
                                        limited_angle_angles(32, 0.0, torch.pi / 2), ellipse_prior(args))],
    "mri-cartesian": lambda args: mri_cases(args.mri_prior, args.zoom),
    "ct-synthetic": lambda args: [ct_case("ct-synthetic", synthetic_ct_truth(), sparse_view_angles(16),
                                          pretrained("ct-synthetic"))],
    "inpainting": lambda args: inpainting_cases(ellipse_prior(args)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(GRIDS), default="ct-sparse")
    parser.add_argument("--sampler", action="append", help="sampler(s) of the task's grid (default all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fix", action="append", default=[], metavar="KEY=VALUE",
                        help="run only this value of a grid entry, e.g. --fix steps=100 (repeatable)")
    parser.add_argument("--mri-prior", help="mri-cartesian: a prior checkpoint instead of the embedded mri-brain")
    parser.add_argument("--ct-prior", help="ct-sparse, ct-sparse-8, ct-limited, inpainting: a prior checkpoint instead "
                        "of the embedded ct-ellipses (e.g. runs/ct-ellipses-large/prior.pt)")
    parser.add_argument("--zoom", type=float, default=1.0,
                        help="mri-cartesian: shrink the validation brains by this factor in (0, 1] (default 1)")
    args = parser.parse_args()
    if not 0 < args.zoom <= 1:
        parser.error(f"--zoom must be in (0, 1], got {args.zoom}")
    fixed = {}
    for entry in args.fix:
        key, separator, value = entry.partition("=")
        try:
            if not separator:
                raise ValueError("no '='")
            fixed[key] = json.loads(value)
        except ValueError:  # json.JSONDecodeError is one
            parser.error(f"--fix takes KEY=VALUE with a JSON value (e.g. steps=100), got {entry!r}")
    cases = CASES[args.task](args)
    best = {}
    for sampler, grid in GRIDS[args.task].items():
        if args.sampler and sampler not in args.sampler:
            continue
        unknown = sorted(set(fixed) - set(grid))
        if unknown:
            parser.error(f"--fix {unknown[0]}: not a grid entry of {sampler} ({', '.join(grid)})")
        grid = {key: [fixed[key]] if key in fixed else values for key, values in grid.items()}
        for values in itertools.product(*grid.values()):
            settings = dict(zip(grid, values))
            start_time = settings.pop("start_time", None)
            results = [
                invsolve.reconstruct(case.y, case.operator, case.prior, sampler, noise_std=case.noise_std,
                                     seed=args.seed, progress=False, start_time=start_time,
                                     start_image=None if start_time is None else case.start_image, **settings)
                for case in cases
            ]
            if "start_time" in grid:
                settings["start_time"] = start_time
            scores = [case.score(result.image) for case, result in zip(cases, results)]
            entry = {
                "task": args.task,
                "sampler": sampler,
                "settings": settings,
                "psnr_db": statistics.fmean(scores),
                "network_evaluations": results[0].info["network_evaluations"] * settings["n_samples"],
                "seconds": sum(result.info["seconds"] for result in results),
            }
            by_label = label_means(cases, scores)
            if by_label:
                entry["psnr_db_by_label"] = by_label
            if settings["n_samples"] > 1:
                entry["single_sample_psnr_db"] = statistics.fmean(
                    case.score(result.samples[:, 0]) for case, result in zip(cases, results)
                )
            print(json.dumps(entry), flush=True)
            if sampler not in best or entry["psnr_db"] > best[sampler]["psnr_db"]:
                best[sampler] = entry
    print(json.dumps({"best": best}, indent=2))


if __name__ == "__main__":
    main()
