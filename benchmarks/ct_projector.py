"""CT projector speed: invsolve's torch ray transforms against the peers, in one run.

Run by hand (not a test): ``python benchmarks/ct_projector.py [--repeats 5]``.
Prints JSON with, per case, the median forward / adjoint / FBP times in ms of
each available implementation, the ratios ``peer / invsolve`` and the peak
resident memory of a fresh process doing that case.

Cases: parallel beam 256² with 60 and 180 views, fan beam 256² with 180 views,
and cone beam 128³ with 180 views (no peer runs 3D cone beam on a CPU).  Peers, when installed: ODL with
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
    from invsolve.operators.ct import ConeBeam3D, FanBeam2D, ParallelBeam2D, sparse_view_angles

    kind, size, views = case.split("-")
    size, views = int(size), int(views)
    if kind == "parallel":
        return ParallelBeam2D((size, size), sparse_view_angles(views))
    if kind == "fan":
        return FanBeam2D((size, size), sparse_view_angles(views, 2 * math.pi), src_radius=4.0, det_radius=2.0)
    return ConeBeam3D((size,) * 3, sparse_view_angles(views, 2 * math.pi), src_radius=4.0, det_radius=2.0)


def phantom(shape: tuple[int, ...]) -> torch.Tensor:
    """Two nested uniform ellipses (ellipsoids): sharp edges, like CT data."""
    axes = [(torch.arange(n, dtype=torch.float32) + 0.5) / n * 2 - 1 for n in shape]
    grid = torch.meshgrid(*axes, indexing="ij")
    outer = sum((c / r) ** 2 for c, r in zip(grid, (0.7, 0.9, 0.8)))
    inner = sum(((c - o) / r) ** 2 for c, o, r in zip(grid, (0.2, 0.0, 0.1), (0.2, 0.3, 0.25)))
    return (outer <= 1).float() + 0.5 * (inner <= 1).float()


def time_invsolve(case: str, repeats: int) -> dict:
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
    return {
        "forward_ms": median_ms(lambda: op(x), repeats),
        "adjoint_ms": median_ms(lambda: op.adjoint(y), repeats),
        "fbp_ms": median_ms(reconstruct, repeats),
    }


def time_odl(case: str, repeats: int) -> dict:
    import odl  # noqa: F401  (imported here only: it changes SciPy settings process-wide)
    from odl.applications import tomo

    space, geometry = make_geometry(case).to_odl()
    op = tomo.RayTransform(space, geometry, impl="astra_cpu")
    x = space.element(phantom(tuple(space.shape)).numpy())
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
    image = phantom(geometry.image_shape).numpy().astype(np.float64)
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
    x = phantom(geometry.image_shape)[None, None]
    y = physics.A(x)
    return {"forward_ms": median_ms(lambda: physics.A(x), repeats), "adjoint_ms": median_ms(lambda: physics.A_adjoint(y), repeats)}


IMPLEMENTATIONS = {"invsolve": time_invsolve, "odl_astra_cpu": time_odl, "skimage": time_skimage, "deepinv": time_deepinv}
# Which geometries each peer can do at all (ODL has no CPU backend for 3D).
APPLIES = {"odl_astra_cpu": ("parallel", "fan"), "skimage": ("parallel",), "deepinv": ("parallel",)}


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
    parser.add_argument("--cases", nargs="*", default=["parallel-256-60", "parallel-256-180", "fan-256-180", "cone-128-180"])
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
