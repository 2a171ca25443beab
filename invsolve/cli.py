"""The ``invsolve`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="invsolve", description="Reconstruct images from indirect measurements with diffusion priors."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="inpaint a real CT slice with an exact Gaussian prior; writes PNG + JSON")
    demo.add_argument("--out", default="invsolve-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--size", type=int, default=32, help="image side in pixels, 8..64 (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    demo.add_argument("--dps-samples", type=int, default=16, help="DPS samples (default: %(default)s)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    training = commands.add_parser(
        "train-prior",
        help="train a UNet diffusion prior from a TOML config; writes prior.pt, train_state.pt, log.json, samples/",
        description="Train a UNet diffusion prior from a TOML config ([data], [prior], [train], [output]; see "
        "invsolve.priors.train).  Several processes: torchrun --nproc_per_node N -m invsolve.cli train-prior ...",
    )
    training.add_argument("config", help="the TOML config file")
    training.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="STATE",
        help="continue from train_state.pt in the output folder, or from the file STATE",
    )
    training.add_argument("--out", default=None, help="output folder (default: [output] dir of the config)")
    training.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _build_parser().parse_args(argv)
    if args.command == "demo":
        from invsolve.demo import run_demo

        try:
            metrics = run_demo(args.out, size=args.size, seed=args.seed, dps_samples=args.dps_samples, progress=not args.no_progress)
        except (ValueError, TypeError, FileNotFoundError) as error:
            print(f"invsolve demo: error: {error}", file=sys.stderr)
            return 2
        print(json.dumps(metrics, indent=2))
        print(f"wrote {args.out}/demo.png, {args.out}/demo_std.png and {args.out}/metrics.json", file=sys.stderr)
    elif args.command == "train-prior":
        from invsolve.priors import train

        try:
            result = train(args.config, resume=args.resume, progress=not args.no_progress, out=args.out)
        except (ValueError, TypeError, FileNotFoundError, FileExistsError) as error:
            print(f"invsolve train-prior: error: {error}", file=sys.stderr)
            return 2
        summary = {
            "prior": str(result.output_dir / "prior.pt"),
            "steps": result.steps,
            "final_loss": float(result.losses[-1]),
        }
        if os.environ.get("RANK", "0") == "0":  # one summary under torchrun
            print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
