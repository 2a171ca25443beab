import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from invsolve.cli import main
from invsolve.files import atomic_write, save_json


def test_demo_writes_png_and_metrics(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--size", "16", "--dps-samples", "4", "--no-progress"]) == 0
    for name in ("demo.png", "demo_std.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) >= {"red_diff", "dps_mean", "exact_posterior_mean", "zero_filled"}
    # the exact posterior mean beats zero filling on the real CT slice
    assert metrics["exact_posterior_mean"]["psnr_db"] > metrics["zero_filled"]["psnr_db"] + 3
    assert json.loads(capsys.readouterr().out) == metrics
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_demo_rejects_bad_size(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--size", "200", "--no-progress"]) == 2
    assert "size must be between 8 and 64 pixels, got 200" in capsys.readouterr().err
    assert not (tmp_path / "demo.png").exists()


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
