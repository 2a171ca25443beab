import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from invsolve.cli import main
from invsolve.files import atomic_write, save_json


def test_inpainting_demo_writes_png_and_metrics(tmp_path, capsys):
    arguments = ["demo", "inpainting", "--out", str(tmp_path), "--size", "16", "--dps-samples", "4", "--no-progress"]
    assert main(arguments) == 0
    for name in ("inpainting.png", "inpainting_std.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((tmp_path / "inpainting_metrics.json").read_text())
    assert set(metrics) >= {"red_diff", "dps_mean", "exact_posterior_mean", "zero_filled"}
    # the exact posterior mean beats zero filling on the real CT slice
    assert metrics["exact_posterior_mean"]["psnr_db"] > metrics["zero_filled"]["psnr_db"] + 3
    assert json.loads(capsys.readouterr().out) == metrics
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_the_ct_demo_starts_from_the_tv_image_its_preset_was_tuned_from():
    from invsolve import demo
    from invsolve.presets import PRESETS

    starting = [(label, sampler) for label, methods in demo._PRESETS.items() for sampler in methods
                if demo._starts_from_tv(label, sampler)]
    assert starting == [("ct_small", "dds")] and demo._PRESETS["ct_small"]["dds"] == "ct-sparse-from-tv"
    # the demo hands its own TV image to that preset: the same weight, or the run would not be the validated one
    assert PRESETS["ct-sparse-from-tv"].start_tv_weight == demo._TV_WEIGHT


def test_ct_demo_is_the_default(tmp_path, capsys):
    # 25 DDS steps per sample keep the test short (13 s; the preset's default is 100); measured gains over FBP:
    # 4.8 dB on the phantom, 1.7 dB on CT_small
    assert main(["demo", "--out", str(tmp_path), "--views", "12", "--steps", "25", "--no-progress"]) == 0
    for name in ("ct.png", "ct_std.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((tmp_path / "ct_metrics.json").read_text())
    assert json.loads(capsys.readouterr().out) == metrics
    assert metrics["prior"] == {"held_out_phantom": "ct-ellipses", "ct_small": "ct-synthetic"}
    assert metrics["scan"]["views"] == 12
    phantom_settings, ct_small_settings = (metrics["hyperparameters"][label] for label in ("held_out_phantom", "ct_small"))
    settings = phantom_settings["dds"]
    assert settings["preset"] == "ct-sparse" and settings["steps"] == 25 and settings["start_time"] is None
    assert settings["n_samples"] == 4 and settings["cg_iterations"] == 10  # the rest from the preset
    # on the real slice DDS starts from the TV image, as its preset was tuned
    warm = ct_small_settings["dds"]
    assert warm["preset"] == "ct-sparse-from-tv" and warm["steps"] == 25 and warm["start_time"] == 0.05
    assert warm["n_samples"] == 8 and warm["cg_iterations"] == 2 and warm["eta"] == 1.0
    for point in (phantom_settings["dpir"], ct_small_settings["dpir"]):
        assert point["steps"] == 25 and point["n_samples"] == 1 and point["regularization"] == 0.03
    phantom, ct_small = metrics["scores"]["held_out_phantom"], metrics["scores"]["ct_small"]
    assert set(phantom) == set(ct_small) == {"fbp", "tv", "dds", "dpir"}
    assert phantom["dpir"]["psnr_db"] > phantom["fbp"]["psnr_db"] + 3
    # 12 views streak FBP; both regularised reconstructions remove most of it on the phantom
    assert phantom["tv"]["psnr_db"] > phantom["fbp"]["psnr_db"] + 3
    assert phantom["dds"]["psnr_db"] > phantom["fbp"]["psnr_db"] + 3
    assert phantom["dds"]["ssim"] > phantom["fbp"]["ssim"]
    assert ct_small["dds"]["psnr_db"] > ct_small["fbp"]["psnr_db"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--size", "200"], "--size applies to the inpainting demo, not to ct"),
        (["inpainting", "--views", "8"], "--views applies to the ct demo, not to inpainting"),
        (["inpainting", "--size", "200"], "size must be between 8 and 64 pixels, got 200"),
        (["--views", "1"], "views must be an int >= 2, got 1"),
        (["--views", "400"], "views must be between 2 and 180, got 400"),
        (["--steps", "0"], "steps must be an int >= 1 or None, got 0"),
    ],
)
def test_demo_rejects_bad_options(tmp_path, capsys, arguments, message):
    assert main(["demo", *arguments, "--out", str(tmp_path), "--no-progress"]) == 2
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_console_script_is_installed(tmp_path):
    script = Path(sys.executable).parent / "invsolve"
    # outside the checkout, so the installed package is what runs
    completed = subprocess.run([str(script), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert completed.returncode == 0 and "demo" in completed.stdout


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    save_json(target, {"a": 1})

    def failing(path):
        path.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, failing)
    assert json.loads(target.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["out.json"]


def test_written_files_get_ordinary_permissions(tmp_path):
    path = save_json(tmp_path / "m.json", {})
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_save_png_takes_one_window_per_image(tmp_path):
    from invsolve.files import save_png

    images = [torch.zeros(4, 4), torch.ones(1, 4, 4)]
    save_png(tmp_path / "a.png", images, ["a", "b"], value_range=[(0.0, 1.0), None])
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="need one value range, or one per image; got 3 ranges for 2 images"):
        save_png(tmp_path / "b.png", images, ["a", "b"], value_range=[(0.0, 1.0)] * 3)
    assert not (tmp_path / "b.png").exists()


def test_ct_demo_phantoms_are_never_training_images():
    from invsolve.demo import held_out_phantoms

    with pytest.raises(ValueError, match="seeds below 20000 are ct-ellipses' training phantoms; got seed=19999"):
        held_out_phantoms(1, 19_999)
    phantoms = held_out_phantoms(2, 20_000)
    assert phantoms.shape == (2, 1, 64, 64) and 0 <= phantoms.min() and phantoms.max() < 0.045  # 1/mm, below 1.15·2μ_water


def test_the_cone_beam_scan_has_isotropic_voxels_of_the_demo_field_and_its_noise_seed():
    from invsolve.datasets import CT_SMALL_PIXEL_MM
    from invsolve.demo import cone_beam_demo_scan, held_out_phantoms
    from invsolve.operators import PoissonNoise

    truth, operator, y, noise_std = cone_beam_demo_scan(4, 3, 3_000_000, side=16)
    assert truth.shape == (1, 1, 16, 16, 4) and y.shape == (1, 1, *operator.out_shape[1:])
    # the slab of the reference cube that 4 voxels of 2/16 cover, the phantom of that seed
    torch.testing.assert_close(truth, held_out_phantoms(1, 3_000_000, (16, 16, 4), (2.0, 2.0, 0.5)))
    geometry = operator.geometry
    assert len(geometry.angles) == 3 and float(geometry.angles[-1]) < 2 * math.pi
    voxel = 128 * CT_SMALL_PIXEL_MM / 16
    assert geometry.extent == pytest.approx((16 * voxel, 16 * voxel, 4 * voxel))
    assert tuple(geometry.voxel_size) == pytest.approx((voxel,) * 3)
    assert geometry.src_radius == pytest.approx(2 * 128 * CT_SMALL_PIXEL_MM)
    torch.testing.assert_close(y, PoissonNoise(1e5)(operator(truth), seed=3_000_001))
    assert noise_std == pytest.approx(float(PoissonNoise(1e5).variance(y).mean().sqrt()))


def test_the_parallel_scan_of_a_volume_is_the_scan_of_each_slice():
    from invsolve.demo import ct_demo_noise_std, ct_demo_scan, held_out_phantoms
    from invsolve.operators import PoissonNoise, SliceStack

    volume = held_out_phantoms(1, 3_000_000, (3, 16, 16))
    operator, y = ct_demo_scan(volume, 5, seed=7)
    assert isinstance(operator, SliceStack) and y.shape == (1, 1, 3, 5, operator.out_shape[-1])
    slice_operator, _ = ct_demo_scan(volume[:, :, 0], 5, seed=7)
    torch.testing.assert_close(operator(volume)[:, :, 1], slice_operator(volume[:, :, 1]))
    torch.testing.assert_close(y, PoissonNoise(1e5)(operator(volume), seed=7))
    assert ct_demo_noise_std(y) == pytest.approx(float(PoissonNoise(1e5).variance(y).mean().sqrt()))
    with pytest.raises(ValueError, match=r"truth must be slices \(B, 1, H, W\) or volumes \(B, 1, D, H, W\), got shape \(16, 16\)"):
        ct_demo_scan(volume[0, 0, 0], 5, seed=7)


def test_fit_gaussian_adds_the_fit_to_a_checkpoint(tmp_path, capsys):
    from invsolve.priors import Normalization, UNetPrior, load_prior, read_metadata, save_prior

    config = tmp_path / "recipe.toml"
    config.write_text(
        "[data]\n"
        'source = "phantoms"\n'
        "length = 10\n"
        "size = [16, 16]\n"
        "[prior]\n"
        'normalization = { low = 0.0, high = 1.15, unit = "a.u." }\n'
        'physical_unit = { factor = 2.0, unit = "mm" }\n'
        "[train]\n"
        "steps = 1\n"
    )
    network = {"channels": (8, 16), "attention_levels": (False, False), "num_head_channels": 8}
    normalization = Normalization.from_range(0.0, 1.15, "a.u.").in_units(2.0, "mm")
    path = save_prior(tmp_path / "prior.pt", UNetPrior((1, 16, 16), normalization=normalization, **network), half=True)
    arguments = ["fit-gaussian", str(config), str(path), "--rank", "4", "--images", "8", "--no-progress"]
    assert main(arguments) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["prior"] == str(path) and summary["rank"] == 4 and 0 < summary["explained_variance"] < 1
    prior = load_prior(path)
    assert prior.gaussian_fit.rank == 4 and prior.normalization == normalization
    metadata = read_metadata(path)
    assert metadata["weights_dtype"] == "float16" and metadata["training"]["gaussian_fit"]["images"] == 8
    assert main(["fit-gaussian", str(config), str(path), "--no-progress"]) == 0  # defaults: 64 clipped to 10 - 1
    assert json.loads(capsys.readouterr().out)["rank"] == 9

    assert main(["fit-gaussian", str(config), str(path), "--rank", "20", "--no-progress"]) == 2
    assert "invsolve fit-gaussian: error: rank must be at most min(N - 1, n) = min(9, 256)" in capsys.readouterr().err
    assert main(["fit-gaussian", str(config), str(tmp_path / "missing.pt"), "--no-progress"]) == 2
    assert "no prior checkpoint at" in capsys.readouterr().err


def _fail_if_called(*args, **kwargs):
    raise AssertionError("the command started computing before checking where it writes")


@pytest.mark.parametrize("problem", ["ct", "inpainting"])
@pytest.mark.parametrize("where", ["/proc/forbidden", "/proc", "below a file"])
def test_demo_checks_its_output_folder_before_computing(tmp_path, capsys, monkeypatch, problem, where):
    import invsolve.demo

    if where.startswith("/proc") and not os.path.isdir("/proc/self"):
        pytest.skip("needs Linux's /proc")
    out = str(tmp_path / "a-file" / "demo") if where == "below a file" else where
    (tmp_path / "a-file").write_text("in the way")
    monkeypatch.setitem(invsolve.demo.DEMOS, problem, _fail_if_called)
    assert main(["demo", problem, "--out", out, "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("invsolve demo: error: --out must be a folder") and repr(out) in error
    assert ".tmp" not in error and "probe" not in error  # the user's path, never a temporary file
    assert sorted(os.listdir(tmp_path)) == ["a-file"]


def test_demo_functions_check_their_output_folder_first(tmp_path, monkeypatch):
    import invsolve.demo

    (tmp_path / "a-file").write_text("in the way")
    monkeypatch.setattr(invsolve.demo, "pretrained", _fail_if_called)
    monkeypatch.setattr(invsolve.demo, "ct_small_slice", _fail_if_called)
    for run in (invsolve.demo.run_ct_demo, invsolve.demo.run_inpainting_demo):
        with pytest.raises(ValueError, match="out_dir must be a folder .*a-file is a file, not a folder"):
            run(tmp_path / "a-file" / "demo", progress=False)


def test_reconstruct_checks_every_output_file_before_reading_anything(tmp_path, capsys, monkeypatch):
    import invsolve.command_reconstruct

    monkeypatch.setattr(invsolve.command_reconstruct, "load_prior_option", _fail_if_called)
    monkeypatch.setattr(invsolve.command_reconstruct, "read_array", _fail_if_called)
    (tmp_path / "r_std.npy").mkdir()  # where the std map would go
    (tmp_path / "a-file").write_text("in the way")
    base = ["reconstruct", "--operator", "ct-parallel", "--views", "8", "--input", "missing.npy", "--noise-std", "0.1"]
    cases = {
        str(tmp_path / "r.npy"): f"--out (its std file) must be a file to write, got '{tmp_path / 'r_std.npy'}', which is a folder",
        str(tmp_path / "a-file" / "r.npy"): f"{tmp_path / 'a-file'} is a file, not a folder",
    }
    if os.path.isdir("/proc/self"):
        cases["/proc/r.npy"] = "got '/proc/r.npy': cannot create files in /proc"
    for out, message in cases.items():
        assert main([*base, "--out", out]) == 2
        error = capsys.readouterr().err
        assert error.startswith("invsolve reconstruct: error: ") and message in error, error
        assert ".tmp" not in error


def test_reference_scores_have_a_data_range_or_are_refused_before_computing():
    from invsolve.command_reconstruct import _reference_range

    ramp = torch.arange(16.0).reshape(4, 4) - 3
    assert _reference_range(ramp, "ref.npy", "ct-parallel") == 15.0  # max − min, the metrics' default
    assert _reference_range(torch.full((4, 4), -0.5), "ref.npy", "ct-parallel") == 0.5  # constant: its magnitude
    cases = [
        (torch.zeros(4, 4), "ct-parallel", "--reference ref.npy is all zeros"),
        (torch.full((4, 4), math.nan), "ct-parallel", "--reference ref.npy must be finite, got 16 NaN"),
        (-torch.ones(4, 4), "mri", "--reference ref.npy must have a positive maximum"),
    ]
    for reference, operator, message in cases:
        with pytest.raises(ValueError, match=message):
            _reference_range(reference, "ref.npy", operator)
