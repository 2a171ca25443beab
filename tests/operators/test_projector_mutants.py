"""The ray transform on grids and inputs the agreement tests never use (surviving mutants
of operators/ct/projector.py, benchmarks/mutation.py).

Every geometry of test_ct.py has square pixels, so a ray length per row taken from the
pixel size of the wrong axis went unseen (on a 2:1 grid it doubles whole views).  ASTRA
(through ODL) refuses non-square pixels, so the reference here is the same smooth
object on a fine square grid, and the exact chord lengths of a constant image.
"""

import math

import pytest
import torch

from invsolve.operators import dot_test
from invsolve.operators.ct import FanBeam2D, ParallelBeam2D, RayTransform, sparse_view_angles


GEOMETRIES = {
    "parallel": lambda shape: ParallelBeam2D(shape, sparse_view_angles(12), n_detector=64, detector_spacing=2.0 * math.sqrt(2) / 64),
    "fan": lambda shape: FanBeam2D(
        shape, sparse_view_angles(12, 2 * math.pi), src_radius=4.0, det_radius=2.0, n_detector=64, extent=(2.0, 2.0)
    ),
}


@pytest.mark.parametrize("kind", sorted(GEOMETRIES))
@pytest.mark.parametrize("shape", [(32, 64), (64, 32), (16, 64)], ids=["2:1", "1:2", "4:1"])
def test_non_square_pixels_give_the_sinogram_of_a_fine_square_grid(kind, shape, blobs):
    """Measured: 0.3-1.6 % apart (the coarse axis samples the blobs less finely)."""
    make = GEOMETRIES[kind]
    geometry, fine = make(shape), make((64, 64))
    assert geometry.pixel_size[0] != geometry.pixel_size[1]
    ours = RayTransform(geometry)(blobs(shape, geometry.extent)[None, None])[0, 0]
    reference = RayTransform(fine)(blobs((64, 64), fine.extent)[None, None])[0, 0]
    assert float((ours - reference).norm() / reference.norm()) < 0.03
    # every view on its own: a wrong length per row scales whole views
    per_view = ours.sum(dim=1) / reference.sum(dim=1)
    assert float((per_view - 1).abs().max()) < 0.02, per_view


@pytest.mark.parametrize("kind", sorted(GEOMETRIES))
def test_non_square_pixels_keep_the_transpose_exact(kind):
    assert dot_test(RayTransform(GEOMETRIES[kind]((12, 24)), channels=2), torch.float64, batch=2) <= 1e-10


def test_chords_of_a_constant_image_on_a_two_to_one_grid():
    """The central ray along x crosses the whole x extent (3), along y the whole y extent (1.5),
    whichever axis has the larger pixels."""
    with pytest.warns(UserWarning, match="covers only"):
        geometry = ParallelBeam2D((16, 16), torch.tensor([0.0, math.pi / 2]), n_detector=5, detector_spacing=0.01, extent=(3.0, 1.5))
    sinogram = RayTransform(geometry)(torch.ones(1, 1, 16, 16, dtype=torch.float64))
    torch.testing.assert_close(sinogram[0, 0, :, 2], torch.tensor([1.5, 3.0], dtype=torch.float64))
    with pytest.warns(UserWarning, match="covers only"):
        fan = FanBeam2D(
            (16, 16), torch.tensor([0.0, math.pi / 2]), 10.0, 10.0, n_detector=5, detector_spacing=0.01, extent=(3.0, 1.5)
        )
    sinogram = RayTransform(fan)(torch.ones(1, 1, 16, 16, dtype=torch.float64))
    torch.testing.assert_close(sinogram[0, 0, :, 2], torch.tensor([1.5, 3.0], dtype=torch.float64))


def _joseph(geometry, images: torch.Tensor) -> torch.Tensor:
    """Joseph's sums written out for images ``(N, H, W)``: every ray, every row (or column)
    it crosses, linear interpolation between the two nearest pixels, zero outside, times
    the ray length per row ``dx/|v_x|`` (``dy/|v_y|`` along columns)."""
    height, width = geometry.image_shape
    dx, dy = geometry.pixel_size
    x0, y0 = geometry.min_pt[0] + dx / 2, geometry.min_pt[1] + dy / 2
    points, directions = geometry.rays(geometry.angles, torch.float64)
    p, v = points.reshape(-1, 2), directions.reshape(-1, 2)
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))

    def sums(axis: int) -> torch.Tensor:
        n_cross, n_along, size_cross, size_along = (height, width, dx, dy) if axis == 0 else (width, height, dy, dx)
        start_cross, start_along = (x0, y0) if axis == 0 else (y0, x0)
        crossings = start_cross + size_cross * torch.arange(n_cross, dtype=torch.float64)
        t = (crossings[None, :] - p[:, axis : axis + 1]) / v[:, axis : axis + 1]
        c = (p[:, 1 - axis : 2 - axis] + t * v[:, 1 - axis : 2 - axis] - start_along) / size_along
        lower = torch.floor(c)
        frac = c - lower
        low = lower.long().clamp(-1, n_along) + 1
        high = (low + 1).clamp(max=n_along + 1)
        line = torch.arange(n_cross)[None, :] + 1
        if axis == 0:
            values = (1 - frac) * padded[:, line, low] + frac * padded[:, line, high]
        else:
            values = (1 - frac) * padded[:, low, line] + frac * padded[:, high, line]
        inside = (lower >= -1) & (lower <= n_along - 1)
        return torch.where(inside, values, torch.zeros(())).sum(-1) * size_cross / v[:, axis].abs()

    rows_first = v[:, 0].abs() / dx >= v[:, 1].abs() / dy
    return torch.where(rows_first, sums(0), sums(1)).reshape(-1, geometry.n_angles, geometry.n_detector)


EXACT = {
    "fan-2:1": lambda: FanBeam2D((12, 10), sparse_view_angles(7, 2 * math.pi), 3.0, 1.5, n_detector=40, extent=(2.4, 1.0)),
    "fan-wide": lambda: FanBeam2D((12, 10), sparse_view_angles(7, 2 * math.pi), src_radius=1.7, det_radius=1.0, extent=(2.4, 2.0)),
    "fan-missing-rays": lambda: FanBeam2D((10, 12), sparse_view_angles(5, 2 * math.pi), 3.0, 1.0, n_detector=60, extent=(1.0, 1.2)),
    "parallel-axes-2:1": lambda: ParallelBeam2D((12, 10), torch.tensor([0.0, math.pi / 2]), n_detector=30, extent=(2.4, 1.0)),
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_rough_images_agree_with_joseph_written_out(name):
    """Fan beam is exact Joseph; parallel beam is too at axis-aligned views (its virtual rays
    then fall on the knots of the piecewise-linear sums).  A random image is non-zero up to
    the border, where the padding and the rays that only graze the image matter."""
    geometry = EXACT[name]()
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, *geometry.image_shape, dtype=torch.float64, generator=generator)
    sinograms = torch.rand(2, geometry.n_angles, geometry.n_detector, dtype=torch.float64, generator=generator)
    operator = RayTransform(geometry)
    reference = _joseph(geometry, images)
    torch.testing.assert_close(operator(images[:, None])[:, 0], reference, rtol=0, atol=1e-12)
    # the adjoint is the transpose of the same sums: <A x, y> = <x, Aᵀy> for each item
    back = operator.adjoint(sinograms[:, None])[:, 0]
    torch.testing.assert_close((back * images).sum((1, 2)), (reference * sinograms).sum((1, 2)), rtol=1e-12, atol=0)
    two_channels = RayTransform(geometry, channels=2).adjoint(sinograms[None])[0]
    torch.testing.assert_close(two_channels, back, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(GEOMETRIES))
def test_chunks_of_one_view_give_the_same_sinogram(kind):
    geometry = GEOMETRIES[kind]((16, 12))
    images = torch.rand(3, 1, 16, 12, dtype=torch.float64)
    sinograms = torch.rand(3, 1, *geometry.sinogram_shape, dtype=torch.float64)
    whole, single = RayTransform(geometry), RayTransform(geometry, views_per_chunk=1)
    assert single.views_per_chunk == 1
    torch.testing.assert_close(single(images), whole(images), rtol=0, atol=1e-12)
    torch.testing.assert_close(single.adjoint(sinograms), whole.adjoint(sinograms), rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(GEOMETRIES))
def test_the_plan_is_not_part_of_the_state(kind):
    """Everything planned is rebuilt from the geometry: nothing goes into a checkpoint."""
    assert RayTransform(GEOMETRIES[kind]((8, 8))).state_dict() == {}


def test_constructor_errors_and_descriptions():
    geometry = ParallelBeam2D((8, 6), sparse_view_angles(5), extent=(1.6, 1.2))
    with pytest.raises(TypeError, match=r"^geometry must be a ParallelBeam2D or FanBeam2D, got str$"):
        RayTransform("parallel")
    with pytest.raises(ValueError, match=r"^channels must be an int >= 1, got 0$"):
        RayTransform(geometry, channels=0)
    with pytest.raises(ValueError, match=r"^views_per_chunk must be an int >= 1 or None, got 0$"):
        RayTransform(geometry, views_per_chunk=0)
    operator = RayTransform(geometry, channels=2)
    n_detector = geometry.n_detector
    assert operator.describe() == f"RayTransform(ParallelBeam2D)(2, 8, 6)->(2, 5, {n_detector})"
    assert operator.extra_repr() == f"geometry={geometry!r}, channels=2"
