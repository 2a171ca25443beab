"""The built wheel installs `invsolve` and nothing else at top level."""

import configparser
import importlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"invsolve": "invsolve", "operators": "invsolve/operators", "priors": "invsolve/priors", "datasets": "invsolve/datasets"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("invsolve-*.whl")
    return path


@pytest.fixture(scope="module")
def wheel_names(wheel):
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_only_invsolve_at_top_level(wheel_names):
    top_level = {name.split("/")[0] for name in wheel_names}
    dist_info = {name for name in top_level if name.endswith(".dist-info")}
    assert top_level - dist_info == {"invsolve"}


def test_every_source_module_is_in_the_wheel(wheel_names):
    expected = set()
    for folder, installed in MAPPED.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                expected.add(f"{installed}/{path.relative_to(ROOT / folder).as_posix()}")
    missing = expected - set(wheel_names)
    assert not missing, f"listed in the source tree but missing from the wheel (add the subpackage to pyproject.toml): {sorted(missing)}"


def test_console_script_entry_point(wheel, wheel_names):
    """The wheel declares exactly the `invsolve` command, and it names the CLI's main function."""
    (name,) = [name for name in wheel_names if name.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(wheel) as archive:
        entry_points = configparser.ConfigParser()
        entry_points.read_string(archive.read(name).decode())
    assert entry_points.sections() == ["console_scripts"]
    assert dict(entry_points["console_scripts"]) == {"invsolve": "invsolve.cli:main"}
    module, _, function = entry_points["console_scripts"]["invsolve"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_the_embedded_priors_are_in_the_wheel(wheel_names):
    shipped = {f"invsolve/priors/pretrained/{path.name}" for path in (ROOT / "priors" / "pretrained").glob("*.pt")}
    assert shipped and shipped <= set(wheel_names)
