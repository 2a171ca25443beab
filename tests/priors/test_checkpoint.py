import json
import os
from importlib import resources
from pathlib import Path

import pytest
import torch
from torch import nn

from invsolve.priors import (
    CheckpointError,
    Conditioning,
    DiffusionPrior,
    DiscreteVPSchedule,
    EDMSchedule,
    GaussianPrior,
    LowRankGaussian,
    Normalization,
    UNetPrior,
    available_pretrained,
    load_prior,
    pretrained,
    read_metadata,
    save_prior,
)
from invsolve.priors.checkpoint import FORMAT_VERSION, prior_from_checkpoint, prior_to_checkpoint
from invsolve.operators.ct import MU_WATER_PER_MM
from invsolve.priors.recipe import read_config

TINY = {"channels": (16, 32), "attention_levels": (False, True), "num_head_channels": 16}
CONDITIONS = {
    None: None,
    "class": torch.tensor([2, 0]),
    "vector": torch.randn(2, 4, generator=torch.Generator().manual_seed(0)),
    "image": torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(1)),
}


def trained_like(prior: UNetPrior, seed: int = 0) -> UNetPrior:
    """Perturb every weight, as training would, so that outputs are nonzero and depend on all of them."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in prior.parameters():
            parameter.add_(0.02 * torch.randn(parameter.shape, generator=generator))
    return prior


def make_prior(kind=None, **kwargs) -> UNetPrior:
    conditioning = Conditioning(kind, {"class": 3, "vector": 4, "image": 1}[kind]) if kind else None
    return trained_like(UNetPrior((1, 16, 16), **{**TINY, "conditioning": conditioning, **kwargs}))


def outputs(prior: DiffusionPrior, condition=None) -> torch.Tensor:
    x_t = torch.randn(2, *prior.image_shape, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        return prior.denoise(x_t, torch.tensor([0.2, 0.7]), condition)


@pytest.mark.parametrize("kind", CONDITIONS, ids=str)
def test_round_trip_gives_identical_outputs(tmp_path, kind):
    prior = make_prior(kind, prediction="v", normalization=Normalization.from_range(-1000, 3000, "HU"))
    training = {"data": "synthetic 16² test images", "steps": 120, "ema_decay": 0.999}
    path = save_prior(tmp_path / "prior.pt", prior, training=training)
    loaded = load_prior(path)
    assert isinstance(loaded, UNetPrior) and not loaded.training
    assert loaded.architecture() == prior.architecture()
    assert loaded.schedule == prior.schedule and loaded.normalization == prior.normalization
    assert loaded.conditioning == prior.conditioning and loaded.prediction == "v"
    for name, tensor in prior.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert torch.equal(outputs(loaded, CONDITIONS[kind]), outputs(prior, CONDITIONS[kind]))  # bfloat16 inference
    metadata = read_metadata(path)
    assert metadata["training"] == training and metadata["weights_dtype"] == "float32"
    assert metadata["prior_type"] == "unet" and metadata["invsolve_version"] == "0.1.0"


@pytest.mark.parametrize("schedule", [DiscreteVPSchedule.cosine(num_steps=200), EDMSchedule()], ids=lambda s: s.name)
def test_round_trip_of_a_3d_prior_and_other_schedules(tmp_path, schedule):
    prior = trained_like(UNetPrior((2, 8, 8, 8), schedule, "x0", **TINY, inference_dtype="float32"))
    loaded = load_prior(save_prior(tmp_path / "volume.pt", prior))
    assert loaded.schedule == schedule and loaded.image_shape == (2, 8, 8, 8)
    loaded.inference_dtype = "float32"
    assert torch.equal(outputs(loaded), outputs(prior))


def test_the_file_is_a_plain_dict_for_torch_load_weights_only(tmp_path):
    path = save_prior(tmp_path / "prior.pt", make_prior("class"))
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["format"] == "invsolve-prior" and checkpoint["format_version"] == FORMAT_VERSION
    assert set(checkpoint) == {"format", "format_version", "metadata_json", "state_dict"}
    metadata = json.loads(checkpoint["metadata_json"])
    assert metadata["conditioning"] == {"kind": "class", "size": 3}
    assert metadata["architecture"]["channels"] == [16, 32] and metadata["image_shape"] == [1, 16, 16]
    assert all(isinstance(value, torch.Tensor) for value in checkpoint["state_dict"].values())


def test_half_precision_weights(tmp_path):
    prior = make_prior("vector")
    prior.inference_dtype = "float32"
    full = save_prior(tmp_path / "full.pt", prior)
    half = save_prior(tmp_path / "half.pt", prior, half=True)
    assert os.path.getsize(half) < 0.6 * os.path.getsize(full)
    assert all(t.dtype == torch.float16 for t in torch.load(half, weights_only=True)["state_dict"].values())
    loaded = load_prior(half)
    assert read_metadata(half)["weights_dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    loaded.inference_dtype = "float32"
    reference = outputs(prior, CONDITIONS["vector"])
    relative = float((outputs(loaded, CONDITIONS["vector"]) - reference).norm() / reference.norm())
    assert relative < 1e-3  # float16 keeps 11 bits of mantissa; measured ~1e-4


def test_half_refuses_weights_beyond_float16(tmp_path):
    prior = make_prior()
    with torch.no_grad():
        prior.unet.conv_in.conv.bias[0] = 1e5
    with pytest.raises(ValueError, match="'unet.conv_in.conv.bias' exceeds float16's range"):
        save_prior(tmp_path / "prior.pt", prior, half=True)
    assert not any(tmp_path.iterdir())


def test_gaussian_prior_round_trip(tmp_path):
    prior = GaussianPrior.squared_exponential(
        (1, 4, 4), length_scale=1.5, std=2.0, mean=1.0, normalization=Normalization(scale=3.0, offset=1.0)
    )
    loaded = load_prior(save_prior(tmp_path / "gaussian.pt", prior, half=True))  # float64 buffers stay float64
    assert isinstance(loaded, GaussianPrior)
    x_t = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    assert torch.equal(loaded.denoise(x_t, 0.4), prior.denoise(x_t, 0.4))
    assert torch.allclose(loaded.cov, prior.cov, atol=1e-12) and torch.equal(loaded.mean, prior.mean)
    # its exact Gaussian is rebuilt from the eigendecomposition, not stored
    assert read_metadata(tmp_path / "gaussian.pt")["gaussian_fit"] is None
    assert torch.equal(loaded.gaussian_fit.components, prior.gaussian_fit.components)


def test_the_checkpoint_dict_can_live_inside_a_training_file(tmp_path):
    prior = make_prior("image")
    path = tmp_path / "resume.pt"
    torch.save({"step": 7, "prior": prior_to_checkpoint(prior, {"steps": 7})}, path)
    loaded = prior_from_checkpoint(torch.load(path, weights_only=True)["prior"])
    assert torch.equal(outputs(loaded, CONDITIONS["image"]), outputs(prior, CONDITIONS["image"]))


def test_a_failed_save_leaves_the_old_file(tmp_path, monkeypatch):
    path = save_prior(tmp_path / "prior.pt", make_prior())
    before = path.read_bytes()

    def broken_save(obj, f):
        open(f, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_prior(path, make_prior("class"))
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["prior.pt"]


def test_save_errors(tmp_path):
    with pytest.raises(TypeError, match="prior must be one of UNetPrior, GaussianPrior to be saved, got Linear"):
        save_prior(tmp_path / "x.pt", nn.Linear(2, 2))
    with pytest.raises(TypeError, match="training must be JSON-serialisable"):
        save_prior(tmp_path / "x.pt", make_prior(), training={"data": object()})
    with pytest.raises(TypeError, match="training must be a mapping"):
        save_prior(tmp_path / "x.pt", make_prior(), training=["steps", 3])


def with_fit(prior: UNetPrior, rank: int = 3) -> UNetPrior:
    images = torch.randn(12, *prior.image_shape, generator=torch.Generator().manual_seed(7))
    prior.set_gaussian_fit(LowRankGaussian.fit(images, rank))
    return prior


@pytest.mark.parametrize("half", [False, True], ids=["float32", "float16"])
def test_round_trip_with_a_gaussian_fit(tmp_path, half):
    prior = with_fit(make_prior())
    path = save_prior(tmp_path / "prior.pt", prior, half=half)
    assert read_metadata(path)["gaussian_fit"] == {"rank": 3}
    stored = torch.load(path, weights_only=True)["state_dict"]
    assert stored["unet.conv_in.conv.weight"].dtype == (torch.float16 if half else torch.float32)
    assert all(stored[f"gaussian_fit_module.{name}"].dtype == torch.float32 for name in ("mean", "components"))
    loaded = load_prior(path)
    assert loaded.gaussian_fit.rank == 3 and loaded.gaussian_fit.image_shape == (1, 16, 16)
    for name, buffer in prior.gaussian_fit.named_buffers():
        assert torch.equal(loaded.gaussian_fit.get_buffer(name), buffer), name  # exact even in a half file
    loaded = load_prior(path, map_location="meta")
    assert loaded.gaussian_fit.components.device.type == "meta"  # .to(device) carries it


def test_round_trip_without_a_fit_and_files_from_before_the_key(tmp_path):
    prior = make_prior()
    path = save_prior(tmp_path / "prior.pt", prior)
    assert read_metadata(path)["gaussian_fit"] is None and load_prior(path).gaussian_fit is None
    rewrite(path, lambda checkpoint, metadata: metadata.pop("gaussian_fit"))  # as written before it existed
    assert "gaussian_fit" not in read_metadata(path)
    loaded = load_prior(path)
    assert loaded.gaussian_fit is None and torch.equal(outputs(loaded), outputs(prior))


def _gaussian_file(tmp_path):
    prior = GaussianPrior.squared_exponential((1, 3, 3), length_scale=1.0)
    return save_prior(tmp_path / "gaussian.pt", prior)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c, m: m.update(gaussian_fit={"rank": 2}),
         r"'gaussian_fit_module.components' is \(3, 256\) in the file but \(2, 256\) for the metadata"),
        (lambda c, m: m.update(gaussian_fit=None), r"'gaussian_fit_module.mean' unexpected"),
        (lambda c, m: m.update(gaussian_fit={"rank": 0}),
         "metadata field 'gaussian_fit' must have an int rank >= 1, got 0"),
        (lambda c, m: m.update(gaussian_fit={"k": 3}), "metadata field 'gaussian_fit' must be null or {'rank': k}"),
        (lambda c, m: m.update(gaussian_fit={"rank": 300}),
         "cannot rebuild the unet prior from the metadata: rank must be at most the number of pixels n = 256"),
    ],
    ids=["other rank", "fit not declared", "rank 0", "not a rank", "rank > pixels"],
)
def test_gaussian_fit_metadata_errors(tmp_path, edit, message):
    path = save_prior(tmp_path / "prior.pt", with_fit(make_prior()))
    rewrite(path, edit)
    with pytest.raises(CheckpointError, match=message):
        load_prior(path)


def test_a_gaussian_prior_file_with_a_fit_is_refused(tmp_path):
    path = _gaussian_file(tmp_path)
    rewrite(path, lambda c, m: m.update(gaussian_fit={"rank": 2}))
    with pytest.raises(CheckpointError, match="a gaussian prior stores no Gaussian fit"):
        load_prior(path)


def rewrite(path, edit):
    """Apply ``edit(checkpoint, metadata)`` to a saved checkpoint."""
    checkpoint = torch.load(path, weights_only=True)
    metadata = json.loads(checkpoint["metadata_json"])
    edit(checkpoint, metadata)
    checkpoint["metadata_json"] = json.dumps(metadata)
    torch.save(checkpoint, path)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no prior checkpoint at .*missing.pt"):
        load_prior(tmp_path / "missing.pt")

    good = save_prior(tmp_path / "good.pt", make_prior()).read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt is not a readable torch file"):
        load_prior(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(CheckpointError, match="garbage.pt is not a readable torch file"):
        load_prior(garbage)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt is not a readable torch file"):
        load_prior(empty)

    plain = tmp_path / "state_dict.pt"
    torch.save(make_prior().state_dict(), plain)
    expected = "not an invsolve prior checkpoint: expected a dict with 'format'.*found a dict with keys 'unet.conv_in"
    with pytest.raises(CheckpointError, match=expected):
        load_prior(plain)
    pickled = tmp_path / "model.pt"
    torch.save(nn.Linear(3, 3), pickled)
    with pytest.raises(CheckpointError, match="holds a pickled torch.nn.modules.linear.Linear object"):
        load_prior(pickled)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c, m: m["architecture"].update(channels=[32, 32]),
         r"the weights do not match the unet prior its metadata describe .*\"channels\": \[32, 32\].*"
         r"'unet.conv_in.conv.weight' is \(16, 1, 3, 3\) in the file but \(32, 1, 3, 3\) for the metadata"),
        (lambda c, m: c.update(format_version=FORMAT_VERSION + 1),
         f"unknown checkpoint format_version {FORMAT_VERSION + 1}: this invsolve reads versions 1 to {FORMAT_VERSION}"),
        (lambda c, m: m["schedule"].update(name="vp-quadratic"),
         "cannot rebuild the unet prior from the metadata: unknown noise schedule 'vp-quadratic'"),
        (lambda c, m: m.update(prior_type="transformer"),
         "unknown prior_type 'transformer'; this invsolve reads: unet, gaussian"),
        (lambda c, m: m.pop("architecture"), "the metadata lacks 'architecture'"),
        (lambda c, m: m["architecture"].update(norm_num_groups=5), "cannot rebuild .* multiple of norm_num_groups = 5"),
        (lambda c, m: m.update(conditioning={"kind": "class", "size": 4}), r"'unet.class_embedding.weight' missing"),
        (lambda c, m: c.update(format="something-else"), "'format' is 'something-else', expected 'invsolve-prior'"),
    ],
    ids=["architecture", "format_version", "schedule", "prior_type", "missing", "bad value", "conditioning", "format"],
)
def test_metadata_errors(tmp_path, edit, message):
    path = save_prior(tmp_path / "prior.pt", make_prior())
    rewrite(path, edit)
    with pytest.raises(CheckpointError, match=message):
        load_prior(path)


def test_invalid_metadata_json(tmp_path):
    path = save_prior(tmp_path / "prior.pt", make_prior())
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["metadata_json"] = "{not json"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match="prior.pt: metadata_json is not valid JSON"):
        read_metadata(path)


def test_pretrained_lookup(tmp_path):
    prior = make_prior("class", prediction="x0")
    save_prior(tmp_path / "tiny-ct.pt", prior, half=True)
    save_prior(tmp_path / "tiny-galaxy.pt", make_prior())
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    assert available_pretrained(root=tmp_path) == ["tiny-ct", "tiny-galaxy"]
    loaded = pretrained("tiny-ct", device="cpu", root=tmp_path)
    assert isinstance(loaded, UNetPrior) and loaded.device == torch.device("cpu")
    reference = outputs(prior, CONDITIONS["class"])
    assert float((outputs(loaded, CONDITIONS["class"]) - reference).norm() / reference.norm()) < 1e-2
    with pytest.raises(ValueError, match="unknown pretrained prior 'tiny-mri'; available: tiny-ct, tiny-galaxy"):
        pretrained("tiny-mri", root=tmp_path)
    with pytest.raises(ValueError, match="unknown pretrained prior 'tiny-ct.pt'"):
        pretrained("tiny-ct.pt", root=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="available: none \\(no NAME.pt files in .*empty\\)"):
        pretrained("tiny-ct", root=empty)
    with pytest.raises(FileNotFoundError, match="root must be a folder of prior checkpoints"):
        pretrained("tiny-ct", root=tmp_path / "absent")
    with pytest.raises(TypeError, match="name must be a str, got int"):
        pretrained(3, root=tmp_path)


def test_every_shipped_prior_loads_and_is_small():
    # the 1.1 M-parameter priors take 3.4 MB in float16; issue 10 allows its larger prior up to 25 MB
    largest = {"ct-ellipses-large": 25 * 10**6}
    folder = resources.files("invsolve.priors").joinpath("pretrained")
    for name in available_pretrained():
        with resources.as_file(folder.joinpath(f"{name}.pt")) as path:
            limit = largest.get(name, 5 * 2**20)
            assert os.path.getsize(path) <= limit, f"{name}.pt is larger than {limit} bytes"
            assert read_metadata(path)["training"] is not None, f"{name}.pt does not say how it was trained"
        assert isinstance(pretrained(name), DiffusionPrior)


def test_every_shipped_prior_has_the_recipe_it_was_trained_with():
    configs = Path(__file__).resolve().parents[2] / "configs"
    folder = resources.files("invsolve.priors").joinpath("pretrained")
    for name in available_pretrained():
        recipe, _ = read_config(configs / f"{name}.toml")
        with resources.as_file(folder.joinpath(f"{name}.pt")) as path:
            trained = read_metadata(path)["training"]["config"]
        for section in ("data", "train"):
            for key, value in recipe[section].items():
                assert trained[section][key] == value, f"{name}: [{section}] {key} is {value!r} in the recipe"
        assert trained["prior"]["prediction"] == recipe["prior"]["prediction"]
        # the unit the prior is saved in: the recipe's normalization, relabelled by its physical_unit
        physical_unit = recipe["prior"].get("physical_unit")
        assert trained["prior"].get("physical_unit") == physical_unit
        normalization = Normalization.from_range(**recipe["prior"]["normalization"])
        if physical_unit is not None:
            normalization = normalization.in_units(physical_unit["factor"], physical_unit["unit"])
        assert pretrained(name).normalization == normalization, name


def test_shipped_priors_name_no_path_of_the_machine_that_trained_them():
    """Every absolute path in a shipped checkpoint's metadata is one its recipe gives (a Debian package file)."""
    configs = Path(__file__).resolve().parents[2] / "configs"
    folder = resources.files("invsolve.priors").joinpath("pretrained")

    def strings(value):
        if isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from strings(item)
        elif isinstance(value, str):
            yield value

    for name in available_pretrained():
        recipe_text = (configs / f"{name}.toml").read_text(encoding="utf-8")
        with resources.as_file(folder.joinpath(f"{name}.pt")) as path:
            metadata = read_metadata(path)
        absolute = [text for text in strings(metadata) if text.startswith("/") or ":\\" in text]
        assert all(f'"{text}"' in recipe_text for text in absolute), (name, absolute)
        assert metadata["training"]["config"]["output"]["dir"] == f"runs/{name}"


def test_every_shipped_prior_has_a_gaussian_fit_and_ct_ellipses_is_in_mm():
    folder = resources.files("invsolve.priors").joinpath("pretrained")
    for name in available_pretrained():
        with resources.as_file(folder.joinpath(f"{name}.pt")) as path:
            metadata = read_metadata(path)
        prior = pretrained(name)
        fit = prior.gaussian_fit
        assert isinstance(fit, LowRankGaussian) and fit.rank == 64 and fit.image_shape == prior.image_shape
        assert metadata["gaussian_fit"] == {"rank": 64} and metadata["weights_dtype"] == "float16"
        assert fit.components.dtype == torch.float32
        assert torch.allclose(fit.components @ fit.components.T, torch.eye(64), atol=1e-5)
        assert bool((fit.variances >= 0).all()) and float(fit.residual_variance) > 0
        record = metadata["training"]["gaussian_fit"]
        assert record["rank"] == 64 and record["images"] == min(2048, metadata["training"]["data"]["num_items"])
        assert record["explained_variance"] == pytest.approx(fit.explained_variance)
        # network units: the mean image lies in the network's [-1, 1]
        assert -1.0 <= float(fit.mean.min()) and float(fit.mean.max()) <= 1.0
    ct = pretrained("ct-ellipses")
    assert ct.normalization.unit == "1/mm"
    assert ct.normalization == Normalization.from_range(0.0, 1.15).in_units(2 * MU_WATER_PER_MM, "1/mm")
