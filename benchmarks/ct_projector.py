"""CT projector speed: invsolve's torch ray transforms against the peers, at equal thread counts.

Run by hand (not a test)::

    python benchmarks/ct_projector.py [--threads 1 2] [--rounds 5] [--min-seconds 1] [--cases ...]

Cases: parallel beam 256² with 60 and 180 views, fan beam 256² with 180 views
and cone beam 128³ with 180 views (no peer runs 3D cone beam on a CPU), all
float32.  Peers, when installed: ODL with ``impl='astra_cpu'`` (same geometry
through ``to_odl()``), scikit-image's ``radon``/``iradon`` (parallel beam
only, no matched adjoint) and deepinv's ``Tomography`` (parallel beam).

Every case is timed at every ``--threads`` count in a fresh process whose
OpenMP/MKL/OpenBLAS thread counts and torch's intra- and inter-op threads are
that count (``OMP_WAIT_POLICY=PASSIVE``); all implementations run in that
one process, **interleaved**: each operation is timed in ``--blocks`` blocks,
the implementations taking turns within every block (A B, then B A), and a
block's ratio ``peer / invsolve`` compares two medians taken seconds apart.
A slow spell of this shared 2-core machine (the same call varies by up to
2× within a minute here) then lands on both sides of a ratio instead of on
one process, which is what made separate-process timings drift by 10–30 %
between reruns.  ASTRA's CPU projectors (and ODL's FBP around them) run on
one thread whatever the setting: each timing records ``threads_used``, the
OS threads that did at least 10 % of the busiest one's work during the
block (read from ``/proc/self/task``), which is 1 for ``odl_astra_cpu`` at 2
threads and 2 for invsolve.  So the ratios at 1 thread compare the code, and
those at 2 threads what a user of each library gets on the CI machine's two
cores.

A block's timing is the median of as many calls as take ``--min-seconds /
--blocks`` (at least ``--min-repeats``) after a warm-up call.  A round's
ratio is the median of its blocks' ratios; ``--rounds R`` repeats the whole
comparison in R fresh processes, alternating the order of the
implementations and thread counts from round to round.  The report gives
each ratio's median over the rounds, its range and whether every round
agrees within 10 % (``within_tolerance``), plus each process's peak resident
memory (all implementations of a case together).

Prints the JSON (progress and a summary table go to stderr) and records it in
``benchmarks/results/ct_projector.json`` (see ``benchmarks/_recording.py``;
saved after every round, ``complete`` false until the last).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
from typing import Any, Callable

import torch

from _recording import pin_threads, results_path, run_metadata, save_run, spread, thread_environment, time_call

OPERATIONS = ("forward", "adjoint", "fbp")
DEFAULT_CASES = ("parallel-256-60", "parallel-256-180", "fan-256-180", "cone-128-180")
#: modules a peer needs; a child that cannot import them reports the peer unavailable (invsolve must run)
REQUIRES = {"invsolve": (), "odl_astra_cpu": ("odl", "astra"), "skimage": ("skimage",), "deepinv": ("deepinv.physics",)}
# Which geometries each peer can do at all (ODL has no CPU backend for 3D).
APPLIES = {
    "invsolve": ("parallel", "fan", "cone"),
    "odl_astra_cpu": ("parallel", "fan"),
    "skimage": ("parallel",),
    "deepinv": ("parallel",),
}


def make_geometry(case: str):
    """The geometry of ``case`` = ``"<parallel|fan|cone>-<size>-<views>"`` (views over 180° or 360°)."""
    from invsolve.operators.ct import ConeBeam3D, FanBeam2D, ParallelBeam2D, sparse_view_angles

    kind, size, views = case.split("-")
    size, views = int(size), int(views)
    if kind == "parallel":
        return ParallelBeam2D((size, size), sparse_view_angles(views))
    if kind == "fan":
        return FanBeam2D((size, size), sparse_view_angles(views, 2 * math.pi), src_radius=4.0, det_radius=2.0)
    return ConeBeam3D((size,) * 3, sparse_view_angles(views, 2 * math.pi), src_radius=4.0, det_radius=2.0)


def check_case(case: str) -> str:
    """``case`` if it reads ``"<parallel|fan|cone>-<size>-<views>"`` (positive integers), else an argparse error."""
    parts = case.split("-")
    if len(parts) != 3 or parts[0] not in APPLIES["invsolve"] or not all(p.isdigit() and int(p) > 0 for p in parts[1:]):
        raise argparse.ArgumentTypeError(
            f"a case reads <parallel|fan|cone>-<size>-<views>, e.g. parallel-256-60; got {case!r}"
        )
    return case


def phantom(shape: tuple[int, ...]) -> torch.Tensor:
    """Two nested uniform ellipses (ellipsoids) of ``shape``: sharp edges, like CT data."""
    axes = [(torch.arange(n, dtype=torch.float32) + 0.5) / n * 2 - 1 for n in shape]
    grid = torch.meshgrid(*axes, indexing="ij")
    outer = sum((c / r) ** 2 for c, r in zip(grid, (0.7, 0.9, 0.8)))
    inner = sum(((c - o) / r) ** 2 for c, o, r in zip(grid, (0.2, 0.0, 0.1), (0.2, 0.3, 0.25)))
    return (outer <= 1).float() + 0.5 * (inner <= 1).float()


def calls_invsolve(case: str) -> dict[str, Callable[[], object]]:
    from invsolve.operators.ct import ConeBeam3D, ConeBeamTransform, RayTransform, fbp

    geometry = make_geometry(case)
    if isinstance(geometry, ConeBeam3D):
        op = ConeBeamTransform(geometry)
        x = phantom(geometry.volume_shape)[None, None]
        y = op(x)
        reconstruct = lambda: op.fbp(y)  # noqa: E731  (FDK)
    else:
        op = RayTransform(geometry)
        x = phantom(geometry.image_shape)[None, None]
        y = op(x)
        reconstruct = lambda: fbp(y, op)  # noqa: E731
    return {"forward": lambda: op(x), "adjoint": lambda: op.adjoint(y), "fbp": reconstruct}


def calls_odl(case: str) -> dict[str, Callable[[], object]]:
    from odl.applications import tomo  # imported in the child only: it changes SciPy settings process-wide

    space, geometry = make_geometry(case).to_odl()
    op = tomo.RayTransform(space, geometry, impl="astra_cpu")
    x = space.element(phantom(tuple(space.shape)).numpy())
    y = op(x)
    fbp = tomo.fbp_op(op)
    return {"forward": lambda: op(x), "adjoint": lambda: op.adjoint(y), "fbp": lambda: fbp(y)}


def calls_skimage(case: str) -> dict[str, Callable[[], object]]:
    import numpy as np
    from skimage.transform import iradon, radon

    geometry = make_geometry(case)
    image = phantom(geometry.image_shape).numpy().astype(np.float64)
    degrees = np.rad2deg(geometry.angles.numpy())
    sinogram = radon(image, theta=degrees, circle=False)
    return {
        "forward": lambda: radon(image, theta=degrees, circle=False),
        "fbp": lambda: iradon(sinogram, theta=degrees, circle=False),
    }


def calls_deepinv(case: str) -> dict[str, Callable[[], object]]:
    from deepinv.physics import Tomography

    geometry = make_geometry(case)
    degrees = torch.rad2deg(geometry.angles).float()
    physics = Tomography(angles=degrees, img_width=geometry.image_shape[0], circle=False)
    x = phantom(geometry.image_shape)[None, None]
    y = physics.A(x)
    return {"forward": lambda: physics.A(x), "adjoint": lambda: physics.A_adjoint(y)}


IMPLEMENTATIONS = {"invsolve": calls_invsolve, "odl_astra_cpu": calls_odl, "skimage": calls_skimage, "deepinv": calls_deepinv}


def run_paired(case: str, threads: int, implementations: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Time every available implementation on ``case`` in this (fresh) process, interleaved.

    Each operation is timed in ``--blocks`` blocks of about
    ``--min-seconds / --blocks`` seconds per implementation, the
    implementations taking turns (A B, B A, ...), so a slow spell of the
    machine lands on both sides of a comparison.  A block's ratio is the
    peer's median call over invsolve's median call in the same block; the
    round's ratio is the median of its blocks' ratios.
    """
    pin_threads(threads)
    unavailable: dict[str, str] = {}
    calls: dict[str, dict[str, Callable[[], object]]] = {}
    for implementation in implementations:
        if case.split("-")[0] not in APPLIES[implementation]:
            continue
        try:
            for module in REQUIRES[implementation]:
                __import__(module)
        except ImportError as error:  # an optional peer that is not installed (or not importable here)
            unavailable[implementation] = f"{type(error).__name__}: {error}"
            continue
        calls[implementation] = IMPLEMENTATIONS[implementation](case)
    if "invsolve" not in calls:
        raise RuntimeError(f"invsolve cannot run case {case}")
    per_block = args.min_seconds / args.blocks
    timings: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in calls}
    for operation in OPERATIONS:
        having = [name for name in calls if operation in calls[name]]
        for block in range(args.blocks):
            for name in having if block % 2 == 0 else having[::-1]:
                measured = time_call(calls[name][operation], per_block, args.min_repeats)
                timings[name].setdefault(operation, []).append(measured)
    result: dict[str, Any] = {"unavailable": unavailable, "implementations": {}, "ratio_to_invsolve": {}}
    for name, per_operation in timings.items():
        result["implementations"][name] = {
            operation: {
                "median_ms": statistics.median(block["median_ms"] for block in blocks),
                "block_median_ms": [block["median_ms"] for block in blocks],
                "repeats": sum(block["repeats"] for block in blocks),
                "cpu_per_wall": statistics.median(block["cpu_per_wall"] for block in blocks),
                "threads_used": [block["threads_used"] for block in blocks],
            }
            for operation, blocks in per_operation.items()
        }
    mine = timings["invsolve"]
    for name, per_operation in timings.items():
        if name == "invsolve":
            continue
        ratios = {
            operation: statistics.median(
                theirs["median_ms"] / own["median_ms"] for theirs, own in zip(blocks, mine[operation])
            )
            for operation, blocks in per_operation.items()
        }
        if "forward" in per_operation and "adjoint" in per_operation:
            ratios["forward_plus_adjoint"] = statistics.median(
                (fwd["median_ms"] + adj["median_ms"]) / (own_fwd["median_ms"] + own_adj["median_ms"])
                for fwd, adj, own_fwd, own_adj in zip(
                    per_operation["forward"], per_operation["adjoint"], mine["forward"], mine["adjoint"]
                )
            )
        result["ratio_to_invsolve"][name] = ratios
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["torch_threads"] = [torch.get_num_threads(), torch.get_num_interop_threads()]
    return result


def measure(case: str, threads: int, implementations: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """:func:`run_paired` in a fresh process with ``threads`` threads; raises if it fails."""
    command = [
        sys.executable, __file__, "--one", case, "--threads", str(threads), "--implementations", *implementations,
        "--min-seconds", str(args.min_seconds), "--min-repeats", str(args.min_repeats), "--blocks", str(args.blocks),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, env=thread_environment(threads))
    if completed.returncode != 0:
        raise RuntimeError(f"{case} at {threads} thread(s) failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout)


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-implementation medians over the rounds and per-peer ratio statistics, for one case and thread count."""
    implementations: dict[str, Any] = {}
    for name in rounds[0]["implementations"]:
        runs = [measured["implementations"][name] for measured in rounds]
        implementations[name] = {
            **{f"{operation}_ms": statistics.median(run[operation]["median_ms"] for run in runs) for operation in runs[0]},
            "cpu_per_wall": {operation: statistics.median(run[operation]["cpu_per_wall"] for run in runs) for operation in runs[0]},
            "threads_used": {operation: [run[operation]["threads_used"] for run in runs] for operation in runs[0]},
            "rounds": runs,
        }
    ratios = {
        name: {
            operation: spread([measured["ratio_to_invsolve"][name][operation] for measured in rounds])
            for operation in rounds[0]["ratio_to_invsolve"][name]
        }
        for name in rounds[0]["ratio_to_invsolve"]
    }
    return {
        "implementations": implementations,
        "speedup_of_invsolve": ratios,
        "peak_rss_mb": max(measured["peak_rss_mb"] for measured in rounds),
    }


def table(cases: dict[str, Any]) -> str:
    """A markdown summary of the report, for reading (the JSON holds everything)."""
    lines = [
        "| case | threads | invsolve fwd / adj / FBP (ms) | astra_cpu fwd / adj / FBP (ms) "
        "| vs astra: fwd+adj | vs astra: FBP | skimage radon / iradon (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for case, per_threads in cases.items():
        for threads, entry in per_threads.items():
            found = entry["implementations"]

            def times(name: str) -> str:
                if name not in found:
                    return "—"
                return " / ".join(f"{found[name][f'{op}_ms']:.1f}" for op in OPERATIONS if f"{op}_ms" in found[name])

            def ratio(operation: str) -> str:
                found_ratio = entry["speedup_of_invsolve"].get("odl_astra_cpu", {}).get(operation)
                if found_ratio is None:
                    return "—"
                mark = "" if found_ratio["within_tolerance"] else " (spread > 10 %)"
                return f"{found_ratio['median']:.2f}× ({found_ratio['min']:.2f}–{found_ratio['max']:.2f}){mark}"

            lines.append(
                f"| {case} | {threads} | {times('invsolve')} | {times('odl_astra_cpu')} | {ratio('forward_plus_adjoint')} "
                f"| {ratio('fbp')} | {times('skimage')} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="repeats of the whole comparison (default: %(default)s)")
    parser.add_argument(
        "--min-seconds", type=float, default=1.0, help="seconds of timed calls per measurement (default: %(default)s)"
    )
    parser.add_argument("--min-repeats", type=int, default=3, help="timed calls at least (default: %(default)s)")
    parser.add_argument("--cases", type=check_case, nargs="+", default=list(DEFAULT_CASES), help="(default: %(default)s)")
    parser.add_argument(
        "--implementations", nargs="+", choices=list(IMPLEMENTATIONS), default=list(IMPLEMENTATIONS), help="(default: all)"
    )
    parser.add_argument("--out", help="record the JSON here (default: benchmarks/results/ct_projector[.<options>].json)")
    parser.add_argument(
        "--blocks", type=int, default=6, help="interleaved blocks per operation and round (default: %(default)s)"
    )
    parser.add_argument("--one", metavar="CASE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 1 or args.min_repeats < 1 or min(args.threads) < 1 or args.min_seconds < 0 or args.blocks < 1:
        parser.error(
            "--rounds, --min-repeats, --blocks and --threads must be positive and --min-seconds non-negative; got "
            f"{args.rounds}, {args.min_repeats}, {args.blocks}, {args.threads} and {args.min_seconds}"
        )
    if args.one:
        print(json.dumps(run_paired(args.one, args.threads[0], args.implementations, args)))
        return
    if len(set(args.threads)) < len(args.threads) or len(set(args.cases)) < len(args.cases):
        parser.error(f"--threads and --cases must not repeat a value, got {args.threads} and {args.cases}")
    if "invsolve" not in args.implementations:
        parser.error("--implementations must include invsolve: every ratio is against it")
    path = results_path("ct_projector", parser, args)
    metadata = run_metadata(packages=("odl", "astra-toolbox", "scikit-image", "deepinv"))
    settings = {
        key: getattr(args, key)
        for key in ("cases", "threads", "rounds", "blocks", "min_seconds", "min_repeats", "implementations")
    }
    # what each child's environment held besides its thread counts
    settings["omp_wait_policy"] = thread_environment(1)["OMP_WAIT_POLICY"]
    unavailable: dict[str, str] = {}
    # measured[case][threads] = one child result per round
    measured: dict[str, dict[str, list[dict[str, Any]]]] = {case: {str(n): [] for n in args.threads} for case in args.cases}
    report: dict[str, Any] = {}
    for number in range(args.rounds):
        in_order = number % 2 == 0  # alternate the order every round: A B, then B A
        for case in args.cases:
            for threads in args.threads if in_order else args.threads[::-1]:
                print(f"round {number + 1}/{args.rounds}: {case}, {threads} thread(s)", file=sys.stderr, flush=True)
                order = args.implementations if in_order else args.implementations[::-1]
                result = measure(case, threads, order, args)
                unavailable.update(result["unavailable"])
                measured[case][str(threads)].append(result)
        report = {
            "settings": settings,
            "rounds_done": number + 1,
            "unavailable": unavailable,
            "cases": {
                case: {threads: summarise(rounds) for threads, rounds in per_threads.items()}
                for case, per_threads in measured.items()
            },
        }
        save_run(path, metadata, report, complete=number + 1 == args.rounds)
    print(path.read_text(), end="")
    print(table(report["cases"]), file=sys.stderr)
    print(f"recorded in {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
