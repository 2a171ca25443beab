"""Property-based tests of invsolve's public entry points (issue 11).

``reconstruct``, the baselines, ``gaussian_posterior``, the metrics and the
output-location checks of the command line, each called validly with
generated shapes, dtypes and parameters, and with one fault planted at a
time: a wrong dtype or shape, an empty batch, a NaN/Inf at a generated
position, a parameter out of range.  A valid call gives a finite result of the
documented shape; a faulty one the documented ``TypeError``/``ValueError``
naming the argument — before any computation, never an internal error from
inside torch, never a silent NaN.  Hypothesis runs derandomised with a bounded
number of examples per test (profile ``invsolve-properties``); ``pytest
--hypothesis-show-statistics`` prints the number of cases of each.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from invsolve import metrics
from invsolve._checks import check_output_dir, check_output_file
from invsolve.baselines import cg_sense, tv_reconstruct
from invsolve.operators import ComplexAsChannels, GaussianNoise, Mask, MatrixOperator
from invsolve.operators.ct import ParallelBeam2D, RayTransform
from invsolve.operators.mri import CartesianMRI
from invsolve.oracle import gaussian_posterior
from invsolve.priors import GaussianPrior
from invsolve.reconstruct import reconstruct
from invsolve.samplers import available_samplers, get_sampler

PROFILE = settings.get_profile("invsolve-properties")  # registered in tests/conftest.py

DOCUMENTED = (TypeError, ValueError)
REFUSED_DTYPES = st.sampled_from([torch.float16, torch.bfloat16, torch.int64, torch.bool])
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
#: values that are not a finite number >= 0 (for > 0 add 0)
NOT_NONNEGATIVE = st.sampled_from([-1.0, -1e-9, math.nan, math.inf, -math.inf, None, "0.1", 2j])
NOT_POSITIVE_INT = st.sampled_from([0, -1, 2.5, None, "3", True])


def refused(error: Exception, *names: str) -> None:
    """Check that a refusal's message names one of the arguments ``names``."""
    assert any(name in str(error) for name in names), f"the message names none of {names}: {error}"


def _poison(data, tensor: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
    """``tensor`` with one entry (among ``positions``, a boolean mask, if given) set to NaN or ±Inf."""
    poisoned = tensor.clone()
    flat = poisoned.reshape(-1)
    candidates = torch.arange(flat.numel()) if positions is None else positions.expand(tensor.shape).reshape(-1).nonzero()[:, 0]
    flat[int(candidates[data.draw(st.integers(0, len(candidates) - 1))])] = data.draw(NON_FINITE)
    return poisoned


def _problem(data, mri: bool = False):
    """A Gaussian prior, an operator for its images and noisy measurements ``(B, *out_shape)``."""
    size = data.draw(st.integers(2, 5))
    kind = "mri" if mri else data.draw(st.sampled_from(["mask", "matrix", "ray"]))
    channels = 2 if kind == "mri" else 1
    prior = GaussianPrior.squared_exponential(
        (channels, size, size),
        length_scale=data.draw(st.floats(0.5, 3)),
        std=data.draw(st.floats(0.1, 10)),
        mean=data.draw(st.floats(-5, 5)),
    )
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 1000)))
    if kind == "mask":
        observed = torch.rand(size, size, generator=generator) < data.draw(st.floats(0.2, 1))
        observed[0, 0] = True  # at least one pixel seen
        operator = Mask(observed)
    elif kind == "matrix":
        matrix = torch.randn(data.draw(st.integers(1, 2 * size * size)), size * size, generator=generator, dtype=torch.float64)
        operator = MatrixOperator(matrix, (1, size, size))
    elif kind == "ray":
        operator = RayTransform(ParallelBeam2D((size, size), torch.linspace(0, math.pi, 5, dtype=torch.float64)[:-1]))
    else:
        columns = torch.rand(size, generator=generator) < 0.7
        columns[size // 2] = True
        operator = CartesianMRI(columns, shape=(size, size)) @ ComplexAsChannels((1, size, size))
    noise_std = data.draw(st.floats(0.01, 1.0))
    truth = prior.sample_exact(data.draw(st.integers(1, 2)), seed=data.draw(st.integers(0, 100)))
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]))
    y = GaussianNoise(noise_std)(operator(truth.to(dtype)), seed=0)
    return prior, operator, y, noise_std


# -- reconstruct --------------------------------------------------------------------------------

#: the samplers of 2D images with one prior (the slice-augmented 3D ones have their own tests,
#: test_slice3d.py, and so has the two-prior "joint-dehaze", test_joint_dehaze.py)
PLANAR_SAMPLERS = [name for name in available_samplers() if not get_sampler(name).volumetric and name != "joint-dehaze"]


def _sampler_call(data):
    prior, operator, y, noise_std = _problem(data)
    sampler = data.draw(st.sampled_from(PLANAR_SAMPLERS))
    chosen = get_sampler(sampler)
    arguments = {
        "sampler": sampler,
        "noise_std": noise_std,
        "steps": data.draw(st.integers(max(2, chosen.min_steps), 3)),
        "n_samples": 1 if chosen.deterministic else data.draw(st.integers(1, 2)),
        "seed": data.draw(st.integers(0, 100)),
        "progress": False,
        "max_batch": data.draw(st.sampled_from([None, 1, 4])),
    }
    if chosen.takes_start_time and data.draw(st.booleans()):
        arguments["start_time"] = data.draw(st.floats(0.05, 1.0))
        if data.draw(st.booleans()):  # from an image (the back-projection) instead of the Gaussian fit
            arguments["start_image"] = operator.adjoint(y)
    if y.shape[0] == 1 and data.draw(st.booleans()):
        y = y[0]  # one measurement without its batch axis
        if "start_image" in arguments:
            arguments["start_image"] = arguments["start_image"][0]
    if sampler == "daps":  # keep DAPS's inner loops short in tests
        arguments.update(ode_steps=2, langevin_steps=5)
    if sampler == "pnp-dm":
        arguments.update(denoise_steps=2)
    return prior, operator, y, arguments


@settings(PROFILE, max_examples=30)
@given(data=st.data())
def test_reconstruct_gives_a_finite_image_of_the_operators_shape(data):
    prior, operator, y, arguments = _sampler_call(data)
    result = reconstruct(y, operator, prior, **arguments)
    batch = y.shape[0] if y.dim() == len(operator.out_shape) + 1 else 1
    assert result.image.shape == (batch, *operator.in_shape)
    assert bool(torch.isfinite(result.image).all())
    if arguments["n_samples"] > 1:
        spread = result.std if result.std is not None else result.run_spread
        assert spread.shape == result.image.shape and bool(torch.isfinite(spread).all())


RECONSTRUCT_FAULTS = ["y dtype", "y shape", "y empty", "y NaN/Inf", "operator", "prior", "noise_std", "steps",
                      "n_samples", "max_batch", "sampler", "hyperparameter", "start_time", "seed", "preset"]


@pytest.mark.parametrize("fault", RECONSTRUCT_FAULTS)
@settings(PROFILE, max_examples=4)
@given(data=st.data())
def test_reconstruct_refuses_bad_input_naming_it_before_computing(fault, data, monkeypatch):
    prior, operator, y, arguments = _sampler_call(data)
    name = fault.split()[0]
    if fault == "y dtype":
        y = y.to(data.draw(REFUSED_DTYPES))
    elif fault == "y shape":
        y = data.draw(st.sampled_from([y[..., :-1], y[..., None], torch.cat([y, y], -1)]))
    elif fault == "y empty":
        y = y.reshape(-1, *operator.out_shape)[:0]
    elif fault == "y NaN/Inf":
        y = _poison(data, y)
    elif fault == "operator":
        operator = data.draw(st.sampled_from(["A", None, Mask(torch.ones(prior.image_shape[-1] + 1, prior.image_shape[-1] + 1))]))
        name = "operator" if not isinstance(operator, Mask) else "prior"
    elif fault == "prior":
        prior = data.draw(st.sampled_from([None, "ct-ellipses", operator]))
    elif fault == "noise_std":
        needs_noise = get_sampler(arguments["sampler"]).needs_noise
        arguments["noise_std"] = data.draw(st.one_of(NOT_NONNEGATIVE, st.just(0.0) if needs_noise else NOT_NONNEGATIVE))
    elif fault in ("steps", "n_samples", "max_batch"):
        arguments[fault] = data.draw(NOT_POSITIVE_INT.filter(lambda v: v is not None))
    elif fault == "sampler":
        arguments["sampler"] = data.draw(st.sampled_from(["bogus", "", "DDS"]))
    elif fault == "hyperparameter":
        hyperparameters = {
            "red-diff": {"lr": -1.0, "weighting": "bogus"},
            "dps": {"step_size": math.nan},
            "dds": {"eta": 1.5, "cg_iterations": -1},
            "diffpir": {"zeta": -0.1, "regularization": 0.0},
            "daps": {"ode_steps": 0, "step": math.inf},
            "pnp-dm": {"decay": 1.5, "rho_min": -1.0},
        }[arguments["sampler"]]
        name = data.draw(st.sampled_from(sorted(hyperparameters) + ["nonsense"]))
        arguments[name] = hyperparameters.get(name, 1.0)
    elif fault == "start_time":
        arguments["start_time"] = data.draw(st.sampled_from([0.0, -0.5, 1.5, math.nan, "0.5"]))
    elif fault == "seed":
        arguments["seed"] = data.draw(st.sampled_from(["0", 1.5]))
    else:
        arguments["preset"] = data.draw(st.sampled_from(["bogus", "ct-sparse", "mri-cartesian"]))

    def no_sampling(*args, **kwargs):
        raise AssertionError("the sampler ran although the input was refusable")

    for sampler in available_samplers():
        monkeypatch.setattr(type(get_sampler(sampler)), "_run", no_sampling)
    with pytest.raises(DOCUMENTED) as raised:
        reconstruct(y, operator, prior, **arguments)
    refused(raised.value, name, *(["tuned for", "validated settings"] if fault == "preset" else []))


def test_reconstruct_reports_a_diverged_sampler():
    prior = GaussianPrior.squared_exponential((1, 4, 4), length_scale=1.0)
    operator = Mask(torch.ones(4, 4, dtype=torch.bool))
    y = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    with pytest.raises(FloatingPointError, match="sampler 'red-diff' diverged: its result holds 16 NaN or infinite"):
        reconstruct(y, operator, prior, "red-diff", noise_std=1e-3, steps=5, lr=1e300, progress=False)


# -- baselines ----------------------------------------------------------------------------------


def _baseline_call(data):
    prior, operator, y, _ = _problem(data)
    if y.dim() == len(operator.out_shape):
        y = y[None]
    method = data.draw(st.sampled_from(["cg_sense", "tv_reconstruct"]))
    if method == "cg_sense":
        arguments = {
            "iterations": data.draw(st.integers(1, 20)),
            "tol": data.draw(st.floats(0, 1e-2)),
            "damping": data.draw(st.floats(0, 1)),
        }
    else:
        arguments = {
            "weight": data.draw(st.floats(0, 1)),
            "iterations": data.draw(st.integers(1, 30)),
            "nonnegative": data.draw(st.booleans()),
            "progress": False,
        }
        if data.draw(st.booleans()):
            arguments["x0"] = torch.zeros(y.shape[0], *operator.in_shape, dtype=y.dtype)
    return method, operator, y, arguments


@settings(PROFILE, max_examples=30)
@given(data=st.data())
def test_baselines_give_a_finite_image(data):
    method, operator, y, arguments = _baseline_call(data)
    image = (cg_sense if method == "cg_sense" else tv_reconstruct)(y, operator, **arguments)
    assert image.shape == (y.shape[0], *operator.in_shape) and bool(torch.isfinite(image).all())


@pytest.mark.parametrize("fault", ["y dtype", "y shape", "y empty", "y NaN/Inf", "operator", "iterations", "number", "x0"])
@settings(PROFILE, max_examples=5)
@given(data=st.data())
def test_baselines_refuse_bad_input_naming_it(fault, data):
    method, operator, y, arguments = _baseline_call(data)
    name = fault.split()[0]
    if fault == "y dtype":
        y = y.to(data.draw(REFUSED_DTYPES))
    elif fault == "y shape":
        y = data.draw(st.sampled_from([y[..., :-1], y[0], y[..., None]]))
    elif fault == "y empty":
        y = y[:0]
    elif fault == "y NaN/Inf":
        y = _poison(data, y)
    elif fault == "operator":
        operator = data.draw(st.sampled_from([None, "A", y]))
    elif fault == "iterations":
        arguments["iterations"] = data.draw(NOT_POSITIVE_INT)
    elif fault == "number":
        name = data.draw(st.sampled_from(["tol", "damping"] if method == "cg_sense" else ["weight"]))
        arguments[name] = data.draw(NOT_NONNEGATIVE)
    else:
        method = "tv_reconstruct"
        arguments = {"weight": 0.1, "iterations": 2, "progress": False}
        x0 = torch.zeros(y.shape[0], *operator.in_shape, dtype=y.dtype)
        arguments["x0"] = data.draw(st.sampled_from([x0[:0], x0[..., :-1], _poison(data, x0), x0.to(torch.int64)]))
    with pytest.raises(DOCUMENTED) as raised:
        (cg_sense if method == "cg_sense" else tv_reconstruct)(y, operator, **arguments)
    refused(raised.value, name)


# -- the exact Gaussian oracle ------------------------------------------------------------------


@settings(PROFILE, max_examples=30)
@given(data=st.data())
def test_gaussian_posterior_is_finite_with_a_covariance_that_shrinks(data):
    prior, operator, y, noise_std = _problem(data, mri=data.draw(st.booleans()))
    mean, cov = gaussian_posterior(prior, operator, y, noise_std)
    assert mean.shape == (y.shape[0], *operator.in_shape)
    assert bool(torch.isfinite(mean).all()) and bool(torch.isfinite(cov).all())
    # data never add uncertainty: every posterior variance is at most the prior's
    assert bool((cov.diagonal() <= prior.cov.diagonal() * (1 + 1e-9) + 1e-12).all())


@pytest.mark.parametrize(
    "fault",
    ["y dtype", "y shape", "y empty", "y NaN/Inf", "y NaN at a hidden pixel", "y complex", "noise_std", "prior", "operator"],
)
@settings(PROFILE, max_examples=5)
@given(data=st.data())
def test_gaussian_posterior_refuses_bad_input_naming_it(fault, data):
    prior, operator, y, noise_std = _problem(data)
    name = fault.split()[0]
    if fault == "y dtype":
        y = y.to(data.draw(st.sampled_from([torch.int64, torch.bool])))  # computed in float64: float16 is fine
    elif fault == "y shape":
        y = data.draw(st.sampled_from([y[..., :-1], y[..., None], torch.cat([y, y], -1)]))
    elif fault == "y empty":
        y = y[:0]
    elif fault == "y NaN/Inf":
        y = _poison(data, y)
    elif fault == "y NaN at a hidden pixel":
        observed = torch.rand(*prior.image_shape[1:], generator=torch.Generator().manual_seed(1)) < 0.5
        observed[0, 0], observed[-1, -1] = True, False
        operator = Mask(observed)
        y = _poison(data, operator(prior.sample_exact(1, seed=0)), positions=~observed)
    elif fault == "y complex":
        y = y.to(torch.complex128)
    elif fault == "noise_std":
        noise_std = data.draw(st.one_of(NOT_NONNEGATIVE, st.sampled_from([0.0, 1e-200, 1e200])))
    elif fault == "prior":
        prior = data.draw(st.sampled_from([None, operator, GaussianPrior.squared_exponential((1, 9, 9), 1.0)]))
    else:
        operator = data.draw(st.sampled_from([None, CartesianMRI(torch.ones(3, dtype=torch.bool), shape=(3, 3))]))
    with pytest.raises(DOCUMENTED) as raised:
        gaussian_posterior(prior, operator, y, noise_std)
    refused(raised.value, name)


# -- metrics ------------------------------------------------------------------------------------

PER_ITEM = {"rmse": metrics.rmse, "nmse": metrics.nmse, "psnr": metrics.psnr, "ssim": metrics.ssim}
VOLUME = {"fastmri_nmse": metrics.fastmri_nmse, "fastmri_psnr": metrics.fastmri_psnr, "fastmri_ssim": metrics.fastmri_ssim}
REAL_ONLY = ("ssim", "fastmri_psnr", "fastmri_ssim")


def _metric_call(data):
    """A metric, two images it takes (reference first for fastMRI's) and its keyword arguments."""
    name = data.draw(st.sampled_from([*PER_ITEM, *VOLUME]))
    windowed = name in ("ssim", "fastmri_ssim")
    side = st.integers(7, 10) if windowed else st.integers(1, 6)
    if name in PER_ITEM:
        shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)), data.draw(side), data.draw(side))
    else:
        shape = (data.draw(st.integers(1, 3)), data.draw(side), data.draw(side))
    complex_ok = name not in REAL_ONLY
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64] + ([torch.complex64] if complex_ok else [])))
    generator = torch.Generator().manual_seed(data.draw(st.integers(0, 1000)))
    scale = data.draw(st.floats(1e-3, 1e3))
    reference = (scale * (0.1 + torch.rand(shape, generator=generator, dtype=torch.float64))).to(dtype)
    identical = data.draw(st.booleans())
    error = (scale * 0.1 * torch.randn(shape, generator=generator, dtype=torch.float64)).to(dtype)
    image = reference.clone() if identical else reference + error
    kwargs = {}
    if name in ("psnr", "ssim") and data.draw(st.booleans()):
        kwargs["data_range"] = scale * data.draw(st.floats(0.5, 2))
    if name in ("fastmri_psnr", "fastmri_ssim") and data.draw(st.booleans()):
        kwargs["maxval"] = scale * data.draw(st.floats(0.5, 2))
    pair = (image, reference) if name in PER_ITEM else (reference, image)
    return name, pair, kwargs, identical


@settings(PROFILE, max_examples=40)
@given(data=st.data())
def test_metrics_are_finite_except_psnr_of_identical_images(data):
    name, pair, kwargs, identical = _metric_call(data)
    score = {**PER_ITEM, **VOLUME}[name](*pair, **kwargs)
    assert score.shape == ((pair[0].shape[0],) if name in PER_ITEM else ())
    if identical and name in ("psnr", "fastmri_psnr"):
        assert bool((score == math.inf).all())  # no error at all: +inf dB, as skimage says
    else:
        assert bool(torch.isfinite(score).all())


METRIC_FAULTS = ["dtype", "shape", "empty", "NaN/Inf", "constant", "data range", "not a tensor"]


@pytest.mark.parametrize("fault", METRIC_FAULTS)
@settings(PROFILE, max_examples=6)
@given(data=st.data())
def test_metrics_refuse_bad_input_naming_it(fault, data):
    name, (first, second), kwargs, _ = _metric_call(data)
    names = ("image", "reference") if name in PER_ITEM else ("gt", "pred")
    function = {**PER_ITEM, **VOLUME}[name]
    if fault == "dtype":
        second = second.real.to(torch.int64) if name not in REAL_ONLY or data.draw(st.booleans()) else second.to(torch.complex64)
    elif fault == "shape":
        second = data.draw(st.sampled_from([second[..., :-1], second[None]]))
    elif fault == "empty":
        first, second = first[:0], second[:0]
    elif fault == "NaN/Inf":
        first, second = (_poison(data, first), second) if data.draw(st.booleans()) else (first, _poison(data, second))
    elif fault == "constant":
        # a reference without contrast (zero, for NMSE) leaves the score undefined unless a range is given
        value = 0.0 if name in ("nmse", *VOLUME) else data.draw(st.sampled_from([0.0, 1.0]))
        if name in PER_ITEM:
            second = torch.full_like(second, value)
        else:
            first = torch.full_like(first, value)
        kwargs = {}
        if name == "rmse":
            return  # defined for any reference
        names = {"nmse": ("reference",), "psnr": ("data_range",), "ssim": ("data_range",)}.get(name, ("gt", "maxval"))
    elif fault == "data range":
        if name in ("psnr", "ssim"):
            kwargs, names = {"data_range": data.draw(st.one_of(NOT_NONNEGATIVE, st.just(0)))}, ("data_range",)
        elif name in ("fastmri_psnr", "fastmri_ssim"):
            kwargs, names = {"maxval": data.draw(st.one_of(NOT_NONNEGATIVE, st.just(0)))}, ("maxval",)
        else:
            return  # no range argument
    else:
        second = second.tolist()
    with pytest.raises(DOCUMENTED) as raised:
        function(first, second, **kwargs)
    refused(raised.value, *names)


# -- output locations (the command line's --out) -------------------------------------------------

#: path components: a name and what stands there (a folder, a file or nothing yet)
COMPONENTS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "out.npy"]), st.sampled_from(["folder", "file", "missing"])), min_size=1, max_size=3
)


@settings(PROFILE, max_examples=40)
@given(components=COMPONENTS, folder=st.booleans())
def test_output_locations_are_checked_without_leaving_anything(tmp_path_factory, components, folder):
    root = tmp_path_factory.mktemp("out")
    path, exists, blocked = root, True, False
    for index, (name, kind) in enumerate(components):
        path = path / name
        if exists and kind == "folder":
            path.mkdir(exist_ok=True)
        elif exists and kind == "file":
            path.write_bytes(b"")
            # a file is in the way unless it is the target of a file check (then it is replaced)
            blocked = index < len(components) - 1 or folder
        exists = exists and kind == "folder"  # nothing stands below a file or a missing folder
    target_is_folder = path.is_dir()
    before = sorted(str(p) for p in root.rglob("*"))
    check = check_output_dir if folder else check_output_file
    if blocked or (target_is_folder and not folder):
        with pytest.raises(ValueError) as raised:
            check(path, "--out")
        assert str(path) in str(raised.value) and ".invsolve-probe" not in str(raised.value)
    else:
        assert check(path, "--out") == path
    assert sorted(str(p) for p in root.rglob("*")) == before  # the probe leaves nothing behind


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("path", ["/proc", "/proc/forbidden", "/proc/forbidden/deeper"])
def test_output_locations_in_proc_are_refused_naming_the_users_path(path):
    for check in (check_output_dir, check_output_file):
        with pytest.raises(ValueError) as raised:
            check(path if check is check_output_dir else os.path.join(path, "r.npy"), "--out")
        assert path in str(raised.value) and ".tmp" not in str(raised.value) and "probe" not in str(raised.value)


def test_gaussian_posterior_refuses_a_prior_with_a_nan_at_a_hidden_pixel():
    # the mean at a pixel the mask hides never meets the data, but NaN·0 would still spread to every pixel
    prior = GaussianPrior.squared_exponential((1, 4, 4), length_scale=1.0)
    observed = torch.ones(4, 4, dtype=torch.bool)
    observed[2, 1] = False
    prior.mean_network[2 * 4 + 1] = math.nan
    with pytest.raises(ValueError, match=r"prior.mean must be finite, got 1 NaN or infinite entries \(the first at index \(9,\)"):
        gaussian_posterior(prior, Mask(observed), torch.zeros(1, 1, 4, 4), 0.1)
