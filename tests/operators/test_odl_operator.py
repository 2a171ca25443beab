"""Tests of the ODL operator of invsolve's ray transforms (operators/ct/odl_operator.py).

ODL's inner products are weighted by cell size, invsolve's are not; the
wrapper's adjoint must be the adjoint in ODL's spaces.  ODL is imported
inside the tests only (it changes process-wide SciPy settings).
"""

from __future__ import annotations

import contextlib
import io
import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from invsolve.operators import cg
from invsolve.operators.ct import (
    ConeBeam3D,
    ConeBeamTransform,
    FanBeam2D,
    ParallelBeam2D,
    RayTransform,
    sparse_view_angles,
)

# ODL's own tolerance for OperatorTest (its default, 1e-5): errors are
# relative to ‖A‖‖x‖‖y‖, and float32 inner products are exact to ~1e-7.
ODL_TOL = 1e-5
IRREGULAR = torch.tensor([0.0, 0.3, 1.7, 2.9, 3.0])


def _per_cell_space(transform):
    """A projection space weighted per entry: each view by its own angular cell."""
    from odl.core.discr import DiscretizedSpace

    reco_space, geometry = transform.geometry.to_odl()
    partition = geometry.partition
    angle_cells, detector_cells = partition.cell_sizes_vecs
    weights = angle_cells[:, None] * detector_cells[None, :]
    tspace = reco_space.tspace_type(partition.shape, weighting=weights, dtype=reco_space.dtype)
    return DiscretizedSpace(partition, tspace)


CASES = {
    "parallel": lambda: (RayTransform(ParallelBeam2D((64, 48), sparse_view_angles(30), extent=(2.0, 1.5))), None),
    "fan": lambda: (
        RayTransform(FanBeam2D((64, 48), sparse_view_angles(24, 2 * math.pi), 4.0, 2.0, extent=(2.0, 1.5))),
        None,
    ),
    "parallel-irregular": lambda: (RayTransform(ParallelBeam2D((40, 36), IRREGULAR)), None),
    "parallel-irregular-per-cell": lambda: (
        (transform := RayTransform(ParallelBeam2D((40, 36), IRREGULAR))),
        _per_cell_space(transform),
    ),
    "cone": lambda: (
        ConeBeamTransform(ConeBeam3D((16, 14, 12), sparse_view_angles(12, 2 * math.pi), 4.0, 2.0)),
        None,
    ),
}


def _blobs(shape, extent) -> np.ndarray:
    """Smooth, asymmetric float32 phantom of two Gaussian blobs, shape ``(H, W)``."""
    height, width = shape
    x = (((np.arange(height) + 0.5) / height - 0.5) * extent[0])[:, None]
    y = (((np.arange(width) + 0.5) / width - 0.5) * extent[1])[None, :]
    blobs = np.exp(-((x - 0.25) ** 2 / 0.12 + (y + 0.1) ** 2 / 0.05))
    blobs = blobs + 0.6 * np.exp(-((x + 0.3) ** 2 + (y - 0.35) ** 2) / 0.04)
    return blobs.astype(np.float32)


def _operator_test_output(op) -> tuple[str, float]:
    """Run ODL's OperatorTest (linearity and adjoint); its printed report and the norm it used.

    OperatorTest reports only by printing: every check prints
    ``Completed all test cases.`` or ``*** FAILED n TEST CASE(S) ***``.
    """
    from odl.core.diagnostics import OperatorTest

    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        test = OperatorTest(op, verbose=True, tol=ODL_TOL)
        test.linear()
        test.adjoint()
    return report.getvalue(), test.operator_norm


def _adjoint_scale(report: str) -> float:
    """The fitted ``(x, A^T y) / (Ax, y)`` that OperatorTest prints."""
    match = re.search(r"\(x, A\^T y\) / \(Ax, y\) = ([-+0-9.eE]+?)\.? Should", report)
    assert match is not None, report
    return float(match.group(1))


def _errors(op, norm: float) -> dict[str, float]:
    """The largest relative errors OperatorTest computes, over the same samples.

    ``adjoint``: ``|⟨Ax, y⟩ − ⟨x, A*y⟩| / (‖A‖‖x‖‖y‖)``; ``homogeneity``:
    ``‖A(cx) − cA(x)‖ / (|c|‖A‖‖x‖)``; ``additivity``:
    ``‖A(x + z) − Ax − Az‖ / (‖A‖(‖x‖ + ‖z‖))``; ``zero``: ``‖A0‖``.
    """
    from odl.core.diagnostics.examples import samples

    adjoint = max(
        abs(op(x).inner(y) - x.inner(op.adjoint(y))) / (norm * x.norm() * y.norm())
        for (_, x), (_, y) in samples(op.domain, op.range)
    )
    homogeneity = max(
        (op(c * x) - c * op(x)).norm() / (abs(c) * norm * x.norm())
        for (_, x), (_, c) in samples(op.domain, op.domain.field)
        if c != 0
    )
    additivity = max(
        (op(x + z) - op(x) - op(z)).norm() / (norm * (x.norm() + z.norm()))
        for (_, x), (_, z) in samples(op.domain, op.domain)
    )
    return {
        "adjoint": adjoint,
        "homogeneity": homogeneity,
        "additivity": additivity,
        "zero": op(op.domain.zero()).norm(),
    }


def _plain_transpose(transform, element) -> np.ndarray:
    """invsolve's adjoint (the plain transpose) of an ODL range element, as an array."""
    values = torch.from_numpy(np.array(element.asarray(), dtype=np.float32))[None, None]
    return transform.adjoint(values)[0, 0].numpy()


@pytest.mark.parametrize("case", sorted(CASES))
def test_odl_operator_test_passes(case):
    transform, proj_space = CASES[case]()
    op = transform.as_odl_operator(proj_space)
    report, norm = _operator_test_output(op)
    # Linearity (homogeneity, additivity) and the adjoint identity all completed.
    assert "FAILED" not in report and "ERROR" not in report, report
    assert report.count("Completed all test cases.") == 3, report
    assert "(A^*)^* == A" in report
    assert abs(_adjoint_scale(report) - 1) <= ODL_TOL, report
    # The same quantities, computed here: far inside ODL's tolerance.
    errors = _errors(op, norm)
    assert errors["zero"] == 0.0
    assert max(errors.values()) <= ODL_TOL / 10, errors


@pytest.mark.parametrize("case", sorted(CASES))
def test_spaces_are_odls(case):
    """Domain: to_odl()'s reco space; range: the space ODL's own RayTransform builds (or the one given)."""
    from odl.applications import tomo

    transform, proj_space = CASES[case]()
    op = transform.as_odl_operator(proj_space)
    reco_space, geometry = transform.geometry.to_odl()
    assert op.domain == reco_space
    assert type(op.geometry) is type(geometry) and op.geometry.partition == geometry.partition
    # ODL's constructor needs no backend until it is applied: its range exists in 3D too.
    odl_range = tomo.RayTransform(reco_space, geometry, impl="astra_cpu").range
    if proj_space is None:
        assert op.range == odl_range
    else:
        assert op.range is proj_space and op.range.partition == odl_range.partition
    assert op.range.shape == geometry.partition.shape == transform.out_shape[1:]
    assert op.domain.weighting.const == pytest.approx(math.prod(reco_space.cell_sides))


@pytest.mark.parametrize(
    "make, tolerance",
    [
        (lambda: RayTransform(ParallelBeam2D((64, 48), sparse_view_angles(30), extent=(2.0, 1.5))), 0.01),
        (
            lambda: RayTransform(FanBeam2D((64, 48), sparse_view_angles(24, 2 * math.pi), 4.0, 2.0, extent=(2.0, 1.5))),
            0.01,
        ),
    ],
    ids=["parallel", "fan"],
)
def test_forward_and_adjoint_match_odl_astra_cpu(make, tolerance):
    """Against ODL's own ray transform (ASTRA on the CPU), forward and adjoint.

    The forward is invsolve's, bit for bit.  ASTRA's projectors are another
    discretisation (parallel: Joseph's method, which invsolve reads from
    virtual rays half a pixel apart; fan: ASTRA weights pixels by their
    intersection length with the ray); on this smooth phantom the forwards
    differ by 0.04 % (parallel) and 0.54 % (fan), under the 1 % bound of
    tests/operators/test_ct.py.  An image with its axes exchanged is 58 %
    off: the array layouts agree.

    Adjoints: each backprojection is the transpose of its own ray-driven
    projector and carries that projector's pixel-scale moiré, which does not
    shrink with the pixel size (measured 1.0 % / 4.5 % apart at 32² to 256²).
    Averaged over 5 × 5 pixels they differ by 0.07 % / 0.50 %, and their
    projection coefficient is 0.9999 / 0.9974: the same scale, where the plain
    transpose would be off by w_Y/w_X (3.35 / 12.6 here).
    """
    from odl.applications import tomo

    transform = make()
    op = transform.as_odl_operator()
    reference = tomo.RayTransform(op.domain, op.geometry, impl="astra_cpu")
    phantom = _blobs(transform.geometry.image_shape, transform.geometry.extent)
    ours, theirs = op(phantom).asarray(), reference(phantom).asarray()
    np.testing.assert_array_equal(ours, transform(torch.from_numpy(phantom)[None, None])[0, 0].numpy())
    relative = np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)
    assert relative <= tolerance, relative
    exchanged = _blobs(transform.geometry.image_shape[::-1], transform.geometry.extent[::-1]).T
    wrong = reference(np.ascontiguousarray(exchanged)).asarray()
    assert np.linalg.norm(ours - wrong) / np.linalg.norm(wrong) > 20 * tolerance

    sinogram = reference(phantom)
    ours, theirs = op.adjoint(sinogram).asarray(), reference.adjoint(sinogram).asarray()
    assert abs(np.vdot(ours, theirs) / np.vdot(theirs, theirs) - 1) <= tolerance / 2
    ours, theirs = (
        F.avg_pool2d(torch.from_numpy(image)[None], 5, stride=1, padding=2, count_include_pad=False).numpy()
        for image in (ours, theirs)
    )
    relative = np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)
    assert relative <= tolerance, relative


@pytest.mark.parametrize(
    "make, cell",
    [
        # angle cell × detector cell, and the pixel or voxel volume, from the geometry's numbers.
        (
            lambda: ParallelBeam2D((64, 64), sparse_view_angles(30)),
            lambda g: (math.pi / 30 * g.detector_spacing, (2 / 64) ** 2),
        ),
        (
            lambda: FanBeam2D((64, 48), sparse_view_angles(24, 2 * math.pi), 4.0, 2.0, extent=(2.0, 1.5)),
            lambda g: (2 * math.pi / 24 * g.detector_spacing, (2 / 64) * (1.5 / 48)),
        ),
        (
            lambda: ConeBeam3D((16, 14, 12), sparse_view_angles(12, 2 * math.pi), 4.0, 2.0),
            lambda g: (2 * math.pi / 12 * math.prod(g.detector_spacing), (2 / 16) * (2 / 14) * (2 / 12)),
        ),
    ],
    ids=["parallel-64", "fan", "cone"],
)
def test_plain_transpose_is_off_by_the_cell_ratio(make, cell):
    """Pairing ODL's spaces with invsolve's plain transpose scales the adjoint by w_X/w_Y."""
    import odl

    geometry = make()
    transform = (ConeBeamTransform if isinstance(geometry, ConeBeam3D) else RayTransform)(geometry)
    op = transform.as_odl_operator()
    projection_cell, image_cell = cell(geometry)
    predicted = projection_cell / image_cell
    rng = np.random.default_rng(0)
    x = op.domain.element(rng.random(op.domain.shape, dtype=np.float32))
    y = op.range.element(rng.random(op.range.shape, dtype=np.float32))
    plain = op.domain.element(_plain_transpose(transform, y))
    assert op(x).inner(y) / x.inner(plain) == pytest.approx(predicted, rel=1e-5)
    assert op(x).inner(y) / x.inner(op.adjoint(y)) == pytest.approx(1.0, rel=1e-5)
    if isinstance(geometry, ParallelBeam2D):
        assert round(predicted, 2) == 3.35  # the factor issue 11 quotes for 64², 30 views

    class PlainTranspose(odl.Operator):
        def __init__(self):
            super().__init__(op.range, op.domain, linear=True)

        def _call(self, data):
            return _plain_transpose(transform, data)

        @property
        def adjoint(self):
            return PlainPairing()

    class PlainPairing(odl.Operator):
        """The wrapper's forward with the plain transpose as its adjoint: the mismatch."""

        def __init__(self):
            super().__init__(op.domain, op.range, linear=True)

        def _call(self, image):
            return op(image)

        @property
        def adjoint(self):
            return PlainTranspose()

    report, _ = _operator_test_output(PlainPairing())
    assert "FAILED" in report
    assert _adjoint_scale(report) == pytest.approx(1 / predicted, rel=1e-4)


def test_odl_solvers_run_with_the_wrapper():
    """CGN reduces the residual; Tikhonov in ODL's spaces is invsolve's with λ·w_X/w_Y."""
    import odl

    transform = RayTransform(ParallelBeam2D((32, 32), sparse_view_angles(20)))
    op = transform.as_odl_operator()
    truth = op.domain.element(_blobs((32, 32), (2.0, 2.0)))
    data = op(truth)
    estimate = op.domain.zero()
    odl.solvers.conjugate_gradient_normal(op, estimate, data, niter=10)
    assert (op(estimate) - data).norm() <= 5e-3 * data.norm()  # measured 1.0e-3

    # argmin ‖Ax − y‖²_Y + λ‖x‖²_X  ⇔  (A*A + λ) x = A*y in ODL's spaces
    # ⇔  (AᵀA + λ w_X/w_Y) x = Aᵀy in invsolve's (Euclidean) ones.
    lam = 0.5
    estimate = op.domain.zero()
    normal = op.adjoint * op + lam * odl.IdentityOperator(op.domain)
    odl.solvers.conjugate_gradient(normal, estimate, op.adjoint(data), niter=40)
    ratio = op.domain.weighting.const / op.range.weighting.const
    exact = RayTransform(transform.geometry)  # in float64
    rhs = exact.adjoint(torch.from_numpy(data.asarray()).double()[None, None])
    reference = cg(lambda v: exact.normal(v) + lam * ratio * v, rhs, iterations=200, tol=1e-12)[0, 0].numpy()
    relative = np.linalg.norm(estimate.asarray() - reference) / np.linalg.norm(reference)
    assert relative <= 1e-5, relative  # measured 6e-7 (float32); 0.25 if w_X/w_Y were left out


def test_refuses_what_it_cannot_wrap():
    from odl.core.discr import DiscretizedSpace

    from invsolve.operators.ct.odl_operator import OdlRayTransform

    transform = RayTransform(ParallelBeam2D((16, 16), sparse_view_angles(8)))
    reco_space, geometry = transform.geometry.to_odl()
    partition = geometry.partition
    with pytest.raises(TypeError, match="transform must be an invsolve RayTransform"):
        OdlRayTransform(transform.T)
    with pytest.raises(ValueError, match="one channel"):
        RayTransform(transform.geometry, channels=2).as_odl_operator()
    with pytest.raises(TypeError, match="DiscretizedSpace"):
        transform.as_odl_operator(reco_space.tspace)
    with pytest.raises(ValueError, match="partition"):
        transform.as_odl_operator(reco_space)
    float64 = DiscretizedSpace(partition, reco_space.tspace_type(partition.shape, dtype="float64"))
    with pytest.raises(ValueError, match="float32"):
        transform.as_odl_operator(float64)
    l1 = DiscretizedSpace(partition, reco_space.tspace_type(partition.shape, dtype="float32", exponent=1.0))
    with pytest.raises(ValueError, match="exponent 2"):
        transform.as_odl_operator(l1)
    custom = reco_space.tspace_type(partition.shape, dtype="float32", inner=lambda a, b: 2.0)
    with pytest.raises(ValueError, match="ConstWeighting or ArrayWeighting"):
        transform.as_odl_operator(DiscretizedSpace(partition, custom))


def test_unsorted_angles_are_refused_with_a_clear_message():
    geometry = ParallelBeam2D((16, 16), torch.tensor([0.0, 1.7, 0.3]))
    with pytest.raises(ValueError, match=r"to_odl\(\) needs the angles in increasing order"):
        geometry.to_odl()
    with pytest.raises(ValueError, match="increasing order"):
        RayTransform(geometry).as_odl_operator()
