"""The examples run on a fresh install, write readable figures and metrics, and reproduce the README.

Each example runs once, as a user runs it (a subprocess with its defaults: the
README's settings), through ``benchmarks/readme_figures.py``'s ``run_example``;
its README table must match within that script's ``TOLERANCE`` (PSNR 0.1 dB,
SSIM 0.01).  About 5 s (CT) and 50 s (MRI, nearly all of it DDS and the 256² TV)
of CPU.
"""

import json
import re
from pathlib import Path

import pytest
import readme_figures  # benchmarks/readme_figures.py, loaded by tests/conftest.py
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


TABLES = {table.name: table for table in readme_figures.TABLES}


def _panels(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    panels = json.loads(Image.open(path).text["Description"])["panels"]
    for panel in panels:
        assert not re.search(r"\b[a-z]+_[a-z_]+\b", panel["title"]), panel["title"]  # no code identifiers
    return panels


def _check_readme(name, metrics):
    table = TABLES[name]
    measured = readme_figures.headline_numbers(table, metrics)
    readme = readme_figures.readme_numbers(README, table)
    assert measured.keys() == readme.keys()
    assert readme_figures.drift(measured, readme) == []


@pytest.fixture(scope="module")
def ct_sparse_view(tmp_path_factory):
    out = tmp_path_factory.mktemp("ct-sparse-view")
    return out, readme_figures.run_example("ct_sparse_view", out)


@pytest.fixture(scope="module")
def mri_cs(tmp_path_factory):
    out = tmp_path_factory.mktemp("mri-cs")
    return out, readme_figures.run_example("mri_cs", out)


def test_ct_sparse_view(ct_sparse_view):
    out, metrics = ct_sparse_view
    for scores in metrics["views"].values():
        assert scores["tv"]["psnr_db"] > scores["fbp"]["psnr_db"]  # TV wins at every view count
    panels = _panels(out / "ct_sparse_view.png")
    assert len(panels) == 9 and {(panel["unit"], tuple(panel["window"])) for panel in panels} == {("HU", (-200.0, 300.0))}
    _check_readme("ct-sparse-view", metrics)


def test_mri_cs(mri_cs):
    out, metrics = mri_cs
    scores = metrics["accelerations"]["4"]
    # at 4x with 8 coils, SENSE and TV beat zero filling
    assert scores["cg_sense"]["psnr_db"] > scores["zero_filled"]["psnr_db"] + 3
    assert scores["tv_sense"]["psnr_db"] > scores["cg_sense"]["psnr_db"]
    assert scores["tv_sense"]["ssim"] > scores["zero_filled"]["ssim"]
    # the diffusion columns at 64² with mri-brain through RealAsComplex: DDS with preset mri-cartesian
    at_64 = metrics["diffusion_64"]["accelerations"]["4"]
    assert at_64["dds_mri_brain"]["psnr_db"] > at_64["cg_sense"]["psnr_db"] + 2
    assert at_64["dds_mri_brain"]["ssim"] > at_64["tv_sense"]["ssim"] + 0.1
    _check_readme("mri-cs", metrics)
    _check_readme("mri-cs-64", metrics)


@pytest.mark.parametrize("figure, columns", [("mri_cs.png", 5), ("mri_cs_64.png", 6)])
def test_mri_figures_show_the_sampled_k_space_and_normalised_magnitudes(mri_cs, figure, columns):
    panels = _panels(mri_cs[0] / figure)
    assert len(panels) == 2 * columns
    for row, acceleration in zip((panels[:columns], panels[columns:]), (4, 8)):
        kspace, images = row[0], row[1:]
        assert kspace["title"] == f"k-space at {acceleration}×" and kspace["unit"] == "log₁₀ k-space magnitude"
        assert kspace["measured_fraction"] < 1.5 / acceleration  # the unsampled columns are marked
        assert {(panel["unit"], tuple(panel["window"])) for panel in images} == {("magnitude / truth's maximum", (0.0, 1.0))}
        assert [panel["title"].split("  ")[0] for panel in images[:4]] == ["truth", "zero-filled", "CG-SENSE", "TV-SENSE"]


def test_ct_3d_cone_writes_volumes_with_their_spacing_and_beats_fdk(tmp_path):
    """The cone-beam example's smoke run (--quick: 8 slices, 10 steps, 2 samples), as a user runs it."""
    import subprocess
    import sys

    import nibabel

    out = tmp_path / "ct-3d-cone"
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ct_3d_cone.py"), "--quick", "--no-progress", "--out", str(out)],
        cwd=tmp_path, check=True, capture_output=True, timeout=600,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dds3d_mean"]["psnr_db"] > metrics["fdk"]["psnr_db"] + 3.0  # measured +8.3 dB
    for name in ("dds3d_mean", "dds3d_std", "fdk"):
        volume = nibabel.load(out / f"{name}.nii.gz")
        assert volume.shape == (64, 64, 8)
        assert volume.header.get_zooms() == pytest.approx((1.323,) * 3, abs=1e-3)  # CT_small's 0.66 mm pixels, doubled
    panels = _panels(out / "orthogonal_slices.png")
    assert len(panels) == 12
    assert {panel["unit"] for panel in panels} == {"HU", "HU (std)"}


def test_ultrasound_dehaze_scores_every_method_and_processes_the_echo_frame(tmp_path):
    """The dehazing example's smoke run (--quick: one test scene at γ = 0.2, 10 sampler steps, 2 samples), as
    a user runs it; the README's tables come from its full run (four scenes, three haze levels, the presets'
    50 steps and 4 samples: benchmarks/readme_figures.py)."""
    import subprocess
    import sys

    out = tmp_path / "ultrasound-dehaze"
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ultrasound_dehaze.py"), "--scenes", "1", "--gammas", "0.2",
         "--quick", "--no-progress", "--out", str(out)],
        cwd=tmp_path, check=True, capture_output=True, timeout=900,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    rf, bmode = metrics["simulated"]["rf"]["gammas"]["0.2"], metrics["simulated"]["bmode"]["gammas"]["0.2"]
    assert set(rf) == {"hazy", "nlm_psnr", "nlm_gcnr", "joint_dehaze"} and set(bmode) == {"hazy", "joint_dehaze"}
    for scores in [*rf.values(), *bmode.values()]:
        assert 10 < scores["psnr_db"] < 60 and 0 <= scores["gcnr"] <= 1
    assert metrics["simulated"]["scenes"][0] >= 20_000  # the test split
    assert metrics["simulated"]["rf"]["settings"]["steps"] == 10 and metrics["echo_frame"]["settings"]["n_samples"] == 2
    echo = metrics["echo_frame"]["cavity_septum_gcnr"]
    assert set(echo) == {"hazy", "joint_dehaze"} and all(0 <= value <= 1 for value in echo.values())
    panels = _panels(out / "ultrasound_dehaze.png")
    assert len(panels) == 5 and [panel["unit"] for panel in panels] == ["dB"] * 4 + ["of the clean peak"]
    assert all(tuple(panel["window"]) == (-60.0, 0.0) for panel in panels[:4])
    assert len(_panels(out / "echo_frame.png")) == 4


def test_galaxy_augment_runs_every_stage(tmp_path):
    """The galaxy example's smoke run with the embedded galaxy-cond prior: a small world (480 labelled
    galaxies, two of them dust lanes; the test split's first 160), few generated galaxies, one classifier
    seed; the README's numbers come from its full run (benchmarks/readme_figures.py --only galaxy-augment)."""
    import subprocess
    import sys

    pytest.importorskip("statmorph")
    out = tmp_path / "galaxy-augment"
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "galaxy_augment.py"), "--prior-training", "480", "--train", "480",
         "--test", "160", "--oversample", "2", "--per-class", "2", "--steps", "4", "--epochs", "1", "--seeds", "1",
         "--no-progress", "--out", str(out)],
        cwd=tmp_path, check=True, capture_output=True, timeout=900,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    gain = metrics["classifier_gain"]
    assert gain["counts"]["train"][-1] == 2 and gain["counts"]["synthetic"] == [0] * 7 + [4]  # dust lanes
    summary = metrics["rare_class_summary"]
    assert set(summary) == {"scoring", "completeness_real_only", "completeness_augmented", "purity_real_only",
                            "purity_augmented", "purity_pooled_real_only", "purity_pooled_augmented",
                            "relative_completeness_gain"}
    assert summary["completeness_augmented"] == gain["per_class"]["dust_lane"][summary["scoring"]]["completeness_mean"]
    assert summary["purity_pooled_augmented"] == gain["per_class"]["dust_lane"][summary["scoring"]]["purity_pooled"]
    assert 0 <= metrics["conditional_consistency"]["rate"] <= 1
    assert set(metrics["statistics"]) == set(metrics["classes"])
    memorisation = metrics["memorisation"]
    assert memorisation["generated"] == 16 + 4 and memorisation["training"] == 480
    assert 0 < memorisation["held_out_first_percentile"] <= memorisation["median_held_out_distance"]
    panels = _panels(out / "galaxy_augment.png")
    assert len(panels) == 8 * 8 and panels[0]["title"] == "smooth round: real"
    assert (out / "galaxy_statistics.png").read_bytes()[:4] == b"\x89PNG"
