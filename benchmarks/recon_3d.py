"""3D reconstruction from 2D priors: dds-3d, slice-wise DDS, 3D TV and mbir in one run, on CT or MRI volumes.

Run by hand::

    python benchmarks/recon_3d.py [--task ct|mri] [--slices 64] [--views 8]
                                  [--methods dds-3d slice-dds tv-3d tv-dds-3d mbir zero-filled]
                                  [--mbir-steps 1000] [--slice-batch 16 64] [--split validation|test]
                                  [--geometry parallel|cone] [--device cpu|cuda] [--image-size 64]

``--task ct`` (default): a random-ellipsoid phantom ``(1, 1, S, 64, 64)`` in 1/mm
(the distribution whose 2D slices ``ct-ellipses`` was trained on), scanned slice by
slice by a parallel-beam ray transform (``SliceStack``, CT_small's 84.7 mm field
of view, ``--views`` views over 180°) with Poisson noise of 10⁵ photons.
``--geometry cone``: the volume ``(1, 1, 64, 64, S)`` (axes x, y, z) of isotropic
voxels scanned by a circular cone-beam scanner, ``--views`` views over 360°
(:func:`invsolve.demo.cone_beam_demo_scan`, the scan of ``examples/ct_3d_cone.py``);
the prior sees its axial slices (``axis=2``), with the parallel-beam sweep's λ and ρ.
Phantom seeds: ``--split validation`` uses 2 000 000 + 2k (tune there),
``--split test`` 3 000 000 + 2k (report there; never tuned on), k = ``--volume``.

``--image-size N`` (CT): N×N slices of the same field of view, and the prior's
U-Net applied to them with its weights unchanged (:func:`prior_at_size`; the
network is convolutional).  Its weights learnt 64² slices, so at another size
the phantom's structures are larger in pixels than anything it saw: the time
and the memory are results there, the image quality is not.  ``--device cuda``
runs everything on the GPU (the phantom is drawn on the CPU and moved); the
seconds then wait for the GPU (``torch.cuda.synchronize``) and each record adds
the GPU's peak allocated memory.

``--task mri``: 4× 3D Cartesian MRI of a brain volume with the ``mri-brain`` prior
(trained on coronal slices of Colin27, which therefore is never a benchmark volume).
The test volume is the MNI ICBM152 2009a symmetric T1 template (an average of 152
brains, skull-stripped; shipped inside ``nilearn``, an optional install), the
validation volume the INIA19 rhesus macaque T1 template (skull-stripped; Debian's
``mricron-data``) — the only other skull-stripped T1 brain volume available offline,
so the hyperparameters are tuned on another species' brain, never on the test brain.
Each is cropped to its brain (the coronal plane to a square around it), resampled to
64³ by area averaging (coronal slices along axis 1, as the prior learnt them) and
scaled so that the 99.9th percentile of the brain is 1.  The readout (x, axis 0) is
fully sampled, the phase-encode plane (y, z) by a variable-density Poisson-disc mask
at 4× with an 8 % calibration box; single coil, the image real (a magnitude volume:
``CartesianMRI @ RealAsComplex``), complex Gaussian k-space noise of σ = 2·10⁻³.  The
data are scaled to the prior's window from the zero-filled image (its 99.9th
percentile to the window top, :func:`invsolve.mri_prior.window_scale`) — what a
user's data would get — and the results scaled back.

Methods (each in a fresh process, so that its peak resident memory is its own):

* ``dds-3d`` — the slice-augmented DDS, 50 steps, with ``--tv-weight``, ``--rho`` and
  ``--cg-iterations``;
* ``slice-dds`` — the same sampler without TV (λ = 0): DDS on every slice alone,
  the same prior and budget;
* ``tv-3d`` — 3D total variation alone (``tv_reconstruct`` on the volume, ``--tv3d-weight``);
* ``tv-dds-3d`` — ``tv-3d``, then ``dds-3d`` started from its volume diffused to
  ``--start-time`` (Chung, Sim & Ye, "Come-Closer-Diffuse-Faster", CVPR 2022), with
  ``--warm-steps`` steps over ``[0, start_time]``; its seconds include the TV run;
* ``mbir`` — DiffusionMBIR's predictor–corrector, ``--mbir-steps`` steps, its one CG
  iteration per data step;
* ``zero-filled`` — MRI only: ``Aᴴy`` (the minimum-norm solution of single-coil
  Cartesian MRI).

The defaults of ``--tv-weight``, ``--rho``, ``--cg-iterations`` and ``--tv3d-weight``
(:data:`DEFAULTS`) are the best of a sweep on the validation split: CT on 8 slices, 8
views (docs/benchmarks/sweep_recon_3d.jsonl), MRI on the macaque volume
(docs/benchmarks/sweep_recon_3d_mri.jsonl); those of ``--start-time`` and
``--warm-steps`` of a sweep of ``tv-dds-3d`` on the validation volumes, CT at 64 slices
(docs/benchmarks/sweep_recon_3d_warm.jsonl).

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
METHODS = ("dds-3d", "slice-dds", "tv-3d", "tv-dds-3d", "mbir", "zero-filled")
IMAGE = 64
DDS_STEPS = 50
TV_ITERATIONS = 300
#: per task: the prior, the slice axis and the validation sweep's choices
DEFAULTS = {
    "ct": {"prior": "ct-ellipses", "axis": 0, "tv_weight": 4e-4, "rho": 5e-3, "cg_iterations": 5, "tv3d_weight": 3e-3,
           "start_time": 0.2, "warm_steps": 50},
    "mri": {"prior": "mri-brain", "axis": 1, "tv_weight": 1e-3, "rho": 1e-1, "cg_iterations": 5, "tv3d_weight": 3e-3,
            "start_time": 0.05, "warm_steps": 50},
}
MRI_ACCELERATION = 4
MRI_NOISE_STD = 2e-3
#: the brain volumes of the MRI task: (where they come from, file)
BRAINS = {"validation": "INIA19 macaque T1 (mricron-data)", "test": "MNI ICBM152 2009a sym T1 (nilearn)"}


def brain_volume(split: str) -> torch.Tensor:
    """The MRI task's brain ``(1, 1, 64, 64, 64)``, float64, RAS axes, its brain's 99.9th percentile at 1.

    Cropped to the brain (voxels above 5 % of that percentile), the coronal
    (x, z) plane to a square around it so that resampling keeps its aspect, then
    area-averaged to 64³.
    """
    import nibabel

    if split == "test":
        from nilearn.datasets import load_mni152_template

        image = load_mni152_template(resolution=1)
    else:
        image = nibabel.load("/usr/share/mricron/templates/inia19-t1-brain.nii.gz")
    if nibabel.aff2axcodes(image.affine) != ("R", "A", "S"):
        raise ValueError(f"expected a RAS volume for {BRAINS[split]}, got {nibabel.aff2axcodes(image.affine)}")
    volume = torch.as_tensor(image.get_fdata(), dtype=torch.float64)
    level = torch.quantile(volume[volume > 0], 0.999)
    inside = (volume > 0.05 * level).nonzero()
    low, high = inside.min(0).values, inside.max(0).values + 1
    side = int(max(high[0] - low[0], high[2] - low[2]))
    centre = (low + high) // 2
    padded = torch.nn.functional.pad(volume, [side] * 6)  # room for the square around the brain
    starts = [int(centre[0]) - side // 2 + side, int(low[1]) + side, int(centre[2]) - side // 2 + side]
    stops = [starts[0] + side, int(high[1]) + side, starts[2] + side]
    cropped = padded[starts[0] : stops[0], starts[1] : stops[1], starts[2] : stops[2]]
    resampled = torch.nn.functional.interpolate(cropped[None, None], size=(IMAGE,) * 3, mode="area")
    return (resampled / level).clamp_min(0.0)


def make_mri_problem(split: str, seed: int, window_top: float):
    """Truth, operator, k-space and noise std of the MRI task, all scaled to the prior's window (module docstring)."""
    from invsolve.mri_prior import window_scale
    from invsolve.operators import GaussianNoise, RealAsComplex
    from invsolve.operators.mri import CartesianMRI, poisson_disc_mask

    truth = brain_volume(split)
    mask = poisson_disc_mask((IMAGE, IMAGE), MRI_ACCELERATION, center_fraction=0.08, seed=seed)
    operator = CartesianMRI(mask, shape=(IMAGE,) * 3) @ RealAsComplex((1, *(IMAGE,) * 3))
    y = operator.measured(GaussianNoise(MRI_NOISE_STD)(operator(truth), seed=seed + 1))
    scale = window_scale(operator.adjoint(y), window_top)
    return truth * scale, operator, y * scale, MRI_NOISE_STD * scale


def make_problem(slices: int, views: int, seed: int, size: int = IMAGE):
    """Truth volume ``(1, 1, slices, size, size)`` (1/mm), its slice-stacked parallel-beam operator, noisy
    sinograms and their noise std: the demo's scan of every slice (:func:`invsolve.demo.ct_demo_scan`)."""
    from invsolve.demo import ct_demo_noise_std, ct_demo_scan, held_out_phantoms

    truth = held_out_phantoms(1, seed, (slices, size, size))  # ct-ellipses' distribution, 1/mm
    operator, y = ct_demo_scan(truth, views, seed + 1)
    return truth, operator, y, ct_demo_noise_std(y)


def prior_at_size(prior, size: int):
    """``prior``'s U-Net on ``size``×``size`` slices: the same weights in a network built for that size.

    For timing and memory only (module docstring, ``--image-size``): the weights learnt 64² slices.
    """
    from invsolve.priors import UNetPrior

    resized = UNetPrior((prior.image_shape[0], size, size), prior.schedule, prior.prediction, prior.normalization,
                        inference_dtype=prior.inference_dtype, **prior.architecture())
    resized.unet.load_state_dict(prior.unet.state_dict())
    return resized


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work (the seconds measured are then the computation's)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def phantom_seed(args: argparse.Namespace) -> int:
    """The CT phantom's seed: the split's base seed, ``+ 2·--volume`` (the noise takes the next seed)."""
    return SPLITS[args.split] + 2 * args.volume


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
    """One method on the chosen split's first volume, in this (fresh) process."""
    import invsolve
    from invsolve.demo import cone_beam_demo_scan
    from invsolve.metrics import psnr, ssim
    from invsolve.mri_prior import prior_window
    from invsolve.priors import pretrained

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    task = DEFAULTS[args.task]
    # the samplers use the prior; on MRI data the baselines need its window (the data's scale) as well
    needs_prior = args.task == "mri" or method not in ("tv-3d", "zero-filled")
    prior = pretrained(task["prior"]) if needs_prior else None
    if prior is not None and args.image_size != IMAGE:
        prior = prior_at_size(prior, args.image_size)
    axis = task["axis"]
    if args.task == "ct" and args.geometry == "cone":
        truth, operator, y, noise_std = cone_beam_demo_scan(args.slices, args.views, phantom_seed(args), args.image_size)
        axis = 2  # the cone-beam volume's axes are x, y, z
    elif args.task == "ct":
        truth, operator, y, noise_std = make_problem(args.slices, args.views, phantom_seed(args), args.image_size)
    else:
        truth, operator, y, noise_std = make_mri_problem(args.split, SPLITS[args.split], prior_window(prior)[1])
    truth, operator, y = truth.to(device), operator.to(device), y.to(device)
    prior = prior.to(device) if prior is not None else None
    gc.collect()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with ResidentPeak() as watch:
        at_start = watch.peak_mb
        synchronize(device)
        started = time.perf_counter()
        if method in ("tv-3d", "tv-dds-3d"):
            image = invsolve.tv_reconstruct(y, operator, args.tv3d_weight, iterations=TV_ITERATIONS, progress=False)
            evaluations, settings = 0, {"weight": args.tv3d_weight, "iterations": TV_ITERATIONS}
        elif method == "zero-filled":
            image, evaluations, settings = operator.adjoint(y), 0, {}
        if method not in ("tv-3d", "zero-filled"):
            sampler = "mbir" if method == "mbir" else "dds-3d"
            warm = method == "tv-dds-3d"
            settings = {
                "steps": args.mbir_steps if method == "mbir" else (args.warm_steps if warm else DDS_STEPS),
                "tv_weight": 0.0 if method == "slice-dds" else args.tv_weight,
                "rho": args.rho,
                "cg_iterations": args.cg_iterations if method != "mbir" else 1,
                "slice_batch": slice_batch,
                "axis": axis,
            }
            start = {"start_time": args.start_time, "start_image": image} if warm else {}
            result = invsolve.reconstruct(
                y, operator, prior, sampler, noise_std=noise_std, seed=0, progress=False, **start, **settings
            )
            image, evaluations = result.image, result.info["network_evaluations"]
            if warm:
                settings = {"start_tv_weight": args.tv3d_weight, "start_time": args.start_time, **settings}
        synchronize(device)
        seconds = time.perf_counter() - started
    window = float(truth.max() - truth.min())
    return {
        "task": args.task,
        "volume": BRAINS[args.split] if args.task == "mri" else f"random ellipsoids, seed {phantom_seed(args)}",
        **({"geometry": args.geometry} if args.task == "ct" else {}),
        "method": method,
        "settings": settings,
        "psnr_db": float(psnr(image, truth, data_range=window)),
        "ssim": float(ssim(image, truth, data_range=window)),
        "network_evaluations_per_slice": evaluations,
        "seconds": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "reconstruction_peak_rss_mb": watch.peak_mb,
        "rss_before_reconstruction_mb": at_start,
        "device": str(device),
        **({"gpu": torch.cuda.get_device_name(device),
            "gpu_peak_allocated_mb": torch.cuda.max_memory_allocated(device) / 2**20} if device.type == "cuda" else {}),
    }


def measure(method: str, args: argparse.Namespace, slice_batch: int) -> dict[str, Any]:
    """:func:`run_method` in a fresh process; raises if it fails."""
    command = [sys.executable, __file__, "--one", method, "--slice-batch", str(slice_batch)]
    for key in ("task", "slices", "views", "split", "volume", "tv_weight", "rho", "cg_iterations", "tv3d_weight",
                "mbir_steps", "start_time", "warm_steps", "threads", "device", "image_size", "geometry"):
        command += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(DEFAULTS), default="ct", help="(default: %(default)s)")
    parser.add_argument("--slices", type=int, default=64, help="CT: slices of the N×N×S volume (default: %(default)s)")
    parser.add_argument("--views", type=int, default=8, help="CT: views over 180° (default: %(default)s)")
    parser.add_argument("--split", choices=sorted(SPLITS), default="test", help="volumes (default: %(default)s)")
    parser.add_argument("--volume", type=int, default=0,
                        help="CT: the split's K-th phantom volume, seed base + 2K (default: %(default)s)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS[:3]), help="(default: %(default)s)")
    parser.add_argument("--tv-weight", type=float, help="dds-3d's and mbir's relative λ (default: the task's DEFAULTS)")
    parser.add_argument("--rho", type=float, help="their relative ρ (default: the task's DEFAULTS)")
    parser.add_argument("--cg-iterations", type=int, help="dds-3d's CG iterations (default: the task's DEFAULTS)")
    parser.add_argument("--tv3d-weight", type=float, help="3D TV's weight (default: the task's DEFAULTS)")
    parser.add_argument("--mbir-steps", type=int, default=1000, help="(default: %(default)s)")
    parser.add_argument("--start-time", type=float, help="tv-dds-3d's start time (default: the task's DEFAULTS)")
    parser.add_argument("--warm-steps", type=int, help="tv-dds-3d's steps (default: the task's DEFAULTS)")
    parser.add_argument("--slice-batch", type=int, nargs="+", default=[16], help="(default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    parser.add_argument("--geometry", choices=["parallel", "cone"], default="parallel",
                        help="CT: slice-stacked parallel beam over 180° or circular cone beam over 360° (default: %(default)s)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="(default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=IMAGE,
                        help="CT: N×N slices, the prior's network at that size (timing only; default: %(default)s)")
    parser.add_argument("--out", help="record the JSON here (default: benchmarks/results/recon_3d[.<options>].json)")
    parser.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    path = results_path("recon_3d", parser, args)  # named by the options given, before the task's defaults fill in
    for key in ("tv_weight", "rho", "cg_iterations", "tv3d_weight", "start_time", "warm_steps"):
        if getattr(args, key) is None:
            setattr(args, key, DEFAULTS[args.task][key])
    if args.task == "ct" and "zero-filled" in args.methods + [args.one]:
        parser.error("zero-filled is an MRI baseline (--task mri)")
    if args.geometry != "parallel" and args.task == "mri":
        parser.error("--geometry applies to the CT task")
    if args.image_size != IMAGE and (args.task == "mri" or args.image_size < 4 or args.image_size % 4):
        parser.error(f"--image-size applies to the CT task and takes a multiple of 4 (the U-Net's levels), "
                     f"got {args.image_size} with --task {args.task}")
    if args.volume < 0 or (args.volume and args.task == "mri"):
        parser.error("--volume takes K >= 0 and applies to the CT task (the MRI task has one brain per split)")
    if args.one:
        print(json.dumps(run_method(args.one, args, args.slice_batch[0])))
        return
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
