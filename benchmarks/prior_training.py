"""Speed of UNet prior training and inference: float32 against bfloat16, at 64² and 128².

Run by hand: ``python benchmarks/prior_training.py [--quick] [--out FILE.json]``.
Prints JSON with, per image size and precision:

* ``train_images_per_s`` — images per second of :func:`invsolve.priors.train`
  itself (data loading from an in-memory cache, the loss, backward pass,
  gradient clipping, AdamW and the EMA update), read from its ``log.json``
  after warm-up steps;
* ``nfe_per_s`` — network evaluations per second of
  :meth:`UNetPrior.network_output` (the call every sampler makes) on a
  batch of ``--batch`` images, and ``inference_images_per_s`` = ``nfe_per_s × batch``.

On a machine shared with other processes the figures vary a lot (threads
wait for each other); the JSON records the load average before and after.
The network is the one of ``configs/ct-ellipses.toml`` (about 1.1 M
parameters, attention at the lowest resolution), with v-prediction.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from invsolve.files import save_json
from invsolve.priors import UNetPrior, train

ARCHITECTURE = {"channels": [32, 64, 64], "attention_levels": [False, False, True], "num_head_channels": 32}
WARMUP_STEPS = 2


def training_speed(size: int, bf16: bool, batch: int, steps: int, folder: Path) -> float:
    """Images per second of ``train()`` over ``steps`` steps after ``WARMUP_STEPS``."""
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
            "bf16": bf16,
            "log_every": WARMUP_STEPS,
            "checkpoint_every": 0,
        },
    }
    out = folder / f"run-{size}-{bf16}"
    train(config, out=out, progress=False)
    # log records every WARMUP_STEPS steps: the first one holds the warm-up
    records = json.loads((out / "log.json").read_text())[1:]
    seconds = sum(WARMUP_STEPS * batch / record["images_per_s"] for record in records)
    return len(records) * WARMUP_STEPS * batch / seconds


@torch.no_grad()
def inference_speed(size: int, bf16: bool, batch: int, calls: int) -> float:
    """Network evaluations (calls on a batch of ``batch``) per second."""
    precision = "bfloat16" if bf16 else "float32"
    prior = UNetPrior((1, size, size), prediction="v", inference_dtype=precision, **ARCHITECTURE)
    generator = torch.Generator().manual_seed(0)
    x_t = torch.randn(batch, 1, size, size, generator=generator)
    t = torch.rand(batch, generator=generator)
    prior.network_output(x_t, t)  # warm-up
    start = time.perf_counter()
    for _ in range(calls):
        prior.network_output(x_t, t)
    return calls / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few steps and calls: a rough figure in about a minute")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128], help="image sides (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default: %(default)s)")
    parser.add_argument("--out", help="also write the JSON to this file")
    args = parser.parse_args()
    steps, calls = (4, 3) if args.quick else (16, 10)
    parameters = sum(p.numel() for p in UNetPrior((1, 64, 64), **ARCHITECTURE).parameters())
    results = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cores": os.cpu_count(),
            "load_average_1min_before": os.getloadavg()[0],  # other processes skew a shared machine's figures
        },
        "network": {**ARCHITECTURE, "parameters": parameters},
        "batch": args.batch,
        "train_steps_timed": steps,
        "inference_calls_timed": calls,
        "cases": [],
    }
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            for bf16 in (False, True):
                nfe = inference_speed(size, bf16, args.batch, calls)
                results["cases"].append(
                    {
                        "size": size,
                        "precision": "bfloat16" if bf16 else "float32",
                        "train_images_per_s": training_speed(size, bf16, args.batch, steps, Path(folder)),
                        "nfe_per_s": nfe,
                        "inference_images_per_s": nfe * args.batch,
                    }
                )
    results["machine"]["load_average_1min_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))
    if args.out:
        save_json(args.out, results)


if __name__ == "__main__":
    main()
