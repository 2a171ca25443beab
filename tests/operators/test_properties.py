"""Property-based tests of the operators' public entry points (issue 11).

Each case is a valid call with at most one fault planted in it: a wrong
dtype, shape or batch size, a NaN/Inf at a generated position, or a parameter
out of its range.  A valid call must give a finite result of the documented
shape; a faulty one the documented ``TypeError``/``ValueError`` whose message
names the argument — never an ``IndexError``/``RuntimeError`` from inside torch
and never a NaN the caller did not put in.  Hypothesis runs derandomised with
a bounded number of examples per test (the ``invsolve-properties`` profile),
so every CI run draws the same cases; ``pytest --hypothesis-show-statistics``
prints how many each test generated and the share of each fault.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

from invsolve.operators import (
    ComplexAsChannels,
    FiniteDifference,
    GaussianNoise,
    LinearOperator,
    Mask,
    MatrixOperator,
    PoissonNoise,
    RealAsComplex,
    SliceStack,
    box_mask,
    cg,
    random_pixel_mask,
    stroke_mask,
)
from invsolve.operators.ct import FanBeam2D, FilteredBackProjection, ParallelBeam2D, RayTransform, fbp
from invsolve.operators.mri import CartesianMRI, equispaced_fraction_mask, poisson_disc_mask, random_mask

PROFILE = settings.get_profile("invsolve-properties")  # registered in tests/conftest.py

#: the exceptions the entry points document for bad input
DOCUMENTED = (TypeError, ValueError)
#: dtypes the operators compute in, and some they refuse
COMPUTE = (torch.float32, torch.float64, torch.complex64, torch.complex128)
REFUSED_DTYPES = st.sampled_from([torch.float16, torch.bfloat16, torch.int64, torch.bool])
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
#: values that are not a finite positive number
NOT_POSITIVE = st.sampled_from([0, 0.0, -1.0, math.nan, math.inf, -math.inf, None, "1", True, 2j])


def refused(error: Exception, *names: str) -> None:
    """Check that a refusal's message names one of the arguments ``names``."""
    assert any(name in str(error) for name in names), f"the message names none of {names}: {error}"


def _values(draw, shape, dtype) -> torch.Tensor:
    """A tensor of ``shape`` and ``dtype`` with values in [-2, 2] (complex: both parts)."""
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    values = 4 * torch.rand(shape, generator=generator, dtype=torch.float64) - 2
    if dtype.is_complex:
        values = torch.complex(values, 4 * torch.rand(shape, generator=generator, dtype=torch.float64) - 2)
    return values.to(dtype)


def _poison(draw, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` with one entry, at a generated position, set to NaN or ±Inf."""
    poisoned = tensor.clone()
    poisoned.reshape(-1)[draw(st.integers(0, tensor.numel() - 1))] = draw(NON_FINITE)
    return poisoned


@st.composite
def operators(draw) -> LinearOperator:
    """A small operator of every kind the package has, with generated sizes."""
    kind = draw(st.sampled_from(["mask", "ray", "fan", "mri", "sense", "gradient", "channels", "phase", "matrix", "slices"]))
    event(f"operator: {kind}")
    height, width = draw(st.integers(2, 6)), draw(st.integers(2, 6))
    generator = torch.Generator().manual_seed(draw(st.integers(0, 100)))
    if kind == "mask":
        observed = torch.rand(height, width, generator=generator) < draw(st.floats(0, 1))
        return Mask(observed, in_shape=(draw(st.integers(1, 2)), height, width))
    if kind in ("ray", "fan"):
        views = draw(st.integers(1, 5))
        angles = torch.linspace(0, math.pi if kind == "ray" else 2 * math.pi, views + 1, dtype=torch.float64)[:-1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # coverage warnings for tiny detectors
            geometry = ParallelBeam2D((height, width), angles) if kind == "ray" else FanBeam2D((height, width), angles, 4.0, 2.0)
        return RayTransform(geometry, channels=draw(st.integers(1, 2)))
    if kind == "mri":
        return CartesianMRI(torch.rand(width, generator=generator) < 0.6, shape=(height, width))
    if kind == "sense":
        maps = torch.randn(2, height, width, dtype=torch.complex64, generator=generator)
        return CartesianMRI(torch.rand(width, generator=generator) < 0.6, maps)
    if kind == "gradient":
        return FiniteDifference((1, height, width))
    if kind == "channels":
        return CartesianMRI(torch.ones(width, dtype=torch.bool), shape=(height, width)) @ ComplexAsChannels((1, height, width))
    if kind == "phase":
        return RealAsComplex((1, height, width), torch.rand(height, width, generator=generator, dtype=torch.float64))
    if kind == "slices":  # a mask or a ray transform on every slice of a volume, along a generated axis
        observed = torch.rand(height, width, generator=generator) < draw(st.floats(0, 1))
        plane = Mask(observed) if draw(st.booleans()) else RayTransform(ParallelBeam2D((height, width), [0.0, 1.0]))
        return SliceStack(plane, n_slices=draw(st.integers(1, 3)), axis=draw(st.integers(0, 2)))
    matrix = torch.randn(draw(st.integers(1, 6)), height * width, generator=generator, dtype=torch.float64)
    return MatrixOperator(matrix, (1, height, width))


METHODS = ["forward", "adjoint", "normal", "pinv"]


def _operator_call(data, method: str | None = None):
    """An operator, one of its public methods (``method`` if given) and a valid input for it."""
    op = data.draw(operators())
    method = method or data.draw(st.sampled_from(METHODS))
    takes_image = method in ("forward", "normal")
    shape = op.in_shape if takes_image else op.out_shape
    complex_space = op.complex_domain if takes_image else op.complex_range
    dtype = data.draw(st.sampled_from(COMPUTE if complex_space else COMPUTE[:2]))
    return op, method, _values(data.draw, (data.draw(st.integers(1, 2)), *shape), dtype)


def _expected_shape(op: LinearOperator, method: str, batch: int) -> tuple[int, ...]:
    return (batch, *(op.out_shape if method == "forward" else op.in_shape))


@settings(PROFILE, max_examples=40)
@given(data=st.data())
def test_operator_methods_give_a_finite_result_of_the_right_shape(data):
    op, method, value = _operator_call(data)
    result = getattr(op, method)(value)
    assert result.shape == _expected_shape(op, method, value.shape[0])
    assert bool(torch.isfinite(result).all())


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("fault", ["dtype", "empty batch", "shape", "not a tensor", "NaN/Inf"])
@settings(PROFILE, max_examples=4)
@given(data=st.data())
def test_operator_methods_refuse_bad_input_naming_it(fault, method, data):
    op, method, value = _operator_call(data, method)
    name = "x" if method in ("forward", "normal") else "y"
    if fault == "dtype":
        value = value.real.to(data.draw(REFUSED_DTYPES))
    elif fault == "empty batch":
        value = value[:0]
    elif fault == "shape":
        value = data.draw(st.sampled_from([value[0], value[..., None], value[..., :-1], torch.cat([value, value], -1)]))
    elif fault == "not a tensor":
        value = value.tolist()
    else:
        value = _poison(data.draw, value)
        if method != "pinv":
            # forward/adjoint/normal check metadata only (they run inside solvers' loops): a NaN
            # the caller gives propagates like any linear map's; pinv, a solve, refuses it
            assert getattr(op, method)(value).shape == _expected_shape(op, method, value.shape[0])
            return
    with pytest.raises(DOCUMENTED) as raised:
        getattr(op, method)(value)
    refused(raised.value, name)


def _fbp_call(data):
    """A geometry, a valid sinogram for it and valid options of :func:`fbp`."""
    height, width, views = data.draw(st.integers(2, 8)), data.draw(st.integers(2, 8)), data.draw(st.integers(1, 6))
    fan = data.draw(st.booleans())
    angles = torch.linspace(0, (2 if fan else 1) * math.pi, views + 1, dtype=torch.float64)[:-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        geometry = FanBeam2D((height, width), angles, 4.0, 1.0) if fan else ParallelBeam2D((height, width), angles)
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)), *geometry.sinogram_shape)
    sinogram = _values(data.draw, shape, data.draw(st.sampled_from([torch.float32, torch.float64])))
    options = {
        "filter": data.draw(st.sampled_from(["ram-lak", "hann", "shepp-logan", "cosine", "hamming"])),
        "frequency_scaling": data.draw(st.floats(0.05, 1.0)),
        "padding": data.draw(st.booleans()),
        "upsampling": data.draw(st.integers(1, 3)),
    }
    return geometry, sinogram, options


@settings(PROFILE, max_examples=40)
@given(data=st.data())
def test_fbp_gives_a_finite_image(data):
    geometry, sinogram, options = _fbp_call(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fan-beam views over less than 2π
        image = fbp(sinogram, geometry, **options)
    assert image.shape == (*sinogram.shape[:2], *geometry.image_shape)
    assert bool(torch.isfinite(image).all())


INVALID_FBP_OPTIONS = {
    "filter": st.sampled_from(["bogus", "", 3, None]),
    "frequency_scaling": st.one_of(NOT_POSITIVE, st.sampled_from([1.5, 1e300])),
    "padding": st.sampled_from([1, "yes", None]),
    "upsampling": st.sampled_from([0, -1, 1.5, None, True]),
}


@pytest.mark.parametrize("fault", ["dtype", "empty", "dimensions", "views", "NaN/Inf", *INVALID_FBP_OPTIONS])
@settings(PROFILE, max_examples=6)
@given(data=st.data())
def test_fbp_refuses_bad_input_naming_it(fault, data):
    geometry, sinogram, options = _fbp_call(data)
    name = "sinogram"
    if fault == "dtype":
        sinogram = data.draw(st.sampled_from([sinogram.to(torch.complex64), sinogram.to(data.draw(REFUSED_DTYPES))]))
    elif fault == "empty":
        sinogram = data.draw(st.sampled_from([sinogram[:0], sinogram[:, :0]]))
    elif fault == "dimensions":
        sinogram = data.draw(st.sampled_from([sinogram[0], sinogram[..., None]]))
    elif fault == "views":
        sinogram = torch.cat([sinogram, sinogram[:, :, :1]], dim=2)
    elif fault == "NaN/Inf":
        sinogram = _poison(data.draw, sinogram)
    else:
        name, options[fault] = fault, data.draw(INVALID_FBP_OPTIONS[fault])
    with pytest.raises(DOCUMENTED) as raised:
        fbp(sinogram, geometry, **options)
    refused(raised.value, name)


def test_fbp_names_the_first_non_finite_sinogram_entry():
    geometry = ParallelBeam2D((8, 8), torch.linspace(0, math.pi, 7)[:-1])
    sinogram = torch.zeros(1, 1, *geometry.sinogram_shape)
    sinogram[0, 0, 2, 3] = math.nan
    message = r"sinogram must be finite, got 1 NaN or infinite entries \(the first at index \(0, 0, 2, 3\): nan\)"
    with pytest.raises(ValueError, match=message):
        fbp(sinogram, geometry)
    with pytest.raises(ValueError, match=message):
        FilteredBackProjection(geometry)(sinogram)


def _geometry_call(data, fan: bool) -> dict:
    """Valid keyword arguments of ParallelBeam2D or FanBeam2D, physical lengths in [1e-3, 1e3]."""
    height, width = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    side = data.draw(st.floats(1e-3, 1e3))
    parameters = {
        "image_shape": (height, width),
        "angles": data.draw(st.lists(st.floats(-10, 10), min_size=1, max_size=5)),
        "extent": data.draw(st.sampled_from([None, side, (side, 2 * side)])),
    }
    sides = (2.0, 2.0) if parameters["extent"] is None else (side, side if parameters["extent"] == side else 2 * side)
    if data.draw(st.booleans()):
        parameters["n_detector"] = data.draw(st.integers(1, 20))
    if data.draw(st.booleans()):
        parameters["detector_spacing"] = min(sides) / max(height, width) * data.draw(st.floats(0.2, 5))
    if fan:
        corner = math.hypot(*sides) / 2
        parameters["src_radius"] = corner * data.draw(st.floats(1.1, 5))
        parameters["det_radius"] = corner * data.draw(st.floats(0, 5))
    return parameters


@settings(PROFILE, max_examples=30)
@given(data=st.data())
def test_ct_geometries_build_a_working_ray_transform(data):
    fan = data.draw(st.booleans())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # detectors that do not cover the image
        geometry = (FanBeam2D if fan else ParallelBeam2D)(**_geometry_call(data, fan))
    op = RayTransform(geometry)
    sinogram = op(torch.ones(1, *op.in_shape, dtype=torch.float64))
    assert sinogram.shape == (1, 1, *geometry.sinogram_shape)
    assert bool(torch.isfinite(sinogram).all()) and bool(torch.isfinite(op.T(sinogram)).all())


INVALID_GEOMETRY = {
    "image_shape": st.sampled_from([(0, 4), (4,), (4, 4, 4), "ab", None, (2.5, 3), (-1, 3)]),
    "angles": st.sampled_from([[], [math.nan], [0.1, math.inf], "angles", [[0.1, 0.2]], [1 + 2j], None]),
    "extent": st.one_of(NOT_POSITIVE.filter(lambda v: v is not None), st.sampled_from([(1.0, 0.0), (1.0,), "big"])),
    "n_detector": st.sampled_from([0, -2, 2.5, True, 1 << 30]),
    "detector_spacing": st.one_of(NOT_POSITIVE.filter(lambda v: v is not None), st.just(1e-300)),
    "src_radius": st.one_of(NOT_POSITIVE, st.just(0.1)),
    "det_radius": st.sampled_from([-1.0, math.nan, math.inf, "1", None]),
}


@pytest.mark.parametrize("fault", list(INVALID_GEOMETRY))
@settings(PROFILE, max_examples=6)
@given(data=st.data())
def test_ct_geometries_refuse_bad_parameters_naming_them(fault, data):
    fan = fault in ("src_radius", "det_radius") or data.draw(st.booleans())
    parameters = _geometry_call(data, fan)
    if fault == "detector_spacing":
        parameters.pop("n_detector", None)  # one pixel of 1e-300 is a valid (useless) detector
    parameters[fault] = data.draw(INVALID_GEOMETRY[fault])
    with pytest.raises(DOCUMENTED) as raised:
        (FanBeam2D if fan else ParallelBeam2D)(**parameters)
    refused(raised.value, fault)


INVALID_MASK_ARGUMENTS = {
    None: {},
    "shape": {
        "shape": st.sampled_from([(0, 8), (8,), "8x8", 8, (2.5, 8), None]),
        "size": st.sampled_from([0, -3, 2.5, None, "8"]),
    },
    "fraction": {"fraction": st.sampled_from([-0.1, 1.5, math.nan, math.inf, None, "0.1"])},
    "count": {
        "count": st.sampled_from([-1, 2.5, None, "2"]),
        "acceleration": st.sampled_from([0.5, -1, math.nan, math.inf, None, "4"]),
    },
    "range": {"low": st.sampled_from([-0.1, 2.0, math.nan, None]), "acceleration": st.sampled_from([0.5, math.nan])},
}


@pytest.mark.parametrize("fault", list(INVALID_MASK_ARGUMENTS))
@settings(PROFILE, max_examples=12)
@given(data=st.data())
def test_mask_generators_give_boolean_masks_or_refuse(fault, data):
    kind = data.draw(st.sampled_from(["pixels", "boxes", "strokes", "columns", "equispaced", "poisson"]))
    size = data.draw(st.integers(4, 32))
    arguments = {
        "shape": (size, data.draw(st.integers(4, 32))),
        "size": size,
        "fraction": data.draw(st.floats(0.01, 0.3)),  # missing fraction, centre fraction
        "acceleration": data.draw(st.floats(1, 6)),
        "count": data.draw(st.integers(0, 3)),
        "low": data.draw(st.floats(0, 0.5)),
    }
    arguments.update({key: data.draw(strategy) for key, strategy in INVALID_MASK_ARGUMENTS[fault].items()})
    shape, size, fraction, acceleration, count, low = arguments.values()
    calls = {
        "pixels": (lambda: random_pixel_mask(shape, fraction, seed=0), ("shape", "missing_fraction")),
        "boxes": (lambda: box_mask(shape, n_boxes=count, size_range=(low, 0.6), seed=0), ("shape", "n_boxes", "size_range")),
        "strokes": (lambda: stroke_mask(shape, n_strokes=count, width_range=(low, 0.6), seed=0),
                    ("shape", "n_strokes", "width_range")),
        "columns": (lambda: random_mask(size, fraction, acceleration, seed=0), ("num_cols", "center_fraction", "acceleration")),
        "equispaced": (lambda: equispaced_fraction_mask(size, fraction, acceleration, seed=0),
                       ("num_cols", "center_fraction", "acceleration")),
        "poisson": (lambda: poisson_disc_mask(shape, acceleration, fraction, seed=0),
                    ("shape", "acceleration", "center_fraction")),
    }
    build, names = calls[kind]
    try:
        mask = build()
    except DOCUMENTED as error:
        # a generator may not take every faulty argument (pixels take no acceleration), and
        # fastMRI's masks refuse some valid-looking combinations (a centre wider than the
        # fraction the acceleration leaves): any refusal must name an argument
        refused(error, *names)
        event("refused")
        return
    event("accepted")
    assert mask.dtype == torch.bool and mask.numel() > 0


def _noise_call(data):
    gaussian = data.draw(st.booleans())
    parameter = data.draw(st.floats(1e-3, 10) if gaussian else st.floats(10, 1e6))
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    return gaussian, parameter, _values(data.draw, (data.draw(st.integers(1, 2)), 1, 3, 3), dtype).abs()


@settings(PROFILE, max_examples=20)
@given(data=st.data())
def test_noise_models_give_finite_measurements(data):
    gaussian, parameter, clean = _noise_call(data)
    noisy = (GaussianNoise if gaussian else PoissonNoise)(parameter)(clean, seed=0)
    assert noisy.shape == clean.shape and bool(torch.isfinite(noisy).all())


@pytest.mark.parametrize("fault", ["parameter", "dtype", "empty", "NaN/Inf"])
@settings(PROFILE, max_examples=6)
@given(data=st.data())
def test_noise_models_refuse_bad_input_naming_it(fault, data):
    gaussian, parameter, clean = _noise_call(data)
    name = "clean"
    if fault == "parameter":
        parameter = data.draw(NOT_POSITIVE.filter(lambda v: not (gaussian and v == 0)))  # std 0: no noise, valid
        name = "std" if gaussian else "incident_flux"
    elif fault == "dtype":
        clean = clean.to(torch.int64) if gaussian else clean.to(torch.complex64)
    elif fault == "empty":
        clean = clean[:0]
    else:
        clean = _poison(data.draw, clean)
    with pytest.raises(DOCUMENTED) as raised:
        (GaussianNoise if gaussian else PoissonNoise)(parameter)(clean, seed=0)
    refused(raised.value, name)


def test_noise_that_overflows_the_dtype_is_refused():
    with pytest.raises(ValueError, match="std=1e\\+39 is too large for torch.float32"):
        GaussianNoise(1e39)(torch.ones(1, 1, 4, 4), seed=0)
    with pytest.raises(ValueError, match="incident_flux=1e\\+39 is too large"):
        PoissonNoise(1e39)(torch.zeros(1, 1, 4, 4), seed=0)


def _matvec(v: torch.Tensor) -> torch.Tensor:
    return v * torch.arange(1.0, 5.0, dtype=torch.float64).to(v.dtype)


@settings(PROFILE, max_examples=20)
@given(data=st.data())
def test_cg_solves(data):
    b = _values(data.draw, (data.draw(st.integers(1, 3)), 4), data.draw(st.sampled_from(COMPUTE)))
    x = cg(_matvec, b, iterations=data.draw(st.integers(0, 20)), tol=data.draw(st.floats(0, 1)))
    assert x.shape == b.shape and bool(torch.isfinite(x).all())


@pytest.mark.parametrize("fault", ["dtype", "empty", "iterations", "tol"])
@settings(PROFILE, max_examples=5)
@given(data=st.data())
def test_cg_refuses_bad_input_naming_it(fault, data):
    b = _values(data.draw, (data.draw(st.integers(1, 3)), 4), data.draw(st.sampled_from(COMPUTE)))
    arguments = {"iterations": data.draw(st.integers(0, 20)), "tol": data.draw(st.floats(0, 1))}
    name = "b"
    if fault == "dtype":
        b = b.real.to(data.draw(REFUSED_DTYPES))
    elif fault == "empty":
        b = b[:0]
    else:
        name = fault
        invalid = {
            "iterations": st.sampled_from([-1, 2.5, None, "3"]),
            "tol": st.sampled_from([-1e-3, math.nan, math.inf, None, "0.1"]),
        }
        arguments[fault] = data.draw(invalid[fault])
    with pytest.raises(DOCUMENTED) as raised:
        cg(_matvec, b, **arguments)
    refused(raised.value, name)
