"""Tests of the synthetic phantoms (datasets/phantoms.py)."""

from __future__ import annotations

import math

import pytest
import torch

import invsolve.datasets.phantoms as phantoms
from invsolve.datasets.phantoms import (
    ellipsoid_phantom,
    random_ellipse_phantoms,
    shepp_logan,
    shepp_logan_ellipsoids,
)


def _odl_shepp_logan(shape, modified):
    """ODL's phantom on ``[-1, 1]^d`` as a float64 tensor (ODL imported here only)."""
    import odl

    space = odl.uniform_discr([-1.0] * len(shape), [1.0] * len(shape), shape, dtype="float64")
    return torch.from_numpy(odl.core.phantom.shepp_logan(space, modified=modified).data.copy())


def _odl_extent(shape):
    # ODL maps the outermost pixel centres to ±1 (module docstring).
    return [2 * n / (n - 1) for n in shape]


@pytest.mark.parametrize("shape", [(48, 64), (33, 20), (20, 24, 16)])
@pytest.mark.parametrize("modified", [True, False])
def test_shepp_logan_matches_odl(shape, modified):
    reference = _odl_shepp_logan(shape, modified)
    ours = shepp_logan(shape, modified=modified, extent=_odl_extent(shape), dtype=torch.float64)
    assert ours.shape == (1, 1, *shape)
    # Every pixel agrees: same ellipses, same orientation, same sampling.
    torch.testing.assert_close(ours[0, 0], reference, rtol=0, atol=1e-15)


def test_default_grid_differs_from_odl_only_on_edges():
    shape = (64, 64)
    reference = _odl_shepp_logan(shape, modified=True).float()
    ours = shepp_logan(shape)[0, 0]
    differ = (ours - reference).abs() > 1e-6
    assert 0 < differ.float().mean() < 0.06
    # Each differing pixel lies on an edge of our phantom (a 4-neighbour differs).
    padded = torch.nn.functional.pad(ours[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]
    neighbours = torch.stack(
        [padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]]
    )
    on_edge = ((neighbours - ours).abs() > 1e-6).any(dim=0)
    assert bool(on_edge[differ].all())


def test_shepp_logan_orientation_and_values():
    image = shepp_logan((128, 128))[0, 0]
    assert image.dtype == torch.float32
    # Axis 0 is x, axis 1 is y: the skull reaches y = ±0.9 on the x = 0 line,
    # but at x = ±0.9 (beyond a_x = 0.69) there is air.
    index = lambda coordinate: int((coordinate + 1) / 2 * 128)  # noqa: E731
    assert image[index(0.0), index(0.9)] == 1.0 and image[index(0.0), index(-0.9)] == 1.0
    assert image[index(0.9), index(0.0)] == 0.0 and image[index(-0.9), index(0.0)] == 0.0
    # Toft's values: air and ventricles 0, brain 0.2, skull 1; nowhere negative.
    assert float(image.min()) == 0.0 and float(image.max()) == 1.0
    assert image[index(0.0), index(0.0)] == pytest.approx(0.2, abs=1e-7)
    original = shepp_logan((128, 128), modified=False, dtype=torch.float64)
    assert float(original.min()) >= 0 and float(original.max()) == pytest.approx(2.0)


def test_shepp_logan_3d_central_slice_is_the_2d_phantom():
    # ODL's 3D ellipsoids are centred at z = 0 with the 2D ellipses' x, y
    # parameters, so the central plane z = 0 is the 2D phantom.
    volume = shepp_logan((32, 32, 33), dtype=torch.float64)
    assert volume.shape == (1, 1, 32, 32, 33)
    torch.testing.assert_close(volume[..., 16], shepp_logan((32, 32), dtype=torch.float64))


def test_ellipsoid_table_and_dtype_device_options():
    table = shepp_logan_ellipsoids(2)
    assert table.shape == (10, 6) and table.dtype == torch.float64
    assert table[2, 5] == pytest.approx(-math.pi / 10)
    assert shepp_logan_ellipsoids(3, modified=False).shape == (10, 10)
    image = shepp_logan((16, 12), dtype=torch.float64, device="cpu")
    assert image.dtype == torch.float64 and image.device.type == "cpu"


def test_ellipsoid_phantom_disc_area():
    # A centred disc of radius 0.5 covers π/16 of the image [-1, 1]².
    disc = ellipsoid_phantom((64, 64), [[2.0, 0.5, 0.5, 0.0, 0.0, 0.0]])
    assert set(disc.unique().tolist()) == {0.0, 2.0}
    assert float((disc > 0).float().mean()) == pytest.approx(math.pi / 16, rel=0.03)
    # With extent 4 the same disc covers a quarter of the fraction.
    wide = ellipsoid_phantom((64, 64), [[2.0, 0.5, 0.5, 0.0, 0.0, 0.0]], extent=4.0)
    assert float((wide > 0).float().mean()) == pytest.approx(math.pi / 64, rel=0.05)


def test_random_phantoms_shapes_and_determinism():
    batch = random_ellipse_phantoms(3, (32, 24), seed=7)
    assert batch.shape == (3, 1, 32, 24) and batch.dtype == torch.float32
    assert torch.equal(batch, random_ellipse_phantoms(3, (32, 24), seed=7))
    assert not torch.equal(batch, random_ellipse_phantoms(3, (32, 24), seed=8))
    generator = torch.Generator().manual_seed(7)
    assert torch.equal(batch, random_ellipse_phantoms(3, (32, 24), seed=generator))
    # The phantoms of one batch differ from each other.
    assert not torch.equal(batch[0], batch[1])
    volume = random_ellipse_phantoms(2, (12, 10, 8), seed=0, dtype=torch.float64)
    assert volume.shape == (2, 1, 12, 10, 8) and volume.dtype == torch.float64
    assert bool((volume > 0).any())


@pytest.mark.parametrize("shape", [(48, 48), (16, 16, 16)])
def test_random_phantom_value_ranges_and_support(shape):
    low, high, texture = 0.2, 0.8, 0.25
    x = random_ellipse_phantoms(
        4, shape, value_range=(low, high), texture=texture, n_ellipses=(5, 12), seed=3, dtype=torch.float64
    )
    inside = x > 0
    assert float(inside.float().mean()) > 0.01
    assert float(x[inside].min()) >= low * (1 - texture) - 1e-12
    assert float(x[inside].max()) <= high * (1 + texture) + 1e-12
    # Every ellipse lies inside the ball of radius 0.95.
    axes = [(torch.arange(n, dtype=torch.float64) + 0.5) * 2 / n - 1 for n in shape]
    radius = torch.sqrt(sum(g**2 for g in torch.meshgrid(*axes, indexing="ij")))
    assert not bool(inside[:, 0][:, radius > 0.95].any())


def test_random_phantom_without_texture_is_piecewise_constant():
    x = random_ellipse_phantoms(1, (64, 64), n_ellipses=4, texture=0.0, seed=1, dtype=torch.float64)
    values = x.unique()
    # Background plus at most one value per ellipse.
    assert 2 <= len(values) <= 5 and float(values[0]) == 0.0
    textured = random_ellipse_phantoms(1, (64, 64), n_ellipses=4, texture=0.2, seed=1, dtype=torch.float64)
    assert len(textured.unique()) > 100
    # Same ellipses: the support does not change with texture.
    assert torch.equal(x > 0, textured > 0)


def test_random_phantoms_do_not_depend_on_chunking(monkeypatch):
    reference = random_ellipse_phantoms(3, (20, 20), seed=5, dtype=torch.float64)
    monkeypatch.setattr(phantoms, "_CHUNK_ELEMENTS", 2000)  # 1 item, a few ellipses at once
    torch.testing.assert_close(random_ellipse_phantoms(3, (20, 20), seed=5, dtype=torch.float64), reference)
    table = shepp_logan_ellipsoids(2)
    whole = ellipsoid_phantom((20, 20), table, dtype=torch.float64)
    monkeypatch.setattr(phantoms, "_CHUNK_ELEMENTS", 1)  # one ellipse at a time
    torch.testing.assert_close(ellipsoid_phantom((20, 20), table, dtype=torch.float64), whole)
    # Ellipses add: the phantom of all ten is the sum of two halves.
    halves = [ellipsoid_phantom((20, 20), part, dtype=torch.float64) for part in (table[:5], table[5:])]
    torch.testing.assert_close(halves[0] + halves[1], whole)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: shepp_logan((64,)), "shape"),
        (lambda: shepp_logan((0, 8)), "shape"),
        (lambda: shepp_logan((4, 4, 4, 4)), "shape"),
        (lambda: shepp_logan((8, 8), extent=-1.0), "extent"),
        (lambda: shepp_logan((8, 8), extent=(2.0, 2.0, 2.0)), "extent"),
        (lambda: shepp_logan_ellipsoids(4), "ndim"),
        (lambda: ellipsoid_phantom((8, 8), [[1.0, 0.5, 0.5, 0.0]]), r"\(K, 6\)"),
        (lambda: ellipsoid_phantom((8, 8), [[1.0, 0.0, 0.5, 0.0, 0.0, 0.0]]), "semi-axes"),
        (lambda: ellipsoid_phantom((8, 8), [[float("nan"), 0.5, 0.5, 0.0, 0.0, 0.0]]), "finite"),
        (lambda: random_ellipse_phantoms(0, (8, 8)), "n must"),
        (lambda: random_ellipse_phantoms(1, (8, 8), n_ellipses=(5, 2)), "n_ellipses"),
        (lambda: random_ellipse_phantoms(1, (8, 8), n_ellipses=0), "n_ellipses"),
        (lambda: random_ellipse_phantoms(1, (8, 8), value_range=(-0.1, 1.0)), "value_range"),
        (lambda: random_ellipse_phantoms(1, (8, 8), axis_range=(0.0, 0.5)), "axis_range"),
        (lambda: random_ellipse_phantoms(1, (8, 8), axis_range=(0.1, 1.5)), "axis_range"),
        (lambda: random_ellipse_phantoms(1, (8, 8), texture=1.0), "texture"),
        (lambda: random_ellipse_phantoms(1, (8, 8), max_frequency=-1.0), "max_frequency"),
    ],
)
def test_bad_inputs_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_dtype_and_seed_raise_type_error():
    with pytest.raises(TypeError, match="dtype"):
        shepp_logan((8, 8), dtype=torch.int64)
    with pytest.raises(TypeError, match="seed"):
        random_ellipse_phantoms(1, (8, 8), seed=1.5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_gives_the_cpu_phantoms():
    cpu = random_ellipse_phantoms(2, (32, 32), seed=0, dtype=torch.float64)
    cuda = random_ellipse_phantoms(2, (32, 32), seed=0, dtype=torch.float64, device="cuda")
    assert cuda.device.type == "cuda"
    torch.testing.assert_close(cuda.cpu(), cpu)
    torch.testing.assert_close(shepp_logan((32, 32), device="cuda").cpu(), shepp_logan((32, 32)))


def test_phantoms_import_neither_operators_nor_priors():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(phantoms.__file__).read_text(encoding="utf-8"))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if "operators" in name or "priors" in name], imported
