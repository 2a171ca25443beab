"""The examples run on a fresh install and write their figure and metrics."""

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_ct_sparse_view(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "ct_sparse_view.py"), "--out", str(tmp_path), "--tv-iterations", "100", "--no-progress"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "ct_sparse_view.png").read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for scores in metrics["views"].values():
        assert scores["tv"]["psnr_db"] > scores["fbp"]["psnr_db"]  # TV wins at every view count


def test_mri_cs(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(EXAMPLES / "mri_cs.py"), "--out", str(tmp_path), "--tv-iterations", "60", "--no-progress"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "mri_cs.png").read_bytes()[:4] == b"\x89PNG"
    scores = json.loads((tmp_path / "metrics.json").read_text())["accelerations"]["4"]
    # at 4x with 8 coils, SENSE and TV beat zero filling (measured PSNR 28.4 / 34.2 / 37.7 dB)
    assert scores["cg_sense"]["psnr_db"] > scores["zero_filled"]["psnr_db"] + 3
    assert scores["tv_sense"]["psnr_db"] > scores["cg_sense"]["psnr_db"]
    assert scores["tv_sense"]["ssim"] > scores["zero_filled"]["ssim"]
    # the diffusion columns at 64² with mri-brain through RealAsComplex (measured 4×: zero-filled 20.4,
    # CG-SENSE 26.6, TV 32.0 dB / SSIM 0.64, DDS with preset mri-cartesian, mean of 4 samples, 30.4 dB / SSIM 0.95)
    assert (tmp_path / "mri_cs_64.png").read_bytes()[:4] == b"\x89PNG"
    at_64 = json.loads((tmp_path / "metrics.json").read_text())["diffusion_64"]["accelerations"]["4"]
    assert at_64["dds_mri_brain"]["psnr_db"] > at_64["cg_sense"]["psnr_db"] + 2
    assert at_64["dds_mri_brain"]["ssim"] > at_64["tv_sense"]["ssim"] + 0.1
