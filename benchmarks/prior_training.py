"""Speed of UNet prior training and inference: float32 against bfloat16, at 64² and 128².

Run by hand: ``python benchmarks/prior_training.py [--threads 2] [--repeats 4] [--quick]``.
Prints JSON with, per image size and precision:

* ``train_images_per_s`` — images per second of :func:`invsolve.priors.train`
  itself (data loading from an in-memory cache, the loss, backward pass,
  gradient clipping, AdamW and the EMA update): the median over the
  ``--train-steps`` steps after ``WARMUP_STEPS`` of each run's per-step rates
  (``log.json`` with ``log_every = 1``);
* ``nfe_per_s`` — network evaluations per second of
  :meth:`UNetPrior.network_output` (the call every sampler makes) on a batch
  of ``--batch`` images: one over the median time of a call, calls repeated
  for at least ``--min-seconds``; ``inference_images_per_s`` = ``nfe_per_s × batch``.

torch runs on ``--threads`` intra-op and inter-op threads (and OpenMP/MKL
are told the same).  Each figure is measured ``--repeats`` times; repeat r
measures float32 then bfloat16 when r is even and the other way round when r
is odd (A B B A …), so drift of the machine hits both precisions alike.  The
JSON gives, per size, precision and figure, the median over the repeats with
its range, and the bfloat16 speed-up per repeat (bfloat16 over the float32
measured next to it) with its median and range; ``within_tolerance`` says
whether every repeat agrees within 10 %.  The network is the one of
``configs/ct-ellipses.toml`` (about 1.1 M parameters, attention at the lowest
resolution), with v-prediction.  On a CPU without native bfloat16 kernels
(AVX2 only) invsolve autocasts nothing, so there both precisions measure float32;
the JSON records ``cpu_capability`` and ``native_bfloat16``.

Records the run in ``benchmarks/results/prior_training.json`` (see
``benchmarks/_recording.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from _recording import pin_threads, results_path, run_metadata, save_run, spread, time_call
from invsolve._precision import native_bfloat16
from invsolve.priors import UNetPrior, train

ARCHITECTURE = {"channels": [32, 64, 64], "attention_levels": [False, False, True], "num_head_channels": 32}
WARMUP_STEPS = 2
PRECISIONS = ("float32", "bfloat16")


def training_speed(size: int, precision: str, batch: int, steps: int, folder: Path, run: str) -> float:
    """Median images per second of ``train()`` over ``steps`` steps after ``WARMUP_STEPS``.

    ``run`` names the run's output folder inside ``folder`` (one per call);
    the training images are written once per size and reused.
    """
    images = folder / f"images-{size}"
    if not images.exists():
        images.mkdir()
        for number, image in enumerate(np.random.default_rng(0).uniform(0, 1, (64, size, size)).astype(np.float32)):
            np.save(images / f"{number:03d}.npy", image)
    config = {
        "data": {"source": "image-folder", "path": str(images), "cache": True, "flip": True},
        "prior": {"prediction": "v", "architecture": ARCHITECTURE},
        "train": {
            "steps": WARMUP_STEPS + steps,
            "batch_size": batch,
            "bf16": precision == "bfloat16",
            "log_every": 1,
            "checkpoint_every": 0,
        },
    }
    out = folder / run
    train(config, out=out, progress=False)
    records = json.loads((out / "log.json").read_text())[WARMUP_STEPS:]  # one record per step
    return statistics.median(record["images_per_s"] for record in records)


@torch.no_grad()
def inference_speed(size: int, precision: str, batch: int, min_seconds: float, min_repeats: int) -> float:
    """Network evaluations (calls on a batch of ``batch``) per second: one over the median call time."""
    prior = UNetPrior((1, size, size), prediction="v", inference_dtype=precision, **ARCHITECTURE)
    generator = torch.Generator().manual_seed(0)
    x_t = torch.randn(batch, 1, size, size, generator=generator)
    t = torch.rand(batch, generator=generator)
    timing = time_call(lambda: prior.network_output(x_t, t), min_seconds, min_repeats)
    return 1000 / timing["median_ms"]


def summarise(measured: dict[str, list[dict[str, float]]], batch: int) -> dict[str, Any]:
    """Medians over the repeats of one image size, and the bfloat16 speed-ups, repeat by repeat."""
    figures = ("train_images_per_s", "nfe_per_s")
    summary: dict[str, Any] = {}
    for precision, runs in measured.items():
        summary[precision] = {figure: spread([run[figure] for run in runs]) for figure in figures}
        summary[precision]["inference_images_per_s"] = summary[precision]["nfe_per_s"]["median"] * batch
    summary["bfloat16_speedup"] = {
        figure: spread([fast[figure] / slow[figure] for slow, fast in zip(measured["float32"], measured["bfloat16"])])
        for figure in figures
    }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few steps, short timings, 2 repeats: a rough figure")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="image sides (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=4, help="measurements per figure (default: %(default)s)")
    parser.add_argument("--train-steps", type=int, default=16, help="timed steps per training run (default: %(default)s)")
    parser.add_argument(
        "--min-seconds", type=float, default=5.0, help="seconds of timed inference calls (default: %(default)s)"
    )
    parser.add_argument("--out", help="record the JSON here (default: benchmarks/results/prior_training[.<options>].json)")
    args = parser.parse_args()
    path = results_path("prior_training", parser, args)
    if args.quick:
        args.repeats, args.train_steps, args.min_seconds = 2, 4, 1.0
    if min(args.threads, args.repeats, args.train_steps, args.batch, *args.sizes) < 1 or args.min_seconds < 0:
        parser.error("--threads, --repeats, --train-steps, --batch and --sizes must be positive, --min-seconds non-negative")
    pin_threads(args.threads)
    metadata = run_metadata()
    parameters = sum(p.numel() for p in UNetPrior((1, 64, 64), **ARCHITECTURE).parameters())
    results: dict[str, Any] = {
        "network": {**ARCHITECTURE, "parameters": parameters},
        "settings": {
            key: getattr(args, key) for key in ("sizes", "batch", "threads", "repeats", "train_steps", "min_seconds")
        },
        "warmup_steps": WARMUP_STEPS,
        # bfloat16 autocast runs only where it is native (invsolve._precision): elsewhere both rows are float32
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bfloat16": native_bfloat16("cpu"),
        "order": [],
        "cases": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        for number, size in enumerate(args.sizes):
            measured: dict[str, list[dict[str, float]]] = {precision: [] for precision in PRECISIONS}
            for repeat in range(args.repeats):
                order = PRECISIONS if repeat % 2 == 0 else PRECISIONS[::-1]
                results["order"].append([size, *order])
                for precision in order:
                    print(f"{size}², {precision}, repeat {repeat + 1}/{args.repeats}", file=sys.stderr, flush=True)
                    nfe = inference_speed(size, precision, args.batch, args.min_seconds, min_repeats=3)
                    images = training_speed(
                        size, precision, args.batch, args.train_steps, Path(folder), f"run-{size}-{precision}-{repeat}"
                    )
                    measured[precision].append({"train_images_per_s": images, "nfe_per_s": nfe})
            results["cases"][str(size)] = summarise(measured, args.batch)
            save_run(path, metadata, results, complete=number + 1 == len(args.sizes))
    print(path.read_text(), end="")
    print(f"recorded in {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
