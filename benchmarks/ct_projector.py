"""CT projector speed: invsolve's torch ray transforms against the peers, in one run.

Run by hand (not a test): ``python benchmarks/ct_projector.py [--repeats 5]``.
Prints JSON with, per case, the median forward / adjoint / FBP times in ms of
each available implementation, the ratios ``peer / invsolve`` and the peak
resident memory of a fresh process doing that case.

Cases: parallel beam 256² with 60 and 180 views, fan beam 256² with 180 views,
and (once it exists) cone beam 128³.  Peers, when installed: ODL with
``impl='astra_cpu'`` (same geometry through ``to_odl()``), scikit-image's
``radon``/``iradon`` (parallel beam only, no matched adjoint) and deepinv's
``Tomography`` (parallel beam).  Timings use 2 torch threads (the CI machine)
and ``OMP_WAIT_POLICY=PASSIVE``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

THREADS = 2


def median_ms(function, repeats: int) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


def make_geometry(case: str):
    from invsolve.operators.ct import FanBeam2D, ParallelBeam2D, sparse_view_angles

    kind, size, views = case.split("-")
    size, views = int(size), int(views)
    if kind == "parallel":
        return ParallelBeam2D((size, size), sparse_view_angles(views))
    return FanBeam2D((size, size), sparse_view_angles(views, 2 * math.pi), src_radius=4.0, det_radius=2.0)


def phantom(size: int) -> torch.Tensor:
    axis = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    x, y = axis[:, None], axis[None, :]
    return ((x / 0.7) ** 2 + (y / 0.9) ** 2 <= 1).float() + 0.5 * (((x - 0.2) / 0.2) ** 2 + (y / 0.3) ** 2 <= 1).float()


def time_invsolve(case: str, repeats: int) -> dict:
    from invsolve.operators.ct import RayTransform

    geometry = make_geometry(case)
    op = RayTransform(geometry)
    x = phantom(geometry.image_shape[0])[None, None]
    y = op(x)
    result = {"forward_ms": median_ms(lambda: op(x), repeats), "adjoint_ms": median_ms(lambda: op.adjoint(y), repeats)}
    try:
        from invsolve.operators.ct import fbp
    except ImportError:
        return result
    result["fbp_ms"] = median_ms(lambda: fbp(y, op), repeats)
    return result


def time_odl(case: str, repeats: int) -> dict:
    import odl  # noqa: F401  (imported here only: it changes SciPy settings process-wide)
    from odl.applications import tomo

    space, geometry = make_geometry(case).to_odl()
    op = tomo.RayTransform(space, geometry, impl="astra_cpu")
    x = space.element(phantom(space.shape[0]).numpy())
    y = op(x)
    fbp = tomo.fbp_op(op)
    return {
        "forward_ms": median_ms(lambda: op(x), repeats),
        "adjoint_ms": median_ms(lambda: op.adjoint(y), repeats),
        "fbp_ms": median_ms(lambda: fbp(y), repeats),
    }


def time_skimage(case: str, repeats: int) -> dict:
    from skimage.transform import iradon, radon

    geometry = make_geometry(case)
    image = phantom(geometry.image_shape[0]).numpy().astype(np.float64)
    degrees = np.rad2deg(geometry.angles.numpy())
    sinogram = radon(image, theta=degrees, circle=False)
    return {
        "forward_ms": median_ms(lambda: radon(image, theta=degrees, circle=False), repeats),
        "fbp_ms": median_ms(lambda: iradon(sinogram, theta=degrees, circle=False), repeats),
    }


def time_deepinv(case: str, repeats: int) -> dict:
    from deepinv.physics import Tomography

    geometry = make_geometry(case)
    physics = Tomography(angles=torch.rad2deg(geometry.angles).float(), img_width=geometry.image_shape[0], circle=False)
    x = phantom(geometry.image_shape[0])[None, None]
    y = physics.A(x)
    return {"forward_ms": median_ms(lambda: physics.A(x), repeats), "adjoint_ms": median_ms(lambda: physics.A_adjoint(y), repeats)}


IMPLEMENTATIONS = {"invsolve": time_invsolve, "odl_astra_cpu": time_odl, "skimage": time_skimage, "deepinv": time_deepinv}
APPLIES = {"skimage": ("parallel",), "deepinv": ("parallel",)}


def run_one(implementation: str, case: str, repeats: int) -> dict:
    """Time one implementation on one case in this process and add its peak memory."""
    torch.set_num_threads(THREADS)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = IMPLEMENTATIONS[implementation](case, repeats)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["rss_before_mb"] = before / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cases", nargs="*", default=["parallel-256-60", "parallel-256-180", "fan-256-180"])
    parser.add_argument("--one", nargs=2, metavar=("IMPLEMENTATION", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one, args.repeats)))
        return
    report = {"threads": THREADS, "torch": torch.__version__, "cases": {}}
    for case in args.cases:
        rows = {}
        for implementation in IMPLEMENTATIONS:
            if implementation in APPLIES and case.split("-")[0] not in APPLIES[implementation]:
                continue
            # A fresh process per measurement: independent peak memory, no shared caches.
            completed = subprocess.run(
                [sys.executable, __file__, "--one", implementation, case, "--repeats", str(args.repeats)],
                capture_output=True,
                text=True,
            )
            if completed.returncode != 0:
                rows[implementation] = {"unavailable": completed.stderr.strip().splitlines()[-1]}
                continue
            rows[implementation] = json.loads(completed.stdout)
        ours = rows["invsolve"]
        for name, row in rows.items():
            if name == "invsolve" or "unavailable" in row:
                continue
            row["speedup_of_invsolve"] = {
                key: row[key] / ours[key] for key in ("forward_ms", "adjoint_ms", "fbp_ms") if key in row and key in ours
            }
            if "forward_ms" in row and "adjoint_ms" in row:
                row["speedup_of_invsolve"]["forward_plus_adjoint"] = (row["forward_ms"] + row["adjoint_ms"]) / (
                    ours["forward_ms"] + ours["adjoint_ms"]
                )
        report["cases"][case] = rows
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
