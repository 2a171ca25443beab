"""Training priors: config validation, outputs, bit-for-bit resume, workers, DDP, the CLI."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from invsolve.cli import main
from invsolve.datasets import training_dataset
from invsolve.priors import LowRankGaussian, Normalization, UNetPrior, load_prior, read_metadata, save_prior, train
from invsolve.priors.recipe import fit_gaussian_from_config
from invsolve.priors.trainer import load_train_state

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

TINY_NET = {"channels": [8, 16], "attention_levels": [False, False], "num_head_channels": 8}


@pytest.fixture(autouse=True)
def one_thread():
    """A 16² net trains fastest on one thread, and the machine's cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(out, **train_options):
    """10 phantoms in batches of 4: batches cross epoch boundaries."""
    return {
        "data": {"source": "phantoms", "length": 10, "size": [16, 16], "flip": True, "rot90": True},
        "prior": {"prediction": "v", "architecture": dict(TINY_NET)},
        "train": {
            "steps": 6,
            "batch_size": 4,
            "lr": 1e-3,
            "warmup_steps": 2,
            "ema_decay": 0.9,
            "checkpoint_every": 3,
            "log_every": 2,
            **train_options,
        },
        "output": {"dir": str(out)},
    }


@pytest.fixture(scope="module")
def straight_runs(tmp_path_factory):
    """Uninterrupted 6-step runs (with sample grids: sampling must not disturb training), by bf16."""
    runs = {}

    def run(bf16):
        if bf16 not in runs:
            folder = tmp_path_factory.mktemp(f"straight-bf16-{bf16}")
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr("invsolve.priors.trainer.native_bfloat16", lambda device: True)
                train(tiny_config(folder, bf16=bf16, sample_every=3, sample_steps=5), progress=False)
            runs[bf16] = folder
        return runs[bf16]

    return run


@pytest.fixture
def native_bfloat16(monkeypatch):
    """Autocast with bfloat16 wherever bf16 = true asks for it, on any CPU (AVX2 ones too)."""
    monkeypatch.setattr("invsolve.priors.trainer.native_bfloat16", lambda device: True)


def assert_same_state(a, b):
    for key in ("model", "ema"):
        assert a[key].keys() == b[key].keys()
        assert all(torch.equal(a[key][name], b[key][name]) for name in a[key])
    assert torch.equal(a["losses"], b["losses"])
    assert torch.equal(a["generator"], b["generator"])
    assert a["step"] == b["step"] and a["sampler"] == b["sampler"]
    state_a, state_b = a["optimizer"]["state"], b["optimizer"]["state"]
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[i][k], state_b[i][k]) for i in state_a for k in state_a[i])


@pytest.mark.parametrize("bf16", [False, True])
def test_resume_continues_bit_for_bit(straight_runs, tmp_path, bf16, native_bfloat16):
    reference = load_train_state(straight_runs(bf16) / "train_state.pt")
    assert reference["step"] == 6 and reference["losses"].shape == (6,)

    # stopped cleanly after 3 steps (its last checkpoint), then resumed to 6
    stopped = tmp_path / "stopped"
    global_state = torch.get_rng_state()
    train(tiny_config(stopped, bf16=bf16, steps=3), progress=False)
    assert torch.equal(torch.get_rng_state(), global_state)  # no global random numbers drawn
    assert load_train_state(stopped / "train_state.pt")["step"] == 3
    result = train(tiny_config(stopped, bf16=bf16), resume=True, progress=False)
    assert_same_state(load_train_state(stopped / "train_state.pt"), reference)
    assert torch.equal(result.losses, reference["losses"]) and result.steps == 6

    # killed during step 4, after the checkpoint at step 3: step 4 is redone
    killed = tmp_path / "killed"

    def kill(step, loss):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(killed, bf16=bf16), progress=False, callback=kill)
    assert load_train_state(killed / "train_state.pt")["step"] == 3
    assert not [name for name in os.listdir(killed) if name.endswith(".tmp")]
    train(tiny_config(killed, bf16=bf16), resume=killed / "train_state.pt", progress=False)
    assert_same_state(load_train_state(killed / "train_state.pt"), reference)
    final, expected = load_prior(killed / "prior.pt"), load_prior(straight_runs(bf16) / "prior.pt")
    assert "gaussian_fit_module.components" in expected.state_dict()  # the Gaussian fit too, bit for bit
    assert final.state_dict().keys() == expected.state_dict().keys()
    assert all(torch.equal(final.state_dict()[name], value) for name, value in expected.state_dict().items())
    trainings = [read_metadata(folder / "prior.pt")["training"] for folder in (killed, straight_runs(bf16))]
    assert trainings[0]["gaussian_fit"] == trainings[1]["gaussian_fit"] and trainings[0]["loss"] == trainings[1]["loss"]


def test_bf16_falls_back_to_float32_with_a_warning_where_bfloat16_is_slow(straight_runs, tmp_path, monkeypatch):
    monkeypatch.setattr("invsolve.priors.trainer.native_bfloat16", lambda device: False)
    with pytest.warns(UserWarning, match=r"bf16 = true, but cpu has no native bfloat16 kernels .*training in float32"):
        train(tiny_config(tmp_path, bf16=True, sample_every=3, sample_steps=5), progress=False)
    float32, bfloat16 = (load_train_state(straight_runs(bf16) / "train_state.pt") for bf16 in (False, True))
    assert_same_state(load_train_state(tmp_path / "train_state.pt"), float32)
    assert not torch.equal(float32["losses"], bfloat16["losses"])  # the reference runs differ in precision
    assert load_prior(tmp_path / "prior.pt").inference_dtype == "bfloat16"  # as asked, used where it is fast


def test_workers_load_the_same_batches(straight_runs, tmp_path):
    """Items are a pure function of (index, epoch): two worker processes change nothing."""
    train(tiny_config(tmp_path, num_workers=2), progress=False)
    reference = load_train_state(straight_runs(False) / "train_state.pt")
    assert_same_state(load_train_state(tmp_path / "train_state.pt"), reference)


def test_outputs(straight_runs):
    folder = straight_runs(False)
    state = torch.load(folder / "train_state.pt", weights_only=True)
    assert state["generator"].dtype == torch.uint8 and state["sampler"] == {"epoch": 2, "start": 4}
    prior = load_prior(folder / "prior.pt")
    assert isinstance(prior, UNetPrior) and prior.prediction == "v" and prior.image_shape == (1, 16, 16)
    assert prior.architecture()["channels"] == [8, 16]
    assert all(torch.equal(prior.state_dict()[name], value) for name, value in state["ema"].items())
    assert prior.normalization.to_config() == {"scale": 0.575, "offset": 0.575, "unit": ""}  # "auto": [0, 1.15]
    training = read_metadata(folder / "prior.pt")["training"]
    assert training["steps"] == 6 and training["world_size"] == 1
    assert training["data"]["source"] == "phantoms" and training["data"]["num_items"] == 10
    assert training["config"]["train"]["batch_size"] == 4 and training["config"]["prior"]["prediction"] == "v"
    loss = training["loss"]
    assert loss["window"] == 1 and len(loss["curve"]) == 6 and loss["last"] == pytest.approx(float(state["losses"][-1]))
    log = json.loads((folder / "log.json").read_text())
    assert [record["step"] for record in log] == [2, 4, 6]
    assert log[0]["loss"] == pytest.approx(float(state["losses"][:2].mean()))
    assert log[0]["lr"] == pytest.approx(1e-3) and log[0]["images_per_s"] > 0
    assert json.loads((folder / "config.json").read_text()) == training["config"]
    # the Gaussian fit: default rank 64, clipped to N - 1 = 9 for the 10 phantoms; their PCA in network units
    assert training["config"]["train"]["gaussian_rank"] == 64 and training["config"]["train"]["gaussian_images"] == 2048
    assert training["config"]["prior"]["physical_unit"] is None
    assert read_metadata(folder / "prior.pt")["gaussian_fit"] == {"rank": 9}
    fit = prior.gaussian_fit
    assert training["gaussian_fit"] == {"rank": 9, "images": 10, "explained_variance": fit.explained_variance}
    dataset = training_dataset(tiny_config(folder)["data"])
    images = torch.stack([dataset[(index, 0)] for index in range(10)]).double()
    expected = LowRankGaussian.fit(prior.to_network(images), 9)
    assert all(torch.equal(fit.get_buffer(name), buffer) for name, buffer in expected.named_buffers())
    for step in (3, 6):
        assert (folder / "samples" / f"step_{step:07d}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [name for name in os.listdir(folder) if name.endswith(".tmp")]


def test_resume_refusals(straight_runs, tmp_path):
    folder = straight_runs(False)
    config = tiny_config(folder, sample_every=3, sample_steps=5)
    with pytest.raises(FileExistsError, match="already holds a training run"):
        train(config, progress=False)
    changed = tiny_config(folder, lr=5e-4)
    with pytest.raises(ValueError, match=r"config differs in train\.lr \(a resume may change only"):
        train(changed, resume=True, progress=False)
    fewer = tiny_config(folder, steps=4)
    with pytest.raises(ValueError, match="at step 6, beyond \\[train\\] steps = 4"):
        train(fewer, resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="no training state at"):
        train(tiny_config(tmp_path), resume=True, progress=False)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="is not a readable torch file"):
        train(tiny_config(tmp_path), resume=tmp_path / "junk.pt", progress=False)


def test_gaussian_fit_settings_and_physical_unit(straight_runs, tmp_path):
    """gaussian_rank, gaussian_images and physical_unit change the saved prior, never the training."""
    config = tiny_config(tmp_path / "mm", sample_every=3, sample_steps=5, gaussian_rank=3, gaussian_images=6)
    config["prior"]["physical_unit"] = {"factor": 2.0, "unit": "mm"}
    result = train(config, progress=False)
    reference = load_train_state(straight_runs(False) / "train_state.pt")
    state = load_train_state(tmp_path / "mm" / "train_state.pt")
    assert torch.equal(state["losses"], reference["losses"])
    for key in ("model", "ema"):
        weights = {name: value for name, value in state[key].items() if not name.startswith("gaussian_fit_module.")}
        assert weights.keys() == {n for n in reference[key] if not n.startswith("gaussian_fit_module.")}
        assert all(torch.equal(value, reference[key][name]) for name, value in weights.items())
    prior = load_prior(tmp_path / "mm" / "prior.pt")
    # the same map with the unit relabelled: 1 data unit = 2 mm
    assert prior.normalization == Normalization(scale=1.15, offset=1.15, unit="mm") == result.prior.normalization
    metadata = read_metadata(tmp_path / "mm" / "prior.pt")
    assert metadata["training"]["config"]["prior"]["physical_unit"] == {"factor": 2.0, "unit": "mm"}
    assert metadata["training"]["config"]["prior"]["normalization"] == {"scale": 0.575, "offset": 0.575, "unit": ""}
    assert prior.gaussian_fit.rank == 3 and metadata["training"]["gaussian_fit"]["images"] == 6
    assert torch.equal(prior.gaussian_fit.components, result.prior.gaussian_fit.components)

    train(tiny_config(tmp_path / "none", steps=1, checkpoint_every=0, gaussian_rank=0), progress=False)
    assert load_prior(tmp_path / "none" / "prior.pt").gaussian_fit is None
    metadata = read_metadata(tmp_path / "none" / "prior.pt")
    assert metadata["gaussian_fit"] is None and metadata["training"]["gaussian_fit"] is None


def test_fit_gaussian_from_config_gives_the_fit_train_computes(straight_runs, tmp_path):
    trained = load_prior(straight_runs(False) / "prior.pt")
    training = read_metadata(straight_runs(False) / "prior.pt")["training"]
    reference = trained.gaussian_fit
    trained.set_gaussian_fit(None)  # as a prior trained before train() computed the fit
    path = save_prior(tmp_path / "old.pt", trained, training=training, half=True)
    weights = {name: tensor.clone() for name, tensor in torch.load(path, weights_only=True)["state_dict"].items()}
    fit = fit_gaussian_from_config(tiny_config(tmp_path / "unused"), path)
    assert all(torch.equal(fit.get_buffer(name), buffer) for name, buffer in reference.named_buffers())
    stored = torch.load(path, weights_only=True)["state_dict"]
    assert all(torch.equal(stored[name], tensor) for name, tensor in weights.items())
    assert all(stored[name].dtype == torch.float16 for name in weights)  # still a half file
    assert stored["gaussian_fit_module.components"].dtype == torch.float32
    metadata = read_metadata(path)
    assert metadata["weights_dtype"] == "float16" and metadata["gaussian_fit"] == {"rank": 9}
    assert metadata["training"] == {
        **training,
        "gaussian_fit": {**training["gaussian_fit"], "added_by": "invsolve fit-gaussian"},
    }
    assert torch.equal(load_prior(path).gaussian_fit.components, reference.components)
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]

    fit = fit_gaussian_from_config(tiny_config(tmp_path / "unused"), path, rank=2, images=5)
    assert fit.rank == 2 and read_metadata(path)["training"]["gaussian_fit"]["images"] == 5
    with pytest.raises(ValueError, match=r"rank must be at most min\(N - 1, n\) = min\(4, 256\) = 4 for N = 5"):
        fit_gaussian_from_config(tiny_config(tmp_path / "unused"), path, rank=5, images=5)
    other_units = tiny_config(tmp_path / "unused")
    other_units["prior"]["normalization"] = {"low": 0.0, "high": 2.0}
    expected = (r"old.pt maps physical to network units as \{'scale': 0.575, 'offset': 0.575, 'unit': ''\}, "
                r"but the config's \[prior\] normalization and physical_unit give")
    with pytest.raises(ValueError, match=expected):
        fit_gaussian_from_config(other_units, path)
    bigger = tiny_config(tmp_path / "unused")
    bigger["data"]["size"] = [32, 32]
    with pytest.raises(ValueError, match=r"is a prior of images shaped \[1, 16, 16\], but the config's data are "
                                         r"shaped \[1, 32, 32\]"):
        fit_gaussian_from_config(bigger, path)
    with pytest.raises(FileNotFoundError, match="no prior checkpoint at"):
        fit_gaussian_from_config(tiny_config(tmp_path / "unused"), tmp_path / "missing.pt")


def _edit(section, key, value, subsection=None):
    def apply(config):
        table = config[section] if subsection is None else config[section].setdefault(subsection, {})
        table[key] = value
        return config

    return apply


@pytest.mark.parametrize(
    "edit, error, message",
    [
        (lambda c: {**c, "trian": {}}, ValueError,
         "unknown section 'trian' in the config; allowed sections: data, prior, train, output"),
        (_edit("train", "learning_rate", 1e-3), ValueError,
         r"unknown key 'learning_rate' in \[train\]; allowed keys: steps, batch_size, lr, weight_decay, betas"),
        (_edit("prior", "predicton", "v"), ValueError,
         r"unknown key 'predicton' in \[prior\]; allowed keys: image_shape, prediction, schedule"),
        (_edit("prior", "chanels", [8], "architecture"), ValueError,
         r"unknown key 'chanels' in \[prior.architecture\]; allowed keys: channels, attention_levels"),
        (_edit("prior", "schedule", {"name": "vp-cosine", "parms": {}}), ValueError,
         r"unknown key 'parms' in \[prior.schedule\]; allowed keys: name, params"),
        (_edit("prior", "normalization", {"lo": 0, "high": 1}), ValueError,
         r"unknown key 'lo' in \[prior.normalization\]; allowed keys: low, high, unit"),
        (_edit("output", "folder", "x"), ValueError, r"unknown key 'folder' in \[output\]; allowed keys: dir"),
        (_edit("data", "sise", [16, 16]), ValueError, r"\[data\] unknown key 'sise' for source 'phantoms'"),
        (lambda c: {**c, "data": {"source": "image-folder", "path": "/no/such/folder"}}, FileNotFoundError,
         r"\[data\] path: /no/such/folder does not exist"),
        (_edit("train", "steps", 0), ValueError, r"\[train\] steps must be an int >= 1, got 0"),
        (_edit("train", "batch_size", 4.0), TypeError, r"\[train\] batch_size must be an int >= 1, got 4.0"),
        (_edit("train", "lr", -1e-3), ValueError, r"\[train\] lr must be a number in \(0, inf\), got -0.001"),
        (_edit("train", "lr", "fast"), TypeError, r"\[train\] lr must be a number, got 'fast'"),
        (_edit("train", "betas", [0.9]), ValueError, r"\[train\] betas must be a pair \[beta1, beta2\]"),
        (_edit("train", "ema_decay", 1.0), ValueError, r"\[train\] ema_decay must be a number in \[0, 1\), got 1.0"),
        (_edit("train", "bf16", "yes"), TypeError, r"\[train\] bf16 must be true or false, got 'yes'"),
        (_edit("train", "device", "tpu"), ValueError, r"\[train\] device must be \"auto\", \"cpu\""),
        (lambda c: {**c, "train": {"batch_size": 4}}, ValueError, r"\[train\] needs steps"),
        (lambda c: {key: c[key] for key in ("data", "train")}, ValueError, "no output folder"),
        (_edit("prior", "prediction", "score"), ValueError, r"\[prior\] prediction must be one of eps, x0, v"),
        (_edit("prior", "schedule", {"name": "vp-square"}), ValueError,
         r"\[prior.schedule\] unknown noise schedule 'vp-square'"),
        (_edit("prior", "image_shape", [1, 32, 32]), ValueError,
         r"\[prior\] image_shape = \[1, 32, 32\] differs from the data's shape \[1, 16, 16\]"),
        (_edit("prior", "conditioning", {"kind": "vector"}), ValueError,
         r"\[prior.conditioning\] needs a conditional data source, but source 'phantoms' yields images without "
         r"conditions"),
        (_edit("prior", "conditioning", {"kind": "class"}), ValueError,
         r"\[prior.conditioning\] kind must be \"vector\""),
        (_edit("prior", "conditioning", {"size": 2}), ValueError,
         r"unknown key 'size' in \[prior.conditioning\]; allowed keys: kind, drop, guidance_scale"),
        (_edit("prior", "conditioning", "vector"), ValueError, r"\[prior\] conditioning must be a table"),
        (_edit("prior", "channels", [12, 16], "architecture"), ValueError,
         r"\[prior\] channels\[0\] = 12 must be a multiple of norm_num_groups = 8"),
        (_edit("prior", "normalization", {"low": 1.0, "high": 1.0}), ValueError,
         r"\[prior\] normalization needs high > low"),
        (_edit("train", "gaussian_rank", -1), ValueError, r"\[train\] gaussian_rank must be an int >= 0, got -1"),
        (_edit("train", "gaussian_rank", 2.5), TypeError, r"\[train\] gaussian_rank must be an int >= 0, got 2.5"),
        (_edit("train", "gaussian_images", 1), ValueError, r"\[train\] gaussian_images must be an int >= 2, got 1"),
        (_edit("prior", "physical_unit", "1/mm"), ValueError,
         r"\[prior\] physical_unit must be a table \{factor, unit\} saying that one data unit is factor unit, "
         r".*got '1/mm'"),
        (_edit("prior", "physical_unit", {"factor": 0.0, "unit": "1/mm"}), ValueError,
         r"\[prior.physical_unit\] factor must be a number in \(0, inf\), got 0.0"),
        (_edit("prior", "physical_unit", {"factor": "0.04", "unit": "1/mm"}), TypeError,
         r"\[prior.physical_unit\] factor must be a number, got '0.04'"),
        (_edit("prior", "physical_unit", {"factor": 0.04}), ValueError,
         r"\[prior.physical_unit\] needs factor and unit, got \{'factor': 0.04\}"),
        (_edit("prior", "physical_unit", {"factor": 0.04, "unit": " "}), ValueError,
         r"\[prior.physical_unit\] unit must be a non-empty string \(the unit's name\), got ' '"),
        (_edit("prior", "physical_unit", {"factor": 0.04, "unit": 1}), TypeError,
         r"\[prior.physical_unit\] unit must be a string \(the unit's name\), got 1"),
        (_edit("prior", "physical_unit", {"factor": 0.04, "units": "mm"}), ValueError,
         r"unknown key 'units' in \[prior.physical_unit\]; allowed keys: factor, unit"),
    ],
)
def test_config_errors(tmp_path, edit, error, message):
    with pytest.raises(error, match=message):
        train(edit(tiny_config(tmp_path / "out")), progress=False)
    assert not (tmp_path / "out").exists()


def _free_loopback_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_match_one(tmp_path):
    """torchrun with 2 CPU processes (gloo, loopback only) and the same global batch as 1 process."""
    config = tiny_config(tmp_path / "ddp", checkpoint_every=0)
    script = tmp_path / "run.py"
    script.write_text(
        "import json, sys, torch\n"
        "torch.set_num_threads(1)\n"
        "from invsolve.priors import train\n"
        "train(json.loads(sys.argv[1]), progress=False)\n"
    )
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(_free_loopback_port()), str(script), json.dumps(config),
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    completed = subprocess.run(command, env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    train(tiny_config(tmp_path / "one", checkpoint_every=0), progress=False)
    two, one = (load_train_state(tmp_path / name / "train_state.pt") for name in ("ddp", "one"))
    difference = float((two["losses"] - one["losses"]).abs().max())
    assert difference < 1e-5, difference  # measured 6e-8: only the order of float sums differs
    assert read_metadata(tmp_path / "ddp" / "prior.pt")["training"]["world_size"] == 2


def test_cli_with_toml_and_relative_data_path(tmp_path, capsys):
    folder = tmp_path / "experiment"
    (folder / "images").mkdir(parents=True)
    for number, image in enumerate(np.random.default_rng(0).uniform(0, 255, (6, 16, 16)).astype(np.float32)):
        np.save(folder / "images" / f"{number:02d}.npy", image)
    toml = textwrap.dedent("""
        [data]
        source = "image-folder"
        path = "images"

        [prior]
        prediction = "eps"
        schedule = {{ name = "vp-cosine", params = {{ num_steps = 100 }} }}
        normalization = {{ low = 0.0, high = 255.0, unit = "grey" }}

        [prior.architecture]
        channels = [8, 16]
        attention_levels = [false, false]
        num_head_channels = 8

        [train]
        steps = {steps}
        batch_size = 2
        log_every = 1
    """)
    config = folder / "config.toml"
    config.write_text(toml.format(steps=2))
    out = tmp_path / "out"
    assert main(["train-prior", str(config), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and summary["prior"] == str(out / "prior.pt")
    config.write_text(toml.format(steps=3))
    assert main(["train-prior", str(config), "--resume", "--out", str(out), "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 3
    metadata = read_metadata(out / "prior.pt")
    assert metadata["normalization"] == {"scale": 127.5, "offset": 127.5, "unit": "grey"}
    assert metadata["schedule"]["name"] == "vp-cosine" and metadata["prediction"] == "eps"
    assert metadata["training"]["data"]["config"]["path"] == str(folder / "images")

    config.write_text(toml.format(steps=3).replace("log_every", "log_evry"))
    assert main(["train-prior", str(config), "--out", str(tmp_path / "other"), "--no-progress"]) == 2
    assert "unknown key 'log_evry' in [train]" in capsys.readouterr().err
    assert main(["train-prior", str(tmp_path / "missing.toml"), "--no-progress"]) == 2
    assert "no TOML file at" in capsys.readouterr().err


CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def brain_stand_in(path: Path) -> Path:
    """A NIfTI T1 stand-in for the Colin27 template (mri-brain's data, absent on a machine
    without the Debian package mricron-data): 48³ voxels, a textured ellipsoid "brain"
    around 100 (the recipe's window is 0–120, its foreground threshold 20) with a bright
    tail above the window, on a dark background."""
    import nibabel

    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, 48)] * 3, indexing="ij"))
    inside = (grid[0] / 0.8) ** 2 + (grid[1] / 0.9) ** 2 + (grid[2] / 0.7) ** 2 < 1
    texture = 20 * np.sin(6 * grid[0]) * np.cos(5 * grid[2]) + np.random.default_rng(0).normal(0, 3, inside.shape)
    volume = np.where(inside, 100 + texture, 2.0)
    volume[24, 24, 24] = 400.0  # above the window: clipped
    nibabel.save(nibabel.Nifti1Image(volume.astype(np.float32), np.diag([2.0, 2.0, 2.0, 1.0])), path)
    return path


@pytest.mark.parametrize("name", ["ct-ellipses", "ct-ellipses-large", "ct-synthetic", "ct-synthetic-large", "mri-brain", "us-tissue",
                                  "us-haze", "us-tissue-bmode", "us-haze-bmode", "galaxy-cond"])
def test_example_configs_train(tmp_path, name):
    """The example configs validate and run (one small step).  The MRI recipe runs as written
    on a stand-in volume (the Colin27 template it names is a Debian package CI need not have)."""
    config = tomllib.loads((CONFIGS / f"{name}.toml").read_text())
    config["train"].update(steps=1, batch_size=2, sample_every=0, gaussian_images=8)  # a fit of 8 images, not 2048
    if name == "galaxy-cond":
        assert config["data"]["length"] == 6000 and config["data"]["cache"]
        config["data"]["length"] = 8  # the recipe renders 6000 stamps (~5 min) before its first step
    if name == "mri-brain":
        assert config["data"]["path"] == "/usr/share/mricron/templates/ch2better.nii.gz"
        config["data"]["path"] = str(brain_stand_in(tmp_path / "ch2better.nii.gz"))
        slices = training_dataset(config["data"])
        assert 8 <= len(slices) <= 24  # every second of 48 coronal slices, those with 5 % brain
        images = torch.stack([torch.as_tensor(slices[i]) for i in range(len(slices))])
        assert images.shape[1:] == (1, 64, 64)
        assert float(images.min()) >= 0.0 and float(images.max()) == pytest.approx(120.0)  # the tail is clipped
        # with zoom the brains shrink onto the window's low end: more empty field of view around them
        zoomed = training_dataset({**config["data"], "zoom": [0.45, 1.0]})
        shrunk = torch.stack([zoomed[i] for i in range(len(zoomed))])
        assert float(shrunk.min()) >= 0.0 and float(shrunk.max()) <= 120.0
        background = (shrunk == 0).flatten(1).float().mean(1) - (images == 0).flatten(1).float().mean(1)
        assert float(background.mean()) > 0.1
    result = train(config, out=tmp_path / "out", progress=False)
    assert result.prior.image_shape == (1, 64, 64) and result.prior.prediction == "v"
    assert result.prior.gaussian_fit.rank == 7  # rank 64 clipped to 8 images - 1
    units = {"mri-brain": "a.u.", "us-tissue": "companded RF", "us-haze": "companded RF",
             "us-tissue-bmode": "B-mode grey level", "us-haze-bmode": "B-mode grey level", "galaxy-cond": "peak flux"}
    assert result.prior.normalization.unit == units.get(name, "1/mm")
    parameters = sum(p.numel() for p in result.prior.parameters())
    expected = {"ct-synthetic-large": (4.3e6, 4.6e6), "ct-ellipses-large": (2.4e6, 2.6e6)}.get(name, (1.0e6, 1.2e6))
    assert expected[0] < parameters < expected[1]


def test_the_checkpoint_records_the_output_folder_as_given(tmp_path, monkeypatch):
    """No absolute path of the training machine in the metadata: the folder stays relative."""
    monkeypatch.chdir(tmp_path)
    config = tiny_config("runs/relative", steps=1)
    train(config, progress=False)
    training = read_metadata(tmp_path / "runs" / "relative" / "prior.pt")["training"]
    assert training["config"]["output"]["dir"] == "runs/relative"
    assert str(tmp_path) not in json.dumps(training)
