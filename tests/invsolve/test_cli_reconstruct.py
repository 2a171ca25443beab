"""``invsolve reconstruct`` (issue 10, point 5): the command line for a user's own data.

Round trips write a measurement file, run the command in-process through
``invsolve.cli.main`` with tiny 16×16 priors saved to disk, and read the outputs
back; every bad input exits 2 with one line on stderr and writes nothing.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import invsolve
from invsolve.cli import main
from invsolve.operators import GaussianNoise
from invsolve.operators.ct import ParallelBeam2D, RayTransform, sparse_view_angles
from invsolve.operators.mri import fft_centered, random_mask
from invsolve.priors import GaussianPrior, Normalization, UNetPrior, save_prior

TINY_UNET = {"channels": (16, 32), "attention_levels": (False, True), "num_head_channels": 16, "inference_dtype": "float32"}
PIXEL_MM = 2.0
VIEWS = 8
MRI_NOISE = 2e-3

HEADER_XML = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding>
<encodedSpace><matrixSize><x>32</x><y>32</y><z>1</z></matrixSize>
<fieldOfView_mm><x>64.0</x><y>64.0</y><z>5.0</z></fieldOfView_mm></encodedSpace>
<reconSpace><matrixSize><x>32</x><y>32</y><z>1</z></matrixSize></reconSpace>
<encodingLimits><kspace_encoding_step_1><minimum>0</minimum><maximum>31</maximum><center>16</center>
</kspace_encoding_step_1></encodingLimits></encoding></ismrmrdHeader>
"""


def _disc(size: int, value: float) -> torch.Tensor:
    axis = torch.linspace(-1, 1, size, dtype=torch.float64)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return value * ((xx**2 + (yy / 0.8) ** 2) < 0.6).double() + 0.3 * value * ((xx - 0.2) ** 2 + yy**2 < 0.05).double()


@pytest.fixture(scope="module")
def ct_files(tmp_path_factory):
    """A tiny U-Net prior in 1/mm, a 16×16 phantom and its 8-view sinogram at 2 mm pixels."""
    folder = tmp_path_factory.mktemp("ct")
    prior = UNetPrior((1, 16, 16), prediction="v", normalization=Normalization.from_range(0.0, 0.04, "1/mm"), **TINY_UNET)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in prior.parameters():
            if not parameter.any():
                parameter.copy_(0.05 * torch.randn(parameter.shape, generator=generator))
    save_prior(folder / "ct16.pt", prior)
    truth = _disc(16, 0.02)
    operator = RayTransform(ParallelBeam2D((16, 16), sparse_view_angles(VIEWS), extent=16 * PIXEL_MM))
    sinogram = GaussianNoise(0.01)(operator(truth[None, None]), seed=0)[0, 0]
    np.save(folder / "sino.npy", sinogram.numpy())
    np.save(folder / "truth.npy", truth.numpy())
    return folder


def _coil_kspace(size: int, coils: int = 4) -> torch.Tensor:
    """Noisy k-space ``(coils, size, size)`` of a smooth blob with a smooth phase seen by ``coils`` smooth coils.

    The blob is smooth so that the k-space corners hold noise only, as the noise estimate assumes.
    """
    axis = torch.linspace(-1, 1, size, dtype=torch.float64)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    image = torch.exp(-(xx**2 + (yy / 0.8) ** 2) / 0.2) * torch.exp(1j * (0.4 * xx - 0.3 * yy))
    maps = torch.stack(
        [torch.exp(-((xx - 1.2 * math.cos(a)) ** 2 + (yy - 1.2 * math.sin(a)) ** 2) / 1.5) * torch.exp(1j * a * (1 + 0.3 * xx))
         for a in (2 * math.pi * c / coils for c in range(coils))]
    )
    maps = maps / maps.abs().pow(2).sum(0).sqrt().amax()
    return GaussianNoise(MRI_NOISE)(fft_centered(maps * image), seed=1)


@pytest.fixture(scope="module")
def mri_files(tmp_path_factory):
    """A fastMRI-layout file (2 slices, 4 coils, 32×32, 2× mask) and 16×16 Gaussian priors, magnitude and complex."""
    folder = tmp_path_factory.mktemp("mri")
    kspace = _coil_kspace(32)
    mask = random_mask(32, 0.25, 2, seed=0)
    with h5py.File(folder / "scan.h5", "w") as file:
        file.create_dataset("kspace", data=torch.stack([kspace, kspace]).mul(mask).to(torch.complex64).numpy())
        file.create_dataset("mask", data=mask.numpy())
        file.create_dataset("ismrmrd_header", data=HEADER_XML)
    small = _coil_kspace(16) * random_mask(16, 0.25, 2, seed=0)
    np.save(folder / "small.npy", small.to(torch.complex64).numpy())  # no mask: the non-zero columns are the mask
    magnitude = GaussianPrior.squared_exponential(
        (1, 16, 16), length_scale=2.0, std=0.4, mean=0.4, normalization=Normalization.from_range(0.0, 1.0, "a.u.")
    )
    channels = GaussianPrior.squared_exponential(
        (2, 16, 16), length_scale=2.0, std=0.5, normalization=Normalization.from_range(-1.0, 1.0, "a.u.")
    )
    save_prior(folder / "magnitude16.pt", magnitude)
    save_prior(folder / "complex16.pt", channels)
    np.save(folder / "ref16.npy", np.zeros((16, 16)) + 0.5)
    return folder


def _run(arguments, capsys):
    code = main(["reconstruct", *map(str, arguments), "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ct_round_trip_writes_nifti_with_spacing_png_and_metrics(ct_files, tmp_path, capsys):
    out = tmp_path / "out" / "recon.nii.gz"
    code, stdout, stderr = _run(
        ["--operator", "ct-parallel", "--views", VIEWS, "--prior", ct_files / "ct16.pt", "--input", ct_files / "sino.npy",
         "--out", out, "--pixel-mm", PIXEL_MM, "--noise-std", 0.01, "--steps", 5, "--reference", ct_files / "truth.npy"],
        capsys,
    )
    assert code == 0, stderr
    import nibabel

    image = nibabel.load(out)
    assert image.shape == (16, 16)
    assert np.allclose(np.diag(image.affine), [PIXEL_MM, PIXEL_MM, 1, 1])
    assert image.header.get_xyzt_units()[0] == "mm"
    assert (tmp_path / "out" / "recon.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((tmp_path / "out" / "recon_metrics.json").read_text())
    assert {"psnr_db", "ssim", "nmse"} <= set(metrics) and metrics["units"] == "1/mm"
    summary = json.loads(stdout)
    assert summary["detector_pixels"] == 23 and summary["steps"] == 5 and summary["metrics"] == {
        key: metrics[key] for key in ("psnr_db", "ssim", "nmse")
    }
    assert sorted(os.listdir(tmp_path / "out")) == ["recon.nii.gz", "recon.png", "recon_metrics.json"]


def test_a_volume_of_sinograms_with_a_slice_augmented_sampler(ct_files, tmp_path, capsys):
    """(slices, views, detector) input with --sampler dds-3d: a NIfTI volume with its voxel spacing, std and metrics."""
    sinogram = np.load(ct_files / "sino.npy")
    volume, truth = np.stack([sinogram] * 3), np.stack([np.load(ct_files / "truth.npy")] * 3)
    np.save(tmp_path / "sino3d.npy", volume)
    np.save(tmp_path / "truth3d.npy", truth)
    out = tmp_path / "out" / "volume.nii.gz"
    code, stdout, stderr = _run(
        ["--operator", "ct-parallel", "--views", VIEWS, "--prior", ct_files / "ct16.pt", "--input", tmp_path / "sino3d.npy",
         "--out", out, "--pixel-mm", PIXEL_MM, "--noise-std", 0.01, "--steps", 4, "--sampler", "dds-3d", "--samples", 2,
         "--reference", tmp_path / "truth3d.npy"],
        capsys,
    )
    assert code == 0, stderr
    import nibabel

    for name in ("volume.nii.gz", "volume_std.nii.gz"):
        image = nibabel.load(tmp_path / "out" / name)
        assert image.shape == (3, 16, 16)
        assert np.allclose(np.diag(image.affine), [PIXEL_MM, PIXEL_MM, PIXEL_MM, 1])
    assert "psnr_db" in json.loads(stdout)["metrics"]
    titles = [panel["title"] for panel in _preview_panels(tmp_path / "out" / "volume.png")]
    assert all("slice 1 of 3" in title for title in titles)
    # a warm start from the TV image of the measurement
    code, stdout, stderr = _run(
        ["--operator", "ct-parallel", "--views", VIEWS, "--prior", ct_files / "ct16.pt", "--input", tmp_path / "sino3d.npy",
         "--out", tmp_path / "warm" / "volume.npy", "--pixel-mm", PIXEL_MM, "--noise-std", 0.01, "--steps", 4,
         "--sampler", "dds-3d", "--start-time", 0.2, "--start-tv", 0.01],
        capsys,
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["start_time"] == 0.2 and summary["start_tv"] == 0.01
    assert np.load(tmp_path / "warm" / "volume.npy").shape == (3, 16, 16)
    # a 2D sinogram, or --slice, is refused for a volume sampler before any work
    code, _, stderr = _run(
        ["--operator", "ct-parallel", "--views", VIEWS, "--prior", ct_files / "ct16.pt", "--input", ct_files / "sino.npy",
         "--out", tmp_path / "flat.nii.gz", "--noise-std", 0.01, "--sampler", "dds-3d"],
        capsys,
    )
    assert code == 2 and "needs the sinograms of a volume, (slices, views, detector)" in stderr


def _kspace_volume(coils: int = 2, slices: int = 6, size: int = 16) -> torch.Tensor:
    """Noisy 3D Cartesian k-space ``(coils, slices, size, size)`` of a smooth real blob seen by smooth coils."""
    axis = torch.linspace(-1, 1, size, dtype=torch.float64)
    depth = torch.linspace(-1, 1, slices, dtype=torch.float64)
    zz, yy, xx = torch.meshgrid(depth, axis, axis, indexing="ij")
    image = torch.exp(-(xx**2 + (yy / 0.8) ** 2 + zz**2) / 0.3)
    maps = torch.stack([torch.exp(-((xx - 1.2 * s) ** 2 + yy**2) / 2.0) * torch.exp(1j * 0.3 * s * yy) for s in (1, -1)][:coils])
    maps = maps / maps.abs().pow(2).sum(0).sqrt().amax()
    return GaussianNoise(MRI_NOISE)(fft_centered(maps * image, 3), seed=2).to(torch.complex64)


def test_mri_k_space_of_a_3d_acquisition_with_a_slice_augmented_sampler(mri_files, tmp_path, capsys):
    """(coils, D, H, W) k-space, a Poisson-disc plane drawn by --mask poisson:R:C, --sampler dds-3d: a volume with a std."""
    np.save(tmp_path / "kspace3d.npy", _kspace_volume().numpy())
    out = tmp_path / "out" / "volume.h5"
    code, stdout, stderr = _run(
        ["--operator", "mri", "--prior", mri_files / "magnitude16.pt", "--input", tmp_path / "kspace3d.npy",
         "--mask", "poisson:2:0.25", "--out", out, "--steps", 4, "--sampler", "dds-3d", "--samples", 2],
        capsys,
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["coils"] == 2 and summary["kspace"] == [6, 16, 16]
    assert summary["mask"].startswith("Poisson disc on the phase-encode plane, 2x")
    assert summary["coil_maps"] == "low-resolution (calibration box, 3D)"
    assert summary["acceleration"] > 1.5
    with h5py.File(out) as mean, h5py.File(tmp_path / "out" / "volume_std.h5") as std:
        assert mean["reconstruction"].shape == std["std"].shape == (6, 16, 16)
        assert float(np.asarray(std["std"]).max()) > 0
    # the slices must be the prior's size along the sampler's axis, checked before any work
    np.save(tmp_path / "wide.npy", _kspace_volume(slices=16, size=16)[:, :, :, :12].numpy())
    code, _, stderr = _run(
        ["--operator", "mri", "--prior", mri_files / "magnitude16.pt", "--input", tmp_path / "wide.npy",
         "--mask", "poisson:2:0.25", "--out", tmp_path / "w.h5", "--sampler", "dds-3d", "--set", "axis=1"],
        capsys,
    )
    assert code == 2 and "has slices of 16×12 along axis 1, but prior" in stderr
    # 2D multi-slice fastMRI k-space is not a 3D acquisition
    code, _, stderr = _run(
        ["--operator", "mri", "--prior", mri_files / "magnitude16.pt", "--input", mri_files / "scan.h5",
         "--out", tmp_path / "f.h5", "--sampler", "dds-3d"],
        capsys,
    )
    assert code == 2 and "is a fastMRI file: 2D multi-slice k-space" in stderr
    volume = ["--operator", "mri", "--prior", mri_files / "magnitude16.pt", "--input", tmp_path / "kspace3d.npy",
              "--out", tmp_path / "v.h5", "--sampler", "dds-3d"]
    refusals = {
        "--mask random:2:0.25 does not fit 3D k-space: use poisson:R:C": ["--mask", "random:2:0.25"],
        "--slice picks one slice for a 2D sampler": ["--slice", "1"],
        "--resize crops 2D k-space": ["--resize"],
    }
    for message, extra in refusals.items():
        code, _, stderr = _run(volume + extra, capsys)
        assert code == 2 and message in stderr, stderr
    code, _, stderr = _run(
        ["--operator", "mri", "--prior", mri_files / "magnitude16.pt", "--input", mri_files / "small.npy",
         "--out", tmp_path / "p.h5", "--mask", "poisson:2:0.25"],
        capsys,
    )
    assert code == 2 and "does not fit 2D k-space: use random:R:C or equispaced:R:C" in stderr
    assert not list(tmp_path.glob("[wfvp].*"))


def test_the_noise_of_3d_k_space_is_estimated_from_its_corners():
    from invsolve.mri_prior import estimate_kspace_noise
    from invsolve.operators.mri import poisson_disc_mask

    kspace = _kspace_volume(slices=16, size=32)
    plane = poisson_disc_mask((32, 32), 2, center_fraction=0.2, seed=0, crop_corners=False)
    assert estimate_kspace_noise(kspace * plane, plane) == pytest.approx(MRI_NOISE, rel=0.15)
    # a mask that samples no corner falls back to the outer read-out planes
    centre = torch.zeros(32, 32, dtype=torch.bool)
    centre[8:24, 8:24] = True
    assert estimate_kspace_noise(kspace * centre, centre) > 0


def _preview_panels(path):
    from PIL import Image

    return json.loads(Image.open(path).text["Description"])["panels"]


def test_ct_samples_write_the_std_beside_the_mean_in_hounsfield_units(ct_files, tmp_path, capsys):
    out = tmp_path / "recon.h5"
    code, stdout, stderr = _run(
        ["--operator", "ct-parallel", "--views", VIEWS, "--prior", ct_files / "ct16.pt", "--input", ct_files / "sino.npy",
         "--out", out, "--pixel-mm", PIXEL_MM, "--incident-flux", 1e4, "--steps", 4, "--samples", 2, "--hu",
         "--set", "eta=0.5"],
        capsys,
    )
    assert code == 0, stderr
    assert sorted(os.listdir(tmp_path)) == ["recon.h5", "recon.png", "recon_std.h5"]
    with h5py.File(out) as file:
        mean = file["reconstruction"]
        assert mean.shape == (16, 16)
        assert (mean.attrs["sampler"], mean.attrs["prior"], mean.attrs["units"]) == ("dds", str(ct_files / "ct16.pt"), "HU")
        assert np.allclose(mean.attrs["spacing_mm"], [PIXEL_MM, PIXEL_MM])
    with h5py.File(tmp_path / "recon_std.h5") as file:
        std = file["std"][()]
        assert std.shape == (16, 16) and (std >= 0).all() and std.max() > 0
    summary = json.loads(stdout)
    sinogram = np.load(ct_files / "sino.npy")
    assert summary["noise_std"] == pytest.approx(math.sqrt(np.mean(np.exp(sinogram.astype(np.float64)) / 1e4)), rel=1e-5)
    assert summary["hyperparameters"] == {"eta": 0.5}


@pytest.mark.parametrize("prior_file, data, extra", [
    ("magnitude16.pt", "scan.h5", ["--slice", "1", "--resize"]),
    ("complex16.pt", "small.npy", []),
    ("magnitude16.pt", "scan.h5", ["--slice", "1", "--resize", "--sampler", "dds", "--preset", "mri-cartesian"]),
])
def test_mri_round_trip_with_a_magnitude_and_a_complex_prior(mri_files, tmp_path, capsys, prior_file, data, extra):
    out = tmp_path / "recon.npy"
    code, stdout, stderr = _run(
        ["--operator", "mri", "--prior", mri_files / prior_file, "--input", mri_files / data, "--out", out, "--steps", 4,
         "--samples", 2, "--reference", mri_files / "ref16.npy", *extra],
        capsys,
    )
    assert code == 0, stderr
    assert sorted(os.listdir(tmp_path)) == ["recon.npy", "recon.png", "recon_metrics.json", "recon_std.npy"]
    mean, std = np.load(out), np.load(tmp_path / "recon_std.npy")
    assert mean.shape == std.shape == (16, 16) and np.isfinite(mean).all() and (mean >= 0).all()
    metrics = json.loads((tmp_path / "recon_metrics.json").read_text())
    assert {"psnr_db", "ssim", "fastmri_nmse", "fastmri_psnr_db", "fastmri_ssim"} <= set(metrics)
    summary = json.loads(stdout)
    assert summary["coil_maps"].startswith("espirit")
    # the corners of k-space hold mostly noise: the estimate is near the simulated level (at 16×16 the corners
    # hold only 64 sampled values, so only within a factor of 2)
    if data == "scan.h5":
        assert summary["noise_std"] == pytest.approx(MRI_NOISE, rel=0.3)
        # 64 mm over 32 pixels in the header; cropped to 16 pixels of k-space: 4 mm pixels
        assert summary["slice"] == 1 and summary["resized"] and summary["spacing_mm"] == [4.0, 4.0]
        assert summary["mask"] == "the file's mask"
    else:
        assert MRI_NOISE / 2 < summary["noise_std"] < MRI_NOISE * 2
        assert summary["mask"] == "the non-zero k-space columns" and summary["spacing_mm"] is None


def _bad(arguments, ct_files, mri_files, tmp_path):
    """Replace placeholders: CT/MRI files, and the (empty) output folder."""
    names = {"CT": ct_files, "MRI": mri_files, "OUT": tmp_path / "out"}
    return [str(names[a.split("/", 1)[0]] / a.split("/", 1)[1]) if a.split("/", 1)[0] in names else a for a in arguments]


CT_BASE = ["--operator", "ct-parallel", "--views", str(VIEWS), "--prior", "CT/ct16.pt", "--noise-std", "0.01"]
MRI_BASE = ["--operator", "mri", "--prior", "MRI/magnitude16.pt"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (CT_BASE + ["--input", "CT/short.npy", "--out", "OUT/r.npy"],
         "holds a sinogram of shape (8, 22), but --operator ct-parallel needs (views, detector) = (8, 23)"),
        (MRI_BASE + ["--input", "MRI/scan.h5", "--slice", "0", "--out", "OUT/r.npy"],
         "the k-space is 32×32 but prior"),
        (MRI_BASE + ["--input", "MRI/scan.h5", "--out", "OUT/r.npy", "--resize"],
         "holds 2 slices; choose one with --slice K (0 to 1)"),
        (["--operator", "ct-fan", "--input", "CT/sino.npy", "--out", "OUT/r.npy"],
         "unknown operator 'ct-fan'; available: ct-parallel, mri"),
        (["--operator", "ct-parallel", "--prior", "no-such-prior", "--views", "8", "--input", "CT/sino.npy",
          "--out", "OUT/r.npy"], "unknown pretrained prior 'no-such-prior'; available: ct-ellipses"),
        (CT_BASE + ["--input", "CT/sino.npy", "--out", "OUT/r.npy", "--sampler", "red-diff", "--samples", "2"],
         "red-diff is a point estimator: it has no posterior std, so --samples must be 1 (got 2)"),
        (CT_BASE + ["--input", "CT/corrupt.npy", "--out", "OUT/r.npy"], "not a NumPy .npy file"),
        (CT_BASE + ["--input", "CT/corrupt.h5", "--out", "OUT/r.npy"], "not a readable HDF5 file"),
        (CT_BASE + ["--input", "CT/sino.npy", "--out", "OUT/r.npy", "--reference", "MRI/ref32.npy"],
         "is an array of shape (32, 32), but the reconstruction is (16, 16)"),
        (CT_BASE + ["--input", "CT/sino.npy", "--out", "OUT/r.npy", "--resize"],
         "--resize applies to --operator mri, not to ct-parallel"),
        (CT_BASE + ["--input", "CT/sino.npy", "--out", "OUT/r.txt"], "unknown output type"),
        (["--operator", "ct-parallel", "--prior", "CT/ct16.pt", "--views", "8", "--input", "CT/sino.npy",
          "--out", "OUT/r.npy"], "needs the noise level"),
        (CT_BASE + ["--input", "CT/sino.npy", "--out", "OUT/r.npy", "--set", "nonsense=1"],
         "unknown hyperparameter(s) nonsense for sampler 'dds'"),
        (MRI_BASE + ["--input", "MRI/scan.h5", "--slice", "0", "--resize", "--out", "OUT/r.npy", "--preset", "ct-sparse"],
         "preset 'ct-sparse' is tuned for parallel-beam CT"),
        (CT_BASE + ["--input", "CT/sino.npy", "--out", "OUT/r.npy", "--preset", "ct-sparse", "--sampler", "daps"],
         "preset 'ct-sparse' has no validated settings for sampler 'daps'"),
        (CT_BASE + ["--input", "CT/sino.npy", "--out", "OUT/r.npy", "--start-tv", "0.01"],
         "--start-tv needs --start-time"),
        (CT_BASE + ["--input", "CT/sino.npy", "--out", "OUT/r.npy", "--start-tv", "-1", "--start-time", "0.2"],
         "--start-tv must be a finite number >= 0, got -1.0"),
        (CT_BASE + ["--input", "CT/sino.npy", "--out", "OUT/r.npy", "--start-tv", "0.01", "--start-time", "0.2",
                    "--sampler", "red-diff"], "sampler 'red-diff' does not start from pure noise and takes no start_time"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(ct_files, mri_files, tmp_path, capsys, arguments, message):
    np.save(ct_files / "short.npy", np.zeros((VIEWS, 22)))
    (ct_files / "corrupt.npy").write_bytes(b"this is not an array")
    (ct_files / "corrupt.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 40)
    np.save(mri_files / "ref32.npy", np.zeros((32, 32)))
    (tmp_path / "out").mkdir()
    code, _, stderr = _run(_bad(arguments, ct_files, mri_files, tmp_path), capsys)
    assert code == 2
    assert stderr.startswith("invsolve reconstruct: error: ") and stderr.count("\n") == 1, stderr
    assert message in stderr
    assert os.listdir(tmp_path / "out") == []


def test_a_failure_while_writing_leaves_no_output(ct_files, tmp_path, monkeypatch, capsys):
    import invsolve.files

    def failing(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(invsolve.files, "save_png", failing)
    arguments = CT_BASE + ["--input", "CT/sino.npy", "--out", "OUT/deeper/r.nii", "--steps", "2"]
    with pytest.raises(RuntimeError, match="disk full"):
        _run(_bad(arguments, ct_files, ct_files, tmp_path), capsys)
    assert not (tmp_path / "out").exists()  # the mean was staged, then removed with the folders made for it


@pytest.mark.parametrize("command", [[sys.executable, "-m", "invsolve"], [str(Path(sys.executable).parent / "invsolve")]])
def test_version_from_the_module_and_the_console_script(tmp_path, command):
    # outside the checkout, so the installed package is what runs
    completed = subprocess.run([*command, "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert completed.returncode == 0 and completed.stdout.strip() == f"invsolve {invsolve.__version__}"


def test_a_preset_sets_the_samples_and_steps(ct_files, tmp_path, capsys):
    out = tmp_path / "recon.npy"
    code, stdout, stderr = _run(
        CT_BASE[:4] + ["--prior", ct_files / "ct16.pt", "--noise-std", 0.01, "--input", ct_files / "sino.npy", "--out", out,
                       "--preset", "ct-sparse", "--steps", 4],
        capsys,
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["steps"] == 4 and (tmp_path / "recon_std.npy").exists()  # the preset's 4 samples give a std map
    # a preset tuned from the TV image starts from the TV image of its weight at its start time
    code, stdout, stderr = _run(
        CT_BASE[:4] + ["--prior", ct_files / "ct16.pt", "--noise-std", 0.01, "--input", ct_files / "sino.npy",
                       "--out", tmp_path / "warm.npy", "--preset", "ct-sparse-from-tv", "--steps", 2, "--samples", 1],
        capsys,
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["start_time"] == 0.05 and summary["start_tv"] == 0.01
    # explicit options win
    code, stdout, stderr = _run(
        CT_BASE[:4] + ["--prior", ct_files / "ct16.pt", "--noise-std", 0.01, "--input", ct_files / "sino.npy",
                       "--out", tmp_path / "warm2.npy", "--preset", "ct-sparse-from-tv", "--steps", 2, "--samples", 1,
                       "--start-tv", 0.02, "--start-time", 0.1],
        capsys,
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["start_time"] == 0.1 and summary["start_tv"] == 0.02


def test_an_interrupted_sampling_run_resumes_with_resume(ct_files, tmp_path, monkeypatch, capsys):
    import invsolve.files

    arguments = ["--operator", "ct-parallel", "--views", VIEWS, "--prior", ct_files / "ct16.pt", "--input",
                 ct_files / "sino.npy", "--pixel-mm", PIXEL_MM, "--noise-std", 0.01, "--steps", 3, "--samples", 3]
    code, _, stderr = _run(arguments + ["--out", tmp_path / "whole" / "r.npy"], capsys)
    assert code == 0, stderr
    uninterrupted = np.load(tmp_path / "whole" / "r.npy")

    out = tmp_path / "r.npy"
    with monkeypatch.context() as patched:  # the run is lost after its samples are drawn, while writing
        patched.setattr(invsolve.files, "save_png", lambda *args, **kwargs: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            _run(arguments + ["--out", out], capsys)
    assert sorted(os.listdir(tmp_path)) == [".r.samples.pt", "whole"]  # no output, the samples kept

    code, _, stderr = _run(arguments + ["--out", out], capsys)  # not resumed by accident, nor overwritten
    assert code == 2 and ".r.samples.pt holds the samples of an interrupted run" in stderr and "--resume" in stderr
    from invsolve.samplers import Sampler

    with monkeypatch.context() as patched:  # all three samples were kept: resuming draws none
        patched.setattr(Sampler, "run", lambda *args, **kwargs: pytest.fail("a kept sample was drawn again"))
        code, stdout, stderr = _run(arguments + ["--out", out, "--resume"], capsys)
    assert code == 0, stderr
    assert json.loads(stdout)["resumed"] is True
    assert np.array_equal(np.load(out), uninterrupted)
    assert sorted(os.listdir(tmp_path)) == ["r.npy", "r.png", "r_std.npy", "whole"]  # checkpoint gone
